//! The mailslot directory: the names of local mailslots, kept by the daemon (`mailslotd`) so
//! that an idle mailslot needs no socket of its own.
//!
//! Without a daemon every mailslot is a listening socket bound to its name (see the transport).
//! A listening socket with a name costs as much kernel memory as any bound socket (≈ 2.4 KiB).
//! When the daemon runs, an owner process instead keeps **one** listening socket of its own (its
//! *process listener*, at an address under [`PROCESS_PREFIX`]) and one connection to the
//! directory (its *registry connection*), and registers each mailslot's name there with the
//! slot's id in the process. A writer whose connect to the name is refused asks the directory
//! where the name lives ([`Request::Lookup`]), connects to that process listener and says which
//! slot it wants (the id and the name, so that an entry pointing at the wrong process gets a
//! refusal, not a connection to another slot). From then on everything is as without the
//! directory: the owner greets the writer on that connection, checks its kernel credentials, and
//! the writer checks the owner's (the process listener's `SO_PEERCRED`) against the name policy.
//!
//! The directory keeps a name exactly as long as the registry connection that registered it:
//! when the owner process dies, the kernel closes the connection and the daemon drops its names.
//! A name is registered only if no socket is bound to it either (a mailslot made without the
//! directory), and a mailslot made with its own socket while the daemon runs asks the directory
//! after it bound the name, so that one name never has two owners.
//!
//! The protocol is binary: each record is one `SOCK_SEQPACKET` message of at most
//! [`MAX_RECORD`] bytes, a kind byte and the fields below, integers little-endian. Anything else
//! decodes to a [`DirectoryError`], never a panic.
//!
//! | kind | request | fields |
//! |---|---|---|
//! | `O` | [`Request::Owner`] | process listener address (the rest) |
//! | `R` | [`Request::Register`] | id u64, key (the rest) |
//! | `U` | [`Request::Unregister`] | id u64 |
//! | `L` | [`Request::Lookup`] | key (the rest) |
//! | `S` | [`Request::List`] | first entry u32 |
//!
//! | kind | reply | fields |
//! |---|---|---|
//! | `K` | [`Reply::Done`] | — |
//! | `E` | [`Reply::Failed`] | Win32 error code u32 |
//! | `F` | [`Reply::Found`] | id u64, pid u32, uid u32, address (the rest) |
//! | `M` | [`Reply::Missing`] | — |
//! | `T` | [`Reply::Entries`] | next u32 (0: no more), then per entry pid u32, uid u32, key length u8, key |

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::name::MAX_PATH_LEN;
use crate::sys;

/// Abstract socket name of the daemon's directory (in its network namespace).
pub const DIRECTORY_ADDRESS: &str = "mailslotd/v1/directory";

/// Environment variable that overrides [`DIRECTORY_ADDRESS`] for this process: another abstract
/// name (tests run daemons on names of their own), or `off` (or empty) for no directory: every
/// mailslot then has a socket of its own, and writers look for names only there.
pub const DIRECTORY_ENV: &str = "MAILSLOT_DIRECTORY";

/// Prefix of the abstract address of a mailslot with a socket of its own
/// (`mailslot/v1/<key>`): a name bound there has an owner, whatever the directory says.
pub const SOCKET_PREFIX: &str = "mailslot/v1/";

/// Prefix of process listeners' abstract addresses (`mailslot/v1p/<pid>/<random>`). Not under
/// [`SOCKET_PREFIX`], so that no mailslot name can collide with one.
pub const PROCESS_PREFIX: &str = "mailslot/v1p/";

/// Largest record either side sends or accepts.
pub const MAX_RECORD: usize = 64 * 1024;

/// Longest abstract address (a `sockaddr_un` path less the leading NUL).
pub const MAX_ADDRESS: usize = 107;

/// Longest key (a mailslot path in lower case).
pub const MAX_KEY: usize = MAX_PATH_LEN;

/// How long a client waits for the directory's answer.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A request to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// This connection is an owner process's registry connection; its process listener is at
    /// `address` (which must start with [`PROCESS_PREFIX`]). Sent once, before any
    /// [`Register`](Self::Register). Answered [`Reply::Done`] or [`Reply::Failed`].
    Owner {
        /// The abstract address of the process listener (no leading NUL).
        address: Vec<u8>,
    },
    /// Register the mailslot `key` as the slot `id` of this owner. Answered [`Reply::Done`], or
    /// [`Reply::Failed`] with 183 (the name has an owner), 8 (a limit), 87 (a bad key, or no
    /// [`Owner`](Self::Owner) first).
    Register {
        /// The slot's id in the owner process.
        id: u64,
        /// The name's comparison key (the path in lower case).
        key: String,
    },
    /// Drop the name this connection registered for slot `id`. Answered [`Reply::Done`] (also
    /// when there was none).
    Unregister {
        /// The slot's id in the owner process.
        id: u64,
    },
    /// Where does `key` live? Answered [`Reply::Found`] or [`Reply::Missing`].
    Lookup {
        /// The name's comparison key.
        key: String,
    },
    /// The registered names from the `from`-th on (as many as fit a record). Answered
    /// [`Reply::Entries`].
    List {
        /// Index of the first entry wanted.
        from: u32,
    },
}

