//! `mneme query`: one query as a listing or JSON, or a batch file as JSON lines.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use mneme_app::{Config, Knowledge};
use mneme_kb::{Alpha, Fusion, Hit, Ranking, SearchOutcome, SearchRequest, validate_query};

use crate::args::{FusionArg, Mode, QueryArgs};
use crate::output::json_line;

pub fn run(knowledge: &Knowledge, config: &Config, args: &QueryArgs) -> anyhow::Result<ExitCode> {
    let code = match &args.batch {
        Some(path) => {
            ensure_ingested(knowledge, config)?;
            batch(knowledge, args, path)?
        }
        None => {
            let query = validate_query(args.text.as_deref().unwrap_or_default())
                .context("invalid query")?;
            ensure_ingested(knowledge, config)?;
            single(knowledge, args, query)?
        }
    };
    if !args.no_cache
        && let Err(err) = knowledge.kb.persist_cache()
    {
        tracing::warn!("could not save the query cache: {err}");
    }
    Ok(code)
}

/// Before the first ingest there is nothing to search: ingest the configured knowledge dirs
/// first (KnowledgeBeast ingests on first use too).
fn ensure_ingested(knowledge: &Knowledge, config: &Config) -> anyhow::Result<()> {
    if knowledge.kb.generation() > 0 {
        if knowledge.kb.has_embedder() && !knowledge.kb.has_vectors() {
            eprintln!(
                "note: an embedding model is configured but this index has no vectors yet; \
                 keyword search until `mneme ingest` embeds it"
            );
        }
        return Ok(());
    }
    crate::ingest::check_roots(config, &[], "nothing to search yet")?;
    let dirs = knowledge.knowledge_dirs();
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    eprintln!("no index yet: ingesting {} first", shown.join(", "));
    let (report, elapsed) = crate::ingest::ingest(knowledge, &[], false, true)?;
    eprintln!(
        "ingested {} documents ({} chunks) in {:.2}s{}",
        report.documents,
        report.chunks,
        elapsed.as_secs_f64(),
        if report.is_partial() {
            format!("; {}", crate::ingest::problem_counts(&report))
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The ranking the flags ask for (hybrid by default when a model is configured).
pub fn ranking(knowledge: &Knowledge, args: &QueryArgs) -> Ranking {
    let alpha = || {
        Alpha::new(args.alpha.unwrap_or(knowledge.settings.hybrid_alpha as f32)).unwrap_or_default()
    };
    let hybrid = || match args.fusion {
        FusionArg::Weighted => Ranking::Hybrid(Fusion::Weighted(alpha())),
        FusionArg::Rrf => Ranking::Hybrid(Fusion::Rrf(alpha())),
    };
    match args.mode {
        Some(Mode::Keyword) => Ranking::Bm25,
        Some(Mode::Terms) => Ranking::Terms,
        Some(Mode::Vector) => Ranking::Vector,
        Some(Mode::Hybrid) => hybrid(),
        None if knowledge.kb.has_embedder() && knowledge.kb.has_vectors() => hybrid(),
        None => Ranking::Bm25,
    }
}

fn request<'a>(knowledge: &Knowledge, args: &QueryArgs, query: &'a str) -> SearchRequest<'a> {
    SearchRequest {
        query,
        ranking: ranking(knowledge, args),
        limit: args.limit as usize,
        offset: args.offset as usize,
        with_content: args.content,
        with_total: true,
        use_cache: !args.no_cache,
        with_snippets: true,
    }
}

fn single(knowledge: &Knowledge, args: &QueryArgs, query: &str) -> anyhow::Result<ExitCode> {
    let outcome = knowledge.search(&request(knowledge, args, query))?;
    if args.json {
        println!(
            "{}",
            json_line(&outcome_json(
                query,
                args,
                ranking(knowledge, args).name(),
                &outcome
            ))
        );
    } else {
        print_listing(query, args, &outcome);
    }
    Ok(ExitCode::SUCCESS)
}

fn batch(
    knowledge: &Knowledge,
    args: &QueryArgs,
    path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut failed = 0usize;
    for (line_no, line) in input.lines().enumerate() {
        let line =
            line.with_context(|| format!("reading line {} of {}", line_no + 1, path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = validate_query(&line).and_then(|query| {
            knowledge
                .search(&request(knowledge, args, query))
                .map(|outcome| (query, outcome))
        });
        let json = match answer {
            Ok((query, outcome)) => {
                outcome_json(query, args, ranking(knowledge, args).name(), &outcome)
            }
            Err(err) => {
                failed += 1;
                serde_json::json!({ "query": line, "line": line_no + 1, "error": err.to_string() })
            }
        };
        writeln!(out, "{}", json_line(&json))?;
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(crate::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

fn outcome_json(
    query: &str,
    args: &QueryArgs,
    mode: &str,
    outcome: &SearchOutcome,
) -> serde_json::Value {
    let results = &outcome.results;
    serde_json::json!({
        "query": query,
        "mode": mode,
        "cached": outcome.cached,
        "count": results.hits.len(),
        "total": results.total,
        "offset": args.offset,
        "limit": args.limit,
        "results": results.hits.iter().enumerate().map(|(i, hit)| hit_json(args.offset as usize + i + 1, hit)).collect::<Vec<_>>(),
    })
}

fn hit_json(rank: usize, hit: &Hit) -> serde_json::Value {
    let mut json = serde_json::json!({
        "rank": rank,
        "score": hit.score,
        "doc_id": hit.doc_id,
        "name": hit.name,
        "title": hit.title,
        "path": hit.path,
        "kb_dir": hit.kb_dir,
        "format": hit.format.name(),
        "heading_path": hit.heading_path,
        "chunk_index": hit.chunk_index,
        "chunk_count": hit.chunk_count,
        "snippet": hit.snippet.to_html(),
    });
    if let Some(content) = &hit.content {
        json["content"] = serde_json::Value::String(content.clone());
    }
    json
}

fn print_listing(query: &str, args: &QueryArgs, outcome: &SearchOutcome) {
    let results = &outcome.results;
    let color = std::io::stdout().is_terminal();
    let (open, close) = if color {
        ("\x1b[1;33m", "\x1b[0m")
    } else {
        ("[", "]")
    };
    let (dim, reset) = if color {
        ("\x1b[2m", "\x1b[0m")
    } else {
        ("", "")
    };
    if results.hits.is_empty() {
        match results.total {
            Some(total) if total > 0 => println!(
                "no results past --offset {}: {total} document(s) match {query:?}",
                args.offset
            ),
            _ => println!("no documents match {query:?}"),
        }
        return;
    }
    for (i, hit) in results.hits.iter().enumerate() {
        let rank = args.offset as usize + i + 1;
        let mut heading = hit.heading_path.join(" › ");
        if heading.is_empty() {
            heading.clone_from(&hit.title);
        }
        println!(
            "{rank:>3}. {}  {dim}score {:.3}{reset}",
            hit.doc_id, hit.score
        );
        println!(
            "     {heading}  {dim}(chunk {}/{}){reset}",
            hit.chunk_index + 1,
            hit.chunk_count
        );
        let snippet = hit.snippet.marked(open, close);
        for line in snippet.lines().filter(|l| !l.trim().is_empty()) {
            println!("     {}", line.trim());
        }
        if let Some(content) = &hit.content {
            println!(
                "{dim}----- {} -----{reset}\n{content}\n{dim}-----{reset}",
                hit.path
            );
        }
        println!();
    }
    let total = results.total.map_or(String::new(), |t| format!(" of {t}"));
    println!(
        "{dim}{} result(s){total} for {query:?}{}{reset}",
        results.hits.len(),
        if outcome.cached { " (cached)" } else { "" }
    );
}
