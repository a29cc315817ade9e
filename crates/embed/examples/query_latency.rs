//! Latency of embedding one short query: `cargo run --release -p mneme-embed --example
//! query_latency -- MODEL_DIR [N]`.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: query_latency MODEL_DIR [N]");
    let n: usize = args.next().map_or(100, |a| a.parse().unwrap());
    let embedder = mneme_embed::Embedder::load(dir.as_ref()).unwrap();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let query = format!("how does the query cache reduce latency {i}");
        let started = Instant::now();
        let v = embedder.embed(&[query.as_str()]).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(v[0].len(), 384);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{n} single-query embeddings: P50 {:.2} ms, P99 {:.2} ms, min {:.2} ms",
        times[n / 2],
        times[(n * 99) / 100],
        times[0]
    );
}
