//! `mailslot listen`: create a mailslot and print each message as it arrives.

use std::io::{self, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use mailslot::{Access, Mailslot, Message, ReadError, Sender, Timeout};

use crate::args::{parse_access, parse_timeout};
use crate::exit::Exit;

/// Options of `mailslot listen`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListenArgs {
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
    /// Wait this many milliseconds after creating the mailslot before reading anything
    /// (messages queue meanwhile: a slow reader, to see a full mailslot and first-class writes
    /// waiting for room).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    hold: u64,
    /// Refuse messages from other hosts (only local writers; network writes to it are dropped,
    /// and first-class ones answered with error 5).
    #[arg(long)]
    local_only: bool,
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

/// Creates the mailslot and prints each message until `--count` or `--timeout`.
pub(crate) fn run(a: &ListenArgs) -> Result<Exit> {
    let mut b = Mailslot::builder()
        .max_message_size(a.max_size)
        .access(a.access)
        .accept_remote(!a.local_only);
    if let Some(q) = a.quota {
        b = b.quota(q);
    }
    let slot = b
        .create(&a.name)
        .with_context(|| format!("cannot create mailslot {}", a.name))?;
    eprintln!("mailslot: listening on {}", slot.name());
    if a.hold > 0 {
        std::thread::sleep(std::time::Duration::from_millis(a.hold));
    }
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
                return Ok(Exit::Incomplete);
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
                v["payload"] = crate::wire::payload_json(&p);
            }
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}", message_text(&m))?;
        }
        out.flush()?;
    }
    Ok(Exit::Success)
}
