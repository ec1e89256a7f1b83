//! The terminals sink: the message on the terminals of the logged-in users it is for, as
//! `write(1)` and `wall(1)` do.
//!
//! Who is logged in where comes from utmp ([`read_utmp`]: `USER_PROCESS` records of the C
//! library's `struct utmpx`, whose size and field offsets are taken from the `libc` crate's
//! definition for this target rather than written down here: 384 bytes on x86_64, 400 on
//! aarch64). Which users a message is for is [`Recipients::audience`]. A terminal is written
//! only if its path is `/dev/pts/N` or `/dev/ttyX`, it is a character device, and its owner
//! allows messages (`mesg y`: the group-write bit) unless forced; it is opened without becoming
//! the controlling terminal and without blocking, and a terminal that does not take the whole
//! message at once is left as it is ([`TerminalError::Stuck`]).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::mem::{offset_of, size_of};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::notice::Notice;

/// The default utmp file.
pub const DEFAULT_UTMP: &str = "/var/run/utmp";

/// Bytes of one utmp record on this target (`size_of::<libc::utmpx>()`).
pub const UTMP_RECORD_SIZE: usize = size_of::<libc::utmpx>();

const TYPE_AT: usize = offset_of!(libc::utmpx, ut_type);
const LINE_AT: usize = offset_of!(libc::utmpx, ut_line);
// ut_line, ut_id, ut_user and ut_host are adjacent `char` arrays: no padding between them.
const LINE_LEN: usize = offset_of!(libc::utmpx, ut_id) - LINE_AT;
const USER_AT: usize = offset_of!(libc::utmpx, ut_user);
const USER_LEN: usize = offset_of!(libc::utmpx, ut_host) - USER_AT;
const PID_AT: usize = offset_of!(libc::utmpx, ut_pid);

/// One login session from utmp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user name.
    pub user: String,
    /// The terminal line, relative to `/dev` (`pts/3`, `tty1`).
    pub line: String,
    /// The login process.
    pub pid: i32,
}

/// Error from [`read_utmp`].
#[derive(Debug, Error)]
pub enum UtmpError {
    /// The file cannot be read.
    #[error("cannot read utmp file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The `USER_PROCESS` sessions of the utmp file at `path`.
pub fn read_utmp(path: &Path) -> Result<Vec<Session>, UtmpError> {
    let bytes = std::fs::read(path).map_err(|source| UtmpError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_utmp(&bytes))
}

/// The `USER_PROCESS` sessions in utmp bytes; a trailing partial record, records of other types
/// and records without a user or line are skipped.
pub fn parse_utmp(bytes: &[u8]) -> Vec<Session> {
    bytes
        .chunks_exact(UTMP_RECORD_SIZE)
        .filter_map(parse_record)
        .collect()
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn parse_record(rec: &[u8]) -> Option<Session> {
    let ty = i16::from_ne_bytes(rec.get(TYPE_AT..TYPE_AT + 2)?.try_into().ok()?);
    if ty != libc::USER_PROCESS {
        return None;
    }
    let pid = i32::from_ne_bytes(rec.get(PID_AT..PID_AT + 4)?.try_into().ok()?);
    let user = c_string(rec.get(USER_AT..USER_AT + USER_LEN)?);
    let line = c_string(rec.get(LINE_AT..LINE_AT + LINE_LEN)?);
    (!user.is_empty() && !line.is_empty()).then_some(Session { user, line, pid })
}

/// Whom a message is for, from its `To` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every logged-in user: `*`, this host's name, or a workgroup of this host.
    Everyone,
    /// The sessions of one user (compared without regard to ASCII case).
    User(String),
}

/// The names under which this host receives messages for all its users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    /// This host's NetBIOS names (the computer name and its aliases).
    pub host_names: Vec<String>,
    /// The workgroups or domains this host belongs to.
    pub groups: Vec<String>,
}

impl Recipients {
    /// `To` of `*`, a host name or a group (ASCII case-insensitive) → [`Audience::Everyone`];
    /// anything else names a user.
    pub fn audience(&self, to: &str) -> Audience {
        let to = to.trim();
        let ours = |names: &[String]| names.iter().any(|n| n.trim().eq_ignore_ascii_case(to));
        if to == "*" || ours(&self.host_names) || ours(&self.groups) {
            Audience::Everyone
        } else {
            Audience::User(to.to_string())
        }
    }
}

/// The sessions a message for `audience` goes to, one per terminal line.
pub fn select<'a>(sessions: &'a [Session], audience: &Audience) -> Vec<&'a Session> {
    let mut out: Vec<&Session> = Vec::new();
    for s in sessions {
        let wanted = match audience {
            Audience::Everyone => true,
            Audience::User(u) => s.user.eq_ignore_ascii_case(u),
        };
        if wanted && !out.iter().any(|o| o.line == s.line) {
            out.push(s);
        }
    }
    out
}

