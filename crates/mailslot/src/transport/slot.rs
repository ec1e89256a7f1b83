//! Owner side of one mailslot: listener, writer connections, the queue, reading and waiting.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::registry::Registered;
use super::service::{self, Service};
use super::{
    address, decode_behalf, decode_header, decode_remote, Greeting, Refusal, BEHALF_LEN,
    FLAG_BEHALF, FLAG_REMOTE, HEADER_LEN, REMOTE_LEN,
};
use crate::error::{CreateError, ReadError};
use crate::name::Name;
use crate::queue::{Entry, Queue};
use crate::shm::store::{self, NewRecord, RingPos, Store};
use crate::shm::{self, Control, ControlFds, Record, RingReader, Wake, REC_BEHALF, REC_REMOTE};
use crate::sys::{self, PeerCred};
use crate::types::{Access, Class, Message, Sender, Timeout};

const TOKEN_LISTENER: u64 = u64::MAX;
/// The doorbell of a shared slot in the slot's epoll (edge-triggered: nobody reads it).
const TOKEN_DOORBELL: u64 = u64::MAX - 1;
/// What the first message of a shared handle's socket says (the descriptors come with it).
const CORE_MAGIC: &[u8; 8] = b"MSCORE1\0";
/// Descriptors of the core message: listener, store, control page (read-write, read-only),
/// doorbell, the park's two ends.
const CORE_FDS: usize = 7;
/// Writer connections per park message (two descriptors each).
const PARK_PAIRS: usize = sys::MAX_PASS_FDS / 2;
/// What one message in the park costs of its send buffer, at most (the kernel counts each
/// queued record's buffer, ≈ 770 bytes for one that passes descriptors).
const PARK_MESSAGE_COST: usize = 1024;
/// Messages the park keeps room for beyond new connections: a round sends a marker and each
/// message again before it takes it off, and packing sends a message before taking any off.
const PARK_HEADROOM: usize = 4;
/// The send buffer a new park asks for (the kernel gives at most `net.core.wmem_max`).
const PARK_BUFFER: usize = 4 << 20;
/// Connections one user other than root, the owner's user and the daemon's may hold open to one
/// mailslot; more are refused with [`Refusal::Busy`], so that nobody can use up the owner's
/// descriptors.
pub(crate) const MAX_CONNS_PER_UID: u32 = 256;
/// Connections the owner keeps in all; more are refused with [`Refusal::Busy`], except from root
/// and the owner's user.
const MAX_CONNS: usize = 8192;
/// Largest record accepted over a socket (the fallback path).
const SOCKET_RECORD_MAX: usize = HEADER_LEN + REMOTE_LEN + crate::MAX_MESSAGE_SIZE;

/// Root and the daemon's user may deliver messages on behalf of remote hosts and local callers.
fn is_daemon(cred: &PeerCred) -> bool {
    is_trusted_uid(cred.uid)
}

pub(crate) use crate::daemon::is_trusted_uid;

/// The access policy of a slot owned by `owner_uid`: whether the user `uid` with primary group
/// `gid` may write. `in_group(g)` says whether the user's supplementary groups include `g` (asked
/// only for [`Access::Group`] when `gid` is not `g`).
pub(crate) fn policy_admits(
    owner_uid: u32,
    access: Access,
    uid: u32,
    gid: u32,
    in_group: impl FnOnce(u32) -> bool,
) -> bool {
    if uid == owner_uid || is_trusted_uid(uid) {
        return true;
    }
    match access {
        Access::Owner => false,
        Access::Everyone => true,
        Access::Group(g) => gid == g || in_group(g),
    }
}
/// A busy reader reads the sockets (new writers, hang-ups) at least once per this many reads.
const DRAIN_EVERY: u32 = 64;

/// Longest sleep of a reader of a shared slot before it looks again (see `read`).
pub(crate) const SHARED_LOOK_EVERY: Duration = Duration::from_millis(500);
/// How long a reader polls before it starts yielding the CPU between polls.
const SPIN_BEFORE_YIELD: Duration = Duration::from_micros(4);
/// Spins in a row without a message after which a reader stops spinning.
const SPIN_MAX_MISSES: u32 = 8;
/// While spinning is off, one wait in this many spins again (to notice that it would pay off).
const SPIN_PROBE_EVERY: u32 = 32;
/// Futex sleeps in a row that bring nothing to read after which readers sleep in `epoll`.
const FUTEX_MAX_MISSES: u32 = 8;
/// While futex sleeps are off, one sleep in this many tries one again.
const FUTEX_PROBE_EVERY: u32 = 64;
/// Most writer rings a reader sleeps on with one `futex_waitv` (the call takes 128 words, one
/// of them the reader's own); with more, it sleeps in `epoll`.
const FUTEX_MAX_RINGS: usize = 127;
/// Whether `futex_waitv` works here (an older kernel or a system call filter may refuse it;
/// readers then sleep in `epoll`).
static FUTEX_WORKS: AtomicBool = AtomicBool::new(true);
/// Messages taken from one connection per drain before moving on (fairness between writers).
const PER_CONN_BATCH: usize = 4096;
/// Rounds of socket events (64 each) one drain reads at most.
const DRAIN_ROUNDS: usize = 4;
/// Connections one drain accepts at most.
const ACCEPTS_PER_DRAIN: usize = 64;

/// Counters of a mailslot since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records dropped because a writer broke the protocol (malformed, over the limits, or a
    /// remote-sender record from a process that is not the daemon).
    pub dropped: u64,
    /// Writers refused by the access policy.
    pub refused_writers: u64,
    /// Network messages refused because the mailslot does not accept remote messages.
    pub refused_remote: u64,
    /// Writers dropped because they broke the record format of their ring.
    pub dropped_writers: u64,
    /// Messages a trusted process wrote on behalf of a local caller that the access policy does
    /// not admit (see [`crate::trusted`]); dropped.
    pub refused_behalf: u64,
}

/// Fixed settings of a slot.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub name: Name,
    pub max_message_size: usize,
    pub quota: usize,
    pub max_messages: usize,
    pub access: Access,
    pub owner_uid: u32,
    pub accept_remote: bool,
    /// How long a reader polls for a message before it goes to sleep.
    pub spin: Duration,
}

struct Conn {
    fd: OwnedFd,
    cred: PeerCred,
    /// The writer's ring (`None`: it writes records on the socket, the fallback path).
    ring: Option<RingReader>,
    /// The ring's descriptor (kept so that the handle can be shared: other holders get it).
    ring_fd: Option<OwnedFd>,
    /// The connection's entry in the shared store's table (`u32::MAX`: not shared).
    idx: u32,
    /// The connection socket's inode (0 until the slot is shared): what a message's origin says.
    ino: u64,
    /// This writer's messages in the queue: a writer that follows the protocol never has more
    /// than the quota on its own, so records past that are a writer's misbehaviour (dropped).
    queued_bytes: usize,
    queued_count: usize,
    /// The writer hung up while its ring still held records: the connection stays (out of the
    /// epoll) until they are read or taken in (a private slot's, see `Slot::keep_ring`), or
    /// until a shared store has room for them.
    closing: bool,
    /// A private slot's writer that hung up with records in its ring: the ring's totals
    /// taken in (message bytes, messages) once every record it left is. Until then what is
    /// left counts in the published totals (see `Slot::held`): no writer counts it any more.
    owed: Option<(u64, u64)>,
}

impl Conn {
    /// The ring's read position and this writer's share, as the shared store keeps them.
    fn ring_pos(&self) -> RingPos {
        let (head, bytes, count) = self.ring.as_ref().map_or((0, 0, 0), RingReader::position);
        RingPos {
            head,
            bytes,
            count,
            queued_bytes: self.queued_bytes as u64,
            queued_count: self.queued_count as u64,
        }
    }
}

/// Service-thread state of a slot (see `service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arming {
    /// Registered in the service epoll, one-shot.
    Armed,
    /// Not armed: the service fired, or a reader is waiting.
    Idle,
    /// Closed; never re-armed.
    Closed,
}

/// What connections that hung up still have queued (a private slot's queue), per user, so that
/// it counts in that user's share (see `Slot::within_share`).
#[derive(Default)]
struct Orphans {
    /// Per user: bytes and messages.
    by_uid: HashMap<u32, (usize, usize)>,
    /// Per connection that hung up: its user and how many of its messages are still queued.
    gone: HashMap<u64, (u32, usize)>,
}

impl Orphans {
    /// What `uid`'s connections that hung up still have queued (bytes, messages).
    fn of(&self, uid: u32) -> (usize, usize) {
        self.by_uid.get(&uid).copied().unwrap_or_default()
    }

    /// Connection `id` of `uid` hung up with `count` messages of `bytes` in all queued.
    fn add(&mut self, id: u64, uid: u32, bytes: usize, count: usize) {
        let o = self.by_uid.entry(uid).or_default();
        o.0 += bytes;
        o.1 += count;
        self.gone.insert(id, (uid, count));
    }

    /// A message of `len` bytes from connection `origin` left the queue (nothing if that
    /// connection did not hang up, or left nothing counted).
    fn remove(&mut self, origin: u64, len: usize) {
        let Some((uid, left)) = self.gone.get_mut(&origin) else {
            return;
        };
        let uid = *uid;
        *left -= 1;
        if *left == 0 {
            self.gone.remove(&origin);
        }
        if let Some(o) = self.by_uid.get_mut(&uid) {
            o.0 -= len.min(o.0);
            o.1 = o.1.saturating_sub(1);
            if o.1 == 0 {
                self.by_uid.remove(&uid);
            }
        }
    }
}

pub(crate) struct State {
    queue: Queue,
    conns: Conns,
    /// Open connections per user.
    per_uid: HashMap<u32, u32>,
    /// What connections that hung up still have queued (private slots).
    orphans: Orphans,
    /// Connections with records `owed` (see `Conn::owed`).
    owing: usize,
    listener: Option<OwnedFd>,
    /// The control page, made when the first writer connects (an idle slot has none).
    control: Option<(ControlFds, Control)>,
    /// Present once the owner handle is shared with other processes: the queue is then in the
    /// shared store, not in `queue`.
    shared: Option<Box<Shared>>,
    /// Another holder deleted the slot; this handle is dead.
    deleted: bool,
    /// Connections of trusted writers that asked about the queue (answered after a drain).
    queries: Vec<u64>,
    /// Whether the control page asks writers to wake the owner (see `Slot::set_wake_me`).
    wake_me: bool,
    /// The one reader asleep sleeps on the rings' futex words (see `Slot::futex_wait`):
    /// writers asked to wake the owner wake those, not the socket.
    pub futex_sleep: bool,
    /// Futex sleeps that ended with nothing to read (a writer that keeps setting its ring's
    /// wake word): after [`FUTEX_MAX_MISSES`] in a row readers sleep in `epoll`, trying the
    /// futex once every [`FUTEX_PROBE_EVERY`] sleeps.
    futex_tries: Tries,
    /// The queued totals last published on the control page.
    published: (usize, usize),
    /// Some writer's ring said it waits for room (seen in the last scan).
    waiters: bool,
    /// The last scan left records stamped after its cut (see `Slot::scan_rings`): the rings
    /// must be looked at again before anyone sleeps.
    pub held_back: bool,
    /// Records taken in by a scan, before they are sorted into the queue.
    incoming: Vec<Entry>,
    /// The cut of reads straight from several rings (see `Slot::uniform_head`).
    direct_cut: u64,
    /// Reads since the sockets were last read (see [`DRAIN_EVERY`]).
    takes_since_drain: u32,
    pub read_timeout: Timeout,
    pub readers_waiting: usize,
    /// Reads, peeks and waits so far: the service thread leaves the slot alone while it moves.
    pub reader_ops: u64,
    /// `reader_ops` when the service thread last looked at the slot.
    pub service_seen_ops: u64,
    /// Buffers of messages read by copy, reused for new messages (no allocation per message).
    pool: BufferPool,
    pub arming: Arming,
    /// The service thread has this slot on its timer list (it will re-arm it).
    pub deferred: bool,
    /// The wake eventfd was signalled and not yet cleared.
    pub wake_pending: bool,
    /// The descriptor readers wait on was handed out ([`Slot::wait_fd`]): a program may poll
    /// it instead of waiting in a read.
    polled: bool,
    /// Spins that ended without a message: after [`SPIN_MAX_MISSES`] in a row spinning stops,
    /// and one wait in [`SPIN_PROBE_EVERY`] spins again.
    spin_tries: Tries,
    /// Receive buffer for socket records (allocated when a writer first uses the socket path).
    buf: Vec<u8>,
    /// Messages dropped because they were malformed or over the limits (misbehaving writers).
    pub dropped: u64,
    /// Writers dropped for a broken ring.
    pub dropped_writers: u64,
    /// Writers refused by the access policy.
    pub refused: u64,
    /// Network messages refused because the slot does not accept remote messages.
    pub refused_remote: u64,
    /// On-behalf-of messages refused by the access policy.
    pub refused_behalf: u64,
}

impl State {
    fn new(
        listener: Option<OwnedFd>,
        control: Option<(ControlFds, Control)>,
        shared: Option<Box<Shared>>,
        read_timeout: Timeout,
        arming: Arming,
    ) -> Self {
        Self {
            queue: Queue::default(),
            conns: Conns::default(),
            per_uid: HashMap::new(),
            orphans: Orphans::default(),
            owing: 0,
            listener,
            control,
            shared,
            deleted: false,
            queries: Vec::new(),
            wake_me: true,
            futex_sleep: false,
            futex_tries: Tries::default(),
            published: (0, 0),
            waiters: false,
            held_back: false,
            direct_cut: 0,
            incoming: Vec::new(),
            takes_since_drain: 0,
            read_timeout,
            readers_waiting: 0,
            reader_ops: 0,
            service_seen_ops: 0,
            pool: BufferPool::default(),
            arming,
            deferred: false,
            wake_pending: false,
            polled: false,
            spin_tries: Tries::default(),
            buf: Vec::new(),
            dropped: 0,
            dropped_writers: 0,
            refused: 0,
            refused_remote: 0,
            refused_behalf: 0,
        }
    }
}

/// What a holder of a shared owner handle has (see `ARCHITECTURE.md`, "Shared owner handles").
struct Shared {
    store: Store,
    /// The handle's own descriptor: a socket whose queue holds the core message.
    core: OwnedFd,
    /// A copy of `core` without close-on-exec, made by `inheritable`.
    inheritable: Option<OwnedFd>,
    /// The park: every live writer connection and its ring, in flight on this socket pair, so
    /// that a holder that comes later (or outlives the one that accepted them) can take them.
    park_a: OwnedFd,
    park_b: OwnedFd,
    /// Rung (edge-triggered in every holder's epoll) when the connections change, when
    /// messages arrive while a holder sleeps in a read, and when the slot is deleted.
    doorbell: OwnedFd,
    /// The store's generation and epoch this process's view matches.
    gen_seen: u64,
    epoch_seen: u64,
    /// This process holds the store's lock (through a [`Guard`]).
    locked: bool,
    /// Messages were added while locked (sleeping holders get the doorbell).
    pushed: bool,
    /// Connections went away: the park still holds them and is written anew before unlocking.
    park_dirty: bool,
    /// This process's connections by socket inode (a message's origin).
    by_ino: HashMap<u64, u64>,
    /// This process counts as one of the store's sleepers.
    sleeping: bool,
}

impl Shared {
    /// Counts this process as asleep in the store (once; it must hold the holders' lock).
    fn count_asleep(&mut self) {
        if !self.sleeping && self.locked {
            self.sleeping = true;
            self.store.set_sleeping(true);
        }
    }

    /// Counts this process as asleep no more (it must hold the holders' lock).
    fn count_awake(&mut self) {
        if self.sleeping && self.locked {
            self.sleeping = false;
            self.store.set_sleeping(false);
        }
    }
}

/// Who has a slot's lock when [`Slot::try_lock`] cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// A thread of this process (a reader, for a moment).
    Here,
    /// Another holder of a shared slot (for a moment, or stopped with it).
    Holders,
}

/// The slot's state, locked: for a shared slot also the holders' lock, with this process's
/// view brought up to date when taken and written back when let go.
///
/// Holds the whole state ([`Cell::Busy`]): [`Slot::lock`] makes it before it makes a guard.
pub(crate) struct Guard<'a> {
    slot: &'a Slot,
    st: MutexGuard<'a, Cell>,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        match &*self.st {
            Cell::Busy(b) => b,
            Cell::Idle { .. } => unreachable!("Slot::lock makes the state before the guard"),
        }
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        match &mut *self.st {
            Cell::Busy(b) => b,
            Cell::Idle { .. } => unreachable!("Slot::lock makes the state before the guard"),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let Cell::Busy(st) = &mut *self.st else {
            return;
        };
        if st.shared.as_ref().is_some_and(|sh| sh.locked) {
            self.slot.sync_out(st);
        }
    }
}

/// Most buffers kept for reuse, the most bytes they may hold together, and the largest buffer
/// worth keeping: enough for the bursts a reader takes in at once (a drain moves up to
/// [`PER_CONN_BATCH`] records of up to 64 KiB each), while a slot that once held many or large
/// messages does not keep much of their memory.
const SPARE_BUFFERS: usize = 8192;
const SPARE_BYTES: usize = 512 << 10;
const SPARE_CAPACITY: usize = 4096;

/// Buffers of messages read by copy, kept for the next messages.
#[derive(Default)]
struct BufferPool {
    spare: Vec<Vec<u8>>,
    /// Capacity of the buffers in `spare`, bytes.
    bytes: usize,
}

impl BufferPool {
    /// Keeps the buffer of a message read by copy for a later message.
    fn recycle(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if self.spare.len() < SPARE_BUFFERS
            && cap <= SPARE_CAPACITY
            && self.bytes + cap <= SPARE_BYTES
        {
            self.bytes += cap;
            self.spare.push(buf);
        }
    }

    /// An empty buffer with room for `len` bytes, reused when one is kept.
    fn take(&mut self, len: usize) -> Vec<u8> {
        match self.spare.pop() {
            Some(mut b) => {
                self.bytes -= b.capacity();
                b.clear();
                b.reserve(len);
                b
            }
            None => Vec::with_capacity(len),
        }
    }
}

/// One owned mailslot.
pub(crate) struct Slot {
    pub config: Config,
    /// The listening socket's descriptor number (the socket itself is in the state, so that
    /// closing frees the name); what the service watches until the slot has `fds`. -1 while the
    /// name is in the daemon's directory instead (see `registry`).
    listener_fd: AtomicI32,
    /// The name was registered in the daemon's directory when the slot was made: writers come
    /// through the process listener (`incoming`, `Fds::knock`).
    directory: bool,
    /// The name is still in the directory (taken out when the slot closes or binds a socket of
    /// its own, see [`promote`](Self::promote)).
    registered: AtomicBool,
    /// Writers' connections handed over by the service thread from the process listener, not
    /// yet greeted.
    incoming: Mutex<Vec<OwnedFd>>,
    /// Made when the first writer connects or a reader first waits: an idle slot costs one
    /// descriptor (its listener).
    fds: OnceLock<Fds>,
    pub token: u64,
    /// The process that created the slot; only it may close it (see [`Slot::close`]).
    creator_pid: u32,
    service: Arc<Service>,
    state: Mutex<Cell>,
    /// The private futex word of a reader asleep on the rings' wake words: bumped (and woken)
    /// by anything else that must wake it (the service thread's look at the sockets, a delete).
    sleep_word: AtomicU32,
}

/// How a way of waiting that may not pay off has done lately (the reader's spin, its futex
/// sleep): it is tried until `max` misses in a row, then once in every `probe` waits, until
/// it pays off again.
#[derive(Debug, Default)]
struct Tries {
    /// Misses in a row.
    misses: u32,
    /// Waits without it since it was given up.
    skipped: u32,
}

impl Tries {
    /// Whether to try it for this wait.
    fn worth_trying(&mut self, max: u32, probe: u32) -> bool {
        if self.misses < max {
            return true;
        }
        self.skipped += 1;
        if self.skipped < probe {
            return false;
        }
        self.skipped = 0;
        true
    }

    /// What trying it brought: `paid` (a message), or nothing.
    fn outcome(&mut self, paid: bool) {
        self.misses = if paid {
            0
        } else {
            self.misses.saturating_add(1)
        };
    }
}

/// A slot's state behind its lock: the few fields an idle slot needs, until something happens
/// (a writer connects, a reader reads or waits, the handle is shared): then the whole [`State`],
/// made by [`Slot::lock`]. So that an idle slot costs little more than its listening socket.
enum Cell {
    Idle {
        listener: Option<OwnedFd>,
        read_timeout: Timeout,
        arming: Arming,
    },
    Busy(Box<State>),
}

/// The descriptors of a slot that has writers or readers waiting.
struct Fds {
    /// Listener and writer connections.
    epoll: OwnedFd,
    /// What readers wait on: `epoll` plus `wake`.
    wait_epoll: OwnedFd,
    /// Signalled by the service thread when it moved messages into the queue.
    wake: OwnedFd,
    /// Signalled when the service thread hands over a writer's connection (slots whose name is
    /// in the directory: they have no listener of their own to make the epoll ready).
    knock: Option<OwnedFd>,
}

/// What a reader wants from the head of the queue.
pub(crate) enum Take<'a> {
    /// Remove it, copying into the buffer.
    Read(&'a mut [u8]),
    /// Remove it and return it whole.
    ReadMessage,
    /// Copy it into the buffer, leave it queued.
    Peek(&'a mut [u8]),
    /// Return a copy, leave it queued.
    PeekMessage,
}

/// What a reader got.
pub(crate) enum Taken {
    /// Bytes copied, and the message's metadata.
    Copied {
        len: usize,
        priority: u8,
        class: Class,
        sender: Sender,
    },
    /// The whole message.
    Message(Message),
}

impl Taken {
    /// What was copied into `data` (the buffer of a read), as a whole message.
    fn into_message(self, mut data: Vec<u8>) -> Self {
        match self {
            Self::Copied {
                len,
                priority,
                class,
                sender,
            } => {
                data.truncate(len);
                Self::Message(Message {
                    data,
                    priority,
                    class,
                    sender,
                })
            }
            m @ Self::Message(_) => m,
        }
    }
}

/// Queue state after draining.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub count: usize,
    pub next_size: Option<usize>,
    pub next_priority: Option<u8>,
    pub read_timeout: Timeout,
}

