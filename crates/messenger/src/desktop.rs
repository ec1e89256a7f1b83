//! The desktop sink: a notification through `org.freedesktop.Notifications` on the user's
//! session bus (the Desktop Notifications Specification), with the `zbus` crate's blocking API.
//!
//! [`Desktop::connect`] succeeds only when a session bus is reachable and a notification server
//! answers on it; [`Desktop::notify`] sends one `Notify` call per notice: application
//! `mailslot`, summary `Message from FROM to TO`, body the text and a line with the time and
//! origin. Servers that announce `body-markup` interpret the body as markup, so for them `&`,
//! `<` and `>` are escaped and the text shows as it was sent.

use std::collections::HashMap;
use std::time::Duration;

use thiserror::Error;
use zbus::blocking::Connection;
use zbus::zvariant::Value;

use crate::notice::Notice;

const DESTINATION: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const INTERFACE: &str = "org.freedesktop.Notifications";
/// The application name given to the notification server.
pub const APP_NAME: &str = "mailslot";
/// How long a call may wait for the notification server (a stuck one must not stop the
/// service).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Error from [`Desktop::connect`].
#[derive(Debug, Error)]
pub enum ConnectError {
    /// Neither `DBUS_SESSION_BUS_ADDRESS` nor `$XDG_RUNTIME_DIR/bus` names a session bus.
    #[error("no session bus (DBUS_SESSION_BUS_ADDRESS is not set)")]
    NoSessionBus,
    /// The session bus did not accept the connection.
    #[error("cannot connect to the session bus: {0}")]
    Bus(zbus::Error),
    /// No notification server answers on the session bus.
    #[error("no notification server on the session bus: {0}")]
    NoServer(zbus::Error),
}

/// Error from [`Desktop::notify`].
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The `Notify` call failed or timed out.
    #[error("the notification server refused or did not answer Notify: {0}")]
    Call(#[from] zbus::Error),
}

/// A connection to the session bus's notification server.
#[derive(Debug)]
pub struct Desktop {
    conn: Connection,
    markup: bool,
}

/// Whether this process has a session bus to try.
fn session_bus_named() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
}

impl Desktop {
    /// Connects to the session bus and asks the notification server its capabilities.
    pub fn connect() -> Result<Self, ConnectError> {
        if !session_bus_named() {
            return Err(ConnectError::NoSessionBus);
        }
        let conn = zbus::blocking::connection::Builder::session()
            .map_err(ConnectError::Bus)?
            .method_timeout(CALL_TIMEOUT)
            .build()
            .map_err(ConnectError::Bus)?;
        let reply = conn
            .call_method(
                Some(DESTINATION),
                PATH,
                Some(INTERFACE),
                "GetCapabilities",
                &(),
            )
            .map_err(ConnectError::NoServer)?;
        let caps: Vec<String> = reply.body().deserialize().map_err(ConnectError::NoServer)?;
        let markup = caps.iter().any(|c| c == "body-markup");
        Ok(Self { conn, markup })
    }

    /// Whether the server interprets markup in the body (then the body is escaped).
    pub fn markup(&self) -> bool {
        self.markup
    }

    /// Shows `notice`; returns the server's notification id.
    pub fn notify(&self, notice: &Notice) -> Result<u32, NotifyError> {
        let summary = notice.summary();
        let body = body(notice, self.markup);
        let actions: Vec<&str> = Vec::new();
        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
        hints.insert("category", Value::from("im.received"));
        let reply = self.conn.call_method(
            Some(DESTINATION),
            PATH,
            Some(INTERFACE),
            "Notify",
            &(
                APP_NAME,
                0u32,
                "",
                summary.as_str(),
                body.as_str(),
                actions,
                hints,
                -1i32,
            ),
        )?;
        Ok(reply.body().deserialize()?)
    }
}

/// The notification body: the text, a blank line, `received TIME from ORIGIN`; escaped for
/// markup when `markup`.
pub fn body(notice: &Notice, markup: bool) -> String {
    let plain = format!(
        "{}\n\nreceived {} from {}",
        notice.text,
        notice.received_text(),
        notice.origin
    );
    if markup {
        escape_markup(&plain)
    } else {
        plain
    }
}

fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codepage, Origin};

    fn notice(text: &[u8]) -> Notice {
        let data = [b"ALICE\0BOB\0", text, b"\0"].concat();
        Notice::parse(
            &data,
            Origin::Local { pid: 1, uid: 0 },
            std::time::UNIX_EPOCH,
            Codepage::CP850,
        )
        .unwrap()
    }

    #[test]
    fn body_has_text_time_and_origin() {
        assert_eq!(
            body(&notice(b"hello"), false),
            "hello\n\nreceived 1970-01-01T00:00:00Z from local uid 0 pid 1"
        );
    }

    #[test]
    fn body_is_escaped_for_markup_servers() {
        let n = notice(b"<b>bold</b> & <a href='x'>");
        assert!(body(&n, true).starts_with("&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href='x'&gt;"));
        assert!(body(&n, false).starts_with("<b>bold</b> & <a href='x'>"));
    }
}
