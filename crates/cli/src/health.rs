//! `mneme stats`, `warm`, `clear-cache` and `health`: the maintenance commands.

use std::path::Path;
use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use mneme_app::{Config, Knowledge};
use mneme_kb::{Ranking, SearchRequest};

use crate::args::{HealthArgs, StatsArgs};
use crate::output::{human_age, human_bytes, json_line};

pub fn stats(knowledge: &Knowledge, config: &Config, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let stats = knowledge.kb.stats();
    let process = knowledge.query_stats();
    let cache = stats.cache;
    let hit_rate = format!("{:.1}%", cache.hit_rate() * 100.0);
    let utilization = format!(
        "{:.1}%",
        cache.entries as f64 * 100.0 / cache.capacity.max(1) as f64
    );
    let dirs: Vec<String> = config
        .kb
        .knowledge_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let index_bytes = mneme_server::http::system::dir_size(&config.kb.index_dir);
    if args.json {
        let json = serde_json::json!({
            "queries": cache.queries,
            "total_queries": cache.hits + cache.misses,
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "cache_hit_rate": hit_rate,
            "cached_queries": cache.entries,
            "cache_capacity": cache.capacity,
            "cache_utilization": utilization,
            "warm_queries": process.warm_queries,
            "last_warm_time": process.last_warm_time.map(|d| d.as_secs_f64()),
            "total_documents": stats.documents,
            "documents": stats.documents,
            "total_terms": stats.terms,
            "terms": stats.terms,
            "chunks": stats.chunks,
            "generation": stats.generation,
            "last_access_age": human_age(process.last_access),
            "knowledge_dirs": dirs,
            "index_dir": config.kb.index_dir.display().to_string(),
            "index_bytes": index_bytes,
            "chunk_size": stats.settings.chunk.chunk_size,
            "chunk_overlap": stats.settings.chunk.chunk_overlap,
            "stemming": stats.settings.stemming,
            "vectors": stats.vectors,
            "embedding_model": stats.embedding_model,
            "embedding_dimensions": stats.embedding_dim,
            "default_mode": mneme_app::default_ranking(&knowledge.kb, &config.kb).name(),
        });
        println!("{}", json_line(&json));
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_header(["statistic", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("documents", stats.documents.to_string()),
        ("chunks", stats.chunks.to_string()),
        ("terms", stats.terms.to_string()),
        ("index generation", stats.generation.to_string()),
        ("queries", cache.queries.to_string()),
        ("cache hits", cache.hits.to_string()),
        ("cache misses", cache.misses.to_string()),
        ("cache hit rate", hit_rate),
        (
            "cached queries",
            format!("{} of {} ({utilization})", cache.entries, cache.capacity),
        ),
        ("last access", human_age(process.last_access)),
        (
            "warm-up",
            match process.last_warm_time {
                Some(took) => format!(
                    "{} queries, the last warm-up took {:.3}s",
                    process.warm_queries,
                    took.as_secs_f64()
                ),
                None => "never".to_owned(),
            },
        ),
        (
            "embedding model",
            match &stats.embedding_model {
                Some(model) => format!(
                    "{model} ({} dimensions, {} chunk vectors)",
                    stats.embedding_dim.unwrap_or_default(),
                    stats.vectors
                ),
                None => "none: keyword search only (scripts/fetch-model adds one)".to_owned(),
            },
        ),
        (
            "default query mode",
            mneme_app::default_ranking(&knowledge.kb, &config.kb)
                .name()
                .to_owned(),
        ),
        ("knowledge dirs", dirs.join(", ")),
        (
            "index",
            format!(
                "{} ({})",
                config.kb.index_dir.display(),
                human_bytes(index_bytes)
            ),
        ),
        (
            "chunking",
            format!(
                "{} chars, {} overlap{}",
                stats.settings.chunk.chunk_size,
                stats.settings.chunk.chunk_overlap,
                if stats.settings.stemming {
                    ", English stemming"
                } else {
                    ""
                }
            ),
        ),
    ];
    for (name, value) in rows {
        table.add_row([name.to_owned(), value]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub fn warm(knowledge: &Knowledge) -> anyhow::Result<ExitCode> {
    let (executed, elapsed) = knowledge.warm()?;
    knowledge.kb.persist_cache()?;
    println!(
        "warmed the cache with {executed} queries in {:.3}s",
        elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn clear_cache(knowledge: &Knowledge) -> anyhow::Result<ExitCode> {
    let cleared = knowledge.kb.clear_cache();
    knowledge.kb.persist_cache()?;
    println!("Cache cleared: {cleared} entries removed");
    Ok(ExitCode::SUCCESS)
}

/// `mneme clear`: empties the index after a confirmation (or `--yes`).
pub fn clear(knowledge: &Knowledge, args: &crate::args::ClearArgs) -> anyhow::Result<ExitCode> {
    let documents = knowledge.kb.stats().documents;
    let question = format!(
        "Remove all {documents} documents from the index at {}?",
        knowledge.kb.dir().display()
    );
    if !args.yes && !confirm(&question)? {
        eprintln!("Nothing removed.");
        return Ok(ExitCode::from(1));
    }
    knowledge.clear()?;
    println!("Knowledge base cleared: {documents} documents removed");
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on the terminal; refuses (with how to go on) when stdin is not one.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{question} Not asked: stdin is not a terminal; pass --yes to confirm");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warning,
    Failed,
}

struct Check {
    name: String,
    level: Level,
    detail: String,
}

/// Checks what a query needs: knowledge dirs, an index that opens and answers, free disk.
/// Exit status 1 only when mneme cannot serve queries (unhealthy).
pub fn health(config: &Config, args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let mut checks = Vec::new();
    for dir in &config.kb.knowledge_dirs {
        let (level, detail) = if dir.is_dir() {
            (Level::Ok, "directory exists".to_owned())
        } else {
            (
                Level::Warning,
                "missing: ingest has nothing to read there".to_owned(),
            )
        };
        checks.push(Check {
            name: format!("knowledge dir {}", dir.display()),
            level,
            detail,
        });
    }
    match Knowledge::open(&config.kb) {
        Ok(knowledge) => {
            let stats = knowledge.kb.stats();
            let level = if stats.generation == 0 {
                Level::Warning
            } else {
                Level::Ok
            };
            let detail = if stats.generation == 0 {
                "empty: run `mneme ingest`".to_owned()
            } else {
                format!(
                    "{} documents, {} chunks, generation {}",
                    stats.documents, stats.chunks, stats.generation
                )
            };
            checks.push(Check {
                name: "index".into(),
                level,
                detail,
            });
            let probe = SearchRequest {
                query: "health check probe",
                ranking: Ranking::Bm25,
                limit: 1,
                offset: 0,
                with_content: false,
                with_total: false,
                use_cache: false,
                with_snippets: true,
            };
            let (level, detail) = match knowledge.kb.search(&probe) {
                Ok(_) => (Level::Ok, "a probe query ran".to_owned()),
                Err(err) => (Level::Failed, err.to_string()),
            };
            checks.push(Check {
                name: "query".into(),
                level,
                detail,
            });
        }
        Err(err) => checks.push(Check {
            name: "index".into(),
            level: Level::Failed,
            detail: err.to_string(),
        }),
    }
    let probe_dir = existing_ancestor(&config.kb.index_dir);
    let (level, detail) = match free_bytes(&probe_dir) {
        Some(free) if free < 512 << 20 => (
            Level::Failed,
            format!("{} free (critical below 0.5 GiB)", human_bytes(free)),
        ),
        Some(free) if free < 1 << 30 => (
            Level::Warning,
            format!("{} free (warning below 1 GiB)", human_bytes(free)),
        ),
        Some(free) => (Level::Ok, format!("{} free", human_bytes(free))),
        None => (Level::Warning, "free space unknown".to_owned()),
    };
    checks.push(Check {
        name: format!("disk at {}", probe_dir.display()),
        level,
        detail,
    });

    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    let status = match worst {
        Level::Ok => "healthy",
        Level::Warning => "degraded",
        Level::Failed => "unhealthy",
    };
    let level_name = |level| match level {
        Level::Ok => "ok",
        Level::Warning => "warning",
        Level::Failed => "failed",
    };
    if args.json {
        let json = serde_json::json!({
            "status": status,
            "version": env!("CARGO_PKG_VERSION"),
            "checks": checks.iter().map(|c| serde_json::json!({
                "name": c.name, "status": level_name(c.level), "detail": c.detail,
            })).collect::<Vec<_>>(),
        });
        println!("{}", json_line(&json));
    } else {
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_header(["check", "status", "detail"]);
        for check in &checks {
            table.add_row([
                check.name.clone(),
                level_name(check.level).to_owned(),
                check.detail.clone(),
            ]);
        }
        println!("{table}\nstatus: {status}");
    }
    Ok(if worst == Level::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn existing_ancestor(path: &Path) -> std::path::PathBuf {
    let mut current = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    while !current.exists() {
        if !current.pop() {
            break;
        }
    }
    current
}

/// Bytes available to unprivileged users on the file system holding `path`.
#[allow(unsafe_code)]
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points to writable memory
    // of the right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}
