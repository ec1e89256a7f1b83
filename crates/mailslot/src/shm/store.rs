//! The shared store of a mailslot whose owner handle is held by several processes: its queue,
//! the read positions of the writers' rings, the settings, and the lock that serialises the
//! holders. Only holders map it (writers never get its descriptor), so everything in it is
//! written by processes the owner chose; it is still read defensively (every offset and length
//! is checked before use), so that a broken store gives wrong messages, never a crash.
//!
//! # Layout (byte offsets)
//! - Page 0, the header: magic, version, the level capacity, the table's length, the deleted
//!   flag, the generation (bumped when the set of writer connections changes), the epoch (bumped
//!   after every change of the queue or the read positions), the queued totals, the number of
//!   holders asleep in a read (each also holds a shared `flock` on an open file of the store
//!   of its own, so that one killed asleep is found out), the lock (a robust, process-shared `pthread_mutex_t`), the ten
//!   levels' head and tail counters, and the journal header.
//! - Page 1: the settings (limits, access policy, read timeout, the name).
//! - The connection table: one 64-byte entry per writer connection (its socket's and its ring's
//!   inode, and the ring's read position and counts as last taken in).
//! - The journal's entries (one per table entry at most).
//! - Ten levels (priority 0 to 9), each a circular byte buffer of records in FIFO order.
//!
//! # Crash safety
//! A holder may die at any instruction, also while it holds the lock; the next holder to take
//! the lock is told (`EOWNERDEAD`) and repairs the store before it goes on:
//! - Taking in messages writes them past the levels' tails (invisible), then writes the new
//!   tails and the rings' new read positions into the journal, marks it valid, applies it and
//!   clears it. A journal found valid is applied again (it holds absolute values), so a batch
//!   of messages and the read positions that say they were taken in change together: never a
//!   message taken in twice, or lost between a ring and the queue.
//! - Removing the head is one store (the level's head). The totals and each writer's share are
//!   recounted from the levels on repair.
//! - A connection's entry is *accepted* until just before its writer's greeting goes out, then
//!   *greeted*: the repair frees the entries a dead holder left accepted (nobody else would
//!   greet those writers; the park's copies go at the next round, and the writers connect
//!   again).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use super::{Mapping, View, PAGE};
use crate::sys;

const MAGIC: u32 = 0x4d53_5351; // "MSSQ"
const VERSION: u32 = 1;
/// Priority levels.
pub(crate) const LEVELS: usize = 10;

// Header (page 0).
const H_MAGIC: usize = 0;
const H_VERSION: usize = 4;
const H_LEVEL_CAP: usize = 8;
const H_TABLE_LEN: usize = 16;
const H_DELETED: usize = 20;
const H_GENERATION: usize = 24;
const H_EPOCH: usize = 32;
const H_COUNT: usize = 40;
const H_BYTES: usize = 48;
const H_SLEEPERS: usize = 56;
/// Non-zero once a holder counted itself asleep without its sleep mark (see
/// [`Store::others_asleep`]): the count is then never set back.
const H_SLEEPERS_UNMARKED: usize = 60;
const H_READ_TIMEOUT: usize = 64;
const H_MUTEX: usize = 128;
const MUTEX_SPACE: usize = 128;
const H_LEVELS: usize = 256; // LEVELS × (head u64, tail u64)
const H_JOURNAL_VALID: usize = 512;
const H_JOURNAL_N: usize = 516;
const H_JOURNAL_TAILS: usize = 520; // LEVELS × u64

// Settings (page 1).
const C_MAX_MESSAGE: usize = PAGE;
const C_QUOTA: usize = PAGE + 8;
const C_MAX_MESSAGES: usize = PAGE + 16;
const C_SPIN_NS: usize = PAGE + 24;
const C_ACCESS_KIND: usize = PAGE + 32;
const C_ACCESS_GID: usize = PAGE + 36;
const C_OWNER_UID: usize = PAGE + 40;
const C_ACCEPT_REMOTE: usize = PAGE + 44;
const C_NAME_LEN: usize = PAGE + 48;
const C_NAME: usize = PAGE + 64;
/// Longest name kept in the store, in bytes.
const NAME_MAX: usize = PAGE - 64;

// A table entry.
const ENTRY: usize = 64;
const E_IN_USE: usize = 0;
/// `E_IN_USE`: a holder accepted the connection and has not yet greeted the writer.
const ACCEPTED: u32 = 1;
/// `E_IN_USE`: the writer was greeted (or is about to be: see [`Store::greeted`]).
const GREETED: u32 = 2;
const E_CONN_INO: usize = 8;
const E_RING_INO: usize = 16;
const E_HEAD: usize = 24;
const E_BYTES: usize = 32;
const E_COUNT: usize = 40;
const E_QB: usize = 48;
const E_QC: usize = 56;

// A journal entry: table index, then head, bytes, count, queued bytes, queued count.
const JOURNAL: usize = 48;

/// Entries in the connection table: every connection an owner keeps (8192), plus the ones of
/// root and the owner's user, which are exempt from that bound.
pub(crate) const TABLE_LEN: usize = 16384;
/// How long a holder waiting for the holders' lock sleeps before it tries again (see
/// [`Store::lock`]).
const LOCK_LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
/// How often at most a holder checks the count of sleepers against their marks (see
/// [`Store::others_asleep`]), ns.
const SLEEP_CHECK_EVERY_NS: u64 = 100_000_000;

/// Bytes of a record's header in a level: length, priority, class, sender kind, the write
/// stamp, the origin (the writer connection's inode), and 24 bytes of sender.
pub(crate) const REC: usize = 48;
const WRAP: u32 = u32::MAX;
/// Size of the sender block of a record.
pub(crate) const SENDER: usize = 24;

/// Largest value a level's head or tail counter may have (an honest one never gets near it;
/// past it, adding a record could overflow).
const COUNTER_MAX: u64 = u64::MAX / 2;

/// Read timeout "forever" as stored.
pub(crate) const FOREVER: u64 = u64::MAX;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

pub(crate) fn record_size(len: usize) -> u64 {
    (REC + len.next_multiple_of(8)) as u64
}

/// What a batch of messages needs of the levels, in whatever order it is stored: per level,
/// the records' sizes and the largest one (a wrap wastes less than the record that wraps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Need {
    bytes: [u64; LEVELS],
    largest: [u64; LEVELS],
}

