//! `mneme bench --url`: a few workloads against a running `mneme serve`, over keep-alive
//! connections from this process, on loopback only, bounded in requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mneme_app::bench::{HttpRun, Latency, Progress};

/// Where to send requests.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub api_key: Option<String>,
}

impl Target {
    /// `http://HOST:PORT` with HOST on loopback (load tests never leave the machine).
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("--url {url:?}: only http:// URLs are supported"))?;
        let host = rest.split('/').next().unwrap_or_default().to_owned();
        let with_port = if host.contains(':') {
            host.clone()
        } else {
            format!("{host}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("--url {url:?}: cannot resolve {host}"))?
            .next()
            .with_context(|| format!("--url {url:?}: {host} has no address"))?;
        if !addr.ip().is_loopback() {
            bail!(
                "--url {url:?}: load is only ever sent to this machine (127.0.0.1, ::1 or localhost)"
            );
        }
        let api_key = std::env::var("KB_API_KEY").ok().and_then(|keys| {
            keys.split(',')
                .map(str::trim)
                .find(|k| !k.is_empty())
                .map(str::to_owned)
        });
        Ok(Target {
            addr,
            host,
            api_key,
        })
    }
}

/// One keep-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
    target: Target,
}

impl Client {
    fn connect(target: &Target) -> anyhow::Result<Client> {
        let stream = TcpStream::connect_timeout(&target.addr, Duration::from_secs(5))
            .with_context(|| {
                format!("connecting to {} (is `mneme serve` running?)", target.addr)
            })?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(stream),
            target: target.clone(),
        })
    }

    /// Sends a request; returns the status and body.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.target.host);
        if let Some(key) = &self.target.api_key {
            head.push_str(&format!("X-API-Key: {key}\r\n"));
        }
        let body = body.unwrap_or("");
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line)?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP response: {status_line:?}"))?;
        let mut length = None;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.context("the response has no Content-Length")?;
        let mut bytes = vec![0; length];
        self.reader.read_exact(&mut bytes)?;
        Ok((status, bytes))
    }
}

/// One request on a connection of its own (for commands the CLI sends to a running server).
pub fn request(
    target: &Target,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    Client::connect(target)?.call(method, path, Some(body))
}

/// A request template for worker `w`'s `i`-th request.
type Make<'a> = dyn Fn(usize, usize) -> (String, String, Option<String>) + Sync + 'a;

fn run(
    target: &Target,
    name: &str,
    connections: usize,
    requests: usize,
    make: &Make<'_>,
) -> anyhow::Result<HttpRun> {
    let per_worker = requests.div_ceil(connections).max(1);
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Vec<Duration>, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|w| {
                scope.spawn(move || -> anyhow::Result<(Vec<Duration>, u64)> {
                    let mut client = Client::connect(target)?;
                    let mut samples = Vec::with_capacity(per_worker);
                    let mut errors = 0;
                    for i in 0..per_worker {
                        let (method, path, body) = make(w, i);
                        let t = Instant::now();
                        let (status, _) = client.call(&method, &path, body.as_deref())?;
                        samples.push(t.elapsed());
                        if status >= 400 {
                            errors += 1;
                        }
                    }
                    Ok((samples, errors))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    let mut errors = 0;
    for result in results {
        let (s, e) = result?;
        samples.extend(s);
        errors += e;
    }
    Ok(HttpRun {
        name: name.to_owned(),
        connections,
        requests: samples.len(),
        requests_per_second: (samples.len() as f64 / elapsed.max(1e-9)).round(),
        errors,
        latency: Latency {
            histogram: Vec::new(),
            histogram_edges_ms: Vec::new(),
            ..Latency::of(&samples)
        },
    })
}

fn session(target: &Target, node: &str) -> anyhow::Result<String> {
    let mut client = Client::connect(target)?;
    let (status, body) = client.call(
        "POST",
        "/sessions",
        Some(&format!("{{\"node_id\":\"{node}\"}}")),
    )?;
    if status != 200 {
        bail!(
            "creating a KATO session answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    value["session_id"]
        .as_str()
        .map(str::to_owned)
        .context("no session_id in the answer")
}

const QUERIES: &[&str] = &[
    "cache latency",
    "query index",
    "server request",
    "memory thread",
    "vector search",
];

/// The HTTP workloads at 1 and 8 connections.
pub fn measure(
    target: &Target,
    requests: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<HttpRun>> {
    let mut out = Vec::new();
    let concurrency = [1usize, 8];
    progress.phase("HTTP", 8);
    let health: &Make<'_> = &|_, _| ("GET".into(), "/api/v1/health".into(), None);
    let query: &Make<'_> = &|w, i| {
        let q = QUERIES[(w + i) % QUERIES.len()];
        (
            "POST".into(),
            "/api/v1/query".into(),
            Some(format!(
                "{{\"query\":\"{q}\",\"use_cache\":false,\"limit\":10}}"
            )),
        )
    };
    for &c in &concurrency {
        out.push(run(target, "GET /api/v1/health", c, requests, health)?);
        progress.step();
        out.push(run(
            target,
            "POST /api/v1/query (uncached)",
            c,
            requests,
            query,
        )?);
        progress.step();
    }
    // KATO: each connection observes into its own session (cleared every 3 events) and asks
    // for predictions.
    let sessions: Vec<String> = (0..8)
        .map(|_| session(target, "mneme_bench"))
        .collect::<anyhow::Result<_>>()?;
    let observe = |w: usize, i: usize| {
        if i % 4 == 3 {
            (
                "POST".to_owned(),
                format!("/sessions/{}/clear-stm", sessions[w]),
                None,
            )
        } else {
            (
                "POST".to_owned(),
                format!("/sessions/{}/observe", sessions[w]),
                Some(format!(
                    "{{\"strings\":[\"s{}\",\"t{}\"]}}",
                    i % 50,
                    (i * 7) % 50
                )),
            )
        }
    };
    let predict = |w: usize, _i: usize| {
        (
            "GET".to_owned(),
            format!("/sessions/{}/predictions", sessions[w]),
            None,
        )
    };
    for &c in &concurrency {
        out.push(run(
            target,
            "KATO observe (+clear-stm every 4th)",
            c,
            requests,
            &observe,
        )?);
        progress.step();
        out.push(run(target, "KATO predictions", c, requests / 4, &predict)?);
        progress.step();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(Target::parse("http://127.0.0.1:8000").is_ok());
        assert!(Target::parse("http://localhost:8000/").is_ok());
        let remote = Target::parse("http://10.1.2.3:8000")
            .unwrap_err()
            .to_string();
        assert!(
            remote.contains("only ever sent to this machine"),
            "{remote}"
        );
        assert!(Target::parse("https://127.0.0.1").is_err());
    }
}
