//! The shared-memory views of the local transport: the control page an owner publishes to its
//! writers, and the ring each writer writes its messages into. All `unsafe` access to shared
//! memory is in this module.
//!
//! # Who may write what
//! - The **control page** is written by the owner only (by the holders of the owner handle).
//!   Writers get a read-only descriptor of it, opened after the file was made readable by its
//!   owner only (mode 0400): they can map it read-only and nothing else (no writable mapping, no
//!   `write(2)`, no `mprotect` to writable, no opening it again for writing through
//!   `/proc/self/fd`). So the closed flag, the queued totals and the wake-up word cannot be
//!   changed by a writer. (A writer of the owner's own user could change the mode back; it is
//!   not another user.)
//! - The **store** (`store`) of a mailslot whose handle is shared holds its queue; only
//!   holders of the owner handle get it.
//! - A **ring** belongs to one writer. Both sides map it read-write; the writer can scribble over
//!   all of it, and therefore only over its own messages. The owner keeps its own copy of the
//!   read position, checks every record against the ring's bounds before it copies anything, and
//!   drops the writer on the first broken record (see `RingReader::scan`).
//! - Both are memfds whose size is sealed, so neither side can shrink one under the other's
//!   mapping (`SIGBUS`); each side checks the seals of what it is handed before mapping it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use rustix::mm::{MapFlags, ProtFlags};

use crate::sys;

pub(crate) mod store;

const MAGIC: u32 = 0x4d53_4c43; // "MSLC"
const VERSION: u32 = 2;
/// Size of the control page.
pub(crate) const PAGE: usize = 4096;
const COUNT_SHIFT: u32 = 40;
const BYTES_MASK: u64 = (1 << COUNT_SHIFT) - 1;
/// How far past the read position [`RingReader::prefetch_next`] asks for lines.
const PREFETCH_MAX: usize = 512;
/// How far ahead of the record it looks at [`RingReader::freeze`] fetches the ring's lines.
const FREEZE_AHEAD: u64 = 1024;

// Control page layout (byte offsets).
const C_MAGIC: usize = 0;
const C_VERSION: usize = 4;
const C_CLOSED: usize = 8;
const C_WAKE_ME: usize = 12;
const C_USED: usize = 16;
const C_SOLE: usize = 24;

/// Checks that a memfd handed over by the other side has its size sealed and is at least `min`
/// bytes long; returns its size.
///
/// It must also be on tmpfs: a `MFD_HUGETLB` memfd can be sealed too, but after the other side
/// punches a hole in it, touching that page needs a new huge page, and none may be free
/// (`SIGBUS`). On tmpfs a punched hole reads as zeros again.
fn check_sealed(fd: &OwnedFd, min: usize) -> io::Result<u64> {
    if sys::fs_magic(fd)? != sys::TMPFS_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shared memory that is not a plain memfd",
        ));
    }
    let seals = sys::seals(fd)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not a sealed memfd"))?;
    if seals & libc::F_SEAL_SHRINK == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shared memory whose size is not sealed",
        ));
    }
    let size = sys::file_size(fd.as_raw_fd())?;
    if size < min as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shared memory smaller than announced",
        ));
    }
    Ok(size)
}

/// A shared mapping of the first `len` bytes of a file, unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics and raw copies (see `View`); the pointer
// itself can move between threads.
unsafe impl Send for Mapping {}
// SAFETY: as above, all shared access is atomic.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write.
    pub(crate) fn new(fd: impl AsFd, len: usize) -> io::Result<Self> {
        Self::map(fd, len, ProtFlags::READ | ProtFlags::WRITE)
    }

    /// Maps `len` bytes of `fd` shared and read-only.
    pub(crate) fn read_only(fd: impl AsFd, len: usize) -> io::Result<Self> {
        Self::map(fd, len, ProtFlags::READ)
    }

    fn map(fd: impl AsFd, len: usize, prot: ProtFlags) -> io::Result<Self> {
        // SAFETY: a fresh mapping at an address the kernel chooses, so it overlaps nothing this
        // process uses; the result is checked. What is mapped is only reached through `View`.
        let p =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }?;
        Ok(Self { ptr: p.cast(), len })
    }

    /// Base address.
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `map`, which nothing borrows any more
        // (every reference into it borrows the `View` that owns this mapping).
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}

/// A mapped view with typed access to aligned words.
struct View {
    map: Mapping,
}

impl View {
    fn u32(&self, off: usize) -> &AtomicU32 {
        assert!(off & 3 == 0 && off + 4 <= self.map.len());
        // SAFETY: in bounds and aligned (checked above; mappings are page-aligned), the mapping
        // lives as long as `self`, and every shared word is only accessed atomically, so access
        // from several processes is free of data races.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU32) }
    }

    fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(off & 7 == 0 && off + 8 <= self.map.len());
        // SAFETY: as in `u32`.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    /// A pointer to `len` bytes at `off` (for an object that lives in the mapping).
    fn ptr(&self, off: usize, len: usize) -> *mut u8 {
        assert!(off <= self.map.len() && len <= self.map.len() - off);
        // SAFETY: in bounds (checked above).
        unsafe { self.map.as_ptr().add(off) }
    }

