//! The per-process service thread.
//!
//! A writer's socket buffer holds only a few records (`net.unix.max_dgram_qlen`, often 10), and a
//! writer's open needs the owner to answer. So that writers neither stall nor fail while the owner
//! is busy with something else, one thread per process (started with the first mailslot, shared by
//! all of them) drains slots that no reader is serving.
//!
//! It keeps out of the way of readers, who drain for themselves:
//! - each slot's socket epoll is registered in the service epoll **one-shot**;
//! - a reader about to sleep in `epoll` disarms it (so one message never wakes two threads) and
//!   re-arms it when it wakes; a reader about to sleep on its writers' futex words leaves it
//!   armed (it does not watch the sockets itself), and the service, when it fires, only wakes
//!   that reader (`Slot::wake_sleeper`);
//! - when the service fires for a slot whose reader was active since the service last looked, it
//!   looks again after [`DEFER`] instead of competing for the slot (readers only bump a counter,
//!   so a read costs no clock reading);
//! - when it does move messages, it signals the slot's eventfd so that a reader (or an async
//!   task) waiting on the slot wakes up.
//!
//! It never waits for a slot's lock: a slot whose lock a reader of this process has is tried
//! again after [`DEFER`], one whose holders' lock another holder of a shared slot has after
//! [`BUSY_RETRY`] (a holder stopped with the lock stalls that slot's readers, not the
//! process's other mailslots).
//!
//! It also looks at every shared slot whose descriptor a program polls, every
//! [`SHARED_LOOK_EVERY`] (see `Slot::look`): such a program does not wait in a read, which would
//! look for itself, and a holder that died in a read may have told writers not to wake anyone.
//!
//! It also serves the process's part of the daemon's directory (see [`registry`]): it accepts
//! writers on the process listener, reads their hellos and hands each connection to its slot;
//! when the registry connection hangs up (the daemon stopped), it gives every slot whose name
//! was there a listening socket of its own.
//!
//! After `fork`, the child has no service thread; the next mailslot it creates starts one.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::registry::{self, Connected, Registered, Registry};
use super::slot::{Arming, Busy, Slot, SHARED_LOOK_EVERY};
use crate::sys;

/// How long the service leaves a slot to a reader that was active since it last looked.
pub(crate) const DEFER: Duration = Duration::from_millis(2);
/// Drains of one slot in a row while each leaves records for the next (written meanwhile).
const HELD_BACK_DRAINS: usize = 3;

pub(crate) struct Service {
    epoll: OwnedFd,
    slots: Mutex<HashMap<u64, Weak<Slot>>>,
    next: AtomicU64,
    /// Slots a reader asked the service to look at again after [`DEFER`] (see `watch`).
    watch: Mutex<Vec<u64>>,
    /// Signalled when `watch` gets an entry.
    watch_wake: OwnedFd,
    /// Shared slots whose descriptor a program polls: looked at every
    /// [`SHARED_LOOK_EVERY`](super::slot::SHARED_LOOK_EVERY) (see `Slot::look`).
    looks: Mutex<HashSet<u64>>,
    /// The process listener, the registry connection and the hellos not yet read.
    registry: Registry,
    /// Tokens of connections waiting for their hello (counting up from [`TOKEN_PENDING`]).
    next_pending: AtomicU64,
}

/// How long the service leaves a slot whose lock somebody has before it tries again.
pub(crate) const BUSY_RETRY: Duration = Duration::from_millis(20);

/// Epoll token of `watch_wake` (slot tokens count up from 1).
const TOKEN_WATCH: u64 = u64::MAX;
/// Epoll token of the process listener.
const TOKEN_PROCESS: u64 = u64::MAX - 1;
/// Epoll token of the registry connection (watched for its hang-up only).
const TOKEN_REGISTRY: u64 = u64::MAX - 2;
/// Epoll tokens of connections waiting for their hello: this bit and a count.
const TOKEN_PENDING: u64 = 1 << 62;
/// Connections the process listener accepts per wake-up at most.
const ACCEPTS_PER_WAKE: usize = 64;

static SERVICE: Mutex<Option<(u32, Arc<Service>)>> = Mutex::new(None);

