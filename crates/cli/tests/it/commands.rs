//! The commands, their output and their exit codes.

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
fn ingest_then_query_as_json_and_as_a_listing() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    let output = run(mneme(work.path()).args(["ingest", "--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(
        (
            report["added"].as_u64(),
            report["documents"].as_u64(),
            report["partial"].as_bool()
        ),
        (Some(2), Some(2), Some(false))
    );

    let output = run(mneme(work.path()).args(["query", "hot cache", "--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let answer = json(&output);
    assert_eq!(answer["results"][0]["doc_id"], "docs/guide.md");
    assert_eq!(
        answer["results"][0]["heading_path"],
        serde_json::json!(["Guide", "Caching"])
    );
    assert_eq!(
        answer["results"][0]["snippet"],
        "# Guide\n\n## Caching\n\nThe <b>cache</b> keeps <b>hot</b> answers."
    );
    assert_eq!(answer["total"], 2);
    assert_eq!(answer["cached"], false);

    let again = json(&run(mneme(work.path()).args([
        "query",
        "cache hot",
        "--json",
    ])));
    assert_eq!(
        again["cached"], true,
        "the cache persists between runs and the key is normalised"
    );

    let stats = json(&run(mneme(work.path()).args(["stats", "--json"])));
    assert!(
        stats["last_access_age"]
            .as_str()
            .unwrap()
            .ends_with("s ago"),
        "{stats}"
    );
    // Seven warming queries after the ingest, then the two above (the second a hit).
    assert_eq!(
        (stats["queries"].as_u64(), stats["cache_hits"].as_u64()),
        (Some(9), Some(1)),
        "{stats}"
    );

    let listing = stdout(&run(mneme(work.path()).args([
        "query",
        "hot cache",
        "--mode",
        "terms",
        "--limit",
        "1",
    ])));
    assert!(listing.contains("1. docs/guide.md"), "{listing}");
    assert!(
        listing.contains("The [cache] keeps [hot] answers"),
        "{listing}"
    );
    assert!(listing.contains("1 result(s) of 2"), "{listing}");
}

#[test]
fn query_before_any_ingest_ingests_the_knowledge_dirs_first() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    let output = run(mneme(work.path()).args(["query", "ingest", "--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("no index yet: ingesting"));
    assert_eq!(json(&output)["results"][0]["doc_id"], "docs/guide.md");
}

#[test]
fn a_partial_ingest_names_each_skipped_file_and_exits_3() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    std::fs::write(work.path().join("docs/bad.txt"), b"\xff\xfe\x00binary").unwrap();
    std::fs::write(work.path().join("docs/empty.md"), b"").unwrap();
    let output = run(mneme(work.path()).arg("ingest"));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("skipped "), "{err}");
    assert!(
        err.contains("bad.txt: binary: binary content (NUL bytes) in a text file"),
        "{err}"
    );
    assert!(err.contains("empty.md: empty: the file is empty"), "{err}");
    let out = stdout(&output);
    assert!(
        out.contains("4 files: 2 added, 0 updated, 0 unchanged, 0 removed, 2 skipped, 0 failed"),
        "{out}"
    );
    assert!(out.contains("partial ingest"), "{out}");
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path()).args(["ingest", "no/such/dir"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim(),
        "error: no/such/dir: no such file or directory"
    );
    assert!(
        !work.path().join("data").exists(),
        "nothing is created for an ingest that cannot start"
    );
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_variable() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path())
        .env("KB_MAX_CACHE_SIZE", "lots")
        .arg("stats"));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim(),
        "error: KB_MAX_CACHE_SIZE=\"lots\" is not valid: expected an integer >= 1"
    );
    let output = run(mneme(work.path()).args(["ingest", "--max-workers", "0"]));
    assert_eq!(
        stderr(&output).trim(),
        "error: --max-workers \"0\" is not valid: expected an integer >= 1"
    );
    std::fs::write(
        work.path().join("mneme.toml"),
        "[kb]\nchunk_size = 100\nchunk_overlap = 150\n",
    )
    .unwrap();
    let output = run(mneme(work.path()).args(["--config", "mneme.toml", "stats"]));
    assert_eq!(
        stderr(&output).trim(),
        "error: chunk_overlap (150, from kb.chunk_overlap in mneme.toml) must be smaller than chunk_size (100, from kb.chunk_size in mneme.toml)"
    );
}

#[test]
fn invalid_queries_are_rejected_with_knowledgebeasts_messages() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    let output = run(mneme(work.path()).args(["query", "drop; table"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim(),
        "error: invalid query: Query contains invalid character: ;"
    );
}

#[test]
fn batch_queries_print_one_json_line_each() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    std::fs::write(
        work.path().join("queries.txt"),
        "hot cache\n\nindex\nbad | query\ncache hot\n",
    )
    .unwrap();
    let output = run(mneme(work.path()).args(["query", "--batch", "queries.txt", "--limit", "1"]));
    assert_eq!(output.status.code(), Some(3), "one query was invalid");
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["results"][0]["doc_id"], "docs/guide.md");
    assert_eq!(lines[1]["query"], "index");
    assert_eq!(lines[2]["error"], "Query contains invalid character: |");
    assert_eq!(lines[2]["line"], 4);
    assert_eq!(lines[3]["cached"], true);
}

