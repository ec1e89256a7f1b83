//! Owner side of one mailslot: listener, writer connections, the queue, reading and waiting.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::service::{self, Service};
use super::{
    address, decode_batch, decode_header, decode_remote, Greeting, BATCH_RECORD_MAX, FLAG_BATCH,
    FLAG_REMOTE, HEADER_LEN, REMOTE_LEN,
};
use crate::control::Control;
use crate::error::{CreateError, ReadError};
use crate::name::Name;
use crate::queue::{Entry, Queue};
use crate::sys::{self, PeerCred};
use crate::types::{Access, Class, Message, Sender, Timeout};

const TOKEN_LISTENER: u64 = u64::MAX;

/// Root and the daemon's user may deliver messages on behalf of remote hosts.
fn is_daemon(cred: &PeerCred) -> bool {
    cred.uid == 0 || Some(cred.uid) == crate::daemon::daemon_uid()
}
/// Spins in a row without a message after which a reader stops spinning.
const SPIN_MAX_MISSES: u32 = 8;
/// While spinning is off, one wait in this many spins again (to notice that it would pay off).
const SPIN_PROBE_EVERY: u32 = 32;
/// Messages taken from one connection per drain before moving on (fairness between writers).
const PER_CONN_BATCH: usize = 4096;

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

pub(crate) struct State {
    queue: Queue,
    conns: HashMap<RawFd, Conn>,
    listener: Option<OwnedFd>,
    pub read_timeout: Timeout,
    pub readers_waiting: usize,
    /// Reads, peeks and waits so far: the service thread leaves the slot alone while it moves.
    pub reader_ops: u64,
    /// `reader_ops` when the service thread last looked at the slot.
    pub service_seen_ops: u64,
    /// Buffers of messages read by copy, reused for new messages (no allocation per message).
    spare: Vec<Vec<u8>>,
    /// Capacity of the buffers in `spare`, bytes.
    spare_bytes: usize,
    pub arming: Arming,
    /// The service thread has this slot on its timer list (it will re-arm it).
    pub deferred: bool,
    /// The wake eventfd was signalled and not yet cleared.
    pub wake_pending: bool,
    /// Records taken from the sockets so far (compared with the writers' `sent` counter).
    received: u64,
    /// Spins in a row that ended without a message; at [`SPIN_MAX_MISSES`] spinning stops.
    spin_misses: u32,
    /// Waits without spinning since spinning stopped (a probe spins every [`SPIN_PROBE_EVERY`]).
    spin_skipped: u32,
    buf: Vec<u8>,
    /// Messages dropped because they were malformed or over the limits (misbehaving writers).
    pub dropped: u64,
    /// Writers refused by the access policy.
    pub refused: u64,
    /// Network messages refused because the slot does not accept remote messages.
    pub refused_remote: u64,
}

/// Most buffers kept for reuse, the most bytes they may hold together, and the largest buffer
/// worth keeping: enough for the bursts a reader takes in at once (a drain moves up to
/// [`PER_CONN_BATCH`] records of up to 64 KiB each), while a slot that once held many or large
/// messages does not keep much of their memory.
const SPARE_BUFFERS: usize = 1024;
const SPARE_BYTES: usize = 512 << 10;
const SPARE_CAPACITY: usize = 4096;

impl State {
    /// Keeps the buffer of a message read by copy for the next message.
    fn recycle(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if self.spare.len() < SPARE_BUFFERS
            && cap <= SPARE_CAPACITY
            && self.spare_bytes + cap <= SPARE_BYTES
        {
            self.spare_bytes += cap;
            self.spare.push(buf);
        }
    }

    /// A buffer holding `data`, reused when one is kept.
    fn buffer_with(&mut self, data: &[u8]) -> Vec<u8> {
        match self.spare.pop() {
            Some(mut b) => {
                self.spare_bytes -= b.capacity();
                b.clear();
                b.extend_from_slice(data);
                b
            }
            None => data.to_vec(),
        }
    }
}

