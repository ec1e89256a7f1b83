//! The local control protocol between programs and the mailslot daemon (`mailslotd`): the client
//! side, and the types both sides speak.
//!
//! The daemon listens on the abstract `SOCK_SEQPACKET` address [`CONTROL_ADDRESS`] of its network
//! namespace. Each [`Request`] is one record and gets one [`Reply`] record. A record is a JSON
//! object `{"v": PROTOCOL_VERSION, "msg": …}` of at most [`MAX_RECORD`] bytes; anything else
//! decodes to a [`ProtocolError`], never a panic. The daemon learns who asks from the kernel
//! (`SO_PEERCRED`), never from the request.
//!
//! Writers use it for remote names (`\\HOST\mailslot\x`, `\\*\mailslot\x`): [`MailslotWriter`]
//! does this by itself. Tools use [`Request::Status`] ([`Status`]) and [`Request::Resolve`]
//! ([`Resolution`]). The daemon (crate `mailslotd`) and its protocol core (`mailslot-router`)
//! produce these very types, so what the daemon counts is what a client reads.
//!
//! A second-class remote write is one NetBIOS datagram: sent or not, and the only wait on the
//! daemon's side, name resolution, is bounded by the protocol (3 tries 250 ms apart per method).
//! A first-class write to one host ([`RemoteWrite::timeout_ms`] applies) travels over a NetBIOS
//! session to that host's daemon and is answered only when the remote mailslot has queued it, or
//! with the reason it was not (2, 5, 87, 121, 53, 109); first class to a group fails with 87.
//!
//! [`MailslotWriter`]: crate::MailslotWriter

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::name::Target;
use crate::sys;
use crate::types::Class;

/// Abstract socket name of the daemon's control socket.
pub const CONTROL_ADDRESS: &str = "mailslotd/v1/control";

/// Version of the records (the `v` field); also in [`CONTROL_ADDRESS`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest single wait for a reply (longer waits poll again).
const POLL_SLICE: Duration = Duration::from_secs(3600);

/// Largest record either side sends or accepts, in bytes (a [`RemoteWrite`] of
/// [`MAX_FIRST_CLASS_NETWORK`] bytes, hex-encoded, fits).
pub const MAX_RECORD: usize = 192 * 1024;

/// Largest message a first-class write carries to another host: one SMB transaction on a NetBIOS
/// session (its data count is 16 bits), less room for the header and the mailslot's name.
pub const MAX_FIRST_CLASS_NETWORK: usize = 65_000;

/// The system user the daemon runs as after binding its ports, when it exists. Mailslot owners
/// admit this user (and root) to deliver network messages, whatever their access policy.
pub const DAEMON_USER: &str = "mailslot";

/// The uid of [`DAEMON_USER`], if that user exists (looked up once).
pub fn daemon_uid() -> Option<u32> {
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(|| sys::uid_of_user(DAEMON_USER))
}

/// Whether `uid` is root or [`DAEMON_USER`]: the users whose writes owners take on behalf of
/// remote hosts and local callers (whatever their access policy). Writes of that kind from
/// anyone else are dropped and counted, and the write still succeeds.
pub fn is_trusted_uid(uid: u32) -> bool {
    uid == 0 || Some(uid) == daemon_uid()
}

/// Whether this process's effective user is trusted (see [`is_trusted_uid`]).
pub fn is_trusted() -> bool {
    is_trusted_uid(sys::geteuid())
}

/// Why a record cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The record is longer than [`MAX_RECORD`].
    #[error("record of {len} bytes is larger than {MAX_RECORD}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The record is not valid JSON of the expected shape.
    #[error("malformed record: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The record is of another protocol version.
    #[error("protocol version {got}, expected {PROTOCOL_VERSION}")]
    Version {
        /// The version the record carries.
        got: u32,
    },
}

#[derive(Serialize)]
struct RecordOut<'a, T> {
    v: u32,
    msg: &'a T,
}

