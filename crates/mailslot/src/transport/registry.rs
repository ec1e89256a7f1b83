//! The owner side of the daemon's mailslot directory (see [`crate::directory`]): the process
//! listener, the registry connection, and writers' hellos.
//!
//! When a trusted directory runs, a new private mailslot does not bind a socket of its own: its
//! name is registered in the directory, as the slot's token in this process. Writers that the
//! directory sends here connect to the process listener (one per process, made with the first
//! registered name) and say which slot they want in a *hello* record ([`HELLO`], the slot's
//! token and its key). The service thread accepts them, reads the hello (waiting a little for
//! one that has not come yet, [`HELLO_WAIT`], a bounded number per user) and hands the
//! connection to the slot, which then greets it as if its own listener had accepted it.
//!
//! A slot that gets a socket of its own after all (its handle is shared, or the daemon stopped)
//! binds its name then and takes it out of the directory.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::directory::{self, Reply, Request, PROCESS_PREFIX};
use crate::sys;

/// First byte of a writer's hello on a process listener's connection: then the slot's token
/// (u64, little-endian) and its key.
pub(crate) const HELLO: u8 = b'H';

/// How long a connection to the process listener may take to send its hello.
pub(crate) const HELLO_WAIT: Duration = Duration::from_secs(1);
/// Connections of one user whose hello has not come yet, at most.
const PENDING_PER_UID: usize = 16;
/// Connections whose hello has not come yet, at most.
const PENDING_MAX: usize = 1024;
/// How long after a failed connect the directory is not tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A writer's hello for slot `id` with key `key`.
pub(crate) fn encode_hello(id: u64, key: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + key.len());
    b.push(HELLO);
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    b
}

/// The slot's token and key of a hello; `None` if it is not one.
pub(crate) fn decode_hello(b: &[u8]) -> Option<(u64, &str)> {
    if b.len() < 10 || b.len() > 9 + directory::MAX_KEY || b[0] != HELLO {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&b[1..9]);
    Some((u64::from_le_bytes(id), std::str::from_utf8(&b[9..]).ok()?))
}

/// What a registration came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registered {
    /// The directory keeps the name for this slot.
    Yes,
    /// Somebody else has the name.
    Taken,
    /// No directory (or it refused for another reason): the slot binds a socket of its own.
    No,
}

/// A connection whose hello has not come yet.
pub(crate) struct Pending {
    pub(crate) fd: OwnedFd,
    pub(crate) uid: u32,
    pub(crate) until: Instant,
}

/// This process's part of the directory.
#[derive(Default)]
pub(crate) struct Registry {
    /// The registry connection (requests and their answers, in order, under this lock), and
    /// when a connect last failed.
    conn: Mutex<Conn>,
    /// The process listener and its address, made with the first registered name.
    listener: OnceLock<(OwnedFd, Vec<u8>)>,
    /// Connections whose hello has not come yet, by epoll token.
    pub(crate) pending: Mutex<HashMap<u64, Pending>>,
}

#[derive(Default)]
pub(crate) struct Conn {
    sock: Option<OwnedFd>,
    failed_at: Option<Instant>,
}