impl Slot {
    pub(crate) fn create(config: Config, read_timeout: Timeout) -> Result<Arc<Self>, CreateError> {
        sys::raise_nofile_limit();
        let service = service::get()?;
        let token = service.next_token();
        let key = config.name.key();
        // The daemon's directory keeps the name, if one runs: no socket for this slot.
        match service.register_name(token, &key) {
            Registered::Yes => {
                return Self::with_parts(
                    config,
                    read_timeout,
                    None,
                    None,
                    None,
                    token,
                    service.clone(),
                )
                .map_err(|e| {
                    service.unregister_name(token);
                    e.into()
                })
            }
            Registered::Taken => return Err(CreateError::AlreadyExists(config.name.to_string())),
            Registered::No => {}
        }
        let listener = sys::seqpacket(true)?;
        match sys::bind_abstract(&listener, &address(&key)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                return Err(CreateError::AlreadyExists(config.name.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        sys::listen(&listener, 4096)?;
        // A directory that started meanwhile may have given the name to somebody else (it
        // gives no name that a socket has, and this asks after binding: one of the two loses).
        if service.name_in_directory(&key) {
            return Err(CreateError::AlreadyExists(config.name.to_string()));
        }
        Ok(Self::with_parts(
            config,
            read_timeout,
            Some(listener),
            None,
            None,
            token,
            service,
        )?)
    }

    /// A slot around an already listening socket (a new one, or a shared handle taken up), or
    /// (`listener` `None`) one whose name the directory registered as `token`.
    fn with_parts(
        config: Config,
        read_timeout: Timeout,
        listener: Option<OwnedFd>,
        control: Option<(ControlFds, Control)>,
        shared: Option<Box<Shared>>,
        token: u64,
        service: Arc<Service>,
    ) -> io::Result<Arc<Self>> {
        let directory = listener.is_none();
        let slot = Arc::new(Self {
            listener_fd: AtomicI32::new(listener.as_ref().map_or(-1, AsRawFd::as_raw_fd)),
            directory,
            registered: AtomicBool::new(directory),
            incoming: Mutex::new(Vec::new()),
            fds: OnceLock::new(),
            token,
            creator_pid: sys::getpid(),
            service,
            state: Mutex::new(if control.is_none() && shared.is_none() {
                Cell::Idle {
                    listener,
                    read_timeout,
                    arming: Arming::Idle,
                }
            } else {
                Cell::Busy(Box::new(State::new(
                    listener,
                    control,
                    shared,
                    read_timeout,
                    Arming::Idle,
                )))
            }),
            config,
            sleep_word: AtomicU32::new(0),
        });
        slot.service.register(&slot)?;
        Ok(slot)
    }

    /// Locks the slot's state (and, for a shared slot, the holders' lock: see [`Guard`]).
    pub(crate) fn lock(&self) -> Guard<'_> {
        let st = self.cell();
        let Some(g) = self.guard(st, true) else {
            unreachable!("a lock that waits is taken");
        };
        g
    }

    /// For the service thread: locks the slot as [`lock`](Self::lock) does if nobody holds it,
    /// else says who does and changes nothing. The service serves all mailslots of the process, so it must not wait
    /// on one whose other holder is stopped (SIGSTOP) with the holders' lock.
    pub(crate) fn try_lock(&self) -> Result<Guard<'_>, Busy> {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(Busy::Here),
        };
        self.guard(st, false).ok_or(Busy::Holders)
    }

    /// Makes the guard of a locked cell (see [`lock`](Self::lock)); for a shared slot also
    /// takes the holders' lock, waiting for it if `wait`, else `None` when it is taken.
    fn guard<'a>(&'a self, mut st: MutexGuard<'a, Cell>, wait: bool) -> Option<Guard<'a>> {
        if let Cell::Idle {
            listener,
            read_timeout,
            arming,
        } = &mut *st
        {
            let state = State::new(listener.take(), None, None, *read_timeout, *arming);
            *st = Cell::Busy(Box::new(state));
        }
        let mut g = Guard { slot: self, st };
        if g.shared.is_some() && !self.sync_in(&mut g, wait) {
            return None;
        }
        Some(g)
    }

    /// The slot's lock, the state left as it is (idle or not).
    fn cell(&self) -> MutexGuard<'_, Cell> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` (which registers the slot with the service) under the slot's lock with the
    /// descriptor the service watches, and marks the slot armed when it succeeds. An idle slot
    /// stays idle.
    pub(crate) fn arm_with(&self, f: impl FnOnce(RawFd) -> io::Result<()>) -> io::Result<()> {
        let mut cell = self.cell();
        if let Cell::Idle { arming, .. } = &mut *cell {
            // A slot whose name is in the directory has nothing to watch until a writer comes:
            // the service serves it when it hands over a connection.
            if self.service_fd() >= 0 {
                f(self.service_fd())?;
            }
            *arming = Arming::Armed;
            return Ok(());
        }
        drop(cell);
        let mut st = self.lock();
        if self.service_fd() >= 0 {
            f(self.service_fd())?;
        }
        st.arming = Arming::Armed;
        Ok(())
    }

    /// What the service thread watches for this slot (-1: nothing yet).
    pub(crate) fn service_fd(&self) -> RawFd {
        self.fds
            .get()
            .map_or_else(|| self.listener_fd(), |f| f.epoll.as_raw_fd())
    }

    /// The listener's descriptor, -1 when the slot has none (its name is in the directory).
    fn listener_fd(&self) -> RawFd {
        self.listener_fd.load(Ordering::Acquire)
    }

    /// For the service thread: a writer's connection that came through the process listener
    /// for this slot (its hello named `key`). Greeted at once when nobody has the slot's lock
    /// (so that the writer waits for no other thread); else left for the lock's holder, who is
    /// knocked. Returns whether the service must serve the slot soon (it has nothing the
    /// service watches that would tell it).
    pub(crate) fn hand_over(&self, conn: OwnedFd, key: &str) -> bool {
        if self.config.name.key() != key {
            // An entry of the directory that points at the wrong slot: refused (dropped).
            return false;
        }
        self.incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
        if let Ok(mut st) = self.try_lock() {
            if st.arming != Arming::Closed {
                self.accept_all(&mut st);
            }
            return false;
        }
        match self.fds.get().and_then(|f| f.knock.as_ref()) {
            Some(k) => {
                sys::eventfd_signal(k.as_raw_fd());
                false
            }
            None => true,
        }
    }

    /// Whether the slot's name is in the daemon's directory.
    pub(crate) fn in_directory(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// The next handed-over connection, if any.
    fn next_incoming(&self) -> Option<OwnedFd> {
        self.incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn has_incoming(&self) -> bool {
        !self
            .incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// Gives a slot whose name is in the directory a listening socket of its own and takes the
    /// name out of the directory (before its handle is shared, or when the daemon stopped).
    /// Nothing to do for a slot that has one.
    pub(crate) fn promote(&self, st: &mut State) -> io::Result<()> {
        if !self.registered.load(Ordering::Acquire) || st.listener.is_some() {
            return Ok(());
        }
        if st.arming == Arming::Closed {
            return Ok(());
        }
        let listener = sys::seqpacket(true)?;
        sys::bind_abstract(&listener, &address(&self.config.name.key()))?;
        sys::listen(&listener, 4096)?;
        let fd = listener.as_raw_fd();
        if let Some(f) = self.fds.get() {
            sys::epoll_ctl(
                f.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd,
                libc::EPOLLIN as u32,
                TOKEN_LISTENER,
            )?;
        } else {
            // The service watched nothing for this slot: the listener now.
            self.service
                .replace(self, -1, fd, st.arming == Arming::Armed)?;
        }
        st.listener = Some(listener);
        self.listener_fd.store(fd, Ordering::Release);
        self.registered.store(false, Ordering::Release);
        self.service.unregister_name(self.token);
        Ok(())
    }

    /// The slot's descriptors, made on first use. The service then watches the slot's epoll
    /// (which holds the listener) instead of the bare listener.
    fn fds(&self, st: &mut State) -> io::Result<&Fds> {
        if let Some(f) = self.fds.get() {
            return Ok(f);
        }
        let epoll = sys::epoll_create()?;
        if st.listener.is_some() {
            sys::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                self.listener_fd(),
                libc::EPOLLIN as u32,
                TOKEN_LISTENER,
            )?;
        }
        let knock = if self.directory {
            let k = sys::eventfd()?;
            sys::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                k.as_raw_fd(),
                libc::EPOLLIN as u32,
                TOKEN_LISTENER,
            )?;
            Some(k)
        } else {
            None
        };
        let wake = sys::eventfd()?;
        let wait_epoll = sys::epoll_create()?;
        for fd in [epoll.as_raw_fd(), wake.as_raw_fd()] {
            sys::epoll_ctl(
                wait_epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd,
                libc::EPOLLIN as u32,
                fd as u64,
            )?;
        }
        if let Some(sh) = &st.shared {
            sys::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                sh.doorbell.as_raw_fd(),
                (libc::EPOLLIN | libc::EPOLLET) as u32,
                TOKEN_DOORBELL,
            )?;
        }
        let new = epoll.as_raw_fd();
        let f = self.fds.get_or_init(|| Fds {
            epoll,
            wait_epoll,
            wake,
            knock,
        });
        // A connection handed over before the knock was there (the service found no `fds`
        // and served the slot, which this thread had locked): knocked now.
        if let Some(k) = &f.knock {
            if self.has_incoming() {
                sys::eventfd_signal(k.as_raw_fd());
            }
        }
        if st.arming != Arming::Closed {
            self.service
                .replace(self, self.listener_fd(), new, st.arming == Arming::Armed)?;
        }
        Ok(f)
    }

    /// The descriptor readers (and async users) wait on.
    pub(crate) fn wait_fd(&self) -> io::Result<RawFd> {
        let mut st = self.lock();
        let fd = self.fds(&mut st)?.wait_epoll.as_raw_fd();
        if !st.polled {
            st.polled = true;
            self.polled_shared(&mut st);
        }
        Ok(fd)
    }

    /// Signals waiting readers that the service moved messages into the queue.
    pub(crate) fn signal_wake(&self, st: &mut State) {
        if st.futex_sleep {
            self.wake_sleeper();
        }
        if let (false, Some(f)) = (st.wake_pending, self.fds.get()) {
            st.wake_pending = true;
            sys::eventfd_signal(f.wake.as_raw_fd());
        }
    }

    /// Wakes the reader asleep on the rings' futex words (see `futex_wait`).
    pub(crate) fn wake_sleeper(&self) {
        self.sleep_word.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(&self.sleep_word, false, u32::MAX);
    }

    fn clear_wake(&self, st: &mut State) {
        if let (true, Some(f)) = (st.wake_pending, self.fds.get()) {
            st.wake_pending = false;
            sys::eventfd_clear(f.wake.as_raw_fd());
        }
    }

    /// Asks writers to wake the owner after each message (`on`: nobody on this side is
    /// looking at the rings), or not to: with a wake-up byte, or, while the one reader asleep
    /// sleeps on the rings' futex words, with the futex.
    pub(crate) fn set_wake_me(&self, st: &mut State, on: bool) {
        let before = Self::wake_mode(st);
        st.wake_me = on;
        self.publish_wake(st, before);
    }

    /// Writes the wake mode to the control page if it changed from `before`.
    fn publish_wake(&self, st: &State, before: Wake) {
        let now = Self::wake_mode(st);
        if now != before {
            if let Some((_, c)) = &st.control {
                c.set_wake(now);
            }
        }
    }

    /// Tells every ring's writer that its wake-up was seen (see `RingReader::clear_wake_sent`).
    fn clear_rings_wake_sent(st: &State) {
        for r in st.conns.values().filter_map(|c| c.ring.as_ref()) {
            r.clear_wake_sent();
        }
    }

    /// What the control page should say of waking the owner.
    fn wake_mode(st: &State) -> Wake {
        match (st.wake_me, st.futex_sleep) {
            (false, _) => Wake::Off,
            (true, false) => Wake::Byte,
            (true, true) => Wake::Futex,
        }
    }

    /// A reader is active: writers need not wake anybody; the service thread looks again later
    /// and asks for wake-ups once the reader has gone quiet. Unless another thread of this
    /// process is asleep in a read: it must still be woken (if this reader returns with one
    /// message, nobody else would look at the rings, and the service leaves a slot with a
    /// waiting reader alone).
    fn reader_active(&self, st: &mut State) {
        if Self::wakes_to_stop(st) {
            self.set_wake_me(st, false);
            if !st.deferred && st.arming != Arming::Closed {
                st.deferred = true;
                self.service.watch(self.token);
            }
        }
    }

    /// Whether [`reader_active`](Self::reader_active) has something to do: writers are asked
    /// for wake-ups and no other reader of this process waits.
    fn wakes_to_stop(st: &State) -> bool {
        st.wake_me && st.readers_waiting == 0
    }

    /// Moves everything pending on the sockets and in the rings into the queue; returns how many
    /// messages arrived.
    pub(crate) fn drain(&self, st: &mut State) -> io::Result<usize> {
        let before = Self::queued(st).1;
        if self.fds.get().is_none() {
            // No writer yet: only the listener to look at.
            self.accept_all(st);
            return Ok(Self::queued(st).1.saturating_sub(before));
        }
        self.drain_sockets(st)?;
        self.take_in(st);
        Ok(Self::queued(st).1.saturating_sub(before))
    }

    /// The part of [`drain`](Self::drain) after the sockets: takes in the rings, publishes the
    /// totals and answers what the sockets brought.
    fn take_in(&self, st: &mut State) {
        self.scan_rings(st, true);
        // Writers that wait for room re-check against the current totals.
        self.publish_used(st);
        if st.waiters {
            self.notify_waiters(st);
        }
        self.answer_queries(st);
    }

    /// Answers the trusted writers that asked about the queue (the caller took everything in).
    fn answer_queries(&self, st: &mut State) {
        if st.queries.is_empty() {
            return;
        }
        let count = Self::queued(st).1;
        let next = match &st.shared {
            Some(sh) => sh.store.head().map(|h| (h.len, h.priority)),
            None => st.queue.head().map(|m| (m.data.len(), m.priority)),
        };
        let answer = super::encode_answer(count, next);
        for id in std::mem::take(&mut st.queries) {
            if let Some(c) = st.conns.get(id) {
                let _ = sys::send_parts(c.fd.as_raw_fd(), &[&answer], &[], true);
            }
        }
    }

    /// Reads what the sockets have: new writers, wake-up bytes and waiting notes, socket-path
    /// records, hang-ups.
    fn drain_sockets(&self, st: &mut State) -> io::Result<()> {
        let Some(fds) = self.fds.get() else {
            self.accept_all(st);
            return Ok(());
        };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // Bounded, so that writers who keep the sockets busy (connecting and hanging up, or
        // keeping a byte queued on many connections) cannot keep the caller here: what is left
        // stays ready (level-triggered) and is read the next time round, after the rings.
        for _ in 0..DRAIN_ROUNDS {
            let n = sys::epoll_wait(fds.epoll.as_raw_fd(), &mut events, Some(Duration::ZERO))?;
            for ev in &events[..n] {
                if ev.u64 == TOKEN_LISTENER {
                    self.accept_all(st);
                } else if ev.u64 == TOKEN_DOORBELL {
                    // Another holder changed something; the lock brought this view up to date.
                } else {
                    self.recv_conn(st, ev.u64);
                }
            }
            if n < events.len() {
                break;
            }
        }
        Ok(())
    }

    /// Queued bytes and messages (in the shared store, or in this process).
    fn queued(st: &State) -> (usize, usize) {
        match &st.shared {
            Some(sh) => (sh.store.bytes() as usize, sh.store.count() as usize),
            None => (st.queue.bytes(), st.queue.len()),
        }
    }

    /// What the slot holds for the quota (bytes, messages): the queue, and what writers that
    /// hung up left in their rings (see `Conn::owed`).
    fn held(st: &State) -> (usize, usize) {
        let (mut bytes, mut count) = Self::queued(st);
        if st.owing > 0 {
            for c in st.conns.values() {
                if let (Some((b, n)), Some(r)) = (c.owed, c.ring.as_ref()) {
                    let (_, taken_b, taken_n) = r.position();
                    bytes += b.saturating_sub(taken_b) as usize;
                    count += n.saturating_sub(taken_n) as usize;
                }
            }
        }
        (bytes, count)
    }

    /// Whether a message is queued.
    pub(crate) fn has_head(st: &State) -> bool {
        match &st.shared {
            Some(sh) => sh.store.head().is_some(),
            None => st.queue.head().is_some(),
        }
    }

    /// Tells writers what was taken in from their rings (see `RingReader::commit`): every ring
    /// with `force`, else only rings with an eighth of their room to give back or a writer that
    /// waits. Until then a writer counts those messages twice (its own and the published
    /// totals), which errs on the safe side; committing less often spares the writer's and the
    /// reader's CPUs a shared cache line per message.
    fn commit_rings(&self, st: &mut State, force: bool) {
        let due = |r: &RingReader| {
            r.uncommitted() > 0
                && (force || r.uncommitted() >= r.capacity() / 8 || r.writer_waiting())
        };
        if !st.conns.values().any(|c| c.ring.as_ref().is_some_and(due)) {
            return;
        }
        // First the totals, then each writer's share of them.
        self.publish_used(st);
        for (_, c) in st.conns.iter_mut() {
            if let Some(r) = c.ring.as_mut().filter(|r| due(r)) {
                r.commit();
            }
        }
        // Rings have room again.
        if st.waiters {
            self.notify_waiters(st);
        }
    }

    /// Takes in every record published in the writers' rings; `force`: tell every writer at
    /// once (see [`commit_rings`](Self::commit_rings)).
    fn scan_rings(&self, st: &mut State, force: bool) {
        let mut bad = Vec::new();
        let mut waiters = false;
        let shared = st.shared.is_some();
        // Shared: where each scanned ring was, to put it back if the store has no room.
        let mut scanned: Vec<Scanned> = Vec::new();
        // Split borrows: the rings live in `conns`, the queue and buffers in the rest of `st`.
        let conns = &mut st.conns;
        let orphans = &st.orphans;
        // What each user's connections have queued, kept up to date as the rings are taken in
        // (a connection's records count in its user's share with its other connections').
        // (With one connection there are no others to count.)
        let mut users: HashMap<u32, (usize, usize)> = HashMap::new();
        if conns.len() > 1 {
            for c in conns.values() {
                let u = users.entry(c.cred.uid).or_default();
                *u = (u.0 + c.queued_bytes, u.1 + c.queued_count);
            }
        }
        let mut sink = Sink {
            incoming: &mut st.incoming,
            pool: &mut st.pool,
            dropped: &mut st.dropped,
            refused_remote: &mut st.refused_remote,
            refused_behalf: &mut st.refused_behalf,
        };
        // The cut: records stamped after it are left for the next scan. The rings are looked
        // at one after the other, so a writer whose ring was looked at before its message was
        // published, and a second writer that wrote after it and whose ring was looked at later,
        // would otherwise have the second message taken in (and read) before the first, for
        // good. With the cut, every record a scan takes was stamped before the scan began; one
        // published too late for its ring's turn was stamped before any record written after
        // its write returned, so no such record is taken without it. What is left (records
        // stamped during the scan: few) is taken by the next scan, which comes at once
        // (`held_back`). One writer needs no cut: its ring is in order.
        let cut = if conns.len() > 1 {
            sys::monotonic_ns()
        } else {
            u64::MAX
        };
        let mut held = false;
        for (id, c) in conns.iter_mut() {
            #[cfg(test)]
            tests::call_hook(&tests::BEFORE_RING_SCAN);
            let Some(ring) = c.ring.as_mut() else {
                continue;
            };
            waiters |= ring.writer_waiting();
            if !ring.has_records() {
                continue;
            }
            let cred = c.cred;
            let (mut qb, mut qc) = (c.queued_bytes, c.queued_count);
            let user = users.get(&cred.uid).copied().unwrap_or_default();
            let others = plus(
                orphans.of(cred.uid),
                (user.0.saturating_sub(qb), user.1.saturating_sub(qc)),
            );
            if shared {
                scanned.push(Scanned {
                    id,
                    pos: ring.position(),
                    queued_bytes: qb,
                    queued_count: qc,
                });
            }
            let r = ring.scan_until(cut, |ring, rec| {
                if let Some((bytes, sender)) =
                    self.check_record(&mut sink, &cred, ring, &rec, (qb, qc), others)
                {
                    let mut data = sink.pool.take(rec.len);
                    ring.data_into(&rec, &mut data);
                    debug_assert_eq!(data.len(), bytes);
                    qb += bytes;
                    qc += 1;
                    sink.incoming.push(Entry {
                        seq: rec.stamp,
                        origin: id,
                        msg: Message {
                            data,
                            priority: rec.priority,
                            class: Class::from_number(rec.class.into()).unwrap_or_default(),
                            sender,
                        },
                    });
                }
            });
            if let Some(u) = users.get_mut(&cred.uid) {
                *u = (
                    u.0 + qb.saturating_sub(c.queued_bytes),
                    u.1 + qc.saturating_sub(c.queued_count),
                );
            }
            c.queued_bytes = qb;
            c.queued_count = qc;
            match r {
                Ok((_, left)) => held |= left,
                Err(_) => bad.push(id),
            }
        }
        st.held_back = held;
        st.waiters = waiters;
        if shared {
            // Rings put back for want of room in the store keep their records (and are not
            // dropped now: their records are looked at again).
            let put_back = self.store_incoming(st, &scanned);
            bad.retain(|id| !put_back.contains(id));
        } else if !st.incoming.is_empty() {
            // Each ring's records are in stamp order, but rings interleave: sorted first, they
            // are appended to the queue's levels instead of inserted in the middle. (A stable
            // sort: one writer's messages with equal stamps, on a coarse clock, keep their
            // order.)
            st.incoming.sort_by_key(|e| e.seq);
            let mut incoming = std::mem::take(&mut st.incoming);
            for e in incoming.drain(..) {
                st.queue.push(e);
            }
            st.incoming = incoming;
        }
        self.commit_rings(st, force);
        for id in bad {
            st.dropped_writers += 1;
            self.remove_conn(st, id);
        }
        self.let_go_read_rings(st);
    }

    /// Forgets the writers that hung up before their rings were read or taken in, once they
    /// are: at a scan, at the periodic look at the sockets, or when a user's connection would
    /// find no room. (Not as the last record is read: letting a ring go unmaps and frees it,
    /// ≈ 200 µs for 1 MiB, which the read of that message would pay.)
    fn let_go_read_rings(&self, st: &mut State) {
        let done: Vec<u64> = st
            .conns
            .iter_mut()
            .filter(|(_, c)| c.closing && !c.ring.as_ref().is_some_and(RingReader::has_records))
            .map(|(id, _)| id)
            .collect();
        for id in done {
            self.remove_conn(st, id);
        }
    }

