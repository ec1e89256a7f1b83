//! Listing the mailslots of this host (this network namespace only): those with a socket of
//! their own from `/proc/net/unix`, and those whose names the daemon's directory keeps.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;

use super::ADDR_PREFIX;
use crate::name::Name;
use crate::ListEntry;

/// `__SO_ACCEPTCON`: the socket listens.
const ACCEPTCON: u32 = 0x0001_0000;
/// `SOCK_SEQPACKET` as `/proc/net/unix` prints it.
const SEQPACKET: u32 = 5;

/// Listening mailslot sockets: (inode, path) pairs parsed from the text of `/proc/net/unix`.
pub(crate) fn parse_proc_net_unix(text: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let mut rest = line.trim_start();
        let mut fields = Vec::with_capacity(7);
        for _ in 0..7 {
            let end = rest.find(' ').unwrap_or(rest.len());
            fields.push(&rest[..end]);
            rest = rest[end..].trim_start_matches(' ');
        }
        let (Ok(flags), Ok(ty), Ok(inode)) = (
            u32::from_str_radix(fields[3], 16),
            u32::from_str_radix(fields[4], 16),
            fields[6].parse::<u64>(),
        ) else {
            continue;
        };
        let Some(path) = rest
            .strip_prefix('@')
            .and_then(|p| p.strip_prefix(ADDR_PREFIX))
        else {
            continue;
        };
        if flags & ACCEPTCON != 0 && ty == SEQPACKET {
            out.push((inode, path.to_string()));
        }
    }
    out
}

/// Owner pids of socket inodes, for the processes this user may inspect.
fn socket_owners() -> HashMap<u64, u32> {
    let mut map = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return map;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    if let Ok(ino) = ino.parse() {
                        map.entry(ino).or_insert(pid);
                    }
                }
            }
        }
    }
    map
}

pub(crate) fn list() -> io::Result<Vec<ListEntry>> {
    let text = std::fs::read_to_string("/proc/net/unix")?;
    let socks = parse_proc_net_unix(&text);
    let owners = if socks.is_empty() {
        HashMap::new()
    } else {
        socket_owners()
    };
    let mut out: Vec<ListEntry> = socks
        .into_iter()
        .filter_map(|(inode, path)| {
            let name = Name::local(&path).ok()?;
            let owner_pid = owners.get(&inode).copied();
            let owner_uid = owner_pid
                .and_then(|pid| std::fs::metadata(format!("/proc/{pid}")).ok())
                .map(|m| m.uid());
            Some(ListEntry {
                name,
                owner_pid,
                owner_uid,
            })
        })
        .collect();
    // The names the daemon's directory keeps (no socket of their own), if one runs.
    for e in crate::directory::list() {
        let Ok(name) = Name::local(&e.key) else {
            continue;
        };
        if out.iter().any(|o| o.name.key() == e.key) {
            continue;
        }
        out.push(ListEntry {
            name,
            owner_pid: (e.pid != 0).then_some(e.pid),
            owner_uid: Some(e.uid),
        });
    }
    out.sort_by_key(|e| e.name.key());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_seqpacket_mailslots_only() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0005 01 4242 @mailslot/v1/app\\events\n\
0000000000000000: 00000003 00000000 00000000 0005 03 4243 @mailslot/v1/app\\events\n\
0000000000000000: 00000002 00000000 00010000 0001 01 4244 /run/other.sock\n\
0000000000000000: 00000002 00000000 00010000 0005 01 4245 @mailslot/v1/with space\n\
0000000000000000: 00000002 00000000 00010000 0005 01 4246 @other/v1/x\n";
        assert_eq!(
            parse_proc_net_unix(text),
            vec![
                (4242, "app\\events".to_string()),
                (4245, "with space".to_string())
            ]
        );
    }
}
