//! Delivery of network messages into local mailslots.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use mailslot::{Class, MailslotWriter, OpenError, Timeout, WriteError, WriteOptions};
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
    /// Delivers one message (silently dropping and counting what cannot be delivered).
    pub fn deliver(
        &mut self,
        path: &str,
        data: &[u8],
        priority: u8,
        class: u8,
        sender: &str,
        ip: Ipv4Addr,
    ) {
        let key = path.to_ascii_lowercase();
        // First class must not wait here: a remote first-class write is dropped when full.
        let opts = WriteOptions::new()
            .priority(priority.min(9))
            .class(if class == 1 {
                Class::First
            } else {
                Class::Second
            })
            .timeout(Timeout::ZERO);
        for _attempt in 0..2 {
            if !self.writers.contains_key(&key) {
                if self.writers.len() >= MAX_WRITERS {
                    self.writers.clear();
                }
                let name = format!("\\\\.\\mailslot\\{path}");
                match MailslotWriter::open_timeout(&name, OPEN_TIMEOUT) {
                    Ok(w) => {
                        self.writers.insert(key.clone(), w);
                    }
                    Err(OpenError::NotFound(_)) => {
                        self.counters.dropped_no_mailslot += 1;
                        return;
                    }
                    Err(OpenError::InvalidName(_)) => {
                        self.counters.dropped_bad_name += 1;
                        return;
                    }
                    Err(e) => {
                        debug!("cannot open {name}: {e}");
                        self.counters.dropped_error += 1;
                        return;
                    }
                }
            }
            let Some(w) = self.writers.get(&key) else {
                return;
            };
            if !w.accepts_remote() {
                self.counters.dropped_refused_remote += 1;
                return;
            }
            match w.write_from_remote(data, opts, sender, ip) {
                Ok(()) => {
                    self.counters.delivered += 1;
                    return;
                }
                Err(WriteError::OwnerGone) => {
                    // The slot was closed (maybe re-created): open again once.
                    self.writers.remove(&key);
                }
                Err(WriteError::Full | WriteError::Timeout) => {
                    self.counters.dropped_full += 1;
                    return;
                }
                Err(WriteError::TooLarge { .. }) => {
                    self.counters.dropped_too_large += 1;
                    return;
                }
                Err(e) => {
                    debug!("cannot deliver to {path}: {e}");
                    self.writers.remove(&key);
                    self.counters.dropped_error += 1;
                    return;
                }
            }
        }
        self.counters.dropped_no_mailslot += 1;
    }
}
