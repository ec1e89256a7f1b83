//! Writers SIGKILLed at random moments lose nothing they reported accepted: every accepted
//! message arrives exactly once, in order per writer, undamaged; a message whose write was cut by
//! the kill arrives at most once (or not at all).
//!
//! `MAILSLOT_TORTURE_MESSAGES` sets how many accepted writes to reach (default 100 000).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::{Mailslot, ReadError, Timeout};
use mailslot_hostile::{decode, unique_name, Rng};

const WRITERS: usize = 4;

#[test]
fn torture_sigkilled_writers_lose_nothing_accepted() {
    let test = "torture_sigkilled_writers_lose_nothing_accepted";
    let target = common::env_u64("MAILSLOT_TORTURE_MESSAGES", 100_000);
    let started = Instant::now();
    let name = unique_name("torture");
    let slot = Arc::new(Mailslot::create(&name).expect("create"));

    // The reader: every message, in arrival order.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (slot, stop) = (slot.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut arrived: Vec<Result<(u64, u64), String>> = Vec::new();
            for n in 0.. {
                match common::read_nth(&slot, n, Timeout::After(Duration::from_millis(300))) {
                    Ok(m) => arrived.push(decode(&m.data).and_then(|d| {
                        let id =
                            d.id.strip_prefix('w')
                                .and_then(|n| n.parse().ok())
                                .ok_or_else(|| format!("unknown writer id {}", d.id))?;
                        Ok((id, d.seq))
                    })),
                    Err(ReadError::Timeout) if stop.load(Ordering::SeqCst) => break,
                    Err(ReadError::Timeout) => {}
                    Err(e) => {
                        arrived.push(Err(format!("read error {e}")));
                        break;
                    }
                }
            }
            arrived
        })
    };

    // Accepted writes, reported by the writers' stdout ("ok w<id> <seq>").
    let accepted_total = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<(u64, u64)>();
    let (etx, erx) = mpsc::channel::<String>();
    let spawn = |id: u64| {
        let mut c = common::spawn(false, &["torture-writer", &name, &format!("w{id}"), "0"]);
        let out = common::lines(&mut c);
        let (tx, etx, total) = (tx.clone(), etx.clone(), accepted_total.clone());
        let t = std::thread::spawn(move || {
            for l in out {
                let f: Vec<&str> = l.split(' ').collect();
                match f.as_slice() {
                    ["ok", w, seq] => {
                        let seq = seq.parse().expect("seq");
                        let wid = w[1..].parse().expect("id");
                        let _ = tx.send((wid, seq));
                        total.fetch_add(1, Ordering::SeqCst);
                    }
                    ["opened", ..] => {}
                    _ => {
                        let _ = etx.send(format!("w{id}: {l}"));
                    }
                }
            }
        });
        (c, t)
    };
    let mut rng = Rng::from_time();
    let mut next_id = 0u64;
    let mut procs = common::Reaper(Vec::new());
    let mut stdout_threads = Vec::new();
    for _ in 0..WRITERS {
        let (c, t) = spawn(next_id);
        procs.0.push(c);
        stdout_threads.push(t);
        next_id += 1;
    }
    let mut kills = 0u64;
    let limit = Duration::from_secs(if target > 200_000 { 3600 } else { 60 });
    while accepted_total.load(Ordering::SeqCst) < target {
        assert!(
            started.elapsed() < limit,
            "only {} accepted after {limit:?}",
            accepted_total.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(rng.range(1, 50)));
        let victim = rng.range(0, WRITERS as u64 - 1) as usize;
        common::kill9(&mut procs.0[victim]);
        kills += 1;
        let (c, t) = spawn(next_id);
        procs.0[victim] = c;
        stdout_threads.push(t);
        next_id += 1;
    }
    let writing_secs = started.elapsed().as_secs_f64();
    for c in &mut procs.0 {
        common::kill9(c);
    }
    // Every reported acceptance is in (the stdout threads end at EOF), then the reader stops
    // once it has been idle 300 ms.
    for t in stdout_threads {
        t.join().expect("stdout thread");
    }
    stop.store(true, Ordering::SeqCst);
    let arrived = reader.join().expect("reader");
    drop((tx, etx));
    let accepted: HashSet<(u64, u64)> = rx.try_iter().collect();
    let writer_errors: Vec<String> = erx.try_iter().collect();

    // Check.
    let mut damaged = Vec::new();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut dups = Vec::new();
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut out_of_order = Vec::new();
    let mut unreported = 0u64;
    for a in &arrived {
        match a {
            Err(e) => damaged.push(e.clone()),
            Ok((id, seq)) => {
                if !seen.insert((*id, *seq)) {
                    dups.push((*id, *seq));
                }
                if let Some(prev) = last.insert(*id, *seq) {
                    if *seq <= prev {
                        out_of_order.push((*id, prev, *seq));
                    }
                }
                if !accepted.contains(&(*id, *seq)) {
                    unreported += 1;
                }
            }
        }
    }
    let mut lost: Vec<(u64, u64)> = accepted.difference(&seen).copied().collect();
    lost.sort_unstable();
    eprintln!(
        "{test}: {} writers ({kills} SIGKILLs), {} writes accepted in {writing_secs:.1}s; {} arrived \
         ({unreported} never reported accepted), lost {}, duplicated {}, out of order {}, damaged \
         {}; writer errors {}; counters {:?}; total {:.1}s",
        next_id,
        accepted.len(),
        arrived.len(),
        lost.len(),
        dups.len(),
        out_of_order.len(),
        damaged.len(),
        writer_errors.len(),
        slot.counters(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        damaged.is_empty(),
        "damaged messages: {:?}",
        &damaged[..damaged.len().min(5)]
    );
    assert!(
        lost.is_empty(),
        "accepted writes that never arrived (writer, seq): {:?}",
        &lost[..lost.len().min(10)]
    );
    assert!(
        dups.is_empty(),
        "duplicated: {:?}",
        &dups[..dups.len().min(10)]
    );
    assert!(
        out_of_order.is_empty(),
        "out of order (writer, previous seq, seq): {:?}",
        &out_of_order[..out_of_order.len().min(10)]
    );
    assert!(
        writer_errors.is_empty(),
        "writers reported errors: {:?}",
        &writer_errors[..writer_errors.len().min(5)]
    );
}
