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
use mneme_app::running::RunningServer;
use mneme_server::kato::commands::{self, Command};
use mneme_server::kato::request;
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
    let engine = Engine::open(config)?;
    match &args.command {
        SeqCommand::Observe(args) => {
            let target = &args.target;
            let command = Command::Observe {
                node: target.node.clone(),
                session: target.session.clone(),
                observation: observation_body(args)?,
            };
            print(target, &engine.run(&command)?)
        }
        SeqCommand::Learn(args) => {
            let target = &args.target;
            if let Some(path) = &args.batch {
                return learn_batch(&engine, &target.node, path);
            }
            let command = Command::Learn {
                node: target.node.clone(),
                session: target.session.clone(),
            };
            print(target, &engine.run(&command)?)
        }
        SeqCommand::Predict(target) => {
            let command = Command::Predict {
                node: target.node.clone(),
                session: target.session.clone(),
            };
            print(target, &engine.run(&command)?)
        }
        SeqCommand::Stm(target) => {
            let command = Command::Stm {
                node: target.node.clone(),
                session: target.session.clone(),
            };
            print(target, &engine.run(&command)?)
        }
        SeqCommand::Clear(args) => {
            let command = Command::Clear {
                node: args.target.node.clone(),
                session: args.target.session.clone(),
                all: args.all,
            };
            print(&args.target, &engine.run(&command)?)
        }
        SeqCommand::Pattern(args) => {
            let command = Command::Pattern {
                node: args.target.node.clone(),
                name: args.name.clone(),
            };
            print(&args.target, &engine.run(&command)?)
        }
    }
}

/// Where the commands run: on the embedded store in this process, or, when a running
/// `mneme serve` holds the store, on that server (which answers the same).
enum Engine {
    Local(Arc<Patterns>),
    Server(RunningServer, crate::bench::http::Target),
}

impl Engine {
    fn open(config: &Config) -> anyhow::Result<Engine> {
        let store = config.seq.store.display().to_string();
        match open_patterns(&config.seq) {
            Ok(patterns) => Ok(Engine::Local(Arc::new(patterns))),
            Err(mneme_store::Error::Busy(_)) => {
                let Some(server) = mneme_app::running::find(&config.data_dir) else {
                    bail!(
                        "the pattern store {store} is in use by another process that is not a \
                         `mneme serve` of this data directory; stop it, or give this command \
                         another --data-dir"
                    );
                };
                let target = crate::bench::http::Target::parse(&server.url).with_context(|| {
                    format!(
                        "mneme serve (pid {}) holds {store}, but its address {} cannot be used; \
                         stop it to run this command on the store directly",
                        server.pid, server.url
                    )
                })?;
                let key = std::env::var("MNEME_KATO_API_KEY").ok().and_then(|keys| {
                    keys.split(',')
                        .map(str::trim)
                        .find(|k| !k.is_empty())
                        .map(str::to_owned)
                });
                Ok(Engine::Server(
                    server,
                    crate::bench::http::Target {
                        api_key: key,
                        ..target
                    },
                ))
            }
            Err(err) => Err(err).with_context(|| format!("opening the pattern store {store}")),
        }
    }

    fn run(&self, command: &Command) -> anyhow::Result<Value> {
        match self {
            Engine::Local(patterns) => commands::run(patterns, command).map_err(anyhow::Error::msg),
            Engine::Server(server, target) => {
                let body = serde_json::to_string(command)?;
                let (status, bytes) = crate::bench::http::request(target, "POST", "/mneme/seq", &body)
                    .with_context(|| {
                        format!(
                            "mneme serve (pid {}) holds the pattern store; sending the command to it at {}",
                            server.pid, server.url
                        )
                    })?;
                let value: Value = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "the server at {} answered {status} with no JSON",
                        server.url
                    )
                })?;
                if status == 200 {
                    Ok(value)
                } else {
                    let message = value["error"]
                        .as_str()
                        .or_else(|| value["detail"].as_str())
                        .map_or_else(|| value.to_string(), str::to_owned);
                    bail!(
                        "{message} (answered by mneme serve, pid {}, at {})",
                        server.pid,
                        server.url
                    )
                }
            }
        }
    }

    /// Makes what was learned durable (the server's store does that itself).
    fn flush(&self) -> anyhow::Result<()> {
        if let Engine::Local(patterns) = self {
            patterns.flush()?;
        }
        Ok(())
    }
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

/// The observation as KATO's observe body, from `--json` or from the flags.
fn observation_body(args: &ObserveArgs) -> anyhow::Result<Value> {
    if let Some(body) = &args.json {
        let value: Value = serde_json::from_str(body).context("--json is not valid JSON")?;
        request::observation(Some(value.clone())).map_err(|errors| {
            anyhow::anyhow!("invalid observation: {}", request::detail(&errors))
        })?;
        return Ok(value);
    }
    let mut vectors = Vec::new();
    for vector in &args.vectors {
        let values: Result<Vec<f64>, _> =
            vector.split(',').map(|x| x.trim().parse::<f64>()).collect();
        let values = values
            .with_context(|| format!("--vector {vector:?}: expected comma-separated numbers"))?;
        if values.iter().any(|x| !x.is_finite()) {
            bail!("--vector {vector:?}: numbers must be finite");
        }
        vectors.push(values);
    }
    let mut emotives = serde_json::Map::new();
    for emotive in &args.emotives {
        let (name, value) = emotive
            .split_once('=')
            .with_context(|| format!("--emotive {emotive:?}: expected NAME=NUMBER"))?;
        let value: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("--emotive {emotive:?}: {value:?} is not a number"))?;
        emotives.insert(name.to_owned(), json!(value));
    }
    let mut metadata = serde_json::Map::new();
    for entry in &args.metadata {
        let (key, value) = entry
            .split_once('=')
            .with_context(|| format!("--meta {entry:?}: expected KEY=VALUE"))?;
        metadata.insert(key.to_owned(), json!(value));
    }
    Ok(json!({
        "strings": args.symbols,
        "vectors": vectors,
        "emotives": emotives,
        "metadata": metadata,
    }))
}

/// Lines of event lists, learned in chunks; each chunk's names are printed once the chunk is
/// committed (durably, unless the store is in periodic mode).
fn learn_batch(engine: &Engine, node: &str, path: &std::path::Path) -> anyhow::Result<ExitCode> {
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
        if chunk.is_empty() {
            return Ok(());
        }
        let answer = engine.run(&Command::LearnBatch {
            node: node.to_owned(),
            events: std::mem::take(chunk),
        })?;
        for name in answer["names"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if name.is_empty() {
                skipped += 1;
            } else {
                learned += 1;
            }
            writeln!(out, "{name}")?;
        }
        out.flush()?;
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
    engine.flush()?;
    eprintln!(
        "learned {learned} patterns ({skipped} lines with fewer than two symbols learned nothing)"
    );
    Ok(ExitCode::SUCCESS)
}
