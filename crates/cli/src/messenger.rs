//! `mailslot messenger`: the Messenger service ("net send", WinPopup) — `send` a message,
//! `serve` (receive and show messages: desktop, terminals, standard output) and `deliver` (hand
//! one message to the local service, for Samba's `message command`).
//!
//! The old form `mailslot messenger --to NAME [--from F] TEXT` still sends.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mailslot::{Access, CreateError, Mailslot, MailslotWriter, OpenError, ReadError, Timeout};
use mailslot_messenger::desktop::Desktop;
use mailslot_messenger::terminal::{self, Recipients};
use mailslot_messenger::{Codepage, Notice, MESSENGER_SLOT};
use mailslot_proto::NetbiosName;

use crate::args::parse_access;

/// Options of `mailslot messenger`: a subcommand, or the old form (`--to NAME TEXT`).
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct MessengerArgs {
    #[command(subcommand)]
    command: Option<MessengerCommand>,
    /// Recipient (the old form of `messenger send`): a computer, a workgroup, or `*`.
    #[arg(long, required = true)]
    to: Option<String>,
    /// Sender name shown to the recipient (default: this host's name, upper case).
    #[arg(long)]
    from: Option<String>,
    /// The text.
    #[arg(required = true)]
    text: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum MessengerCommand {
    /// Send a message to \\TO\mailslot\messngr (a computer, a workgroup, or `*`).
    Send(SendArgs),
    /// The Messenger service: own \\.\mailslot\messngr and show every message that arrives.
    ///
    /// Each message goes to the desktop (org.freedesktop.Notifications on the session bus) when
    /// one is reachable, otherwise to the terminals of the logged-in users it is for (as
    /// write/wall do), and always to standard output. Runs until SIGTERM or SIGINT (exit 0);
    /// exits 2 when another Messenger service already runs.
    Serve(ServeArgs),
    /// Hand one message to the local Messenger service (for Samba's `message command`).
    ///
    /// The text is read from --file or standard input (UTF-8, as smbd writes it). Exits 2 when
    /// no Messenger service runs.
    Deliver(DeliverArgs),
}

/// Options of `mailslot messenger send`.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// Recipient: a computer, a workgroup, or `*` (the whole workgroup).
    #[arg(long)]
    to: String,
    /// Sender name shown to the recipient (default: this host's name, upper case).
    #[arg(long)]
    from: Option<String>,
    /// The text.
    text: String,
}

/// Options of `mailslot messenger serve`.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Print one JSON object per message instead of a line of text.
    #[arg(long)]
    json: bool,
    /// Never show messages on the desktop.
    #[arg(long)]
    no_desktop: bool,
    /// Never write messages to terminals.
    #[arg(long)]
    no_terminals: bool,
    /// The utmp file listing who is logged in where.
    #[arg(long, value_name = "FILE", default_value = terminal::DEFAULT_UTMP)]
    utmp: PathBuf,
    /// The OEM code page of the messages (Samba's `dos charset`): CP850, CP437, ...
    #[arg(long, value_name = "CP", default_value = "CP850")]
    codepage: Codepage,
    /// Write to terminals even when their user turned messages off (`mesg n`).
    #[arg(long)]
    force: bool,
    /// Who on this host may write to the service: everyone (default, as the Messenger did),
    /// owner, or group:GID. Messages from other hosts come through the daemon either way.
    #[arg(long, value_parser = parse_access, default_value = "everyone")]
    access: Access,
    /// This host's NetBIOS name, for recipients (a message to it goes to every user; default:
    /// the daemon's names, else the host name).
    #[arg(long, value_name = "NAME")]
    netbios_name: Vec<String>,
    /// A workgroup of this host, for recipients (default: the daemon's).
    #[arg(long, value_name = "NAME")]
    workgroup: Vec<String>,
}

/// Options of `mailslot messenger deliver`.
#[derive(clap::Args, Debug)]
pub(crate) struct DeliverArgs {
    /// The sender (Samba: %f).
    #[arg(long)]
    from: String,
    /// The recipient (Samba: %t).
    #[arg(long)]
    to: String,
    /// Read the text from this file (Samba: %s) instead of standard input.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// The OEM code page the service reads (as its --codepage).
    #[arg(long, value_name = "CP", default_value = "CP850")]
    codepage: Codepage,
}

