//! Which files the tools may read (`kb_ingest`, `kb_import_project`) and write
//! (`kb_export_project`).
//!
//! Over stdio the client is the local user who started `mneme mcp`: paths are theirs, relative
//! to the working directory, as KnowledgeBeast's server takes them. Over HTTP the client may be
//! anyone holding the API key: reads stay inside the knowledge dirs and the exports directory
//! (`<projects_dir>/exports`), writes inside the exports directory (a relative path is taken
//! from there), as the REST API's ingest and export do.

use std::path::{Component, Path, PathBuf};

use super::Failure;
use crate::http::ServerState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Files {
    /// stdio: any path the user names.
    Local,
    /// Streamable HTTP: the knowledge dirs and the exports directory only.
    Served,
}

/// `path` made absolute (from the working directory) with `.` and `..` resolved lexically.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn inside(path: &Path, dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|dir| {
        path.starts_with(absolute(dir)) || dir.canonicalize().is_ok_and(|d| path.starts_with(d))
    })
}

fn shown(dirs: &[PathBuf]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(", ")
}

pub fn exports_dir(state: &ServerState) -> PathBuf {
    state.projects.dir().join("exports")
}

impl Files {
    /// A file a tool reads; it must exist.
    pub fn readable(self, state: &ServerState, raw: &str) -> Result<PathBuf, Failure> {
        if raw.trim().is_empty() {
            return Err(Failure::validation("file_path is empty"));
        }
        let path = absolute(Path::new(raw));
        if self == Files::Served {
            let mut dirs = state.knowledge.knowledge_dirs().to_vec();
            dirs.push(exports_dir(state));
            // The path first, so that the answer does not tell whether a file outside exists.
            let outside = || {
                Failure::new(
                    "AccessDenied",
                    format!(
                        "{raw} is outside the directories this server reads over HTTP ({}); add its directory to KB_KNOWLEDGE_DIRS, or use `mneme mcp` on stdio",
                        shown(&dirs)
                    ),
                )
            };
            if !inside(&path, &dirs) {
                return Err(outside());
            }
            // Where a link inside leads is checked too.
            if let Ok(real) = path.canonicalize()
                && !inside(&real, &dirs)
            {
                return Err(outside());
            }
        }
        if !path.is_file() {
            return Err(Failure::new(
                "FileNotFound",
                format!("File not found: {raw}"),
            ));
        }
        Ok(path)
    }

    /// Where an export is written; an existing file is refused, the directory is made.
    pub fn writable(self, state: &ServerState, raw: &str) -> Result<PathBuf, Failure> {
        if raw.trim().is_empty() {
            return Err(Failure::validation("output_path is empty"));
        }
        let path = match self {
            Files::Local => absolute(Path::new(raw)),
            Files::Served => {
                let exports = exports_dir(state);
                let path = absolute(&exports.join(raw));
                if !inside(&path, std::slice::from_ref(&exports)) {
                    return Err(Failure::new(
                        "AccessDenied",
                        format!(
                            "over HTTP exports are written under {} (output_path {raw} is outside it); give a path relative to it, or use `mneme mcp` on stdio",
                            exports.display()
                        ),
                    ));
                }
                path
            }
        };
        if path.exists() {
            return Err(Failure::validation(format!(
                "output_path already exists: {}; choose another path or remove the file",
                path.display()
            )));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                Failure::new(
                    "ExportError",
                    format!("cannot create {}: {err}", parent.display()),
                )
            })?;
        }
        Ok(path)
    }
}
