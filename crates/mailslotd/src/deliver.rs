//! Delivery of network messages into local mailslots.

use std::collections::HashMap;
use std::time::Duration;

use mailslot::daemon::DeliveryCounters;
use mailslot::trusted::RemoteMessage;
use mailslot::{MailslotWriter, OpenError, WriteError};
use mailslot_router::Delivery;
use tracing::debug;

/// How long opening a local mailslot may take before the message is dropped.
const OPEN_TIMEOUT: Duration = Duration::from_millis(500);
/// Most open writer handles kept.
const MAX_WRITERS: usize = 1024;

/// Open writers by mailslot key, reused across messages.
#[derive(Default)]
pub(crate) struct Deliverer {
    writers: HashMap<String, MailslotWriter>,
    /// What happened to each message.
    pub counters: DeliveryCounters,
}

impl Deliverer {
    /// Delivers messages, grouping those for the same mailslot into one record (order kept
    /// within a mailslot). What cannot be delivered is dropped silently and counted.
    pub(crate) fn deliver_all(&mut self, all: &[Delivery<'_>]) {
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
        for group in groups {
            let key = group[0].path.to_ascii_lowercase();
            let msgs: Vec<RemoteMessage<'_>> = group.iter().map(|d| d.message()).collect();
            self.deliver_batch(&key, &group[0].path, &msgs);
        }
    }

    fn deliver_batch(&mut self, key: &str, path: &str, msgs: &[RemoteMessage<'_>]) {
        let n = msgs.len() as u64;
        for _attempt in 0..2 {
            if !self.writers.contains_key(key) {
                if self.writers.len() >= MAX_WRITERS {
                    self.writers.clear();
                }
                let name = format!("\\\\.\\mailslot\\{path}");
                match MailslotWriter::open_timeout(&name, OPEN_TIMEOUT) {
                    Ok(w) => {
                        self.writers.insert(key.to_string(), w);
                    }
                    Err(OpenError::NotFound(_)) => {
                        self.counters.dropped_no_mailslot += n;
                        return;
                    }
                    Err(OpenError::InvalidName(_)) => {
                        self.counters.dropped_bad_name += n;
                        return;
                    }
                    Err(e) => {
                        debug!("cannot open {name}: {e}");
                        self.counters.dropped_error += n;
                        return;
                    }
                }
            }
            let Some(w) = self.writers.get(key) else {
                return;
            };
            if !w.accepts_remote() {
                self.counters.dropped_refused_remote += n;
                return;
            }
            match w.write_batch_from_remote(msgs) {
                Ok(o) => {
                    self.counters.delivered += o.queued as u64;
                    self.counters.dropped_full += o.full as u64;
                    self.counters.dropped_too_large += o.too_large as u64;
                    return;
                }
                Err(WriteError::OwnerGone) => {
                    // The slot was closed (maybe re-created): open again once.
                    self.writers.remove(key);
                }
                Err(e) => {
                    debug!("cannot deliver to {path}: {e}");
                    self.writers.remove(key);
                    self.counters.dropped_error += n;
                    return;
                }
            }
        }
        self.counters.dropped_no_mailslot += n;
    }
}