/// Runs `mailslot messenger` (a subcommand or the old form).
pub(crate) fn run(a: &MessengerArgs) -> Result<()> {
    match &a.command {
        Some(MessengerCommand::Send(s)) => send_message(s.from.as_deref(), &s.to, &s.text),
        Some(MessengerCommand::Serve(s)) => serve(s),
        Some(MessengerCommand::Deliver(d)) => deliver(d),
        None => match (&a.to, &a.text) {
            (Some(to), Some(text)) => send_message(a.from.as_deref(), to, text),
            _ => bail!("messenger: give a subcommand (send, serve, deliver) or --to NAME TEXT"),
        },
    }
}

/// This host's NetBIOS name, from its host name (`LINUX` if that cannot be read).
/// This host's NetBIOS name: the mailslot daemon's, or made from the host name.
fn host_netbios_name() -> String {
    if let Ok(s) =
        mailslot::daemon::DaemonClient::connect().and_then(|d| d.status(Duration::from_secs(2)))
    {
        return s.netbios_name;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| mailslotd::netbios_name_for_host(h.trim()))
        .unwrap_or_else(|_| "LINUX".into())
}

/// Sends a Messenger message: to one computer or user name over a NetBIOS session to
/// `NAME<03>` first (as NT's `net send NAME`), and by the `\MAILSLOT\MESSNGR` datagram
/// (`From\0To\0Text\0` to `\\TO\mailslot\messngr`) when that name has no session service
/// or for `*` and domains. The text goes out in the OEM code page (CP850).
pub(crate) fn send_message(from: Option<&str>, to: &str, text: &str) -> Result<()> {
    let from = from.map_or_else(host_netbios_name, str::to_string);
    let to = if to == "*" {
        "*".to_string()
    } else {
        to.to_ascii_uppercase()
    };
    let text = Codepage::default().encode(text);
    if to != "*" {
        match send_by_session(&from, &to, &text) {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("mailslot: no Messenger session to {to} ({e:#}); sending a datagram");
            }
        }
    }
    let msg = mailslot_proto::MessengerMessage {
        from: from.as_bytes(),
        to: to.as_bytes(),
        text: &text,
    };
    let data = msg
        .to_vec()
        .map_err(|e| anyhow!("cannot build the message: {e}"))?;
    let name = format!("\\\\{to}\\mailslot\\messngr");
    let w = MailslotWriter::open(&name).with_context(|| format!("cannot open {name}"))?;
    w.write(&data)
        .with_context(|| format!("cannot send to {name}"))?;
    Ok(())
}

/// The message over a session to `TO<03>`, found through the mailslot daemon.
fn send_by_session(from: &str, to: &str, text: &[u8]) -> Result<()> {
    const WAIT: Duration = Duration::from_secs(5);
    let daemon = mailslot::daemon::DaemonClient::connect()?;
    let status = daemon.status(WAIT)?;
    let called = NetbiosName::new(to, 0x03).map_err(|e| anyhow!("{to:?}: {e}"))?;
    let calling = NetbiosName::new(&status.netbios_name, 0x00)
        .map_err(|e| anyhow!("{:?}: {e}", status.netbios_name))?;
    let found = daemon
        .resolve(to, 0x03, WAIT)?
        .map_err(|f| anyhow!("{called} does not resolve: {f}"))?;
    let ip = found
        .addresses
        .iter()
        .find(|a| !a.group)
        .map(|a| a.ip)
        .ok_or_else(|| anyhow!("{called} is a group name"))?;
    let port = match status.ports.session {
        0 => mailslot_proto::session::SESSION_PORT,
        p => p,
    };
    mailslot_messenger::session::send(
        std::net::SocketAddr::from((ip, port)),
        called,
        calling,
        from.as_bytes(),
        to.as_bytes(),
        text,
    )?;
    Ok(())
}

/// Largest text `deliver` reads (a mailslot message is at most 64 KiB; the service shows
/// 1600 characters of it).
const MAX_DELIVER_TEXT: u64 = 60 * 1024;

