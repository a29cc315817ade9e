//! `mneme serve` as a real process: it starts on a free port, scans the knowledge dirs in the
//! background, answers both APIs, and on SIGTERM finishes and saves what it acknowledged.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Served, mneme, run, stderr, stdout, write_files};

pub fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    try_request(addr, method, path, body)
        .unwrap_or_else(|| panic!("{method} {path}: no answer from {addr}"))
}

/// One request; `None` when the connection fails or is cut (a server killed mid-request).
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n")?.1;
    Some((
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    ))
}

#[test]
fn serve_answers_both_apis_and_saves_on_sigterm() {
    let work = tempfile::tempdir().unwrap();
    write_files(
        work.path(),
        &[
            ("docs/a.md", "# Alpha\n\nalpha beta gamma\n"),
            ("docs/b.txt", "beta only\n"),
        ],
    );
    let mut command = mneme(work.path());
    // Learns are flushed every minute: only the shutdown flush can save this one.
    command
        .env("MNEME_SEQ_DURABILITY", "periodic")
        .env("MNEME_SEQ_FLUSH_MS", "60000");
    let served = Served::start(command);
    let (mut child, addr, log, drain) = (served.child, served.addr, served.log, served.drain);
    assert!(
        log.contains("NO API KEY CONFIGURED"),
        "an open server says so:\n{log}"
    );

    // The startup scan runs in the background; wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, stats) = request(&addr, "GET", "/api/v1/stats", "");
        if stats["total_documents"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the knowledge dirs were never scanned: {stats}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, hits) = request(&addr, "POST", "/api/v1/query", r#"{"query":"beta"}"#);
    assert_eq!(status, 200);
    assert_eq!(hits["count"], 2);

    let (_, created) = request(&addr, "POST", "/sessions", r#"{"node_id":"served"}"#);
    let id = created["session_id"].as_str().unwrap().to_owned();
    for symbol in ["one", "two"] {
        let (status, _) = request(
            &addr,
            "POST",
            &format!("/sessions/{id}/observe"),
            &format!(r#"{{"strings":["{symbol}"]}}"#),
        );
        assert_eq!(status, 200);
    }
    let (_, learned) = request(&addr, "POST", &format!("/sessions/{id}/learn"), "");
    let name = learned["pattern_name"].as_str().unwrap().to_owned();

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "mneme serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest = drain.join().unwrap();
    assert!(status.success(), "exit {status:?}:\n{rest}");
    assert!(rest.contains("shutting down"), "{rest}");

    // The learn acknowledged before SIGTERM is in the store.
    let output = run(mneme(work.path()).args(["seq", "pattern", "-n", "served", &name]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn serve_refuses_a_busy_port_with_a_clear_message() {
    let work = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run(mneme(work.path()).args(["serve", "--no-ingest", "--port", &port]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    let output = run(mneme(work.path()).args(["serve", "--port", "http"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--port \"http\" is not valid"));
}

#[test]
fn seq_commands_work_alongside_a_running_server_and_answer_the_same() {
    let served_dir = tempfile::tempdir().unwrap();
    let alone_dir = tempfile::tempdir().unwrap();
    let served = Served::start(mneme(served_dir.path()));
    let seq = |dir: &std::path::Path, args: &[&str]| {
        let output = run(mneme(dir).arg("seq").args(args));
        (output.status.code(), stdout(&output), stderr(&output))
    };
    // The same commands on a data directory a server holds (sent to it) and on one nobody
    // holds (run in process) print the same answers.
    let script: &[&[&str]] = &[
        &["observe", "-n", "n", "-s", "a", "-s", "b"],
        &["observe", "-n", "n", "-s", "c", "--emotive", "joy=1"],
        &["learn", "-n", "n"],
        &["observe", "-n", "n", "-s", "a", "-s", "b"],
        &["stm", "-n", "n"],
        &["predict", "-n", "n"],
        &["clear", "-n", "n"],
        &["stm", "-n", "n"],
    ];
    let mut learned = String::new();
    for args in script {
        let (code, out, err) = seq(served_dir.path(), args);
        assert_eq!(code, Some(0), "{args:?} beside the server: {err}");
        if args[0] == "learn" {
            let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
            learned = answer["pattern_name"].as_str().unwrap().to_owned();
        }
        let (alone_code, alone_out, _) = seq(alone_dir.path(), args);
        assert_eq!(alone_code, Some(0));
        assert_eq!(out, alone_out, "{args:?}");
    }
    // The server really did the work: it answers for the learned pattern over HTTP.
    let (status, pattern) = request(
        &served.addr,
        "GET",
        &format!("/pattern/{}?node_id=n", learned.replace('|', "%7C")),
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(pattern["pattern"]["status"], "okay", "{pattern}");
    let (code, _, err) = seq(served_dir.path(), &["pattern", "-n", "n", "PTRN|0000"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not found") && err.contains("mneme serve"),
        "{err}"
    );

    // A second server on the same data directory says who holds it, once.
    let output = run(mneme(served_dir.path()).args(["serve", "--no-ingest", "--port", "0"]));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("already serves the data directory"), "{err}");
    assert_eq!(err.matches("in use by another process").count(), 1, "{err}");

    let mut child = served.child;
    terminate(&mut child);
    // Gone with the server: the record, and commands run in process again.
    assert!(!served_dir.path().join(".mneme/serve.json").exists());
    let (code, out, err) = seq(served_dir.path(), &["stm", "-n", "n"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"length\":0"), "{out}");
}

/// SIGTERM, then wait for the process to finish.
fn terminate(child: &mut std::process::Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let _ = child.wait();
}
