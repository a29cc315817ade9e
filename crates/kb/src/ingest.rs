//! Ingest: walk, detect changes, convert and chunk in parallel, then commit the catalog and the
//! chunk index as one generation.
//!
//! Commit protocol (the reason a crash at any point leaves the last generation readable):
//! 1. write `catalog-<g+1>.bin` (and `vectors-<g+1>.bin` when a model is configured) durably;
//! 2. commit tantivy with the payload `generation=<g+1>` (tantivy swaps `meta.json` atomically);
//! 3. delete other catalogs and vector tables.
//!
//! With an embedding model, chunks are embedded after conversion and before the commit, in
//! batched, parallel passes (on the ingest's `max_workers` threads) over every new chunk text
//! (a chunk whose text already has a vector keeps it), so an interrupted ingest commits no
//! vectors half-made. It loses no embedding work either: after each group of texts their
//! vectors are appended to `pending-vectors.bin` (`pending.rs`), and the next ingest takes them
//! from there instead of the model; the commit removes the file.
//!
//! A reader opens the generation named by `meta.json`; until step 2 completes that is still `g`,
//! whose catalog step 3 has not yet removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use tantivy::{IndexWriter, TantivyDocument, Term};

use crate::catalog::{Catalog, DocEntry, IndexSettings};
use crate::chunk::chunk_text;
use crate::convert::{self, Problem, ProblemKind};
use crate::engine::KnowledgeBase;
use crate::error::{Error, Result};
use crate::files;
use crate::index::{self, Fields};
use crate::search;
use crate::snapshot::Snapshot;
use crate::text;
use crate::vectors::{Embedder, Row, VectorTable, text_hash};
use crate::walk::{self, Candidate};

/// Bump when a converter's output changes: documents are then converted again.
pub(crate) const CONVERTER_VERSION: u32 = 1;

/// Ingest options.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Re-read and re-index every file, dropping everything else from the index.
    pub rebuild: bool,
    /// Knowledge directories that single-file roots may lie under: such a file gets the
    /// doc_id and `kb_dir` a walk of its knowledge directory would give it (otherwise its
    /// parent directory stands in for the knowledge directory).
    pub knowledge_dirs: Vec<PathBuf>,
    /// Which symbolic links the walk follows (by default, those that stay inside the
    /// knowledge directories and the roots).
    pub links: walk::LinkPolicy,
}

/// Callbacks for progress display; every method has an empty default.
pub trait IngestProgress: Sync {
    /// The walk is done: `files` will be read, `bytes` in all.
    fn planned(&self, _files: usize, _bytes: u64) {}
    /// One file was processed (read, converted and indexed, or rejected).
    fn advanced(&self, _path: &Path, _bytes: u64) {}
    /// A file was skipped for `problem`.
    fn problem(&self, _path: &Path, _problem: &Problem) {}
    /// Chunks to embed (called once, before the first `embedded`).
    fn embedding(&self, _chunks: usize) {}
    /// `n` more chunks were embedded (from any thread).
    fn embedded(&self, _n: usize) {}
    /// Called right before the commit; a test hook to simulate a crash at the worst moment.
    fn before_commit(&self) {}
}

/// A progress sink that shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl IngestProgress for NoProgress {}

/// What one ingest did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Supported files found by the walk.
    pub files: usize,
    pub added: usize,
    pub updated: usize,
    /// Files whose size and modification time (or content) had not changed.
    pub unchanged: usize,
    pub removed: usize,
    /// Files of kinds mneme does not ingest.
    pub ignored: usize,
    /// Files skipped, with the reason.
    pub problems: Vec<(PathBuf, Problem)>,
    pub chunks_written: u64,
    pub bytes_read: u64,
    /// Documents and chunks in the index after the ingest.
    pub documents: usize,
    pub chunks: u64,
    pub generation: u64,
    /// Whether a new generation was committed (false when nothing changed).
    pub committed: bool,
    /// Chunks run through the embedding model, and chunks whose stored vector was reused.
    pub embedded: usize,
    pub vectors_reused: usize,
    /// Distinct chunk texts whose vector an interrupted earlier ingest had computed (not
    /// embedded again); like `embedded`, a text shared by several chunks counts once.
    pub vectors_resumed: usize,
    /// Embedded chunks in the index after the ingest (0 without a model).
    pub vectors: usize,
}

