//! Library behaviour within one process (writers and owner in different threads), plus host
//! scope across network namespaces.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::{
    write_mailslot, Access, Class, CreateError, Mailslot, MailslotWriter, NameError, OpenError,
    ReadError, Timeout, WriteError, WriteOptions, DEFAULT_QUOTA, MAX_MESSAGE_SIZE,
};

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        r"\\.\mailslot\api\{tag}\{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn create_defaults_and_info() {
    let name = unique("info");
    let slot = Mailslot::create(&name).unwrap();
    let i = slot.info();
    assert_eq!(i.max_message_size, MAX_MESSAGE_SIZE);
    assert_eq!(i.quota, DEFAULT_QUOTA);
    assert_eq!(i.count, 0);
    assert_eq!(i.next_size, None);
    assert_eq!(i.next_priority, None);
    assert_eq!(i.read_timeout, Timeout::Forever);
    slot.set_read_timeout(Duration::from_millis(100));
    assert_eq!(
        slot.info().read_timeout,
        Timeout::After(Duration::from_millis(100))
    );
    assert_eq!(slot.info().read_timeout.as_win32_millis(), 100);
    let t0 = Instant::now();
    assert!(matches!(slot.read_message(), Err(ReadError::Timeout)));
    assert!(t0.elapsed() >= Duration::from_millis(100));
}

#[test]
fn create_errors() {
    assert!(matches!(
        Mailslot::create("blah"),
        Err(CreateError::InvalidName(NameError::NotMailslot(_)))
    ));
    let e = Mailslot::create(r"\\SERVER\mailslot\x").unwrap_err();
    assert!(matches!(e, CreateError::RemoteName(_)));
    assert_eq!(e.win32_code(), 123);
    assert!(matches!(
        Mailslot::create(r"\\*\mailslot\x"),
        Err(CreateError::RemoteName(_))
    ));
    assert!(matches!(
        Mailslot::builder()
            .max_message_size(MAX_MESSAGE_SIZE + 1)
            .create(&unique("big")),
        Err(CreateError::InvalidParameter(_))
    ));
    assert!(matches!(
        Mailslot::builder()
            .max_message_size(100)
            .quota(50)
            .create(&unique("q")),
        Err(CreateError::InvalidParameter(_))
    ));
    // Quota smaller than the implementation maximum caps the message size.
    let s = Mailslot::builder()
        .quota(1000)
        .create(&unique("cap"))
        .unwrap();
    assert_eq!(s.info().max_message_size, 1000);
}

#[test]
fn open_errors() {
    assert!(matches!(
        MailslotWriter::open(r"\\.\pipe\x"),
        Err(OpenError::InvalidName(_))
    ));
    let e = MailslotWriter::open(r"\\SERVER\mailslot\x").unwrap_err();
    assert!(matches!(e, OpenError::Remote { .. }));
    assert_eq!(e.win32_code(), 53);
    let e = write_mailslot(&unique("nobody"), b"x", WriteOptions::new()).unwrap_err();
    assert!(matches!(e, WriteError::Open(OpenError::NotFound(_))));
    assert_eq!(e.lanman_code(), 2);
}

#[test]
fn peek_leaves_the_message_and_reports_metadata() {
    let name = unique("peek");
    let slot = Mailslot::create(&name).unwrap();
    assert_eq!(slot.peek_message().unwrap(), None);
    let w = MailslotWriter::open(&name).unwrap();
    w.write_with(b"low", WriteOptions::new().priority(1))
        .unwrap();
    w.write_with(b"high", WriteOptions::new().priority(7).class(Class::First))
        .unwrap();
    let mut buf = [0u8; 16];
    let p = slot.peek(&mut buf).unwrap().unwrap();
    assert_eq!(&buf[..p.len], b"high");
    assert_eq!(p.priority, 7);
    assert_eq!(p.class, Class::First);
    assert_eq!(slot.info().count, 2);
    assert!(matches!(
        slot.peek(&mut [0u8; 2]),
        Err(ReadError::BufferTooSmall { needed: 4 })
    ));
    assert_eq!(slot.peek_message().unwrap().unwrap().data, b"high");
    assert_eq!(slot.read_message().unwrap().data, b"high");
    let i = slot.info();
    assert_eq!(
        (i.count, i.next_size, i.next_priority),
        (1, Some(3), Some(1))
    );
}

