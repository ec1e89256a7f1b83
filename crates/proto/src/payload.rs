//! Choosing the payload decoder from the mailslot name.

use crate::browser::BrowserMessage;
use crate::error::Result;
use crate::messenger::MessengerMessage;
use crate::netlogon::NetlogonMessage;

/// Which well-known payload a mailslot carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// `\MAILSLOT\BROWSE`, `\MAILSLOT\LANMAN`, `\MAILSLOT\MSBROWSE`.
    Browser,
    /// `\MAILSLOT\NET\…` (NETLOGON, NTLOGON and the GETDC reply mailslots) and
    /// `\MAILSLOT\TEMP\NETLOGON`.
    Netlogon,
    /// `\MAILSLOT\MESSNGR`.
    Messenger,
}

impl PayloadKind {
    /// Classifies a `\MAILSLOT\…` name (ASCII case-insensitive); `None` for other mailslots.
    pub fn of(mailslot: &[u8]) -> Option<Self> {
        let is = |s: &[u8]| mailslot.eq_ignore_ascii_case(s);
        let starts =
            |p: &[u8]| mailslot.len() >= p.len() && mailslot[..p.len()].eq_ignore_ascii_case(p);
        if is(b"\\MAILSLOT\\BROWSE") || is(b"\\MAILSLOT\\LANMAN") || is(b"\\MAILSLOT\\MSBROWSE") {
            Some(Self::Browser)
        } else if is(b"\\MAILSLOT\\MESSNGR") {
            Some(Self::Messenger)
        } else if starts(b"\\MAILSLOT\\NET\\") || is(b"\\MAILSLOT\\TEMP\\NETLOGON") {
            Some(Self::Netlogon)
        } else {
            None
        }
    }
}

/// A decoded well-known payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A browser frame.
    Browser(BrowserMessage<'a>),
    /// A NETLOGON message.
    Netlogon(NetlogonMessage<'a>),
    /// A Messenger message.
    Messenger(MessengerMessage<'a>),
}

impl<'a> Payload<'a> {
    /// Decodes `data` according to the mailslot `name`; `None` if the mailslot
    /// is not a known one.
    pub fn parse(name: &[u8], data: &'a [u8]) -> Option<Result<Self>> {
        Some(match PayloadKind::of(name)? {
            PayloadKind::Browser => BrowserMessage::parse(data).map(Payload::Browser),
            PayloadKind::Netlogon => NetlogonMessage::parse(data).map(Payload::Netlogon),
            PayloadKind::Messenger => MessengerMessage::parse(data).map(Payload::Messenger),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            PayloadKind::of(b"\\mailslot\\browse"),
            Some(PayloadKind::Browser)
        );
        assert_eq!(
            PayloadKind::of(b"\\MAILSLOT\\LANMAN"),
            Some(PayloadKind::Browser)
        );
        assert_eq!(
            PayloadKind::of(b"\\MAILSLOT\\NET\\GETDC576"),
            Some(PayloadKind::Netlogon)
        );
        assert_eq!(
            PayloadKind::of(b"\\MAILSLOT\\NET\\NTLOGON"),
            Some(PayloadKind::Netlogon)
        );
        assert_eq!(
            PayloadKind::of(b"\\MAILSLOT\\MESSNGR"),
            Some(PayloadKind::Messenger)
        );
        assert_eq!(PayloadKind::of(b"\\MAILSLOT\\NET"), None);
        assert_eq!(PayloadKind::of(b"\\MAILSLOT\\demo"), None);
    }
}
