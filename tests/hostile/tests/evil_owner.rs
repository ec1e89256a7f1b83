//! An owner that squats a name and hands its writers what no honest owner would (see the
//! `evil-owner` role) never kills a writer: each writer runs in a process of its own, writes
//! class-2 and class-1 messages, and must end by itself, not by a signal. Owners that hand out a
//! control page the writer cannot trust are refused at open; the others get a working writer
//! (on the socket path when the ring cannot be trusted).
//!
//! As root the evil owner runs as user nobody (`setpriv`) and the writers as root, as in the
//! attack this guards against; otherwise all run as the calling user.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::time::{Duration, Instant};

use mailslot::{MailslotWriter, OpenError};

/// Modes whose control page the writer must refuse at open (error 31, nothing written).
const REFUSED: &[&str] = &["unsealed-control", "short-control", "hugetlb-control"];

/// Waits for the child to end (at most `timeout`); its stdout lines and exit status.
fn finish(mut child: Child, timeout: Duration) -> (Vec<String>, std::process::ExitStatus) {
    let rx = common::lines(&mut child);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            // Every line it printed: the reading thread ends (and the channel closes) at the
            // end of its output.
            let mut got = Vec::new();
            let end = Instant::now() + Duration::from_secs(5);
            while let Some(left) = end.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(line) => got.push(line),
                    Err(_) => break,
                }
            }
            return (got, status);
        }
        if Instant::now() > deadline {
            common::kill9(&mut child);
            panic!(
                "writer still running after {timeout:?}: {:?}",
                rx.try_iter().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn writers_survive(mode: &str, runs: usize) {
    let as_nobody = common::is_root();
    let name = mailslot_hostile::unique_name(&format!("evil_{}", mode.replace('-', "_")));
    let mut owner = common::spawn(as_nobody, &["evil-owner", &name, mode]);
    let orx = common::lines(&mut owner);
    let _reaper = common::Reaper(vec![owner]);
    common::wait_line(&orx, "ready", Duration::from_secs(10), &mut Vec::new());

    if REFUSED.contains(&mode) {
        // In this process too: a clear error, no signal.
        match MailslotWriter::open(&name) {
            Err(OpenError::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{mode}: {e}");
                eprintln!("{mode}: open refused: {e}");
            }
            Err(e) => panic!("{mode}: unexpected error {e}"),
            Ok(_) => panic!("{mode}: a writer accepted what the owner handed it"),
        }
    }
    for run in 0..runs {
        for (class, count, timeout_ms) in [("2", "30", "0"), ("1", "10", "100")] {
            let child = common::spawn(false, &["numbered", &name, count, class, timeout_ms]);
            let (out, status) = finish(child, Duration::from_secs(60));
            assert_eq!(
                status.signal(),
                None,
                "{mode}: writer (class {class}, run {run}) killed by a signal; said {out:?}"
            );
            let opened = out.iter().any(|l| l.starts_with("opened"));
            let failed = out.iter().find(|l| l.starts_with("open-failed"));
            if REFUSED.contains(&mode) {
                assert!(
                    failed.is_some_and(|l| l.starts_with("open-failed 31 ")),
                    "{mode}: writer not refused at open: {out:?}"
                );
                assert_eq!(status.code(), Some(1), "{mode}: {out:?}");
            } else if mode == "garbage" {
                // Any clear outcome: refused at open, or a working writer.
                assert!(opened || failed.is_some(), "{mode}: {out:?}");
            } else {
                assert!(opened, "{mode}: writer did not open: {out:?}");
                assert_eq!(status.code(), Some(0), "{mode}: {out:?}");
                let ends = out
                    .iter()
                    .filter(|l| l.starts_with("ok ") || l.starts_with("err "))
                    .count();
                assert_eq!(ends.to_string(), count, "{mode}: every write ends: {out:?}");
            }
            if run == 0 {
                eprintln!(
                    "{mode}: class {class}: {} (exit {:?})",
                    failed.map_or_else(
                        || format!(
                            "{} ok, {} errors",
                            out.iter().filter(|l| l.starts_with("ok ")).count(),
                            out.iter().filter(|l| l.starts_with("err ")).count()
                        ),
                        Clone::clone
                    ),
                    status.code()
                );
            }
        }
    }
    let mut seen = Vec::new();
    while let Ok(l) = orx.try_recv() {
        seen.push(l);
    }
    eprintln!("{mode}: owner said {:?}", &seen[..seen.len().min(6)]);
}

#[test]
fn unsealed_then_truncated_control_page_is_refused() {
    writers_survive("unsealed-control", 1);
}

#[test]
fn short_control_page_is_refused() {
    writers_survive("short-control", 1);
}

#[test]
fn hugetlb_control_page_is_refused() {
    writers_survive("hugetlb-control", 1);
}

#[test]
fn unsealed_then_truncated_ring_is_not_used() {
    writers_survive("unsealed-ring", 1);
}

#[test]
fn ring_with_a_capacity_beyond_its_size_is_not_used() {
    writers_survive("bad-ring", 1);
}

#[test]
fn ring_grown_after_the_greeting_does_no_harm() {
    writers_survive("grown-ring", 1);
}

#[test]
fn hostile_totals_ring_words_and_notices_do_no_harm() {
    writers_survive("hostile-words", 1);
}

#[test]
fn limits_of_u64_max_do_no_harm() {
    writers_survive("huge-limits", 1);
}

#[test]
fn garbage_greetings_and_descriptors_do_no_harm() {
    writers_survive("garbage", 8);
}
