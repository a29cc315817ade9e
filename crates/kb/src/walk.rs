//! Finds the files to ingest under the given roots: a recursive walk that follows symbolic
//! links (by default only those that lead inside a knowledge directory or a walked root, so a
//! link cannot publish a file the API would refuse) but visits every directory once (so a
//! link loop ends), skips hidden entries and names each file with KnowledgeBeast's doc_id.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::convert::{Format, Problem, ProblemKind};
use crate::error::{Error, Result};

/// A file the walk found, with what change detection needs.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub path: PathBuf,
    /// The knowledge directory the file was found under (absolute).
    pub kb_dir: Arc<str>,
    pub doc_id: String,
    pub format: Format,
    pub size: u64,
    pub mtime_ns: u64,
    /// Content given by the caller instead of a file to read ([`crate::NewDocument`]).
    pub inline: Option<Arc<[u8]>>,
    /// Display name given by the caller (otherwise the file stem).
    pub name: Option<String>,
}

/// Which symbolic links a walk follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Links whose target lies inside a knowledge directory or a walked root directory; a link
    /// that leads elsewhere is skipped and reported (`link-outside`). The default: the API
    /// refuses such files too.
    #[default]
    Inside,
    /// Every link, wherever it leads.
    Any,
}

/// What a walk of several roots produced.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub candidates: Vec<Candidate>,
    /// Directory roots (absolute): documents under them whose files are gone get removed.
    pub dir_roots: Vec<Arc<str>>,
    pub problems: Vec<(PathBuf, Problem)>,
    /// Files of kinds mneme does not ingest.
    pub ignored: usize,
}

/// Walks every root. A missing root is an error before anything is read; problems with single
/// entries (unreadable directories, unreadable metadata) are collected and the walk goes on.
pub(crate) fn walk(
    roots: &[PathBuf],
    knowledge_dirs: &[PathBuf],
    links: LinkPolicy,
) -> Result<Walk> {
    let mut out = Walk::default();
    let anchors: Vec<PathBuf> = knowledge_dirs
        .iter()
        .filter_map(|dir| fs::canonicalize(dir).ok())
        .collect();
    let mut resolved = Vec::with_capacity(roots.len());
    for root in roots {
        let canonical = fs::canonicalize(root).map_err(|_| Error::MissingPath(root.clone()))?;
        resolved.push(canonical);
    }
    // Where a followed link may lead: the knowledge directories and the directories walked.
    let mut fence = Fence {
        links,
        inside: anchors.clone(),
    };
    fence
        .inside
        .extend(resolved.iter().filter(|root| root.is_dir()).cloned());
    let mut visited = HashSet::new();
    for root in resolved {
        let meta = fs::metadata(&root)
            .map_err(|err| Error::io(format!("reading {}", root.display()), err))?;
        if meta.is_dir() {
            let kb_dir: Arc<str> = root.to_string_lossy().into();
            out.dir_roots.push(kb_dir.clone());
            let base = root.parent().unwrap_or(&root).to_path_buf();
            walk_dir(&root, &base, &kb_dir, &fence, &mut visited, &mut out);
        } else {
            let kb_dir_path = anchors
                .iter()
                .find(|anchor| root.starts_with(anchor))
                .cloned()
                .unwrap_or_else(|| root.parent().unwrap_or(Path::new("/")).to_path_buf());
            let kb_dir: Arc<str> = kb_dir_path.to_string_lossy().into();
            let base = kb_dir_path.parent().unwrap_or(&kb_dir_path).to_path_buf();
            match Format::of_path(&root) {
                Some(format) => out.candidates.push(candidate(root.clone(), &base, &kb_dir, format, &meta)),
                None => out.problems.push((
                    root.clone(),
                    Problem::new(
                        ProblemKind::Unsupported,
                        "not a kind of file mneme ingests (md, txt, html, pdf, docx or source code)",
                    ),
                )),
            }
        }
    }
    out.candidates.sort_by(|a, b| a.doc_id.cmp(&b.doc_id));
    Ok(out)
}

/// The link policy and the directories links may lead into (canonical paths).
struct Fence {
    links: LinkPolicy,
    inside: Vec<PathBuf>,
}

impl Fence {
    /// Why the entry at `path` is not followed: a symbolic link whose target lies outside.
    fn refuses(&self, path: &Path) -> Option<Problem> {
        if self.links == LinkPolicy::Any {
            return None;
        }
        let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return None;
        }
        // A dangling link is reported by the caller, which cannot read its metadata.
        let target = fs::canonicalize(path).ok()?;
        if self.inside.iter().any(|dir| target.starts_with(dir)) {
            return None;
        }
        Some(Problem::new(
            ProblemKind::LinkOutside,
            format!(
                "a symbolic link to {}, outside the knowledge directories; move the file in, or set kb.follow_external_links to follow such links",
                target.display()
            ),
        ))
    }
}

fn walk_dir(
    dir: &Path,
    base: &Path,
    kb_dir: &Arc<str>,
    fence: &Fence,
    visited: &mut HashSet<(u64, u64)>,
    out: &mut Walk,
) {
    let Ok(meta) = fs::metadata(dir) else { return };
    if !visited.insert((meta.dev(), meta.ino())) {
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            out.problems.push((
                dir.to_path_buf(),
                Problem::new(ProblemKind::Unreadable, err.to_string()),
            ));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    children.sort();
    for path in children {
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if let Some(problem) = fence.refuses(&path) {
            out.problems.push((path, problem));
            continue;
        }
        // `fs::metadata` follows links: a link to a directory is walked, a dangling link is
        // reported.
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) => {
                out.problems
                    .push((path, Problem::new(ProblemKind::Unreadable, err.to_string())));
                continue;
            }
        };
        if meta.is_dir() {
            walk_dir(&path, base, kb_dir, fence, visited, out);
        } else if meta.is_file() {
            match Format::of_path(&path) {
                Some(format) => out
                    .candidates
                    .push(candidate(path, base, kb_dir, format, &meta)),
                None => out.ignored += 1,
            }
        }
    }
}

fn candidate(
    path: PathBuf,
    base: &Path,
    kb_dir: &Arc<str>,
    format: Format,
    meta: &fs::Metadata,
) -> Candidate {
    let relative = path.strip_prefix(base).unwrap_or(&path);
    let doc_id = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Candidate {
        path,
        kb_dir: kb_dir.clone(),
        doc_id,
        format,
        size: meta.len(),
        mtime_ns,
        inline: None,
        name: None,
    }
}
