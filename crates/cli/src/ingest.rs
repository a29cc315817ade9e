//! `mneme ingest`: a progress bar while files are read, one line per skipped file, a summary
//! at the end, and exit status 3 when some files were skipped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mneme_app::{Config, Knowledge};
use mneme_kb::convert::Problem;
use mneme_kb::{ErrorKind, IngestOptions, IngestProgress, IngestReport};

use crate::args::IngestArgs;
use crate::output::{human_bytes, json_line};

/// Refuses, before anything is written to disk, to ingest paths that do not exist: named
/// paths are reported as they were typed; missing configured knowledge dirs come with a hint
/// on how to name other ones (a new user's first `mneme ingest` or `mneme query` outside
/// the repository has no `knowledge-base/`).
pub fn check_roots(config: &Config, paths: &[PathBuf], doing: &str) -> anyhow::Result<()> {
    if !paths.is_empty() {
        return match paths.iter().find(|path| !path.exists()) {
            Some(path) => anyhow::bail!("{}: no such file or directory", path.display()),
            None => Ok(()),
        };
    }
    let dirs = &config.kb.knowledge_dirs;
    let missing: Vec<&PathBuf> = dirs.iter().filter(|dir| !dir.exists()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let origin = config
        .origins
        .get("kb.knowledge_dirs")
        .map_or("default", String::as_str);
    let plural = if missing.len() > 1 { "s" } else { "" };
    let source = if origin == "default" {
        "the default knowledge dir".to_owned()
    } else {
        format!("knowledge dir{plural} from {origin}")
    };
    let verb = if missing.len() > 1 { "do" } else { "does" };
    let shown = display_paths(&missing.iter().map(|p| (*p).clone()).collect::<Vec<_>>());
    let relative = missing.iter().any(|p| p.is_relative());
    let cwd = match std::env::current_dir() {
        Ok(cwd) if relative => format!(" in {}", cwd.display()),
        _ => String::new(),
    };
    anyhow::bail!(
        "{doing}: {shown} ({source}) {verb} not exist{cwd}\n\
         hint: `mneme ingest PATH...` indexes the files and directories you name; \
         KB_KNOWLEDGE_DIRS=DIR[,DIR...] (or kb.knowledge_dirs in a --config file) sets the default"
    )
}

pub fn run(knowledge: &Knowledge, args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let roots = if args.paths.is_empty() {
        knowledge.knowledge_dirs()
    } else {
        args.paths.clone()
    };
    let (report, elapsed) = ingest(knowledge, &roots, args.rebuild, !args.json)?;
    if args.json {
        println!("{}", json_line(&report_json(&report, elapsed)));
    } else {
        print_summary(&report, elapsed);
    }
    Ok(if report.is_partial() {
        ExitCode::from(crate::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// Ingests `roots` (the knowledge dirs when empty) with a progress bar on a terminal, and
/// saves the cache. Problems are printed to stderr as they happen when `print_problems`.
pub fn ingest(
    knowledge: &Knowledge,
    roots: &[PathBuf],
    rebuild: bool,
    print_problems: bool,
) -> anyhow::Result<(IngestReport, Duration)> {
    let started = Instant::now();
    let progress = Progress::new(print_problems);
    let shown = if roots.is_empty() {
        knowledge.knowledge_dirs()
    } else {
        roots.to_vec()
    };
    let report = knowledge
        .ingest(
            roots,
            IngestOptions {
                rebuild,
                ..IngestOptions::default()
            },
            &progress,
        )
        .map_err(|err| match err.kind() {
            // The message already names the path.
            ErrorKind::MissingPath => anyhow::Error::new(err),
            _ => anyhow::Error::new(err).context(format!("ingesting {}", display_paths(&shown))),
        })?;
    progress.bar.finish_and_clear();
    let elapsed = started.elapsed();
    if let Err(err) = knowledge.kb.persist_cache() {
        tracing::warn!("could not save the query cache: {err}");
    }
    Ok((report, elapsed))
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Progress {
    bar: ProgressBar,
    print_problems: bool,
    /// Test hook: with MNEME_TEST_PAUSE_BEFORE_COMMIT=FILE, the ingest creates FILE right
    /// before its commit and then waits, so that a test can kill it at the worst moment.
    pause_marker: Option<PathBuf>,
}

impl Progress {
    fn new(print_problems: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} ingesting [{bar:30}] {pos}/{len} files  {binary_bytes}/{binary_total_bytes}  {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        // The crash tests' hook (pause before the commit until a marker file goes away), read
        // only by debug builds: the release binary ships without it.
        let pause_marker = if cfg!(debug_assertions) {
            std::env::var_os("MNEME_TEST_PAUSE_BEFORE_COMMIT").map(PathBuf::from)
        } else {
            None
        };
        Progress {
            bar,
            print_problems,
            pause_marker,
        }
    }
}

impl IngestProgress for Progress {
    fn planned(&self, files: usize, bytes: u64) {
        self.bar.set_length(files as u64);
        self.bar.set_message(human_bytes(bytes));
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} ingesting [{bar:30}] {pos}/{len} files  {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
    }

    fn advanced(&self, _path: &Path, _bytes: u64) {
        self.bar.inc(1);
    }

    fn problem(&self, path: &Path, problem: &Problem) {
        if self.print_problems {
            self.bar
                .suspend(|| eprintln!("{} {}: {problem}", problem_verb(problem), path.display()));
        }
    }

    fn embedding(&self, chunks: usize) {
        if chunks == 0 {
            return;
        }
        self.bar.set_position(0);
        self.bar.set_length(chunks as u64);
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} embedding [{bar:30}] {pos}/{len} chunks  {per_sec}  {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
    }

    fn embedded(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    fn before_commit(&self) {
        if let Some(marker) = &self.pause_marker {
            let _ = std::fs::write(marker, b"paused");
            std::thread::sleep(Duration::from_secs(120));
        }
    }
}

fn print_summary(report: &IngestReport, elapsed: Duration) {
    println!(
        "{} files: {} added, {} updated, {} unchanged, {} removed, {} skipped, {} failed{}",
        report.files,
        report.added,
        report.updated,
        report.unchanged,
        report.removed,
        report.skipped(),
        report.failed(),
        if report.ignored > 0 {
            format!(" ({} other files ignored)", report.ignored)
        } else {
            String::new()
        },
    );
    println!(
        "read {} and wrote {} chunks in {:.2}s; the index holds {} documents in {} chunks (generation {})",
        human_bytes(report.bytes_read),
        report.chunks_written,
        elapsed.as_secs_f64(),
        report.documents,
        report.chunks,
        report.generation,
    );
    if report.vectors > 0 || report.embedded > 0 {
        println!(
            "embedded {} chunks ({} vectors reused, {} resumed from an interrupted ingest); {} chunk vectors in the index",
            report.embedded, report.vectors_reused, report.vectors_resumed, report.vectors
        );
    }
    if report.is_partial() {
        println!(
            "partial ingest: {}, see the reasons above",
            problem_counts(report)
        );
    }
}

/// How a problem file is reported: `failed` when mneme tried to read or convert it and could
/// not (unreadable, corrupt), `skipped` when it declined it (empty, binary, too large, ...).
pub fn problem_verb(problem: &Problem) -> &'static str {
    if problem.kind.is_failure() {
        "failed"
    } else {
        "skipped"
    }
}

/// `2 skipped, 1 failed`, leaving out a zero count.
pub fn problem_counts(report: &IngestReport) -> String {
    let mut parts = Vec::new();
    if report.skipped() > 0 {
        parts.push(format!("{} file(s) skipped", report.skipped()));
    }
    if report.failed() > 0 {
        parts.push(format!("{} failed", report.failed()));
    }
    parts.join(", ")
}

fn report_json(report: &IngestReport, elapsed: Duration) -> serde_json::Value {
    serde_json::json!({
        "files": report.files,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "ignored": report.ignored,
        "embedded": report.embedded,
        "vectors_reused": report.vectors_reused,
        "vectors_resumed": report.vectors_resumed,
        "vectors": report.vectors,
        "skipped": report.skipped(),
        "failed": report.failed(),
        "problems": report.problems.iter().map(|(path, problem)| serde_json::json!({
            "path": path.display().to_string(),
            "status": problem_verb(problem),
            "reason": problem.kind.name(),
            "detail": problem.detail,
        })).collect::<Vec<_>>(),
        "chunks_written": report.chunks_written,
        "bytes_read": report.bytes_read,
        "documents": report.documents,
        "chunks": report.chunks,
        "generation": report.generation,
        "committed": report.committed,
        "partial": report.is_partial(),
        "elapsed_seconds": elapsed.as_secs_f64(),
    })
}

/// Opens the index for `ingest --rebuild`: an index too damaged to open is moved aside
/// (`<index>.damaged-<unix seconds>`, kept for inspection) and a new one built in its place,
/// since the knowledge dirs hold every document it had.
pub fn open_for_rebuild(settings: &mneme_app::KbSettings) -> anyhow::Result<Knowledge> {
    let dir = &settings.index_dir;
    match Knowledge::open(settings) {
        Ok(knowledge) => Ok(knowledge),
        Err(err) if err.kind() == ErrorKind::Corrupt && dir.is_dir() => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut aside = dir.as_os_str().to_owned();
            aside.push(format!(".damaged-{stamp}"));
            let aside = std::path::PathBuf::from(aside);
            std::fs::rename(dir, &aside)
                .with_context(|| format!("moving the damaged index {} aside", dir.display()))?;
            eprintln!(
                "the index could not be opened ({err}); moved it to {} and rebuilding it from \
                 the knowledge dirs",
                aside.display()
            );
            Knowledge::open(settings)
                .with_context(|| format!("opening a new index at {}", dir.display()))
        }
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("opening the index at {}", dir.display())))
        }
    }
}
