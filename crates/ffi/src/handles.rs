//! The process-wide handle table and the per-thread last error.
//!
//! Handles are small integers (1..=65534) shared by both APIs: a LAN Manager handle is the
//! number itself, a Win32 `HANDLE` is the number cast to a pointer, so no handle is ever 0
//! (`NULL`) or -1 (`INVALID_HANDLE_VALUE`, `0xFFFF`). Numbers are handed out round-robin, so a
//! closed handle is not reused at once and using it gives `ERROR_INVALID_HANDLE`.
//!
//! The table's lock is taken around `fork` (`pthread_atfork`), so a child never inherits it
//! locked. Entries are reference counted: a call clones the entry out of the table and drops the lock
//! before it blocks, so any thread may use any handle, and a close from another thread only has
//! to remove the entry and raise its `closed` flag (readers notice within [`READ_SLICE`]).

use std::cell::{Cell, UnsafeCell};
use std::collections::{btree_map, BTreeMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use ms::{Mailslot, MailslotWriter, ReadError, Timeout};

/// Lowest handle number.
const FIRST: u16 = 1;
/// Highest handle number (0xFFFF is kept free: it is `(unsigned short)-1`).
const LAST: u16 = 0xFFFE;

/// Longest single wait of a blocking read, so that a close from another thread is noticed.
pub(crate) const READ_SLICE: Duration = Duration::from_millis(100);

/// The owner's side of a mailslot.
pub(crate) struct Owner {
    /// The library handle; dropping it deletes the mailslot.
    pub slot: Mailslot,
    /// `nMaxMessageSize` as given to `CreateMailslot`, reported back unchanged by
    /// `GetMailslotInfo` (`None` for `DosMakeMailslot`).
    pub win32_max: Option<u32>,
}

/// What a handle refers to.
pub(crate) enum Object {
    /// A mailslot this process created (reads only).
    Owner(Owner),
    /// A writer's handle from `MailslotOpen` (writes only).
    Writer(MailslotWriter),
}

/// One open handle.
pub(crate) struct Entry {
    /// The object.
    pub obj: Object,
    /// Set by a close; a read in progress on another thread gives up.
    pub closed: AtomicBool,
    /// The process that opened it: after `fork` the child's copy of an owner handle is dead.
    pub pid: u32,
}

impl Entry {
    /// A new entry for `obj`, opened by this process.
    pub(crate) fn new(obj: Object) -> Self {
        Self {
            obj,
            closed: AtomicBool::new(false),
            pid: std::process::id(),
        }
    }

    /// The owner part, if this is an owner handle usable in this process.
    pub(crate) fn owner(&self) -> Option<&Owner> {
        match &self.obj {
            Object::Owner(o) if self.pid == std::process::id() => Some(o),
            _ => None,
        }
    }
}

struct Table {
    map: BTreeMap<u16, Arc<Entry>>,
    next: u16,
}

/// The table behind a plain `pthread_mutex_t`, so that `pthread_atfork` handlers can take it
/// around `fork` (a `std::sync::Mutex` cannot be unlocked without its guard): a child forked while
/// another thread was inside a call then finds the lock free instead of deadlocking.
struct Global {
    mu: UnsafeCell<libc::pthread_mutex_t>,
    table: UnsafeCell<Table>,
}

// SAFETY: `table` is only reached through `Locked`, which holds `mu`.
unsafe impl Sync for Global {}

static GLOBAL: Global = Global {
    mu: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    table: UnsafeCell::new(Table {
        map: BTreeMap::new(),
        next: FIRST,
    }),
};

static ATFORK: Once = Once::new();

extern "C" fn lock_for_fork() {
    // SAFETY: a statically initialised mutex; never held across a blocking call.
    unsafe { libc::pthread_mutex_lock(GLOBAL.mu.get()) };
}

extern "C" fn unlock_after_fork() {
    // SAFETY: locked by `lock_for_fork` in this thread (the child's copy of it, after fork).
    unsafe { libc::pthread_mutex_unlock(GLOBAL.mu.get()) };
}

/// The locked table; unlocks on drop.
struct Locked(());

impl std::ops::Deref for Locked {
    type Target = Table;
    fn deref(&self) -> &Table {
        // SAFETY: the mutex is held while `self` lives.
        unsafe { &*GLOBAL.table.get() }
    }
}

impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut Table {
        // SAFETY: the mutex is held while `self` lives, and `&mut self` is unique.
        unsafe { &mut *GLOBAL.table.get() }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: locked by `table()` in this thread.
        unsafe { libc::pthread_mutex_unlock(GLOBAL.mu.get()) };
    }
}

