//! The mailslot directory against ordinary and hostile local users. The tests act as user
//! `nobody` and need root; without root they are reported as `ignored` with the reason, never as
//! passed.
//!
//! A test target without the standard harness (`libtest-mimic`), because only a custom harness
//! can decide at run time that a test is ignored. The same binary is also the hostile client
//! (`MAILSLOTD_TEST_DIRECTORY_FLOOD=<address>`, run as nobody through `setpriv`).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::directory::{failed, listener_address, unique_key, Client, Directory};
use mailslot::directory::{Reply, Request, MAX_RECORD};
use mailslot::error::code;
use mailslot_test_support::{as_nobody, as_root, run_tests, wait_for};
use mailslotd::directory::DirectoryLimits;
use socket2::{Domain, SockAddr, Socket, Type};

/// The environment variable that makes this binary the hostile client of a directory.
const FLOOD_ROLE: &str = "MAILSLOTD_TEST_DIRECTORY_FLOOD";
/// The longest one of root's requests may take during the flood.
const REQUEST_LIMIT: Duration = Duration::from_secs(1);
/// How long root keeps asking during the flood.
const FLOOD_TIME: Duration = Duration::from_secs(3);

fn main() {
    if let Ok(address) = std::env::var(FLOOD_ROLE) {
        flood(&address);
    }
    run_tests(vec![
        as_root(
            "ordinary_users_have_a_name_limit_of_their_own",
            "a thread takes nobody's credentials",
            ordinary_users_have_a_name_limit_of_their_own,
        ),
        as_root(
            "ordinary_users_have_a_connection_limit_of_their_own",
            "a thread takes nobody's credentials",
            ordinary_users_have_a_connection_limit_of_their_own,
        ),
        as_root(
            "owner_processes_do_not_use_up_a_users_lookups",
            "a thread takes nobody's credentials",
            owner_processes_do_not_use_up_a_users_lookups,
        ),
        as_root(
            "a_flood_by_nobody_does_not_delay_roots_requests",
            "the flood runs as user nobody (setpriv)",
            a_flood_by_nobody_does_not_delay_roots_requests,
        ),
    ]);
}

fn ordinary_users_have_a_name_limit_of_their_own() {
    let d = Directory::with_limits(DirectoryLimits {
        names_per_user: 3,
        ..DirectoryLimits::default()
    });
    let address = d.address.clone();
    // Nobody's connection, used from this thread (credentials are the connect's).
    let nobody = as_nobody(move || Client::connect(&address).unwrap());
    nobody.owner("nobody");
    for id in 0..3 {
        assert_eq!(nobody.register(id, &unique_key("nobody")), Reply::Done);
    }
    assert_eq!(
        nobody.register(3, &unique_key("nobody")),
        failed(code::NOT_ENOUGH_MEMORY)
    );
    // Root is not held to it.
    let root = d.connect();
    root.owner("root");
    for id in 0..10 {
        assert_eq!(root.register(id, &unique_key("root")), Reply::Done);
    }
    assert!(matches!(root.lookup(&unique_key("none")), Reply::Missing));
    assert_eq!(d.stats().names, 13);
}

fn ordinary_users_have_a_connection_limit_of_their_own() {
    let d = Directory::with_limits(DirectoryLimits {
        connections_per_user: 2,
        ..DirectoryLimits::default()
    });
    let address = d.address.clone();
    let conns = as_nobody(move || {
        (0..3)
            .map(|_| Client::connect(&address).unwrap())
            .collect::<Vec<_>>()
    });
    let key = unique_key("conn");
    assert_eq!(conns[0].lookup(&key), Reply::Missing);
    assert_eq!(conns[1].lookup(&key), Reply::Missing);
    assert_eq!(conns[2].recv(), Some(failed(code::NOT_ENOUGH_MEMORY)));
    assert_eq!(conns[2].recv(), None);
    // Root still gets in.
    for _ in 0..4 {
        assert_eq!(d.connect().lookup(&key), Reply::Missing);
    }
    assert_eq!(d.stats().connections_refused, 1);
}

