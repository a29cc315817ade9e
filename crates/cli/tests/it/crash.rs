//! A kill -9 in the middle of an ingest leaves the last committed index openable and
//! queryable, and a second writer is refused while one is running.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mneme_embed::test_model_dir as model_dir;

use crate::{json, mneme, run, stderr, synthetic_corpus, write_files};

/// Starts `mneme ingest` paused right before its commit (the test hook) and waits for the
/// pause.
fn paused_ingest(work: &Path, extra: &[&str]) -> Child {
    let marker = work.join("paused");
    let _ = std::fs::remove_file(&marker);
    let child = mneme(work)
        .env("MNEME_TEST_PAUSE_BEFORE_COMMIT", &marker)
        .arg("ingest")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the ingest never reached its commit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn kill9(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// The index opens, its document count agrees with a query that matches every document,
/// and it answers a query.
fn check_consistent(work: &Path) -> (u64, u64) {
    let stats = run(mneme(work).args(["stats", "--json"]));
    assert!(stats.status.success(), "{}", stderr(&stats));
    let stats = json(&stats);
    let documents = stats["documents"].as_u64().unwrap();
    let generation = stats["generation"].as_u64().unwrap();
    let all = run(mneme(work).args(["query", "##", "--mode", "terms", "--json", "--no-cache"]));
    assert!(all.status.success(), "{}", stderr(&all));
    assert_eq!(
        json(&all)["total"].as_u64(),
        Some(documents),
        "catalog and index agree"
    );
    let keyword = run(mneme(work).args(["query", "cache data", "--json", "--no-cache"]));
    assert!(keyword.status.success(), "{}", stderr(&keyword));
    (generation, documents)
}

#[test]
fn kill_9_before_the_commit_keeps_the_previous_generation() {
    let work = tempfile::tempdir().unwrap();
    write_files(
        &work.path().join("docs"),
        &[
            ("a.md", "## alpha cache data"),
            ("b.md", "## bravo cache data"),
        ],
    );
    assert!(run(mneme(work.path()).arg("ingest")).status.success());
    assert_eq!(check_consistent(work.path()), (1, 2));

    write_files(
        &work.path().join("docs"),
        &[("c.md", "## charlie cache data")],
    );
    std::fs::remove_file(work.path().join("docs/a.md")).unwrap();
    let child = paused_ingest(work.path(), &[]);
    // While it holds the writer, a second ingest is refused and readers still work.
    let second = run(mneme(work.path()).arg("ingest"));
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("another ingest is writing to"),
        "{}",
        stderr(&second)
    );
    assert_eq!(check_consistent(work.path()), (1, 2));
    kill9(child);

    assert_eq!(
        check_consistent(work.path()),
        (1, 2),
        "the killed ingest left generation 1 intact"
    );
    let after = json(&run(mneme(work.path()).args(["ingest", "--json"])));
    assert_eq!(
        (
            after["added"].as_u64(),
            after["removed"].as_u64(),
            after["generation"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(check_consistent(work.path()), (2, 2));
}

#[test]
fn kill_9_at_random_moments_of_large_ingests_never_damages_the_index() {
    let work = tempfile::tempdir().unwrap();
    let knowledge = synthetic_corpus(&work.path().join("corpus"), 1500);
    let docs = knowledge.to_string_lossy().into_owned();
    let ingest = |rebuild: bool| {
        let mut command = mneme(work.path());
        command
            .arg("ingest")
            .arg(&docs)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if rebuild {
            command.arg("--rebuild");
        }
        command
    };
    let started = Instant::now();
    assert!(ingest(false).status().unwrap().success());
    let full = started.elapsed();
    let (generation, documents) = check_consistent(work.path());
    assert_eq!((generation, documents), (1, 1500));

    // Kill rebuilds at spread-out moments of their run, from start-up to the commit.
    let mut last_generation = generation;
    for step in 1..=6u32 {
        let child = ingest(true).spawn().unwrap();
        std::thread::sleep(full * step / 6);
        kill9(child);
        let (generation, documents) = check_consistent(work.path());
        assert!(
            generation == last_generation || generation == last_generation + 1,
            "generation {generation}"
        );
        assert_eq!(documents, 1500);
        last_generation = generation;
    }
    assert!(
        ingest(false).status().unwrap().success(),
        "a later ingest works"
    );
    assert_eq!(check_consistent(work.path()).1, 1500);
}

/// Vector-search answer of the CLI: the doc_ids, best first.
fn vector_ids(work: &Path, query: &str) -> Vec<String> {
    let out = run(mneme(work).env("KB_EMBEDDING_MODEL", model_dir()).args([
        "query",
        query,
        "--mode",
        "vector",
        "--json",
        "--no-cache",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["doc_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn kill_9_while_embedding_keeps_the_previous_vectors() {
    let work = tempfile::tempdir().unwrap();
    write_files(
        &work.path().join("docs"),
        &[
            (
                "bread.md",
                "# Sourdough\n\nFlour, water and salt rise overnight and bake in a hot oven.",
            ),
            (
                "money.md",
                "# Quarterly report\n\nRevenue grew by twelve percent this quarter.",
            ),
        ],
    );
    let first = run(mneme(work.path())
        .env("KB_EMBEDDING_MODEL", model_dir())
        .args(["ingest", "--json"]));
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(json(&first)["vectors"], 2);
    let stats = json(&run(mneme(work.path())
        .env("KB_EMBEDDING_MODEL", model_dir())
        .args(["stats", "--json"])));
    assert_eq!(
        (stats["vectors"].as_u64(), stats["default_mode"].as_str()),
        (Some(2), Some("hybrid")),
        "{stats}"
    );
    // Without the setting (and no model in the data directory) it is keyword search.
    let stats = json(&run(mneme(work.path()).args(["stats", "--json"])));
    assert_eq!(stats["default_mode"], "keyword", "{stats}");
    assert_eq!(
        vector_ids(work.path(), "baking at home")[0],
        "docs/bread.md"
    );

    // A new document; the ingest embeds it, then is killed right before its commit.
    write_files(
        &work.path().join("docs"),
        &[(
            "music.md",
            "# Librosa\n\nBeat tracking and tempo estimation for songs.",
        )],
    );
    let marker = work.path().join("paused");
    let child = mneme(work.path())
        .env("KB_EMBEDDING_MODEL", model_dir())
        .env("MNEME_TEST_PAUSE_BEFORE_COMMIT", &marker)
        .arg("ingest")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the ingest never reached its commit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(child);
    // Generation 1 and its vectors are intact: two documents, vector search works.
    let ids = vector_ids(work.path(), "rhythm of songs");
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The next ingest embeds nothing: the killed one saved the new chunk's vector as pending
    // (pending-vectors.bin) and this one resumes it.
    let again = run(mneme(work.path())
        .env("KB_EMBEDDING_MODEL", model_dir())
        .args(["ingest", "--json"]));
    assert!(again.status.success(), "{}", stderr(&again));
    let again = json(&again);
    assert_eq!(
        (
            again["embedded"].as_u64(),
            again["vectors_resumed"].as_u64(),
            again["vectors"].as_u64()
        ),
        (Some(0), Some(1), Some(3)),
        "{again}"
    );
    assert_eq!(
        vector_ids(work.path(), "rhythm of songs")[0],
        "docs/music.md"
    );
}
