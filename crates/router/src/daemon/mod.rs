//! The thin tokio shell around [`Router`]: `mailslotd`.
//!
//! It owns the two UDP sockets (datagrams, name service), the clock, the control socket for local
//! programs, delivery into local mailslots, signals, privileges and metrics. Everything the
//! protocol decides is in the router.

mod deliver;
mod sys;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mailslot::daemon::{ControlServer, RemoteTarget, Reply, Request};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::config::{netbios_name_for_host, DaemonConfig, Interface, RouterConfig, DEFAULT_PATH};
use crate::router::{Event, Incoming, LocalRequest, Port, Router, Target};
use deliver::{Deliverer, DeliveryCounters};

/// Command-line options of the daemon (`mailslotd` and `mailslot daemon`). Options override the
/// configuration file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Configuration file (TOML); default /etc/mailslot/mailslotd.toml when it exists.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Check the configuration, print the effective settings and exit.
    #[arg(long)]
    pub validate: bool,
    /// NetBIOS computer name (overrides `netbios_name`).
    #[arg(long)]
    pub netbios_name: Option<String>,
    /// Workgroup (overrides `workgroup`).
    #[arg(long)]
    pub workgroup: Option<String>,
    /// Interface as ADDRESS/PREFIX or a name; repeatable (overrides `interfaces`).
    #[arg(long = "interface")]
    pub interfaces: Vec<String>,
    /// Datagram port (overrides `port`).
    #[arg(long)]
    pub port: Option<u16>,
    /// Name-service port (overrides `name_port`).
    #[arg(long)]
    pub name_port: Option<u16>,
    /// WINS server (overrides `wins_server`).
    #[arg(long)]
    pub wins_server: Option<Ipv4Addr>,
    /// User to switch to after binding ("" keeps root; overrides `user`).
    #[arg(long)]
    pub user: Option<String>,
    /// Serve Prometheus metrics on 127.0.0.1:PORT (overrides `metrics_port`).
    #[arg(long)]
    pub metrics_port: Option<u16>,
}

/// Datagrams taken per `recvmmsg`.
const BATCH: usize = 64;
/// Largest datagram read whole. A NetBIOS datagram carries at most 512 bytes of user data after a
/// header and two names of at most 34 + 255 bytes each (RFC 1002), about 1.1 KiB; a longer one is
/// malformed (counted, dropped). The buffers are kept this small, and not a power of two apart,
/// so that a batch stays in the first-level cache instead of aliasing onto the same cache sets.
const DATAGRAM_BUFFER: usize = 2048 - 64;

/// Exit status: clean shutdown.
pub const EXIT_OK: u8 = 0;
/// Exit status: configuration, socket or startup error.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: another node holds our computer name.
pub const EXIT_NAME_CONFLICT: u8 = 3;

/// Everything resolved from the file, the options and the machine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file's values with the options applied.
    pub file: DaemonConfig,
    /// What the router gets.
    pub router: RouterConfig,
}

fn load(args: &DaemonArgs) -> Result<Settings> {
    let mut file = match &args.config {
        Some(p) => DaemonConfig::load(&p.to_string_lossy())?,
        None if std::path::Path::new(DEFAULT_PATH).exists() => DaemonConfig::load(DEFAULT_PATH)?,
        None => DaemonConfig::default(),
    };
    if let Some(v) = &args.netbios_name {
        file.netbios_name = Some(v.clone());
    }
    if let Some(v) = &args.workgroup {
        file.workgroup = v.clone();
    }
    if !args.interfaces.is_empty() {
        file.interfaces = args.interfaces.clone();
    }
    if let Some(v) = args.port {
        file.port = v;
    }
    if let Some(v) = args.name_port {
        file.name_port = v;
    }
    if args.wins_server.is_some() {
        file.wins_server = args.wins_server;
    }
    if let Some(v) = &args.user {
        file.user = v.clone();
    }
    if args.metrics_port.is_some() {
        file.metrics_port = args.metrics_port;
    }
    file.check()?;
    let netbios_name = match &file.netbios_name {
        Some(n) => n.to_ascii_uppercase(),
        None => netbios_name_for_host(&sys::hostname().context("cannot read the host name")?),
    };
    let interfaces = resolve_interfaces(&file.interfaces)?;
    let mut router = RouterConfig::new(&netbios_name, &file.workgroup, interfaces);
    router.wins_server = file.wins_server;
    router.port = file.port;
    router.name_port = file.name_port;
    router.scope = file.scope.clone();
    router.seed = (std::process::id() as u16).wrapping_mul(7919);
    Ok(Settings { file, router })
}

