//! The export format of KnowledgeBeast's MCP tools (`format` json or yaml, and a ZIP holding
//! it as `project.json`): `{version: "1.0", exported_at, project: {...}, documents: [{id,
//! content, metadata}], embeddings: [{id, vector}]}`.
//!
//! mneme writes `embeddings` empty (vectors are recomputed on import by the server's model, as
//! KnowledgeBeast does for a document without one) and imports by turning the file into the
//! archive `mneme_app::projects::archive::import` reads, so that its limits and its staging
//! (nothing half-imported) hold here too.

use std::io::Read;
use std::time::SystemTime;

use mneme_app::projects::Projects;
use mneme_app::projects::archive::ArchiveLimits;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Failure;

#[derive(Debug, Serialize, Deserialize)]
pub struct Portable {
    pub version: String,
    #[serde(default)]
    pub exported_at: String,
    pub project: Map<String, Value>,
    pub documents: Vec<Document>,
    pub embeddings: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub metadata: Value,
}

fn invalid(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure::new("ImportError", format!("Invalid {what} file: {err}"))
}

/// A parsed file as the export format, when it has the format's keys.
fn portable(value: Value, what: &str) -> Result<Portable, Failure> {
    let Value::Object(map) = &value else {
        return Err(invalid(what, "the document is not an object"));
    };
    let missing: Vec<&str> = ["version", "project", "documents", "embeddings"]
        .into_iter()
        .filter(|key| !map.contains_key(*key))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::new(
            "ImportError",
            format!("Invalid export file structure: no {}", missing.join(", ")),
        ));
    }
    serde_json::from_value(value).map_err(|err| invalid(what, err))
}

/// A JSON file: the export format, or `None` for mneme's archive (it has a `manifest`).
pub fn from_json(bytes: &[u8]) -> Result<Option<Portable>, Failure> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| invalid("JSON", err))?;
    if value.get("manifest").is_some() {
        return Ok(None);
    }
    portable(value, "JSON").map(Some)
}

pub fn from_yaml(bytes: &[u8]) -> Result<Portable, Failure> {
    let value: Value = serde_norway::from_slice(bytes).map_err(|err| invalid("YAML", err))?;
    portable(value, "YAML")
}

/// A ZIP: `None` for mneme's archive (`manifest.json`), the export format for a ZIP holding
/// it as `project.json` (KnowledgeBeast's MCP `format="zip"`).
pub fn from_zip(bytes: &[u8], limits: &ArchiveLimits) -> Result<Option<Portable>, Failure> {
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|err| invalid("ZIP", err))?;
    if zip.by_name("manifest.json").is_ok() {
        return Ok(None);
    }
    let entry = zip
        .by_name("project.json")
        .map_err(|_| invalid("ZIP", "it holds neither manifest.json nor project.json"))?;
    // Bounded as the archive reader bounds entries: a small ZIP may inflate without end.
    let mut text = Vec::new();
    entry
        .take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|err| invalid("ZIP", err))?;
    if text.len() as u64 > limits.max_bytes {
        return Err(Failure::new(
            "TooLarge",
            format!(
                "project.json inflates past {} bytes, the limit KB_IMPORT_MAX_BYTES sets; raise it to import this file",
                limits.max_bytes
            ),
        ));
    }
    let value: Value = serde_json::from_slice(&text).map_err(|err| invalid("ZIP", err))?;
    portable(value, "ZIP").map(Some)
}

/// What the archive reader is given: mneme's JSON archive, the new project's name and the
/// exported project's id.
pub type Converted = (Vec<u8>, Option<String>, Option<String>);

impl Portable {
    /// The project's export.
    pub fn of(projects: &Projects, project_id: &str) -> Result<Portable, Failure> {
        let failed =
            |err: mneme_app::projects::ProjectError| Failure::new("ExportError", err.to_string());
        let project = projects.get(project_id).map_err(failed)?;
        let kb = projects.index(project_id).map_err(failed)?;
        let stored = projects.document_metadata(project_id).map_err(failed)?;
        let mut documents = Vec::new();
        for id in kb.doc_ids() {
            let content = kb
                .document_text(&id)
                .map_err(|err| Failure::new("ExportError", err.to_string()))?
                .unwrap_or_default();
            let metadata = stored
                .get(&id)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_else(|| json!({}));
            documents.push(Document {
                id,
                content,
                metadata,
            });
        }
        let metadata: Value = serde_json::from_str(&project.metadata).unwrap_or_else(|_| json!({}));
        let project = json!({
            "project_id": project.project_id,
            "name": project.name,
            "description": project.description,
            "collection_name": project.collection_name(),
            "embedding_model": project.embedding_model,
            "created_at": project.created_at,
            "updated_at": project.updated_at,
            "metadata": metadata,
        });
        let Value::Object(project) = project else {
            unreachable!("built as an object")
        };
        Ok(Portable {
            version: "1.0".to_owned(),
            exported_at: mneme_app::time::iso_naive(SystemTime::now()),
            project,
            documents,
            embeddings: Vec::new(),
        })
    }

    /// mneme's JSON archive of this export, the name the new project takes (`new_name`, or
    /// `"<name> (imported)"`) and the exported project's id.
    pub fn into_archive(self, new_name: Option<String>) -> Result<Converted, Failure> {
        let text = |key: &str| {
            self.project
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let original_id = text("project_id");
        let name = new_name.unwrap_or_else(|| format!("{} (imported)", text("name")));
        let mut metadata = match self.project.get("metadata") {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        metadata.insert("imported_from".into(), json!(original_id));
        metadata.insert(
            "imported_at".into(),
            json!(mneme_app::time::iso_naive(SystemTime::now())),
        );
        let (mut ids, mut contents, mut metadatas) = (Vec::new(), Vec::new(), Vec::new());
        for doc in self.documents {
            ids.push(doc.id);
            contents.push(doc.content);
            metadatas.push(match doc.metadata {
                Value::Object(map) => Value::Object(map),
                _ => json!({}),
            });
        }
        let count = ids.len();
        let archive = json!({
            "manifest": {"version": "2.3.0"},
            "project": {
                "name": name,
                "description": text("description"),
                "embedding_model": text("embedding_model"),
                "metadata": metadata,
            },
            "documents": {"ids": ids, "documents": contents, "metadatas": metadatas, "count": count},
        });
        let bytes = serde_json::to_vec(&archive)
            .map_err(|err| Failure::new("ImportError", err.to_string()))?;
        Ok((
            bytes,
            Some(name),
            Some(original_id).filter(|id| !id.is_empty()),
        ))
    }
}
