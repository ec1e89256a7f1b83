//! The process-wide handle table and the per-thread last error.
//!
//! Handles are small integers (1..=65534) shared by both APIs: a LAN Manager handle is the
//! number itself, a Win32 `HANDLE` is the number cast to a pointer, so no handle is ever 0
//! (`NULL`) or -1 (`INVALID_HANDLE_VALUE`, `0xFFFF`). Numbers are handed out round-robin, so a
//! closed handle is not reused at once and using it gives `ERROR_INVALID_HANDLE`.
//!
//! An inheritable owner handle (`bInheritHandle`) is numbered after a descriptor without
//! close-on-exec that holds the mailslot, so the same value names it in a child started with
//! `fork` + `exec`: a call there with a number that is not in the table but is such an inherited
//! descriptor takes the mailslot up into the table at that number ([`get`]). After a plain
//! `fork` the child's copy of an inheritable entry is taken up the same way on first use, while
//! other owner handles stay dead there. New numbers skip open descriptors without close-on-exec,
//! so they never hide a handle inherited under that number.
//!
//! The table's lock is taken around `fork` (`pthread_atfork`), so a child never inherits it
//! locked. Entries are reference counted: a call clones the entry out of the table and drops the lock
//! before it blocks, so any thread may use any handle, and a close from another thread only has
//! to remove the entry and raise its `closed` flag (readers notice within [`READ_SLICE`]).

use std::cell::{Cell, UnsafeCell};
use std::collections::{btree_map, BTreeMap};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
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
    /// The library handle; dropping it lets go of the mailslot (which is deleted when no other
    /// holder, in any process, is left), or deletes it for all when [`Owner::delete_on_drop`]
    /// was called.
    pub slot: ManuallyDrop<Mailslot>,
    /// `nMaxMessageSize` as given to `CreateMailslot`, reported back unchanged by
    /// `GetMailslotInfo` (`None` for `DosMakeMailslot` and for handles taken up from another
    /// process).
    pub win32_max: Option<u32>,
    /// Whether child processes inherit the handle (`bInheritHandle`).
    pub inheritable: bool,
    /// The descriptor whose number is the handle's number, when this handle owns it (a
    /// duplicate made to get a free number, or an inherited one); closed with the handle. `None`
    /// for a handle that is not inheritable, or whose number is the library's own inheritable
    /// descriptor.
    pub kept: Option<OwnedFd>,
    /// Set by `DosDeleteMailslot`: the last reference deletes the mailslot for every holder.
    delete: AtomicBool,
}

impl Owner {
    /// A non-inheritable owner of `slot`.
    pub(crate) fn new(slot: Mailslot, win32_max: Option<u32>) -> Self {
        Self {
            slot: ManuallyDrop::new(slot),
            win32_max,
            inheritable: false,
            kept: None,
            delete: AtomicBool::new(false),
        }
    }

    /// Makes the drop of this owner delete the mailslot for every holder instead of only
    /// letting go of it.
    pub(crate) fn delete_on_drop(&self) {
        self.delete.store(true, Ordering::SeqCst);
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // SAFETY: `slot` is never used again: this is the owner's drop.
        let slot = unsafe { ManuallyDrop::take(&mut self.slot) };
        if *self.delete.get_mut() {
            slot.delete();
        } else {
            drop(slot);
        }
    }
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
    /// The process that opened it: after `fork` the child's copy of an owner handle is dead
    /// (an inheritable one is taken up anew on first use).
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

