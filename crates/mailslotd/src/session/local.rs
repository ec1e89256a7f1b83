//! Writes that must report their outcome into local mailslots: what a session brought (a
//! first-class write from another host, a Messenger message) and a local program's first-class
//! write to this host's own name. These run on tokio's blocking threads (a first-class write
//! may wait for room up to its timeout), in two pools so that neither side can starve the other:
//! at most [`MAX_BLOCKING`] writes from the network at once, [`PER_PEER_WRITES`] of them from
//! one address, and at most [`MAX_LOCAL_BLOCKING`] of local programs, [`PER_USER_WRITES`] of them
//! for one user. A write beyond its peer's or user's share waits for one of that share's places
//! (it is not refused), so one peer that writes to a mailslot nobody reads holds only its own
//! share. A write from the network waits for room at most [`MAX_REMOTE_WAIT`], whatever its
//! timeout says, so that even a share is given back; a local program's keeps its own timeout.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailslot::error::code::{
    ACCESS_DENIED, FILE_NOT_FOUND, GEN_FAILURE, INVALID_PARAMETER, SEM_TIMEOUT,
};
use mailslot::trusted::Caller;
use mailslot::{MailslotWriter, OpenError, Timeout, WriteError, WriteOptions};
use mailslot_router::Delivery;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::deliver::OPEN_TIMEOUT;

/// Writes from the network into local mailslots that may wait, at once at most.
pub(crate) const MAX_BLOCKING: usize = 64;
/// Of [`MAX_BLOCKING`], from one address at once at most: a peer that keeps writing to a full
/// mailslot holds no more than this, and every other peer still gets a place.
pub(crate) const PER_PEER_WRITES: usize = 8;
/// Local programs' writes (first class to this host's own name) at once at most: a pool of its
/// own, so that writes from the network cannot starve local programs.
pub(crate) const MAX_LOCAL_BLOCKING: usize = 32;
/// Of [`MAX_LOCAL_BLOCKING`], for one user at once at most: a local program may wait forever
/// for room in a mailslot that it never reads, and must not take the pool from other users.
pub(crate) const PER_USER_WRITES: usize = 8;
/// Longest a write from the network waits for room in a full mailslot, whatever its timeout
/// (forever, or up to 49 days, is what a peer may ask): its place is then given back and its
/// writer gets the timeout error (121).
pub(crate) const MAX_REMOTE_WAIT: Duration = Duration::from_secs(30);
/// Open handles kept for the next write to the same mailslot.
const CACHED_HANDLES: usize = 64;

/// The outcome of a write, as a Win32 number on error.
pub(crate) type Outcome = Result<(), u32>;

/// Writes into local mailslots with their outcome, bounded, reusing open handles.
#[derive(Clone)]
pub(crate) struct LocalWriter {
    /// The pool of writes from the network, and each address's share of it.
    network: Arc<Semaphore>,
    peers: Arc<Shares<Ipv4Addr>>,
    /// The pool of local programs' writes, and each user's share of it.
    local: Arc<Semaphore>,
    users: Arc<Shares<u32>>,
    /// [`MAX_REMOTE_WAIT`], shorter in tests.
    remote_wait: Duration,
    handles: Arc<Mutex<HashMap<String, Arc<MailslotWriter>>>>,
}

impl Default for LocalWriter {
    fn default() -> Self {
        Self {
            network: Arc::new(Semaphore::new(MAX_BLOCKING)),
            peers: Arc::new(Shares::new(PER_PEER_WRITES)),
            local: Arc::new(Semaphore::new(MAX_LOCAL_BLOCKING)),
            users: Arc::new(Shares::new(PER_USER_WRITES)),
            remote_wait: MAX_REMOTE_WAIT,
            handles: Arc::default(),
        }
    }
}

/// Places handed out per key (a peer's address, a local user): each key has a semaphore of
/// `per_key` permits, kept in the map only while somebody holds or waits for one of its
/// permits, so the map is as large as the number of keys busy now.
struct Shares<K> {
    per_key: usize,
    map: Mutex<HashMap<K, Arc<Semaphore>>>,
}

