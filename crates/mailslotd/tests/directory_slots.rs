//! Mailslots whose names the daemon's directory keeps (`mailslot::directory`), end to end: the
//! library's owners and writers against the daemon's directory server.
//!
//! Without the standard harness (`libtest-mimic`): the directory's address is given to the
//! library in the environment (`MAILSLOT_DIRECTORY`), which is set before any thread starts. The
//! binary is also the child processes of the tests (`DIRECTORY_TEST_ROLE`): an owner that gets
//! killed, and a process whose directory stops.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailslot::directory::{Reply, Request, DIRECTORY_ENV};
use mailslot::error::{CreateError, OpenError, WriteError};
use mailslot::{Access, Mailslot, MailslotWriter, WriteOptions};
use mailslot_test_support::{as_nobody, as_root, run_tests, unique_name, wait_for};
use mailslotd::directory::DirectoryServer;
use socket2::{Domain, SockAddr, Socket, Type};

/// What a child process of a test does.
const ROLE: &str = "DIRECTORY_TEST_ROLE";
/// The name the child's role is about.
const ROLE_NAME: &str = "DIRECTORY_TEST_NAME";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("own") => own_and_sleep(),
        Ok("stop") => directory_stops(),
        Ok("write") => write_and_exit(),
        _ => {}
    }
    // Before any thread: the library reads it at each create and open.
    let address = format!("mailslotd-test/directory/{}", std::process::id());
    std::env::set_var(DIRECTORY_ENV, &address);
    let server = DirectoryServer::bind_at(&address).expect("binding the test directory");
    let _running = server.spawn().expect("serving the test directory");
    run_tests(vec![
        libtest_mimic::Trial::test("a_slot_in_the_directory_has_no_socket_of_its_own", || {
            a_slot_in_the_directory_has_no_socket_of_its_own();
            Ok(())
        }),
        libtest_mimic::Trial::test("a_writer_in_another_process_asks_over_the_socket", || {
            a_writer_in_another_process_asks_over_the_socket();
            Ok(())
        }),
        libtest_mimic::Trial::test("names_stay_unique", || {
            names_stay_unique();
            Ok(())
        }),
        libtest_mimic::Trial::test("a_closed_slot_frees_its_name_at_once", || {
            a_closed_slot_frees_its_name_at_once();
            Ok(())
        }),
        libtest_mimic::Trial::test("a_killed_owner_frees_its_name_at_once", || {
            a_killed_owner_frees_its_name_at_once();
            Ok(())
        }),
        libtest_mimic::Trial::test("sharing_a_slot_gives_it_a_socket_of_its_own", || {
            sharing_a_slot_gives_it_a_socket_of_its_own();
            Ok(())
        }),
        libtest_mimic::Trial::test("when_the_directory_stops_slots_bind_their_names", || {
            when_the_directory_stops_slots_bind_their_names();
            Ok(())
        }),
        libtest_mimic::Trial::test("an_entry_for_another_slot_reaches_nothing", || {
            an_entry_for_another_slot_reaches_nothing();
            Ok(())
        }),
        as_root(
            "hostile_connections_to_the_process_listener_stop_no_writer",
            "a thread takes nobody's credentials",
            hostile_connections_to_the_process_listener_stop_no_writer,
        ),
    ])
}

fn name(tag: &str) -> String {
    unique_name("directory", tag)
}

/// The comparison key of a local name (what the directory and the abstract addresses use).
fn key(name: &str) -> String {
    name.trim_start_matches(r"\\.\mailslot\")
        .to_ascii_lowercase()
}

/// Whether a socket of its own listens on `name` (a line of `/proc/net/unix`).
fn has_socket(name: &str) -> bool {
    let want = format!("@mailslot/v1/{}", key(name));
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(7) == Some(want.as_str()))
}

