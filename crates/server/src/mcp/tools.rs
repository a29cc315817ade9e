//! The tools' arguments and work: plain functions of the server state, run on a blocking
//! thread by `Mcp`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use mneme_app::projects::ProjectError;
use mneme_app::projects::archive::{self, ArchiveError, ArchiveFormat, ImportConfig};
use mneme_kb::SearchRequest;
use rmcp::schemars;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::portable::{self, Portable};
use super::{Failure, Files, Outcome};
use crate::http::ServerState;
use crate::http::kb_request::{Mode, ranking};
use crate::http::kb_v2::{content_document, file_document, stamp_metadata};
use crate::kato::Request;
use crate::lax::kb::Choice;

fn default_mode() -> String {
    "hybrid".to_owned()
}
fn default_search_limit() -> i64 {
    5
}
fn default_alpha() -> f64 {
    0.7
}
fn default_list_limit() -> i64 {
    100
}
fn default_format() -> String {
    "zip".to_owned()
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// The project to search.
    pub project_id: String,
    /// The search text.
    pub query: String,
    /// hybrid, keyword, vector or terms.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Results to return (1 to 100).
    #[serde(default = "default_search_limit")]
    pub limit: i64,
    /// Weight of the vector ranking in hybrid mode (0 to 1).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct IngestArgs {
    pub project_id: String,
    /// The document's text (markdown), when no file_path is given.
    #[serde(default)]
    pub content: Option<String>,
    /// A file to ingest (markdown, text, HTML, PDF, DOCX, ...).
    #[serde(default)]
    pub file_path: Option<String>,
    /// Metadata stored with the document.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListDocumentsArgs {
    pub project_id: String,
    /// Documents to list at most.
    #[serde(default = "default_list_limit")]
    pub limit: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateArgs {
    /// The project's name (unique).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Recorded with the project (default all-MiniLM-L6-v2; the server's model embeds).
    #[serde(default)]
    pub embedding_model: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ProjectArgs {
    pub project_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ExportArgs {
    pub project_id: String,
    /// The file to write (it must not exist yet).
    pub output_path: String,
    /// zip, json or yaml.
    #[serde(default = "default_format")]
    pub format: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ImportArgs {
    /// A .zip, .json, .yaml or .yml export.
    pub file_path: String,
    /// The new project's name (default: the exported name, with " (imported)" for json/yaml).
    #[serde(default)]
    pub project_name: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SessionCreateArgs {
    /// The node (processor) whose patterns the session reads and learns.
    pub node_id: String,
    /// KATO's session settings (max_pattern_length, recall_threshold, ...).
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
    /// Session lifetime in seconds.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ObserveArgs {
    pub session_id: String,
    /// The event's symbols.
    #[serde(default)]
    pub strings: Vec<String>,
    /// Vectors of the event (each a list of numbers).
    #[serde(default)]
    pub vectors: Vec<Vec<f64>>,
    /// Emotive values of the event, by name.
    #[serde(default)]
    pub emotives: Map<String, Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SessionArgs {
    pub session_id: String,
}

fn project_failure(err: &ProjectError) -> Failure {
    let kind = match err {
        ProjectError::NotFound(_) => "ProjectNotFound",
        ProjectError::NameTaken(_) => "ValidationError",
        ProjectError::KeyNotFound(_) => "KeyNotFound",
        ProjectError::Store(_) | ProjectError::Corrupt(_) => "StorageError",
        ProjectError::Kb(_) => "KnowledgeBaseError",
        ProjectError::Unavailable(_) => "Unavailable",
    };
    Failure::new(kind, err.to_string())
}

fn archive_failure(err: &ArchiveError, kind: &'static str) -> Failure {
    match err {
        ArchiveError::Project(err) => project_failure(err),
        ArchiveError::TooLarge { .. } => Failure::new("TooLarge", err.to_string()),
        ArchiveError::Invalid(_) => Failure::new(kind, err.to_string()),
    }
}

fn limit(value: i64, max: i64, name: &str) -> Result<usize, Failure> {
    if (1..=max).contains(&value) {
        Ok(value as usize)
    } else {
        Err(Failure::validation(format!(
            "{name} must be between 1 and {max}, got {value}"
        )))
    }
}

fn truncated(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

pub fn search(state: &ServerState, args: &SearchArgs) -> Result<Vec<Value>, Failure> {
    let wanted = args.mode.trim().to_ascii_lowercase();
    let mode = Mode::NAMES
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, mode)| *mode)
        .ok_or_else(|| {
            Failure::validation(format!(
                "mode must be one of hybrid, keyword, vector, terms; got {:?}",
                args.mode
            ))
        })?;
    let limit = limit(args.limit, 100, "limit")?;
    if !(0.0..=1.0).contains(&args.alpha) {
        return Err(Failure::validation(format!(
            "alpha must be between 0 and 1, got {}",
            args.alpha
        )));
    }
    if args.query.trim().is_empty() {
        return Err(Failure::validation("query is empty"));
    }
    let kb = state
        .projects
        .index(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let ranking = ranking(
        Some(mode),
        Some(args.alpha),
        None,
        kb.has_embedder(),
        args.alpha,
    );
    let outcome = kb
        .search(&SearchRequest {
            query: &args.query,
            ranking,
            limit,
            offset: 0,
            with_content: true,
            with_total: false,
            use_cache: true,
            with_snippets: false,
        })
        .map_err(|err| Failure::new("SearchError", err.to_string()))?;
    Ok(outcome
        .results
        .hits
        .iter()
        .map(|hit| {
            let content = hit.content.as_deref().unwrap_or(&hit.passage);
            json!({
                "doc_id": hit.doc_id,
                "content": truncated(content, 500),
                "name": hit.name,
                "path": hit.path,
                "score": hit.score,
            })
        })
        .collect())
}

pub fn ingest(state: &ServerState, files: &Files, args: IngestArgs) -> Outcome {
    let project = state
        .projects
        .get(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let kb = state
        .projects
        .index(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let mut metadata = args.metadata.unwrap_or_default();
    let content = args.content.filter(|c| !c.is_empty());
    let (doc, file_path) = match (content, args.file_path) {
        (Some(content), _) => {
            metadata.insert("source".into(), json!("direct"));
            (content_document(&kb, &metadata, content), None)
        }
        (None, Some(raw)) => {
            let path = files.readable(state, &raw)?;
            let bytes = std::fs::read(&path)
                .map_err(|err| Failure::new("IngestError", format!("cannot read {raw}: {err}")))?;
            let doc = file_document(&path, bytes);
            metadata.insert("source".into(), json!("file"));
            metadata.insert("file_path".into(), json!(raw));
            metadata.insert("file_name".into(), json!(doc.name));
            (doc, Some(raw))
        }
        (None, None) => {
            return Err(Failure::validation(
                "Must provide either content or file_path",
            ));
        }
    };
    metadata.insert("project_id".into(), json!(args.project_id));
    stamp_metadata(&mut metadata, &doc);
    let doc_id = doc.doc_id.clone();
    let report = state
        .projects
        .ingest(
            &args.project_id,
            vec![(doc, Value::Object(metadata).to_string())],
        )
        .map_err(|e| project_failure(&e))?;
    if let Some((_, problem)) = report.problems.first() {
        return Err(Failure::new("IngestError", problem.to_string()));
    }
    Ok(match file_path {
        Some(file_path) => json!({
            "success": true,
            "doc_id": doc_id,
            "file_path": file_path,
            "message": format!("File ingested into project {}", project.name),
        }),
        None => json!({
            "success": true,
            "doc_id": doc_id,
            "message": format!("Document ingested into project {}", project.name),
        }),
    })
}

pub fn list_documents(state: &ServerState, args: &ListDocumentsArgs) -> Outcome {
    let limit = limit(args.limit, i64::MAX, "limit")?;
    let project = state
        .projects
        .get(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let kb = state
        .projects
        .index(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let metadata = state
        .projects
        .document_metadata(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let ids = kb.doc_ids();
    let documents: Vec<Value> = ids
        .iter()
        .take(limit)
        .map(|id| {
            let meta = metadata
                .get(id)
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .unwrap_or_else(|| json!({}));
            json!({"doc_id": id, "metadata": meta})
        })
        .collect();
    Ok(json!({
        "project_id": project.project_id,
        "project_name": project.name,
        "total_documents": ids.len(),
        "documents": documents,
    }))
}

pub fn list_projects(state: &ServerState) -> Result<Vec<Value>, Failure> {
    let projects = state.projects.list().map_err(|e| project_failure(&e))?;
    Ok(projects
        .iter()
        .map(|p| {
            json!({
                "project_id": p.project_id,
                "name": p.name,
                "description": p.description,
                "embedding_model": p.embedding_model,
                "created_at": p.created_at,
            })
        })
        .collect())
}

pub fn create_project(state: &ServerState, args: CreateArgs) -> Outcome {
    let name = args.name.trim();
    if name.is_empty() {
        return Err(Failure::validation("name is empty"));
    }
    let model = args
        .embedding_model
        .unwrap_or_else(|| "all-MiniLM-L6-v2".to_owned());
    let metadata = Value::Object(args.metadata.unwrap_or_default()).to_string();
    let project = state
        .projects
        .create(name, &args.description, &model, &metadata)
        .map_err(|e| project_failure(&e))?;
    Ok(json!({
        "success": true,
        "project_id": project.project_id,
        "name": project.name,
        "description": project.description,
        "embedding_model": project.embedding_model,
        "collection_name": project.collection_name(),
        "created_at": project.created_at,
    }))
}

/// The project, its index's document count and query-cache figures.
fn project_figures(
    state: &ServerState,
    project_id: &str,
) -> Result<(mneme_app::projects::Project, usize, Value), Failure> {
    let project = state
        .projects
        .get(project_id)
        .map_err(|e| project_failure(&e))?;
    let kb = state
        .projects
        .index(project_id)
        .map_err(|e| project_failure(&e))?;
    let stats = kb.stats();
    let cache = &stats.cache;
    let cache_stats = json!({
        "size": cache.entries,
        "capacity": cache.capacity,
        "hits": cache.hits,
        "misses": cache.misses,
        "hit_rate": cache.hit_rate(),
    });
    Ok((project, stats.documents, cache_stats))
}

pub fn project_info(state: &ServerState, project_id: &str) -> Outcome {
    let (project, documents, cache_stats) = project_figures(state, project_id)?;
    Ok(json!({
        "project_id": project.project_id,
        "name": project.name,
        "description": project.description,
        "embedding_model": project.embedding_model,
        "collection_name": project.collection_name(),
        "created_at": project.created_at,
        "updated_at": project.updated_at,
        "metadata": serde_json::from_str::<Value>(&project.metadata).unwrap_or_else(|_| json!({})),
        "document_count": documents,
        "cache_stats": cache_stats,
    }))
}

pub fn analytics(state: &ServerState, project_id: &str) -> Outcome {
    let (project, documents, cache_stats) = project_figures(state, project_id)?;
    Ok(json!({
        "project_id": project.project_id,
        "project_name": project.name,
        "document_count": documents,
        "cache_stats": cache_stats,
        "embedding_model": project.embedding_model,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }))
}

pub fn delete_project(state: &ServerState, project_id: &str) -> Outcome {
    state
        .projects
        .delete(project_id)
        .map_err(|e| project_failure(&e))?;
    Ok(json!({
        "success": true,
        "project_id": project_id,
        "message": "Project deleted successfully",
    }))
}

/// Writes `write`'s output to `path` durably: a temporary file beside it, synced, renamed.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), Failure>,
) -> Result<u64, Failure> {
    let failed = |what: &str, err: std::io::Error| {
        Failure::new("ExportError", format!("{what} {}: {err}", path.display()))
    };
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp).map_err(|err| failed("creating", err))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|err| failed("writing", err.into_error()))?;
        file.sync_all().map_err(|err| failed("syncing", err))?;
        std::fs::rename(&tmp, path).map_err(|err| failed("renaming into place", err))?;
        Ok(file.metadata().map_err(|err| failed("reading", err))?.len())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn export(state: &ServerState, files: &Files, args: &ExportArgs) -> Outcome {
    let format = args.format.trim().to_ascii_lowercase();
    if !matches!(format.as_str(), "zip" | "json" | "yaml") {
        return Err(Failure::validation(format!(
            "Unsupported format: {}. Use 'json', 'yaml', or 'zip'.",
            args.format
        )));
    }
    let project = state
        .projects
        .get(&args.project_id)
        .map_err(|e| project_failure(&e))?;
    let path = files.writable(state, &args.output_path)?;
    let mut documents = 0;
    let size = write_file(&path, |out| {
        if format == "zip" {
            // ZIP needs Seek: BufWriter<File> has it.
            let exported =
                archive::write_archive(&state.projects, &args.project_id, ArchiveFormat::Zip, out)
                    .map_err(|e| project_failure(&e))?;
            documents = exported.document_count;
            return Ok(());
        }
        let portable = Portable::of(&state.projects, &args.project_id)?;
        documents = portable.documents.len();
        let written = if format == "json" {
            serde_json::to_writer_pretty(&mut *out, &portable).map_err(|e| e.to_string())
        } else {
            serde_norway::to_writer(&mut *out, &portable).map_err(|e| e.to_string())
        };
        written
            .and_then(|()| out.flush().map_err(|e| e.to_string()))
            .map_err(|err| {
                Failure::new("ExportError", format!("writing {}: {err}", path.display()))
            })
    })?;
    Ok(json!({
        "success": true,
        "project_id": project.project_id,
        "project_name": project.name,
        "output_path": path.display().to_string(),
        "format": format,
        "document_count": documents,
        "file_size_bytes": size,
        "message": "Project exported successfully",
    }))
}

pub fn import(state: &ServerState, files: &Files, args: &ImportArgs) -> Outcome {
    let path = files.readable(state, &args.file_path)?;
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let limits = state.config.import;
    let size = std::fs::metadata(&path)
        .map_err(|err| {
            Failure::new(
                "ImportError",
                format!("cannot read {}: {err}", args.file_path),
            )
        })?
        .len();
    if size > limits.max_archive_bytes {
        return Err(archive_failure(
            &ArchiveError::TooLarge {
                limit: archive::Limit::ArchiveBytes,
                max: limits.max_archive_bytes,
                what: "the archive is".to_owned(),
            },
            "ImportError",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|err| {
        Failure::new(
            "ImportError",
            format!("cannot read {}: {err}", args.file_path),
        )
    })?;
    let new_name = args
        .project_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    // What the archive reader takes: mneme's (and KnowledgeBeast's REST) archive as it is; the
    // MCP export format turned into it.
    let (archive_bytes, new_name, original) = match extension.as_str() {
        "zip" => match portable::from_zip(&bytes, &limits)? {
            Some(portable) => portable.into_archive(new_name)?,
            None => (bytes, new_name, None),
        },
        "json" => match portable::from_json(&bytes)? {
            Some(portable) => portable.into_archive(new_name)?,
            None => (bytes, new_name, None),
        },
        "yaml" | "yml" => portable::from_yaml(&bytes)?.into_archive(new_name)?,
        _ => {
            return Err(Failure::validation(format!(
                "{} is not an export: the file name must end in .zip, .json, .yaml or .yml",
                args.file_path
            )));
        }
    };
    let config = ImportConfig {
        new_name,
        overwrite: false,
    };
    let imported = archive::import(
        &state.projects,
        std::io::Cursor::new(archive_bytes),
        &config,
        &limits,
        &mneme_kb::NoProgress,
    )
    .map_err(|err| archive_failure(&err, "ImportError"))?;
    let mut answer = json!({
        "success": true,
        "project_id": imported.project.project_id,
        "project_name": imported.project.name,
        "document_count": imported.document_count,
        "file_path": path.display().to_string(),
        "message": format!(
            "Project imported as {} with {} documents",
            imported.project.name, imported.document_count
        ),
    });
    if let Some(original) = original {
        answer["original_project_id"] = json!(original);
    }
    Ok(answer)
}

pub fn health(state: &ServerState) -> Outcome {
    let projects = state.projects.list();
    let default_model = match state.knowledge.settings.embedding_model.folder() {
        Some(folder) => folder
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        None => "none (keyword search only)".to_owned(),
    };
    Ok(json!({
        "status": if projects.is_ok() { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "server_name": super::SERVER_NAME,
        "projects_count": projects.as_ref().map_or(0, Vec::len),
        "projects_accessible": projects.is_ok(),
        "default_model": default_model,
        "cache_capacity": state.knowledge.settings.max_cache_size,
    }))
}

/// A KATO answer as a tool result: the body of a 200, otherwise `{"error", "error_type"}`
/// with KATO's error text.
fn kato_outcome(reply: crate::kato::Reply) -> Outcome {
    let body = reply.json();
    if reply.status == 200 {
        return Ok(body);
    }
    let message = match &body {
        Value::Object(map) => map
            .get("detail")
            .or_else(|| map.get("error").and_then(|e| e.get("message")))
            .or_else(|| map.get("error"))
            .map_or_else(
                || body.to_string(),
                |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            ),
        _ => body.to_string(),
    };
    let kind = match reply.status {
        404 => "SessionNotFound",
        400 | 422 => "ValidationError",
        503 => "Unavailable",
        _ => "PatternEngineError",
    };
    Err(Failure::new(kind, message))
}

pub fn kato_create(state: &ServerState, args: &SessionCreateArgs) -> Outcome {
    let mut body = json!({"node_id": args.node_id});
    if let Some(config) = &args.config {
        body["config"] = Value::Object(config.clone());
    }
    if let Some(ttl) = args.ttl_seconds {
        body["ttl_seconds"] = json!(ttl);
    }
    kato_outcome(state.kato.create(&Request::new("POST", "", Some(&body))))
}

pub fn kato_observe_event(state: &ServerState, args: &ObserveArgs) -> Outcome {
    let body = json!({
        "strings": args.strings,
        "vectors": args.vectors,
        "emotives": args.emotives,
        "metadata": args.metadata,
    });
    kato_outcome(state.kato.action(
        &args.session_id,
        "observe",
        &Request::new("POST", "", Some(&body)),
    ))
}

pub fn kato_action(state: &ServerState, session_id: &str, action: &str, method: &str) -> Outcome {
    kato_outcome(
        state
            .kato
            .action(session_id, action, &Request::new(method, "", None)),
    )
}
