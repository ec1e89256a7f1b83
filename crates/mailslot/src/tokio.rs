//! Async access with tokio (feature `tokio`).
//!
//! [`AsyncMailslot`] waits for messages on the tokio reactor instead of blocking a thread;
//! [`write_async`] runs a (possibly waiting, first-class) write on tokio's blocking pool.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use crate::transport::slot::Slot;
use crate::{Mailslot, MailslotWriter, Message, ReadError, Timeout, WriteError, WriteOptions};

struct WaitFd(RawFd);

impl AsRawFd for WaitFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// While alive, this task counts as a reader waiting on the slot: the service thread leaves the
/// slot's sockets alone so that readiness reaches the task.
struct Waiting<'a>(&'a Slot);

impl<'a> Waiting<'a> {
    fn new(slot: &'a Slot) -> Self {
        slot.begin_wait(&mut slot.lock(), false);
        Waiting(slot)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.end_wait(&mut self.0.lock(), false);
    }
}

/// An owner handle whose reads are `async`.
pub struct AsyncMailslot {
    // Declared first so that it is deregistered before `slot` closes the descriptor.
    fd: AsyncFd<WaitFd>,
    slot: Mailslot,
}

impl AsyncMailslot {
    /// Wraps an owner handle; must be called inside a tokio runtime.
    pub fn new(slot: Mailslot) -> io::Result<Self> {
        // SAFETY: the descriptor belongs to `slot`, which is stored beside the registration and
        // dropped after it (field order), so it stays open for as long as it is registered.
        let fd = unsafe {
            AsyncFd::register_with_interest(WaitFd(slot.as_raw_fd()), tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)?;
        Ok(Self { slot, fd })
    }

    /// The blocking handle (for `info`, `peek`, …).
    pub fn get_ref(&self) -> &Mailslot {
        &self.slot
    }

    /// Waits for the next message and removes it. Cancel-safe: a message is only taken when the
    /// future completes.
    pub async fn read_message(&self) -> Result<Message, ReadError> {
        loop {
            match self.slot.read_message_timeout(Timeout::ZERO) {
                Err(ReadError::Timeout) => {}
                other => return other,
            }
            let waiting = Waiting::new(self.slot.slot());
            // A message may have been moved into the queue between the read and the wait.
            if self.slot.info().count > 0 {
                continue;
            }
            let mut guard = self.fd.readable().await?;
            guard.clear_ready();
            drop(waiting);
        }
    }
}

/// Writes one message on tokio's blocking pool (a first-class write may wait for room).
pub async fn write_async(
    writer: Arc<MailslotWriter>,
    data: Vec<u8>,
    opts: WriteOptions,
) -> Result<(), WriteError> {
    tokio::task::spawn_blocking(move || writer.write_with(&data, opts))
        .await
        .map_err(|e| WriteError::Io(io::Error::other(e)))?
}
