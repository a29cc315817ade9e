//! One configuration tree, layered: defaults < TOML file (`--config`) < environment < flags.
//!
//! Every setting is described once in [`SETTINGS`] with its TOML key, the environment
//! variables that set it (KnowledgeBeast's `KB_*` names where they exist) and what it accepts,
//! so that a bad value anywhere stops start-up with a message naming where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::projects::archive::ArchiveLimits;

pub mod environment;

/// The resolved configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub log_level: LogLevel,
    pub kb: KbSettings,
    pub seq: SeqSettings,
    pub server: ServerSettings,
    pub cluster: ClusterSettings,
    /// Where each setting came from (`default`, `KB_CHUNK_SIZE`, `--max-workers`, ...).
    pub origins: BTreeMap<&'static str, String>,
}

/// Knowledge-base settings (KnowledgeBeast's `KnowledgeBeastConfig` where names agree).
#[derive(Clone, Debug, PartialEq)]
pub struct KbSettings {
    pub knowledge_dirs: Vec<PathBuf>,
    /// Where the index lives (`KB_CACHE_FILE`); default `<data_dir>/kb`.
    pub index_dir: PathBuf,
    pub max_cache_size: usize,
    pub max_workers: usize,
    pub auto_warm: bool,
    pub warming_queries: Vec<String>,
    pub heartbeat_interval: u64,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub max_file_size: u64,
    pub stemming: bool,
    /// The sentence-embedding model for vector and hybrid search (`KB_EMBEDDING_MODEL`).
    pub embedding_model: EmbeddingModel,
    /// Weight of the vector side in hybrid ranking when a query gives none.
    pub hybrid_alpha: f64,
    /// Whether ingests follow symbolic links that lead outside the knowledge directories
    /// (`MNEME_FOLLOW_EXTERNAL_LINKS`); by default they are skipped, as the API refuses them.
    pub follow_external_links: bool,
}

/// Which embedding model the knowledge base uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbeddingModel {
    /// The default: all-MiniLM-L6-v2 in `<data_dir>/models` when scripts/fetch-model put it
    /// there, otherwise none (keyword search only).
    Auto(PathBuf),
    /// This sentence-transformers folder, which must exist.
    Folder(PathBuf),
    /// No model: keyword search only.
    Off,
}

impl EmbeddingModel {
    /// The folder to load, if any.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            EmbeddingModel::Auto(dir) => dir
                .join("model.safetensors")
                .is_file()
                .then_some(dir.as_path()),
            EmbeddingModel::Folder(dir) => Some(dir),
            EmbeddingModel::Off => None,
        }
    }
}

/// Where scripts/fetch-model puts all-MiniLM-L6-v2.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";

fn embedding_model(value: Option<&str>, data_dir: &Path) -> EmbeddingModel {
    let models = data_dir.join("models");
    match value.map(str::trim) {
        None | Some("auto") => EmbeddingModel::Auto(models.join(DEFAULT_MODEL_NAME)),
        Some("" | "none" | "off" | "false") => EmbeddingModel::Off,
        // KnowledgeBeast names models; a bare name means the folder of that name in
        // <data_dir>/models.
        Some(name)
            if !name.contains(std::path::MAIN_SEPARATOR)
                || name.starts_with("sentence-transformers/") =>
        {
            let name = name.trim_start_matches("sentence-transformers/");
            EmbeddingModel::Folder(models.join(name))
        }
        Some(path) => EmbeddingModel::Folder(PathBuf::from(path)),
    }
}

/// Pattern-engine settings: KATO's environment names where they exist.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqSettings {
    /// The pattern store (one redb file); default `<data_dir>/seq/patterns.redb`.
    pub store: PathBuf,
    /// `immediate`: a learn that returned is on disk; `periodic`: flushed every
    /// `flush_interval_ms`, a crash loses at most that much.
    pub periodic: bool,
    pub flush_interval_ms: u64,
    pub service_name: String,
    pub max_pattern_length: usize,
    pub persistence: usize,
    pub recall_threshold: f64,
    pub rolling: bool,
    pub max_predictions: usize,
    pub sort_symbols: bool,
    pub process_predictions: bool,
    pub use_token_matching: bool,
    pub rank_sort_algo: String,
    pub vector_neighbours: usize,
    pub session_ttl: u64,
    pub session_auto_extend: bool,
}

