//! The mailslot directory served by the daemon, spoken to with plain sockets: registration,
//! lookup, listing, conflicts with other owners and with mailslots that have a socket of their
//! own, malformed records and limits, and its counters in the daemon's status and metrics. Each
//! test runs a directory at an abstract name of its own.
//! (Limits for ordinary users and hostile users are in `directory_env`, which needs root.)

mod common;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::directory::{failed, listener_address, unique_key, Client, Directory};
use common::{Extras, Running};
use mailslot::daemon::DirectoryStatus;
use mailslot::directory::SOCKET_PREFIX;
use mailslot::directory::{entry_len, Entry, Reply, Request, MAX_KEY, MAX_RECORD};
use mailslot::error::code;
use mailslotd::directory::DirectoryLimits;
use socket2::{Domain, SockAddr, Socket, Type};

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// `key` padded with `x` to [`MAX_KEY`] bytes.
fn long_key(key: &str) -> String {
    format!("{key}{}", "x".repeat(MAX_KEY - key.len()))
}

/// Every entry of the directory, by paging with [`Request::List`]; and the number of pages.
fn list_all(c: &Client) -> (Vec<Entry>, usize) {
    let mut out = Vec::new();
    let mut from = 0;
    let mut pages = 0;
    loop {
        let Reply::Entries { next, entries } = c.call(&Request::List { from }) else {
            panic!("List not answered with entries");
        };
        pages += 1;
        let size: usize = 5 + entries.iter().map(entry_len).sum::<usize>();
        assert!(size <= MAX_RECORD);
        out.extend(entries);
        if next == 0 {
            return (out, pages);
        }
        assert!(next > from, "List went backwards: {from} then {next}");
        from = next;
    }
}

#[test]
fn register_lookup_list_unregister() {
    let d = Directory::start();
    let owner = d.connect();
    let address = owner.owner("one");
    let key = unique_key("first");
    assert_eq!(owner.register(1, &key), Reply::Done);

    let writer = d.connect();
    assert_eq!(
        writer.lookup(&key),
        Reply::Found {
            id: 1,
            pid: std::process::id(),
            uid: euid(),
            address: address.clone(),
        }
    );
    assert_eq!(writer.lookup(&unique_key("none")), Reply::Missing);

    // More names than one record holds, each of the longest size.
    let prefix = unique_key("many");
    let many: Vec<String> = (0..1200)
        .map(|i| long_key(&format!("{prefix}\\{i:05}")))
        .collect();
    for (i, k) in many.iter().enumerate() {
        assert_eq!(owner.register(100 + i as u64, k), Reply::Done, "{k}");
    }
    assert_eq!(d.stats().names, 1201);
    assert_eq!(d.stats().registries, 1);

    let (entries, pages) = list_all(&writer);
    assert!(pages > 1, "1 201 long names in {pages} page(s)");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in &entries {
        assert_eq!((e.pid, e.uid), (std::process::id(), euid()));
        *seen.entry(e.key.as_str()).or_default() += 1;
    }
    for k in many.iter().chain([&key]) {
        assert_eq!(seen.get(k.as_str()), Some(&1), "{k} listed once");
    }
    assert_eq!(entries.len(), 1201);
    // Far past the end: nothing, and no next page.
    assert_eq!(
        writer.call(&Request::List { from: 100_000 }),
        Reply::Entries {
            next: 0,
            entries: Vec::new()
        }
    );

    assert_eq!(owner.call(&Request::Unregister { id: 1 }), Reply::Done);
    assert_eq!(writer.lookup(&key), Reply::Missing);
    // Unregistering what is not there is no error.
    assert_eq!(owner.call(&Request::Unregister { id: 1 }), Reply::Done);
    assert_eq!(d.stats().names, 1200);

    // The connection's names go with it.
    drop(owner);
    common_wait("names dropped", || d.stats().names == 0);
    assert_eq!(writer.lookup(&many[0]), Reply::Missing);
    assert_eq!(d.stats().registries, 0);
}

fn common_wait(what: &str, f: impl FnMut() -> bool) {
    mailslot_test_support::wait_for(what, Duration::from_secs(5), f);
}

#[test]
fn requests_out_of_order_are_refused() {
    let d = Directory::start();
    let c = d.connect();
    let key = unique_key("order");
    assert_eq!(c.register(1, &key), failed(code::INVALID_PARAMETER));
    c.owner("order");
    assert_eq!(
        c.call(&Request::Owner {
            address: listener_address("again")
        }),
        failed(code::INVALID_PARAMETER)
    );
    assert_eq!(c.register(1, &key), Reply::Done);
    assert_eq!(
        c.register(1, &unique_key("other")),
        failed(code::INVALID_PARAMETER)
    );
    // Refusals do not close the connection.
    assert!(matches!(c.lookup(&key), Reply::Found { id: 1, .. }));
    assert_eq!(d.stats().names, 1);
}