    /// Copies bytes out of the mapping.
    fn read(&self, off: usize, dst: &mut [u8]) {
        let src = self.ptr(off, dst.len());
        // SAFETY: the source range is within the mapping (checked by `ptr`) and `dst` is a
        // distinct, live buffer; another process may change these bytes meanwhile, and any
        // byte value is a valid `u8`.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    }

    /// Copies bytes into the mapping.
    fn write(&self, off: usize, src: &[u8]) {
        let dst = self.ptr(off, src.len());
        // SAFETY: the destination range is within the mapping (checked by `ptr`) and `src` is
        // a distinct, live buffer.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }
}

/// The two descriptors of a control page.
pub(crate) struct ControlFds {
    /// Read-write: only holders of the owner handle get it.
    pub rw: OwnedFd,
    /// Read-only: what writers get.
    pub ro: OwnedFd,
}

/// The control page: what every writer reads and only the owner writes.
pub(crate) struct Control {
    view: View,
}

impl Control {
    /// A new page (owner side), mapped read-write. Returns the read-write descriptor (for the
    /// holders of the owner handle, who all write the page) and a read-only one to pass to
    /// writers: the file is made readable by its owner only (mode 0400) before the read-only
    /// descriptor is opened, so a writer can neither map it writable nor open it again for
    /// writing through `/proc/self/fd`.
    pub(crate) fn create() -> io::Result<(ControlFds, Self)> {
        let fd = sys::memfd(c"mailslot-control", PAGE)?;
        sys::add_seals(&fd, libc::F_SEAL_SEAL)?;
        let view = View {
            map: Mapping::new(&fd, PAGE)?,
        };
        sys::fchmod(&fd, 0o400)?;
        let ro = sys::reopen_read_only(&fd)?;
        let c = Self { view };
        c.view.u32(C_MAGIC).store(MAGIC, SeqCst);
        c.view.u32(C_VERSION).store(VERSION, SeqCst);
        c.set_sole_writer(true);
        Ok((ControlFds { rw: fd, ro }, c))
    }

    /// Maps a page received from another holder of the owner handle, read-write.
    pub(crate) fn attach_rw(fd: &OwnedFd) -> io::Result<Self> {
        check_sealed(fd, PAGE)?;
        Self::checked(Mapping::new(fd, PAGE)?)
    }

    /// Maps a page received from an owner, read-only (writer side).
    pub(crate) fn attach(fd: &OwnedFd) -> io::Result<Self> {
        check_sealed(fd, PAGE)?;
        Self::checked(Mapping::read_only(fd, PAGE)?)
    }

    /// A mapped page, if it says it is a control page of this version.
    fn checked(map: Mapping) -> io::Result<Self> {
        let c = Self { view: View { map } };
        if c.view.u32(C_MAGIC).load(SeqCst) != MAGIC
            || c.view.u32(C_VERSION).load(SeqCst) != VERSION
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad control page",
            ));
        }
        Ok(c)
    }

    /// Publishes the queued totals (owner side).
    pub(crate) fn set_used(&self, bytes: usize, count: usize) {
        // Saturated, not wrapped: past what the word holds, writers see at least that much.
        let count = (count as u64).min(u64::MAX >> COUNT_SHIFT);
        let v = (count << COUNT_SHIFT) | (bytes as u64).min(BYTES_MASK);
        self.view.u64(C_USED).store(v, SeqCst);
    }

    /// Queued bytes and messages the owner knows of.
    pub(crate) fn used(&self) -> (u64, u64) {
        let v = self.view.u64(C_USED).load(SeqCst);
        (v & BYTES_MASK, v >> COUNT_SHIFT)
    }

    /// Marks the slot closed (owner side).
    pub(crate) fn close(&self) {
        self.view.u32(C_CLOSED).store(1, SeqCst);
    }

    /// True once the owner closed the slot.
    pub(crate) fn is_closed(&self) -> bool {
        self.view.u32(C_CLOSED).load(SeqCst) != 0
    }

    /// Owner side: how writers wake the owner after they publish a message (nobody on the
    /// owner's side is looking at the rings right now), if at all.
    pub(crate) fn set_wake(&self, wake: Wake) {
        self.view.u32(C_WAKE_ME).store(wake as u32, SeqCst);
    }

    /// See [`set_wake`](Self::set_wake). A value this version does not know means a wake-up
    /// byte (the socket is always watched by somebody when a reader sleeps).
    pub(crate) fn wake(&self) -> Wake {
        match self.view.u32(C_WAKE_ME).load(SeqCst) {
            0 => Wake::Off,
            2 => Wake::Futex,
            _ => Wake::Byte,
        }
    }

    /// Owner side: whether the slot has had one writer connection at a time so far, so that
    /// writers may leave their records' order stamps at 0 (one ring is in order by itself).
    /// A new page says yes; the owner says no, for good, before it greets a writer while
    /// another connection is open, and when the handle is first shared (its holders merge
    /// rings they take in separately). A writer that read "yes" just before that stamps 0: its
    /// write began before the second writer was let in, so ordering it before every stamped
    /// record is its place. (The word means "no" when it is 0, so that a writer of this
    /// version always stamps for an owner that never sets it.)
    pub(crate) fn set_sole_writer(&self, sole: bool) {
        self.view.u32(C_SOLE).store(u32::from(sole), SeqCst);
    }

    /// See [`set_sole_writer`](Self::set_sole_writer).
    pub(crate) fn sole_writer(&self) -> bool {
        self.view.u32(C_SOLE).load(Acquire) != 0
    }
}

/// How a writer wakes the owner after it publishes a message (the control page's wake word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Wake {
    /// Nobody needs waking: a reader is looking at the rings.
    Off = 0,
    /// Send a wake-up byte on the connection (a reader or the service thread waits in `epoll`).
    Byte = 1,
    /// Wake the futex on the ring's wake word (a reader waits on the rings' words, see
    /// [`RingReader::wake_word`]).
    Futex = 2,
}

// Ring layout: a header of RING_HDR bytes, then `cap` bytes of records.
/// Bytes before the first record.
pub(crate) const RING_HDR: usize = 256;
const R_TAIL: usize = 0; // u64, writer: bytes published so far
const R_WAKE_SENT: usize = 8; // u32, writer sets, owner clears: a wake-up byte is on its way
const R_WAITING: usize = 12; // u32, writer: waits for room
const R_HEAD: usize = 64; // u64, owner: bytes taken in so far
const R_SCANNED_BYTES: usize = 72; // u64, owner: message bytes taken in so far
const R_SCANNED_COUNT: usize = 80; // u64, owner: messages taken in so far
const R_CAP: usize = 128; // u64, owner: capacity in bytes
const R_PRIOS: usize = 192; // u32, writer: a bit for every priority it has written (a hint)

