//! Man pages and shell completions generated from the clap definitions, for `mailslot` and
//! `mailslotd` (hidden subcommands `generate-man` and `generate-completions`, used by
//! `scripts/install.sh`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Options of `mailslot generate-man`.
#[derive(clap::Args, Debug)]
pub(crate) struct ManArgs {
    /// Directory to write the pages into (made if missing): mailslot.1, mailslot-SUB.1 for each
    /// subcommand, mailslotd.8.
    dir: PathBuf,
}

/// Options of `mailslot generate-completions`.
#[derive(clap::Args, Debug)]
pub(crate) struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
    /// Directory to write the scripts into (made if missing), one for `mailslot` and one for
    /// `mailslotd`, named as the shell's generator names them.
    dir: PathBuf,
}

/// What `mailslotd(8)` adds after its options.
const MAILSLOTD_AFTER_HELP: &str = "\
Configuration: /etc/mailslot/mailslotd.toml when it exists (or --config); the options override \
its keys.

Exit status: 0 after SIGTERM or SIGINT (names released), 2 on a configuration or startup error, \
3 when another node holds our computer name.";

/// What `mailslot(1)` adds after its subcommands.
const MAILSLOT_AFTER_HELP: &str = "\
Exit status: 0 success; 1 `listen` timed out before --count messages (or `decode` met a packet \
it could not parse); 2 any error (message on stderr).";

/// The command line of the `mailslotd` daemon, built from the same arguments it parses.
pub(crate) fn mailslotd_command() -> clap::Command {
    // `augment_args` sets the about text from the arguments' own doc comment: set ours after it.
    mailslotd::DaemonArgs::augment_args(clap::Command::new("mailslotd"))
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "The mailslot network daemon: delivers mailslot writes between hosts, \
             interoperating with Windows and Samba",
        )
        .long_about(None)
        .after_long_help(MAILSLOTD_AFTER_HELP)
}

/// The command line of `mailslot` as its man pages show it.
fn mailslot_command() -> clap::Command {
    crate::Cli::command().after_long_help(MAILSLOT_AFTER_HELP)
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `mailslot(1)`, `mailslot-SUB(1)` for every visible subcommand, and `mailslotd(8)`.
pub(crate) fn man(a: &ManArgs) -> Result<()> {
    create_dir(&a.dir)?;
    clap_mangen::generate_to(mailslot_command(), &a.dir)
        .with_context(|| format!("cannot write the mailslot pages into {}", a.dir.display()))?;
    clap_mangen::Man::new(mailslotd_command())
        .section("8")
        .generate_to(&a.dir)
        .with_context(|| format!("cannot write mailslotd.8 into {}", a.dir.display()))?;
    Ok(())
}

/// Writes the completion scripts of `mailslot` and `mailslotd` for one shell.
pub(crate) fn completions(a: &CompletionArgs) -> Result<()> {
    create_dir(&a.dir)?;
    for (mut cmd, name) in [
        (crate::Cli::command(), "mailslot"),
        (mailslotd_command(), "mailslotd"),
    ] {
        clap_complete::generate_to(a.shell, &mut cmd, name, &a.dir).with_context(|| {
            format!(
                "cannot write the {} completions of {name} into {}",
                a.shell,
                a.dir.display()
            )
        })?;
    }
    Ok(())
}