#[test]
fn a_name_is_free_as_soon_as_its_holder_closes() {
    let d = Directory::start();
    let key = unique_key("taken");
    let first = d.connect();
    first.owner("first");
    assert_eq!(first.register(1, &key), Reply::Done);
    let second = d.connect();
    let address = second.owner("second");
    assert_eq!(second.register(7, &key), failed(code::ALREADY_EXISTS));
    assert_eq!(d.stats().refused_exists, 1);
    drop(first);
    // No wait: the directory checks whether the holder hung up before it refuses.
    assert_eq!(second.register(7, &key), Reply::Done);
    assert!(matches!(
        d.connect().lookup(&key),
        Reply::Found { id: 7, address: a, .. } if a == address
    ));
}

#[test]
fn a_lookup_of_a_name_whose_holder_closed_is_missing() {
    let d = Directory::start();
    let key = unique_key("gone");
    let owner = d.connect();
    owner.owner("gone");
    assert_eq!(owner.register(1, &key), Reply::Done);
    let writer = d.connect();
    drop(owner);
    assert_eq!(writer.lookup(&key), Reply::Missing);
}

#[test]
fn a_name_bound_by_a_mailslot_of_its_own_cannot_be_registered() {
    let d = Directory::start();
    let key = unique_key("own");
    let own = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    own.bind(&SockAddr::unix(format!("\0{SOCKET_PREFIX}{key}")).unwrap())
        .unwrap();
    let c = d.connect();
    c.owner("own");
    assert_eq!(c.register(1, &key), failed(code::ALREADY_EXISTS));
    drop(own);
    assert_eq!(c.register(1, &key), Reply::Done);
    // The probe is gone: the name can be bound again.
    let again = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    again
        .bind(&SockAddr::unix(format!("\0{SOCKET_PREFIX}{key}")).unwrap())
        .unwrap();
}

/// Sends a (malformed) record on a connection.
type Sender = Box<dyn Fn(&Client)>;

/// Sends `bytes` with a descriptor attached (`SCM_RIGHTS`).
fn send_with_fd(c: &Client, bytes: &[u8], fd: i32) {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut _,
        iov_len: bytes.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: plain old data; the pointers set below point to live buffers during sendmsg.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<i32>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&fd as *const i32).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            size_of::<i32>(),
        );
        assert!(libc::sendmsg(c.0.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0);
    }
}

#[test]
fn a_malformed_record_closes_the_connection_and_drops_its_names() {
    let d = Directory::start();
    let writer = d.connect();
    let valid_lookup = Request::Lookup {
        key: unique_key("x"),
    }
    .encode();
    let huge = vec![b'L'; MAX_RECORD + 1];
    let kinds: [(&str, Sender); 6] = [
        ("unknown kind", Box::new(|c| c.send_raw(b"Zgarbage"))),
        ("empty", Box::new(|c| c.send_raw(b""))),
        ("upper case key", Box::new(|c| c.send_raw(b"LABC"))),
        ("truncated", Box::new(|c| c.send_raw(b"R\x01\x02"))),
        ("too large", Box::new(move |c| c.send_raw(&huge))),
        (
            "with a descriptor",
            Box::new(move |c| send_with_fd(c, &valid_lookup, 0)),
        ),
    ];
    for (i, (what, send)) in kinds.iter().enumerate() {
        let c = d.connect();
        c.owner("bad");
        let key = unique_key("bad");
        assert_eq!(c.register(1, &key), Reply::Done);
        send(&c);
        assert_eq!(c.recv(), Some(failed(code::INVALID_PARAMETER)), "{what}");
        assert_eq!(c.recv(), None, "{what}: connection closed");
        assert_eq!(writer.lookup(&key), Reply::Missing, "{what}");
        assert_eq!(d.stats().malformed, i as u64 + 1);
    }
    assert_eq!(d.stats().names, 0);
}

#[test]
fn the_name_limit_is_enforced() {
    // This process is an admin to its own directory: only the total limit applies.
    let d = Directory::with_limits(DirectoryLimits {
        names: 3,
        ..DirectoryLimits::default()
    });
    let c = d.connect();
    c.owner("limit");
    for id in 0..3 {
        assert_eq!(c.register(id, &unique_key("limit")), Reply::Done);
    }
    assert_eq!(
        c.register(3, &unique_key("limit")),
        failed(code::NOT_ENOUGH_MEMORY)
    );
    assert_eq!(d.stats().refused_limit, 1);
    assert_eq!(c.call(&Request::Unregister { id: 0 }), Reply::Done);
    assert_eq!(c.register(3, &unique_key("limit")), Reply::Done);
}

#[test]
fn the_connection_limit_is_enforced() {
    let d = Directory::with_limits(DirectoryLimits {
        admin_reserve: 2,
        ..DirectoryLimits::default()
    });
    let a = d.connect();
    let b = d.connect();
    let key = unique_key("conn");
    assert_eq!(a.lookup(&key), Reply::Missing);
    assert_eq!(b.lookup(&key), Reply::Missing);
    let c = d.connect();
    assert_eq!(c.recv(), Some(failed(code::NOT_ENOUGH_MEMORY)));
    assert_eq!(c.recv(), None);
    assert_eq!(d.stats().connections_refused, 1);
    drop(a);
    common_wait("place freed", || d.stats().connections == 1);
    assert_eq!(d.connect().lookup(&key), Reply::Missing);
}

