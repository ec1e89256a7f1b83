//! A second-class write to a full slot whose owner was SIGKILLed must report `OwnerGone` (109)
//! within 100 ms, and nothing but `Full` or `OwnerGone` before that.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mailslot::WriteError;

const QUOTA: usize = 40_000;
const SIZE: usize = 4_000;

#[test]
fn class2_on_full_slot_gets_owner_gone_within_100ms_of_owner_sigkill() {
    let test = "class2_on_full_slot_gets_owner_gone_within_100ms_of_owner_sigkill";
    let common::FullSlot {
        owner: mut reaper,
        writer: w,
        filled,
        ..
    } = common::full_slot("gone2", QUOTA, SIZE);
    let data = vec![b'x'; SIZE];
    let killed_at = Instant::now();
    common::signal(&reaper.0[0], libc::SIGKILL);
    let mut before: BTreeMap<u32, u64> = BTreeMap::new();
    let mut attempts = 0u64;
    let outcome = loop {
        attempts += 1;
        let r = w.write(&data);
        let at = killed_at.elapsed();
        match r {
            Err(WriteError::OwnerGone) => break Some(at),
            Err(WriteError::Full) => *before.entry(8).or_default() += 1,
            Ok(()) => panic!("a write was accepted {at:?} after the owner was killed"),
            Err(e) => panic!("unexpected {e} ({}) {at:?} after the kill", e.win32_code()),
        }
        if at > Duration::from_secs(2) {
            break None;
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = reaper.0[0].wait();
    reaper.0.clear();
    eprintln!(
        "{test}: filled with {filled} messages; after the kill: {attempts} attempts, before 109: \
         {before:?}, 109 after {outcome:?}"
    );
    let at = outcome.unwrap_or_else(|| {
        panic!("no OwnerGone within 2 s of the owner's SIGKILL: {attempts} writes, all Full")
    });
    assert!(
        at <= Duration::from_millis(100),
        "OwnerGone only {at:?} after the owner's SIGKILL (limit 100 ms)"
    );
}
