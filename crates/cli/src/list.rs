//! `mailslot list`: the mailslots of this host (this network namespace).

use std::io::{self, Write};

use anyhow::{Context, Result};
use mailslot::policy::{self, Policy, Verdict};

/// Options of `mailslot list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// One JSON object per mailslot.
    #[arg(long)]
    json: bool,
}

/// What the name policy says about a listed mailslot's owner: `Some(false)` when the policy
/// does not allow it to serve the name, `None` when no rule is about the name or the owner is
/// not known (another user's process this user may not inspect).
fn owner_allowed(policy: &Policy, e: &mailslot::ListEntry) -> Option<bool> {
    if !policy.covers(&e.name) {
        return None;
    }
    let (uid, groups) = e
        .owner_pid
        .and_then(policy::process_credentials)
        .or_else(|| e.owner_uid.map(|u| (u, Vec::new())))?;
    match policy.check(&e.name, uid, &groups) {
        Verdict::Denied => Some(false),
        _ => Some(true),
    }
}

/// Prints the host's mailslots, one per line; a name whose owner the name policy does not allow
/// is marked `NOT ALLOWED BY POLICY` (`"owner_allowed": false` in JSON).
pub(crate) fn run(a: &ListArgs) -> Result<()> {
    let policy = Policy::load().context("cannot use the mailslot name policy")?;
    let entries = mailslot::list().context("cannot read /proc/net/unix")?;
    let mut out = io::stdout().lock();
    for e in entries {
        let allowed = owner_allowed(&policy, &e);
        if a.json {
            let v = serde_json::json!({
                "name": e.name.to_string(),
                "owner_pid": e.owner_pid,
                "owner_uid": e.owner_uid,
                "owner_allowed": allowed,
            });
            writeln!(out, "{v}")?;
        } else {
            let pid = e.owner_pid.map_or("-".into(), |p| p.to_string());
            let uid = e.owner_uid.map_or("-".into(), |u| u.to_string());
            let mark = if allowed == Some(false) {
                "  NOT ALLOWED BY POLICY"
            } else {
                ""
            };
            writeln!(
                out,
                "{:<50} pid {pid:<8} uid {uid}{mark}",
                e.name.to_string()
            )?;
        }
    }
    Ok(())
}