/// The directory's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done.
    Done,
    /// Refused, with a Win32 error code (see [`crate::error::code`]).
    Failed {
        /// The code.
        code: u32,
    },
    /// The name lives in the process whose listener is at `address`, as its slot `id`.
    Found {
        /// The slot's id in the owner process.
        id: u64,
        /// The owner process (as the daemon's pid namespace sees it; 0 if outside it).
        pid: u32,
        /// The owner's user.
        uid: u32,
        /// The abstract address of the owner's process listener.
        address: Vec<u8>,
    },
    /// No such name.
    Missing,
    /// Some of the registered names; `next` is the index to ask for next, 0 when there are no
    /// more.
    Entries {
        /// Index of the next entry, 0 when this was the last record.
        next: u32,
        /// The names.
        entries: Vec<Entry>,
    },
}

/// One registered name, as [`Request::List`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The owner process (0 if outside the daemon's pid namespace).
    pub pid: u32,
    /// The owner's user.
    pub uid: u32,
    /// The name's comparison key.
    pub key: String,
}

/// Why a record does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The record is empty.
    #[error("empty record")]
    Empty,
    /// The record is longer than [`MAX_RECORD`].
    #[error("record of {0} bytes is larger than {MAX_RECORD}")]
    TooLarge(usize),
    /// The kind byte is not one of the protocol's.
    #[error("unknown record kind {0:#04x}")]
    UnknownKind(u8),
    /// The record ends inside a field.
    #[error("record ends inside a field")]
    Truncated,
    /// A key is empty, longer than [`MAX_KEY`], not UTF-8, or not in lower case.
    #[error("bad mailslot key")]
    BadKey,
    /// An address is empty, longer than [`MAX_ADDRESS`], or not under [`PROCESS_PREFIX`].
    #[error("bad process listener address")]
    BadAddress,
}

/// Reads fields off the front of a record.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DirectoryError> {
        if self.0.len() < n {
            return Err(DirectoryError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, DirectoryError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, DirectoryError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
    /// Nothing may follow the fields.
    fn end(&self) -> Result<(), DirectoryError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DirectoryError::Truncated)
        }
    }
}

/// A key as the protocol allows it: 1..=[`MAX_KEY`] bytes of UTF-8 without upper case letters
/// or NULs.
fn key(bytes: &[u8]) -> Result<String, DirectoryError> {
    if bytes.is_empty()
        || bytes.len() > MAX_KEY
        || bytes.iter().any(|b| b.is_ascii_uppercase() || *b == 0)
    {
        return Err(DirectoryError::BadKey);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| DirectoryError::BadKey)
}

/// Whether `a` may be a process listener's address.
pub fn valid_address(a: &[u8]) -> bool {
    a.len() > PROCESS_PREFIX.len()
        && a.len() <= MAX_ADDRESS
        && a.starts_with(PROCESS_PREFIX.as_bytes())
}

fn address(bytes: &[u8]) -> Result<Vec<u8>, DirectoryError> {
    if valid_address(bytes) {
        Ok(bytes.to_vec())
    } else {
        Err(DirectoryError::BadAddress)
    }
}

fn check_len(bytes: &[u8]) -> Result<(), DirectoryError> {
    match bytes.len() {
        0 => Err(DirectoryError::Empty),
        n if n > MAX_RECORD => Err(DirectoryError::TooLarge(n)),
        _ => Ok(()),
    }
}