/// Record header: data length (u32; [`WRAP`] = skip to the start), priority, class, flags, a
/// reserved byte, and the write stamp (u64, `CLOCK_MONOTONIC` ns; 0 while the control page says
/// the writer is the slot's only one).
pub(crate) const REC_HDR: usize = 16;
/// Record flag: a remote-sender block of [`REMOTE_PAD`] bytes precedes the data.
pub(crate) const REC_REMOTE: u8 = 0x01;
/// The remote-sender block (20 bytes) padded to 8.
pub(crate) const REMOTE_PAD: usize = 24;
/// Record flag: an on-behalf-of block of [`BEHALF_PAD`] bytes precedes the data (a trusted
/// process wrote the message for a local caller: its pid, uid and gid).
pub(crate) const REC_BEHALF: u8 = 0x02;
/// The on-behalf-of block (12 bytes) padded to 8.
pub(crate) const BEHALF_PAD: usize = 16;
const WRAP: u32 = u32::MAX;

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Bytes of sender blocks a record with these flags carries before its data. (A record with both
/// flags has a sound frame and is dropped by the owner.)
pub(crate) fn block_len(flags: u8) -> usize {
    (if flags & REC_REMOTE != 0 {
        REMOTE_PAD
    } else {
        0
    }) + if flags & REC_BEHALF != 0 {
        BEHALF_PAD
    } else {
        0
    }
}

/// Bytes one record of `len` data bytes with these flags takes in a ring.
pub(crate) fn record_size(len: usize, flags: u8) -> usize {
    align8(REC_HDR + block_len(flags) + len)
}

/// Ring capacity for a slot whose largest message is `max_message_size`: room for at least four
/// of the largest records, at least 64 KiB, at most 512 KiB (a power of two).
pub(crate) fn ring_capacity(max_message_size: usize) -> usize {
    (4 * record_size(max_message_size, REC_REMOTE))
        .next_power_of_two()
        .clamp(RING_MIN, 512 << 10)
}

/// Smallest ring.
const RING_MIN: usize = 64 << 10;
/// Largest ring: the one a trusted writer (the daemon, which carries the messages of every
/// other host) gets when the slot's quota is that large.
const RING_MAX: usize = 4 << 20;

/// Capacity of a new writer's ring: [`ring_capacity`], or for a trusted writer (the daemon) as
/// much as the slot's `quota` (at most [`RING_MAX`]), so that bursts from the network wait in
/// the ring while the owner is off the CPU instead of being dropped; a ring larger than the
/// quota could never be filled.
pub(crate) fn ring_capacity_for(max_message_size: usize, quota: usize, trusted: bool) -> usize {
    let base = ring_capacity(max_message_size);
    if !trusted {
        return base;
    }
    quota
        .checked_next_power_of_two()
        .unwrap_or(RING_MAX)
        .clamp(base, RING_MAX)
}

/// A ring's mapping and capacity (a power of two, so that a position in the data area is a mask
/// of a byte count, not a division: several per message).
struct Ring {
    view: View,
    cap: usize,
}

impl Ring {
    /// A ring of `cap` bytes in `view`, if `cap` is a power of two of at least 64 bytes and the
    /// mapping holds the header and that many bytes; the one place every side's ring is made.
    fn new(view: View, cap: usize) -> Option<Self> {
        (cap.is_power_of_two() && cap >= 64 && cap <= view.map.len().saturating_sub(RING_HDR))
            .then_some(Self { view, cap })
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: RING_HDR < the mapping's length (RING_HDR + cap).
        unsafe { self.view.map.as_ptr().add(RING_HDR) }
    }

    /// Where byte `at` of the stream lies in the data area.
    fn pos(&self, at: u64) -> usize {
        (at & (self.cap as u64 - 1)) as usize
    }
}

/// The owner's side of a writer's ring.
pub(crate) struct RingReader {
    ring: Ring,
    /// Where the next record starts (the owner's own copy; never read back from the ring).
    head: u64,
    /// `head`, `bytes` and `count` as last told to the writer.
    committed: (u64, u64, u64),
    bytes: u64,
    count: u64,
    /// Records from `head` up to here all have priority `uniform_prio` (see
    /// [`RingReader::first_if_uniform`]).
    uniform_end: u64,
    uniform_prio: u8,
    /// Whether every record of that batch was looked at (not taken on the priority word's
    /// say-so): such a batch stays valid whatever the word says later.
    uniform_checked: bool,
    /// Where the last scan up to a cut stopped at a record stamped after it (see
    /// [`scan_until`](Self::scan_until)).
    held_at: Option<u64>,
    /// The record at `head` as [`first_if_uniform`](Self::first_if_uniform) last parsed it,
    /// with where it was and where the next one starts: a reader that looks at several rings'
    /// heads on every read parses each head once, instead of fetching its header again from a
    /// line the writer may be writing the next record into.
    head_rec: Option<(u64, Record, u64)>,
    /// Where the ring ends for good once its writer has hung up (see
    /// [`freeze`](Self::freeze)): the tail word is no longer read.
    frozen: Option<u64>,
    /// Headers parsed so far (tests count the work of a read).
    #[cfg(test)]
    parses: std::cell::Cell<u64>,
}

/// One record found by [`RingReader::scan`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub priority: u8,
    pub class: u8,
    pub flags: u8,
    pub stamp: u64,
    /// Offset of the remote-sender block or the data in the ring's data area.
    body: usize,
    pub len: usize,
}

/// A ring whose writer broke the record format: the owner drops that writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