#[test]
fn write_option_errors() {
    let name = unique("opts");
    let _slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    assert!(matches!(
        w.write_with(b"x", WriteOptions::new().priority(10)),
        Err(WriteError::InvalidPriority(10))
    ));
    assert_eq!(w.max_message_size(), MAX_MESSAGE_SIZE);
    assert_eq!(w.owner().unwrap().0, std::process::id());
    assert!(w.accepts_remote());
}

#[test]
fn delete_tells_writers_and_frees_the_name_and_old_writers_stay_out() {
    let name = unique("delete");
    let slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"queued").unwrap();
    slot.delete();
    assert!(matches!(w.write(b"x"), Err(WriteError::OwnerGone)));
    let again = Mailslot::create(&name).unwrap();
    assert_eq!(again.info().count, 0, "queued data of the old slot is gone");
    // A writer of the old slot never writes into the new one.
    assert!(matches!(w.write(b"x"), Err(WriteError::OwnerGone)));
    assert_eq!(again.info().count, 0);
}

#[test]
fn read_waiting_in_one_thread_woken_by_writer_thread() {
    let name = unique("thread");
    let slot = Arc::new(Mailslot::create(&name).unwrap());
    let n = name.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        MailslotWriter::open(&n).unwrap().write(b"ping").unwrap();
    });
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"ping");
    h.join().unwrap();
}

#[test]
fn writers_flow_while_owner_is_busy() {
    // The owner does not read while 200 messages (more than a socket buffer holds) are written:
    // the service thread keeps them flowing into the queue.
    let name = unique("busy");
    let slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    for i in 0..200u32 {
        w.write(&i.to_le_bytes()).unwrap();
    }
    assert_eq!(slot.info().count, 200);
    for i in 0..200u32 {
        assert_eq!(slot.read_message().unwrap().data, i.to_le_bytes());
    }
}

#[test]
fn quota_counts_bytes_and_messages() {
    let name = unique("quota");
    let slot = Mailslot::builder()
        .max_message_size(10)
        .quota(25)
        .max_messages(3)
        .create(&name)
        .unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(&[1; 10]).unwrap();
    w.write(&[2; 10]).unwrap();
    assert!(matches!(w.write(&[3; 10]), Err(WriteError::Full)));
    w.write(&[3; 5]).unwrap();
    assert!(
        matches!(w.write(&[]), Err(WriteError::Full)),
        "message limit"
    );
    assert_eq!(WriteError::Full.win32_code(), 8);
    slot.read_message().unwrap();
    w.write(&[]).unwrap();
    assert_eq!(slot.info().count, 3);
}

#[test]
fn access_option_is_kept() {
    let name = unique("acl");
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&name)
        .unwrap();
    MailslotWriter::open(&name).unwrap().write(b"ok").unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"ok");
}

