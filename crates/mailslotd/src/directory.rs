//! The daemon's side of the mailslot directory ([`mailslot::directory`] is the protocol and the
//! client's side): which owner process holds which mailslot name, so that an idle mailslot needs
//! no socket of its own.
//!
//! One thread (`mailslotd-directory`) serves every client with one level-triggered epoll loop
//! over non-blocking sockets: no thread per connection, and nothing a client does (not reading,
//! flooding, hanging up) makes it wait. Each wake-up takes at most [`RECORDS_PER_ROUND`] records
//! of each ready connection, so one flooding client cannot starve the others; a reply that
//! cannot be sent at once (the client does not read) closes that connection.
//!
//! A name lives exactly as long as the registry connection that registered it: when that
//! connection closes or hangs up, its names are dropped at once, and a [`Request::Register`] or
//! [`Request::Lookup`] that meets a name whose holder hung up (and whose hang-up the loop has not
//! seen yet) drops it first.
//!
//! No local user can lock others out: each ordinary user holds at most [`MAX_PER_USER`]
//! connections and [`MAX_NAMES_PER_USER`] names, all ordinary users together [`MAX_CLIENTS`]
//! connections; registry connections have places of their own ([`MAX_REGISTRIES_PER_USER`],
//! [`MAX_REGISTRIES`]), so that a user whose processes own mailslots still looks names up;
//! root, the daemon's user and the user the daemon runs as have [`ADMIN_RESERVE`] connections
//! of each kind of their own, and everyone together [`MAX_NAMES`] names. A
//! connection that is not a registry connection and sends nothing for [`IDLE_TIMEOUT`] is
//! closed.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::mem::MaybeUninit;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mailslot::daemon::DirectoryStatus;
use mailslot::directory::{
    entry_len, Entry, Reply, Request, DIRECTORY_ADDRESS, MAX_RECORD, SOCKET_PREFIX,
};
use mailslot::error::code;
use mailslot::trusted::Caller;
use socket2::{Domain, SockAddr, Socket, Type};
use tracing::{debug, error, warn};

use crate::control::is_admin;
use crate::places::Places;
use crate::sys::{self, Epoll, Waker};

/// Names one ordinary user may hold at once.
pub const MAX_NAMES_PER_USER: usize = 65_536;
/// Names all users together may hold (root and the daemon's user too).
pub const MAX_NAMES: usize = 1_048_576;
/// Connections one ordinary user may hold at once.
pub const MAX_PER_USER: usize = 64;
/// Connections all ordinary users may hold together.
pub const MAX_CLIENTS: usize = 4096;
/// Registry connections (one per owner process) one ordinary user may hold at once, beside
/// its [`MAX_PER_USER`] other connections: a user whose processes own many mailslots can still
/// look names up. An owner process refused one binds sockets of its own.
pub const MAX_REGISTRIES_PER_USER: usize = 256;
/// Registry connections all ordinary users may hold together.
pub const MAX_REGISTRIES: usize = 4096;
/// Connections kept for root and the daemon's user (and the user the daemon runs as), on top of
/// [`MAX_CLIENTS`] (and as many registry connections on top of [`MAX_REGISTRIES`]).
pub const ADMIN_RESERVE: usize = 256;
/// A connection that did not declare itself a registry connection ([`Request::Owner`]) and sends
/// nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Records taken from one connection per wake-up at most.
pub const RECORDS_PER_ROUND: usize = 16;

/// Entries of the name table one connection may walk per wake-up ([`Request::List`] from far
/// in), besides its [`RECORDS_PER_ROUND`].
const STEPS_PER_ROUND: usize = 65_536;
/// Names the table must have held for its emptying to give memory back to the system.
const TRIM_AFTER: usize = 1024;
/// Connections accepted per wake-up at most.
const ACCEPTS_PER_ROUND: usize = 64;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// How often idle connections are looked for.
const TICK: Duration = Duration::from_secs(1);
/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Bytes of a [`Reply::Entries`] record before its entries.
const ENTRIES_HEADER: usize = 5;
/// Descriptors the daemon asks for (the connection limits plus room for the rest).
const FD_LIMIT: u64 = (MAX_CLIENTS + MAX_REGISTRIES + 2 * ADMIN_RESERVE + 1024) as u64;
/// The epoll tokens that are not connections.
const LISTENER: u64 = 0;
const WAKER: u64 = 1;

