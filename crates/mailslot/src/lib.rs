//! Mailslots for Linux: the mailslot facility of Windows NT and LAN Manager.
//!
//! A process **creates** a mailslot by name and is its only reader; any number of processes
//! **write** messages to it by name. Each write is one message. Reads return one whole message,
//! highest priority (9) first and first-in-first-out within a priority, across all writers.
//! The mailslot and its queue vanish when the owner's handle is dropped or its process dies —
//! unless the handle was shared: see [`Mailslot::share`], [`Mailslot::inheritable`] and
//! [`Mailslot::send_handle`]; then it lives until its last holder, in any process, closes.
//!
//! ```
//! use mailslot::{Mailslot, MailslotWriter, WriteOptions};
//! # let name = format!(r"\\.\mailslot\doc\example{}", std::process::id());
//! let slot = Mailslot::create(&name)?;                // the owner: only it reads
//! let writer = MailslotWriter::open(&name)?;          // any allowed process may write
//! writer.write(b"low")?;
//! writer.write_with(b"urgent", WriteOptions::new().priority(9))?;
//! assert_eq!(slot.read_message()?.data, b"urgent");   // priority 9 first
//! assert_eq!(slot.read_message()?.data, b"low");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Names, behaviour and error codes follow Windows and LAN Manager; see [`name`] for the accepted
//! forms, [`error`] for the error numbers and the choices made where Windows is silent.
//!
//! # Limits and defaults
//! - [`MAX_MESSAGE_SIZE`] (64 KiB) is the largest message; a `max_message_size` of 0 means "up to
//!   that".
//! - [`DEFAULT_QUOTA`] (1 MiB) of queued data and [`DEFAULT_MAX_MESSAGES`] queued messages per
//!   mailslot, unless set at create.
//! - Writers' open waits up to [`DEFAULT_OPEN_TIMEOUT`] for the owner's process to answer.
//!
//! # Threads
//! No thread per mailslot: one service thread per process (started with the first mailslot it
//! creates) keeps writers flowing while the owner is busy elsewhere; see the transport notes in
//! `ARCHITECTURE.md`. Handles are `Send + Sync`. After `fork`, the child's copy of a `Mailslot`
//! must not be used there; to read in a child, make the handle inheritable
//! ([`Mailslot::inheritable`]) and take it up there with [`Mailslot::inherited`].
//!
//! ```
//! use mailslot::{Mailslot, MailslotWriter};
//! # let name = format!(r"\\.\mailslot\doc\shared{}", std::process::id());
//! let slot = Mailslot::create(&name)?;
//! // A second holder (here in the same process; usually another one, see `send_handle`).
//! let other = Mailslot::from_shared(slot.share()?)?;
//! MailslotWriter::open(&name)?.write(b"hello")?;
//! drop(slot); // the mailslot lives on in `other`
//! assert_eq!(other.read_message()?.data, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod daemon;
pub mod directory;
pub mod error;
pub mod name;
pub mod policy;
pub mod trusted;

mod queue;
mod shm;
mod sys;
mod transport;
mod types;

#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

pub use error::{CreateError, OpenError, ReadError, ShareError, WriteError};
pub use name::{Name, NameError, Target};
pub use transport::slot::Counters;
pub use types::{
    Access, AccessPolicy, Class, Info, Message, Owner, RemoteName, Sender, Timeout, WriteOptions,
    MAX_PRIORITY,
};

use transport::slot::{Config, Slot, Take, Taken};

/// Largest message the implementation accepts (64 KiB).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Default quota: bytes of queued data per mailslot.
pub const DEFAULT_QUOTA: usize = 1024 * 1024;
/// Default limit of queued messages per mailslot (bounds the cost of zero-length messages).
pub const DEFAULT_MAX_MESSAGES: usize = 65_536;
/// How long [`MailslotWriter::open`] waits for the owner's process to answer.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for creating a mailslot; start from [`Mailslot::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    max_message_size: usize,
    quota: Option<usize>,
    max_messages: usize,
    read_timeout: Timeout,
    access: Access,
    accept_remote: bool,
    spin: Duration,
}

/// Default of [`Builder::spin`].
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