impl RingReader {
    /// A new ring of `cap` bytes (owner side); returns the descriptor to pass to the writer.
    pub(crate) fn create(cap: usize) -> io::Result<(OwnedFd, Self)> {
        let fd = sys::memfd(c"mailslot-ring", RING_HDR + cap)?;
        sys::add_seals(&fd, libc::F_SEAL_SEAL)?;
        let view = View {
            map: Mapping::new(&fd, RING_HDR + cap)?,
        };
        let ring = Ring::new(view, cap).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a ring's capacity must be a power of two of at least 64 bytes",
            )
        })?;
        ring.view.u64(R_CAP).store(cap as u64, SeqCst);
        Ok((fd, Self::at_start(ring)))
    }

    /// Maps a ring another holder of the owner handle made (owner side). The capacity is the
    /// sealed memfd's size less the header, and must be a power of two between the smallest and
    /// the largest ring this library makes (the ring's own capacity word is the writer's to
    /// scribble on; the descriptor itself comes from another holder, never from a writer).
    pub(crate) fn attach(fd: &OwnedFd) -> io::Result<Self> {
        let size = check_sealed(fd, RING_HDR + RING_MIN)? as usize;
        let cap = size - RING_HDR;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad ring");
        if !(RING_MIN..=RING_MAX).contains(&cap) {
            return Err(bad());
        }
        let view = View {
            map: Mapping::new(fd, RING_HDR + cap)?,
        };
        Ok(Self::at_start(Ring::new(view, cap).ok_or_else(bad)?))
    }

    /// A reader of `ring` at its start, nothing taken in.
    fn at_start(ring: Ring) -> Self {
        Self {
            ring,
            head: 0,
            committed: (0, 0, 0),
            bytes: 0,
            count: 0,
            uniform_end: 0,
            uniform_prio: 0,
            uniform_checked: false,
            held_at: None,
            head_rec: None,
            frozen: None,
            #[cfg(test)]
            parses: std::cell::Cell::new(0),
        }
    }

    /// The read position and the counts taken in so far.
    pub(crate) fn position(&self) -> (u64, u64, u64) {
        (self.head, self.bytes, self.count)
    }

    /// Sets the read position and counts (as another holder left them, all told to the writer),
    /// or puts back an earlier [`position`](Self::position) of this reader.
    pub(crate) fn set_position(&mut self, (head, bytes, count): (u64, u64, u64)) {
        self.head = head;
        // What was looked at from the old position says nothing about this one.
        self.uniform_end = head;
        self.uniform_checked = false;
        self.head_rec = None;
        self.bytes = bytes;
        self.count = count;
        self.committed.0 = self.committed.0.min(head);
        self.committed.1 = self.committed.1.min(bytes);
        self.committed.2 = self.committed.2.min(count);
    }

    /// Marks everything taken in as told to the writer (another holder did the telling).
    pub(crate) fn assume_committed(&mut self) {
        self.committed = (self.head, self.bytes, self.count);
    }

    /// [`assume_committed`](Self::assume_committed) if the ring's words already say what this
    /// reader's position is (another holder told the writer); otherwise a later
    /// [`commit`](Self::commit) tells it. (The words are in the writer's mapping: a writer that
    /// changes them only gets its own ring's position told again.)
    pub(crate) fn assume_committed_if_told(&mut self) {
        let v = &self.ring.view;
        if v.u64(R_HEAD).load(Acquire) == self.head
            && v.u64(R_SCANNED_BYTES).load(Acquire) == self.bytes
            && v.u64(R_SCANNED_COUNT).load(Acquire) == self.count
        {
            self.assume_committed();
        }
    }

    /// Writes `bytes` over the writer's header words and the records, as a hostile writer may
    /// (for the fuzz targets).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fill_for_fuzzing(&self, bytes: &[u8]) {
        let (hdr, data) = bytes.split_at(bytes.len().min(16));
        let mut words = [0u8; 16];
        words[..hdr.len()].copy_from_slice(hdr);
        let v = &self.ring.view;
        // Mostly a tail within (or just past) the ring, so that the records are looked at.
        let tail = u64::from_le_bytes(words[..8].try_into().unwrap_or_default());
        let tail = if words[7] & 0x80 != 0 {
            tail
        } else {
            tail % (self.ring.cap as u64 + 64)
        };
        v.u64(R_TAIL).store(tail, SeqCst);
        v.u32(R_WAKE_SENT).store(
            u32::from_le_bytes(words[8..12].try_into().unwrap_or_default()),
            SeqCst,
        );
        v.u32(R_WAITING).store(
            u32::from_le_bytes(words[12..].try_into().unwrap_or_default()),
            SeqCst,
        );
        let n = data.len().min(self.ring.cap);
        // SAFETY: `n` bytes fit the data area; `data` is a distinct live buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ring.data(), n) };
    }

    /// Bytes of the ring taken in but not yet given back to the writer.
    pub(crate) fn uncommitted(&self) -> u64 {
        self.head - self.committed.0
    }

    /// Message bytes and messages taken in that the writer does not know of yet (it still
    /// counts them as its own, on top of the published totals).
    pub(crate) fn pending(&self) -> (u64, u64) {
        (self.bytes - self.committed.1, self.count - self.committed.2)
    }

    /// Capacity in bytes.
    pub(crate) fn capacity(&self) -> u64 {
        self.ring.cap as u64
    }

    /// Whether the writer waits for room.
    pub(crate) fn writer_waiting(&self) -> bool {
        self.ring.view.u32(R_WAITING).load(SeqCst) != 0
    }

    /// Takes the writer's "waiting" flag: true if it was set (the owner then sends one notice;
    /// a writer that still finds no room sets it again).
    pub(crate) fn take_waiting(&self) -> bool {
        let w = self.ring.view.u32(R_WAITING);
        w.load(SeqCst) != 0 && w.swap(0, SeqCst) != 0
    }

    /// Forgets that a wake-up byte is on its way (the owner read the writer's socket), or that
    /// the writer woke the ring's futex.
    pub(crate) fn clear_wake_sent(&self) {
        self.ring.view.u32(R_WAKE_SENT).store(0, SeqCst);
    }

    /// The word a reader that sleeps on a futex waits on while it is 0 (see [`Wake::Futex`]):
    /// the writer sets it to 1 and wakes the futex when it publishes. The writer can set it
    /// at will; that can only wake the reader for nothing (which it notices and counts).
    pub(crate) fn wake_word(&self) -> &AtomicU32 {
        self.ring.view.u32(R_WAKE_SENT)
    }

    /// Whether records are known or found to wait past the read position.
    pub(crate) fn has_unread(&self) -> bool {
        self.has_known_records() || self.has_records()
    }

    /// Whether records are waiting (cheap: one load).
    pub(crate) fn has_records(&self) -> bool {
        self.published() != self.head
    }

    /// The tail as the writer published it, or where the ring was frozen.
    #[inline(always)]
    fn published(&self) -> u64 {
        match self.frozen {
            Some(end) => end,
            None => self.ring.view.u64(R_TAIL).load(Acquire),
        }
    }

    /// The writer hung up: the ring ends for good where its writer had published up to then,
    /// and its tail word is never read again — whoever still maps the ring (the writer may
    /// have passed its descriptor to another process) cannot add records for this reader.
    /// Calls `f` for each record from the read position to that end, in order, without taking
    /// them in. `Corrupt` (and nothing frozen) when a record there does not fit: a scan then
    /// takes in what comes before it and drops the writer, as for a live one.
    pub(crate) fn freeze(&mut self, mut f: impl FnMut(&Record)) -> Result<(), Corrupt> {
        if self.frozen.is_some() {
            return Ok(());
        }
        let tail = self.tail()?;
        let mut at = self.head;
        // The headers are fetched ahead: one after the other, each would wait for its line
        // (≈ 25 ns a record when the lines are in the writer's CPU's cache).
        let mut fetched = at & !63;
        while at < tail {
            while fetched < tail.min(at + FREEZE_AHEAD) {
                self.prefetch(self.ring.pos(fetched));
                fetched += 64;
            }
            match self.parse_at(at, tail)? {
                Some((rec, next)) => {
                    f(&rec);
                    at = next;
                }
                None => break,
            }
        }
        self.frozen = Some(tail);
        if self.uniform_end > tail {
            // Looked at before the writer moved its tail back: look again.
            self.uniform_end = self.head;
            self.uniform_checked = false;
            self.head_rec = None;
        }
        Ok(())
    }

    /// Asks the CPU to start fetching the cache lines of what was published at the read
    /// position: at least the first two, and as far as the tail up to [`PREFETCH_MAX`] bytes. A
    /// reader that has just seen the tail move (the writer's CPU holds those lines) reads them
    /// next: this way they come over together while the reader does its bookkeeping, instead of
    /// one after the other when the header has been parsed and the data copied (≈ 60 ns off a
    /// 64-byte round trip of ≈ 400 ns on the CI machine, ≈ 60 ns off a 424-byte one of ≈ 600).
    /// The tail is the writer's word and may be anything: it only bounds how far to prefetch,
    /// and every address stays inside the ring.
    pub(crate) fn prefetch_next(&self) {
        let pos = self.ring.pos(self.head);
        let tail = self.published();
        let span = (tail.saturating_sub(self.head) as usize).clamp(64, PREFETCH_MAX);
        for off in (0..=span).step_by(64) {
            self.prefetch(pos + off);
        }
    }

    /// Asks the CPU to start fetching the cache line of the data area at `pos` (nothing when
    /// `pos` is past its end).
    #[inline(always)]
    fn prefetch(&self, pos: usize) {
        #[cfg(target_arch = "x86_64")]
        if pos < self.ring.cap {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: the address is inside the ring's data area (checked above), and a
            // prefetch reads nothing the program sees and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.ring.data().add(pos).cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = pos;
    }

    /// Calls `f` for every record published since the last scan, in order (the writer learns of
    /// it at [`commit`](Self::commit)). Each record's bounds are checked before `f` sees it; the first record
    /// that does not fit the ring ends the scan with `Corrupt` (what came before it was valid and
    /// has been handed to `f`). Records whose contents are wrong but whose frame is sound
    /// (priority, class, size) are for `f` to judge.
    #[cfg(test)]
    pub(crate) fn scan(&mut self, f: impl FnMut(&Self, Record)) -> Result<usize, Corrupt> {
        self.scan_until(u64::MAX, f).map(|(n, _)| n)
    }

    /// [`scan`](Self::scan) up to the cut `cut` (a reading of the monotonic clock): stops at
    /// the first record stamped after it, and says so (`true`), so that the record is taken
    /// by a later scan (with a later cut). Stamps that no honest writer makes — one the clock
    /// has not reached yet (a writer stamps before it publishes), or one that is past the cut
    /// again where the last scan stopped (its cut came after the clock had passed that stamp:
    /// the writer changed it) — are a writer's forgery: that record is taken now, its stamp
    /// read as `cut`. So a writer moves only its own records, and holds its ring back from
    /// one scan at most per record.
    pub(crate) fn scan_until(
        &mut self,
        cut: u64,
        mut f: impl FnMut(&Self, Record),
    ) -> Result<(usize, bool), Corrupt> {
        let tail = self.tail()?;
        let mut n = 0;
        let mut now = None;
        while self.head < tail {
            let Some((mut rec, next)) = self.parse_at(self.head, tail)? else {
                // Only a wrap mark before the tail.
                self.head = tail;
                break;
            };
            if rec.stamp > cut {
                let now = *now.get_or_insert_with(sys::monotonic_ns);
                if rec.stamp <= now && self.held_at != Some(self.head) {
                    self.held_at = Some(self.head);
                    return Ok((n, true));
                }
                rec.stamp = cut;
            }
            f(self, rec);
            self.head = next;
            self.bytes += rec.len as u64;
            self.count += 1;
            n += 1;
        }
        Ok((n, false))
    }

    /// The published tail, checked against the read position and the ring's size.
    fn tail(&self) -> Result<u64, Corrupt> {
        let tail = self.published();
        let cap = self.ring.cap as u64;
        if tail < self.head || tail - self.head > cap || tail & 7 != 0 {
            return Err(Corrupt);
        }
        Ok(tail)
    }

    /// The record at `at` (skipping a wrap mark) and where the next one starts; `None` when
    /// only a wrap mark is left before `tail`; `Corrupt` when the record does not fit.
    // Inlined: the record is then handed on in registers (returned through memory, its
    // three one-byte fields were stored one by one and loaded back as one word, which the CPU
    // cannot forward from the stores: a stall on every read).
    #[inline(always)]
    fn parse_at(&self, mut at: u64, tail: u64) -> Result<Option<(Record, u64)>, Corrupt> {
        #[cfg(test)]
        self.parses.set(self.parses.get() + 1);
        loop {
            let pos = self.ring.pos(at);
            let to_end = self.ring.cap - pos;
            let mut hdr = [0u8; REC_HDR];
            if to_end >= REC_HDR {
                // Two word loads (records start 8-aligned): no call to a copy routine for 16 bytes
                // on every record.
                let v = &self.ring.view;
                hdr[..8].copy_from_slice(&v.u64(RING_HDR + pos).load(Relaxed).to_ne_bytes());
                hdr[8..].copy_from_slice(&v.u64(RING_HDR + pos + 8).load(Relaxed).to_ne_bytes());
            } else {
                self.copy(pos, &mut hdr[..to_end]);
            }
            if u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) == WRAP {
                if at + to_end as u64 > tail {
                    return Err(Corrupt);
                }
                at += to_end as u64;
                if at == tail {
                    return Ok(None);
                }
                continue;
            }
            let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let flags = hdr[6];
            let size = record_size(len as usize, flags);
            if to_end < REC_HDR || size > to_end || at + size as u64 > tail {
                return Err(Corrupt);
            }
            let rec = Record {
                priority: hdr[4],
                class: hdr[5],
                flags,
                stamp: u64::from_le_bytes(hdr[8..16].try_into().unwrap_or_default()),
                body: pos + REC_HDR,
                len: len as usize,
            };
            return Ok(Some((rec, at + size as u64)));
        }
    }

    /// Whether records are known to be published past the read position (no load of the
    /// writer's words; see [`first_if_uniform`](Self::first_if_uniform)).
    pub(crate) fn has_known_records(&self) -> bool {
        self.uniform_end > self.head
    }

    /// The first record when it is the ring's most urgent — every record published after it has
    /// its priority, so the owner may read it straight from the ring, in order — and where the
    /// next one starts. `None` when the ring is empty, a later record has another priority, or a
    /// record is broken (a scan then takes everything in, and finds it). Each record's header is
    /// checked once: what was looked at is remembered, and a read looks only at what was
    /// published since (a writer that has written several priorities costs each read the
    /// records published since the last one, not the whole ring again).
    // Inlined into the read, as `parse_at` is and for the same reason (eight rings' heads
    // looked at per read: 142 → 121 ns a message).
    #[inline(always)]
    pub(crate) fn first_if_uniform(&mut self) -> Option<(Record, u64)> {
        if self.uniform_end < self.head {
            self.uniform_end = self.head;
        }
        // A higher-priority record completed before this read must not be overtaken: look at
        // the tail (a cache line the writer keeps writing) — unless the writer has only ever
        // written one priority, the one of the records already looked at. (That word is the
        // writer's to set; a writer that lies about it only reorders its own messages.)
        let prios = self.ring.view.u32(R_PRIOS).load(Acquire);
        let only = prios.is_power_of_two().then(|| prios.trailing_zeros());
        if self.uniform_end > self.head {
            if only == Some(u32::from(self.uniform_prio.min(31))) {
                return self.head_record();
            }
            // Another priority since the batch began: a batch taken on the word's say-so
            // (record by record unchecked) is looked at again from the head; one whose records
            // were all looked at stays, and only what was published after it is looked at.
            if !self.uniform_checked {
                self.uniform_end = self.head;
            }
        }
        let tail = self.tail().ok()?;
        if let (Some(p), true) = (only, tail > self.head) {
            // One priority so far, published (the word is set before a record of a new priority
            // is): the batch up to the tail is uniform without a look at each record — one
            // parse per record, not two. A record of another priority in it was published after
            // the word was read (its write ended after this read began), and the next read sees
            // the word change and looks again; a writer that lies in the word reorders only its
            // own messages.
            if let Some((rec, next)) = self.parse_at(self.head, tail).ok()? {
                if u32::from(rec.priority) == p && self.uniform_end == self.head {
                    self.uniform_prio = rec.priority;
                    self.uniform_end = tail;
                    self.uniform_checked = false;
                    return Some((rec, next));
                }
            }
        }
        while self.uniform_end < tail {
            let Some((rec, next)) = self.parse_at(self.uniform_end, tail).ok()? else {
                // A wrap mark just before the tail: nothing more yet.
                break;
            };
            if self.uniform_end == self.head {
                self.uniform_prio = rec.priority;
                self.uniform_checked = true;
            } else if rec.priority != self.uniform_prio {
                return None;
            }
            self.uniform_end = next;
        }
        if self.uniform_end <= self.head {
            return None;
        }
        self.head_record()
    }

    /// The record at `head` (within the batch up to `uniform_end`, whose records were checked
    /// against a published tail), parsed once per position.
    #[inline(always)]
    fn head_record(&mut self) -> Option<(Record, u64)> {
        if let Some((at, rec, next)) = self.head_rec {
            if at == self.head && next <= self.uniform_end {
                return Some((rec, next));
            }
        }
        let (rec, next) = self.parse_at(self.head, self.uniform_end).ok()??;
        self.head_rec = Some((self.head, rec, next));
        Some((rec, next))
    }

    /// Moves past the record [`first_if_uniform`](Self::first_if_uniform) returned (`next`
    /// as it said), which was `len` bytes of data.
    pub(crate) fn skip_first(&mut self, next: u64, len: usize) {
        if next > self.head && next <= self.uniform_end {
            self.head = next;
            self.bytes += len as u64;
            self.count += 1;
        }
    }

    /// Copies a record's data into `out` (exactly `rec.len` bytes long).
    pub(crate) fn data_to(&self, rec: &Record, out: &mut [u8]) {
        let off = rec.body + block_len(rec.flags);
        debug_assert!(off + rec.len <= self.ring.cap && out.len() == rec.len);
        self.copy(off, out);
    }

    /// Tells the writer what the scans so far took in: the room they freed in the ring and the
    /// messages that now count in the owner's published totals. Called after those totals are
    /// published, so that the writer never sees a message in neither (it would then think there
    /// was room that is not there).
    pub(crate) fn commit(&mut self) {
        self.committed = (self.head, self.bytes, self.count);
        let v = &self.ring.view;
        v.u64(R_SCANNED_BYTES).store(self.bytes, SeqCst);
        v.u64(R_SCANNED_COUNT).store(self.count, SeqCst);
        v.u64(R_HEAD).store(self.head, Release);
    }

    /// The remote-sender block of a record with [`REC_REMOTE`].
    pub(crate) fn remote_block(&self, rec: &Record) -> [u8; REMOTE_PAD] {
        let mut b = [0u8; REMOTE_PAD];
        if rec.len <= self.ring.cap && rec.body + REMOTE_PAD <= self.ring.cap {
            self.copy(rec.body, &mut b);
        }
        b
    }

    /// The on-behalf-of block of a record with [`REC_BEHALF`] (and not [`REC_REMOTE`]).
    pub(crate) fn behalf_block(&self, rec: &Record) -> [u8; BEHALF_PAD] {
        let mut b = [0u8; BEHALF_PAD];
        if rec.len <= self.ring.cap && rec.body + BEHALF_PAD <= self.ring.cap {
            self.copy(rec.body, &mut b);
        }
        b
    }

    /// Appends a record's data to `out`, copied into its spare capacity (not zeroed first).
    pub(crate) fn data_into(&self, rec: &Record, out: &mut Vec<u8>) {
        let off = rec.body + block_len(rec.flags);
        // `scan` checked that the whole record lies within the data area.
        debug_assert!(off + rec.len <= self.ring.cap);
        let src = self.src(off, rec.len);
        out.reserve(rec.len);
        let start = out.len();
        // SAFETY: `src` starts `rec.len` readable bytes of the data area (see `src`), and the
        // vector's spare capacity holds at least `rec.len` bytes (reserved above) that nothing
        // else refers to; after the copy they are initialised. Bytes a writer changes at the
        // same time are still bytes (see `copy`).
        unsafe {
            std::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(start), rec.len);
            out.set_len(start + rec.len);
        }
    }

    fn copy(&self, off: usize, dst: &mut [u8]) {
        let src = self.src(off, dst.len());
        // SAFETY: `src` starts `dst.len()` readable bytes of the data area (see `src`) and
        // `dst` is a distinct, live buffer. The writer may be changing these bytes at the same
        // time: any byte value is a valid `u8`, so the worst outcome is a copy of garbage, which
        // only the writer's own message can contain (its record bounds were checked by the
        // owner).
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len());
        };
    }

    /// The start of `len` bytes at `off` in the data area; panics if they do not lie within it.
    fn src(&self, off: usize, len: usize) -> *const u8 {
        assert!(off <= self.ring.cap && len <= self.ring.cap - off);
        // SAFETY: `off` is within the mapped data area (checked above), or one past its end.
        unsafe { self.ring.data().add(off) }
    }
}