    /// Whether this is the copy of an inheritable owner handle that `fork` left in a child.
    fn inherited_copy(&self) -> bool {
        matches!(&self.obj, Object::Owner(o) if o.inheritable) && self.pid != std::process::id()
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

/// Lowest descriptor number an inherited handle can have (0–2 are the standard streams).
const FIRST_INHERITED: u16 = 3;

/// Whether descriptor `n` is open without close-on-exec, so that it may be an owner handle this
/// process inherited under the number `n`.
fn open_inheritable(n: u16) -> bool {
    if n < FIRST_INHERITED {
        return false;
    }
    // SAFETY: F_GETFD only reads the descriptor's flags (EBADF when it is not open).
    let flags = unsafe { libc::fcntl(RawFd::from(n), libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC == 0
}

/// Stores `entry`; `None` when all 65534 handle numbers are in use.
///
/// Numbers of open descriptors without close-on-exec are skipped: they may be handles this
/// process inherited and has not used yet.
pub(crate) fn insert(entry: Entry) -> Option<u16> {
    let entry = Arc::new(entry);
    let mut t = table();
    let span = u32::from(LAST - FIRST) + 1;
    for _ in 0..span {
        let h = t.next;
        t.next = if h >= LAST { FIRST } else { h + 1 };
        if open_inheritable(h) {
            continue;
        }
        if let btree_map::Entry::Vacant(slot) = t.map.entry(h) {
            slot.insert(entry);
            return Some(h);
        }
    }
    None
}

/// A handle number for `n`, when it is one.
fn handle_number(n: RawFd) -> Option<u16> {
    u16::try_from(n).ok().filter(|h| (FIRST..=LAST).contains(h))
}

/// Stores the inheritable owner `owner` under the number of its descriptor `fd` (from
/// `Mailslot::inheritable`), so that a child started with `fork` + `exec` finds it under the
/// same number. When that number is taken in the table (or is not a handle number), `fd` is
/// duplicated to the lowest number that is free both as a descriptor and in the table; the
/// duplicate becomes the inherited one and `fd` gets close-on-exec, so that children receive
/// the mailslot once. `Err(8)` when no such number is left.
pub(crate) fn insert_inheritable(mut owner: Owner, fd: RawFd) -> Result<u16, u32> {
    owner.inheritable = true;
    let mut t = table();
    if let Some(h) = handle_number(fd) {
        if let btree_map::Entry::Vacant(slot) = t.map.entry(h) {
            slot.insert(Arc::new(Entry::new(Object::Owner(owner))));
            return Ok(h);
        }
    }
    let mut from = RawFd::from(FIRST_INHERITED);
    loop {
        // SAFETY: F_DUPFD makes a new descriptor (without close-on-exec) that we own.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD, from) };
        if d < 0 {
            return Err(crate::codes::ERROR_NOT_ENOUGH_MEMORY);
        }
        // SAFETY: `d` was just made by F_DUPFD and belongs to nobody else.
        let dup = unsafe { OwnedFd::from_raw_fd(d) };
        let Some(h) = handle_number(d) else {
            return Err(crate::codes::ERROR_NOT_ENOUGH_MEMORY);
        };
        if t.map.contains_key(&h) {
            from = d + 1;
            continue;
        }
        // SAFETY: only sets the close-on-exec flag of the library's inheritable descriptor,
        // which stays open; the duplicate is what children inherit.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        owner.kept = Some(dup);
        t.map.insert(h, Arc::new(Entry::new(Object::Owner(owner))));
        return Ok(h);
    }
}

/// The entry for handle `h`, if open, taking up an inherited owner handle first when `h` is
/// one: an inheritable entry copied by `fork` (this is the child), or a number that is not in
/// the table but is an inherited descriptor without close-on-exec that holds a mailslot (this
/// program was started by `exec` from a process that had the handle).
pub(crate) fn get(h: u16) -> Option<Arc<Entry>> {
    let found = table().map.get(&h).cloned();
    match found {
        Some(e) if !e.inherited_copy() => Some(e),
        Some(e) => Some(adopt(h, Some(e.clone())).unwrap_or(e)),
        None if open_inheritable(h) => adopt(h, None),
        None => None,
    }
}

/// Takes up the inherited descriptor `h` as an owner handle numbered `h`, replacing `old` (the
/// copy `fork` left of the parent's entry) or filling a free number. `None` when `h` does not
/// hold a mailslot (or the mailslot was deleted).
fn adopt(h: u16, old: Option<Arc<Entry>>) -> Option<Arc<Entry>> {
    // Taking up may talk to the mailslot's other holders: done without the table's lock.
    let slot = Mailslot::inherited(RawFd::from(h)).ok()?;
    let win32_max = old.as_ref().and_then(|e| match &e.obj {
        Object::Owner(o) => o.win32_max,
        Object::Writer(_) => None,
    });
    let mut t = table();
    let current = t.map.get(&h).cloned();
    let still_same = match (&current, &old) {
        (None, None) => true,
        (Some(c), Some(o)) => Arc::ptr_eq(c, o),
        _ => false,
    };
    if !still_same {
        // Another thread took it up (or closed the copy) meanwhile.
        drop(t);
        drop(slot);
        return current;
    }
    let mut owner = Owner::new(slot, win32_max);
    owner.inheritable = true;
    // SAFETY: descriptor `h` is open (it was just duplicated), and from now on only this entry
    // closes it: a copy left by fork is forgotten below, never dropped.
    owner.kept = Some(unsafe { OwnedFd::from_raw_fd(RawFd::from(h)) });
    let entry = Arc::new(Entry::new(Object::Owner(owner)));
    if let Some(copy) = t.map.insert(h, entry.clone()) {
        // The parent's objects must not be dropped here (see `dispose`).
        std::mem::forget(copy);
    }
    Some(entry)
}

/// Removes handle `h` if `pred` accepts its entry; returns the entry (`None`: not open, or
/// refused by `pred`, in which case it stays open).
///
/// An inherited handle not used yet is taken up first ([`get`]), so that closing it works.
pub(crate) fn remove_if(h: u16, pred: impl FnOnce(&Entry) -> bool) -> Option<Arc<Entry>> {
    drop(get(h));
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    /// A pipe's two ends, both close-on-exec.
    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two new descriptors into `fds`.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both were just made and are owned here.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn clear_cloexec(fd: &OwnedFd) {
        // SAFETY: clears a flag of an owned descriptor.
        assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) }, 0);
    }

    #[test]
    fn only_open_descriptors_without_cloexec_look_inherited() {
        let (r, w) = pipe();
        let n = u16::try_from(r.as_raw_fd()).unwrap();
        assert!(!open_inheritable(n));
        clear_cloexec(&r);
        assert!(open_inheritable(n));
        drop(r);
        assert!(!open_inheritable(n));
        assert!(!open_inheritable(0) && !open_inheritable(1) && !open_inheritable(2));
        drop(w);
    }

    #[test]
    fn handle_numbers_are_in_range() {
        assert_eq!(handle_number(0), None);
        assert_eq!(handle_number(-1), None);
        assert_eq!(handle_number(1), Some(1));
        assert_eq!(handle_number(0xFFFE), Some(0xFFFE));
        assert_eq!(handle_number(0xFFFF), None);
        assert_eq!(handle_number(70_000), None);
    }

    #[test]
    fn an_inherited_descriptor_that_is_no_mailslot_is_left_alone() {
        let (r, w) = pipe();
        clear_cloexec(&r);
        let n = u16::try_from(r.as_raw_fd()).unwrap();
        assert!(get(n).is_none());
        // Still open and still the same pipe.
        // SAFETY: writes one byte from a live buffer to an owned descriptor.
        let wrote = unsafe { libc::write(w.as_raw_fd(), b"z".as_ptr().cast(), 1) };
        let mut b = [0u8; 1];
        // SAFETY: reads one byte into a live buffer from an owned descriptor.
        let read = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        assert_eq!((wrote, read), (1, 1));
        assert_eq!(&b, b"z");
        // A new handle never takes that number while the descriptor is open.
        let mut seen = Vec::new();
        for _ in 0..64 {
            let name = format!(
                r"\\.\mailslot\ffi-unit\skip\{}\{}",
                std::process::id(),
                seen.len()
            );
            let slot = Mailslot::create(&name).unwrap();
            let h = insert(Entry::new(Object::Owner(Owner::new(slot, None)))).unwrap();
            assert_ne!(h, n);
            seen.push(h);
        }
        for h in seen {
            dispose(remove_if(h, |_| true).unwrap());
        }
        drop((r, w));
    }

    #[test]
    fn a_taken_number_moves_the_inheritable_descriptor() {
        let cloexec = |fd: RawFd| {
            // SAFETY: F_GETFD only reads flags.
            let f = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert!(f >= 0, "descriptor {fd} not open");
            f & libc::FD_CLOEXEC != 0
        };
        let name = format!(r"\\.\mailslot\ffi-unit\moved\{}", std::process::id());
        let slot = Mailslot::create(&name).unwrap();
        let lib_fd = slot.inheritable().unwrap();
        assert!(!cloexec(lib_fd));
        // Another handle already has the descriptor's number.
        let n = handle_number(lib_fd).unwrap();
        let writer = MailslotWriter::open(&name).unwrap();
        let taken = Arc::new(Entry::new(Object::Writer(writer)));
        // (Tests run in parallel: another test's handle may have the number already.)
        let ours = match table().map.entry(n) {
            btree_map::Entry::Vacant(v) => {
                v.insert(taken.clone());
                true
            }
            btree_map::Entry::Occupied(_) => false,
        };
        let h = insert_inheritable(Owner::new(slot, None), lib_fd).unwrap();
        assert_ne!(h, n);
        // The duplicate is what children get; the library's descriptor no longer reaches them.
        assert!(!cloexec(RawFd::from(h)));
        assert!(cloexec(lib_fd));
        // The duplicate holds the mailslot: a taken-up copy reads what is written.
        let other = Mailslot::inherited(RawFd::from(h)).unwrap();
        let Object::Writer(w) = &taken.obj else {
            panic!("not the writer")
        };
        w.write(b"moved").unwrap();
        let m = other
            .read_message_timeout(Timeout::After(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(m.data, b"moved");
        if ours {
            dispose(remove_if(n, |e| std::ptr::eq(e, &*taken)).unwrap());
        }
        dispose(remove_if(h, |_| true).unwrap());
        drop(other);
    }
}