/// Registry connections (one per owner process) have places of their own: a user whose
/// processes own mailslots still looks names up; its registry connections have their own limit
/// (an owner process refused one binds sockets of its own).
fn owner_processes_do_not_use_up_a_users_lookups() {
    let d = Directory::with_limits(DirectoryLimits {
        connections_per_user: 2,
        registries_per_user: 3,
        ..DirectoryLimits::default()
    });
    let address = d.address.clone();
    let (owners, refused) = as_nobody(move || {
        let owners: Vec<Client> = (0..3)
            .map(|i| {
                let c = Client::connect(&address).unwrap();
                c.owner(&format!("limits-{i}"));
                c
            })
            .collect();
        // A fourth owner process: refused (its plain place stays until it hangs up).
        let refused = Client::connect(&address).unwrap();
        let answer = refused.call(&Request::Owner {
            address: listener_address("limits-3"),
        });
        (owners, answer)
    });
    assert_eq!(refused, failed(code::NOT_ENOUGH_MEMORY));
    wait_for(
        "the refused owner's hang-up seen",
        Duration::from_secs(5),
        || d.stats().connections == 3,
    );
    // Lookups still get in, as many as the plain limit allows.
    let address = d.address.clone();
    let lookups = as_nobody(move || {
        (0..2)
            .map(|_| Client::connect(&address).unwrap())
            .collect::<Vec<_>>()
    });
    let key = unique_key("lookups");
    for (i, o) in owners.iter().enumerate() {
        assert_eq!(o.register(i as u64, &format!("{key}-{i}")), Reply::Done);
    }
    for l in &lookups {
        assert!(matches!(l.lookup(&format!("{key}-0")), Reply::Found { .. }));
    }
    assert_eq!(d.stats().registries, 3);
    // An owner that hangs up gives its registry place back (the lookups' plain places are given
    // back too: a new connection starts in one).
    drop(owners);
    drop(lookups);
    wait_for("the hang-ups seen", Duration::from_secs(5), || {
        d.stats().connections == 0
    });
    let address = d.address.clone();
    let again = as_nobody(move || {
        let c = Client::connect(&address).unwrap();
        c.call(&Request::Owner {
            address: listener_address("limits-again"),
        })
    });
    assert_eq!(again, Reply::Done);
}