/// Writes one message into the local `\\.\mailslot\messngr`.
fn deliver(a: &DeliverArgs) -> Result<()> {
    let mut raw = Vec::new();
    match &a.file {
        Some(p) => std::fs::File::open(p)
            .and_then(|f| f.take(MAX_DELIVER_TEXT).read_to_end(&mut raw))
            .with_context(|| format!("cannot read {}", p.display()))?,
        None => io::stdin()
            .take(MAX_DELIVER_TEXT)
            .read_to_end(&mut raw)
            .context("cannot read standard input")?,
    };
    // NUL ends a field on the wire: never let one inside.
    let clean = |s: &str| a.codepage.encode(&s.replace('\0', "?"));
    let (from, to, text) = (
        clean(&a.from),
        clean(&a.to),
        clean(&String::from_utf8_lossy(&raw)),
    );
    let data = mailslot_proto::MessengerMessage {
        from: &from,
        to: &to,
        text: &text,
    }
    .to_vec()
    .map_err(|e| anyhow!("cannot build the message: {e}"))?;
    let w = match MailslotWriter::open(MESSENGER_SLOT) {
        Ok(w) => w,
        Err(OpenError::NotFound(_)) => bail!(
            "no Messenger service runs on this host ({MESSENGER_SLOT} does not exist; start \
             `mailslot messenger serve`)"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot open {MESSENGER_SLOT}")),
    };
    w.write(&data)
        .with_context(|| format!("cannot deliver to {MESSENGER_SLOT}"))?;
    Ok(())
}

/// The names under which a message is for every user of this host.
fn recipients(a: &ServeArgs) -> Recipients {
    let mut r = Recipients {
        host_names: a.netbios_name.clone(),
        groups: a.workgroup.clone(),
    };
    if r.host_names.is_empty() || r.groups.is_empty() {
        let status = mailslot::daemon::DaemonClient::connect()
            .and_then(|c| c.status(Duration::from_secs(2)).map_err(io::Error::other));
        if let Ok(s) = status {
            if r.host_names.is_empty() {
                r.host_names.push(s.netbios_name.clone());
                r.host_names.extend(
                    s.names
                        .iter()
                        .filter(|n| !n.group)
                        .filter_map(|n| n.name.split('<').next().map(str::to_string)),
                );
            }
            if r.groups.is_empty() {
                r.groups.push(s.workgroup);
            }
        }
    }
    if r.host_names.is_empty() {
        r.host_names.push(host_netbios_name());
    }
    r.host_names.dedup();
    r
}

/// How long a read waits before the loop looks at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(200);

/// The Messenger service: reads `\\.\mailslot\messngr` until SIGTERM/SIGINT.
fn serve(a: &ServeArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
    }
    let slot = match Mailslot::builder().access(a.access).create(MESSENGER_SLOT) {
        Ok(s) => s,
        Err(CreateError::AlreadyExists(_)) => {
            bail!("another Messenger service runs on this host ({MESSENGER_SLOT} already exists)")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {MESSENGER_SLOT}")),
    };
    let desktop = if a.no_desktop {
        None
    } else {
        match Desktop::connect() {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("mailslot messenger: desktop notifications off: {e}");
                None
            }
        }
    };
    let recipients = recipients(a);
    eprintln!(
        "mailslot messenger: serving {MESSENGER_SLOT} (desktop {}, terminals {}, for {} and {})",
        if desktop.is_some() { "on" } else { "off" },
        if a.no_terminals { "off" } else { "on" },
        recipients.host_names.join(", "),
        if recipients.groups.is_empty() {
            "*".to_string()
        } else {
            format!("{}, *", recipients.groups.join(", "))
        }
    );
    while !stop.load(Ordering::Relaxed) {
        let m = match slot.read_message_timeout(Timeout::After(STOP_POLL)) {
            Ok(m) => m,
            Err(ReadError::Timeout) => continue,
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the Messenger mailslot"),
        };
        let notice = match Notice::from_message(&m, a.codepage) {
            Ok(n) => n,
            Err(e) => {
                eprintln!(
                    "mailslot messenger: dropped a message from {}: {e}",
                    mailslot_messenger::Origin::from_sender(&m.sender)
                );
                continue;
            }
        };
        show(a, &notice, desktop.as_ref(), &recipients)?;
    }
    eprintln!("mailslot messenger: stopped");
    Ok(())
}

