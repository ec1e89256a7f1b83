//! `mailslotd`, the mailslot network daemon: the I/O shell around the protocol core
//! `mailslot-router`.
//!
//! - [`Daemon`] runs the router on sockets it is handed ([`Sockets`]): the two UDP sockets
//!   (datagrams, name service), the control socket for local programs ([`control`]) and,
//!   optionally, the mailslot directory ([`directory`]) and the metrics listener. It delivers
//!   what arrives into local mailslots.
//! - [`run`] is the program (`mailslotd`, also `mailslot daemon`): it reads the configuration
//!   ([`config`], [`settings`]), binds the real sockets, drops root, handles signals and runs a
//!   [`Daemon`].
//!
//! Exit status: [`EXIT_OK`] after SIGTERM/SIGINT (names released), [`EXIT_ERROR`] on a
//! configuration or startup error, [`EXIT_NAME_CONFLICT`] when another node holds our name.

mod coalesce;
pub mod config;
pub mod control;
pub mod daemon;
mod deliver;
pub mod directory;
pub mod metrics;
mod places;
pub mod samba;
mod session;
pub mod settings;
mod sys;

use std::net::{SocketAddr, SocketAddrV4};

use anyhow::{Context, Result};
use tracing::{info, warn};

pub use config::netbios_name_for_host;
pub use control::ControlServer;
pub use daemon::{Daemon, Sockets, Stopper, EXIT_ERROR, EXIT_NAME_CONFLICT, EXIT_OK};
pub use directory::DirectoryServer;
pub use settings::{DaemonArgs, Settings};

/// Runs the daemon until SIGTERM/SIGINT; returns the process exit status.
pub fn run(args: &DaemonArgs) -> u8 {
    init_logging();
    let settings = match settings::load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailslotd: error: {e:#}");
            return EXIT_ERROR;
        }
    };
    if args.validate {
        print!("{}", settings::describe(&settings.router));
        println!("mode reason = {:?}", settings.mode.reason);
        return EXIT_OK;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailslotd: error: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match rt.block_on(serve(settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailslotd: error: {e:#}");
            EXIT_ERROR
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILSLOTD_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Binds the configured sockets, drops root, and runs a [`Daemon`] until a signal.
async fn serve(settings: Settings) -> Result<u8> {
    let sockets = bind(&settings.file, settings.router.beside_nmbd)?;
    sys::drop_privileges(&settings.file.user)?;
    info!(reason = %settings.mode.reason, "mode");
    let mut daemon = Daemon::new(settings.router, sockets);
    daemon.set_mode(settings.mode);
    if let Some(path) = settings.samba_socket {
        samba::spawn(path, daemon.commands());
    }
    let stopper = daemon.stopper();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::spawn(async move {
        let why = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        stopper.stop(why).await;
    });
    daemon.run().await
}

/// The sockets of the configuration file: UDP on `bind_address`, the control socket and the
/// mailslot directory of this network namespace, the metrics port on 127.0.0.1.
///
/// Beside Samba: the datagram socket shares `0.0.0.0:PORT` with nmbd (`SO_REUSEADDR` only, never
/// `SO_REUSEPORT` nor an interface address, which would take unicast from nmbd: it receives the
/// broadcasts and sends from port 138), and the name-service socket is an ephemeral port that
/// only sends queries and reads their answers.
fn bind(file: &config::DaemonConfig, beside_nmbd: bool) -> Result<Sockets> {
    let bind_address = if beside_nmbd {
        if !file.bind_address.is_unspecified() {
            warn!(
                "beside Samba: bind_address {} ignored, binding 0.0.0.0",
                file.bind_address
            );
        }
        std::net::Ipv4Addr::UNSPECIFIED
    } else {
        file.bind_address
    };
    let datagram = udp_socket(SocketAddrV4::new(bind_address, file.port), file.recv_buffer)?;
    let name_port = if beside_nmbd { 0 } else { file.name_port };
    let name = udp_socket(SocketAddrV4::new(bind_address, name_port), file.recv_buffer)?;
    let control = ControlServer::bind().map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("another mailslot daemon runs in this network namespace")
        } else {
            anyhow::anyhow!("cannot bind the control socket: {e}")
        }
    })?;
    let directory = directory_server();
    let metrics = match file.metrics_port {
        Some(port) => Some(
            std::net::TcpListener::bind(("127.0.0.1", port))
                .with_context(|| format!("cannot bind metrics port 127.0.0.1:{port}"))?,
        ),
        None => None,
    };
    let session = session_listener(bind_address, file.session_port)?;
    info!("sockets bound");
    Ok(Sockets {
        datagram,
        name,
        control,
        directory,
        metrics,
        session,
    })
}

/// The mailslot directory's socket. Not fatal when it cannot be bound (its address taken by
/// another process): the daemon runs without it and says so, and every mailslot then has a
/// socket of its own.
fn directory_server() -> Option<DirectoryServer> {
    match DirectoryServer::bind() {
        Ok(d) => {
            directory::raise_fd_limit();
            Some(d)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            warn!(
                "the mailslot directory's address is taken: running without the directory \
                 (every mailslot has a socket of its own)"
            );
            None
        }
        Err(e) => {
            warn!("cannot bind the mailslot directory ({e}): running without it");
            None
        }
    }
}

/// The session service's listener on `port` (none for 0). A port already taken — Samba's smbd
/// owns TCP 139 on most Samba hosts — is not fatal: the daemon runs without it and says so
/// (first-class writes and Messenger sessions from other hosts are then refused by the host).
fn session_listener(addr: std::net::Ipv4Addr, port: u16) -> Result<Option<std::net::TcpListener>> {
    if port == 0 {
        return Ok(None);
    }
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    match s.bind(&SocketAddr::V4(SocketAddrV4::new(addr, port)).into()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            warn!(
                "TCP {port} is in use (Samba's smbd?): first-class writes and Messenger sessions \
                 from other hosts cannot be received; see the README (\"On a host that runs Samba\")"
            );
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot bind TCP {addr}:{port}")),
    }
    s.listen(128)?;
    Ok(Some(s.into()))
}

/// A UDP socket bound to `addr` as the daemon binds its own: broadcast allowed, the address
/// reusable, non-blocking, and a receive buffer of `recv_buffer` bytes where the kernel allows
/// (0: its default).
pub fn udp_socket(addr: SocketAddrV4, recv_buffer: usize) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    if recv_buffer > 0 {
        // Best effort: the kernel caps it at net.core.rmem_max (root may force more).
        if s.set_recv_buffer_size(recv_buffer).is_err() {
            warn!("cannot set SO_RCVBUF to {recv_buffer}");
        }
        sys::force_recv_buffer(&s, recv_buffer);
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())
        .with_context(|| format!("cannot bind UDP {addr}"))?;
    Ok(s.into())
}