    /// Moves what a scan took in into the shared store, with the scanned rings' new read
    /// positions: all rings as one batch (in stamp order across them) when the store has room
    /// for it all; else as many whole rings as fit, oldest record first, again as one batch, so
    /// that the rings whose records do not fit now (a user with many connections can fill the
    /// store) neither keep the others out nor change their order. A ring that does not fit is
    /// put back where it was (its records stay there, looked at again next time); returns the
    /// ids of those rings.
    fn store_incoming(&self, st: &mut State, scanned: &[Scanned]) -> Vec<u64> {
        let State {
            shared,
            incoming,
            conns,
            pool,
            ..
        } = st;
        let Some(sh) = shared.as_mut() else {
            return Vec::new();
        };
        if scanned.is_empty() {
            return Vec::new();
        }
        incoming.sort_by_key(|e| e.seq);
        let mut put_back = Vec::new();
        if !Self::store_batch(sh, conns, incoming.iter(), scanned) {
            // Not all at once: the rings that fit together, the one with the oldest record
            // first, go in as one batch — still in stamp order across them, so that the order
            // of their writers' messages among each other holds.
            let mut needs: HashMap<u64, (u64, store::Need)> = HashMap::new();
            for e in incoming.iter() {
                let (_, need) = needs
                    .entry(e.origin)
                    .or_insert((e.seq, store::Need::default()));
                need.add(e.msg.priority, e.msg.data.len());
            }
            let mut order: Vec<&Scanned> = scanned.iter().collect();
            order.sort_by_key(|sc| needs.get(&sc.id).map_or(0, |n| n.0));
            let mut kept = store::Need::default();
            let mut keep: HashSet<u64> = HashSet::new();
            for sc in order {
                let with = needs.get(&sc.id).map_or(kept, |(_, n)| kept.with(n));
                if sh.store.fits(&with) {
                    kept = with;
                    keep.insert(sc.id);
                }
            }
            let kept_rings: Vec<Scanned> = scanned
                .iter()
                .filter(|sc| keep.contains(&sc.id))
                .cloned()
                .collect();
            let entries = incoming.iter().filter(|e| keep.contains(&e.origin));
            let stored = Self::store_batch(sh, conns, entries, &kept_rings);
            for sc in scanned {
                if stored && keep.contains(&sc.id) {
                    continue;
                }
                put_back.push(sc.id);
                let Some(c) = conns.get_mut(sc.id) else {
                    continue;
                };
                if let Some(r) = c.ring.as_mut() {
                    r.set_position(sc.pos);
                    c.queued_bytes = sc.queued_bytes;
                    c.queued_count = sc.queued_count;
                }
            }
        }
        for e in incoming.drain(..) {
            pool.recycle(e.msg.data);
        }
        put_back
    }

