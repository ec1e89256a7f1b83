//! The thin tokio shell around the protocol core ([`Router`]): a [`Daemon`] is handed its
//! sockets, runs the clock, moves packets between the sockets and the router, delivers into local
//! mailslots and answers the control socket. Everything the protocol decides is in the router.
//!
//! The loop waits on four kinds of event and has one method for each: datagrams on UDP 138
//! (`on_datagrams`), a packet on UDP 137 (`on_name_packet`), a [`Command`]
//! from one of the daemon's other sources (`on_command`), and the router's timer. The
//! other sources — the control socket, signals, and later the NetBIOS session service and the
//! Samba mode — each run on their own and send [`Command`]s over one channel, so adding one adds
//! a module and a `Command` variant, not a branch to the loop.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mailslot::daemon::{ModeStatus, Ports, Reply, Request, Resolution, Status};
use mailslot::error::code;
use mailslot_proto::NetbiosName;
use mailslot_router::session::Service;
use mailslot_router::{Delivery, Event, FirstClassWrite, LocalRequest, Port, Router, RouterConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info};

use crate::coalesce::{Coalescer, LINGER};
use crate::control::{self, ControlCall, ControlServer};
use crate::deliver::Deliverer;
use crate::directory::{DirectoryHandle, DirectoryServer};
use crate::metrics::{self, Published};
use crate::session::{self, local::LocalWriter, local::Origin};
use crate::sys::RecvBatch;

/// Datagrams taken per `recvmmsg`.
const BATCH: usize = 64;
/// `recvmmsg` calls per wake-up at most (so that timers, the name service and deliveries keep
/// their turn).
const BATCHES_PER_WAKE: usize = 8;
/// Largest datagram read whole. A NetBIOS datagram carries at most 512 bytes of user data after a
/// header and two names of at most 34 + 255 bytes each (RFC 1002), about 1.1 KiB; a longer one is
/// malformed (counted, dropped). The buffers are kept this small, and not a power of two apart,
/// so that a batch stays in the first-level cache instead of aliasing onto the same cache sets.
const DATAGRAM_BUFFER: usize = 2048 - 64;
/// How often the status the metrics endpoint serves is refreshed.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(500);
/// Depth of the command channel.
const COMMAND_QUEUE: usize = 256;

/// Exit status: clean shutdown.
pub const EXIT_OK: u8 = 0;
/// Exit status: configuration, socket or startup error.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: another node holds our computer name.
pub const EXIT_NAME_CONFLICT: u8 = 3;

/// The sockets a daemon runs on, bound by the caller ([`crate::run`] binds the real ones; tests
/// bind loopback ports and a control name of their own).
#[derive(Debug)]
pub struct Sockets {
    /// NetBIOS datagram service (UDP 138).
    pub datagram: StdUdpSocket,
    /// NetBIOS name service (UDP 137).
    pub name: StdUdpSocket,
    /// The control socket for local programs.
    pub control: ControlServer,
    /// The mailslot directory for local owners and writers, if the daemon serves it.
    pub directory: Option<DirectoryServer>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<TcpListener>,
    /// The NetBIOS session service (TCP 139), if the daemon listens: first-class writes and
    /// Messenger messages from other hosts.
    pub session: Option<TcpListener>,
}

/// Something for the daemon's loop from one of its sources other than the UDP sockets.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// A request from the control socket.
    Control(ControlCall),
    /// Release the names and stop (a signal, or the owner of a [`Stopper`]).
    Stop(&'static str),
    /// Beside Samba: a datagram nmbd relayed through its unexpected socket.
    Relayed {
        /// Where nmbd received it from.
        source: std::net::SocketAddrV4,
        /// The NetBIOS datagram.
        datagram: Vec<u8>,
    },
    /// Beside Samba: the unexpected socket's connection came or went.
    Samba(crate::samba::SambaEvent),
}

/// Stops a running [`Daemon`] (cheap to clone).
#[derive(Debug, Clone)]
pub struct Stopper(mpsc::Sender<Command>);

impl Stopper {
    /// Asks the daemon to release its names and stop; `why` is logged.
    pub async fn stop(&self, why: &'static str) {
        let _ = self.0.send(Command::Stop(why)).await;
    }

