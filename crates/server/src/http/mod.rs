//! The HTTP server: one axum router for KATO's API, KnowledgeBeast's API and the endpoints
//! both define (`/`, `/health`, `/metrics`), behind one middleware stack.
//!
//! `router(state)` builds everything without a socket, so tests drive it in process;
//! `serve` runs it on a listener until the shutdown future resolves, finishing in-flight
//! requests.

// Handlers return a ready `Response` as their error: the idiom of axum, and rare paths.
#![allow(clippy::result_large_err)]

mod auth;
mod common;
mod crosssite;
mod docs;
mod kato_routes;
pub(crate) mod kb_request;
mod kb_v1;
pub(crate) mod kb_v2;
pub mod metrics;
mod middleware;
pub mod operations;
mod ratelimit;
pub mod routes;
pub mod system;
mod ui;
pub mod work;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use mneme_app::Knowledge;
use mneme_app::config::ServerSettings;
use mneme_app::patterns::Patterns;
use mneme_app::projects::Projects;
use tokio::sync::broadcast;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::kato;
pub(crate) use common::json_response;
pub use docs::document;
pub use kb_v1::Heartbeat;
use metrics::Metrics;
use ratelimit::RateLimiter;
use system::Series;

/// Everything the handlers share.
pub struct ServerState {
    pub kato: kato::Api,
    pub knowledge: Arc<Knowledge>,
    pub projects: Arc<Projects>,
    pub metrics: Metrics,
    pub series: Series,
    pub config: ServerSettings,
    pub limiter: RateLimiter,
    pub heartbeat: Heartbeat,
    /// Where the data lives (disk figures of `/health`).
    pub data_dir: PathBuf,
    pub started: Instant,
    pub started_unix: f64,
    /// KATO's websocket events (`session.created`, `session.destroyed`).
    pub events: broadcast::Sender<String>,
    /// Set when the server is shutting down: long-lived connections (websockets) close.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Admission to the blocking threads for pattern-engine work.
    pub blocking_slots: tokio::sync::Semaphore,
    /// Cancelled at shutdown: ends the MCP sessions of `/mcp` (their event streams).
    pub mcp_shutdown: tokio_util::sync::CancellationToken,
    /// Requests being answered (KATO's `/concurrency`).
    pub in_flight: operations::InFlight,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening the index at {path}")]
    Knowledge {
        path: String,
        source: mneme_kb::Error,
    },
    /// (The store's error, printed after it as its cause, names the path.)
    #[error("opening the pattern store")]
    Patterns {
        path: String,
        source: mneme_store::Error,
    },
    #[error("opening the projects at {path}")]
    Projects {
        path: String,
        source: mneme_app::projects::ProjectError,
    },
}

/// Sends the session service's events to the websocket's subscribers, in KATO's shapes.
fn session_events(
    events: broadcast::Sender<String>,
) -> impl Fn(&mneme_app::sessions::SessionEvent) + Send + Sync + 'static {
    use mneme_app::sessions::SessionEvent;
    move |event| {
        let now = common::iso_now();
        let event = match event {
            SessionEvent::Created {
                id,
                node_id,
                created_at,
            } => serde_json::json!({
                "event_type": "session.created",
                "timestamp": now,
                "data": {"session_id": id, "node_id": node_id, "created_at": kato::iso(*created_at)},
            }),
            SessionEvent::Deleted { id } => serde_json::json!({
                "event_type": "session.destroyed",
                "timestamp": now,
                "data": {"session_id": id, "destroyed_at": now, "reason": "explicit_delete"},
            }),
        };
        // Nobody listening is fine.
        let _ = events.send(event.to_string());
    }
}

/// The stores a cluster node shares with the others (cluster mode).
pub struct Shared {
    /// The pattern engine on PostgreSQL.
    pub patterns: Patterns,
    /// KATO's sessions in Redis.
    pub sessions: Arc<dyn mneme_app::sessions::store::SessionStore>,
    /// The projects' registry and document log on PostgreSQL.
    pub projects: Arc<dyn mneme_app::projects::SharedRegistry>,
    /// The rate limits' counters in Redis.
    pub windows: Arc<dyn mneme_app::limits::SharedWindows>,
    /// API v1's knowledge base: the log of scans on PostgreSQL.
    pub index: Arc<dyn mneme_app::SharedIndex>,
    /// How long a knowledge-base query (API v1, or a project's) may answer without reading
    /// the shared store.
    pub max_staleness: std::time::Duration,
}

impl ServerState {
    pub fn new(
        kato: kato::Api,
        knowledge: Arc<Knowledge>,
        projects: Arc<Projects>,
        config: ServerSettings,
        data_dir: PathBuf,
    ) -> ServerState {
        let (events, _) = broadcast::channel(1024);
        kato.sessions().subscribe(session_events(events.clone()));
        let limiter = RateLimiter::new(config.rate_limit_per_key, config.rate_limits.clone());
        let heartbeat = Heartbeat::new(knowledge.settings.heartbeat_interval);
        ServerState {
            kato,
            knowledge,
            projects,
            metrics: Metrics::default(),
            series: Series::default(),
            config,
            limiter,
            heartbeat,
            data_dir,
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            events,
            closing: tokio::sync::watch::channel(false).0,
            blocking_slots: tokio::sync::Semaphore::new(2 * system::cores()),
            mcp_shutdown: tokio_util::sync::CancellationToken::new(),
            in_flight: operations::InFlight::default(),
        }
    }

    /// Opens every engine the configuration names (index, pattern store, projects).
    pub fn open(config: &mneme_app::Config) -> Result<ServerState, StartError> {
        ServerState::open_with(config, None)
    }

