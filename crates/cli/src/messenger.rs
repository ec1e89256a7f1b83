//! `mailslot messenger`: a Messenger ("net send") message to a host's `messngr` mailslot.

use anyhow::{anyhow, Context, Result};
use mailslot::MailslotWriter;

/// Options of `mailslot messenger`.
#[derive(clap::Args, Debug)]
pub(crate) struct MessengerArgs {
    /// Recipient computer (or `*` for the whole workgroup).
    #[arg(long)]
    to: String,
    /// Sender name shown to the recipient (default: this host's name, upper case).
    #[arg(long)]
    from: Option<String>,
    /// The text.
    text: String,
}

/// Sends the Messenger message to `\\TO\mailslot\messngr`.
pub(crate) fn run(a: &MessengerArgs) -> Result<()> {
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
