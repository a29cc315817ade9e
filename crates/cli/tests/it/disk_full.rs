//! A full disk under `mneme serve`: the pattern store lives on a small tmpfs (mounted here; the
//! test runs as root, as CI does). A learn that meets ENOSPC fails with a clear error, the
//! server says `unhealthy` and refuses later writes at once (instead of hanging or guessing),
//! SIGTERM still stops it, and after space is freed and a restart every acknowledged pattern
//! is there and the store is whole.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::serve::request;
use crate::{Served, json, mneme, run};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            output.status.success(),
            "this test mounts a small tmpfs to fill it, which needs root (CI runs as root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn stop(mut served: Served) -> String {
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = served.child.wait().unwrap();
    let log = served.drain.join().unwrap();
    assert!(status.success(), "the server stops on SIGTERM:\n{log}");
    log
}

#[test]
fn a_full_disk_fails_learns_clearly_and_loses_nothing_acknowledged() {
    let work = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&work.path().join("small"), "3m");
    let store = disk.0.join("patterns.redb");
    let server = |work: &Path| {
        let mut command = mneme(work);
        command.env("MNEME_SEQ_STORE", &store);
        Served::start(command)
    };
    let served = server(work.path());
    let addr = served.addr.clone();
    let (status, created) = request(&addr, "POST", "/sessions", r#"{"node_id": "full"}"#);
    assert_eq!(status, 200);
    let session = created["session_id"].as_str().unwrap().to_owned();

    // Learn patterns of long symbols until the disk is full.
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for i in 0..5000 {
        let strings: Vec<String> = (0..40)
            .map(|j| format!("{i:05}-{j:02}-{}", "x".repeat(100)))
            .collect();
        let body = serde_json::json!({ "strings": strings }).to_string();
        let (status, _) = request(
            &addr,
            "POST",
            &format!("/sessions/{session}/observe"),
            &body,
        );
        if status != 200 {
            failure = Some((status, "observe".to_owned()));
            break;
        }
        let (status, learned) = request(&addr, "POST", &format!("/sessions/{session}/learn"), "{}");
        if status != 200 {
            failure = Some((status, learned.to_string()));
            break;
        }
        acknowledged.push(learned["pattern_name"].as_str().unwrap().to_owned());
    }
    let (status, answer) = failure.expect("the 3 MB disk never filled");
    assert!(status >= 500, "{status} {answer}");
    assert!(
        answer.contains("No space left on device"),
        "the error names the cause: {answer}"
    );
    assert!(!acknowledged.is_empty());
    let (status, health) = request(&addr, "GET", "/health", "");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("unhealthy")),
        "{health}"
    );
    assert!(
        health["components"]["pattern_engine"]["status"] == "down",
        "{health}"
    );
    // Later writes fail at once, naming the first failure.
    let (status, again) = request(&addr, "POST", &format!("/sessions/{session}/learn"), "{}");
    assert!(status >= 400, "{status} {again}");
    let log = stop(served);

    // Space back (the tmpfs grown), then a restart: the store is whole and holds every
    // acknowledged pattern.
    let output = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&disk.0)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let check = run(mneme(work.path())
        .env("MNEME_SEQ_STORE", &store)
        .args(["check", "--json"]));
    assert!(
        check.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(json(&check)["stores"][1]["state"], "ok");
    let served = server(work.path());
    for name in &acknowledged {
        let (status, pattern) = request(
            &served.addr,
            "GET",
            &format!("/pattern/{name}?node_id=full"),
            "",
        );
        assert_eq!(status, 200, "acknowledged {name} is gone: {pattern}");
    }
    // And the store takes writes again.
    let (_, created) = request(&served.addr, "POST", "/sessions", r#"{"node_id": "full"}"#);
    let session = created["session_id"].as_str().unwrap().to_owned();
    for symbol in ["after", "restart"] {
        let body = serde_json::json!({ "strings": [symbol] }).to_string();
        request(
            &served.addr,
            "POST",
            &format!("/sessions/{session}/observe"),
            &body,
        );
    }
    let (status, learned) = request(
        &served.addr,
        "POST",
        &format!("/sessions/{session}/learn"),
        "{}",
    );
    assert_eq!(status, 200, "{learned}");
    stop(served);
}
