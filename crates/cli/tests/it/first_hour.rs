//! Issue "The first hour of a new user": what someone who has never used mneme meets first
//! (no knowledge directory, error and summary messages, paging past the end, help, stats).

use crate::{json, mneme, run, stderr, stdout, write_files};

fn sample(work: &std::path::Path) {
    write_files(
        &work.join("docs"),
        &[
            (
                "guide.md",
                "# Guide\n\n## Caching\n\nThe cache keeps hot answers.\n\n## Ingest\n\nIngest reads files.",
            ),
            ("notes.txt", "Plain notes about the cache and the index."),
        ],
    );
}

#[test]
fn first_hour_query_without_a_knowledge_dir_says_what_to_do_and_creates_nothing() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path())
        .env_remove("KB_KNOWLEDGE_DIRS")
        .args(["query", "cache"]));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with(
            "error: nothing to search yet: knowledge-base (the default knowledge dir) does not exist in "
        ),
        "{err}"
    );
    assert!(err.contains("hint: `mneme ingest PATH...`"), "{err}");
    assert!(err.contains("KB_KNOWLEDGE_DIRS"), "{err}");
    assert!(!err.contains("no index yet"), "{err}");
    assert!(
        !work.path().join("data").exists(),
        "no empty data directory is left behind"
    );

    let output = run(mneme(work.path()).arg("ingest"));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("error: nothing to ingest: ")
            && err.contains("(knowledge dir from KB_KNOWLEDGE_DIRS) does not exist"),
        "{err}"
    );
    assert!(!work.path().join("data").exists());
}

