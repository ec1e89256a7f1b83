//! The daemon's side of the control socket ([`mailslot::daemon`] is the client's side and the
//! protocol): a blocking listener, one thread per client (a daemon has few local clients), each
//! request handed to the daemon's loop with the client's kernel credentials.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use mailslot::daemon::{Reply, Request, CONTROL_ADDRESS, MAX_RECORD};
use mailslot::error::code;
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::sys;

/// Most control-socket clients served at once (one thread each); more are turned away.
const MAX_CONTROL_CLIENTS: usize = 256;

/// The listening control socket (`SOCK_SEQPACKET`, abstract name).
#[derive(Debug)]
pub struct ControlServer {
    listener: Socket,
}

/// Credentials of a connected client, from the kernel (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id.
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
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
        let peer = sys::peer_credentials(&sock)?;
        Ok(ControlConnection { sock, peer })
    }
}

/// One client of the control socket.
#[derive(Debug)]
pub struct ControlConnection {
    sock: Socket,
    /// Who it is.
    pub peer: PeerCredentials,
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
    /// The client's user id.
    pub uid: u32,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// Serves the control socket on threads of its own; each request becomes `wrap(call)` on `tx`.
pub(crate) fn spawn<C: Send + 'static>(
    server: ControlServer,
    tx: mpsc::Sender<C>,
    wrap: fn(ControlCall) -> C,
) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
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
            if active.fetch_add(1, SeqCst) >= MAX_CONTROL_CLIENTS {
                active.fetch_sub(1, SeqCst);
                let _ = conn.send(&Reply::failed(
                    code::NOT_ENOUGH_MEMORY,
                    "the mailslot daemon has too many clients",
                ));
                continue;
            }
            let tx = tx.clone();
            let active = active.clone();
            let _ = std::thread::Builder::new()
                .name("mailslotd-client".into())
                .spawn(move || {
                    serve_client(&conn, &tx, wrap);
                    active.fetch_sub(1, SeqCst);
                });
        })
        .map(|_| ())
}

fn serve_client<C>(conn: &ControlConnection, tx: &mpsc::Sender<C>, wrap: fn(ControlCall) -> C) {
    loop {
        let request = match conn.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = conn.send(&Reply::failed(code::INVALID_PARAMETER, e.to_string()));
                return;
            }
        };
        let (rtx, rrx) = oneshot::channel();
        let call = ControlCall {
            request,
            uid: conn.peer.uid,
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
