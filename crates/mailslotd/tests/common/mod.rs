//! A daemon on loopback for the daemon's tests: its sockets are bound by the test (127.0.0.1,
//! ephemeral ports) and its control socket has a name of its own, so several run at once beside
//! a real daemon. Its interface is 127.0.0.2/32.

#![allow(dead_code)] // not every test target uses every helper

pub(crate) mod directory;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mailslot::daemon::{DaemonClient, Status};
use mailslot_proto::datagram::MsgType;
use mailslot_proto::{MailslotMessage, MailslotWriteRepr, NetbiosName};
use mailslot_router::{Interface, RouterConfig};
use mailslotd::{ControlServer, Daemon, Sockets, Stopper, EXIT_OK};

pub(crate) const HOST: &str = "TESTHOST";
pub(crate) const WORKGROUP: &str = "TESTWG";
/// The daemon's address as the router knows it.
pub(crate) const OWN_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A daemon running on a thread of its own; stopped when dropped.
pub(crate) struct Running {
    pub(crate) stopper: Stopper,
    thread: Option<JoinHandle<anyhow::Result<u8>>>,
    /// Its datagram socket.
    pub(crate) datagram: SocketAddrV4,
    /// Its name-service socket.
    pub(crate) name: SocketAddrV4,
    /// Its control socket's abstract name.
    pub(crate) control: String,
    /// Its session service (TCP).
    pub(crate) session: SocketAddrV4,
    /// Its mailslot directory's abstract name, if it serves one ([`Extras::directory`]).
    pub(crate) directory: Option<String>,
    /// Its metrics endpoint, if it serves one ([`Extras::metrics`]).
    pub(crate) metrics: Option<SocketAddrV4>,
}

/// What a [`Running`] daemon serves beside its UDP sockets, control socket and session
/// service.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extras {
    /// A mailslot directory, at an abstract name of its own.
    pub(crate) directory: bool,
    /// The metrics endpoint, on an ephemeral port of 127.0.0.1.
    pub(crate) metrics: bool,
}

fn local_port(s: &UdpSocket) -> u16 {
    s.local_addr().unwrap().port()
}

impl Running {
    pub(crate) fn start() -> Self {
        Self::start_with(Extras::default())
    }

    pub(crate) fn start_with(extras: Extras) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Bound as the daemon binds its own (its receive buffer among the rest): a burst the
        // daemon takes in a moment late is not lost here either.
        let bind = || {
            let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
            mailslotd::udp_socket(any, mailslotd::config::DaemonConfig::default().recv_buffer)
                .unwrap()
        };
        let (datagram, name) = (bind(), bind());
        let control = format!(
            "mailslotd/test/{}/{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut cfg = RouterConfig::new(HOST, WORKGROUP, vec![Interface::new(OWN_IP, 32)]);
        cfg.port = local_port(&datagram);
        cfg.name_port = local_port(&name);
        let addrs = (
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, cfg.port),
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, cfg.name_port),
        );
        let session = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let session_addr =
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, session.local_addr().unwrap().port());
        let directory = extras.directory.then(|| format!("{control}/directory"));
        let metrics = extras
            .metrics
            .then(|| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap());
        let metrics_addr = metrics
            .as_ref()
            .map(|m| SocketAddrV4::new(Ipv4Addr::LOCALHOST, m.local_addr().unwrap().port()));
        let sockets = Sockets {
            datagram,
            name,
            control: ControlServer::bind_at(&control).unwrap(),
            directory: directory
                .as_ref()
                .map(|a| mailslotd::DirectoryServer::bind_at(a).unwrap()),
            metrics,
            session: Some(session),
        };
        let daemon = Daemon::new(cfg, sockets);
        let stopper = daemon.stopper();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(daemon.run())
        });
        Self {
            stopper,
            thread: Some(thread),
            datagram: addrs.0,
            name: addrs.1,
            control,
            session: session_addr,
            directory,
            metrics: metrics_addr,
        }
    }

    /// Scrapes the metrics endpoint until `f` holds for the text (the endpoint serves the
    /// status published at most every 500 ms, and only when the loop wakes: a status request
    /// wakes it).
    pub(crate) fn scrape_until(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        use std::io::{Read, Write};
        let at = self
            .metrics
            .expect("a daemon started with its metrics endpoint");
        let deadline = Instant::now() + WAIT;
        loop {
            let _ = self.status();
            let mut s = std::net::TcpStream::connect(at).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            if f(&resp) {
                return resp;
            }
            assert!(Instant::now() < deadline, "{what}:\n{resp}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn client(&self) -> DaemonClient {
        DaemonClient::connect_to(&self.control).unwrap()
    }

    pub(crate) fn status(&self) -> Status {
        self.client().status(WAIT).unwrap()
    }

    /// Waits until `f` holds for the daemon's status.
    pub(crate) fn wait_for(&self, what: &str, f: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status();
            if f(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn wait_registered(&self) {
        self.wait_for("names registered", |s| s.names.iter().all(|n| n.registered));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stopper.stop_blocking("test over");
        if let Some(t) = self.thread.take() {
            let code = t.join().expect("the daemon thread panicked");
            if !std::thread::panicking() {
                assert_eq!(code.unwrap(), EXIT_OK);
            }
        }
    }
}

/// The effective uid, from `/proc`.
pub(crate) fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// A mailslot write datagram (priority 1, class 2) to `\\MAILSLOT\\<path>` of the daemon's
/// computer name, whose header says it comes from `sender` at `source`.
pub(crate) fn mailslot_datagram(
    path: &str,
    dgm_id: u16,
    sender: &str,
    source: Ipv4Addr,
    data: &[u8],
) -> Vec<u8> {
    let wire = format!("\\MAILSLOT\\{path}");
    MailslotMessage::new(
        MsgType::DirectUnique,
        dgm_id,
        source,
        NetbiosName::new(sender, 0).unwrap().into(),
        NetbiosName::new(HOST, 0).unwrap().into(),
        MailslotWriteRepr {
            name: wire.as_bytes(),
            priority: 1,
            class: 2,
            data,
        },
    )
    .to_vec()
    .unwrap()
}
