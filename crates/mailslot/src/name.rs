//! Mailslot names.
//!
//! Every local form is accepted and they are all equivalent:
//!
//! | form | origin |
//! |---|---|
//! | `\\.\mailslot\app\events` | Win32 |
//! | `\mailslot\app\events` | LAN Manager |
//! | `//./mailslot/app/events` | LAN Manager for UNIX |
//! | `/mailslot/app/events` | LAN Manager for UNIX |
//! | `//mailslot/app/events` | LAN Manager for UNIX |
//!
//! `\` and `/` both separate levels, in any mix. The part after `mailslot` is the *path*; it may
//! have several levels. Names compare case-insensitively (ASCII only), but the case given is kept
//! for display and for the wire.
//!
//! Remote forms are recognised so that writers can route them: `\\COMPUTER\mailslot\x`
//! ([`Target::Host`], a computer or a domain name), `\\*\mailslot\x` ([`Target::PrimaryDomain`]).
//! A mailslot can only be *created* with a local name.
//!
//! `//mailslot/x` is the UNIX form without a host. It reads like a UNC name for a computer called
//! `MAILSLOT`, so the UNC reading wins when it fits: `//mailslot/mailslot/x` is the mailslot `x` on
//! the computer `MAILSLOT`; every other `//mailslot/…` is the local mailslot `…`.
//!
//! # Limits
//! The path is at most [`MAX_PATH_LEN`] bytes. Each level must be non-empty, must not be `.` or
//! `..`, and must not contain control characters or any of `" * : < > ? |`. A host name is 1–15
//! characters (a NetBIOS name) without separators, spaces, `.` or the characters above.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Longest accepted path (the part after `mailslot\`), in bytes.
///
/// The path becomes part of a Linux abstract socket address (107 bytes, of which 12 are the
/// project's prefix), and on the network `\MAILSLOT\<path>` must leave room for data in one
/// datagram; 95 bytes satisfies both.
pub const MAX_PATH_LEN: usize = 95;

/// Longest host (computer or domain) name: a NetBIOS name has 15 characters.
pub const MAX_HOST_LEN: usize = 15;

/// Why a string is not a valid mailslot name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    /// The string is empty.
    #[error("empty mailslot name")]
    Empty,
    /// The string does not start with `\\.\mailslot\`, `\mailslot\`, `\\HOST\mailslot\` (or the
    /// same with `/`).
    #[error("not a mailslot name (expected \\\\.\\mailslot\\path or \\mailslot\\path): {0:?}")]
    NotMailslot(String),
    /// Nothing follows `mailslot\`.
    #[error("mailslot name has no path after \\mailslot\\")]
    EmptyPath,
    /// Two separators in a row, or a separator at the end.
    #[error("mailslot name has an empty level")]
    EmptyLevel,
    /// A level is `.` or `..`.
    #[error("mailslot name has a '.' or '..' level")]
    DotLevel,
    /// A character that is not allowed in a name.
    #[error("mailslot name contains the invalid character {0:?}")]
    InvalidChar(char),
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    #[error("mailslot path is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Length of the path in bytes.
        len: usize,
        /// The limit, [`MAX_PATH_LEN`].
        max: usize,
    },
    /// The computer or domain name in `\\HOST\mailslot\…` is not valid.
    #[error("invalid computer or domain name {host:?}: {reason}")]
    InvalidHost {
        /// The host part as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Where a mailslot name points (also what a remote write asks the daemon for, in
/// [`crate::daemon::Request::Write`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// This host (`\\.\…`, `\mailslot\…`, `//./…`, `/mailslot/…`).
    Local,
    /// `\\NAME\mailslot\…`: a computer (unique NetBIOS name) or a domain/workgroup (group name).
    /// The name is kept as given; compare it case-insensitively.
    Host(String),
    /// `\\*\mailslot\…`: every host of the primary domain or workgroup.
    PrimaryDomain,
}