#[test]
fn stats_warm_clear_cache_and_health() {
    let work = tempfile::tempdir().unwrap();
    let health = json(&run(mneme(work.path()).args(["health", "--json"])));
    assert_eq!(
        health["status"], "degraded",
        "no knowledge dir and an empty index: {health}"
    );
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
        (
            stats["documents"].as_u64(),
            stats["cached_queries"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let warm = run(mneme(work.path()).arg("warm"));
    assert!(
        stdout(&warm).starts_with("warmed the cache with 7 queries"),
        "{}",
        stdout(&warm)
    );
    let stats = json(&run(mneme(work.path()).args(["stats", "--json"])));
    assert_eq!(stats["cached_queries"], 7);
    let cleared = run(mneme(work.path()).arg("clear-cache"));
    assert_eq!(stdout(&cleared).trim(), "Cache cleared: 7 entries removed");
    let health = run(mneme(work.path()).args(["health", "--json"]));
    assert!(health.status.success());
    assert_eq!(json(&health)["status"], "healthy");
    let version = stdout(&run(mneme(work.path()).arg("version")));
    assert!(version.starts_with(&format!("mneme {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn dotenv_in_the_working_directory_is_read_and_ignored_variables_are_named() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    std::fs::write(
        work.path().join(".env"),
        "# KATO's compose file\nCLICKHOUSE_HOST=clickhouse\nexport KB_KNOWLEDGE_DIRS=\"docs\"\nnot an assignment\n",
    )
    .unwrap();
    let output = run(mneme(work.path())
        .env_remove("KB_KNOWLEDGE_DIRS")
        .args(["ingest", "--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["documents"].as_u64(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("CLICKHOUSE_HOST is set but mneme ignores it: mneme keeps patterns"),
        "{err}"
    );
    assert!(
        err.contains(".env:4: not a KEY=value line, skipped"),
        "{err}"
    );

    // LOG_LEVEL (from .env, as KATO's guide sets it) silences the warnings; the environment
    // wins over the file.
    std::fs::write(
        work.path().join(".env"),
        "LOG_LEVEL=ERROR\nCLICKHOUSE_HOST=clickhouse\n",
    )
    .unwrap();
    let output = run(mneme(work.path()).arg("stats"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("CLICKHOUSE_HOST"),
        "{}",
        stderr(&output)
    );
    let output = run(mneme(work.path()).env("LOG_LEVEL", "WARNING").arg("stats"));
    assert!(
        stderr(&output).contains("CLICKHOUSE_HOST"),
        "{}",
        stderr(&output)
    );

    std::fs::write(work.path().join(".env"), "KATO_USE_FAST_MATCHING=false\n").unwrap();
    let output = run(mneme(work.path()).arg("stats"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("error: KATO_USE_FAST_MATCHING=false asks for KATO's difflib matcher"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn completions_and_manual_pages_are_generated_from_the_commands() {
    let work = tempfile::tempdir().unwrap();
    let bash = run(mneme(work.path()).args(["completions", "bash"]));
    assert!(bash.status.success(), "{}", stderr(&bash));
    let script = stdout(&bash);
    for word in [
        "serve",
        "ingest",
        "benchmark",
        "mcp-server",
        "--data-dir",
        "--log-level",
    ] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    // bash accepts it and registers the completion.
    let path = work.path().join("mneme.bash");
    std::fs::write(&path, &script).unwrap();
    let registered = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p mneme", path.display()))
        .output()
        .unwrap();
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    assert!(String::from_utf8_lossy(&registered.stdout).contains("mneme"));
    for (shell, marker) in [("zsh", "#compdef mneme"), ("fish", "complete -c mneme")] {
        let output = run(mneme(work.path()).args(["completions", shell]));
        assert!(stdout(&output).contains(marker), "{shell}");
    }
    let bad = run(mneme(work.path()).args(["completions", "tcsh"]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("possible values: bash"),
        "{}",
        stderr(&bad)
    );

    let page = stdout(&run(mneme(work.path()).arg("man")));
    assert!(page.contains(".TH mneme 1"), "{page}");
    assert!(
        page.contains("knowledge base"),
        "the description is the binary's"
    );
    let dir = work.path().join("man1");
    let output = run(mneme(work.path()).arg("man").arg("--dir").arg(&dir));
    assert!(output.status.success(), "{}", stderr(&output));
    for page in [
        "mneme.1",
        "mneme-serve.1",
        "mneme-query.1",
        "mneme-seq-observe.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.starts_with(".ie"), "{page}");
    }
    let serve = std::fs::read_to_string(dir.join("mneme-serve.1")).unwrap();
    assert!(serve.contains("\\-\\-port"), "{serve}");
}

/// The largest file of the index's committed segments with this extension.
fn segment_file(index: &std::path::Path, extension: &str) -> std::path::PathBuf {
    std::fs::read_dir(index)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap_or_else(|| panic!("no .{extension} file in {}", index.display()))
}

#[test]
fn check_finds_damage_and_ingest_rebuild_recovers_the_index() {
    let work = tempfile::tempdir().unwrap();
    sample(work.path());
    assert!(run(mneme(work.path()).arg("ingest")).status.success());
    for symbol in ["a", "b"] {
        let output = run(mneme(work.path()).args(["seq", "observe", "-n", "demo", "-s", symbol]));
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert!(
        run(mneme(work.path()).args(["seq", "learn", "-n", "demo"]))
            .status
            .success()
    );
    let output = run(mneme(work.path()).args(["check", "--json"]));
    assert!(output.status.success(), "{}", stdout(&output));
    let report = json(&output);
    assert_eq!(report["ok"], true);
    let states: Vec<&str> = report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ok", "ok", "missing"]);

    // Bytes flipped in the middle of a segment file: the checksum says so, at open and in
    // `check`, and `ingest --rebuild` moves the index aside and builds it again.
    let index = work.path().join("data/kb");
    let store = segment_file(&index, "store");
    let mut bytes = std::fs::read(&store).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 8] {
        *byte ^= 0x5a;
    }
    std::fs::write(&store, bytes).unwrap();
    let output = run(mneme(work.path()).arg("check"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("DAMAGED  knowledge-base index"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("fail their checksums"),
        "{}",
        stdout(&output)
    );
    let output = run(mneme(work.path()).args(["query", "cache"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("run `mneme ingest --rebuild`"),
        "{}",
        stderr(&output)
    );
    let output = run(mneme(work.path()).args(["ingest", "--rebuild"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("moved it to"),
        "{}",
        stderr(&output)
    );
    assert!(
        run(mneme(work.path()).args(["query", "cache"]))
            .status
            .success()
    );

    // A pattern store truncated to nothing is damaged, not a new empty store.
    let patterns = work.path().join("data/seq/patterns.redb");
    std::fs::write(&patterns, b"").unwrap();
    let output = run(mneme(work.path()).args(["check", "--json"]));
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["stores"][1]["state"], "damaged");
    assert!(
        report["stores"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("truncated")
    );
    let output = run(mneme(work.path()).args(["seq", "predict", "-n", "demo"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is damaged"),
        "{}",
        stderr(&output)
    );
}
