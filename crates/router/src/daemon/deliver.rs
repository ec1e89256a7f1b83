//! Delivery of network messages into local mailslots.

use std::collections::HashMap;
use std::time::Duration;

use mailslot::{Class, MailslotWriter, OpenError, RemoteMessage, WriteError};

use crate::router::Incoming;
use tracing::debug;

/// How long opening a local mailslot may take before the message is dropped.
const OPEN_TIMEOUT: Duration = Duration::from_millis(500);
/// Most open writer handles kept.
const MAX_WRITERS: usize = 1024;

/// Delivery counters (the router counts what happens before).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DeliveryCounters {
    /// Messages queued into a local mailslot.
    pub delivered: u64,
    /// Dropped: no local mailslot of that name.
    pub dropped_no_mailslot: u64,
    /// Dropped: the mailslot is full.
    pub dropped_full: u64,
    /// Dropped: the mailslot refuses messages from other hosts.
    pub dropped_refused_remote: u64,
    /// Dropped: larger than the mailslot's maximum message size.
    pub dropped_too_large: u64,
    /// Dropped: the name is not a valid local mailslot name.
    pub dropped_bad_name: u64,
    /// Dropped: any other error.
    pub dropped_error: u64,
}

/// Open writers by mailslot key, reused across messages.
#[derive(Default)]
pub struct Deliverer {
    writers: HashMap<String, MailslotWriter>,
    /// What happened to each message.
    pub counters: DeliveryCounters,
}

impl Deliverer {
    /// Delivers messages, grouping those for the same mailslot into one record (order kept
    /// within a mailslot). What cannot be delivered is dropped silently and counted.
    pub fn deliver_all(&mut self, all: &[Incoming<'_>]) {
        // Almost always one mailslot per batch: a linear search beats hashing here.
        let mut groups: Vec<Vec<&Incoming<'_>>> = Vec::new();
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
            let msgs: Vec<RemoteMessage<'_>> = group
                .iter()
                .map(|d| RemoteMessage {
                    data: d.data,
                    priority: d.priority.min(9),
                    class: if d.class == 1 {
                        Class::First
                    } else {
                        Class::Second
                    },
                    sender_name: &d.sender_name,
                    sender_ip: d.sender_ip,
                })
                .collect();
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
