//! Value parsers shared by the subcommands' clap definitions.

use std::time::Duration;

use mailslot::{Access, Timeout};

/// Parses a timeout: milliseconds, or `forever` (also `-1`).
pub(crate) fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if s.eq_ignore_ascii_case("forever") || s == "-1" {
        return Ok(Timeout::Forever);
    }
    s.parse::<u64>()
        .map(|ms| Timeout::After(Duration::from_millis(ms)))
        .map_err(|_| format!("expected milliseconds or \"forever\", got {s:?}"))
}

/// Parses who may write: `owner`, `everyone` or `group:GID`.
pub(crate) fn parse_access(s: &str) -> Result<Access, String> {
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