/// The writer's side of its ring.
pub(crate) struct RingWriter {
    ring: Ring,
    /// Bytes written so far (published or not).
    tail: u64,
    bytes: u64,
    count: u64,
    /// The priorities noted in the ring so far.
    prios: u32,
}

impl RingWriter {
    /// Maps a ring received from the owner (writer side).
    pub(crate) fn attach(fd: &OwnedFd) -> io::Result<Self> {
        let size = check_sealed(fd, RING_HDR + 64)? as usize;
        let view = View {
            map: Mapping::new(fd, size)?,
        };
        let cap = view.u64(R_CAP).load(SeqCst) as usize;
        let ring = Ring::new(view, cap)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad ring"))?;
        // A new ring starts empty; what the owner may have put in the tail word is not taken.
        ring.view.u32(R_PRIOS).store(0, SeqCst);
        Ok(Self {
            ring,
            tail: 0,
            bytes: 0,
            count: 0,
            prios: 0,
        })
    }

    /// Message bytes and messages written that the owner has not taken in yet.
    pub(crate) fn unscanned(&self) -> (u64, u64) {
        let v = &self.ring.view;
        let b = self
            .bytes
            .saturating_sub(v.u64(R_SCANNED_BYTES).load(SeqCst));
        let c = self
            .count
            .saturating_sub(v.u64(R_SCANNED_COUNT).load(SeqCst));
        (b, c)
    }