/// A parsed mailslot name.
///
/// ```
/// use mailslot::{Name, Target};
/// let n: Name = r"\\.\mailslot\App\Events".parse().unwrap();
/// assert_eq!(n.target(), &Target::Local);
/// assert_eq!(n.path(), r"App\Events");
/// assert_eq!(n.key(), r"app\events");
/// assert_eq!(n, "/mailslot/app/EVENTS".parse().unwrap());
/// assert_eq!(n.to_string(), r"\\.\mailslot\App\Events");
/// ```
#[derive(Debug, Clone)]
pub struct Name {
    target: Target,
    path: String,
}

fn is_sep(c: char) -> bool {
    c == '\\' || c == '/'
}

fn check_char(c: char) -> Result<(), NameError> {
    if c.is_control() || matches!(c, '"' | '*' | ':' | '<' | '>' | '?' | '|') {
        return Err(NameError::InvalidChar(c));
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), NameError> {
    let bad = |reason| NameError::InvalidHost {
        host: host.to_string(),
        reason,
    };
    if host.is_empty() {
        return Err(bad("empty"));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(bad("longer than 15 characters"));
    }
    if host
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "\"*:<>?|.+=,;[]".contains(c))
    {
        return Err(bad("contains a character not allowed in a NetBIOS name"));
    }
    Ok(())
}

/// Whether `rest` starts with the level `mailslot` followed by a separator.
fn starts_with_mailslot_level(rest: &str) -> bool {
    const WORD: &str = "mailslot";
    rest.get(..WORD.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(WORD))
        && rest[WORD.len()..].starts_with(is_sep)
}

