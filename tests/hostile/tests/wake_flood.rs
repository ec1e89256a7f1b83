//! A writer running as nobody that keeps setting its ring's wake word and calling `FUTEX_WAKE`
//! on it (every wake-up it can cause, for nothing) must not keep the owner's reader busy, nor
//! delay or lose root's messages: the reader goes back to sleeping in `epoll` after a few empty
//! wake-ups, and each of root's messages arrives once, in order.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::{MailslotWriter, ReadError, Sender, Timeout};
use mailslot_hostile::{decode, make_message, unique_name};

const TEST: &str = "wake_flood_by_nobody_does_not_keep_the_reader_busy";
/// Root's messages, one about every millisecond while the flood runs.
const ROOT_MESSAGES: u64 = 2_000;
/// How long the flood runs (it outlasts root's writes).
const FLOOD_SECONDS: &str = "4";

fn main() {
    mailslot_test_support::run_tests(vec![mailslot_test_support::as_root(
        TEST,
        "floods as user nobody (setpriv)",
        flood,
    )]);
}

fn flood() {
    let name = unique_name("wakeflood");
    let slot = common::everyone_slot(&name);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (slot, done) = (slot.clone(), done.clone());
        std::thread::spawn(move || {
            let mut root = Vec::new();
            let mut bad = Vec::new();
            let mut flood_cpu = Duration::ZERO;
            let mut flood_wall = Duration::ZERO;
            let mut measuring: Option<(Duration, Instant)> = None;
            loop {
                let r = slot.read_message_timeout(Timeout::After(Duration::from_millis(300)));
                match r {
                    Ok(m) => match (m.sender, decode(&m.data)) {
                        (Sender::Local { uid: 0, .. }, Ok(d)) if d.id == "root" => {
                            if d.seq == 0 {
                                // Root writes only once the flood runs: measure from here.
                                measuring = Some((
                                    mailslot_test_support::thread_cpu_time(),
                                    Instant::now(),
                                ));
                            }
                            root.push(d.seq);
                            if d.seq == ROOT_MESSAGES - 1 {
                                if let Some((c, t)) = measuring.take() {
                                    flood_cpu = mailslot_test_support::thread_cpu_time() - c;
                                    flood_wall = t.elapsed();
                                }
                            }
                        }
                        (Sender::Local { uid: 0, .. }, other) => bad.push(format!(
                            "a root message that is not root's: {:?}",
                            other.map(|d| (d.id, d.seq))
                        )),
                        _ => {}
                    },
                    Err(ReadError::Timeout) if done.load(Ordering::SeqCst) => break,
                    Err(ReadError::Timeout) => {}
                    Err(e) => {
                        bad.push(format!("read error {e}"));
                        break;
                    }
                }
            }
            (root, bad, flood_cpu, flood_wall)
        })
    };

    let writer = MailslotWriter::open(&name).expect("root opens");
    let mut flooder = common::spawn(true, &["wake-flood", &name, FLOOD_SECONDS]);
    let rx = common::lines(&mut flooder);
    let mut log = Vec::new();
    let start = common::wait_line(&rx, "start", Duration::from_secs(15), &mut log);
    let mut reaper = common::Reaper(vec![flooder]);
    let t0 = Instant::now();
    let mut errors = Vec::new();
    for seq in 0..ROOT_MESSAGES {
        if let Err(e) = writer.write(&make_message("root", seq, 60)) {
            errors.push(format!("{seq}: {e}"));
        }
        std::thread::sleep(Duration::from_micros(1000));
    }
    let root_took = t0.elapsed();
    let summary = common::wait_line(&rx, "summary", Duration::from_secs(15), &mut log);
    let _ = reaper.0[0].wait();
    done.store(true, Ordering::SeqCst);
    let (root, bad, cpu, wall) = reader.join().expect("reader");
    let counters = slot.counters();
    eprintln!("{TEST}: flooder: {start}; {summary}");
    eprintln!(
        "{TEST}: root wrote {ROOT_MESSAGES} in {root_took:.2?} ({} errors); {} arrived; the \
         reader spent {cpu:.2?} of CPU in {wall:.2?} while they came; counters {counters:?}",
        errors.len(),
        root.len()
    );
    assert!(errors.is_empty(), "root's writes failed: {errors:?}");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        root,
        (0..ROOT_MESSAGES).collect::<Vec<_>>(),
        "root's messages, once each and in order"
    );
    let wakes: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("wakes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(wakes > 10_000, "the flood did not run: {summary}");
    assert_eq!(
        counters.dropped_writers, 0,
        "the flooder was dropped: nothing was tested"
    );
    // A reader that slept on the futex each time would be woken for nothing all along and
    // spend about all of its CPU on it.
    assert!(
        cpu.as_secs_f64() < 0.35 * wall.as_secs_f64(),
        "the reader spent {cpu:?} of CPU in {wall:?}"
    );
}