/// The outcome of [`Registry::connection`].
pub(crate) enum Connected<'a> {
    /// The registry connection, under its lock.
    Ready(MutexGuard<'a, Conn>),
    /// This call made it: the service must watch these (process listener, registry connection)
    /// before anything else happens.
    New(MutexGuard<'a, Conn>),
    /// No directory.
    None,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// The process listener's descriptor, once made.
    pub(crate) fn listener_fd(&self) -> Option<i32> {
        self.listener.get().map(|(l, _)| l.as_raw_fd())
    }

    /// The process listener, made on first use.
    fn listener(&self) -> io::Result<&(OwnedFd, Vec<u8>)> {
        if let Some(l) = self.listener.get() {
            return Ok(l);
        }
        let pid = sys::getpid();
        let mut last = None;
        for attempt in 0..8u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let address = format!(
                "{PROCESS_PREFIX}{pid}/{:x}",
                nanos ^ u64::from(attempt) << 56
            )
            .into_bytes();
            let sock = sys::seqpacket(true)?;
            match sys::bind_abstract(&sock, &address) {
                Ok(()) => {
                    sys::listen(&sock, 4096)?;
                    return Ok(self.listener.get_or_init(|| (sock, address)));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no process listener")))
    }

    /// The registry connection, connecting (and declaring the process listener) if there is
    /// none; not tried again for [`RETRY_AFTER`] after a failure.
    pub(crate) fn connection(&self) -> Connected<'_> {
        let mut c = lock(&self.conn);
        if c.sock.is_some() {
            return Connected::Ready(c);
        }
        if c.failed_at.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return Connected::None;
        }
        let made = directory::connect().and_then(|sock| {
            let (_, address) = self.listener().ok()?;
            let declared = directory::call(
                &sock,
                &Request::Owner {
                    address: address.clone(),
                },
            );
            matches!(declared, Ok(Reply::Done)).then_some(sock)
        });
        match made {
            Some(sock) => {
                c.sock = Some(sock);
                c.failed_at = None;
                Connected::New(c)
            }
            None => {
                c.failed_at = Some(Instant::now());
                Connected::None
            }
        }
    }

    /// The registry connection's descriptor (for the service to watch), if there is one.
    pub(crate) fn conn_fd(c: &MutexGuard<'_, Conn>) -> Option<i32> {
        c.sock.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Registers `key` as slot `id` on the connection `c`.
    pub(crate) fn register(c: &mut MutexGuard<'_, Conn>, id: u64, key: &str) -> Registered {
        let Some(sock) = c.sock.as_ref() else {
            return Registered::No;
        };
        match directory::call(
            sock,
            &Request::Register {
                id,
                key: key.to_string(),
            },
        ) {
            Ok(Reply::Done) => Registered::Yes,
            Ok(Reply::Failed {
                code: crate::error::code::ALREADY_EXISTS,
            }) => Registered::Taken,
            Ok(_) => Registered::No,
            Err(_) => {
                // A connection that fails is dropped (the service sees the hang-up and gives
                // the names registered on it sockets of their own).
                c.sock = None;
                Registered::No
            }
        }
    }

    /// Whether the directory has `key` (for a slot that bound its own socket: the name must not
    /// have an owner there too). `false` when there is no directory.
    pub(crate) fn has(&self, key: &str) -> bool {
        let mut c = lock(&self.conn);
        let Some(sock) = c.sock.as_ref() else {
            drop(c);
            // No registry connection: ask on a connection of its own, if a directory runs.
            return directory::lookup(key).is_some();
        };
        match directory::call(
            sock,
            &Request::Lookup {
                key: key.to_string(),
            },
        ) {
            Ok(Reply::Found { .. }) => true,
            Ok(_) => false,
            Err(_) => {
                c.sock = None;
                false
            }
        }
    }

    /// Takes slot `id`'s name out of the directory (answered before this returns, so that the
    /// name is free for anybody once it does).
    pub(crate) fn unregister(&self, id: u64) {
        let mut c = lock(&self.conn);
        if let Some(sock) = c.sock.as_ref() {
            if directory::call(sock, &Request::Unregister { id }).is_err() {
                c.sock = None;
            }
        }
    }

    /// Whether the registry connection is gone (the daemon stopped); forgets it then.
    pub(crate) fn lost(&self) -> bool {
        let mut c = lock(&self.conn);
        let gone = match c.sock.as_ref() {
            None => true,
            Some(s) => sys::poll_one(s.as_raw_fd(), libc::POLLRDHUP, Some(Duration::ZERO))
                .map_or(true, |r| r != 0),
        };
        if gone {
            c.sock = None;
        }
        gone
    }

    /// Accepts one connection on the process listener: `Ok(None)` when none waits.
    pub(crate) fn accept(&self) -> io::Result<Option<OwnedFd>> {
        match self.listener.get() {
            Some((l, _)) => sys::accept(l),
            None => Ok(None),
        }
    }

    /// Adds a connection whose hello has not come yet under `token`; `false` (and the
    /// connection is dropped) when its user, or everybody, has too many waiting.
    pub(crate) fn add_pending(&self, token: u64, fd: OwnedFd, uid: u32) -> bool {
        let mut p = lock(&self.pending);
        if p.len() >= PENDING_MAX || p.values().filter(|c| c.uid == uid).count() >= PENDING_PER_UID
        {
            return false;
        }
        p.insert(
            token,
            Pending {
                fd,
                uid,
                until: Instant::now() + HELLO_WAIT,
            },
        );
        true
    }

    /// Drops the connections whose hello did not come in time; when the next one is due.
    pub(crate) fn expire_pending(&self, now: Instant) -> Option<Instant> {
        let mut p = lock(&self.pending);
        p.retain(|_, c| c.until > now);
        p.values().map(|c| c.until).min()
    }
}

/// Reads a hello from `fd` (non-blocking): `Ok(None)` if it has not come yet, an error if the
/// connection sent something else or hung up.
pub(crate) fn read_hello(fd: &OwnedFd) -> io::Result<Option<(u64, String)>> {
    let mut buf = [0u8; 9 + directory::MAX_KEY + 1];
    match sys::recv_msg(fd.as_raw_fd(), &mut buf, false)? {
        None => Ok(None),
        Some(r) if r.truncated || !r.fds.is_empty() => Err(bad_hello()),
        Some(r) => decode_hello(&buf[..r.len])
            .map(|(id, key)| Some((id, key.to_string())))
            .ok_or_else(bad_hello),
    }
}

fn bad_hello() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not a hello")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_decode() {
        let h = encode_hello(42, "app\\events");
        assert_eq!(decode_hello(&h), Some((42, "app\\events")));
        // Hand-written: kind, token 1, key "x".
        assert_eq!(decode_hello(b"H\x01\0\0\0\0\0\0\0x"), Some((1, "x")));
        assert_eq!(decode_hello(b"H\x01\0\0\0\0\0\0\0"), None, "no key");
        assert_eq!(decode_hello(b"X\x01\0\0\0\0\0\0\0x"), None, "not a hello");
        assert_eq!(decode_hello(b"H\x01\0\0\0\0\0\0\0\xff"), None, "not UTF-8");
        let long = encode_hello(1, &"x".repeat(directory::MAX_KEY + 1));
        assert_eq!(decode_hello(&long), None, "key too long");
    }
}
