//! The owner's in-process message queue: priority 9 first, FIFO within a priority.
//!
//! Entries carry the stamp (`CLOCK_MONOTONIC`) their writer took when it wrote, so messages taken
//! in from different writers in a different order are still queued in write order. (A writer
//! that is the slot's only one stamps 0: see `Control::set_sole_writer`.) A message
//! moves ahead of at most [`MAX_OVERTAKE`] queued messages of its priority: an honest writer's
//! message is never that late, and a writer that forges old stamps cannot make each insertion
//! cost a walk through the whole queue.

use std::collections::VecDeque;

use crate::types::{Message, MAX_PRIORITY};

/// Most queued messages of its priority a message taken in late can move ahead of.
pub(crate) const MAX_OVERTAKE: usize = 1024;

/// One queued message, its write-order stamp and the connection it came from.
#[derive(Debug)]
pub(crate) struct Entry {
    pub seq: u64,
    /// The owner's id of the writer's connection (0: none), for per-writer accounting.
    pub origin: u64,
    pub msg: Message,
}

type Levels = [VecDeque<Entry>; MAX_PRIORITY as usize + 1];

/// Priority queue with per-level FIFO. The levels are allocated with the first message, so an
/// idle mailslot costs a pointer.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    levels: Option<Box<Levels>>,
    count: usize,
    bytes: usize,
}

impl Queue {
    /// The levels, lowest priority first (none before the first message).
    pub(crate) fn levels(&self) -> &[VecDeque<Entry>] {
        self.levels.as_deref().map_or(&[], |l| &l[..])
    }

    pub(crate) fn push(&mut self, e: Entry) {
        let levels = self.levels.get_or_insert_with(Box::default);
        let level = &mut levels[usize::from(e.msg.priority.min(MAX_PRIORITY))];
        self.count += 1;
        self.bytes += e.msg.data.len();
        // Almost always in order: search from the back, at most MAX_OVERTAKE entries.
        let floor = level.len().saturating_sub(MAX_OVERTAKE);
        let pos = level
            .range(floor..)
            .rposition(|x| x.seq <= e.seq)
            .map_or(floor, |i| floor + i + 1);
        level.insert(pos, e);
    }

    pub(crate) fn head(&self) -> Option<&Message> {
        // Empty is the usual case of a read straight from a ring: no walk over the levels.
        if self.count == 0 {
            return None;
        }
        self.levels()
            .iter()
            .rev()
            .find_map(|l| l.front())
            .map(|e| &e.msg)
    }

    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<Message> {
        self.pop_entry().map(|e| e.msg)
    }

    /// Removes the head with its stamp and origin.
    pub(crate) fn pop_entry(&mut self) -> Option<Entry> {
        let e = self
            .levels
            .as_deref_mut()?
            .iter_mut()
            .rev()
            .find_map(VecDeque::pop_front)?;
        self.count -= 1;
        self.bytes -= e.msg.data.len();
        Some(e)
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Class, Sender};

    fn m(prio: u8, tag: u8) -> Message {
        Message {
            data: vec![tag],
            priority: prio,
            class: Class::Second,
            sender: Sender::Local {
                pid: 1,
                uid: 0,
                gid: 0,
            },
        }
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = Queue::default();
        let input = [(0, 1), (5, 2), (9, 3), (5, 4), (0, 5), (9, 6)];
        for (seq, (p, t)) in input.iter().enumerate() {
            q.push(Entry {
                seq: seq as u64,
                origin: 0,
                msg: m(*p, *t),
            });
        }
        assert_eq!(q.len(), 6);
        assert_eq!(q.bytes(), 6);
        assert_eq!(q.head().unwrap().data, vec![3]);
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|m| m.data[0]).collect();
        assert_eq!(order, vec![3, 6, 2, 4, 1, 5]);
        assert_eq!(q.len(), 0);
        assert!(q.head().is_none());
    }

    #[test]
    fn out_of_order_arrival_is_sorted_by_seq() {
        let mut q = Queue::default();
        for seq in [3u64, 1, 2, 0, 5, 4] {
            q.push(Entry {
                seq,
                origin: 0,
                msg: m(2, seq as u8),
            });
        }
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|m| m.data[0]).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_late_old_stamp_overtakes_a_bounded_number_of_messages() {
        let mut q = Queue::default();
        for seq in 100..100 + MAX_OVERTAKE as u64 + 10 {
            q.push(Entry {
                seq,
                origin: 0,
                msg: m(3, 1),
            });
        }
        q.push(Entry {
            seq: 0,
            origin: 0,
            msg: m(3, 2),
        });
        let tags: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|m| m.data[0]).collect();
        assert_eq!(tags.iter().position(|&t| t == 2), Some(10));
    }

    #[test]
    fn zero_length_messages_count() {
        let mut q = Queue::default();
        let mut e = m(0, 0);
        e.data.clear();
        q.push(Entry {
            seq: 0,
            origin: 0,
            msg: e,
        });
        assert_eq!(q.len(), 1);
        assert_eq!(q.bytes(), 0);
        assert_eq!(q.head().unwrap().data.len(), 0);
    }

    proptest::proptest! {
        #[test]
        fn pops_are_by_priority_then_stamp_then_arrival(
            items in proptest::collection::vec((0u8..=9, 0u64..50), 0..200)
        ) {
            let mut q = Queue::default();
            for (i, (p, seq)) in items.iter().enumerate() {
                // The origin records the arrival index, to check ties.
                q.push(Entry { seq: *seq, origin: i as u64, msg: m(*p, 0) });
            }
            let mut expected: Vec<(u8, u64, u64)> = items
                .iter()
                .enumerate()
                .map(|(i, (p, seq))| (*p, *seq, i as u64))
                .collect();
            // Priority 9 first; within a priority the oldest stamp; equal stamps in arrival order.
            expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let got: Vec<(u8, u64, u64)> = std::iter::from_fn(|| q.pop_entry())
                .map(|e| (e.msg.priority, e.seq, e.origin))
                .collect();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
