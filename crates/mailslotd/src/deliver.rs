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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailslot::daemon::DeliveryCounters;
use mailslot::trusted::{BatchOutcome, Caller, RemoteMessage};
use mailslot::{MailslotWriter, OpenError, Timeout, WriteError, WriteOptions};
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
/// Stack of a worker thread (it only opens a handle and writes).
const WORKER_STACK: usize = 256 * 1024;

/// The counters, shared with the workers.
#[derive(Default)]
struct Shared {
    counters: Mutex<DeliveryCounters>,
    /// Workers running, but not those opening a mailslot.
    workers: AtomicUsize,
    /// Workers opening a mailslot.
    opening: AtomicUsize,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut DeliveryCounters)) {
        f(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
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
    /// Messages handed over and not yet written.
    queued: Arc<AtomicUsize>,
    /// Cleared when the worker ends.
    alive: Arc<AtomicBool>,
}

impl Slot {
    /// The open handle, if the worker has one and nothing is queued for it (so that a direct
    /// write keeps the mailslot's order).
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
    slots: HashMap<String, Slot>,
    shared: Arc<Shared>,
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
        // Almost always one mailslot per batch: a linear search beats hashing here.
        let mut groups: Vec<Vec<&Delivery<'_>>> = Vec::new();
        for d in all {
            match groups
                .iter_mut()
                .find(|g| g[0].path.eq_ignore_ascii_case(&d.path))
            {
                Some(g) => g.push(d),
                None => groups.push(vec![d]),
            }
        }
        let mut behind = false;
        for group in groups {
            let key = group[0].path.to_ascii_lowercase();
            behind |= self.hand_over(key, &group);
        }
        behind
    }

    /// Returns whether the ring took some of the messages but not all: its owner has been
    /// reading (the ring had room again) and is now behind. Not when the ring took none (an
    /// owner that does not read is not waited for) or the worker was busy already.
    fn hand_over(&mut self, key: String, mut group: &[&Delivery<'_>]) -> bool {
        if let Some(slot) = self.slots.get(&key).filter(|s| s.alive.load(SeqCst)) {
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
        if slot.queued.load(SeqCst) + n > SLOT_BACKLOG {
            self.shared.count(|c| c.dropped_backlog += n as u64);
            return true;
        }
        slot.queued.fetch_add(n, SeqCst);
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
    /// counted beyond the bounds on workers).
    fn start_worker(&mut self, key: String, group: &[&Delivery<'_>]) {
        let n = group.len();
        if self.shared.workers.load(SeqCst) >= MAX_WORKERS
            || self.shared.opening.load(SeqCst) >= MAX_OPENING
        {
            self.slots.retain(|_, s| s.alive.load(SeqCst));
            self.shared.count(|c| c.dropped_backlog += n as u64);
            return;
        }
        if self.slots.len() >= MAX_WORKERS * 2 {
            self.slots.retain(|_, s| s.alive.load(SeqCst));
        }
        let (tx, rx) = sync_channel(SLOT_BACKLOG);
        let slot = Slot {
            tx,
            writer: SharedWriter::default(),
            queued: Arc::new(AtomicUsize::new(n)),
            alive: Arc::new(AtomicBool::new(true)),
        };
        let batch = owned(group);
        if slot.tx.try_send(batch).is_err() {
            return;
        }
        let worker = Worker {
            name: format!("\\\\.\\mailslot\\{}", group[0].path),
            rx,
            queued: slot.queued.clone(),
            alive: slot.alive.clone(),
            shared: self.shared.clone(),
            writer: None,
            published: slot.writer.clone(),
        };
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
    rx: Receiver<Vec<Delivery<'static>>>,
    queued: Arc<AtomicUsize>,
    alive: Arc<AtomicBool>,
    shared: Arc<Shared>,
    writer: Option<Arc<MailslotWriter>>,
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
            match self.rx.recv_timeout(WORKER_IDLE) {
                Ok(batch) => self.deliver(&batch),
                Err(RecvTimeoutError::Timeout) => {
                    self.alive.store(false, SeqCst);
                    // What arrived between the timeout and the flag is still delivered.
                    while let Ok(batch) = self.rx.try_recv() {
                        self.deliver(&batch);
                    }
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.alive.store(false, SeqCst);
        self.shared.workers.fetch_sub(1, SeqCst);
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
            match opened {
                Ok(w) => self.set_writer(Some(w)),
                Err(e) => {
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
        let deadline = Instant::now() + Duration::from_secs(5);
        while d
            .slots
            .values()
            .next()
            .and_then(Slot::idle_writer)
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "the worker never opened the mailslot"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Fill the ring (nobody reads): batches that fit say nothing; the one that fills it
        // says "yield"; after that the ring takes nothing and nothing says "yield".
        let mut said = Vec::new();
        for _ in 0..20_000 {
            said.push(d.deliver_all(&batch(&path, 64)));
            if said.last() == Some(&true) {
                break;
            }
        }
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
        // The owner reads some: the ring takes part of the next batch again.
        while slot.read_message_timeout(Timeout::ZERO).is_ok() {}
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut again = false;
        while !again && Instant::now() < deadline {
            again = d.deliver_all(&batch(&path, 64));
            let _ = slot.read_message_timeout(Timeout::ZERO);
        }
        assert!(
            again,
            "no yield once the owner reads again and its ring fills up"
        );
    }
}
