//! The control page shared between an owner and its writers (a sealed memfd, passed to each
//! admitted writer in the open handshake).
//!
//! It holds what writers must agree on without asking the owner: the bytes and messages reserved
//! against the quota (so a second-class write can fail at once and a first-class write can wait
//! for room), the global write-order counter (FIFO across writers whose messages arrive over
//! different connections), and a futex word bumped whenever room is freed.
//!
//! Writers can scribble on this page; the worst they can do is make their own or other writers'
//! writes fail or reorder. The queue itself lives in the owner's memory and every message is
//! checked again by the owner.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use crate::sys::{self, Mapping};

const MAGIC: u32 = 0x4d53_4c43; // "MSLC"
const VERSION: u32 = 1;
/// Size of the page.
pub(crate) const PAGE: usize = 4096;
const COUNT_SHIFT: u32 = 40;
const BYTES_MASK: u64 = (1 << COUNT_SHIFT) - 1;

#[repr(C)]
struct Page {
    magic: AtomicU32,
    version: AtomicU32,
    closed: AtomicU32,
    space: AtomicU32,
    waiters: AtomicU32,
    _pad: AtomicU32,
    /// Reserved messages (high 24 bits) and bytes (low 40 bits).
    used: AtomicU64,
    seq: AtomicU64,
    /// Records writers have finished sending (incremented after a successful send).
    sent: AtomicU64,
}

/// A mapped control page.
pub(crate) struct Control {
    map: Mapping,
}

impl Control {
    /// A new page (owner side); returns the descriptor to pass to writers.
    pub fn create() -> io::Result<(OwnedFd, Control)> {
        let fd = sys::memfd(PAGE)?;
        let c = Control {
            map: Mapping::new(fd.as_raw_fd(), PAGE)?,
        };
        c.page().magic.store(MAGIC, SeqCst);
        c.page().version.store(VERSION, SeqCst);
        Ok((fd, c))
    }

    /// Maps a page received from an owner (writer side).
    pub fn attach(fd: &OwnedFd) -> io::Result<Control> {
        if sys::file_size(fd.as_raw_fd())? < PAGE as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "control page too small",
            ));
        }
        let c = Control {
            map: Mapping::new(fd.as_raw_fd(), PAGE)?,
        };
        if c.page().magic.load(SeqCst) != MAGIC || c.page().version.load(SeqCst) != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad control page",
            ));
        }
        Ok(c)
    }

    fn page(&self) -> &Page {
        debug_assert!(self.map.len() >= std::mem::size_of::<Page>());
        // SAFETY: the mapping is PAGE (4096) bytes, page-aligned, larger than `Page`, and lives
        // as long as `self`; `Page` has only atomic fields, so shared access from several
        // processes is data-race free.
        unsafe { &*(self.map.as_ptr() as *const Page) }
    }

    /// Reserves room for one message of `bytes`; false when it would exceed the limits.
    pub fn try_reserve(&self, bytes: usize, quota: usize, max_messages: usize) -> bool {
        let bytes = bytes as u64;
        self.page()
            .used
            .fetch_update(SeqCst, SeqCst, |cur| {
                let b = cur & BYTES_MASK;
                let n = cur >> COUNT_SHIFT;
                if b + bytes > quota as u64 || n + 1 > max_messages as u64 {
                    None
                } else {
                    Some(((n + 1) << COUNT_SHIFT) | (b + bytes))
                }
            })
            .is_ok()
    }

    /// Reserves room for `n` messages of `bytes` in total at once; false (nothing reserved) when
    /// they do not all fit.
    pub fn try_reserve_many(
        &self,
        bytes: usize,
        n: usize,
        quota: usize,
        max_messages: usize,
    ) -> bool {
        let (bytes, n) = (bytes as u64, n as u64);
        self.page()
            .used
            .fetch_update(SeqCst, SeqCst, |cur| {
                let b = cur & BYTES_MASK;
                let c = cur >> COUNT_SHIFT;
                if b + bytes > quota as u64 || c + n > max_messages as u64 {
                    None
                } else {
                    Some(((c + n) << COUNT_SHIFT) | (b + bytes))
                }
            })
            .is_ok()
    }

    /// Gives back the room of one message and wakes writers waiting for room.
    pub fn release(&self, bytes: usize) {
        let bytes = bytes as u64;
        let _ = self.page().used.fetch_update(SeqCst, SeqCst, |cur| {
            let b = (cur & BYTES_MASK).saturating_sub(bytes);
            let n = (cur >> COUNT_SHIFT).saturating_sub(1);
            Some((n << COUNT_SHIFT) | b)
        });
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        if self.page().waiters.load(SeqCst) > 0 {
            self.page().space.fetch_add(1, SeqCst);
            sys::futex_wake_all(&self.page().space);
        }
    }

    /// The current write-order counter (changes whenever a writer is about to send).
    pub fn seq_now(&self) -> u64 {
        self.page().seq.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Counts one record as sent (writer side, after the send succeeded).
    pub fn note_sent(&self) {
        self.page().sent.fetch_add(1, SeqCst);
    }

    /// Records writers have finished sending so far.
    pub fn sent_now(&self) -> u64 {
        self.page().sent.load(SeqCst)
    }

    /// The next write-order number.
    pub fn next_seq(&self) -> u64 {
        self.page().seq.fetch_add(1, SeqCst)
    }

    /// `n` consecutive write-order numbers; returns the first.
    pub fn next_seqs(&self, n: u64) -> u64 {
        self.page().seq.fetch_add(n, SeqCst)
    }

    /// Marks the slot closed (owner side) and wakes every waiting writer.
    pub fn close(&self) {
        self.page().closed.store(1, SeqCst);
        self.page().space.fetch_add(1, SeqCst);
        sys::futex_wake_all(&self.page().space);
    }

    /// True once the owner closed the slot.
    pub fn is_closed(&self) -> bool {
        self.page().closed.load(SeqCst) != 0
    }

    /// Waits up to `max` for room to be freed (or the slot to close); the caller re-checks.
    pub fn wait_for_room(
        &self,
        bytes: usize,
        quota: usize,
        max_messages: usize,
        max: Duration,
    ) -> bool {
        let p = self.page();
        p.waiters.fetch_add(1, SeqCst);
        let seen = p.space.load(SeqCst);
        let got = self.try_reserve(bytes, quota, max_messages);
        if !got && !self.is_closed() {
            sys::futex_wait(&p.space, seen, max);
        }
        p.waiters.fetch_sub(1, SeqCst);
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_and_release() {
        let (fd, owner) = Control::create().unwrap();
        let w = Control::attach(&fd).unwrap();
        assert!(w.try_reserve(60, 100, 10));
        assert!(!w.try_reserve(41, 100, 10));
        assert!(w.try_reserve(40, 100, 10));
        // Full: 100 of 100 bytes used, even a zero-byte message needs a message slot only.
        assert!(w.try_reserve(0, 100, 10));
        assert!(!w.try_reserve(1, 100, 10));
        owner.release(0);
        owner.release(60);
        assert!(w.try_reserve(60, 100, 10));
        assert_eq!(w.next_seq(), 0);
        assert_eq!(owner.next_seq(), 1);
        assert!(!w.is_closed());
        owner.close();
        assert!(w.is_closed());
    }

    #[test]
    fn message_count_limit() {
        let (_fd, c) = Control::create().unwrap();
        assert!(c.try_reserve(0, 100, 2));
        assert!(c.try_reserve(0, 100, 2));
        assert!(!c.try_reserve(0, 100, 2));
        c.release(0);
        assert!(c.try_reserve(0, 100, 2));
    }
}
