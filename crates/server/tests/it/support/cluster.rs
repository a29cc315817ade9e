//! A real cluster for the tests: `scripts/cluster up DIR N` (a fresh PostgreSQL, a Redis and N
//! `mneme serve` nodes of this build, all on 127.0.0.1), stopped by pid when dropped. A
//! cluster that cannot start fails the test with the script's own words.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{Reply, try_http};

pub struct Cluster {
    dir: tempfile::TempDir,
    pub nodes: Vec<SocketAddr>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `mneme` binary of this build (cargo builds it beside the test binaries).
pub fn mneme_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("mneme"))
        .unwrap();
    assert!(
        bin.exists(),
        "the cluster tests run the mneme binary, expected at {} (cargo build --workspace builds it)",
        bin.display()
    );
    bin
}

/// `scripts/cluster ACTION DIR` with this build's binary and KATO's recorded settings.
fn script_command(action: &str, dir: &Path) -> Command {
    let mut command = Command::new(root().join("scripts/cluster"));
    command
        .arg(action)
        .arg(dir)
        .env("MNEME_BIN", mneme_bin())
        .env("MNEME_SEQ_VECTOR_NEIGHBOURS", "0")
        .env("RUST_LOG", "warn");
    command
}

impl Cluster {
    /// `n` nodes with KATO's recorded settings plus `env`.
    pub fn up(n: usize, env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut command = script_command("up", dir.path());
        command.arg(n.to_string());
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().expect("running scripts/cluster");
        let mut cluster = Cluster {
            dir,
            nodes: Vec::new(),
        };
        assert!(
            output.status.success(),
            "scripts/cluster up failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let nodes = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|url| url.trim_start_matches("http://").parse().unwrap())
            .collect::<Vec<SocketAddr>>();
        assert_eq!(nodes.len(), n, "one URL per node on stdout");
        cluster.nodes = nodes;
        cluster
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `scripts/cluster ACTION DIR [ARGS]`, failing the test with its stderr.
    pub fn script(&self, action: &str, args: &[&str]) {
        let output = script_command(action, self.dir())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "scripts/cluster {action} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `psql -c SQL` against the cluster's database; its stdout.
    pub fn sql(&self, sql: &str) -> String {
        let env = std::fs::read_to_string(self.dir().join("env")).unwrap();
        let url = env
            .lines()
            .find_map(|line| line.strip_prefix("MNEME_POSTGRES_URL="))
            .unwrap()
            .to_owned();
        let output = Command::new("/usr/lib/postgresql/15/bin/psql")
            .args(["-At", "-v", "ON_ERROR_STOP=1", &url, "-c", sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn call(&self, node: usize, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.try_call(node, method, path, body)
            .unwrap_or_else(|err| panic!("{method} {path} on node {node}: {err}"))
    }

    /// [`Cluster::call`], with a node that is gone (killed) or a reply cut off as an error.
    pub fn try_call(
        &self,
        node: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<Reply> {
        let payload = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
        try_http(
            self.nodes[node % self.nodes.len()],
            method,
            path,
            &[("content-type", "application/json")],
            &payload,
        )
    }

    /// A call's JSON answer, asserting `200`.
    pub fn json(&self, node: usize, method: &str, path: &str, body: Option<&Value>) -> Value {
        let reply = self.call(node, method, path, body);
        assert_eq!(
            reply.status,
            200,
            "{method} {path} on node {node}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        serde_json::from_slice(&reply.body).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/cluster"))
            .arg("down")
            .arg(self.dir())
            .output();
    }
}

/// A header of a reply, by its lower-case name.
pub fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A refusal of a store outage: 503 with `Retry-After`.
pub fn assert_unavailable(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        503,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        header(reply, "retry-after").is_some(),
        "{what}: a 503 carries Retry-After, headers {:?}",
        reply.headers
    );
}

/// Polls `check` every 100 ms until it holds; fails after `limit` saying `what`.
pub fn eventually(limit: std::time::Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