#[derive(Deserialize)]
struct RecordIn<T> {
    v: u32,
    msg: T,
}

fn encode_record<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let bytes = serde_json::to_vec(&RecordOut {
        v: PROTOCOL_VERSION,
        msg,
    })?;
    if bytes.len() > MAX_RECORD {
        return Err(ProtocolError::TooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_RECORD {
        return Err(ProtocolError::TooLarge { len: bytes.len() });
    }
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    // The version first, so that a newer client gets a clear answer rather than a shape error.
    let Version { v } = serde_json::from_slice(bytes)?;
    if v != PROTOCOL_VERSION {
        return Err(ProtocolError::Version { got: v });
    }
    let r: RecordIn<T> = serde_json::from_slice(bytes)?;
    debug_assert_eq!(r.v, v);
    Ok(r.msg)
}

/// A mailslot write to another host (or hosts), as a writer asks the daemon for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWrite {
    /// Destination host, domain or the primary domain ([`Target::Local`] is refused).
    pub target: Target,
    /// Mailslot path after `\MAILSLOT\`.
    pub path: String,
    /// Priority 0–9.
    pub priority: u8,
    /// Class.
    pub class: Class,
    /// First class only: how long the remote side may wait for room in a full mailslot, in
    /// milliseconds; `None` waits forever (as a local first-class write does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The message (hex in the record).
    #[serde(with = "hex_data")]
    pub data: Vec<u8>,
}

/// The message bytes of a record as a hex string (half the size of a JSON array of numbers).
mod hex_data {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(data.len() * 2);
        for b in data {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s.serialize_str(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(D::Error::custom("data: not a hex digit")),
        };
        let bytes = text.as_bytes();
        if bytes.len() % 2 != 0 {
            return Err(D::Error::custom("data: odd number of hex digits"));
        }
        bytes
            .chunks_exact(2)
            .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
            .collect()
    }
}

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// Send a mailslot write to another host (or hosts); answered [`Reply::Written`].
    Write(RemoteWrite),
    /// Resolve a NetBIOS name; answered [`Reply::Resolved`].
    Resolve {
        /// The name (up to 15 characters).
        name: String,
        /// The suffix byte.
        suffix: u8,
    },
    /// The daemon's names, cache and counters; answered [`Reply::Status`].
    Status,
}

impl Request {
    /// Encodes the request as one record.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        encode_record(self)
    }

    /// Decodes a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        decode_record(bytes)
    }
}

/// The daemon's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// The write was sent.
    Written,
    /// The name resolved.
    Resolved(Resolution),
    /// The daemon's state.
    Status(Box<Status>),
    /// The request failed.
    Failed(Failure),
}

impl Reply {
    /// Encodes the reply as one record.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        encode_record(self)
    }

    /// Decodes a record.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        decode_record(bytes)
    }

    /// A failure with a Win32 error number and a message.
    pub fn failed(code: u32, message: impl Into<String>) -> Self {
        Self::Failed(Failure {
            code,
            message: message.into(),
        })
    }
}

/// A failed request: a Win32 error number (see [`crate::error::code`]) and an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Win32 error number (53 = bad network path, 87 = invalid parameter, …).
    pub code: u32,
    /// Explanation.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (error {})", self.message, self.code)
    }
}

/// One address a NetBIOS name resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// The name is a group name.
    pub group: bool,
}

/// The answer to [`Request::Resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The addresses (at least one).
    pub addresses: Vec<Address>,
    /// The name resolved, as `NAME<XX>`.
    pub name: String,
}

/// One of the daemon's own names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameStatus {
    /// `NAME<XX>`.
    pub name: String,
    /// A group name (the workgroup's) rather than a unique one.
    pub group: bool,
    /// Registration finished without objection.
    pub registered: bool,
}