impl Need {
    /// Counts one message of `len` bytes at `priority`.
    pub(crate) fn add(&mut self, priority: u8, len: usize) {
        let l = usize::from(priority).min(LEVELS - 1);
        let size = record_size(len);
        self.bytes[l] = self.bytes[l].saturating_add(size);
        self.largest[l] = self.largest[l].max(size);
    }

    /// Both batches together.
    pub(crate) fn with(mut self, other: &Self) -> Self {
        for l in 0..LEVELS {
            self.bytes[l] = self.bytes[l].saturating_add(other.bytes[l]);
            self.largest[l] = self.largest[l].max(other.largest[l]);
        }
        self
    }
}

/// The settings of a mailslot, as every holder needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub max_message_size: u64,
    pub quota: u64,
    pub max_messages: u64,
    /// 0 owner, 1 group (`access_gid`), 2 everyone.
    pub access_kind: u32,
    pub access_gid: u32,
    pub owner_uid: u32,
    pub accept_remote: bool,
    pub spin_ns: u64,
    /// Milliseconds, or [`FOREVER`].
    pub read_timeout_ms: u64,
    pub name: String,
}

/// A ring's read position and its writer's share of the queue, as kept in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RingPos {
    pub head: u64,
    pub bytes: u64,
    pub count: u64,
    /// The writer's messages in the queue: bytes and count.
    pub queued_bytes: u64,
    pub queued_count: u64,
}

/// One live table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub conn_ino: u64,
    pub ring_ino: u64,
    pub pos: RingPos,
}

/// A message to queue.
pub(crate) struct NewRecord<'a> {
    pub priority: u8,
    pub class: u8,
    /// The sender's kind (the caller's numbering) and its block.
    pub kind: u8,
    pub sender: [u8; SENDER],
    pub stamp: u64,
    /// The writer connection's inode (0: none).
    pub origin: u64,
    pub data: &'a [u8],
}

/// The head of the queue (see [`Store::head`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub priority: u8,
    pub class: u8,
    pub kind: u8,
    pub sender: [u8; SENDER],
    pub origin: u64,
    pub len: usize,
    level: usize,
    /// Offset of the data in the store.
    data: usize,
    /// The level's head after this record.
    next: u64,
}

/// The mapped store.
pub(crate) struct Store {
    view: View,
    level_cap: u64,
    levels_off: usize,
    /// Tails of the batch being taken in (see [`stage`](Self::stage)).
    staged: [u64; LEVELS],
    staged_bytes: u64,
    staged_count: u64,
    /// Journal entries written for this batch.
    journal_n: usize,
    /// Where the next free table entry is looked for.
    hint: usize,
    /// This holder's own open file of the store (`None` when it could not be opened): its
    /// shared `flock` marks it asleep (see [`others_asleep`](Self::others_asleep)).
    sleep_mark: Option<OwnedFd>,
    /// When this holder last checked the sleepers' count against their marks (coarse ns).
    sleep_checked: u64,
}

fn table_off() -> usize {
    2 * PAGE
}

fn journal_off() -> usize {
    table_off() + TABLE_LEN * ENTRY
}

fn levels_off() -> usize {
    (journal_off() + TABLE_LEN * JOURNAL).next_multiple_of(PAGE)
}

/// Bytes a level needs: room for the whole quota and the message limit's record headers, twice
/// (writers that write at the same instant may go past the quota together), plus a wrap.
/// What a level holds: twice the quota and the message limit's records, and two largest
/// records; `None` when that does not fit a 64-bit size.
fn level_capacity(s: &Settings) -> Option<u64> {
    let records = s.max_messages.checked_mul(REC as u64)?;
    let largest = (REC as u64).checked_add(s.max_message_size.checked_next_multiple_of(8)?)?;
    s.quota
        .checked_add(records)?
        .checked_add(largest)?
        .checked_mul(2)?
        .checked_next_multiple_of(PAGE as u64)
}

impl Store {
    /// A new store for a mailslot with these settings, each level holding at least `at_least`
    /// bytes of records (see [`record_size`]); returns its descriptor (for holders).
    pub(crate) fn create(s: &Settings, at_least: u64) -> io::Result<(OwnedFd, Self)> {
        if s.name.len() > NAME_MAX {
            return Err(invalid("name too long for a shared mailslot"));
        }
        let too_large = || invalid("quota or message limit too large for a shared mailslot");
        let level_cap = level_capacity(s)
            .ok_or_else(too_large)?
            .max(at_least.next_multiple_of(PAGE as u64));
        let size = (LEVELS as u64)
            .checked_mul(level_cap)
            .and_then(|l| l.checked_add(levels_off() as u64))
            .and_then(|t| usize::try_from(t).ok())
            .ok_or_else(too_large)?;
        let fd = sys::memfd(c"mailslot-store", size)?;
        sys::add_seals(&fd, libc::F_SEAL_SEAL)?;
        let store = Self::map(&fd, size, level_cap)?;
        let v = &store.view;
        v.u64(H_LEVEL_CAP).store(level_cap, SeqCst);
        v.u32(H_TABLE_LEN).store(TABLE_LEN as u32, SeqCst);
        v.u64(H_READ_TIMEOUT).store(s.read_timeout_ms, SeqCst);
        v.u64(C_MAX_MESSAGE).store(s.max_message_size, SeqCst);
        v.u64(C_QUOTA).store(s.quota, SeqCst);
        v.u64(C_MAX_MESSAGES).store(s.max_messages, SeqCst);
        v.u64(C_SPIN_NS).store(s.spin_ns, SeqCst);
        v.u32(C_ACCESS_KIND).store(s.access_kind, SeqCst);
        v.u32(C_ACCESS_GID).store(s.access_gid, SeqCst);
        v.u32(C_OWNER_UID).store(s.owner_uid, SeqCst);
        v.u32(C_ACCEPT_REMOTE)
            .store(u32::from(s.accept_remote), SeqCst);
        v.u32(C_NAME_LEN).store(s.name.len() as u32, SeqCst);
        v.write(C_NAME, s.name.as_bytes());
        store.init_mutex()?;
        v.u32(H_VERSION).store(VERSION, SeqCst);
        v.u32(H_MAGIC).store(MAGIC, SeqCst);
        Ok((fd, store))
    }

