//! A writer running as nobody that hangs up with messages in its ring and keeps the ring mapped
//! must not be able to add to what the owner reads from it, nor touch root's messages: the
//! owner reads the ring only up to where it ended at the hang-up (records forged after that end
//! are never read), root's accepted writes arrive exactly once, in order and undamaged, and once
//! everything is read the ring is let go. Twice: the writer
//! scribbles over its ring once the owner has read all of it, and once half of it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailslot::{Access, Mailslot, MailslotWriter, ReadError, Sender, Timeout, MAX_MESSAGE_SIZE};
use mailslot_hostile::{decode, make_message, unique_name};

const ADD: &str = "hostile_writer_that_hung_up_cannot_add_to_its_ring";
const OVER: &str = "hostile_writer_that_hung_up_scribbles_over_what_is_left_in_its_ring";
const SHARED: &str = "hostile_writer_that_hung_up_cannot_add_to_its_ring_in_a_shared_slot";
/// Messages the hostile writer leaves in its ring when it hangs up.
const HOSTILE: u64 = 3_000;
/// Root's messages, written while the hostile writer forges and scribbles.
const ROOT: u64 = 20_000;
/// Large enough for all of root's messages even if nothing were read.
const QUOTA: usize = 4 << 20;

fn main() {
    mailslot_test_support::run_tests(vec![
        mailslot_test_support::as_root(
            ADD,
            "hangs up and scribbles as user nobody (setpriv)",
            || hung_up_writer(false, false),
        ),
        mailslot_test_support::as_root(
            OVER,
            "hangs up and scribbles as user nobody (setpriv)",
            || hung_up_writer(true, false),
        ),
        mailslot_test_support::as_root(
            SHARED,
            "hangs up and scribbles as user nobody (setpriv)",
            || hung_up_writer(false, true),
        ),
    ]);
}

/// The writers' rings this process maps (as owner, and as root's writer).
fn ring_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/memfd:mailslot-ring"))
        .count()
}

/// What the reader thread saw.
#[derive(Default)]
struct Seen {
    root: Vec<u64>,
    hostile: Vec<u64>,
    /// Messages under root's uid that are not root's intact ones.
    root_bad: Vec<String>,
    /// The hostile writer's messages that were not its own intact ones (its own to damage).
    hostile_damaged: u64,
    errors: Vec<String>,
}

