//! The daemon against hostile local users and stuck mailslot owners, on loopback. Tests that act
//! as another user need root (a thread takes the credentials of `nobody`); without root they are
//! reported as `ignored` with the reason, never as passed.
//!
//! A test target of its own without the standard harness (`libtest-mimic`), because only a
//! custom harness can decide at run time that a test is ignored. The same binary is also the
//! stuck owner the tests stop with SIGSTOP (`MAILSLOTD_TEST_OWN=<name>`: create the mailslot,
//! say `ready`, sleep).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{euid, mailslot_datagram, Running, HOST, WAIT, WORKGROUP};
use libtest_mimic::{Arguments, Completion, Trial};
use mailslot::daemon::{DaemonClient, RemoteWrite, Reply, Request};
use mailslot::{Access, Class, Mailslot, Sender, Target, Timeout};
use mailslot_test_support::as_nobody;
use mailslotd::control::{IDLE_TIMEOUT, MAX_PER_USER};
use socket2::{Domain, SockAddr, Socket, Type};

/// The environment variable that makes this binary a mailslot owner for a test.
const OWN_ROLE: &str = "MAILSLOTD_TEST_OWN";
/// The longest a status request may take while owners are stuck: well below what a loop
/// that waited for one stuck owner would take (an open gives up after 500 ms), with room for a
/// busy machine's scheduling.
const STATUS_LIMIT: Duration = Duration::from_millis(300);

