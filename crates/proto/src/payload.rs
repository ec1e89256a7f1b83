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
        let up = mailslot.to_ascii_uppercase();
        match &up[..] {
            b"\\MAILSLOT\\BROWSE" | b"\\MAILSLOT\\LANMAN" | b"\\MAILSLOT\\MSBROWSE" => {
                Some(PayloadKind::Browser)
            }
            b"\\MAILSLOT\\MESSNGR" => Some(PayloadKind::Messenger),
            n if n.starts_with(b"\\MAILSLOT\\NET\\") || n == b"\\MAILSLOT\\TEMP\\NETLOGON" => {
                Some(PayloadKind::Netlogon)
            }
            _ => None,
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
