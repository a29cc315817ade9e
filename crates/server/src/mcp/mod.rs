//! MCP (Model Context Protocol) on the official Rust SDK: KnowledgeBeast's eleven tools, with
//! the names, arguments and result shapes of its FastMCP server (errors are results
//! `{"error", "error_type"}`, not protocol errors), and tools of the pattern engine. Served
//! over stdio by `mneme mcp` and over Streamable HTTP at `/mcp` of `mneme serve` (behind the
//! API key).
//!
//! The tools run on the same `ServerState` as the REST API: a project made here is one of
//! `/api/v2/projects`, a session made here one of KATO's `/sessions`.

mod files;
mod portable;
mod tools;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};

use crate::http::ServerState;
pub use files::Files;
use tools::*;

/// The name the server gives itself (KnowledgeBeast's `MCPConfig.name` is `knowledgebeast`;
/// clients show this one).
pub const SERVER_NAME: &str = "mneme";

/// The MCP server: one per client session (cheap: it holds `Arc`s).
#[derive(Clone)]
pub struct Mcp {
    state: Arc<ServerState>,
    files: Files,
    tool_router: ToolRouter<Mcp>,
}

/// What a tool hands back: a result value, or the failure KnowledgeBeast's tools return.
type Outcome = Result<Value, Failure>;

/// A tool's failure as its result: `{"error": message, "error_type": kind, ...}`.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub error_type: &'static str,
}

impl Failure {
    pub fn new(error_type: &'static str, error: impl Into<String>) -> Failure {
        Failure {
            error: error.into(),
            error_type,
        }
    }

    pub fn validation(error: impl Into<String>) -> Failure {
        Failure::new("ValidationError", error)
    }

    fn value(&self) -> Value {
        json!({"error": self.error, "error_type": self.error_type})
    }
}

/// JSON text as FastMCP writes a tool's result (two-space indent).
fn text(value: &Value) -> ContentBlock {
    ContentBlock::text(serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()))
}

/// A dict result: structured content, and its JSON as text.
fn object_result(outcome: Outcome) -> CallToolResult {
    let value = outcome.unwrap_or_else(|failure| failure.value());
    let mut result = CallToolResult::structured(value.clone());
    result.content = vec![text(&value)];
    result
}

/// A list result (FastMCP: one text block per item, structured content `{"result": [...]}`);
/// a failure is a list of one error item, as KnowledgeBeast's `kb_search` answers.
fn list_result(outcome: Result<Vec<Value>, Failure>) -> CallToolResult {
    let items = outcome.unwrap_or_else(|failure| vec![failure.value()]);
    let mut result = CallToolResult::structured(json!({ "result": items }));
    result.content = items.iter().map(text).collect();
    result
}

/// Runs blocking tool work off the async threads; a panic becomes an `InternalError` result.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(outcome) => outcome,
        Err(err) => {
            let message = if err.is_panic() {
                crate::error::panic_message(err.into_panic().as_ref())
            } else {
                err.to_string()
            };
            tracing::error!("an MCP tool failed: {message}");
            Err(Failure::new(
                "InternalError",
                format!("internal error: {message}"),
            ))
        }
    }
}

#[tool_router]
impl Mcp {
    pub fn new(state: Arc<ServerState>, files: Files) -> Mcp {
        Mcp {
            state,
            files,
            tool_router: Self::tool_router(),
        }
    }

