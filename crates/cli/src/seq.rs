//! `mneme seq`: the pattern engine from the command line, on the embedded store of a node,
//! with named sessions kept in the store between runs. Output is KATO's JSON, one line per
//! answer, for scripts.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::sync::Arc;

use mneme_app::Config;
use mneme_app::patterns::{Patterns, open_patterns};
use mneme_app::sessions::{Answer, Freshness, NamedSessions, Options, Sessions};
use mneme_seq::types::Observation;
use mneme_server::kato::{json, request};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct SeqArgs {
    #[command(subcommand)]
    pub command: SeqCommand,
}

#[derive(Debug, Args)]
pub struct Target {
    /// The node (KATO's node_id): its patterns are shared by all its sessions.
    #[arg(long, short = 'n')]
    pub node: String,
    /// The session whose short-term memory to use (kept in the store between runs).
    #[arg(long, default_value = "default")]
    pub session: String,
    /// Indent the JSON output.
    #[arg(long)]
    pub pretty: bool,
}

#[derive(Debug, Subcommand)]
pub enum SeqCommand {
    /// Add one observation (symbols, vectors, emotives, metadata) to the short-term memory.
    Observe(ObserveArgs),
    /// Learn the short-term memory as a pattern; with --batch, learn every event list of a
    /// file (one JSON list of lists of strings per line) in bulk.
    Learn(LearnArgs),
    /// Predict what comes next from the short-term memory.
    Predict(Target),
    /// Print the short-term memory.
    Stm(Target),
    /// Empty the session's short-term memory; with --all, also forget every pattern of the node.
    Clear(ClearArgs),
    /// Show one learned pattern (PTRN|<hash> or the bare hash).
    Pattern(PatternArgs),
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    #[command(flatten)]
    pub target: Target,
    /// A symbol of the event (repeat for several).
    #[arg(long = "symbol", short = 's', value_name = "SYMBOL")]
    pub symbols: Vec<String>,
    /// A vector, comma-separated numbers (repeat for several; they are summed).
    #[arg(long = "vector", value_name = "X,Y,..")]
    pub vectors: Vec<String>,
    /// An emotive value, NAME=NUMBER (repeat for several).
    #[arg(long = "emotive", value_name = "NAME=VALUE")]
    pub emotives: Vec<String>,
    /// A metadata entry, KEY=VALUE (a string; repeat for several).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// The whole observation as KATO's JSON body instead of the flags.
    #[arg(long, value_name = "BODY", conflicts_with_all = ["symbols", "vectors", "emotives", "metadata"])]
    pub json: Option<String>,
}

#[derive(Debug, Args)]
pub struct LearnArgs {
    #[command(flatten)]
    pub target: Target,
    /// Learn the event lists of FILE ('-' for stdin) instead of the short-term memory.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    #[command(flatten)]
    pub target: Target,
    /// Also delete every pattern, statistic and vector the node learned (KATO's clear-all).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct PatternArgs {
    #[command(flatten)]
    pub target: Target,
    /// The pattern name.
    pub name: String,
}

pub fn run(config: &Config, args: &SeqArgs) -> anyhow::Result<ExitCode> {
    let patterns =
        Arc::new(open_patterns(&config.seq).with_context(|| {
            format!("opening the pattern store {}", config.seq.store.display())
        })?);
    match &args.command {
        SeqCommand::Observe(args) => observe(&patterns, args),
        SeqCommand::Learn(args) => learn(&patterns, args),
        SeqCommand::Predict(target) => predict(&patterns, target),
        SeqCommand::Stm(target) => {
            let stm = sessions(&patterns, target)
                .read(&target.session, |view| view.record.state.stm.clone())?;
            print(target, &json!({"stm": stm, "length": stm.len()}))
        }
        SeqCommand::Clear(args) => clear(&patterns, args),
        SeqCommand::Pattern(args) => {
            let node = patterns.node(&args.target.node)?;
            let hash = args.name.strip_prefix("PTRN|").unwrap_or(&args.name);
            match node.pattern(hash) {
                Some(view) => print(&args.target, &json::pattern(&view)),
                None => bail!(
                    "pattern {} not found in node {}",
                    args.name,
                    args.target.node
                ),
            }
        }
    }
}

/// The session service over the named sessions of the target's node: the same observe, learn
/// and predictions as the server's routes.
fn sessions(patterns: &Arc<Patterns>, target: &Target) -> Sessions {
    Sessions::new(
        patterns.clone(),
        Arc::new(NamedSessions::new(patterns.clone(), &target.node)),
        Options::default(),
        Box::new(std::time::SystemTime::now),
    )
}