fn table() -> Locked {
    ATFORK.call_once(|| {
        // SAFETY: registers plain functions that only lock and unlock the static mutex.
        unsafe {
            libc::pthread_atfork(
                Some(lock_for_fork),
                Some(unlock_after_fork),
                Some(unlock_after_fork),
            )
        };
    });
    // SAFETY: a statically initialised mutex; nothing blocks or forks while it is held.
    unsafe { libc::pthread_mutex_lock(GLOBAL.mu.get()) };
    Locked(())
}

/// Stores `entry`; `None` when all 65534 handle numbers are in use.
pub(crate) fn insert(entry: Entry) -> Option<u16> {
    let entry = Arc::new(entry);
    let mut t = table();
    let span = u32::from(LAST - FIRST) + 1;
    for _ in 0..span {
        let h = t.next;
        t.next = if h >= LAST { FIRST } else { h + 1 };
        if let btree_map::Entry::Vacant(slot) = t.map.entry(h) {
            slot.insert(entry);
            return Some(h);
        }
    }
    None
}

/// The entry for handle `h`, if open.
pub(crate) fn get(h: u16) -> Option<Arc<Entry>> {
    table().map.get(&h).cloned()
}

/// Removes handle `h` if `pred` accepts its entry; returns the entry (`None`: not open, or
/// refused by `pred`, in which case it stays open).
pub(crate) fn remove_if(h: u16, pred: impl FnOnce(&Entry) -> bool) -> Option<Arc<Entry>> {
    let mut t = table();
    if !pred(t.map.get(&h)?) {
        return None;
    }
    t.map.remove(&h)
}

/// Finishes a close: flags the entry so that other threads' reads stop, then drops it.
///
/// In a child process after `fork`, an owner entry is leaked instead: dropping it would delete
/// the mailslot, which still belongs to the parent (its queue and service thread live there).
pub(crate) fn dispose(entry: Arc<Entry>) {
    entry.closed.store(true, Ordering::SeqCst);
    if matches!(entry.obj, Object::Owner(_)) && entry.pid != std::process::id() {
        std::mem::forget(entry);
    }
}

/// Converts a Win32 `HANDLE` value to a table number.
pub(crate) fn from_ptr(h: *mut std::ffi::c_void) -> Option<u16> {
    let v = h as usize;
    if (usize::from(FIRST)..=usize::from(LAST)).contains(&v) {
        Some(v as u16)
    } else {
        None
    }
}

/// Why a read on an owner handle ended without a message.
pub(crate) enum ReadFail {
    /// The library's error.
    Lib(ReadError),
    /// The handle was closed by another thread during the wait.
    Closed,
}

/// Runs `op` (a read with the timeout it is given) until it succeeds, fails with something other
/// than a timeout, `timeout` has passed, or the handle is closed. Waits are cut into slices of at
/// most [`READ_SLICE`] so that a close from another thread is noticed.
pub(crate) fn sliced_read<T>(
    entry: &Entry,
    timeout: Timeout,
    mut op: impl FnMut(Timeout) -> Result<T, ReadError>,
) -> Result<T, ReadFail> {
    let deadline = match timeout {
        Timeout::Forever => None,
        Timeout::After(d) => Some(Instant::now().checked_add(d)),
    };
    loop {
        if entry.closed.load(Ordering::SeqCst) {
            return Err(ReadFail::Closed);
        }
        let slice = match deadline {
            None | Some(None) => READ_SLICE,
            Some(Some(dl)) => dl.saturating_duration_since(Instant::now()).min(READ_SLICE),
        };
        match op(Timeout::After(slice)) {
            Err(ReadError::Timeout) => {
                if let Some(Some(dl)) = deadline {
                    if Instant::now() >= dl {
                        return Err(ReadFail::Lib(ReadError::Timeout));
                    }
                }
            }
            other => return other.map_err(ReadFail::Lib),
        }
    }
}

thread_local! {
    static LAST_ERROR: Cell<u32> = const { Cell::new(0) };
}

/// Sets this thread's last error.
pub(crate) fn set_last_error(code: u32) {
    LAST_ERROR.with(|c| c.set(code));
}

/// This thread's last error.
pub(crate) fn last_error() -> u32 {
    LAST_ERROR.with(Cell::get)
}