    /// Like [`ServerState::open`]; with `shared`, the pattern engine and the sessions live in
    /// stores shared with other nodes (cluster mode) instead of the data directory.
    pub fn open_with(
        config: &mneme_app::Config,
        shared: Option<Shared>,
    ) -> Result<ServerState, StartError> {
        let knowledge = match shared.as_ref().map(|s| (s.index.clone(), s.max_staleness)) {
            Some((log, max_staleness)) => Knowledge::open_shared(&config.kb, log, max_staleness),
            None => Knowledge::open(&config.kb),
        }
        .map_err(|source| StartError::Knowledge {
            path: config.kb.index_dir.display().to_string(),
            source,
        })?;
        let (patterns, sessions, registry, windows) = match shared {
            Some(shared) => (
                shared.patterns,
                Some(shared.sessions),
                Some((shared.projects, shared.max_staleness)),
                Some(shared.windows),
            ),
            None => {
                let patterns =
                    mneme_app::patterns::open_patterns(&config.seq).map_err(|source| {
                        StartError::Patterns {
                            path: config.seq.store.display().to_string(),
                            source,
                        }
                    })?;
                (patterns, None, None, None)
            }
        };
        let dir = &config.server.projects_dir;
        let projects = match registry {
            Some((registry, max_staleness)) => {
                Projects::open_shared(dir, &config.kb, registry, max_staleness)
            }
            None => Projects::open(dir, &config.kb),
        }
        .map_err(|source| StartError::Projects {
            path: dir.display().to_string(),
            source,
        })?;
        let options = kato::Options {
            session_ttl: config.seq.session_ttl,
            auto_extend: config.seq.session_auto_extend,
            ..kato::Options::default()
        };
        let patterns = Arc::new(patterns);
        let kato = match sessions {
            Some(store) => kato::Api::from_sessions(Arc::new(mneme_app::sessions::Sessions::new(
                patterns,
                store,
                options,
                Box::new(std::time::SystemTime::now),
            ))),
            None => kato::Api::new(patterns, options),
        };
        let mut state = ServerState::new(
            kato,
            Arc::new(knowledge),
            Arc::new(projects),
            config.server.clone(),
            config.data_dir.clone(),
        );
        if let Some(windows) = windows {
            state.limiter = state.limiter.with_shared(windows);
        }
        Ok(state)
    }

    /// Makes everything acknowledged durable: pattern learns of the periodic mode and the
    /// query-cache counters.
    pub fn flush(&self) {
        if let Err(err) = self.kato.patterns().flush() {
            tracing::error!("flushing the pattern store failed: {err}");
        }
        if let Err(err) = self.knowledge.kb.persist_cache() {
            tracing::warn!("saving the query cache failed: {err}");
        }
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-process-time"),
            HeaderName::from_static("x-trace-id"),
            HeaderName::from_static("x-session-id"),
        ]);
    // Credentials cannot be combined with a wildcard origin.
    if origins.iter().any(|o| o == "*") {
        layer
    } else {
        layer.allow_credentials(true)
    }
}

/// Where archives are imported.
const IMPORT_PATH: &str = "/api/v2/projects/import";

/// The largest import request: the archive plus room for the other form fields and the
/// multipart framing (the archive itself is held to its limit exactly).
fn import_body_limit(limits: &mneme_app::projects::archive::ArchiveLimits) -> u64 {
    limits.max_archive_bytes.saturating_add(64 * 1024)
}

/// The whole application.
/// Where the MCP Streamable HTTP transport is mounted.
pub const MCP_PATH: &str = "/mcp";

pub fn router(state: Arc<ServerState>) -> Router {
    router_with(state, Router::new())
}

/// The application plus `extra` routes behind the same middleware (tests add failing
/// handlers this way). The routes are the route table's (`routes.rs`), the same table
/// `/openapi.json` is generated from.
pub fn router_with(state: Arc<ServerState>, extra: Router<Arc<ServerState>>) -> Router {
    let mut app = Router::new();
    for route in routes::table(&state.config) {
        app = app.route(route.path, route.handler);
    }
    let max_body = usize::try_from(state.config.max_request_size).unwrap_or(usize::MAX);
    app.merge(extra)
        .nest_service(MCP_PATH, crate::mcp::http_service(state.clone()))
        .fallback(common::not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::guard,
        ))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crosssite::cross_site,
        ))
        .layer(cors(&state.config.allowed_origins))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limits,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}

/// Takes one resource sample now (the background task does it every few seconds).
pub fn sample_now(state: &ServerState, previous: &mut (u64, Instant)) {
    common::sample(state, previous);
}

/// Background work of a running server: resource sampling and the sweep of expired sessions.
pub fn spawn_background(state: &Arc<ServerState>, every: Duration) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut previous = (0u64, Instant::now());
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let sampled = work::run(&state, work::Lane::Io, move |s| {
                common::sample(s, &mut previous);
                s.kato.sweep_expired();
                previous
            })
            .await;
            match sampled {
                Ok(next) => previous = next,
                Err(_) => tracing::warn!("the resource sampler failed"),
            }
        }
    })
}

/// Serves `router(state)` on `listener` until `shutdown` resolves; requests in flight finish
/// (websockets are told to close), for at most `grace` after the signal.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_app(listener, router(state.clone()), state, shutdown, grace).await
}

/// [`serve`] with a router of the caller's (tests add routes with [`router_with`]).
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = state.closing.clone();
    let mcp_shutdown = state.mcp_shutdown.clone();
    let graceful = async move {
        shutdown.await;
        let _ = closing.send(true);
        mcp_shutdown.cancel();
        let _ = signalled_tx.send(());
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(graceful);
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!("requests still running {grace:?} after the shutdown signal were cut off");
            Ok(())
        }
    }
}
