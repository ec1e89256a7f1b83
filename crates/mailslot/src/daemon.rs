//! The local control protocol between programs and the mailslot daemon (`mailslotd`).
//!
//! The daemon listens on the abstract `SOCK_SEQPACKET` address [`CONTROL_ADDRESS`] of its network
//! namespace. Each request is one record and gets one [`Reply`] record. The daemon learns who asks
//! from the kernel (`SO_PEERCRED`), never from the request.
//!
//! Writers use it for remote names (`\\HOST\mailslot\x`, `\\*\mailslot\x`): [`MailslotWriter`]
//! does this by itself. Tools use [`Request::Status`] and [`Request::Resolve`].
//!
//! [`MailslotWriter`]: crate::MailslotWriter

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sys;

/// Abstract socket name of the daemon's control socket.
pub const CONTROL_ADDRESS: &str = "mailslotd/v1/control";

/// The system user the daemon runs as after binding its ports, when it exists. Mailslot owners
/// admit this user (and root) to deliver network messages, whatever their access policy.
pub const DAEMON_USER: &str = "mailslot";

/// The uid of [`DAEMON_USER`], if that user exists (looked up once).
pub fn daemon_uid() -> Option<u32> {
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(|| sys::uid_of_user(DAEMON_USER))
}

/// Where a remote write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTarget {
    /// `\\NAME\…`: a computer or a domain/workgroup name.
    Host(String),
    /// `\\*\…`: the daemon's primary workgroup.
    PrimaryDomain,
}

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Send a mailslot write to another host (or hosts).
    Write {
        /// Destination host, domain or the primary domain.
        target: RemoteTarget,
        /// Mailslot path after `\MAILSLOT\`.
        path: String,
        /// Priority 0–9.
        priority: u8,
        /// Class 1 or 2.
        class: u8,
        /// Milliseconds the writer is willing to wait (`u32::MAX` forever).
        timeout_ms: u32,
        /// The message.
        data: Vec<u8>,
    },
    /// Resolve a NetBIOS name; the reply text is JSON `{"name":…,"addresses":[…]}`.
    Resolve {
        /// The name (up to 15 characters).
        name: String,
        /// The suffix byte.
        suffix: u8,
    },
    /// The daemon's counters and names as JSON.
    Status,
}

const K_WRITE: u8 = 1;
const K_RESOLVE: u8 = 2;
const K_STATUS: u8 = 3;

fn put_str(b: &mut Vec<u8>, s: &str) -> Option<()> {
    let len = u8::try_from(s.len()).ok()?;
    b.push(len);
    b.extend_from_slice(s.as_bytes());
    Some(())
}

fn take_str<'a>(b: &mut &'a [u8]) -> Option<&'a str> {
    let (&len, rest) = b.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let s = std::str::from_utf8(&rest[..len]).ok()?;
    *b = &rest[len..];
    Some(s)
}

impl Request {
    /// Encodes the request; `None` if a string is longer than 255 bytes.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut b = Vec::new();
        match self {
            Request::Write {
                target,
                path,
                priority,
                class,
                timeout_ms,
                data,
            } => {
                b.extend_from_slice(&[K_WRITE, *priority, *class]);
                b.extend_from_slice(&timeout_ms.to_le_bytes());
                match target {
                    RemoteTarget::Host(h) => {
                        b.push(0);
                        put_str(&mut b, h)?;
                    }
                    RemoteTarget::PrimaryDomain => {
                        b.push(1);
                        put_str(&mut b, "")?;
                    }
                }
                put_str(&mut b, path)?;
                b.extend_from_slice(data);
            }
            Request::Resolve { name, suffix } => {
                b.extend_from_slice(&[K_RESOLVE, *suffix]);
                put_str(&mut b, name)?;
            }
            Request::Status => b.push(K_STATUS),
        }
        Some(b)
    }

    /// Decodes a request; `None` for anything malformed.
    pub fn decode(b: &[u8]) -> Option<Request> {
        let (&kind, mut rest) = b.split_first()?;
        match kind {
            K_WRITE => {
                if rest.len() < 7 {
                    return None;
                }
                let (priority, class) = (rest[0], rest[1]);
                let timeout_ms = u32::from_le_bytes(rest[2..6].try_into().ok()?);
                let tk = rest[6];
                rest = &rest[7..];
                let host = take_str(&mut rest)?;
                let target = match tk {
                    0 => RemoteTarget::Host(host.to_string()),
                    1 => RemoteTarget::PrimaryDomain,
                    _ => return None,
                };
                let path = take_str(&mut rest)?.to_string();
                Some(Request::Write {
                    target,
                    path,
                    priority,
                    class,
                    timeout_ms,
                    data: rest.to_vec(),
                })
            }
            K_RESOLVE => {
                let (&suffix, mut r) = rest.split_first()?;
                let name = take_str(&mut r)?.to_string();
                Some(Request::Resolve { name, suffix })
            }
            K_STATUS if rest.is_empty() => Some(Request::Status),
            _ => None,
        }
    }
}

/// The daemon's answer: a Win32 error number (0 = success) and a text (an error message, or JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 0 on success, else a Win32 error number (53 = bad network path, …).
    pub code: u32,
    /// Error message or JSON result.
    pub text: String,
}

