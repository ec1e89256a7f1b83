//! Wire formats of Windows NT / LAN Manager mailslots: everything about the
//! bytes on UDP 137 and 138 and TCP 139, with no I/O and no `unsafe`.
//!
//! | module | what |
//! |---|---|
//! | [`name`] | NetBIOS names: 16-byte form, first/second-level encoding, scope, suffixes |
//! | [`datagram`] | NetBIOS datagram header (RFC 1002 §4.4), [`MailslotMessage`] = datagram + mailslot write |
//! | [`smb`] | SMB_COM_TRANSACTION mailslot write, [`max_network_payload`] |
//! | [`nbns`] | NetBIOS name service (UDP 137): query, responses, registration, refresh, release, node status |
//! | [`browser`], [`netlogon`], [`messenger`] | well-known payloads; [`Payload`] picks one by mailslot name |
//! | [`session`] | NetBIOS session service (TCP 139, RFC 1002 §4.3): framing, session request and responses |
//! | [`smb_session`] | SMB1 on a session: [`SmbHeader`], Messenger commands, [`SessionMailslotWrite`] and its [`TransactionReply`] |
//! | [`link`] | captured Ethernet / Linux cooked / raw IPv4 frames down to the UDP payload |
//!
//! The pattern follows smoltcp: fixed headers have a zero-copy view
//! ([`Datagram`], [`SmbTransaction`]) with `new_checked`; each message has a
//! `Repr`-style type with `parse`, `buffer_len` and `emit` (plus `to_vec`).
//! Code numbers are open enums with an `Unknown` variant; only `parse`
//! rejects. Errors are one small [`Error`] enum whose parse variants carry the
//! byte offset.
//!
//! **Panic rule:** no `parse` panics on any input, and `emit` never panics: it
//! returns [`Error::BufferTooSmall`] for a short buffer and
//! [`Error::Inconsistent`]/[`Error::TooLong`] for values that do not fit. For
//! every value `x` that `parse` returns, `parse(emit(x)) == x` (tested with
//! proptest and fuzzing).
//!
//! Inside each packet module a private `field` module names the offsets and
//! lengths; all reading and writing goes through one bounds-checked cursor.
//!
//! **Feature `serde`** (off by default): the parsed forms implement
//! `serde::Serialize` in the JSON shape `mailslot decode` prints.
//!
//! **Receivers are lenient** where real senders differ (see [`datagram`] and
//! [`smb`]): any of 0x10/0x11/0x12 for any name, reserved flag bits masked,
//! DGM_LENGTH and all "varying" SMB header fields ignored, data taken from
//! DataOffset/DataCount only. Fragmented datagrams are rejected with
//! [`Error::Fragmented`].
//!
//! # Example: build and parse a mailslot write
//!
//! ```
//! use std::net::Ipv4Addr;
//! use mailslot_proto::{MailslotMessage, MailslotWriteRepr, MsgType, NetbiosName};
//!
//! let write = MailslotWriteRepr {
//!     name: b"\\MAILSLOT\\demo\\hello",
//!     priority: 1,
//!     class: 2,
//!     data: b"hi",
//! };
//! write.check_network_size()?; // Error::TooLargeForNetwork if too big
//! let msg = MailslotMessage::new(
//!     MsgType::DirectUnique,
//!     0x1234,                                  // DGM_ID
//!     Ipv4Addr::new(10, 99, 0, 1),             // SOURCE_IP
//!     NetbiosName::new("client", 0x00)?.into(), // upper-cased: CLIENT<00>
//!     "SMBPEER<00>".parse::<NetbiosName>()?.into(),
//!     write,
//! );
//! let bytes = msg.to_vec()?;               // the whole UDP payload
//! assert_eq!(bytes.len(), 82 + 70 + 20 + 2);
//! let back = MailslotMessage::parse(&bytes)?;
//! assert_eq!(back, msg);
//! assert_eq!(back.destination.name.to_string(), "SMBPEER<00>");
//! # Ok::<(), mailslot_proto::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod browser;
mod cursor;
pub mod datagram;
mod error;
pub mod link;
pub mod messenger;
pub mod name;
pub mod nbns;
pub mod netlogon;
pub mod payload;
#[cfg(feature = "serde")]
mod ser;
pub mod session;
pub mod smb;
pub mod smb_session;

pub use browser::{Announcement, BrowserMessage, BrowserOpcode, Election};
pub use datagram::{
    Datagram, DatagramBody, DatagramErrorCode, DatagramFlags, DatagramRepr, MailslotMessage,
    MsgType, NodeType, DATAGRAM_PORT,
};
pub use error::{Error, Result};
pub use messenger::MessengerMessage;
pub use name::{NetbiosName, QualifiedName};
pub use nbns::{
    NamePacket, NbAddress, NodeStatus, NodeStatusName, NsFlags, NsOpcode, Question, RData,
    ResourceRecord, RrType, NAME_SERVICE_PORT,
};
pub use netlogon::{NetlogonMessage, NetlogonOpcode, VersionTokens};
pub use payload::{Payload, PayloadKind};
pub use smb::{mailslot_path, max_network_payload, MailslotWriteRepr, SmbHeader, SmbTransaction};
pub use smb_session::{MessageCommand, MessageReply, SessionMailslotWrite, TransactionReply};