/// A cached resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedName {
    /// `NAME<XX>`.
    pub name: String,
    /// The addresses; empty for a remembered failure.
    pub addresses: Vec<Address>,
}

/// The daemon's two UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// NetBIOS datagram service (138).
    pub datagram: u16,
    /// NetBIOS name service (137).
    pub name: u16,
    /// NetBIOS session service (TCP 139; 0 when the daemon does not listen: first-class writes
    /// and Messenger sessions from other hosts cannot be received).
    #[serde(default)]
    pub session: u16,
}

/// Declares a struct of `u64` counters with a [`fields`](RouterCounters::fields) listing, so that
/// the metrics text and the command-line tool need no list of names of their own.
macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fm])* pub $f: u64,)*
        }

        impl $name {
            /// Every counter as `(name, value)`, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($f), self.$f),)*]
            }
        }
    };
}

counters! {
    /// Counters of the protocol core (the router).
    pub struct RouterCounters {
        /// Datagrams received on UDP 138.
        pub datagrams_received,
        /// Name-service packets received on UDP 137.
        pub name_packets_received,
        /// Mailslot writes accepted for local delivery (including our own group writes).
        pub accepted,
        /// Dropped: datagrams that do not parse.
        pub dropped_malformed,
        /// Dropped: fragments (not reassembled).
        pub dropped_fragment,
        /// Dropped: a datagram that is not a mailslot write (other SMB, no user data).
        pub dropped_not_mailslot,
        /// Dropped: addressed to a name the daemon does not hold.
        pub dropped_not_for_us,
        /// Dropped: same source IP and DGM_ID within 2 s.
        pub dropped_duplicate,
        /// Ignored: our own datagram looped back.
        pub ignored_own,
        /// Datagrams sent.
        pub datagrams_sent,
        /// Name-service packets sent.
        pub name_packets_sent,
        /// Name queries answered.
        pub queries_answered,
        /// Negative registration responses sent in defence of our names.
        pub names_defended,
        /// Resolutions that failed.
        pub resolution_failures,
        /// Negative registration responses ignored (not an answer to one of our pending requests).
        pub ignored_objections,
        /// Dropped: name-service packets that do not parse.
        pub dropped_malformed_name,
        /// Local writes refused (too large, unresolvable).
        pub writes_failed,
        /// Name refresh requests sent to the WINS server.
        pub wins_refreshes_sent,
        /// Negative answers of the WINS server to a registration or refresh of ours.
        pub wins_refusals,
        /// Dropped: the datagram header's source IP is not the packet's source address.
        pub dropped_spoofed_source,
        /// Local requests refused for a field out of range (error 87).
        pub requests_invalid,
        /// Beside Samba: dropped, a write to a mailslot nmbd keeps for its own names (BROWSE,
        /// LANMAN, NETLOGON, NTLOGON), which this daemon cannot receive whole.
        pub dropped_kept_by_nmbd,
        /// Beside Samba: dropped, a datagram nmbd relayed cut to its 576-byte buffer.
        pub dropped_truncated_by_nmbd,
    }
}

counters! {
    /// Counters of the delivery into local mailslots (the daemon's side).
    pub struct DeliveryCounters {
        /// Messages queued into a local mailslot.
        pub delivered,
        /// Dropped: no local mailslot of that name.
        pub dropped_no_mailslot,
        /// Dropped: the mailslot is full.
        pub dropped_full,
        /// Dropped: the mailslot refuses messages from other hosts.
        pub dropped_refused_remote,
        /// Dropped: larger than the mailslot's maximum message size.
        pub dropped_too_large,
        /// Dropped: the name is not a valid local mailslot name.
        pub dropped_bad_name,
        /// Dropped: any other error.
        pub dropped_error,
        /// Dropped: the mailslot's delivery backlog in the daemon is full (its owner is not
        /// taking messages, or not accepting connections).
        pub dropped_backlog,
        /// Dropped: a local program's write that the mailslot's access policy refuses to it.
        pub dropped_access_denied,
    }
}

