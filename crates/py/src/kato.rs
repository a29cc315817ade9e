//! `Kato`: KATO's REST API in process, for `mneme.KATOClient` without a `base_url`.
//!
//! A request (method, path, query string, body bytes) is routed as `mneme serve` routes it
//! (`server::http::kato_routes`) to the same `server::kato::Api` over the same session
//! service and pattern store, so the answer is the server's, byte for byte: only what the
//! HTTP layer adds (headers) is missing. The client decodes the bytes either way.

use std::path::PathBuf;
use std::sync::Arc;

use mneme_server::kato::{Api, Options, Reply, Request, percent_decode};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::{Value, json};

use crate::errors;

#[pyclass(frozen, module = "mneme._native")]
pub struct Kato {
    api: Api,
    store: PathBuf,
}

const DEPRECATED: &str = "This endpoint is deprecated: use /sessions/{session_id}/percept-data or /sessions/{session_id}/cognition-data";

impl Kato {
    fn route(&self, method: &str, path: &str, query: &str, body: Option<&Value>) -> Reply {
        let request = Request::new(method, query, body);
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let api = &self.api;
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["sessions"] => api.create(&request),
            ["sessions", "count"] => api.count(&request),
            ["sessions", id] if !id.is_empty() => api.session(id, &request),
            ["sessions", id, "exists"] if !id.is_empty() => api.exists(id, &request),
            ["sessions", id, rest @ ..]
                if !id.is_empty() && !rest.is_empty() && !rest[0].is_empty() =>
            {
                api.action(id, &rest.join("/"), &request)
            }
            ["pattern", id] if !id.is_empty() => api.pattern(id, &request),
            ["symbols", "stats"] => api.symbol_stats(&request),
            ["symbols", "affinity"] => api.affinities(&request),
            ["symbols", symbol, "affinity"] if !symbol.is_empty() => api.affinity(symbol, &request),
            ["percept-data"] | ["cognition-data"] if method == "GET" => {
                let node = mneme_seq::config::kb_id(
                    &request.node_id(),
                    &api.patterns().defaults().service_name,
                );
                let body = if s[0] == "percept-data" {
                    json!({"percept_data": {}, "node_id": node, "warning": DEPRECATED})
                } else {
                    json!({
                        "cognition_data": {
                            "predictions": [], "emotives": {}, "symbols": [], "command": "", "metadata": {},
                            "path": [], "strings": [], "vectors": [], "short_term_memory": [],
                        },
                        "node_id": node,
                        "warning": DEPRECATED,
                    })
                };
                Reply {
                    status: 200,
                    body,
                    raw: None,
                    headers: Vec::new(),
                }
            }
            ["percept-data"] | ["cognition-data"] => Reply {
                status: 405,
                body: json!({"detail": "Method Not Allowed"}),
                raw: None,
                headers: Vec::new(),
            },
            _ => Reply {
                status: 404,
                body: json!({"detail": "Not Found"}),
                raw: None,
                headers: Vec::new(),
            },
        }
    }
}

/// FastAPI's answer to a body that is not JSON (as `mneme serve` gives it).
fn json_invalid(err: &serde_json::Error) -> Reply {
    Reply {
        status: 422,
        body: json!({"detail": [{
            "type": "json_invalid",
            "loc": ["body", err.column().saturating_sub(1)],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": err.to_string()},
        }]}),
        raw: None,
        headers: Vec::new(),
    }
}

#[pymethods]
impl Kato {
    /// Opens the pattern store of `data_dir` (default: `MNEME_DATA_DIR`, else `.mneme`),
    /// with the server's settings from the environment (`SESSION_TTL`, `RECALL_THRESHOLD`,
    /// ...). A store held by another process raises `StoreBusyError(message, url)`, `url`
    /// being the address of the `mneme serve` that holds it, when it is one.
    #[new]
    #[pyo3(signature = (data_dir=None))]
    fn new(py: Python<'_>, data_dir: Option<String>) -> PyResult<Kato> {
        let lookup = |var: &str| match (var, &data_dir) {
            ("MNEME_DATA_DIR", Some(dir)) => Some(dir.clone()),
            _ => std::env::var(var).ok(),
        };
        let config = mneme_app::config::load(None, &lookup, &[]).map_err(errors::config)?;
        let store = config.seq.store.clone();
        let opened = py.detach(|| mneme_app::patterns::open_patterns(&config.seq));
        let patterns = match opened {
            Ok(patterns) => patterns,
            Err(mneme_store::Error::Busy(_)) => {
                let server = mneme_app::running::find(&config.data_dir);
                let message = match &server {
                    Some(server) => format!(
                        "the pattern store {} is held by mneme serve (pid {}) at {}",
                        store.display(),
                        server.pid,
                        server.url
                    ),
                    None => format!(
                        "the pattern store {} is in use by another process that is not a `mneme serve` of this data directory; stop it, or use another data_dir",
                        store.display()
                    ),
                };
                return Err(errors::StoreBusyError::new_err((
                    message,
                    server.map(|s| s.url),
                )));
            }
            Err(err) => {
                return Err(pyo3::exceptions::PyOSError::new_err(format!(
                    "opening the pattern store {}: {err}",
                    store.display()
                )));
            }
        };
        let options = Options {
            session_ttl: config.seq.session_ttl,
            auto_extend: config.seq.session_auto_extend,
            ..Options::default()
        };
        Ok(Kato {
            api: Api::new(Arc::new(patterns), options),
            store,
        })
    }

    /// One KATO request: returns `(status, body bytes)`, the server's answer.
    #[pyo3(signature = (method, path, query="", body=None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&[u8]>,
    ) -> (u16, Bound<'py, PyBytes>) {
        let bytes = py.detach(|| {
            let parsed = match body {
                Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => {
                    match serde_json::from_slice::<Value>(bytes) {
                        Ok(value) => Some(value),
                        Err(err) => {
                            let reply = json_invalid(&err);
                            return (reply.status, reply.into_bytes());
                        }
                    }
                }
                _ => None,
            };
            let reply = self.route(method, path, query, parsed.as_ref());
            (reply.status, reply.into_bytes())
        });
        (bytes.0, PyBytes::new(py, &bytes.1))
    }

    /// Makes every learn durable (in `periodic` mode they are otherwise committed by a timer).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.api.patterns().flush())
            .map_err(|err| pyo3::exceptions::PyOSError::new_err(err.to_string()))
    }

    #[getter]
    fn store(&self) -> String {
        self.store.display().to_string()
    }
}