    /// The same from a thread outside any tokio runtime (it blocks; it panics inside one).
    pub fn stop_blocking(&self, why: &'static str) {
        let _ = self.0.blocking_send(Command::Stop(why));
    }
}

/// The daemon: the router, the delivery, the answers it owes, and its sockets.
pub struct Daemon {
    router: Router,
    deliverer: Deliverer,
    /// Until [`run`](Self::run) takes them.
    sockets: Option<Sockets>,
    started: Instant,
    commands: mpsc::Receiver<Command>,
    command_tx: mpsc::Sender<Command>,
    /// Answers owed to control clients, by router request id.
    pending: HashMap<u64, Pending>,
    next_id: u64,
    /// Deliveries from router events (our own group writes, writes to ourselves).
    deliveries: Vec<Delivery<'static>>,
    /// The status the metrics endpoint serves, when there is one.
    published: Option<Published>,
    last_publish: Option<Instant>,
    /// When the datagram loop waits before reading again.
    coalescer: Coalescer,
    exit: Option<u8>,
    /// The mode (standalone or beside Samba) as the status reports it.
    mode: ModeStatus,
    /// First-class writes to other hosts.
    pool: session::client::Pool,
    /// Writes with an outcome into local mailslots (shared with the session service).
    local: LocalWriter,
    session_counters: session::Counters,
    /// The session service's port, 0 when it does not listen.
    session_port: u16,
    /// The mailslot directory once serving (stopped when the daemon is dropped).
    directory: Option<DirectoryHandle>,
}

/// An answer owed to a control client.
struct Pending {
    reply: oneshot::Sender<Reply>,
    /// For a resolution: the name asked, as the answer names it.
    name: Option<String>,
}

/// The daemon's sockets once in the runtime.
struct Io {
    dgm: UdpSocket,
    ns: UdpSocket,
    batch: RecvBatch,
    name_buf: Vec<u8>,
}

impl Daemon {
    /// A daemon for `config` on `sockets`; nothing runs before [`run`](Self::run).
    pub fn new(config: RouterConfig, sockets: Sockets) -> Self {
        let started = Instant::now();
        let (command_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let session_counters = session::Counters::default();
        Self {
            pool: session::client::Pool::new(session_counters.clone()),
            local: LocalWriter::default(),
            session_counters,
            session_port: 0,
            directory: None,
            router: Router::new(config, started),
            deliverer: Deliverer::default(),
            sockets: Some(sockets),
            started,
            commands,
            command_tx,
            pending: HashMap::new(),
            next_id: 1,
            deliveries: Vec::new(),
            published: None,
            last_publish: None,
            coalescer: Coalescer::default(),
            exit: None,
            mode: ModeStatus::default(),
        }
    }

    /// Reports `mode` in the status (the caller chose it and set up its sources).
    pub fn set_mode(&mut self, mode: ModeStatus) {
        self.mode = mode;
    }

    /// A handle that stops the daemon.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.command_tx.clone())
    }

    /// A sender for commands from another source (the way the coming session service and Samba
    /// mode feed the loop).
    pub fn commands(&self) -> mpsc::Sender<Command> {
        self.command_tx.clone()
    }

