//! Writer side: connect, handshake, then one record per message in the writer's own ring (or,
//! as a fallback, on the socket).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::registry::encode_hello;
use super::{address, encode_header, encode_remote, Block, Greeting, Refusal, HEADER_LEN};
use crate::error::{OpenError, WriteError};
use crate::name::Name;
use crate::policy::Policy;
use crate::shm::{Control, RingWriter, Wake, REC_REMOTE};
use crate::sys::{self, PeerCred};
use crate::trusted::{BatchOutcome, RemoteMessage};
use crate::types::{Class, Timeout, WriteOptions, MAX_PRIORITY};

/// How long a second-class write waits for the owner's process to take in the writer's ring (or
/// socket) when it is slow to do so (the quota had room, so this is back-pressure, not a full
/// mailslot).
const SEND_GRACE: Duration = Duration::from_secs(2);
/// The same for the daemon delivering a network message: it must not stall on one slow owner.
const DAEMON_SEND_GRACE: Duration = Duration::from_millis(10);
/// How long a writer that finds no room (quota or ring) polls for it before it sleeps.
const RING_SPIN: Duration = Duration::from_micros(50);

/// Polls `ready` (yielding the CPU between rounds) until it is true or `max` has passed.
fn spin_until(max: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + max;
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Connections an open makes at most when each is closed before the owner greets it.
const OPEN_ATTEMPTS: u32 = 3;

/// How long an open waits for the owner's greeting before it connects again beside the first
/// connection (see `Connection::handshake`); each later wait is twice as long.
const NUDGE_AFTER: Duration = Duration::from_millis(200);
/// Connections an open makes at most beside its first one while it waits for a greeting.
const NUDGES: u32 = 3;
/// How long such a connection may wait for the owner's listen queue to take it.
const NUDGE_CONNECT: Duration = Duration::from_millis(50);

/// Longest single wait for room, after which the writer looks at the quota again.
const ROOM_POLL: Duration = Duration::from_millis(50);

/// Room notices read per wait at most (they are one byte each; one would do).
const NOTICES_PER_WAIT: usize = 64;
/// A write into the ring needs no system call, so the writer would not notice that the owner's
/// process died; it asks the kernel (one `poll`) when this long has passed since it last did, by
/// the coarse clock (so at most once per tick of it: 1–4 ms, depending on the kernel's `HZ`).
const LIVENESS_EVERY_NS: u64 = 1_000_000;

/// An open connection to a local mailslot.
pub(crate) struct Connection {
    sock: OwnedFd,
    control: Control,
    /// The writer's ring; `None` on the socket path.
    ring: Option<Mutex<RingWriter>>,
    /// `CLOCK_MONOTONIC` ns of the last check that the owner's side is still there.
    checked_ns: std::sync::atomic::AtomicU64,
    pub greeting: Greeting,
    /// The owner's process as the kernel saw it when it accepted the connection.
    pub owner: PeerCred,
    /// The effective uid of the thread that connected: the uid the owner knows this writer by
    /// (the kernel's peer credentials are taken at `connect`), whatever the process is later.
    pub euid: u32,
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNREFUSED)
    )
}

/// What a write that found no room before its deadline reports: a second-class write says the
/// mailslot is full, a first-class one that its timeout expired.
fn no_room(class: Class) -> WriteError {
    match class {
        Class::Second => WriteError::Full,
        Class::First => WriteError::Timeout,
    }
}

fn bad_owner(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("owner sent {what}"))
}

impl Connection {
    pub(crate) fn open(name: &Name, timeout: Duration) -> Result<Self, OpenError> {
        let policy = Policy::load().map_err(OpenError::Policy)?;
        let euid = sys::geteuid();
        let deadline = Instant::now() + timeout;
        let mut attempt = 1;
        loop {
            let first = Self::connect(name, &policy, deadline)?;
            match Self::handshake(name, &policy, first, euid, deadline)? {
                Some(c) => return Ok(c),
                // Closed before the greeting: the holder of a shared mailslot that accepted it
                // died (the others still serve the name), or the owner closed the mailslot (the
                // next connect is refused). A few attempts: an owner that closes every
                // connection does not keep a writer connecting for its whole timeout.
                None if attempt < OPEN_ATTEMPTS => attempt += 1,
                None => return Err(OpenError::NotFound(name.to_string())),
            }
        }
    }

