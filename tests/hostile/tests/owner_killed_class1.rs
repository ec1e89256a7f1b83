//! First-class writers blocked on a full slot whose owner is SIGKILLed must each get
//! `OwnerGone` (109) within 100 ms, and the name must be free to create again within 100 ms.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mailslot::{Class, Mailslot, MailslotWriter, Timeout, WriteOptions};

const QUOTA: usize = 40_000;
const SIZE: usize = 4_000;
const BLOCKED: usize = 3;

#[test]
fn class1_writers_blocked_on_a_full_slot_get_owner_gone_at_once_and_the_name_is_free() {
    let test = "class1_writers_blocked_on_a_full_slot_get_owner_gone_at_once_and_the_name_is_free";
    let common::FullSlot {
        name,
        owner: mut reaper,
        filled,
        ..
    } = common::full_slot("gone1", QUOTA, SIZE);
    let go = Arc::new(Barrier::new(BLOCKED + 1));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..BLOCKED)
        .map(|_| {
            let w = MailslotWriter::open(&name).expect("open");
            let go = go.clone();
            let tid_tx = tid_tx.clone();
            std::thread::spawn(move || {
                go.wait();
                // Past the barrier (a sleep of its own): the next sleep is the write's.
                tid_tx.send(common::tid()).expect("send tid");
                let r = w.write_with(
                    &[b'y'; SIZE],
                    WriteOptions::new()
                        .class(Class::First)
                        .timeout(Timeout::Forever),
                );
                (r, Instant::now())
            })
        })
        .collect();
    go.wait();
    // Each writer is in its write, asleep until room or an error.
    for tid in tid_rx.iter().take(BLOCKED) {
        common::wait_for(
            "a first-class writer sleeps",
            Duration::from_secs(10),
            || common::asleep(std::process::id(), tid),
        );
    }
    for t in &threads {
        assert!(
            !t.is_finished(),
            "a first-class write returned on a full slot"
        );
    }
    let killed_at = Instant::now();
    common::signal(&reaper.0[0], libc::SIGKILL);
    // Create the name again as soon as it is free.
    let mut tries = 0u64;
    let created = loop {
        tries += 1;
        match Mailslot::create(&name) {
            Ok(s) => break Some((s, killed_at.elapsed())),
            Err(_) if killed_at.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => {
                eprintln!("{test}: create still fails 2 s after the kill: {e}");
                break None;
            }
        }
    };
    let _ = reaper.0[0].wait();
    reaper.0.clear();
    // Bounded wait for the writers: a writer that never returns fails the test, not hangs it.
    let deadline = killed_at + Duration::from_secs(3);
    while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut results = Vec::new();
    for t in threads {
        if t.is_finished() {
            let (r, at) = t.join().expect("writer thread");
            results.push(Some((r.map_err(|e| e.win32_code()), at - killed_at)));
        } else {
            results.push(None); // still blocked 3 s after the kill (left running)
        }
    }
    eprintln!(
        "{test}: filled with {filled}; blocked writers after the kill: {results:?}; create again: \
         {:?} after {tries} tries",
        created.as_ref().map(|(_, at)| *at)
    );
    for r in &results {
        match r {
            Some((Err(109), at)) => assert!(
                *at <= Duration::from_millis(100),
                "a blocked writer got OwnerGone only {at:?} after the owner's SIGKILL"
            ),
            Some((other, at)) => panic!("a blocked writer got {other:?} {at:?} after the kill"),
            None => panic!("a blocked writer was still blocked 3 s after the owner's SIGKILL"),
        }
    }
    let (_slot, at) = created.expect("the name was never free again");
    assert!(
        at <= Duration::from_millis(100),
        "the name was free only {at:?} after the owner's SIGKILL"
    );
}