fn resolve_interfaces(wanted: &[String]) -> Result<Vec<Interface>> {
    let all = sys::ipv4_interfaces().context("cannot list network interfaces")?;
    let mut out = Vec::new();
    if wanted.is_empty() {
        out.extend(
            all.iter()
                .filter(|(_, i)| !i.ip.is_loopback())
                .map(|(_, i)| *i),
        );
        if out.is_empty() {
            bail!("no IPv4 interface other than loopback; set `interfaces` in the configuration");
        }
        return Ok(out);
    }
    for w in wanted {
        if w.contains('/') {
            out.push(Interface::parse(w).map_err(anyhow::Error::msg)?);
        } else {
            let found: Vec<Interface> = all
                .iter()
                .filter(|(n, _)| n == w)
                .map(|(_, i)| *i)
                .collect();
            if found.is_empty() {
                bail!("interface {w:?} has no IPv4 address");
            }
            out.extend(found);
        }
    }
    Ok(out)
}

/// Runs the daemon until SIGTERM/SIGINT; returns the process exit status.
pub fn run(args: &DaemonArgs) -> u8 {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILSLOTD_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let settings = match load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailslotd: error: {e:#}");
            return EXIT_ERROR;
        }
    };
    if args.validate {
        let r = &settings.router;
        println!("configuration OK");
        println!("netbios_name = {:?}", r.netbios_name);
        println!("workgroup = {:?}", r.workgroup);
        for i in &r.interfaces {
            println!(
                "interface = {}/{} (broadcast {})",
                i.ip, i.prefix, i.broadcast
            );
        }
        println!("ports = datagram {} / name {}", r.port, r.name_port);
        if let Some(w) = r.wins_server {
            println!("wins_server = {w}");
        }
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

fn udp_socket(addr: SocketAddrV4, recv_buffer: usize) -> Result<UdpSocket> {
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
    Ok(UdpSocket::from_std(s.into())?)
}

/// A request from a control-socket client, with where to send the answer.
struct ControlCall {
    request: Request,
    uid: u32,
    reply: oneshot::Sender<Reply>,
}

/// Most control-socket clients served at once (one thread each); more are turned away.
const MAX_CONTROL_CLIENTS: usize = 256;

fn spawn_control_server(server: ControlServer, tx: mpsc::Sender<ControlCall>) {
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
            use std::sync::atomic::Ordering::SeqCst;
            if active.fetch_add(1, SeqCst) >= MAX_CONTROL_CLIENTS {
                active.fetch_sub(1, SeqCst);
                let _ = conn.send(&Reply {
                    code: 8,
                    text: "the mailslot daemon has too many clients".into(),
                });
                continue;
            }
            let tx = tx.clone();
            let active = active.clone();
            let _ = std::thread::Builder::new()
                .name("mailslotd-client".into())
                .spawn(move || {
                    serve_client(&conn, &tx);
                    active.fetch_sub(1, SeqCst);
                });
        })
        .expect("spawn the control thread");
}

fn serve_client(conn: &mailslot::daemon::ControlConnection, tx: &mpsc::Sender<ControlCall>) {
    loop {
        let request = match conn.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = conn.send(&Reply {
                    code: crate::router::ERROR_INVALID_PARAMETER,
                    text: e.to_string(),
                });
                return;
            }
        };
        let (rtx, rrx) = oneshot::channel();
        let call = ControlCall {
            request,
            uid: conn.peer.uid,
            reply: rtx,
        };
        if tx.blocking_send(call).is_err() {
            return;
        }
        let reply = rrx.blocking_recv().unwrap_or(Reply {
            code: 1,
            text: "the daemon is shutting down".into(),
        });
        if conn.send(&reply).is_err() {
            return;
        }
    }
}

/// The daemon's state shared with the metrics endpoint.
#[derive(Debug, Default, Clone)]
struct Shared {
    status: serde_json::Value,
}