    /// Stages `entries` and the new read positions of the rings `scanned` in the shared store
    /// and commits them, or nothing (false) when the store has no room for all of them.
    fn store_batch<'e>(
        sh: &mut Shared,
        conns: &Conns,
        entries: impl IntoIterator<Item = &'e Entry>,
        scanned: &[Scanned],
    ) -> bool {
        sh.store.begin();
        let mut any = false;
        for e in entries {
            any = true;
            let origin = conns.get(e.origin).map_or(0, |c| c.ino);
            if !sh.store.stage(&record_of(e, origin)) {
                return false;
            }
        }
        for sc in scanned {
            if let Some(c) = conns.get(sc.id).filter(|c| c.ring.is_some()) {
                sh.store.stage_ring(c.idx, &c.ring_pos());
            }
        }
        sh.pushed |= any;
        sh.store.commit();
        true
    }

    /// Whether a writer's connection may queue one more message of `len` bytes, with `queued`
    /// (bytes, messages) queued from it and `others` from its user's other connections, live
    /// or hung up. A writer on its own never holds more than the quota (past that it ignored it), and
    /// a user never more than its connections could hold at once: without the second bound, a
    /// writer that ignores the quota could hang up and connect again to queue another quota's
    /// worth, as often as it liked. (Honest writers never come near either: they keep to the
    /// quota of the whole slot.)
    fn within_share(&self, queued: (usize, usize), others: (usize, usize), len: usize) -> bool {
        let (quota, max) = (self.config.quota, self.config.max_messages);
        let conns = MAX_CONNS_PER_UID as usize;
        queued.0 + len <= quota
            && queued.1 < max
            && others.0 + queued.0 + len <= quota.saturating_mul(conns)
            && others.1 + queued.1 < max.saturating_mul(conns)
    }

    /// Whether a ring record's frame (priority, class, flags, size) is sound and it fits the
    /// writer's share, with `queued` of this writer's and `others` of its user's queued: the
    /// part of [`check_record`](Self::check_record) that does not look at the sender blocks.
    fn admissible(&self, rec: &Record, queued: (usize, usize), others: (usize, usize)) -> bool {
        rec.priority <= crate::types::MAX_PRIORITY
            && (rec.class == 1 || rec.class == 2)
            && (rec.flags == 0 || rec.flags == REC_REMOTE || rec.flags == REC_BEHALF)
            && rec.len <= self.config.max_message_size
            && self.within_share(queued, others, rec.len)
    }

    /// Checks one ring record: `Some((len, sender))` to queue it, `None` (counted) to drop it.
    fn check_record(
        &self,
        sink: &mut Sink<'_>,
        cred: &PeerCred,
        ring: &RingReader,
        rec: &Record,
        queued: (usize, usize),
        others: (usize, usize),
    ) -> Option<(usize, Sender)> {
        if !self.admissible(rec, queued, others) {
            *sink.dropped += 1;
            return None;
        }
        let mut sender = Sender::Local {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        };
        if rec.flags & REC_REMOTE != 0 {
            let block = ring.remote_block(rec);
            let Some((name, ip)) = decode_remote(&block).filter(|_| is_daemon(cred)) else {
                *sink.dropped += 1;
                return None;
            };
            if !self.config.accept_remote {
                *sink.refused_remote += 1;
                return None;
            }
            sender = Sender::Remote { name, ip };
        }
        if rec.flags & REC_BEHALF != 0 {
            let block = ring.behalf_block(rec);
            let Some((pid, uid, gid)) = decode_behalf(&block).filter(|_| is_daemon(cred)) else {
                *sink.dropped += 1;
                return None;
            };
            if !self.admits_behalf(pid, uid, gid) {
                *sink.refused_behalf += 1;
                return None;
            }
            sender = Sender::Local { pid, uid, gid };
        }
        Some((rec.len, sender))
    }

    /// Publishes the queued totals on the control page.
    fn publish_used(&self, st: &mut State) {
        let now = Self::held(st);
        if now != st.published {
            st.published = now;
            if let Some((_, c)) = &st.control {
                c.set_used(now.0, now.1);
            }
        }
    }

    /// After a message was removed: publish the totals, hand the rings' shares back and wake
    /// writers that wait for room once writers over-count by a step — a sixteenth of the quota or
    /// of the message limit, and at least one message of the largest size (for small quotas, that
    /// is every read). Publishing after every read would make a writer and the reader trade cache
    /// lines (and wake-ups) per message; in steps, a writer that fills the slot writes in bursts.
    fn after_remove(&self, st: &mut State) {
        let (bytes, count) = Self::held(st);
        let (step_bytes, step_count) = self.steps();
        // How much more writers count than is queued: what was read since the totals were
        // published, plus what was taken in from their rings that they do not know of yet.
        let (pending_bytes, pending_count) = st
            .conns
            .values()
            .filter_map(|c| c.ring.as_ref())
            .map(RingReader::pending)
            .fold((0, 0), |(b, c), (pb, pc)| (b + pb, c + pc));
        let over_bytes = st.published.0.saturating_sub(bytes) + pending_bytes as usize;
        let over_count = st.published.1.saturating_sub(count) + pending_count as usize;
        if over_bytes >= step_bytes || over_count >= step_count {
            // Hand every ring's share back too: until then its writer counts what was taken in
            // twice and would see less room than there is.
            self.commit_rings(st, true);
            self.publish_used(st);
            if st.waiters {
                self.notify_waiters(st);
            }
        }
    }

    /// How far writers may over-count the queue before the owner tells them (see
    /// [`after_remove`](Self::after_remove)): bytes and messages.
    fn steps(&self) -> (usize, usize) {
        let (q, m) = (self.config.quota, self.config.max_messages);
        (
            (q / 16).max(self.config.max_message_size).min(q),
            (m / 16).max(1),
        )
    }

    /// Sends one room notice to every writer that says it waits (and takes its flag: a writer
    /// that still finds no room sets it again).
    fn notify_waiters(&self, st: &mut State) {
        for c in st.conns.values() {
            if c.ring.as_ref().is_some_and(RingReader::take_waiting) {
                let _ = sys::send_parts(c.fd.as_raw_fd(), &[b"R"], &[], true);
            }
        }
        st.waiters = false;
    }

    fn admits(&self, cred: &PeerCred, conn: &OwnedFd) -> bool {
        policy_admits(
            self.config.owner_uid,
            self.config.access,
            cred.uid,
            cred.gid,
            |g| {
                sys::peer_groups(conn)
                    .map(|gs| gs.contains(&g))
                    .unwrap_or(false)
            },
        )
    }

    /// The policy applied to a caller a trusted writer speaks for (checked again here, so that
    /// a buggy trusted writer cannot get past it). Supplementary groups are read from
    /// `/proc/<pid>/status`, only for a group policy whose group is not the primary one.
    fn admits_behalf(&self, pid: u32, uid: u32, gid: u32) -> bool {
        policy_admits(self.config.owner_uid, self.config.access, uid, gid, |g| {
            crate::trusted::caller_groups(pid).is_some_and(|gs| gs.contains(&g))
        })
    }

    /// The owner's user, root and the daemon's user: held to no bound on connections.
    fn privileged(&self, cred: &PeerCred) -> bool {
        cred.uid == self.config.owner_uid || is_daemon(cred)
    }

    /// Whether this user may hold one more connection.
    fn has_room_for(&self, st: &State, cred: &PeerCred) -> bool {
        self.privileged(cred)
            || (st.conns.len() < MAX_CONNS
                && st.per_uid.get(&cred.uid).copied().unwrap_or(0) < MAX_CONNS_PER_UID)
    }

    fn accept_all(&self, st: &mut State) {
        let knock = self.fds.get().and_then(|f| f.knock.as_ref());
        if let Some(k) = knock {
            // Cleared before the connections are taken: one handed over meanwhile knocks again.
            sys::eventfd_clear(k.as_raw_fd());
        }
        self.accept_some(st);
        if let Some(k) = knock {
            // Left for the next time round: the knock keeps the epoll ready for them.
            if self.has_incoming() {
                sys::eventfd_signal(k.as_raw_fd());
            }
        }
    }

    fn accept_some(&self, st: &mut State) {
        // At most [`ACCEPTS_PER_DRAIN`] at a time: connections still waiting keep the listener
        // ready, and are accepted the next time round.
        for _ in 0..ACCEPTS_PER_DRAIN {
            // Connections handed over from the process listener first (slots whose name is in
            // the directory), then the slot's own listener.
            let conn = match self.next_incoming() {
                Some(c) => c,
                None => {
                    let Some(listener) = st.listener.as_ref() else {
                        return;
                    };
                    match sys::accept(listener) {
                        Ok(Some(c)) => c,
                        Ok(None) => return,
                        // ECONNABORTED and friends: that writer is gone; EMFILE: try again
                        // later.
                        Err(_) => return,
                    }
                }
            };
            let Ok(cred) = sys::peer_cred(&conn) else {
                continue;
            };
            // Writers that hung up and whose rings were read since count no more.
            let room = self.has_room_for(st, &cred) || {
                self.let_go_read_rings(st);
                self.has_room_for(st, &cred)
            };
            let refusal = if !self.admits(&cred, &conn) {
                Some(Refusal::Denied)
            } else if !room {
                Some(Refusal::Busy)
            } else {
                None
            };
            // Take in what earlier writers wrote before a new one reads the published totals:
            // a writer that opens after another one's write returned sees that write in the
            // quota.
            let mut greeting = Greeting {
                refusal,
                accepts_remote: self.config.accept_remote,
                max_message_size: self.config.max_message_size as u64,
                quota: self.config.quota as u64,
                max_messages: self.config.max_messages as u64,
                owner_uid: self.config.owner_uid,
                access: self.config.access,
                display: self.config.name.to_string(),
            };
            if refusal.is_none() {
                self.scan_rings(st, true);
                self.publish_used(st);
            }
            let mut pass: Vec<RawFd> = Vec::new();
            let mut ring = None;
            let mut ring_fd = None;
            if refusal.is_none() {
                if st.control.is_none() {
                    match Control::create() {
                        Ok((fds, c)) => {
                            c.set_wake(Self::wake_mode(st));
                            c.set_used(st.published.0, st.published.1);
                            st.control = Some((fds, c));
                        }
                        Err(_) => greeting.refusal = Some(Refusal::Busy),
                    }
                }
                if let Some((fds, c)) = &st.control {
                    // A second writer (or any, once the handle is shared): from now on writers
                    // stamp their records, so that the reader can merge the rings in order.
                    // Said before the greeting, so that this writer stamps from its first
                    // record (see `Control::set_sole_writer`).
                    if st.conns.len() > 0 || st.shared.is_some() {
                        c.set_sole_writer(false);
                    }
                    pass.push(fds.ro.as_raw_fd());
                    // No ring (out of memory or descriptors): the writer uses the socket.
                    let cap = shm::ring_capacity_for(
                        self.config.max_message_size,
                        self.config.quota,
                        is_trusted_uid(cred.uid),
                    );
                    if let Ok((fd, r)) = RingReader::create(cap) {
                        ring = Some(r);
                        ring_fd = Some(fd);
                    }
                }
            }
            if let Some(fd) = &ring_fd {
                pass.push(fd.as_raw_fd());
            }
            // A shared slot: the connection gets a table entry (and a ring: there is no socket
            // path between holders), so that every holder can take it.
            let mut entry = None;
            if let (Some(sh), None) = (st.shared.as_mut(), greeting.refusal) {
                let ids = ring_fd.as_ref().and_then(|r| {
                    Some((
                        sys::file_id(conn.as_raw_fd()).ok()?.1,
                        sys::file_id(r.as_raw_fd()).ok()?.1,
                    ))
                });
                entry = ids.and_then(|(ci, ri)| Some((sh.store.alloc(ci, ri, false)?, ci)));
                if entry.is_none() {
                    greeting.refusal = Some(Refusal::Busy);
                    pass.clear();
                }
            }
            // ... and is parked before the writer hears that it may write: a connection the
            // park has no room for is refused (`Busy`), never accepted and then lost.
            let mut parked = false;
            if let (Some(sh), Some((idx, ino)), Some(rfd)) =
                (st.shared.as_mut(), entry, ring_fd.as_ref())
            {
                if Self::park_room(sh) <= PARK_HEADROOM {
                    // Pack what is there into as few messages as it needs.
                    Self::repark(sh);
                }
                parked = Self::park_room(sh) > PARK_HEADROOM
                    && sys::dup_cloexec(conn.as_raw_fd())
                        .and_then(|c| {
                            let r = sys::dup_cloexec(rfd.as_raw_fd())?;
                            Self::park(sh, &[(idx, ino, c, r)])
                        })
                        .is_ok();
                if !parked {
                    sh.store.free(idx);
                    entry = None;
                    greeting.refusal = Some(Refusal::Busy);
                    pass.clear();
                }
            }
            // Encoded before the entry is marked greeted: a holder killed between the mark and
            // the send leaves its writer unanswered (see `Store::greeted`), so nothing but the
            // send comes between them.
            let bytes = greeting.encode();
            if let (Some(sh), Some((idx, _)), None) = (st.shared.as_ref(), entry, greeting.refusal)
            {
                #[cfg(test)]
                if tests::DIE_BEFORE_GREETING.get() {
                    return; // (the test's holder dies here: see its use)
                }
                sh.store.greeted(idx);
                #[cfg(test)]
                if tests::DIE_AFTER_MARKING.get() {
                    return; // (the test's holder dies here: see its use)
                }
            }
            let sent = sys::send_parts(conn.as_raw_fd(), &[&bytes], &pass, true).is_ok();
            if !sent || greeting.refusal.is_some() {
                if greeting.refusal == Some(Refusal::Denied) {
                    st.refused += 1;
                }
                if let (Some(sh), Some((idx, _))) = (st.shared.as_mut(), entry) {
                    sh.store.free(idx);
                    if parked {
                        // (The park's copy goes at the next round: its entry is gone.)
                        sh.park_dirty = true;
                    }
                }
                continue; // dropping `conn` closes it
            }
            let (idx, ino) = entry.unwrap_or((u32::MAX, 0));
            if let Some(sh) = st.shared.as_mut() {
                sh.store.bump_generation();
                sh.gen_seen = sh.store.generation();
                sys::eventfd_signal(sh.doorbell.as_raw_fd());
            }
            if !self.add_conn(st, conn, cred, ring, ring_fd, idx, ino) {
                if let Some(sh) = st.shared.as_mut() {
                    sh.store.free(idx);
                    sh.park_dirty = true;
                }
            }
        }
    }

    /// Ends a writer's connection (for every holder of a shared slot).
    fn remove_conn(&self, st: &mut State, id: u64) {
        if let (Some(sh), Some(c)) = (st.shared.as_mut(), st.conns.get(id)) {
            sh.store.free(c.idx);
            sh.store.bump_generation();
            sh.gen_seen = sh.store.generation();
            sh.park_dirty = true;
            sys::eventfd_signal(sh.doorbell.as_raw_fd());
        }
        self.forget_conn(st, id);
    }

    /// Takes a connection's socket out of the slot's epoll.
    fn unwatch(&self, fd: &OwnedFd) {
        if let Some(fds) = self.fds.get() {
            let _ = sys::epoll_ctl(
                fds.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                0,
                0,
            );
        }
    }

    /// Drops this process's copy of a connection.
    fn forget_conn(&self, st: &mut State, id: u64) {
        if let (Some(sh), Some(c)) = (st.shared.as_mut(), st.conns.get(id)) {
            sh.by_ino.remove(&c.ino);
        }
        if let Some(c) = st.conns.remove(id) {
            self.unwatch(&c.fd);
            if c.owed.is_some() {
                st.owing -= 1;
                // (Left unread if the slot is deleted or the ring turned out broken.)
                self.publish_used(st);
            }
            if let Some(n) = st.per_uid.get_mut(&c.cred.uid) {
                *n -= 1;
                if *n == 0 {
                    st.per_uid.remove(&c.cred.uid);
                }
            }
            // What a privileged writer leaves is not counted: it is held to no share of
            // connections either.
            if st.shared.is_none() && c.queued_count > 0 && !self.privileged(&c.cred) {
                st.orphans
                    .add(id, c.cred.uid, c.queued_bytes, c.queued_count);
            }
        }
    }

    /// Reads what a writer sent on its socket: wake-up bytes (ring writers), or records (the
    /// socket path). A hang-up removes the connection once its ring has been taken in.
    fn recv_conn(&self, st: &mut State, id: u64) {
        let Some(c) = st.conns.get(id) else {
            return;
        };
        let (fd, cred, has_ring) = (c.fd.as_raw_fd(), c.cred, c.ring.is_some());
        if st.buf.is_empty() {
            st.buf = vec![0u8; SOCKET_RECORD_MAX + 1];
        }
        let mut buf = std::mem::take(&mut st.buf);
        for _ in 0..PER_CONN_BATCH {
            match sys::recv_msg(fd, &mut buf, false) {
                Ok(None) => break,
                Ok(Some(r)) if r.len == 0 => {
                    self.hang_up(st, id);
                    break;
                }
                Ok(Some(r)) if r.len == 1 => {
                    // A wake-up byte, or a trusted writer's question about the queue.
                    if buf[0] == super::QUERY && is_daemon(&cred) && st.queries.len() < 1024 {
                        st.queries.push(id);
                    } else if has_ring {
                        // A writer with a ring sends no records here, only wake-up bytes: the
                        // one it claims in its ring after a write, and one when it starts to
                        // wait for room. One byte is enough to make this reader look at the
                        // rings: stop rather than ask the socket once more. Whatever follows
                        // keeps the socket readable in the level-triggered epoll and is read on
                        // the next look.
                        break;
                    }
                }
                Ok(Some(r)) => {
                    if r.truncated {
                        st.dropped += 1;
                        continue;
                    }
                    self.enqueue(st, id, cred, &buf[..r.len]);
                }
                Err(_) => {
                    self.hang_up(st, id);
                    break;
                }
            }
        }
        st.buf = buf;
        // Only now that its bytes are read: a wake-up byte claimed after this is sure to reach
        // the socket unread (cleared before the reads, a byte sent in between would be read
        // here while the writer still thinks one is on its way, and its next wake-up would be
        // lost). The caller takes in the rings after this.
        if let Some(r) = st.conns.get(id).and_then(|c| c.ring.as_ref()) {
            r.clear_wake_sent();
        }
    }

    /// A writer closed its connection: in a private slot, keep its ring until it is read (see
    /// [`Self::keep_ring`]); in a shared one, take in what its ring still holds, then forget it
    /// — or, when the store had no room for all of that, keep the ring until it has (see
    /// [`Self::scan_rings`]): those are messages the writer was told were written.
    fn hang_up(&self, st: &mut State, id: u64) {
        if st.shared.is_none() && self.keep_ring(st, id) {
            return;
        }
        self.scan_rings(st, true);
        let Some(c) = st.conns.get_mut(id) else {
            return;
        };
        if c.ring.as_ref().is_some_and(RingReader::has_records) {
            if !c.closing {
                c.closing = true;
                // Its socket has nothing more to say (and would say so at every wait).
                self.unwatch(&c.fd);
            }
            return;
        }
        self.remove_conn(st, id);
    }

    /// [`hang_up`](Self::hang_up) in a private slot: a writer that hung up with records in its
    /// ring keeps the ring (frozen: nothing more is read from it than it held then) until they
    /// are read — straight from it as any ring's, or taken in by a scan. Taking them all in now
    /// would copy them into the queue at once (≈ 250 ns a message, 2.7 ms for a 1 MiB ring of
    /// 64-byte messages, while the reader waits) and make every later read go through the
    /// queue. What is left counts in the published totals from now on (`Conn::owed`), as
    /// far as the writer's share allows; nobody else counts it. `true` when done; `false`:
    /// a ring that turned out broken, or no ring (the caller takes in and drops as before).
    fn keep_ring(&self, st: &mut State, id: u64) -> bool {
        let Some(c) = st.conns.get(id) else {
            return true;
        };
        if c.closing {
            return true;
        }
        let Some(ring) = c.ring.as_ref() else {
            return false;
        };
        if !ring.has_records() {
            self.remove_conn(st, id);
            // What was taken in from its ring and not yet told it is no writer's count now.
            self.publish_used(st);
            return true;
        }
        let uid = c.cred.uid;
        let others = plus(st.orphans.of(uid), st.conns.queued_by(uid, id));
        let Some(c) = st.conns.get_mut(id) else {
            return true;
        };
        let (qb, qc) = (c.queued_bytes, c.queued_count);
        let Some(ring) = c.ring.as_mut() else {
            return false;
        };
        // Counted as a scan would judge the records (broken ones, and those past the
        // writer's share, are dropped when read): a writer that left more than its share in
        // its ring holds no more of the quota than its share.
        let (mut bytes, mut count) = (0usize, 0usize);
        let frozen = ring.freeze(|rec| {
            if self.admissible(rec, (qb + bytes, qc + count), others) {
                bytes += rec.len;
                count += 1;
            }
        });
        if frozen.is_err() {
            return false;
        }
        let (_, taken_b, taken_n) = ring.position();
        c.owed = Some((taken_b + bytes as u64, taken_n + count as u64));
        c.closing = true;
        // Its socket has nothing more to say (and would say so at every wait).
        self.unwatch(&c.fd);
        st.owing += 1;
        self.publish_used(st);
        true
    }

    fn enqueue(&self, st: &mut State, id: u64, cred: PeerCred, record: &[u8]) {
        let Some(h) = decode_header(record) else {
            st.dropped += 1;
            return;
        };
        let mut data = &record[HEADER_LEN..];
        let mut sender = Sender::Local {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        };
        if h.flags & FLAG_REMOTE != 0 {
            // Only the daemon (root or its own user) speaks for remote hosts.
            let Some((name, ip)) = decode_remote(data).filter(|_| is_daemon(&cred)) else {
                st.dropped += 1;
                return;
            };
            if !self.config.accept_remote {
                st.refused_remote += 1;
                return;
            }
            data = &data[REMOTE_LEN..];
            sender = Sender::Remote { name, ip };
        }
        if h.flags & FLAG_BEHALF != 0 {
            let Some((pid, uid, gid)) = decode_behalf(data).filter(|_| is_daemon(&cred)) else {
                st.dropped += 1;
                return;
            };
            if !self.admits_behalf(pid, uid, gid) {
                st.refused_behalf += 1;
                return;
            }
            data = &data[BEHALF_LEN..];
            sender = Sender::Local { pid, uid, gid };
        }
        self.push_checked(st, id, h.seq, data, h.priority, h.class, sender);
        self.publish_used(st);
    }

    /// Queues one message from the socket path if it is within the writer's share of the
    /// limits, else drops and counts it.
    #[allow(clippy::too_many_arguments)]
    fn push_checked(
        &self,
        st: &mut State,
        id: u64,
        seq: u64,
        data: &[u8],
        priority: u8,
        class: u8,
        sender: Sender,
    ) {
        let Some(uid) = st.conns.get(id).map(|c| c.cred.uid) else {
            return;
        };
        let others = plus(st.orphans.of(uid), st.conns.queued_by(uid, id));
        let Some(c) = st.conns.get_mut(id) else {
            return;
        };
        if data.len() > self.config.max_message_size
            || !self.within_share((c.queued_bytes, c.queued_count), others, data.len())
        {
            st.dropped += 1;
            return;
        }
        c.queued_bytes += data.len();
        c.queued_count += 1;
        if let Some(sh) = st.shared.as_mut() {
            let (kind, block) = sender_block(&sender);
            sh.store.begin();
            if !sh.store.stage(&NewRecord {
                priority,
                class,
                kind,
                sender: block,
                stamp: seq,
                origin: c.ino,
                data,
            }) {
                c.queued_bytes -= data.len();
                c.queued_count -= 1;
                st.dropped += 1;
                return;
            }
            sh.store.stage_ring(c.idx, &c.ring_pos());
            sh.store.commit();
            sh.pushed = true;
            return;
        }
        let mut buf = st.pool.take(data.len());
        buf.extend_from_slice(data);
        st.queue.push(Entry {
            seq,
            origin: id,
            msg: Message {
                data: buf,
                priority,
                class: Class::from_number(class.into()).unwrap_or_default(),
                sender,
            },
        });
    }

    /// Whether anything may be waiting that a scan of the rings alone would not find: socket
    /// records of the fallback path, new connections, hang-ups.
    fn rings_only(&self, st: &State) -> bool {
        st.conns.values().all(|c| c.ring.is_some())
    }

    /// Waits for a head message (up to `timeout`, or the slot's read timeout) and applies `take`.
    pub(crate) fn take(
        &self,
        mut take: Take<'_>,
        timeout: Option<Timeout>,
    ) -> Result<Taken, ReadError> {
        let mut st = self.lock();
        if let Some(t) = self.read_known(&mut st, &mut take) {
            st.reader_ops = st.reader_ops.wrapping_add(1);
            return Ok(t);
        }
        let timeout = timeout.unwrap_or(st.read_timeout);
        // The clock is read only once the queue is found empty: a read that finds a message
        // costs no clock reading.
        let mut deadline: Option<Instant> = None;
        let peek = matches!(take, Take::Peek(_) | Take::PeekMessage);
        let mut spun = false;
        // The last sleep was on the futex words and something woke it (see `may_futex_sleep`).
        let mut futex_woke = false;
        // Whether the sockets (new writers, hang-ups, wake-up bytes, socket-path records) must
        // be read before the slot may be called empty.
        let mut drain = false;
        st.takes_since_drain += 1;
        let result = loop {
            if st.deleted {
                break Err(ReadError::Deleted);
            }
            self.reader_active(&mut st);
            // Rings are looked at on every read (a load per writer), so that a completed
            // higher-priority write is never overtaken. The sockets cost system calls: they are
            // read before a read gives up or sleeps, every DRAIN_EVERY reads, after a wake-up,
            // and on every read while some writer uses the socket path.
            // Writers' streams of one priority each (the usual case) need not go through the
            // queue: read them straight from their rings when the queue is empty, and leave
            // them there while the queue's head comes first anyway.
            let mut leave_rings = false;
            if !drain && st.shared.is_none() {
                let queued = st.queue.head().map(|m| m.priority);
                if let Some(first) = self.uniform_head(&mut st, queued.is_none()) {
                    match (queued, &mut take) {
                        (None, Take::Read(buf)) => {
                            if let Some(t) = self.read_direct_into(&mut st, &first, buf) {
                                self.after_direct(&mut st);
                                break Ok(t);
                            }
                        }
                        (None, Take::ReadMessage) => {
                            if let Some(t) = self.read_direct_whole(&mut st, &first) {
                                self.after_direct(&mut st);
                                break Ok(t);
                            }
                        }
                        (Some(head), _) => leave_rings = first.rec.priority <= head,
                        _ => {}
                    }
                }
            }
            let periodic = st.takes_since_drain >= DRAIN_EVERY;
            if drain || (periodic && !leave_rings) || !self.rings_only(&st) {
                st.takes_since_drain = 0;
                self.clear_wake(&mut st);
                self.drain(&mut st)?;
                drain = false;
            } else if periodic {
                st.takes_since_drain = 0;
                self.drain_sockets_only(&mut st);
            } else if !leave_rings {
                self.scan_rings(&mut st, false);
            }
            if Self::has_head(&st) {
                if futex_woke {
                    st.futex_tries.outcome(true);
                }
                break self.apply(&mut st, take);
            }
            let remaining = match timeout {
                Timeout::Forever => None,
                Timeout::After(d) => {
                    let now = (!d.is_zero() && !peek).then(Instant::now);
                    let dl = now.map(|n| *deadline.get_or_insert(n + d));
                    match (now, dl) {
                        (Some(n), Some(dl)) if n < dl => Some(dl - n),
                        _ if st.takes_since_drain > 0 => {
                            // Not empty until the sockets say so too.
                            drain = true;
                            continue;
                        }
                        _ => break Err(ReadError::Timeout),
                    }
                }
            };
            let budget = if spun {
                Duration::ZERO
            } else {
                self.spin_budget(&mut st)
            };
            if !budget.is_zero() {
                // Poll the writers' rings for a moment before sleeping: a message that is about
                // to arrive costs no wake-up (tens of µs) this way.
                spun = true;
                let started = Instant::now();
                let until = started + remaining.map_or(budget, |r| r.min(budget));
                let mut moved = false;
                'spin: loop {
                    for _ in 0..64 {
                        let ready = st
                            .conns
                            .values()
                            .find_map(|c| c.ring.as_ref().filter(|r| RingReader::has_records(r)));
                        if let Some(ring) = ready {
                            // The record is read next: start fetching it now.
                            ring.prefetch_next();
                            moved = true;
                            break 'spin;
                        }
                        std::hint::spin_loop();
                    }
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    // After the first few µs, let other runnable processes on this CPU go first
                    // (the writer we wait for may be one of them); costs next to nothing when
                    // none is, but it is a system call. The lock is let go meanwhile.
                    if now - started > SPIN_BEFORE_YIELD {
                        drop(st);
                        std::thread::yield_now();
                        st = self.lock();
                        if st.deleted {
                            break;
                        }
                    }
                }
                // Adapt: keep spinning while it pays off; stop after a run of misses (messages
                // come later than the spin, e.g. more busy processes than CPUs).
                st.spin_tries.outcome(moved);
                if moved || st.deleted {
                    continue;
                }
            }
            if futex_woke {
                // The last futex sleep brought nothing.
                st.futex_tries.outcome(false);
                futex_woke = false;
            }
            let futex = self.may_futex_sleep(&mut st);
            self.begin_wait(&mut st, futex);
            if futex {
                // Cleared before the look below: a writer that publishes after it finds its
                // word 0 and wakes the futex (or sets the word before the sleep, which then
                // ends at once).
                Self::clear_rings_wake_sent(&st);
            }
            // Writers now wake us; look once more, so that a message published just before
            // they could see the request is not slept through. The rings, that is: the sockets
            // (and the eventfd) are level-triggered in the epoll this reader sleeps on, which
            // returns at once if one of them has something, so looking at them here would be
            // one more system call for nothing (a futex sleeper has the service thread watch
            // them, which wakes it). A shared slot looks at both (its doorbell is
            // edge-triggered), and so does a slot that has no epoll yet.
            st.takes_since_drain = 0;
            self.clear_wake(&mut st);
            if st.shared.is_none() && self.fds.get().is_some() {
                self.take_in(&mut st);
            } else if let Err(e) = self.drain(&mut st) {
                self.end_wait(&mut st, futex);
                break Err(e.into());
            }
            // (A holder that deleted the slot may have been seen by any lock above.) Records
            // the scan left for the next one (stamped while it ran) are not slept through.
            if Self::has_head(&st) || st.deleted || st.held_back {
                self.end_wait(&mut st, futex);
                continue;
            }
            if futex {
                let r;
                (st, r) = self.futex_wait(st, remaining);
                // The service thread looked at the sockets for us if it fired meanwhile (it
                // left the slot unarmed): read them then.
                let fired = st.arming != Arming::Armed;
                self.end_wait(&mut st, true);
                match r {
                    Ok(sys::FutexWake::Woken) => futex_woke = true,
                    Ok(sys::FutexWake::Timeout) => {}
                    Err(_) => {
                        // Not here (an old kernel, a filter): sleep in `epoll` from now on.
                        FUTEX_WORKS.store(false, Ordering::Relaxed);
                    }
                }
                drain = fired;
                continue;
            }
            let wait_fd = match self.fds(&mut st) {
                Ok(f) => f.wait_epoll.as_raw_fd(),
                Err(e) => {
                    self.end_wait(&mut st, false);
                    break Err(e.into());
                }
            };
            // A holder of a shared slot looks again now and then however long it may wait: one
            // killed in a read may have left writers told not to wake anyone and the doorbell
            // unrung (the look takes the holders' lock, which mends what the dead one left).
            let wait = match st.shared {
                Some(_) => Some(remaining.map_or(SHARED_LOOK_EVERY, |r| r.min(SHARED_LOOK_EVERY))),
                None => remaining,
            };
            drop(st);
            let mut ev = [libc::epoll_event { events: 0, u64: 0 }; 1];
            let r = sys::epoll_wait(wait_fd, &mut ev, wait);
            st = self.lock();
            self.end_wait(&mut st, false);
            r?;
            drain = true;
        };
        if matches!(result, Err(ReadError::Timeout)) {
            // The caller may poll the descriptor next: writers must wake it.
            self.set_wake_me(&mut st, true);
        }
        st.reader_ops = st.reader_ops.wrapping_add(1);
        result
    }

    /// The ring record to read next without the queue, when no writer uses the socket path and
    /// every ring with records holds one priority: with one such ring, its first record; with
    /// several, the first record of the most urgent rings' oldest — the record a scan would
    /// have put at the queue's head. (The caller reads it when the queue is empty,
    /// `queue_empty`, and otherwise only compares its priority with the queue's head.) With
    /// the queue empty and several rings, its stamp must be up to a cut (see
    /// [`scan_rings`](Self::scan_rings)): `st.direct_cut`, a reading of the clock taken again
    /// when a head is stamped after it, so that a write that ended before this read began is
    /// never left out (it was stamped before the new reading). A record that would be taken
    /// before another writer's was stamped up to a reading taken before the rings were looked
    /// at: a write that ended before it was stamped was published by then, and is seen at its
    /// ring's head (older, so read first). `None` with no candidate: read the usual way (a
    /// scan, which also judges stamps no honest writer makes).
    // Inlined: left a call once `take` grew (whole messages read straight from the rings), it
    // made a read from one ring take 64 ns instead of 58.
    #[inline(always)]
    fn uniform_head(&self, st: &mut State, queue_empty: bool) -> Option<FirstRecord> {
        let mut only = None;
        let mut with_records = 0;
        for (id, c) in st.conns.iter_mut() {
            match &c.ring {
                Some(r) if r.has_unread() => {
                    with_records += 1;
                    only = Some(id);
                }
                Some(_) => {}
                // A writer on the socket path: its records are only seen by a drain.
                None => return None,
            }
        }
        if with_records == 1 {
            // Its first record needs no cut: any record published in another ring since was
            // written after it had been published, or at the same time (and a writer that
            // stamps its records as it likes could, with a cut of none, be overtaken by a
            // later one: the others are not looked at).
            let id = only?;
            return FirstRecord::of(id, st.conns.get_mut(id)?.ring.as_mut()?);
        }
        if with_records == 0 {
            return None;
        }
        // With messages in the queue, only the rings' most urgent priority counts (the queue's
        // head goes first unless a ring has a more urgent one): no cut.
        let (mut cut, mut fresh) = if queue_empty {
            (st.direct_cut, false)
        } else {
            (u64::MAX, true)
        };
        loop {
            let mut best: Option<FirstRecord> = None;
            let mut later = false;
            for (id, c) in st.conns.iter_mut() {
                #[cfg(test)]
                tests::call_hook(&tests::BEFORE_DIRECT_LOOK);
                // (A writer that came in on the socket path since: read the usual way.)
                let ring = c.ring.as_mut()?;
                if !ring.has_unread() {
                    continue;
                }
                let head = FirstRecord::of(id, ring)?;
                if head.rec.stamp > cut {
                    later = true;
                    continue;
                }
                let first = best.as_ref().is_none_or(|b| {
                    let (r, b) = (&head.rec, &b.rec);
                    r.priority > b.priority || (r.priority == b.priority && r.stamp < b.stamp)
                });
                if first {
                    best = Some(head);
                }
            }
            if !later || fresh {
                return best;
            }
            cut = sys::monotonic_ns();
            st.direct_cut = cut;
            fresh = true;
        }
    }

    /// The commonest read, without the set-up of [`take`](Self::take)'s loop: one writer, its
    /// ring holding records already looked at (one priority, see `first_if_uniform`), the
    /// queue empty and no look at the sockets due. It is exactly the first pass of that loop in
    /// this case (the same `read_direct`, and the count towards the next look at the sockets),
    /// so that the loop only has to begin when something else may be waiting. `None`: read the
    /// usual way (also when `read_direct` dropped the record: the loop looks again).
    // Inlined into `take`: a read of one writer's stream took 51 ns (`read_cost` 1 64 10000,
    // best of 40 rounds) through the loop, 45 ns this way.
    #[inline(always)]
    fn read_known(&self, st: &mut State, take: &mut Take<'_>) -> Option<Taken> {
        if matches!(take, Take::Peek(_) | Take::PeekMessage)
            || st.deleted
            || st.shared.is_some()
            || st.conns.len != 1
            || st.takes_since_drain + 1 >= DRAIN_EVERY
            || st.queue.head().is_some()
            || Self::wakes_to_stop(st)
        {
            return None;
        }
        let (id, c) = st.conns.iter_mut().next()?;
        let ring = c.ring.as_mut()?;
        if !ring.has_known_records() {
            return None;
        }
        let first = FirstRecord::of(id, ring)?;
        let t = match take {
            Take::Read(buf) => self.read_direct_into(st, &first, buf)?,
            Take::ReadMessage => self.read_direct_whole(st, &first)?,
            Take::Peek(_) | Take::PeekMessage => return None,
        };
        st.takes_since_drain += 1;
        Some(t)
    }

    /// The periodic look at the sockets when the rings are left alone (see `take`).
    fn drain_sockets_only(&self, st: &mut State) {
        self.clear_wake(st);
        let _ = self.drain_sockets(st);
        if st.waiters {
            self.notify_waiters(st);
        }
        if st.owing > 0 {
            // A reader that never runs out of messages never scans: rings of writers that hung
            // up and have been read are let go here (one-shot writers would pile up).
            self.let_go_read_rings(st);
        }
        if !st.queries.is_empty() {
            // The rings were left alone: the answer counts what is in them too.
            self.scan_rings(st, true);
            self.answer_queries(st);
        }
    }

    /// [`read_direct`](Self::read_direct) of a whole message: into a buffer of its own, made
    /// only for a record within the limit (one over it is dropped the usual way) and not
    /// zeroed first.
    fn read_direct_whole(&self, st: &mut State, first: &FirstRecord) -> Option<Taken> {
        if first.rec.len > self.config.max_message_size {
            return None;
        }
        let mut data = Vec::with_capacity(first.rec.len);
        let t = self.read_direct(st, first, usize::MAX, |ring, rec| {
            ring.data_into(rec, &mut data);
        })?;
        Some(t.into_message(data))
    }

    /// After a read straight from a ring: every [`DRAIN_EVERY`] reads, a look at the sockets.
    #[inline(always)]
    fn after_direct(&self, st: &mut State) {
        if st.takes_since_drain >= DRAIN_EVERY {
            st.takes_since_drain = 0;
            self.drain_sockets_only(st);
        }
    }

    /// [`read_direct`](Self::read_direct) into the caller's buffer.
    #[inline(always)]
    fn read_direct_into(
        &self,
        st: &mut State,
        first: &FirstRecord,
        buf: &mut [u8],
    ) -> Option<Taken> {
        self.read_direct(st, first, buf.len(), move |ring, rec| {
            ring.data_to(rec, &mut buf[..rec.len]);
        })
    }

    /// Reads `first` (found by [`Self::uniform_head`], with the priority checks done there)
    /// straight from its ring: the same as taking it in and reading the head when the queue is
    /// empty, without the copy into the queue and its bookkeeping. A record longer than `room`
    /// is left for the usual way; `copy` copies the data of one that passed the checks (all
    /// `rec.len` bytes of it). `None`: read the usual way.
    // Inlined into both callers (a read into a buffer, a whole message), for the same reason
    // as `uniform_head`.
    #[inline(always)]
    fn read_direct(
        &self,
        st: &mut State,
        first: &FirstRecord,
        room: usize,
        copy: impl FnOnce(&RingReader, &Record),
    ) -> Option<Taken> {
        let State {
            conns,
            incoming,
            pool,
            dropped,
            refused_remote,
            refused_behalf,
            waiters,
            orphans,
            ..
        } = st;
        let uid = conns.get(first.id)?.cred.uid;
        let others = plus(orphans.of(uid), conns.queued_by(uid, first.id));
        let c = conns.get_mut(first.id)?;
        let ring = c.ring.as_mut()?;
        // Borrowed, not copied: the record was just stored field by field, and a copy loads it
        // back in wider pieces (a read of one writer's stream: 46.5 → 44.5 ns).
        let (rec, next) = (&first.rec, first.next);
        if rec.len > room {
            return None; // the usual way says BufferTooSmall and keeps it
        }
        let mut sink = Sink {
            incoming,
            pool,
            dropped,
            refused_remote,
            refused_behalf,
        };
        let checked = self.check_record(
            &mut sink,
            &c.cred,
            ring,
            rec,
            (c.queued_bytes, c.queued_count),
            others,
        );
        if checked.is_some() {
            copy(ring, rec);
        }
        ring.skip_first(next, rec.len);
        // What a scan does once per batch: see whether the writer waits, hand room back. The
        // records read here never joined the queue, but until they are committed their writer
        // still counts them against the quota and the message limit: hand them back by the
        // same steps as reads from the queue do, or a writer would find a slot that it has
        // read empty still full.
        let (pending_bytes, pending_count) = ring.pending();
        let (step_bytes, step_count) = self.steps();
        let over = pending_bytes >= step_bytes as u64 || pending_count >= step_count as u64;
        let due = over || ring.uncommitted() >= ring.capacity() / 8;
        if first.batch_start || due {
            *waiters |= ring.writer_waiting();
            self.commit_rings(st, over);
        }
        let (len, sender) = checked?; // dropped (and counted): look again the usual way
        Some(Taken::Copied {
            len,
            priority: rec.priority,
            class: Class::from_number(rec.class.into()).unwrap_or_default(),
            sender,
        })
    }

    /// The spin budget for this wait: the configured spin, or none after [`SPIN_MAX_MISSES`]
    /// misses in a row, except that every [`SPIN_PROBE_EVERY`]th wait then tries again.
    fn spin_budget(&self, st: &mut State) -> Duration {
        if self.config.spin.is_zero() {
            return Duration::ZERO;
        }
        if !st
            .spin_tries
            .worth_trying(SPIN_MAX_MISSES, SPIN_PROBE_EVERY)
        {
            return Duration::ZERO;
        }
        self.config.spin
    }

    /// Removes the head, updating its writer's share.
    fn remove_head(&self, st: &mut State) -> Option<Message> {
        let e = st.queue.pop_entry()?;
        if let Some(c) = st.conns.get_mut(e.origin) {
            c.queued_bytes -= e.msg.data.len().min(c.queued_bytes);
            c.queued_count = c.queued_count.saturating_sub(1);
        } else {
            st.orphans.remove(e.origin, e.msg.data.len());
        }
        Some(e.msg)
    }

    /// [`apply`](Self::apply) for a shared slot: the head is in the store.
    fn apply_shared(&self, st: &mut State, take: Take<'_>) -> Result<Taken, ReadError> {
        let sh = st.shared.as_ref().ok_or(ReadError::Deleted)?;
        let head = sh.store.head().ok_or(ReadError::Timeout)?;
        let sender = sender_of(head.kind, &head.sender);
        let class = Class::from_number(head.class.into()).unwrap_or_default();
        let remove = matches!(take, Take::Read(_) | Take::ReadMessage);
        let taken = match take {
            Take::Read(buf) | Take::Peek(buf) => {
                if buf.len() < head.len {
                    return Err(ReadError::BufferTooSmall { needed: head.len });
                }
                sh.store.read_data(&head, &mut buf[..head.len]);
                Taken::Copied {
                    len: head.len,
                    priority: head.priority,
                    class,
                    sender,
                }
            }
            Take::ReadMessage | Take::PeekMessage => {
                let mut data = vec![0u8; head.len];
                sh.store.read_data(&head, &mut data);
                Taken::Message(Message {
                    data,
                    priority: head.priority,
                    class,
                    sender,
                })
            }
        };
        if remove {
            sh.store.pop(&head);
            let id = sh.by_ino.get(&head.origin).copied();
            if let Some(c) = id.and_then(|id| st.conns.get_mut(id)) {
                c.queued_bytes = c.queued_bytes.saturating_sub(head.len);
                c.queued_count = c.queued_count.saturating_sub(1);
                let (idx, qb, qc) = (c.idx, c.queued_bytes as u64, c.queued_count as u64);
                if let Some(sh) = st.shared.as_ref() {
                    sh.store.set_share(idx, qb, qc);
                }
            }
            self.after_remove(st);
        }
        Ok(taken)
    }

    fn apply(&self, st: &mut State, take: Take<'_>) -> Result<Taken, ReadError> {
        if st.shared.is_some() {
            return self.apply_shared(st, take);
        }
        let head = st.queue.head().ok_or(ReadError::Timeout)?;
        let len = head.data.len();
        let remove = matches!(take, Take::Read(_));
        let taken = match take {
            Take::Read(buf) | Take::Peek(buf) => {
                if buf.len() < len {
                    return Err(ReadError::BufferTooSmall { needed: len });
                }
                buf[..len].copy_from_slice(&head.data);
                let t = Taken::Copied {
                    len,
                    priority: head.priority,
                    class: head.class,
                    sender: head.sender,
                };
                if remove {
                    if let Some(m) = self.remove_head(st) {
                        st.pool.recycle(m.data);
                    }
                    self.after_remove(st);
                }
                t
            }
            Take::ReadMessage => {
                let m = self.remove_head(st).ok_or(ReadError::Timeout)?;
                self.after_remove(st);
                Taken::Message(m)
            }
            Take::PeekMessage => Taken::Message(head.clone()),
        };
        Ok(taken)
    }

    /// Queue state after draining.
    pub(crate) fn status(&self) -> Status {
        let mut st = self.lock();
        self.clear_wake(&mut st);
        let _ = self.drain(&mut st);
        st.reader_ops = st.reader_ops.wrapping_add(1);
        if let Some(sh) = &st.shared {
            let head = sh.store.head();
            return Status {
                count: sh.store.count() as usize,
                next_size: head.map(|h| h.len),
                next_priority: head.map(|h| h.priority),
                read_timeout: st.read_timeout,
            };
        }
        let head = st.queue.head();
        Status {
            count: st.queue.len(),
            next_size: head.map(|m| m.data.len()),
            next_priority: head.map(|m| m.priority),
            read_timeout: st.read_timeout,
        }
    }

    /// The slot's counters.
    pub(crate) fn counters(&self) -> Counters {
        let st = self.lock();
        Counters {
            dropped: st.dropped,
            refused_writers: st.refused,
            refused_remote: st.refused_remote,
            dropped_writers: st.dropped_writers,
            refused_behalf: st.refused_behalf,
        }
    }

    /// A reader is about to sleep: in `epoll` on the slot's descriptors, or (`futex`, see
    /// [`Self::may_futex_sleep`]) on the rings' wake words, the service thread then watching
    /// the sockets for it.
    pub(crate) fn begin_wait(&self, st: &mut State, futex: bool) {
        if let Some(sh) = st.shared.as_mut() {
            sh.count_asleep();
        }
        st.readers_waiting += 1;
        let before = Self::wake_mode(st);
        st.futex_sleep |= futex;
        st.wake_me = true;
        self.publish_wake(st, before);
        if st.futex_sleep {
            // Somebody must watch the sockets (new writers, socket records, hang-ups).
            if st.arming == Arming::Idle && !st.deferred {
                self.service.arm(self);
                st.arming = Arming::Armed;
            }
        } else if st.arming == Arming::Armed {
            self.service.disarm(self);
            st.arming = Arming::Idle;
        }
    }

    /// A reader woke (`futex`: the one that slept on the rings' wake words).
    pub(crate) fn end_wait(&self, st: &mut State, futex: bool) {
        // (A polled handle stays counted as asleep: see `polled_shared`.)
        if st.readers_waiting == 1 && !st.polled {
            if let Some(sh) = st.shared.as_mut() {
                sh.count_awake();
            }
        }
        st.readers_waiting -= 1;
        st.reader_ops = st.reader_ops.wrapping_add(1);
        if futex {
            // Another reader may still sleep (in `epoll`): writers asked to wake us send
            // bytes again.
            let before = Self::wake_mode(st);
            st.futex_sleep = false;
            self.publish_wake(st, before);
            // A writer that woke the futex set its ring's word: cleared, so that the next
            // wake-up it is asked for (a byte, maybe) is sent.
            Self::clear_rings_wake_sent(st);
        }
        if (st.readers_waiting == 0 || st.futex_sleep) && st.arming == Arming::Idle && !st.deferred
        {
            self.service.arm(self);
            st.arming = Arming::Armed;
        }
    }

    /// Whether a reader about to sleep may sleep on the rings' futex words instead of in
    /// `epoll` (writers then wake it with `FUTEX_WAKE`, a cheaper call than a wake-up byte and
    /// its `epoll` and `recvmsg`). Only the one reader of an unshared slot whose descriptor
    /// nobody polls (a poller must hear of every message on the descriptor), with 1 to
    /// [`FUTEX_MAX_RINGS`] ring writers; after a run of sleeps that brought nothing (a writer
    /// that keeps setting its word) readers sleep in `epoll` for a while.
    fn may_futex_sleep(&self, st: &mut State) -> bool {
        if st.shared.is_some()
            || st.polled
            || st.readers_waiting > 0
            || self.fds.get().is_none()
            || !FUTEX_WORKS.load(Ordering::Relaxed)
        {
            return false;
        }
        let rings = st.conns.values().filter(|c| c.ring.is_some()).count();
        if rings == 0 || rings > FUTEX_MAX_RINGS {
            return false;
        }
        st.futex_tries
            .worth_trying(FUTEX_MAX_MISSES, FUTEX_PROBE_EVERY)
    }

    /// Sleeps on the rings' wake words and the slot's own word until one is woken or
    /// `timeout` passes (the lock is let go meanwhile). Called after
    /// `begin_wait(.., true)` and a last look at the rings.
    fn futex_wait<'a>(
        &'a self,
        st: Guard<'a>,
        timeout: Option<Duration>,
    ) -> (Guard<'a>, io::Result<sys::FutexWake>) {
        let mut words = vec![sys::futex_word(
            self.sleep_word.as_ptr(),
            self.sleep_word.load(Ordering::SeqCst),
            false,
        )];
        // Addresses only, for the kernel: a ring unmapped while this reader sleeps (a delete
        // in another thread, which wakes it too) makes the wait end (`EFAULT`), nothing worse.
        words.extend(
            st.conns
                .values()
                .filter_map(|c| c.ring.as_ref())
                .map(|r| sys::futex_word(r.wake_word().as_ptr(), 0, true)),
        );
        drop(st);
        let r = sys::futex_waitv(&words, timeout);
        (self.lock(), r)
    }

    /// Closes the slot: frees the name at once, tells writers, drops the queue.
    ///
    /// In a forked child that inherited the handle this does nothing shared: the control page and
    /// the service epoll are the parent's, and the parent's mailslot must live on. The child's
    /// copies of the descriptors are closed when the slot is dropped.
    pub(crate) fn close(&self) {
        if sys::getpid() != self.creator_pid {
            return;
        }
        // The name first: no writer is sent here any more.
        if self.registered.swap(false, Ordering::AcqRel) {
            self.service.unregister_name(self.token);
        }
        self.service.unregister(self);
        if let Cell::Idle {
            listener, arming, ..
        } = &mut *self.cell()
        {
            // No writer ever came: there is no control page to mark, nothing queued.
            *listener = None;
            *arming = Arming::Closed;
            return;
        }
        let mut st = self.lock();
        if st.arming == Arming::Closed {
            return;
        }
        // A shared slot lives on in its other holders: only this holder lets go.
        if st.shared.is_none() {
            if let Some((_, c)) = &st.control {
                c.close();
            }
            self.release(&mut st, false);
            return;
        }
        let control = st.control.take();
        self.release(&mut st, false);
        // Was this the last holder? Every holder (and every handle descriptor not taken up yet)
        // keeps the listening socket, so its name is gone exactly when nobody can read any
        // more. Then writers are told at once, as when an unshared slot closes (they would see
        // the hang-up within a millisecond anyway).
        if let Some((fds, c)) = control {
            drop(fds);
            let gone = sys::seqpacket(true)
                .and_then(|probe| sys::connect_abstract(&probe, &address(&self.config.name.key())));
            if gone.is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED)) {
                c.close();
            }
        }
    }
}

