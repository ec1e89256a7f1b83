//! Writers SIGKILLed while blocked (or while writing) on a full slot must give their quota
//! back: once they are dead and the slot is drained, as many messages fit as before.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::{Mailslot, MailslotWriter, Timeout, WriteError};
use mailslot_hostile::{unique_name, Rng};

const QUOTA: usize = 60_000;
const SIZE: usize = 4_000;
const WRITERS: usize = 3;
const ROUNDS: usize = 12;

/// Writes class-2 messages of SIZE bytes until `Full`; returns how many fitted.
fn fill(w: &MailslotWriter) -> usize {
    let data = vec![b'P'; SIZE];
    for n in 0..10_000 {
        match w.write(&data) {
            Ok(()) => {}
            Err(WriteError::Full) => return n,
            Err(e) => panic!("filling: unexpected {e} ({})", e.win32_code()),
        }
    }
    panic!("never full after 10 000 writes of {SIZE} bytes with a quota of {QUOTA}");
}

#[test]
fn quota_is_returned_when_blocked_writers_are_killed() {
    let test = "quota_is_returned_when_blocked_writers_are_killed";
    let started = Instant::now();
    let name = unique_name("quota");
    let slot = Arc::new(
        Mailslot::builder()
            .quota(QUOTA)
            .max_message_size(SIZE)
            .create(&name)
            .expect("create"),
    );
    let w = MailslotWriter::open(&name).expect("open");
    let first = fill(&w);
    assert_eq!(
        common::drain(&slot),
        first,
        "probe: not everything written came back"
    );
    eprintln!("{test}: probe before: {first} messages of {SIZE} bytes fit a quota of {QUOTA}");

    let mut rng = Rng::from_time();
    let (mut oks, mut kills_blocked, mut kills_active) = (0u64, 0u64, 0u64);
    for round in 0..ROUNDS {
        fill(&w);
        let mut reaper = common::Reaper(Vec::new());
        let mut rxs = Vec::new();
        for _ in 0..WRITERS {
            let mut c = common::spawn(false, &["fill-and-block", &name, &SIZE.to_string()]);
            rxs.push(common::lines(&mut c));
            reaper.0.push(c);
        }
        // Every writer is in a write on the full slot ("blocked" printed, no "ok" after it).
        for rx in &rxs {
            common::wait_line(rx, "blocked", Duration::from_secs(10), &mut Vec::new());
        }
        // After "blocked" the writer's only sleep is the wait for room.
        for c in &reaper.0 {
            common::wait_for("a blocked writer sleeps", Duration::from_secs(10), || {
                common::asleep(c.id(), c.id())
            });
        }
        for rx in &rxs {
            while let Ok(l) = rx.try_recv() {
                assert!(
                    l == "blocked" || l == "ok",
                    "writer reported {l:?} while the slot was full"
                );
            }
        }
        let active = round % 2 == 1;
        if active {
            // Free room while they are killed, so that some die in the middle of a write that
            // got room; the others die blocked again.
            let stop = Arc::new(AtomicBool::new(false));
            let reads = Arc::new(AtomicU64::new(0));
            let t = {
                let (slot, stop, reads) = (slot.clone(), stop.clone(), reads.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if slot
                            .read_message_timeout(Timeout::After(Duration::from_millis(1)))
                            .is_ok()
                        {
                            reads.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            };
            std::thread::sleep(Duration::from_micros(rng.range(500, 20_000)));
            for c in &mut reaper.0 {
                common::kill9(c);
                std::thread::sleep(Duration::from_micros(rng.range(0, 2_000)));
            }
            stop.store(true, Ordering::SeqCst);
            t.join().expect("reader");
            kills_active += WRITERS as u64;
        } else {
            for c in &mut reaper.0 {
                common::kill9(c);
            }
            kills_blocked += WRITERS as u64;
        }
        for rx in &rxs {
            oks += rx.try_iter().filter(|l| l == "ok").count() as u64;
        }
    }
    let drained = common::drain(&slot);
    let second = fill(&w);
    let counters = slot.counters();
    eprintln!(
        "{test}: {ROUNDS} rounds, {kills_blocked} writers killed blocked, {kills_active} killed while \
         room was being freed, {oks} of their writes accepted; drained {drained} at the end"
    );
    eprintln!(
        "{test}: probe after: {second} messages fit (before: {first}); counters {counters:?}; {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (stopped_first, stopped_second, stopped_oks) = stopped_owner_phase(test);
    assert_eq!(
        stopped_second,
        stopped_first,
        "writers killed while blocked sending to a stopped owner kept {} messages' worth of the \
         quota ({stopped_oks} of their writes had been accepted)",
        stopped_first as i64 - stopped_second as i64
    );
    assert_eq!(
        second,
        first,
        "killed writers kept {} bytes of the quota ({} messages of {SIZE} bytes)",
        first.saturating_sub(second) * SIZE,
        first as i64 - second as i64
    );
}

const BIG: usize = 60_000;
const BIG_QUOTA: usize = 1_000_000;

/// Phase 2: the owner is another process, SIGSTOPped, so writers that have room in the quota
/// block in the middle of a write (the owner takes nothing in); they are SIGKILLed there, the
/// owner continues, and the slot is probed again. Returns (fit before, fit after, accepted).
fn stopped_owner_phase(test: &str) -> (usize, usize, u64) {
    use std::io::Write;
    let name = unique_name("quota_stop");
    let mut owner = common::spawn_io(
        false,
        &["own-drain", &name, &BIG_QUOTA.to_string(), &BIG.to_string()],
        true,
    );
    let orx = common::lines(&mut owner);
    let mut stdin = owner.stdin.take().expect("stdin");
    let reaper = common::Reaper(vec![owner]);
    common::wait_line(&orx, "ready", Duration::from_secs(10), &mut Vec::new());
    let drain = |stdin: &mut std::process::ChildStdin| -> usize {
        writeln!(stdin, "drain").expect("command owner");
        let l = common::wait_line(&orx, "drained", Duration::from_secs(30), &mut Vec::new());
        l["drained ".len()..].parse().expect("count")
    };
    let w = MailslotWriter::open(&name).expect("open");
    let probe = |w: &MailslotWriter| -> usize {
        let data = vec![b'Q'; BIG];
        (0..1000)
            .find(|_| match w.write(&data) {
                Ok(()) => false,
                Err(WriteError::Full) => true,
                Err(e) => panic!("probe: unexpected {e}"),
            })
            .expect("never full")
    };
    let first = probe(&w);
    assert_eq!(drain(&mut stdin), first, "probe: not everything came back");

    // The writers open while the owner runs (opening needs its answer) and start writing
    // 700 ms later, when it is stopped.
    let mut writers = common::Reaper(Vec::new());
    let mut rxs = Vec::new();
    for _ in 0..WRITERS {
        let mut c = common::spawn(false, &["fill-and-block", &name, &BIG.to_string(), "700"]);
        rxs.push(common::lines(&mut c));
        writers.0.push(c);
    }
    for rx in &rxs {
        common::wait_line(rx, "opened", Duration::from_secs(10), &mut Vec::new());
    }
    common::signal(&reaper.0[0], libc::SIGSTOP);
    // Wait until no writer has made progress for 300 ms: all are blocked in a write.
    let mut oks = 0u64;
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut blocked = [false; WRITERS];
    while quiet_since.elapsed() < Duration::from_millis(300) || !blocked.iter().all(|&b| b) {
        assert!(
            Instant::now() < deadline,
            "writers never blocked: {oks} ok, blocked {blocked:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
        for (i, rx) in rxs.iter().enumerate() {
            for l in rx.try_iter() {
                quiet_since = Instant::now();
                match l.as_str() {
                    "ok" => oks += 1,
                    "blocked" => blocked[i] = true,
                    other => panic!("writer: unexpected {other:?}"),
                }
            }
        }
    }
    for c in &mut writers.0 {
        common::kill9(c);
    }
    common::signal(&reaper.0[0], libc::SIGCONT);
    let drained = drain(&mut stdin);
    let second = probe(&w);
    eprintln!(
        "{test}: stopped owner: {first} messages of {BIG} bytes fit a quota of {BIG_QUOTA}; \
         {WRITERS} writers had {oks} writes accepted, then blocked and were killed; owner drained \
         {drained}; then {second} fit"
    );
    drop(stdin);
    (first, second, oks)
}