impl IngestReport {
    /// True when some files were skipped: the ingest succeeded only in part.
    pub fn is_partial(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Files that could not be read or converted (unreadable, corrupt).
    pub fn failed(&self) -> usize {
        self.problems
            .iter()
            .filter(|(_, p)| p.kind.is_failure())
            .count()
    }

    /// Files declined (empty, binary, too large, not UTF-8, duplicate doc_id).
    pub fn skipped(&self) -> usize {
        self.problems.len() - self.failed()
    }
}

enum Outcome {
    Unchanged,
    /// Same content under a new modification time: only the catalog entry changes.
    Touched,
    Indexed {
        entry: DocEntry,
        terms: Vec<String>,
        replaced: bool,
        /// Chunk texts, when they are to be embedded.
        chunks: Vec<String>,
    },
    Failed(Problem),
    /// The index writer failed: the whole ingest is abandoned, nothing is committed.
    Fatal(tantivy::TantivyError),
}

/// A document handed over as bytes rather than found by a walk (API v2 projects).
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub doc_id: String,
    /// Where the content came from, as reported in results (a file path, or anything).
    pub path: String,
    pub kb_dir: String,
    pub name: String,
    pub format: crate::convert::Format,
    pub bytes: Vec<u8>,
}

pub(crate) fn run(
    kb: &KnowledgeBase,
    roots: &[PathBuf],
    options: IngestOptions,
    progress: &dyn IngestProgress,
) -> Result<IngestReport> {
    let _writing = kb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let walked = walk::walk(roots, &options.knowledge_dirs, options.links)?;
    run_walked(kb, walked, options, progress)
}

/// One file of a [`Scan`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct ScanFile {
    path: PathBuf,
    kb_dir: String,
    doc_id: String,
    format: crate::convert::Format,
    size: u64,
    mtime_ns: u64,
    /// The file's bytes, when the scanning index did not hold it as it is.
    bytes: Option<Vec<u8>>,
}

/// A walk of files and directories with the bytes of every file that changed: what an index
/// replays ([`crate::KnowledgeBase::apply_scan`]) to reach the state an ingest of the same
/// walk gives, reading no file. In cluster mode the node that scans the knowledge dirs sends
/// it to every replica. A scan is made against an index's current generation and replays
/// onto an index at that generation.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Scan {
    files: Vec<ScanFile>,
    dir_roots: Vec<String>,
    rebuild: bool,
    /// Whether replaying it can change the index it was made against.
    changes: bool,
    /// The scanning node's own report of what the walk skipped (not replayed).
    #[serde(skip)]
    problems: Vec<(PathBuf, Problem)>,
    #[serde(skip)]
    ignored: usize,
}

/// The format version of [`Scan::to_bytes`].
const SCAN_FORMAT: u8 = 1;

impl Scan {
    /// Whether replaying the scan can change the index it was made against (a file added,
    /// changed or touched, a file gone, a rebuild).
    pub fn changes(&self) -> bool {
        self.changes
    }