impl Default for Builder {
    fn default() -> Self {
        Self {
            max_message_size: 0,
            quota: None,
            max_messages: DEFAULT_MAX_MESSAGES,
            read_timeout: Timeout::Forever,
            access: Access::Owner,
            accept_remote: true,
            spin: DEFAULT_SPIN,
        }
    }
}

impl Builder {
    /// Largest message accepted; 0 (the default) means [`MAX_MESSAGE_SIZE`] (or the quota, if
    /// smaller).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Bytes of queued data allowed (default [`DEFAULT_QUOTA`]). Must be at least the maximum
    /// message size.
    pub fn quota(mut self, bytes: usize) -> Self {
        self.quota = Some(bytes);
        self
    }

    /// Queued messages allowed (default [`DEFAULT_MAX_MESSAGES`]).
    pub fn max_messages(mut self, n: usize) -> Self {
        self.max_messages = n;
        self
    }

    /// Read timeout (default forever): applies to every read that does not give its own.
    pub fn read_timeout(mut self, t: impl Into<Timeout>) -> Self {
        self.read_timeout = t.into();
        self
    }

    /// Who may write (default: the owner's user and root).
    pub fn access(mut self, a: Access) -> Self {
        self.access = a;
        self
    }

    /// Whether messages from other hosts (delivered by the mailslot daemon) are accepted
    /// (default true). Refused ones are dropped silently and counted, as Windows does.
    pub fn accept_remote(mut self, yes: bool) -> Self {
        self.accept_remote = yes;
        self
    }

    /// How long a read that finds the mailslot empty polls for a message (without a system call)
    /// before it sleeps (default [`DEFAULT_SPIN`], 20 µs). Waking a sleeping process costs tens of
    /// microseconds, so a short poll makes request/response traffic much faster; zero never polls.
    pub fn spin(mut self, d: Duration) -> Self {
        self.spin = d;
        self
    }

    /// Creates the mailslot `name` on this host.
    ///
    /// Errors: `InvalidName`, `RemoteName`, `AlreadyExists`, `InvalidParameter`, `NotAllowed`
    /// (the name policy, [`policy`], does not allow this process's user and groups to serve the
    /// name), `Policy` (the policy file is broken), `Io`.
    pub fn create(self, name: &str) -> Result<Mailslot, CreateError> {
        self.create_owned_by(name, sys::geteuid(), &sys::own_groups())
    }

    /// [`create`](Self::create) for a process of user `owner_uid` in `groups` (primary and
    /// supplementary): the name policy is applied to them, and `owner_uid` is the access
    /// policy's owner (see [`trusted`]).
    fn create_owned_by(
        self,
        name: &str,
        owner_uid: u32,
        groups: &[u32],
    ) -> Result<Mailslot, CreateError> {
        let name = Name::parse(name)?;
        if !name.is_local() {
            return Err(CreateError::RemoteName(name.to_string()));
        }
        let names = policy::Policy::load().map_err(CreateError::Policy)?;
        if !names.check(&name, owner_uid, groups).is_allowed() {
            return Err(CreateError::NotAllowed {
                name: name.to_string(),
                uid: owner_uid,
            });
        }
        if self.max_message_size > MAX_MESSAGE_SIZE {
            return Err(CreateError::InvalidParameter(format!(
                "max_message_size {} is above the limit of {MAX_MESSAGE_SIZE} bytes",
                self.max_message_size
            )));
        }
        if self.max_messages == 0 {
            return Err(CreateError::InvalidParameter(
                "max_messages must be at least 1".into(),
            ));
        }
        let quota = self
            .quota
            .unwrap_or(DEFAULT_QUOTA.max(self.max_message_size));
        if quota == 0 {
            return Err(CreateError::InvalidParameter(
                "quota must be at least 1 byte".into(),
            ));
        }
        let max_message_size = match self.max_message_size {
            0 => MAX_MESSAGE_SIZE.min(quota),
            n if n > quota => {
                return Err(CreateError::InvalidParameter(format!(
                    "quota {quota} is smaller than the maximum message size {n}"
                )))
            }
            n => n,
        };
        let config = Config {
            name,
            max_message_size,
            quota,
            max_messages: self.max_messages,
            access: self.access,
            owner_uid,
            accept_remote: self.accept_remote,
            spin: self.spin,
        };
        Ok(Mailslot {
            slot: Slot::create(config, self.read_timeout)?,
        })
    }
}