/// Cluster mode (docs/cluster.md): the stores shared by every node.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    /// `MNEME_POSTGRES_URL`: with it (and `redis_url`) the node runs in cluster mode, the
    /// pattern engine's store of record in this PostgreSQL database.
    pub postgres_url: Option<String>,
    /// `MNEME_REDIS_URL`: the sessions' store in cluster mode.
    pub redis_url: Option<String>,
    /// PostgreSQL connections per node.
    pub postgres_pool_size: usize,
    /// How long a replica may answer without checking the store's version (0: check before
    /// every request, so that every acknowledged write is seen on every node).
    pub max_staleness_ms: u64,
}

impl ClusterSettings {
    /// Whether the node runs in cluster mode.
    pub fn enabled(&self) -> bool {
        self.postgres_url.is_some() || self.redis_url.is_some()
    }
}

/// `mneme serve` settings: KnowledgeBeast's `KB_*` variables where they exist.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Accepted `X-API-Key` values (`KB_API_KEY`); empty means the API is open.
    pub api_keys: Vec<String>,
    /// CORS origins (`KB_ALLOWED_ORIGINS`); `*` allows any. They (and same-origin and
    /// localhost pages) are also the origins whose writes and websockets are accepted.
    pub allowed_origins: Vec<String>,
    /// `Host` headers the server answers (`MNEME_ALLOWED_HOSTS`), against DNS rebinding: a name
    /// (any port) or `name:port`; empty = any host.
    pub allowed_hosts: Vec<String>,
    /// `X-API-Key` values KATO's routes require (`MNEME_KATO_API_KEY`); empty = keyless, as in
    /// KATO.
    pub kato_api_keys: Vec<String>,
    pub max_request_size: u64,
    pub max_query_length: u64,
    /// Requests per API key (or client address) per 60 s; 0 = no limit.
    pub rate_limit_per_key: u64,
    /// Per-route limits, requests per minute per client: `("/api/v1/query", 30)`.
    pub rate_limits: Vec<(String, u64)>,
    /// Where API v2 projects live; default `<data_dir>/projects`.
    pub projects_dir: PathBuf,
    /// Bounds of a project import (`KB_IMPORT_*`): the upload, and what it decompresses to.
    pub import: ArchiveLimits,
    /// Requests in flight that KATO's `/concurrency` reports against
    /// (`KATO_LIMIT_CONCURRENCY`); mneme queues past it instead of dropping requests.
    pub concurrency_limit: u64,
}

/// KnowledgeBeast's default CORS origins.
pub fn default_origins() -> Vec<String> {
    ["3000", "8000", "8080"]
        .iter()
        .flat_map(|port| {
            [
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ]
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// KnowledgeBeast's default warming queries.
pub const DEFAULT_WARMING_QUERIES: &[&str] = &[
    "audio processing",
    "juce framework",
    "librosa analysis",
    "machine learning",
    "signal processing",
    "real-time audio",
    "plugin development",
];

/// A setting that could not be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Path,
    PathList,
    StringList,
    Int { min: u64 },
    IntRange { min: u64, max: u64 },
    Float { min: f64, max: f64 },
    Choice(&'static [&'static str]),
    Text,
    Bool,
    Level,
}

impl Kind {
    fn accepts(self) -> String {
        match self {
            Kind::Path => "a path".into(),
            Kind::PathList => {
                "a comma-separated list of directories (a TOML array in files)".into()
            }
            Kind::StringList => "a list of strings".into(),
            Kind::Int { min } => format!("an integer >= {min}"),
            Kind::IntRange { min, max } => format!("an integer from {min} to {max}"),
            Kind::Float { min, max } => format!("a number from {min} to {max}"),
            Kind::Choice(names) => format!("one of {}", names.join(", ")),
            Kind::Text => "a non-empty string".into(),
            Kind::Bool => "true or false (also 1/0, yes/no, on/off, t/f, y/n)".into(),
            Kind::Level => "one of trace, debug, info, warning, error, critical".into(),
        }
    }
}

struct Spec {
    key: &'static str,
    env: &'static [&'static str],
    kind: Kind,
}