/// Error from [`tty_path`] and [`write_tty`]: why a terminal was not written.
#[derive(Debug, Error)]
pub enum TerminalError {
    /// The line is not `pts/N` or `ttyX` under `/dev`.
    #[error("refusing terminal line {0:?}: only /dev/pts/N and /dev/tty* are written")]
    BadLine(String),
    /// The terminal cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The device.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path is not a character device.
    #[error("{0} is not a terminal device")]
    NotATerminal(PathBuf),
    /// Its owner refuses messages (`mesg n`: no group-write permission).
    #[error("{0}: messages are off (mesg n)")]
    MesgOff(PathBuf),
    /// Writing failed.
    #[error("cannot write to {path}: {source}")]
    Write {
        /// The device.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The terminal did not take the whole message without waiting; the rest was dropped.
    #[error("{path} is not reading: {written} of {len} bytes written, the rest dropped")]
    Stuck {
        /// The device.
        path: PathBuf,
        /// Bytes it took.
        written: usize,
        /// Bytes of the message.
        len: usize,
    },
}

/// The device of a utmp line: `/dev/pts/N` (N digits) or `/dev/ttyX` (X letters and digits,
/// at least one); anything else (other directories, `..`, other devices) is refused.
pub fn tty_path(line: &str) -> Result<PathBuf, TerminalError> {
    let ok = if let Some(n) = line.strip_prefix("pts/") {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    } else if let Some(x) = line.strip_prefix("tty") {
        // Not `/dev/tty` itself: that is the writer's own controlling terminal.
        !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric())
    } else {
        false
    };
    if ok {
        Ok(Path::new("/dev").join(line))
    } else {
        Err(TerminalError::BadLine(line.to_string()))
    }
}

/// The bytes written to a terminal for `notice`: a header line and the text, CRLF line ends
/// (a terminal in raw mode still starts each line at the left).
pub fn render(notice: &Notice) -> Vec<u8> {
    let mut s = format!(
        "\r\n{} at {} ({}):\r\n",
        notice.summary(),
        notice.received_text(),
        notice.origin
    );
    for line in notice.text.split('\n') {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.into_bytes()
}

/// Writes `bytes` to the terminal of `line` (see [`tty_path`]): opened write-only, without
/// becoming the controlling terminal, without following a symbolic link and without blocking;
/// skipped when messages are off unless `force`.
pub fn write_tty(line: &str, bytes: &[u8], force: bool) -> Result<(), TerminalError> {
    let path = tty_path(line)?;
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| TerminalError::Open {
            path: path.clone(),
            source,
        })?;
    let meta = f.metadata().map_err(|source| TerminalError::Open {
        path: path.clone(),
        source,
    })?;
    if !meta.file_type().is_char_device() {
        return Err(TerminalError::NotATerminal(path));
    }
    if !force && meta.mode() & libc::S_IWGRP == 0 {
        return Err(TerminalError::MesgOff(path));
    }
    let mut written = 0;
    while written < bytes.len() {
        match f.write(&bytes[written..]) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(source) => return Err(TerminalError::Write { path, source }),
        }
    }
    if written < bytes.len() {
        return Err(TerminalError::Stuck {
            path,
            written,
            len: bytes.len(),
        });
    }
    Ok(())
}

/// What happened on one terminal.
#[derive(Debug)]
pub struct Delivery {
    /// The session.
    pub session: Session,
    /// Written, or why not.
    pub result: Result<(), TerminalError>,
}

