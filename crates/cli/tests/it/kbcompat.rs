//! The binary started as `knowledgebeast` (a symbolic link): KnowledgeBeast's CLI on mneme.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{json, mneme, run, stderr, stdout, write_files};

/// A `knowledgebeast` link to the mneme binary in `work`, run with the environment of
/// [`mneme`].
fn knowledgebeast(work: &Path) -> Command {
    let link: PathBuf = work.join("bin/knowledgebeast");
    if !link.exists() {
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mneme"), &link).unwrap();
    }
    let template = mneme(work);
    let mut command = Command::new(&link);
    command.current_dir(work).env_clear();
    for (key, value) in template.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command
}

fn documents(work: &Path) -> u64 {
    let output = run(mneme(work).args(["stats", "--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    json(&output)["documents"].as_u64().unwrap()
}

#[test]
fn knowledgebeasts_commands_run_on_mneme() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let output = run(knowledgebeast(work).args(["init", "kb", "--name", "demo"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(work.join("kb").is_dir());
    assert!(
        stderr(&output).contains("Knowledge base \"demo\" in kb"),
        "{}",
        stderr(&output)
    );
    write_files(
        &work.join("kb"),
        &[
            (
                "cache.md",
                "# Cache\n\nThe cache keeps hot answers for repeated questions.",
            ),
            (
                "deep/ingest.md",
                "# Ingest\n\nIngest reads files and indexes them.",
            ),
        ],
    );
    // `add DIR` reads the files directly in DIR; -r the subdirectories too.
    let output = run(knowledgebeast(work).args(["add", "kb"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(documents(work), 1);
    let output = run(knowledgebeast(work).args(["add", "kb", "-r"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(documents(work), 2);

    let output = run(knowledgebeast(work).args(["query", "cache", "-n", "1"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("cache.md"), "{}", stdout(&output));
    let output =
        run(knowledgebeast(work).args(["-v", "query", "ingest", "--top-k", "2", "--no-cache"]));
    assert!(
        stderr(&output)
            .contains("running mneme --log-level debug query ingest --limit 2 --no-cache"),
        "{}",
        stderr(&output)
    );
    let output = run(knowledgebeast(work).args(["stats", "--detailed"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(knowledgebeast(work).args(["clear-cache", "-y"]));
    assert!(
        stdout(&output).contains("Cache cleared"),
        "{}",
        stdout(&output)
    );

    // clear asks first; without a terminal it needs --yes.
    let output = run(knowledgebeast(work).arg("clear"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("pass --yes to confirm"),
        "{}",
        stderr(&output)
    );
    assert_eq!(documents(work), 2);
    let output = run(knowledgebeast(work).args(["clear", "--yes"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("2 documents removed"),
        "{}",
        stdout(&output)
    );
    assert_eq!(documents(work), 0);
    let output = run(knowledgebeast(work).args(["ingest", "kb/cache.md"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(documents(work), 1);
}

#[test]
fn what_knowledgebeast_had_and_mneme_does_not_is_said_plainly() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let output = run(knowledgebeast(work).args(["migrate", "--from", "term", "--to", "vector"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("migrate is not supported"),
        "{}",
        stderr(&output)
    );
    let output = run(knowledgebeast(work).args(["heartbeat", "status"]));
    assert!(output.status.success());
    assert!(stdout(&output).contains("no heartbeat runs in the background"));
    let output = run(knowledgebeast(work).args(["heartbeat", "start", "-i", "1"]));
    assert_eq!(output.status.code(), Some(2));
    let output = run(knowledgebeast(work).arg("--help"));
    assert!(stdout(&output).contains("KnowledgeBeast's command line, run by mneme"));
    let output = run(knowledgebeast(work).arg("version"));
    assert!(stdout(&output).contains("mneme"), "{}", stdout(&output));
    let output = run(knowledgebeast(work).arg("project"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unrecognized subcommand"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn heartbeat_start_reindexes_the_knowledge_dirs_in_the_foreground() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    write_files(&work.join("docs"), &[("a.md", "# A\n\nFirst document.")]);
    let mut child = knowledgebeast(work)
        .args(["heartbeat", "start", "--interval", "10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let indexed = loop {
        let output = run(mneme(work).args(["stats", "--json"]));
        if output.status.success() && json(&output)["documents"] == 1 {
            break true;
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(indexed, "{}", String::from_utf8_lossy(&output.stderr));
    assert!(still_running, "the heartbeat keeps running until stopped");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("re-indexing the knowledge dirs every 10 s")
    );
}