impl<K: Hash + Eq + Copy> Shares<K> {
    fn new(per_key: usize) -> Self {
        Self {
            per_key,
            map: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<Semaphore>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One of `key`'s places, when one is free (`None` only if the semaphore was closed, which
    /// never happens). Cancel-safe: a waiter dropped before it got a place still lets the entry
    /// go.
    async fn acquire(self: &Arc<Self>, key: K) -> Option<Share<K>> {
        let sem = self
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
            .clone();
        let mut share = Share {
            shares: self.clone(),
            key,
            sem: Some(sem.clone()),
            permit: None,
        };
        share.permit = Some(sem.acquire_owned().await.ok()?);
        Some(share)
    }
}

/// A place (or a wait for one) in a key's share; removes the key's entry when it was the last
/// user of it.
struct Share<K: Hash + Eq + Copy> {
    shares: Arc<Shares<K>>,
    key: K,
    sem: Option<Arc<Semaphore>>,
    permit: Option<OwnedSemaphorePermit>,
}

impl<K: Hash + Eq + Copy> Drop for Share<K> {
    fn drop(&mut self) {
        // Under the lock, as `acquire` clones the entry: each holder and waiter owns clones of
        // the semaphore (its own and its permit's), so when only the map's is left nobody holds
        // or waits for it.
        let mut map = self.shares.lock();
        self.permit = None;
        self.sem = None;
        if map
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// Who a write is from.
pub(crate) enum Origin {
    /// Another host (the delivery's sender name and address): only slots that accept remote
    /// messages take it.
    Network,
    /// A local program: the slot's access policy applies to it.
    Local(Caller),
}

impl LocalWriter {
    /// Writes `d` (waiting up to `wait_ms` for room, `None` = forever) as `from`. A write from
    /// the network waits at most [`MAX_REMOTE_WAIT`] whatever `wait_ms` says.
    ///
    /// First a place in the writer's share (its address's, or its user's), then one in its
    /// pool: a writer beyond its share waits for its own places and takes none of the pool.
    pub(crate) async fn write(
        &self,
        d: Delivery<'static>,
        wait_ms: Option<u64>,
        from: Origin,
    ) -> Outcome {
        // The share's key type differs per pool; only its drop matters from here on.
        let (share, pool, wait_ms): (Option<Box<dyn Send>>, _, _) = match &from {
            Origin::Network => {
                let cap = u64::try_from(self.remote_wait.as_millis()).unwrap_or(u64::MAX);
                let wait = wait_ms.map_or(cap, |ms| ms.min(cap));
                let share = self.peers.acquire(d.sender_ip).await;
                (share.map(|s| Box::new(s) as _), &self.network, Some(wait))
            }
            Origin::Local(caller) => {
                let share = self.users.acquire(caller.uid).await;
                (share.map(|s| Box::new(s) as _), &self.local, wait_ms)
            }
        };
        let (Some(share), Ok(permit)) = (share, pool.clone().acquire_owned().await) else {
            return Err(GEN_FAILURE);
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the blocking write is over, even if the caller stopped waiting for it.
            let _held = (permit, share);
            this.write_blocking(&d, wait_ms, &from)
        })
        .await
        .unwrap_or(Err(GEN_FAILURE))
    }

    fn write_blocking(&self, d: &Delivery<'_>, wait_ms: Option<u64>, from: &Origin) -> Outcome {
        let opts = WriteOptions {
            priority: d.priority.min(9),
            class: d.class,
            timeout: wait_ms.map_or(Timeout::Forever, |ms| {
                Timeout::After(Duration::from_millis(ms))
            }),
        };
        // A cached handle whose owner has gone: open again once.
        for attempt in 0..2 {
            let w = self.handle(&d.path, attempt > 0)?;
            let r = match from {
                Origin::Network if !w.accepts_remote() => return Err(ACCESS_DENIED),
                Origin::Network => w.write_from_remote(&d.data, opts, &d.sender_name, d.sender_ip),
                Origin::Local(caller) => w.write_on_behalf(&d.data, opts, caller),
            };
            match r {
                Err(WriteError::OwnerGone) => self.forget(&d.path),
                r => return r.map_err(write_code),
            }
        }
        Err(FILE_NOT_FOUND)
    }

    fn handle(&self, path: &str, fresh: bool) -> Result<Arc<MailslotWriter>, u32> {
        let key = path.to_ascii_lowercase();
        if !fresh {
            let cached = self.lock().get(&key).cloned();
            if let Some(w) = cached {
                return Ok(w);
            }
        }
        let w = MailslotWriter::open_timeout(&format!("\\\\.\\mailslot\\{path}"), OPEN_TIMEOUT)
            .map(Arc::new)
            .map_err(|e| open_code(&e))?;
        let mut handles = self.lock();
        if handles.len() >= CACHED_HANDLES {
            handles.clear();
        }
        handles.insert(key, w.clone());
        Ok(w)
    }

    fn forget(&self, path: &str) {
        self.lock().remove(&path.to_ascii_lowercase());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<MailslotWriter>>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The Win32 number a writer sees when the mailslot cannot be opened.
fn open_code(e: &OpenError) -> u32 {
    match e {
        OpenError::NotFound(_) => FILE_NOT_FOUND,
        OpenError::InvalidName(_) => INVALID_PARAMETER,
        OpenError::AccessDenied(_) | OpenError::OwnerNotAllowed { .. } => ACCESS_DENIED,
        e => e.win32_code(),
    }
}

/// The Win32 number a writer sees for a failed write.
fn write_code(e: WriteError) -> u32 {
    match e {
        WriteError::Open(e) => open_code(&e),
        WriteError::TooLarge { .. } | WriteError::InvalidPriority(_) => INVALID_PARAMETER,
        // A first-class write waited until its timeout (or had none and the slot is full).
        WriteError::Timeout | WriteError::Full => SEM_TIMEOUT,
        e => e.win32_code(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    use mailslot::{Access, Class, Mailslot};

    use super::*;

    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const OTHER_PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    /// How long a write that must be served may take (far more than it needs).
    const SOON: Duration = Duration::from_secs(2);

    fn unique(tag: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            "LOCALWRITERTEST\\{tag}{}X{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn create(path: &str, access: Access) -> Mailslot {
        Mailslot::builder()
            .max_message_size(100)
            .quota(100)
            .access(access)
            .create(&format!("\\\\.\\mailslot\\{path}"))
            .unwrap()
    }

    fn delivery(path: &str, from: Ipv4Addr) -> Delivery<'static> {
        Delivery {
            path: Arc::from(path),
            data: Cow::Owned(vec![7; 100]),
            priority: 0,
            class: Class::First,
            sender_name: Arc::from("PEER"),
            sender_ip: from,
            caller: None,
        }
    }

    fn user(uid: u32) -> Origin {
        Origin::Local(Caller {
            pid: std::process::id(),
            uid,
            gid: uid,
            groups: Vec::new(),
        })
    }

    /// A mailslot whose quota one message fills; never read until `drain`.
    fn full(w: &LocalWriter, access: Access) -> (String, Mailslot) {
        let path = unique("FULL");
        let slot = create(&path, access);
        // It does not wait (the mailslot is empty): fine on the test's runtime thread.
        let filled = w.write_blocking(&delivery(&path, PEER), Some(0), &Origin::Network);
        assert_eq!(filled, Ok(()));
        (path, slot)
    }

    /// Reads `slot` until every write of `stuck` is over; their outcomes.
    async fn drain(slot: Mailslot, stuck: Vec<tokio::task::JoinHandle<Outcome>>) -> Vec<Outcome> {
        let done = Arc::new(AtomicBool::new(false));
        let reader = std::thread::spawn({
            let done = done.clone();
            move || {
                while !done.load(Ordering::Relaxed) {
                    let _ = slot.read_message_timeout(Timeout::After(Duration::from_millis(20)));
                }
            }
        });
        let mut outcomes = Vec::new();
        for h in stuck {
            outcomes.push(h.await.unwrap());
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        outcomes
    }

    /// Starts `n` writes that wait forever for room in the full mailslot `path`.
    fn stuck_writes(
        w: &LocalWriter,
        path: &str,
        n: usize,
        from: impl Fn() -> Origin,
    ) -> Vec<tokio::task::JoinHandle<Outcome>> {
        (0..n)
            .map(|_| {
                let (w, d, from) = (w.clone(), delivery(path, PEER), from());
                tokio::spawn(async move { w.write(d, None, from).await })
            })
            .collect()
    }

    #[tokio::test]
    async fn one_peer_waiting_on_a_full_mailslot_holds_only_its_own_share() {
        if !mailslot::daemon::is_trusted() {
            return;
        }
        // The cap is long: the writes of the busy peer are still waiting when the others are
        // served, and end when the test reads the mailslot.
        let w = LocalWriter {
            remote_wait: Duration::from_secs(60),
            ..LocalWriter::default()
        };
        let (path, slot) = full(&w, Access::Owner);
        // More than the whole network pool, from one address.
        let stuck = stuck_writes(&w, &path, MAX_BLOCKING + PER_PEER_WRITES, || {
            Origin::Network
        });
        tokio::time::sleep(Duration::from_millis(300)).await;

        let free = unique("FREE");
        let _free = create(&free, Access::Owner);
        let other = w.write(delivery(&free, OTHER_PEER), Some(0), Origin::Network);
        let other = tokio::time::timeout(SOON, other).await;
        assert_eq!(other, Ok(Ok(())), "another peer's write is served");
        let free = unique("FREE");
        let _free2 = create(&free, Access::Owner);
        let mine = w.write(delivery(&free, PEER), Some(0), user(0));
        let mine = tokio::time::timeout(SOON, mine).await;
        assert_eq!(mine, Ok(Ok(())), "a local program's write is served");
        assert!(
            stuck.iter().all(|h| !h.is_finished()),
            "the busy peer's writes still wait"
        );

        let outcomes = drain(slot, stuck).await;
        assert!(outcomes.iter().all(|o| *o == Ok(())), "{outcomes:?}");
        assert!(w.peers.lock().is_empty() && w.users.lock().is_empty());
    }

    #[tokio::test]
    async fn one_local_user_waiting_on_a_full_mailslot_holds_only_its_own_share() {
        if !mailslot::daemon::is_trusted() {
            return;
        }
        let w = LocalWriter::default();
        let (path, slot) = full(&w, Access::Everyone);
        let n = MAX_BLOCKING.max(MAX_LOCAL_BLOCKING) + PER_USER_WRITES;
        let stuck = stuck_writes(&w, &path, n, || user(1000));
        tokio::time::sleep(Duration::from_millis(300)).await;

        let free = unique("FREE");
        let _free = create(&free, Access::Everyone);
        let root = w.write(delivery(&free, PEER), Some(0), user(0));
        let root = tokio::time::timeout(SOON, root).await;
        assert_eq!(root, Ok(Ok(())), "another user's write is served");
        let free = unique("FREE");
        let _free2 = create(&free, Access::Everyone);
        let remote = w.write(delivery(&free, OTHER_PEER), Some(0), Origin::Network);
        let remote = tokio::time::timeout(SOON, remote).await;
        assert_eq!(remote, Ok(Ok(())), "a write from the network is served");
        assert!(stuck.iter().all(|h| !h.is_finished()));

        let outcomes = drain(slot, stuck).await;
        assert!(outcomes.iter().all(|o| *o == Ok(())), "{outcomes:?}");
        assert!(w.users.lock().is_empty());
    }

    #[tokio::test]
    async fn a_write_from_the_network_waits_for_room_at_most_the_cap() {
        if !mailslot::daemon::is_trusted() {
            return;
        }
        let cap = Duration::from_millis(300);
        let w = LocalWriter {
            remote_wait: cap,
            ..LocalWriter::default()
        };
        let (path, _slot) = full(&w, Access::Owner);
        // Forever, and the longest a peer can ask for (49 days).
        for wait_ms in [None, Some(u64::from(u32::MAX - 1))] {
            let t = Instant::now();
            let r = w.write(delivery(&path, PEER), wait_ms, Origin::Network);
            let r = tokio::time::timeout(SOON * 2, r).await;
            assert_eq!(r, Ok(Err(SEM_TIMEOUT)), "{wait_ms:?}");
            assert!(
                t.elapsed() >= cap - Duration::from_millis(30),
                "{wait_ms:?}"
            );
        }
        // A local program keeps its own timeout, longer than the cap.
        let t = Instant::now();
        let r = w.write(delivery(&path, PEER), Some(800), user(0)).await;
        assert_eq!(r, Err(SEM_TIMEOUT));
        assert!(
            t.elapsed() >= Duration::from_millis(770),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn a_share_is_forgotten_when_nobody_holds_or_waits_for_it() {
        let shares = Arc::new(Shares::new(2));
        let (a, b) = (
            shares.acquire(PEER).await.unwrap(),
            shares.acquire(PEER).await.unwrap(),
        );
        // A third waits, and gives up.
        let third = tokio::time::timeout(Duration::from_millis(50), shares.acquire(PEER)).await;
        assert!(third.is_err());
        assert_eq!(shares.lock().len(), 1);
        drop(a);
        assert_eq!(shares.lock().len(), 1, "still held");
        drop(b);
        assert!(shares.lock().is_empty());
    }
}