    /// Room left for records, in bytes.
    fn free(&self) -> usize {
        let head = self.ring.view.u64(R_HEAD).load(Acquire);
        let used = self.tail.saturating_sub(head) as usize;
        self.ring.cap.saturating_sub(used)
    }

    /// Whether a record of `len` data bytes with these flags fits now.
    pub(crate) fn fits(&self, len: usize, flags: u8) -> bool {
        let size = record_size(len, flags);
        let pos = self.ring.pos(self.tail);
        let to_end = self.ring.cap - pos;
        let need = if size <= to_end { size } else { to_end + size };
        need <= self.free()
    }

    /// Notes that this writer writes priority `priority` (before its first such record is
    /// published; see `RingReader::first_if_uniform`).
    fn note_priority(&mut self, priority: u8) {
        let bit = 1u32 << priority.min(31);
        if self.prios & bit == 0 {
            self.prios |= bit;
            self.ring.view.u32(R_PRIOS).fetch_or(bit, SeqCst);
        }
    }

    /// Writes one record (not yet visible to the owner: see [`publish`](Self::publish)), with
    /// a sender block (`(REC_REMOTE, 20 bytes)` or `(REC_BEHALF, 12 bytes)`) if given.
    /// The caller checked [`fits`](Self::fits).
    pub(crate) fn append(
        &mut self,
        priority: u8,
        class: u8,
        block: Option<(u8, &[u8])>,
        data: &[u8],
        stamp: u64,
    ) {
        self.note_priority(priority);
        let flags = block.map_or(0, |(f, _)| f);
        let size = record_size(data.len(), flags);
        let cap = self.ring.cap;
        let mut pos = self.ring.pos(self.tail);
        if size > cap - pos {
            self.put(pos, &WRAP.to_le_bytes());
            self.tail += (cap - pos) as u64;
            pos = 0;
        }
        let mut hdr = [0u8; REC_HDR];
        hdr[..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        hdr[4] = priority;
        hdr[5] = class;
        hdr[6] = flags;
        hdr[8..].copy_from_slice(&stamp.to_le_bytes());
        self.put(pos, &hdr);
        let mut off = pos + REC_HDR;
        if let Some((_, b)) = block {
            let mut padded = [0u8; REMOTE_PAD + BEHALF_PAD];
            let n = b.len().min(block_len(flags));
            padded[..n].copy_from_slice(&b[..n]);
            self.put(off, &padded[..block_len(flags)]);
            off += block_len(flags);
        }
        self.put(off, data);
        self.tail += size as u64;
        self.bytes += data.len() as u64;
        self.count += 1;
    }

    /// Makes every appended record visible to the owner.
    pub(crate) fn publish(&self) {
        self.ring.view.u64(R_TAIL).store(self.tail, SeqCst);
    }

    /// Marks that a wake-up byte is being sent; false if one is already on its way.
    pub(crate) fn claim_wake(&self) -> bool {
        let w = self.ring.view.u32(R_WAKE_SENT);
        w.load(SeqCst) == 0 && w.swap(1, SeqCst) == 0
    }

    /// Wakes a reader that sleeps on the ring's wake word (after [`claim_wake`](Self::claim_wake)).
    pub(crate) fn wake_futex(&self) {
        sys::futex_wake(self.ring.view.u32(R_WAKE_SENT), true, 1);
    }

    /// Whether this writer's "waiting" flag is set.
    pub(crate) fn is_waiting(&self) -> bool {
        self.ring.view.u32(R_WAITING).load(SeqCst) != 0
    }

    /// Announces (or withdraws) that this writer waits for room.
    pub(crate) fn set_waiting(&self, on: bool) {
        self.ring.view.u32(R_WAITING).store(u32::from(on), SeqCst);
    }

    fn put(&self, off: usize, src: &[u8]) {
        assert!(off <= self.ring.cap && src.len() <= self.ring.cap - off);
        // SAFETY: the destination range lies within the ring's data area (checked above) and
        // `src` is a distinct, live buffer. The owner reads these bytes only after `publish`
        // (a sequentially consistent store of the tail: a release).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ring.data().add(off), src.len());
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_writers_ring_grows_with_the_quota_and_holders_take_any_size_it_may_have() {
        let base = ring_capacity(crate::MAX_MESSAGE_SIZE);
        assert_eq!(
            ring_capacity_for(crate::MAX_MESSAGE_SIZE, 16 << 20, false),
            base
        );
        assert_eq!(
            ring_capacity_for(crate::MAX_MESSAGE_SIZE, 16 << 20, true),
            RING_MAX
        );
        assert_eq!(
            ring_capacity_for(crate::MAX_MESSAGE_SIZE, 1 << 20, true),
            1 << 20
        );
        assert_eq!(ring_capacity_for(crate::MAX_MESSAGE_SIZE, 1000, true), base);
        assert_eq!(ring_capacity_for(424, usize::MAX, true), RING_MAX);
        // Another holder attaches a ring of any size the library makes, by its memfd's size...
        for cap in [RING_MIN, 1 << 20, RING_MAX] {
            let (fd, _) = RingReader::create(cap).unwrap();
            assert_eq!(RingReader::attach(&fd).unwrap().capacity(), cap as u64);
        }
        // ... and no other.
        for cap in [RING_MIN / 2, RING_MAX * 2] {
            let (fd, _) = RingReader::create(cap).unwrap();
            assert!(RingReader::attach(&fd).is_err(), "{cap}");
        }
        // (This library makes no such ring.)
        assert!(RingReader::create(RING_MIN + 4096).is_err());
        let fd = sys::memfd(c"mailslot-test", RING_HDR + RING_MIN + 4096).unwrap();
        sys::add_seals(&fd, libc::F_SEAL_SEAL).unwrap();
        assert!(RingReader::attach(&fd).is_err());
    }

    #[test]
    fn control_page_is_read_only_for_writers() {
        let (fds, owner) = Control::create().unwrap();
        let fd = fds.ro;
        let w = Control::attach(&fd).unwrap();
        owner.set_used(30, 2);
        assert_eq!(w.used(), (30, 2));
        assert!(!w.is_closed());
        owner.close();
        assert!(w.is_closed());
        // A writable mapping of the writers' descriptor is refused.
        assert!(Mapping::new(&fd, PAGE).is_err());
        // The holders' descriptor maps read-write.
        let holder = Control::attach_rw(&fds.rw).unwrap();
        holder.set_used(1, 1);
        assert_eq!(w.used(), (1, 1));
    }

    #[test]
    fn a_new_control_page_lets_its_writer_skip_stamps_until_the_owner_says_otherwise() {
        let (fds, owner) = Control::create().unwrap();
        let w = Control::attach(&fds.ro).unwrap();
        assert!(w.sole_writer());
        owner.set_sole_writer(false);
        assert!(!w.sole_writer());
        // A page whose owner never wrote the word (all zeros there) means "stamp".
        let fd = sys::memfd(c"mailslot-test", PAGE).unwrap();
        let old = Control {
            view: View {
                map: Mapping::new(&fd, PAGE).unwrap(),
            },
        };
        assert!(!old.sole_writer());
    }

    #[test]
    fn ring_round_trip_with_wrap_and_remote_block() {
        let (fd, mut r) = RingReader::create(256).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        let mut got = Vec::new();
        for i in 0..40u8 {
            let data = vec![i; (i as usize * 7) % 50];
            let remote = [i % 10; 20];
            let flags = if i % 3 == 0 { REC_REMOTE } else { 0 };
            if !w.fits(data.len(), flags) {
                w.publish();
                r.scan(|r, rec| {
                    let mut d = Vec::new();
                    r.data_into(&rec, &mut d);
                    got.push((rec.priority, d));
                })
                .unwrap();
                r.commit();
            }
            assert!(w.fits(data.len(), flags));
            let block = (i % 3 == 0).then_some((REC_REMOTE, &remote[..]));
            w.append(i % 10, 2, block, &data, i as u64);
        }
        w.publish();
        r.scan(|r, rec| {
            let mut d = Vec::new();
            r.data_into(&rec, &mut d);
            if rec.flags & REC_REMOTE != 0 {
                assert_eq!(r.remote_block(&rec)[..20], [rec.priority; 20][..]);
            }
            got.push((rec.priority, d));
        })
        .unwrap();
        r.commit();
        assert_eq!(got.len(), 40);
        for (i, (p, d)) in got.iter().enumerate() {
            assert_eq!(*p, i as u8 % 10);
            assert_eq!(d, &vec![i as u8; (i * 7) % 50]);
        }
        assert_eq!(w.unscanned(), (0, 0));
    }

    /// A scan up to a cut takes the records stamped before it and stops at the first one an
    /// honest writer stamped after it, which the next scan takes; a stamp the clock has not
    /// reached (forged) does not stop the scan: that record is taken, stamped as the cut.
    #[test]
    fn a_scan_up_to_a_cut_leaves_later_records_and_takes_forged_ones() {
        let (fd, mut r) = RingReader::create(4096).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        let cut = sys::monotonic_ns();
        w.append(0, 2, None, b"before", cut - 1);
        w.append(0, 2, None, b"forged", u64::MAX);
        w.append(0, 2, None, b"at", cut);
        w.append(0, 2, None, b"after", sys::monotonic_ns() + 1);
        w.append(0, 2, None, b"later", 1);
        w.publish();
        let mut got = Vec::new();
        fn take(got: &mut Vec<(Vec<u8>, u64)>) -> impl FnMut(&RingReader, Record) + '_ {
            move |r, rec| {
                let mut d = Vec::new();
                r.data_into(&rec, &mut d);
                got.push((d, rec.stamp));
            }
        }
        // ("after" is stamped past `cut` but not past the clock at the scan.)
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_eq!(r.scan_until(cut, take(&mut got)), Ok((3, true)));
        assert_eq!(
            got,
            [
                (b"before".to_vec(), cut - 1),
                (b"forged".to_vec(), cut),
                (b"at".to_vec(), cut)
            ]
        );
        assert!(r.has_records());
        // A later cut takes it.
        let (fd2, mut r2) = RingReader::create(4096).unwrap();
        let mut w2 = RingWriter::attach(&fd2).unwrap();
        let stamp = sys::monotonic_ns() + 1;
        w2.append(0, 2, None, b"after", stamp);
        w2.publish();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let mut got2 = Vec::new();
        assert_eq!(r2.scan_until(stamp - 1, take(&mut got2)), Ok((0, true)));
        assert_eq!(
            r2.scan_until(sys::monotonic_ns(), take(&mut got2)),
            Ok((1, false))
        );
        assert_eq!(got2, [(b"after".to_vec(), stamp)]);
        // Past the cut again where the last scan stopped (no honest writer's stamp: its cut
        // came after the clock had passed the stamp): taken, stamped as the cut.
        got.clear();
        assert_eq!(r.scan_until(cut, take(&mut got)), Ok((2, false)));
        assert_eq!(got, [(b"after".to_vec(), cut), (b"later".to_vec(), 1)]);
        assert!(!r.has_records());
    }

    #[test]
    fn behalf_block_round_trip() {
        let (fd, mut r) = RingReader::create(256).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        let block = [7u8; 12];
        assert!(w.fits(5, REC_BEHALF));
        w.append(4, 1, Some((REC_BEHALF, &block[..])), b"hello", 9);
        w.append(5, 2, None, b"plain", 10);
        w.publish();
        let mut got = Vec::new();
        r.scan(|r, rec| {
            let mut d = Vec::new();
            r.data_into(&rec, &mut d);
            got.push((rec.flags, r.behalf_block(&rec), d));
        })
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, REC_BEHALF);
        assert_eq!(got[0].1[..12], block);
        assert_eq!(got[0].2, b"hello");
        assert_eq!(got[1].0, 0);
        assert_eq!(got[1].2, b"plain");
        assert_eq!(record_size(5, REC_BEHALF), 16 + 16 + 8);
    }

