//! Idle connections opened by an unprivileged user must not stop root's writer nor drive the
//! owner's process to its descriptor limit.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailslot::{ReadError, Sender, Timeout};
use mailslot_hostile::{decode, unique_name};

const FLOOD: usize = 20_000;
const MESSAGES: u64 = 100;
const FD_LIMIT: usize = 2_000;

fn main() {
    common::run_as_root_test(
        "connection_flood_by_nobody_does_not_stop_roots_writer",
        "connects as user nobody (setpriv)",
        connection_flood_by_nobody_does_not_stop_roots_writer,
    );
}

fn connection_flood_by_nobody_does_not_stop_roots_writer() {
    let test = "connection_flood_by_nobody_does_not_stop_roots_writer";
    let started = Instant::now();
    let fds_before = common::fd_count().unwrap_or(0);
    let name = unique_name("flood");
    let slot = common::everyone_slot(&name);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (slot, stop, got) = (slot.clone(), stop.clone(), got.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match slot.read_message_timeout(Timeout::After(Duration::from_millis(50))) {
                    Ok(m) => {
                        if let Sender::Local { uid: 0, .. } = m.sender {
                            got.lock().unwrap().push((decode(&m.data), Instant::now()));
                        }
                    }
                    Err(ReadError::Timeout) => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
        })
    };
    let monitor = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = common::fd_count().unwrap_or(usize::MAX);
                peak.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // Root's writer is its own process, started now (the test process is the owner, and may
    // run out of descriptors under the flood); it opens the slot when told, during the flood.
    let mut writer = common::spawn_io(
        false,
        &[
            "numbered",
            &name,
            &MESSAGES.to_string(),
            "2",
            "0",
            "wait-stdin",
        ],
        true,
    );
    let wrx = common::lines(&mut writer);
    let mut wstdin = writer.stdin.take().expect("stdin");
    let _wreaper = common::Reaper(vec![writer]);

    let mut flood = common::spawn(true, &["connect-flood", &name, &FLOOD.to_string()]);
    let rx = common::lines(&mut flood);
    let _reaper = common::Reaper(vec![flood]);
    let mut log = Vec::new();
    let done = common::wait_line(&rx, "done", Duration::from_secs(60), &mut log);
    let flood_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let fds_flooded = common::fd_count();

    // Root writes while the connections are held, from its own process (a writer in the
    // owner's process would share the owner's descriptor table).
    let t0 = Instant::now();
    {
        use std::io::Write;
        writeln!(wstdin, "go").expect("start root's writer");
    }
    let mut errors = Vec::new();
    let mut oks = 0u64;
    let deadline = t0 + Duration::from_secs(15);
    while oks + (errors.len() as u64) < MESSAGES && Instant::now() < deadline {
        match wrx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.starts_with("ok ") => oks += 1,
            Ok(l) if l.starts_with("opened") => eprintln!("{test}: root's writer {l}"),
            Ok(l) => errors.push(l),
            Err(_) => break,
        }
    }
    let writer_secs = t0.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < MESSAGES as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let root_secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    reader.join().expect("reader");
    monitor.join().expect("monitor");
    let got = got.lock().unwrap();
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|(d, _)| d.as_ref().ok().map(|d| d.seq))
        .collect();
    let peak = peak
        .load(Ordering::SeqCst)
        .max(fds_flooded.unwrap_or(usize::MAX));
    let show = |n: usize| {
        if n == usize::MAX {
            "all (cannot open /proc/self/fd: out of descriptors)".to_string()
        } else {
            n.to_string()
        }
    };
    eprintln!("{test}: flood: {done} (after {flood_secs:.1}s)");
    eprintln!(
        "{test}: owner descriptors: {fds_before} before, {} while flooded, peak {}; \
         counters {:?}",
        show(fds_flooded.unwrap_or(usize::MAX)),
        show(peak),
        slot.counters()
    );
    eprintln!(
        "{test}: root's writer process: {oks} ok, {} errors {:?} in {writer_secs:.2}s; {} of \
         {MESSAGES} arrived in {root_secs:.2}s; total {:.1}s",
        errors.len(),
        &errors[..errors.len().min(3)],
        seqs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "root's writer failed under the flood: {:?}",
        &errors[..errors.len().min(3)]
    );
    assert_eq!(
        seqs,
        (0..MESSAGES).collect::<Vec<_>>(),
        "root's messages did not all arrive in order within 5 s"
    );
    assert!(
        peak < FD_LIMIT,
        "the owner's process held {} descriptors under the flood (limit {FD_LIMIT})",
        show(peak)
    );
}