    /// Work on a blocking thread with the state and the file policy.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ServerState, Files) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let (state, files) = (self.state.clone(), self.files);
        blocking(move || work(&state, files)).await
    }

    #[tool(
        description = "Search a knowledge-base project. mode: hybrid (default; keyword when no embedding model is present), keyword, vector or terms; alpha weighs vector against keyword in hybrid (0 keyword, 1 vector). Returns [{doc_id, content (first 500 characters), name, path, score}]."
    )]
    async fn kb_search(&self, Parameters(args): Parameters<SearchArgs>) -> CallToolResult {
        list_result(self.run(move |state, _| search(state, &args)).await)
    }

    #[tool(
        description = "Ingest a document into a project: either `content` (text, stored as markdown) or `file_path` (a file this server may read). Returns {success, doc_id, [file_path], message}."
    )]
    async fn kb_ingest(&self, Parameters(args): Parameters<IngestArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, files| ingest(state, &files, args))
                .await,
        )
    }

    #[tool(
        description = "List the documents of a project (up to `limit`, default 100) with their metadata. Returns {project_id, project_name, total_documents, documents: [{doc_id, metadata}]}."
    )]
    async fn kb_list_documents(
        &self,
        Parameters(args): Parameters<ListDocumentsArgs>,
    ) -> CallToolResult {
        object_result(self.run(move |state, _| list_documents(state, &args)).await)
    }

    #[tool(
        description = "List every project. Returns [{project_id, name, description, embedding_model, created_at}]."
    )]
    async fn kb_list_projects(&self) -> CallToolResult {
        list_result(self.run(|state, _| list_projects(state)).await)
    }

    #[tool(
        description = "Create a project (a knowledge base of its own). Returns {success, project_id, name, description, embedding_model, collection_name, created_at}."
    )]
    async fn kb_create_project(&self, Parameters(args): Parameters<CreateArgs>) -> CallToolResult {
        object_result(self.run(move |state, _| create_project(state, args)).await)
    }

    #[tool(description = "A project's details, document count and query-cache figures.")]
    async fn kb_get_project_info(
        &self,
        Parameters(args): Parameters<ProjectArgs>,
    ) -> CallToolResult {
        object_result(
            self.run(move |state, _| project_info(state, &args.project_id))
                .await,
        )
    }

    #[tool(
        description = "Delete a project and its documents. Returns {success, project_id, message}."
    )]
    async fn kb_delete_project(&self, Parameters(args): Parameters<ProjectArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| delete_project(state, &args.project_id))
                .await,
        )
    }

    #[tool(
        description = "A project's usage figures: {project_id, project_name, document_count, cache_stats, embedding_model, created_at, updated_at}."
    )]
    async fn kb_get_analytics(&self, Parameters(args): Parameters<ProjectArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| analytics(state, &args.project_id))
                .await,
        )
    }

    #[tool(
        description = "Export a project to a file: format zip (default; the archive /api/v2/projects/import reads), json or yaml ({version, exported_at, project, documents, embeddings}). An existing file is not overwritten."
    )]
    async fn kb_export_project(&self, Parameters(args): Parameters<ExportArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, files| export(state, &files, &args))
                .await,
        )
    }

    #[tool(
        description = "Import a project from a .zip, .json, .yaml or .yml export as a new project (named `project_name`, or after the exported one)."
    )]
    async fn kb_import_project(&self, Parameters(args): Parameters<ImportArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, files| import(state, &files, &args))
                .await,
        )
    }

    #[tool(
        description = "The server's health: {status, version, server_name, projects_count, projects_accessible, default_model, cache_capacity}."
    )]
    async fn kb_health_check(&self) -> CallToolResult {
        object_result(self.run(|state, _| health(state)).await)
    }

    #[tool(
        description = "Pattern engine: open a session on a node (its own patterns). `config` takes KATO's session settings (max_pattern_length, recall_threshold, ...). Returns KATO's session answer with session_id."
    )]
    async fn kato_create_session(
        &self,
        Parameters(args): Parameters<SessionCreateArgs>,
    ) -> CallToolResult {
        object_result(self.run(move |state, _| kato_create(state, &args)).await)
    }

    #[tool(
        description = "Pattern engine: observe one event (strings, optional vectors and emotives) into the session's short-term memory. Returns KATO's observe answer."
    )]
    async fn kato_observe(&self, Parameters(args): Parameters<ObserveArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| kato_observe_event(state, &args))
                .await,
        )
    }

    #[tool(
        description = "Pattern engine: learn the session's short-term memory as a pattern (named PTRN|<sha1>). Returns {pattern_name, ...}."
    )]
    async fn kato_learn(&self, Parameters(args): Parameters<SessionArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| kato_action(state, &args.session_id, "learn", "POST"))
                .await,
        )
    }

    #[tool(
        description = "Pattern engine: predictions for the session's short-term memory (KATO's metrics: potential, similarity, past/present/future, ...)."
    )]
    async fn kato_predictions(&self, Parameters(args): Parameters<SessionArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| kato_action(state, &args.session_id, "predictions", "GET"))
                .await,
        )
    }

    #[tool(description = "Pattern engine: the session's short-term memory.")]
    async fn kato_get_stm(&self, Parameters(args): Parameters<SessionArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| kato_action(state, &args.session_id, "stm", "GET"))
                .await,
        )
    }

    #[tool(description = "Pattern engine: empty the session's short-term memory.")]
    async fn kato_clear_stm(&self, Parameters(args): Parameters<SessionArgs>) -> CallToolResult {
        object_result(
            self.run(move |state, _| kato_action(state, &args.session_id, "clear-stm", "POST"))
                .await,
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl rmcp::ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "mneme: a knowledge base (kb_* tools: projects of documents, keyword/vector/hybrid search) and a pattern engine (kato_* tools: sessions observe events, learn patterns, predict what comes next). Start with kb_list_projects or kb_create_project.",
            )
    }
}

/// Serves MCP over stdin/stdout until the client closes stdin (`mneme mcp`).
pub async fn serve_stdio(state: Arc<ServerState>) -> std::io::Result<()> {
    let running = Mcp::new(state, Files::Local)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    let reason = running.waiting().await.map_err(std::io::Error::other)?;
    tracing::debug!("MCP client gone: {reason:?}");
    Ok(())
}

/// The Streamable HTTP transport, mounted at `/mcp` by the router. Host and Origin are checked
/// by the router's own cross-site layer (`MNEME_ALLOWED_HOSTS`, `KB_ALLOWED_ORIGINS`), the
/// API key by its guard; sessions end when the server shuts down.
pub fn http_service(state: Arc<ServerState>) -> StreamableHttpService<Mcp, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(state.mcp_shutdown.child_token());
    StreamableHttpService::new(
        move || Ok(Mcp::new(state.clone(), Files::Served)),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