    /// Maps a store received from another holder and reads its settings.
    pub(crate) fn attach(fd: &OwnedFd) -> io::Result<(Self, Settings)> {
        if sys::fs_magic(fd)? != sys::TMPFS_MAGIC {
            return Err(invalid("not a mailslot store"));
        }
        let size = sys::file_size(fd.as_raw_fd())? as usize;
        if size < levels_off() {
            return Err(invalid("not a mailslot store"));
        }
        let probe = Self::map(fd, levels_off(), 0)?;
        let v = &probe.view;
        if v.u32(H_MAGIC).load(SeqCst) != MAGIC || v.u32(H_VERSION).load(SeqCst) != VERSION {
            return Err(invalid("not a mailslot store"));
        }
        let level_cap = v.u64(H_LEVEL_CAP).load(SeqCst);
        if level_cap < PAGE as u64
            || level_cap % PAGE as u64 != 0
            || v.u32(H_TABLE_LEN).load(SeqCst) as usize != TABLE_LEN
            || Some(size as u64)
                != (LEVELS as u64)
                    .checked_mul(level_cap)
                    .and_then(|l| l.checked_add(levels_off() as u64))
        {
            return Err(invalid("mailslot store of the wrong size"));
        }
        let name_len = (v.u32(C_NAME_LEN).load(SeqCst) as usize).min(NAME_MAX);
        let mut name = vec![0u8; name_len];
        v.read(C_NAME, &mut name);
        let settings = Settings {
            max_message_size: v.u64(C_MAX_MESSAGE).load(SeqCst),
            quota: v.u64(C_QUOTA).load(SeqCst),
            max_messages: v.u64(C_MAX_MESSAGES).load(SeqCst),
            access_kind: v.u32(C_ACCESS_KIND).load(SeqCst),
            access_gid: v.u32(C_ACCESS_GID).load(SeqCst),
            owner_uid: v.u32(C_OWNER_UID).load(SeqCst),
            accept_remote: v.u32(C_ACCEPT_REMOTE).load(SeqCst) != 0,
            spin_ns: v.u64(C_SPIN_NS).load(SeqCst),
            read_timeout_ms: v.u64(H_READ_TIMEOUT).load(SeqCst),
            name: String::from_utf8(name).map_err(|_| invalid("bad name in mailslot store"))?,
        };
        drop(probe);
        Ok((Self::map(fd, size, level_cap)?, settings))
    }

    fn map(fd: &OwnedFd, size: usize, level_cap: u64) -> io::Result<Self> {
        Ok(Self {
            view: View {
                map: Mapping::new(fd, size)?,
            },
            level_cap,
            levels_off: levels_off(),
            staged: [0; LEVELS],
            staged_bytes: 0,
            staged_count: 0,
            journal_n: 0,
            hint: 0,
            sleep_mark: sys::reopen_read_write(fd).ok(),
            sleep_checked: 0,
        })
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        const _: () = assert!(size_of::<libc::pthread_mutex_t>() <= MUTEX_SPACE);
        self.view.ptr(H_MUTEX, MUTEX_SPACE).cast()
    }

    fn init_mutex(&self) -> io::Result<()> {
        // SAFETY: the attribute object is initialised before use and destroyed after; the mutex
        // lies in the mapping (aligned: the mapping is page-aligned and H_MUTEX a multiple of
        // 64), which no other process has yet.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            let mut r = libc::pthread_mutexattr_init(&mut attr);
            if r == 0 {
                r = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            }
            if r == 0 {
                r = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            if r == 0 {
                r = libc::pthread_mutex_init(self.mutex(), &attr);
            }
            libc::pthread_mutexattr_destroy(&mut attr);
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
        }
        Ok(())
    }

    /// Takes the holders' lock. When its last owner died holding it, repairs the store first
    /// (see the module notes) and says so (`true`).
    ///
    /// A waiter never sleeps longer than [`LOCK_LOOK_EVERY`] before it tries again: a holder
    /// that the kernel woke to take the lock and that is killed before it took it passes the
    /// wake-up on only if the lock is still free at that moment; when a third holder took it
    /// in between, the other sleepers are not woken when that one lets go (seen: a holder
    /// asleep here for ten minutes while another read on and holders were killed).
    pub(crate) fn lock(&mut self) -> io::Result<bool> {
        loop {
            let until = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                + LOCK_LOOK_EVERY;
            let until = libc::timespec {
                tv_sec: until.as_secs() as libc::time_t,
                tv_nsec: until.subsec_nanos() as libc::c_long,
            };
            // SAFETY: the mutex was initialised by the store's creator as process-shared and
            // robust; `until` is a valid timespec.
            let r = unsafe { libc::pthread_mutex_timedlock(self.mutex(), &until) };
            if r == libc::ETIMEDOUT {
                continue;
            }
            return self.taken(r);
        }
    }

    /// Takes the holders' lock if nobody holds it: `None` when somebody does, else as
    /// [`lock`](Self::lock). For the service thread, which serves the process's other
    /// mailslots too and must not wait on a holder that is stopped with the lock.
    pub(crate) fn try_lock(&mut self) -> io::Result<Option<bool>> {
        // SAFETY: as in `lock`.
        let r = unsafe { libc::pthread_mutex_trylock(self.mutex()) };
        if r == libc::EBUSY {
            return Ok(None);
        }
        self.taken(r).map(Some)
    }

