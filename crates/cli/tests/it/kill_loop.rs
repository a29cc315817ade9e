//! The kill -9 drill: `mneme serve` under a steady load of learns (four clients, each its own
//! session) is killed with SIGKILL at varied moments, five times over one data directory.
//! After each kill the store checks whole and every learn the server acknowledged is served
//! by the restarted server; a learn cut off by the kill may or may not be there.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::serve::{request, try_request};
use crate::{Served, json, mneme, run};

/// Learns distinct two-event patterns on its own session until the server goes away; every
/// acknowledged pattern name goes into `acknowledged`.
fn learner(
    addr: String,
    client: usize,
    round: usize,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
) {
    let Some((200, created)) = try_request(&addr, "POST", "/sessions", r#"{"node_id": "drill"}"#)
    else {
        return;
    };
    let session = created["session_id"].as_str().unwrap().to_owned();
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        for part in ["a", "b"] {
            let body = format!(r#"{{"strings": ["r{round}c{client}n{i}{part}"]}}"#);
            match try_request(
                &addr,
                "POST",
                &format!("/sessions/{session}/observe"),
                &body,
            ) {
                Some((200, _)) => {}
                _ => return,
            }
        }
        match try_request(&addr, "POST", &format!("/sessions/{session}/learn"), "{}") {
            Some((200, learned)) => acknowledged
                .lock()
                .unwrap()
                .push(learned["pattern_name"].as_str().unwrap().to_owned()),
            _ => return,
        }
    }
}

fn verify(work: &Path, acknowledged: &[String]) {
    // The store is whole (checked with the server down)...
    let check = run(mneme(work).args(["check", "--json"]));
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(json(&check)["stores"][1]["state"], "ok");
    // ...and every acknowledged learn is served after a restart.
    let served = Served::start(mneme(work));
    for name in acknowledged {
        let (status, pattern) = request(
            &served.addr,
            "GET",
            &format!("/pattern/{name}?node_id=drill"),
            "",
        );
        assert_eq!(
            status, 200,
            "acknowledged {name} is gone after a kill -9: {pattern}"
        );
    }
    let mut child = served.child;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn kill_9_under_load_never_loses_an_acknowledged_learn() {
    let work = tempfile::tempdir().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    // Varied moments of the load: early (sessions being created), mid-stream, later.
    for (round, delay_ms) in [150u64, 400, 700, 250, 900].into_iter().enumerate() {
        let served = Served::start(mneme(work.path()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|client| {
                let (addr, stop, acknowledged) =
                    (served.addr.clone(), stop.clone(), acknowledged.clone());
                std::thread::spawn(move || learner(addr, client, round, stop, acknowledged))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mut child = served.child;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let names = acknowledged.lock().unwrap().clone();
        verify(work.path(), &names);
    }
    let learned = acknowledged.lock().unwrap().len();
    assert!(learned > 0, "no learn was acknowledged in five rounds");
    eprintln!("kill -9 drill: {learned} acknowledged learns, 5 kills, none lost");
}
