//! The session listener: accepts connections (bounded per peer and in all), runs each through a
//! [`Connection`], delivers what they bring and answers.
//!
//! Bounds: [`MAX_CONNECTIONS`] in all and [`MAX_PER_PEER`] per address (more are closed at
//! once, counted); a session request within [`REQUEST_TIMEOUT`] and then a frame at least every
//! [`IDLE_TIMEOUT`] (else closed, counted); frames of at most [`MAX_FRAME`] bytes (else closed,
//! counted); at most [`MAX_IN_FLIGHT`] requests of one connection being delivered at once (the
//! connection is not read meanwhile).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailslot_proto::NetbiosName;
use mailslot_router::session::{
    Begin, Connection, Incoming, Note, Output, Service, WriteLog, MAX_FRAME,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::debug;

use super::local::{LocalWriter, Origin, Outcome};
use super::{next_frame, Counters};

/// Connections at once, from all peers.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// Connections at once from one address.
pub(crate) const MAX_PER_PEER: usize = 16;
/// The session request must come this soon after the connection.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A session without a frame (a keep-alive counts) for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests of one connection being delivered at once.
pub(crate) const MAX_IN_FLIGHT: usize = 32;
/// Finished first-class writes remembered for exactly-once delivery.
const WRITE_LOG: usize = 16 * 1024;

type Waiter = oneshot::Sender<Outcome>;

/// What every connection shares.
struct Shared {
    names: Vec<(NetbiosName, Service)>,
    counters: Counters,
    writer: LocalWriter,
    log: Mutex<WriteLog<Waiter>>,
    peers: Mutex<HashMap<Ipv4Addr, usize>>,
}

impl Shared {
    fn service(&self, called: &NetbiosName) -> Option<Service> {
        self.names
            .iter()
            .find(|(n, _)| n.eq_ignore_case(called))
            .map(|(_, s)| *s)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, WriteLog<Waiter>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for a connection from `ip`, or `None` beyond the bounds.
    fn admit(self: &Arc<Self>, ip: Ipv4Addr) -> Option<Place> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = peers.values().sum();
        let mine = peers.entry(ip).or_default();
        if total >= MAX_CONNECTIONS || *mine >= MAX_PER_PEER {
            return None;
        }
        *mine += 1;
        Some(Place {
            shared: self.clone(),
            ip,
        })
    }
}

/// A connection's place, given back when dropped.
struct Place {
    shared: Arc<Shared>,
    ip: Ipv4Addr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut peers = self
            .shared
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = peers.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.ip);
            }
        }
    }
}

/// Starts accepting on `listener`; `names` are the called names we answer and what each
/// reaches.
pub(crate) fn spawn(
    listener: TcpListener,
    names: Vec<(NetbiosName, Service)>,
    counters: Counters,
    writer: LocalWriter,
) {
    let shared = Arc::new(Shared {
        names,
        counters,
        writer,
        log: Mutex::new(WriteLog::new(WRITE_LOG)),
        peers: Mutex::default(),
    });
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    debug!("session accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let IpAddr::V4(ip) = peer.ip() else { continue };
            let Some(place) = shared.admit(ip) else {
                shared.counters.count(|c| c.sessions_refused_limit += 1);
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                serve(stream, ip, &shared).await;
                drop(place);
            });
        }
    });
}

/// One connection, until it closes, misbehaves or idles.
async fn serve(stream: TcpStream, ip: Ipv4Addr, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    // Replies come from the reader (at once) and from deliveries (when done), in any order.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT * 2);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut conn = Connection::new(ip);
    let mut buf = Vec::new();
    'conn: loop {
        let wait = if conn.is_open() {
            IDLE_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        let frame = match tokio::time::timeout(wait, next_frame(&mut rd, &mut buf, MAX_FRAME)).await
        {
            Err(_) => {
                shared.counters.count(|c| c.sessions_idle_closed += 1);
                break;
            }
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    shared.counters.count(|c| c.sessions_malformed += 1);
                }
                break;
            }
        };
        for out in conn.handle_frame(&frame, |n| shared.service(n)) {
            match out {
                Output::Send(bytes) => {
                    if out_tx.send(bytes).await.is_err() {
                        break 'conn;
                    }
                }
                Output::Note(n) => note(&shared.counters, n),
                Output::Close => break 'conn,
                Output::Deliver(incoming) => {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break 'conn;
                    };
                    let (shared, out_tx) = (shared.clone(), out_tx.clone());
                    tokio::spawn(async move {
                        let reply = incoming.reply.clone();
                        let outcome = deliver(&shared, *incoming).await;
                        let _ = out_tx.send(reply.reply(outcome)).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    drop(out_tx);
    // Deliveries still running answer on their own; the writer ends after the last of them.
    let _ = writer.await;
}

fn note(counters: &Counters, n: Note) {
    counters.count(|c| match n {
        Note::Accepted => c.sessions_accepted += 1,
        Note::RefusedName => c.sessions_refused_name += 1,
        Note::Malformed => c.sessions_malformed += 1,
        Note::Unsupported => c.requests_unsupported += 1,
        Note::Refused => c.requests_refused += 1,
    });
}

/// Delivers what a session brought, once per write id; counts the outcome.
async fn deliver(shared: &Shared, incoming: Incoming) -> Outcome {
    let messenger = incoming.write_id.is_none();
    shared.counters.count(|c| {
        if messenger {
            c.messenger_received += 1;
        } else {
            c.first_class_received += 1;
        }
    });
    let outcome = match incoming.write_id {
        None => run(shared, incoming).await,
        Some(id) => {
            let (tx, rx) = oneshot::channel();
            let begun = shared.log().begin(id, tx);
            match begun {
                Begin::Run => {
                    let outcome = run(shared, incoming).await;
                    for w in shared.log().finish(id, outcome) {
                        let _ = w.send(outcome);
                    }
                    outcome
                }
                Begin::Done(outcome) => {
                    shared.counters.count(|c| c.first_class_repeated += 1);
                    return outcome;
                }
                Begin::Wait => {
                    shared.counters.count(|c| c.first_class_repeated += 1);
                    return rx.await.unwrap_or(Err(mailslot::error::code::BROKEN_PIPE));
                }
            }
        }
    };
    shared.counters.count(|c| match (messenger, outcome) {
        (true, Ok(())) => c.messenger_delivered += 1,
        (true, Err(_)) => c.messenger_failed += 1,
        (false, Ok(())) => c.first_class_delivered += 1,
        (false, Err(_)) => c.first_class_failed += 1,
    });
    outcome
}

async fn run(shared: &Shared, incoming: Incoming) -> Outcome {
    shared
        .writer
        .write(incoming.delivery, incoming.wait_ms, Origin::Network)
        .await
}