const RANK_NAMES: &[&str] = &[
    "potential",
    "similarity",
    "evidence",
    "confidence",
    "snr",
    "fragmentation",
    "frequency",
    "normalized_entropy",
    "global_normalized_entropy",
    "itfdf_similarity",
    "confluence",
    "predictive_information",
    "bayesian_posterior",
    "bayesian_prior",
    "bayesian_likelihood",
    "tfidf_score",
    "weighted_similarity",
    "weighted_evidence",
    "weighted_confidence",
    "weighted_snr",
];

/// Every setting: TOML key (`kb.` keys live in the `[kb]` table), environment variables in
/// increasing precedence, and the kind of value.
const SETTINGS: &[Spec] = &[
    Spec {
        key: "data_dir",
        env: &["MNEME_DATA_DIR"],
        kind: Kind::Path,
    },
    Spec {
        key: "log_level",
        env: &["LOG_LEVEL", "KB_LOG_LEVEL", "MNEME_LOG_LEVEL"],
        kind: Kind::Level,
    },
    Spec {
        key: "kb.knowledge_dirs",
        env: &["KB_KNOWLEDGE_DIRS"],
        kind: Kind::PathList,
    },
    Spec {
        key: "kb.index_dir",
        env: &["KB_CACHE_FILE"],
        kind: Kind::Path,
    },
    Spec {
        key: "kb.max_cache_size",
        env: &["KB_MAX_CACHE_SIZE"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "kb.max_workers",
        env: &["KB_MAX_WORKERS"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "kb.auto_warm",
        env: &["KB_AUTO_WARM"],
        kind: Kind::Bool,
    },
    Spec {
        key: "kb.warming_queries",
        env: &[],
        kind: Kind::StringList,
    },
    Spec {
        key: "kb.heartbeat_interval",
        env: &["KB_HEARTBEAT_INTERVAL"],
        kind: Kind::Int { min: 10 },
    },
    Spec {
        key: "kb.chunk_size",
        env: &["KB_CHUNK_SIZE"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "kb.chunk_overlap",
        env: &["KB_CHUNK_OVERLAP"],
        kind: Kind::Int { min: 0 },
    },
    Spec {
        key: "kb.max_file_size",
        env: &["MNEME_KB_MAX_FILE_SIZE"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "kb.stemming",
        env: &["MNEME_KB_STEMMING"],
        kind: Kind::Bool,
    },
    Spec {
        key: "kb.embedding_model",
        env: &["KB_EMBEDDING_MODEL"],
        kind: Kind::Text,
    },
    Spec {
        key: "kb.hybrid_alpha",
        env: &["MNEME_HYBRID_ALPHA"],
        kind: Kind::Float { min: 0.0, max: 1.0 },
    },
    Spec {
        key: "kb.follow_external_links",
        env: &["MNEME_FOLLOW_EXTERNAL_LINKS"],
        kind: Kind::Bool,
    },
    Spec {
        key: "seq.store",
        env: &["MNEME_SEQ_STORE"],
        kind: Kind::Path,
    },
    Spec {
        key: "seq.durability",
        env: &["MNEME_SEQ_DURABILITY"],
        kind: Kind::Choice(&["immediate", "periodic"]),
    },
    Spec {
        key: "seq.flush_interval_ms",
        env: &["MNEME_SEQ_FLUSH_MS"],
        kind: Kind::IntRange {
            min: 1,
            max: 60_000,
        },
    },
    Spec {
        key: "seq.service_name",
        env: &["SERVICE_NAME"],
        kind: Kind::Text,
    },
    Spec {
        key: "seq.max_pattern_length",
        env: &["MAX_PATTERN_LENGTH"],
        kind: Kind::Int { min: 0 },
    },
    Spec {
        key: "seq.persistence",
        env: &["PERSISTENCE"],
        kind: Kind::IntRange { min: 1, max: 100 },
    },
    Spec {
        key: "seq.recall_threshold",
        env: &["RECALL_THRESHOLD"],
        kind: Kind::Float { min: 0.0, max: 1.0 },
    },
    Spec {
        key: "seq.stm_mode",
        env: &["STM_MODE"],
        kind: Kind::Choice(&["CLEAR", "ROLLING"]),
    },
    Spec {
        key: "seq.max_predictions",
        env: &["MAX_PREDICTIONS"],
        kind: Kind::IntRange {
            min: 1,
            max: 10_000,
        },
    },
    Spec {
        key: "seq.sort_symbols",
        env: &["SORT_SYMBOLS"],
        kind: Kind::Bool,
    },
    Spec {
        key: "seq.process_predictions",
        env: &["PROCESS_PREDICTIONS"],
        kind: Kind::Bool,
    },
    Spec {
        key: "seq.use_token_matching",
        env: &["USE_TOKEN_MATCHING"],
        kind: Kind::Bool,
    },
    Spec {
        key: "seq.rank_sort_algo",
        env: &["RANK_SORT_ALGO"],
        kind: Kind::Choice(RANK_NAMES),
    },
    Spec {
        key: "seq.vector_neighbours",
        env: &["MNEME_SEQ_VECTOR_NEIGHBOURS"],
        kind: Kind::IntRange { min: 0, max: 100 },
    },
    Spec {
        key: "seq.session_ttl",
        env: &["SESSION_TTL"],
        kind: Kind::IntRange {
            min: 60,
            max: 86_400,
        },
    },
    Spec {
        key: "seq.session_auto_extend",
        env: &["SESSION_AUTO_EXTEND"],
        kind: Kind::Bool,
    },
    Spec {
        key: "seq.fast_matching",
        env: &["USE_FAST_MATCHING", "KATO_USE_FAST_MATCHING"],
        kind: Kind::Bool,
    },
    Spec {
        key: "cluster.postgres_url",
        env: &["MNEME_POSTGRES_URL"],
        kind: Kind::Text,
    },
    Spec {
        key: "cluster.redis_url",
        env: &["MNEME_REDIS_URL"],
        kind: Kind::Text,
    },
    Spec {
        key: "cluster.postgres_pool_size",
        env: &["MNEME_POSTGRES_POOL_SIZE"],
        kind: Kind::IntRange { min: 2, max: 1000 },
    },
    Spec {
        key: "cluster.max_staleness_ms",
        env: &["MNEME_MAX_STALENESS_MS"],
        kind: Kind::IntRange {
            min: 0,
            max: 3_600_000,
        },
    },
    Spec {
        key: "server.host",
        env: &["KB_API_HOST", "MNEME_HOST"],
        kind: Kind::Text,
    },
    Spec {
        key: "server.port",
        env: &["KB_API_PORT", "MNEME_PORT"],
        kind: Kind::IntRange {
            min: 0,
            max: 65_535,
        },
    },
    Spec {
        key: "server.api_keys",
        env: &["KB_API_KEY"],
        kind: Kind::StringList,
    },
    Spec {
        key: "server.allowed_origins",
        env: &["KB_ALLOWED_ORIGINS"],
        kind: Kind::StringList,
    },
    Spec {
        key: "server.allowed_hosts",
        env: &["MNEME_ALLOWED_HOSTS"],
        kind: Kind::StringList,
    },
    Spec {
        key: "server.kato_api_key",
        env: &["MNEME_KATO_API_KEY"],
        kind: Kind::StringList,
    },
    Spec {
        key: "server.max_request_size",
        env: &["KB_MAX_REQUEST_SIZE"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.max_query_length",
        env: &["KB_MAX_QUERY_LENGTH"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.rate_limit_per_key",
        env: &["MNEME_RATE_LIMIT_PER_KEY"],
        kind: Kind::Int { min: 0 },
    },
    Spec {
        key: "server.rate_limits",
        env: &["MNEME_RATE_LIMITS"],
        kind: Kind::StringList,
    },
    Spec {
        key: "server.concurrency_limit",
        env: &["UVICORN_LIMIT_CONCURRENCY", "KATO_LIMIT_CONCURRENCY"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.projects_dir",
        env: &["KB_CHROMA_PATH", "MNEME_PROJECTS_DIR"],
        kind: Kind::Path,
    },
    Spec {
        key: "server.import_max_upload_bytes",
        env: &["KB_IMPORT_MAX_UPLOAD_BYTES"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.import_max_bytes",
        env: &["KB_IMPORT_MAX_BYTES"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.import_max_entry_bytes",
        env: &["KB_IMPORT_MAX_ENTRY_BYTES"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.import_max_entries",
        env: &["KB_IMPORT_MAX_ENTRIES"],
        kind: Kind::Int { min: 1 },
    },
    Spec {
        key: "server.import_max_documents",
        env: &["KB_IMPORT_MAX_DOCUMENTS"],
        kind: Kind::Int { min: 1 },
    },
];

/// The environment variables mneme reads, for `--help` and the docs.
pub fn environment_variables() -> Vec<(&'static str, &'static str)> {
    SETTINGS
        .iter()
        .flat_map(|spec| spec.env.iter().map(move |var| (*var, spec.key)))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Strings(Vec<String>),
    Int(u64),
    Float(f64),
    Text(String),
    Bool(bool),
    Level(LogLevel),
}

/// A value set by a command-line flag: the setting key, the raw text and the flag's name.
#[derive(Clone, Debug)]
pub struct FlagValue {
    pub key: &'static str,
    pub value: String,
    pub flag: &'static str,
}

/// Resolves the configuration from an optional TOML file, an environment lookup and flags.
pub fn load(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &[FlagValue],
) -> Result<Config, ConfigError> {
    let mut layers: BTreeMap<&'static str, (Value, String)> = BTreeMap::new();
    if let Some(file) = file {
        read_file(file, &mut layers)?;
    }
    for spec in SETTINGS {
        for var in spec.env {
            if let Some(raw) = env(var) {
                let value = parse_str(spec.kind, &raw).map_err(|accepts| ConfigError {
                    message: format!("{var}={raw:?} is not valid: expected {accepts}"),
                })?;
                layers.insert(spec.key, (value, (*var).to_owned()));
            }
        }
    }
    for flag in flags {
        let spec = spec_of(flag.key);
        let value = parse_str(spec.kind, &flag.value).map_err(|accepts| ConfigError {
            message: format!(
                "{} {:?} is not valid: expected {accepts}",
                flag.flag, flag.value
            ),
        })?;
        layers.insert(spec.key, (value, flag.flag.to_owned()));
    }
    if let Some((Value::Bool(false), origin)) = layers.get("seq.fast_matching") {
        return Err(ConfigError {
            message: format!(
                "{origin}=false asks for KATO's difflib matcher, whose similarities (and so \
                 every prediction's numbers) differ from its default matcher's; mneme implements \
                 only the default, so unset {origin} or set it to true"
            ),
        });
    }
    resolve(layers)
}

fn spec_of(key: &str) -> &'static Spec {
    SETTINGS
        .iter()
        .find(|spec| spec.key == key)
        .expect("flag names a known setting")
}

fn read_file(
    file: &Path,
    layers: &mut BTreeMap<&'static str, (Value, String)>,
) -> Result<(), ConfigError> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|err| ConfigError {
        message: format!("cannot read the config file {shown}: {err}"),
    })?;
    let table: toml::Table = text.parse().map_err(|err| ConfigError {
        message: format!("{shown} is not valid TOML: {err}"),
    })?;
    let mut flat = Vec::new();
    for (key, value) in &table {
        match (key.as_str(), value) {
            (table @ ("kb" | "seq" | "server"), toml::Value::Table(inner)) => {
                flat.extend(inner.iter().map(|(k, v)| (format!("{table}.{k}"), v)));
            }
            _ => flat.push((key.clone(), value)),
        }
    }
    for (key, value) in flat {
        let Some(spec) = SETTINGS.iter().find(|spec| spec.key == key) else {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
            return Err(ConfigError {
                message: format!(
                    "{shown}: unknown setting `{key}` (known: {})",
                    known.join(", ")
                ),
            });
        };
        let parsed = parse_toml(spec.kind, value, file.parent().unwrap_or(Path::new(""))).map_err(
            |accepts| ConfigError {
                message: format!("{shown}: `{key}` must be {accepts}"),
            },
        )?;
        layers.insert(spec.key, (parsed, format!("{key} in {shown}")));
    }
    Ok(())
}

fn parse_str(kind: Kind, raw: &str) -> Result<Value, String> {
    let trimmed = raw.trim();
    let bad = || kind.accepts();
    Ok(match kind {
        Kind::Path if !trimmed.is_empty() => Value::Path(PathBuf::from(trimmed)),
        Kind::PathList => {
            let dirs: Vec<PathBuf> = trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
            if dirs.is_empty() {
                return Err(bad());
            }
            Value::Paths(dirs)
        }
        Kind::StringList => Value::Strings(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Kind::Int { min } => {
            let n: u64 = trimmed.parse().map_err(|_| bad())?;
            if n < min {
                return Err(bad());
            }
            Value::Int(n)
        }
        Kind::IntRange { min, max } => {
            let n: u64 = trimmed.parse().map_err(|_| bad())?;
            if n < min || n > max {
                return Err(bad());
            }
            Value::Int(n)
        }
        Kind::Float { min, max } => {
            let x: f64 = trimmed.parse().map_err(|_| bad())?;
            if !(min..=max).contains(&x) {
                return Err(bad());
            }
            Value::Float(x)
        }
        Kind::Choice(names) => {
            let found = names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(trimmed))
                .ok_or_else(bad)?;
            Value::Text((*found).to_owned())
        }
        Kind::Text if !trimmed.is_empty() => Value::Text(trimmed.to_owned()),
        Kind::Text => return Err(bad()),
        Kind::Bool => Value::Bool(yes_no(trimmed).ok_or_else(bad)?),
        Kind::Level => Value::Level(match trimmed.to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" | "critical" => LogLevel::Error,
            _ => return Err(bad()),
        }),
        Kind::Path => return Err(bad()),
    })
}

fn parse_toml(kind: Kind, value: &toml::Value, base: &Path) -> Result<Value, String> {
    let bad = || kind.accepts();
    let relative = |p: &str| {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        }
    };
    match (kind, value) {
        (Kind::Path, toml::Value::String(s)) if !s.is_empty() => Ok(Value::Path(relative(s))),
        (Kind::PathList | Kind::StringList, toml::Value::Array(items)) => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
            let strings = strings.ok_or_else(bad)?;
            match kind {
                Kind::PathList if strings.is_empty() => Err(bad()),
                Kind::PathList => Ok(Value::Paths(strings.iter().map(|s| relative(s)).collect())),
                _ => Ok(Value::Strings(strings)),
            }
        }
        (Kind::Int { min }, toml::Value::Integer(n)) if *n >= 0 && (*n as u64) >= min => {
            Ok(Value::Int(*n as u64))
        }
        (Kind::IntRange { .. }, toml::Value::Integer(n)) => parse_str(kind, &n.to_string()),
        (Kind::Float { .. }, toml::Value::Float(x)) => parse_str(kind, &x.to_string()),
        (Kind::Float { .. }, toml::Value::Integer(n)) => parse_str(kind, &n.to_string()),
        (Kind::Choice(_) | Kind::Text, toml::Value::String(s)) => parse_str(kind, s),
        (Kind::Bool, toml::Value::Boolean(b)) => Ok(Value::Bool(*b)),
        (Kind::Level, toml::Value::String(s)) => parse_str(kind, s),
        _ => Err(bad()),
    }
}

fn resolve(mut layers: BTreeMap<&'static str, (Value, String)>) -> Result<Config, ConfigError> {
    let mut origins = BTreeMap::new();
    let mut take = |key: &'static str| {
        let (value, origin) = layers
            .remove(key)
            .map_or((None, "default".to_owned()), |(v, o)| (Some(v), o));
        origins.insert(key, origin);
        value
    };
    let path = |v: Option<Value>| match v {
        Some(Value::Path(p)) => Some(p),
        _ => None,
    };
    let int = |v: Option<Value>, default: u64| match v {
        Some(Value::Int(n)) => n,
        _ => default,
    };
    let boolean = |v: Option<Value>, default: bool| match v {
        Some(Value::Bool(b)) => b,
        _ => default,
    };
    let data_dir = path(take("data_dir")).unwrap_or_else(|| PathBuf::from(".mneme"));
    let log_level = match take("log_level") {
        Some(Value::Level(level)) => level,
        _ => LogLevel::Info,
    };
    let knowledge_dirs = match take("kb.knowledge_dirs") {
        Some(Value::Paths(dirs)) => dirs,
        _ => vec![PathBuf::from("knowledge-base")],
    };
    let index_dir = path(take("kb.index_dir")).unwrap_or_else(|| data_dir.join("kb"));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let warming_queries = match take("kb.warming_queries") {
        Some(Value::Strings(queries)) => queries,
        _ => DEFAULT_WARMING_QUERIES
            .iter()
            .map(|q| (*q).to_owned())
            .collect(),
    };
    let kb = KbSettings {
        knowledge_dirs,
        index_dir,
        max_cache_size: int(take("kb.max_cache_size"), 100) as usize,
        max_workers: int(take("kb.max_workers"), cpus) as usize,
        auto_warm: boolean(take("kb.auto_warm"), true),
        warming_queries,
        heartbeat_interval: int(take("kb.heartbeat_interval"), 300),
        chunk_size: int(take("kb.chunk_size"), 1000) as usize,
        chunk_overlap: int(take("kb.chunk_overlap"), 200) as usize,
        max_file_size: int(take("kb.max_file_size"), 50 * 1024 * 1024),
        stemming: boolean(take("kb.stemming"), false),
        embedding_model: embedding_model(
            match take("kb.embedding_model") {
                Some(Value::Text(t)) => Some(t),
                _ => None,
            }
            .as_deref(),
            &data_dir,
        ),
        hybrid_alpha: match take("kb.hybrid_alpha") {
            Some(Value::Float(x)) => x,
            _ => f64::from(mneme_kb::DEFAULT_ALPHA),
        },
        follow_external_links: boolean(take("kb.follow_external_links"), false),
    };
    let text = |v: Option<Value>, default: &str| match v {
        Some(Value::Text(t)) => t,
        _ => default.to_owned(),
    };
    let float = |v: Option<Value>, default: f64| match v {
        Some(Value::Float(x)) => x,
        _ => default,
    };
    let seq = SeqSettings {
        store: path(take("seq.store"))
            .unwrap_or_else(|| data_dir.join("seq").join("patterns.redb")),
        periodic: text(take("seq.durability"), "immediate") == "periodic",
        flush_interval_ms: int(take("seq.flush_interval_ms"), 1000),
        service_name: text(take("seq.service_name"), "kato"),
        max_pattern_length: int(take("seq.max_pattern_length"), 0) as usize,
        persistence: int(take("seq.persistence"), 5) as usize,
        recall_threshold: float(take("seq.recall_threshold"), 0.1),
        rolling: text(take("seq.stm_mode"), "CLEAR") == "ROLLING",
        max_predictions: int(take("seq.max_predictions"), 100) as usize,
        sort_symbols: boolean(take("seq.sort_symbols"), true),
        process_predictions: boolean(take("seq.process_predictions"), true),
        use_token_matching: boolean(take("seq.use_token_matching"), true),
        rank_sort_algo: text(take("seq.rank_sort_algo"), "potential"),
        vector_neighbours: int(take("seq.vector_neighbours"), 3) as usize,
        session_ttl: int(take("seq.session_ttl"), 3600),
        session_auto_extend: boolean(take("seq.session_auto_extend"), true),
    };
    // Checked in `load`, where the origin is at hand: only `true` gets here.
    take("seq.fast_matching");
    let strings = |v: Option<Value>| match v {
        Some(Value::Strings(list)) => Some(list),
        _ => None,
    };
    let rate_limits_origin = "server.rate_limits";
    let rate_limits = strings(take(rate_limits_origin))
        .unwrap_or_default()
        .iter()
        .map(|item| {
            let parsed = item
                .rsplit_once('=')
                .and_then(|(route, n)| Some((route.trim(), n.trim().parse::<u64>().ok()?)))
                .filter(|(route, n)| route.starts_with('/') && *n > 0);
            parsed
                .map(|(route, n)| (route.to_owned(), n))
                .ok_or_else(|| ConfigError {
                    message: format!(
                        "rate limit {item:?} is not valid: expected ROUTE=N, for example /api/v1/query=30 (requests per minute)"
                    ),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_request_size = int(take("server.max_request_size"), 10 * 1024 * 1024);
    let import = ArchiveLimits {
        // An import is a request: by default its body has the same bound as any other.
        max_archive_bytes: int(take("server.import_max_upload_bytes"), max_request_size),
        max_bytes: int(take("server.import_max_bytes"), 1 << 30),
        // The bound the import had per entry before it was a setting: what imported then still
        // does, and a string that long is held twice while parsed (the parser's buffer and
        // the document).
        max_entry_bytes: int(take("server.import_max_entry_bytes"), 256 << 20),
        max_entries: int(take("server.import_max_entries"), 100),
        max_documents: int(take("server.import_max_documents"), 1_000_000),
    };
    let server = ServerSettings {
        host: text(take("server.host"), "127.0.0.1"),
        port: int(take("server.port"), 8000) as u16,
        api_keys: strings(take("server.api_keys")).unwrap_or_default(),
        allowed_origins: strings(take("server.allowed_origins")).unwrap_or_else(default_origins),
        allowed_hosts: strings(take("server.allowed_hosts")).unwrap_or_default(),
        kato_api_keys: strings(take("server.kato_api_key")).unwrap_or_default(),
        max_request_size,
        max_query_length: int(take("server.max_query_length"), 10_000),
        rate_limit_per_key: int(take("server.rate_limit_per_key"), 0),
        rate_limits,
        projects_dir: path(take("server.projects_dir"))
            .unwrap_or_else(|| data_dir.join("projects")),
        import,
        concurrency_limit: int(take("server.concurrency_limit"), 100),
    };
    if kb.chunk_overlap >= kb.chunk_size {
        return Err(ConfigError {
            message: format!(
                "chunk_overlap ({}, from {}) must be smaller than chunk_size ({}, from {})",
                kb.chunk_overlap,
                origins["kb.chunk_overlap"],
                kb.chunk_size,
                origins["kb.chunk_size"]
            ),
        });
    }
    let cluster = ClusterSettings {
        postgres_url: match take("cluster.postgres_url") {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        },
        redis_url: match take("cluster.redis_url") {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        },
        postgres_pool_size: int(take("cluster.postgres_pool_size"), 16) as usize,
        max_staleness_ms: int(take("cluster.max_staleness_ms"), 0),
    };
    Ok(Config {
        data_dir,
        log_level,
        kb,
        seq,
        server,
        cluster,
        origins,
    })
}

/// A yes-or-no word as pydantic reads one (the one parser of the settings and of both APIs'
/// lax booleans): `true`, `1`, `yes`, `on`, `t`, `y` or `false`, `0`, `no`, `off`, `f`, `n`,
/// in any case; `None` for anything else. Callers decide about surrounding whitespace.
pub fn yes_no(text: &str) -> Option<bool> {
    const YES: [&str; 6] = ["true", "1", "yes", "on", "t", "y"];
    const NO: [&str; 6] = ["false", "0", "no", "off", "f", "n"];
    if YES.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if NO.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