impl Reply {
    /// Encodes the reply.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.code.to_le_bytes().to_vec();
        b.extend_from_slice(self.text.as_bytes());
        b
    }

    /// Decodes a reply.
    pub fn decode(b: &[u8]) -> Option<Reply> {
        if b.len() < 4 {
            return None;
        }
        Some(Reply {
            code: u32::from_le_bytes(b[..4].try_into().ok()?),
            text: String::from_utf8_lossy(&b[4..]).into_owned(),
        })
    }
}

/// A connection to the local daemon.
#[derive(Debug)]
pub struct DaemonClient {
    sock: OwnedFd,
}

impl DaemonClient {
    /// Connects; `ErrorKind::NotFound` when no daemon runs in this network namespace.
    pub fn connect() -> io::Result<DaemonClient> {
        let sock = sys::seqpacket(false)?;
        match sys::connect_abstract(&sock, CONTROL_ADDRESS.as_bytes()) {
            Ok(()) => Ok(DaemonClient { sock }),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) => {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the mailslot daemon (mailslotd) is not running",
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a request and waits up to `timeout` for the reply.
    pub fn call(&self, req: &Request, timeout: Duration) -> io::Result<Reply> {
        let bytes = req
            .encode()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        sys::send_parts(self.sock.as_raw_fd(), &[&bytes], &[], false)?;
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the mailslot daemon did not answer",
                ));
            }
            sys::poll_one(self.sock.as_raw_fd(), libc::POLLIN, Some(left))?;
            match sys::recv_msg(self.sock.as_raw_fd(), &mut buf, false)? {
                None => continue,
                Some(r) if r.len == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the mailslot daemon closed the connection",
                    ))
                }
                Some(r) => {
                    return Reply::decode(&buf[..r.len.min(buf.len())]).ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            "malformed reply from the mailslot daemon",
                        )
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let reqs = [
            Request::Write {
                target: RemoteTarget::Host("SERVER".into()),
                path: "net\\netlogon".into(),
                priority: 3,
                class: 2,
                timeout_ms: u32::MAX,
                data: vec![1, 2, 3],
            },
            Request::Write {
                target: RemoteTarget::PrimaryDomain,
                path: "x".into(),
                priority: 0,
                class: 1,
                timeout_ms: 0,
                data: vec![],
            },
            Request::Resolve {
                name: "HOST".into(),
                suffix: 0x20,
            },
            Request::Status,
        ];
        for r in reqs {
            assert_eq!(Request::decode(&r.encode().unwrap()), Some(r));
        }
        assert_eq!(Request::decode(&[]), None);
        assert_eq!(Request::decode(&[9]), None);
        assert_eq!(
            Request::decode(&[K_WRITE, 0, 2, 0, 0, 0, 0, 0, 5, b'a']),
            None
        );
        assert_eq!(Request::decode(&[K_STATUS, 1]), None);
        let rep = Reply {
            code: 53,
            text: "no such host".into(),
        };
        assert_eq!(Reply::decode(&rep.encode()), Some(rep));
        assert_eq!(Reply::decode(&[1, 2]), None);
    }
}

/// The daemon's side of the control socket (blocking; one thread per connection is fine for the
/// few local clients a daemon has).
#[derive(Debug)]
pub struct ControlServer {
    listener: OwnedFd,
}

/// Credentials of a connected client, from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

impl ControlServer {
    /// Binds [`CONTROL_ADDRESS`] in this network namespace; `AddrInUse` when a daemon runs.
    pub fn bind() -> io::Result<ControlServer> {
        let listener = sys::seqpacket(false)?;
        sys::bind_abstract(&listener, CONTROL_ADDRESS.as_bytes())?;
        sys::listen(&listener, 128)?;
        Ok(ControlServer { listener })
    }

    /// Waits for the next client.
    pub fn accept(&self) -> io::Result<ControlConnection> {
        loop {
            sys::poll_one(self.listener.as_raw_fd(), libc::POLLIN, None)?;
            if let Some(sock) = sys::accept(&self.listener)? {
                let c = sys::peer_cred(&sock)?;
                return Ok(ControlConnection {
                    sock,
                    peer: PeerCredentials {
                        pid: c.pid,
                        uid: c.uid,
                        gid: c.gid,
                    },
                });
            }
        }
    }
}

/// One client of the control socket.
#[derive(Debug)]
pub struct ControlConnection {
    sock: OwnedFd,
    /// Who it is.
    pub peer: PeerCredentials,
}

impl ControlConnection {
    /// The next request record, `Ok(None)` when the client hung up. Malformed records are
    /// reported as `InvalidData`.
    pub fn recv(&self) -> io::Result<Option<Request>> {
        let mut buf = vec![0u8; 70 * 1024];
        loop {
            sys::poll_one(self.sock.as_raw_fd(), libc::POLLIN, None)?;
            match sys::recv_msg(self.sock.as_raw_fd(), &mut buf, false)? {
                None => continue,
                Some(r) if r.len == 0 => return Ok(None),
                Some(r) if r.truncated => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request too large",
                    ))
                }
                Some(r) => {
                    return Request::decode(&buf[..r.len]).map(Some).ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "malformed request")
                    })
                }
            }
        }
    }

    /// Sends a reply record.
    pub fn send(&self, reply: &Reply) -> io::Result<()> {
        sys::send_parts(self.sock.as_raw_fd(), &[&reply.encode()], &[], false).map(|_| ())
    }
}
