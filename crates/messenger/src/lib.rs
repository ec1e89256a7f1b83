//! The receiving side of the Messenger service ("net send", WinPopup): what
//! `mailslot messenger serve` shows for each message that arrives in `\\.\mailslot\messngr`.
//!
//! - [`Notice`]: one message made safe to show — `From\0To\0Text\0` in an OEM code page
//!   ([`Codepage`], CP850 by default as Samba's `dos charset`) decoded to UTF-8, CRLF made LF,
//!   every control character and escape sequence replaced by a visible mark, lengths bounded;
//!   with the time it arrived and who delivered it ([`Origin`]).
//! - Sinks, each with its own error type: [`desktop`] (`org.freedesktop.Notifications.Notify` on
//!   the session bus) and [`terminal`] (the logged-in users' terminals, as `write` and `wall` do,
//!   from utmp). Standard output and `--json` are the command line's.
//!
//! Nothing here panics on input: a message that cannot be parsed is a [`NoticeError`].

#![forbid(unsafe_code)]

pub mod codepage;
pub mod desktop;
mod notice;
mod sanitize;
pub mod session;
pub mod terminal;
mod time;

pub use codepage::{Codepage, CodepageError};
pub use notice::{Notice, NoticeError, Origin, MAX_NAME_CHARS, MAX_TEXT_CHARS};
pub use sanitize::{sanitize_name, sanitize_text, CUT_MARK};
pub use time::rfc3339_utc;

/// The local mailslot the Messenger service owns: every message for it arrives here, from
/// `\MAILSLOT\MESSNGR` datagrams, the NetBIOS session service, and `mailslot messenger deliver`.
pub const MESSENGER_SLOT: &str = r"\\.\mailslot\messngr";