    /// Files the walk found.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// What the walk skipped, with the reason, and the files of kinds mneme does not ingest.
    pub fn skipped(&self) -> (&[(PathBuf, Problem)], usize) {
        (&self.problems, self.ignored)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let body = postcard::to_allocvec(self)
            .map_err(|err| Error::Corrupt(format!("a scan does not encode: {err}")))?;
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(SCAN_FORMAT);
        out.extend(body);
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Scan> {
        match bytes.split_first() {
            Some((&SCAN_FORMAT, body)) => postcard::from_bytes(body)
                .map_err(|err| Error::Corrupt(format!("a shared scan does not decode: {err}"))),
            Some((format, _)) => Err(Error::Corrupt(format!(
                "a shared scan has format {format}, this binary reads {SCAN_FORMAT}: upgrade this node"
            ))),
            None => Err(Error::Corrupt("a shared scan is empty".to_owned())),
        }
    }
}

/// Walks `roots` as [`run`] does and reads every file the current generation does not hold
/// as it is (by size and modification time).
pub(crate) fn scan(kb: &KnowledgeBase, roots: &[PathBuf], options: IngestOptions) -> Result<Scan> {
    let mut walked = walk::walk(roots, &options.knowledge_dirs, options.links)?;
    // A scan travels as text paths: a file whose path is not UTF-8 cannot be shared.
    let (shareable, foreign): (Vec<Candidate>, Vec<Candidate>) = walked
        .candidates
        .into_iter()
        .partition(|c| c.path.to_str().is_some());
    walked.candidates = shareable;
    for candidate in foreign {
        walked.problems.push((
            candidate.path,
            Problem::new(
                ProblemKind::Unreadable,
                "its path is not UTF-8, which cluster mode cannot share between nodes; rename it",
            ),
        ));
    }
    let current = kb.snapshot();
    let settings = index_settings(kb);
    let rebuild = options.rebuild || current.catalog.settings() != settings;
    let catalog = &current.catalog;
    let read = |candidate: Candidate| {
        let unchanged = !rebuild
            && catalog
                .get(&candidate.doc_id)
                .is_some_and(|e| e.size == candidate.size && e.mtime_ns == candidate.mtime_ns);
        // A file over the size limit is refused by the replay without its bytes; one that
        // cannot be read now is read (or refused) by each replica itself.
        let bytes = if unchanged || candidate.size > kb.config.max_file_size {
            None
        } else {
            std::fs::read(&candidate.path).ok()
        };
        let file = ScanFile {
            path: candidate.path,
            kb_dir: candidate.kb_dir.to_string(),
            doc_id: candidate.doc_id,
            format: candidate.format,
            size: candidate.size,
            mtime_ns: candidate.mtime_ns,
            bytes,
        };
        (file, !unchanged)
    };
    // The files are read on the ingest's threads, in the walk's order.
    let pool = workers(kb, "scan")?;
    let read: Vec<(ScanFile, bool)> =
        pool.install(|| walked.candidates.into_par_iter().map(read).collect());
    let mut changes = rebuild || read.iter().any(|(_, changed)| *changed);
    let files: Vec<ScanFile> = read.into_iter().map(|(file, _)| file).collect();
    if !changes {
        // A document under a walked directory whose file is gone.
        let seen: std::collections::HashSet<&str> =
            files.iter().map(|f| f.doc_id.as_str()).collect();
        changes = current.catalog.documents().any(|e| {
            walked.dir_roots.iter().any(|root| **root == *e.kb_dir)
                && !seen.contains(e.doc_id.as_str())
        });
    }
    Ok(Scan {
        files,
        dir_roots: walked.dir_roots.iter().map(|r| r.to_string()).collect(),
        rebuild,
        changes,
        problems: walked.problems,
        ignored: walked.ignored,
    })
}

/// What the index's documents are made with (a change means converting everything again).
fn index_settings(kb: &KnowledgeBase) -> IndexSettings {
    IndexSettings {
        chunk: kb.config.chunk,
        stemming: kb.config.stemming,
        converter_version: CONVERTER_VERSION,
    }
}

/// The `max_workers` threads an ingest or a scan reads, converts and embeds on.
fn workers(kb: &KnowledgeBase, name: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(kb.config.max_workers.max(1))
        .thread_name(move |i| format!("mneme-{name}-{i}"))
        .build()
        .map_err(|err| {
            Error::io(
                format!("starting {name} workers"),
                std::io::Error::other(err),
            )
        })
}

/// Replays a [`Scan`]: the ingest of its walk, with its bytes instead of the files.
pub(crate) fn apply_scan(
    kb: &KnowledgeBase,
    scan: Scan,
    progress: &dyn IngestProgress,
) -> Result<IngestReport> {
    let _writing = kb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut walked = walk::Walk {
        dir_roots: scan
            .dir_roots
            .iter()
            .map(|r| Arc::from(r.as_str()))
            .collect(),
        problems: scan.problems,
        ignored: scan.ignored,
        ..walk::Walk::default()
    };
    for file in scan.files {
        walked.candidates.push(Candidate {
            path: file.path,
            kb_dir: file.kb_dir.as_str().into(),
            doc_id: file.doc_id,
            format: file.format,
            size: file.size,
            mtime_ns: file.mtime_ns,
            inline: file.bytes.map(Arc::from),
            name: None,
        });
    }
    let options = IngestOptions {
        rebuild: scan.rebuild,
        ..IngestOptions::default()
    };
    run_walked(kb, walked, options, progress)
}

/// Adds or replaces `documents` (same doc_id: replaced); nothing else changes.
pub(crate) fn put(
    kb: &KnowledgeBase,
    documents: Vec<NewDocument>,
    progress: &dyn IngestProgress,
) -> Result<IngestReport> {
    let _writing = kb.write_lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut walked = walk::Walk::default();
    for doc in documents {
        walked.candidates.push(Candidate {
            path: PathBuf::from(&doc.path),
            kb_dir: doc.kb_dir.as_str().into(),
            doc_id: doc.doc_id,
            format: doc.format,
            size: doc.bytes.len() as u64,
            mtime_ns: 0,
            inline: Some(doc.bytes.into()),
            name: Some(doc.name),
        });
    }
    run_walked(kb, walked, IngestOptions::default(), progress)
}

fn run_walked(
    kb: &KnowledgeBase,
    walked: walk::Walk,
    options: IngestOptions,
    progress: &dyn IngestProgress,
) -> Result<IngestReport> {
    let current = kb.snapshot();
    let settings = index_settings(kb);
    let rebuild = options.rebuild || current.catalog.settings() != settings;
    let base = if rebuild {
        Catalog::empty(settings)
    } else {
        (*current.catalog).clone()
    };

    let mut report = IngestReport {
        ignored: walked.ignored,
        ..IngestReport::default()
    };
    for (path, problem) in walked.problems {
        progress.problem(&path, &problem);
        report.problems.push((path, problem));
    }
    report.files = walked.candidates.len();
    let candidates = dedupe(walked.candidates, &base, &mut report, progress);

    let planned: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.inline.is_some()
                || base
                    .get(&c.doc_id)
                    .is_none_or(|e| e.size != c.size || e.mtime_ns != c.mtime_ns)
        })
        .collect();
    progress.planned(planned.len(), planned.iter().map(|c| c.size).sum());

    let mut writer = open_writer(kb)?;
    if rebuild {
        writer.delete_all_documents()?;
    }
    let pool = workers(kb, "ingest")?;
    let ctx = WorkerCtx {
        collect_chunks: kb.embedder.is_some(),
        writer: &writer,
        fields: kb.fields,
        base: &base,
        settings,
        max_file_size: kb.config.max_file_size,
    };
    let outcomes: Vec<Outcome> = pool.install(|| {
        candidates
            .par_iter()
            .map(|candidate| {
                let outcome = process(&ctx, candidate);
                if !matches!(outcome, Outcome::Unchanged) {
                    progress.advanced(&candidate.path, candidate.size);
                }
                outcome
            })
            .collect()
    });

    let mut next = base.clone();
    let mut changed = false;
    // Documents (key, chunk texts) whose chunks need vectors, and keys whose vectors go.
    let mut to_embed: Vec<(u64, Vec<String>)> = Vec::new();
    let mut dropped_keys: Vec<u64> = Vec::new();
    for (candidate, outcome) in candidates.iter().zip(outcomes) {
        match outcome {
            Outcome::Unchanged => report.unchanged += 1,
            Outcome::Touched => {
                report.unchanged += 1;
                report.bytes_read += candidate.size;
                next.update_file_meta(&candidate.doc_id, candidate.size, candidate.mtime_ns);
                changed = true;
            }
            Outcome::Indexed {
                entry,
                terms,
                replaced,
                chunks,
            } => {
                dropped_keys.push(entry.key);
                to_embed.push((entry.key, chunks));
                report.bytes_read += candidate.size;
                report.chunks_written += u64::from(entry.n_chunks);
                if replaced {
                    next.remove(&entry.doc_id);
                    report.updated += 1;
                } else {
                    report.added += 1;
                }
                next.insert(entry, &terms);
                changed = true;
            }
            Outcome::Fatal(err) => return Err(Error::Index(err)),
            Outcome::Failed(problem) => {
                report.bytes_read += candidate.size;
                progress.problem(&candidate.path, &problem);
                report.problems.push((candidate.path.clone(), problem));
            }
        }
    }
    // Documents under a walked directory whose file is gone.
    let seen: std::collections::HashSet<&str> =
        candidates.iter().map(|c| c.doc_id.as_str()).collect();
    let gone: Vec<DocEntry> = next
        .documents()
        .filter(|e| {
            walked.dir_roots.iter().any(|root| **root == *e.kb_dir)
                && !seen.contains(e.doc_id.as_str())
        })
        .cloned()
        .collect();
    for entry in gone {
        writer.delete_term(Term::from_field_u64(kb.fields.doc_key, entry.key));
        dropped_keys.push(entry.key);
        next.remove(&entry.doc_id);
        report.removed += 1;
        changed = true;
    }
    report.problems.sort_by(|a, b| a.0.cmp(&b.0));

    let mut vectors = match &kb.embedder {
        Some(embedder) => {
            // On the ingest's threads: `max_workers` bounds the model's parallelism too.
            let (table, vectors_changed) = pool.install(|| {
                embed_chunks(
                    embedder.as_ref(),
                    &kb.dir,
                    &current,
                    rebuild,
                    &next,
                    to_embed,
                    &dropped_keys,
                    progress,
                    &mut report,
                )
            })?;
            changed |= vectors_changed;
            Some(table)
        }
        // Without a model the next generation has no vectors.
        None => None,
    };

    if changed || rebuild {
        next.generation = current.catalog.generation() + 1;
        next.compact_if_sparse();
        next.save(&kb.dir)?;
        if let Some(table) = vectors.as_mut() {
            table.generation = next.generation;
            table.save(&kb.dir)?;
        }
        progress.before_commit();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&index::payload(next.generation));
        prepared.commit()?;
        writer.wait_merging_threads()?;
        files::remove_stale(&kb.dir, next.generation);
        crate::pending::remove(&kb.dir);
        kb.install(Arc::new(next), vectors.map(Arc::new))?;
        report.committed = true;
    } else {
        writer.rollback()?;
    }
    let snapshot = kb.snapshot();
    report.documents = snapshot.catalog.document_count();
    report.chunks = snapshot.catalog.chunk_count();
    report.vectors = snapshot.vectors.as_ref().map_or(0, |v| v.len());
    report.generation = snapshot.catalog.generation();
    Ok(report)
}

