//! Plain value types: messages, senders, classes, timeouts, access policies and slot info.

use std::net::Ipv4Addr;
use std::time::Duration;

/// Delivery class of a message (LAN Manager).
///
/// Locally both classes are delivered the same way; they differ when the mailslot is full:
/// a second-class write fails at once, a first-class write waits up to its timeout for room.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Class {
    /// First class: reliable; waits for room, the writer learns of failure.
    First = 1,
    /// Second class: a datagram; fails at once when there is no room (the default).
    #[default]
    Second = 2,
}

impl Class {
    /// The class number, 1 or 2.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The class for number 1 or 2.
    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            1 => Some(Self::First),
            2 => Some(Self::Second),
            _ => None,
        }
    }
}

/// Highest message priority; 0 is the lowest and the default.
pub const MAX_PRIORITY: u8 = 9;

/// How long an operation waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timeout {
    /// Wait at most this long; `Duration::ZERO` returns at once.
    After(Duration),
    /// Wait until it can complete.
    Forever,
}

impl Timeout {
    /// Do not wait.
    pub const ZERO: Self = Self::After(Duration::ZERO);

    /// From Win32 milliseconds: `0xFFFF_FFFF` (`MAILSLOT_WAIT_FOREVER`) is forever.
    pub fn from_win32_millis(ms: u32) -> Self {
        if ms == u32::MAX {
            Self::Forever
        } else {
            Self::After(Duration::from_millis(ms.into()))
        }
    }

    /// From LAN Manager milliseconds: any negative value (`MAILSLOT_NO_TIMEOUT` is -1) is forever.
    pub fn from_lanman_millis(ms: i64) -> Self {
        if ms < 0 {
            Self::Forever
        } else {
            Self::After(Duration::from_millis(ms as u64))
        }
    }

    /// As Win32 milliseconds (forever is `0xFFFF_FFFF`; long durations clamp to `0xFFFF_FFFE`).
    pub fn as_win32_millis(self) -> u32 {
        match self {
            Self::Forever => u32::MAX,
            Self::After(d) => d.as_millis().min(u128::from(u32::MAX - 1)) as u32,
        }
    }

    /// True for a zero timeout.
    pub fn is_zero(self) -> bool {
        self == Self::ZERO
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Self {
        Self::After(d)
    }
}

/// Who may open a mailslot for writing.
///
/// The owner's user and root are always admitted. The policy is enforced by the owner's process
/// from the writer's kernel-supplied peer credentials (`SO_PEERCRED`, `SO_PEERGROUPS`), never from
/// anything the writer claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Only the owner's effective uid and root (the default).
    #[default]
    Owner,
    /// Also every process whose primary or supplementary groups include this gid.
    Group(u32),
    /// Every local user.
    Everyone,
}

/// The NetBIOS name of a host that sent a message: at most 16 bytes of UTF-8, kept inline so
/// that a message from the network costs no allocation for it. Reads as a `&str`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteName {
    bytes: [u8; Self::MAX_LEN],
    len: u8,
}

impl RemoteName {
    /// Longest name kept, in bytes (a NetBIOS name has 15 characters and a suffix byte).
    pub const MAX_LEN: usize = 16;