counters! {
    /// Counters of the NetBIOS session service (TCP 139): first-class writes between hosts and
    /// Messenger messages, received and sent.
    pub struct SessionCounters {
        /// Sessions accepted (a session request for one of our names).
        pub sessions_accepted,
        /// Session requests for a name we do not hold, refused (negative response).
        pub sessions_refused_name,
        /// Connections closed at once: too many from that address, or in all.
        pub sessions_refused_limit,
        /// Connections closed for sending nothing (no session request, or no frame) in time.
        pub sessions_idle_closed,
        /// Connections closed for a malformed or out-of-place frame.
        pub sessions_malformed,
        /// SMB requests we do not serve (answered with an error).
        pub requests_unsupported,
        /// Requests answered with an error before any delivery: a first-class write with an
        /// invalid mailslot name or priority, a Messenger text too long or with a NUL, a block
        /// of text or an end with no message started. (A daemon older than this counter sends
        /// none; it reads as 0.)
        pub requests_refused,
        /// First-class writes received.
        pub first_class_received,
        /// First-class writes received and queued into a local mailslot.
        pub first_class_delivered,
        /// First-class writes received and refused (no mailslot, refused, too large, timed out).
        pub first_class_failed,
        /// First-class writes received again after a reconnect, answered without queuing twice.
        pub first_class_repeated,
        /// Messenger messages received on sessions.
        pub messenger_received,
        /// Messenger messages delivered to the local `messngr` mailslot.
        pub messenger_delivered,
        /// Messenger messages that could not be delivered (no Messenger service runs, …).
        pub messenger_failed,
        /// First-class writes of local programs to other hosts.
        pub first_class_sent,
        /// … answered "queued" by the other host.
        pub first_class_acknowledged,
        /// … refused by the other host (its error is the writer's).
        pub first_class_refused,
        /// … failed because the other host could not be reached (53) or was lost (109).
        pub first_class_unreachable,
        /// … failed because no answer came in time (121).
        pub first_class_unanswered,
        /// Sessions opened to other hosts.
        pub sessions_opened,
        /// Sessions opened again after one was lost with writes unanswered.
        pub reconnects,
        /// Writes sent again over a new session.
        pub first_class_resent,
    }
}

counters! {
    /// Counters of the mailslot directory the daemon serves to local owners and writers (which
    /// process holds which mailslot name): [`Status::directory`].
    pub struct DirectoryStatus {
        /// Names registered now.
        pub names,
        /// Registry connections (owner processes that declared their listener) open now.
        pub registries,
        /// Connections open now (registry connections and others).
        pub connections,
        /// Registrations refused because the name already has an owner (183).
        pub refused_exists,
        /// Registrations refused by a limit on names (8).
        pub refused_limit,
        /// Records that did not decode, were too large or carried ancillary data.
        pub malformed,
        /// Connections turned away by the connection limits.
        pub connections_refused,
    }
}

impl DirectoryStatus {
    /// The fields that are levels now ([`names`](Self::names),
    /// [`registries`](Self::registries), [`connections`](Self::connections)), rising and
    /// falling; the others are totals since the daemon started.
    pub const GAUGES: [&'static str; 3] = ["names", "registries", "connections"];
}

/// The answer to [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The computer name.
    pub netbios_name: String,
    /// The primary workgroup or domain.
    pub workgroup: String,
    /// Interfaces as `ADDRESS/PREFIX`.
    pub interfaces: Vec<String>,
    /// The WINS server, if any.
    pub wins_server: Option<Ipv4Addr>,
    /// The UDP ports.
    pub ports: Ports,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// The daemon's own names.
    pub names: Vec<NameStatus>,
    /// Cached resolutions still valid, sorted by name: at most the first 256 names, with at
    /// most their first 8 addresses each, so that the status always fits one record (the cache
    /// itself may hold more of both).
    pub cache: Vec<CachedName>,
    /// Counters of the protocol core.
    pub counters: RouterCounters,
    /// Counters of the delivery into local mailslots.
    pub delivery: DeliveryCounters,
    /// How the daemon shares the host's NetBIOS ports, and why.
    #[serde(default)]
    pub mode: ModeStatus,
    /// Counters of the session service.
    #[serde(default)]
    pub session: SessionCounters,
    /// Counters of the mailslot directory; `None` when the daemon serves no directory (its
    /// address was taken, or the daemon is older than the directory).
    #[serde(default)]
    pub directory: Option<DirectoryStatus>,
}

