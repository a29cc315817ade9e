//! Test harness for the HTTP server: a server over temporary directories, driven in process
//! through the router (`call`) or over a real socket on 127.0.0.1 (`spawn` + `http`).

#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use mneme_app::config::ServerSettings;
use mneme_app::patterns::{Durability, Patterns};
use mneme_app::projects::Projects;
use mneme_app::{KbSettings, Knowledge};
use mneme_seq::config::Defaults;
use mneme_server::http::{self, ServerState};
use mneme_server::kato::{Api, Options};
use serde_json::Value;
use tower::ServiceExt;

/// An answer, from the router or the socket.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a test server is made of.
pub struct Setup {
    pub kb: KbSettings,
    pub server: ServerSettings,
    pub defaults: Defaults,
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub state: Arc<ServerState>,
    pub router: Router,
    pub runtime: tokio::runtime::Runtime,
}

/// The default settings, rooted in `dir`.
pub fn setup(dir: &Path) -> Setup {
    let config = mneme_app::config::load(None, &|_| None, &[]).unwrap();
    let mut kb = config.kb;
    kb.knowledge_dirs = vec![dir.join("knowledge-base")];
    kb.index_dir = dir.join("data/kb");
    kb.max_workers = 2;
    kb.auto_warm = false;
    let mut server = config.server;
    server.projects_dir = dir.join("data/projects");
    let mut defaults = Defaults::kato();
    defaults.vector_neighbours = 0;
    Setup {
        kb,
        server,
        defaults,
    }
}

pub fn write(path: impl AsRef<Path>, text: &str) {
    let path = path.as_ref();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl TestServer {
    /// A server over a fresh directory with `docs` (relative path, text) in its knowledge dir,
    /// ingested.
    pub fn new(docs: &[(&str, &str)]) -> TestServer {
        TestServer::with(docs, |_| {})
    }

    pub fn with(docs: &[(&str, &str)], tweak: impl FnOnce(&mut Setup)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in docs {
            write(dir.path().join("knowledge-base").join(name), text);
        }
        std::fs::create_dir_all(dir.path().join("knowledge-base")).unwrap();
        let mut setup = setup(dir.path());
        tweak(&mut setup);
        TestServer::open(dir, setup, true)
    }

    /// Opens a server on an existing directory (a restart).
    pub fn open(dir: tempfile::TempDir, setup: Setup, ingest: bool) -> TestServer {
        let knowledge = Knowledge::open(&setup.kb).unwrap();
        if ingest {
            knowledge
                .ingest(
                    &[],
                    mneme_kb::IngestOptions::default(),
                    &mneme_kb::NoProgress,
                )
                .unwrap();
        }
        let patterns = Patterns::open(None, Durability::Immediate, setup.defaults).unwrap();
        let projects = Projects::open(&setup.server.projects_dir, &setup.kb).unwrap();
        let api = Api::new(Arc::new(patterns), Options::default());
        let state = Arc::new(ServerState::new(
            api,
            Arc::new(knowledge),
            Arc::new(projects),
            setup.server,
            dir.path().join("data"),
        ));
        let router = http::router(state.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        TestServer {
            dir,
            state,
            router,
            runtime,
        }
    }

    /// Stops everything and hands back the directory (to open a server on it again).
    pub fn into_dir(self) -> tempfile::TempDir {
        let TestServer {
            dir,
            state,
            router,
            runtime,
        } = self;
        drop(router);
        runtime.shutdown_timeout(Duration::from_secs(5));
        assert_eq!(
            Arc::strong_count(&state),
            1,
            "nothing else holds the server state"
        );
        drop(state);
        dir
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// One request through the router, in process.
    pub fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).unwrap();
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Reply {
                status,
                headers,
                body,
            }
        })
    }

    pub fn get(&self, uri: &str) -> Reply {
        self.call("GET", uri, &[], Body::empty())
    }

    pub fn post(&self, uri: &str, body: &Value) -> Reply {
        self.call(
            "POST",
            uri,
            &[("content-type", "application/json")],
            body.to_string(),
        )
    }

    /// Serves the same state on 127.0.0.1 (a free port) until the returned guard drops.
    pub fn spawn(&self) -> Spawned {
        self.spawn_app(http::router(self.state.clone()))
    }

    /// Serves `app` (built on this state) on 127.0.0.1.
    pub fn spawn_app(&self, app: Router) -> Spawned {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let task = self.runtime.spawn(async move {
            http::serve_app(
                listener,
                app,
                state,
                async move {
                    let _ = stopped.await;
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        });
        Spawned {
            addr,
            stop: Some(stop),
            task: Some(task),
            handle: self.runtime.handle().clone(),
        }
    }
}

pub struct Spawned {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    handle: tokio::runtime::Handle,
}

impl Spawned {
    /// Asks the server to stop and waits until it has (requests in flight finish first).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self.handle.block_on(task);
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A blocking HTTP/1.1 request over a new connection (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    try_http(addr, method, path, headers, body)
        .unwrap_or_else(|err| panic!("{method} {path} on {addr}: {err}"))
}

/// [`http`], with a connection or read failure as an error (a node that was killed, a reply
/// cut off) instead of a panic.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the connection closed before a complete response head",
        ));
    }
    Ok(parse_response(&raw))
}

pub fn parse_response(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// KATO's API called in process, as its routes would call it for `method path?query`: the
/// tests of session semantics drive `kato::Api` directly (on a clock they move, holding a
/// session's lock) instead of through the router.
pub fn kato(
    api: &Api,
    method: &str,
    path: &str,
    query: &str,
    body: Option<&Value>,
) -> mneme_server::kato::Reply {
    kato_request(
        api,
        path,
        &mneme_server::kato::Request::new(method, query, body),
    )
}

/// [`kato`] with every field of the request given.
pub fn kato_request(
    api: &Api,
    path: &str,
    request: &mneme_server::kato::Request<'_>,
) -> mneme_server::kato::Reply {
    // The router hands the handlers decoded path parameters.
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(mneme_server::kato::percent_decode)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["sessions"] => api.create(request),
        ["sessions", "count"] => api.count(request),
        ["sessions", id] => api.session(id, request),
        ["sessions", id, "exists"] => api.exists(id, request),
        ["sessions", id, action] => api.action(id, action, request),
        ["pattern", id] => api.pattern(id, request),
        ["symbols", "stats"] => api.symbol_stats(request),
        ["symbols", "affinity"] => api.affinities(request),
        ["symbols", symbol, "affinity"] => api.affinity(symbol, request),
        _ => panic!("no KATO route for {path}"),
    }
}
