//! A writer running as nobody that scribbles on every shared mapping and socket it was given
//! must not be able to touch root's messages: each of root's accepted writes arrives exactly
//! once, in order and undamaged, and root's writes never fail.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailslot::{Access, Mailslot, MailslotWriter, ReadError, Sender, Timeout};
use mailslot_hostile::{decode, make_message, preview, unique_name};

const ROOT_CLASS2: u64 = 20_000;
const ROOT_CLASS1: u64 = 2_000;
/// Root keeps writing while the scribbler runs, up to this many messages.
const ROOT_CAP: u64 = 100_000;
const MAX_PAYLOAD: usize = 100;

fn main() {
    mailslot_test_support::run_tests(vec![
        mailslot_test_support::as_root(
            "hostile_scribbler_cannot_touch_roots_messages",
            "scribbles as user nobody (setpriv)",
            || scribble(false),
        ),
        mailslot_test_support::as_root(
            "hostile_scribbler_cannot_touch_roots_messages_in_a_shared_slot",
            "scribbles as user nobody (setpriv)",
            || scribble(true),
        ),
    ]);
}

/// `shared`: the owner handle is shared with a second holder, and both read (the rings are then
/// mapped by both, and the messages go through the shared store).
fn scribble(shared: bool) {
    let test = if shared {
        "hostile_scribbler_cannot_touch_roots_messages_in_a_shared_slot"
    } else {
        "hostile_scribbler_cannot_touch_roots_messages"
    };
    let started = Instant::now();
    let name = unique_name("scribble");
    // Root's messages (≤ ~130 bytes each, at most ROOT_CAP) plus the scribbler's (≤ 20 000 of
    // ≤ 60 bytes) fit the quota even if nothing were read: `Full` is never right for root.
    let quota = 24 << 20;
    let slot = Arc::new(
        Mailslot::builder()
            .access(Access::Everyone)
            .quota(quota)
            .max_messages(1_000_000)
            .create(&name)
            .expect("create"),
    );

    let done = Arc::new(AtomicBool::new(false));
    let mut holders = vec![slot.clone()];
    if shared {
        holders.push(Arc::new(
            Mailslot::from_shared(slot.share().expect("share")).expect("take up"),
        ));
    }
    let readers: Vec<_> = holders
        .iter()
        .map(|slot| {
            let (slot, done) = (slot.clone(), done.clone());
            std::thread::spawn(move || {
                let mut root_seqs = Vec::new();
                let mut root_bad = Vec::new();
                let mut others: BTreeMap<u32, u64> = BTreeMap::new();
                for n in 0.. {
                    match common::read_nth(&slot, n, Timeout::After(Duration::from_millis(300))) {
                        Ok(m) => match m.sender {
                            Sender::Local { uid: 0, .. } => match decode(&m.data) {
                                Ok(d) if d.id == "root" => root_seqs.push(d.seq),
                                Ok(d) if d.id == "late" => {}
                                Ok(d) => root_bad.push(format!("uid 0 message with id {}", d.id)),
                                Err(e) => root_bad.push(e),
                            },
                            Sender::Local { uid, .. } => *others.entry(uid).or_default() += 1,
                            s => {
                                root_bad
                                    .push(format!("unexpected sender {s:?}: {}", preview(&m.data)));
                            }
                        },
                        Err(ReadError::Timeout) if done.load(Ordering::SeqCst) => break,
                        Err(ReadError::Timeout) => {}
                        Err(e) => {
                            root_bad.push(format!("read error {e}"));
                            break;
                        }
                    }
                }
                (root_seqs, root_bad, others)
            })
        })
        .collect();
    let counters = || {
        holders
            .iter()
            .map(|h| h.counters())
            .fold((0, 0), |(d, w), c| (d + c.dropped, w + c.dropped_writers))
    };

    // Root's writer is open before the scribbler starts; a second one is opened while it
    // scribbles (both must work).
    let writer = MailslotWriter::open(&name).expect("root opens");
    let mut scribbler = common::spawn(true, &["scribble", &name, "4"]);
    let rx = common::lines(&mut scribbler);
    let mut log = Vec::new();
    let start = common::wait_line(&rx, "start", Duration::from_secs(15), &mut log);
    let mut reaper = common::Reaper(vec![scribbler]);
    // The second writer opens once the scribbler's garbage has reached the owner.
    common::wait_for(
        "the owner drops a scribbled record",
        Duration::from_secs(10),
        || {
            let (d, w) = counters();
            d + w > 0
        },
    );
    let late_open = MailslotWriter::open_timeout(&name, Duration::from_secs(3))
        .map(|w| {
            w.write(&make_message("late", 0, 10))
                .map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string());
    let mut accepted = Vec::new();
    let mut errors: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    let mut scribbler_done = false;
    let mut summary = String::new();
    let mut seq = 0u64;
    while seq < ROOT_CAP && (seq < ROOT_CLASS2 + ROOT_CLASS1 || !scribbler_done) {
        // One in eleven is first class (2 000 of the first 22 000).
        let opts = common::root_write_options(seq);
        match writer.write_with(&make_message("root", seq, MAX_PAYLOAD), opts) {
            Ok(()) => accepted.push(seq),
            Err(e) => {
                let entry = errors.entry(e.win32_code()).or_insert((0, e.to_string()));
                entry.0 += 1;
            }
        }
        seq += 1;
        if seq > ROOT_CLASS2 + ROOT_CLASS1 && seq & 63 == 0 {
            // Past the required messages: spread the rest over the scribbler's lifetime.
            std::thread::sleep(Duration::from_millis(1));
        }
        if !scribbler_done && seq & 255 == 0 {
            while let Ok(l) = rx.try_recv() {
                if l.starts_with("summary") {
                    summary = l;
                    scribbler_done = true;
                } else {
                    log.push(l);
                }
            }
            if let Ok(Some(_)) = reaper.0[0].try_wait() {
                scribbler_done = true;
            }
        }
    }
    let root_done_at = started.elapsed();
    if summary.is_empty() {
        summary = common::wait_line(&rx, "summary", Duration::from_secs(15), &mut log);
    }
    let _ = reaper.0[0].wait();
    done.store(true, Ordering::SeqCst);
    let mut arrived = Vec::new();
    let mut bad = Vec::new();
    let mut others: BTreeMap<u32, u64> = BTreeMap::new();
    for r in readers {
        let (a, b, o) = r.join().expect("reader");
        // Each holder sees root's messages in root's order.
        if !a.windows(2).all(|w| w[0] < w[1]) {
            bad.push("a holder read root's messages out of order".to_string());
        }
        arrived.extend(a);
        bad.extend(b);
        for (uid, n) in o {
            *others.entry(uid).or_default() += n;
        }
    }
    arrived.sort_unstable();
    let counters = counters();

    eprintln!("{test}: scribbler: {start}");
    for l in log
        .iter()
        .filter(|l| l.starts_with("map") || l.starts_with("socket"))
    {
        eprintln!("{test}: scribbler: {l}");
    }
    eprintln!("{test}: scribbler: {summary}");
    eprintln!(
        "{test}: root wrote {seq}, accepted {}, errors by code {errors:?} (root done after {:.1}s)",
        accepted.len(),
        root_done_at.as_secs_f64()
    );
    eprintln!(
        "{test}: arrived from root {}, damaged/foreign under uid 0 {}, from other uids {others:?}, counters (dropped, dropped writers) {counters:?}, total {:.1}s",
        arrived.len(),
        bad.len(),
        started.elapsed().as_secs_f64()
    );

    eprintln!("{test}: root's open during the scribbling, then one write: {late_open:?}");
    assert!(
        bad.is_empty(),
        "damaged messages under root's uid (first 5): {:?}",
        &bad[..bad.len().min(5)]
    );
    let first_diff = accepted
        .iter()
        .zip(arrived.iter())
        .position(|(a, b)| a != b);
    assert!(
        arrived == accepted,
        "root's accepted writes did not arrive exactly once and in order: accepted {}, arrived {}, \
         first difference at index {first_diff:?} (accepted {:?}, arrived {:?})",
        accepted.len(),
        arrived.len(),
        first_diff.map(|i| accepted[i]),
        first_diff.map(|i| arrived[i]),
    );
    assert!(
        !errors.contains_key(&8) && !errors.contains_key(&109),
        "root got Full (8) or OwnerGone (109) on a slot it never filled: {errors:?}"
    );
    assert!(errors.is_empty(), "root's writes failed: {errors:?}");
    assert!(
        matches!(late_open, Ok(Ok(()))),
        "root could not open and write while the scribbler ran: {late_open:?}"
    );
}
