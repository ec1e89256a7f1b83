//! When the datagram loop waits a little before reading the socket again.
//!
//! Under steady traffic the loop is faster than the datagrams come: each wake-up (a context
//! switch, `epoll_wait`, the runtime's bookkeeping, one `recvmmsg`) finds one or two datagrams,
//! and that fixed cost, paid per datagram or two, is most of what the daemon spends. A wake-up
//! that comes soon after the loop last found the socket empty ([`BUSY_GAP`]) means traffic of
//! that kind. Then, after a read that brought some datagrams but not a full batch, the loop sleeps
//! [`LINGER`] and reads again — at most [`MAX_LINGERS`] times per wake-up, and only as long as
//! each read brings something — so that datagrams gather in the socket's buffer (4 MiB by
//! default) and one `recvmmsg` takes many. As a network card's interrupt moderation does: a
//! datagram after a quiet spell is read at once; under load each one may wait up to
//! `MAX_LINGERS × LINGER` (plus the kernel's timer slack) longer, and the name service and the
//! control socket with it.

use std::time::{Duration, Instant};

/// How long the loop sleeps before reading again under load.
pub(crate) const LINGER: Duration = Duration::from_micros(20);
/// Sleeps per wake-up at most.
pub(crate) const MAX_LINGERS: usize = 4;
/// A wake-up this soon after the socket was last found empty counts as steady traffic.
pub(crate) const BUSY_GAP: Duration = Duration::from_micros(100);

/// The loop's coalescing state (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    /// When the socket was last found empty (or the loop last gave up its turn).
    drained_at: Option<Instant>,
    /// This wake-up came under steady traffic.
    busy: bool,
    /// Sleeps in this wake-up so far.
    lingered: usize,
}

impl Coalescer {
    /// The loop woke up at `now` to read the socket.
    pub(crate) fn wake(&mut self, now: Instant) {
        self.busy = self
            .drained_at
            .is_some_and(|t| now.saturating_duration_since(t) < BUSY_GAP);
        self.lingered = 0;
    }

    /// A read brought some datagrams but not a full batch: whether to sleep [`LINGER`] and read
    /// again (counted).
    pub(crate) fn linger(&mut self) -> bool {
        let yes = self.busy && self.lingered < MAX_LINGERS;
        self.lingered += usize::from(yes);
        yes
    }

    /// The loop stops reading at `now` (the socket was empty, or its turn is over).
    pub(crate) fn drained(&mut self, now: Instant) {
        self.drained_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_after_a_quiet_spell_reads_at_once() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        // The very first wake-up: nothing known, no waiting.
        c.wake(t0);
        assert!(!c.linger());
        c.drained(t0);
        // Long after the socket was found empty: no waiting either.
        c.wake(t0 + BUSY_GAP + Duration::from_micros(1));
        assert!(!c.linger());
    }

    #[test]
    fn under_steady_traffic_it_waits_a_bounded_number_of_times_per_wake() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        c.drained(t0);
        for round in 0..3u32 {
            let t = t0 + BUSY_GAP / 2 * (round + 1);
            c.wake(t);
            let waits = (0..10).take_while(|_| c.linger()).count();
            assert_eq!(waits, MAX_LINGERS, "round {round}");
            assert!(!c.linger(), "no more in the same wake-up");
            c.drained(t);
        }
        // Traffic stops: the next wake-up is late, and reads at once.
        c.wake(t0 + BUSY_GAP * 10);
        assert!(!c.linger());
    }
}