/// The service of this process, started on first use (and again in a forked child).
pub(crate) fn get() -> io::Result<Arc<Service>> {
    let mut g = SERVICE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = sys::getpid();
    if let Some((p, s)) = g.as_ref() {
        if *p == pid {
            return Ok(s.clone());
        }
    }
    let s = Arc::new(Service {
        epoll: sys::epoll_create()?,
        slots: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
        watch: Mutex::new(Vec::new()),
        watch_wake: sys::eventfd()?,
        looks: Mutex::new(HashSet::new()),
        registry: Registry::default(),
        next_pending: AtomicU64::new(TOKEN_PENDING),
    });
    sys::epoll_ctl(
        s.epoll.as_raw_fd(),
        libc::EPOLL_CTL_ADD,
        s.watch_wake.as_raw_fd(),
        libc::EPOLLIN as u32,
        TOKEN_WATCH,
    )?;
    let run = s.clone();
    std::thread::Builder::new()
        .name("mailslot-service".into())
        .spawn(move || run.run())?;
    *g = Some((pid, s.clone()));
    Ok(s)
}

impl Service {
    pub(crate) fn next_token(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reader became active on the slot `token` (and told writers not to wake anybody): look
    /// at it again after [`DEFER`], and once the reader has gone quiet ask writers for wake-ups
    /// again (so that messages written meanwhile are noticed).
    pub(crate) fn watch(&self, token: u64) {
        self.watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(token);
        sys::eventfd_signal(self.watch_wake.as_raw_fd());
    }

    fn looks(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.looks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Look at the shared slot `token` every `SHARED_LOOK_EVERY` from now on (its descriptor
    /// is polled: see `Slot::look`).
    pub(crate) fn look_at(&self, token: u64) {
        if self.looks().insert(token) {
            // The loop may be asleep without a timeout: it reckons with the new entry now.
            sys::eventfd_signal(self.watch_wake.as_raw_fd());
        }
    }

    /// Registers `key` as the slot `token` in the daemon's directory, if one runs.
    pub(crate) fn register_name(&self, token: u64, key: &str) -> Registered {
        let mut c = match self.registry.connection() {
            Connected::Ready(c) => c,
            Connected::New(c) => {
                // Watched before the first name is registered: writers may come at once.
                let ep = self.epoll.as_raw_fd();
                if let Some(l) = self.registry.listener_fd() {
                    match sys::epoll_ctl(
                        ep,
                        libc::EPOLL_CTL_ADD,
                        l,
                        libc::EPOLLIN as u32,
                        TOKEN_PROCESS,
                    ) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(_) => return Registered::No,
                    }
                }
                if let Some(r) = Registry::conn_fd(&c) {
                    if sys::epoll_ctl(
                        ep,
                        libc::EPOLL_CTL_ADD,
                        r,
                        libc::EPOLLRDHUP as u32,
                        TOKEN_REGISTRY,
                    )
                    .is_err()
                    {
                        return Registered::No;
                    }
                }
                c
            }
            Connected::None => return Registered::No,
        };
        Registry::register(&mut c, token, key)
    }

    /// Whether the daemon's directory has `key` (no directory: no).
    pub(crate) fn name_in_directory(&self, key: &str) -> bool {
        self.registry.has(key)
    }

    /// Takes the slot `token`'s name out of the directory.
    pub(crate) fn unregister_name(&self, token: u64) {
        self.registry.unregister(token);
    }

    pub(crate) fn register(&self, slot: &Arc<Slot>) -> io::Result<()> {
        self.slots().insert(slot.token, Arc::downgrade(slot));
        let events = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
        let ep = self.epoll.as_raw_fd();
        slot.arm_with(|fd| {
            // Taking the lock of a shared slot may already have made its epoll and registered it.
            match sys::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, events, slot.token) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    sys::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, events, slot.token)
                }
                r => r,
            }
        })
    }

    /// The slot now wants `new` watched instead of `old` (armed or not, as before).
    pub(crate) fn replace(
        &self,
        slot: &Slot,
        old: RawFd,
        new: RawFd,
        armed: bool,
    ) -> io::Result<()> {
        let ep = self.epoll.as_raw_fd();
        let _ = sys::epoll_ctl(ep, libc::EPOLL_CTL_DEL, old, 0, 0);
        let events = if armed {
            (libc::EPOLLIN | libc::EPOLLONESHOT) as u32
        } else {
            0
        };
        sys::epoll_ctl(ep, libc::EPOLL_CTL_ADD, new, events, slot.token)
    }

    pub(crate) fn unregister(&self, slot: &Slot) {
        let _ = sys::epoll_ctl(
            self.epoll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            slot.service_fd(),
            0,
            0,
        );
        self.slots().remove(&slot.token);
        self.looks().remove(&slot.token);
    }

    pub(crate) fn arm(&self, slot: &Slot) {
        let _ = sys::epoll_ctl(
            self.epoll.as_raw_fd(),
            libc::EPOLL_CTL_MOD,
            slot.service_fd(),
            (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            slot.token,
        );
    }

    pub(crate) fn disarm(&self, slot: &Slot) {
        let _ = sys::epoll_ctl(
            self.epoll.as_raw_fd(),
            libc::EPOLL_CTL_MOD,
            slot.service_fd(),
            0,
            slot.token,
        );
    }

    /// Serves one slot; returns when to look at it again, if it was left to a busy reader or
    /// somebody had its lock.
    fn serve(&self, slot: &Slot, now: Instant, from_timer: bool) -> Option<Instant> {
        let mut st = match slot.try_lock() {
            Ok(st) => st,
            // A reader of this process has it (and takes in what it finds), as when a reader
            // was active: look again soon. Its one-shot event is spent: the timer brings the
            // service back.
            Err(Busy::Here) => return Some(now + DEFER),
            // Another holder of a shared slot has it (and takes in what it finds), or is
            // stopped with it, which must not stop the process's other slots.
            Err(Busy::Holders) => return Some(now + BUSY_RETRY),
        };
        if from_timer {
            st.deferred = false;
        }
        if st.arming == Arming::Closed {
            return None;
        }
        st.arming = Arming::Idle;
        if st.readers_waiting > 0 {
            if st.futex_sleep {
                // The reader sleeps on its writers' futex words and has the service watch the
                // sockets: something happened there (it reads it), or the timer is back after
                // the reader had the lock (the sockets are watched again).
                if from_timer {
                    self.arm(slot);
                    st.arming = Arming::Armed;
                } else {
                    slot.wake_sleeper();
                }
            }
            // The waiting reader re-arms the slot when it wakes.
            return None;
        }
        if st.reader_ops != st.service_seen_ops {
            st.service_seen_ops = st.reader_ops;
            st.deferred = true;
            return Some(now + DEFER);
        }
        // Nobody is looking at the rings: writers must wake us (asked before the drain, so
        // that nothing published in between is missed).
        slot.set_wake_me(&mut st, true);
        // A drain leaves records stamped while it ran for the next one (see `Slot::scan_rings`):
        // a few more at once, then soon again — a reader asleep must not wait for them.
        for _ in 0..HELD_BACK_DRAINS {
            let _ = slot.drain(&mut st);
            if !st.held_back {
                break;
            }
        }
        // A reader polling the descriptor hears of whatever is queued: what the drains brought
        // in, and, for a shared slot, what another holder queued before it rang the doorbell
        // whose event the drains just took (they bring in nothing new then, and that event
        // was the poller's only sign).
        if Slot::has_head(&st) {
            slot.signal_wake(&mut st);
        }
        self.arm(slot);
        st.arming = Arming::Armed;
        st.held_back.then_some(now)
    }

    fn run(self: Arc<Self>) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut deferred: Vec<(Instant, u64)> = Vec::new();
        // When the polled shared slots are looked at next (none: no timer).
        let mut next_look: Option<Instant> = None;
        loop {
            if self.looks().is_empty() {
                next_look = None;
            } else if next_look.is_none() {
                next_look = Some(Instant::now() + SHARED_LOOK_EVERY);
            }
            let hellos_due = self.registry.expire_pending(Instant::now());
            let timeout = deferred
                .iter()
                .map(|(t, _)| *t)
                .chain(next_look)
                .chain(hellos_due)
                .map(|t| t.saturating_duration_since(Instant::now()))
                .min();
            let Ok(n) = sys::epoll_wait(self.epoll.as_raw_fd(), &mut events, timeout) else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let now = Instant::now();
            let mut due: Vec<(u64, bool)> = Vec::with_capacity(n);
            for e in &events[..n] {
                if e.u64 == TOKEN_WATCH {
                    sys::eventfd_clear(self.watch_wake.as_raw_fd());
                    let mut w = self
                        .watch
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for tok in w.drain(..) {
                        if !deferred.iter().any(|(_, t)| *t == tok) {
                            deferred.push((now + DEFER, tok));
                        }
                    }
                } else if e.u64 == TOKEN_PROCESS {
                    self.accept_writers(&mut due);
                } else if e.u64 == TOKEN_REGISTRY {
                    self.registry_hung_up();
                } else if e.u64 >= TOKEN_PENDING {
                    self.hello_came(e.u64, &mut due);
                } else {
                    due.push((e.u64, false));
                }
            }
            deferred.retain(|(t, tok)| {
                if *t <= now {
                    due.push((*tok, true));
                    false
                } else {
                    true
                }
            });
            for (tok, from_timer) in due {
                let slot = self.slots().get(&tok).and_then(Weak::upgrade);
                if let Some(slot) = slot {
                    if let Some(again) = self.serve(&slot, now, from_timer) {
                        if !deferred.iter().any(|(_, t)| *t == tok) {
                            deferred.push((again, tok));
                        }
                    }
                }
            }
            if next_look.is_some_and(|t| t <= now) {
                next_look = Some(now + SHARED_LOOK_EVERY);
                self.look_all();
            }
        }
    }

    /// Accepts writers on the process listener and hands each, once its hello has come, to its
    /// slot; slots to serve now go to `due`.
    fn accept_writers(&self, due: &mut Vec<(u64, bool)>) {
        for _ in 0..ACCEPTS_PER_WAKE {
            // None waiting; or ECONNABORTED, EMFILE: the listener stays ready.
            let Ok(Some(conn)) = self.registry.accept() else {
                return;
            };
            match registry::read_hello(&conn) {
                Ok(Some((id, key))) => self.route(conn, id, &key, due),
                Ok(None) => {
                    // Connected, the hello not sent yet: waited for, a bounded number per user.
                    let Ok(cred) = sys::peer_cred(&conn) else {
                        continue;
                    };
                    let token = self.next_pending.fetch_add(1, Ordering::Relaxed);
                    let fd = conn.as_raw_fd();
                    if self.registry.add_pending(token, conn, cred.uid) {
                        let events = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
                        let _ = sys::epoll_ctl(
                            self.epoll.as_raw_fd(),
                            libc::EPOLL_CTL_ADD,
                            fd,
                            events,
                            token,
                        );
                    }
                }
                // Anything else than a hello: closed.
                Err(_) => {}
            }
        }
    }

    /// The connection waiting under `token` has something to read (or expired meanwhile).
    fn hello_came(&self, token: u64, due: &mut Vec<(u64, bool)>) {
        let Some(p) = self
            .registry
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&token)
        else {
            return;
        };
        let _ = sys::epoll_ctl(
            self.epoll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            p.fd.as_raw_fd(),
            0,
            0,
        );
        if let Ok(Some((id, key))) = registry::read_hello(&p.fd) {
            self.route(p.fd, id, &key, due);
        }
    }

    /// Hands a writer's connection to the slot its hello named (none such: closed).
    fn route(&self, conn: OwnedFd, id: u64, key: &str, due: &mut Vec<(u64, bool)>) {
        let slot = self.slots().get(&id).and_then(Weak::upgrade);
        if let Some(slot) = slot {
            if slot.hand_over(conn, key) && !due.iter().any(|(t, _)| *t == id) {
                due.push((id, false));
            }
        }
    }

    /// The daemon's directory is gone: every slot whose name was there binds it itself.
    fn registry_hung_up(&self) {
        if !self.registry.lost() {
            return;
        }
        let slots: Vec<Arc<Slot>> = self
            .slots()
            .values()
            .filter_map(Weak::upgrade)
            .filter(|s| s.in_directory())
            .collect();
        for slot in slots {
            let mut st = slot.lock();
            // (A name somebody else bound meanwhile is lost to this slot: its writers stay.)
            let _ = slot.promote(&mut st);
        }
    }

    /// Looks at every polled shared slot (see `Slot::look`); forgets those that are gone.
    fn look_all(&self) {
        let tokens: Vec<u64> = self.looks().iter().copied().collect();
        for tok in tokens {
            let slot = self.slots().get(&tok).and_then(Weak::upgrade);
            if !slot.is_some_and(|s| s.look()) {
                self.looks().remove(&tok);
            }
        }
    }
}
