//! `mailslot send`: write one message to a mailslot.

use std::io::{self, Read};

use anyhow::{anyhow, bail, Context, Result};
use mailslot::{Class, MailslotWriter, Timeout, WriteOptions};

use crate::args::parse_timeout;

/// Options of `mailslot send`.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
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

/// Writes one message (from the text, `--hex`, `--file` or standard input).
pub(crate) fn run(a: &SendArgs) -> Result<()> {
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