/// The store's settings for a slot's configuration.
fn settings(config: &Config, read_timeout: Timeout) -> store::Settings {
    let (access_kind, access_gid) = match config.access {
        Access::Owner => (0, 0),
        Access::Group(g) => (1, g),
        Access::Everyone => (2, 0),
    };
    store::Settings {
        max_message_size: config.max_message_size as u64,
        quota: config.quota as u64,
        max_messages: config.max_messages as u64,
        access_kind,
        access_gid,
        owner_uid: config.owner_uid,
        accept_remote: config.accept_remote,
        spin_ns: config.spin.as_nanos().min(u128::from(u64::MAX)) as u64,
        read_timeout_ms: timeout_ms(read_timeout),
        name: config.name.to_string(),
    }
}

fn timeout_ms(t: Timeout) -> u64 {
    match t {
        Timeout::Forever => store::FOREVER,
        Timeout::After(d) => (d.as_millis().min(u128::from(store::FOREVER - 1))) as u64,
    }
}

fn timeout_from_ms(ms: u64) -> Timeout {
    if ms == store::FOREVER {
        Timeout::Forever
    } else {
        Timeout::After(Duration::from_millis(ms))
    }
}

/// Sender kinds in the store.
const KIND_LOCAL: u8 = 0;
const KIND_REMOTE: u8 = 1;

fn sender_block(sender: &Sender) -> (u8, [u8; store::SENDER]) {
    let mut b = [0u8; store::SENDER];
    match sender {
        Sender::Local { pid, uid, gid } => {
            b[..BEHALF_LEN].copy_from_slice(&super::encode_behalf(*pid, *uid, *gid));
            (KIND_LOCAL, b)
        }
        Sender::Remote { name, ip } => {
            b[..REMOTE_LEN].copy_from_slice(&super::encode_remote(name.as_str(), *ip));
            (KIND_REMOTE, b)
        }
    }
}

/// A queued message as a record of the shared store; `origin` is its connection's inode.
fn record_of(e: &Entry, origin: u64) -> NewRecord<'_> {
    let (kind, sender) = sender_block(&e.msg.sender);
    NewRecord {
        priority: e.msg.priority,
        class: e.msg.class.number(),
        kind,
        sender,
        stamp: e.seq,
        origin,
        data: &e.msg.data,
    }
}

/// The ring record to read next (see `Slot::uniform_head`), where the next one in its ring
/// starts, and whether it starts a batch (the writer's tail was read for it).
struct FirstRecord {
    id: u64,
    rec: Record,
    next: u64,
    batch_start: bool,
}

impl FirstRecord {
    /// The first record of `ring` (connection `id`) when the ring holds one priority (see
    /// `RingReader::first_if_uniform`).
    // Inlined as `first_if_uniform` is: returned through memory, the record stalls the read
    // that loads it back (eight rings: 105 → 150 ns a read when this was a call).
    #[inline(always)]
    fn of(id: u64, ring: &mut RingReader) -> Option<Self> {
        let batch_start = !ring.has_known_records();
        let (rec, next) = ring.first_if_uniform()?;
        Some(Self {
            id,
            rec,
            next,
            batch_start,
        })
    }
}

/// Where a scan found a ring of a shared slot (to put it back when the store has no room).
#[derive(Clone)]
struct Scanned {
    id: u64,
    pos: (u64, u64, u64),
    queued_bytes: usize,
    queued_count: usize,
}