#[test]
fn async_read_with_tokio() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let name = unique("async");
        let slot = mailslot::tokio::AsyncMailslot::new(Mailslot::create(&name).unwrap()).unwrap();
        let n = name.clone();
        let writer = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(50));
            let w = Arc::new(MailslotWriter::open(&n).unwrap());
            for i in 0..50u8 {
                w.write_with(&[i], WriteOptions::new()).unwrap();
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            w
        });
        for i in 0..50u8 {
            let m = tokio::time::timeout(Duration::from_secs(5), slot.read_message())
                .await
                .expect("async read timed out")
                .unwrap();
            assert_eq!(m.data, [i]);
        }
        let w = writer.await.unwrap();
        mailslot::tokio::write_async(w, b"last".to_vec(), WriteOptions::new().class(Class::First))
            .await
            .unwrap();
        assert_eq!(slot.read_message().await.unwrap().data, b"last");
    });
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn remote_sender_records_are_trusted_only_from_the_daemon() {
    if !is_root() {
        eprintln!("SKIP remote_sender_records: needs root (root stands in for the daemon)");
        return;
    }
    let ip = std::net::Ipv4Addr::new(10, 99, 0, 2);
    let name = unique("remote");
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&name)
        .unwrap();
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
    let n = name.clone();
    std::thread::spawn(move || {
        // SAFETY: raw syscall on this thread only; the thread ends right after.
        let r = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(r, 0);
        let w = MailslotWriter::open(&n).unwrap();
        w.write_from_remote(b"forged", WriteOptions::new(), "FAKE", ip)
            .unwrap();
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

#[test]
fn on_behalf_writes_apply_the_policy_to_the_caller_and_record_the_caller() {
    use mailslot::trusted::Caller;
    use mailslot::Sender;
    if !is_root() {
        eprintln!("SKIP on_behalf_writes: needs root (root stands in for the FUSE view)");
        return;
    }
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
    assert_eq!(w.access_policy(), Some((0, Access::Owner)));
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
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&name)
        .unwrap();
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
    let slot = Mailslot::builder()
        .access(Access::Everyone)
        .create(&name)
        .unwrap();
    let n = name.clone();
    std::thread::spawn(move || {
        // SAFETY: raw syscall on this thread only; the thread ends right after.
        let r = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(r, 0);
        let w = MailslotWriter::open(&n).unwrap();
        w.write_on_behalf(b"forged", WriteOptions::new(), &root_caller)
            .unwrap();
        w.write(b"honest").unwrap();
    })
    .join()
    .unwrap();
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"honest");
    assert!(matches!(m.sender, Sender::Local { uid: 65534, .. }));
    assert_eq!(slot.counters().dropped, 1);
    assert!(slot.read_message_timeout(Timeout::ZERO).is_err());
}

#[test]
fn remote_names_without_a_daemon_fail_clearly() {
    // No daemon runs in this test's network namespace unless one was started by hand.
    if mailslot::daemon::DaemonClient::connect().is_ok() {
        eprintln!("SKIP remote_names_without_a_daemon: a mailslot daemon is running here");
        return;
    }
    let e = MailslotWriter::open(r"\\HOSTB\mailslot\x").unwrap_err();
    assert!(matches!(e, OpenError::Remote { .. }));
    assert!(e.to_string().contains("not running"), "{e}");
    assert_eq!(e.win32_code(), 53);
}

#[test]
fn one_shot_first_class_write_with_zero_timeout_succeeds_when_there_is_room() {
    let name = unique("oneshot");
    let slot = Mailslot::create(&name).unwrap();
    for i in 0..200u32 {
        write_mailslot(
            &name,
            &i.to_le_bytes(),
            WriteOptions::new()
                .class(Class::First)
                .timeout(Timeout::ZERO),
        )
        .unwrap();
    }
    assert_eq!(slot.info().count, 200);
}

#[test]
fn dropping_an_inherited_owner_handle_in_a_child_keeps_the_parents_slot() {
    let name = unique("fork");
    let slot = Mailslot::create(&name).unwrap();
    // SAFETY: the child only drops the handle and exits with _exit (no allocation-sensitive
    // work besides the drop, which touches no lock the parent could hold).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let inherited = unsafe { std::ptr::read(&slot) };
        drop(inherited);
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    MailslotWriter::open(&name)
        .unwrap()
        .write(b"still here")
        .unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"still here");
}

#[test]
fn a_completed_high_priority_write_overtakes_queued_messages_at_once() {
    // Reads may skip draining the sockets while messages are queued; a write that completed
    // before the read must still be seen (priority order across the skip).
    let name = unique("overtake");
    let slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    for i in 0..3u8 {
        w.write(&[i]).unwrap();
    }
    assert_eq!(slot.read_message().unwrap().data, [0]);
    let other = MailslotWriter::open(&name).unwrap();
    other
        .write_with(b"urgent", WriteOptions::new().priority(9))
        .unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"urgent");
    assert_eq!(slot.read_message().unwrap().data, [1]);
    w.write_with(b"also urgent", WriteOptions::new().priority(5))
        .unwrap();
    assert_eq!(slot.read_message().unwrap().data, b"also urgent");
    assert_eq!(slot.read_message().unwrap().data, [2]);
}