impl Request {
    /// Encodes the request as one record.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        match self {
            Self::Owner { address } => {
                b.push(b'O');
                b.extend_from_slice(address);
            }
            Self::Register { id, key } => {
                b.push(b'R');
                b.extend_from_slice(&id.to_le_bytes());
                b.extend_from_slice(key.as_bytes());
            }
            Self::Unregister { id } => {
                b.push(b'U');
                b.extend_from_slice(&id.to_le_bytes());
            }
            Self::Lookup { key } => {
                b.push(b'L');
                b.extend_from_slice(key.as_bytes());
            }
            Self::List { from } => {
                b.push(b'S');
                b.extend_from_slice(&from.to_le_bytes());
            }
        }
        b
    }

    /// Decodes a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        check_len(bytes)?;
        let mut f = Fields(&bytes[1..]);
        let r = match bytes[0] {
            b'O' => Self::Owner {
                address: address(f.rest())?,
            },
            b'R' => Self::Register {
                id: f.u64()?,
                key: key(f.rest())?,
            },
            b'U' => Self::Unregister { id: f.u64()? },
            b'L' => Self::Lookup {
                key: key(f.rest())?,
            },
            b'S' => Self::List { from: f.u32()? },
            k => return Err(DirectoryError::UnknownKind(k)),
        };
        f.end()?;
        Ok(r)
    }
}

/// Bytes one [`Entry`] takes in a [`Reply::Entries`] record.
pub fn entry_len(e: &Entry) -> usize {
    9 + e.key.len()
}

impl Reply {
    /// Encodes the reply as one record (the caller keeps [`Reply::Entries`] within
    /// [`MAX_RECORD`], see [`entry_len`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        match self {
            Self::Done => b.push(b'K'),
            Self::Failed { code } => {
                b.push(b'E');
                b.extend_from_slice(&code.to_le_bytes());
            }
            Self::Found {
                id,
                pid,
                uid,
                address,
            } => {
                b.push(b'F');
                b.extend_from_slice(&id.to_le_bytes());
                b.extend_from_slice(&pid.to_le_bytes());
                b.extend_from_slice(&uid.to_le_bytes());
                b.extend_from_slice(address);
            }
            Self::Missing => b.push(b'M'),
            Self::Entries { next, entries } => {
                b.push(b'T');
                b.extend_from_slice(&next.to_le_bytes());
                for e in entries {
                    b.extend_from_slice(&e.pid.to_le_bytes());
                    b.extend_from_slice(&e.uid.to_le_bytes());
                    // Keys are at most MAX_KEY (95) bytes.
                    b.push(e.key.len().min(MAX_KEY) as u8);
                    b.extend_from_slice(&e.key.as_bytes()[..e.key.len().min(MAX_KEY)]);
                }
            }
        }
        b
    }

    /// Decodes a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        check_len(bytes)?;
        let mut f = Fields(&bytes[1..]);
        let r = match bytes[0] {
            b'K' => Self::Done,
            b'E' => Self::Failed { code: f.u32()? },
            b'F' => Self::Found {
                id: f.u64()?,
                pid: f.u32()?,
                uid: f.u32()?,
                address: address(f.rest())?,
            },
            b'M' => Self::Missing,
            b'T' => {
                let next = f.u32()?;
                let mut entries = Vec::new();
                while !f.0.is_empty() {
                    let pid = f.u32()?;
                    let uid = f.u32()?;
                    let n = f.take(1)?[0] as usize;
                    let key = key(f.take(n)?)?;
                    entries.push(Entry { pid, uid, key });
                }
                Self::Entries { next, entries }
            }
            k => return Err(DirectoryError::UnknownKind(k)),
        };
        f.end()?;
        Ok(r)
    }
}

/// The directory's address for this process: [`DIRECTORY_ENV`] if set (`None` when it says
/// `off`), else [`DIRECTORY_ADDRESS`].
pub(crate) fn directory_address() -> Option<Vec<u8>> {
    match std::env::var_os(DIRECTORY_ENV) {
        None => Some(DIRECTORY_ADDRESS.as_bytes().to_vec()),
        Some(v) if v.is_empty() || v == "off" => None,
        Some(v) => Some(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec()),
    }
}

/// Whether a directory served by `uid` is believed: root, the daemon's user, or this process's
/// own user (a daemon a user runs for themselves). Anyone else could have bound the address
/// while no daemon runs.
fn trusted_server(uid: u32) -> bool {
    crate::daemon::is_trusted_uid(uid) || uid == sys::geteuid()
}

/// A connection to the directory, if a trusted one runs (see [`directory_address`]).
pub(crate) fn connect() -> Option<OwnedFd> {
    let addr = directory_address()?;
    let sock = sys::seqpacket(false).ok()?;
    // Blocking, with both timeouts: a call is a send and a receive (see `call`).
    sys::set_send_timeout(&sock, Some(CALL_TIMEOUT)).ok()?;
    sys::set_recv_timeout(&sock, Some(CALL_TIMEOUT)).ok()?;
    sys::connect_abstract(&sock, &addr).ok()?;
    let server = sys::peer_cred(&sock).ok()?;
    trusted_server(server.uid).then_some(sock)
}

