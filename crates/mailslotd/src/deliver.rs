//! Delivery into local mailslots, without ever blocking the daemon's loop.
//!
//! Each local mailslot that receives something gets a worker thread of its own with a bounded
//! backlog ([`SLOT_BACKLOG`] messages). The loop only hands messages over (`try_send`): when a
//! slot's backlog is full — its owner is stopped, does not read, or never accepts the connection —
//! the messages for that slot are dropped and counted (`dropped_backlog`), and every other slot,
//! the control socket and the UDP sockets go on as before. Opening a slot (connect + greeting) is
//! bounded by [`OPEN_TIMEOUT`] once connected and happens on the worker. A worker idle for
//! [`WORKER_IDLE`] ends; at most [`MAX_WORKERS`] deliver at once, and at most [`MAX_OPENING`] may
//! be opening a mailslot at once — a listener whose connection queue is full (one that never
//! accepts) keeps a worker in `connect` until it goes away, so such workers do not take places
//! from the others. Beyond either bound, messages for new slots are dropped and counted the same
//! way.
//!
//! Anyone on the LAN chooses the paths, so a path that is not a valid mailslot name gets no
//! worker (`dropped_bad_name`), and a worker that cannot open its mailslot ends as soon as
//! nothing more is queued for it, giving its place back. A mailslot found missing is remembered
//! for [`NOT_FOUND_WINDOW`]: messages for it in that time are counted (`dropped_no_mailslot`)
//! without starting a worker, so that a flood to a name nobody serves does not start a thread
//! per datagram. The price: a mailslot created within that window after a message for its name
//! found none may miss the messages sent to it in the rest of the window.
//!
//! A worker ends only when nothing is queued for it, in one atomic step that the loop sees
//! before handing it anything more ([`DEAD`]): a batch is either delivered by the worker it was
//! handed to or goes to a new one, never lost with a worker that ended.
//!
//! The fast path: once a worker has opened its mailslot and has nothing queued, the loop writes
//! network messages through that handle itself, as far as the writer's ring has room at that
//! moment (`try_write_batch_from_remote`: a few stores, no system call, no wait, no copy), and
//! hands only the rest to the worker. So the usual case costs what a direct write costs, and
//! only a slot that falls behind (or a local program's write, or the first message) takes the
//! worker's path.
//!
//! What came from the network is delivered as a remote message, and only to slots that accept
//! remote messages. The local copy of a local program's write ([`Delivery::caller`]) is written
//! on behalf of that program: the owner applies its access policy to the program and records it
//! as a local sender, exactly as for a direct write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mailslot::daemon::DeliveryCounters;
use mailslot::trusted::{BatchOutcome, Caller, RemoteMessage};
use mailslot::{MailslotWriter, Name, OpenError, Timeout, WriteError, WriteOptions};
use mailslot_router::Delivery;
use tracing::debug;

/// How long opening a local mailslot may take before its messages are dropped.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_millis(500);
/// Messages waiting for one mailslot at most; more are dropped and counted.
pub(crate) const SLOT_BACKLOG: usize = 512;
/// Delivery workers (one per mailslot being delivered to) at most.
pub(crate) const MAX_WORKERS: usize = 128;
/// Workers opening a mailslot at most (each open, `connect` to a listener whose queue is full
/// included, ends after [`OPEN_TIMEOUT`]).
pub(crate) const MAX_OPENING: usize = 512;
/// A worker with nothing to deliver for this long ends (and closes its handle).
pub(crate) const WORKER_IDLE: Duration = Duration::from_secs(30);
/// How long a mailslot that a worker found missing is taken as missing without trying again.
pub(crate) const NOT_FOUND_WINDOW: Duration = Duration::from_millis(200);
/// Mailslots remembered as missing at most (a flood of names cannot grow the memory).
const MAX_MISSING: usize = 1024;
/// Stack of a worker thread (it only opens a handle and writes).
const WORKER_STACK: usize = 256 * 1024;
/// The bit of [`Slot::queued`] that says the worker has ended: set only while nothing is queued,
/// and never cleared.
const DEAD: usize = 1 << (usize::BITS - 1);

/// How long workers and missing mailslots are kept (only tests shorten them).
struct Timing {
    /// [`WORKER_IDLE`].
    idle: Duration,
    /// [`NOT_FOUND_WINDOW`].
    not_found: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            idle: WORKER_IDLE,
            not_found: NOT_FOUND_WINDOW,
        }
    }
}

