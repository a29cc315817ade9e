//! Cluster mode, pattern engine: real PostgreSQL, Redis and `mneme serve` nodes started by
//! `scripts/cluster` (see `support::cluster`). Sessions and patterns are shared by every node,
//! concurrent writers lose nothing, and each failure (a node killed with -9, PostgreSQL
//! restarted or stopped, the change feed's connection terminated, Redis stopped) has the
//! behaviour docs/cluster.md promises. No timing is asserted beyond "within a bound that only
//! a hang would exceed".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Reply;
use crate::support::cluster::{Cluster, assert_unavailable, eventually, header, mneme_bin};

fn create(cluster: &Cluster, node: usize, node_id: &str, config: Value) -> String {
    let created = cluster.json(
        node,
        "POST",
        "/sessions",
        Some(&json!({"node_id": node_id, "config": config})),
    );
    created["session_id"].as_str().unwrap().to_owned()
}

fn observe(cluster: &Cluster, node: usize, sid: &str, strings: &[&str]) {
    cluster.json(
        node,
        "POST",
        &format!("/sessions/{sid}/observe"),
        Some(&json!({ "strings": strings })),
    );
}

fn learn(cluster: &Cluster, node: usize, sid: &str) -> String {
    let learned = cluster.json(node, "POST", &format!("/sessions/{sid}/learn"), None);
    learned["pattern_name"].as_str().unwrap().to_owned()
}

fn pattern_path(name: &str, node_id: &str) -> String {
    format!("/pattern/{}?node_id={node_id}", name.replace('|', "%7C"))
}

fn frequency(cluster: &Cluster, node: usize, name: &str, node_id: &str) -> Option<u64> {
    let reply = cluster.call(node, "GET", &pattern_path(name, node_id), None);
    match reply.status {
        200 => reply.json()["pattern"]["pattern"]["frequency"].as_u64(),
        404 => None,
        status => panic!(
            "GET pattern {name} on node {node}: {status} {}",
            String::from_utf8_lossy(&reply.body)
        ),
    }
}