/// A connection to the test directory.
fn directory() -> Socket {
    let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    let address = std::env::var(DIRECTORY_ENV).unwrap();
    s.connect(&SockAddr::unix(format!("\0{address}")).unwrap())
        .unwrap();
    s
}

fn call(s: &Socket, req: &Request) -> Reply {
    s.send(&req.encode()).unwrap();
    let mut buf = vec![0u8; mailslot::directory::MAX_RECORD];
    let n = recv(s, &mut buf);
    Reply::decode(&buf[..n]).unwrap()
}

fn recv(s: &Socket, buf: &mut [u8]) -> usize {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert!(n >= 0, "recv: {}", std::io::Error::last_os_error());
    n as usize
}

fn lookup(name: &str) -> Reply {
    call(&directory(), &Request::Lookup { key: key(name) })
}

fn a_slot_in_the_directory_has_no_socket_of_its_own() {
    let n = name("plain");
    let slot = Mailslot::create(&n).unwrap();
    assert!(!has_socket(&n), "a socket listens on the name");
    let Reply::Found { pid, uid, .. } = lookup(&n) else {
        panic!("the directory does not have {n}");
    };
    assert_eq!(pid, std::process::id());
    // SAFETY: geteuid has no preconditions.
    assert_eq!(uid, unsafe { libc::geteuid() });
    assert!(mailslot::list()
        .unwrap()
        .iter()
        .any(|e| e.name.key() == key(&n) && e.owner_pid == Some(std::process::id())));
    // Written by name, read in priority order, as any mailslot.
    let w = MailslotWriter::open(&n).unwrap();
    for (p, text) in [(1u8, "low"), (7, "high"), (1, "low 2")] {
        w.write_with(
            text.as_bytes(),
            WriteOptions {
                priority: p,
                ..WriteOptions::default()
            },
        )
        .unwrap();
    }
    let got: Vec<Vec<u8>> = (0..3).map(|_| slot.read_message().unwrap().data).collect();
    assert_eq!(got, [&b"high"[..], b"low", b"low 2"]);
    // A second writer, and the first one's write after it.
    let w2 = MailslotWriter::open(&n).unwrap();
    w2.write(b"second").unwrap();
    w.write(b"first again").unwrap();
    let got: HashSet<Vec<u8>> = (0..2).map(|_| slot.read_message().unwrap().data).collect();
    assert!(got.contains(&b"second"[..]) && got.contains(&b"first again"[..]));
}

/// The child role: opens `$DIRECTORY_TEST_NAME` (this process serves no directory: the lookup
/// goes over the directory's socket), writes its pid, says `ready`.
fn write_and_exit() -> ! {
    let n = std::env::var(ROLE_NAME).unwrap();
    MailslotWriter::open(&n)
        .unwrap()
        .write(std::process::id().to_string().as_bytes())
        .unwrap();
    println!("ready");
    std::process::exit(0);
}

/// This test process serves the directory and answers its own lookups from the table (see
/// `mailslot::directory::serve_lookups_here`); a writer in another process asks over the socket.
fn a_writer_in_another_process_asks_over_the_socket() {
    let n = name("other-process");
    let slot = Mailslot::create(&n).unwrap();
    let mut kid = child("write", &n);
    let pid = kid.0.id();
    assert!(kid.0.wait().unwrap().success());
    let m = slot.read_message().unwrap();
    assert_eq!(m.data, pid.to_string().as_bytes());
    assert!(matches!(m.sender, mailslot::Sender::Local { pid: p, .. } if p == pid));
}