fn main() {
    if let Ok(name) = std::env::var(OWN_ROLE) {
        own_and_sleep(&name);
    }
    let args = Arguments::from_args();
    let tests = vec![
        Trial::test("a_stuck_owner_delays_nothing", || {
            a_stuck_owner_delays_nothing();
            Ok(())
        }),
        as_root(
            "nobody_cannot_reach_an_owner_only_slot_through_the_daemon",
            "a thread takes nobody's credentials",
            nobody_cannot_reach_an_owner_only_slot_through_the_daemon,
        ),
        as_root(
            "idle_control_connections_of_nobody_do_not_lock_out_root",
            "a thread takes nobody's credentials",
            idle_control_connections_of_nobody_do_not_lock_out_root,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}

/// A test that needs root: reported as ignored, with `why`, when not root.
fn as_root(name: &str, why: &'static str, test: fn()) -> Trial {
    Trial::ignorable_test(name, move || {
        if euid() != 0 {
            return Ok(Completion::ignored_with(format!("needs root: {why}")));
        }
        test();
        Ok(Completion::Completed)
    })
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mailslotd_test\\{tag}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn local(path: &str) -> String {
    format!("\\\\.\\mailslot\\{path}")
}

fn write_request(target: Target, path: &str, data: &[u8]) -> Request {
    Request::Write(RemoteWrite {
        target,
        path: path.into(),
        priority: 1,
        class: Class::Second,
        timeout_ms: None,
        data: data.to_vec(),
    })
}

/// The owner role: creates `name`, says `ready`, sleeps until killed.
fn own_and_sleep(name: &str) -> ! {
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(name)
        .expect("creating the stuck owner's mailslot");
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        let _ = &slot;
    }
}

/// A child process owning `name`, stopped with SIGSTOP; killed when dropped.
struct StoppedOwner(Child);

impl StoppedOwner {
    fn start(name: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(OWN_ROLE, name)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        // SAFETY: kill with a pid this test started and a valid signal.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) }, 0);
        Self(child)
    }
}

impl Drop for StoppedOwner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A mailslot write datagram to the daemon's computer name, from `SENDER` at 127.0.0.1.
fn datagram(path: &str, dgm_id: u16, data: &[u8]) -> Vec<u8> {
    mailslot_datagram(path, dgm_id, "SENDER", Ipv4Addr::LOCALHOST, data)
}

/// A listener that never accepts on `path`'s local address, and a SIGSTOPped owner: the daemon
/// answers, the UDP socket is served and another mailslot receives everything while both are
/// stuck; their messages are dropped and counted.
fn a_stuck_owner_delays_nothing() {
    let d = Running::start();
    let (never, stopped, ok) = (unique("never"), unique("stopped"), unique("ok"));
    let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    let address = format!("\0mailslot/v1/{}", never.to_ascii_lowercase());
    listener.bind(&SockAddr::unix(address).unwrap()).unwrap();
    listener.listen(1).unwrap();
    let _owner = StoppedOwner::start(&local(&stopped));
    let ok_slot = Mailslot::create(&local(&ok)).unwrap();

    let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let client = d.client();
    let (rounds, per_round, ok_per_round) = (20u16, 150u16, 5u16);
    let mut dgm = 0u16;
    let mut slowest = Duration::ZERO;
    for _ in 0..rounds {
        for i in 0..per_round {
            for path in [&never, &stopped] {
                dgm = dgm.wrapping_add(1);
                peer.send_to(&datagram(path, dgm, b"stuck"), d.datagram)
                    .unwrap();
            }
            if i % 30 == 0 {
                dgm = dgm.wrapping_add(1);
                peer.send_to(&datagram(&ok, dgm, b"fine"), d.datagram)
                    .unwrap();
                // Paced, so that the socket's receive buffer is never what drops a message.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let t = Instant::now();
        client.status(WAIT).unwrap();
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < STATUS_LIMIT,
        "status took {slowest:?} while owners were stuck"
    );
    let ok_total = u64::from(rounds * ok_per_round);
    let stuck_total = 2 * u64::from(rounds * per_round);
    let s = d.wait_for("every message accounted for", |s| {
        s.counters.accepted == ok_total + stuck_total && s.delivery.delivered >= ok_total
    });
    assert_eq!(s.counters.dropped_duplicate, 0);
    assert!(s.delivery.dropped_backlog > 0, "{:?}", s.delivery);
    // The other mailslot got all of its messages, while the stuck ones were stuck.
    let trusted = mailslot::daemon::is_trusted();
    let deadline = Instant::now() + WAIT;
    let mut got = 0;
    while got < ok_total {
        assert!(Instant::now() < deadline, "{got} of {ok_total} arrived");
        if trusted {
            if ok_slot
                .read_message_timeout(Timeout::After(Duration::from_millis(50)))
                .is_ok()
            {
                got += 1;
            }
        } else {
            // As another user the owner drops network messages, and counts them.
            let _ = ok_slot.read_message_timeout(Timeout::After(Duration::from_millis(20)));
            got = ok_slot.counters().dropped;
        }
    }
    drop(listener);
}

/// Through `\\HOST\`, `\\WORKGROUP\` and `\\*\`, nobody's writes into root's owner-only mailslot
/// are refused (and counted); into an everyone mailslot they arrive as nobody's.
fn nobody_cannot_reach_an_owner_only_slot_through_the_daemon() {
    let d = Running::start();
    let (closed, open) = (unique("owner-only"), unique("everyone"));
    let closed_slot = Mailslot::create(&local(&closed)).unwrap();
    let open_slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&local(&open))
        .unwrap();
    let control = d.control.clone();
    let targets = [
        Target::Host(HOST.into()),
        Target::Host(WORKGROUP.into()),
        Target::PrimaryDomain,
    ];
    let replies = {
        let (closed, targets) = (closed.clone(), targets.clone());
        as_nobody(move || {
            let c = DaemonClient::connect_to(&control).unwrap();
            targets
                .into_iter()
                .map(|t| c.call(&write_request(t, &closed, b"sneaky"), WAIT).unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert!(replies.iter().all(|r| *r == Reply::Written), "{replies:?}");
    d.wait_for("refused by the policy", |s| {
        s.delivery.dropped_access_denied == 3
    });
    assert!(closed_slot
        .read_message_timeout(Timeout::After(Duration::from_millis(200)))
        .is_err());
    assert_eq!(d.status().delivery.dropped_refused_remote, 0);

    // Everyone: each arrives, as nobody's (a local sender, not the network).
    let control = d.control.clone();
    let open2 = open.clone();
    as_nobody(move || {
        let c = DaemonClient::connect_to(&control).unwrap();
        for t in targets {
            assert_eq!(
                c.call(&write_request(t, &open2, b"hello"), WAIT).unwrap(),
                Reply::Written
            );
        }
    });
    for _ in 0..3 {
        let m = open_slot
            .read_message_timeout(Timeout::After(WAIT))
            .unwrap();
        assert_eq!(m.data, b"hello");
        match m.sender {
            Sender::Local { pid, uid, gid } => {
                assert_eq!((uid, gid), (65534, 65534));
                assert_eq!(pid, std::process::id());
            }
            other => panic!("sender {other:?}"),
        }
    }
    // Root's own write into its owner-only mailslot arrives, as root's.
    let c = d.client();
    assert_eq!(
        c.call(
            &write_request(Target::Host(HOST.into()), &closed, b"mine"),
            WAIT
        )
        .unwrap(),
        Reply::Written
    );
    let m = closed_slot
        .read_message_timeout(Timeout::After(WAIT))
        .unwrap();
    assert_eq!(m.data, b"mine");
    assert!(matches!(m.sender, Sender::Local { uid: 0, .. }), "{m:?}");
}

/// 1000 idle connections by nobody: root's status and remote sends still work at once, nobody
/// keeps at most its share, and idle connections are closed after the timeout (a client
/// connects again by itself).
fn idle_control_connections_of_nobody_do_not_lock_out_root() {
    let d = Running::start();
    let root = d.client();
    assert!(root.status(WAIT).is_ok());
    let control = d.control.clone();
    let flood: Vec<Socket> = as_nobody(move || {
        (0..1000)
            .filter_map(|_| {
                let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).ok()?;
                s.connect(&SockAddr::unix(format!("\0{control}")).ok()?)
                    .ok()?;
                Some(s)
            })
            .collect()
    });
    assert!(flood.len() > MAX_PER_USER);
    // Root, on a new connection and on the old one.
    for c in [d.client(), root] {
        let t = Instant::now();
        c.status(WAIT).unwrap();
        assert!(t.elapsed() < STATUS_LIMIT, "status took {:?}", t.elapsed());
        assert_eq!(
            c.call(&write_request(Target::PrimaryDomain, "x", b"still"), WAIT)
                .unwrap(),
            Reply::Written
        );
    }
    // Nobody holds at most its share: the others got a refusal and were closed.
    let held = flood.iter().filter(|s| open_and_silent(s)).count();
    assert!(held <= MAX_PER_USER, "{held} held");
    // Idle ones are closed after the timeout; root's idle client connects again by itself.
    let root = d.client();
    std::thread::sleep(IDLE_TIMEOUT + Duration::from_secs(1));
    let held = flood.iter().filter(|s| open_and_silent(s)).count();
    assert_eq!(held, 0, "idle connections left open");
    root.status(WAIT).unwrap();
}

/// Whether the daemon has neither answered nor closed this connection.
fn open_and_silent(s: &Socket) -> bool {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n == 0 {
        return true;
    }
    // Readable: a refusal record, or the end.
    let mut buf = [0u8; 512];
    let _ = (&mut &*s).read(&mut buf);
    false
}