/// `early`: the writer scribbles over its ring once half of it is read (else once all of it
/// is read, and root has written all its messages: the forged records past the ring's end had
/// every chance to be read).
/// `shared`: the owner handle is shared with a second holder (which does not read), so that
/// the messages go through the shared store.
fn hung_up_writer(early: bool, shared: bool) {
    // One at a time: each counts the rings this process maps.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let test = match (early, shared) {
        (_, true) => SHARED,
        (true, false) => OVER,
        (false, false) => ADD,
    };
    let started = Instant::now();
    let name = unique_name("hangup");
    let slot = Arc::new(
        Mailslot::builder()
            .access(Access::Everyone)
            .max_message_size(MAX_MESSAGE_SIZE)
            .quota(QUOTA)
            .max_messages(1_000_000)
            .create(&name)
            .expect("create"),
    );
    let _holder =
        shared.then(|| Mailslot::from_shared(slot.share().expect("share")).expect("take up"));
    let writer = MailslotWriter::open(&name).expect("root opens");
    // Root's ring exists from its first write.
    writer.write(b"first").expect("root writes");
    assert_eq!(common::drain(&slot), 1, "{test}: root's first message");
    let rings_before = ring_mappings();

    // The reader: root's messages at full speed, the hostile writer's slowly (so that the
    // hostile writer's ring still holds most of its messages while it forges and scribbles).
    let done = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let timeouts = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = {
        let (slot, done, calls, timeouts, seen) = (
            slot.clone(),
            done.clone(),
            calls.clone(),
            timeouts.clone(),
            seen.clone(),
        );
        std::thread::spawn(move || {
            for n in 0.. {
                let r = common::read_nth(&slot, n, Timeout::After(Duration::from_millis(300)));
                calls.fetch_add(1, Ordering::SeqCst);
                let mut s = seen.lock().unwrap();
                match r {
                    Ok(m) => match (m.sender, decode(&m.data)) {
                        (Sender::Local { uid: 0, .. }, Ok(d)) if d.id == "root" => {
                            s.root.push(d.seq);
                        }
                        (Sender::Local { uid: 0, .. }, d) => {
                            s.root_bad.push(format!("{d:?}"));
                        }
                        (Sender::Local { .. }, d) => {
                            match d {
                                Ok(d) if d.id == "hang" => s.hostile.push(d.seq),
                                _ => s.hostile_damaged += 1,
                            }
                            drop(s);
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        (other, _) => s.root_bad.push(format!("unexpected sender {other:?}")),
                    },
                    Err(ReadError::Timeout) => {
                        timeouts.fetch_add(1, Ordering::SeqCst);
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    Err(e) => {
                        s.errors.push(e.to_string());
                        break;
                    }
                }
            }
        })
    };

    let mut hostile = common::spawn_io(
        true,
        &["hang-up-scribble", &name, &HOSTILE.to_string()],
        true,
    );
    let mut stdin = hostile.stdin.take().expect("stdin piped");
    let rx = common::lines(&mut hostile);
    let mut reaper = common::Reaper(vec![hostile]);
    let mut log = Vec::new();
    let hung_up = common::wait_line(&rx, "hung-up", Duration::from_secs(20), &mut log);
    let wrote: u64 = hung_up
        .split_whitespace()
        .find_map(|w| w.strip_prefix("wrote="))
        .and_then(|n| n.parse().ok())
        .expect("hung-up wrote=<n>");
    // The owner has seen the hang-up once the reader has looked at the sockets three times:
    // each look reads one wake-up byte of a ring writer's (it has at most two on their way,
    // see `Slot::recv_conn`), the third at the latest finds the end of the connection. A look
    // comes every DRAIN_EVERY (64) reads, and at every read that gives up; four are waited
    // for, one to spare.
    let (calls0, timeouts0) = (
        calls.load(Ordering::SeqCst),
        timeouts.load(Ordering::SeqCst),
    );
    common::wait_for(
        "the reader looks at the sockets",
        Duration::from_secs(20),
        || {
            calls.load(Ordering::SeqCst) > calls0 + 4 * 64
                || timeouts.load(Ordering::SeqCst) >= timeouts0 + 4
        },
    );
    let left_at_go = HOSTILE as usize - seen.lock().unwrap().hostile.len();
    // Forgeries past the ring's end from now on.
    writeln!(stdin, "go").expect("to the hostile writer");

    // Root writes, with a pause now and then so that the reader keeps up.
    let mut accepted = Vec::new();
    let mut errors: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    let mut destroyed = false;
    for seq in 0..ROOT {
        let opts = common::root_write_options(seq);
        match writer.write_with(&make_message("root", seq, 100), opts) {
            Ok(()) => accepted.push(seq),
            Err(e) => errors.entry(e.win32_code()).or_insert((0, e.to_string())).0 += 1,
        }
        if seq % 16 == 15 {
            std::thread::sleep(Duration::from_micros(500));
        }
        // Half of what the ring held is read: scribble over the rest.
        if early && !destroyed && seen.lock().unwrap().hostile.len() >= HOSTILE as usize / 2 {
            writeln!(stdin, "destroy").expect("to the hostile writer");
            destroyed = true;
        }
    }
    if !destroyed {
        let want = if early {
            HOSTILE as usize / 2
        } else {
            wrote as usize
        };
        common::wait_for(
            "the hostile writer's messages are read",
            Duration::from_secs(30),
            || seen.lock().unwrap().hostile.len() >= want,
        );
        if !early {
            // Reads past the ring's end (each would take a forged record).
            let calls0 = calls.load(Ordering::SeqCst);
            common::wait_for("more reads", Duration::from_secs(30), || {
                calls.load(Ordering::SeqCst) >= calls0 + 3
            });
        }
        writeln!(stdin, "destroy").expect("to the hostile writer");
    }
    let summary = common::wait_line(&rx, "summary", Duration::from_secs(30), &mut log);
    let _ = reaper.0[0].wait();
    drop(stdin);
    done.store(true, Ordering::SeqCst);
    reader.join().expect("reader");
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let counters = slot.counters();

    eprintln!("{test}: hostile writer: {hung_up}; {summary}; other lines {log:?}");
    eprintln!(
        "{test}: its messages left in its ring when the forgeries began {left_at_go}; read {} \
         intact, {} damaged; counters {counters:?}",
        seen.hostile.len(),
        seen.hostile_damaged
    );
    eprintln!(
        "{test}: root wrote {ROOT}, accepted {}, errors {errors:?}, arrived {} ({:.1}s)",
        accepted.len(),
        seen.root.len(),
        started.elapsed().as_secs_f64()
    );

    assert!(
        seen.errors.is_empty(),
        "{test}: read errors {:?}",
        seen.errors
    );
    assert!(
        seen.root_bad.is_empty(),
        "{test}: damaged under uid 0: {:?}",
        seen.root_bad
    );
    assert!(
        errors.is_empty(),
        "{test}: root's writes failed: {errors:?}"
    );
    assert_eq!(
        seen.root, accepted,
        "{test}: root's messages, once each, in order"
    );
    // The hostile writer's intact messages: each at most once, in its order, and none of the
    // copies it forged past the end of its ring.
    assert!(
        seen.hostile.windows(2).all(|w| w[0] < w[1]),
        "{test}: the hung-up writer's messages were read twice or out of order (a forged record \
         past the ring's end was read): {:?}",
        seen.hostile
            .windows(2)
            .position(|w| w[0] >= w[1])
            .map(|i| &seen.hostile[i.saturating_sub(3)..(i + 5).min(seen.hostile.len())])
    );
    if early {
        assert!(
            seen.hostile.len() >= HOSTILE as usize / 2,
            "{test}: half of what the ring held was to be read before it was scribbled over"
        );
    } else {
        assert_eq!(
            seen.hostile,
            (0..wrote).collect::<Vec<_>>(),
            "{test}: what the hung-up writer had written, once each and nothing more"
        );
        assert_eq!(
            seen.hostile_damaged, 0,
            "{test}: its records before the end were left as they were"
        );
    }

    // Everything is read: the ring is let go at the next look at the sockets or scan, and
    // with it what it counted in the quota (`Conn::owed`; the unit test
    // `what_a_writer_that_hung_up_left_in_its_ring_counts_in_the_quota` checks the figures).
    common::wait_for(
        "the hung-up writer's ring is let go",
        Duration::from_secs(10),
        || {
            let _ = slot.read_message_timeout(Timeout::After(Duration::from_millis(20)));
            ring_mappings() == rings_before
        },
    );
    assert_eq!(slot.info().count, 0, "{test}: everything was read");
    writer.write(b"after").expect("root writes after it all");
    assert_eq!(common::drain(&slot), 1, "{test}: root's last message");
}