/// The process that serves the directory, if a trusted one runs (as this process's pid
/// namespace sees it): for tools and benchmarks that account for the daemon's part.
pub fn server_pid() -> Option<u32> {
    let sock = connect()?;
    sys::peer_cred(&sock)
        .ok()
        .map(|c| c.pid)
        .filter(|p| *p != 0)
}

/// How long [`call`] looks for the answer before it sleeps.
const ANSWER_SPIN: Duration = Duration::from_micros(50);

/// Largest answer to anything but [`Request::List`]: a [`Reply::Found`] with the longest
/// address.
const SMALL_REPLY: usize = 1 + 8 + 4 + 4 + MAX_ADDRESS;

/// Sends `req` on `sock` (a connection made by [`connect`]: blocking, with [`CALL_TIMEOUT`] for
/// sending and for receiving) and waits for the answer.
pub(crate) fn call(sock: &OwnedFd, req: &Request) -> io::Result<Reply> {
    sys::send_parts(sock.as_raw_fd(), &[&req.encode()], &[], false)?;
    let mut small = [0u8; SMALL_REPLY + 1];
    let mut large = Vec::new();
    let buf: &mut [u8] = if matches!(req, Request::List { .. }) {
        large.resize(MAX_RECORD + 1, 0);
        &mut large
    } else {
        &mut small
    };
    let failed = |kind, what| Err(io::Error::new(kind, what));
    // The daemon answers within microseconds: looked for without sleeping for a moment first
    // (yielding, in case the daemon waits for this CPU), which saves a wake-up from another CPU
    // per call (tens of microseconds on some machines: 10 000 creates took 0.49-0.58 s without
    // this, 0.32 s with it).
    let spin_until = std::time::Instant::now() + ANSWER_SPIN;
    let got = loop {
        match sys::recv_msg(sock.as_raw_fd(), buf, false)? {
            Some(r) => break Some((r.len, r.truncated)),
            None if std::time::Instant::now() < spin_until => std::thread::yield_now(),
            None => break sys::recv_record_wait(sock, buf)?,
        }
    };
    match got {
        // The receive timeout ran out (`EAGAIN`).
        None => failed(
            io::ErrorKind::TimedOut,
            "the mailslot directory did not answer",
        ),
        Some((0, _)) => failed(
            io::ErrorKind::ConnectionReset,
            "the mailslot directory closed the connection",
        ),
        Some((_, true)) => failed(
            io::ErrorKind::InvalidData,
            "record from the mailslot directory too large",
        ),
        Some((len, false)) => Reply::decode(&buf[..len])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
    }
}

/// How the process that serves the directory answers its own lookups (see
/// [`serve_lookups_here`]).
type Here = Arc<dyn Fn(&str) -> Option<(u64, Vec<u8>)> + Send + Sync>;

/// The directory this process serves, if any: its address and how it answers lookups.
static HERE: Mutex<Option<(u64, Vec<u8>, Here)>> = Mutex::new(None);

/// Withdraws what [`serve_lookups_here`] set up when dropped.
#[derive(Debug)]
pub struct LookupsHere {
    id: u64,
}

impl Drop for LookupsHere {
    fn drop(&mut self) {
        let mut here = HERE.lock().unwrap_or_else(PoisonError::into_inner);
        if here.as_ref().is_some_and(|(id, _, _)| *id == self.id) {
            *here = None;
        }
    }
}

/// For the process that serves the directory at `address` (the daemon): writers of this
/// process whose directory that is look names up by calling `lookup` (which gives the slot's id
/// and its owner's process listener, as [`Reply::Found`] does) instead of asking over a socket,
/// which would wait for the serving thread to be scheduled (milliseconds on a busy machine).
/// In effect until the returned value is dropped.
pub fn serve_lookups_here(
    address: &str,
    lookup: impl Fn(&str) -> Option<(u64, Vec<u8>)> + Send + Sync + 'static,
) -> LookupsHere {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    *HERE.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((id, address.as_bytes().to_vec(), Arc::new(lookup)));
    LookupsHere { id }
}

/// Where `key` lives, asking a directory if one runs: `None` when no directory runs or it does
/// not know the name.
pub(crate) fn lookup(key: &str) -> Option<(u64, Vec<u8>)> {
    let here = HERE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some((_, address, answer)) = here {
        if directory_address().is_some_and(|a| a == address) {
            return answer(key);
        }
    }
    let sock = connect()?;
    match call(
        &sock,
        &Request::Lookup {
            key: key.to_string(),
        },
    ) {
        Ok(Reply::Found { id, address, .. }) => Some((id, address)),
        _ => None,
    }
}