/// This test binary where user nobody can run it: where it is, if every directory above it lets
/// others through, else a copy in a new directory under the temporary directory.
fn binary_for_nobody() -> (PathBuf, Option<PathBuf>) {
    let exe = std::env::current_exe().unwrap();
    let reachable = exe.ancestors().skip(1).all(|d| {
        d.as_os_str().is_empty()
            || std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    }) && std::fs::metadata(&exe)
        .is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005);
    if reachable {
        return (exe, None);
    }
    let dir = std::env::temp_dir().join(format!("mailslotd-directory-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("flood");
    std::fs::copy(&exe, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    (copy, Some(dir))
}

/// Kills the child and removes the copied binary when dropped.
struct Flood {
    child: Child,
    copy: Option<PathBuf>,
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.copy {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn a_flood_by_nobody_does_not_delay_roots_requests() {
    let d = Directory::start();
    // Root's connections, made before the flood.
    let registry = d.connect();
    registry.owner("root");
    let writer = d.connect();

    let (bin, copy) = binary_for_nobody();
    let mut child = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&bin)
        .env(FLOOD_ROLE, &d.address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv");
    let out = child.stdout.take().unwrap();
    let flood = Flood { child, copy };
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "flooding", "the flood did not start");
    let started = Instant::now();
    wait_for(
        "the flood is refused and malformed",
        Duration::from_secs(10),
        || {
            let s = d.stats();
            s.connections_refused > 0 && s.malformed > 0
        },
    );

    let timed = |what: &str, c: &Client, req: &Request| {
        let started = Instant::now();
        let reply = c.call(req);
        let took = started.elapsed();
        assert!(took < REQUEST_LIMIT, "{what} took {took:?}");
        (reply, took)
    };
    let mut slowest = Duration::ZERO;
    let keys: Vec<String> = (0..100).map(|_| unique_key("root")).collect();
    for (i, key) in keys.iter().enumerate() {
        let (reply, took) = timed(
            "register",
            &registry,
            &Request::Register {
                id: i as u64,
                key: key.clone(),
            },
        );
        assert_eq!(reply, Reply::Done, "{key}");
        slowest = slowest.max(took);
    }
    for (i, key) in keys.iter().enumerate() {
        let (reply, took) = timed("lookup", &writer, &Request::Lookup { key: key.clone() });
        assert!(
            matches!(reply, Reply::Found { id, uid: 0, .. } if id == i as u64),
            "{key}: {reply:?}"
        );
        slowest = slowest.max(took);
    }
    // Root's new connections get in and are answered during the flood too; root keeps asking
    // for a while.
    let mut slowest_connect = Duration::ZERO;
    let mut n = 0;
    while started.elapsed() < FLOOD_TIME {
        let t = Instant::now();
        let fresh = d.connect();
        let key = &keys[n % keys.len()];
        assert!(matches!(fresh.lookup(key), Reply::Found { .. }));
        slowest_connect = slowest_connect.max(t.elapsed());
        let (reply, took) = timed("lookup", &writer, &Request::Lookup { key: key.clone() });
        assert!(matches!(reply, Reply::Found { .. }), "{key}: {reply:?}");
        slowest = slowest.max(took);
        n += 1;
    }
    assert!(
        slowest_connect < REQUEST_LIMIT,
        "a new connection took {slowest_connect:?}"
    );
    let s = d.stats();
    assert!(flood_alive(&flood), "the flood ended early");
    drop(flood);
    eprintln!(
        "{n} rounds; slowest request {slowest:?}, slowest new connection {slowest_connect:?}; \
         {s:?}"
    );
    // Nobody held at most its share of connections (plain ones, and registry connections,
    // which have places of their own), root 3.
    let share = mailslotd::directory::MAX_PER_USER + mailslotd::directory::MAX_REGISTRIES_PER_USER;
    assert!(s.connections <= (share + 3) as u64);
}

fn flood_alive(f: &Flood) -> bool {
    Path::new(&format!("/proc/{}", f.child.id())).exists()
}

/// The hostile client: as many connections as the directory lets it have (and more attempts),
/// each sending garbage, records too large, requests whose answers it never reads, and names.
fn flood(address: &str) -> ! {
    let connect = || -> Option<Socket> {
        let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).ok()?;
        s.set_nonblocking(true).ok()?;
        s.connect(&SockAddr::unix(format!("\0{address}")).ok()?)
            .ok()?;
        Some(s)
    };
    let huge = vec![b'R'; MAX_RECORD + 100];
    let list = Request::List { from: 0 }.encode();
    let owner = Request::Owner {
        address: format!("mailslot/v1p/{}/flood", std::process::id()).into_bytes(),
    }
    .encode();
    let mut conns: Vec<Socket> = Vec::new();
    let mut round: u64 = 0;
    let mut said = false;
    loop {
        round += 1;
        // Drop what the directory closed; open up to a thousand (most are refused).
        conns.retain(|s| !peer_closed(s));
        while conns.len() < 1000 {
            let Some(s) = connect() else { break };
            // Each new connection first tries to hold a name (answers never read).
            let key = format!("flood\\{}\\{round}\\{}", std::process::id(), conns.len());
            let _ = s.send_with_flags(&owner, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
            let register = Request::Register { id: 1, key }.encode();
            let _ = s.send_with_flags(&register, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
            conns.push(s);
        }
        for (i, s) in conns.iter().enumerate() {
            // A quarter keep quiet, holding their names.
            if i % 4 == 0 {
                continue;
            }
            let key = format!("flood\\{}\\{round}\\{i}", std::process::id());
            let records: [&[u8]; 6] = [
                b"Zgarbage",
                &huge,
                &list,
                &owner,
                &Request::Register { id: round, key }.encode(),
                b"",
            ];
            let pick = (round as usize + i) % records.len();
            for r in records.iter().skip(pick).take(3) {
                let _ = s.send_with_flags(r, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
            }
        }
        if !said {
            said = true;
            println!("flooding");
        }
        // Churn: every few rounds give up half the connections.
        if round % 8 == 7 {
            let half = conns.len() / 2;
            conns.truncate(half);
        }
    }
}

/// Whether the directory closed `s` (`POLLRDHUP`/`POLLHUP`).
fn peer_closed(s: &Socket) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0 }
}
