//! `mneme`: the command-line front of the knowledge base (and, later, the pattern engine and
//! the HTTP server). It only parses arguments, loads the configuration and wires the `app`
//! crate to a terminal; every behaviour lives in the libraries.

mod args;
mod bench;
mod check;
mod health;
mod ingest;
mod kbcompat;
mod mcp;
mod output;
mod query;
mod seq;
mod serve;
mod shell;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use args::{Cli, Command};
use mneme_app::Knowledge;

/// mimalloc: the server allocates and frees many short-lived buffers on several threads, where
/// glibc's allocator spends a tenth of the CPU (measured with perf on the prediction path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status when a command succeeded only in part (some files or queries failed).
pub const EXIT_PARTIAL: u8 = 3;

fn main() -> ExitCode {
    restore_sigpipe();
    let dotenv = load_dotenv();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if kbcompat::invoked_as_knowledgebeast(argv.first()) {
        return kbcompat::main(argv, dotenv);
    }
    let cli = Cli::parse_from(argv);
    if let Command::Query(args) = &cli.command
        && args.top.is_some()
    {
        refuse_top();
    }
    match run(cli, dotenv) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, dotenv: Vec<String>) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Version => {
            output::print_version();
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completions(args) => {
            shell::completions(args.shell, &mut std::io::stdout().lock())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man(args) => {
            shell::man(args.dir.as_deref())?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut extra = Vec::new();
    let max_workers = match &cli.command {
        Command::Ingest(args) => args.max_workers.as_ref(),
        Command::Serve(args) => args.max_workers.as_ref(),
        _ => None,
    };
    if let Some(workers) = max_workers {
        extra.push(mneme_app::FlagValue {
            key: "kb.max_workers",
            value: workers.clone(),
            flag: "--max-workers",
        });
    }
    if let Command::Serve(args) = &cli.command {
        if let Some(host) = &args.host {
            extra.push(mneme_app::FlagValue {
                key: "server.host",
                value: host.clone(),
                flag: "--host",
            });
        }
        if let Some(port) = &args.port {
            extra.push(mneme_app::FlagValue {
                key: "server.port",
                value: port.clone(),
                flag: "--port",
            });
        }
    }
    if let Command::Mcp(args) = &cli.command {
        extra.extend(args.flags());
    }
    let config = cli.global.load_config(&extra)?;
    init_logging(config.log_level);
    for message in dotenv {
        tracing::warn!("{message}");
    }
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    for warning in
        mneme_app::config::environment::ignored_variables(names.iter().map(String::as_str))
    {
        tracing::warn!("{warning}");
    }
    let open = || {
        Knowledge::open(&config.kb)
            .with_context(|| format!("opening the index at {}", config.kb.index_dir.display()))
    };
    let code = match &cli.command {
        Command::Ingest(args) => {
            ingest::check_roots(&config, &args.paths, "nothing to ingest")?;
            let knowledge = if args.rebuild {
                ingest::open_for_rebuild(&config.kb)?
            } else {
                open()?
            };
            ingest::run(&knowledge, args)?
        }
        Command::Query(args) => {
            // Before the first ingest: refuse before opening, which creates the index dir.
            if !config.kb.index_dir.exists() {
                ingest::check_roots(&config, &[], "nothing to search yet")?;
            }
            query::run(&open()?, &config, args)?
        }
        Command::Stats(args) => health::stats(&open()?, &config, args)?,
        Command::Warm => health::warm(&open()?)?,
        Command::ClearCache => health::clear_cache(&open()?)?,
        Command::Clear(args) => health::clear(&open()?, args)?,
        Command::Health(args) => health::health(&config, args)?,
        Command::Check(args) => check::run(&config, args)?,
        Command::Seq(args) => seq::run(&config, args)?,
        Command::Serve(args) => serve::run(&config, args)?,
        Command::Mcp(args) => mcp::run(&config, args)?,
        Command::Bench(args) => bench::run(&config, args)?,
        Command::Version | Command::Completions(_) | Command::Man(_) => {
            unreachable!("handled above")
        }
    };
    Ok(code)
}

/// `--top N` is how KnowledgeBeast's users say "how many": point them at `-n/--limit` (exit
/// status 2, like any usage error) instead of clap's generic "unexpected argument".
fn refuse_top() -> ! {
    use clap::CommandFactory;
    let mut command = Cli::command();
    command.build();
    let query = command
        .find_subcommand_mut("query")
        .expect("the query subcommand exists");
    query
        .error(
            clap::error::ErrorKind::UnknownArgument,
            "unexpected argument '--top': the number of documents is -n/--limit, e.g. `-n 5`",
        )
        .exit()
}

/// Reads `.env` in the working directory, as KATO's settings do: each variable it assigns that
/// the environment does not already hold is set (the environment wins). Returns what to warn
/// about once logging is up (lines that are not assignments, a file that cannot be read).
#[allow(unsafe_code)]
fn load_dotenv() -> Vec<String> {
    let path = std::path::Path::new(".env");
    let (assignments, mut messages) = match mneme_app::config::environment::read_dotenv(path) {
        Ok(read) => read,
        Err(err) => return vec![format!("cannot read .env in the working directory: {err}")],
    };
    for assignment in assignments {
        if std::env::var_os(&assignment.key).is_none() {
            // SAFETY: called first thing in main, before any thread exists, so no other code
            // reads the environment concurrently.
            unsafe { std::env::set_var(&assignment.key, &assignment.value) };
        }
    }
    if !messages.is_empty() {
        messages.push("the other lines of .env were applied".into());
    }
    messages
}

/// Rust ignores SIGPIPE, so `mneme query … | head` would end in a "broken pipe" panic; with
/// the default action the process ends quietly like any Unix filter.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(level: mneme_app::LogLevel) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,mneme={0},mneme_kb={0},mneme_app={0},mneme_server={0},tantivy=warn",
        level.as_filter()
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
