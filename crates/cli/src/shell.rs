//! Shell niceties generated from the command definitions themselves: completion scripts
//! (`clap_complete`) and manual pages (`clap_mangen`), so they cannot drift from `--help`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::args::Cli;

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "mneme", out);
    Ok(())
}

/// Prints mneme.1, or with `dir` writes mneme.1 and one mneme-<command>.1 per command there.
pub fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut out)?;
        return Ok(out.flush()?);
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the manual directory {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
    eprintln!("wrote the manual pages into {}", dir.display());
    Ok(())
}
