//! The duplicate filter: remembers recent (source IP, DGM_ID) pairs of received datagrams.
//!
//! A direct-mapped table rather than a hash set with an expiry queue: one probe per datagram,
//! no timer, no allocation after the first use. A pair is forgotten when its window ends or when
//! a newer pair takes its slot, so under a flood of more than [`DUPLICATE_CAPACITY`] pairs within
//! the window the oldest are forgotten first (as a bounded set would evict them).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Slots in the table (a power of two).
pub(crate) const DUPLICATE_CAPACITY: usize = 16_384;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// Milliseconds since the filter's epoch when the pair was seen, plus one (0: empty).
    at: u64,
    ip: u32,
    id: u16,
}

/// Recent (source IP, DGM_ID) pairs.
pub(crate) struct DuplicateFilter {
    window_ms: u64,
    epoch: Option<Instant>,
    slots: Vec<Entry>,
}

impl std::fmt::Debug for DuplicateFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuplicateFilter")
            .field("window_ms", &self.window_ms)
            .field(
                "remembered",
                &self.slots.iter().filter(|e| e.at != 0).count(),
            )
            .finish()
    }
}

impl DuplicateFilter {
    /// An empty filter that remembers a pair for `window`. The table is allocated on first use.
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window_ms: window.as_millis().max(1) as u64,
            epoch: None,
            slots: Vec::new(),
        }
    }

    /// Whether `(ip, id)` was seen within the window before `now`; if not, remembers it as seen
    /// at `now`. A repeat does not extend the window.
    pub(crate) fn seen(&mut self, now: Instant, ip: Ipv4Addr, id: u16) -> bool {
        if self.slots.is_empty() {
            self.slots = vec![Entry::default(); DUPLICATE_CAPACITY];
        }
        let epoch = *self.epoch.get_or_insert(now);
        let at = now.saturating_duration_since(epoch).as_millis() as u64 + 1;
        let ip = u32::from(ip);
        // Consecutive DGM_IDs of one source take consecutive slots; sources are spread.
        let h = ip.wrapping_mul(0x9E37_79B1).rotate_left(16) ^ u32::from(id);
        let e = &mut self.slots[h as usize & (DUPLICATE_CAPACITY - 1)];
        if e.at != 0 && e.ip == ip && e.id == id && at.saturating_sub(e.at) < self.window_ms {
            return true;
        }
        *e = Entry { at, ip, id };
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_window_only() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new(Duration::from_secs(2));
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        assert!(!f.seen(t0, a, 7));
        assert!(f.seen(t0 + Duration::from_millis(1999), a, 7));
        // Another source or another id is new.
        assert!(!f.seen(t0, b, 7));
        assert!(!f.seen(t0, a, 8));
        // After the window the pair is new again, and remembered from then on.
        assert!(!f.seen(t0 + Duration::from_millis(2001), a, 7));
        assert!(f.seen(t0 + Duration::from_millis(3000), a, 7));
    }

    #[test]
    fn the_window_ends_exactly_after_its_length_and_a_repeat_does_not_extend_it() {
        let t0 = Instant::now();
        let window = Duration::from_secs(2);
        let mut f = DuplicateFilter::new(window);
        let a = Ipv4Addr::new(10, 0, 0, 1);
        assert!(!f.seen(t0, a, 7));
        // A repeat 1 ms before the window ends is a duplicate and does not move its start...
        assert!(f.seen(t0 + window - Duration::from_millis(1), a, 7));
        // ...so exactly one window after the first sight the pair is new again.
        assert!(
            !f.seen(t0 + window, a, 7),
            "a repeat exactly one window later was taken for a duplicate"
        );
        // From then on it is remembered anew, up to the same boundary.
        assert!(f.seen(t0 + window * 2 - Duration::from_millis(1), a, 7));
        assert!(!f.seen(t0 + window * 2, a, 7));
    }

    #[test]
    fn the_same_id_from_another_address_is_new_even_in_the_same_slot() {
        // Look for a second source whose datagram with the same DGM_ID takes the slot of the
        // first one's: then only the address tells the two apart. Each candidate is new; one
        // that replaced the first source's entry makes that entry new again.
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new(Duration::from_secs(2));
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let id = 0x1234;
        assert!(!f.seen(t0, a, id));
        let mut shared_slot = None;
        for n in 1..(1u32 << 22) {
            let b = Ipv4Addr::from(u32::from(a) + n);
            assert!(
                !f.seen(t0, b, id),
                "{b} with DGM_ID {id} taken for a duplicate of {a}'s datagram"
            );
            if !f.seen(t0, a, id) {
                shared_slot = Some(b);
                break;
            }
        }
        let b = shared_slot.expect("no source shares a slot with 10.0.0.1");
        // The two now take turns in that slot, and neither is ever the other's duplicate.
        for _ in 0..3 {
            assert!(!f.seen(t0, b, id), "{b} taken for {a}");
            assert!(!f.seen(t0, a, id), "{a} taken for {b}");
        }
    }

    #[test]
    fn a_full_cycle_of_ids_from_one_source_is_remembered_up_to_capacity() {
        let t0 = Instant::now();
        let mut f = DuplicateFilter::new(Duration::from_secs(2));
        let a = Ipv4Addr::new(192, 168, 1, 9);
        for id in 0..DUPLICATE_CAPACITY as u16 {
            assert!(!f.seen(t0, a, id));
        }
        for id in 0..DUPLICATE_CAPACITY as u16 {
            assert!(f.seen(t0, a, id), "id {id} forgotten");
        }
        // The next id overwrites the oldest slot that shares its index.
        assert!(!f.seen(t0, a, DUPLICATE_CAPACITY as u16));
        assert!(!f.seen(t0, a, 0));
    }
}
