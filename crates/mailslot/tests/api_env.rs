//! Library tests that need something of the machine they run on: root (root stands in for the
//! daemon and for the FUSE view, and can give a writer thread another user's credentials), or
//! no mailslot daemon in the network namespace. Without it a test is reported as `ignored` with
//! the reason, never as passed; `cargo test` as root runs them all.
//!
//! A test target of its own without the standard harness (`libtest-mimic`), because only a
//! custom harness can decide at run time that a test is ignored.

mod common;

use std::time::Duration;

use common::{as_root, ignored_if, run_tests, unique};
use mailslot::{
    Access, Class, Mailslot, MailslotWriter, OpenError, Timeout, WriteError, WriteOptions,
};

fn main() {
    run_tests(vec![
        as_root(
            "remote_sender_records_are_trusted_only_from_the_daemon",
            "root stands in for the daemon",
            remote_sender_records_are_trusted_only_from_the_daemon,
        ),
        as_root(
            "on_behalf_writes_apply_the_policy_to_the_caller_and_record_the_caller",
            "root stands in for the FUSE view",
            on_behalf_writes_apply_the_policy_to_the_caller_and_record_the_caller,
        ),
        as_root(
            "batches_from_the_daemon_keep_order_limits_and_trust",
            "root stands in for the daemon",
            batches_from_the_daemon_keep_order_limits_and_trust,
        ),
        as_root(
            "a_supplementary_group_admits_a_writer_to_a_group_mailslot",
            "a writer thread takes another user's credentials and groups",
            a_supplementary_group_admits_a_writer_to_a_group_mailslot,
        ),
        as_root(
            "only_trusted_writers_learn_what_an_owners_queue_holds",
            "root is the trusted user; a writer thread takes nobody's credentials",
            only_trusted_writers_learn_what_an_owners_queue_holds,
        ),
        // No daemon runs in this test's network namespace unless one was started by hand.
        ignored_if(
            "remote_names_without_a_daemon_fail_clearly",
            || {
                mailslot::daemon::DaemonClient::connect()
                    .is_ok()
                    .then(|| "a mailslot daemon runs in this network namespace".to_string())
            },
            remote_names_without_a_daemon_fail_clearly,
        ),
    ]);
}

/// Runs `f` in a new thread that first takes uid and gid 65534 (nobody) with the supplementary
/// `groups`. Raw system calls change the credentials of the calling thread only (the C
/// library's wrappers would change every thread of the process); the thread ends with `f`.
fn as_nobody_in_thread<T: Send + 'static>(
    groups: &'static [libc::gid_t],
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        // SAFETY: raw syscalls on this thread only, with a valid pointer and length for the
        // group list; the thread ends after `f`.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()),
                0
            );
            assert_eq!(libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534), 0);
        }
        f()
    })
    .join()
    .unwrap()
}

/// Proves that the owner takes the writer's supplementary groups into account (the kernel's
/// `SO_PEERGROUPS`): nobody's primary group is not the slot's group, so only a supplementary
/// group can admit it.
fn a_supplementary_group_admits_a_writer_to_a_group_mailslot() {
    const GROUP: u32 = 4711;
    let name = unique("suppl-group");
    let slot = Mailslot::builder()
        .access(Access::Group(GROUP))
        .create(&name)
        .unwrap();
    let write = |groups: &'static [libc::gid_t], text: &'static [u8]| {
        let n = name.clone();
        as_nobody_in_thread(groups, move || {
            MailslotWriter::open(&n).map(|w| w.write(text).map_err(|e| e.to_string()))
        })
    };
    // Without the group: refused when it opens, counted, nothing queued.
    let r = write(&[], b"no group");
    assert!(
        matches!(r, Err(OpenError::AccessDenied(_))),
        "a writer outside group {GROUP} was not refused: {r:?}"
    );
    assert_eq!(slot.counters().refused_writers, 1);
    // The group among other supplementary groups: admitted, and the message is nobody's.
    const GROUPS: [libc::gid_t; 3] = [100, GROUP, 200];
    let r = write(&GROUPS, b"member");
    assert!(
        matches!(r, Ok(Ok(()))),
        "a writer with supplementary group {GROUP} was not admitted: {r:?}"
    );
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"member");
    assert!(
        matches!(
            m.sender,
            mailslot::Sender::Local {
                uid: 65534,
                gid: 65534,
                ..
            }
        ),
        "{:?}",
        m.sender
    );
    assert_eq!(slot.counters().refused_writers, 1);
    assert_eq!(slot.info().count, 0);
}