    /// The outcome of an attempt to take the lock that did not time out or find it busy.
    fn taken(&mut self, r: libc::c_int) -> io::Result<bool> {
        match r {
            0 => Ok(false),
            libc::EOWNERDEAD => {
                self.repair();
                // SAFETY: we hold the mutex (EOWNERDEAD means it was acquired).
                unsafe { libc::pthread_mutex_consistent(self.mutex()) };
                Ok(true)
            }
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Lets go of the holders' lock.
    pub(crate) fn unlock(&self) {
        // SAFETY: called only by the thread that holds it (see `Guard` in `slot`).
        unsafe { libc::pthread_mutex_unlock(self.mutex()) };
    }

    /// Bumped whenever the set of writer connections changes.
    pub(crate) fn generation(&self) -> u64 {
        self.view.u64(H_GENERATION).load(SeqCst)
    }

    /// See [`generation`](Self::generation).
    pub(crate) fn bump_generation(&self) {
        self.view.u64(H_GENERATION).fetch_add(1, SeqCst);
    }

    /// Bumped whenever the queue or a ring's read position changes.
    pub(crate) fn epoch(&self) -> u64 {
        self.view.u64(H_EPOCH).load(SeqCst)
    }

    fn bump_epoch(&self) {
        self.view.u64(H_EPOCH).fetch_add(1, SeqCst);
    }

    /// Whether a holder deleted the mailslot.
    pub(crate) fn is_deleted(&self) -> bool {
        self.view.u32(H_DELETED).load(SeqCst) != 0
    }

    /// Marks the mailslot deleted for every holder.
    pub(crate) fn set_deleted(&self) {
        self.view.u32(H_DELETED).store(1, SeqCst);
    }

    /// Holders asleep in a read (they want a doorbell when messages arrive).
    pub(crate) fn sleepers(&self) -> u32 {
        self.view.u32(H_SLEEPERS).load(SeqCst)
    }

    /// One more (`true`) or one fewer holder asleep: this one (the caller holds the holders'
    /// lock). A holder asleep also holds a shared `flock` on its own open file of the store,
    /// which the kernel lets go when the holder dies.
    pub(crate) fn set_sleeping(&self, on: bool) {
        let w = self.view.u32(H_SLEEPERS);
        if on {
            let marked = self
                .sleep_mark
                .as_ref()
                .is_some_and(|m| sys::flock(m, sys::Flock::Shared).is_ok());
            if !marked {
                self.view.u32(H_SLEEPERS_UNMARKED).store(1, SeqCst);
            }
            w.fetch_add(1, SeqCst);
        } else {
            let _ = w.fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
            if let Some(m) = &self.sleep_mark {
                let _ = sys::flock(m, sys::Flock::Unlock);
            }
        }
    }

    /// Closes this holder's open file of the store, as its death would (tests).
    #[cfg(test)]
    pub(crate) fn drop_sleep_mark(&mut self) {
        self.sleep_mark = None;
    }

    /// Whether a holder other than this one (asleep or not, `me_asleep`) is asleep and wants
    /// the doorbell; the caller holds the holders' lock. A holder killed while asleep leaves
    /// its count behind for ever, and every holder would ring the doorbell (waking every
    /// holder) each time it queues messages: so, at most every [`SLEEP_CHECK_EVERY_NS`]
    /// (`now` is coarse ns), the count is checked against the sleepers' marks, and set back
    /// to this holder's own when no other holder has one (this one's open file can then be
    /// locked exclusively). Never set back once a holder slept without a mark.
    pub(crate) fn others_asleep(&mut self, me_asleep: bool, now: u64) -> bool {
        let mine = u32::from(me_asleep);
        if self.sleepers() <= mine {
            return false;
        }
        let Some(mark) = self.sleep_mark.as_ref() else {
            return true;
        };
        if now.saturating_sub(self.sleep_checked) < SLEEP_CHECK_EVERY_NS
            || self.view.u32(H_SLEEPERS_UNMARKED).load(SeqCst) != 0
        {
            return true;
        }
        self.sleep_checked = now;
        let alone = sys::flock(mark, sys::Flock::Exclusive).is_ok();
        // This holder's own mark as it was (a conversion is not atomic: one that failed may
        // have let go of the shared lock).
        let back = if me_asleep {
            sys::Flock::Shared
        } else {
            sys::Flock::Unlock
        };
        if sys::flock(mark, back).is_err() {
            self.view.u32(H_SLEEPERS_UNMARKED).store(1, SeqCst);
            return true;
        }
        if alone {
            self.view.u32(H_SLEEPERS).store(mine, SeqCst);
        }
        !alone
    }

    /// The read timeout shared by all holders, ms or [`FOREVER`].
    pub(crate) fn read_timeout(&self) -> u64 {
        self.view.u64(H_READ_TIMEOUT).load(SeqCst)
    }

    /// See [`read_timeout`](Self::read_timeout).
    pub(crate) fn set_read_timeout(&self, ms: u64) {
        self.view.u64(H_READ_TIMEOUT).store(ms, SeqCst);
    }

    // ---- the connection table ----

    fn entry_off(idx: usize) -> usize {
        table_off() + idx * ENTRY
    }

    /// A free table entry for a writer connection, marked in use; `None` when full. `greeted`:
    /// the writer was greeted already (a connection of a slot that becomes shared), else it is
    /// marked with [`greeted`](Self::greeted) just before its greeting goes out.
    pub(crate) fn alloc(&mut self, conn_ino: u64, ring_ino: u64, greeted: bool) -> Option<u32> {
        for i in 0..TABLE_LEN {
            let idx = (self.hint + i) % TABLE_LEN;
            let off = Self::entry_off(idx);
            if self.view.u32(off + E_IN_USE).load(Relaxed) == 0 {
                let v = &self.view;
                v.u64(off + E_CONN_INO).store(conn_ino, Relaxed);
                v.u64(off + E_RING_INO).store(ring_ino, Relaxed);
                for f in [E_HEAD, E_BYTES, E_COUNT, E_QB, E_QC] {
                    v.u64(off + f).store(0, Relaxed);
                }
                let state = if greeted { GREETED } else { ACCEPTED };
                v.u32(off + E_IN_USE).store(state, SeqCst);
                self.hint = idx + 1;
                return Some(idx as u32);
            }
        }
        None
    }

    /// Marks the entry's writer greeted: from now on it may write. Marked just before the
    /// greeting is sent, so that an entry a dead holder left [`ACCEPTED`] is one whose writer
    /// was never greeted (repair frees it: see [`repair`](Self::repair)). A holder killed after
    /// the mark and before its `sendmsg` leaves the writer unanswered on that connection: the
    /// writer's open connects again beside it when no greeting comes (see the transport's
    /// `Connection::handshake`), and closes it once greeted on another, so the holders let it
    /// go. The caller has the greeting ready before it marks, so that the window is only the
    /// call itself.
    pub(crate) fn greeted(&self, idx: u32) {
        if (idx as usize) < TABLE_LEN {
            self.view
                .u32(Self::entry_off(idx as usize) + E_IN_USE)
                .store(GREETED, SeqCst);
        }
    }

    /// Frees a table entry (the connection is gone).
    pub(crate) fn free(&self, idx: u32) {
        if (idx as usize) < TABLE_LEN {
            self.view
                .u32(Self::entry_off(idx as usize) + E_IN_USE)
                .store(0, SeqCst);
        }
    }

    /// The live entry `idx`.
    pub(crate) fn entry(&self, idx: u32) -> Option<Entry> {
        let idx = idx as usize;
        if idx >= TABLE_LEN {
            return None;
        }
        let off = Self::entry_off(idx);
        let v = &self.view;
        (v.u32(off + E_IN_USE).load(SeqCst) != 0).then(|| Entry {
            conn_ino: v.u64(off + E_CONN_INO).load(Relaxed),
            ring_ino: v.u64(off + E_RING_INO).load(Relaxed),
            pos: RingPos {
                head: v.u64(off + E_HEAD).load(Relaxed),
                bytes: v.u64(off + E_BYTES).load(Relaxed),
                count: v.u64(off + E_COUNT).load(Relaxed),
                queued_bytes: v.u64(off + E_QB).load(Relaxed),
                queued_count: v.u64(off + E_QC).load(Relaxed),
            },
        })
    }

    /// Every live entry, with its index.
    pub(crate) fn entries(&self) -> Vec<(u32, Entry)> {
        (0..TABLE_LEN as u32)
            .filter_map(|i| self.entry(i).map(|e| (i, e)))
            .collect()
    }

    fn write_pos(&self, idx: usize, p: &RingPos) {
        let off = Self::entry_off(idx);
        let v = &self.view;
        v.u64(off + E_HEAD).store(p.head, Relaxed);
        v.u64(off + E_BYTES).store(p.bytes, Relaxed);
        v.u64(off + E_COUNT).store(p.count, Relaxed);
        v.u64(off + E_QB).store(p.queued_bytes, Relaxed);
        v.u64(off + E_QC).store(p.queued_count, Relaxed);
    }

    /// Sets a writer's share of the queue (after a read removed one of its messages).
    pub(crate) fn set_share(&self, idx: u32, queued_bytes: u64, queued_count: u64) {
        if (idx as usize) < TABLE_LEN {
            let off = Self::entry_off(idx as usize);
            self.view.u64(off + E_QB).store(queued_bytes, Relaxed);
            self.view.u64(off + E_QC).store(queued_count, Relaxed);
        }
    }

    // ---- the queue ----

    fn level(&self, l: usize) -> (u64, u64) {
        let off = H_LEVELS + l * 16;
        (
            self.view.u64(off).load(Relaxed),
            self.view.u64(off + 8).load(Relaxed),
        )
    }

    fn level_base(&self, l: usize) -> usize {
        self.levels_off + l * self.level_cap as usize
    }

    /// Messages queued.
    pub(crate) fn count(&self) -> u64 {
        self.view.u64(H_COUNT).load(Relaxed)
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> u64 {
        self.view.u64(H_BYTES).load(Relaxed)
    }

    /// Starts a batch: messages staged with [`stage`](Self::stage) and read positions with
    /// [`stage_ring`](Self::stage_ring) become visible together at [`commit`](Self::commit).
    pub(crate) fn begin(&mut self) {
        for l in 0..LEVELS {
            self.staged[l] = self.level(l).1;
        }
        self.staged_bytes = 0;
        self.staged_count = 0;
        self.journal_n = 0;
    }

    /// Writes a message past its level's tail; false when the level has no room (the message
    /// stays where it was: the caller leaves it in the writer's ring).
    pub(crate) fn stage(&mut self, r: &NewRecord<'_>) -> bool {
        let l = usize::from(r.priority).min(LEVELS - 1);
        let (head, _) = self.level(l);
        let cap = self.level_cap;
        let size = record_size(r.data.len());
        let mut tail = self.staged[l];
        let pos = tail % cap;
        let to_end = cap - pos;
        let need = if size <= to_end { size } else { to_end + size };
        if tail < head
            || tail - head > cap
            || tail - head + need > cap
            || (head | tail) & 7 != 0
            || tail > COUNTER_MAX
        {
            return false;
        }
        let base = self.level_base(l);
        if size > to_end {
            self.view.write(base + pos as usize, &WRAP.to_le_bytes());
            tail += to_end;
        }
        let at = base + (tail % cap) as usize;
        let mut hdr = [0u8; REC];
        hdr[..4].copy_from_slice(&(r.data.len() as u32).to_le_bytes());
        hdr[4] = r.priority;
        hdr[5] = r.class;
        hdr[6] = r.kind;
        hdr[8..16].copy_from_slice(&r.stamp.to_le_bytes());
        hdr[16..24].copy_from_slice(&r.origin.to_le_bytes());
        hdr[24..].copy_from_slice(&r.sender);
        self.view.write(at, &hdr);
        self.view.write(at + REC, r.data);
        self.staged[l] = tail + size;
        self.staged_bytes += r.data.len() as u64;
        self.staged_count += 1;
        true
    }

    /// Whether a batch that needs `need` is sure to fit in the levels now, in any order
    /// ([`stage`](Self::stage) may find room for a little more).
    pub(crate) fn fits(&self, need: &Need) -> bool {
        (0..LEVELS).all(|l| {
            let (head, tail) = self.level(l);
            need.bytes[l] == 0
                || (tail >= head
                    && (tail - head)
                        .saturating_add(need.bytes[l])
                        .saturating_add(need.largest[l])
                        <= self.level_cap)
        })
    }

    /// Records a ring's new read position for this batch.
    pub(crate) fn stage_ring(&mut self, idx: u32, p: &RingPos) {
        if idx as usize >= TABLE_LEN || self.journal_n >= TABLE_LEN {
            return;
        }
        let off = journal_off() + self.journal_n * JOURNAL;
        let v = &self.view;
        v.u64(off).store(u64::from(idx), Relaxed);
        v.u64(off + 8).store(p.head, Relaxed);
        v.u64(off + 16).store(p.bytes, Relaxed);
        v.u64(off + 24).store(p.count, Relaxed);
        v.u64(off + 32).store(p.queued_bytes, Relaxed);
        v.u64(off + 40).store(p.queued_count, Relaxed);
        self.journal_n += 1;
    }

    /// Makes the batch visible: the journal first, then the levels' tails and the positions.
    pub(crate) fn commit(&mut self) {
        if self.journal_n == 0 && self.staged_count == 0 {
            return;
        }
        let v = &self.view;
        for l in 0..LEVELS {
            v.u64(H_JOURNAL_TAILS + l * 8)
                .store(self.staged[l], Relaxed);
        }
        v.u32(H_JOURNAL_N).store(self.journal_n as u32, Relaxed);
        v.u32(H_JOURNAL_VALID).store(1, SeqCst);
        self.apply_journal();
        v.u64(H_COUNT).fetch_add(self.staged_count, Relaxed);
        v.u64(H_BYTES).fetch_add(self.staged_bytes, Relaxed);
        v.u32(H_JOURNAL_VALID).store(0, SeqCst);
        self.staged_count = 0;
        self.staged_bytes = 0;
        self.journal_n = 0;
        self.bump_epoch();
    }

    fn apply_journal(&self) {
        let v = &self.view;
        for l in 0..LEVELS {
            let t = v.u64(H_JOURNAL_TAILS + l * 8).load(Relaxed);
            v.u64(H_LEVELS + l * 16 + 8).store(t, Relaxed);
        }
        let n = (v.u32(H_JOURNAL_N).load(Relaxed) as usize).min(TABLE_LEN);
        for j in 0..n {
            let off = journal_off() + j * JOURNAL;
            let idx = v.u64(off).load(Relaxed) as usize;
            if idx < TABLE_LEN {
                self.write_pos(
                    idx,
                    &RingPos {
                        head: v.u64(off + 8).load(Relaxed),
                        bytes: v.u64(off + 16).load(Relaxed),
                        count: v.u64(off + 24).load(Relaxed),
                        queued_bytes: v.u64(off + 32).load(Relaxed),
                        queued_count: v.u64(off + 40).load(Relaxed),
                    },
                );
            }
        }
    }

    /// Parses the record at `head` of level `l` (skipping a wrap mark); `None` when the level is
    /// empty or the record does not make sense (then the level is cut there).
    fn record_at(&self, l: usize, head: u64, tail: u64) -> Option<Head> {
        let cap = self.level_cap;
        if head >= tail || tail - head > cap || (head | tail) & 7 != 0 {
            return None;
        }
        let base = self.level_base(l);
        let mut h = head;
        let mut len_b = [0u8; 4];
        self.view.read(base + (h % cap) as usize, &mut len_b);
        if u32::from_le_bytes(len_b) == WRAP {
            h += cap - h % cap;
            if h >= tail {
                return None;
            }
        }
        let pos = (h % cap) as usize;
        if cap as usize - pos < REC {
            return None;
        }
        let mut hdr = [0u8; REC];
        self.view.read(base + pos, &mut hdr);
        let len = u32::from_le_bytes(hdr[..4].try_into().unwrap_or_default()) as usize;
        let size = record_size(len);
        if size > cap - pos as u64 || h + size > tail {
            return None;
        }
        let mut sender = [0u8; SENDER];
        sender.copy_from_slice(&hdr[24..]);
        Some(Head {
            priority: hdr[4],
            class: hdr[5],
            kind: hdr[6],
            sender,
            origin: u64::from_le_bytes(hdr[16..24].try_into().unwrap_or_default()),
            len,
            level: l,
            data: base + pos + REC,
            next: h + size,
        })
    }

    /// The next message to read: the oldest of the highest priority.
    pub(crate) fn head(&self) -> Option<Head> {
        (0..LEVELS).rev().find_map(|l| {
            let (head, tail) = self.level(l);
            self.record_at(l, head, tail)
        })
    }

    /// Copies the head's data into `out` (which has room for `head.len` bytes).
    pub(crate) fn read_data(&self, head: &Head, out: &mut [u8]) {
        let n = head.len.min(out.len());
        self.view.read(head.data, &mut out[..n]);
    }

    /// Removes `head` (as returned by [`head`](Self::head), nothing changed since).
    pub(crate) fn pop(&self, head: &Head) {
        let v = &self.view;
        v.u64(H_LEVELS + head.level * 16).store(head.next, SeqCst);
        let _ = v
            .u64(H_COUNT)
            .fetch_update(Relaxed, Relaxed, |c| Some(c.saturating_sub(1)));
        let _ = v.u64(H_BYTES).fetch_update(Relaxed, Relaxed, |b| {
            Some(b.saturating_sub(head.len as u64))
        });
        self.bump_epoch();
    }

    /// Discards every message.
    pub(crate) fn clear(&self) {
        let v = &self.view;
        for l in 0..LEVELS {
            let (_, tail) = self.level(l);
            v.u64(H_LEVELS + l * 16).store(tail, SeqCst);
        }
        v.u64(H_COUNT).store(0, Relaxed);
        v.u64(H_BYTES).store(0, Relaxed);
        for (idx, _) in self.entries() {
            self.set_share(idx, 0, 0);
        }
        self.bump_epoch();
    }

    /// Writes `bytes` over the levels' head and tail words, the start of every level, the
    /// journal and the first table entries, as a broken holder may (for the fuzz targets).
    /// What an earlier call wrote is zeroed first, so each call starts from an empty store.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fill_for_fuzzing(&self, bytes: &[u8]) {
        let v = &self.view;
        let zero = [0u8; PAGE];
        v.write(H_COUNT, &zero[..H_MUTEX - H_COUNT]);
        v.write(H_LEVELS, &zero[..PAGE - H_LEVELS]);
        v.write(journal_off(), &zero[..512]);
        v.write(table_off(), &zero[..512]);
        let mut chunks = bytes.chunks(LEVELS * 16);
        if let Some(c) = chunks.next() {
            v.write(H_LEVELS, c);
        }
        if let Some(c) = chunks.next() {
            for l in 0..LEVELS {
                v.write(self.level_base(l), c);
            }
        }
        if let Some(c) = chunks.next() {
            v.write(H_JOURNAL_VALID, &c[..c.len().min(PAGE - H_JOURNAL_VALID)]);
        }
        if let Some(c) = chunks.next() {
            v.write(journal_off(), c);
        }
        if let Some(c) = chunks.next() {
            v.write(table_off(), c);
        }
    }

    /// What every holder does with a store: repairs it, reads and removes every message, looks
    /// at the table (for the fuzz targets).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn exercise_for_fuzzing(&mut self) {
        self.repair();
        let _ = self.entries();
        self.sleep_checked = 0;
        let _ = self.others_asleep(false, SLEEP_CHECK_EVERY_NS);
        let mut out = vec![0u8; 4096];
        for _ in 0..10_000 {
            let Some(h) = self.head() else {
                break;
            };
            assert!(h.len <= self.level_cap as usize);
            self.read_data(&h, &mut out);
            self.pop(&h);
        }
        self.begin();
        let _ = self.stage(&NewRecord {
            priority: 9,
            class: 2,
            kind: 0,
            sender: [0; SENDER],
            stamp: 0,
            origin: 0,
            data: b"after",
        });
        self.commit();
        assert!(self.head().is_some());
    }

    /// Puts the store right after a holder died holding the lock: finishes a batch it had
    /// marked complete, drops one it had not, and recounts the totals and each writer's share
    /// from the levels (a level is cut at the first record that does not make sense).
    fn repair(&mut self) {
        let v = &self.view;
        if v.u32(H_JOURNAL_VALID).load(SeqCst) != 0 {
            self.apply_journal();
            v.u32(H_JOURNAL_VALID).store(0, SeqCst);
        }
        // A connection the dead holder accepted (and parked) and whose writer it never
        // greeted: the writer still waits for its greeting, which nobody else would send. Its
        // entry goes, so the holders' next round of the park drops the park's copy, the last
        // one: the writer sees its connection closed before any greeting and connects again.
        for i in 0..TABLE_LEN {
            if v.u32(Self::entry_off(i) + E_IN_USE).load(SeqCst) == ACCEPTED {
                self.free(i as u32);
            }
        }
        let entries = self.entries();
        let mut shares: Vec<(u64, u64)> = vec![(0, 0); entries.len()];
        let (mut count, mut bytes) = (0u64, 0u64);
        for l in 0..LEVELS {
            let (mut head, tail) = self.level(l);
            if tail < head
                || tail - head > self.level_cap
                || (head | tail) & 7 != 0
                || tail > COUNTER_MAX
            {
                // Nothing in it can be trusted: empty it.
                let t = if tail > COUNTER_MAX { 0 } else { tail & !7 };
                v.u64(H_LEVELS + l * 16).store(t, SeqCst);
                v.u64(H_LEVELS + l * 16 + 8).store(t, SeqCst);
                continue;
            }
            while head < tail {
                match self.record_at(l, head, tail) {
                    Some(r) => {
                        count += 1;
                        bytes += r.len as u64;
                        if let Some(i) = entries.iter().position(|(_, e)| e.conn_ino == r.origin) {
                            shares[i].0 += r.len as u64;
                            shares[i].1 += 1;
                        }
                        head = r.next;
                    }
                    None => {
                        v.u64(H_LEVELS + l * 16 + 8).store(head, SeqCst);
                        break;
                    }
                }
            }
        }
        v.u64(H_COUNT).store(count, Relaxed);
        v.u64(H_BYTES).store(bytes, Relaxed);
        for ((idx, _), (b, c)) in entries.iter().zip(shares) {
            self.set_share(*idx, b, c);
        }
        self.bump_epoch();
        // The dead holder may have parked a connection without telling the others: they go
        // round the park again.
        self.bump_generation();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            max_message_size: 1000,
            quota: 4000,
            max_messages: 100,
            access_kind: 2,
            access_gid: 0,
            owner_uid: 1,
            accept_remote: true,
            spin_ns: 20_000,
            read_timeout_ms: FOREVER,
            name: r"\\.\mailslot\t".into(),
        }
    }