    #[test]
    fn a_writer_of_several_priorities_costs_each_read_only_what_it_published_since() {
        let (fd, mut r) = RingReader::create(64 << 10).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        // One record of another priority first: from then on the priority word has two bits,
        // and every read has to look at what was published after the batch it reads from.
        w.append(5, 2, None, b"x", 0);
        w.publish();
        let (rec, next) = r.first_if_uniform().unwrap();
        r.skip_first(next, rec.len);
        let mut n = 0u64;
        while w.fits(0, 0) {
            w.append(2, 2, None, &[], 0);
            n += 1;
        }
        w.publish();
        assert!(n > 1000, "{n} records");
        let before = r.parses.get();
        let mut read = 0;
        while let Some((rec, next)) = r.first_if_uniform() {
            assert_eq!(rec.priority, 2);
            r.skip_first(next, rec.len);
            read += 1;
        }
        assert_eq!(read, n);
        // Each header looked at once by the walk and once more when read (it was n² / 2).
        let parses = r.parses.get() - before;
        assert!(parses <= 2 * n + 4, "{parses} parses for {n} records");

        // A batch that was looked at stays, but a record of another priority published after
        // it is still seen before the batch is read on: the read says "not uniform" (the
        // caller takes everything in and orders it).
        for i in 0..3u8 {
            w.append(2, 2, None, &[i], 0);
        }
        w.publish();
        let (rec, next) = r.first_if_uniform().unwrap();
        r.skip_first(next, rec.len);
        w.append(5, 2, None, b"urgent", 0);
        w.publish();
        assert!(r.first_if_uniform().is_none());
        // Put back to an earlier position, the batch is looked at again from there.
        let at = r.position();
        r.set_position(at);
        assert!(r.first_if_uniform().is_none());
    }