/// A mailslot that everyone may write to.
fn everyone(name: &str) -> Mailslot {
    Mailslot::builder()
        .access(Access::Everyone)
        .create(name)
        .unwrap()
}

/// A thread that took uid 65534 (nobody; a raw setresuid changes only the calling thread) opens
/// `name`, writes a `forge`d record, then an honest message: only the honest one arrives in
/// `slot`, as nobody's, and the forged record is dropped and counted.
fn forgery_by_nobody_is_dropped(
    slot: &Mailslot,
    name: &str,
    forge: impl FnOnce(&MailslotWriter) -> Result<(), WriteError> + Send + 'static,
) {
    let n = name.to_string();
    std::thread::spawn(move || {
        // SAFETY: raw syscall on this thread only; the thread ends right after.
        let r = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(r, 0);
        let w = MailslotWriter::open(&n).unwrap();
        forge(&w).unwrap();
        w.write(b"honest").unwrap();
    })
    .join()
    .unwrap();
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"honest");
    assert!(matches!(
        m.sender,
        mailslot::Sender::Local { uid: 65534, .. }
    ));
    assert_eq!(slot.counters().dropped, 1);
}

fn remote_sender_records_are_trusted_only_from_the_daemon() {
    let ip = std::net::Ipv4Addr::new(10, 99, 0, 2);
    let name = unique("remote");
    let slot = everyone(&name);
    let w = MailslotWriter::open(&name).unwrap();
    w.write_from_remote(b"from afar", WriteOptions::new().priority(1), "HOSTB", ip)
        .unwrap();
    let m = slot.read_message().unwrap();
    assert_eq!(m.data, b"from afar");
    assert_eq!(
        m.sender,
        mailslot::Sender::Remote {
            name: "HOSTB".into(),
            ip
        }
    );
    // A process that is neither root nor the daemon user cannot claim to be a remote host: its
    // record is dropped and counted. (A raw setresuid changes only the calling thread.)
    forgery_by_nobody_is_dropped(&slot, &name, move |w| {
        w.write_from_remote(b"forged", WriteOptions::new(), "FAKE", ip)
    });

    // A slot that refuses remote messages drops them and counts them.
    let name = unique("noremote");
    let slot = Mailslot::builder()
        .accept_remote(false)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    assert!(!w.accepts_remote());
    w.write_from_remote(b"x", WriteOptions::new(), "HOSTB", ip)
        .unwrap();
    w.write(b"local").unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"local");
    assert_eq!(slot.counters().refused_remote, 1);
}

