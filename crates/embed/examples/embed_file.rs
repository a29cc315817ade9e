//! Embeds a file of texts (one JSON string a line, as `bench/texts.py` writes) and prints the
//! rate as JSON; scripts/bench-embed runs it back to back with the Python peers.
//!
//! `embed_file MODEL_DIR TEXTS.jsonl [--precision auto|f32|bf16] [--batch N] [--out FILE]`
//! (`--out`: the vectors as f32, row after row, for accuracy comparisons).

use std::io::Write;
use std::time::Instant;

use mneme_embed::{Embedder, Precision};

/// As in the `mneme` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: embed_file MODEL_DIR TEXTS.jsonl [--precision auto|f32|bf16] [--batch N] [--out FILE]";
    let dir = args.next().expect(usage);
    let file = args.next().expect(usage);
    let (mut precision, mut batch, mut out) = (None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().expect(usage);
        match flag.as_str() {
            "--precision" => {
                precision = match value.as_str() {
                    "auto" => None,
                    "f32" => Some(Precision::F32),
                    "bf16" => Some(Precision::Bf16),
                    _ => panic!("{usage}"),
                }
            }
            "--batch" => batch = Some(value.parse::<usize>().expect(usage)),
            "--out" => out = Some(value),
            _ => panic!("{usage}"),
        }
    }
    let texts: Vec<String> = std::fs::read_to_string(&file)
        .expect("cannot read the texts")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a line is not a JSON string"))
        .collect();
    let mut embedder = match precision {
        None => Embedder::load(dir.as_ref()),
        Some(p) => Embedder::load_with(dir.as_ref(), p),
    }
    .unwrap();
    if let Some(b) = batch {
        embedder = embedder.with_batch_size(b);
    }
    let tokens: usize = texts
        .iter()
        .map(|t| embedder.count_tokens(t).unwrap())
        .sum();
    embedder.embed(&texts[..texts.len().min(8)]).unwrap();
    let started = Instant::now();
    let vectors = embedder.embed(&texts).unwrap();
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for v in &vectors {
            for x in v {
                f.write_all(&x.to_le_bytes()).unwrap();
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "engine": format!("mneme-{}", embedder.kernels()),
            "texts": texts.len(),
            "tokens_per_text": (tokens as f64 / texts.len() as f64).round(),
            "seconds": (secs * 1000.0).round() / 1000.0,
            "per_second": (texts.len() as f64 / secs * 100.0).round() / 100.0,
            "threads": rayon::current_num_threads(),
        })
    );
}
