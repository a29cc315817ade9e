//! In-process cost of a computed `GET /sessions/{id}/predictions`: the engine and the JSON
//! answer, without HTTP. A node of 10,000 random patterns (`mneme bench`'s: 2-5 events of 1-5
//! symbols over 5,000 symbols, fixed seed, the shape `scripts/bench-http` uses), 16 sessions each holding a
//! 3-event short-term memory taken from a learned pattern, and `threads` threads asking for
//! predictions with `Cache-Control: no-cache` for `seconds` seconds.
//!
//!     cargo run --release -p mneme-server --example predictions -- [threads] [seconds] [answers.jsonl]
//!
//! It prints answers per second and the split of an answer's cost: the engine alone
//! (`Node::predict_full`), writing the JSON, and the rest (session lookup, the memo). With a
//! third argument, each session's answer (its session id replaced by its index) is written
//! there, one per line, so that two builds can be compared byte for byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mneme_app::bench::corpus::Rng;
use mneme_app::bench::random_pattern;
use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;
use mneme_server::kato::{Api, Freshness, Options, Request};
use serde_json::{Value, json};

/// The allocator `mneme` itself uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `POST /sessions` or `METHOD /sessions/{id}/{action}`, as the routes call the API.
fn call(api: &Api, method: &str, path: &str, body: Option<Value>) -> Value {
    let request = Request::new(method, "", body.as_ref());
    let reply = match path
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sessions"] => api.create(&request),
        ["sessions", id, action] => api.action(id, action, &request),
        _ => panic!("no route for {path}"),
    };
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.json());
    reply.json()
}

/// `GET /sessions/{id}/predictions` with `Cache-Control: no-cache`.
fn computed_predictions(api: &Api, path: &str) -> mneme_server::kato::Reply {
    let id = path.split('/').nth(2).expect("/sessions/{id}/predictions");
    api.action(
        id,
        "predictions",
        &Request {
            freshness: Freshness::Computed,
            ..Request::new("GET", "", None)
        },
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(2, |a| a.parse().expect("threads"));
    let seconds: f64 = args.next().map_or(5.0, |a| a.parse().expect("seconds"));
    let answers = args.next();

    let patterns = Arc::new(Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap());
    let api = Arc::new(Api::new(patterns.clone(), Options::default()));
    let mut rng = Rng::new(42);
    let learned: Vec<Vec<Vec<String>>> = (0..10_000).map(|_| random_pattern(&mut rng)).collect();
    let started = Instant::now();
    let trainer = call(&api, "POST", "/sessions", Some(json!({"node_id": "bench"})));
    let trainer = trainer["session_id"].as_str().unwrap().to_owned();
    for pattern in &learned {
        for event in pattern {
            let body = json!({ "strings": event });
            call(
                &api,
                "POST",
                &format!("/sessions/{trainer}/observe"),
                Some(body),
            );
        }
        call(&api, "POST", &format!("/sessions/{trainer}/learn"), None);
    }
    eprintln!(
        "learned {} patterns in {:.1} s",
        learned.len(),
        started.elapsed().as_secs_f64()
    );
    let mut paths = Vec::new();
    let mut ids = Vec::new();
    let mut stms: Vec<Vec<Vec<String>>> = Vec::new();
    for _ in 0..16 {
        let created = call(&api, "POST", "/sessions", Some(json!({"node_id": "bench"})));
        let id = created["session_id"].as_str().unwrap().to_owned();
        let source = &learned[rng.below(learned.len())];
        stms.push(source.iter().cycle().take(3).cloned().collect());
        for event in source.iter().cycle().take(3) {
            let body = json!({ "strings": event });
            call(&api, "POST", &format!("/sessions/{id}/observe"), Some(body));
        }
        paths.push(format!("/sessions/{id}/predictions"));
        ids.push(id);
    }
    let get = |path: &str| {
        let reply = computed_predictions(&api, path);
        assert_eq!(reply.status, 200);
        reply.raw.expect("a serialised answer")
    };
    let mut bytes = 0usize;
    let mut predictions = 0usize;
    let mut out = String::new();
    for (path, id) in paths.iter().zip(&ids) {
        let answer = get(path);
        bytes += answer.len();
        let value: Value = serde_json::from_slice(&answer).unwrap();
        predictions += value["count"].as_u64().unwrap() as usize;
        let index = ids.iter().position(|i| i == id).unwrap();
        out.push_str(
            &String::from_utf8(answer.to_vec())
                .unwrap()
                .replace(id.as_str(), &format!("session-{index}")),
        );
        out.push('\n');
    }
    if let Some(file) = answers {
        std::fs::write(&file, out).unwrap();
        eprintln!("answers written to {file}");
    }
    eprintln!(
        "{:.1} predictions and {} bytes of JSON per answer",
        predictions as f64 / paths.len() as f64,
        bytes / paths.len()
    );

    let api_paths = paths.clone();
    let answers = measure(threads, seconds, move |i| {
        let path = &api_paths[i % api_paths.len()];
        let reply = computed_predictions(&api, path);
        assert_eq!(reply.status, 200);
    });
    let node = patterns.node("bench").unwrap();
    let config = Defaults::kato().predict_config();
    let stms = Arc::new(stms);
    let (engine_node, engine_stms, engine_config) = (node.clone(), stms.clone(), config.clone());
    let engine = measure(threads, seconds, move |i| {
        let stm = &engine_stms[i % engine_stms.len()];
        let n = engine_node.predict_full(stm, &engine_config, |answer| answer.len());
        assert!(n > 0);
    });
    let written = measure(threads, seconds, move |i| {
        let n = node.predict_full(&stms[i % stms.len()], &config, |answer| {
            let mut out = Vec::with_capacity(256 + answer.len() * 1536);
            mneme_server::kato::json::write_full_answer_reply(&mut out, answer, "session");
            out.len()
        });
        assert!(n > 0);
    });
    println!(
        "{threads} threads: {:.0} computed answers/s, µs per answer per thread: {:.1} in all, {:.1} the engine, {:.1} writing JSON, {:.1} the rest",
        answers.0,
        answers.1,
        engine.1,
        written.1 - engine.1,
        answers.1 - written.1
    );
}

/// Calls `work(i)` with i = 0, 1, 2... on `threads` threads for `seconds`; returns the calls
/// per second and the microseconds per call per thread.
fn measure(
    threads: usize,
    seconds: f64,
    work: impl Fn(usize) + Send + Sync + 'static,
) -> (f64, f64) {
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (work, stop, calls) = (work.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    work(i);
                    calls.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = calls.load(Ordering::Relaxed) as f64;
    (n / elapsed, elapsed * threads as f64 / n * 1e6)
}