fn on_behalf_writes_apply_the_policy_to_the_caller_and_record_the_caller() {
    use mailslot::trusted::Caller;
    use mailslot::Sender;
    let nobody = Caller {
        pid: 4242,
        uid: 65534,
        gid: 65534,
        groups: vec![],
    };
    // Owner-only: nobody is refused before anything is queued; root is admitted.
    let name = unique("behalf-owner");
    let slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    assert_eq!(
        w.access_policy(),
        Some(mailslot::AccessPolicy {
            owner_uid: 0,
            access: Access::Owner
        })
    );
    assert!(!w.admits(65534, 65534, &[]));
    let e = w
        .write_on_behalf(b"sneaky", WriteOptions::new(), &nobody)
        .unwrap_err();
    assert!(
        matches!(e, WriteError::Open(OpenError::AccessDenied(_))),
        "{e:?}"
    );
    let root_caller = Caller {
        pid: 777,
        uid: 0,
        gid: 0,
        groups: vec![],
    };
    w.write_on_behalf(b"by root", WriteOptions::new().priority(3), &root_caller)
        .unwrap();
    let m = slot.read_message_timeout(Timeout::ZERO).unwrap();
    assert_eq!(m.data, b"by root");
    assert_eq!(m.priority, 3);
    assert_eq!(
        m.sender,
        Sender::Local {
            pid: 777,
            uid: 0,
            gid: 0
        }
    );
    assert!(slot.read_message_timeout(Timeout::ZERO).is_err());

    // Everyone: nobody's message arrives as nobody's, with its pid.
    let name = unique("behalf-everyone");
    let slot = everyone(&name);
    let w = MailslotWriter::open(&name).unwrap();
    w.write_on_behalf(b"hi", WriteOptions::new(), &nobody)
        .unwrap();
    let m = slot.read_message_timeout(Timeout::ZERO).unwrap();
    assert_eq!(
        m.sender,
        Sender::Local {
            pid: 4242,
            uid: 65534,
            gid: 65534
        }
    );

    // Group: the primary group admits; a supplementary group is checked by the writer from what
    // it is told and again by the owner from /proc/<pid>/status (this process is not in group
    // 4711, so a trusted writer that claims it is gets its message dropped and counted).
    let name = unique("behalf-group");
    let slot = Mailslot::builder()
        .access(Access::Group(4711))
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    assert!(!w.admits(1000, 1000, &[5, 6]));
    assert!(w.admits(1000, 1000, &[4711]));
    assert!(w.admits(1000, 4711, &[]));
    let in_group = Caller {
        pid: 4243,
        uid: 1000,
        gid: 4711,
        groups: vec![],
    };
    w.write_on_behalf(b"group", WriteOptions::new(), &in_group)
        .unwrap();
    let liar = Caller {
        pid: std::process::id(),
        uid: 1000,
        gid: 1000,
        groups: vec![4711],
    };
    w.write_on_behalf(b"claimed", WriteOptions::new(), &liar)
        .unwrap();
    w.write(b"last").unwrap();
    assert_eq!(
        slot.read_message_timeout(Timeout::ZERO).unwrap().data,
        b"group"
    );
    assert_eq!(
        slot.read_message_timeout(Timeout::ZERO).unwrap().data,
        b"last"
    );
    assert_eq!(slot.counters().refused_behalf, 1);

    // A process that is neither root nor the daemon user cannot write on behalf of anybody:
    // its record is dropped and counted, its honest write arrives as its own.
    let name = unique("behalf-forged");
    let slot = everyone(&name);
    forgery_by_nobody_is_dropped(&slot, &name, move |w| {
        w.write_on_behalf(b"forged", WriteOptions::new(), &root_caller)
    });
    assert!(slot.read_message_timeout(Timeout::ZERO).is_err());
}

fn remote_names_without_a_daemon_fail_clearly() {
    let e = MailslotWriter::open(r"\\HOSTB\mailslot\x").unwrap_err();
    assert!(matches!(e, OpenError::Remote { .. }));
    assert!(e.to_string().contains("not running"), "{e}");
    assert_eq!(e.win32_code(), 53);
}

