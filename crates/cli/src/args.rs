//! Command-line arguments (clap derive) and how global flags feed the configuration tree.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mneme_app::{Config, FlagValue};

const AFTER_HELP: &str = "\
Configuration, lowest to highest precedence: built-in defaults, the TOML file given with
--config (or MNEME_CONFIG), environment variables, then flags. KnowledgeBeast's variables
work: KB_KNOWLEDGE_DIRS (comma list), KB_CACHE_FILE (index directory), KB_MAX_CACHE_SIZE,
KB_MAX_WORKERS, KB_AUTO_WARM, KB_HEARTBEAT_INTERVAL, KB_CHUNK_SIZE, KB_CHUNK_OVERLAP,
KB_LOG_LEVEL (or LOG_LEVEL, as KATO's compose files set it); mneme adds MNEME_DATA_DIR,
MNEME_KB_MAX_FILE_SIZE and MNEME_KB_STEMMING. A .env file in the working directory is read
first, as KATO's settings read it (variables already in the environment win); a variable of
KATO or KnowledgeBeast that mneme does not read is named in a warning at start.

Exit status: 0 success, 1 error, 2 bad usage, 3 partial success (some files or queries
were skipped; each is reported on stderr with its path and reason), 4 a benchmark
regression beyond --max-regression (bench --baseline).

Examples:
  mneme ingest docs/                 index a directory (again: only changed files are read)
  mneme query \"cache eviction\"       top 10 documents by BM25 (hybrid by default once a
                                     model is present: scripts/fetch-model, then ingest)
  mneme query \"cache\" --mode terms   KnowledgeBeast's ranking (distinct matched terms)
  mneme query --batch queries.txt    one JSON line per query
  mneme stats --json                 index and cache figures for scripts";

