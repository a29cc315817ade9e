//! `knowledgebeast`: the binary invoked under KnowledgeBeast's name (a symbolic link or a copy
//! named `knowledgebeast`) takes that CLI's commands and flags and runs mneme's equivalents,
//! so scripts written for it keep working. Each command is translated into a `mneme` command
//! line; what has no meaning here is refused with a message that says what to use instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Whether the program was started under KnowledgeBeast's name.
pub fn invoked_as_knowledgebeast(argv0: Option<&OsString>) -> bool {
    argv0
        .and_then(|arg| Path::new(arg).file_stem().map(|s| s.to_os_string()))
        .is_some_and(|stem| stem == "knowledgebeast")
}

/// KnowledgeBeast's command line, run by mneme.
#[derive(Debug, Parser)]
#[command(
    name = "knowledgebeast",
    version,
    about = "KnowledgeBeast's command line, run by mneme (a drop-in replacement)",
    after_help = "Each command runs mneme's equivalent (shown with -v). `mneme --help` lists \
                  everything mneme itself offers."
)]
pub struct KbCli {
    /// Debug logging.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: KbCommand,
}

/// `--data-dir`, which every KnowledgeBeast command takes.
#[derive(Debug, Args)]
pub struct DataDir {
    /// mneme's data directory [default: .mneme, or MNEME_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Create the knowledge directory (if missing) and index it.
    Init {
        /// The knowledge directory.
        #[arg(default_value = "./knowledge-base")]
        path: PathBuf,
        /// A name for the knowledge base (shown only).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Index one file.
    Ingest {
        file: PathBuf,
        #[command(flatten)]
        data: DataDir,
    },
    /// Index a file, or the files of a directory (with -r, its subdirectories too).
    Add {
        path: PathBuf,
        /// Include subdirectories.
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Search the knowledge base.
    Query {
        text: String,
        /// Number of results.
        #[arg(
            short = 'n',
            long = "n-results",
            visible_alias = "top-k",
            default_value_t = 5
        )]
        n_results: u32,
        /// Do not answer from the cache.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Index and cache figures.
    Stats {
        /// All figures (mneme always shows them).
        #[arg(short, long)]
        detailed: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove every document from the index.
    Clear {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Empty the query cache.
    ClearCache {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// Run the warming queries.
    Warm {
        #[command(flatten)]
        data: DataDir,
    },
    /// Check the knowledge base.
    Health {
        #[command(flatten)]
        data: DataDir,
    },
    /// Re-index the knowledge directories every --interval seconds.
    Heartbeat {
        /// start (runs in the foreground until Ctrl-C), stop or status.
        action: HeartbeatAction,
        /// Seconds between scans.
        #[arg(short, long, default_value_t = 300)]
        interval: u64,
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the version.
    Version,
    /// Serve the REST API.
    Serve {
        /// Address to listen on [mneme's default: 127.0.0.1; KnowledgeBeast's was 0.0.0.0].
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        /// Not supported (there is no code to reload); ignored with a warning.
        #[arg(long)]
        reload: bool,
    },
    /// Serve the MCP tools on stdio.
    McpServer {
        #[arg(long, value_name = "PATH")]
        projects_db: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        chroma_path: Option<PathBuf>,
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
    },
    /// Write a performance report.
    Benchmark {
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// json, html or text [default: from the --output extension, else text].
        #[arg(short, long)]
        format: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Not supported: mneme embeds at ingest (see the message).
    #[command(disable_help_flag = true)]
    Migrate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<OsString>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HeartbeatAction {
    Start,
    Stop,
    Status,
}

/// What a KnowledgeBeast command becomes.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Run mneme with these arguments (after the program name).
    Mneme(Vec<OsString>),
    /// `heartbeat start`: ingest every `interval` seconds, in the foreground.
    Heartbeat { args: Vec<OsString>, interval: u64 },
    /// Create the directory, then run mneme.
    Init {
        dir: PathBuf,
        name: Option<String>,
        args: Vec<OsString>,
    },
    /// Say this and exit with the status.
    Say { message: String, status: u8 },
}

fn global(verbose: bool, data: Option<&DataDir>) -> Vec<OsString> {
    let mut args = Vec::new();
    if verbose {
        args.push("--log-level".into());
        args.push("debug".into());
    }
    if let Some(dir) = data.and_then(|d| d.data_dir.as_ref()) {
        args.push("--data-dir".into());
        args.push(dir.into());
    }
    args
}

fn with(mut head: Vec<OsString>, tail: &[&str]) -> Vec<OsString> {
    head.extend(tail.iter().map(OsString::from));
    head
}

/// The files directly in `dir` (KnowledgeBeast's `add` without -r), sorted.
fn top_level_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Translates one KnowledgeBeast command.
pub fn plan(cli: KbCli) -> Plan {
    let v = cli.verbose;
    match cli.command {
        KbCommand::Init { path, name, data } => {
            let mut args = with(global(v, Some(&data)), &["ingest"]);
            args.push(path.clone().into());
            Plan::Init {
                dir: path,
                name,
                args,
            }
        }
        KbCommand::Ingest { file, data } => {
            let mut args = with(global(v, Some(&data)), &["ingest"]);
            args.push(file.into());
            Plan::Mneme(args)
        }
        KbCommand::Add {
            path,
            recursive,
            data,
        } => {
            let mut args = with(global(v, Some(&data)), &["ingest"]);
            if path.is_dir() && !recursive {
                match top_level_files(&path) {
                    Ok(files) if files.is_empty() => {
                        return Plan::Say {
                            message: format!(
                                "no files directly in {}; use -r to include its subdirectories",
                                path.display()
                            ),
                            status: 1,
                        };
                    }
                    Ok(files) => args.extend(files.into_iter().map(OsString::from)),
                    Err(err) => {
                        return Plan::Say {
                            message: format!("cannot read {}: {err}", path.display()),
                            status: 1,
                        };
                    }
                }
            } else {
                args.push(path.into());
            }
            Plan::Mneme(args)
        }
        KbCommand::Query {
            text,
            n_results,
            no_cache,
            data,
        } => {
            let mut args = with(global(v, Some(&data)), &["query"]);
            args.push(text.into());
            args.push("--limit".into());
            args.push(n_results.to_string().into());
            if no_cache {
                args.push("--no-cache".into());
            }
            Plan::Mneme(args)
        }
        KbCommand::Stats { data, .. } => Plan::Mneme(with(global(v, Some(&data)), &["stats"])),
        KbCommand::Clear { yes, data } => {
            let mut args = with(global(v, Some(&data)), &["clear"]);
            if yes {
                args.push("--yes".into());
            }
            Plan::Mneme(args)
        }
        KbCommand::ClearCache { data, .. } => {
            Plan::Mneme(with(global(v, Some(&data)), &["clear-cache"]))
        }
        KbCommand::Warm { data } => Plan::Mneme(with(global(v, Some(&data)), &["warm"])),
        KbCommand::Health { data } => Plan::Mneme(with(global(v, Some(&data)), &["health"])),
        KbCommand::Heartbeat {
            action,
            interval,
            data,
        } => match action {
            HeartbeatAction::Start if interval < 10 => Plan::Say {
                message: format!("--interval {interval} is too short: at least 10 seconds"),
                status: 2,
            },
            HeartbeatAction::Start => Plan::Heartbeat {
                args: with(global(v, Some(&data)), &["ingest"]),
                interval,
            },
            HeartbeatAction::Stop | HeartbeatAction::Status => Plan::Say {
                message: "no heartbeat runs in the background: `knowledgebeast heartbeat start` \
                          re-indexes in the foreground until Ctrl-C, and `mneme serve` runs one \
                          every KB_HEARTBEAT_INTERVAL seconds"
                    .into(),
                status: 0,
            },
        },
        KbCommand::Version => Plan::Mneme(vec!["version".into()]),
        KbCommand::Serve { host, port, reload } => {
            if reload {
                eprintln!(
                    "warning: --reload is not supported (mneme has no code to reload); ignored"
                );
            }
            let mut args = with(global(v, None), &["serve"]);
            if let Some(host) = host {
                args.extend(["--host".into(), host.into()]);
            }
            if let Some(port) = port {
                args.extend(["--port".into(), port.to_string().into()]);
            }
            Plan::Mneme(args)
        }
        KbCommand::McpServer {
            projects_db,
            chroma_path,
            log_level,
        } => {
            let mut args = global(false, None);
            if let Some(level) = log_level {
                args.extend(["--log-level".into(), level.into()]);
            } else if v {
                args.extend(["--log-level".into(), "debug".into()]);
            }
            args.push("mcp-server".into());
            if let Some(path) = projects_db {
                args.extend(["--projects-db".into(), path.into()]);
            }
            if let Some(path) = chroma_path {
                args.extend(["--chroma-path".into(), path.into()]);
            }
            Plan::Mneme(args)
        }
        KbCommand::Benchmark {
            output,
            format,
            data,
        } => {
            let mut args = with(global(v, Some(&data)), &["bench"]);
            if let Some(output) = output {
                args.extend(["--output".into(), output.into()]);
            }
            if let Some(format) = format {
                args.extend(["--format".into(), format.into()]);
            }
            Plan::Mneme(args)
        }
        KbCommand::Migrate { .. } => Plan::Say {
            message: "migrate is not supported: mneme has no term-only index to migrate. With an \
                      embedding model (scripts/fetch-model, or KB_EMBEDDING_MODEL) every \
                      `knowledgebeast ingest` embeds the chunks it has not embedded yet, and \
                      queries are hybrid"
                .into(),
            status: 2,
        },
    }
}

fn mneme_cli(args: Vec<OsString>) -> crate::args::Cli {
    let mut argv = vec![OsString::from("mneme")];
    argv.extend(args);
    crate::args::Cli::parse_from(argv)
}

fn show(verbose: bool, args: &[OsString]) {
    if verbose {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        eprintln!("knowledgebeast: running mneme {}", shown.join(" "));
    }
}

/// Runs KnowledgeBeast's command line given as `argv`.
pub fn main(argv: Vec<OsString>, dotenv: Vec<String>) -> ExitCode {
    let cli = KbCli::parse_from(argv);
    let verbose = cli.verbose;
    let report = |result: anyhow::Result<ExitCode>| {
        result.unwrap_or_else(|err| {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        })
    };
    match plan(cli) {
        Plan::Mneme(args) => {
            show(verbose, &args);
            report(crate::run(mneme_cli(args), dotenv))
        }
        Plan::Init { dir, name, args } => {
            if let Err(err) = std::fs::create_dir_all(&dir) {
                eprintln!("error: creating {}: {err}", dir.display());
                return ExitCode::FAILURE;
            }
            let shown = name.map_or_else(String::new, |name| format!(" \"{name}\""));
            eprintln!(
                "Knowledge base{shown} in {}: add documents there, then `knowledgebeast add {} -r`",
                dir.display(),
                dir.display()
            );
            show(verbose, &args);
            report(crate::run(mneme_cli(args), dotenv))
        }
        Plan::Heartbeat { args, interval } => {
            show(verbose, &args);
            eprintln!(
                "heartbeat: re-indexing the knowledge dirs every {interval} s (Ctrl-C stops)"
            );
            let mut messages = dotenv;
            loop {
                let code = report(crate::run(
                    mneme_cli(args.clone()),
                    std::mem::take(&mut messages),
                ));
                if code == ExitCode::FAILURE {
                    return code;
                }
                std::thread::sleep(std::time::Duration::from_secs(interval));
            }
        }
        Plan::Say { message, status } => {
            if status == 0 {
                println!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(argv: &[&str]) -> Plan {
        plan(KbCli::try_parse_from(argv).unwrap())
    }

    fn mneme(args: &[&str]) -> Plan {
        Plan::Mneme(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn commands_become_mnemes() {
        assert!(invoked_as_knowledgebeast(Some(
            &"/usr/bin/knowledgebeast".into()
        )));
        assert!(!invoked_as_knowledgebeast(Some(&"mneme".into())));
        assert_eq!(
            planned(&["knowledgebeast", "query", "audio", "-n", "3", "--no-cache"]),
            mneme(&["query", "audio", "--limit", "3", "--no-cache"])
        );
        assert_eq!(
            planned(&[
                "knowledgebeast",
                "query",
                "audio",
                "--top-k",
                "7",
                "--data-dir",
                "d"
            ]),
            mneme(&["--data-dir", "d", "query", "audio", "--limit", "7"])
        );
        assert_eq!(
            planned(&["knowledgebeast", "-v", "stats", "--detailed"]),
            mneme(&["--log-level", "debug", "stats"])
        );
        assert_eq!(
            planned(&["knowledgebeast", "clear-cache", "-y"]),
            mneme(&["clear-cache"])
        );
        assert_eq!(
            planned(&["knowledgebeast", "clear", "-y"]),
            mneme(&["clear", "--yes"])
        );
        assert_eq!(
            planned(&["knowledgebeast", "benchmark", "-o", "r.html"]),
            mneme(&["bench", "--output", "r.html"])
        );
        assert_eq!(
            planned(&[
                "knowledgebeast",
                "mcp-server",
                "--chroma-path",
                "c",
                "--log-level",
                "INFO"
            ]),
            mneme(&["--log-level", "INFO", "mcp-server", "--chroma-path", "c"])
        );
        assert_eq!(
            planned(&["knowledgebeast", "serve", "--port", "9000"]),
            mneme(&["serve", "--port", "9000"])
        );
        assert!(matches!(
            planned(&[
                "knowledgebeast",
                "migrate",
                "--from",
                "term",
                "--to",
                "vector"
            ]),
            Plan::Say { status: 2, .. }
        ));
        assert!(matches!(
            planned(&["knowledgebeast", "heartbeat", "status"]),
            Plan::Say { status: 0, .. }
        ));
        assert_eq!(
            planned(&["knowledgebeast", "heartbeat", "start", "-i", "60"]),
            Plan::Heartbeat {
                args: vec!["ingest".into()],
                interval: 60
            }
        );
    }
}