    /// The name `name`, cut to [`MAX_LEN`](Self::MAX_LEN) bytes at a character boundary.
    pub fn new(name: &str) -> Self {
        let mut end = name.len().min(Self::MAX_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        Self {
            bytes,
            len: end as u8,
        }
    }

    /// A name as it travels in a record: up to 16 bytes, ended by a NUL or the end, trailing
    /// spaces dropped; each byte sequence that is not UTF-8 becomes `?` (so it never grows).
    pub(crate) fn from_record(raw: &[u8]) -> Self {
        let raw = &raw[..raw.len().min(Self::MAX_LEN)];
        let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        let mut raw = &raw[..end];
        while let [rest @ .., b' '] = raw {
            raw = rest;
        }
        let mut out = Self {
            bytes: [0u8; Self::MAX_LEN],
            len: 0,
        };
        if raw.is_ascii() {
            out.bytes[..raw.len()].copy_from_slice(raw);
            out.len = raw.len() as u8;
            return out;
        }
        for chunk in raw.utf8_chunks() {
            for part in [
                chunk.valid().as_bytes(),
                &b"?"[..chunk.invalid().len().min(1)],
            ] {
                let at = usize::from(out.len);
                out.bytes[at..at + part.len()].copy_from_slice(part);
                out.len += part.len() as u8;
            }
        }
        out
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Built only from whole UTF-8 characters (see `new` and `from_record`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::ops::Deref for RemoteName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for RemoteName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for RemoteName {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl PartialEq<str> for RemoteName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RemoteName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for RemoteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RemoteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sender {
    /// A process on this host, as the kernel reported it when the writer opened the mailslot.
    Local {
        /// Process id of the writer (the process that opened the handle).
        pid: u32,
        /// Effective user id of the writer.
        uid: u32,
        /// Effective group id of the writer.
        gid: u32,
    },
    /// A host on the network (delivered by the mailslot daemon).
    Remote {
        /// The sender's NetBIOS name.
        name: RemoteName,
        /// The sender's IPv4 address.
        ip: Ipv4Addr,
    },
}

/// One message taken from (or peeked in) a mailslot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The bytes written, possibly none.
    pub data: Vec<u8>,
    /// Priority 0–9 (9 is read first).
    pub priority: u8,
    /// Delivery class the writer asked for.
    pub class: Class,
    /// Who wrote it.
    pub sender: Sender,
}

/// The process that serves a mailslot, as the kernel reported it when that process started
/// listening (`SO_PEERCRED`), from [`MailslotWriter::owner`](crate::MailslotWriter::owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Who may write to a mailslot, as its owner announced it (the owner's user and its
/// [`Access`] policy), from [`MailslotWriter::access_policy`](crate::MailslotWriter::access_policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The owner's user id, as the owner sent it.
    pub owner_uid: u32,
    /// The policy the owner applies to writers.
    pub access: Access,
}

/// State of a mailslot, from [`Mailslot::info`](crate::Mailslot::info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Largest message accepted, in bytes.
    pub max_message_size: usize,
    /// Total bytes of queued messages allowed.
    pub quota: usize,
    /// Size of the next message, `None` when the mailslot is empty.
    pub next_size: Option<usize>,
    /// Priority of the next message, `None` when empty.
    pub next_priority: Option<u8>,
    /// Number of queued messages.
    pub count: usize,
    /// Current read timeout.
    pub read_timeout: Timeout,
}

/// How a message is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Priority 0–9 (default 0).
    pub priority: u8,
    /// Delivery class (default [`Class::Second`]).
    pub class: Class,
    /// How long a first-class write waits for room (default forever). Second-class writes never
    /// wait for room.
    pub timeout: Timeout,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            priority: 0,
            class: Class::Second,
            timeout: Timeout::Forever,
        }
    }
}

impl WriteOptions {
    /// Defaults: priority 0, second class, wait forever (first class only).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the priority (0–9).
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }
    /// Sets the class.
    pub fn class(mut self, c: Class) -> Self {
        self.class = c;
        self
    }
    /// Sets how long a first-class write waits for room.
    pub fn timeout(mut self, t: impl Into<Timeout>) -> Self {
        self.timeout = t.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteName;

    #[test]
    fn remote_names_from_records() {
        // Padding: NUL, then trailing spaces (as a NetBIOS name is padded) are dropped.
        assert_eq!(
            RemoteName::from_record(b"HOSTA\0\0\0\0\0\0\0\0\0\0\0"),
            "HOSTA"
        );
        assert_eq!(RemoteName::from_record(b"HOSTA           "), "HOSTA");
        assert_eq!(RemoteName::from_record(b""), "");
        // At most 16 bytes are read.
        assert_eq!(
            RemoteName::from_record(b"ABCDEFGHIJKLMNOPQRST").as_str(),
            "ABCDEFGHIJKLMNOP"
        );
        // Valid UTF-8 is kept; each invalid sequence becomes one `?`, so the name never grows.
        assert_eq!(RemoteName::from_record("CAFÉ".as_bytes()), "CAFÉ");
        assert_eq!(RemoteName::from_record(b"A\x82B\xff\xfeC"), "A?B??C");
        let all_bad = RemoteName::from_record(&[0xC3; 16]);
        assert!(all_bad.len() <= RemoteName::MAX_LEN);
        assert!(all_bad.chars().all(|c| c == '?'));
        // A character cut at byte 16 is not kept half.
        let cut = RemoteName::from_record("ABCDEFGHIJKLMNOÉ".as_bytes());
        assert_eq!(cut.as_str(), "ABCDEFGHIJKLMNO?");
    }

    #[test]
    fn remote_names_from_text() {
        assert_eq!(RemoteName::new("SERVER1").as_str(), "SERVER1");
        assert_eq!(RemoteName::new("ÉÉÉÉÉÉÉÉÉ").as_str(), "ÉÉÉÉÉÉÉÉ");
        assert_eq!(format!("{}", RemoteName::new("X")), "X");
        assert_eq!(format!("{:?}", RemoteName::new("X")), "\"X\"");
        assert_eq!(RemoteName::from("HOSTB"), "HOSTB");
    }
}
