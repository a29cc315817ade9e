//! `mneme mcp` (alias `mcp-server`, KnowledgeBeast's command): the MCP tools over stdio.
//!
//! stdout carries JSON-RPC only: logs go to stderr, and nothing draws progress.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mneme_app::Config;

/// `mcp` / `mcp-server` flags; KnowledgeBeast's are accepted so that a client configuration
/// written for it only changes its `command`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Directory of the projects (KnowledgeBeast's Chroma directory; mneme keeps each
    /// project's index and the project registry there) [default: DATA_DIR/projects, or
    /// MNEME_PROJECTS_DIR].
    #[arg(long, value_name = "DIR")]
    pub chroma_path: Option<String>,
    /// Accepted for KnowledgeBeast's configurations and ignored: mneme keeps the project
    /// registry inside the projects directory (--chroma-path).
    #[arg(long, value_name = "FILE")]
    pub projects_db: Option<String>,
}

impl McpArgs {
    /// The configuration flags these arguments set.
    pub fn flags(&self) -> Vec<mneme_app::FlagValue> {
        self.chroma_path
            .iter()
            .map(|dir| mneme_app::FlagValue {
                key: "server.projects_dir",
                value: dir.clone(),
                flag: "--chroma-path",
            })
            .collect()
    }
}

pub fn run(config: &Config, args: &McpArgs) -> anyhow::Result<ExitCode> {
    if let Some(db) = &args.projects_db {
        tracing::warn!(
            "--projects-db {db} is ignored: mneme keeps the project registry in the projects directory ({})",
            config.server.projects_dir.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mneme-mcp")
        .build()
        .context("starting the async runtime")?;
    let state = match crate::serve::open_state(config, "mneme mcp") {
        Ok(state) => Arc::new(state),
        Err(err) => return Err(crate::serve::held_by(config, err)),
    };
    tracing::info!(
        "mneme {} MCP server on stdio (projects in {})",
        env!("CARGO_PKG_VERSION"),
        config.server.projects_dir.display()
    );
    runtime
        .block_on(mneme_server::mcp::serve_stdio(state.clone()))
        .context("serving MCP on stdio")?;
    state.flush();
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(ExitCode::SUCCESS)
}
