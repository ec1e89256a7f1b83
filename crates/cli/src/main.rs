//! `mailslot`: the command-line tool of the mailslots-for-Linux project.
//!
//! Exit codes: 0 success; 1 `listen` timed out before `--count` messages (or `decode` met a packet
//! it could not parse); 2 any error (message on stderr).

mod demo;
mod wire;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use mailslot::daemon::DaemonClient;
use mailslot::{
    Access, Class, Mailslot, MailslotWriter, Message, ReadError, Sender, Timeout, WriteOptions,
};
use mailslot_proto::NetbiosName;

/// Mailslots for Linux: named one-way message queues with priorities, as in Windows NT and
/// LAN Manager.
#[derive(Parser, Debug)]
#[command(name = "mailslot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a mailslot and print each message as it arrives.
    ///
    /// Exits 0 after --count messages, 1 if --timeout elapsed first, 2 on error (for example
    /// when the name is already in use).
    Listen(ListenArgs),
    /// Write one message to a mailslot.
    ///
    /// The data is TEXT, or --hex, or --file, or standard input when none is given.
    /// Exits 0 when the message was queued, 2 on error.
    Send(SendArgs),
    /// List the mailslots of this host (this network namespace).
    List(ListArgs),
    /// Run a self-contained demonstration: an owner and writer processes with priorities.
    Demo(demo::DemoArgs),
    /// Decode NetBIOS datagrams / name-service packets (hex or a pcap/pcapng capture) as JSON.
    Decode(wire::DecodeArgs),
    /// Encode a mailslot write as a NetBIOS datagram (UDP 138 payload), printed as hex.
    Encode(wire::EncodeArgs),
    /// Encode a NetBIOS name query (UDP 137 payload), printed as hex.
    EncodeNameQuery(wire::EncodeNameQueryArgs),
    /// Send a Messenger message ("net send"): From/To/Text to \\HOST\mailslot\messngr.
    Messenger(MessengerArgs),
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
}