/// The owner's handle of a mailslot: the only kind that reads. Dropping it deletes the mailslot,
/// unless the handle was shared with other holders ([`share`](Self::share)): then the last
/// holder's close does.
pub struct Mailslot {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for Mailslot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailslot")
            .field("name", &self.slot.config.name.to_string())
            .finish_non_exhaustive()
    }
}

/// Result of [`Mailslot::read`] and [`Mailslot::peek`]: what was copied into the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    /// Bytes copied (the whole message).
    pub len: usize,
    /// The message's priority.
    pub priority: u8,
    /// The message's class.
    pub class: Class,
    /// Who sent it.
    pub sender: Sender,
}

fn copied(t: Taken) -> ReadInfo {
    match t {
        Taken::Copied {
            len,
            priority,
            class,
            sender,
        } => ReadInfo {
            len,
            priority,
            class,
            sender,
        },
        Taken::Message(m) => ReadInfo {
            len: m.data.len(),
            priority: m.priority,
            class: m.class,
            sender: m.sender,
        },
    }
}

fn whole(t: Taken) -> Message {
    match t {
        Taken::Message(m) => m,
        Taken::Copied { .. } => unreachable!("message requested"),
    }
}

impl Mailslot {
    /// Creates a mailslot with the defaults (no size limit below [`MAX_MESSAGE_SIZE`],
    /// [`DEFAULT_QUOTA`], wait forever, owner-only access).
    pub fn create(name: &str) -> Result<Self, CreateError> {
        Builder::default().create(name)
    }

    /// Options for [`Builder::create`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The mailslot's name.
    pub fn name(&self) -> &Name {
        &self.slot.config.name
    }

    /// Reads the next message into `buf` and removes it, waiting up to the read timeout.
    ///
    /// `BufferTooSmall { needed }` leaves the message queued.
    pub fn read(&self, buf: &mut [u8]) -> Result<ReadInfo, ReadError> {
        self.slot.take(Take::Read(buf), None).map(copied)
    }

    /// Like [`read`](Self::read) with its own timeout instead of the mailslot's.
    pub fn read_timeout_with(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
    ) -> Result<ReadInfo, ReadError> {
        self.slot.take(Take::Read(buf), Some(timeout)).map(copied)
    }

    /// Removes and returns the next message, waiting up to the read timeout.
    pub fn read_message(&self) -> Result<Message, ReadError> {
        self.slot.take(Take::ReadMessage, None).map(whole)
    }

    /// Like [`read_message`](Self::read_message) with its own timeout.
    pub fn read_message_timeout(&self, timeout: Timeout) -> Result<Message, ReadError> {
        self.slot.take(Take::ReadMessage, Some(timeout)).map(whole)
    }

