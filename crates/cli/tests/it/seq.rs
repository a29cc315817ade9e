//! `mneme seq`: sessions that survive between runs, bulk learning, and kill -9 in the middle of
//! learns, durable and periodic.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;

use crate::{json, mneme, run, stderr};

#[test]
fn observe_learn_and_predict_across_runs() {
    let work = tempfile::tempdir().unwrap();
    for symbol in ["beginning", "middle", "end"] {
        let output = run(mneme(work.path()).args(["seq", "observe", "-n", "demo", "-s", symbol]));
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let learned = json(&run(mneme(work.path()).args(["seq", "learn", "-n", "demo"])));
    assert_eq!(
        learned["pattern_name"],
        "PTRN|63b6f94454dab80c6ace4a849bd99c0979c21b8b"
    );
    let stm = json(&run(mneme(work.path()).args(["seq", "stm", "-n", "demo"])));
    assert_eq!(stm["length"], 0, "learning empties the short-term memory");
    for symbol in ["middle", "end"] {
        run(mneme(work.path()).args(["seq", "observe", "-n", "demo", "-s", symbol]));
    }
    let predicted = json(&run(
        mneme(work.path()).args(["seq", "predict", "-n", "demo"])
    ));
    let first = &predicted["predictions"][0];
    assert_eq!(first["past"], serde_json::json!([["beginning"]]));
    assert_eq!(first["similarity"], 0.8);
    // Another session of the node has its own short-term memory but the same patterns.
    let other = json(&run(mneme(work.path()).args([
        "seq",
        "stm",
        "-n",
        "demo",
        "--session",
        "other",
    ])));
    assert_eq!(other["length"], 0);
    let cleared = json(&run(
        mneme(work.path()).args(["seq", "clear", "-n", "demo", "--all"])
    ));
    assert_eq!(cleared["scope"], "all");
    let output = run(mneme(work.path()).args([
        "seq",
        "pattern",
        "-n",
        "demo",
        "PTRN|63b6f94454dab80c6ace4a849bd99c0979c21b8b",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not found"));
}

#[test]
fn bad_observations_are_clear_errors_and_change_nothing() {
    let work = tempfile::tempdir().unwrap();
    run(mneme(work.path()).args(["seq", "observe", "-n", "v", "--vector", "1,2,3"]));
    let cases: &[(&[&str], &str)] = &[
        (&["--vector", "1,x"], "expected comma-separated numbers"),
        (
            &["--vector", "1,2"],
            "vector dimension mismatch: expected 3, got 2",
        ),
        (&["--emotive", "joy"], "expected NAME=NUMBER"),
        (
            &["--json", "{\"strings\": [5]}"],
            "Input should be a valid string",
        ),
        (&["--json", "{not json"], "--json is not valid JSON"),
    ];
    for (args, message) in cases {
        let output = run(mneme(work.path())
            .args(["seq", "observe", "-n", "v"])
            .args(*args));
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let stm = json(&run(mneme(work.path()).args(["seq", "stm", "-n", "v"])));
    assert_eq!(
        stm["length"], 1,
        "only the first, valid observation is in the STM"
    );
}

/// Random event lists (2-5 events of 1-3 symbols over 200 symbols), one JSON line each.
fn write_batch(path: &Path, count: usize) {
    let mut state = 12345u64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..count {
        let events: Vec<Vec<String>> = (0..2 + next(4))
            .map(|_| {
                (0..1 + next(3))
                    .map(|_| format!("s{}", next(200)))
                    .collect()
            })
            .collect();
        writeln!(file, "{}", serde_json::to_string(&events).unwrap()).unwrap();
    }
}

/// Starts a bulk learn, reads the names it reports, and kills it -9 after `after` of them.
fn learn_and_kill(work: &Path, durability: &str, batch: &Path, after: usize) -> Vec<String> {
    let mut child = mneme(work)
        .env("MNEME_SEQ_DURABILITY", durability)
        .env("MNEME_SEQ_FLUSH_MS", "50")
        .args(["seq", "learn", "-n", "crash", "--batch"])
        .arg(batch)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reported = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if !line.is_empty() {
            reported.push(line.trim_start_matches("PTRN|").to_owned());
        }
        if reported.len() >= after || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reported
}

fn reopen(work: &Path) -> Patterns {
    Patterns::open(
        Some(&work.join("data/seq/patterns.redb")),
        Durability::Immediate,
        Defaults::kato(),
    )
    .unwrap()
}

#[test]
fn kill_9_during_durable_learns_loses_nothing_that_was_reported() {
    let work = tempfile::tempdir().unwrap();
    let batch = work.path().join("batch.jsonl");
    write_batch(&batch, 200_000);
    let reported = learn_and_kill(work.path(), "immediate", &batch, 3000);
    assert!(
        reported.len() >= 3000,
        "the learner reported {} patterns",
        reported.len()
    );
    let patterns = reopen(work.path());
    let node = patterns.node("crash").unwrap();
    let stored = node.stats().patterns;
    assert!(
        stored < 200_000,
        "the learner was killed before the end ({stored} stored)"
    );
    for name in &reported {
        assert!(
            node.pattern(name).is_some(),
            "reported pattern {name} was lost"
        );
    }
}

#[test]
fn kill_9_during_periodic_learns_leaves_a_consistent_store() {
    let work = tempfile::tempdir().unwrap();
    let batch = work.path().join("batch.jsonl");
    write_batch(&batch, 200_000);
    let reported = learn_and_kill(work.path(), "periodic", &batch, 3000);
    let patterns = reopen(work.path());
    let node = patterns.node("crash").unwrap();
    let stats = node.stats();
    // Periodic mode may lose the learns of the last interval, never part of one: every stored
    // pattern loads whole, and the store keeps working.
    assert!(stats.patterns <= 200_000 && stats.symbols <= 200);
    let stored = reported
        .iter()
        .filter(|name| node.pattern(name).is_some())
        .count();
    assert!(stored <= reported.len());
    assert!(
        node.learn(&[vec!["after".into()], vec!["crash".into()]], &[], &[], 5)
            .unwrap()
            .is_some()
    );
}