/// Shows one notice through the sinks and prints its line (or JSON object).
fn show(
    a: &ServeArgs,
    notice: &Notice,
    desktop: Option<&Desktop>,
    recipients: &Recipients,
) -> Result<()> {
    let mut on_desktop = false;
    if let Some(d) = desktop {
        match d.notify(notice) {
            Ok(_) => on_desktop = true,
            Err(e) => eprintln!("mailslot messenger: {e}"),
        }
    }
    let mut deliveries = Vec::new();
    if !on_desktop && !a.no_terminals {
        match terminal::read_utmp(&a.utmp) {
            Ok(sessions) => {
                let audience = recipients.audience(&notice.to);
                deliveries = terminal::deliver(notice, &sessions, &audience, a.force);
            }
            Err(e) => eprintln!("mailslot messenger: {e}"),
        }
    }
    for d in &deliveries {
        if let Err(e) = &d.result {
            eprintln!("mailslot messenger: not shown to {}: {e}", d.session.user);
        }
    }
    let mut out = io::stdout().lock();
    if a.json {
        let mut v = serde_json::to_value(notice)?;
        v["desktop"] = serde_json::Value::Bool(on_desktop);
        v["terminals"] = deliveries
            .iter()
            .map(|d| {
                serde_json::json!({
                    "user": d.session.user,
                    "line": d.session.line,
                    "written": d.result.is_ok(),
                    "error": d.result.as_ref().err().map(ToString::to_string),
                })
            })
            .collect();
        writeln!(out, "{v}")?;
    } else {
        let shown: Vec<&str> = deliveries
            .iter()
            .filter(|d| d.result.is_ok())
            .map(|d| d.session.line.as_str())
            .collect();
        let mut sinks = Vec::new();
        if on_desktop {
            sinks.push("desktop".to_string());
        }
        if !shown.is_empty() {
            sinks.push(format!("terminals {}", shown.join(" ")));
        }
        writeln!(
            out,
            "{} {} ({}) [{}]: {:?}",
            notice.received_text(),
            notice.summary(),
            notice.origin,
            if sinks.is_empty() {
                "not shown".to_string()
            } else {
                sinks.join(", ")
            },
            notice.text
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;

    fn messenger(args: &[&str]) -> Result<MessengerArgs, clap::Error> {
        let argv = ["mailslot", "messenger"].iter().chain(args);
        Cli::try_parse_from(argv).map(|c| match c.command {
            crate::Command::Messenger(m) => m,
            other => panic!("parsed as {other:?}"),
        })
    }

    #[test]
    fn old_form_still_parses() {
        let m = messenger(&["--to", "hostb", "--from", "ALICE", "hello there"]).unwrap();
        assert!(m.command.is_none());
        assert_eq!(m.to.as_deref(), Some("hostb"));
        assert_eq!(m.from.as_deref(), Some("ALICE"));
        assert_eq!(m.text.as_deref(), Some("hello there"));
        // Text first, options after, as clap always allowed.
        let m = messenger(&["hi", "--to", "*"]).unwrap();
        assert_eq!(
            (m.to.as_deref(), m.text.as_deref()),
            (Some("*"), Some("hi"))
        );
        // Still required in the old form.
        assert!(messenger(&["hello"]).is_err());
        assert!(messenger(&["--to", "X"]).is_err());
        assert!(messenger(&[]).is_err());
    }

    #[test]
    fn send_subcommand() {
        let m = messenger(&["send", "--to", "LAB", "hi all"]).unwrap();
        let Some(MessengerCommand::Send(s)) = m.command else {
            panic!("not send: {m:?}");
        };
        assert_eq!(
            (s.to.as_str(), s.from, s.text.as_str()),
            ("LAB", None, "hi all")
        );
        assert!(messenger(&["send", "hi"]).is_err());
        // The old form and a subcommand do not mix.
        assert!(messenger(&["--to", "X", "send", "--to", "Y", "t"]).is_err());
    }

    #[test]
    fn serve_options() {
        let m = messenger(&["serve"]).unwrap();
        let Some(MessengerCommand::Serve(s)) = m.command else {
            panic!("not serve: {m:?}");
        };
        assert!(!s.json && !s.no_desktop && !s.no_terminals && !s.force);
        assert_eq!(s.utmp, PathBuf::from("/var/run/utmp"));
        assert_eq!(s.codepage, Codepage::CP850);
        assert_eq!(s.access, Access::Everyone);
        let m = messenger(&[
            "serve",
            "--json",
            "--no-desktop",
            "--utmp",
            "/tmp/u",
            "--codepage",
            "437",
            "--force",
            "--no-terminals",
            "--access",
            "owner",
        ])
        .unwrap();
        let Some(MessengerCommand::Serve(s)) = m.command else {
            panic!("not serve: {m:?}");
        };
        assert!(s.json && s.no_desktop && s.no_terminals && s.force);
        assert_eq!(s.codepage, Codepage::CP437);
        assert_eq!(s.access, Access::Owner);
        let e = messenger(&["serve", "--codepage", "klingon"]).unwrap_err();
        assert!(e.to_string().contains("expected a code page"), "{e}");
    }

    #[test]
    fn deliver_options() {
        let m = messenger(&[
            "deliver", "--from", "alice", "--to", "HOST", "--file", "/tmp/m",
        ])
        .unwrap();
        let Some(MessengerCommand::Deliver(d)) = m.command else {
            panic!("not deliver: {m:?}");
        };
        assert_eq!((d.from.as_str(), d.to.as_str()), ("alice", "HOST"));
        assert_eq!(d.file, Some(PathBuf::from("/tmp/m")));
        assert!(messenger(&["deliver", "--from", "alice"]).is_err());
    }
}