    /// Connects to the owner of `name` and checks it against the name policy; the socket and
    /// the owner's process.
    fn connect(
        name: &Name,
        policy: &Policy,
        deadline: Instant,
    ) -> Result<(OwnedFd, PeerCred), OpenError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(OpenError::NotResponding(name.to_string()));
        }
        let sock = sys::seqpacket(false)?;
        // An owner whose listen queue is full (it stopped accepting) makes `connect` wait: until
        // the open's deadline at most, then it has not answered.
        sys::set_send_timeout(&sock, Some(remaining))?;
        let key = name.key();
        match sys::connect_abstract(&sock, &address(&key)) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) => {
                // No socket has the name: the daemon's directory may know where it lives.
                let Some((id, at)) = crate::directory::lookup(&key) else {
                    return Err(OpenError::NotFound(name.to_string()));
                };
                match sys::connect_abstract(&sock, &at) {
                    Ok(()) => {}
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) =>
                    {
                        return Err(OpenError::NotFound(name.to_string()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(OpenError::NotResponding(name.to_string()));
                    }
                    Err(e) => return Err(e.into()),
                }
                // Which of the process's slots: its service hands the connection over.
                sys::send_parts(sock.as_raw_fd(), &[&encode_hello(id, &key)], &[], false)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(OpenError::NotResponding(name.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        sys::set_send_timeout(&sock, None)?;
        // Who serves the name, as the kernel saw it when the owner started listening: checked
        // against the name policy before anything is sent or received.
        let owner = sys::peer_cred(&sock)?;
        if policy.covers(name) {
            let mut groups = vec![owner.gid];
            groups.extend(sys::peer_groups(&sock).unwrap_or_default());
            if !policy.check(name, owner.uid, &groups).is_allowed() {
                return Err(OpenError::OwnerNotAllowed {
                    name: name.to_string(),
                    uid: owner.uid,
                });
            }
        }
        Ok((sock, owner))
    }

    /// Waits for the owner's greeting on `first` until `deadline`; `None` if the connection is
    /// closed before it comes.
    ///
    /// A greeting that is slow to come may never come: a holder of a shared mailslot that
    /// accepted the connection can die after it made the connection known to the other holders
    /// and before it greeted the writer, and nothing tells the others until one of them next
    /// takes the holders' lock — which an idle holder may not do for a long time. So after
    /// [`NUDGE_AFTER`] without a greeting the open connects again beside the first connection
    /// (then after twice as long, [`NUDGES`] times at most): the holder that accepts the new
    /// connection takes the lock, finds the dead holder's work and puts it right, and greets
    /// the new connection. The first greeting on any of them wins; the others are closed (an
    /// owner that greets them later sees them hung up and lets them go). A `Busy` refusal is
    /// not that greeting while another connection waits (the refusal counted it): it ends the
    /// open only when no connection is left.
    fn handshake(
        name: &Name,
        policy: &Policy,
        first: (OwnedFd, PeerCred),
        euid: u32,
        deadline: Instant,
    ) -> Result<Option<Self>, OpenError> {
        let mut pending = vec![first];
        let mut nudges = 0;
        let mut wait = NUDGE_AFTER;
        let mut nudge_at = Instant::now() + wait;
        let mut buf = [0u8; 256];
        let mut busy = false;
        loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                return Err(OpenError::NotResponding(name.to_string()));
            }
            if nudges < NUDGES && now >= nudge_at {
                nudges += 1;
                wait *= 2;
                nudge_at = now + wait;
                // (An owner that does not take the connection at once is not waited for: the
                // connections made so far are.)
                match Self::connect(name, policy, deadline.min(now + NUDGE_CONNECT)) {
                    Ok(c) => pending.push(c),
                    Err(_) => nudges = NUDGES,
                }
                continue;
            }
            let until = if nudges < NUDGES {
                remaining.min(nudge_at.saturating_duration_since(now))
            } else {
                remaining
            };
            let socks: Vec<&OwnedFd> = pending.iter().map(|(s, _)| s).collect();
            let ready = sys::poll_many(&socks, libc::POLLIN, Some(until))?;
            // Newest first, so that removing one leaves the indices still to look at in place.
            for i in (0..pending.len()).rev() {
                if ready[i] == 0 {
                    continue;
                }
                match sys::recv_msg(pending[i].0.as_raw_fd(), &mut buf, true) {
                    Ok(None) => {}
                    Ok(Some(r)) if r.len == 0 => drop(pending.swap_remove(i)),
                    Ok(Some(r)) => {
                        let (sock, owner) = pending.swap_remove(i);
                        let g = Greeting::decode(&buf[..r.len.min(buf.len())])
                            .ok_or_else(|| bad_owner("a malformed greeting"))?;
                        // `Busy` counts this open's other connections: while one of them
                        // waits, its greeting is the answer, and no more are made.
                        if g.refusal == Some(Refusal::Busy) && !pending.is_empty() {
                            busy = true;
                            nudges = NUDGES;
                            continue;
                        }
                        return Self::greeted(name, sock, owner, euid, g, r.fds).map(Some);
                    }
                    Err(e) if is_gone(&e) => drop(pending.swap_remove(i)),
                    Err(e) => return Err(e.into()),
                }
            }
            if pending.is_empty() {
                return if busy {
                    Err(OpenError::Busy(name.to_string()))
                } else {
                    Ok(None)
                };
            }
        }
    }

    /// The connection `sock` once its owner's greeting `g` came, with the descriptors `fds` it
    /// passed.
    fn greeted(
        name: &Name,
        sock: OwnedFd,
        owner: PeerCred,
        euid: u32,
        g: Greeting,
        fds: Vec<OwnedFd>,
    ) -> Result<Self, OpenError> {
        match g.refusal {
            None => {}
            Some(Refusal::Denied) => return Err(OpenError::AccessDenied(name.to_string())),
            Some(Refusal::Busy) => return Err(OpenError::Busy(name.to_string())),
        }
        let mut fds = fds.into_iter();
        let control_fd = fds.next().ok_or_else(|| bad_owner("no control page"))?;
        let control = Control::attach(&control_fd)?;
        // A ring that cannot be used means the socket path, not a failure.
        let ring = fds
            .next()
            .and_then(|fd| RingWriter::attach(&fd).ok())
            .map(Mutex::new);
        Ok(Self {
            sock,
            control,
            ring,
            checked_ns: std::sync::atomic::AtomicU64::new(sys::monotonic_ns()),
            greeting: g,
            owner,
            euid,
        })
    }

    /// Whether the owner's side of the connection is gone.
    pub(crate) fn hung_up(&self) -> bool {
        self.control.is_closed()
            || sys::poll_one(self.sock.as_raw_fd(), 0, Some(Duration::ZERO))
                .map(|r| r & (libc::POLLHUP | libc::POLLERR) != 0)
                .unwrap_or(true)
    }

    /// Whether the owner's process is gone, asked of the kernel at most once per
    /// [`LIVENESS_EVERY_NS`].
    fn owner_died(&self, now: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if now.saturating_sub(self.checked_ns.load(Relaxed)) < LIVENESS_EVERY_NS {
            return false;
        }
        self.checked_ns.store(now, Relaxed);
        self.hung_up()
    }

    /// Whether the quota has room for `n` more messages of `bytes` in total: what the owner
    /// has queued, plus what this writer wrote that the owner has not taken in yet.
    fn quota_ok(&self, ring: Option<&RingWriter>, bytes: usize, n: usize) -> bool {
        // The ring's counts first, then the totals: the owner publishes the totals before it
        // commits the counts, so read in this order a commit in between is counted twice (on
        // the safe side), never in neither (which would show room that is not there).
        let (ob, oc) = ring.map_or((0, 0), RingWriter::unscanned);
        let (qb, qc) = self.control.used();
        qb + ob + bytes as u64 <= self.greeting.quota
            && qc + oc + n as u64 <= self.greeting.max_messages
    }

    fn lock_ring(&self) -> Option<MutexGuard<'_, RingWriter>> {
        self.ring
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Appends a record of priority 0 stamped `stamp` to this writer's ring and publishes it,
    /// without a write's checks or wake-up, as a writer that stamps as it likes would (tests).
    #[cfg(test)]
    pub(crate) fn put_stamped(&self, data: &[u8], stamp: u64) {
        let mut r = self
            .lock_ring()
            .expect("a writer of this process has a ring");
        r.append(0, 2, None, data, stamp);
        r.publish();
    }

    /// Shuts the connection's socket (the owner sees a hang-up) and keeps the ring mapped, as a
    /// writer that passed its ring's descriptor to another process before it closed (tests).
    #[cfg(test)]
    pub(crate) fn hang_up_keeping_ring(&self) {
        sys::shutdown(&self.sock);
    }

    /// Waits up to `max` for the owner to free room or take in the ring. The first wait of a
    /// write tells the owner (`announced`). `OwnerGone` when the owner's side hung up.
    fn wait_for_owner(&self, announced: &mut bool, max: Duration) -> Result<(), WriteError> {
        if !*announced {
            *announced = true;
            let _ = sys::send_parts(self.sock.as_raw_fd(), &[b"W"], &[], true);
        }
        let ev = sys::poll_one(self.sock.as_raw_fd(), libc::POLLIN, Some(max))?;
        if ev & (libc::POLLHUP | libc::POLLERR) != 0 {
            return Err(WriteError::OwnerGone);
        }
        if ev & libc::POLLIN != 0 {
            // Room notices: one byte each. A bounded number per wait: an owner that keeps
            // sending them does not hold the write past its timeout (the caller looks at it).
            let mut b = [0u8; 64];
            for _ in 0..NOTICES_PER_WAIT {
                match sys::recv_msg(self.sock.as_raw_fd(), &mut b, false) {
                    Ok(Some(r)) if r.len == 0 => return Err(WriteError::OwnerGone),
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) if is_gone(&e) => return Err(WriteError::OwnerGone),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Asks the owner about its queue (a trusted writer: others are not answered) and waits up
    /// to `timeout` for the answer: the queued messages and the next one's size and priority.
    pub(crate) fn query(
        &self,
        timeout: Duration,
    ) -> Result<(usize, Option<(usize, u8)>), WriteError> {
        let fd = self.sock.as_raw_fd();
        match sys::send_parts(fd, &[&[super::QUERY]], &[], true) {
            Ok(_) => {}
            Err(e) if is_gone(&e) => return Err(WriteError::OwnerGone),
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + timeout;
        loop {
            let mut b = [0u8; 64];
            match sys::recv_msg(fd, &mut b, false) {
                Ok(Some(r)) if r.len == 0 => return Err(WriteError::OwnerGone),
                Ok(Some(r)) => {
                    // Room notices (one byte each) are not for us; the answer is.
                    if let Some(a) = super::decode_answer(&b[..r.len.min(b.len())]) {
                        return Ok(a);
                    }
                    // (However many of them an owner sends, the wait ends at the deadline.)
                    if Instant::now() >= deadline {
                        return Err(WriteError::Timeout);
                    }
                }
                Ok(None) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WriteError::Timeout);
                    }
                    let ev = sys::poll_one(fd, libc::POLLIN, Some(left))?;
                    if ev & (libc::POLLHUP | libc::POLLERR) != 0 && ev & libc::POLLIN == 0 {
                        return Err(WriteError::OwnerGone);
                    }
                }
                Err(e) if is_gone(&e) => return Err(WriteError::OwnerGone),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Wakes the owner the way it asked for (a wake-up byte or the ring's futex), if it asked
    /// and this writer has not woken it since it last looked.
    fn wake_owner(&self, ring: &RingWriter) {
        match self.control.wake() {
            Wake::Off => {}
            Wake::Byte => {
                if ring.claim_wake() {
                    let _ = sys::send_parts(self.sock.as_raw_fd(), &[b"W"], &[], true);
                }
            }
            Wake::Futex => {
                if ring.claim_wake() {
                    ring.wake_futex();
                }
            }
        }
    }

    /// Writes one message; `block` is the sender block when the daemon delivers for a remote
    /// host or a trusted process writes on behalf of a local caller.
    pub(crate) fn write(
        &self,
        data: &[u8],
        opts: WriteOptions,
        block: Option<Block<'_>>,
    ) -> Result<(), WriteError> {
        let rflags = block.map_or(0, |b| b.ring_flag());
        if opts.priority > MAX_PRIORITY {
            return Err(WriteError::InvalidPriority(opts.priority));
        }
        let max = self.greeting.max_message_size as usize;
        if data.len() > max {
            return Err(WriteError::TooLarge {
                size: data.len(),
                max,
            });
        }
        if self.control.is_closed() || self.owner_died(sys::coarse_ns()) {
            return Err(WriteError::OwnerGone);
        }
        // The order stamp. While this writer is the slot's only one, the owner needs none (its
        // ring is in order), and reading the clock would be a third of the cost of a write; the
        // owner says so on the control page, and stops saying it before it lets a second writer
        // in (see `Control::set_sole_writer`).
        let stamp = if self.control.sole_writer() {
            0
        } else {
            sys::monotonic_ns()
        };
        // The limits of the wait, from the first time the write has to wait (a write that finds
        // room, nearly every one, reads no clock for them).
        let limits = || {
            let now = Instant::now();
            // Until when a first-class write waits for room in the quota.
            let deadline = match opts.timeout {
                Timeout::After(d) => Some(now + d),
                Timeout::Forever => None,
            };
            // Until when any write waits for the owner to take in what is already written.
            // The daemon delivering for a remote host must not block long on one slow owner
            // (it would stall every other delivery).
            let grace = match opts.class {
                _ if matches!(block, Some(Block::Remote(_))) && opts.timeout.is_zero() => {
                    Some(now + DAEMON_SEND_GRACE)
                }
                Class::Second => Some(now + SEND_GRACE),
                Class::First => deadline,
            };
            (deadline, grace)
        };
        let mut waits: Option<(Option<Instant>, Option<Instant>)> = None;
        let mut ring = self.lock_ring();
        let mut announced = false;
        let mut spun = false;
        // Whether this write said it waits for room (the flag is clear when a write begins:
        // every write that sets it clears it before it ends, under the ring's lock).
        let mut marked = false;
        let result = loop {
            let r = ring.as_deref();
            let quota_ok = self.quota_ok(r, data.len(), 1);
            if !quota_ok && opts.class == Class::Second {
                // Full, unless nobody reads any more.
                break Err(if self.hung_up() {
                    WriteError::OwnerGone
                } else {
                    WriteError::Full
                });
            }
            let room = r.is_none_or(|r| r.fits(data.len(), rflags));
            if quota_ok && room {
                break Ok(());
            }
            // Say that we wait, then look once more: room freed before the owner could see the
            // flag would otherwise go unnoticed until the next poll slice.
            if let Some(r) = r {
                // The owner is reading or taking in the ring: poll for a moment before sleeping
                // (a sleep and a wake-up cost tens of µs on both sides).
                if !spun {
                    spun = true;
                    let ready =
                        || self.quota_ok(Some(r), data.len(), 1) && r.fits(data.len(), rflags);
                    if spin_until(RING_SPIN, ready) {
                        continue;
                    }
                }
                if !r.is_waiting() {
                    r.set_waiting(true);
                    marked = true;
                    continue;
                }
            }
            if self.control.is_closed() {
                break Err(WriteError::OwnerGone);
            }
            let (deadline, grace) = *waits.get_or_insert_with(limits);
            let until = if quota_ok { grace } else { deadline };
            let left = until.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                break Err(no_room(opts.class));
            }
            if let Err(e) =
                self.wait_for_owner(&mut announced, left.map_or(ROOM_POLL, |l| l.min(ROOM_POLL)))
            {
                break Err(e);
            }
        };
        // (Not looked at unless set: the word shares a cache line with the tail, which the
        // owner's spinning reader keeps reading.)
        if let (true, Some(r)) = (marked, ring.as_deref()) {
            r.set_waiting(false);
        }
        result?;
        match ring.as_deref_mut() {
            Some(r) => {
                let b = block.map(|b| (b.ring_flag(), b.bytes()));
                r.append(opts.priority, opts.class.number(), b, data, stamp);
                r.publish();
                self.wake_owner(r);
                Ok(())
            }
            None => {
                let (_, grace) = *waits.get_or_insert_with(limits);
                self.send_on_socket(data, opts, block, grace)
            }
        }
    }

    /// The socket path: one record per message.
    fn send_on_socket(
        &self,
        data: &[u8],
        opts: WriteOptions,
        block: Option<Block<'_>>,
        deadline: Option<Instant>,
    ) -> Result<(), WriteError> {
        let flags = block.map_or(0, |b| b.flag());
        let header = encode_header(
            opts.priority,
            opts.class.number(),
            flags,
            sys::monotonic_ns(),
        );
        let extra: &[u8] = block.as_ref().map_or(&[], |b| b.bytes());
        let parts: [&[u8]; 3] = [&header, extra, data];
        let len = HEADER_LEN + extra.len() + data.len();
        loop {
            match sys::send_gather(self.sock.as_raw_fd(), &parts) {
                Ok(n) if n == len => return Ok(()),
                Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short send").into()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if left == Some(Duration::ZERO) {
                        return Err(no_room(opts.class));
                    }
                    sys::poll_one(self.sock.as_raw_fd(), libc::POLLOUT, left)?;
                }
                Err(e) if is_gone(&e) => return Err(WriteError::OwnerGone),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Delivers network messages (the daemon's path): all of them in the ring with one wake-up
    /// at most. Each message takes its own room in the quota; those that do not fit are counted,
    /// not waited for. When the ring itself is full, `wait` waits a little (once per batch) for
    /// the owner to take it in; without `wait` the batch stops there. Returns the outcome and how
    /// many of `msgs` were dealt with (queued or counted): all of them when `wait`.
    pub(crate) fn write_batch(
        &self,
        msgs: &[RemoteMessage<'_>],
        wait: bool,
    ) -> Result<(BatchOutcome, usize), WriteError> {
        let stamp = sys::monotonic_ns();
        if self.control.is_closed() || self.owner_died(sys::coarse_ns()) {
            return Err(WriteError::OwnerGone);
        }
        let max = self.greeting.max_message_size as usize;
        let mut out = BatchOutcome::default();
        let Some(mut ring) = self.lock_ring() else {
            if !wait {
                // The socket path may wait for the owner: left to the caller that can.
                return Ok((out, 0));
            }
            // Socket path: one record each.
            for m in msgs {
                let opts = WriteOptions::new()
                    .priority(m.priority)
                    .class(m.class)
                    .timeout(Timeout::ZERO);
                let block = encode_remote(m.sender_name, m.sender_ip);
                match self.write(m.data, opts, Some(Block::Remote(&block))) {
                    Ok(()) => out.queued += 1,
                    Err(WriteError::Full | WriteError::Timeout) => out.full += 1,
                    Err(WriteError::TooLarge { .. } | WriteError::InvalidPriority(_)) => {
                        out.too_large += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            return Ok((out, msgs.len()));
        };
        let grace = Instant::now() + DAEMON_SEND_GRACE;
        let mut announced = false;
        let mut waited_out = !wait;
        let mut done = 0;
        // Whether this batch said it waits for room (see `write`).
        let mut marked = false;
        for m in msgs {
            if !wait && !ring.fits(m.data.len(), REC_REMOTE) {
                break;
            }
            done += 1;
            if m.data.len() > max || m.priority > MAX_PRIORITY {
                out.too_large += 1;
                continue;
            }
            if !self.quota_ok(Some(&ring), m.data.len(), 1) {
                out.full += 1;
                continue;
            }
            while !waited_out && !ring.fits(m.data.len(), REC_REMOTE) {
                if !ring.is_waiting() {
                    ring.set_waiting(true);
                    marked = true;
                    continue;
                }
                // The owner has not taken in the ring yet: let it see what is there, wait a
                // little (once per batch), then count the rest as full.
                ring.publish();
                let left = grace.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    waited_out = true;
                    break;
                }
                if let Err(e) = self.wait_for_owner(&mut announced, left.min(ROOM_POLL)) {
                    ring.set_waiting(false);
                    return Err(e);
                }
            }
            if !ring.fits(m.data.len(), REC_REMOTE) {
                out.full += 1;
                continue;
            }
            let block = encode_remote(m.sender_name, m.sender_ip);
            ring.append(
                m.priority,
                m.class.number(),
                Some((REC_REMOTE, &block[..])),
                m.data,
                stamp,
            );
            out.queued += 1;
        }
        if marked {
            ring.set_waiting(false);
        }
        ring.publish();
        self.wake_owner(&ring);
        Ok((out, done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::slot::MAX_CONNS_PER_UID;
    use crate::{Mailslot, Timeout};

    fn open(name: &str) -> Connection {
        Connection::open(&name.parse().unwrap(), Duration::from_secs(5)).unwrap()
    }

    /// Appends `n` records of `len` bytes to the writer's ring without looking at the quota,
    /// as a writer that ignores it would, and publishes them; returns how many fitted.
    fn flood(w: &Connection, n: usize, len: usize) -> usize {
        flood_with(w, n, len, |_| 0x5a)
    }

    /// [`flood`], record `k` filled with the byte `fill(k)`.
    fn flood_with(w: &Connection, n: usize, len: usize, fill: impl Fn(usize) -> u8) -> usize {
        let mut ring = w.lock_ring().expect("a writer of this process has a ring");
        let mut put = 0;
        while put < n && ring.fits(len, 0) {
            ring.append(0, 2, None, &vec![fill(put); len], 0);
            put += 1;
        }
        ring.publish();
        put
    }

    /// Opens a connection to `name` from a thread that took nobody's credentials (the kernel's
    /// calls change only the calling thread), so that the owner sees nobody connect; `None`
    /// (the test says why it skips) when this process is not root.
    fn open_as_nobody(name: &str) -> Option<Connection> {
        try_open_as_nobody(name).map(Result::unwrap)
    }

    /// [`open_as_nobody`], the open's error returned.
    fn try_open_as_nobody(name: &str) -> Option<Result<Connection, OpenError>> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: taking nobody's credentials needs root");
            return None;
        }
        let name = name.to_owned();
        std::thread::spawn(move || {
            use rustix::process::{Gid, Uid};
            use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
            let (gid, uid) = (Gid::from_raw(65534), Uid::from_raw(65534));
            set_thread_groups(&[]).unwrap();
            set_thread_res_gid(gid, gid, gid).unwrap();
            set_thread_res_uid(uid, uid, uid).unwrap();
            Connection::open(&name.parse().unwrap(), Duration::from_secs(5))
        })
        .join()
        .ok()
    }

    /// A user other than the owner's holds at most [`MAX_CONNS_PER_UID`] connections to one
    /// mailslot: the next open is refused at once with `Busy` (`ERROR_PIPE_BUSY`), not left
    /// waiting; once one of them is closed, the user may open again.
    #[test]
    fn a_user_at_the_bound_of_connections_is_refused_busy_until_one_closes() {
        let (name, _slot) = open_to_everyone("conn-bound");
        let mut held = Vec::new();
        for _ in 0..MAX_CONNS_PER_UID {
            let Some(w) = open_as_nobody(&name) else {
                return;
            };
            held.push(w);
        }
        let t = Instant::now();
        let r = try_open_as_nobody(&name).unwrap();
        let took = t.elapsed();
        assert!(matches!(r, Err(OpenError::Busy(_))), "{:?}", r.err());
        assert!(took < NUDGE_AFTER, "refused in {took:?}");
        drop(held.pop());
        // The owner sees the hang-up when its service thread next looks.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match try_open_as_nobody(&name).unwrap() {
                Ok(_) => break,
                Err(OpenError::Busy(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("after one closed: {e:?}"),
            }
        }
    }

    const QUOTA: usize = 4096;
    const LEN: usize = 256;
    /// Messages of [`LEN`] bytes in one [`QUOTA`].
    const PER_CONN: usize = QUOTA / LEN;

    /// A slot open to everyone with a [`QUOTA`] of messages of [`LEN`] bytes, and its name.
    fn open_to_everyone(tag: &str) -> (String, Mailslot) {
        let name = format!(r"\\.\mailslot\unit\{tag}-{}", std::process::id());
        let slot = Mailslot::builder()
            .quota(QUOTA)
            .max_message_size(LEN)
            .max_messages(1000)
            .access(crate::Access::Everyone)
            .create(&name)
            .unwrap();
        (name, slot)
    }

    /// A connection's share of the queue bounds what it may queue, and a user's connections
    /// together never more than [`MAX_CONNS_PER_UID`] shares. A writer that ignores the quota,
    /// hangs up and connects again used to start from nothing each time, so the owner's queue
    /// grew by a quota's worth per connection, without end. What a user's connections left
    /// queued now counts in that user's next connections' shares.
    #[test]
    fn a_writer_that_hangs_up_and_comes_back_cannot_queue_more_than_its_users_share() {
        let (name, slot) = open_to_everyone("reconnect");
        let share = MAX_CONNS_PER_UID as usize * PER_CONN;
        let (mut put, mut over, mut taken) = (0, 0, 0);
        for _ in 0..MAX_CONNS_PER_UID + 8 {
            let Some(w) = open_as_nobody(&name) else {
                return;
            };
            let n = flood(&w, 2 * PER_CONN, LEN);
            assert_eq!(n, 2 * PER_CONN, "the ring holds more than the quota");
            put += n;
            // Each connection may queue a quota's worth, until the user's share is full.
            let fits = PER_CONN.min(share - taken);
            taken += fits;
            over += n - fits;
            drop(w);
            // The owner takes in what the connection left (and sees its hang-up).
            let deadline = Instant::now() + Duration::from_secs(5);
            while slot.counters().dropped < over as u64 && Instant::now() < deadline {
                let _ = slot.info();
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(slot.counters().dropped, over as u64);
        }
        let mut bytes = 0;
        while let Ok(m) = slot.read_message_timeout(Timeout::ZERO) {
            bytes += m.data.len();
        }
        assert_eq!(
            bytes,
            share * LEN,
            "the user's share in all, however often it came back"
        );
        assert_eq!((put - over, taken), (share, share));
    }

    /// The user's share must not cost honest writers their messages. Writers check the quota
    /// against the totals the owner last published, so several writers of one user may, at
    /// once, hold more than the quota in all; when one of them hangs up, what it left queued
    /// counts in its user's share, and another's messages written against the same totals
    /// must still be taken in. (With the share one quota, they were dropped: 3 runs in 5 of
    /// the 8-writer throughput benchmark waited for ever for messages the owner had thrown
    /// away.)
    #[test]
    fn what_a_writer_that_hung_up_left_does_not_cost_another_honest_writer_its_messages() {
        const QUOTA: usize = 4096;
        const LEN: usize = 256;
        let name = format!(r"\\.\mailslot\unit\honest-share-{}", std::process::id());
        let slot = Mailslot::builder()
            .quota(QUOTA)
            .max_message_size(LEN)
            .access(crate::Access::Everyone)
            .create(&name)
            .unwrap();
        let Some(b) = open_as_nobody(&name) else {
            return;
        };
        let data = [0x11u8; LEN];
        let opts = WriteOptions::default();
        for round in 0..4 {
            let Some(c) = open_as_nobody(&name) else {
                return;
            };
            // C fills the quota and hangs up; the owner takes its messages in and sees it go.
            for _ in 0..QUOTA / LEN {
                c.write(&data, opts, None).unwrap();
            }
            drop(c);
            assert_eq!(slot.info().count, QUOTA / LEN);
            // B wrote against the totals it saw before C's messages were taken in (here by
            // hand, the way the race between them ends): its records are within its own
            // share, and are all taken in.
            let accepted = flood(&b, QUOTA / LEN / 2, LEN);
            assert_eq!(slot.info().count, QUOTA / LEN + accepted, "round {round}");
            let mut honest = 0;
            while let Ok(m) = slot.read_message_timeout(Timeout::ZERO) {
                honest += usize::from(m.data[0] == 0x5a);
            }
            assert_eq!(honest, accepted, "round {round}: B's accepted messages");
            assert_eq!(slot.counters().dropped, 0, "round {round}");
        }
    }

    /// A slot's queue moves into a shared store when its handle is first shared. Writers held
    /// to no user's share (root, the owner's user) may have queued more than a store made for
    /// the quota holds; the store is made big enough, and nothing queued is lost — taken in
    /// before (`taken_in`) or still in the writers' rings (they are taken in before the store
    /// is made, so it is made for them too).
    fn sharing_keeps_what_was_written(tag: &str, taken_in: bool) {
        const LEN: usize = 256;
        const CONNS: usize = 4;
        let name = format!(r"\\.\mailslot\unit\{tag}-{}", std::process::id());
        let slot = Mailslot::builder()
            .quota(4096)
            .max_message_size(LEN)
            .max_messages(16)
            .create(&name)
            .unwrap();
        let writers: Vec<Connection> = (0..CONNS).map(|_| open(&name)).collect();
        // (The service thread is done with the connections: nothing it does takes the rings
        // in, as no wake-up byte is sent.)
        std::thread::sleep(Duration::from_millis(100));
        // A quota's worth on each connection: four times what the slot's store is made for.
        for (i, w) in writers.iter().enumerate() {
            assert_eq!(flood_with(w, 16, LEN, |j| (i * 16 + j) as u8), 16);
        }
        if taken_in {
            assert_eq!(slot.info().count, CONNS * 16, "all taken in");
        }
        let _shared = slot.share().unwrap();
        let mut got = Vec::new();
        while let Ok(m) = slot.read_message_timeout(Timeout::ZERO) {
            assert!(m.data.iter().all(|&b| b == m.data[0]));
            got.push(m.data[0]);
        }
        got.sort_unstable();
        assert_eq!(got, (0..CONNS as u8 * 16).collect::<Vec<_>>());
        assert_eq!(slot.counters().dropped, 0);
    }

    #[test]
    fn sharing_a_slot_keeps_everything_it_had_queued() {
        sharing_keeps_what_was_written("share-full", true);
    }

    #[test]
    fn sharing_a_slot_keeps_what_is_still_in_its_writers_rings() {
        sharing_keeps_what_was_written("share-rings", false);
    }

    /// The largest message of [`small_shared_slot`].
    const SMALL_STORE_LEN: usize = 256;

    /// A shared slot (its name, the slot and its shared handle) whose store's levels hold
    /// 16 384 bytes: a 4 KiB quota, 64 messages of at most [`SMALL_STORE_LEN`] bytes.
    fn small_shared_slot(tag: &str) -> (String, Mailslot, OwnedFd) {
        let name = format!(r"\\.\mailslot\unit\{tag}-{}", std::process::id());
        let slot = Mailslot::builder()
            .quota(4096)
            .max_message_size(SMALL_STORE_LEN)
            .max_messages(64)
            .create(&name)
            .unwrap();
        let shared = slot.share().unwrap();
        (name, slot, shared)
    }

    /// A shared slot keeps its queue in a store of fixed size, and takes in all the rings that
    /// have records as one batch. Writers of one user that ignore the quota on several
    /// connections can publish more than the store holds, at once: the batch never fitted, and
    /// nothing, not even another writer's message, was taken in again. Now what does not fit
    /// is taken in ring by ring.
    #[test]
    fn rings_that_overfill_a_shared_store_do_not_keep_other_writers_out() {
        const LEN: usize = SMALL_STORE_LEN;
        let (name, slot, _shared) = small_shared_slot("overfill");
        let hostile: Vec<Connection> = (0..4).map(|_| open(&name)).collect();
        let honest = open(&name);
        // A quota's worth in each ring, published together: more than the store holds.
        let data = vec![0x5a; LEN];
        let mut rings: Vec<_> = hostile.iter().map(|w| w.lock_ring().unwrap()).collect();
        for ring in &mut rings {
            for _ in 0..16 {
                assert!(ring.fits(LEN, 0));
                ring.append(0, 2, None, &data, 0);
            }
        }
        for ring in &rings {
            ring.publish();
        }
        drop(rings);
        honest
            .write(b"honest", WriteOptions::default(), None)
            .unwrap();
        let mut got = Vec::new();
        while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_secs(1))) {
            got.push(m.data);
        }
        assert!(
            got.iter().any(|m| m == b"honest"),
            "the honest writer's message never came ({} others did)",
            got.len()
        );
        assert_eq!(got.len(), 4 * 16 + 1, "every ring is taken in in the end");
    }

    /// A mailslot name of this test process (`tag` in it) and a socket listening on it, for a
    /// test that plays the owner.
    fn listening_as_owner(tag: &str) -> (Name, OwnedFd) {
        let name: Name = format!(r"\\.\mailslot\unit\{tag}-{}", std::process::id())
            .parse()
            .unwrap();
        let listener = sys::seqpacket(true).unwrap();
        sys::bind_abstract(&listener, &address(&name.key())).unwrap();
        sys::listen(&listener, 8).unwrap();
        (name, listener)
    }

    /// An owner (a hostile one, played here by the test) that accepts every connection and
    /// closes it before greeting it: an open connects again a bounded number of times
    /// ([`OPEN_ATTEMPTS`]), then says the mailslot is not there — it does not keep connecting
    /// for its whole timeout.
    #[test]
    fn an_owner_that_closes_every_connection_ends_an_open_after_a_few_attempts() {
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        use std::sync::Arc;
        let (name, listener) = listening_as_owner("closes");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU32::new(0));
        let owner = {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match sys::accept(&listener) {
                        Ok(Some(c)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            drop(c);
                        }
                        _ => std::thread::sleep(Duration::from_micros(200)),
                    }
                }
            })
        };
        let t = Instant::now();
        let r = Connection::open(&name, Duration::from_secs(5));
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        owner.join().unwrap();
        assert!(matches!(r, Err(OpenError::NotFound(_))), "{:?}", r.err());
        assert_eq!(accepted.load(Ordering::Relaxed), OPEN_ATTEMPTS);
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    /// An owner (a hostile one, or one stopped, played here by the test) that accepts every
    /// connection and never greets: the open connects again beside its first connection while
    /// it waits, [`NUDGES`] times at most, and ends with `NotResponding` at its timeout.
    #[test]
    fn an_owner_that_never_greets_gets_a_bounded_number_of_connections_and_the_open_ends() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let (name, listener) = listening_as_owner("never-greets");
        let stop = Arc::new(AtomicBool::new(false));
        let owner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match sys::accept(&listener) {
                        Ok(Some(c)) => kept.push(c),
                        _ => std::thread::sleep(Duration::from_micros(200)),
                    }
                }
                kept.len()
            })
        };
        let t = Instant::now();
        let r = Connection::open(&name, Duration::from_secs(2));
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let accepted = owner.join().unwrap();
        assert!(
            matches!(r, Err(OpenError::NotResponding(_))),
            "{:?}",
            r.err()
        );
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
            "took {took:?}"
        );
        assert_eq!(accepted, 1 + NUDGES as usize);
    }

    /// An owner slow to greet a writer's first connection (a stopped or busy process, played
    /// here by the test) that refuses the open's extra connection as `Busy` — its writer is at
    /// the bound of connections per user, counting the first one: the refusal is not the
    /// answer while the first connection waits, and the open is served when its greeting comes.
    #[test]
    fn a_busy_refusal_of_an_extra_connection_does_not_end_an_open_its_first_connection_serves() {
        use crate::shm::RingReader;
        use crate::types::Access;
        let (name, listener) = listening_as_owner("busy-nudge");
        let display = name.to_string();
        let owner = std::thread::spawn(move || {
            let greeting = |refusal| Greeting {
                refusal,
                accepts_remote: false,
                max_message_size: 100,
                quota: 1000,
                max_messages: 10,
                owner_uid: 0,
                access: Access::Everyone,
                display: display.clone(),
            };
            let mut conns = Vec::new();
            while conns.len() < 2 {
                match sys::accept(&listener) {
                    Ok(Some(c)) => conns.push(c),
                    _ => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            // The extra connection is refused at once, the first one greeted a little later.
            let busy = greeting(Some(Refusal::Busy)).encode();
            sys::send_parts(conns[1].as_raw_fd(), &[&busy], &[], true).unwrap();
            std::thread::sleep(Duration::from_millis(150));
            let (cfds, _control) = Control::create().unwrap();
            let (ring_fd, _ring) = RingReader::create(64 << 10).unwrap();
            let pass = [cfds.ro.as_raw_fd(), ring_fd.as_raw_fd()];
            let ok = greeting(None).encode();
            let sent = sys::send_parts(conns[0].as_raw_fd(), &[&ok], &pass, true);
            // Kept open until the writer has seen the greeting.
            std::thread::sleep(Duration::from_millis(200));
            sent
        });
        let r = Connection::open(&name, Duration::from_secs(5));
        let sent = owner.join().unwrap();
        let c = r.expect("the open is served by its first connection");
        assert!(c.ring.is_some());
        sent.expect("the first connection is still open when its greeting is sent");
    }

    /// An owner (a hostile one, played here by the test) that sends room notices without end:
    /// a first-class write that waits for room, and a question about the queue, still end at
    /// their timeouts.
    #[test]
    fn an_owner_that_floods_room_notices_does_not_hold_a_writer_past_its_timeout() {
        use crate::shm::RingReader;
        use crate::types::{Access, Class};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let (name, listener) = listening_as_owner("notice-flood");
        let stop = Arc::new(AtomicBool::new(false));
        let owner = {
            let stop = stop.clone();
            let display = name.to_string();
            std::thread::spawn(move || {
                let (cfds, control) = Control::create().unwrap();
                control.set_used(100, 1); // the quota is full
                let (ring_fd, _ring) = RingReader::create(64 << 10).unwrap();
                let greeting = Greeting {
                    refusal: None,
                    accepts_remote: false,
                    max_message_size: 100,
                    quota: 100,
                    max_messages: 10,
                    owner_uid: 0,
                    access: Access::Everyone,
                    display,
                }
                .encode();
                let pass = [cfds.ro.as_raw_fd(), ring_fd.as_raw_fd()];
                let mut conns = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Some(c)) = sys::accept(&listener) {
                        sys::send_parts(c.as_raw_fd(), &[&greeting], &pass, true).unwrap();
                        conns.push(c);
                    }
                    for c in &conns {
                        let _ = sys::send_parts(c.as_raw_fd(), &[b"R"], &[], true);
                    }
                }
            })
        };
        let w = Connection::open(&name, Duration::from_secs(5)).unwrap();
        let opts = WriteOptions {
            class: Class::First,
            timeout: Timeout::After(Duration::from_millis(200)),
            ..WriteOptions::default()
        };
        let t = Instant::now();
        assert!(matches!(
            w.write(b"x", opts, None),
            Err(WriteError::Timeout)
        ));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let t = Instant::now();
        assert!(matches!(
            w.query(Duration::from_millis(200)),
            Err(WriteError::Timeout)
        ));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        stop.store(true, Ordering::Relaxed);
        owner.join().unwrap();
    }

    /// A user's connections together hold at most what `MAX_CONNS_PER_UID` connections could
    /// (a quota each), counting what its closed ones left and what its live ones hold: a user
    /// that fills a quota on every connection, hangs up and fills another full set gets no
    /// more than one set's worth queued (it got nearly two).
    #[test]
    fn a_users_live_and_closed_connections_together_hold_at_most_their_share() {
        let (name, slot) = open_to_everyone("user-share");
        let n1 = MAX_CONNS_PER_UID as usize - 1;
        let mut first = Vec::new();
        for _ in 0..n1 {
            let Some(w) = open_as_nobody(&name) else {
                return;
            };
            assert_eq!(flood(&w, PER_CONN, LEN), PER_CONN);
            first.push(w);
        }
        drop(first);
        let deadline = Instant::now() + Duration::from_secs(10);
        while slot.info().count < n1 * PER_CONN && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(slot.info().count, n1 * PER_CONN);
        let mut second = Vec::new();
        for _ in 0..MAX_CONNS_PER_UID {
            let w = open_as_nobody(&name).unwrap();
            assert_eq!(flood(&w, PER_CONN, LEN), PER_CONN);
            second.push(w);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while slot.counters().dropped == 0 && Instant::now() < deadline {
            let _ = slot.info();
            std::thread::sleep(Duration::from_millis(5));
        }
        let count = slot.info().count;
        assert!(
            count <= MAX_CONNS_PER_UID as usize * PER_CONN,
            "{count} messages queued for one user: {} quotas",
            count / PER_CONN
        );
        assert!(slot.counters().dropped > 0);
    }

    /// A writer whose message was accepted and who then hangs up while the shared store has no
    /// room for its ring: the ring is kept until its message is taken in, not dropped with the
    /// connection.
    #[test]
    fn a_writer_that_hangs_up_while_the_shared_store_is_full_loses_nothing() {
        const LEN: usize = SMALL_STORE_LEN;
        let (name, slot, _shared) = small_shared_slot("hang-up-full");
        let hostile: Vec<Connection> = (0..6).map(|_| open(&name)).collect();
        let honest = open(&name);
        // Older records (stamp 0) than the honest one, more than the store's level (16 384
        // bytes) holds. Taken in, the first four rings fit (3 × 16 × 304 + 31 × 48, with a
        // largest record to spare), then the fifth (5 × 48): the level is left with 64 bytes,
        // too little for the sixth ring and, with a record to spare, for the honest one.
        for w in &hostile[..3] {
            assert_eq!(flood(w, 16, LEN), 16);
        }
        assert_eq!(flood(&hostile[3], 31, 0), 31);
        assert_eq!(flood(&hostile[4], 5, 0), 5);
        assert_eq!(flood(&hostile[5], 5, 0), 5);
        honest
            .write(b"honest", WriteOptions::default(), None)
            .unwrap();
        drop(honest);
        for _ in 0..5 {
            let _ = slot.info();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut got = Vec::new();
        while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_millis(500))) {
            got.push(m.data);
        }
        assert!(
            got.iter().any(|m| m == b"honest"),
            "the honest writer's message was lost ({} others came)",
            got.len()
        );
        assert_eq!(got.len(), 3 * 16 + 31 + 5 + 5 + 1);
        assert_eq!(slot.counters().dropped, 0);
    }

    /// When not every ring fits in the shared store, the rings that do are still stored as one
    /// batch in stamp order: two writers' messages keep their order among each other whatever
    /// a third writer floods.
    #[test]
    fn rings_that_overfill_a_shared_store_do_not_reorder_other_writers() {
        const LEN: usize = SMALL_STORE_LEN;
        let (name, slot, _shared) = small_shared_slot("overfill-order");
        let (w1, w2) = (open(&name), open(&name));
        let hostile: Vec<Connection> = (0..4).map(|_| open(&name)).collect();
        for w in &hostile {
            assert_eq!(flood(w, 16, LEN), 16);
        }
        // Each write ends before the next begins: a, then b, then c.
        let put = |w: &Connection, d: &[u8]| w.put_stamped(d, sys::monotonic_ns());
        put(&w1, b"a");
        put(&w2, b"b");
        put(&w1, b"c");
        let mut got = Vec::new();
        let mut others = 0;
        while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_millis(500))) {
            match m.data.len() {
                1 => got.push(m.data[0]),
                _ => others += 1,
            }
        }
        assert_eq!(got, b"abc".to_vec());
        assert_eq!(others, 4 * 16, "the flood is taken in too, in the end");
    }
}
