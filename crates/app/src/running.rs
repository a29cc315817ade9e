//! Which `mneme serve` holds a data directory: the server records its pid and address in
//! `<data_dir>/serve.json` while it runs, so that other commands on the same data directory
//! (whose stores it holds open) can send their work to it or say who holds them.

use std::path::{Path, PathBuf};

/// A running server, as recorded in its data directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunningServer {
    pub pid: u32,
    /// `http://127.0.0.1:PORT` (loopback when the server listens on every address).
    pub url: String,
}

fn record_path(data_dir: &Path) -> PathBuf {
    data_dir.join("serve.json")
}

/// The server recorded in `data_dir`, if its process is still alive (a server killed with
/// kill -9 leaves its record behind; a dead pid is ignored).
pub fn find(data_dir: &Path) -> Option<RunningServer> {
    let text = std::fs::read_to_string(record_path(data_dir)).ok()?;
    let server: RunningServer = serde_json::from_str(&text).ok()?;
    alive(server.pid).then_some(server)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The record of this process's server; removed when dropped (at shutdown).
#[derive(Debug)]
pub struct Record {
    path: PathBuf,
    pid: u32,
}

/// Records this process as the server of `data_dir`, reachable at `url`.
pub fn record(data_dir: &Path, url: &str) -> std::io::Result<Record> {
    let pid = std::process::id();
    let path = record_path(data_dir);
    let text = serde_json::to_string(&RunningServer {
        pid,
        url: url.to_owned(),
    })
    .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Record { path, pid })
}

impl Drop for Record {
    fn drop(&mut self) {
        // Only our own record: a later server may have replaced it.
        if find_at(&self.path).is_some_and(|s| s.pid == self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn find_at(path: &Path) -> Option<RunningServer> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_found_while_it_lives_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find(dir.path()), None);
        let record = record(dir.path(), "http://127.0.0.1:1234").unwrap();
        let found = find(dir.path()).unwrap();
        assert_eq!(found.url, "http://127.0.0.1:1234");
        assert_eq!(found.pid, std::process::id());
        drop(record);
        assert_eq!(find(dir.path()), None);
        assert!(!dir.path().join("serve.json").exists());
    }

    #[test]
    fn the_record_of_a_dead_process_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let dead = RunningServer {
            pid: u32::MAX - 1,
            url: "http://127.0.0.1:1".into(),
        };
        std::fs::write(
            dir.path().join("serve.json"),
            serde_json::to_string(&dead).unwrap(),
        )
        .unwrap();
        assert_eq!(find(dir.path()), None);
    }
}