/// Every name the directory knows, if one runs.
pub(crate) fn list() -> Vec<Entry> {
    let Some(sock) = connect() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        match call(&sock, &Request::List { from }) {
            Ok(Reply::Entries { next, entries }) => {
                out.extend(entries);
                if next == 0 || next <= from {
                    return out;
                }
                from = next;
            }
            _ => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<Request> {
        vec![
            Request::Owner {
                address: b"mailslot/v1p/12/abcdef".to_vec(),
            },
            Request::Register {
                id: 7,
                key: "app\\events".into(),
            },
            Request::Unregister { id: u64::MAX },
            Request::Lookup { key: "x".into() },
            Request::List { from: 3 },
        ]
    }

    fn replies() -> Vec<Reply> {
        vec![
            Reply::Done,
            Reply::Failed { code: 183 },
            Reply::Found {
                id: 9,
                pid: 4,
                uid: 1000,
                address: b"mailslot/v1p/4/00".to_vec(),
            },
            Reply::Missing,
            Reply::Entries {
                next: 0,
                entries: vec![
                    Entry {
                        pid: 1,
                        uid: 2,
                        key: "a".into(),
                    },
                    Entry {
                        pid: 3,
                        uid: 4,
                        key: "b\\c".into(),
                    },
                ],
            },
        ]
    }

    #[test]
    fn records_round_trip() {
        for r in requests() {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        for r in replies() {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
    }

    /// Hand-written bytes, not the encoder's: the layout the module documents.
    #[test]
    fn records_have_the_documented_layout() {
        let reg = [b'R', 7, 0, 0, 0, 0, 0, 0, 0, b'a', b'\\', b'b'];
        assert_eq!(
            Request::decode(&reg).unwrap(),
            Request::Register {
                id: 7,
                key: "a\\b".into()
            }
        );
        let found = b"F\x02\0\0\0\0\0\0\0\x05\0\0\0\xe8\x03\0\0mailslot/v1p/5/x";
        assert_eq!(
            Reply::decode(found).unwrap(),
            Reply::Found {
                id: 2,
                pid: 5,
                uid: 1000,
                address: b"mailslot/v1p/5/x".to_vec()
            }
        );
        let entries = b"T\0\0\0\0\x01\0\0\0\x02\0\0\0\x01z";
        assert_eq!(
            Reply::decode(entries).unwrap(),
            Reply::Entries {
                next: 0,
                entries: vec![Entry {
                    pid: 1,
                    uid: 2,
                    key: "z".into()
                }]
            }
        );
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(Request::decode(b""), Err(DirectoryError::Empty));
        assert_eq!(
            Request::decode(b"Z"),
            Err(DirectoryError::UnknownKind(b'Z'))
        );
        assert_eq!(
            Request::decode(b"R\x01\x02"),
            Err(DirectoryError::Truncated)
        );
        assert_eq!(Request::decode(b"U\x01"), Err(DirectoryError::Truncated));
        assert_eq!(
            Request::decode(b"U\x01\0\0\0\0\0\0\0extra"),
            Err(DirectoryError::Truncated)
        );
        // Keys: empty, upper case, NUL, too long, not UTF-8.
        assert_eq!(Request::decode(b"L"), Err(DirectoryError::BadKey));
        assert_eq!(Request::decode(b"LAbc"), Err(DirectoryError::BadKey));
        assert_eq!(Request::decode(b"La\0b"), Err(DirectoryError::BadKey));
        let long = [&b"L"[..], &[b'x'; MAX_KEY + 1]].concat();
        assert_eq!(Request::decode(&long), Err(DirectoryError::BadKey));
        assert_eq!(Request::decode(b"L\xff"), Err(DirectoryError::BadKey));
        // Addresses: not a process listener's.
        assert_eq!(
            Request::decode(b"Omailslot/v1/app"),
            Err(DirectoryError::BadAddress)
        );
        assert_eq!(
            Request::decode(b"Omailslot/v1p/"),
            Err(DirectoryError::BadAddress)
        );
        let long = [&b"Omailslot/v1p/"[..], &[b'x'; MAX_ADDRESS]].concat();
        assert_eq!(Request::decode(&long), Err(DirectoryError::BadAddress));
        assert_eq!(
            Request::decode(&vec![b'S'; MAX_RECORD + 1]),
            Err(DirectoryError::TooLarge(MAX_RECORD + 1))
        );
        // An entry whose key runs past the end.
        assert_eq!(
            Reply::decode(b"T\0\0\0\0\x01\0\0\0\x02\0\0\0\x05ab"),
            Err(DirectoryError::Truncated)
        );
        assert_eq!(Reply::decode(b"E\x01"), Err(DirectoryError::Truncated));
    }
}