/// Drops candidates whose doc_id (or its 64-bit key) is already taken by another file.
fn dedupe(
    candidates: Vec<Candidate>,
    base: &Catalog,
    report: &mut IngestReport,
    progress: &dyn IngestProgress,
) -> Vec<Candidate> {
    let mut by_id: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    let mut keys: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let key = doc_key(&candidate.doc_id);
        let clash = if let Some(first) = by_id.get(&candidate.doc_id) {
            Some(format!(
                "doc_id {} is already used by {}",
                candidate.doc_id,
                first.display()
            ))
        } else if let Some(other) = keys.get(&key).filter(|other| **other != candidate.doc_id) {
            Some(format!("doc_id {} collides with {other}", candidate.doc_id))
        } else {
            base.ord_of_key(key)
                .and_then(|ord| base.entry(ord))
                .filter(|e| e.doc_id != candidate.doc_id)
                .map(|e| format!("doc_id {} collides with {}", candidate.doc_id, e.doc_id))
        };
        if let Some(detail) = clash {
            let problem = Problem::new(ProblemKind::DuplicateId, detail);
            progress.problem(&candidate.path, &problem);
            report.problems.push((candidate.path, problem));
            continue;
        }
        by_id.insert(candidate.doc_id.clone(), candidate.path.clone());
        keys.insert(key, candidate.doc_id.clone());
        kept.push(candidate);
    }
    kept
}