#[test]
fn first_hour_ingest_summary_tells_skipped_from_failed() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    std::fs::write(work.path().join("docs/empty.md"), b"").unwrap();
    std::fs::write(work.path().join("docs/bad.pdf"), b"%PDF-1.4 not really").unwrap();
    let output = run(mneme(work.path()).arg("ingest"));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("failed ") && err.contains("bad.pdf: corrupt: "),
        "{err}"
    );
    assert!(
        err.contains("skipped ") && err.contains("empty.md: empty: "),
        "{err}"
    );
    let out = stdout(&output);
    assert!(out.contains(", 1 skipped, 1 failed\n"), "{out}");
    assert!(
        out.contains("partial ingest: 1 file(s) skipped, 1 failed, see the reasons above"),
        "{out}"
    );

    let report = json(&run(mneme(work.path()).args([
        "ingest",
        "--rebuild",
        "--json",
    ])));
    let problems: Vec<(String, String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let path = p["path"].as_str().unwrap();
            (
                path.rsplit('/').next().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
                p["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            ("bad.pdf".into(), "failed".into(), "corrupt".into()),
            ("empty.md".into(), "skipped".into(), "empty".into()),
        ]
    );
    assert_eq!(
        (report["skipped"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn first_hour_an_offset_past_the_last_hit_says_how_many_match() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    assert!(run(mneme(work.path()).arg("ingest")).status.success());
    let output = run(mneme(work.path()).args(["query", "cache", "--offset", "100"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "no results past --offset 100: 2 document(s) match \"cache\""
    );
    let output = run(mneme(work.path()).args(["query", "zebra"]));
    assert_eq!(stdout(&output).trim(), "no documents match \"zebra\"");
}

#[test]
fn first_hour_help_lists_a_commands_own_options_before_the_global_ones() {
    let work = tempfile::tempdir().unwrap();
    let help = stdout(&run(mneme(work.path()).args(["query", "--help"])));
    let own = help.find("--limit").unwrap();
    let global_heading = help.find("Global options:").unwrap();
    let global = help.find("--config").unwrap();
    assert!(own < global_heading && global_heading < global, "{help}");
    assert!(
        !help.contains("--max-workers"),
        "queries do not ingest: {help}"
    );
    let help = stdout(&run(mneme(work.path()).args(["ingest", "--help"])));
    assert!(
        help.find("--max-workers").unwrap() < help.find("Global options:").unwrap(),
        "{help}"
    );
    let output = run(mneme(work.path()).args(["ingest", "--max-workers", "two"]));
    assert_eq!(
        stderr(&output).trim(),
        "error: --max-workers \"two\" is not valid: expected an integer >= 1"
    );
}

#[test]
fn first_hour_top_points_at_limit() {
    let work = tempfile::tempdir().unwrap();
    for flag in [&["--top", "5"][..], &["--top-k=5"][..]] {
        let output = run(mneme(work.path()).args(["query", "cache"]).args(flag));
        assert_eq!(output.status.code(), Some(2), "bad usage");
        let err = stderr(&output);
        assert!(err.contains("-n/--limit"), "{err}");
        assert!(err.contains("Usage: mneme query"), "{err}");
    }
}

/// The exit codes are stated once in `mneme --help` and once in the README, in the same words.
#[test]
fn first_hour_exit_codes_are_the_same_in_help_and_readme() {
    let work = tempfile::tempdir().unwrap();
    let help = stdout(&run(mneme(work.path()).arg("--help")));
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = words(&help);
    let start = help.find("Exit status:").unwrap();
    let end = start + help[start..].find("). ").unwrap() + 2;
    let in_help = &help[start..end];
    assert!(in_help.contains(" 4 a benchmark regression"), "{in_help}");
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = words(&std::fs::read_to_string(readme_path).unwrap()).replace('`', "");
    assert!(readme.contains(in_help), "the README should say: {in_help}");
    assert!(
        help.contains("hybrid by default once a model is present"),
        "{help}"
    );
}

#[test]
fn first_hour_stats_name_the_model_and_keep_the_warm_up_figures_between_runs() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    assert!(
        run(mneme(work.path())
            .env("KB_AUTO_WARM", "false")
            .arg("ingest"))
        .status
        .success()
    );
    let stats = json(&run(mneme(work.path()).args(["stats", "--json"])));
    assert_eq!(
        (&stats["warm_queries"], &stats["last_warm_time"]),
        (&serde_json::json!(0), &serde_json::Value::Null)
    );
    assert!(run(mneme(work.path()).arg("warm")).status.success());
    // `warm` and `stats` are two processes: the figures travel with the saved cache.
    let stats = json(&run(mneme(work.path()).args(["stats", "--json"])));
    assert_eq!(stats["warm_queries"], 7, "{stats}");
    assert!(stats["last_warm_time"].as_f64().is_some(), "{stats}");
    let table = stdout(&run(mneme(work.path()).arg("stats")));
    assert!(
        table.contains("7 queries, the last warm-up took"),
        "{table}"
    );

    let model = mneme_embed::test_model_dir();
    let stats = json(&run(mneme(work.path())
        .env("KB_EMBEDDING_MODEL", &model)
        .args(["stats", "--json"])));
    assert_eq!(
        (&stats["embedding_model"], &stats["embedding_dimensions"]),
        (
            &serde_json::json!("all-MiniLM-L6-v2"),
            &serde_json::json!(384)
        ),
        "{stats}"
    );
    let table = stdout(&run(mneme(work.path())
        .env("KB_EMBEDDING_MODEL", &model)
        .arg("stats")));
    assert!(
        table.contains("all-MiniLM-L6-v2 (384 dimensions, 0 chunk vectors)"),
        "{table}"
    );
    assert!(!table.contains(":384:"), "no internal fingerprint: {table}");
}

#[test]
fn first_hour_snippets_mark_content_words_and_end_between_words() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    let filler =
        "Rivers carry water from the mountains to the sea, and deltas form where they meet it. ";
    let long = format!(
        "# Long\n\n{}The cache answers repeated questions quickly. {}",
        filler.repeat(4),
        filler.repeat(4)
    );
    write_files(&work.path().join("docs"), &[("long.md", &long)]);
    assert!(run(mneme(work.path()).arg("ingest")).status.success());

    let listing = stdout(&run(
        mneme(work.path()).args(["query", "how does the cache work"])
    ));
    assert!(
        listing.contains("The [cache] keeps hot answers."),
        "{listing}"
    );
    for stopword in ["[how]", "[does]", "[the]", "[The]"] {
        assert!(!listing.contains(stopword), "{stopword} marked: {listing}");
    }
    // A query of function words only still marks them (there is nothing else to mark).
    let listing = stdout(&run(mneme(work.path()).args(["query", "the"])));
    assert!(
        listing.contains("[the]") || listing.contains("[The]"),
        "{listing}"
    );

    let answer = json(&run(mneme(work.path()).args([
        "query",
        "repeated questions",
        "--json",
    ])));
    let snippet = answer["results"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.starts_with('…') && snippet.ends_with('…'),
        "a passage cut out of its chunk says so: {snippet:?}"
    );
    let words: Vec<&str> = long.split_whitespace().collect();
    for word in snippet
        .replace("<b>", "")
        .replace("</b>", "")
        .trim_matches('…')
        .split_whitespace()
    {
        assert!(
            words.contains(&word),
            "{word:?} is not a whole word: {snippet:?}"
        );
    }
}