/// One owned mailslot.
pub(crate) struct Slot {
    pub config: Config,
    /// Listener and writer connections.
    epoll: OwnedFd,
    /// What readers wait on: `epoll` plus `wake`.
    wait_epoll: OwnedFd,
    /// Signalled by the service thread when it moved messages into the queue.
    wake: OwnedFd,
    memfd: OwnedFd,
    control: Control,
    pub token: u64,
    /// The process that created the slot; only it may close it (see [`Slot::close`]).
    creator_pid: u32,
    service: Arc<Service>,
    state: Mutex<State>,
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

impl Slot {
    pub fn create(config: Config, read_timeout: Timeout) -> Result<Arc<Slot>, CreateError> {
        sys::raise_nofile_limit();
        let listener = sys::seqpacket(true)?;
        match sys::bind_abstract(&listener, &address(&config.name.key())) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                return Err(CreateError::AlreadyExists(config.name.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        sys::listen(&listener, 4096)?;
        let epoll = sys::epoll_create()?;
        sys::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            listener.as_raw_fd(),
            libc::EPOLLIN as u32,
            TOKEN_LISTENER,
        )?;
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
        let (memfd, control) = Control::create()?;
        let service = service::get()?;
        let buf = vec![
            0u8;
            (HEADER_LEN + REMOTE_LEN + config.max_message_size).max(BATCH_RECORD_MAX) + 1
        ];
        let slot = Arc::new(Slot {
            epoll,
            wait_epoll,
            wake,
            memfd,
            control,
            token: service.next_token(),
            creator_pid: sys::getpid(),
            service,
            state: Mutex::new(State {
                queue: Queue::default(),
                conns: HashMap::new(),
                listener: Some(listener),
                read_timeout,
                readers_waiting: 0,
                reader_ops: 0,
                service_seen_ops: 0,
                spare: Vec::new(),
                spare_bytes: 0,
                arming: Arming::Idle,
                deferred: false,
                wake_pending: false,
                received: 0,
                spin_misses: 0,
                spin_skipped: 0,
                buf,
                dropped: 0,
                refused: 0,
                refused_remote: 0,
            }),
            config,
        });
        slot.service.register(&slot)?;
        Ok(slot)
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn epoll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// The descriptor readers (and async users) wait on.
    pub fn wait_fd(&self) -> RawFd {
        self.wait_epoll.as_raw_fd()
    }

    /// Signals waiting readers that the service moved messages into the queue.
    pub fn signal_wake(&self, st: &mut State) {
        if !st.wake_pending {
            st.wake_pending = true;
            sys::eventfd_signal(self.wake.as_raw_fd());
        }
    }

    fn clear_wake(&self, st: &mut State) {
        if st.wake_pending {
            st.wake_pending = false;
            sys::eventfd_clear(self.wake.as_raw_fd());
        }
    }

    /// Moves everything pending on the sockets into the queue; returns how many messages arrived.
    pub fn drain(&self, st: &mut State) -> io::Result<usize> {
        let before = st.queue.len();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            let n = sys::epoll_wait(self.epoll.as_raw_fd(), &mut events, Some(Duration::ZERO))?;
            for ev in &events[..n] {
                let (token, flags) = (ev.u64, ev.events);
                if token == TOKEN_LISTENER {
                    self.accept_all(st);
                } else {
                    self.recv_conn(st, token as RawFd, flags);
                }
            }
            if n < events.len() {
                break;
            }
        }
        Ok(st.queue.len() - before)
    }

    fn admits(&self, cred: &PeerCred, conn: &OwnedFd) -> bool {
        if cred.uid == 0 || cred.uid == self.config.owner_uid || is_daemon(cred) {
            return true;
        }
        match self.config.access {
            Access::Owner => false,
            Access::Everyone => true,
            Access::Group(g) => {
                cred.gid == g
                    || sys::peer_groups(conn)
                        .map(|gs| gs.contains(&g))
                        .unwrap_or(false)
            }
        }
    }

    fn accept_all(&self, st: &mut State) {
        loop {
            let Some(listener) = st.listener.as_ref() else {
                return;
            };
            let conn = match sys::accept(listener) {
                Ok(Some(c)) => c,
                Ok(None) => return,
                // ECONNABORTED and friends: that writer is gone; EMFILE: try again later.
                Err(_) => return,
            };
            let Ok(cred) = sys::peer_cred(&conn) else {
                continue;
            };
            let admitted = self.admits(&cred, &conn);
            let greeting = Greeting {
                admitted,
                accepts_remote: self.config.accept_remote,
                max_message_size: self.config.max_message_size as u64,
                quota: self.config.quota as u64,
                max_messages: self.config.max_messages as u64,
                owner_pid: sys::getpid(),
                owner_uid: self.config.owner_uid,
                display: self.config.name.to_string(),
            }
            .encode();
            let pass = admitted.then(|| self.memfd.as_raw_fd());
            if sys::send_parts(conn.as_raw_fd(), &[&greeting], pass, true).is_err() || !admitted {
                if !admitted {
                    st.refused += 1;
                }
                continue; // dropping `conn` closes it
            }
            let fd = conn.as_raw_fd();
            if sys::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd,
                (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
                fd as u64,
            )
            .is_ok()
            {
                st.conns.insert(fd, Conn { fd: conn, cred });
            }
        }
    }

    fn remove_conn(&self, st: &mut State, fd: RawFd) {
        if let Some(c) = st.conns.remove(&fd) {
            let _ = sys::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                c.fd.as_raw_fd(),
                0,
                0,
            );
        }
    }

