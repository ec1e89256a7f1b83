//! Shared owner handles within one process (several holders of one mailslot): the rules that
//! do not need a second process. The cross-process rules (inherit, pass, SIGKILL) are tested in
//! `tests/hostile/tests/handles.rs`.

mod common;

use std::time::Duration;

use mailslot::{
    Mailslot, MailslotWriter, OpenError, ReadError, ShareError, Timeout, WriteError, WriteOptions,
};

#[test]
fn a_second_holder_reads_what_was_queued_before_and_after_sharing() {
    let name = common::unique("share1");
    let slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"before").unwrap();
    w.write_with(b"urgent", WriteOptions::new().priority(9))
        .unwrap();
    let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
    assert_eq!(other.name().to_string(), slot.name().to_string());
    w.write(b"after").unwrap();
    assert_eq!(other.read_message().unwrap().data, b"urgent");
    assert_eq!(slot.read_message().unwrap().data, b"before");
    assert_eq!(other.info().count, 1);
    assert_eq!(other.read_message().unwrap().data, b"after");
    assert!(matches!(
        slot.read_message_timeout(Timeout::ZERO),
        Err(ReadError::Timeout)
    ));
}

/// A writer that was alone before the handle was shared stamps its records from then on: the
/// holders merge what they take in from several rings by stamp.
#[test]
fn writers_of_a_shared_slot_are_read_in_write_order_by_every_holder() {
    let name = common::unique("share-order");
    let slot = Mailslot::create(&name).unwrap();
    let a = MailslotWriter::open(&name).unwrap();
    a.write(&0u32.to_le_bytes()).unwrap();
    let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
    let b = MailslotWriter::open(&name).unwrap();
    let mut expect = vec![0u32];
    for n in 1..40u32 {
        let w = if n % 3 == 0 { &a } else { &b };
        w.write(&n.to_le_bytes()).unwrap();
        expect.push(n);
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4];
    for i in 0..expect.len() {
        let holder = if i % 2 == 0 { &other } else { &slot };
        holder.read_timeout_with(&mut buf, Timeout::ZERO).unwrap();
        got.push(u32::from_le_bytes(buf));
    }
    assert_eq!(got, expect);
}

#[test]
fn the_slot_lives_until_the_last_holder_closes() {
    let name = common::unique("share2");
    let slot = Mailslot::create(&name).unwrap();
    let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"one").unwrap();
    drop(slot);
    // Still there: the writer writes, a new writer opens, the other holder reads both.
    w.write(b"two").unwrap();
    let w2 = MailslotWriter::open(&name).unwrap();
    w2.write(b"three").unwrap();
    for want in [&b"one"[..], b"two", b"three"] {
        assert_eq!(
            other
                .read_message_timeout(Timeout::After(Duration::from_secs(5)))
                .unwrap()
                .data,
            want
        );
    }
    drop(other);
    assert!(matches!(
        MailslotWriter::open(&name),
        Err(OpenError::NotFound(_))
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match w.write(b"x") {
            Err(WriteError::OwnerGone) => break,
            r => assert!(std::time::Instant::now() < deadline, "{r:?}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn delete_ends_it_for_every_holder() {
    let name = common::unique("share3");
    let slot = Mailslot::create(&name).unwrap();
    let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"doomed").unwrap();
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Drain the one message, then block until the delete.
        let first = other.read_message().map(|m| m.data);
        read_tx.send(common::tid()).unwrap();
        let second = other.read_message_timeout(Timeout::Forever);
        (first, second)
    });
    // The delete comes after the first read, while the second waits.
    let reader_tid = read_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    common::wait_until_asleep(reader_tid, "the second read");
    slot.delete();
    let (first, second) = reader.join().unwrap();
    assert_eq!(first.unwrap(), b"doomed");
    assert!(matches!(second, Err(ReadError::Deleted)), "{second:?}");
    assert!(matches!(w.write(b"x"), Err(WriteError::OwnerGone)));
    // The name is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while Mailslot::create(&name).is_err() {
        assert!(std::time::Instant::now() < deadline, "name not free");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A descriptor made by `share` and never taken up (still open) does not keep a deleted
/// mailslot's name: delete takes the handle's message off the socket all descriptors share.
#[test]
fn delete_frees_the_name_while_a_shared_descriptor_is_never_taken_up() {
    let name = common::unique("share-unclaimed");
    let slot = Mailslot::create(&name).unwrap();
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"queued").unwrap();
    let unclaimed = slot.share().unwrap();
    let also = slot.share().unwrap();
    slot.delete();
    assert!(matches!(w.write(b"x"), Err(WriteError::OwnerGone)));
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let again = loop {
        match Mailslot::create(&name) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "name not free 1 s after delete, a shared descriptor still open: {e}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    assert_eq!(again.info().count, 0, "the deleted slot's message is gone");
    // Taking up a descriptor of the deleted slot now is refused as deleted, and leaves the new
    // slot of that name alone.
    assert!(matches!(
        Mailslot::from_shared(unclaimed),
        Err(ShareError::Deleted)
    ));
    assert!(matches!(
        Mailslot::from_shared(also),
        Err(ShareError::Deleted)
    ));
    MailslotWriter::open(&name).unwrap().write(b"new").unwrap();
    assert_eq!(again.read_message().unwrap().data, b"new");
}

#[test]
fn descriptors_that_are_not_handles_are_refused() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let e = Mailslot::from_shared(a.into()).unwrap_err();
    assert!(matches!(e, ShareError::NotAMailslot(_)), "{e}");
    assert_eq!(e.win32_code(), 6);
    let f = std::fs::File::open("/proc/self/status").unwrap();
    assert!(matches!(
        Mailslot::from_shared(f.into()),
        Err(ShareError::NotAMailslot(_))
    ));
    assert!(matches!(
        Mailslot::inherited(99_999),
        Err(ShareError::NotAMailslot(_))
    ));
}

#[test]
fn many_messages_between_two_holders_each_once() {
    let name = common::unique("share4");
    let slot = Mailslot::builder().quota(64 << 10).create(&name).unwrap();
    let other = Mailslot::from_shared(slot.share().unwrap()).unwrap();
    let n = 20_000u32;
    let writer = {
        let name = name.clone();
        std::thread::spawn(move || {
            let w = MailslotWriter::open(&name).unwrap();
            for i in 0..n {
                w.write_with(
                    &i.to_le_bytes(),
                    WriteOptions::new()
                        .class(mailslot::Class::First)
                        .timeout(Duration::from_secs(10)),
                )
                .unwrap();
            }
        })
    };
    // The readers stop at the first empty read after the writer is done (not at a pause of
    // the writer's: both holders gone, its next write would fail).
    let written = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let read = |s: Mailslot| {
        let written = written.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let done = written.load(std::sync::atomic::Ordering::SeqCst);
                match s.read_message_timeout(Timeout::After(Duration::from_millis(200))) {
                    Ok(m) => got.push(u32::from_le_bytes(m.data.try_into().unwrap())),
                    Err(ReadError::Timeout) if done => break,
                    Err(ReadError::Timeout) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            got
        })
    };
    let (r1, r2) = (read(slot), read(other));
    writer.join().unwrap();
    written.store(true, std::sync::atomic::Ordering::SeqCst);
    let (a, b) = (r1.join().unwrap(), r2.join().unwrap());
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert!(b.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<u32> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
}