#[test]
fn idle_connections_are_closed_but_registry_connections_are_not() {
    let d = Directory::with_limits(DirectoryLimits {
        idle_timeout: Duration::from_millis(300),
        ..DirectoryLimits::default()
    });
    let idle = d.connect();
    let registry = d.connect();
    registry.owner("idle");
    let started = Instant::now();
    assert_eq!(idle.recv(), None);
    assert!(started.elapsed() < Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(500));
    let key = unique_key("idle");
    assert_eq!(registry.register(1, &key), Reply::Done);
}

#[test]
fn a_client_that_does_not_read_its_answers_is_closed() {
    let d = Directory::start();
    let owner = d.connect();
    owner.owner("many");
    let prefix = unique_key("unread");
    for i in 0..700 {
        let k = long_key(&format!("{prefix}\\{i:05}"));
        assert_eq!(owner.register(i, &k), Reply::Done);
    }
    // Each answer is a full record; the socket's buffer holds a few.
    let greedy = d.connect();
    greedy.0.set_nonblocking(true).unwrap();
    let list = Request::List { from: 0 }.encode();
    let mut sent = 0;
    for _ in 0..1000 {
        match greedy.0.send_with_flags(&list, libc::MSG_NOSIGNAL) {
            Ok(_) => sent += 1,
            Err(_) => break,
        }
    }
    assert!(sent > 0);
    common_wait("the greedy client closed", || d.stats().connections == 1);
    // Everyone else is still answered.
    assert!(matches!(
        owner.lookup(&long_key(&format!("{prefix}\\{:05}", 3))),
        Reply::Found { id: 3, .. }
    ));
}

/// The directory's counters are in the status and the metrics while it runs, and a daemon
/// that serves no directory says none (and exports no directory metric).
#[test]
fn the_status_and_the_metrics_show_the_directory() {
    let d = Running::start_with(Extras {
        directory: true,
        metrics: true,
    });
    let before = d.wait_for("the directory in the status", |s| s.directory.is_some());
    assert_eq!(before.directory, Some(DirectoryStatus::default()));

    let address = d.directory.as_deref().unwrap();
    let owner = Client::connect(address).unwrap();
    let listener = format!("mailslot/v1p/{}/unit-status", std::process::id());
    assert_eq!(
        owner.call(&Request::Owner {
            address: listener.into_bytes()
        }),
        Reply::Done
    );
    let key = format!("mailslotd_test\\status\\{}", std::process::id());
    assert_eq!(
        owner.call(&Request::Register {
            id: 1,
            key: key.clone()
        }),
        Reply::Done
    );
    // A writer's connection, open beside the registry connection.
    let writer = Client::connect(address).unwrap();
    assert!(matches!(
        writer.call(&Request::Lookup { key }),
        Reply::Found { id: 1, .. }
    ));

    let expected = DirectoryStatus {
        names: 1,
        registries: 1,
        connections: 2,
        ..DirectoryStatus::default()
    };
    let status = d.wait_for("one name, one registry, two connections", |s| {
        s.directory.as_ref() == Some(&expected)
    });

    let text = d.scrape_until("the directory's metrics", |t| {
        ["names 1", "registries 1", "connections 2"]
            .iter()
            .all(|l| t.lines().any(|x| x == format!("mailslotd_directory_{l}")))
    });
    for line in [
        "# TYPE mailslotd_directory_names gauge",
        "mailslotd_directory_names 1",
        "# TYPE mailslotd_directory_registries gauge",
        "mailslotd_directory_registries 1",
        "# TYPE mailslotd_directory_connections gauge",
        "mailslotd_directory_connections 2",
        "# TYPE mailslotd_directory_refused_exists_total counter",
        "mailslotd_directory_refused_exists_total 0",
        "# TYPE mailslotd_directory_refused_limit_total counter",
        "mailslotd_directory_refused_limit_total 0",
        "# TYPE mailslotd_directory_malformed_total counter",
        "mailslotd_directory_malformed_total 0",
        "# TYPE mailslotd_directory_connections_refused_total counter",
        "mailslotd_directory_connections_refused_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert_eq!(
        mailslotd::metrics::prometheus_text(&status)
            .matches("mailslotd_directory_")
            .count(),
        14
    );

    // The registry connection's name goes with it.
    drop(owner);
    d.wait_for("the name dropped", |s| {
        s.directory
            .as_ref()
            .is_some_and(|d| (d.names, d.registries, d.connections) == (0, 0, 1))
    });
    drop(writer);
    drop(d);

    let none = Running::start_with(Extras {
        directory: false,
        metrics: true,
    });
    let status = none.status();
    assert_eq!(status.directory, None);
    assert!(!mailslotd::metrics::prometheus_text(&status).contains("mailslotd_directory_"));
    let text = none.scrape_until("the metrics", |t| {
        t.lines()
            .any(|l| l.starts_with("mailslotd_uptime_seconds "))
    });
    assert!(!text.contains("mailslotd_directory_"), "{text}");
}