    fn recv_conn(&self, st: &mut State, fd: RawFd, _flags: u32) {
        let Some(cred) = st.conns.get(&fd).map(|c| c.cred) else {
            return;
        };
        let mut buf = std::mem::take(&mut st.buf);
        for _ in 0..PER_CONN_BATCH {
            match sys::recv_msg(fd, &mut buf, false) {
                Ok(None) => break,
                Ok(Some(r)) if r.len == 0 => {
                    self.remove_conn(st, fd);
                    break;
                }
                Ok(Some(r)) => {
                    st.received += 1;
                    if r.truncated {
                        st.dropped += 1;
                        continue;
                    }
                    self.enqueue(st, cred, &buf[..r.len]);
                }
                Err(_) => {
                    self.remove_conn(st, fd);
                    break;
                }
            }
        }
        st.buf = buf;
    }

    fn enqueue(&self, st: &mut State, cred: PeerCred, record: &[u8]) {
        let Some(h) = decode_header(record) else {
            st.dropped += 1;
            return;
        };
        if h.flags & FLAG_BATCH != 0 {
            return self.enqueue_batch(st, cred, h.seq, &record[HEADER_LEN..]);
        }
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
        self.push_checked(st, h.seq, data, h.priority, h.class, sender);
    }

    /// Queues one message if it is within the slot's limits, else drops and counts it. A writer
    /// that follows the protocol reserved room first; these checks only stop one that does
    /// not, so that it cannot grow the queue past its limits.
    fn push_checked(
        &self,
        st: &mut State,
        seq: u64,
        data: &[u8],
        priority: u8,
        class: u8,
        sender: Sender,
    ) {
        if data.len() > self.config.max_message_size
            || st.queue.bytes() + data.len() > self.config.quota
            || st.queue.len() + 1 > self.config.max_messages
        {
            st.dropped += 1;
            return;
        }
        let buf = st.buffer_with(data);
        st.queue.push(Entry {
            seq,
            msg: Message {
                data: buf,
                priority,
                class: Class::from_number(class.into()).unwrap_or_default(),
                sender,
            },
        });
    }

    /// A batch record of network messages from the daemon.
    fn enqueue_batch(&self, st: &mut State, cred: PeerCred, first_seq: u64, body: &[u8]) {
        let entries = match decode_batch(body) {
            Some(e) if is_daemon(&cred) => e,
            _ => {
                st.dropped += 1;
                return;
            }
        };
        if !self.config.accept_remote {
            st.refused_remote += entries.len() as u64;
            return;
        }
        for (i, e) in entries.into_iter().enumerate() {
            let Some((name, ip)) = decode_remote(e.remote) else {
                st.dropped += 1;
                continue;
            };
            let seq = first_seq.wrapping_add(i as u64);
            let sender = Sender::Remote { name, ip };
            self.push_checked(st, seq, e.data, e.priority, e.class, sender);
        }
    }