    #[test]
    fn a_stream_of_one_priority_is_read_in_place_until_another_priority_is_behind_it() {
        let (fd, mut r) = RingReader::create(4096).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        let read = |r: &mut RingReader| {
            let (rec, next) = r.first_if_uniform()?;
            let mut b = vec![0u8; rec.len];
            r.data_to(&rec, &mut b);
            r.skip_first(next, rec.len);
            Some((rec.priority, b))
        };
        for i in 0..3u8 {
            w.append(2, 2, None, &[i], 0);
        }
        w.publish();
        assert_eq!(read(&mut r), Some((2, vec![0])));
        // More of the same priority join the batch.
        w.append(2, 2, None, &[3], 0);
        w.publish();
        assert_eq!(read(&mut r), Some((2, vec![1])));
        // A more urgent record behind the stream: not uniform any more (the owner then takes
        // the ring into its queue, where the urgent one comes first)...
        w.append(7, 2, None, b"u", 0);
        w.publish();
        assert_eq!(read(&mut r), None);
        // ... and stays so while it is there, whatever the batch looked like before.
        assert_eq!(read(&mut r), None);
        // A batch taken while the word said one priority, with a more urgent record already in
        // it (published just after the word was read): once the word says so, that record is
        // not overtaken by the rest of the batch.
        let (fd, mut r) = RingReader::create(4096).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        for i in 0..3u8 {
            w.append(2, 2, None, &[i], 0);
        }
        w.append(7, 2, None, b"u", 0);
        w.publish();
        w.ring.view.u32(R_PRIOS).store(1 << 2, SeqCst); // the word as it was a moment before
        assert_eq!(read(&mut r), Some((2, vec![0])));
        w.ring.view.u32(R_PRIOS).store(1 << 2 | 1 << 7, SeqCst);
        assert_eq!(read(&mut r), None);
        // Reads in between writes of one priority (100 records of 32 bytes fit the ring):
        // in order.
        let (fd, mut r) = RingReader::create(4096).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        for i in 0..100u8 {
            w.append(4, 1, None, &[i; 9], 0);
            w.publish();
            if i % 3 == 0 {
                assert_eq!(read(&mut r), Some((4, vec![i / 3; 9])));
            }
        }
    }

    #[test]
    fn a_writer_refuses_a_ring_whose_capacity_is_not_a_power_of_two() {
        let (fd, r) = RingReader::create(4096).unwrap();
        assert!(RingWriter::attach(&fd).is_ok());
        // An owner that says 4088 (a multiple of 8, within the memfd): refused, not masked.
        r.ring.view.u64(R_CAP).store(4088, SeqCst);
        assert!(RingWriter::attach(&fd).is_err());
    }

    #[test]
    fn scribbled_rings_are_caught() {
        let (fd, mut r) = RingReader::create(256).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        w.append(1, 2, None, b"fine", 1);
        w.publish();
        // A tail far ahead of the head.
        w.ring.view.u64(R_TAIL).store(10_000, SeqCst);
        assert_eq!(r.scan(|_, _| {}), Err(Corrupt));
        // A record whose length runs past the tail: the good records before it are delivered.
        let (fd, mut r) = RingReader::create(256).unwrap();
        let mut w = RingWriter::attach(&fd).unwrap();
        w.append(1, 2, None, b"fine", 1);
        w.append(1, 2, None, b"bad", 2);
        w.publish();
        w.put(24, &200u32.to_le_bytes());
        let mut n = 0;
        assert_eq!(r.scan(|_, _| n += 1), Err(Corrupt));
        assert_eq!(n, 1);
    }
}