#[derive(clap::Args, Debug)]
struct MountArgs {
    /// Mount point (made if missing).
    #[arg(default_value = "/run/mailslot")]
    dir: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
struct MessengerArgs {
    /// Recipient computer (or `*` for the whole workgroup).
    #[arg(long)]
    to: String,
    /// Sender name shown to the recipient (default: this host's name, upper case).
    #[arg(long)]
    from: Option<String>,
    /// The text.
    text: String,
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

#[derive(clap::Args, Debug)]
struct ListenArgs {
    /// Mailslot name, e.g. '\\.\mailslot\app\events' or /mailslot/app/events.
    name: String,
    /// Exit 0 after this many messages (default: run until stopped).
    #[arg(long)]
    count: Option<u64>,
    /// Give up after this many milliseconds in total (or "forever", the default); exit 1 if
    /// fewer than --count messages arrived by then.
    #[arg(long, value_parser = parse_timeout, default_value = "forever")]
    timeout: Timeout,
    /// Largest message accepted, in bytes (0 = up to the 64 KiB limit).
    #[arg(long, default_value_t = 0)]
    max_size: usize,
    /// Bytes of queued messages allowed (default 1 MiB).
    #[arg(long)]
    quota: Option<usize>,
    /// Who may write: owner (default: the same user and root), everyone, or group:GID.
    #[arg(long, value_parser = parse_access, default_value = "owner")]
    access: Access,
    /// Print one JSON object per message.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    /// Mailslot name.
    name: String,
    /// The message text (UTF-8).
    text: Option<String>,
    /// The message as hex digits.
    #[arg(long, conflicts_with_all = ["text", "file"])]
    hex: Option<String>,
    /// Read the message from a file.
    #[arg(long, conflicts_with_all = ["text", "hex"])]
    file: Option<std::path::PathBuf>,
    /// Priority 0-9 (9 is read first).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: u8,
    /// Class 1 (wait for room, up to --timeout) or 2 (fail at once when full).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    class: u8,
    /// How long a class-1 write waits for room, in milliseconds or "forever" (the default).
    #[arg(long, value_parser = parse_timeout, default_value = "forever")]
    timeout: Timeout,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// One JSON object per mailslot.
    #[arg(long)]
    json: bool,
}

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if s.eq_ignore_ascii_case("forever") || s == "-1" {
        return Ok(Timeout::Forever);
    }
    s.parse::<u64>()
        .map(|ms| Timeout::After(Duration::from_millis(ms)))
        .map_err(|_| format!("expected milliseconds or \"forever\", got {s:?}"))
}

fn parse_access(s: &str) -> Result<Access, String> {
    match s {
        "owner" => Ok(Access::Owner),
        "everyone" => Ok(Access::Everyone),
        _ => s
            .strip_prefix("group:")
            .and_then(|g| g.parse().ok())
            .map(Access::Group)
            .ok_or_else(|| format!("expected owner, everyone or group:GID, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Listen(a) => listen(&a),
        Command::Send(a) => send(&a).map(|()| 0),
        Command::List(a) => list(&a).map(|()| 0),
        Command::Demo(a) => demo::run(&a).map(|()| 0),
        Command::Decode(a) => Ok(wire::run_decode(&a)),
        Command::Encode(a) => wire::run_encode(&a).map(|()| 0),
        Command::EncodeNameQuery(a) => wire::run_encode_name_query(&a).map(|()| 0),
        Command::Messenger(a) => messenger(&a).map(|()| 0),
        Command::Daemon(a) => Ok(i32::from(mailslotd::run(&a))),
        Command::DaemonStatus(a) => daemon_status(&a).map(|()| 0),
        Command::Resolve(a) => resolve(&a),
        Command::Mount(a) => mailslot_mount::run(&a.dir)
            .with_context(|| format!("mounting {}", a.dir.display()))
            .map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            if e.downcast_ref::<io::Error>().map(|e| e.kind()) == Some(io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("mailslot: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One received message as a JSON value (the `listen --json` line format).
pub(crate) fn message_json(m: &Message) -> serde_json::Value {
    let sender = match &m.sender {
        Sender::Local { pid, uid, gid } => serde_json::json!({"pid": pid, "uid": uid, "gid": gid}),
        Sender::Remote { name, ip } => {
            serde_json::json!({"name": name.as_str(), "ip": ip.to_string()})
        }
        other => serde_json::json!({"unknown": format!("{other:?}")}),
    };
    serde_json::json!({
        "size": m.data.len(),
        "priority": m.priority,
        "class": m.class.number(),
        "data_hex": hex::encode(&m.data),
        "text": std::str::from_utf8(&m.data).ok(),
        "sender": sender,
    })
}

/// One received message as a line of text.
pub(crate) fn message_text(m: &Message) -> String {
    let from = match &m.sender {
        Sender::Local { pid, uid, .. } => format!("pid {pid} uid {uid}"),
        Sender::Remote { name, ip } => format!("{name} ({ip})"),
        other => format!("{other:?}"),
    };
    let body = match std::str::from_utf8(&m.data) {
        Ok(t) => format!("{t:?}"),
        Err(_) => format!("hex {}", hex::encode(&m.data)),
    };
    format!(
        "[priority {} class {} from {from}] {} bytes: {body}",
        m.priority,
        m.class.number(),
        m.data.len()
    )
}

fn listen(a: &ListenArgs) -> Result<i32> {
    let mut b = Mailslot::builder()
        .max_message_size(a.max_size)
        .access(a.access);
    if let Some(q) = a.quota {
        b = b.quota(q);
    }
    let slot = b
        .create(&a.name)
        .with_context(|| format!("cannot create mailslot {}", a.name))?;
    eprintln!("mailslot: listening on {}", slot.name());
    let deadline = match a.timeout {
        Timeout::After(d) => Some(Instant::now() + d),
        Timeout::Forever => None,
    };
    let stdout = io::stdout();
    let mut got = 0u64;
    while a.count.is_none_or(|n| got < n) {
        let t = match deadline {
            None => Timeout::Forever,
            Some(dl) => Timeout::After(dl.saturating_duration_since(Instant::now())),
        };
        let m = match slot.read_message_timeout(t) {
            Ok(m) => m,
            Err(ReadError::Timeout) => {
                eprintln!("mailslot: timed out after {got} message(s)");
                return Ok(1);
            }
            Err(e) => return Err(e.into()),
        };
        got += 1;
        let mut out = stdout.lock();
        if a.json {
            let mut v = message_json(&m);
            // Well-known mailslots (browser, NETLOGON, Messenger): the decoded payload too.
            if let Some(Ok(p)) =
                mailslot_proto::Payload::parse(slot.name().wire_name().as_bytes(), &m.data)
            {
                v["payload"] = wire::payload_json(&p);
            }
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}", message_text(&m))?;
        }
        out.flush()?;
    }
    Ok(0)
}

fn send(a: &SendArgs) -> Result<()> {
    let data = if let Some(t) = &a.text {
        t.clone().into_bytes()
    } else if let Some(h) = &a.hex {
        let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(clean).map_err(|e| anyhow!("--hex: {e}"))?
    } else if let Some(f) = &a.file {
        std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?
    } else {
        let mut v = Vec::new();
        io::stdin()
            .read_to_end(&mut v)
            .context("cannot read standard input")?;
        v
    };
    let class =
        Class::from_number(a.class.into()).ok_or_else(|| anyhow!("class must be 1 or 2"))?;
    let opts = WriteOptions::new()
        .priority(a.priority)
        .class(class)
        .timeout(a.timeout);
    let w = MailslotWriter::open(&a.name).with_context(|| format!("cannot open {}", a.name))?;
    if let Err(e) = w.write_with(&data, opts) {
        bail!("cannot write to {}: {e}", a.name);
    }
    Ok(())
}

fn list(a: &ListArgs) -> Result<()> {
    let entries = mailslot::list().context("cannot read /proc/net/unix")?;
    let mut out = io::stdout().lock();
    for e in entries {
        if a.json {
            let v = serde_json::json!({
                "name": e.name.to_string(),
                "owner_pid": e.owner_pid,
                "owner_uid": e.owner_uid,
            });
            writeln!(out, "{v}")?;
        } else {
            let pid = e.owner_pid.map_or("-".into(), |p| p.to_string());
            let uid = e.owner_uid.map_or("-".into(), |u| u.to_string());
            writeln!(out, "{:<50} pid {pid:<8} uid {uid}", e.name.to_string())?;
        }
    }
    Ok(())
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
    for n in &status.names {
        writeln!(
            out,
            "  name {:?} group {} registered {}",
            n.name, n.group, n.registered
        )?;
    }
    for fields in [status.counters.fields(), status.delivery.fields()] {
        let mut fields = fields;
        fields.sort_unstable();
        for (k, val) in fields {
            writeln!(out, "  {k:<24} {val}")?;
        }
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

fn messenger(a: &MessengerArgs) -> Result<()> {
    let from = match &a.from {
        Some(f) => f.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| mailslotd::netbios_name_for_host(h.trim()))
            .unwrap_or_else(|_| "LINUX".into()),
    };
    let to = if a.to == "*" {
        "*".to_string()
    } else {
        a.to.to_ascii_uppercase()
    };
    let msg = mailslot_proto::MessengerMessage {
        from: from.as_bytes(),
        to: to.as_bytes(),
        text: a.text.as_bytes(),
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