    /// Waits for a head message (up to `timeout`, or the slot's read timeout) and applies `take`.
    pub fn take(&self, take: Take<'_>, timeout: Option<Timeout>) -> Result<Taken, ReadError> {
        let mut st = self.lock();
        let timeout = timeout.unwrap_or(st.read_timeout);
        // The clock is read only once the queue is found empty: a read that finds a message
        // costs no clock reading.
        let mut deadline: Option<Instant> = None;
        let peek = matches!(take, Take::Peek(_) | Take::PeekMessage);
        let mut spun = false;
        let result = loop {
            // Draining costs system calls; it can be skipped while messages are queued and every
            // record writers finished sending has been taken in (so no completed write of higher
            // priority can be waiting in a socket). Any mismatch — a misbehaving writer
            // included — just means draining.
            if st.queue.head().is_none() || self.control.sent_now() != st.received {
                self.clear_wake(&mut st);
                self.drain(&mut st)?;
            }
            if st.queue.head().is_some() {
                break self.apply(&mut st, take);
            }
            let remaining = match timeout {
                Timeout::Forever => None,
                Timeout::After(d) => {
                    if d.is_zero() || peek {
                        break Err(ReadError::Timeout);
                    }
                    let now = Instant::now();
                    let dl = *deadline.get_or_insert(now + d);
                    if now >= dl {
                        break Err(ReadError::Timeout);
                    }
                    Some(dl - now)
                }
            };
            let budget = if spun {
                Duration::ZERO
            } else {
                self.spin_budget(&mut st)
            };
            if !budget.is_zero() {
                // Poll the writers' counter for a moment before sleeping: a message that is
                // about to arrive costs no wake-up (tens of µs) this way. No lock is held.
                spun = true;
                let seen = self.control.seq_now();
                let until = Instant::now() + remaining.map_or(budget, |r| r.min(budget));
                drop(st);
                let mut moved = false;
                'spin: loop {
                    for _ in 0..64 {
                        if self.control.seq_now() != seen {
                            moved = true;
                            break 'spin;
                        }
                        std::hint::spin_loop();
                    }
                    if Instant::now() >= until {
                        break;
                    }
                    // Let other runnable processes on this CPU go first (the writer we wait
                    // for may be one of them); costs next to nothing when none is.
                    std::thread::yield_now();
                }
                st = self.lock();
                // Adapt: keep spinning while it pays off; stop after a run of misses (messages
                // come later than the spin, e.g. more busy processes than CPUs).
                st.spin_misses = if moved { 0 } else { st.spin_misses + 1 };
                if moved {
                    continue;
                }
            }
            self.begin_wait(&mut st);
            drop(st);
            let mut ev = [libc::epoll_event { events: 0, u64: 0 }; 1];
            let r = sys::epoll_wait(self.wait_epoll.as_raw_fd(), &mut ev, remaining);
            st = self.lock();
            self.end_wait(&mut st);
            r?;
        };
        st.reader_ops = st.reader_ops.wrapping_add(1);
        result
    }

    /// The spin budget for this wait: the configured spin, or none after [`SPIN_MAX_MISSES`]
    /// misses in a row, except that every [`SPIN_PROBE_EVERY`]th wait then tries again.
    fn spin_budget(&self, st: &mut State) -> Duration {
        if self.config.spin.is_zero() {
            return Duration::ZERO;
        }
        if st.spin_misses >= SPIN_MAX_MISSES {
            st.spin_skipped += 1;
            if st.spin_skipped < SPIN_PROBE_EVERY {
                return Duration::ZERO;
            }
            st.spin_skipped = 0;
        }
        self.config.spin
    }

    fn apply(&self, st: &mut State, take: Take<'_>) -> Result<Taken, ReadError> {
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
                    if let Some(m) = st.queue.pop() {
                        st.recycle(m.data);
                    }
                    self.control.release(len);
                }
                t
            }
            Take::ReadMessage => {
                let m = st.queue.pop().ok_or(ReadError::Timeout)?;
                self.control.release(len);
                Taken::Message(m)
            }
            Take::PeekMessage => Taken::Message(head.clone()),
        };
        Ok(taken)
    }

    /// Queue state after draining: (count, next size, next priority).
    pub fn status(&self) -> (usize, Option<usize>, Option<u8>, Timeout) {
        let mut st = self.lock();
        self.clear_wake(&mut st);
        let _ = self.drain(&mut st);
        st.reader_ops = st.reader_ops.wrapping_add(1);
        let head = st.queue.head();
        (
            st.queue.len(),
            head.map(|m| m.data.len()),
            head.map(|m| m.priority),
            st.read_timeout,
        )
    }

    /// The slot's counters.
    pub fn counters(&self) -> Counters {
        let st = self.lock();
        Counters {
            dropped: st.dropped,
            refused_writers: st.refused,
            refused_remote: st.refused_remote,
        }
    }

    pub fn begin_wait(&self, st: &mut State) {
        st.readers_waiting += 1;
        if st.arming == Arming::Armed {
            self.service.disarm(self);
            st.arming = Arming::Idle;
        }
    }

    pub fn end_wait(&self, st: &mut State) {
        st.readers_waiting -= 1;
        st.reader_ops = st.reader_ops.wrapping_add(1);
        if st.readers_waiting == 0 && st.arming == Arming::Idle && !st.deferred {
            self.service.arm(self);
            st.arming = Arming::Armed;
        }
    }

    /// Closes the slot: frees the name at once, tells writers, drops the queue.
    ///
    /// In a forked child that inherited the handle this does nothing shared: the control page and
    /// the service epoll are the parent's, and the parent's mailslot must live on. The child's
    /// copies of the descriptors are closed when the slot is dropped.
    pub fn close(&self) {
        if sys::getpid() != self.creator_pid {
            return;
        }
        self.service.unregister(self);
        self.control.close();
        let mut st = self.lock();
        st.arming = Arming::Closed;
        st.listener = None;
        st.conns.clear();
        st.queue = Queue::default();
    }
}