fn names_stay_unique() {
    let n = name("unique");
    let _slot = Mailslot::create(&n).unwrap();
    assert!(matches!(
        Mailslot::create(&n),
        Err(CreateError::AlreadyExists(_))
    ));
    // Another case of the same name is the same name.
    assert!(matches!(
        Mailslot::create(&n.to_uppercase().replace(r"\\.\MAILSLOT\", r"\\.\mailslot\")),
        Err(CreateError::AlreadyExists(_))
    ));
    // A socket bound to the name (a mailslot made without the directory) keeps it.
    let m = name("bound");
    let sock = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    sock.bind(&SockAddr::unix(format!("\0mailslot/v1/{}", key(&m))).unwrap())
        .unwrap();
    sock.listen(1).unwrap();
    assert!(matches!(
        Mailslot::create(&m),
        Err(CreateError::AlreadyExists(_))
    ));
    drop(sock);
    let _slot = Mailslot::create(&m).unwrap();
}

fn a_closed_slot_frees_its_name_at_once() {
    let n = name("closed");
    let slot = Mailslot::create(&n).unwrap();
    let w = MailslotWriter::open(&n).unwrap();
    drop(slot);
    assert!(matches!(lookup(&n), Reply::Missing));
    assert!(matches!(
        MailslotWriter::open(&n),
        Err(OpenError::NotFound(_))
    ));
    assert!(matches!(w.write(b"x"), Err(WriteError::OwnerGone)));
    // The name is free at once.
    let again = Mailslot::create(&n).unwrap();
    MailslotWriter::open(&n).unwrap().write(b"new").unwrap();
    assert_eq!(again.read_message().unwrap().data, b"new");
}

/// The child role: creates `$DIRECTORY_TEST_NAME`, says `ready`, sleeps until killed.
fn own_and_sleep() -> ! {
    let n = std::env::var(ROLE_NAME).unwrap();
    let _slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&n)
        .expect("creating the child's mailslot");
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A child process, killed (and reaped) when dropped: a test that fails leaves none behind.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs this binary in `role` for `name` and waits for its `ready`.
fn child(role: &str, name: &str) -> Kid {
    let c = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(ROLE_NAME, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut kid = Kid(c);
    let mut line = String::new();
    BufReader::new(kid.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the child did not start");
    kid
}

fn a_killed_owner_frees_its_name_at_once() {
    let n = name("killed");
    let mut owner = child("own", &n);
    assert!(!has_socket(&n));
    let w = MailslotWriter::open(&n).unwrap();
    w.write(b"before").unwrap();
    owner.0.kill().unwrap();
    owner.0.wait().unwrap();
    // Gone for the writer (as soon as it sees the hang-up: the kill is not announced on the
    // control page), and the name is free at once (no waiting for the daemon to notice).
    wait_for(
        "the writer sees the owner gone",
        Duration::from_millis(500),
        || matches!(w.write(b"after"), Err(WriteError::OwnerGone)),
    );
    assert!(matches!(lookup(&n), Reply::Missing));
    let slot = Mailslot::create(&n).unwrap();
    MailslotWriter::open(&n)
        .unwrap()
        .write(b"new owner")
        .unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"new owner");
}

fn sharing_a_slot_gives_it_a_socket_of_its_own() {
    let n = name("shared");
    let slot = Mailslot::create(&n).unwrap();
    let w = MailslotWriter::open(&n).unwrap();
    w.write(b"one").unwrap();
    let fd: OwnedFd = slot.share().unwrap();
    assert!(has_socket(&n), "a shared slot listens on its name");
    assert!(matches!(lookup(&n), Reply::Missing));
    let other = Mailslot::from_shared(fd).unwrap();
    w.write(b"two").unwrap();
    MailslotWriter::open(&n).unwrap().write(b"three").unwrap();
    let mut got = HashSet::new();
    for _ in 0..3 {
        got.insert(other.read_message().unwrap().data);
    }
    assert_eq!(
        got,
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
            .into_iter()
            .collect()
    );
    drop(slot);
}

/// The child role: a directory of its own; a slot in it; the directory stops; the slot binds
/// its name and is still reached by name. Exits 0 when all held.
fn directory_stops() -> ! {
    let address = format!("mailslotd-test/directory-stops/{}", std::process::id());
    std::env::set_var(DIRECTORY_ENV, &address);
    let server = DirectoryServer::bind_at(&address).unwrap();
    let running = server.spawn().unwrap();
    let n = std::env::var(ROLE_NAME).unwrap();
    let slot = Mailslot::create(&n).unwrap();
    assert!(!has_socket(&n));
    let w = MailslotWriter::open(&n).unwrap();
    drop(running);
    wait_for("the slot binds its name", Duration::from_secs(5), || {
        has_socket(&n)
    });
    w.write(b"old writer").unwrap();
    // (The name is bound a moment before the socket listens.)
    let mut new = None;
    wait_for("a writer opens the name", Duration::from_secs(5), || {
        new = MailslotWriter::open(&n).ok();
        new.is_some()
    });
    new.unwrap().write(b"new writer").unwrap();
    let got: HashSet<Vec<u8>> = (0..2).map(|_| slot.read_message().unwrap().data).collect();
    assert!(got.contains(&b"old writer"[..]) && got.contains(&b"new writer"[..]));
    println!("ready");
    std::process::exit(0);
}

fn when_the_directory_stops_slots_bind_their_names() {
    let mut c = child("stop", &name("stops"));
    assert!(c.0.wait().unwrap().success());
}

/// An entry that points at a process's listener with another slot's id: the writer is refused,
/// the slot gets nothing.
fn an_entry_for_another_slot_reaches_nothing() {
    let n = name("target");
    let slot = Mailslot::create(&n).unwrap();
    let Reply::Found { id, address, .. } = lookup(&n) else {
        panic!("not in the directory");
    };
    let liar = directory();
    assert_eq!(call(&liar, &Request::Owner { address }), Reply::Done);
    let other = name("liar");
    assert_eq!(
        call(
            &liar,
            &Request::Register {
                id,
                key: key(&other)
            }
        ),
        Reply::Done
    );
    let t0 = Instant::now();
    assert!(matches!(
        MailslotWriter::open_timeout(&other, Duration::from_secs(2)),
        Err(OpenError::NotFound(_))
    ));
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(slot.info().count, 0);
}

fn hostile_connections_to_the_process_listener_stop_no_writer() {
    let n = name("hostile");
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&n)
        .unwrap();
    let Reply::Found { id, address, .. } = lookup(&n) else {
        panic!("not in the directory");
    };
    let addr = SockAddr::unix(format!("\0{}", String::from_utf8(address).unwrap())).unwrap();
    let k = key(&n);
    // 20 000 connection attempts by nobody; the last 1 000 are held while root writes.
    let held = as_nobody(move || {
        let mut held = std::collections::VecDeque::new();
        for i in 0..20_000u32 {
            let Ok(s) = Socket::new(Domain::UNIX, Type::SEQPACKET, None) else {
                break;
            };
            if s.connect(&addr).is_err() {
                continue;
            }
            // Garbage, a hello for the wrong name, a hello for a slot that is not there, a
            // record too long, nothing at all.
            let _ = match i % 5 {
                0 => s.send(b"\xff\xfe garbage"),
                1 => s.send(&hello(id, "not\\this")),
                2 => s.send(&hello(id ^ 0x5555, &k)),
                3 => s.send(&vec![b'H'; 4096]),
                _ => Ok(0),
            };
            held.push_back(s);
            if held.len() > 1000 {
                held.pop_front();
            }
        }
        held
    });
    assert!(!held.is_empty());
    // Root's writer opens and writes while nobody holds all that.
    let t0 = Instant::now();
    let w = MailslotWriter::open_timeout(&n, Duration::from_secs(5)).unwrap();
    for i in 0..100u32 {
        w.write(&i.to_le_bytes()).unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(slot.read_message().unwrap().data, i.to_le_bytes());
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    drop(held);
}

fn hello(id: u64, key: &str) -> Vec<u8> {
    let mut b = vec![b'H'];
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    b
}
