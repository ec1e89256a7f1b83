//! The NetBIOS session service (TCP 139): the one listener that receives first-class writes
//! from other hosts and Messenger messages ([`server`]), and the pooled connections that carry
//! this host's first-class writes to others ([`client`]). The protocol decisions are in
//! [`mailslot_router::session`]; here are the sockets, the limits and the writes into local
//! mailslots ([`local`]).

pub(crate) mod client;
pub(crate) mod local;
pub(crate) mod server;

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use mailslot::daemon::SessionCounters;
use mailslot_proto::session as nbss;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The session counters, shared by the listener, its connections and the client pool.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters(Arc<Mutex<SessionCounters>>);

impl Counters {
    pub(crate) fn count(&self, f: impl FnOnce(&mut SessionCounters)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn get(&self) -> SessionCounters {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The next whole frame of a session stream, read into `buf` (which keeps what follows it).
/// Cancel-safe: what was read stays in `buf`. `Ok(None)` at a clean end of the stream;
/// `InvalidData` for a frame longer than `max_payload` or an invalid header.
pub(crate) async fn next_frame(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    max_payload: usize,
) -> io::Result<Option<Vec<u8>>> {
    loop {
        let need = nbss::frame_len(buf, max_payload)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if let Some(n) = need.filter(|&n| buf.len() >= n) {
            let rest = buf.split_off(n);
            return Ok(Some(std::mem::replace(buf, rest)));
        }
        buf.reserve(4096);
        if rd.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
    }
}
