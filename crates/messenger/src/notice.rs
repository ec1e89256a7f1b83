//! [`Notice`]: one received Messenger message, decoded and made safe to show.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::SystemTime;

use mailslot::{Message, Sender};
use mailslot_proto::MessengerMessage;
use serde::Serialize;
use thiserror::Error;

use crate::codepage::Codepage;
use crate::sanitize::{sanitize_name, sanitize_text};
use crate::time::rfc3339_utc;

/// Longest text shown, in characters (the cut text ends with [`crate::CUT_MARK`]). Samba keeps
/// at most 1600 bytes of a multi-block message; a datagram's text is shorter still.
pub const MAX_TEXT_CHARS: usize = 1600;
/// Longest sender or recipient name shown, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Who delivered a message to the local mailslot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A host on the network, through the mailslot daemon (a datagram or a NetBIOS session).
    Remote {
        /// The sending host's NetBIOS name (made safe to show).
        host: String,
        /// Its IPv4 address.
        ip: Ipv4Addr,
    },
    /// A process on this host (for example `mailslot messenger deliver` run by Samba's
    /// `message command`).
    Local {
        /// Its process id.
        pid: u32,
        /// Its user id.
        uid: u32,
    },
    /// A sender the mailslot library reported in a form this crate does not know.
    Unknown,
}

