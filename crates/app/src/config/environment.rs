//! The environment as the originals' users set it: a `.env` file in the working directory (read
//! as KATO's pydantic settings and KnowledgeBeast's compose files do) and the variables of
//! either original that mneme does not read, named in a warning instead of silently dropped.

use std::path::Path;

/// One `KEY=value` assignment of a `.env` file, with its line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Reads `path` as a dotenv file: `KEY=value` lines, optionally prefixed with `export`;
/// blank lines and `#` comments skipped; values in single quotes taken as written, in double
/// quotes with `\n`, `\"` and `\\` escapes; unquoted values end at ` #`. Returns the
/// assignments and one message per line that is none of these. A missing file is empty.
pub fn read_dotenv(path: &Path) -> std::io::Result<(Vec<Assignment>, Vec<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(err) => return Err(err),
    };
    Ok(parse_dotenv(&text, &path.display().to_string()))
}

/// [`read_dotenv`] on text; `shown` names the file in messages.
pub fn parse_dotenv(text: &str, shown: &str) -> (Vec<Assignment>, Vec<String>) {
    let mut assignments = Vec::new();
    let mut problems = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(trimmed);
        let Some((key, value)) = body.split_once('=') else {
            problems.push(format!(
                "{shown}:{line}: not a KEY=value line, skipped: {trimmed:?}"
            ));
            continue;
        };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid_key {
            problems.push(format!(
                "{shown}:{line}: {key:?} is not a variable name, skipped"
            ));
            continue;
        }
        match unquote(value.trim()) {
            Some(value) => assignments.push(Assignment {
                line,
                key: key.to_owned(),
                value,
            }),
            None => problems.push(format!(
                "{shown}:{line}: the value of {key} has no closing quote, skipped"
            )),
        }
    }
    (assignments, problems)
}

fn unquote(value: &str) -> Option<String> {
    if let Some(rest) = value.strip_prefix('\'') {
        let end = rest.find('\'')?;
        return Some(rest[..end].to_owned());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        return None;
    }
    let value = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    };
    Some(value.trim_end().to_owned())
}

/// Why a group of the originals' variables has no effect here, and what to set instead.
const STORES: &str = "mneme keeps patterns, sessions and vectors in its data directory \
    (MNEME_DATA_DIR), or in PostgreSQL and Redis in cluster mode (MNEME_POSTGRES_URL, \
    MNEME_REDIS_URL)";
const PROCESS: &str = "`mneme serve` takes --host and --port (MNEME_HOST, MNEME_PORT, \
    KB_API_HOST, KB_API_PORT) and sizes its own thread pools";
const LOGS: &str = "mneme logs text to stderr at LOG_LEVEL, and `mneme serve` always \
    exports Prometheus metrics at /metrics";
const NO_EFFECT: &str = "it changes no answer in KATO either; mneme has no such switch";
const KB_UNUSED: &str = "KnowledgeBeast declares it but none of its code reads it (see \
    docs/compatibility.md)";
const REGISTRY: &str = "mneme keeps the project registry and API keys in the projects \
    directory (MNEME_PROJECTS_DIR, KB_CHROMA_PATH)";