/// Two (bytes, messages) counts together.
fn plus(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

fn sender_of(kind: u8, b: &[u8; store::SENDER]) -> Sender {
    let unknown = Sender::Local {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    match kind {
        KIND_REMOTE => decode_remote(&b[..REMOTE_LEN])
            .map_or(unknown, |(name, ip)| Sender::Remote { name, ip }),
        _ => decode_behalf(&b[..BEHALF_LEN]).map_or(unknown, |(pid, uid, gid)| Sender::Local {
            pid,
            uid,
            gid,
        }),
    }
}

fn share_io(e: io::Error) -> crate::ShareError {
    crate::ShareError::Io(e)
}

impl Slot {
    // ---- shared owner handles ----

    /// Takes the holders' lock and brings this process's view of a shared slot up to date.
    /// Without `wait`, returns `false` (nothing done) when another holder has the lock.
    fn sync_in(&self, st: &mut State, wait: bool) -> bool {
        let Some(sh) = st.shared.as_mut() else {
            return true;
        };
        let taken = if wait {
            sh.store.lock().map(Some)
        } else {
            sh.store.try_lock()
        };
        let repaired = match taken {
            Ok(Some(repaired)) => repaired,
            Ok(None) => return false,
            Err(_) => {
                // The lock is broken beyond repair: this handle can do nothing more.
                self.release(st, true);
                return true;
            }
        };
        sh.locked = true;
        if sh.store.is_deleted() {
            self.release(st, true);
            return true;
        }
        st.read_timeout = timeout_from_ms(sh.store.read_timeout());
        if let Some((_, c)) = &st.control {
            st.wake_me = c.wake() != Wake::Off;
            let (b, n) = c.used();
            st.published = (b as usize, n as usize);
        }
        let (generation, epoch) = (sh.store.generation(), sh.store.epoch());
        if generation != sh.gen_seen {
            self.refresh(st);
        } else if epoch != sh.epoch_seen {
            self.load_positions(st);
        }
        if repaired {
            // The dead holder may have read a writer's wake-up byte and not yet told it so:
            // that writer would send no other for ever. Told now, it may send one more than
            // needed (a reader that finds nothing new goes back to sleep).
            Self::clear_rings_wake_sent(st);
        }
        true
    }

    /// Writes this process's view of a shared slot back and lets go of the holders' lock.
    fn sync_out(&self, st: &mut State) {
        // Every writer learns what was taken in (another holder may read next).
        self.commit_rings(st, true);
        let Some(sh) = st.shared.as_mut() else {
            return;
        };
        if sh.park_dirty {
            sh.park_dirty = false;
            Self::repark(sh);
        }
        sh.read_timeout_out(st.read_timeout);
        sh.gen_seen = sh.store.generation();
        sh.epoch_seen = sh.store.epoch();
        if sh.pushed {
            sh.pushed = false;
            if sh.store.others_asleep(sh.sleeping, sys::coarse_ns()) {
                sys::eventfd_signal(sh.doorbell.as_raw_fd());
            }
        }
        sh.locked = false;
        sh.store.unlock();
    }

    /// Reads the read positions and shares of this process's connections from the store.
    fn load_positions(&self, st: &mut State) {
        let Some(sh) = st.shared.as_mut() else {
            return;
        };
        for (_, c) in st.conns.iter_mut() {
            if let (Some(r), Some(e)) = (c.ring.as_mut(), sh.store.entry(c.idx)) {
                r.set_position((e.pos.head, e.pos.bytes, e.pos.count));
                // Told to the writer already, unless a holder died between taking the records
                // into the store and telling it: then it is told again (it would count them
                // against the quota for ever).
                r.assume_committed_if_told();
                c.queued_bytes = e.pos.queued_bytes as usize;
                c.queued_count = e.pos.queued_count as usize;
            }
        }
        sh.epoch_seen = sh.store.epoch();
    }

    /// Takes the park's connections: drops those no longer in the store's table, sends the
    /// live ones back, and makes this process's connections the same set.
    fn refresh(&self, st: &mut State) {
        let Some(sh) = st.shared.as_mut() else {
            return;
        };
        let (live, whole) = Self::rotate_park(sh);
        // Forget connections that are gone (known only after a whole round).
        let keep: HashMap<u32, u64> = live.iter().map(|(idx, ino, _, _)| (*idx, *ino)).collect();
        let gone: Vec<u64> = st
            .conns
            .iter_mut()
            .filter(|(_, c)| whole && keep.get(&c.idx) != Some(&c.ino))
            .map(|(id, _)| id)
            .collect();
        for id in gone {
            self.forget_conn(st, id);
        }
        let have: HashSet<u32> = st.conns.values().map(|c| c.idx).collect();
        for (idx, ino, conn, ring_fd) in live {
            if have.contains(&idx) {
                continue;
            }
            let (Ok(cred), Ok(ring)) = (sys::peer_cred(&conn), RingReader::attach(&ring_fd)) else {
                continue;
            };
            self.add_conn(st, conn, cred, Some(ring), Some(ring_fd), idx, ino);
        }
        self.load_positions(st);
        if let (Some(sh), true) = (st.shared.as_mut(), whole) {
            // (A round cut short is tried again at the next operation.)
            sh.gen_seen = sh.store.generation();
        }
    }

    /// Sends connections to the park.
    fn park(sh: &Shared, conns: &[(u32, u64, OwnedFd, OwnedFd)]) -> io::Result<()> {
        Self::park_through(&sh.park_a, conns)
    }

    /// Sends connections to the park whose sending end is `park_a`.
    fn park_through(park_a: &OwnedFd, conns: &[(u32, u64, OwnedFd, OwnedFd)]) -> io::Result<()> {
        #[cfg(test)]
        if tests::PARK_FAILS.with(std::cell::Cell::get) {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        for chunk in conns.chunks(PARK_PAIRS) {
            let fds: Vec<RawFd> = chunk
                .iter()
                .flat_map(|(_, _, c, r)| [c.as_raw_fd(), r.as_raw_fd()])
                .collect();
            sys::send_parts(park_a.as_raw_fd(), &[b"P"], &fds, true)?;
        }
        Ok(())
    }

    /// Writes the park anew with the live connections only (so that gone ones are let go).
    fn repark(sh: &Shared) {
        drop(Self::rotate_park(sh));
    }

    /// Goes once round the park (with the holders' lock, under which every live connection is
    /// parked), keeping the connections the store's table still has; returns them (table index,
    /// connection inode, connection, ring) and whether the round was whole. A table entry whose
    /// connection is not in the park belongs to a holder that died between making the entry and
    /// parking the connection (which died with it): a whole round frees it.
    ///
    /// A holder may die at any instruction, and the connections in the park exist nowhere
    /// else once the holder that accepted them is gone. So no message leaves the front before
    /// its live connections are at the back: each is looked at (`MSG_PEEK`, which duplicates
    /// its descriptors into this process), sent again, and only then taken off. A holder that
    /// dies during a round leaves duplicates (dropped by the next round), never a gap. A
    /// marker (a message without descriptors, naming this round) tells where the round ends;
    /// markers left by rounds that died are dropped. When the park cannot take a message (it
    /// is full), the round stops with the park as it is, and nothing is freed or forgotten.
    fn rotate_park(sh: &Shared) -> (Vec<(u32, u64, OwnedFd, OwnedFd)>, bool) {
        Self::rotate_park_until(sh, usize::MAX)
    }

    /// [`rotate_park`](Self::rotate_park) that stops after `steps` changes to the park, as a
    /// holder killed there would (tests).
    fn rotate_park_until(
        sh: &Shared,
        mut steps: usize,
    ) -> (Vec<(u32, u64, OwnedFd, OwnedFd)>, bool) {
        let mut step = || {
            steps = steps.saturating_sub(1);
            steps == 0
        };
        let table: HashMap<(u64, u64), u32> = sh
            .store
            .entries()
            .into_iter()
            .map(|(i, e)| ((e.conn_ino, e.ring_ino), i))
            .collect();
        let (a, b) = (sh.park_a.as_raw_fd(), sh.park_b.as_raw_fd());
        let round = (sys::monotonic_ns() ^ (u64::from(std::process::id()) << 40)).to_le_bytes();
        let marker = [&b"M"[..], &round[..]].concat();
        let mut live = Vec::new();
        if sys::send_parts(a, &[&marker], &[], true).is_err() || step() {
            return (live, false);
        }
        let mut seen = HashSet::new();
        let mut buf = [0u8; 16];
        let mut resent = 0;
        let whole = loop {
            let Ok(Some(got)) = sys::peek_msg(b, &mut buf) else {
                break false; // our own marker is in there: only an error ends here
            };
            if got.fds_cut {
                break false; // out of descriptors: not every connection could be looked at
            }
            if got.fds.is_empty() {
                drop(sys::recv_msg(b, &mut buf, false));
                if step() {
                    break false;
                }
                if got.len == marker.len() && buf[..marker.len()] == marker[..] {
                    break true;
                }
                continue; // a marker of a round that died, or nothing
            }
            let mut keep = Vec::new();
            let mut it = got.fds.into_iter();
            while let (Some(c), Some(r)) = (it.next(), it.next()) {
                let (Ok((_, ci)), Ok((_, ri))) =
                    (sys::file_id(c.as_raw_fd()), sys::file_id(r.as_raw_fd()))
                else {
                    continue;
                };
                if let Some(&idx) = table.get(&(ci, ri)) {
                    if seen.insert(idx) {
                        keep.push((idx, ci, c, r));
                    }
                }
            }
            if Self::park(sh, &keep).is_err() || step() {
                break false;
            }
            resent += keep.len().div_ceil(PARK_PAIRS);
            live.extend(keep);
            drop(sys::recv_msg(b, &mut buf, true));
            if step() {
                break false;
            }
        };
        if whole {
            for &idx in table.values() {
                if !seen.contains(&idx) {
                    sh.store.free(idx);
                }
            }
            if resent > live.len().div_ceil(PARK_PAIRS) + PARK_HEADROOM {
                Self::pack_park(sh, &live, resent);
            }
        }
        (live, whole)
    }

    /// Messages the park can still take (its send buffer counts every queued message; the
    /// queued data is a byte per message and a few per marker, so this errs on the safe side).
    fn park_room(sh: &Shared) -> usize {
        let cap = sys::send_buffer_size(&sh.park_a).unwrap_or(0) / PARK_MESSAGE_COST;
        let queued = sys::queued_bytes(&sh.park_b).map_or(usize::MAX, |n| n as usize);
        cap.saturating_sub(queued)
    }

    /// After a whole round the park holds the round's `resent` messages, in the order of
    /// `live`, each with what one message had before (one connection each, for the connections
    /// accepted one by one): packs them into as few messages as they need, so that the park
    /// has room for many more. Each packed message is sent before the messages it replaces
    /// are taken off (a holder that dies here leaves copies, which the next round drops, never
    /// a gap), so packing needs room for one message only.
    fn pack_park(sh: &Shared, live: &[(u32, u64, OwnedFd, OwnedFd)], mut resent: usize) {
        let b = sh.park_b.as_raw_fd();
        let mut buf = [0u8; 16];
        let mut packed: HashSet<(u64, u64)> = HashSet::new();
        for chunk in live.chunks(PARK_PAIRS) {
            if Self::park(sh, chunk).is_err() {
                return;
            }
            for (_, ci, _, r) in chunk {
                if let Ok((_, ri)) = sys::file_id(r.as_raw_fd()) {
                    packed.insert((*ci, ri));
                }
            }
            // Take off the messages at the front whose connections are all in packed ones.
            while resent > 0 {
                let Ok(Some(got)) = sys::peek_msg(b, &mut buf) else {
                    return;
                };
                let mut it = got.fds.iter();
                let mut all = !got.fds.is_empty();
                while let (Some(c), Some(r)) = (it.next(), it.next()) {
                    let ids = sys::file_id(c.as_raw_fd())
                        .and_then(|(_, ci)| Ok((ci, sys::file_id(r.as_raw_fd())?.1)));
                    all &= ids.is_ok_and(|ids| packed.contains(&ids));
                }
                if !all {
                    break;
                }
                drop(sys::recv_msg(b, &mut buf, true));
                resent -= 1;
            }
        }
    }

    /// Adds a connection to this process's set and its epoll.
    #[allow(clippy::too_many_arguments)]
    fn add_conn(
        &self,
        st: &mut State,
        conn: OwnedFd,
        cred: PeerCred,
        ring: Option<RingReader>,
        ring_fd: Option<OwnedFd>,
        idx: u32,
        ino: u64,
    ) -> bool {
        let id = st.conns.next_id();
        let Ok(fds) = self.fds(st) else {
            return false;
        };
        if sys::epoll_ctl(
            fds.epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            conn.as_raw_fd(),
            (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            id,
        )
        .is_err()
        {
            return false;
        }
        *st.per_uid.entry(cred.uid).or_insert(0) += 1;
        if let Some(sh) = st.shared.as_mut() {
            sh.by_ino.insert(ino, id);
        }
        st.conns.insert_at(
            id,
            Conn {
                fd: conn,
                cred,
                ring,
                ring_fd,
                idx,
                ino,
                queued_bytes: 0,
                queued_count: 0,
                closing: false,
                owed: None,
            },
        );
        true
    }

    /// Rings the doorbell of a shared slot.
    fn ring_doorbell(st: &State) {
        if let Some(sh) = &st.shared {
            sys::eventfd_signal(sh.doorbell.as_raw_fd());
        }
    }

    /// Moves the slot's queue into a new shared store and makes the core of a shared handle.
    /// Called with the state locked; the holders' lock is then held too (the guard lets go).
    fn make_shared(&self, st: &mut State) -> Result<(), crate::ShareError> {
        self.fds(st).map_err(share_io)?;
        if st.control.is_none() {
            let (fds, c) = Control::create().map_err(share_io)?;
            c.set_wake(Self::wake_mode(st));
            c.set_used(st.published.0, st.published.1);
            st.control = Some((fds, c));
        }
        // Holders take in rings separately and merge them in the store by stamp.
        if let Some((_, c)) = &st.control {
            c.set_sole_writer(false);
        }
        // Take in what the sockets and the rings hold first, so that the store is made large
        // enough for it (and a writer on the socket path, let go below, loses nothing it sent).
        let _ = self.drain_sockets(st);
        self.scan_rings(st, true);
        // Every level holds what the queue has at its priority: writers that wrote at the same
        // instant may have gone past the quota together, and root's, the daemon's and the
        // owner's users' connections are held to no user's share. Nothing queued is lost.
        let queued = st
            .queue
            .levels()
            .iter()
            .map(|l| {
                l.iter()
                    .map(|e| store::record_size(e.msg.data.len()))
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        let (store_fd, mut store) =
            Store::create(&settings(&self.config, st.read_timeout), queued).map_err(share_io)?;
        let (park_a, park_b) = sys::seqpacket_pair().map_err(share_io)?;
        // Room for more connections in flight than the default buffer holds (where allowed).
        let _ = sys::set_send_buffer_size(&park_a, PARK_BUFFER);
        let doorbell = sys::eventfd().map_err(share_io)?;
        let (core_a, core_b) = sys::seqpacket_pair().map_err(share_io)?;
        {
            let (Some(listener), Some((cfds, _))) = (&st.listener, &st.control) else {
                return Err(crate::ShareError::Deleted);
            };
            let pass = [
                listener.as_raw_fd(),
                store_fd.as_raw_fd(),
                cfds.rw.as_raw_fd(),
                cfds.ro.as_raw_fd(),
                doorbell.as_raw_fd(),
                park_a.as_raw_fd(),
                park_b.as_raw_fd(),
            ];
            sys::send_parts(core_a.as_raw_fd(), &[CORE_MAGIC], &pass, true).map_err(share_io)?;
        }
        drop(core_a);
        if let Some(f) = self.fds.get() {
            sys::epoll_ctl(
                f.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                doorbell.as_raw_fd(),
                (libc::EPOLLIN | libc::EPOLLET) as u32,
                TOKEN_DOORBELL,
            )
            .map_err(share_io)?;
        }
        store.lock().map_err(share_io)?;
        // Every writer's ring gets its entry in the store's table and is parked (each a step
        // that can fail: the table or the park full, out of descriptors) before anything of
        // this handle changes: a handle that cannot be shared stays as it was, its queue and
        // its writers with it.
        store.begin();
        let mut parked = Vec::new();
        let mut placed = Vec::new();
        for (id, c) in st.conns.iter_mut() {
            let (Some(_), Some(ring_fd)) = (c.ring.as_ref(), c.ring_fd.as_ref()) else {
                continue;
            };
            let ((_, ci), (_, ri)) = (
                sys::file_id(c.fd.as_raw_fd()).map_err(share_io)?,
                sys::file_id(ring_fd.as_raw_fd()).map_err(share_io)?,
            );
            let idx = store.alloc(ci, ri, true).ok_or_else(|| {
                share_io(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "more writer connections than a shared mailslot holds",
                ))
            })?;
            store.stage_ring(idx, &c.ring_pos());
            let cd = sys::dup_cloexec(c.fd.as_raw_fd()).map_err(share_io)?;
            let rd = sys::dup_cloexec(ring_fd.as_raw_fd()).map_err(share_io)?;
            parked.push((idx, ci, cd, rd));
            placed.push((id, idx, ci));
        }
        Self::park_through(&park_a, &parked).map_err(share_io)?;
        drop(parked);
        // From here on nothing fails: move the connections and the queue over (what writers
        // published since the rings were taken in above stays in the rings, for the holders
        // to take in).
        let ring_less: Vec<u64> = st
            .conns
            .iter_mut()
            .filter(|(_, c)| c.ring_fd.is_none())
            .map(|(id, _)| id)
            .collect();
        for id in ring_less {
            // A writer on the socket path (no ring) cannot be handed to other holders.
            self.remove_conn(st, id);
        }
        for (id, idx, ci) in placed {
            if let Some(c) = st.conns.get_mut(id) {
                c.idx = idx;
                c.ino = ci;
            }
        }
        let inos: HashMap<u64, u64> = st.conns.iter_mut().map(|(id, c)| (id, c.ino)).collect();
        while let Some(e) = st.queue.pop_entry() {
            if !store.stage(&record_of(&e, inos.get(&e.origin).copied().unwrap_or(0))) {
                st.dropped += 1;
            }
        }
        store.commit();
        let mut sh = Box::new(Shared {
            store,
            core: core_b,
            inheritable: None,
            park_a,
            park_b,
            doorbell,
            gen_seen: 0,
            epoch_seen: 0,
            locked: true,
            pushed: false,
            park_dirty: false,
            sleeping: false,
            by_ino: HashMap::new(),
        });
        sh.by_ino = st.conns.iter_mut().map(|(id, c)| (c.ino, id)).collect();
        sh.store.bump_generation();
        sh.gen_seen = sh.store.generation();
        sh.epoch_seen = sh.store.epoch();
        st.shared = Some(sh);
        // The store keeps its own shares (and bounds the queue by its size).
        st.orphans = Orphans::default();
        self.polled_shared(st);
        Ok(())
    }

    /// A shared slot whose descriptor a program may poll instead of waiting in a read (an
    /// event loop, `AsyncMailslot`, the C API's `MailslotGetPollFd`): this process counts as
    /// asleep in the store for as long as it holds the handle, so that other holders ring the
    /// doorbell when they queue messages, and the service thread looks at the slot every
    /// [`SHARED_LOOK_EVERY`] (see [`look`](Self::look)) as a read that waits does.
    fn polled_shared(&self, st: &mut State) {
        if !st.polled {
            return;
        }
        let Some(sh) = st.shared.as_mut() else {
            return;
        };
        sh.count_asleep();
        self.service.look_at(self.token);
    }

    /// The service thread's look at a polled shared slot (every [`SHARED_LOOK_EVERY`]): takes
    /// the holders' lock (which mends what a holder that died left), asks writers for wake-ups
    /// again (a holder that died in a read may have told them not to send any), takes in the
    /// rings and wakes the poller when a message is queued. Returns `false` once the slot no
    /// longer needs looking at.
    pub(crate) fn look(&self) -> bool {
        let Ok(mut st) = self.try_lock() else {
            // Somebody has the lock (and looks at the slot): next time.
            return true;
        };
        if st.shared.is_none() || st.deleted || st.arming == Arming::Closed {
            return false;
        }
        // (This process counts as asleep since `polled_shared`.)
        self.set_wake_me(&mut st, true);
        if self.drain(&mut st).is_ok() && Self::has_head(&st) {
            self.signal_wake(&mut st);
        }
        true
    }

    /// This handle's shared part, made on first use (see [`make_shared`](Self::make_shared)).
    fn shared_part<'a>(&self, st: &'a mut State) -> Result<&'a mut Shared, crate::ShareError> {
        if st.deleted || st.arming == Arming::Closed {
            return Err(crate::ShareError::Deleted);
        }
        if st.shared.is_none() {
            // Every holder serves the name's own listener: a name in the directory gets one.
            self.promote(st).map_err(share_io)?;
            self.make_shared(st)?;
        }
        st.shared.as_deref_mut().ok_or(crate::ShareError::Deleted)
    }

    /// A new descriptor of this owner handle for another process (see `Mailslot::share`).
    pub(crate) fn share(&self) -> Result<OwnedFd, crate::ShareError> {
        let mut st = self.lock();
        let sh = self.shared_part(&mut st)?;
        sys::dup_cloexec(sh.core.as_raw_fd()).map_err(share_io)
    }

    /// The handle's inheritable descriptor (see `Mailslot::inheritable`).
    pub(crate) fn inheritable(&self) -> Result<RawFd, crate::ShareError> {
        let mut st = self.lock();
        let sh = self.shared_part(&mut st)?;
        if sh.inheritable.is_none() {
            sh.inheritable = Some(sys::dup_inheritable(&sh.core).map_err(share_io)?);
        }
        Ok(sh.inheritable.as_ref().map_or(-1, AsRawFd::as_raw_fd))
    }

    /// Takes up a descriptor made by [`share`](Self::share).
    pub(crate) fn from_shared(core: OwnedFd) -> Result<Arc<Self>, crate::ShareError> {
        let not = |why: &str| crate::ShareError::NotAMailslot(why.to_string());
        let mut buf = [0u8; 16];
        let got = match sys::peek_msg(core.as_raw_fd(), &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(not("no mailslot handle on this descriptor")),
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Err(not("not a socket")),
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                return Err(not("not an open descriptor"))
            }
            Err(e) => return Err(share_io(e)),
        };
        if got.len == 0 && got.fds.is_empty() {
            // The handle's message was taken off at delete (see `delete`), and the socket's
            // other end is long closed: what a descriptor of a deleted mailslot looks like.
            return Err(crate::ShareError::Deleted);
        }
        if got.len != CORE_MAGIC.len()
            || buf[..CORE_MAGIC.len()] != CORE_MAGIC[..]
            || got.fds.len() != CORE_FDS
        {
            return Err(not("not a mailslot handle"));
        }
        let mut fds = got.fds.into_iter();
        let (
            Some(listener),
            Some(store_fd),
            Some(rw),
            Some(ro),
            Some(doorbell),
            Some(park_a),
            Some(park_b),
        ) = (
            fds.next(),
            fds.next(),
            fds.next(),
            fds.next(),
            fds.next(),
            fds.next(),
            fds.next(),
        )
        else {
            return Err(not("a mailslot handle without its descriptors"));
        };
        let (store, set) = Store::attach(&store_fd).map_err(|e| not(&format!("bad store: {e}")))?;
        let control = Control::attach_rw(&rw).map_err(|e| not(&format!("bad control: {e}")))?;
        let name = Name::parse(&set.name).map_err(|_| not("bad name in the store"))?;
        let access = match set.access_kind {
            0 => Access::Owner,
            1 => Access::Group(set.access_gid),
            _ => Access::Everyone,
        };
        let config = Config {
            name,
            max_message_size: set.max_message_size as usize,
            quota: set.quota as usize,
            max_messages: set.max_messages as usize,
            access,
            owner_uid: set.owner_uid,
            accept_remote: set.accept_remote,
            spin: Duration::from_nanos(set.spin_ns),
        };
        if store.is_deleted() {
            return Err(crate::ShareError::Deleted);
        }
        let sh = Box::new(Shared {
            store,
            core,
            inheritable: None,
            park_a,
            park_b,
            doorbell,
            // Unlike any generation: the first lock takes the park's connections.
            gen_seen: u64::MAX,
            epoch_seen: u64::MAX,
            locked: false,
            pushed: false,
            park_dirty: false,
            sleeping: false,
            by_ino: HashMap::new(),
        });
        let read_timeout = timeout_from_ms(set.read_timeout_ms);
        let service = service::get().map_err(share_io)?;
        let token = service.next_token();
        Self::with_parts(
            config,
            read_timeout,
            Some(listener),
            Some((ControlFds { rw, ro }, control)),
            Some(sh),
            token,
            service,
        )
        .map_err(share_io)
    }

    /// Deletes the slot for every holder.
    pub(crate) fn delete(&self) {
        if sys::getpid() != self.creator_pid {
            return;
        }
        {
            let mut st = self.lock();
            if let Some(sh) = st.shared.as_mut() {
                if sh.locked {
                    sh.store.set_deleted();
                    sh.store.clear();
                    // Let go of the parked connections at once (writers see the hang-up as
                    // soon as every holder has closed its copies).
                    let mut buf = [0u8; 16];
                    while let Ok(Some(_)) = sys::recv_msg(sh.park_b.as_raw_fd(), &mut buf, true) {}
                }
                // Take the handle's message off its socket: a descriptor made by `share` and
                // never taken up then no longer holds the listener in flight, so the name is
                // free as soon as the holders have let go; taking it up now gives `Deleted`.
                let mut head = [0u8; 16];
                drop(sys::recv_msg(sh.core.as_raw_fd(), &mut head, true));
                Self::ring_doorbell(&st);
            }
            if let Some((_, c)) = &st.control {
                c.close();
            }
        }
        self.close();
    }

    /// Lets go of everything this process holds of the slot. `dead`: the slot was deleted (or
    /// its store broke): this handle's reads fail from now on.
    fn release(&self, st: &mut State, dead: bool) {
        if let Some(sh) = st.shared.as_mut() {
            sh.count_awake();
            // (Without the lock the store's count stays as it is: as after a death.)
            sh.sleeping = false;
        }
        if st.shared.as_ref().is_some_and(|sh| sh.locked) {
            self.sync_out(st);
        }
        if dead {
            st.deleted = true;
        }
        st.arming = Arming::Closed;
        st.listener = None;
        st.conns.clear();
        st.per_uid.clear();
        st.orphans = Orphans::default();
        st.queue = Queue::default();
        st.shared = None;
        if dead {
            // A reader asleep in another thread wakes up and sees it.
            self.signal_wake(st);
        }
    }
}

impl Shared {
    fn read_timeout_out(&self, t: Timeout) {
        let ms = timeout_ms(t);
        if self.store.read_timeout() != ms {
            self.store.set_read_timeout(ms);
        }
    }
}

/// Where `scan_rings` puts what it takes in (the parts of [`State`] besides the connections).
struct Sink<'a> {
    incoming: &'a mut Vec<Entry>,
    pool: &'a mut BufferPool,
    dropped: &'a mut u64,
    refused_remote: &'a mut u64,
    refused_behalf: &'a mut u64,
}

/// The writer connections of a slot: a slab whose ids (index and a generation, never 0) stay
/// unique for the life of the slot, so that a queued message's `origin` never names a later
/// connection that took the same place.
#[derive(Default)]
struct Conns {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    len: usize,
}

impl Conns {
    fn split(id: u64) -> (usize, u32) {
        ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
    }

    /// The id the next [`insert_at`](Self::insert_at) must use.
    fn next_id(&mut self) -> u64 {
        let index = match self.free.last() {
            Some(&i) => i,
            None => {
                self.slots.push((0, None));
                self.free.push(self.slots.len() as u32 - 1);
                self.slots.len() as u32 - 1
            }
        };
        let generation = self.slots[index as usize].0.wrapping_add(1).max(1);
        (u64::from(generation) << 32) | u64::from(index)
    }

    fn insert_at(&mut self, id: u64, c: Conn) {
        let (index, generation) = Self::split(id);
        if self.free.last() == Some(&(index as u32)) {
            self.free.pop();
            self.slots[index] = (generation, Some(c));
            self.len += 1;
        }
    }

    fn get(&self, id: u64) -> Option<&Conn> {
        let (index, generation) = Self::split(id);
        match self.slots.get(index) {
            Some((g, Some(c))) if *g == generation => Some(c),
            _ => None,
        }
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Conn> {
        let (index, generation) = Self::split(id);
        match self.slots.get_mut(index) {
            Some((g, Some(c))) if *g == generation => Some(c),
            _ => None,
        }
    }

    fn remove(&mut self, id: u64) -> Option<Conn> {
        let (index, generation) = Self::split(id);
        match self.slots.get_mut(index) {
            Some((g, c @ Some(_))) if *g == generation => {
                self.free.push(index as u32);
                self.len -= 1;
                c.take()
            }
            _ => None,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn values(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().filter_map(|(_, c)| c.as_ref())
    }

    /// What `uid`'s connections but `except` (one of this list's) have queued (bytes,
    /// messages). Alone in the list, `except` has no others: the slots are not looked at (the
    /// read of one writer's stream asks this on every message).
    fn queued_by(&self, uid: u32, except: u64) -> (usize, usize) {
        if self.len <= 1 {
            return (0, 0);
        }
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (g, c))| c.as_ref().map(|c| ((u64::from(*g) << 32) | i as u64, c)))
            .filter(|(id, c)| *id != except && c.cred.uid == uid)
            .fold((0, 0), |(b, n), (_, c)| {
                (b + c.queued_bytes, n + c.queued_count)
            })
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Conn)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (g, c))| c.as_mut().map(|c| ((u64::from(*g) << 32) | i as u64, c)))
    }

    fn clear(&mut self) {
        for (i, (_, c)) in self.slots.iter_mut().enumerate() {
            if c.take().is_some() {
                self.free.push(i as u32);
            }
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mailslot, MailslotWriter, Timeout};

    /// What a reader thread got, and when.
    type ReadResult = (Result<Vec<u8>, ReadError>, Instant);

    /// Starts a thread that reads one message from `slot` (waiting up to `timeout`) and
    /// sends back what it got and when; returns its thread id (once it runs) and the channel.
    fn reader_thread(
        slot: &Arc<Mailslot>,
        timeout: Duration,
    ) -> (u32, std::sync::mpsc::Receiver<ReadResult>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (ttx, trx) = std::sync::mpsc::channel();
        let slot = slot.clone();
        std::thread::spawn(move || {
            let _ = ttx.send(mailslot_test_support::tid());
            let r = slot.read_message_timeout(Timeout::After(timeout));
            let _ = tx.send((r.map(|m| m.data), Instant::now()));
        });
        (trx.recv().unwrap(), rx)
    }

    /// A slot (reads without a spin) and a writer that has written once, so that it has a
    /// ring: a reader that waits then sleeps on the futex words.
    fn slot_with_a_ring_writer(tag: &str) -> (Arc<Mailslot>, MailslotWriter) {
        let name = mailslot_test_support::unique_name("slot", tag);
        let slot = Arc::new(
            Mailslot::builder()
                .spin(Duration::ZERO)
                .create(&name)
                .unwrap(),
        );
        let w = MailslotWriter::open(&name).unwrap();
        w.write(b"first").unwrap();
        assert_eq!(slot.read_message().unwrap().data, b"first");
        (slot, w)
    }

    /// Messages read whole (`read_message`, what the tokio reader, the LAN Manager calls and
    /// the command line use) are read straight from the rings too: one allocation for the
    /// message, no trip through the queue (`read_cost` example: 137 → 80 ns a message from one
    /// ring, 360 → 125 ns from eight).
    #[test]
    fn messages_read_whole_are_read_straight_from_the_rings() {
        let (slot, w) = slot_with_a_ring_writer("direct-whole");
        let w2 = MailslotWriter::open(slot.name().to_string().as_str()).unwrap();
        w2.write(b"ring").unwrap();
        assert_eq!(slot.read_message().unwrap().data, b"ring");
        for i in 0..100u32 {
            let writer = if i % 3 == 0 { &w2 } else { &w };
            writer.write(format!("message {i}").as_bytes()).unwrap();
        }
        for i in 0..100u32 {
            let m = slot.read_message().unwrap();
            assert_eq!(m.data, format!("message {i}").as_bytes());
            assert!(
                slot.slot().lock().queue.head().is_none(),
                "message {i} went through the queue"
            );
        }
        // An empty message and one of several thousand bytes, each in a vector of its own.
        let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        w.write(b"").unwrap();
        w.write(&big).unwrap();
        let empty = slot.read_message().unwrap();
        assert!(empty.data.is_empty());
        assert!(
            slot.slot().lock().queue.head().is_none(),
            "the large message went through the queue"
        );
        let m = slot.read_message().unwrap();
        assert_eq!(m.data, big);
        assert!(matches!(
            slot.read_message_timeout(Timeout::ZERO),
            Err(ReadError::Timeout)
        ));
    }

    /// Several writers' streams of one priority each are read straight from their rings, the
    /// most urgent first and then the oldest, without going through the queue; and in the
    /// order a scan into the queue would give (priority, then the order of the writes).
    #[test]
    fn several_writers_streams_are_read_straight_from_their_rings_in_order() {
        use crate::WriteOptions;
        let name = mailslot_test_support::unique_name("slot", "direct-several");
        let slot = Mailslot::create(&name).unwrap();
        let writers: Vec<MailslotWriter> = (0..3)
            .map(|_| MailslotWriter::open(&name).unwrap())
            .collect();
        // Each writer has its ring once it has written (its first message may have come by
        // the socket, through the queue).
        for w in &writers {
            w.write(b"ring").unwrap();
        }
        for _ in &writers {
            assert_eq!(slot.read_message().unwrap().data, b"ring");
        }
        let mut expect: Vec<(u8, u32)> = Vec::new();
        let mut seq = 0u32;
        let mut buf = [0u8; 16];
        for round in 0..200u32 {
            // Writer k writes priority k (writer 2 the most urgent), in an order that changes;
            // from round 100 on, now and then all of them priority 1 (rings of two priorities:
            // read the usual way, in the same order).
            let mixed = round >= 100 && round % 4 == 0;
            for i in 0..6u32 {
                let k = ((i + round) % 3) as usize;
                let prio = if mixed { 1 } else { k as u8 };
                writers[k]
                    .write_with(&seq.to_le_bytes(), WriteOptions::new().priority(prio))
                    .unwrap();
                expect.push((prio, seq));
                seq += 1;
            }
            expect.sort_by_key(|&(p, s)| (std::cmp::Reverse(p), s));
            for _ in 0..4 {
                let (p, s) = expect.remove(0);
                let info = slot.read(&mut buf).unwrap();
                let got = u32::from_le_bytes(buf[..4].try_into().unwrap());
                assert_eq!((info.priority, got), (p, s), "round {round}");
                assert!(
                    round >= 100 || slot.slot().lock().queue.head().is_none(),
                    "round {round}: the read went through the queue"
                );
            }
        }
        // What is left, read the usual way too (peeks take it into the queue).
        for (p, s) in expect.drain(..) {
            let peeked = slot.peek_message().unwrap().unwrap();
            let m = slot.read_message().unwrap();
            assert_eq!(peeked, m);
            assert_eq!(
                (
                    m.priority,
                    u32::from_le_bytes(m.data[..4].try_into().unwrap())
                ),
                (p, s)
            );
        }
        assert_eq!(slot.info().count, 0);
    }

    /// A writer of `slot` that hung up with `n` numbered messages of `len` bytes in its ring:
    /// written while the test holds the slot's lock (so that the service thread cannot take
    /// them in meanwhile), the hang-up read by the owner's look at the sockets, then
    /// `under_lock` called before the lock is let go. Returns the writer's connection, its
    /// ring still mapped (as a writer that passed its ring on to another process has it).
    fn hang_up_with_records(
        slot: &Mailslot,
        n: u32,
        len: usize,
        under_lock: impl FnOnce(&State),
    ) -> crate::transport::writer::Connection {
        use crate::transport::writer::Connection;
        let w = Connection::open(slot.name(), Duration::from_secs(5)).unwrap();
        let _ = slot.info(); // the owner knows the writer
        let mut st = slot.slot().lock();
        for i in 0..n {
            let mut data = vec![0u8; len];
            data[..4].copy_from_slice(&i.to_le_bytes());
            w.write(&data, crate::WriteOptions::new(), None).unwrap();
        }
        w.hang_up_keeping_ring();
        // (A look stops at a wake-up byte: the hang-up comes after the writer's.)
        for _ in 0..8 {
            slot.slot().drain_sockets_only(&mut st);
        }
        assert_eq!(
            st.conns.values().filter(|c| c.closing).count(),
            1,
            "the ring was let go at the hang-up"
        );
        assert!(
            st.queue.head().is_none(),
            "the ring was taken into the queue at the hang-up"
        );
        under_lock(&st);
        w
    }

    /// A writer that hung up with records in its ring (a burst, then exit) is read straight
    /// from its ring, in order, as a live one: taking it all into the queue at the hang-up
    /// held the reader up (2.7 ms for a ring of 11 000 messages) and sent every later read
    /// through the queue. Records the ring gets after the hang-up (from a process the writer
    /// passed it to) are never read. The ring is let go once read, also by a reader that never
    /// runs out of messages (one-shot writers would otherwise pile up, two descriptors each).
    #[test]
    fn a_writer_that_hung_up_is_read_straight_from_its_ring() {
        use crate::transport::writer::Connection;
        let name = mailslot_test_support::unique_name("slot", "hungup-direct");
        let slot = Mailslot::create(&name).unwrap();
        let live = Connection::open(slot.name(), Duration::from_secs(5)).unwrap();
        let w = hang_up_with_records(&slot, 300, 16, |st| {
            // No writer counts them any more: the published totals do.
            assert_eq!(st.published, (300 * 16, 300));
        });
        w.put_stamped(b"late record", sys::monotonic_ns());
        let mut buf = [0u8; 64];
        let mut read_one = |k: u32| {
            let r = slot.read(&mut buf).unwrap();
            assert_eq!(r.len, 16);
            assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), k);
            assert!(
                slot.slot().lock().queue.head().is_none(),
                "message {k} went through the queue"
            );
        };
        for i in 0..300u32 {
            read_one(i);
            if i == 150 {
                for k in 1000..1200u32 {
                    let mut data = [0u8; 16];
                    data[..4].copy_from_slice(&k.to_le_bytes());
                    live.write(&data, crate::WriteOptions::new(), None).unwrap();
                }
            }
        }
        for k in 1000..1200u32 {
            read_one(k);
        }
        assert_eq!(
            slot.slot().lock().conns.len(),
            1,
            "the ring read empty is still there"
        );
        assert!(matches!(
            slot.read_timeout_with(&mut buf, Timeout::After(Duration::ZERO)),
            Err(ReadError::Timeout)
        ));
        assert_eq!(slot.info().count, 0);
        assert_eq!(slot.slot().lock().published, (0, 0));
        drop(live);
        assert!(matches!(
            slot.read_timeout_with(&mut buf, Timeout::After(Duration::ZERO)),
            Err(ReadError::Timeout)
        ));
        assert_eq!(slot.slot().lock().conns.len(), 0);
    }

    /// What a writer that hung up left in its ring counts in the quota until it is read (no
    /// writer counts it any more): another writer finds the slot as full as it is, also
    /// before anything takes the ring in.
    #[test]
    fn what_a_writer_that_hung_up_left_in_its_ring_counts_in_the_quota() {
        let name = mailslot_test_support::unique_name("slot", "hungup-quota");
        let slot = Mailslot::builder().quota(1000).create(&name).unwrap();
        let other = MailslotWriter::open(&name).unwrap();
        hang_up_with_records(&slot, 9, 100, |_| {
            // Under the lock, nothing takes the ring in: only the published totals say that
            // its 900 bytes are there.
            other.write(&[1; 100]).unwrap();
            assert!(matches!(
                other.write(&[2; 100]),
                Err(crate::WriteError::Full)
            ));
        });
        let mut buf = [0u8; 128];
        for i in 0..9u32 {
            slot.read(&mut buf).unwrap();
            assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), i);
        }
        assert_eq!(slot.read(&mut buf).unwrap().len, 100);
        assert_eq!(buf[0], 1);
        // All read (and the totals published, as a read that finds the slot empty does): room
        // for nine more of the other writer's.
        assert!(matches!(
            slot.read_timeout_with(&mut buf, Timeout::After(Duration::ZERO)),
            Err(ReadError::Timeout)
        ));
        for _ in 0..9 {
            other.write(&[3; 100]).unwrap();
        }
        assert_eq!(slot.info().count, 9);
    }

    /// The reader of a slot whose writers have rings sleeps on the futex words, and a write
    /// wakes it at once (without a wake-up byte on the socket).
    #[test]
    fn a_reader_asleep_on_the_futex_words_is_woken_by_a_write() {
        let (slot, w) = slot_with_a_ring_writer("futexwrite");
        for round in 0..20 {
            let (tid, rx) = reader_thread(&slot, Duration::from_secs(10));
            mailslot_test_support::wait_until_asleep(tid, "the reader");
            assert!(
                slot.slot().lock().futex_sleep,
                "round {round}: not a futex sleep"
            );
            let t0 = Instant::now();
            w.write(format!("m{round}").as_bytes()).unwrap();
            let (got, at) = rx.recv_timeout(Duration::from_secs(15)).unwrap();
            assert_eq!(got.unwrap(), format!("m{round}").as_bytes());
            let took = at.duration_since(t0);
            assert!(
                took < Duration::from_millis(500),
                "round {round}: woke after {took:?}"
            );
        }
        // No wake-up byte was sent: the socket had nothing to read.
        assert_eq!(slot.counters().dropped, 0);
    }

    /// A reader asleep on the futex words hears of what only the sockets bring: a new writer's
    /// first message (before it has a ring), through the service thread.
    #[test]
    fn a_reader_asleep_on_the_futex_words_hears_of_a_new_writer() {
        let (slot, _w) = slot_with_a_ring_writer("futexnew");
        let name = slot.name().to_string();
        let (tid, rx) = reader_thread(&slot, Duration::from_secs(10));
        mailslot_test_support::wait_until_asleep(tid, "the reader");
        assert!(slot.slot().lock().futex_sleep);
        let t0 = Instant::now();
        MailslotWriter::open(&name).unwrap().write(b"new").unwrap();
        let (got, at) = rx.recv_timeout(Duration::from_secs(15)).unwrap();
        assert_eq!(got.unwrap(), b"new");
        let took = at.duration_since(t0);
        assert!(took < Duration::from_millis(500), "woke after {took:?}");
    }

    /// A writer that keeps setting its ring's wake word (it can write all of its ring) wakes a
    /// futex sleeper for nothing: after a few such wake-ups the reader sleeps in `epoll` and
    /// stops spending CPU on it, and an honest writer's message still wakes it at once.
    #[test]
    fn a_writer_that_keeps_setting_its_wake_word_does_not_keep_the_reader_busy() {
        let (slot, _hostile) = slot_with_a_ring_writer("futexhostile");
        let name = slot.name().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let setter = {
            let (slot, stop) = (slot.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    {
                        let st = slot.slot().lock();
                        for c in st.conns.values() {
                            if let Some(r) = &c.ring {
                                r.wake_word().store(1, Ordering::SeqCst);
                                sys::futex_wake(r.wake_word(), true, 1);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
            })
        };
        let slot2 = slot.clone();
        let reader = std::thread::spawn(move || {
            let c0 = mailslot_test_support::thread_cpu_time();
            let t0 = Instant::now();
            let r = slot2.read_message_timeout(Timeout::After(Duration::from_secs(1)));
            let spent = mailslot_test_support::thread_cpu_time() - c0;
            (r.map(|m| m.data), t0.elapsed(), spent)
        });
        let (got, waited, spent) = reader.join().unwrap();
        assert!(matches!(got, Err(ReadError::Timeout)), "{got:?}");
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(
            spent < Duration::from_millis(200),
            "the reader spent {spent:?} of CPU"
        );
        assert!(slot.slot().lock().futex_tries.misses >= FUTEX_MAX_MISSES);
        // An honest writer still wakes the reader (now asleep in `epoll`) at once.
        let (tid, rx) = reader_thread(&slot, Duration::from_secs(10));
        mailslot_test_support::wait_until_asleep(tid, "the reader");
        let t0 = Instant::now();
        MailslotWriter::open(&name)
            .unwrap()
            .write(b"honest")
            .unwrap();
        let (got, at) = rx.recv_timeout(Duration::from_secs(15)).unwrap();
        assert_eq!(got.unwrap(), b"honest");
        assert!(at.duration_since(t0) < Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        setter.join().unwrap();
    }

    thread_local! {
        /// Makes every send to a park on this thread fail, as a park that is full does.
        pub(super) static PARK_FAILS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Sharing a handle whose writers cannot all be parked (the park full, out of descriptors)
    /// fails and leaves the handle as it was: every queued message is still read, in order, and
    /// its writers keep writing; sharing again later works.
    #[test]
    fn a_share_that_fails_loses_no_queued_message_and_no_writer() {
        let name = format!(r"\\.\mailslot\unit\share-fails-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let writers: Vec<MailslotWriter> = (0..3)
            .map(|_| MailslotWriter::open(&name).unwrap())
            .collect();
        // Some taken in by the owner already, some still in the writers' rings.
        for i in 0..30u32 {
            writers[i as usize % 3].write(&i.to_le_bytes()).unwrap();
            if i == 14 {
                assert_eq!(slot.info().count, 15);
            }
        }
        PARK_FAILS.with(|f| f.set(true));
        let e = slot.share().expect_err("the park takes nothing");
        PARK_FAILS.with(|f| f.set(false));
        assert!(matches!(e, crate::ShareError::Io(_)), "{e:?}");
        for i in 0..30u32 {
            let m = slot.read_message_timeout(Timeout::ZERO).expect("kept");
            assert_eq!(m.data, i.to_le_bytes());
        }
        for (i, w) in writers.iter().enumerate() {
            w.write(&[i as u8]).expect("still served");
        }
        let fd = slot.share().expect("shared now");
        let other = Mailslot::from_shared(fd).unwrap();
        for i in 0..3u8 {
            let m = other
                .read_message_timeout(Timeout::After(Duration::from_secs(2)))
                .expect("read by the other holder");
            assert_eq!(m.data, [i]);
        }
    }

    /// A holder that dies in the middle of a round of the park leaves its marker and copies of
    /// connections that it had sent again but not yet taken off. The next round keeps every
    /// connection once, drops the copies and the marker, and no writer notices.
    #[test]
    fn a_park_round_that_died_leaves_nothing_the_next_round_does_not_mend() {
        let name = format!(r"\\.\mailslot\unit\park-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let _shared = slot.share().unwrap();
        let writers: Vec<MailslotWriter> = (0..3)
            .map(|_| MailslotWriter::open(&name).unwrap())
            .collect();
        for w in &writers {
            w.write(b"before").unwrap();
        }
        for _ in 0..3 {
            assert_eq!(
                slot.read_message_timeout(Timeout::ZERO).unwrap().data,
                b"before"
            );
        }
        {
            let st = slot.slot.lock();
            let sh = st.shared.as_ref().unwrap();
            let (a, b) = (sh.park_a.as_raw_fd(), sh.park_b.as_raw_fd());
            // What the round that died did: its marker, then the first message sent again.
            sys::send_parts(a, &[b"M-died-!"], &[], true).unwrap();
            let mut buf = [0u8; 16];
            let first = sys::peek_msg(b, &mut buf).unwrap().unwrap();
            assert!(!first.fds.is_empty(), "the park holds the connections");
            let fds: Vec<RawFd> = first.fds.iter().map(AsRawFd::as_raw_fd).collect();
            sys::send_parts(a, &[b"P"], &fds, true).unwrap();
            // A round killed after any number of changes to the park: the next one finds
            // every connection (before, a holder killed between taking everything out and
            // putting the live ones back took them all with it).
            for steps in (1..12).chain([usize::MAX, usize::MAX]) {
                drop(Slot::rotate_park_until(sh, steps));
                let (live, whole) = Slot::rotate_park(sh);
                assert!(whole);
                let mut idx: Vec<u32> = live.iter().map(|l| l.0).collect();
                idx.sort_unstable();
                idx.dedup();
                assert_eq!((live.len(), idx.len()), (3, 3), "every connection, once");
            }
            // No marker is left, and each connection is in the park once.
            let mut all = Vec::new();
            while let Ok(Some(got)) = sys::recv_msg(b, &mut buf, true) {
                assert!(!got.fds.is_empty(), "a marker was left in the park");
                all.push(got.fds);
            }
            assert_eq!(all.iter().map(Vec::len).sum::<usize>(), 2 * 3);
            for fds in &all {
                let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
                sys::send_parts(a, &[b"P"], &raw, true).unwrap();
            }
        }
        for w in &writers {
            w.write(b"after").unwrap();
        }
        for _ in 0..3 {
            assert_eq!(
                slot.read_message_timeout(Timeout::After(Duration::from_secs(2)))
                    .unwrap()
                    .data,
                b"after"
            );
        }
    }

    /// Writers that each wrote within the quota (as they saw it) while the owner was busy, and
    /// then closed: more than a shared store's level holds. A ring the store has no room for
    /// is kept past its writer's hang-up until it is taken in; nothing is lost, shared or not.
    fn writers_hang_up_while_the_owner_is_busy(shared: bool) -> usize {
        let name = format!(
            r"\\.\mailslot\unit\full-hang-up-{}-{shared}",
            std::process::id()
        );
        let slot = Mailslot::builder()
            .max_message_size(4096)
            .quota(4096)
            .max_messages(4)
            .create(&name)
            .unwrap();
        let _shared = shared.then(|| slot.share().unwrap());
        let writers: Vec<MailslotWriter> = (0..5)
            .map(|_| MailslotWriter::open(&name).unwrap())
            .collect();
        {
            // The owner is busy: nothing is taken in meanwhile.
            let _g = slot.slot.lock();
            for w in &writers {
                w.write(&[7u8; 4096]).unwrap();
            }
        }
        drop(writers);
        // The owner looks at its sockets (the wake-up bytes, then the hang-ups) before it reads.
        for _ in 0..3 {
            let _ = slot.info();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut n = 0;
        while slot
            .read_message_timeout(Timeout::After(Duration::from_millis(500)))
            .is_ok()
        {
            n += 1;
        }
        n
    }

    #[test]
    fn writers_that_hang_up_while_the_store_is_full_lose_nothing() {
        assert_eq!(writers_hang_up_while_the_owner_is_busy(false), 5, "private");
        assert_eq!(writers_hang_up_while_the_owner_is_busy(true), 5, "shared");
    }

    /// A holder of a shared slot, on a thread of its own, that takes the holders' lock (and
    /// does `first` under it) when started, does `then` when told (taking the rings in, for
    /// most tests), and then dies there if `dies`: its guard does not let go of the lock (a dead
    /// thread's robust mutex is what the next holder finds).
    struct DyingHolder {
        go: std::sync::mpsc::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    }

    impl DyingHolder {
        fn start(
            holder: Mailslot,
            dies: bool,
            first: fn(&Slot, &mut Guard<'_>),
            then: fn(&Slot, &mut Guard<'_>),
        ) -> Self {
            let (locked_tx, locked_rx) = std::sync::mpsc::channel();
            let (go, go_rx) = std::sync::mpsc::channel::<()>();
            let thread = std::thread::spawn(move || {
                let mut g = holder.slot.lock();
                first(&holder.slot, &mut g);
                locked_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                then(&holder.slot, &mut g);
                if dies {
                    g.shared.as_mut().unwrap().locked = false;
                }
                drop(g);
                std::mem::forget(holder);
            });
            locked_rx.recv().unwrap();
            Self { go, thread }
        }

        fn go_on_and_die(self) {
            self.go.send(()).unwrap();
            self.thread.join().unwrap();
        }
    }

    /// A thread that reads `slot` with reads that wait for ever, sending what it reads; it is
    /// asleep in a read when this returns.
    fn asleep_in_a_read(slot: &Arc<Mailslot>) -> std::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let slot = slot.clone();
        std::thread::spawn(move || {
            while let Ok(m) = slot.read_message_timeout(Timeout::Forever) {
                if tx.send(m.data).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        rx
    }

    /// What most dying holders do before they die: take the rings in.
    fn take_in(slot: &Slot, g: &mut Guard<'_>) {
        slot.scan_rings(g, false);
    }

    /// A holder that dies after it read a writer's wake-up byte and before it told the writer
    /// so (a writer sends no other while it thinks one is on its way). The holder that repairs
    /// the lock tells every writer: another holder asleep in a read is woken by each later
    /// write, not only at its next look (`SHARED_LOOK_EVERY`, 500 ms).
    #[test]
    fn a_holder_that_dies_after_reading_a_wake_up_leaves_no_writer_unheard() {
        let name = format!(r"\\.\mailslot\unit\wake-read-{}", std::process::id());
        let slot = Arc::new(Mailslot::create(&name).unwrap());
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let w = MailslotWriter::open(&name).unwrap();
        w.write(b"ring").unwrap(); // (now the writer has a ring, and sends only wake-ups)
        assert_eq!(
            slot.read_message_timeout(Timeout::ZERO).unwrap().data,
            b"ring"
        );
        let rx = asleep_in_a_read(&slot);
        let holder = DyingHolder::start(
            other,
            true,
            |_, _| {},
            |_, g| {
                // Reads the wake-up byte off every writer's socket, tells no writer.
                for (_, c) in g.conns.iter_mut() {
                    let mut b = [0u8; 16];
                    while let Ok(Some(_)) = sys::recv_msg(c.fd.as_raw_fd(), &mut b, false) {}
                }
            },
        );
        w.write(b"first").unwrap();
        holder.go_on_and_die();
        let m = rx.recv_timeout(Duration::from_secs(3)).expect("first");
        assert_eq!(m, b"first");
        for i in 0..5u8 {
            std::thread::sleep(Duration::from_millis(20)); // asleep again
            w.write(&[i]).unwrap();
            let m = rx
                .recv_timeout(Duration::from_millis(350))
                .unwrap_or_else(|_| panic!("message {i} not read within 350 ms"));
            assert_eq!(m, [i]);
        }
    }

    /// A holder that dies after it took a ring's records into the store (the journal applied)
    /// and before it told the writer: the next holder reads each message once, and the writer
    /// gets its room back (it was told again; it had counted them against the quota for ever).
    /// Without the death, the same.
    fn holder_dies_before_telling_the_writer(dies: bool) {
        let name = format!(r"\\.\mailslot\unit\untold-{}-{dies}", std::process::id());
        let slot = Mailslot::builder()
            .max_message_size(1024)
            .quota(4096)
            .max_messages(100)
            .create(&name)
            .unwrap();
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let w = MailslotWriter::open(&name).unwrap();
        let holder = DyingHolder::start(other, dies, |_, _| {}, take_in);
        for i in 0..4u8 {
            w.write(&[i; 1024]).unwrap();
        }
        holder.go_on_and_die();
        let mut got = Vec::new();
        while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_millis(300))) {
            got.push(m.data[0]);
        }
        assert_eq!(got, vec![0, 1, 2, 3], "each message once");
        // The queue is empty: the writer has the whole quota again.
        assert!(w.write(&[9; 1024]).is_ok());
        assert!(w.write(&[9; 1024]).is_ok());
    }

    #[test]
    fn a_holder_that_dies_before_telling_a_writer_leaves_it_its_room() {
        holder_dies_before_telling_the_writer(true);
        holder_dies_before_telling_the_writer(false);
    }

    /// A holder that dies in a read after it told writers not to wake anyone (as a reader that
    /// finds messages does) and took in a message, before it rang the doorbell; another holder
    /// sleeps in a read that waits for ever. It still reads what comes after (it looks again
    /// every `SHARED_LOOK_EVERY`).
    fn holder_dies_in_a_read_while_another_sleeps(dies: bool) {
        let name = format!(r"\\.\mailslot\unit\asleep-{}-{dies}", std::process::id());
        let slot = Arc::new(Mailslot::create(&name).unwrap());
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let w = MailslotWriter::open(&name).unwrap();
        let rx = asleep_in_a_read(&slot);
        // (As a reader that finds messages does.)
        let holder = DyingHolder::start(other, dies, |slot, g| slot.set_wake_me(g, false), take_in);
        w.write(b"first").unwrap();
        holder.go_on_and_die();
        for i in 0..5u8 {
            w.write(&[i]).unwrap();
        }
        let mut got = 0;
        while rx.recv_timeout(Duration::from_secs(3)).is_ok() {
            got += 1;
        }
        assert_eq!(got, 6, "the sleeping holder read {got} of 6");
    }

    #[test]
    fn a_holder_that_dies_in_a_read_leaves_no_other_asleep() {
        holder_dies_in_a_read_while_another_sleeps(true);
        holder_dies_in_a_read_while_another_sleeps(false);
    }

    /// A thread that reads `slot` the way a program that does not wait in a read does, and
    /// sends what it reads (until the receiver is gone, or 10 s at most): with `tokio`, through
    /// an `AsyncMailslot`; else it waits on the descriptor (`as_raw_fd`, as an event loop or
    /// the C API's `MailslotGetPollFd` user does) and, each time it polls readable, reads with
    /// a zero timeout until there is nothing — it never reads unless the descriptor said so.
    fn polling(slot: Mailslot, tokio: bool) -> std::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let fd = slot.as_raw_fd();
        assert!(fd >= 0);
        std::thread::spawn(move || {
            if tokio {
                let rt = ::tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let slot = crate::tokio::AsyncMailslot::new(slot).unwrap();
                    let end = ::tokio::time::sleep(Duration::from_secs(10));
                    ::tokio::pin!(end);
                    loop {
                        ::tokio::select! {
                            m = slot.read_message() => {
                                if tx.send(m.unwrap().data).is_err() {
                                    return;
                                }
                            }
                            () = &mut end => return,
                        }
                    }
                });
                return;
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                let ev = sys::poll_one(fd, libc::POLLIN, Some(Duration::from_millis(100)));
                if !ev.is_ok_and(|ev| ev != 0) {
                    continue;
                }
                while let Ok(m) = slot.read_message_timeout(Timeout::ZERO) {
                    if tx.send(m.data).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    /// As [`holder_dies_in_a_read_while_another_sleeps`], with a program that polls the other
    /// handle's descriptor (or reads through tokio) instead of a read that waits: the
    /// process's service thread looks at a polled shared slot every `SHARED_LOOK_EVERY` and
    /// wakes the poller when it finds messages. Without the death, the holder that takes the
    /// message in rings the doorbell: a polled handle counts as asleep, so the poller reads it
    /// at once, not at the look.
    fn holder_dies_in_a_read_while_another_polls(dies: bool, tokio: bool) {
        let name = format!(
            r"\\.\mailslot\unit\polled-{}-{dies}-{tokio}",
            std::process::id()
        );
        let slot = Mailslot::create(&name).unwrap();
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let w = MailslotWriter::open(&name).unwrap();
        w.write(b"ring").unwrap(); // (now the writer has a ring)
        let rx = polling(slot, tokio);
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), b"ring");
        let sleepers = other.slot.lock().shared.as_ref().unwrap().store.sleepers();
        assert_eq!(sleepers, 1, "the polled handle counts as asleep");
        let holder = DyingHolder::start(other, dies, |slot, g| slot.set_wake_me(g, false), take_in);
        w.write(b"first").unwrap();
        let started = Instant::now();
        holder.go_on_and_die();
        let first = rx.recv_timeout(Duration::from_secs(3)).expect("first");
        assert_eq!(first, b"first");
        if !dies {
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(400),
                "woken after {took:?} (tokio {tokio})"
            );
        }
        for i in 0..5u8 {
            w.write(&[i]).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 5 {
            match rx.recv_timeout(Duration::from_secs(3)) {
                Ok(m) => got.push(m[0]),
                Err(_) => break,
            }
        }
        assert_eq!(got, (0..5).collect::<Vec<u8>>(), "the poller read {got:?}");
        // The poller ends at its next message.
        drop(rx);
        w.write(b"end").unwrap();
    }

    /// The service thread of a process that polls a shared handle's descriptor (nobody reads
    /// at the moment) is woken by another holder's doorbell, after that holder queued a
    /// message in the store. Its drain takes the doorbell's event and brings in nothing new
    /// (the message is in the store already): the poller must still be told. Before, it was
    /// told only by the next look (`SHARED_LOOK_EVERY`, 500 ms later) — seen when the service
    /// thread ran before the poller, on a loaded machine.
    #[test]
    fn a_poller_is_woken_when_the_service_takes_another_holders_doorbell() {
        let name = format!(r"\\.\mailslot\unit\doorbell-poll-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let w = MailslotWriter::open(&name).unwrap();
        w.write(b"ring").unwrap(); // (now the writer has a ring)
        let fd = slot.as_raw_fd();
        let ready = |ms: u64| {
            sys::poll_one(fd, libc::POLLIN, Some(Duration::from_millis(ms))).is_ok_and(|ev| ev != 0)
        };
        // Read as an event loop does, until the slot says it is empty.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut first = None;
        while first.is_none() && Instant::now() < deadline {
            ready(100);
            first = slot.read_message_timeout(Timeout::ZERO).ok();
        }
        assert_eq!(first.expect("the first message").data, b"ring");
        while slot.read_message_timeout(Timeout::ZERO).is_ok() {}
        // The other holder queues a message without the writer's wake-up byte (which would
        // make the descriptor readable by itself), and rings the doorbell as it lets go.
        {
            let mut g = other.slot.lock();
            other.slot.set_wake_me(&mut g, false);
            w.write(b"second").unwrap();
            take_in(&other.slot, &mut g);
        }
        let rang = Instant::now();
        // Give the service thread the time to take the doorbell's event before we look.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            ready(250),
            "the descriptor was not readable {:?} after the doorbell",
            rang.elapsed()
        );
        let m = slot.read_message_timeout(Timeout::ZERO).unwrap();
        assert_eq!(m.data, b"second");
    }

    #[test]
    fn a_holder_that_dies_in_a_read_leaves_no_poller_unwoken() {
        for tokio in [false, true] {
            holder_dies_in_a_read_while_another_polls(true, tokio);
            holder_dies_in_a_read_while_another_polls(false, tokio);
        }
    }

    /// A holder that accepted a writer's connection and died before greeting it (its copy of
    /// the connection closed with it; played here by the test, which holds the slot's lock so
    /// that nobody else accepts meanwhile): the writer's open connects again and is served by
    /// the holders left. Before, the open failed with "not found" while the name was served.
    #[test]
    fn an_open_whose_accepting_holder_dies_connects_again() {
        let name = format!(r"\\.\mailslot\unit\accept-dies-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let opener = {
            let name = name.clone();
            let g = slot.slot.lock();
            let opener = std::thread::spawn(move || {
                MailslotWriter::open_timeout(&name, Duration::from_secs(5))
            });
            let listener = g.listener.as_ref().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(conn)) = sys::accept(listener) {
                    drop(conn);
                    break;
                }
                assert!(Instant::now() < deadline, "the writer never connected");
                std::thread::sleep(Duration::from_millis(1));
            }
            // The lock is held a moment longer: the writer sees its connection closed first.
            std::thread::sleep(Duration::from_millis(50));
            opener
        };
        let w = opener.join().unwrap().expect("served by the holders left");
        w.write(b"after").unwrap();
        let m = other
            .read_message_timeout(Timeout::After(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(m.data, b"after");
    }

    thread_local! {
        /// Called by `scan_rings` on this thread before it looks at each connection, until it
        /// returns true: a test's writers write there, in the middle of a scan.
        pub(super) static BEFORE_RING_SCAN: Hook = const { std::cell::RefCell::new(None) };
        /// The same for each ring's look in a read straight from several rings.
        pub(super) static BEFORE_DIRECT_LOOK: Hook = const { std::cell::RefCell::new(None) };
    }

    /// A test hook (`BEFORE_RING_SCAN`, `BEFORE_DIRECT_LOOK`): called if set, until it returns
    /// true.
    pub(super) type Hook = std::cell::RefCell<Option<Box<dyn FnMut() -> bool>>>;

    /// Calls the hook of this thread in `key`, and unsets it once it returns true.
    pub(super) fn call_hook(key: &'static std::thread::LocalKey<Hook>) {
        key.with(|h| {
            let mut h = h.borrow_mut();
            if h.as_mut().is_some_and(|f| f()) {
                *h = None;
            }
        });
    }

    /// Two writers write one after the other while the owner is in the middle of taking in
    /// their rings: it has looked at the first writer's ring before that writer's message was
    /// published, and looks at the second's after the second writer's was. The first message
    /// must still be read first — a scan takes in a consistent cut of the rings (the records
    /// stamped before it began), not whatever each ring had when it came to it, which made the
    /// second message a batch of its own ahead of the first for good (seen in CI as
    /// `writers_of_a_shared_slot_are_read_in_write_order_by_every_holder`, a few runs in a
    /// thousand).
    fn writes_in_the_middle_of_a_scan_keep_their_order(shared: bool) {
        use std::sync::Arc;
        let name = format!(
            r"\\.\mailslot\unit\mid-scan-{shared}-{}",
            std::process::id()
        );
        let slot = Mailslot::create(&name).unwrap();
        let _other = shared.then(|| Mailslot::from_shared(slot.share().unwrap()).unwrap());
        let first = Arc::new(MailslotWriter::open(&name).unwrap());
        let second = Arc::new(MailslotWriter::open(&name).unwrap());
        // Rings for both, and both connections known to the owner.
        first.write(b"a0").unwrap();
        second.write(b"b0").unwrap();
        for want in [&b"a0"[..], b"b0"] {
            let m = slot.read_message_timeout(Timeout::After(Duration::from_secs(5)));
            assert_eq!(m.unwrap().data, want);
        }
        let (w1, w2) = (first.clone(), second.clone());
        BEFORE_RING_SCAN.with(|h| {
            let mut looked_at = 0;
            *h.borrow_mut() = Some(Box::new(move || {
                looked_at += 1;
                if looked_at != 2 {
                    return false;
                }
                w1.write(b"a1").unwrap();
                w2.write(b"b1").unwrap();
                true
            }));
        });
        let mut got = Vec::new();
        while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_millis(300))) {
            got.push(m.data);
        }
        BEFORE_RING_SCAN.with(|h| h.borrow_mut().take());
        assert_eq!(got, [&b"a1"[..], b"b1"]);
    }

    #[test]
    fn writes_in_the_middle_of_a_private_slots_scan_keep_their_order() {
        writes_in_the_middle_of_a_scan_keep_their_order(false);
    }

    #[test]
    fn writes_in_the_middle_of_a_shared_slots_scan_keep_their_order() {
        writes_in_the_middle_of_a_scan_keep_their_order(true);
    }

    /// A read straight from several rings looks at them one after the other too: a writer
    /// whose ring was found empty may publish just after, and a second writer, whose write
    /// began after the first's had ended, publish in a ring looked at later. The first message
    /// must still be read first, also when the other rings' heads are stamped later than both
    /// (writers that stamp their records as they like: without the cut, the second message
    /// was the oldest head seen, and was read first).
    #[test]
    fn writes_in_the_middle_of_a_read_from_several_rings_keep_their_order() {
        use crate::transport::writer::Connection;
        use std::{cell::Cell, rc::Rc};
        // The service thread may take the rings in first (the read then goes through the
        // queue, and the hook is not called): tried again on a new slot then.
        for attempt in 0..20 {
            let name = mailslot_test_support::unique_name("slot", "mid-direct");
            let slot = Mailslot::create(&name).unwrap();
            let parsed: Name = name.parse().unwrap();
            let open = || Connection::open(&parsed, Duration::from_secs(5)).unwrap();
            // Looked at in this order: two forgers, then the first honest writer, then the
            // second.
            let forgers = [open(), open()];
            let (first, second) = (Arc::new(open()), Arc::new(open()));
            let _ = slot.info(); // the owner knows all four
            let future = sys::monotonic_ns() + 3_600_000_000_000;
            for (k, f) in forgers.iter().enumerate() {
                f.put_stamped(format!("forged{k}").as_bytes(), future);
            }
            let (w1, w2) = (first.clone(), second.clone());
            let fired = Rc::new(Cell::new(false));
            let fired_in_hook = fired.clone();
            BEFORE_DIRECT_LOOK.with(|h| {
                let mut looked_at = 0;
                *h.borrow_mut() = Some(Box::new(move || {
                    looked_at += 1;
                    // Before the fourth ring: the third (`first`'s) was found empty.
                    if looked_at != 4 {
                        return false;
                    }
                    w1.put_stamped(b"a", sys::monotonic_ns());
                    w2.put_stamped(b"b", sys::monotonic_ns());
                    fired_in_hook.set(true);
                    true
                }));
            });
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            while let Ok(r) =
                slot.read_timeout_with(&mut buf, Timeout::After(Duration::from_millis(300)))
            {
                got.push(buf[..r.len].to_vec());
            }
            BEFORE_DIRECT_LOOK.with(|h| h.borrow_mut().take());
            if fired.get() {
                assert_eq!(got, [&b"a"[..], b"b", b"forged0", b"forged1"]);
                return;
            }
            assert_eq!(got, [&b"forged0"[..], b"forged1"], "attempt {attempt}");
        }
        panic!("no read took the way straight from the rings in 20 attempts");
    }

    thread_local! {
        /// Set by a test's holder: `accept_all` returns after it parked a connection and
        /// before it greets the writer, as a holder killed there would.
        pub(super) static DIE_BEFORE_GREETING: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// Set by a test's holder: `accept_all` returns after it marked a connection's entry
        /// greeted and before it sent the greeting, as a holder killed there would.
        pub(super) static DIE_AFTER_MARKING: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }

    /// A holder that accepts the next connection to come and dies before its writer hears
    /// from it: before it greets the writer, or (`marked`) after it marked the connection's
    /// entry greeted and before the greeting went out.
    fn holder_dying_at_a_greeting(other: Mailslot, marked: bool) -> DyingHolder {
        let dies_where: fn(&Slot, &mut Guard<'_>) = if marked {
            |_, _| DIE_AFTER_MARKING.set(true)
        } else {
            |_, _| DIE_BEFORE_GREETING.set(true)
        };
        DyingHolder::start(other, true, dies_where, |slot, g| {
            let listener = g.listener.as_ref().unwrap().as_raw_fd();
            let ev = sys::poll_one(listener, libc::POLLIN, Some(Duration::from_secs(5)));
            assert!(ev.unwrap() & libc::POLLIN != 0, "no writer connected");
            slot.accept_all(g);
        })
    }

    /// A shared mailslot (`tag` in its name) with a holder asleep in a read, opened while
    /// another holder takes the connection and dies (see [`holder_dying_at_a_greeting`]): the
    /// open must be served by the holders left, well before its timeout, and its writes read.
    fn open_past_a_dying_holder(tag: &str, marked: bool) -> Arc<Mailslot> {
        let name = format!(r"\\.\mailslot\unit\{tag}-{}", std::process::id());
        let slot = Arc::new(Mailslot::create(&name).unwrap());
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let rx = asleep_in_a_read(&slot);
        let holder = holder_dying_at_a_greeting(other, marked);
        let started = Instant::now();
        let opener =
            std::thread::spawn(move || MailslotWriter::open_timeout(&name, Duration::from_secs(5)));
        holder.go_on_and_die();
        let w = opener.join().unwrap().expect("served by the holders left");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        w.write(b"after").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).expect("after"),
            b"after"
        );
        slot
    }

    /// A holder that dies after it marked a connection's entry greeted and before it sent the
    /// greeting: the entry looks like a live writer's, so the holders left keep the connection,
    /// and the writer still waits for a greeting nobody will send. Its open connects again
    /// beside the first connection, the holder that accepts that one greets it, and the first
    /// goes when the writer closes it. Before, the open failed with `NotResponding` at its
    /// timeout.
    #[test]
    fn an_open_whose_holder_dies_after_marking_it_greeted_is_served_by_another() {
        let slot = open_past_a_dying_holder("mark-dies", true);
        // The connection that was never greeted is let go by every holder.
        let entries = || {
            slot.slot
                .lock()
                .shared
                .as_ref()
                .unwrap()
                .store
                .entries()
                .len()
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        while entries() > 1 {
            assert!(
                Instant::now() < deadline,
                "the first connection is still there"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A holder that accepted a writer's connection, parked it for the other holders and died
    /// (with the holders' lock) before greeting the writer: the next holder to take the lock
    /// frees the connection's entry, so the park's copy goes at the holders' next round and
    /// the writer's open, seeing its connection closed before any greeting, connects again and
    /// is served. Before, the other holders took the connection in from the park and never
    /// greeted it: the open failed with `NotResponding` at its timeout.
    #[test]
    fn an_open_whose_holder_dies_between_parking_and_greeting_connects_again() {
        open_past_a_dying_holder("park-dies", false);
    }

    /// A holder killed while counted asleep leaves the count one too high, and every holder
    /// would ring the doorbell (waking every holder) whenever it queued messages, for the life
    /// of the slot. Its sleep mark (a `flock` of its own open file of the store) went with it:
    /// the next holder that queues messages finds no other mark and sets the count back.
    #[test]
    fn a_holder_killed_asleep_is_counted_no_more_once_another_queues_messages() {
        let name = format!(r"\\.\mailslot\unit\killed-asleep-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let sleepers = |m: &Mailslot| m.slot.lock().shared.as_ref().unwrap().store.sleepers();
        {
            let mut g = other.slot.lock();
            let sh = g.shared.as_mut().unwrap();
            sh.count_asleep();
            // Killed here: its open files go with it, its count stays.
            sh.sleeping = false;
            sh.store.drop_sleep_mark();
        }
        drop(other);
        assert_eq!(sleepers(&slot), 1);
        let w = MailslotWriter::open(&name).unwrap();
        w.write(b"one").unwrap();
        assert_eq!(
            slot.read_message_timeout(Timeout::After(Duration::from_secs(2)))
                .unwrap()
                .data,
            b"one"
        );
        assert_eq!(sleepers(&slot), 0);
    }

    /// A holder of a shared slot that stops while it holds the holders' lock (SIGSTOP, a
    /// shell's Ctrl-Z; played here by a thread that keeps the lock) stalls that slot's readers
    /// in every holder, as reads are serialised, but not the other mailslots of the processes
    /// that hold it: their one service thread does not wait for the lock. Before, it waited
    /// for ever, and an open of a private mailslot of this process was never answered. When
    /// the holder goes on, the writer that came meanwhile is served.
    #[test]
    fn a_holder_stopped_with_the_lock_stalls_no_other_mailslot_of_its_peers() {
        let name = format!(r"\\.\mailslot\unit\stopped-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
        let stopped = DyingHolder::start(other, false, |_, _| {}, |_, _| {});
        // A writer comes to the shared slot: the service thread wants its lock to answer it.
        let shared_opener = {
            let name = name.clone();
            std::thread::spawn(move || MailslotWriter::open_timeout(&name, Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(200));
        let private = format!(r"\\.\mailslot\unit\stopped-private-{}", std::process::id());
        let mine = Mailslot::create(&private).unwrap();
        let t = Instant::now();
        let w = MailslotWriter::open_timeout(&private, Duration::from_secs(2))
            .expect("a private mailslot's open is answered while a peer holds a shared lock");
        w.write(b"private").unwrap();
        assert_eq!(
            mine.read_message_timeout(Timeout::ZERO).unwrap().data,
            b"private"
        );
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        stopped.go_on_and_die();
        let w = shared_opener
            .join()
            .unwrap()
            .expect("served once the holder went on");
        w.write(b"shared").unwrap();
        let m = slot
            .read_message_timeout(Timeout::After(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(m.data, b"shared");
    }

    /// A shared slot's park (where connections wait for every holder) has a send buffer of
    /// fixed size. Connections accepted one by one are packed into as few messages as they
    /// need, so the slot serves many more writers than that buffer holds messages (here the
    /// buffer is made 16 messages' room); none is accepted and then lost.
    #[test]
    fn a_shared_slot_serves_more_writers_than_its_park_holds_messages() {
        let name = format!(r"\\.\mailslot\unit\park-full-{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let _fd = slot.share().unwrap();
        {
            let g = slot.slot.lock();
            let sh = g.shared.as_ref().unwrap();
            sys::set_send_buffer_size(&sh.park_a, 8 << 10).unwrap();
            let room = Slot::park_room(sh);
            assert!(room <= 16, "the park has room for {room} messages");
        }
        let read_all = |n: u32| {
            let mut got = Vec::new();
            while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_millis(300)))
            {
                got.push(u32::from_le_bytes(m.data[..4].try_into().unwrap()));
            }
            got.sort_unstable();
            assert_eq!(got, (0..n).collect::<Vec<_>>());
        };
        let mut writers = Vec::new();
        for i in 0..200u32 {
            let w = MailslotWriter::open(&name).expect("open");
            w.write(&i.to_le_bytes()).expect("accepted");
            writers.push(w);
        }
        read_all(200);
        // Every one of them is still served.
        for (i, w) in writers.iter().enumerate() {
            w.write(&(i as u32).to_le_bytes()).expect("served");
        }
        read_all(200);
        drop(writers);
        // And so are writers that come after those went.
        for i in 0..20u32 {
            let w = MailslotWriter::open(&name).unwrap();
            w.write(&i.to_le_bytes()).unwrap();
            let m = slot
                .read_message_timeout(Timeout::After(Duration::from_millis(500)))
                .expect("arrived");
            assert_eq!(m.data, i.to_le_bytes());
        }
    }
}