impl Origin {
    /// The origin of a message the mailslot library delivered.
    pub fn from_sender(s: &Sender) -> Self {
        match s {
            Sender::Remote { name, ip } => Self::Remote {
                host: sanitize_name(name, MAX_NAME_CHARS),
                ip: *ip,
            },
            Sender::Local { pid, uid, .. } => Self::Local {
                pid: *pid,
                uid: *uid,
            },
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for Origin {
    /// `host ALICE (192.0.2.7)`, `local uid 1000 pid 42`, `unknown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote { host, ip } => write!(f, "host {host} ({ip})"),
            Self::Local { pid, uid } => write!(f, "local uid {uid} pid {pid}"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// A Messenger message as it is shown: names and text in UTF-8, neutralised and bounded
/// ([`crate::sanitize_text`], [`crate::sanitize_name`]), with when it arrived and from where.
///
/// JSON (serde): `from`, `to`, `text`, `received` (RFC 3339, UTC), `origin`
/// (`{"remote":{"host","ip"}}`, `{"local":{"pid","uid"}}` or `"unknown"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The sender's name as the message gives it.
    pub from: String,
    /// The recipient: a user or computer name, a workgroup, or `*`.
    pub to: String,
    /// The text (LF line ends; may be empty).
    pub text: String,
    /// When this host received it.
    #[serde(serialize_with = "ser_time")]
    pub received: SystemTime,
    /// Who delivered it.
    pub origin: Origin,
}

fn ser_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_utc(*t))
}

/// Error from [`Notice::parse`] and [`Notice::from_message`].
#[derive(Debug, Error)]
pub enum NoticeError {
    /// The data is not `From\0To\0Text[\0]` (a name without its NUL).
    #[error("not a Messenger message (From\\0To\\0Text\\0): {0}")]
    Malformed(#[from] mailslot_proto::Error),
}

impl Notice {
    /// Decodes `From\0To\0Text\0` (OEM bytes in `codepage`) from `origin`, received at
    /// `received`.
    pub fn parse(
        data: &[u8],
        origin: Origin,
        received: SystemTime,
        codepage: Codepage,
    ) -> Result<Self, NoticeError> {
        let m = MessengerMessage::parse(data)?;
        Ok(Self {
            from: sanitize_name(&codepage.decode(m.from), MAX_NAME_CHARS),
            to: sanitize_name(&codepage.decode(m.to), MAX_NAME_CHARS),
            // Line ends after the last line say nothing (`echo` adds one).
            text: sanitize_text(
                codepage.decode(m.text).trim_end_matches(['\r', '\n']),
                MAX_TEXT_CHARS,
            ),
            received,
            origin,
        })
    }

    /// [`Notice::parse`] of a message read from `\\.\mailslot\messngr`, received now.
    pub fn from_message(m: &Message, codepage: Codepage) -> Result<Self, NoticeError> {
        Self::parse(
            &m.data,
            Origin::from_sender(&m.sender),
            SystemTime::now(),
            codepage,
        )
    }

    /// `Message from FROM to TO` (the desktop notification's summary).
    pub fn summary(&self) -> String {
        format!("Message from {} to {}", self.from, self.to)
    }

    /// The time received, RFC 3339 UTC.
    pub fn received_text(&self) -> String {
        rfc3339_utc(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn decodes_a_datagram_message() {
        // The bytes of a Windows 98 WinPopup broadcast (From\0To\0Text\0), with CP850 umlauts.
        let origin = Origin::Remote {
            host: "WIN98".into(),
            ip: Ipv4Addr::new(192, 0, 2, 7),
        };
        let n = Notice::parse(
            b"WIN98USER\0WORKGROUP\0Gr\x81\xE1e\r\nzweite Zeile\0",
            origin.clone(),
            t0(),
            Codepage::CP850,
        )
        .unwrap();
        assert_eq!(n.from, "WIN98USER");
        assert_eq!(n.to, "WORKGROUP");
        assert_eq!(n.text, "Grüße\nzweite Zeile");
        assert_eq!(n.origin, origin);
        assert_eq!(n.summary(), "Message from WIN98USER to WORKGROUP");
        assert_eq!(n.received_text(), "2023-11-14T22:13:20Z");
        assert_eq!(n.origin.to_string(), "host WIN98 (192.0.2.7)");
    }

    #[test]
    fn codepage_changes_the_decoding() {
        let o = Origin::Unknown;
        let a = Notice::parse(b"A\0B\0\x9B\0", o.clone(), t0(), Codepage::CP850).unwrap();
        let b = Notice::parse(b"A\0B\0\x9B\0", o, t0(), Codepage::CP437).unwrap();
        assert_eq!((a.text.as_str(), b.text.as_str()), ("ø", "¢"));
    }

    #[test]
    fn hostile_fields_are_neutralised_and_bounded() {
        let mut data = b"EVE\x1b[2J\0ROOT\x07\0".to_vec();
        data.extend(b"\x1b]0;title\x07x".iter().chain(&[b'y'; 3000]));
        data.push(0);
        let n = Notice::parse(&data, Origin::Unknown, t0(), Codepage::CP850).unwrap();
        assert_eq!(n.from, "EVE␛");
        assert_eq!(n.to, "ROOT␇");
        assert!(n.text.starts_with("␛xyyy"));
        assert_eq!(n.text.chars().count(), MAX_TEXT_CHARS);
        assert!(n.text.ends_with('…'));
        let long_name = [vec![b'N'; 200], b"\0T\0x\0".to_vec()].concat();
        let n = Notice::parse(&long_name, Origin::Unknown, t0(), Codepage::CP850).unwrap();
        assert_eq!(n.from.chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn malformed_messages_are_errors() {
        for bad in [&b""[..], b"NOSEP", b"FROM\0TO-without-nul"] {
            let e = Notice::parse(bad, Origin::Unknown, t0(), Codepage::CP850).unwrap_err();
            assert!(e.to_string().starts_with("not a Messenger message"), "{e}");
        }
        // A text without its NUL runs to the end, as the wire format allows.
        let n = Notice::parse(b"A\0B\0hi", Origin::Unknown, t0(), Codepage::CP850).unwrap();
        assert_eq!(n.text, "hi");
        let n = Notice::parse(
            b"A\0B\0two\r\nlines\r\n\n\0",
            Origin::Unknown,
            t0(),
            Codepage::CP850,
        )
        .unwrap();
        assert_eq!(n.text, "two\nlines");
    }

    #[test]
    fn origin_from_sender() {
        let local = Sender::Local {
            pid: 42,
            uid: 1000,
            gid: 1000,
        };
        assert_eq!(
            Origin::from_sender(&local),
            Origin::Local { pid: 42, uid: 1000 }
        );
        assert_eq!(
            Origin::from_sender(&local).to_string(),
            "local uid 1000 pid 42"
        );
        let remote = Sender::Remote {
            name: mailslot::RemoteName::new("HOSTA"),
            ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        assert_eq!(
            Origin::from_sender(&remote),
            Origin::Remote {
                host: "HOSTA".into(),
                ip: Ipv4Addr::new(10, 0, 0, 2)
            }
        );
    }

    #[test]
    fn json_fields() {
        let n = Notice::parse(
            b"ALICE\0BOB\0hi\0",
            Origin::Local { pid: 7, uid: 0 },
            t0(),
            Codepage::CP850,
        )
        .unwrap();
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["from"], "ALICE");
        assert_eq!(v["to"], "BOB");
        assert_eq!(v["text"], "hi");
        assert_eq!(v["received"], "2023-11-14T22:13:20Z");
        assert_eq!(v["origin"]["local"]["pid"], 7);
        assert_eq!(v["origin"]["local"]["uid"], 0);
    }
}