impl Name {
    /// Parses any accepted form (see the [module docs](self)).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(c) = s.chars().find(|c| *c == '\0') {
            return Err(NameError::InvalidChar(c));
        }
        let not_ms = || NameError::NotMailslot(s.to_string());
        // Leading separators: two = UNC form with a host, one = LAN Manager local form.
        let (target, rest) = match (s.chars().next(), s.chars().nth(1)) {
            (Some(a), Some(b)) if is_sep(a) && is_sep(b) => {
                let after = &s[2..];
                if after.eq_ignore_ascii_case("mailslot") {
                    return Err(NameError::EmptyPath);
                }
                let end = after.find(is_sep).ok_or_else(not_ms)?;
                let host = &after[..end];
                if host.eq_ignore_ascii_case("mailslot")
                    && !starts_with_mailslot_level(&after[end + 1..])
                {
                    // `//mailslot/x`: LAN Manager for UNIX's local form.
                    (Target::Local, after)
                } else {
                    let target = match host {
                        "." | "?" => Target::Local,
                        "*" => Target::PrimaryDomain,
                        h => {
                            check_host(h)?;
                            Target::Host(h.to_string())
                        }
                    };
                    (target, &after[end + 1..])
                }
            }
            (Some(a), _) if is_sep(a) => (Target::Local, &s[1..]),
            _ => return Err(not_ms()),
        };
        const WORD: &str = "mailslot";
        // `get` (not indexing): the prefix may end inside a multi-byte character.
        if !rest
            .get(..WORD.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(WORD))
        {
            return Err(not_ms());
        }
        let rest = &rest[WORD.len()..];
        let Some(first) = rest.chars().next() else {
            return Err(NameError::EmptyPath);
        };
        if !is_sep(first) {
            return Err(not_ms());
        }
        let raw = &rest[1..];
        if raw.is_empty() {
            return Err(NameError::EmptyPath);
        }
        let mut path = String::with_capacity(raw.len());
        for (i, level) in raw.split(is_sep).enumerate() {
            if level.is_empty() {
                return Err(NameError::EmptyLevel);
            }
            if level == "." || level == ".." {
                return Err(NameError::DotLevel);
            }
            for c in level.chars() {
                check_char(c)?;
            }
            if i > 0 {
                path.push('\\');
            }
            path.push_str(level);
        }
        if path.len() > MAX_PATH_LEN {
            return Err(NameError::TooLong {
                len: path.len(),
                max: MAX_PATH_LEN,
            });
        }
        Ok(Self { target, path })
    }

    /// A local name for `path` (levels separated by `\` or `/`).
    pub fn local(path: &str) -> Result<Self, NameError> {
        Self::parse(&format!("\\mailslot\\{path}"))
    }

    /// Where the name points.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// True for names on this host.
    pub fn is_local(&self) -> bool {
        self.target == Target::Local
    }

    /// The path after `mailslot\`, levels separated by `\`, case as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The comparison key: the path with ASCII letters in lower case.
    pub fn key(&self) -> String {
        self.path.to_ascii_lowercase()
    }

    /// The name as it travels in an SMB mailslot write: `\MAILSLOT\<path>`.
    pub fn wire_name(&self) -> String {
        format!("\\MAILSLOT\\{}", self.path)
    }

    /// The same path on this host.
    pub fn to_local(&self) -> Self {
        Self {
            target: Target::Local,
            path: self.path.clone(),
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        let target_eq = match (&self.target, &other.target) {
            (Target::Host(a), Target::Host(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        target_eq && self.path.eq_ignore_ascii_case(&other.path)
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match &self.target {
            Target::Local => 0u8.hash(state),
            Target::PrimaryDomain => 1u8.hash(state),
            Target::Host(h) => {
                2u8.hash(state);
                h.to_ascii_lowercase().hash(state);
            }
        }
        self.key().hash(state);
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Local => write!(f, "\\\\.\\mailslot\\{}", self.path),
            Target::Host(h) => write!(f, "\\\\{h}\\mailslot\\{}", self.path),
            Target::PrimaryDomain => write!(f, "\\\\*\\mailslot\\{}", self.path),
        }
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Name, NameError> {
        Name::parse(s)
    }

    #[test]
    fn all_local_forms_are_equal() {
        let forms = [
            r"\\.\mailslot\a\b",
            r"\mailslot\a\b",
            "//./mailslot/a/b",
            "/mailslot/a/b",
            r"\\?\MAILSLOT\A\B",
            r"\\./mailslot\a/b",
        ];
        let first = p(forms[0]).unwrap();
        for f in forms {
            let n = p(f).unwrap();
            assert_eq!(n, first, "{f}");
            assert!(n.is_local());
            assert_eq!(n.key(), r"a\b");
        }
    }

    #[test]
    fn unix_form_without_host_is_local() {
        let n = p("//mailslot/app/events").unwrap();
        assert!(n.is_local());
        assert_eq!(n.path(), r"app\events");
        assert_eq!(n, p(r"\\.\mailslot\APP\Events").unwrap());
        assert_eq!(n.to_string(), r"\\.\mailslot\app\events");
        assert!(p(r"\\MailSlot\x").unwrap().is_local());
        assert_eq!(p("//mailslot/x").unwrap().path(), "x");
        // A computer called MAILSLOT keeps its UNC meaning.
        let remote = p("//mailslot/mailslot/x").unwrap();
        assert_eq!(remote.target(), &Target::Host("mailslot".into()));
        assert_eq!(remote.path(), "x");
        // A local slot called `mailslot`.
        let n = p("//mailslot/mailslot").unwrap();
        assert!(n.is_local());
        assert_eq!(n.path(), "mailslot");
        assert_eq!(p("//mailslot"), Err(NameError::EmptyPath));
        assert_eq!(p("//mailslot/"), Err(NameError::EmptyPath));
        assert_eq!(p("//mailslot/a//b"), Err(NameError::EmptyLevel));
        assert_eq!(p("//mailslot/a/../b"), Err(NameError::DotLevel));
        assert!(matches!(p("//mailslots/x"), Err(NameError::NotMailslot(_))));
    }

    #[test]
    fn case_kept_for_display_ignored_for_compare() {
        let n = p(r"\\.\MailSlot\App\Events").unwrap();
        assert_eq!(n.path(), r"App\Events");
        assert_eq!(n.to_string(), r"\\.\mailslot\App\Events");
        assert_eq!(n.wire_name(), r"\MAILSLOT\App\Events");
        assert_eq!(n, p(r"\mailslot\APP\events").unwrap());
        assert_ne!(n, p(r"\mailslot\app\event").unwrap());
    }

    #[test]
    fn remote_forms() {
        let n = p(r"\\SERVER1\mailslot\x").unwrap();
        assert_eq!(n.target(), &Target::Host("SERVER1".into()));
        assert!(!n.is_local());
        assert_eq!(n, p("//server1/mailslot/X").unwrap());
        let n = p(r"\\*\mailslot\net\netlogon").unwrap();
        assert_eq!(n.target(), &Target::PrimaryDomain);
        assert_eq!(n.to_string(), r"\\*\mailslot\net\netlogon");
        assert_eq!(n.to_local().to_string(), r"\\.\mailslot\net\netlogon");
    }

    #[test]
    fn invalid_names() {
        assert_eq!(p(""), Err(NameError::Empty));
        assert!(matches!(p("blah"), Err(NameError::NotMailslot(_))));
        assert!(matches!(p(r"\\.\pipe\x"), Err(NameError::NotMailslot(_))));
        assert!(matches!(p(r"\mailslots\x"), Err(NameError::NotMailslot(_))));
        assert!(matches!(p(r"\\server"), Err(NameError::NotMailslot(_))));
        assert_eq!(p(r"\mailslot"), Err(NameError::EmptyPath));
        assert_eq!(p(r"\mailslot\"), Err(NameError::EmptyPath));
        assert_eq!(p(r"\mailslot\a\\b"), Err(NameError::EmptyLevel));
        assert_eq!(p(r"\mailslot\a\"), Err(NameError::EmptyLevel));
        assert_eq!(p(r"\mailslot\a\..\b"), Err(NameError::DotLevel));
        assert_eq!(p("\\mailslot\\a\0b"), Err(NameError::InvalidChar('\0')));
        assert_eq!(p(r"\mailslot\a*b"), Err(NameError::InvalidChar('*')));
        assert_eq!(p("\\mailslot\\a\nb"), Err(NameError::InvalidChar('\n')));
        let long = format!("\\mailslot\\{}", "x".repeat(MAX_PATH_LEN + 1));
        assert_eq!(
            p(&long),
            Err(NameError::TooLong {
                len: MAX_PATH_LEN + 1,
                max: MAX_PATH_LEN
            })
        );
        let ok = format!("\\mailslot\\{}", "x".repeat(MAX_PATH_LEN));
        assert!(p(&ok).is_ok());
        assert!(matches!(
            p(r"\\SIXTEENCHARSXXXX\mailslot\x"),
            Err(NameError::InvalidHost { .. })
        ));
        assert!(matches!(
            p(r"\\a.b\mailslot\x"),
            Err(NameError::InvalidHost { .. })
        ));
    }

    #[test]
    fn multibyte_character_where_mailslot_should_be_is_an_error_not_a_panic() {
        // Found by the `mailslot_name` fuzz target.
        assert!(matches!(
            p("\\\\.\\mailslo\u{ed}]pp\\eve<ts"),
            Err(NameError::NotMailslot(_))
        ));
        assert!(matches!(
            p("/mailsl\u{e9}t/x"),
            Err(NameError::NotMailslot(_))
        ));
    }

    #[test]
    fn unicode_levels_are_kept() {
        let n = p("\\mailslot\\Grüße\\Ä").unwrap();
        assert_eq!(n.path(), "Grüße\\Ä");
        // Only ASCII letters fold.
        assert_ne!(n, p("\\mailslot\\grüße\\ä").unwrap());
        assert_eq!(n, p("\\mailslot\\GRüßE\\Ä").unwrap());
    }
}