/// The stable key of a doc_id, stored with its chunks.
pub(crate) fn doc_key(doc_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(doc_id.as_bytes())
}

fn open_writer(kb: &KnowledgeBase) -> Result<IndexWriter<TantivyDocument>> {
    let threads = kb.config.max_workers.clamp(1, 8);
    let budget = threads * kb.config.writer_memory_per_thread.max(16 << 20);
    kb.index
        .writer_with_num_threads(threads, budget)
        .map_err(|err| match err {
            tantivy::TantivyError::LockFailure(..) => Error::Busy(kb.dir.clone()),
            other => Error::Index(other),
        })
}

struct WorkerCtx<'a> {
    collect_chunks: bool,
    writer: &'a IndexWriter<TantivyDocument>,
    fields: Fields,
    base: &'a Catalog,
    settings: IndexSettings,
    max_file_size: u64,
}

fn process(ctx: &WorkerCtx<'_>, candidate: &Candidate) -> Outcome {
    let previous = ctx.base.get(&candidate.doc_id);
    if candidate.inline.is_none()
        && previous.is_some_and(|e| e.size == candidate.size && e.mtime_ns == candidate.mtime_ns)
    {
        return Outcome::Unchanged;
    }
    if candidate.size > ctx.max_file_size {
        return Outcome::Failed(Problem::new(
            ProblemKind::TooLarge,
            format!(
                "{} bytes is over the limit of {} bytes (max_file_size)",
                candidate.size, ctx.max_file_size
            ),
        ));
    }
    let bytes = match &candidate.inline {
        Some(inline) => inline.to_vec(),
        None => match std::fs::read(&candidate.path) {
            Ok(bytes) => bytes,
            Err(err) => {
                return Outcome::Failed(Problem::new(ProblemKind::Unreadable, err.to_string()));
            }
        },
    };
    if bytes.len() as u64 > ctx.max_file_size {
        return Outcome::Failed(Problem::new(
            ProblemKind::TooLarge,
            format!(
                "{} bytes is over the limit of {} bytes (max_file_size)",
                bytes.len(),
                ctx.max_file_size
            ),
        ));
    }
    let hash = xxhash_rust::xxh3::xxh3_128(&bytes).to_le_bytes();
    if previous.is_some_and(|e| e.hash == hash) {
        return Outcome::Touched;
    }
    let file_name = candidate
        .path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let converted = match convert::convert(candidate.format, &file_name, &bytes) {
        Ok(converted) => converted,
        Err(problem) => return Outcome::Failed(problem),
    };
    drop(bytes);
    let spans = chunk_text(&converted.text, &converted.headings, ctx.settings.chunk);
    let key = doc_key(&candidate.doc_id);
    if previous.is_some() {
        ctx.writer
            .delete_term(Term::from_field_u64(ctx.fields.doc_key, key));
    }
    let indexed = ctx.fields.searched(ctx.settings.stemming);
    for (chunk_idx, span) in spans.iter().enumerate() {
        let mut doc = TantivyDocument::new();
        doc.add_u64(ctx.fields.doc_key, key);
        doc.add_u64(ctx.fields.chunk_idx, chunk_idx as u64);
        doc.add_u64(ctx.fields.start, span.start as u64);
        doc.add_u64(ctx.fields.end, span.end as u64);
        let body = &converted.text[span.start..span.end];
        doc.add_text(ctx.fields.body, body);
        for heading in &span.heading_path {
            doc.add_text(ctx.fields.heading, heading);
            doc.add_text(indexed, heading);
        }
        doc.add_text(indexed, body);
        if let Err(err) = ctx.writer.add_document(doc) {
            return Outcome::Fatal(err);
        }
    }
    let name = candidate.name.clone().unwrap_or_else(|| {
        candidate
            .path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let entry = DocEntry {
        doc_id: candidate.doc_id.clone(),
        key,
        path: candidate.path.to_string_lossy().into_owned(),
        kb_dir: candidate.kb_dir.to_string(),
        name,
        title: converted.title,
        format: candidate.format,
        size: candidate.size,
        mtime_ns: candidate.mtime_ns,
        hash,
        n_chunks: spans.len() as u32,
        n_chars: converted.text.chars().count() as u64,
    };
    let terms = text::py_terms(&converted.text);
    let chunks = if ctx.collect_chunks {
        spans
            .iter()
            .map(|span| converted.text[span.start..span.end].to_owned())
            .collect()
    } else {
        Vec::new()
    };
    Outcome::Indexed {
        entry,
        terms,
        replaced: previous.is_some(),
        chunks,
    }
}

/// Texts handed to the model per call; their vectors are then saved as pending, so an
/// interruption loses at most one group's work (about 10 s at 100 chunks/s).
const EMBED_GROUP: usize = 1024;

/// Where a row's vector comes from.
enum Source {
    /// A live row of the current table.
    Table(u32),
    /// Slot `i` of the texts embedded now.
    Queued(usize),
    /// The pending vectors of an interrupted ingest, by text hash.
    Resumed(u64),
}

/// The vector table of the next generation: the current one (when it was made by the same
/// model and this is no rebuild) without the rows of `dropped` documents, plus vectors for the
/// chunks of `indexed` documents and of any live document that has none yet. Chunk texts that
/// already have a vector reuse it; the rest are embedded in one batched pass. Returns the
/// table and whether it differs from the current one.
#[allow(clippy::too_many_arguments)]
fn embed_chunks(
    embedder: &dyn Embedder,
    dir: &Path,
    current: &Snapshot,
    rebuild: bool,
    next: &Catalog,
    indexed: Vec<(u64, Vec<String>)>,
    dropped: &[u64],
    progress: &dyn IngestProgress,
    report: &mut IngestReport,
) -> Result<(VectorTable, bool)> {
    let fingerprint = embedder.fingerprint();
    let reusable = current
        .vectors
        .as_deref()
        .filter(|t| !rebuild && t.fingerprint == fingerprint && t.dim() == embedder.dim());
    let mut changed = current.vectors.is_none() || reusable.is_none();
    let mut table = match reusable {
        Some(t) => t.clone(),
        None => VectorTable::empty(0, fingerprint.clone(), embedder.dim())?,
    };
    // Vectors by chunk text, from the table as it was.
    let known: std::collections::HashMap<u64, u32> = table
        .live_rows()
        .map(|(id, row)| (row.text_hash, id))
        .collect();
    for &key in dropped {
        if table.has_document(key) {
            table.remove_document(key);
            changed = true;
        }
    }
    // Live documents without vectors (an index made before the model was configured).
    let mut pending = indexed;
    let fresh: std::collections::HashSet<u64> = pending.iter().map(|(k, _)| *k).collect();
    for entry in next.documents() {
        if entry.n_chunks > 0 && !table.has_document(entry.key) && !fresh.contains(&entry.key) {
            let chunks = search::document_chunks(current, entry.key)?;
            pending.push((entry.key, chunks.into_iter().map(|c| c.body).collect()));
        }
    }
    // Vectors an interrupted ingest of this model computed.
    let resumed = crate::pending::load(dir, &fingerprint, embedder.dim())?;
    // Reuse, or queue each distinct new text once.
    let mut rows: Vec<(Row, Source)> = Vec::new();
    let mut queue: Vec<&str> = Vec::new();
    let mut queue_hashes: Vec<u64> = Vec::new();
    let mut resumed_used: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut queued: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (key, chunks) in &pending {
        for (i, text) in chunks.iter().enumerate() {
            let hash = text_hash(text);
            let row = Row {
                key: *key,
                chunk: i as u32,
                text_hash: hash,
            };
            if let Some(&id) = known.get(&hash) {
                rows.push((row, Source::Table(id)));
                report.vectors_reused += 1;
            } else if resumed.contains_key(&hash) {
                rows.push((row, Source::Resumed(hash)));
                resumed_used.insert(hash);
            } else {
                let slot = *queued.entry(hash).or_insert_with(|| {
                    queue.push(text);
                    queue_hashes.push(hash);
                    queue.len() - 1
                });
                rows.push((row, Source::Queued(slot)));
            }
        }
    }
    report.vectors_resumed = resumed_used.len();
    progress.embedding(queue.len());
    // In groups, so that the model's token buffers stay bounded on large corpora, each saved
    // as pending before the next starts.
    let mut computed = Vec::with_capacity(queue.len());
    let mut saved = match queue.is_empty() {
        true => None,
        false => Some(crate::pending::PendingWriter::open(
            dir,
            &fingerprint,
            embedder.dim(),
        )?),
    };
    for (group, hashes) in queue
        .chunks(EMBED_GROUP)
        .zip(queue_hashes.chunks(EMBED_GROUP))
    {
        let vectors = embedder
            .embed(group, &|n| progress.embedded(n))
            .map_err(Error::Embedding)?;
        if vectors.len() != group.len() || vectors.iter().any(|v| v.len() != embedder.dim()) {
            return Err(Error::Embedding(format!(
                "the model returned {} vectors for {} texts (or of the wrong length)",
                vectors.len(),
                group.len()
            )));
        }
        if let Some(writer) = saved.as_mut() {
            writer.append(hashes, &vectors)?;
        }
        computed.extend(vectors);
    }
    report.embedded = queue.len();
    for (row, source) in &rows {
        match source {
            // Copied out first: the table cannot lend a row while it grows.
            Source::Table(id) => {
                let vector = table.vector(*id).to_vec();
                table.push(*row, &vector)?;
            }
            Source::Queued(slot) => table.push(*row, &computed[*slot])?,
            Source::Resumed(hash) => table.push(*row, &resumed[hash])?,
        }
        changed = true;
    }
    table.compact_if_sparse()?;
    Ok((table, changed))
}