    fn rec(priority: u8, data: &[u8], origin: u64) -> NewRecord<'_> {
        NewRecord {
            priority,
            class: 2,
            kind: 0,
            sender: [7; SENDER],
            stamp: 0,
            origin,
            data,
        }
    }

    fn pop_all(s: &Store) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(h) = s.head() {
            let mut b = vec![0u8; h.len];
            s.read_data(&h, &mut b);
            s.pop(&h);
            out.push((h.priority, b));
        }
        out
    }

    #[test]
    fn settings_round_trip_and_foreign_memfds_are_refused() {
        let (fd, _s) = Store::create(&settings(), 0).unwrap();
        let (_t, got) = Store::attach(&fd).unwrap();
        assert_eq!(got, settings());
        let other = sys::memfd(c"x", 3 * PAGE).unwrap();
        assert!(Store::attach(&other).is_err());
    }

    #[test]
    fn priority_then_fifo_with_wrap_and_a_shared_view() {
        let (fd, mut s) = Store::create(&settings(), 0).unwrap();
        let (other, _) = Store::attach(&fd).unwrap();
        for round in 0..200u32 {
            s.begin();
            let a = round.to_le_bytes();
            assert!(s.stage(&rec(1, &a, 0)));
            assert!(s.stage(&rec(9, &[0xAA; 900], 0)));
            // Not visible before the commit.
            assert_eq!(other.count(), if round == 0 { 0 } else { other.count() });
            s.commit();
            let got = pop_all(&other);
            assert_eq!(got.len(), 2);
            assert_eq!(got[0], (9, vec![0xAA; 900]));
            assert_eq!(got[1], (1, a.to_vec()));
        }
        assert_eq!((s.count(), s.bytes()), (0, 0));
    }

    #[test]
    fn a_full_level_refuses_and_the_journal_moves_positions_with_messages() {
        let (_fd, mut s) = Store::create(&settings(), 0).unwrap();
        let idx = s.alloc(11, 12, true).unwrap();
        s.begin();
        let mut n = 0;
        while s.stage(&rec(5, &[1; 1000], 11)) {
            n += 1;
        }
        assert!(n > 4, "room for more than the quota ({n})");
        let pos = RingPos {
            head: 5000,
            bytes: 1000 * n,
            count: n,
            queued_bytes: 1000 * n,
            queued_count: n,
        };
        s.stage_ring(idx, &pos);
        s.commit();
        assert_eq!(s.entry(idx).unwrap().pos, pos);
        assert_eq!(s.count(), n);
        // A repair recounts the same.
        s.repair();
        assert_eq!(s.count(), n);
        assert_eq!(s.entry(idx).unwrap().pos.queued_count, n);
    }

    #[test]
    fn a_batch_cut_short_by_a_death_is_all_or_nothing() {
        let (_fd, mut s) = Store::create(&settings(), 0).unwrap();
        let idx = s.alloc(1, 2, true).unwrap();
        // Staged, never committed (the holder died before its journal was valid).
        s.begin();
        assert!(s.stage(&rec(3, b"lost", 1)));
        s.stage_ring(
            idx,
            &RingPos {
                head: 64,
                ..RingPos::default()
            },
        );
        s.repair();
        assert_eq!(s.count(), 0);
        assert_eq!(s.entry(idx).unwrap().pos.head, 0);
        // Journal valid, not applied (died in between): the repair applies it.
        s.begin();
        assert!(s.stage(&rec(3, b"kept", 1)));
        s.stage_ring(
            idx,
            &RingPos {
                head: 64,
                bytes: 4,
                count: 1,
                queued_bytes: 4,
                queued_count: 1,
            },
        );
        let v = &s.view;
        for l in 0..LEVELS {
            v.u64(H_JOURNAL_TAILS + l * 8).store(s.staged[l], Relaxed);
        }
        v.u32(H_JOURNAL_N).store(s.journal_n as u32, Relaxed);
        v.u32(H_JOURNAL_VALID).store(1, SeqCst);
        s.repair();
        assert_eq!(s.entry(idx).unwrap().pos.head, 64);
        assert_eq!(pop_all(&s), vec![(3, b"kept".to_vec())]);
    }

    #[test]
    fn a_scribbled_level_is_cut_not_trusted() {
        let (_fd, mut s) = Store::create(&settings(), 0).unwrap();
        s.begin();
        for i in 0..5u8 {
            assert!(s.stage(&rec(4, &[i; 10], 0)));
        }
        s.commit();
        // The third record's length now points past the tail.
        let base = s.level_base(4) + 2 * record_size(10) as usize;
        s.view.write(base, &u32::MAX.wrapping_sub(7).to_le_bytes());
        s.repair();
        assert_eq!(s.count(), 2);
        assert_eq!(pop_all(&s).len(), 2);
    }

    #[test]
    fn the_lock_is_repaired_after_its_holder_dies() {
        let (fd, mut s) = Store::create(&settings(), 0).unwrap();
        // A thread that dies holding the lock is, for a robust mutex, the same as a process.
        let fd2 = fd.try_clone().unwrap();
        let t = std::thread::spawn(move || {
            let (mut mine, _) = Store::attach(&fd2).unwrap();
            mine.lock().unwrap();
            std::mem::forget(mine);
        });
        t.join().unwrap();
        assert!(s.lock().unwrap(), "repaired");
        s.unlock();
        // Taken only if free: a holder's lock is busy for a moment, and found free again.
        let (lock_tx, locked_rx) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let (mut mine, _) = Store::attach(&fd).unwrap();
            mine.lock().unwrap();
            lock_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            mine.unlock();
        });
        locked_rx.recv().unwrap();
        assert_eq!(s.try_lock().unwrap(), None, "busy");
        go.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(
            s.try_lock().unwrap(),
            Some(false),
            "free, nothing to repair"
        );
        s.unlock();
    }

    /// A holder killed while asleep leaves its count behind; its mark goes with it, and the
    /// next check (at most every `SLEEP_CHECK_EVERY_NS`) sets the count back. Live sleepers,
    /// this holder's own mark included, keep theirs.
    #[test]
    fn a_sleeper_that_died_is_counted_no_more() {
        let every = SLEEP_CHECK_EVERY_NS;
        let (fd, mut s) = Store::create(&settings(), 0).unwrap();
        let (a, _) = Store::attach(&fd).unwrap();
        assert!(!s.others_asleep(false, every), "nobody asleep");
        a.set_sleeping(true);
        assert!(s.others_asleep(false, 2 * every), "a lives and sleeps");
        drop(a); // killed asleep: the count stays, the mark goes
        assert_eq!(s.sleepers(), 1);
        assert!(
            s.others_asleep(false, 2 * every + 1),
            "not checked again so soon"
        );
        assert!(!s.others_asleep(false, 3 * every), "checked: a is gone");
        assert_eq!(s.sleepers(), 0);
        // This holder asleep too, and another: both stay counted while they live.
        s.set_sleeping(true);
        let (b, _) = Store::attach(&fd).unwrap();
        b.set_sleeping(true);
        assert!(s.others_asleep(true, 4 * every), "b lives and sleeps");
        assert_eq!(s.sleepers(), 2);
        drop(b);
        assert!(!s.others_asleep(true, 5 * every), "b is gone");
        assert_eq!(s.sleepers(), 1, "this holder still counts");
        let (mut c, _) = Store::attach(&fd).unwrap();
        assert!(
            c.others_asleep(false, 6 * every),
            "the first holder's mark is still there"
        );
        s.set_sleeping(false);
        assert!(!c.others_asleep(false, 7 * every));
        // A holder that sleeps without a mark: the count is never set back again.
        let (mut d, _) = Store::attach(&fd).unwrap();
        d.drop_sleep_mark();
        d.set_sleeping(true);
        drop(d);
        assert!(c.others_asleep(false, 8 * every));
        assert_eq!(c.sleepers(), 1);
    }

    /// A connection a holder accepted and died before greeting (its entry still `ACCEPTED`)
    /// goes at the repair; those whose writers were greeted stay.
    #[test]
    fn the_repair_frees_connections_whose_writers_were_never_greeted() {
        let (_fd, mut s) = Store::create(&settings(), 0).unwrap();
        let greeted = s.alloc(1, 2, true).unwrap();
        let later = s.alloc(3, 4, false).unwrap();
        s.greeted(later);
        let ungreeted = s.alloc(5, 6, false).unwrap();
        let generation = s.generation();
        s.repair();
        assert!(s.entry(greeted).is_some());
        assert!(s.entry(later).is_some());
        assert!(s.entry(ungreeted).is_none());
        assert_ne!(
            s.generation(),
            generation,
            "holders go round the park again"
        );
    }

    /// A store whose level capacity is 0, or so large that ten levels wrap around to the
    /// memfd's real size, is refused as not a mailslot's (it would divide by zero, or index far
    /// outside the mapping).
    #[test]
    fn a_forged_level_capacity_is_refused() {
        for (cap, size) in [
            (0, levels_off()),
            ((1u64 << 63) + PAGE as u64, levels_off() + LEVELS * PAGE),
        ] {
            let fd = sys::memfd(c"forged", size).unwrap();
            let probe = Store::map(&fd, size, 0).unwrap();
            let v = &probe.view;
            v.u64(H_LEVEL_CAP).store(cap, SeqCst);
            v.u32(H_TABLE_LEN).store(TABLE_LEN as u32, SeqCst);
            v.u32(H_VERSION).store(VERSION, SeqCst);
            v.u32(H_MAGIC).store(MAGIC, SeqCst);
            drop(probe);
            let err = Store::attach(&fd).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{cap}: {err}");
        }
    }

    /// Settings whose level would not fit a 64-bit size make no store (a clear error; they
    /// made one of a wrapped size, and the first message then indexed outside it).
    #[test]
    fn a_quota_too_large_for_a_store_is_an_error() {
        for quota in [u64::MAX, 1 << 62] {
            let s = Settings {
                quota,
                ..settings()
            };
            let err = Store::create(&s, 0).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{quota}: {err}");
        }
    }
}