/// Whether the daemon owns UDP 137/138 or runs beside Samba's `nmbd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Mode {
    /// The daemon owns both ports and its names.
    #[default]
    Standalone,
    /// Samba's `nmbd` owns the names and UDP 137; the daemon receives through nmbd's
    /// "unexpected" socket and a co-bound UDP 138.
    BesideSamba,
}

/// [`Status::mode`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModeStatus {
    /// The mode that runs.
    pub mode: Mode,
    /// Why this mode (configuration, option, or what was found on the host).
    pub reason: String,
    /// Beside Samba: the path of nmbd's unexpected socket.
    pub samba_socket: Option<String>,
    /// Beside Samba: connected to it now.
    pub samba_connected: bool,
    /// Beside Samba: connections made to it (more than one: nmbd restarted).
    pub samba_connections: u64,
    /// Beside Samba: datagrams nmbd relayed.
    pub samba_relayed: u64,
}

/// A connection to the local daemon.
///
/// The daemon closes connections idle for a while (and limits how many each user holds); a
/// client whose connection was closed connects again before its next request, so a long-lived
/// handle keeps working.
#[derive(Debug)]
pub struct DaemonClient {
    sock: Mutex<OwnedFd>,
    address: String,
}

fn invalid_data(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl DaemonClient {
    /// Connects to [`CONTROL_ADDRESS`]; `ErrorKind::NotFound` when no daemon runs in this network
    /// namespace.
    pub fn connect() -> io::Result<Self> {
        Self::connect_to(CONTROL_ADDRESS)
    }

    /// Connects to a daemon listening on the abstract name `address` (tests run daemons on
    /// names of their own).
    pub fn connect_to(address: &str) -> io::Result<Self> {
        Ok(Self {
            sock: Mutex::new(Self::open(address)?),
            address: address.to_string(),
        })
    }

    fn open(address: &str) -> io::Result<OwnedFd> {
        let sock = sys::seqpacket(false)?;
        match sys::connect_abstract(&sock, address.as_bytes()) {
            Ok(()) => Ok(sock),
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
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut sock = self.sock.lock().unwrap_or_else(PoisonError::into_inner);
        // Anything readable before a request is sent means the daemon closed the connection (an
        // idle one), or a late answer to an earlier call that timed out: a fresh connection
        // either way, so that this call reads its own answer.
        if sys::poll_one(sock.as_raw_fd(), libc::POLLIN, Some(Duration::ZERO))? != 0 {
            *sock = Self::open(&self.address)?;
        }
        match sys::send_parts(sock.as_raw_fd(), &[&bytes], &[], false) {
            Ok(_) => {}
            // Closed between the check and the send: nothing was sent, so send it again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                *sock = Self::open(&self.address)?;
                sys::send_parts(sock.as_raw_fd(), &[&bytes], &[], false)?;
            }
            Err(e) => return Err(e),
        }
        // A very long timeout (a first-class write that waits forever) has no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let mut buf = vec![0u8; MAX_RECORD + 1];
        loop {
            let left = deadline.map_or(POLL_SLICE, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the mailslot daemon did not answer",
                ));
            }
            sys::poll_one(sock.as_raw_fd(), libc::POLLIN, Some(left.min(POLL_SLICE)))?;
            match sys::recv_msg(sock.as_raw_fd(), &mut buf, false)? {
                None => continue,
                Some(r) if r.len == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the mailslot daemon closed the connection",
                    ))
                }
                Some(r) if r.truncated => {
                    return Err(invalid_data("reply from the mailslot daemon too large"))
                }
                Some(r) => {
                    return Reply::decode(&buf[..r.len.min(buf.len())]).map_err(|e| {
                        invalid_data(format_args!("reply from the mailslot daemon: {e}"))
                    })
                }
            }
        }
    }

    /// The daemon's [`Status`]; a refusal is an `Other` error.
    pub fn status(&self, timeout: Duration) -> io::Result<Status> {
        match self.call(&Request::Status, timeout)? {
            Reply::Status(s) => Ok(*s),
            Reply::Failed(f) => Err(io::Error::other(f.to_string())),
            other => Err(invalid_data(format_args!("unexpected reply {other:?}"))),
        }
    }

    /// Resolves `name<suffix>`: the addresses, or the daemon's [`Failure`].
    pub fn resolve(
        &self,
        name: &str,
        suffix: u8,
        timeout: Duration,
    ) -> io::Result<Result<Resolution, Failure>> {
        let req = Request::Resolve {
            name: name.to_string(),
            suffix,
        };
        match self.call(&req, timeout)? {
            Reply::Resolved(r) => Ok(Ok(r)),
            Reply::Failed(f) => Ok(Err(f)),
            other => Err(invalid_data(format_args!("unexpected reply {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let reqs = [
            Request::Write(RemoteWrite {
                target: Target::Host("SERVER".into()),
                path: "net\\netlogon".into(),
                priority: 3,
                class: Class::Second,
                timeout_ms: None,
                data: vec![1, 2, 3, 0xab, 0xff],
            }),
            Request::Write(RemoteWrite {
                target: Target::PrimaryDomain,
                path: "x".into(),
                priority: 0,
                class: Class::First,
                timeout_ms: Some(1500),
                data: vec![],
            }),
            Request::Resolve {
                name: "HOST".into(),
                suffix: 0x20,
            },
            Request::Status,
        ];
        for r in reqs {
            assert_eq!(Request::decode(&r.encode().unwrap()).unwrap(), r);
        }
        let replies = [
            Reply::Written,
            Reply::failed(53, "no such host"),
            Reply::Resolved(Resolution {
                addresses: vec![Address {
                    ip: Ipv4Addr::new(10, 0, 0, 2),
                    group: false,
                }],
                name: "HOST<20>".into(),
            }),
        ];
        for r in replies {
            assert_eq!(Reply::decode(&r.encode().unwrap()).unwrap(), r);
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let big = vec![b' '; MAX_RECORD + 1];
        let cases: [&[u8]; 9] = [
            b"",
            b"\x01\x02\x03",
            b"{}",
            b"{\"v\":2,\"msg\":{\"op\":\"status\"}}",
            b"{\"v\":1,\"msg\":{\"op\":\"launch\"}}",
            b"{\"v\":1,\"msg\":{\"op\":\"resolve\",\"name\":\"X\",\"suffix\":300}}",
            b"{\"v\":1,\"msg\":{\"op\":\"write\",\"target\":\"Local\"}}",
            b"{\"v\":1,\"msg\":[1,2",
            &big,
        ];
        for c in cases {
            assert!(
                Request::decode(c).is_err(),
                "{:?}",
                String::from_utf8_lossy(c)
            );
            assert!(Reply::decode(c).is_err());
        }
        assert!(matches!(
            Request::decode(b"{\"v\":2,\"msg\":{\"op\":\"status\"}}"),
            Err(ProtocolError::Version { got: 2 })
        ));
        assert!(matches!(
            Request::decode(&big),
            Err(ProtocolError::TooLarge { .. })
        ));
        // Every prefix of a valid record, and every byte flipped: an error or a request.
        let good = Request::Resolve {
            name: "HOST".into(),
            suffix: 0x20,
        }
        .encode()
        .unwrap();
        for n in 0..good.len() {
            assert!(Request::decode(&good[..n]).is_err());
            let mut bad = good.clone();
            bad[n] ^= 0xA5;
            let _ = Request::decode(&bad);
        }
    }

    #[test]
    fn status_keeps_its_json_keys() {
        let s = Status {
            netbios_name: "HOSTA".into(),
            workgroup: "LAB".into(),
            interfaces: vec!["10.0.0.1/24".into()],
            wins_server: Some(Ipv4Addr::new(10, 0, 0, 3)),
            ports: Ports {
                datagram: 138,
                name: 137,
                session: 139,
            },
            uptime_s: 5,
            names: vec![NameStatus {
                name: "HOSTA<00>".into(),
                group: false,
                registered: true,
            }],
            cache: vec![],
            counters: RouterCounters::default(),
            delivery: DeliveryCounters::default(),
            mode: ModeStatus::default(),
            session: SessionCounters::default(),
            directory: Some(DirectoryStatus {
                names: 2,
                registries: 1,
                connections: 3,
                refused_exists: 4,
                ..DirectoryStatus::default()
            }),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["netbios_name"], "HOSTA");
        assert_eq!(v["wins_server"], "10.0.0.3");
        assert_eq!(v["names"][0]["registered"], true);
        assert_eq!(v["counters"]["dropped_duplicate"], 0);
        assert_eq!(v["ports"]["datagram"], 138);
        assert_eq!(s.counters.fields().len(), 23);
        assert_eq!(v["mode"]["mode"], "standalone");
        assert_eq!(v["session"]["first_class_repeated"], 0);
        assert_eq!(v["ports"]["session"], 139);
        // A status without `mode` (an older daemon) still reads.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("mode");
        let back: Status = serde_json::from_value(old).unwrap();
        assert_eq!(back.mode, ModeStatus::default());
        assert_eq!(v["directory"]["names"], 2);
        assert_eq!(v["directory"]["registries"], 1);
        assert_eq!(v["directory"]["connections"], 3);
        assert_eq!(v["directory"]["refused_exists"], 4);
        assert_eq!(v["directory"]["connections_refused"], 0);
        let directory = s.directory.as_ref().unwrap();
        assert_eq!(directory.fields().len(), 7);
        for g in DirectoryStatus::GAUGES {
            assert!(directory.fields().iter().any(|(k, _)| *k == g), "{g}");
        }
        let reply = Reply::Status(Box::new(s.clone()));
        assert_eq!(Reply::decode(&reply.encode().unwrap()).unwrap(), reply);
        // A daemon without a directory says `null`.
        let none = Status {
            directory: None,
            ..s.clone()
        };
        let v_none = serde_json::to_value(&none).unwrap();
        assert!(v_none["directory"].is_null());
        assert_eq!(serde_json::from_value::<Status>(v_none).unwrap(), none);
        // A status without `directory` (a daemon older than the directory) still reads: none.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("directory");
        let record = format!("{{\"v\":1,\"msg\":{{\"reply\":\"status\",{}}}}}", {
            let body = serde_json::to_string(&old).unwrap();
            body[1..body.len() - 1].to_string()
        });
        let Reply::Status(back) = Reply::decode(record.as_bytes()).unwrap() else {
            panic!("not a status");
        };
        assert_eq!(back.directory, None);
        assert_eq!(back.netbios_name, "HOSTA");
        // Counters a newer daemon adds to the directory's are ignored; missing ones read 0.
        let partial: DirectoryStatus =
            serde_json::from_str(r#"{"names":5,"something_new":1}"#).unwrap();
        assert_eq!(
            partial,
            DirectoryStatus {
                names: 5,
                ..DirectoryStatus::default()
            }
        );
    }
}
