//! `mneme bench`: the performance report (KnowledgeBeast's `benchmark`, and beyond).
//!
//! Measurements come from `mneme_app::bench` (in process) and `http.rs` (against a running
//! server, loopback only); this module runs them with a progress bar, renders text, JSON or
//! HTML, and compares with a baseline report.

mod compare;
mod html;
pub(crate) mod http;
mod text;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mneme_app::bench::{self, Plan, Report};
use mneme_app::{Config, Knowledge, kb_config};

/// Exit status when the report shows a regression beyond `--max-regression`.
pub const EXIT_REGRESSION: u8 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    Keyword,
    Vector,
    Hybrid,
}

impl BenchArgs {
    /// `--format` when given, else what the output file's extension says (KnowledgeBeast's
    /// guide runs `benchmark --output report.html` and expects a page), else text.
    pub fn resolved_format(&self) -> Format {
        if let Some(format) = self.format {
            return format;
        }
        let extension = self
            .output
            .as_deref()
            .and_then(|path| path.extension())
            .and_then(|ext| ext.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("html" | "htm") => Format::Html,
            Some("json") => Format::Json,
            _ => Format::Text,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Report format [default: from the --output file's extension (.html, .htm, .json),
    /// else text].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Measure a generated corpus of N English-like documents instead of the configured
    /// knowledge base (also measures ingest and latency against corpus size).
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,
    /// Queries to run against the configured knowledge base, one per line [default: the
    /// warming queries].
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
    /// How every query is ranked; vector and hybrid need an embedding model (and embed the
    /// synthetic corpus, which takes minutes for thousands of documents).
    #[arg(long, value_enum, default_value = "keyword")]
    pub mode: BenchMode,
    /// Timed queries per latency measurement (and predictions per pattern count).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub iterations: usize,
    /// Stored-pattern counts for the pattern-engine section (comma list); 0 skips it.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,10000",
        value_name = "N,..."
    )]
    pub patterns: Vec<usize>,
    /// Also measure a running `mneme serve` at this URL (loopback only), e.g.
    /// http://127.0.0.1:8000.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Requests per HTTP workload and concurrency.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub http_requests: usize,
    /// Compare with an earlier JSON report and print the ratios.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit with status 4 when a figure is worse by more than PCT percent.
    #[arg(long, default_value_t = 10.0, value_name = "PCT")]
    pub max_regression: f64,
}

/// The progress bar (hidden when stderr is not a terminal).
struct Bar(ProgressBar);

impl bench::Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        self.0.set_message(name.to_owned());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn step(&self) {
        self.0.inc(1);
    }
}

fn progress_bar() -> Bar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<32} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Bar(bar)
}

pub fn run(config: &Config, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.iterations == 0 {
        anyhow::bail!("--iterations must be at least 1");
    }
    let http_target = args.url.as_deref().map(http::Target::parse).transpose()?;
    let baseline = args
        .baseline
        .as_ref()
        .map(|path| -> anyhow::Result<Report> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the baseline {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a JSON report of `mneme bench --format json`",
                    path.display()
                )
            })
        })
        .transpose()?;
    let embedder = mneme_app::embedder(&config.kb).map_err(|err| anyhow::anyhow!("{err}"))?;
    let ranking = match args.mode {
        BenchMode::Keyword => mneme_kb::Ranking::Bm25,
        BenchMode::Vector => mneme_kb::Ranking::Vector,
        BenchMode::Hybrid => mneme_kb::Ranking::Hybrid(mneme_kb::Fusion::Weighted(
            mneme_kb::Alpha::new(config.kb.hybrid_alpha as f32).unwrap_or_default(),
        )),
    };
    if ranking.uses_vectors() && embedder.is_none() {
        anyhow::bail!(
            "--mode {} needs an embedding model: run scripts/fetch-model, or set KB_EMBEDDING_MODEL to a sentence-transformers folder",
            ranking.name()
        );
    }
    let plan = Plan {
        ranking,
        embedder: if ranking.uses_vectors() {
            embedder
        } else {
            None
        },
        iterations: args.iterations,
        pattern_counts: args.patterns.iter().copied().filter(|&n| n > 0).collect(),
        ..Plan::default()
    };
    let bar = progress_bar();
    let mut report = bench::new_report();
    let scratch = tempfile::Builder::new()
        .prefix("mneme-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    match args.synthetic {
        Some(0) => anyhow::bail!("--synthetic needs at least 1 document"),
        Some(documents) => {
            let engine = kb_config(&config.kb);
            let (kb, queries, ingest) = bench::synthetic_kb(
                &scratch.path().join("main"),
                documents,
                engine.clone(),
                plan.embedder.clone(),
                plan.seed,
                &bar,
            )
            .context("building the synthetic knowledge base")?;
            report.corpus.source = "synthetic".to_owned();
            report.ingest = Some(ingest);
            bench::measure_kb(&kb, &queries, &plan, &mut report, &bar);
            drop(kb);
            let sizes: Vec<usize> = [documents / 10, documents / 3]
                .into_iter()
                .filter(|&n| n >= 10)
                .collect();
            let mut points =
                bench::corpus_scalability(scratch.path(), &sizes, &engine, &plan, &bar)
                    .context("measuring latency against corpus size")?;
            points.push(bench::SizePoint {
                documents,
                p50_ms: report.query_latency.p50_ms,
                p99_ms: report.query_latency.p99_ms,
            });
            report.corpus_scalability = points;
        }
        None => {
            let knowledge = Knowledge::open(&config.kb).with_context(|| {
                format!("opening the index at {}", config.kb.index_dir.display())
            })?;
            if knowledge.kb.stats().documents == 0 {
                anyhow::bail!(
                    "the knowledge base at {} is empty: run `mneme ingest` first, or measure a generated corpus with `mneme bench --synthetic 1000`",
                    config.kb.index_dir.display()
                );
            }
            let queries = match &args.queries {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|q| !q.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => config.kb.warming_queries.clone(),
            };
            let queries: Vec<String> = queries
                .into_iter()
                .filter(|q| mneme_kb::validate_query(q).is_ok())
                .collect();
            if queries.is_empty() {
                anyhow::bail!(
                    "no valid query to run: give some with --queries FILE (one per line)"
                );
            }
            report.corpus.source = "configured".to_owned();
            bench::measure_kb(&knowledge.kb, &queries, &plan, &mut report, &bar);
        }
    }
    report.pattern_engine = bench::measure_seq(&plan, &bar);
    report.memory_usage = bench::memory();
    if let Some(target) = &http_target {
        report.http = http::measure(target, args.http_requests, &bar)?;
    }
    bar.0.finish_and_clear();

    let rendered = match args.resolved_format() {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Text => text::render(&report),
        Format::Html => html::render(&report),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &rendered)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("report written to {}", path.display());
        }
        None => print!("{rendered}"),
    }
    eprint!("{}", text::summary(&report));
    if let Some(baseline) = &baseline {
        let comparison = compare::compare(baseline, &report, args.max_regression);
        eprint!("{}", comparison.render());
        if comparison.regressed() {
            return Ok(ExitCode::from(EXIT_REGRESSION));
        }
    }
    Ok(ExitCode::SUCCESS)
}