/// The counters, shared with the workers.
#[derive(Default)]
struct Shared {
    counters: Mutex<DeliveryCounters>,
    /// Workers running, but not those opening a mailslot.
    workers: AtomicUsize,
    /// Workers opening a mailslot.
    opening: AtomicUsize,
    /// Mailslots (by key) a worker found missing, and when.
    missing: Mutex<HashMap<String, Instant>>,
    timing: Timing,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut DeliveryCounters)) {
        f(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Remembers that the mailslot `key` was not found just now. When [`MAX_MISSING`] are
    /// remembered, the expired ones are forgotten; if none has expired, `key` is not remembered
    /// (its messages then only cost a worker that ends at once).
    fn note_missing(&self, key: &str) {
        let mut missing = self.missing.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if missing.len() >= MAX_MISSING && !missing.contains_key(key) {
            missing.retain(|_, at| now.duration_since(*at) < self.timing.not_found);
            if missing.len() >= MAX_MISSING {
                return;
            }
        }
        missing.insert(key.to_owned(), now);
    }

    /// Whether the mailslot `key` was found missing less than [`NOT_FOUND_WINDOW`] ago (an
    /// older record of it is forgotten).
    fn recently_missing(&self, key: &str) -> bool {
        let mut missing = self.missing.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = missing.get(key) else {
            return false;
        };
        if at.elapsed() < self.timing.not_found {
            return true;
        }
        missing.remove(key);
        false
    }
}

/// A mailslot's open handle, shared by its worker (which opens it) and the loop (which writes
/// network messages through it directly while the worker has nothing queued).
type SharedWriter = Arc<Mutex<Option<Arc<MailslotWriter>>>>;

/// The loop's side of one mailslot's worker.
struct Slot {
    tx: SyncSender<Vec<Delivery<'static>>>,
    /// The worker's open handle, once it has one.
    writer: SharedWriter,
    /// Messages handed over and not yet written, and [`DEAD`] once the worker has ended.
    queued: Arc<AtomicUsize>,
}

impl Slot {
    /// Whether the worker has ended.
    fn is_dead(&self) -> bool {
        self.queued.load(SeqCst) & DEAD != 0
    }

    /// The open handle, if the worker has one and nothing is queued for it (so that a direct
    /// write keeps the mailslot's order) and it has not ended.
    fn idle_writer(&self) -> Option<Arc<MailslotWriter>> {
        if self.queued.load(SeqCst) != 0 {
            return None;
        }
        self.writer.try_lock().ok()?.clone()
    }
}

/// Hands messages to the per-mailslot workers.
#[derive(Default)]
pub(crate) struct Deliverer {
    /// The workers by mailslot key ([`Name::key`]).
    slots: HashMap<String, Slot>,
    shared: Arc<Shared>,
}

/// A path byte as the mailslot's key has it: ASCII letters in lower case, `/` as `\`.
fn fold(b: u8) -> u8 {
    if b == b'/' {
        b'\\'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Whether two paths name the same mailslot (the same [`Name::key`] when valid), byte by byte
/// and without allocating: the loop compares every message's path.
fn same_slot(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (a.as_ptr() == b.as_ptr() || a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y)))
}

/// The key of the mailslot `path` names: what [`Name::key`] gives for a valid name, without
/// parsing it (the loop looks a worker up for every batch).
fn slot_key(path: &str) -> String {
    // Characters below 256 go through `fold` as bytes (it changes only ASCII ones, into ASCII
    // ones; the rest come back as they went in).
    path.chars()
        .map(|c| u8::try_from(c).map_or(c, |b| char::from(fold(b))))
        .collect()
}

impl Deliverer {
    /// What happened to the messages so far.
    pub(crate) fn counters(&self) -> DeliveryCounters {
        self.shared
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands messages to their mailslots' workers, grouped by mailslot (order kept within a
    /// mailslot). Never blocks: what a full backlog cannot take is dropped and counted. Returns
    /// whether some mailslot's ring filled up with this batch while its owner was reading (the
    /// rest went to its worker, or was dropped): see [`Deliverer::hand_over`].
    pub(crate) fn deliver_all(&mut self, all: &[Delivery<'_>]) -> bool {
        let Some(first) = all.first() else {
            return false;
        };
        // Almost always one mailslot per batch (consecutive messages even share the path).
        if all.iter().all(|d| same_slot(&d.path, &first.path)) {
            let group: Vec<&Delivery<'_>> = all.iter().collect();
            return self.hand_over(slot_key(&first.path), &group);
        }
        // A few mailslots: a linear search beats hashing here.
        let mut groups: Vec<Vec<&Delivery<'_>>> = Vec::new();
        for d in all {
            match groups.iter_mut().find(|g| same_slot(&g[0].path, &d.path)) {
                Some(g) => g.push(d),
                None => groups.push(vec![d]),
            }
        }
        let mut behind = false;
        for group in groups {
            behind |= self.hand_over(slot_key(&group[0].path), &group);
        }
        behind
    }

    /// Returns whether the ring took some of the messages but not all: its owner has been
    /// reading (the ring had room again) and is now behind. Not when the ring took none (an
    /// owner that does not read is not waited for) or the worker was busy already.
    fn hand_over(&mut self, key: String, mut group: &[&Delivery<'_>]) -> bool {
        if let Some(slot) = self.slots.get(&key).filter(|s| !s.is_dead()) {
            let offered = group.len();
            group = self.write_direct(slot, group);
            if group.is_empty() {
                return false;
            }
            let behind = group.len() < offered;
            if self.queue(slot, group) {
                return behind;
            }
        }
        // No worker for this mailslot, or it ended meanwhile: start one.
        self.slots.remove(&key);
        self.start_worker(key, group);
        false
    }

    /// The fast path: network messages at the head of `group` straight into the ring through
    /// the worker's open handle (when it has nothing queued), as far as the ring has room now.
    /// Returns what is left for the worker.
    fn write_direct<'g, 'r, 'd>(
        &self,
        slot: &Slot,
        group: &'g [&'r Delivery<'d>],
    ) -> &'g [&'r Delivery<'d>] {
        let Some(w) = slot.idle_writer() else {
            return group;
        };
        let remote = group.iter().take_while(|d| d.caller.is_none()).count();
        if remote == 0 {
            return group;
        }
        if !w.accepts_remote() {
            self.shared
                .count(|c| c.dropped_refused_remote += remote as u64);
            return &group[remote..];
        }
        let msgs: Vec<RemoteMessage<'_>> = group[..remote].iter().map(|d| d.message()).collect();
        // A failing handle: the worker sorts it out (reopens, counts).
        let Ok((o, done)) = w.try_write_batch_from_remote(&msgs) else {
            return group;
        };
        if done > 0 {
            self.shared.count(|c| count_outcome(c, &o));
        }
        &group[done..]
    }

    /// Queues `group` for the slot's worker, or drops and counts it when the backlog is full;
    /// `false` when the worker has ended (nothing done).
    fn queue(&self, slot: &Slot, group: &[&Delivery<'_>]) -> bool {
        let n = group.len();
        // Counted as queued before anything else: from here on the worker cannot end (it ends
        // only by setting DEAD while nothing is queued), unless it already has.
        let before = slot.queued.fetch_add(n, SeqCst);
        if before & DEAD != 0 {
            // Ended: the slot is dropped, so the count needs no undoing.
            return false;
        }
        if before + n > SLOT_BACKLOG {
            slot.queued.fetch_sub(n, SeqCst);
            self.shared.count(|c| c.dropped_backlog += n as u64);
            return true;
        }
        match slot.tx.try_send(owned(group)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                slot.queued.fetch_sub(n, SeqCst);
                self.shared.count(|c| c.dropped_backlog += n as u64);
                true
            }
            Err(TrySendError::Disconnected(_)) => {
                slot.queued.fetch_sub(n, SeqCst);
                false
            }
        }
    }

    /// Starts a worker for the mailslot `key` with `group` as its first batch (dropped and
    /// counted when the path is no mailslot name, when the mailslot was found missing a moment
    /// ago, and beyond the bounds on workers).
    fn start_worker(&mut self, key: String, group: &[&Delivery<'_>]) {
        let n = group.len();
        // Checked here, not on the worker: a worker's place is worth more than a parse.
        let Ok(name) = Name::local(&group[0].path) else {
            self.shared.count(|c| c.dropped_bad_name += n as u64);
            return;
        };
        debug_assert_eq!(key, name.key());
        if self.shared.recently_missing(&key) {
            self.shared.count(|c| c.dropped_no_mailslot += n as u64);
            return;
        }
        if self.shared.workers.load(SeqCst) >= MAX_WORKERS
            || self.shared.opening.load(SeqCst) >= MAX_OPENING
        {
            self.slots.retain(|_, s| !s.is_dead());
            self.shared.count(|c| c.dropped_backlog += n as u64);
            return;
        }
        if self.slots.len() >= MAX_WORKERS * 2 {
            self.slots.retain(|_, s| !s.is_dead());
        }
        let (slot, worker) = self.new_worker(&name, &key, n);
        let batch = owned(group);
        if slot.tx.try_send(batch).is_err() {
            return;
        }
        self.shared.workers.fetch_add(1, SeqCst);
        let spawned = std::thread::Builder::new()
            .name("mailslotd-deliver".into())
            .stack_size(WORKER_STACK)
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            debug!("cannot start a delivery worker: {e}");
            self.shared.workers.fetch_sub(1, SeqCst);
            self.shared.count(|c| c.dropped_error += n as u64);
            return;
        }
        self.slots.insert(key, slot);
    }

    /// A worker for the mailslot `name` (its key `key`) and the loop's side of it, with
    /// `queued` messages counted as queued.
    fn new_worker(&self, name: &Name, key: &str, queued: usize) -> (Slot, Worker) {
        let (tx, rx) = sync_channel(SLOT_BACKLOG);
        let slot = Slot {
            tx,
            writer: SharedWriter::default(),
            queued: Arc::new(AtomicUsize::new(queued)),
        };
        let worker = Worker {
            name: name.to_string(),
            key: key.to_owned(),
            rx,
            queued: slot.queued.clone(),
            shared: self.shared.clone(),
            writer: None,
            open_failed: false,
            published: slot.writer.clone(),
        };
        (slot, worker)
    }
}

fn count_outcome(c: &mut DeliveryCounters, o: &BatchOutcome) {
    c.delivered += o.queued as u64;
    c.dropped_full += o.full as u64;
    c.dropped_too_large += o.too_large as u64;
}

fn owned(group: &[&Delivery<'_>]) -> Vec<Delivery<'static>> {
    group.iter().map(|d| (*d).clone().into_owned()).collect()
}

/// One mailslot's worker: opens it (bounded by [`OPEN_TIMEOUT`]) and writes what it is handed.
struct Worker {
    name: String,
    /// The mailslot's key ([`Name::key`]).
    key: String,
    rx: Receiver<Vec<Delivery<'static>>>,
    /// [`Slot::queued`].
    queued: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    writer: Option<Arc<MailslotWriter>>,
    /// The last attempt to open the mailslot failed.
    open_failed: bool,
    /// Where the loop finds the open handle.
    published: SharedWriter,
}

impl Worker {
    fn set_writer(&mut self, w: Option<MailslotWriter>) {
        self.writer = w.map(Arc::new);
        *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.writer.clone();
    }

    fn run(mut self) {
        loop {
            match self.rx.recv_timeout(self.shared.timing.idle) {
                Ok(batch) => {
                    self.deliver(&batch);
                    // A mailslot that cannot be opened gets no worker kept waiting for it: its
                    // place goes back at once, unless more has been queued meanwhile.
                    if self.open_failed && self.retire() {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.retire() {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // The loop may keep the slot a while: the handle is closed now.
        self.set_writer(None);
        self.shared.workers.fetch_sub(1, SeqCst);
    }

    /// Ends this worker if nothing is queued for it: one step that the loop's
    /// [`Deliverer::queue`] sees, so that nothing is handed to a worker that has ended. `false`
    /// when something is queued (and on its way): the worker goes on.
    fn retire(&self) -> bool {
        self.queued
            .compare_exchange(0, DEAD, SeqCst, SeqCst)
            .is_ok()
    }

    fn deliver(&mut self, batch: &[Delivery<'static>]) {
        // Network messages together (one record), local callers' writes one by one.
        let (local, remote): (Vec<&Delivery<'_>>, Vec<&Delivery<'_>>) =
            batch.iter().partition(|d| d.caller.is_some());
        if !remote.is_empty() {
            let msgs: Vec<RemoteMessage<'_>> = remote.iter().map(|d| d.message()).collect();
            self.deliver_remote(&msgs);
        }
        for d in local {
            if let Some(caller) = &d.caller {
                self.deliver_local(d, caller);
            }
        }
        self.queued.fetch_sub(batch.len(), SeqCst);
    }

    /// The open handle, opening it if needed; `None` (counted) if the mailslot cannot be opened.
    fn writer(&mut self, n: u64) -> Option<Arc<MailslotWriter>> {
        if self.writer.is_none() {
            // While opening (maybe stuck in `connect`), this worker counts as opening only.
            self.shared.opening.fetch_add(1, SeqCst);
            self.shared.workers.fetch_sub(1, SeqCst);
            let opened = MailslotWriter::open_timeout(&self.name, OPEN_TIMEOUT);
            self.shared.workers.fetch_add(1, SeqCst);
            self.shared.opening.fetch_sub(1, SeqCst);
            self.open_failed = opened.is_err();
            match opened {
                Ok(w) => self.set_writer(Some(w)),
                Err(e) => {
                    if matches!(e, OpenError::NotFound(_)) {
                        self.shared.note_missing(&self.key);
                    }
                    self.shared.count(|c| match e {
                        OpenError::NotFound(_) => c.dropped_no_mailslot += n,
                        OpenError::InvalidName(_) => c.dropped_bad_name += n,
                        _ => c.dropped_error += n,
                    });
                    return None;
                }
            }
        }
        self.writer.clone()
    }

    fn deliver_remote(&mut self, msgs: &[RemoteMessage<'_>]) {
        let n = msgs.len() as u64;
        for _attempt in 0..2 {
            let Some(w) = self.writer(n) else { return };
            if !w.accepts_remote() {
                self.shared.count(|c| c.dropped_refused_remote += n);
                return;
            }
            match w.write_batch_from_remote(msgs) {
                Ok(o) => return self.shared.count(|c| count_outcome(c, &o)),
                // The slot was closed (maybe re-created): open again once.
                Err(WriteError::OwnerGone) => self.set_writer(None),
                Err(e) => {
                    debug!("cannot deliver to {}: {e}", self.name);
                    self.set_writer(None);
                    return self.shared.count(|c| c.dropped_error += n);
                }
            }
        }
        self.shared.count(|c| c.dropped_no_mailslot += n);
    }

    fn deliver_local(&mut self, d: &Delivery<'_>, caller: &Caller) {
        // Never wait for room: a full slot drops the message, as for the network's.
        let opts = WriteOptions {
            priority: d.priority.min(9),
            class: d.class,
            timeout: Timeout::ZERO,
        };
        for _attempt in 0..2 {
            let Some(w) = self.writer(1) else { return };
            match w.write_on_behalf(&d.data, opts, caller) {
                Ok(()) => return self.shared.count(|c| c.delivered += 1),
                Err(WriteError::Open(OpenError::AccessDenied(_))) => {
                    return self.shared.count(|c| c.dropped_access_denied += 1)
                }
                Err(WriteError::OwnerGone) => self.set_writer(None),
                Err(WriteError::Full | WriteError::Timeout) => {
                    return self.shared.count(|c| c.dropped_full += 1)
                }
                Err(WriteError::TooLarge { .. }) => {
                    return self.shared.count(|c| c.dropped_too_large += 1)
                }
                Err(e) => {
                    debug!("cannot deliver to {}: {e}", self.name);
                    self.set_writer(None);
                    return self.shared.count(|c| c.dropped_error += 1);
                }
            }
        }
        self.shared.count(|c| c.dropped_no_mailslot += 1);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Instant;

    use mailslot::{Class, Mailslot};

    use super::*;

    impl Deliverer {
        /// A deliverer whose workers end after `idle` and which remembers a missing mailslot
        /// for `not_found`.
        fn with_timing(idle: Duration, not_found: Duration) -> Self {
            Self {
                slots: HashMap::new(),
                shared: Arc::new(Shared {
                    timing: Timing { idle, not_found },
                    ..Shared::default()
                }),
            }
        }

        /// Waits until no worker runs (`false` if some still does after 5 s). Every worker
        /// this deliverer knows has ended (it does so after counting what it was handed),
        /// and none is counted as running: the two counts are read one after the other, so
        /// a worker between opening and running could make them add up to 0 for a moment.
        fn wait_for_workers(&self) -> bool {
            within_5s(|| {
                self.slots.values().all(Slot::is_dead)
                    && self.shared.workers.load(SeqCst) + self.shared.opening.load(SeqCst) == 0
            })
        }
    }

    /// Every message counted somewhere: delivered or dropped for some reason.
    fn counted(d: &Deliverer) -> u64 {
        d.counters().fields().iter().map(|(_, v)| v).sum()
    }

    /// Waits until `n` messages are counted (`false` if fewer are after 5 s). A worker counts
    /// a write after it returns, so the owner may read a message before it is counted.
    fn wait_until_counted(d: &Deliverer, n: u64) -> bool {
        within_5s(|| counted(d) >= n)
    }

    /// Waits until `ready` (`false` if it is not after 5 s).
    fn within_5s(mut ready: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ready() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// A path no mailslot of this process serves.
    fn missing_path(what: &str) -> Arc<str> {
        format!("deliver-unit\\missing-{what}-{}", std::process::id()).into()
    }

    fn batch(path: &Arc<str>, n: usize) -> Vec<Delivery<'static>> {
        let from: Arc<str> = "SENDER".into();
        (0..n)
            .map(|_| Delivery {
                path: path.clone(),
                data: vec![0x5a; 64].into(),
                priority: 0,
                class: Class::Second,
                sender_name: from.clone(),
                sender_ip: Ipv4Addr::new(10, 0, 0, 1),
                caller: None,
            })
            .collect()
    }

    /// `deliver_all` says "yield" only when a ring filled up while its owner was reading: it
    /// took part of a batch. A ring that takes nothing (an owner that does not read) never
    /// makes the daemon yield, however many batches come.
    #[test]
    fn the_loop_yields_only_to_an_owner_that_reads() {
        let path: Arc<str> = format!("deliver-unit\\yield-{}", std::process::id()).into();
        let slot = Mailslot::builder()
            .max_message_size(100)
            .quota(64 << 20)
            .max_messages(1 << 20)
            .create(&format!(r"\\.\mailslot\{path}"))
            .unwrap();
        let mut d = Deliverer::default();
        // The first batch starts the worker, which opens the mailslot; wait until it is idle
        // and its handle published, so that the loop writes straight into the ring.
        assert!(!d.deliver_all(&batch(&path, 1)));
        wait_for_idle_writer(&d, None, "the worker never opened the mailslot");
        // Fill the ring (nobody reads): batches that fit say nothing; the one that fills it
        // says "yield"; after that the ring takes nothing and nothing says "yield".
        let said = fill_until_yield(&mut d, &path);
        assert_eq!(said.iter().filter(|&&y| y).count(), 1, "the filling batch");
        assert!(said[..said.len() - 1].iter().all(|&y| !y));
        for _ in 0..50 {
            assert!(
                !d.deliver_all(&batch(&path, 64)),
                "yielded to a ring that took nothing"
            );
            // Keep the worker's backlog from growing: it may only hold what it can write.
            std::thread::sleep(Duration::from_millis(1));
        }
        // The owner reads again, until the worker has written what it was handed meanwhile and
        // is idle: the loop writes straight into the ring again. (Batches handed to a busy
        // worker say nothing, by design; a loop that delivered while it waited could keep a
        // starved worker busy for ever on a loaded machine.)
        wait_for_idle_writer(&d, Some(&slot), "the worker never wrote its backlog");
        // The ring takes whole batches again, up to the one that fills it, which says "yield".
        let said = fill_until_yield(&mut d, &path);
        assert_eq!(
            said.iter().filter(|&&y| y).count(),
            1,
            "no yield once the owner read again and its ring filled up"
        );
        assert!(said.len() > 1, "a yield before the ring was full: {said:?}");
    }

    /// Waits (10 s at most, else fails with `what`) until the worker of the one mailslot `d`
    /// delivers to has its handle open and nothing queued, so that the loop writes straight into
    /// the ring; `owner`, if given, reads everything meanwhile.
    fn wait_for_idle_writer(d: &Deliverer, owner: Option<&Mailslot>, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(o) = owner {
                while o.read_message_timeout(Timeout::ZERO).is_ok() {}
            }
            if d.slots
                .values()
                .next()
                .and_then(Slot::idle_writer)
                .is_some()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Delivers batches of 64 messages for `path` until one says "yield" (20 000 at most);
    /// returns what each said.
    fn fill_until_yield(d: &mut Deliverer, path: &Arc<str>) -> Vec<bool> {
        let mut said = Vec::new();
        for _ in 0..20_000 {
            said.push(d.deliver_all(&batch(path, 64)));
            if said.last() == Some(&true) {
                break;
            }
        }
        said
    }

    /// A path that is no mailslot name costs no worker: its messages are counted as bad names
    /// on the loop.
    #[test]
    fn a_path_that_is_no_mailslot_name_starts_no_worker() {
        let mut d = Deliverer::default();
        for path in ["a\\..\\b", "x*y", "a\\\\b", "trailing\\"] {
            d.deliver_all(&batch(&path.into(), 3));
        }
        assert_eq!(d.counters().dropped_bad_name, 12);
        assert_eq!(counted(&d), 12);
        assert!(d.slots.is_empty());
        assert_eq!(d.shared.workers.load(SeqCst), 0);
    }

    /// More missing mailslots than there are worker places do not keep a served mailslot from
    /// getting its messages: a worker that cannot open its mailslot gives its place back at
    /// once rather than after [`WORKER_IDLE`].
    #[test]
    fn workers_for_missing_mailslots_give_their_places_back() {
        let mut d = Deliverer::default();
        let n = MAX_WORKERS + 10;
        for i in 0..n {
            d.deliver_all(&batch(&missing_path(&format!("place-{i}")), 1));
        }
        assert!(
            d.wait_for_workers(),
            "workers for missing mailslots kept their places"
        );
        assert_eq!(d.counters().dropped_no_mailslot, n as u64);
        let path: Arc<str> = format!("deliver-unit\\places-{}", std::process::id()).into();
        let slot = Mailslot::builder()
            .create(&format!(r"\\.\mailslot\{path}"))
            .unwrap();
        d.deliver_all(&batch(&path, 1));
        let got = slot.read_message_timeout(Timeout::from(Duration::from_secs(5)));
        assert!(got.is_ok(), "the served mailslot got nothing: {got:?}");
        assert!(wait_until_counted(&d, n as u64 + 1), "{:?}", d.counters());
        assert_eq!(d.counters().delivered, 1);
        assert_eq!(counted(&d), n as u64 + 1);
    }

    /// A mailslot found missing is remembered for a moment: its next messages are counted on
    /// the loop without starting a worker; after the window a worker tries again.
    #[test]
    fn a_missing_mailslot_is_remembered_for_a_moment() {
        let window = Duration::from_secs(2);
        let mut d = Deliverer::with_timing(WORKER_IDLE, window);
        let path = missing_path("remembered");
        let key = Name::local(&path).unwrap().key();
        d.deliver_all(&batch(&path, 2));
        assert!(d.wait_for_workers());
        assert_eq!(d.counters().dropped_no_mailslot, 2);
        // Counted at once, by the loop: no worker.
        d.deliver_all(&batch(&path, 3));
        assert_eq!(d.counters().dropped_no_mailslot, 5);
        assert!(!d.slots.contains_key(&key), "a worker was started");
        std::thread::sleep(window);
        d.deliver_all(&batch(&path, 1));
        assert!(d.slots.contains_key(&key), "no worker after the window");
        assert!(d.wait_for_workers());
        assert_eq!(d.counters().dropped_no_mailslot, 6);
    }

    /// The record of missing mailslots stays bounded: when full, expired records go; while
    /// none has expired, new names are not recorded.
    #[test]
    fn the_record_of_missing_mailslots_is_bounded() {
        let shared = Shared {
            timing: Timing {
                idle: WORKER_IDLE,
                // Long enough that nothing expires while the record is filled (a test
                // thread put aside for a moment on a busy machine).
                not_found: Duration::from_secs(1),
            },
            ..Shared::default()
        };
        for i in 0..MAX_MISSING + 100 {
            shared.note_missing(&format!("m{i}"));
        }
        assert_eq!(shared.missing.lock().unwrap().len(), MAX_MISSING);
        assert!(shared.recently_missing("m0"));
        assert!(!shared.recently_missing(&format!("m{MAX_MISSING}")));
        std::thread::sleep(Duration::from_millis(1100));
        shared.note_missing("late");
        assert_eq!(shared.missing.lock().unwrap().len(), 1);
        assert!(shared.recently_missing("late"));
        assert!(!shared.recently_missing("m0"));
    }

    /// Spellings of one mailslot's path (letter case, `/` or `\`) share one worker, keyed as
    /// the name's key; the cheap key the loop computes is that key.
    #[test]
    fn spellings_of_one_mailslot_share_a_worker() {
        for p in ["A/b\\C", "deliver-unit/X", "x", "Ünï/Ab", "a\\B/c/D"] {
            assert_eq!(slot_key(p), Name::local(p).unwrap().key(), "{p}");
        }
        assert!(same_slot("Deliver/UNIT", "deliver\\unit"));
        assert!(!same_slot("deliver\\unit", "deliver\\units"));
        assert!(!same_slot("deliver\\unit", "deliver\\uniu"));
        let mut d = Deliverer::default();
        let pid = std::process::id();
        let upper: Arc<str> = format!("Deliver-Unit/Spelled-{pid}").into();
        let lower: Arc<str> = format!("deliver-unit\\spelled-{pid}").into();
        // A mailslot that is there: its worker stays (a worker for a missing one may end
        // before the second batch, which would then start none).
        let _slot = Mailslot::builder()
            .create(&format!(r"\\.\mailslot\{lower}"))
            .unwrap();
        let mut mixed = batch(&upper, 2);
        mixed.extend(batch(&lower, 2));
        d.deliver_all(&mixed);
        d.deliver_all(&batch(&lower, 1));
        assert_eq!(d.slots.len(), 1);
        assert!(d.slots.contains_key(&Name::local(&upper).unwrap().key()));
        assert!(wait_until_counted(&d, 5), "{:?}", d.counters());
        assert_eq!(d.counters().delivered, 5);
    }

    /// Under churn every message handed over is counted: workers here end as soon as they are
    /// idle and cannot open their mailslot, and nothing is remembered as missing, so the loop
    /// keeps handing batches to workers that are ending or have just ended. (A check of the
    /// accounting as a whole; the race itself is rarely hit this way, and the two orders it can
    /// take are checked one by one above.)
    #[test]
    fn under_churn_every_message_handed_over_is_counted() {
        let mut d = Deliverer::with_timing(Duration::ZERO, Duration::ZERO);
        let path = missing_path("retire");
        let mut sent = 0;
        for i in 0..20_000 {
            let n = 1 + i % 3;
            d.deliver_all(&batch(&path, n));
            sent += n as u64;
        }
        assert!(d.wait_for_workers());
        assert_eq!(counted(&d), sent, "{:?}", d.counters());
    }

    /// The two orders in which the loop handing a batch over and the worker ending can meet.
    /// The worker ends first: the loop's hand-over fails (it starts a new worker instead)
    /// rather than succeeding into a channel nobody reads any more. The loop first: the worker
    /// cannot end, and receives the batch.
    #[test]
    fn a_worker_ends_only_with_nothing_queued_and_then_takes_nothing() {
        let d = Deliverer::default();
        let path = missing_path("ending");
        let name = Name::local(&path).unwrap();
        let group = batch(&path, 2);
        let group: Vec<&Delivery<'_>> = group.iter().collect();

        let (slot, worker) = d.new_worker(&name, &name.key(), 0);
        // The loop has found the worker running …
        assert!(!slot.is_dead());
        // … its idle time runs out and it ends …
        assert!(worker.retire());
        // … and the batch is not handed to it.
        assert!(!d.queue(&slot, &group));
        assert!(slot.is_dead());
        assert!(slot.idle_writer().is_none());
        assert!(worker.rx.try_recv().is_err());

        let (slot, mut worker) = d.new_worker(&name, &name.key(), 0);
        assert!(d.queue(&slot, &group));
        // Something is queued: the worker goes on …
        assert!(!worker.retire());
        assert!(!slot.is_dead());
        // … delivers it (here: counts it, the mailslot is missing) and only then may end.
        let handed = worker.rx.try_recv().unwrap();
        worker.deliver(&handed);
        assert_eq!(d.counters().dropped_no_mailslot, 2);
        assert!(worker.retire());
        assert!(slot.is_dead());
    }
}
