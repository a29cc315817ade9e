//! `mneme serve`: both REST APIs (KnowledgeBeast's and KATO's) on one port.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mneme_app::Config;
use mneme_server::http::{self, ServerState};

use crate::args::ServeArgs;

pub fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mneme-http")
        .build()
        .context("starting the async runtime")?;
    // The port first: a second server on the same port says so, whatever its data directory.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&addr))
        .with_context(|| {
            format!(
                "cannot listen on {addr} (is another server using the port? choose one with --port)"
            )
        })?;
    let local: SocketAddr = listener.local_addr()?;
    let state = match open_state(config, &format!("mneme {local}")) {
        Ok(state) => Arc::new(state),
        Err(err) => return Err(held_by(config, err)),
    };
    let url = if local.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", local.port())
    } else {
        format!("http://{local}")
    };
    // Other commands on this data directory (`mneme seq`) find the server here.
    let _record = mneme_app::running::record(&config.data_dir, &url)
        .map_err(|err| {
            tracing::warn!(
                "recording this server in {}: {err}",
                config.data_dir.display()
            )
        })
        .ok();
    let grace = Duration::from_secs(args.grace_seconds);
    runtime.block_on(async {
        if config.server.api_keys.is_empty() {
            tracing::warn!(
                "NO API KEY CONFIGURED: /api/v1 and /api/v2 are open to anyone who can reach {local}; set KB_API_KEY (comma list) to require X-API-Key"
            );
        }
        if !args.no_ingest {
            spawn_startup_ingest(&state);
        }
        http::spawn_background(&state, Duration::from_secs(10));
        eprintln!("mneme {} listening on http://{local} (docs: http://{local}/docs, UI: http://{local}/ui)", env!("CARGO_PKG_VERSION"));
        http::serve(listener, state.clone(), shutdown_signal(), grace).await?;
        anyhow::Ok(())
    })?;
    eprintln!("mneme: shutting down, saving state");
    state.flush();
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(ExitCode::SUCCESS)
}

/// The server's engines: on the data directory, or (cluster mode) with the pattern engine and
/// the projects in PostgreSQL and the sessions in Redis.
pub(crate) fn open_state(config: &Config, node_name: &str) -> anyhow::Result<ServerState> {
    let cluster = &config.cluster;
    if !cluster.enabled() {
        return Ok(ServerState::open(config)?);
    }
    let (Some(postgres_url), Some(redis_url)) = (&cluster.postgres_url, &cluster.redis_url) else {
        anyhow::bail!(
            "cluster mode needs both MNEME_POSTGRES_URL and MNEME_REDIS_URL (or cluster.postgres_url and cluster.redis_url in the config file); only {} is set",
            if cluster.postgres_url.is_some() {
                "the PostgreSQL URL"
            } else {
                "the Redis URL"
            }
        );
    };
    let joined = mneme_cluster::Cluster::connect(&mneme_cluster::ClusterConfig {
        postgres_url: postgres_url.clone(),
        redis_url: redis_url.clone(),
        postgres_pool_size: cluster.postgres_pool_size,
        max_staleness: Duration::from_millis(cluster.max_staleness_ms),
        node_name: node_name.to_owned(),
    })
    .map_err(|err| anyhow::anyhow!("cluster mode: {err}"))?;
    let patterns = joined.patterns(mneme_app::patterns::seq_defaults(&config.seq));
    let shared = mneme_server::http::Shared {
        patterns,
        sessions: joined.sessions(),
        projects: joined.projects(),
        windows: joined.sessions(),
        index: joined.index(),
        max_staleness: Duration::from_millis(cluster.max_staleness_ms),
    };
    Ok(ServerState::open_with(config, Some(shared))?)
}

/// `err`, with who holds the data directory when another `mneme serve` does.
pub(crate) fn held_by(config: &Config, err: anyhow::Error) -> anyhow::Error {
    match mneme_app::running::find(&config.data_dir) {
        Some(server) => anyhow::anyhow!(
            "{err:#}\nhint: mneme serve (pid {}) at {} already serves the data directory {}; stop it first, or give this server another --data-dir",
            server.pid,
            server.url,
            config.data_dir.display()
        ),
        None => err,
    }
}

/// Brings the index up to date with the knowledge dirs in the background; queries keep
/// answering from the previous generation until the new one commits.
fn spawn_startup_ingest(state: &Arc<ServerState>) {
    let existing: Vec<_> = state
        .knowledge
        .knowledge_dirs()
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    if existing.is_empty() {
        tracing::warn!(
            "none of the knowledge dirs exists ({}); set KB_KNOWLEDGE_DIRS to index documents",
            state
                .knowledge
                .knowledge_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return;
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        match state.knowledge.ingest(
            &existing,
            mneme_kb::IngestOptions::default(),
            &mneme_kb::NoProgress,
        ) {
            Ok(report) => tracing::info!(
                "knowledge dirs scanned: {} documents ({} added, {} updated, {} removed, {} skipped)",
                report.documents,
                report.added,
                report.updated,
                report.removed,
                report.problems.len()
            ),
            Err(err) => tracing::error!("ingesting the knowledge dirs failed: {err}"),
        }
    });
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received: finishing requests in flight");
}