#[test]
fn batches_from_the_daemon_keep_order_limits_and_trust() {
    if !is_root() {
        eprintln!("SKIP batches_from_the_daemon: needs root (root stands in for the daemon)");
        return;
    }
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

#[test]
fn reused_message_buffers_never_show_stale_bytes() {
    // Buffers of messages read by copy are reused for later messages: sizes going up and down,
    // empty messages and reads by `read_message` mixed in must still give back exactly what was
    // written, in order.
    let name = unique("reuse");
    let slot = Mailslot::builder().quota(4 << 20).create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    let body = |i: usize| -> Vec<u8> {
        let len = [0, 1, 424, 7, 4000, 64, 3, 1500][i % 8];
        (0..len).map(|k| (i * 31 + k) as u8).collect()
    };
    let mut buf = vec![0u8; 8192];
    for round in 0..4 {
        for i in 0..600 {
            w.write(&body(round * 600 + i)).unwrap();
        }
        for i in 0..600 {
            let want = body(round * 600 + i);
            if i % 5 == 4 {
                assert_eq!(slot.read_message().unwrap().data, want, "message {i}");
            } else {
                let info = slot.read_timeout_with(&mut buf, Timeout::ZERO).unwrap();
                assert_eq!(&buf[..info.len], &want[..], "message {i}");
            }
        }
        assert!(matches!(
            slot.read_timeout_with(&mut buf, Timeout::ZERO),
            Err(ReadError::Timeout)
        ));
    }
}

#[test]
fn quota_is_exact_for_one_shot_writers_in_sequence() {
    // A writer that opens after another one's write returned must see that write in the quota
    // (the owner takes in every ring before it greets a new writer). Repeated: the owner's
    // service thread may accept the next writer in the same round as the previous one.
    for i in 0..50 {
        let name = unique(&format!("oneshot{i}"));
        let slot = Mailslot::builder()
            .max_message_size(10)
            .quota(20)
            .create(&name)
            .unwrap();
        assert_eq!(slot.info().count, 0);
        write_mailslot(&name, b"0123456789", WriteOptions::new()).unwrap();
        write_mailslot(&name, b"0123456789", WriteOptions::new()).unwrap();
        assert!(
            matches!(
                write_mailslot(&name, b"x", WriteOptions::new()),
                Err(WriteError::Full)
            ),
            "round {i}"
        );
        assert_eq!(slot.info().count, 2);
        assert_eq!(slot.read_message().unwrap().data, b"0123456789");
    }
}

#[test]
fn ping_pong_without_spinning_never_loses_a_wake_up() {
    // Each side sleeps for every message (no spin), so every message needs its wake-up byte: a
    // lost one shows as a read that times out. (A wake-up flag cleared before the owner read
    // its socket once lost about one wake-up in 10 000 this way.)
    let ping_name = unique("pp-ping");
    let pong_name = unique("pp-pong");
    let ping = Mailslot::builder()
        .spin(Duration::ZERO)
        .create(&ping_name)
        .unwrap();
    let pong = Mailslot::builder()
        .spin(Duration::ZERO)
        .create(&pong_name)
        .unwrap();
    const ROUNDS: u32 = 50_000;
    let echo = {
        let ping_name = ping_name.clone();
        std::thread::spawn(move || {
            let back = MailslotWriter::open(&ping_name).unwrap();
            for i in 0..ROUNDS {
                let m = pong
                    .read_message_timeout(Timeout::After(Duration::from_secs(5)))
                    .unwrap_or_else(|e| panic!("echo: request {i} lost ({e})"));
                back.write(&m.data).unwrap();
            }
        })
    };
    let to = MailslotWriter::open(&pong_name).unwrap();
    for i in 0..ROUNDS {
        to.write(&i.to_le_bytes()).unwrap();
        let m = ping
            .read_message_timeout(Timeout::After(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("ping: reply {i} lost ({e})"));
        assert_eq!(m.data, i.to_le_bytes());
    }
    echo.join().unwrap();
}