/// mneme: a fast knowledge engine. Ingest documents, query them by keyword, keep hot answers
/// cached.
#[derive(Debug, Parser)]
#[command(name = "mneme", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; each command's help lists them after its own.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "MNEME_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for mneme's data (the index lives in DIR/kb unless KB_CACHE_FILE says
    /// otherwise) [default: .mneme].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Log level: trace, debug, info, warning, error [default: info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl GlobalArgs {
    /// The configuration, with `extra` flags of the subcommand (`serve --port`,
    /// `ingest --max-workers`) on top.
    pub fn load_config(&self, extra: &[FlagValue]) -> anyhow::Result<Config> {
        let mut flags = Vec::new();
        let mut push = |key, value: &Option<String>, flag| {
            if let Some(value) = value {
                flags.push(FlagValue {
                    key,
                    value: value.clone(),
                    flag,
                });
            }
        };
        push("data_dir", &self.data_dir, "--data-dir");
        push("log_level", &self.log_level, "--log-level");
        flags.extend(extra.iter().cloned());
        let env = |var: &str| std::env::var(var).ok();
        Ok(mneme_app::config::load(
            self.config.as_deref(),
            &env,
            &flags,
        )?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest files and directories (default: the configured knowledge dirs). Only files whose
    /// content changed are read again, and documents whose files are gone are removed.
    Ingest(IngestArgs),
    /// Search the knowledge base.
    Query(QueryArgs),
    /// Show index size and cache counters.
    Stats(StatsArgs),
    /// Run the configured warming queries so that they are answered from the cache.
    Warm,
    /// Empty the query-result cache.
    ClearCache,
    /// Remove every document from the index (the files themselves stay; `ingest` brings them
    /// back). Asks first on a terminal; --yes skips the question, and is needed in scripts.
    Clear(ClearArgs),
    /// Check that the configuration, knowledge dirs, index and disk are usable.
    Health(HealthArgs),
    /// Verify every store of the data directory, byte for byte: the index (its checksums),
    /// the pattern store (each record against its last commit), the project registry and each
    /// project's index. Says what is damaged and what to do; exit 1 when something is, 3 when
    /// a running mneme holds a store.
    Check(CheckArgs),
    /// The pattern engine (KATO's observe / learn / predict) on the embedded store.
    Seq(crate::seq::SeqArgs),
    /// Measure both engines and write a performance report (text, JSON or HTML).
    ///
    /// On the configured knowledge base, or on a generated corpus with --synthetic N; with
    /// --url, also a running server on this machine. --baseline compares with an earlier JSON
    /// report and exits with status 4 on a regression beyond --max-regression percent.
    /// `benchmark` (KnowledgeBeast's name) is an alias; the format follows --output's
    /// extension (.html, .json) unless --format says otherwise.
    #[command(visible_alias = "benchmark")]
    Bench(crate::bench::BenchArgs),
    /// Serve KnowledgeBeast's and KATO's REST APIs on one port (default 127.0.0.1:8000).
    ///
    /// At start the knowledge dirs are scanned in the background (only changed files are
    /// read). With KB_API_KEY set, /api routes need an X-API-Key header. SIGINT or SIGTERM
    /// stop the server after the requests in flight finish.
    Serve(ServeArgs),
    /// Serve the MCP tools (Model Context Protocol) on stdin/stdout, for MCP clients.
    ///
    /// KnowledgeBeast's 11 kb_* tools on the projects of /api/v2 (search, ingest, list,
    /// create, delete, info, analytics, export and import in zip, json or yaml, health) and the
    /// pattern engine's kato_* tools (sessions, observe, learn, predictions). stdout carries
    /// only JSON-RPC; logs go to stderr. `mcp-server` (KnowledgeBeast's name) is an alias, so an
    /// MCP client configuration only changes its command, e.g.
    /// {"command": "mneme", "args": ["mcp", "--data-dir", "/srv/mneme"]}.
    /// `mneme serve` offers the same tools over Streamable HTTP at /mcp.
    #[command(visible_alias = "mcp-server")]
    Mcp(crate::mcp::McpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    ///
    /// bash: mneme completions bash > ~/.local/share/bash-completion/completions/mneme;
    /// zsh: mneme completions zsh > ~/.zfunc/_mneme (with ~/.zfunc in fpath);
    /// fish: mneme completions fish > ~/.config/fish/completions/mneme.fish.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    ///
    /// mneme man | man -l -   reads it now; mneme man --dir /usr/local/share/man/man1 installs
    /// mneme.1 and mneme-<command>.1 for every command.
    Man(ManArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write mneme.1 and one mneme-<command>.1 per command into DIR instead of printing
    /// mneme.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1, or KB_API_HOST / MNEME_HOST].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8000, or KB_API_PORT / MNEME_PORT].
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Do not scan the knowledge dirs at start.
    #[arg(long)]
    pub no_ingest: bool,
    /// Seconds to wait for requests in flight after SIGINT / SIGTERM.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub grace_seconds: u64,
    /// Threads that convert and index files [default: KB_MAX_WORKERS, else number of CPUs].
    #[arg(long, value_name = "N")]
    pub max_workers: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or directories to ingest [default: the configured knowledge dirs].
    pub paths: Vec<PathBuf>,
    /// Re-read every file and rebuild the index from scratch.
    #[arg(long)]
    pub rebuild: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Threads that convert and index files [default: KB_MAX_WORKERS, else number of CPUs].
    #[arg(long, value_name = "N")]
    pub max_workers: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// BM25 over heading-aware chunks, one hit per document.
    Keyword,
    /// KnowledgeBeast's ranking: number of distinct query words in the document.
    Terms,
    /// Cosine similarity of sentence embeddings (needs a model: scripts/fetch-model).
    Vector,
    /// Keyword and vector scores fused (the default when a model is configured).
    Hybrid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FusionArg {
    /// alpha * cosine + (1 - alpha) * BM25 / best BM25.
    Weighted,
    /// Reciprocal-rank fusion: alpha / (60 + vector rank) + (1 - alpha) / (60 + keyword rank).
    Rrf,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query (1 to 1000 characters; none of < > ; & | $ ` and no line breaks).
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    pub text: Option<String>,
    /// Number of documents to return.
    #[arg(long, short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Number of documents to skip (for paging).
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Ranking mode [default: hybrid when an embedding model is configured, else keyword].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Weight of the vector side in hybrid mode, 0 to 1 [default: kb.hybrid_alpha, 0.7].
    #[arg(long, value_parser = parse_alpha)]
    pub alpha: Option<f32>,
    /// How hybrid mode combines the two sides.
    #[arg(long, value_enum, default_value_t = FusionArg::Weighted)]
    pub fusion: FusionArg,
    /// Do not read or fill the result cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Include each document's full text.
    #[arg(long)]
    pub content: bool,
    /// Print JSON instead of a listing.
    #[arg(long)]
    pub json: bool,
    /// Read one query per line from FILE ('-' for stdin) and print one JSON line per query.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    /// KnowledgeBeast's `top_k` spelling: refused with a pointer to -n/--limit (see main).
    #[arg(long = "top", alias = "top-k", hide = true, num_args = 0..=1, value_name = "N")]
    pub top: Option<Option<String>>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_alpha(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(alpha) if (0.0..=1.0).contains(&alpha) => Ok(alpha),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}