/// Variables of KATO or KnowledgeBeast that mneme does not read; a name ending in `*` is a
/// prefix. Names too generic to be meant for either (`DEBUG`, `HOST`, `ENVIRONMENT`) are left
/// out.
const IGNORED: &[(&str, &str)] = &[
    ("CLICKHOUSE_*", STORES),
    ("QDRANT_*", STORES),
    ("REDIS_URL", STORES),
    ("REDIS_ENABLED", STORES),
    ("REDIS_HOST", STORES),
    ("REDIS_PORT", STORES),
    ("REDIS_TLS", STORES),
    ("KATO_VECTOR_DB_BACKEND", STORES),
    ("KB_CHROMADB_PATH", STORES),
    ("KB_VECTOR_DB_PATH", STORES),
    ("KB_REDIS_*", STORES),
    ("PORT", PROCESS),
    ("WORKERS", PROCESS),
    ("KATO_WORKERS", PROCESS),
    ("REQUEST_TIMEOUT", PROCESS),
    ("CONNECTION_POOL_SIZE", PROCESS),
    ("KB_API_WORKERS", PROCESS),
    ("KB_THREAD_POOL_SIZE", PROCESS),
    ("KB_ASYNC_MODE", PROCESS),
    ("KB_REQUEST_TIMEOUT", PROCESS),
    ("KB_SHUTDOWN_TIMEOUT", PROCESS),
    ("LOG_FORMAT", LOGS),
    ("LOG_OUTPUT", LOGS),
    ("KB_JSON_LOGS", LOGS),
    ("KB_ENABLE_TRACING", LOGS),
    ("KB_ENABLE_METRICS", LOGS),
    ("KB_ENABLE_STRUCTURED_LOGGING", LOGS),
    ("KB_OTLP_ENDPOINT", LOGS),
    ("KB_TRACE_CONSOLE", LOGS),
    ("KB_AUTO_INIT_OBSERVABILITY", LOGS),
    ("KB_METRICS_PORT", LOGS),
    ("KATO_USE_INDEXING", NO_EFFECT),
    ("USE_INDEXING", NO_EFFECT),
    ("KATO_USE_BLOOM_FILTER", NO_EFFECT),
    ("KATO_USE_REDIS_CACHE", NO_EFFECT),
    ("MINHASH_HASH_FUNC", NO_EFFECT),
    ("INDEXER_TYPE", NO_EFFECT),
    ("KATO_SIMILARITY_METRIC", NO_EFFECT),
    ("FUZZY_TOKEN_THRESHOLD", NO_EFFECT),
    ("KATO_BATCH_SIZE", NO_EFFECT),
    ("AUTO_LEARN_ENABLED", NO_EFFECT),
    ("AUTO_LEARN_THRESHOLD", NO_EFFECT),
    ("SESSION_COUNT_CACHE_TTL_SECONDS", NO_EFFECT),
    ("METRICS_CACHE_TTL_SECONDS", NO_EFFECT),
    ("KATO_CONFIG_FILE", NO_EFFECT),
    ("KATO_ARCHITECTURE_MODE", NO_EFFECT),
    ("PROCESSOR_ID", NO_EFFECT),
    ("DOCS_ENABLED", NO_EFFECT),
    (
        "MAX_REQUEST_SIZE",
        "KATO parses it without using it; mneme's body limit is \
        KB_MAX_REQUEST_SIZE",
    ),
    (
        "CORS_*",
        "mneme's cross-site policy is KB_ALLOWED_ORIGINS and MNEME_ALLOWED_HOSTS",
    ),
    ("KB_QUERY_EXPANSION_*", KB_UNUSED),
    ("KB_SEMANTIC_CACHE_*", KB_UNUSED),
    ("KB_VECTOR_SEARCH_MODE", KB_UNUSED),
    ("KB_USE_VECTOR_SEARCH", KB_UNUSED),
    ("KB_SIMILARITY_THRESHOLD", KB_UNUSED),
    ("KB_ENABLE_QUERY_CACHE", KB_UNUSED),
    ("KB_QUERY_CACHE_TTL", KB_UNUSED),
    ("KB_CHUNKING_STRATEGY", KB_UNUSED),
    ("KB_MIN_CHUNK_SIZE", KB_UNUSED),
    ("KB_DEFAULT_LIMIT", KB_UNUSED),
    ("KB_MAX_LIMIT", KB_UNUSED),
    ("KB_BATCH_SIZE", KB_UNUSED),
    ("KB_COLLECTION_NAME", KB_UNUSED),
    (
        "KB_MAX_UPLOAD_SIZE",
        "mneme's import bound is KB_IMPORT_MAX_UPLOAD_BYTES",
    ),
    (
        "KB_HTTPS_ONLY",
        "mneme serves plain HTTP; terminate TLS in the proxy in front of it",
    ),
    ("KB_VERSION", KB_UNUSED),
    ("KB_ENVIRONMENT", KB_UNUSED),
    (
        "KB_DATA_DIR",
        "mneme's data directory is MNEME_DATA_DIR or --data-dir",
    ),
    (
        "KB_DEFAULT_MODEL",
        "the embedding model is KB_EMBEDDING_MODEL",
    ),
    (
        "KB_CACHE_CAPACITY",
        "the query cache's size is KB_MAX_CACHE_SIZE",
    ),
    ("KB_AUTH_DB_PATH", REGISTRY),
    ("KB_PROJECTS_DB", REGISTRY),
    (
        "KB_RATE_LIMIT_PER_MINUTE",
        "mneme's rate limits are MNEME_RATE_LIMIT_PER_KEY and \
        MNEME_RATE_LIMITS",
    ),
    (
        "KB_RATE_LIMIT_STORAGE",
        "mneme counts rate limits in memory (in Redis in cluster mode)",
    ),
];

/// One warning per variable of `names` (the environment's) that mneme ignores, sorted.
pub fn ignored_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut warnings: Vec<String> = names
        .into_iter()
        .filter_map(|name| {
            let (_, why) = IGNORED
                .iter()
                .find(|(pattern, _)| match pattern.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => name == *pattern,
                })?;
            Some(format!("{name} is set but mneme ignores it: {why}"))
        })
        .collect();
    warnings.sort();
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let text = "# KATO\nLOG_LEVEL=DEBUG\nexport SESSION_TTL = 120 # two minutes\n\n\
            SERVICE_NAME='my-kato # not a comment'\nKB_KNOWLEDGE_DIRS=\"a,b\\\"c\"\n\
            no equals here\n1BAD=x\nOPEN=\"never closed\nEMPTY=\n";
        let (assignments, problems) = parse_dotenv(text, ".env");
        let pairs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("LOG_LEVEL", "DEBUG"),
                ("SESSION_TTL", "120"),
                ("SERVICE_NAME", "my-kato # not a comment"),
                ("KB_KNOWLEDGE_DIRS", "a,b\"c"),
                ("EMPTY", ""),
            ]
        );
        assert_eq!(assignments[1].line, 3);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with(".env:7: not a KEY=value line"));
        assert!(problems[1].contains("\"1BAD\" is not a variable name"));
        assert!(problems[2].contains("OPEN has no closing quote"));
    }

    #[test]
    fn ignored_variables_are_named_with_what_to_set() {
        let warnings = ignored_variables([
            "CLICKHOUSE_HOST",
            "LOG_LEVEL",
            "KB_SEMANTIC_CACHE_TTL_SECONDS",
            "KB_RATE_LIMIT_PER_MINUTE",
            "PATH",
            "SESSION_TTL",
        ]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("CLICKHOUSE_HOST is set but mneme ignores it"));
        assert!(warnings[0].contains("MNEME_POSTGRES_URL"));
        assert!(warnings[1].contains("MNEME_RATE_LIMIT_PER_KEY"));
        assert!(warnings[2].starts_with("KB_SEMANTIC_CACHE_TTL_SECONDS"));
    }

    #[test]
    fn no_ignored_variable_is_one_mneme_reads() {
        for (var, _) in super::super::environment_variables() {
            assert!(
                ignored_variables([var]).is_empty(),
                "{var} is read by mneme and listed as ignored"
            );
        }
    }
}