    /// Copies the next message into `buf` without removing it; `Ok(None)` when empty (peek never
    /// waits). `BufferTooSmall` when it does not fit.
    pub fn peek(&self, buf: &mut [u8]) -> Result<Option<ReadInfo>, ReadError> {
        match self.slot.take(Take::Peek(buf), Some(Timeout::ZERO)) {
            Ok(t) => Ok(Some(copied(t))),
            Err(ReadError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A copy of the next message, left queued; `Ok(None)` when empty.
    pub fn peek_message(&self) -> Result<Option<Message>, ReadError> {
        match self.slot.take(Take::PeekMessage, Some(Timeout::ZERO)) {
            Ok(t) => Ok(Some(whole(t))),
            Err(ReadError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Limits and the state of the queue.
    pub fn info(&self) -> Info {
        let s = self.slot.status();
        Info {
            max_message_size: self.slot.config.max_message_size,
            quota: self.slot.config.quota,
            next_size: s.next_size,
            next_priority: s.next_priority,
            count: s.count,
            read_timeout: s.read_timeout,
        }
    }

    /// Changes the read timeout (the only setting that can change, as with `SetMailslotInfo`).
    pub fn set_read_timeout(&self, t: impl Into<Timeout>) {
        self.slot.lock().read_timeout = t.into();
    }

    /// Counters since creation: messages dropped because a writer broke the protocol, writers
    /// refused by the access policy, network messages refused (see [`Builder::accept_remote`]).
    pub fn counters(&self) -> Counters {
        self.slot.counters()
    }

    /// Deletes the mailslot now, for every holder of its handle: queued messages are discarded,
    /// writers get [`WriteError::OwnerGone`], other holders' reads get [`ReadError::Deleted`],
    /// and the name is free as soon as every holder's process has seen it (at once when this is
    /// the only holder). Dropping a handle instead only lets go of this holder: the mailslot
    /// lives until its last handle, in any process, is closed.
    pub fn delete(self) {
        self.slot.delete();
    }

    /// A new descriptor for this owner handle, to hand to another process (close-on-exec set).
    ///
    /// The receiving process takes it up with [`Mailslot::from_shared`]; from then on both hold
    /// the mailslot: either may read (each message is read once; reads are serialised), and the
    /// mailslot, its name and its messages live until the last holder closes (or its process
    /// dies). The descriptor itself keeps the mailslot alive until it is closed or taken up,
    /// or until a holder calls [`delete`](Self::delete) (taking it up then gives
    /// [`ShareError::Deleted`]).
    ///
    /// The first call moves the queue into memory shared by the holders (a mailslot that is
    /// never shared keeps it in its process).
    pub fn share(&self) -> Result<OwnedFd, ShareError> {
        self.slot.share()
    }

    /// Takes up a descriptor made by [`share`](Self::share) (in this or another process,
    /// received over a Unix socket or inherited). `NotAMailslot` when it is something else.
    pub fn from_shared(fd: OwnedFd) -> Result<Self, ShareError> {
        Ok(Self {
            slot: Slot::from_shared(fd)?,
        })
    }

    /// Makes this handle inheritable, like `bInheritHandle` of Win32: returns the number of a
    /// descriptor without close-on-exec that this handle keeps open (the same number on every
    /// call), so that children started with `fork` + `exec` inherit it. The child takes it up
    /// with [`Mailslot::inherited`], given the number (on its command line, for example).
    pub fn inheritable(&self) -> Result<RawFd, ShareError> {
        self.slot.inheritable()
    }

    /// Takes up an owner handle this process inherited as descriptor `fd` (see
    /// [`inheritable`](Self::inheritable)). The descriptor is duplicated, not taken over: the
    /// caller may close `fd` afterwards (and should, when it does not pass it on).
    pub fn inherited(fd: RawFd) -> Result<Self, ShareError> {
        Self::from_shared(sys::dup_cloexec(fd).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBADF) {
                ShareError::NotAMailslot(format!("descriptor {fd} is not open"))
            } else {
                ShareError::Io(e)
            }
        })?)
    }

    /// Passes this owner handle to the process at the other end of a Unix socket
    /// (`SCM_RIGHTS`), the equivalent of `DuplicateHandle` into that process. It takes it up
    /// with [`Mailslot::receive_handle`].
    pub fn send_handle(&self, socket: &std::os::unix::net::UnixStream) -> Result<(), ShareError> {
        let fd = self.share()?;
        sys::send_fd(socket, &fd)?;
        Ok(())
    }

    /// Receives an owner handle sent with [`send_handle`](Self::send_handle) on a Unix socket.
    pub fn receive_handle(socket: &std::os::unix::net::UnixStream) -> Result<Self, ShareError> {
        let fd = sys::recv_fd(socket)?.ok_or_else(|| {
            ShareError::NotAMailslot("no descriptor arrived on the socket".into())
        })?;
        Self::from_shared(fd)
    }

    /// A descriptor that polls readable when a message may be ready.
    ///
    /// For event loops: wait for it, then call a read with [`Timeout::ZERO`]; it can be readable
    /// without a message being ready (a writer connecting), so treat `Timeout` as "wait again".
    /// Waiting on it directly does not pause the service thread; the `tokio` feature's `AsyncMailslot` does that.
    /// For a handle shared with other processes, the service thread also looks at the mailslot
    /// every 500 ms from then on and makes the descriptor readable if a message is queued (a
    /// holder killed in a read may have told writers not to wake anyone).
    ///
    /// The descriptor is made on first use (an idle mailslot holds only its listening socket);
    /// `-1` if that fails (out of descriptors).
    pub fn as_raw_fd(&self) -> RawFd {
        self.slot.wait_fd().unwrap_or(-1)
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for Mailslot {
    fn drop(&mut self) {
        self.slot.close();
    }
}

/// A writer's handle of a mailslot: on this host, or on other hosts through the mailslot daemon.
pub struct MailslotWriter {
    name: Name,
    inner: WriterInner,
}

enum WriterInner {
    Local(Box<transport::writer::Connection>),
    Remote(daemon::DaemonClient),
}

impl std::fmt::Debug for MailslotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailslotWriter")
            .field("name", &self.name.to_string())
            .finish_non_exhaustive()
    }
}

/// How long a remote write waits for the daemon's answer (name resolution included).
const DAEMON_TIMEOUT: Duration = Duration::from_secs(15);
/// The wait for a first-class remote write without a timeout (the daemon answers when the
/// connection to the other host fails, so this only ends a wait for a daemon that hangs).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl MailslotWriter {
    /// Opens the mailslot `name` for writing.
    ///
    /// Local names connect to the owner. Remote names (`\\HOST\mailslot\x`, `\\*\mailslot\x`)
    /// connect to the mailslot daemon of this host, which sends each message as a NetBIOS
    /// datagram.
    ///
    /// Errors: `InvalidName`, `NotFound` (no such mailslot), `AccessDenied` (its access policy
    /// does not admit this user), `OwnerNotAllowed` (the name policy, [`policy`], does not allow
    /// the owner's user to serve this name: nothing is sent), `Policy` (the policy file is
    /// broken), `Remote` (a remote name and no daemon running), `NotResponding` (the owner's
    /// process did not answer within [`DEFAULT_OPEN_TIMEOUT`]).
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::open_timeout(name, DEFAULT_OPEN_TIMEOUT)
    }

    /// Like [`open`](Self::open), waiting at most `timeout` for the owner to answer.
    pub fn open_timeout(name: &str, timeout: Duration) -> Result<Self, OpenError> {
        let name = Name::parse(name)?;
        let inner = if name.is_local() {
            WriterInner::Local(Box::new(transport::writer::Connection::open(
                &name, timeout,
            )?))
        } else {
            WriterInner::Remote(
                daemon::DaemonClient::connect().map_err(|e| OpenError::Remote {
                    name: name.to_string(),
                    reason: e.to_string(),
                })?,
            )
        };
        Ok(Self { name, inner })
    }

    /// The name this handle writes to.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The largest message this handle can write: the mailslot's maximum, or for a remote name
    /// the most one datagram carries (`432 − roundup4(path length)` bytes).
    pub fn max_message_size(&self) -> usize {
        match &self.inner {
            WriterInner::Local(c) => c.greeting.max_message_size as usize,
            WriterInner::Remote(_) => mailslot_proto::max_network_payload(&self.name.wire_name()),
        }
    }

    /// The mailslot's quota in bytes (0 for a remote name: unknown).
    pub fn quota(&self) -> usize {
        match &self.inner {
            WriterInner::Local(c) => c.greeting.quota as usize,
            WriterInner::Remote(_) => 0,
        }
    }

    /// The owner's process, user and group (`None` for a remote name), as the kernel reported
    /// them for the process that serves the name (`SO_PEERCRED`), not as the owner claims.
    pub fn owner(&self) -> Option<Owner> {
        match &self.inner {
            WriterInner::Local(c) => Some(Owner {
                pid: c.owner.pid,
                uid: c.owner.uid,
                gid: c.owner.gid,
            }),
            WriterInner::Remote(_) => None,
        }
    }

    /// Whether the owner has gone: it closed or deleted the mailslot, or its process died, so
    /// that every write on this handle fails with `OwnerGone` (even if a new owner has taken
    /// the name since: open it again to reach that one). Asks the kernel (one `poll`, nothing
    /// is sent). Always `false` for a remote name.
    pub fn owner_gone(&self) -> bool {
        match &self.inner {
            WriterInner::Local(c) => c.hung_up(),
            WriterInner::Remote(_) => false,
        }
    }

    /// Whether the owner accepts messages from other hosts (`true` for a remote name).
    pub fn accepts_remote(&self) -> bool {
        match &self.inner {
            WriterInner::Local(c) => c.greeting.accepts_remote,
            WriterInner::Remote(_) => true,
        }
    }

    /// Writes one message: priority 0, second class.
    pub fn write(&self, data: &[u8]) -> Result<(), WriteError> {
        self.write_with(data, WriteOptions::default())
    }

    /// Writes one message with a priority, class and (first class) timeout.
    ///
    /// For a remote name (through the mailslot daemon, see [`daemon`]): second class is one
    /// datagram and the timeout does not apply; first class to one host returns when that
    /// host's mailslot has queued the message, or with why not (`Network { code }`: 2 no such
    /// mailslot, 5 refused, 87 too large, 121 timed out waiting for room, 53 host unreachable,
    /// 109 connection lost); the timeout bounds the wait for room there. First class to a
    /// group (`\\DOMAIN\…`, `\\*\…`) fails with 87: it cannot be broadcast.
    pub fn write_with(&self, data: &[u8], opts: WriteOptions) -> Result<(), WriteError> {
        match &self.inner {
            WriterInner::Local(c) => c.write(data, opts, None),
            WriterInner::Remote(d) => self.write_remote(d, data, opts),
        }
    }

    fn write_remote(
        &self,
        d: &daemon::DaemonClient,
        data: &[u8],
        opts: WriteOptions,
    ) -> Result<(), WriteError> {
        if opts.priority > MAX_PRIORITY {
            return Err(WriteError::InvalidPriority(opts.priority));
        }
        let first = opts.class == Class::First;
        let max = if first {
            daemon::MAX_FIRST_CLASS_NETWORK
        } else {
            self.max_message_size()
        };
        if data.len() > max {
            // A datagram's limit is Windows' 53; a first-class write's is the mailslot's 87.
            return Err(if first {
                WriteError::TooLarge {
                    size: data.len(),
                    max,
                }
            } else {
                WriteError::TooLargeForNetwork {
                    size: data.len(),
                    max,
                }
            });
        }
        let (timeout_ms, wait) = match (first, opts.timeout) {
            (false, _) => (None, DAEMON_TIMEOUT),
            (true, Timeout::Forever) => (None, FOREVER),
            (true, Timeout::After(t)) => (
                Some(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                t.saturating_add(DAEMON_TIMEOUT),
            ),
        };
        let req = daemon::Request::Write(daemon::RemoteWrite {
            target: self.name.target().clone(),
            path: self.name.path().to_string(),
            priority: opts.priority,
            class: opts.class,
            timeout_ms,
            data: data.to_vec(),
        });
        match d.call(&req, wait)? {
            daemon::Reply::Written => Ok(()),
            daemon::Reply::Failed(f) => Err(WriteError::Network {
                code: f.code,
                message: f.message,
            }),
            other => Err(WriteError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected reply from the mailslot daemon: {other:?}"),
            ))),
        }
    }
}

/// Opens `name`, writes one message and closes it, like LAN Manager's `DosWriteMailslot`.
///
/// The write's timeout bounds only the wait for room (first class); opening waits up to
/// [`DEFAULT_OPEN_TIMEOUT`] for the owner's process to answer, as [`MailslotWriter::open`] does.
pub fn write_mailslot(name: &str, data: &[u8], opts: WriteOptions) -> Result<(), WriteError> {
    MailslotWriter::open(name)?.write_with(data, opts)
}

/// A mailslot that exists on this host, from [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The name (in its comparison form: lower case).
    pub name: Name,
    /// The owner's process id, when this process may see it.
    pub owner_pid: Option<u32>,
    /// The owner's user id, when known.
    pub owner_uid: Option<u32>,
}

/// The mailslots of this host (this network namespace): from `/proc/net/unix`, and from the
/// daemon's directory when one runs.
pub fn list() -> std::io::Result<Vec<ListEntry>> {
    transport::list::list()
}