    /// Runs until stopped or until another node holds our name; returns the exit status. Must be
    /// called inside a tokio runtime with I/O and time enabled.
    pub async fn run(mut self) -> Result<u8> {
        let mut io = self.start()?;
        let r = &self.router.config();
        info!(
            name = %r.netbios_name,
            workgroup = %r.workgroup,
            interfaces = ?r.interfaces.iter().map(|i| format!("{}/{}", i.ip, i.prefix)).collect::<Vec<_>>(),
            port = r.port,
            name_port = r.name_port,
            "mailslotd starting"
        );
        let exit = loop {
            self.flush(&io).await;
            self.on_events();
            if let Some(code) = self.exit {
                break code;
            }
            self.publish();
            let deadline = self
                .router
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = io.dgm.readable() => if r.is_ok() { self.on_datagrams(&mut io) },
                r = io.ns.recv_from(&mut io.name_buf) => self.on_name_packet(&io, r),
                Some(cmd) = self.commands.recv() => self.on_command(cmd),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.router.handle_timeout(Instant::now());
                }
            }
        };
        self.shutdown(&io).await;
        Ok(exit)
    }

    /// Moves the sockets into the runtime and starts the other sources.
    fn start(&mut self) -> Result<Io> {
        let sockets = self.sockets.take().context("the daemon runs once")?;
        let dgm = into_tokio(sockets.datagram)?;
        let ns = into_tokio(sockets.name)?;
        control::spawn(sockets.control, self.command_tx.clone(), Command::Control)
            .context("cannot start the control thread")?;
        if let Some(d) = sockets.directory {
            self.directory = Some(d.spawn().context("cannot start the directory thread")?);
            info!("mailslot directory serving");
        }
        if let Some(l) = sockets.session {
            l.set_nonblocking(true)?;
            self.session_port = l.local_addr()?.port();
            session::server::spawn(
                tokio::net::TcpListener::from_std(l)?,
                self.session_names(),
                self.session_counters.clone(),
                self.local.clone(),
            );
            info!("session service on TCP {}", self.session_port);
        }
        if let Some(l) = sockets.metrics {
            l.set_nonblocking(true)?;
            let addr = l.local_addr()?;
            let published = Published::default();
            metrics::spawn(tokio::net::TcpListener::from_std(l)?, published.clone());
            self.published = Some(published);
            info!("metrics on http://{addr}/metrics");
        }
        Ok(Io {
            dgm,
            ns,
            batch: RecvBatch::new(BATCH, DATAGRAM_BUFFER),
            name_buf: vec![0u8; 65536],
        })
    }

    /// Sends every packet the router has queued, each from its port's socket.
    async fn flush(&mut self, io: &Io) {
        while let Some(t) = self.router.poll_transmit() {
            let sock = match t.port {
                Port::Datagram => &io.dgm,
                Port::Name => &io.ns,
            };
            if let Err(e) = sock.send_to(&t.payload, SocketAddr::V4(t.dest)).await {
                debug!("send to {} failed: {e}", t.dest);
            }
        }
    }

    /// Acts on everything the router reported.
    fn on_events(&mut self) {
        while let Some(ev) = self.router.poll_event() {
            match ev {
                Event::Deliver(d) => self.deliveries.push(d),
                Event::WriteDone { id, result } => self.answer(
                    id,
                    match result {
                        Ok(()) => Reply::Written,
                        Err(f) => Reply::Failed(f),
                    },
                ),
                Event::Resolved { id, result } => self.answer(
                    id,
                    match result {
                        Ok(addresses) => Reply::Resolved(Resolution {
                            addresses,
                            name: String::new(),
                        }),
                        Err(f) => Reply::Failed(f),
                    },
                ),
                Event::FirstClass(w) => self.first_class(w),
                Event::NamesRegistered => info!("names registered: {:?}", self.router.names()),
                Event::NameConflict { name, by } => {
                    error!("name conflict: {name} is held by {by}; stopping");
                    eprintln!(
                        "mailslotd: error: the name {name} is already in use on the network (by {by})"
                    );
                    self.exit = Some(EXIT_NAME_CONFLICT);
                }
            }
        }
        if !self.deliveries.is_empty() {
            self.deliverer.deliver_all(&self.deliveries);
            self.deliveries.clear();
        }
    }

    /// Sends the answer owed for router request `id`.
    fn answer(&mut self, id: u64, reply: Reply) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        let reply = match (reply, p.name) {
            (Reply::Resolved(r), Some(name)) => Reply::Resolved(Resolution { name, ..r }),
            (reply, _) => reply,
        };
        let _ = p.reply.send(reply);
    }

    /// Refreshes the status the metrics endpoint serves.
    fn publish(&mut self) {
        let Some(published) = self.published.clone() else {
            return;
        };
        if self
            .last_publish
            .is_some_and(|t| t.elapsed() < PUBLISH_INTERVAL)
        {
            return;
        }
        self.last_publish = Some(Instant::now());
        let s = self.status();
        *published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s);
    }

    /// The daemon's status as the control protocol carries it.
    pub fn status(&self) -> Status {
        let cfg = self.router.config();
        Status {
            netbios_name: cfg.netbios_name.clone(),
            workgroup: cfg.workgroup.clone(),
            interfaces: cfg
                .interfaces
                .iter()
                .map(|i| format!("{}/{}", i.ip, i.prefix))
                .collect(),
            wins_server: cfg.wins_server,
            ports: Ports {
                datagram: cfg.port,
                name: cfg.name_port,
                session: self.session_port,
            },
            uptime_s: self.started.elapsed().as_secs(),
            names: self.router.names(),
            cache: self.router.cache(Instant::now()),
            counters: self.router.counters().clone(),
            delivery: self.deliverer.counters(),
            mode: self.mode.clone(),
            session: self.session_counters.get(),
            directory: self.directory.as_ref().map(|d| d.counters().snapshot()),
        }
    }

    /// The called names the session service answers: the computer name and its aliases as the
    /// server (`<20>`, `<00>`) and as the Messenger (`<03>`), and the further Messenger names.
    fn session_names(&self) -> Vec<(NetbiosName, Service)> {
        let cfg = self.router.config();
        let mut names = Vec::new();
        for n in std::iter::once(&cfg.netbios_name).chain(&cfg.aliases) {
            for (suffix, service) in [
                (0x20, Service::Server),
                (0x00, Service::Server),
                (0x03, Service::Messenger),
            ] {
                if let Ok(name) = NetbiosName::new(n, suffix) {
                    names.push((name, service));
                }
            }
        }
        for m in &cfg.messenger_names {
            if let Ok(name) = NetbiosName::new(m, 0x03) {
                names.push((name, Service::Messenger));
            }
        }
        names
    }

    /// A resolved first-class write: over a session to its host, or into our own mailslot.
    fn first_class(&mut self, w: FirstClassWrite) {
        let Some(p) = self.pending.remove(&w.id) else {
            return;
        };
        let Some(to) = w.to else {
            // This host's own name: written here, as the program that asked.
            let local = self.local.clone();
            let (router_name, ip) = (
                self.router.config().netbios_name.clone(),
                Ipv4Addr::LOCALHOST,
            );
            tokio::spawn(async move {
                let origin = match w.caller {
                    Some(c) => Origin::Local(c),
                    None => Origin::Network,
                };
                let delivery = Delivery {
                    path: w.write.path.as_str().into(),
                    data: w.write.data.into(),
                    priority: w.write.priority,
                    class: w.write.class,
                    sender_name: router_name.into(),
                    sender_ip: ip,
                    caller: None,
                };
                let reply = match local.write(delivery, w.write.timeout_ms, origin).await {
                    Ok(()) => Reply::Written,
                    Err(code) => Reply::failed(code, local_refusal(code, &w.write.path)),
                };
                let _ = p.reply.send(reply);
            });
            return;
        };
        self.pool.submit(
            to,
            session::client::Job {
                called: w.called,
                calling: w.calling,
                write: w.write,
                reply: p.reply,
            },
        );
    }

    /// Everything queued on UDP 138, delivered straight from the receive buffers (no copy),
    /// [`BATCH`] datagrams per system call.
    ///
    /// Under steady traffic, a read that brings less than a full batch is followed by a short
    /// sleep before the next one ([`Coalescer`]), so that one `recvmmsg` takes many datagrams
    /// instead of one wake-up taking one or two.
    fn on_datagrams(&mut self, io: &mut Io) {
        let now = Instant::now();
        self.coalescer.wake(now);
        for _ in 0..BATCHES_PER_WAKE {
            let batch = &mut io.batch;
            let got = io.dgm.try_io(tokio::io::Interest::READABLE, || {
                batch.recv(io.dgm.as_raw_fd())
            });
            let Ok(n) = got else { break };
            // Delivered before the buffers are reused by the next recvmmsg.
            let mut incoming: Vec<Delivery<'_>> = Vec::with_capacity(n);
            for i in 0..n {
                let (src, bytes, truncated) = io.batch.get(i);
                if truncated {
                    self.router.count_truncated();
                } else if let Some(m) = self.router.accept_datagram(now, src, bytes) {
                    incoming.push(m);
                }
            }
            if self.deliverer.deliver_all(&incoming) {
                // A mailslot's owner is reading but behind (its ring filled up): let it run
                // before taking more from the socket, whose buffer holds what comes meanwhile.
                // On a shared CPU, reading on would only fill the worker's backlog and then
                // drop. An owner that does not read at all is not yielded to.
                std::thread::yield_now();
            }
            if n < BATCH {
                if n > 0 && self.coalescer.linger() {
                    std::thread::sleep(LINGER);
                    continue;
                }
                break;
            }
        }
        self.coalescer.drained(Instant::now());
    }

    /// A packet on UDP 137.
    fn on_name_packet(&mut self, io: &Io, r: std::io::Result<(usize, SocketAddr)>) {
        if let Ok((n, SocketAddr::V4(src))) = r {
            self.router
                .handle_datagram(Instant::now(), Port::Name, src, &io.name_buf[..n]);
        }
    }

    /// A command from one of the other sources.
    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Control(call) => self.on_control(call),
            Command::Stop(why) => {
                info!("{why}: releasing names");
                self.exit = Some(EXIT_OK);
            }
            Command::Relayed { source, datagram } => {
                self.mode.samba_relayed += 1;
                if let Some(d) = self
                    .router
                    .accept_relayed(Instant::now(), source, &datagram)
                {
                    self.deliverer.deliver_all(&[d]);
                }
            }
            Command::Samba(crate::samba::SambaEvent::Connected) => {
                self.mode.samba_connected = true;
                self.mode.samba_connections += 1;
            }
            Command::Samba(_) => self.mode.samba_connected = false,
        }
    }

    /// A request from the control socket.
    fn on_control(&mut self, call: ControlCall) {
        let now = Instant::now();
        let id = self.next_id;
        self.next_id += 1;
        match call.request {
            Request::Status => {
                let _ = call.reply.send(Reply::Status(Box::new(self.status())));
            }
            Request::Resolve { name, suffix } => {
                let name_asked = Some(resolved_name(&name, suffix));
                self.pending.insert(
                    id,
                    Pending {
                        reply: call.reply,
                        name: name_asked,
                    },
                );
                self.router
                    .handle_local(now, LocalRequest::Resolve { id, name, suffix });
            }
            Request::Write(write) => {
                let (target, path) = (&write.target, &write.path);
                let c = &call.caller;
                debug!(uid = c.uid, pid = c.pid, ?target, %path, len = write.data.len(), "local write");
                // The copy delivered on this host goes in as this process, under the slot's
                // access policy (never as a message from the network).
                let caller = Some(call.caller);
                let pending = Pending {
                    reply: call.reply,
                    name: None,
                };
                self.pending.insert(id, pending);
                self.router
                    .handle_local(now, LocalRequest::Write { id, write, caller });
            }
            _ => {
                let _ = call.reply.send(Reply::failed(
                    code::INVALID_PARAMETER,
                    "unsupported request",
                ));
            }
        }
    }

    /// Releases the names and fails what is still waiting.
    async fn shutdown(&mut self, io: &Io) {
        self.router.shutdown(Instant::now());
        self.flush(io).await;
        while let Some(ev) = self.router.poll_event() {
            if let Event::WriteDone { id, result: Err(f) }
            | Event::Resolved { id, result: Err(f) } = ev
            {
                self.answer(id, Reply::Failed(f));
            }
        }
        info!("mailslotd stopped");
    }
}

/// Why a first-class write to this host's own name failed.
fn local_refusal(code: u32, path: &str) -> String {
    match code {
        code::FILE_NOT_FOUND => format!("no mailslot {path:?} on this host"),
        code::ACCESS_DENIED => format!("mailslot {path:?} refused the write"),
        code::SEM_TIMEOUT => format!("timed out waiting for room in mailslot {path:?}"),
        code::INVALID_PARAMETER => format!("too large for mailslot {path:?}, or invalid"),
        _ => format!("cannot write to mailslot {path:?} (error {code})"),
    }
}

/// `NAME<XX>` as a resolution answer names it.
fn resolved_name(name: &str, suffix: u8) -> String {
    format!("{}<{suffix:02X}>", name.to_ascii_uppercase())
}

fn into_tokio(s: StdUdpSocket) -> Result<UdpSocket> {
    s.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(s)?)
}