/// The limits a [`DirectoryServer`] enforces (see the module documentation); the default is the
/// constants of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryLimits {
    /// Names one ordinary user may hold ([`MAX_NAMES_PER_USER`]).
    pub names_per_user: usize,
    /// Names all users together may hold ([`MAX_NAMES`]).
    pub names: usize,
    /// Connections one ordinary user may hold ([`MAX_PER_USER`]).
    pub connections_per_user: usize,
    /// Connections all ordinary users may hold ([`MAX_CLIENTS`]).
    pub connections: usize,
    /// Registry connections (owner processes) one ordinary user may hold
    /// ([`MAX_REGISTRIES_PER_USER`]), beside its other connections.
    pub registries_per_user: usize,
    /// Registry connections all ordinary users may hold ([`MAX_REGISTRIES`]).
    pub registries: usize,
    /// Connections of root and the daemon's user, of each kind ([`ADMIN_RESERVE`]).
    pub admin_reserve: usize,
    /// Idle time after which a connection that is not a registry connection is closed
    /// ([`IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
}

impl Default for DirectoryLimits {
    fn default() -> Self {
        Self {
            names_per_user: MAX_NAMES_PER_USER,
            names: MAX_NAMES,
            connections_per_user: MAX_PER_USER,
            connections: MAX_CLIENTS,
            registries_per_user: MAX_REGISTRIES_PER_USER,
            registries: MAX_REGISTRIES,
            admin_reserve: ADMIN_RESERVE,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// What the directory did, counted by its thread and readable from any other.
#[derive(Debug, Default)]
pub struct DirectoryCounters {
    names: AtomicU64,
    registries: AtomicU64,
    connections: AtomicU64,
    refused_exists: AtomicU64,
    refused_limit: AtomicU64,
    malformed: AtomicU64,
    connections_refused: AtomicU64,
}

impl DirectoryCounters {
    /// The counters now, as the daemon's status carries them ([`mailslot::daemon::Status`]).
    pub fn snapshot(&self) -> DirectoryStatus {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectoryStatus {
            names: get(&self.names),
            registries: get(&self.registries),
            connections: get(&self.connections),
            refused_exists: get(&self.refused_exists),
            refused_limit: get(&self.refused_limit),
            malformed: get(&self.malformed),
            connections_refused: get(&self.connections_refused),
        }
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn sub(c: &AtomicU64, n: u64) {
    c.fetch_sub(n, Ordering::Relaxed);
}

/// The listening directory socket (`SOCK_SEQPACKET`, abstract name), not yet served.
#[derive(Debug)]
pub struct DirectoryServer {
    listener: Socket,
    limits: DirectoryLimits,
    /// The abstract name it is bound to.
    address: String,
}

impl DirectoryServer {
    /// Binds [`DIRECTORY_ADDRESS`] in this network namespace; `AddrInUse` when a daemon runs.
    pub fn bind() -> io::Result<Self> {
        Self::bind_at(DIRECTORY_ADDRESS)
    }

    /// Binds the abstract name `address` (tests use names of their own; clients find it through
    /// [`mailslot::directory::DIRECTORY_ENV`]).
    pub fn bind_at(address: &str) -> io::Result<Self> {
        let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        // A leading NUL makes the name abstract: no file, gone with the socket.
        listener.bind(&SockAddr::unix(format!("\0{address}"))?)?;
        listener.listen(128)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            limits: DirectoryLimits::default(),
            address: address.to_string(),
        })
    }

    /// The same server with other limits (tests use small ones).
    pub fn with_limits(mut self, limits: DirectoryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves the directory on a thread of its own (`mailslotd-directory`) until the handle is
    /// dropped.
    pub fn spawn(self) -> io::Result<DirectoryHandle> {
        let epoll = Epoll::new()?;
        let waker = Arc::new(Waker::new()?);
        epoll.add(&self.listener, libc::EPOLLIN as u32, LISTENER)?;
        epoll.add(&*waker, libc::EPOLLIN as u32, WAKER)?;
        let counters = Arc::new(DirectoryCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let names: Arc<Mutex<Names>> = Arc::default();
        // The daemon's own deliveries find names in the table itself, without waiting for this
        // thread to be scheduled.
        let table = names.clone();
        let here = mailslot::directory::serve_lookups_here(&self.address, move |key| {
            lock(&table).get(key).map(|n| (n.id, n.address.to_vec()))
        });
        let mut state = State {
            limits: self.limits,
            counters: counters.clone(),
            epoll,
            listener: self.listener,
            waker: waker.clone(),
            stop: stop.clone(),
            conns: HashMap::new(),
            names: names.clone(),
            names_per_uid: HashMap::new(),
            plain: Places::default(),
            registries: Places::default(),
            next_conn: WAKER + 1,
            generation: 0,
            peak_names: 0,
            buf: vec![0u8; MAX_RECORD],
            accept_paused_until: None,
        };
        let thread = std::thread::Builder::new()
            .name("mailslotd-directory".into())
            .spawn(move || state.run())?;
        Ok(DirectoryHandle {
            counters,
            waker,
            stop,
            thread: Some(thread),
            _here: here,
        })
    }
}

/// A running directory: its counters; dropping it stops the thread (and drops every name).
#[derive(Debug)]
pub struct DirectoryHandle {
    counters: Arc<DirectoryCounters>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// This process's own lookups, answered from the table while the directory serves.
    _here: mailslot::directory::LookupsHere,
}

impl DirectoryHandle {
    /// The directory's counters.
    pub fn counters(&self) -> &Arc<DirectoryCounters> {
        &self.counters
    }
}

impl Drop for DirectoryHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Raises this process's descriptor limit towards what the directory's connection limits need
/// (best effort; the daemon calls it before it drops root).
pub fn raise_fd_limit() {
    sys::raise_fd_limit(FD_LIMIT);
}

/// A registered name.
#[derive(Debug)]
struct Name {
    /// The registry connection that holds it.
    conn: u64,
    /// The slot's id in the owner process.
    id: u64,
    pid: u32,
    uid: u32,
    /// The owner's process listener (shared with its connection and its other names).
    address: Arc<[u8]>,
}

/// The name table.
type Names = BTreeMap<String, Name>;

fn lock(names: &Mutex<Names>) -> MutexGuard<'_, Names> {
    names.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the last [`Request::List`] of a connection stopped, so that the next page starts
/// there instead of walking the table from its start (valid while the table is unchanged).
#[derive(Debug)]
struct Cursor {
    generation: u64,
    next: usize,
    last_key: String,
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    sock: Socket,
    pid: u32,
    uid: u32,
    admin: bool,
    /// The process listener's address, once the connection sent [`Request::Owner`].
    owner: Option<Arc<[u8]>>,
    /// The names it registered: slot id → key.
    slots: HashMap<u64, String>,
    last_request: Instant,
    cursor: Option<Cursor>,
}

/// The directory thread's state.
struct State {
    limits: DirectoryLimits,
    counters: Arc<DirectoryCounters>,
    epoll: Epoll,
    listener: Socket,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    /// Connections by token (never reused, so a stale event finds nothing).
    conns: HashMap<u64, Conn>,
    /// Names by key; ordered so that [`Request::List`] pages by index. Shared with this
    /// process's own writers (the daemon's deliveries), which look names up without asking
    /// this thread (see [`DirectoryServer::spawn`]); only this thread changes it.
    names: Arc<Mutex<Names>>,
    names_per_uid: HashMap<u32, usize>,
    /// Places of connections that are not registry connections (lookups, listings).
    plain: Places,
    /// Places of registry connections (taken when [`Request::Owner`] comes, the plain place
    /// given back): a user whose processes hold many names still looks names up.
    registries: Places,
    next_conn: u64,
    /// The most names the table held since it was last empty (see [`TRIM_AFTER`]).
    peak_names: usize,
    /// Changes whenever a name comes or goes (invalidates [`Cursor`]s).
    generation: u64,
    /// One record.
    buf: Vec<u8>,
    /// Accepting paused (out of descriptors) until then.
    accept_paused_until: Option<Instant>,
}

impl State {
    fn run(&mut self) {
        // A request takes microseconds; a writer's open and an owner's create wait for it.
        sys::prefer_short_slices(Duration::from_micros(100));
        let mut got = [MaybeUninit::uninit(); EVENTS];
        let mut events = Vec::with_capacity(EVENTS);
        let mut last_sweep = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let timeout = match self.accept_paused_until {
                Some(t) => t.saturating_duration_since(now).min(TICK),
                None => TICK,
            };
            if let Err(e) = self.epoll.wait(&mut got, &mut events, timeout) {
                error!("directory: epoll_wait: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            for &(token, flags) in &events {
                match token {
                    LISTENER => self.accept_some(),
                    WAKER => self.waker.drain(),
                    id => self.on_event(id, flags),
                }
            }
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                self.accept_paused_until = None;
                if let Err(e) = self
                    .epoll
                    .modify(&self.listener, libc::EPOLLIN as u32, LISTENER)
                {
                    error!("directory: cannot resume accepting: {e}");
                }
            }
            if now.duration_since(last_sweep) >= TICK {
                last_sweep = now;
                self.close_idle(now);
            }
        }
    }

    /// Accepts the waiting connections (up to [`ACCEPTS_PER_ROUND`]).
    fn accept_some(&mut self) {
        for _ in 0..ACCEPTS_PER_ROUND {
            let sock = match sys::accept(&self.listener) {
                Ok(fd) => Socket::from(fd),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => continue,
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        warn!("directory: cannot accept: {e}; pausing");
                        self.pause_accepting();
                        return;
                    }
                    _ => {
                        error!("directory: accept: {e}");
                        self.pause_accepting();
                        return;
                    }
                },
            };
            let caller = match Caller::of_peer(&sock) {
                Ok(c) => c,
                Err(e) => {
                    debug!("directory connection: {e}");
                    continue;
                }
            };
            let Some(admin) = self.admit(caller.uid) else {
                inc(&self.counters.connections_refused);
                debug!(uid = caller.uid, "directory connection refused: too many");
                let bytes = Reply::Failed {
                    code: code::NOT_ENOUGH_MEMORY,
                }
                .encode();
                let _ = sock.send_with_flags(&bytes, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
                continue;
            };
            let id = self.next_conn;
            self.next_conn += 1;
            if let Err(e) = self
                .epoll
                .add(&sock, (libc::EPOLLIN | libc::EPOLLRDHUP) as u32, id)
            {
                error!("directory: epoll_ctl: {e}");
                self.release(caller.uid, admin);
                continue;
            }
            self.conns.insert(
                id,
                Conn {
                    sock,
                    pid: caller.pid,
                    uid: caller.uid,
                    admin,
                    owner: None,
                    slots: HashMap::new(),
                    last_request: Instant::now(),
                    cursor: None,
                },
            );
            inc(&self.counters.connections);
        }
    }

    fn pause_accepting(&mut self) {
        self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
        if let Err(e) = self.epoll.modify(&self.listener, 0, LISTENER) {
            error!("directory: cannot pause accepting: {e}");
        }
    }

    /// Takes a plain connection place for `uid` if the limits allow one: `Some(admin)`.
    fn admit(&mut self, uid: u32) -> Option<bool> {
        let admin = is_admin(uid);
        let l = &self.limits;
        self.plain
            .take(
                uid,
                admin,
                (l.connections_per_user, l.connections, l.admin_reserve),
            )
            .then_some(admin)
    }

    /// Gives back a place [`admit`](Self::admit) took.
    fn release(&mut self, uid: u32, admin: bool) {
        self.plain.give_back(uid, admin);
    }

    /// Closes connection `id` and drops all its names.
    fn close(&mut self, id: u64, why: &str) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        let _ = self.epoll.delete(&conn.sock);
        let n = conn.slots.len();
        for key in conn.slots.into_values() {
            self.remove_name(&key, id);
        }
        sub(&self.counters.connections, 1);
        if conn.owner.is_some() {
            self.registries.give_back(conn.uid, conn.admin);
            sub(&self.counters.registries, 1);
        } else {
            self.release(conn.uid, conn.admin);
        }
        debug!(
            uid = conn.uid,
            pid = conn.pid,
            names = n,
            "directory connection closed: {why}"
        );
    }

    /// Drops the name `key` if connection `conn` holds it.
    fn remove_name(&mut self, key: &str, conn: u64) {
        let mut names = lock(&self.names);
        match names.get(key) {
            Some(n) if n.conn == conn => {}
            _ => return,
        }
        let Some(name) = names.remove(key) else {
            return;
        };
        let empty = names.is_empty();
        drop(names);
        if empty && self.peak_names >= TRIM_AFTER {
            // The table held many names and holds none now: its memory goes back to the system
            // instead of staying with the allocator for good.
            self.peak_names = 0;
            sys::release_free_memory();
        }
        if let Some(n) = self.names_per_uid.get_mut(&name.uid) {
            *n -= 1;
            if *n == 0 {
                self.names_per_uid.remove(&name.uid);
            }
        }
        sub(&self.counters.names, 1);
        self.generation += 1;
    }

    /// Closes the connections that are not registry connections and sent nothing for the idle
    /// timeout.
    fn close_idle(&mut self, now: Instant) {
        let idle: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.owner.is_none() && now.duration_since(c.last_request) >= self.limits.idle_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.close(id, "idle");
        }
    }

    /// Readiness of connection `id`.
    fn on_event(&mut self, id: u64, flags: u32) {
        if flags & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32 != 0 {
            self.close(id, "hung up");
        } else if flags & libc::EPOLLIN as u32 != 0 {
            self.serve(id);
        }
    }

    /// Answers up to [`RECORDS_PER_ROUND`] records of connection `id` (the rest wait for the next
    /// wake-up: the socket stays readable).
    fn serve(&mut self, id: u64) {
        let mut steps = 0;
        for _ in 0..RECORDS_PER_ROUND {
            let Some(conn) = self.conns.get(&id) else {
                return;
            };
            let rec = match sys::recv_record_nonblocking(&conn.sock, &mut self.buf) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    self.close(id, &e.to_string());
                    return;
                }
            };
            // 0 bytes: the peer hung up, or sent an empty record (malformed).
            if rec.len == 0 && !rec.truncated && !rec.ancillary && sys::hung_up(&conn.sock) {
                self.close(id, "hung up");
                return;
            }
            let request = if rec.truncated {
                Err("record too large".to_string())
            } else if rec.ancillary {
                Err("record with ancillary data".to_string())
            } else {
                Request::decode(&self.buf[..rec.len]).map_err(|e| e.to_string())
            };
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    inc(&self.counters.malformed);
                    debug!(uid = conn.uid, "directory: malformed record: {e}");
                    self.send(
                        id,
                        &Reply::Failed {
                            code: code::INVALID_PARAMETER,
                        },
                    );
                    self.close(id, "malformed record");
                    return;
                }
            };
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.last_request = Instant::now();
            }
            let (reply, cost) = self.handle(id, request);
            if !self.send(id, &reply) {
                return;
            }
            steps += cost;
            if steps >= STEPS_PER_ROUND {
                return;
            }
        }
    }

    /// Sends `reply` on connection `id` without waiting; closes the connection (false) when that
    /// fails, as when the client does not read its answers.
    fn send(&mut self, id: u64, reply: &Reply) -> bool {
        let Some(conn) = self.conns.get(&id) else {
            return false;
        };
        match conn
            .sock
            .send_with_flags(&reply.encode(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
        {
            Ok(_) => true,
            Err(e) => {
                let why = if e.kind() == io::ErrorKind::WouldBlock {
                    "does not read its answers".to_string()
                } else {
                    e.to_string()
                };
                self.close(id, &why);
                false
            }
        }
    }

    /// Whether the holder `holder` of a name is gone (its connection hung up, though the loop
    /// may not have seen it yet); if so its names are dropped. The asking connection `asking`
    /// is alive by definition.
    fn reap_if_gone(&mut self, holder: u64, asking: u64, key: &str) -> bool {
        if holder == asking {
            return false;
        }
        match self.conns.get(&holder) {
            Some(c) if !sys::hung_up(&c.sock) => false,
            Some(_) => {
                self.close(holder, "hung up");
                true
            }
            // Cannot happen (names go with their connection); heal it anyway.
            None => {
                self.remove_name(key, holder);
                true
            }
        }
    }

    /// Answers one request of connection `id`: the reply, and the table entries it walked.
    fn handle(&mut self, id: u64, request: Request) -> (Reply, usize) {
        let failed = |code| (Reply::Failed { code }, 1);
        let Some(conn) = self.conns.get_mut(&id) else {
            return failed(code::INVALID_PARAMETER);
        };
        match request {
            Request::Owner { address } => {
                if conn.owner.is_some() {
                    return failed(code::INVALID_PARAMETER);
                }
                let (uid, admin) = (conn.uid, conn.admin);
                let l = &self.limits;
                let limits = (l.registries_per_user, l.registries, l.admin_reserve);
                if !self.registries.take(uid, admin, limits) {
                    inc(&self.counters.refused_limit);
                    debug!(uid, "directory: too many registry connections");
                    return failed(code::NOT_ENOUGH_MEMORY);
                }
                // From a plain place to a registry place.
                self.plain.give_back(uid, admin);
                let Some(conn) = self.conns.get_mut(&id) else {
                    return failed(code::INVALID_PARAMETER);
                };
                debug!(
                    uid = conn.uid,
                    pid = conn.pid,
                    "directory: registry connection"
                );
                conn.owner = Some(address.into());
                inc(&self.counters.registries);
                (Reply::Done, 1)
            }
            Request::Register { id: slot, key } => (self.register(id, slot, key), 1),
            Request::Unregister { id: slot } => {
                if let Some(key) = conn.slots.remove(&slot) {
                    self.remove_name(&key, id);
                }
                (Reply::Done, 1)
            }
            Request::Lookup { key } => {
                let Some(holder) = lock(&self.names).get(&key).map(|n| n.conn) else {
                    return (Reply::Missing, 1);
                };
                if self.reap_if_gone(holder, id, &key) {
                    return (Reply::Missing, 1);
                }
                match lock(&self.names).get(&key) {
                    Some(n) => (
                        Reply::Found {
                            id: n.id,
                            pid: n.pid,
                            uid: n.uid,
                            address: n.address.to_vec(),
                        },
                        1,
                    ),
                    None => (Reply::Missing, 1),
                }
            }
            Request::List { from } => self.list(id, from as usize),
        }
    }

    fn register(&mut self, id: u64, slot: u64, key: String) -> Reply {
        let failed = |code| Reply::Failed { code };
        let Some(conn) = self.conns.get(&id) else {
            return failed(code::INVALID_PARAMETER);
        };
        if conn.owner.is_none() || conn.slots.contains_key(&slot) {
            return failed(code::INVALID_PARAMETER);
        }
        let (uid, pid, admin) = (conn.uid, conn.pid, conn.admin);
        let holder = lock(&self.names).get(&key).map(|n| n.conn);
        if let Some(holder) = holder {
            if !self.reap_if_gone(holder, id, &key) {
                inc(&self.counters.refused_exists);
                debug!(uid, key, "directory: name has an owner");
                return failed(code::ALREADY_EXISTS);
            }
        }
        let mine = self.names_per_uid.get(&uid).copied().unwrap_or(0);
        let total = lock(&self.names).len();
        if total >= self.limits.names || (!admin && mine >= self.limits.names_per_user) {
            inc(&self.counters.refused_limit);
            debug!(uid, "directory: too many names");
            return failed(code::NOT_ENOUGH_MEMORY);
        }
        match probe(&key) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                inc(&self.counters.refused_exists);
                debug!(uid, key, "directory: name has a socket of its own");
                return failed(code::ALREADY_EXISTS);
            }
            Err(e) => {
                inc(&self.counters.refused_limit);
                debug!(uid, key, "directory: cannot probe the name: {e}");
                return failed(code::NOT_ENOUGH_MEMORY);
            }
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return failed(code::INVALID_PARAMETER);
        };
        let Some(address) = conn.owner.clone() else {
            return failed(code::INVALID_PARAMETER);
        };
        conn.slots.insert(slot, key.clone());
        lock(&self.names).insert(
            key,
            Name {
                conn: id,
                id: slot,
                pid,
                uid,
                address,
            },
        );
        *self.names_per_uid.entry(uid).or_insert(0) += 1;
        inc(&self.counters.names);
        self.peak_names = self.peak_names.max(total + 1);
        self.generation += 1;
        Reply::Done
    }

    /// The names from index `from` on, as many as fit a record.
    fn list(&mut self, id: u64, from: usize) -> (Reply, usize) {
        let generation = self.generation;
        // Where the connection's last page stopped, if the table has not changed since.
        let after = self.conns.get_mut(&id).and_then(|c| {
            c.cursor
                .take()
                .filter(|c| c.generation == generation && c.next == from)
                .map(|c| c.last_key)
        });
        let names = lock(&self.names);
        let (iter, mut steps): (Box<dyn Iterator<Item = (&String, &Name)>>, usize) = match &after {
            Some(k) => (
                Box::new(names.range::<str, _>((Bound::Excluded(k.as_str()), Bound::Unbounded))),
                0,
            ),
            None => (Box::new(names.iter().skip(from)), from.min(names.len())),
        };
        let mut entries = Vec::new();
        let mut size = ENTRIES_HEADER;
        let mut more = false;
        for (key, n) in iter {
            let e = Entry {
                pid: n.pid,
                uid: n.uid,
                key: key.clone(),
            };
            if size + entry_len(&e) > MAX_RECORD {
                more = true;
                break;
            }
            size += entry_len(&e);
            entries.push(e);
        }
        steps += entries.len() + 1;
        let next_index = from + entries.len();
        let next = match u32::try_from(next_index) {
            Ok(n) if more => n,
            _ => 0,
        };
        if next != 0 {
            if let (Some(conn), Some(last)) = (self.conns.get_mut(&id), entries.last()) {
                conn.cursor = Some(Cursor {
                    generation,
                    next: next_index,
                    last_key: last.key.clone(),
                });
            }
        }
        (Reply::Entries { next, entries }, steps)
    }
}

/// Whether a socket is bound at the abstract address of mailslot `key` (a mailslot with a socket
/// of its own): binds a probe there and closes it at once; `AddrInUse` if taken.
fn probe(key: &str) -> io::Result<()> {
    let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
    s.bind(&SockAddr::unix(format!("\0{SOCKET_PREFIX}{key}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_the_constants() {
        let l = DirectoryLimits::default();
        assert_eq!(l.names_per_user, MAX_NAMES_PER_USER);
        assert_eq!(l.names, MAX_NAMES);
        assert_eq!(l.connections_per_user, MAX_PER_USER);
        assert_eq!(l.connections, MAX_CLIENTS);
        assert_eq!(l.admin_reserve, ADMIN_RESERVE);
        assert_eq!(l.idle_timeout, IDLE_TIMEOUT);
    }

    #[test]
    fn the_longest_key_fits_a_probe_address() {
        let key = "x".repeat(mailslot::directory::MAX_KEY);
        assert!(probe(&key).is_ok());
    }
}
