//! Writes that must report their outcome into local mailslots: what a session brought (a
//! first-class write from another host, a Messenger message) and a local program's first-class
//! write to this host's own name. These run on tokio's blocking threads (a first-class write
//! may wait for room up to its timeout); at most [`MAX_BLOCKING`] at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailslot::error::code::{
    ACCESS_DENIED, FILE_NOT_FOUND, GEN_FAILURE, INVALID_PARAMETER, SEM_TIMEOUT,
};
use mailslot::trusted::Caller;
use mailslot::{MailslotWriter, OpenError, Timeout, WriteError, WriteOptions};
use mailslot_router::Delivery;
use tokio::sync::Semaphore;

use crate::deliver::OPEN_TIMEOUT;

/// Writes into local mailslots that may wait, at once at most.
pub(crate) const MAX_BLOCKING: usize = 64;
/// Open handles kept for the next write to the same mailslot.
const CACHED_HANDLES: usize = 64;

/// The outcome of a write, as a Win32 number on error.
pub(crate) type Outcome = Result<(), u32>;

/// Writes into local mailslots with their outcome, bounded, reusing open handles.
#[derive(Clone)]
pub(crate) struct LocalWriter {
    permits: Arc<Semaphore>,
    handles: Arc<Mutex<HashMap<String, Arc<MailslotWriter>>>>,
}

impl Default for LocalWriter {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_BLOCKING)),
            handles: Arc::default(),
        }
    }
}

/// Who a write is from.
pub(crate) enum Origin {
    /// Another host (the delivery's sender name and address): only slots that accept remote
    /// messages take it.
    Network,
    /// A local program: the slot's access policy applies to it.
    Local(Caller),
}

impl LocalWriter {
    /// Writes `d` (waiting up to `wait_ms` for room, `None` = forever) as `from`.
    pub(crate) async fn write(
        &self,
        d: Delivery<'static>,
        wait_ms: Option<u64>,
        from: Origin,
    ) -> Outcome {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return Err(GEN_FAILURE);
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_blocking(&d, wait_ms, &from))
            .await
            .unwrap_or(Err(GEN_FAILURE))
    }

    fn write_blocking(&self, d: &Delivery<'_>, wait_ms: Option<u64>, from: &Origin) -> Outcome {
        let opts = WriteOptions {
            priority: d.priority.min(9),
            class: d.class,
            timeout: wait_ms.map_or(Timeout::Forever, |ms| {
                Timeout::After(Duration::from_millis(ms))
            }),
        };
        // A cached handle whose owner has gone: open again once.
        for attempt in 0..2 {
            let w = self.handle(&d.path, attempt > 0)?;
            let r = match from {
                Origin::Network if !w.accepts_remote() => return Err(ACCESS_DENIED),
                Origin::Network => w.write_from_remote(&d.data, opts, &d.sender_name, d.sender_ip),
                Origin::Local(caller) => w.write_on_behalf(&d.data, opts, caller),
            };
            match r {
                Err(WriteError::OwnerGone) => self.forget(&d.path),
                r => return r.map_err(write_code),
            }
        }
        Err(FILE_NOT_FOUND)
    }

    fn handle(&self, path: &str, fresh: bool) -> Result<Arc<MailslotWriter>, u32> {
        let key = path.to_ascii_lowercase();
        if !fresh {
            let cached = self.lock().get(&key).cloned();
            if let Some(w) = cached {
                return Ok(w);
            }
        }
        let w = MailslotWriter::open_timeout(&format!("\\\\.\\mailslot\\{path}"), OPEN_TIMEOUT)
            .map(Arc::new)
            .map_err(|e| open_code(&e))?;
        let mut handles = self.lock();
        if handles.len() >= CACHED_HANDLES {
            handles.clear();
        }
        handles.insert(key, w.clone());
        Ok(w)
    }

    fn forget(&self, path: &str) {
        self.lock().remove(&path.to_ascii_lowercase());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<MailslotWriter>>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The Win32 number a writer sees when the mailslot cannot be opened.
fn open_code(e: &OpenError) -> u32 {
    match e {
        OpenError::NotFound(_) => FILE_NOT_FOUND,
        OpenError::InvalidName(_) => INVALID_PARAMETER,
        OpenError::AccessDenied(_) | OpenError::OwnerNotAllowed { .. } => ACCESS_DENIED,
        e => e.win32_code(),
    }
}

/// The Win32 number a writer sees for a failed write.
fn write_code(e: WriteError) -> u32 {
    match e {
        WriteError::Open(e) => open_code(&e),
        WriteError::TooLarge { .. } | WriteError::InvalidPriority(_) => INVALID_PARAMETER,
        // A first-class write waited until its timeout (or had none and the slot is full).
        WriteError::Timeout | WriteError::Full => SEM_TIMEOUT,
        e => e.win32_code(),
    }
}