fn status_json(
    router: &Router,
    delivery: &DeliveryCounters,
    started: Instant,
) -> serde_json::Value {
    let cfg = router.config();
    serde_json::json!({
        "netbios_name": cfg.netbios_name,
        "workgroup": cfg.workgroup,
        "interfaces": cfg.interfaces.iter().map(|i| format!("{}/{}", i.ip, i.prefix)).collect::<Vec<_>>(),
        "wins_server": cfg.wins_server.map(|w| w.to_string()),
        "ports": {"datagram": cfg.port, "name": cfg.name_port},
        "uptime_s": started.elapsed().as_secs(),
        "names": router.names().into_iter().map(|(n, g, r)| serde_json::json!({"name": n, "group": g, "registered": r})).collect::<Vec<_>>(),
        "cache": router.cache().into_iter().map(|(n, a)| serde_json::json!({"name": n, "addresses": a.iter().map(|x| serde_json::json!({"ip": x.ip.to_string(), "group": x.group})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "counters": router.counters(),
        "delivery": delivery,
    })
}

fn prometheus_text(status: &serde_json::Value) -> String {
    let mut out = String::new();
    for section in ["counters", "delivery"] {
        if let Some(map) = status[section].as_object() {
            for (k, v) in map {
                let name = format!("mailslotd_{k}_total");
                out.push_str(&format!(
                    "# TYPE {name} counter\n{name} {}\n",
                    v.as_u64().unwrap_or(0)
                ));
            }
        }
    }
    out.push_str(&format!(
        "# TYPE mailslotd_uptime_seconds gauge\nmailslotd_uptime_seconds {}\n",
        status["uptime_s"].as_u64().unwrap_or(0)
    ));
    out
}

async fn serve_metrics(port: u16, shared: Arc<Mutex<Shared>>) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot bind metrics port 127.0.0.1:{port}"))?;
    info!("metrics on http://127.0.0.1:{port}/metrics");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut req)).await;
                let body = {
                    let g = shared.lock().unwrap_or_else(|p| p.into_inner());
                    prometheus_text(&g.status)
                };
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(())
}

/// Sends every packet the router has queued, each from its port's socket.
async fn flush_transmits(router: &mut Router, dgm: &UdpSocket, ns: &UdpSocket) {
    while let Some(t) = router.poll_transmit() {
        let sock = match t.port {
            Port::Datagram => dgm,
            Port::Name => ns,
        };
        if let Err(e) = sock.send_to(&t.payload, SocketAddr::V4(t.dest)).await {
            debug!("send to {} failed: {e}", t.dest);
        }
    }
}

async fn serve(settings: Settings) -> Result<u8> {
    let file = &settings.file;
    let dgm = udp_socket(
        SocketAddrV4::new(file.bind_address, file.port),
        file.recv_buffer,
    )?;
    let ns = udp_socket(
        SocketAddrV4::new(file.bind_address, file.name_port),
        file.recv_buffer,
    )?;
    let control = ControlServer::bind().map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("another mailslot daemon runs in this network namespace")
        } else {
            anyhow::anyhow!("cannot bind the control socket: {e}")
        }
    })?;
    sys::drop_privileges(&file.user)?;
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlCall>(256);
    spawn_control_server(control, ctl_tx);
    let shared = Arc::new(Mutex::new(Shared::default()));
    if let Some(port) = file.metrics_port {
        serve_metrics(port, shared.clone()).await?;
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    let started = Instant::now();
    let r = &settings.router;
    info!(
        name = %r.netbios_name,
        workgroup = %r.workgroup,
        interfaces = ?r.interfaces.iter().map(|i| format!("{}/{}", i.ip, i.prefix)).collect::<Vec<_>>(),
        port = r.port,
        name_port = r.name_port,
        "mailslotd starting"
    );
    let mut router = Router::new(settings.router.clone(), started);
    let mut deliverer = Deliverer::default();
    // Owned deliveries from router events (our own group writes, writes to ourselves).
    type Owned = (
        std::sync::Arc<str>,
        Vec<u8>,
        u8,
        u8,
        std::sync::Arc<str>,
        Ipv4Addr,
    );
    let mut deliveries: Vec<Owned> = Vec::new();
    let mut pending: HashMap<u64, oneshot::Sender<Reply>> = HashMap::new();
    let mut next_id = 1u64;
    let mut batch = sys::RecvBatch::new(BATCH, DATAGRAM_BUFFER);
    let mut buf_n = vec![0u8; 65536];
    let mut exit = EXIT_OK;
    let mut last_status = Instant::now() - Duration::from_secs(10);

    loop {
        // Everything the router wants done now.
        flush_transmits(&mut router, &dgm, &ns).await;
        let mut conflict = None;
        while let Some(ev) = router.poll_event() {
            match ev {
                Event::Deliver {
                    path,
                    data,
                    priority,
                    class,
                    sender_name,
                    sender_ip,
                } => deliveries.push((path, data, priority, class, sender_name, sender_ip)),
                Event::WriteDone { id, result } => {
                    if let Some(tx) = pending.remove(&id) {
                        let _ = tx.send(match result {
                            Ok(()) => Reply {
                                code: 0,
                                text: String::new(),
                            },
                            Err(f) => Reply {
                                code: f.code,
                                text: f.message,
                            },
                        });
                    }
                }
                Event::Resolved { id, result } => {
                    if let Some(tx) = pending.remove(&id) {
                        let _ = tx.send(match result {
                            Ok(addrs) => Reply {
                                code: 0,
                                text: serde_json::json!({"addresses": addrs.iter().map(|a| serde_json::json!({"ip": a.ip.to_string(), "group": a.group})).collect::<Vec<_>>()}).to_string(),
                            },
                            Err(f) => Reply { code: f.code, text: f.message },
                        });
                    }
                }
                Event::NamesRegistered => info!("names registered: {:?}", router.names()),
                Event::NameConflict { name, by } => conflict = Some((name, by)),
            }
        }
        if !deliveries.is_empty() {
            let view: Vec<Incoming<'_>> = deliveries
                .iter()
                .map(
                    |(path, data, priority, class, sender_name, sender_ip)| Incoming {
                        path: path.clone(),
                        data,
                        priority: *priority,
                        class: *class,
                        sender_name: sender_name.clone(),
                        sender_ip: *sender_ip,
                    },
                )
                .collect();
            deliverer.deliver_all(&view);
            drop(view);
            deliveries.clear();
        }
        if let Some((name, by)) = conflict {
            error!("name conflict: {name} is held by {by}; stopping");
            eprintln!(
                "mailslotd: error: the name {name} is already in use on the network (by {by})"
            );
            exit = EXIT_NAME_CONFLICT;
            break;
        }
        if last_status.elapsed() >= Duration::from_millis(500) {
            last_status = Instant::now();
            let s = status_json(&router, &deliverer.counters, started);
            shared.lock().unwrap_or_else(|p| p.into_inner()).status = s;
        }
        let deadline = router
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = dgm.readable() => {
                if r.is_ok() {
                    // Everything queued, up to 32 datagrams per system call (bounded per wake so
                    // timers, the name service and deliveries keep their turn).
                    let now = Instant::now();
                    for _ in 0..8 {
                        let got = dgm.try_io(tokio::io::Interest::READABLE, || batch.recv(dgm.as_raw_fd()));
                        let Ok(n) = got else { break };
                        // Deliver straight from the receive buffers (no copy), before they are
                        // reused by the next recvmmsg.
                        let mut incoming: Vec<Incoming<'_>> = Vec::with_capacity(n);
                        for i in 0..n {
                            let (src, bytes, truncated) = batch.get(i);
                            if truncated {
                                router.count_truncated();
                            } else if let Some(m) = router.accept_datagram(now, src, bytes) {
                                incoming.push(m);
                            }
                        }
                        deliverer.deliver_all(&incoming);
                        if n < BATCH {
                            break;
                        }
                    }
                }
            }
            r = ns.recv_from(&mut buf_n) => {
                if let Ok((n, SocketAddr::V4(src))) = r {
                    router.handle_datagram(Instant::now(), Port::Name, src, &buf_n[..n]);
                }
            }
            Some(call) = ctl_rx.recv() => {
                let now = Instant::now();
                match call.request {
                    Request::Status => {
                        let s = status_json(&router, &deliverer.counters, started);
                        let _ = call.reply.send(Reply { code: 0, text: s.to_string() });
                    }
                    Request::Resolve { name, suffix } => {
                        let id = next_id;
                        next_id += 1;
                        pending.insert(id, call.reply);
                        router.handle_local(now, LocalRequest::Resolve { id, name, suffix });
                    }
                    Request::Write { target, path, priority, class, data, .. } => {
                        let id = next_id;
                        next_id += 1;
                        debug!(uid = call.uid, ?target, %path, len = data.len(), "local write");
                        pending.insert(id, call.reply);
                        let target = match target {
                            RemoteTarget::Host(h) => Target::Host(h),
                            RemoteTarget::PrimaryDomain => Target::PrimaryDomain,
                        };
                        router.handle_local(now, LocalRequest::Write { id, target, path, priority, class, data });
                    }
                    _ => {
                        let _ = call.reply.send(Reply { code: crate::router::ERROR_INVALID_PARAMETER, text: "unsupported request".into() });
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                router.handle_timeout(Instant::now());
            }
            _ = sigterm.recv() => { info!("SIGTERM: releasing names"); break; }
            _ = sigint.recv() => { info!("SIGINT: releasing names"); break; }
        }
    }
    router.shutdown(Instant::now());
    flush_transmits(&mut router, &dgm, &ns).await;
    while let Some(ev) = router.poll_event() {
        if let Event::WriteDone { id, result: Err(f) } | Event::Resolved { id, result: Err(f) } = ev
        {
            if let Some(tx) = pending.remove(&id) {
                let _ = tx.send(Reply {
                    code: f.code,
                    text: f.message,
                });
            }
        }
    }
    info!("mailslotd stopped");
    Ok(exit)
}
