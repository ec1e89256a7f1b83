//! `mailslot`: the command-line tool of the mailslots-for-Linux project.
//!
//! Exit codes: 0 success; 1 `listen` timed out before `--count` messages (or `decode` met a packet
//! it could not parse); 2 any error (message on stderr). Named in [`exit::Exit`]; the daemon
//! subcommand passes the daemon's own statuses through (3: another node holds our name).
//!
//! `main` is a dispatcher: each subcommand's options and handler live in a module of their own
//! (`listen`, `send`, `list`, `messenger`, `demo`, `wire`, `generate`); the daemon's client
//! calls (`daemon-status`, `resolve`) are at the end of this file.

mod args;
mod demo;
mod exit;
mod generate;
mod list;
mod listen;
mod messenger;
mod send;
mod wire;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use mailslot::daemon::DaemonClient;
use mailslot_proto::NetbiosName;

use crate::exit::Exit;

/// Mailslots for Linux: named one-way message queues with priorities, as in Windows NT and
/// LAN Manager.
#[derive(Parser, Debug)]
#[command(name = "mailslot", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a mailslot and print each message as it arrives.
    ///
    /// Exits 0 after --count messages, 1 if --timeout elapsed first, 2 on error (for example
    /// when the name is already in use).
    Listen(listen::ListenArgs),
    /// Write one message to a mailslot.
    ///
    /// The data is TEXT, or --hex, or --file, or standard input when none is given.
    /// Exits 0 when the message was queued, 2 on error.
    Send(send::SendArgs),
    /// List the mailslots of this host (this network namespace), marking those served by a user
    /// the name policy (/etc/mailslot/policy.toml, or $MAILSLOT_POLICY) does not allow.
    List(list::ListArgs),
    /// Run a self-contained demonstration: an owner and writer processes with priorities.
    Demo(demo::DemoArgs),
    /// Decode NetBIOS datagrams / name-service packets (hex or a pcap/pcapng capture) as JSON.
    Decode(wire::DecodeArgs),
    /// Encode a mailslot write as a NetBIOS datagram (UDP 138 payload), printed as hex.
    Encode(wire::EncodeArgs),
    /// Encode a NetBIOS name query (UDP 137 payload), printed as hex.
    EncodeNameQuery(wire::EncodeNameQueryArgs),
    /// The Messenger service ("net send"): send, serve (show received messages), deliver.
    ///
    /// `mailslot messenger --to NAME [--from F] TEXT` (the old form) is the same as
    /// `mailslot messenger send --to NAME [--from F] TEXT`.
    Messenger(messenger::MessengerArgs),
    /// Run the network daemon in the foreground (the same as `mailslotd`).
    Daemon(mailslotd::DaemonArgs),
    /// Show the network daemon's names, cache and counters.
    DaemonStatus(StatusArgs),
    /// Resolve a NetBIOS name (NAME or NAME<xx>, default suffix 00) through the daemon.
    Resolve(ResolveArgs),
    /// Show the host's mailslots as files (FUSE), in the foreground until SIGTERM/SIGINT.
    ///
    /// `echo text > DIR/app/events` writes one message to \\.\mailslot\app\events; see the
    /// README's "Mailslots as files". Needs root (or the daemon's user) and /dev/fuse.
    Mount(MountArgs),
    /// Write the man pages (mailslot.1, mailslot-SUB.1, mailslotd.8) into a directory.
    #[command(hide = true)]
    GenerateMan(generate::ManArgs),
    /// Write the shell completions of mailslot and mailslotd into a directory.
    #[command(hide = true)]
    GenerateCompletions(generate::CompletionArgs),
}

#[derive(clap::Args, Debug)]
struct MountArgs {
    /// Mount point (made if missing).
    #[arg(default_value = "/run/mailslot")]
    dir: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ResolveArgs {
    /// NetBIOS name, optionally with a hex suffix: HOST, HOST<20>, LAB<1C>.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<io::Error>().map(io::Error::kind) == Some(io::ErrorKind::BrokenPipe)
            {
                return Exit::Success.into();
            }
            eprintln!("mailslot: error: {e:#}");
            Exit::Error.into()
        }
    }
}