/// Shows `notice` on the terminals of `sessions` that `audience` selects.
pub fn deliver(
    notice: &Notice,
    sessions: &[Session],
    audience: &Audience,
    force: bool,
) -> Vec<Delivery> {
    let bytes = render(notice);
    select(sessions, audience)
        .into_iter()
        .map(|s| Delivery {
            session: s.clone(),
            result: write_tty(&s.line, &bytes, force),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ty: i16, user: &str, line: &str) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD_SIZE];
        r[TYPE_AT..TYPE_AT + 2].copy_from_slice(&ty.to_ne_bytes());
        r[PID_AT..PID_AT + 4].copy_from_slice(&1234i32.to_ne_bytes());
        r[USER_AT..USER_AT + user.len()].copy_from_slice(user.as_bytes());
        r[LINE_AT..LINE_AT + line.len()].copy_from_slice(line.as_bytes());
        r
    }

    #[test]
    fn layout_is_the_c_librarys() {
        // glibc: ut_type(2)+pad(2), ut_pid(4), ut_line[32], ut_id[4], ut_user[32], ut_host[256].
        assert_eq!((TYPE_AT, PID_AT, LINE_AT, LINE_LEN), (0, 4, 8, 32));
        assert_eq!((USER_AT, USER_LEN), (44, 32));
        #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
        assert_eq!(UTMP_RECORD_SIZE, 384);
        #[cfg(all(target_arch = "aarch64", target_env = "gnu"))]
        assert_eq!(UTMP_RECORD_SIZE, 400);
    }

    #[test]
    fn parses_user_process_records_only() {
        let mut b = record(libc::BOOT_TIME, "reboot", "~");
        b.extend(record(libc::USER_PROCESS, "alice", "pts/3"));
        b.extend(record(libc::LOGIN_PROCESS, "LOGIN", "tty1"));
        b.extend(record(libc::DEAD_PROCESS, "", "pts/4"));
        b.extend(record(libc::USER_PROCESS, "bob", "tty2"));
        b.extend(record(libc::USER_PROCESS, "", "pts/9"));
        b.extend([7u8; 100]); // a partial record at the end
        let s = parse_utmp(&b);
        assert_eq!(
            s,
            vec![
                Session {
                    user: "alice".into(),
                    line: "pts/3".into(),
                    pid: 1234
                },
                Session {
                    user: "bob".into(),
                    line: "tty2".into(),
                    pid: 1234
                },
            ]
        );
        assert!(parse_utmp(&[]).is_empty());
    }

    #[test]
    fn full_width_fields_without_nul() {
        let user = "u".repeat(USER_LEN);
        let line = format!("pts/{}", "1".repeat(LINE_LEN - 4));
        let s = parse_utmp(&record(libc::USER_PROCESS, &user, &line));
        assert_eq!(s[0].user, user);
        assert_eq!(s[0].line, line);
    }

    #[test]
    fn missing_utmp_is_an_error() {
        let e = read_utmp(Path::new("/nonexistent/utmp")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/utmp"), "{e}");
    }

    #[test]
    fn audience_by_recipient() {
        let r = Recipients {
            host_names: vec!["HOSTA".into(), "ALIAS".into()],
            groups: vec!["LAB".into()],
        };
        assert_eq!(r.audience("*"), Audience::Everyone);
        assert_eq!(r.audience("hosta"), Audience::Everyone);
        assert_eq!(r.audience("Alias"), Audience::Everyone);
        assert_eq!(r.audience("LAB"), Audience::Everyone);
        assert_eq!(r.audience("alice"), Audience::User("alice".into()));
        let sessions = parse_utmp(
            &[
                record(libc::USER_PROCESS, "alice", "pts/1"),
                record(libc::USER_PROCESS, "bob", "pts/2"),
                record(libc::USER_PROCESS, "alice", "pts/3"),
                record(libc::USER_PROCESS, "alice", "pts/3"),
            ]
            .concat(),
        );
        let lines = |a: &Audience| -> Vec<String> {
            select(&sessions, a)
                .iter()
                .map(|s| s.line.clone())
                .collect()
        };
        assert_eq!(lines(&Audience::User("ALICE".into())), ["pts/1", "pts/3"]);
        assert_eq!(lines(&Audience::Everyone), ["pts/1", "pts/2", "pts/3"]);
        assert!(lines(&Audience::User("carol".into())).is_empty());
    }

    #[test]
    fn only_pts_and_tty_paths() {
        assert_eq!(tty_path("pts/3").unwrap(), Path::new("/dev/pts/3"));
        assert_eq!(tty_path("tty1").unwrap(), Path::new("/dev/tty1"));
        assert_eq!(tty_path("ttyS0").unwrap(), Path::new("/dev/ttyS0"));
        for bad in [
            "pts/../sda",
            "pts/",
            "pts/3/x",
            "../etc/passwd",
            "sda",
            "tty/../../x",
            "console",
            "ttyS0/..",
            "/dev/pts/1",
            "pts/1\0",
            "tty",
        ] {
            assert!(
                matches!(tty_path(bad), Err(TerminalError::BadLine(_))),
                "{bad:?}"
            );
            assert!(matches!(
                write_tty(bad, b"x", true),
                Err(TerminalError::BadLine(_))
            ));
        }
    }

    #[test]
    fn rendering_has_crlf_and_the_header() {
        let n = Notice::parse(
            b"ALICE\0BOB\0one\r\ntwo\0",
            crate::Origin::Unknown,
            std::time::UNIX_EPOCH,
            crate::Codepage::CP850,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(render(&n)).unwrap(),
            "\r\nMessage from ALICE to BOB at 1970-01-01T00:00:00Z (unknown):\r\none\r\ntwo\r\n"
        );
    }
}