/// The predicted patterns' names, as `learn` names them (`PTRN|` and the hash).
fn predicted_names(cluster: &Cluster, node: usize, sid: &str) -> Vec<String> {
    let answer = cluster.json(node, "GET", &format!("/sessions/{sid}/predictions"), None);
    answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("PTRN|{}", p["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn a_session_and_its_patterns_are_served_by_every_node() {
    let cluster = Cluster::up(3, &[]);

    // A session observed on node A is continued on B and C.
    let sid = create(&cluster, 0, "shared", json!({"max_pattern_length": 0}));
    observe(&cluster, 0, &sid, &["a"]);
    observe(&cluster, 1, &sid, &["b"]);
    observe(&cluster, 2, &sid, &["c"]);
    let stm = cluster.json(1, "GET", &format!("/sessions/{sid}/stm"), None);
    assert_eq!(stm["stm"], json!([["a"], ["b"], ["c"]]));

    // A learn on A is predicted on B at once (no wait: the consistency check catches up).
    let name = learn(&cluster, 0, &sid);
    assert!(name.starts_with("PTRN|"), "{name}");
    let other = create(&cluster, 1, "shared", json!({}));
    observe(&cluster, 1, &other, &["a"]);
    observe(&cluster, 1, &other, &["b"]);
    assert_eq!(predicted_names(&cluster, 1, &other), vec![name.clone()]);
    assert_eq!(frequency(&cluster, 2, &name, "shared"), Some(1));

    // 16 concurrent clients on one session, spread over the three nodes, lose no event.
    let crowd = create(&cluster, 2, "crowd", json!({"max_pattern_length": 0}));
    const CLIENTS: usize = 16;
    const EVENTS: usize = 10;
    thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (cluster, crowd) = (&cluster, &crowd);
            scope.spawn(move || {
                for event in 0..EVENTS {
                    let symbol = format!("c{client}e{event}");
                    observe(cluster, client + event, crowd, &[&symbol]);
                }
            });
        }
    });
    let stm = cluster.json(0, "GET", &format!("/sessions/{crowd}/stm"), None);
    let mut seen: Vec<String> = stm["stm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen.len(), CLIENTS * EVENTS, "every event kept, once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), CLIENTS * EVENTS, "no event twice");
    // Each client's own events stay in its order.
    for client in 0..CLIENTS {
        let prefix = format!("c{client}e");
        let order: Vec<usize> = stm["stm"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| {
                event[0]
                    .as_str()
                    .unwrap()
                    .strip_prefix(&prefix)?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(order, (0..EVENTS).collect::<Vec<_>>(), "client {client}");
    }

    // K concurrent identical learns, from K sessions on the three nodes, give frequency K.
    const K: usize = 9;
    let sessions: Vec<String> = (0..K)
        .map(|i| {
            let sid = create(&cluster, i, "same", json!({}));
            observe(&cluster, i, &sid, &["k1"]);
            observe(&cluster, i, &sid, &["k2", "k3"]);
            sid
        })
        .collect();
    let barrier = Barrier::new(K);
    let names: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter()
            .enumerate()
            .map(|(i, sid)| {
                let (cluster, barrier) = (&cluster, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    learn(cluster, i, sid)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(names.iter().all(|n| n == &names[0]), "{names:?}");
    for node in 0..3 {
        assert_eq!(frequency(&cluster, node, &names[0], "same"), Some(K as u64));
    }

    // Every node reports the same statistics.
    let stats: Vec<Value> = (0..3)
        .map(|node| {
            cluster.json(node, "GET", "/symbols/stats?node_id=same", None)["symbols"].clone()
        })
        .collect();
    assert_eq!(stats[0]["k1"]["frequency"], json!(K));
    assert_eq!(stats[0], stats[1]);
    assert_eq!(stats[1], stats[2]);
}

/// What a learning client saw: the names acknowledged (200), once each.
#[derive(Default)]
struct Acknowledged {
    names: Mutex<BTreeMap<String, usize>>,
    failures: AtomicUsize,
    /// Learns cut off after they committed (their retry found the STM empty).
    committed_unacknowledged: AtomicUsize,
    /// (status, Retry-After, body) of every answer that was not 200.
    refusals: Mutex<Vec<(u16, Option<String>, String)>>,
}

/// Learns distinct patterns, each from a fresh session, on nodes `nodes` in turn until `stop`.
/// A call that finds its node gone (killed) or is cut off is tried again on the next node; a
/// learn cut off is tried again too: a learn that did commit before its node died cleared
/// the session's STM, so its retry answers 400 "Cannot learn from empty STM" and the pattern
/// is not learned twice (its name was never acknowledged, so it is not counted). A refusal
/// (503) is retried after a pause.
fn learner(
    cluster: &Cluster,
    client: usize,
    nodes: &[usize],
    stop: &AtomicBool,
    seen: &Acknowledged,
) {
    let mut turn = client;
    let mut round = 0;
    // One step, tried on the next node until some node answers 200 (None: the drill ended).
    // After a cut-off try, `committed` is the answer that says the cut-off try took effect.
    let mut step = |method: &str,
                    path: &str,
                    body: Option<&Value>,
                    committed: Option<(u16, &str)>|
     -> Option<Reply> {
        let mut cut_off = false;
        while !stop.load(Ordering::Relaxed) {
            turn += 1;
            match cluster
                .try_call(nodes[turn % nodes.len()], method, path, body)
                .ok()
            {
                Some(reply) if reply.status == 200 => return Some(reply),
                Some(reply)
                    if cut_off
                        && committed.is_some_and(|(status, text)| {
                            reply.status == status
                                && String::from_utf8_lossy(&reply.body).contains(text)
                        }) =>
                {
                    return Some(reply);
                }
                Some(reply) => {
                    let retry_after = header(&reply, "retry-after").map(str::to_owned);
                    let text = String::from_utf8_lossy(&reply.body).into_owned();
                    seen.refusals
                        .lock()
                        .unwrap()
                        .push((reply.status, retry_after, text));
                    thread::sleep(Duration::from_millis(50));
                }
                None => {
                    cut_off = true;
                    seen.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        None
    };
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let Some(created) = step(
            "POST",
            "/sessions",
            Some(&json!({"node_id": "drill"})),
            None,
        ) else {
            return;
        };
        let sid = created.json()["session_id"].as_str().unwrap().to_owned();
        // Two symbols of this round only: every pattern of the drill is its own.
        for symbol in [format!("l{client}r{round}a"), format!("l{client}r{round}b")] {
            let body = json!({ "strings": [symbol] });
            if step(
                "POST",
                &format!("/sessions/{sid}/observe"),
                Some(&body),
                None,
            )
            .is_none()
            {
                return;
            }
        }
        let learn = format!("/sessions/{sid}/learn");
        let empty = (400, "Cannot learn from empty STM");
        let Some(reply) = step("POST", &learn, None, Some(empty)) else {
            return;
        };
        if reply.status != 200 {
            seen.committed_unacknowledged
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let name = reply.json()["pattern_name"].as_str().unwrap().to_owned();
        if !name.is_empty() {
            *seen.names.lock().unwrap().entry(name).or_default() += 1;
        }
    }
}

/// Every acknowledged pattern is present with frequency 1 (each was learned once, however
/// often its learn was tried), on every node given.
fn assert_each_learned_once(cluster: &Cluster, nodes: &[usize], seen: &Acknowledged) {
    let names = seen.names.lock().unwrap();
    assert!(!names.is_empty(), "the drill acknowledged no learn at all");
    for (name, times) in names.iter() {
        assert_eq!(*times, 1, "{name} acknowledged {times} times");
        for &node in nodes {
            assert_eq!(
                frequency(cluster, node, name, "drill"),
                Some(1),
                "{name} on node {node}"
            );
        }
    }
    for refusal in seen.refusals.lock().unwrap().iter() {
        assert_eq!(
            refusal.0, 503,
            "a store outage is answered 503, got {refusal:?}"
        );
        assert!(refusal.1.is_some(), "a 503 carries Retry-After");
    }
}

fn run_drill(
    cluster: &Cluster,
    clients: usize,
    nodes: &[usize],
    during: impl FnOnce(&Acknowledged),
) -> Acknowledged {
    /// Ends the drill however `during` ends (a failed check must not leave the clients
    /// running: the scope would wait for them forever).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let seen = Acknowledged::default();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let _stop = Stop(&stop);
        for client in 0..clients {
            let (seen, stop) = (&seen, &stop);
            scope.spawn(move || learner(cluster, client, nodes, stop, seen));
        }
        during(&seen);
    });
    seen
}

fn acknowledged(seen: &Acknowledged) -> usize {
    seen.names.lock().unwrap().len()
}

#[test]
fn a_node_killed_with_sigkill_during_learns_loses_no_acknowledged_pattern() {
    let cluster = Cluster::up(3, &[]);
    let seen = run_drill(&cluster, 6, &[0, 1, 2], |seen| {
        eventually(Duration::from_secs(60), "learns before the kill", || {
            acknowledged(seen) >= 20
        });
        // Node 2 (scripts/cluster counts from 1) dies mid-request.
        cluster.script("node-kill", &["2"]);
        let at_kill = acknowledged(seen);
        eventually(Duration::from_secs(60), "learns after the kill", || {
            acknowledged(seen) >= at_kill + 20
        });
        cluster.script("node-start", &["2"]);
        let at_restart = acknowledged(seen);
        eventually(Duration::from_secs(60), "learns after the restart", || {
            acknowledged(seen) >= at_restart + 10
        });
    });
    assert_each_learned_once(&cluster, &[0, 1, 2], &seen);
}

#[test]
fn postgres_restarted_under_load_refuses_writes_with_retry_after_and_loses_nothing() {
    let cluster = Cluster::up(3, &[]);
    // A session with a learned pattern, to read while PostgreSQL is away.
    let sid = create(&cluster, 0, "reads", json!({}));
    observe(&cluster, 0, &sid, &["r1"]);
    observe(&cluster, 0, &sid, &["r2"]);
    let name = learn(&cluster, 0, &sid);
    observe(&cluster, 1, &sid, &["r1"]);
    observe(&cluster, 1, &sid, &["r2"]);

    let seen = run_drill(&cluster, 4, &[0, 1, 2], |seen| {
        eventually(Duration::from_secs(60), "learns before the restart", || {
            acknowledged(seen) >= 20
        });
        cluster.script("pg-restart", &[]);
        let at_restart = acknowledged(seen);
        eventually(Duration::from_secs(60), "learns after the restart", || {
            acknowledged(seen) >= at_restart + 20
        });
    });
    assert_each_learned_once(&cluster, &[0, 1, 2], &seen);

    // PostgreSQL down: reads answer from the replicas, writes 503 with Retry-After, and
    // /health says degraded with the replication lag. (A node that never loaded the
    // session's node has no replica to answer from: every node loads it first.)
    for node in 0..3 {
        predicted_names(&cluster, node, &sid);
    }
    cluster.script("pg-stop", &[]);
    for node in 0..3 {
        assert_eq!(
            predicted_names(&cluster, node, &sid),
            vec![name.clone()],
            "node {node}"
        );
        let reply = cluster.call(node, "POST", &format!("/sessions/{sid}/learn"), None);
        assert_unavailable(&reply, "a learn while PostgreSQL is down");
    }
    eventually(Duration::from_secs(30), "health degraded", || {
        let health = cluster.call(1, "GET", "/health", None).json();
        health["status"] == "degraded" && health["cluster"]["postgres"]["status"] == "degraded"
    });
    let health = cluster.call(1, "GET", "/health", None).json();
    assert!(
        health["cluster"]["postgres"]["replication_lag_ms"].is_u64(),
        "{health}"
    );
    assert!(
        health["cluster"]["postgres"]["error"].is_string(),
        "{health}"
    );
    // The session was not changed by the refused learn.
    let stm = cluster.json(2, "GET", &format!("/sessions/{sid}/stm"), None);
    assert_eq!(stm["stm"], json!([["r1"], ["r2"]]));

    // Back: the nodes reconnect by themselves and the same learn goes through.
    cluster.script("pg-start", &[]);
    eventually(
        Duration::from_secs(60),
        "a learn after PostgreSQL came back",
        || {
            cluster
                .call(2, "POST", &format!("/sessions/{sid}/learn"), None)
                .status
                == 200
        },
    );
    assert_eq!(frequency(&cluster, 0, &name, "reads"), Some(2));
    eventually(Duration::from_secs(30), "health back to healthy", || {
        cluster.call(0, "GET", "/health", None).json()["cluster"]["postgres"]["status"] == "up"
    });
}

#[test]
fn a_terminated_change_feed_reconnects_and_the_poll_keeps_replicas_current() {
    // With a staleness bound the replicas rely on the feed (and its poll) to stay current.
    let cluster = Cluster::up(3, &[("MNEME_MAX_STALENESS_MS", "60000")]);
    let sid = create(&cluster, 0, "feed", json!({}));
    observe(&cluster, 1, &sid, &["f1"]);
    // Every node serves the node (loading its replica) before the feed goes.
    for node in 0..3 {
        cluster.json(node, "GET", "/symbols/stats?node_id=feed", None);
    }
    let feeds = || {
        cluster
            .sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mneme-feed'")
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    eventually(Duration::from_secs(30), "one feed per node", || {
        feeds() == 3
    });
    let terminated = cluster.sql(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'mneme-feed') t",
    );
    assert_eq!(terminated.trim(), "3");
    // A learn on node 0 right away (perhaps before any feed is back) reaches the others.
    observe(&cluster, 0, &sid, &["f2"]);
    let name = learn(&cluster, 0, &sid);
    for node in 1..3 {
        eventually(
            Duration::from_secs(30),
            "the learn reaching a replica",
            || frequency(&cluster, node, &name, "feed") == Some(1),
        );
    }
    eventually(Duration::from_secs(30), "the feeds reconnected", || {
        feeds() == 3
    });
    // And the reconnected feeds carry the next learn.
    let again = create(&cluster, 2, "feed", json!({}));
    observe(&cluster, 2, &again, &["g1"]);
    observe(&cluster, 2, &again, &["g2"]);
    let second = learn(&cluster, 2, &again);
    for node in 0..2 {
        eventually(
            Duration::from_secs(30),
            "the second learn reaching a replica",
            || frequency(&cluster, node, &second, "feed") == Some(1),
        );
    }
}

#[test]
fn redis_stopped_refuses_session_routes_with_retry_after_while_the_rest_serves() {
    let cluster = Cluster::up(2, &[]);
    let sid = create(&cluster, 0, "outage", json!({}));
    observe(&cluster, 0, &sid, &["o1"]);
    observe(&cluster, 0, &sid, &["o2"]);
    let name = learn(&cluster, 1, &sid);

    cluster.script("redis-stop", &[]);
    for node in 0..2 {
        assert_unavailable(
            &cluster.call(
                node,
                "POST",
                "/sessions",
                Some(&json!({"node_id": "outage"})),
            ),
            "creating a session while Redis is down",
        );
        assert_unavailable(
            &cluster.call(node, "GET", &format!("/sessions/{sid}/stm"), None),
            "reading a session while Redis is down",
        );
        // Everything that needs no session still serves.
        assert_eq!(frequency(&cluster, node, &name, "outage"), Some(1));
        let stats = cluster.json(node, "GET", "/symbols/stats?node_id=outage", None);
        assert_eq!(stats["symbols"]["o1"]["frequency"], 1);
        let health = cluster.call(node, "GET", "/health", None);
        assert_eq!(health.status, 200);
        let health = health.json();
        assert_eq!(health["cluster"]["redis"]["status"], "down", "{health}");
        assert_eq!(health["status"], "degraded", "{health}");
    }

    // Back (an empty Redis: sessions are short-lived state and Redis keeps none on disk
    // here): the nodes reconnect by themselves.
    cluster.script("redis-start", &[]);
    for node in 0..2 {
        eventually(
            Duration::from_secs(30),
            "a session after Redis came back",
            || {
                cluster
                    .call(
                        node,
                        "POST",
                        "/sessions",
                        Some(&json!({"node_id": "outage"})),
                    )
                    .status
                    == 200
            },
        );
    }
    let fresh = create(&cluster, 0, "outage", json!({}));
    observe(&cluster, 1, &fresh, &["o1"]);
    observe(&cluster, 0, &fresh, &["o2"]);
    assert_eq!(predicted_names(&cluster, 1, &fresh), vec![name]);
}

/// `mneme serve` with `env` (and nothing of the caller's cluster settings): its exit status and
/// stderr, or a failure if it is still running after 30 s.
fn serve_fails(env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(mneme_bin());
    command
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--no-ingest"])
        .env_remove("MNEME_POSTGRES_URL")
        .env_remove("MNEME_REDIS_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(!status.success(), "serve should have failed: {stderr}");
            return stderr;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve with {env:?} neither failed nor stopped within 30 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_cluster_settings_stop_the_node_with_an_error_that_says_what_to_fix() {
    let only_one = serve_fails(&[("MNEME_REDIS_URL", "redis://127.0.0.1:1/")]);
    assert!(
        only_one.contains("MNEME_POSTGRES_URL") && only_one.contains("only the Redis URL"),
        "{only_one}"
    );
    let not_a_url = serve_fails(&[
        ("MNEME_POSTGRES_URL", "mysql://nobody"),
        ("MNEME_REDIS_URL", "redis://127.0.0.1:1/"),
    ]);
    assert!(not_a_url.contains("MNEME_POSTGRES_URL"), "{not_a_url}");

    // Reachable stores but the wrong one unreachable: the error names it.
    let cluster = Cluster::up(1, &[]);
    let env = std::fs::read_to_string(cluster.dir().join("env")).unwrap();
    let url = |key: &str| {
        env.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };
    let (postgres, redis) = (url("MNEME_POSTGRES_URL"), url("MNEME_REDIS_URL"));
    let closed = free_port();
    let no_postgres = serve_fails(&[
        (
            "MNEME_POSTGRES_URL",
            &format!("postgres://postgres@127.0.0.1:{closed}/mneme"),
        ),
        ("MNEME_REDIS_URL", &redis),
    ]);
    assert!(
        no_postgres.contains("PostgreSQL") && no_postgres.contains(&closed.to_string()),
        "{no_postgres}"
    );
    let no_redis = serve_fails(&[
        ("MNEME_POSTGRES_URL", &postgres),
        ("MNEME_REDIS_URL", &format!("redis://127.0.0.1:{closed}/")),
    ]);
    assert!(
        no_redis.contains("Redis") && no_redis.contains(&closed.to_string()),
        "{no_redis}"
    );

    // A schema newer than this binary: the node refuses to start rather than misread it.
    cluster.sql("UPDATE mneme_schema SET version = version + 1");
    let newer = serve_fails(&[
        ("MNEME_POSTGRES_URL", &postgres),
        ("MNEME_REDIS_URL", &redis),
    ]);
    assert!(newer.contains("newer than this binary"), "{newer}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