fn print(target: &Target, value: &Value) -> anyhow::Result<ExitCode> {
    let text = if target.pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn parse_observation(args: &ObserveArgs) -> anyhow::Result<Observation> {
    if let Some(body) = &args.json {
        let value: Value = serde_json::from_str(body).context("--json is not valid JSON")?;
        let map = request::object(Some(&value))
            .map_err(|errors| anyhow::anyhow!("{}", request::detail(&errors)))?;
        return request::observation(map, &[json!("body")])
            .map(|(observation, _)| observation)
            .map_err(|errors| {
                anyhow::anyhow!("invalid observation: {}", request::detail(&errors))
            });
    }
    let mut observation = Observation {
        strings: args.symbols.clone(),
        ..Observation::default()
    };
    for vector in &args.vectors {
        let values: Result<Vec<f64>, _> =
            vector.split(',').map(|x| x.trim().parse::<f64>()).collect();
        let values = values
            .with_context(|| format!("--vector {vector:?}: expected comma-separated numbers"))?;
        if values.iter().any(|x| !x.is_finite()) {
            bail!("--vector {vector:?}: numbers must be finite");
        }
        observation.vectors.push(values);
    }
    for emotive in &args.emotives {
        let (name, value) = emotive
            .split_once('=')
            .with_context(|| format!("--emotive {emotive:?}: expected NAME=NUMBER"))?;
        let value: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("--emotive {emotive:?}: {value:?} is not a number"))?;
        observation.emotives.push((name.to_owned(), value));
    }
    for entry in &args.metadata {
        let (key, value) = entry
            .split_once('=')
            .with_context(|| format!("--meta {entry:?}: expected KEY=VALUE"))?;
        observation.metadata.push((
            key.to_owned(),
            mneme_seq::pyfmt::MetaValue::Str(value.to_owned()),
        ));
    }
    Ok(observation)
}

fn observe(patterns: &Arc<Patterns>, args: &ObserveArgs) -> anyhow::Result<ExitCode> {
    let observation = parse_observation(args)?;
    let target = &args.target;
    let observed = sessions(patterns, target)
        .observe(&target.session, &observation)
        .context("observing")?;
    let outcome = observed.outcome;
    print(
        target,
        &json!({
            "status": "okay",
            "stm_length": outcome.stm_length.min(mneme_seq::session::MAX_STM_EVENTS),
            "time": outcome.time,
            "auto_learned_pattern": outcome.auto_learned.map(|h| format!("PTRN|{h}")),
        }),
    )
}

fn learn(patterns: &Arc<Patterns>, args: &LearnArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    if let Some(path) = &args.batch {
        let node = patterns.node(&target.node)?;
        return learn_batch(patterns, &node, path, patterns.defaults().persistence);
    }
    let learned = sessions(patterns, target)
        .learn(&target.session)
        .context("learning")?;
    print(
        target,
        &json!({"status": "learned", "pattern_name": learned.name}),
    )
}

/// Lines of event lists, learned in chunks; each chunk's names are printed once the chunk is
/// committed (durably, unless the store is in periodic mode).
fn learn_batch(
    patterns: &Patterns,
    node: &mneme_seq::node::Node,
    path: &std::path::Path,
    persistence: usize,
) -> anyhow::Result<ExitCode> {
    const CHUNK: usize = 1000;
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))
    };
    let mut out = std::io::stdout().lock();
    let mut chunk: Vec<Vec<Vec<String>>> = Vec::with_capacity(CHUNK);
    let (mut learned, mut skipped) = (0usize, 0usize);
    let mut flush = |chunk: &mut Vec<Vec<Vec<String>>>,
                     out: &mut std::io::StdoutLock<'_>|
     -> anyhow::Result<()> {
        for name in node.learn_many(chunk, persistence)? {
            match name {
                Some(hash) => {
                    learned += 1;
                    writeln!(out, "PTRN|{hash}")?;
                }
                None => {
                    skipped += 1;
                    writeln!(out)?;
                }
            }
        }
        out.flush()?;
        chunk.clear();
        Ok(())
    };
    for (line_no, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let events: Vec<Vec<String>> = serde_json::from_str(&line).with_context(|| {
            format!(
                "line {}: expected a JSON list of lists of strings",
                line_no + 1
            )
        })?;
        chunk.push(events);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut out)?;
        }
    }
    flush(&mut chunk, &mut out)?;
    patterns.flush()?;
    eprintln!(
        "learned {learned} patterns ({skipped} lines with fewer than two symbols learned nothing)"
    );
    Ok(ExitCode::SUCCESS)
}

fn predict(patterns: &Arc<Patterns>, target: &Target) -> anyhow::Result<ExitCode> {
    let render = |answer: Answer<'_>, _: &str| {
        let (predictions, future_potentials) = match answer {
            Answer::Full(answer) => (
                answer.to_predictions(),
                answer.future_potentials().as_ref().clone(),
            ),
            Answer::Set(set) => (set.predictions.clone(), set.future_potentials.clone()),
        };
        let value = json!({
            "predictions": predictions.iter().map(json::prediction).collect::<Vec<_>>(),
            "future_potentials": json::future_potentials(&future_potentials),
            "count": predictions.len(),
        });
        mneme_app::sessions::Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
    };
    let bytes =
        sessions(patterns, target).predictions(&target.session, Freshness::Computed, &render)?;
    let value: Value = serde_json::from_slice(&bytes)?;
    print(target, &value)
}

fn clear(patterns: &Arc<Patterns>, args: &ClearArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let sessions = sessions(patterns, target);
    if args.all {
        sessions.clear_all(&target.session)?;
    }
    sessions.delete(&target.session)?;
    print(
        target,
        &json!({"status": "cleared", "scope": if args.all { "all" } else { "stm" }}),
    )
}