/// Parses the command line and runs the subcommand; an `Err` is reported as [`Exit::Error`].
fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Listen(a) => listen::run(&a)?,
        Command::Send(a) => send::run(&a).map(|()| Exit::Success)?,
        Command::List(a) => list::run(&a).map(|()| Exit::Success)?,
        Command::Demo(a) => demo::run(&a).map(|()| Exit::Success)?,
        Command::Decode(a) => Exit::from_code(wire::run_decode(&a)),
        Command::Encode(a) => wire::run_encode(&a).map(|()| Exit::Success)?,
        Command::EncodeNameQuery(a) => wire::run_encode_name_query(&a).map(|()| Exit::Success)?,
        Command::Messenger(a) => messenger::run(&a).map(|()| Exit::Success)?,
        // The daemon's own exit statuses (3: name conflict) pass through.
        Command::Daemon(a) => return Ok(ExitCode::from(mailslotd::run(&a))),
        Command::DaemonStatus(a) => daemon_status(&a).map(|()| Exit::Success)?,
        Command::Resolve(a) => Exit::from_code(resolve(&a)?),
        Command::Mount(a) => mailslot_mount::run(&a.dir)
            .with_context(|| format!("mounting {}", a.dir.display()))
            .map(|()| Exit::Success)?,
        Command::GenerateMan(a) => generate::man(&a).map(|()| Exit::Success)?,
        Command::GenerateCompletions(a) => generate::completions(&a).map(|()| Exit::Success)?,
    };
    Ok(exit.into())
}

/// How long the daemon may take to answer the tool.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(15);

fn daemon_status(a: &StatusArgs) -> Result<()> {
    let status = DaemonClient::connect()?.status(DAEMON_TIMEOUT)?;
    let mut out = io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&status)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:?} in workgroup {:?} ({})",
        status.netbios_name,
        status.workgroup,
        serde_json::to_string(&status.interfaces)?
    )?;
    let mode = match status.mode.mode {
        mailslot::daemon::Mode::BesideSamba => "beside-samba",
        _ => "standalone",
    };
    writeln!(out, "  mode {mode} ({})", status.mode.reason)?;
    if let Some(sock) = &status.mode.samba_socket {
        writeln!(
            out,
            "  samba socket {sock} connected {} connections {} relayed {}",
            status.mode.samba_connected, status.mode.samba_connections, status.mode.samba_relayed
        )?;
    }
    for n in &status.names {
        writeln!(
            out,
            "  name {:?} group {} registered {}",
            n.name, n.group, n.registered
        )?;
    }
    writeln!(out, "  session port {}", status.ports.session)?;
    for fields in [
        status.counters.fields(),
        status.delivery.fields(),
        status.session.fields(),
    ] {
        let mut fields = fields;
        fields.sort_unstable();
        for (k, val) in fields {
            writeln!(out, "  {k:<24} {val}")?;
        }
    }
    match &status.directory {
        Some(directory) => {
            let mut fields = directory.fields();
            fields.sort_unstable();
            for (k, val) in fields {
                writeln!(out, "  directory_{k:<14} {val}")?;
            }
        }
        None => writeln!(out, "  directory not served")?,
    }
    Ok(())
}

fn resolve(a: &ResolveArgs) -> Result<i32> {
    let name: NetbiosName = a
        .name
        .parse()
        .map_err(|e| anyhow!("expected NAME or NAME<xx>, got {:?}: {e}", a.name))?;
    let answer =
        DaemonClient::connect()?.resolve(&name.name_lossy(), name.suffix(), DAEMON_TIMEOUT)?;
    let r = match answer {
        Ok(r) => r,
        Err(f) => {
            eprintln!("mailslot: error: {f}");
            return Ok(2);
        }
    };
    let mut out = io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    } else {
        for addr in &r.addresses {
            let kind = if addr.group { "group" } else { "unique" };
            writeln!(out, "{} {kind}", addr.ip)?;
        }
    }
    Ok(0)
}
