//! The daemon's side of the control socket ([`mailslot::daemon`] is the client's side and the
//! protocol): a blocking listener, one thread per client (a daemon has few local clients), each
//! request handed to the daemon's loop with the client's kernel credentials.
//!
//! No local user can lock others out: each user holds at most [`MAX_PER_USER`] connections, all
//! ordinary users together [`MAX_CLIENTS`], and root and the daemon's own user have
//! [`ADMIN_RESERVE`] more of their own, which ordinary users cannot take. A connection that sends
//! no request for [`IDLE_TIMEOUT`] is closed (clients connect again by themselves). A client
//! turned away gets a failure record (8, not enough memory) and the connection is closed.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailslot::daemon::{Reply, Request, CONTROL_ADDRESS, MAX_RECORD};
use mailslot::error::code;
use mailslot::trusted::Caller;
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

use crate::places::Places;
use crate::sys;

/// Connections one ordinary user may hold at once.
pub const MAX_PER_USER: usize = 16;
/// Connections all ordinary users may hold together (one thread each).
pub const MAX_CLIENTS: usize = 256;
/// Connections kept for root and the daemon's user (and the user the daemon runs as), on top of
/// [`MAX_CLIENTS`].
pub const ADMIN_RESERVE: usize = 64;
/// A connection without a request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listening control socket (`SOCK_SEQPACKET`, abstract name).
#[derive(Debug)]
pub struct ControlServer {
    listener: Socket,
}

impl ControlServer {
    /// Binds [`CONTROL_ADDRESS`] in this network namespace; `AddrInUse` when a daemon runs.
    pub fn bind() -> io::Result<Self> {
        Self::bind_at(CONTROL_ADDRESS)
    }

    /// Binds the abstract name `address` (tests use names of their own; clients connect with
    /// [`mailslot::daemon::DaemonClient::connect_to`]).
    pub fn bind_at(address: &str) -> io::Result<Self> {
        let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        // A leading NUL makes the name abstract: no file, gone with the socket.
        let name = format!("\0{address}");
        listener.bind(&SockAddr::unix(name)?)?;
        listener.listen(128)?;
        Ok(Self { listener })
    }

    /// Waits for the next client.
    pub fn accept(&self) -> io::Result<ControlConnection> {
        let (sock, _) = self.listener.accept()?;
        let caller = Caller::of_peer(&sock)?;
        Ok(ControlConnection { sock, caller })
    }
}

/// One client of the control socket.
#[derive(Debug)]
pub struct ControlConnection {
    sock: Socket,
    /// Who it is: the kernel's record of the client (`SO_PEERCRED`, `SO_PEERGROUPS`).
    pub caller: Caller,
}

impl ControlConnection {
    /// The next request record, `Ok(None)` when the client hung up. Records too large or
    /// malformed are `InvalidData`.
    pub fn recv(&self) -> io::Result<Option<Request>> {
        let mut buf = vec![0u8; MAX_RECORD];
        match sys::recv_record(&self.sock, &mut buf)? {
            0 => Ok(None),
            n if n > buf.len() => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too large",
            )),
            n => Request::decode(&buf[..n])
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }

    /// Sends a reply record.
    pub fn send(&self, reply: &Reply) -> io::Result<()> {
        let bytes = reply
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.sock.send_with_flags(&bytes, libc::MSG_NOSIGNAL)?;
        Ok(())
    }
}

/// A request from a control-socket client, with where to send the answer.
#[derive(Debug)]
pub struct ControlCall {
    /// The request.
    pub request: Request,
    /// Who asked: the kernel's record of the connection's peer (`SO_PEERCRED`,
    /// `SO_PEERGROUPS`).
    pub caller: Caller,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// Releases a connection's place when dropped.
struct Place {
    places: Arc<Mutex<Places>>,
    uid: u32,
    admin: bool,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.places
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .give_back(self.uid, self.admin);
    }
}

/// Root, the daemon's user and the user this process runs as.
pub(crate) fn is_admin(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    uid == me || mailslot::daemon::is_trusted_uid(uid)
}

/// A place for a connection of `uid`, if the limits allow one.
fn admit(places: &Arc<Mutex<Places>>, uid: u32) -> Option<Place> {
    let admin = is_admin(uid);
    places
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(uid, admin, (MAX_PER_USER, MAX_CLIENTS, ADMIN_RESERVE))
        .then(|| Place {
            places: places.clone(),
            uid,
            admin,
        })
}

/// Serves the control socket on threads of its own; each request becomes `wrap(call)` on `tx`.
pub(crate) fn spawn<C: Send + 'static>(
    server: ControlServer,
    tx: mpsc::Sender<C>,
    wrap: fn(ControlCall) -> C,
) -> io::Result<()> {
    let places = Arc::new(Mutex::new(Places::default()));
    std::thread::Builder::new()
        .name("mailslotd-control".into())
        .spawn(move || loop {
            let conn = match server.accept() {
                Ok(c) => c,
                Err(e) => {
                    error!("control socket: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let Some(place) = admit(&places, conn.caller.uid) else {
                debug!(
                    uid = conn.caller.uid,
                    "control connection refused: too many"
                );
                let _ = conn.send(&Reply::failed(
                    code::NOT_ENOUGH_MEMORY,
                    "too many connections to the mailslot daemon",
                ));
                continue;
            };
            if let Err(e) = conn.sock.set_read_timeout(Some(IDLE_TIMEOUT)) {
                debug!("control connection: {e}");
                continue;
            }
            let tx = tx.clone();
            let _ = std::thread::Builder::new()
                .name("mailslotd-client".into())
                .spawn(move || {
                    serve_client(&conn, &tx, wrap);
                    drop(place);
                });
        })
        .map(|_| ())
}

fn serve_client<C>(conn: &ControlConnection, tx: &mpsc::Sender<C>, wrap: fn(ControlCall) -> C) {
    let caller = conn.caller.clone();
    loop {
        let request = match conn.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            // Idle for IDLE_TIMEOUT: closed without a word.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return
            }
            Err(e) => {
                let _ = conn.send(&Reply::failed(code::INVALID_PARAMETER, e.to_string()));
                return;
            }
        };
        let (rtx, rrx) = oneshot::channel();
        let call = ControlCall {
            request,
            caller: caller.clone(),
            reply: rtx,
        };
        if tx.blocking_send(wrap(call)).is_err() {
            return;
        }
        let reply = rrx
            .blocking_recv()
            // 1 = ERROR_INVALID_FUNCTION, as before this answer had a type.
            .unwrap_or_else(|_| Reply::failed(1, "the daemon is shutting down"));
        if conn.send(&reply).is_err() {
            return;
        }
    }
}
