//! `mailslot list`: the mailslots of this host (this network namespace).

use std::io::{self, Write};

use anyhow::{Context, Result};

/// Options of `mailslot list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// One JSON object per mailslot.
    #[arg(long)]
    json: bool,
}

/// Prints the host's mailslots, one per line.
pub(crate) fn run(a: &ListArgs) -> Result<()> {
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
