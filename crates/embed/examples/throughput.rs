//! Embedding throughput on synthetic chunks: `cargo run --release -p mneme-embed --example
//! throughput -- MODEL_DIR [CHUNKS] [WORDS_PER_CHUNK] [BATCH]`.

use std::time::Instant;

/// As in the `mneme` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: throughput MODEL_DIR [CHUNKS] [WORDS] [BATCH]");
    let chunks: usize = args.next().map_or(256, |a| a.parse().unwrap());
    let words: usize = args.next().map_or(160, |a| a.parse().unwrap());
    let batch: usize = args.next().map_or(32, |a| a.parse().unwrap());
    let vocab = [
        "search",
        "index",
        "vector",
        "embedding",
        "query",
        "latency",
        "cache",
        "document",
        "chunk",
        "model",
        "throughput",
        "the",
        "of",
        "and",
        "retrieval",
        "ranking",
        "hybrid",
        "keyword",
        "pattern",
        "sequence",
        "prediction",
        "memory",
        "session",
        "learn",
        "symbol",
        "engine",
    ];
    let mut state = 0x9e3779b97f4a7c15u64;
    let texts: Vec<String> = (0..chunks)
        .map(|_| {
            (0..words)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    vocab[(state % vocab.len() as u64) as usize]
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let embedder = mneme_embed::Embedder::load(dir.as_ref())
        .unwrap()
        .with_batch_size(batch);
    let tokens: usize = texts
        .iter()
        .map(|t| embedder.count_tokens(t).unwrap())
        .sum();
    let start = Instant::now();
    let vectors = embedder.embed(&texts).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(vectors.len(), chunks);
    println!(
        "{chunks} chunks, {:.0} tokens each, batch {batch}, threads {}: {secs:.2} s = {:.1} chunks/s, {:.0} tokens/s",
        tokens as f64 / chunks as f64,
        candle_core::utils::get_num_threads(),
        chunks as f64 / secs,
        tokens as f64 / secs
    );
}