fn batches_from_the_daemon_keep_order_limits_and_trust() {
    use mailslot::trusted::RemoteMessage;
    let ip = std::net::Ipv4Addr::new(10, 99, 0, 2);
    let m = move |data: &'static [u8], priority| RemoteMessage {
        data,
        priority,
        class: Class::Second,
        sender_name: "HOSTB",
        sender_ip: ip,
    };
    let name = unique("batch");
    let slot = Mailslot::builder()
        .max_message_size(8)
        .quota(20)
        .access(Access::Everyone)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    let out = w
        .write_batch_from_remote(&[
            m(b"low", 0),
            m(b"high", 9),
            m(b"mid", 5),
            m(b"far too long", 1),
            m(b"12345678", 2),
            m(b"none", 3),
        ])
        .unwrap();
    // 3 + 4 + 3 + 8 = 18 bytes fit the quota of 20; "none" (4 more) does not.
    assert_eq!(
        out,
        mailslot::trusted::BatchOutcome {
            queued: 4,
            full: 1,
            too_large: 1
        }
    );
    let order: Vec<Vec<u8>> = (0..4).map(|_| slot.read_message().unwrap().data).collect();
    assert_eq!(
        order,
        [
            b"high".to_vec(),
            b"mid".to_vec(),
            b"12345678".to_vec(),
            b"low".to_vec()
        ]
    );
    let mut again = w.write_batch_from_remote(&[m(b"x", 0)]).unwrap();
    assert_eq!(again.queued, 1);
    let msg = slot.read_message().unwrap();
    assert_eq!(
        msg.sender,
        mailslot::Sender::Remote {
            name: "HOSTB".into(),
            ip
        }
    );

    // From a process that is neither root nor the daemon user: the whole record is dropped.
    let n = name.clone();
    again = std::thread::spawn(move || {
        // SAFETY: raw syscall on this thread only; the thread ends right after.
        assert_eq!(
            unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) },
            0
        );
        let w = MailslotWriter::open(&n).unwrap();
        w.write_batch_from_remote(&[m(b"forged", 9)]).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(again.queued, 1, "sent; the owner decides");
    assert_eq!(slot.info().count, 0);
    assert_eq!(slot.counters().dropped, 1);

    // A slot that refuses remote messages counts each one.
    let name = unique("batchnoremote");
    let slot = Mailslot::builder()
        .accept_remote(false)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write_batch_from_remote(&[m(b"a", 0), m(b"b", 0)])
        .unwrap();
    w.write(b"local").unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"local");
    assert_eq!(slot.counters().refused_remote, 2);
}

/// `MailslotWriter::queue_state`: root is answered; nobody is refused at once by its own side.
/// Trust goes by who opened the handle, as the owner (by the connection's kernel credentials)
/// sees it: nobody's handle is refused even when a root thread asks on it, and root's handle is
/// answered even when a thread that has become nobody asks on it.
fn only_trusted_writers_learn_what_an_owners_queue_holds() {
    let name = unique("query-trust");
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&name)
        .unwrap();
    MailslotWriter::open(&name)
        .unwrap()
        .write_with(b"four", WriteOptions::new().priority(2))
        .unwrap();
    let root = MailslotWriter::open(&name).unwrap();
    let q = root.queue_state(Duration::from_secs(5)).unwrap();
    assert_eq!(
        (q.count, q.next_size, q.next_priority),
        (1, Some(4), Some(2))
    );

    let n = name.clone();
    let (refused, took, nobodys) = as_nobody_in_thread(&[], move || {
        let w = MailslotWriter::open(&n).unwrap();
        let t0 = std::time::Instant::now();
        let r = w.queue_state(Duration::from_secs(5));
        (r, t0.elapsed(), w)
    });
    match refused {
        Err(ref e @ WriteError::Open(OpenError::AccessDenied(_))) => assert_eq!(e.win32_code(), 5),
        other => panic!("nobody asked and got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(1),
        "nobody's refusal waited {took:?}"
    );
    // The owner goes by who connected, not by who asks: nobody's connection, asked on by
    // root, is refused at once too ...
    let t0 = std::time::Instant::now();
    let got = nobodys.queue_state(Duration::from_secs(5));
    assert!(
        matches!(got, Err(WriteError::Open(OpenError::AccessDenied(_)))),
        "{got:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    // ... and root's connection, asked on by a thread that has become nobody, is answered.
    let roots = MailslotWriter::open(&name).unwrap();
    let (answered, roots) = as_nobody_in_thread(&[], move || {
        (
            roots.queue_state(Duration::from_secs(5)).map(|q| q.count),
            roots,
        )
    });
    assert!(matches!(answered, Ok(1)), "{answered:?}");
    drop(roots);
    // The answers did not disturb the queue.
    assert_eq!(slot.read_message().unwrap().data, b"four");
}
