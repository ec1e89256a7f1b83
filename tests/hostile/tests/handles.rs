//! Shared owner handles across real processes: a handle inherited by a child started with
//! `fork` + `exec`, passed over a Unix socket, read by two holders at once (each message once),
//! kept alive by the last holder, deleted for all holders by one of them, kept alive by a child
//! when the creator is SIGKILLed; and descriptors that are not owner handles refused.
//!
//! The holders are `mailslot-hostile holder …` processes driven over their stdin and stdout.
//! The tests run one at a time (a lock): an inheritable descriptor of one test must not leak
//! into a child another test starts meanwhile, which would keep the first test's mailslot alive.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mailslot::{
    Class, CreateError, Mailslot, MailslotWriter, OpenError, ReadError, ShareError, Timeout,
    WriteError, WriteOptions,
};
use mailslot_hostile::{decode, make_message, unique_name};

/// `ERROR_INVALID_HANDLE`: what a deleted handle and a descriptor that is not one give.
const INVALID_HANDLE: u32 = 6;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of this file one at a time (see the module docs).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A holder process (`mailslot-hostile holder …`), killed when dropped.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
    /// Every line it printed so far, for failure messages.
    said: Vec<String>,
}

impl Holder {
    /// Starts `mailslot-hostile <args>`; `pass` is a descriptor of this process the child
    /// inherits under the same number (its close-on-exec flag cleared in the child only).
    fn spawn(args: &[&str], pass: Option<RawFd>) -> Self {
        let mut cmd = Command::new(common::bin());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(fd) = pass {
            // SAFETY: between fork and exec the closure makes only fcntl calls, which are
            // async-signal-safe, on a descriptor number that is open in the parent.
            unsafe {
                cmd.pre_exec(move || {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn mailslot-hostile");
        let out = common::lines(&mut child);
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            out,
            said: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line.
    fn cmd(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("command to holder");
        stdin.flush().expect("flush command");
    }

    /// The next line, or `None` after `timeout` or at the end of the output.
    fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.out.recv_timeout(timeout).ok()?;
        self.said.push(line.clone());
        Some(line)
    }

    /// Waits for the next line and checks that it starts with `prefix`.
    fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.next_line(timeout) {
            Some(l) if l.starts_with(prefix) => l,
            Some(l) => panic!("holder said {l:?}, expected {prefix:?}; all it said: {:?}", self.said),
            None => panic!(
                "holder said nothing starting with {prefix:?} within {timeout:?}; all it said: {:?}",
                self.said
            ),
        }
    }

    /// `read <n> <ms>`: the messages it read, in order, and the error line that ended the
    /// reading early, if one did.
    fn read(&mut self, n: u64, ms: u64) -> (Vec<(String, u64)>, Option<String>) {
        self.cmd(&format!("read {n} {ms}"));
        let mut got = Vec::new();
        let mut err = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.next_line(left) else {
                panic!("holder did not finish `read {n} {ms}`: {:?}", self.said)
            };
            if line.starts_with("done ") {
                return (got, err);
            }
            match parse_msg(&line) {
                Some(m) => got.push(m),
                None if line.starts_with("err ") => err = Some(line),
                None => panic!("holder said {line:?} while reading"),
            }
        }
    }

    /// `stop` to a holder in `stream`: the messages it reports until it says `done` (`wait` at
    /// most between two lines); anything else it says fails the test.
    fn stop_stream(&mut self, wait: Duration) -> Vec<(String, u64)> {
        self.cmd("stop");
        let mut got = Vec::new();
        loop {
            let Some(line) = self.next_line(wait) else {
                panic!("the holder did not stop reading: {:?}", self.said)
            };
            if line.starts_with("done ") {
                return got;
            }
            match parse_msg(&line) {
                Some(m) => got.push(m),
                None => panic!("the holder said {line:?} while reading"),
            }
        }
    }

    /// `exit`, then waits (at most 5 s) for a clean exit.
    fn exit(&mut self) {
        self.cmd("exit");
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "holder exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "holder did not exit within 5 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        common::kill9(&mut self.child);
    }
}

/// `msg <id> <seq>` → `(id, seq)`; panics on a message that did not decode (`bad …`).
fn parse_msg(line: &str) -> Option<(String, u64)> {
    assert!(
        !line.starts_with("bad "),
        "a holder read a damaged message: {line}"
    );
    let rest = line.strip_prefix("msg ")?;
    let (id, seq) = rest.split_once(' ')?;
    Some((id.to_string(), seq.parse().ok()?))
}

fn first_class() -> WriteOptions {
    WriteOptions::new()
        .class(Class::First)
        .timeout(Timeout::After(Duration::from_secs(5)))
}

/// Writes messages `seqs` of writer `id`; every one must be accepted.
fn write_numbered(w: &MailslotWriter, id: &str, seqs: Range<u64>) {
    for seq in seqs {
        if let Err(e) = w.write_with(&make_message(id, seq, 40), first_class()) {
            panic!("write {id}:{seq} was refused: {e} ({})", e.win32_code());
        }
    }
}

/// `(id, seq)` for every seq in `seqs`.
fn numbered(id: &str, seqs: Range<u64>) -> Vec<(String, u64)> {
    seqs.map(|s| (id.to_string(), s)).collect()
}

/// Reads one message here (2 s at most) and decodes it.
fn read_here(slot: &Mailslot) -> (String, u64) {
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(2)))
        .expect("read");
    let d = decode(&m.data).expect("a damaged message");
    (d.id, d.seq)
}

/// Polls `ready` (every 200 µs) until it holds or `limit` passed; how long it took.
fn within(limit: Duration, mut ready: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ready() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn is_cloexec(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on a descriptor number only reads its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "descriptor {fd} is not open");
    flags & libc::FD_CLOEXEC != 0
}

/// State, wait channel and system call of every thread of process `pid`, and its descriptors,
/// for failure messages.
fn threads(pid: u32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "(gone)".into();
    };
    let mut out = Vec::new();
    for t in dir.flatten() {
        let p = t.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next())
            .unwrap_or('?');
        let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
        let syscall = std::fs::read_to_string(p.join("syscall")).unwrap_or_default();
        out.push(format!(
            "{} {state} wchan={wchan} syscall={}",
            t.file_name().to_string_lossy(),
            syscall
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.parse().ok()?;
                    let link = std::fs::read_link(e.path()).ok()?;
                    Some((n, link.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    format!("{}; descriptors: {fds:?}", out.join("; "))
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: as in `is_cloexec`.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Waits (at most 2 s) until the name is gone after its last holder closed: `open` gives
/// `NotFound`; then each writer opened before must get `OwnerGone` at its first write (a write
/// accepted now could never be read). Returns how long the name took to go.
fn assert_gone(name: &str, old_writers: &[&MailslotWriter], what: &str) -> Duration {
    assert_gone_within(name, old_writers, what, Duration::ZERO)
}

/// [`assert_gone`] after the last holder was SIGKILLed: nobody marked the mailslot closed, so a
/// writer learns of it from the hang-up of its connection, which it looks at once per
/// millisecond while it writes — the same as for an unshared mailslot whose owner is killed
/// (`owner_killed_class2`). Writes in that window are accepted and lost with the killed
/// process, as they would be with an unshared owner; after `grace` none may be.
fn assert_gone_within(
    name: &str,
    old_writers: &[&MailslotWriter],
    what: &str,
    grace: Duration,
) -> Duration {
    let mut last = None;
    let took = within(Duration::from_secs(2), || {
        match MailslotWriter::open(name) {
            Err(OpenError::NotFound(_)) => true,
            other => {
                last = Some(other.map(|_| ()).map_err(|e| e.to_string()));
                false
            }
        }
    })
    .unwrap_or_else(|| panic!("{what}: open still gives {last:?} 2 s later, not NotFound"));
    for (k, w) in old_writers.iter().enumerate() {
        // Count the writes that are accepted (each a message lost while its writer was told it
        // arrived), for 2 s at most.
        let gone_at = Instant::now();
        let mut accepted = 0u64;
        let outcome = loop {
            match w.write_with(b"late", first_class()) {
                Ok(()) if gone_at.elapsed() < grace => {}
                Ok(()) => accepted += 1,
                Err(WriteError::OwnerGone) => break Ok(gone_at.elapsed()),
                Err(e) => break Err(e),
            }
            if gone_at.elapsed() > Duration::from_secs(2) {
                break Ok(gone_at.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(
            accepted == 0 && outcome.is_ok(),
            "{what}: open gives NotFound, but writer {k} (opened before) had {accepted} writes \
             accepted (lost) before {outcome:?} (OwnerGone expected at once)"
        );
    }
    took
}

// 1. Inheritance across fork + exec.

#[test]
fn an_inherited_handle_reads_in_a_child_started_with_fork_exec() {
    let _serial = serial();
    let name = unique_name("h_inherit");
    let slot = Mailslot::create(&name).expect("create");
    let fd = slot.inheritable().expect("inheritable");
    assert_eq!(
        slot.inheritable().expect("inheritable again"),
        fd,
        "inheritable() gave another number the second time"
    );
    assert!(
        !is_cloexec(fd),
        "the inheritable descriptor {fd} has close-on-exec"
    );
    let mut h = Holder::spawn(&["holder", "inherit", &fd.to_string()], None);
    h.expect("holding", Duration::from_secs(5));

    let w = MailslotWriter::open(&name).expect("open");
    write_numbered(&w, "p", 0..100);
    let (got, err) = h.read(100, 2000);
    assert_eq!(err, None, "the child's reads failed");
    assert_eq!(got, numbered("p", 0..100), "the child read other messages");

    // The creator still reads too, and the child's exit leaves the mailslot to it.
    write_numbered(&w, "p", 100..101);
    assert_eq!(read_here(&slot), ("p".to_string(), 100));
    h.exit();
    write_numbered(&w, "p", 101..102);
    assert_eq!(
        read_here(&slot),
        ("p".to_string(), 101),
        "after the child exited"
    );
    drop(slot);
    assert_gone(&name, &[&w], "creator dropped after the child exited");
}

// 2. Passing over a Unix socket.

#[test]
fn a_handle_sent_over_a_socketpair_reads_in_the_other_process() {
    let _serial = serial();
    let name = unique_name("h_socket");
    let slot = Mailslot::create(&name).expect("create");
    let w = MailslotWriter::open(&name).expect("open");
    // Queued before the handle is shared: the receiver must see them too.
    write_numbered(&w, "s", 0..20);
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let mut h = Holder::spawn(
        &["holder", "socket", &theirs.as_raw_fd().to_string()],
        Some(theirs.as_raw_fd()),
    );
    drop(theirs);
    slot.send_handle(&ours).expect("send_handle");
    h.expect("holding", Duration::from_secs(5));
    write_numbered(&w, "s", 20..40);
    let (got, err) = h.read(40, 2000);
    assert_eq!(err, None, "the receiver's reads failed");
    assert_eq!(
        got,
        numbered("s", 0..40),
        "the receiver read other messages"
    );

    // The sender lets go; the receiver alone keeps it, then lets go too.
    drop(slot);
    write_numbered(&w, "s", 40..41);
    let (got, err) = h.read(1, 2000);
    assert_eq!((got, err), (numbered("s", 40..41), None));
    h.exit();
    assert_gone(&name, &[&w], "both holders let go");
}

#[test]
fn a_handle_received_from_another_process_reads_here_after_that_process_is_killed() {
    let _serial = serial();
    let name = unique_name("h_recv");
    let path = socket_path("recv");
    let mut creator = Holder::spawn(&["create-pass", &name, &path], None);
    creator.expect("ready", Duration::from_secs(5));
    let w = MailslotWriter::open(&name).expect("open");
    write_numbered(&w, "r", 0..10);
    let sock = UnixStream::connect(&path).expect("connect to the creator");
    let slot = Mailslot::receive_handle(&sock).expect("receive_handle");
    creator.expect("passed", Duration::from_secs(5));
    let _ = std::fs::remove_file(&path);
    common::kill9(&mut creator.child);
    write_numbered(&w, "r", 10..12);
    let got: Vec<_> = (0..12).map(|_| read_here(&slot)).collect();
    assert_eq!(got, numbered("r", 0..12));
    drop(slot);
    assert_gone(
        &name,
        &[&w],
        "the receiver let go after the creator was killed",
    );
}

// 3. Two holders reading at once.

#[test]
fn two_holders_reading_at_once_read_every_message_exactly_once_in_writer_order() {
    const WRITERS: u64 = 4;
    const EACH: u64 = 5_000;
    const TOTAL: u64 = WRITERS * EACH;
    let _serial = serial();
    let name = unique_name("h_two");
    let slot = Arc::new(Mailslot::create(&name).expect("create"));
    let fd = slot.inheritable().expect("inheritable");
    let mut h = Holder::spawn(&["holder", "inherit", &fd.to_string()], None);
    h.expect("holding", Duration::from_secs(5));
    h.cmd("stream");
    h.expect("reading", Duration::from_secs(5));

    let read_here = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (slot, stop, count) = (slot.clone(), stop.clone(), read_here.clone());
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut error = None;
            while !stop.load(Ordering::SeqCst) {
                match slot.read_message_timeout(Timeout::After(Duration::from_millis(20))) {
                    Ok(m) => {
                        let d = decode(&m.data).expect("a damaged message");
                        got.push((d.id, d.seq));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(ReadError::Timeout) => {}
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            (got, error)
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|k| {
            let name = name.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let w = MailslotWriter::open(&name).map_err(|e| format!("open: {e}"))?;
                let id = format!("w{k}");
                for seq in 0..EACH {
                    w.write_with(&make_message(&id, seq, 40), first_class())
                        .map_err(|e| format!("write {id}:{seq}: {e} ({})", e.win32_code()))?;
                }
                Ok(())
            })
        })
        .collect();

    // The child's messages arrive as lines; stop both when all were read (or 15 s passed).
    let started = Instant::now();
    let mut theirs = Vec::new();
    while (theirs.len() as u64) + read_here.load(Ordering::SeqCst) < TOTAL
        && started.elapsed() < Duration::from_secs(15)
    {
        if let Some(line) = h.next_line(Duration::from_millis(20)) {
            match parse_msg(&line) {
                Some(m) => theirs.push(m),
                None => panic!("the child said {line:?} while reading"),
            }
        }
    }
    let took = started.elapsed();
    let refused: Vec<String> = writers
        .into_iter()
        .filter_map(|t| t.join().expect("writer thread").err())
        .collect();
    assert!(refused.is_empty(), "writes were refused: {refused:?}");
    stop.store(true, Ordering::SeqCst);
    theirs.extend(h.stop_stream(Duration::from_secs(5)));
    let (ours, error) = reader.join().expect("reader thread");
    assert_eq!(error, None, "the creator's reads failed");
    eprintln!(
        "two holders: creator read {}, child read {}, in {took:?}",
        ours.len(),
        theirs.len()
    );

    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for m in ours.iter().chain(&theirs) {
        if !seen.insert(m.clone()) {
            duplicates.push(m.clone());
        }
    }
    assert!(
        duplicates.is_empty(),
        "read twice: {:?}",
        &duplicates[..duplicates.len().min(10)]
    );
    let missing: Vec<_> = (0..WRITERS)
        .flat_map(|k| numbered(&format!("w{k}"), 0..EACH))
        .filter(|m| !seen.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "{} messages never read, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(seen.len() as u64, TOTAL, "messages nobody wrote were read");
    for (who, got) in [("creator", &ours), ("child", &theirs)] {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, seq) in got {
            if let Some(&prev) = last.get(id.as_str()) {
                assert!(
                    *seq > prev,
                    "the {who} read {id}:{seq} after {id}:{prev} (out of the writer's order)"
                );
            }
            last.insert(id, *seq);
        }
    }
    assert!(
        !ours.is_empty() && !theirs.is_empty(),
        "one holder read nothing while both were reading (creator {}, child {})",
        ours.len(),
        theirs.len()
    );
}

/// Holders SIGKILLed at random moments (in a read, under the holders' lock, while they take a
/// writer's ring in or go round the park) leave a slot the others go on serving: every accepted
/// message is read at most once and undamaged, each holder reads each writer's messages in
/// order, writers are never refused — neither those connected from the start nor an opener
/// that connects anew for every message, so that opens are in flight when holders die — and
/// the accepted messages nobody reported reading are at most one per kill (a message a holder
/// had read and not yet printed dies with it).
/// It runs until `MAILSLOT_HOLDER_TORTURE_KILLS` holders were killed (default 40) and
/// `MAILSLOT_HOLDER_TORTURE_MESSAGES` writes were accepted (default 30 000).
#[test]
fn holders_sigkilled_at_random_lose_no_message_they_did_not_take() {
    const WRITERS: u64 = 3;
    const HOLDERS: usize = 3;
    let target = common::env_u64("MAILSLOT_HOLDER_TORTURE_MESSAGES", 30_000);
    let kills = common::env_u64("MAILSLOT_HOLDER_TORTURE_KILLS", 40) as usize;
    let limit = Duration::from_secs(60 + kills as u64 / 2 + target / 5_000);
    let _serial = serial();
    let started = Instant::now();
    let name = unique_name("h_torture");
    let slot = Mailslot::create(&name).expect("create");
    let spawn_holder = |slot: &Mailslot| {
        let fd = slot.share().expect("share");
        let n = fd.as_raw_fd();
        let mut h = Holder::spawn(&["holder", "inherit", &n.to_string()], Some(n));
        drop(fd);
        h.expect("holding", Duration::from_secs(5));
        h.cmd("stream");
        h.expect("reading", Duration::from_secs(5));
        h
    };
    // A holder left asleep for ever would hang the test, not fail it: fail it.
    let finished = Arc::new(AtomicBool::new(false));
    {
        let finished = finished.clone();
        std::thread::spawn(move || {
            std::thread::sleep(limit + Duration::from_secs(30));
            if !finished.load(Ordering::SeqCst) {
                eprintln!("holder torture: no progress {limit:?} + 30 s after its start (a hang)");
                std::process::exit(101);
            }
        });
    }
    let mut holders: Vec<Holder> = (0..HOLDERS).map(|_| spawn_holder(&slot)).collect();
    let mut killed: Vec<Holder> = Vec::new();

    // Writers: every write that returned Ok is accepted.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|k| {
            let (name, stop, accepted) = (name.clone(), stop.clone(), accepted.clone());
            std::thread::spawn(move || -> (u64, Option<String>) {
                let w = match MailslotWriter::open(&name) {
                    Ok(w) => w,
                    Err(e) => return (0, Some(format!("open: {e}"))),
                };
                let id = format!("w{k}");
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) {
                    if let Err(e) = w.write_with(&make_message(&id, seq, 60), first_class()) {
                        return (
                            seq,
                            Some(format!("write {id}:{seq}: {e} ({})", e.win32_code())),
                        );
                    }
                    seq += 1;
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
                (seq, None)
            })
        })
        .collect();

    // An opener: a new connection for every message (an open in flight when a holder dies
    // must still be served), each message under a name of its own, as the order between
    // connections is not the writer's.
    let opener = {
        let (name, stop) = (name.clone(), stop.clone());
        std::thread::spawn(move || -> (Vec<(String, u64)>, Option<String>) {
            let mut sent = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let id = format!("o{}", sent.len());
                let w = match MailslotWriter::open(&name) {
                    Ok(w) => w,
                    Err(e) => return (sent, Some(format!("open {id}: {e}"))),
                };
                if let Err(e) = w.write_with(&make_message(&id, 0, 60), first_class()) {
                    return (sent, Some(format!("write {id}: {e} ({})", e.win32_code())));
                }
                sent.push((id, 1));
                drop(w);
                std::thread::sleep(Duration::from_millis(3));
            }
            (sent, None)
        })
    };

    let mut rng = mailslot_hostile::Rng::from_time();
    while accepted.load(Ordering::SeqCst) < target || killed.len() < kills {
        assert!(
            started.elapsed() < limit,
            "{} writes accepted and {} holders killed after {limit:?}",
            accepted.load(Ordering::SeqCst),
            killed.len()
        );
        std::thread::sleep(Duration::from_millis(rng.range(2, 40)));
        let victim = rng.range(0, HOLDERS as u64 - 1) as usize;
        common::kill9(&mut holders[victim].child);
        let fresh = spawn_holder(&slot);
        killed.push(std::mem::replace(&mut holders[victim], fresh));
    }
    stop.store(true, Ordering::SeqCst);
    let mut sent = Vec::new();
    for (k, t) in writers.into_iter().enumerate() {
        let (n, err) = t.join().expect("writer thread");
        assert!(err.is_none(), "writer w{k} was refused: {err:?}");
        sent.push((format!("w{k}"), n));
    }
    let total: u64 = sent.iter().map(|(_, n)| n).sum();
    let (opened, err) = opener.join().expect("opener thread");
    assert!(
        err.is_none(),
        "the opener was refused after {} opens: {err:?}",
        opened.len()
    );
    assert!(!opened.is_empty(), "the opener never wrote");
    let opens = opened.len();
    sent.extend(opened);
    assert!(
        total >= target,
        "only {total} writes accepted in {:?}",
        started.elapsed()
    );

    // What each holder read, in its order: the killed ones' output up to their death, the
    // living ones' until they stop, then what is left, read here.
    let mut reads: Vec<Vec<(String, u64)>> = Vec::new();
    for h in &mut killed {
        let mut got = Vec::new();
        while let Some(l) = h.next_line(Duration::from_secs(5)) {
            got.extend(parse_msg(&l));
        }
        reads.push(got);
    }
    for h in &mut holders {
        reads.push(h.stop_stream(Duration::from_secs(10)));
    }
    let mut here = Vec::new();
    while let Ok(m) = slot.read_message_timeout(Timeout::After(Duration::from_millis(300))) {
        let d = decode(&m.data).expect("a damaged message");
        here.push((d.id, d.seq));
    }
    reads.push(here);
    finished.store(true, Ordering::SeqCst);

    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut dups = Vec::new();
    let mut out_of_order = Vec::new();
    for got in &reads {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, seq) in got {
            if !seen.insert((id.clone(), *seq)) {
                dups.push((id.clone(), *seq));
            }
            if let Some(prev) = last.insert(id, *seq) {
                if *seq <= prev {
                    out_of_order.push((id.clone(), prev, *seq));
                }
            }
        }
    }
    let sent_n: HashMap<&str, u64> = sent.iter().map(|(w, n)| (w.as_str(), *n)).collect();
    let unknown: Vec<_> = seen
        .iter()
        .filter(|(id, seq)| sent_n.get(id.as_str()).is_none_or(|n| seq >= n))
        .collect();
    let missing: u64 = sent
        .iter()
        .map(|(w, n)| (0..*n).filter(|s| !seen.contains(&(w.clone(), *s))).count() as u64)
        .sum();
    eprintln!(
        "holder torture: {total} writes accepted and {opens} opens (a write each), {} holders \
         SIGKILLed, {} read by holders that died and {} by the living, {} read at the end; \
         {missing} not reported read, {} read twice, {} out of order; {:.1}s",
        killed.len(),
        reads[..killed.len()].iter().map(Vec::len).sum::<usize>(),
        reads[killed.len()..reads.len() - 1]
            .iter()
            .map(Vec::len)
            .sum::<usize>(),
        reads[reads.len() - 1].len(),
        dups.len(),
        out_of_order.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        dups.is_empty(),
        "read twice: {:?}",
        &dups[..dups.len().min(10)]
    );
    assert!(
        out_of_order.is_empty(),
        "out of order (writer, previous, seq): {:?}",
        &out_of_order[..out_of_order.len().min(10)]
    );
    assert!(unknown.is_empty(), "read but never written: {unknown:?}");
    assert!(
        missing <= killed.len() as u64,
        "{missing} accepted messages were never read, with {} holders killed",
        killed.len()
    );
}

// 4. The last holder's close deletes.

fn last_close_deletes(kill_child: bool) {
    let _serial = serial();
    let name = unique_name(if kill_child { "h_lastkill" } else { "h_last" });
    let slot = Mailslot::create(&name).expect("create");
    let fd = slot.inheritable().expect("inheritable");
    let mut h = Holder::spawn(&["holder", "inherit", &fd.to_string()], None);
    h.expect("holding", Duration::from_secs(5));
    let w = MailslotWriter::open(&name).expect("open");
    write_numbered(&w, "a", 0..5);

    drop(slot);
    assert!(
        !is_open(fd),
        "the creator's inheritable descriptor {fd} stayed open after its handle was dropped"
    );
    // The child holds it: the name is taken, opens, and the messages (old and new) are there.
    match Mailslot::create(&name) {
        Err(CreateError::AlreadyExists(_)) => {}
        other => panic!(
            "create of a name a child still holds gave {:?}, not AlreadyExists",
            other.map(|_| ())
        ),
    }
    let w2 = MailslotWriter::open(&name).expect("open after the creator dropped its handle");
    write_numbered(&w2, "b", 0..5);
    write_numbered(&w, "a", 5..10);
    let (got, err) = h.read(15, 2000);
    assert_eq!(err, None, "the child's reads failed");
    let of =
        |id: &str| -> Vec<(String, u64)> { got.iter().filter(|(i, _)| i == id).cloned().collect() };
    assert_eq!(
        of("a"),
        numbered("a", 0..10),
        "writer a's messages in the child"
    );
    assert_eq!(
        of("b"),
        numbered("b", 0..5),
        "writer b's messages in the child"
    );
    assert_eq!(got.len(), 15);

    if kill_child {
        common::kill9(&mut h.child);
    } else {
        h.exit();
    }
    let took = assert_gone_within(
        &name,
        &[&w, &w2],
        if kill_child {
            "the last holder was SIGKILLed"
        } else {
            "the last holder exited"
        },
        if kill_child {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        },
    );
    eprintln!("name gone {took:?} after the last holder went (killed: {kill_child})");
    // And the name is free.
    drop(Mailslot::create(&name).expect("create the name again"));
}

#[test]
fn the_last_holder_exiting_deletes_the_mailslot() {
    last_close_deletes(false);
}

#[test]
fn the_last_holder_sigkilled_deletes_the_mailslot() {
    last_close_deletes(true);
}

#[test]
fn an_unclaimed_shared_descriptor_keeps_the_mailslot_and_its_messages() {
    let _serial = serial();
    let name = unique_name("h_unclaimed");
    let slot = Mailslot::create(&name).expect("create");
    let w = MailslotWriter::open(&name).expect("open");
    write_numbered(&w, "u", 0..3);
    let fd = slot.share().expect("share");
    assert!(
        is_cloexec(fd.as_raw_fd()),
        "share() gave a descriptor without close-on-exec"
    );
    drop(slot);
    // Only the descriptor holds it now: the name is taken, the writer opened before writes.
    assert!(
        matches!(Mailslot::create(&name), Err(CreateError::AlreadyExists(_))),
        "the name was free while a shared descriptor held the mailslot"
    );
    write_numbered(&w, "u", 3..6);
    let slot = Mailslot::from_shared(fd).expect("from_shared");
    let got: Vec<_> = (0..6).map(|_| read_here(&slot)).collect();
    assert_eq!(got, numbered("u", 0..6));
    drop(slot);
    assert_gone(&name, &[&w], "the one who took it up let go");
}

/// Like `CreateProcess` with an inherited handle after which the parent closes its own: until
/// the child takes it up, only the descriptor holds the mailslot. A writer that opens the name
/// then finds it (not `NotFound`) and gets in once a holder takes the descriptor up.
#[test]
fn a_writer_opening_while_only_an_unclaimed_descriptor_holds_the_mailslot_gets_in() {
    let _serial = serial();
    let name = unique_name("h_unclaimed_open");
    let slot = Mailslot::create(&name).expect("create");
    let fd = slot.share().expect("share");
    drop(slot);
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let opener = {
        let name = name.clone();
        std::thread::spawn(move || {
            tid_tx.send(common::tid()).expect("tid");
            let started = Instant::now();
            let r = MailslotWriter::open_timeout(&name, Duration::from_secs(5)).inspect(|w| {
                write_numbered(w, "o", 0..2);
            });
            (r, started.elapsed())
        })
    };
    let tid = tid_rx.recv().expect("tid");
    // The opener waits (for an answer) or has already finished.
    common::wait_for(
        "the opener waits or is done",
        Duration::from_secs(5),
        || opener.is_finished() || common::asleep(std::process::id(), tid),
    );
    if opener.is_finished() {
        let (r, took) = opener.join().expect("opener");
        if let Err(e) = r {
            panic!(
                "open while only a shared descriptor holds the mailslot: {e:?} ({}) after {took:?}",
                e.win32_code()
            );
        }
        let slot = Mailslot::from_shared(fd).expect("from_shared");
        assert_eq!(read_here(&slot), ("o".to_string(), 0));
        return;
    }
    let taken_at = Instant::now();
    let slot = Mailslot::from_shared(fd).expect("from_shared");
    let in_time = within(Duration::from_secs(2), || opener.is_finished());
    let (r, took) = opener.join().expect("opener");
    let w = r.unwrap_or_else(|e| {
        panic!(
            "an open waiting while only a shared descriptor held the mailslot gave {e:?} ({}) \
             after {took:?}; the descriptor was taken up {:?} before",
            e.win32_code(),
            taken_at.elapsed()
        )
    });
    assert!(
        in_time.is_some(),
        "the open finished only {took:?} after it started"
    );
    let got: Vec<_> = (0..2).map(|_| read_here(&slot)).collect();
    assert_eq!(got, numbered("o", 0..2));
    drop(w);
}

// 5. Delete, by any holder, deletes for all.

#[test]
fn delete_ends_a_childs_read_that_waits_for_ever_and_frees_the_name() {
    let _serial = serial();
    let name = unique_name("h_delblock");
    let slot = Mailslot::create(&name).expect("create");
    let fd = slot.inheritable().expect("inheritable");
    let mut h = Holder::spawn(&["holder", "inherit", &fd.to_string()], None);
    h.expect("holding", Duration::from_secs(5));
    let w = MailslotWriter::open(&name).expect("open");
    h.cmd("read-forever");
    h.expect("reading", Duration::from_secs(5));
    let pid = h.pid();
    // Its main thread reads; once that sleeps, it sleeps in the read.
    common::wait_for("the child's read sleeps", Duration::from_secs(5), || {
        common::asleep(pid, pid)
    });

    let deleted_at = Instant::now();
    slot.delete();
    let Some(line) = h.next_line(Duration::from_secs(2)) else {
        panic!(
            "the child's read that waits for ever did not return within 2 s of the delete \
             (it said {:?}); its threads: {}",
            h.said,
            threads(pid)
        )
    };
    let woke = deleted_at.elapsed();
    assert_eq!(
        line,
        format!("err {INVALID_HANDLE} Deleted"),
        "the child's read ended with something else"
    );
    assert!(
        woke <= Duration::from_secs(1),
        "the child's read returned Deleted only {woke:?} after the delete"
    );
    match w.write_with(b"after delete", first_class()) {
        Err(WriteError::OwnerGone) => {}
        other => panic!("a write after delete gave {other:?}, not OwnerGone"),
    }
    let mut last = None;
    let (new_slot, free_after) = {
        let start = Instant::now();
        loop {
            match Mailslot::create(&name) {
                Ok(s) => break (s, start.elapsed()),
                Err(e) if start.elapsed() < Duration::from_secs(1) => {
                    last = Some(e.to_string());
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => panic!("create still fails 1 s after delete: {e} (before: {last:?})"),
            }
        }
    };
    eprintln!("child's read woke {woke:?} after delete; name free after {free_after:?}");

    // The child's handle stays dead (it does not reach the new mailslot of the same name).
    let (got, err) = h.read(1, 200);
    assert!(got.is_empty());
    assert_eq!(err, Some(format!("err {INVALID_HANDLE} Deleted")));
    h.cmd("share");
    h.expect(&format!("err {INVALID_HANDLE} "), Duration::from_secs(5));
    // Its exit lets go of a dead handle only: the new mailslot lives on.
    h.exit();
    let w = MailslotWriter::open(&name).expect("open the new mailslot");
    write_numbered(&w, "n", 0..1);
    assert_eq!(read_here(&new_slot), ("n".to_string(), 0));
}

#[test]
fn delete_discards_the_queued_messages_for_every_holder() {
    let _serial = serial();
    let name = unique_name("h_deldiscard");
    let slot = Mailslot::create(&name).expect("create");
    let fd = slot.inheritable().expect("inheritable");
    let mut h = Holder::spawn(&["holder", "inherit", &fd.to_string()], None);
    h.expect("holding", Duration::from_secs(5));
    let w = MailslotWriter::open(&name).expect("open");
    write_numbered(&w, "q", 0..10);
    slot.delete();
    let (got, err) = h.read(1, 1000);
    assert_eq!(
        got,
        Vec::new(),
        "the child read messages queued before the delete"
    );
    assert_eq!(err, Some(format!("err {INVALID_HANDLE} Deleted")));
    assert!(matches!(
        w.write_with(b"x", first_class()),
        Err(WriteError::OwnerGone)
    ));
    let mut new_slot = None;
    within(Duration::from_secs(1), || {
        new_slot = Mailslot::create(&name).ok();
        new_slot.is_some()
    })
    .expect("the name was not free within 1 s of delete");
    let new_slot = new_slot.expect("created");
    match new_slot.read_message_timeout(Timeout::After(Duration::from_millis(0))) {
        Err(ReadError::Timeout) => {}
        other => panic!(
            "the new mailslot of the name had {:?}",
            other.map(|m| String::from_utf8_lossy(&m.data).into_owned())
        ),
    }
}

#[test]
fn delete_by_a_child_ends_the_creators_waiting_read() {
    let _serial = serial();
    let name = unique_name("h_childdel");
    let slot = Arc::new(Mailslot::create(&name).expect("create"));
    let fd = slot.inheritable().expect("inheritable");
    let mut h = Holder::spawn(&["holder", "inherit", &fd.to_string()], None);
    h.expect("holding", Duration::from_secs(5));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let reader = {
        let slot = slot.clone();
        std::thread::spawn(move || {
            tid_tx.send(common::tid()).expect("tid");
            let r = slot.read_message_timeout(Timeout::Forever);
            (r.map(|m| m.data), Instant::now())
        })
    };
    let tid = tid_rx.recv().expect("tid");
    common::wait_for("the creator's read sleeps", Duration::from_secs(5), || {
        common::asleep(std::process::id(), tid)
    });
    h.cmd("delete");
    h.expect("deleted", Duration::from_secs(5));
    let asked = Instant::now();
    let ended = within(Duration::from_secs(2), || reader.is_finished());
    assert!(
        ended.is_some(),
        "the creator's read still waits 2 s after the child deleted the mailslot"
    );
    let (r, at) = reader.join().expect("reader");
    assert!(
        matches!(r, Err(ReadError::Deleted)),
        "the creator's read gave {r:?}"
    );
    let woke = at.saturating_duration_since(asked);
    assert!(woke <= Duration::from_secs(1), "woke only after {woke:?}");
    assert!(
        matches!(
            slot.read_message_timeout(Timeout::After(Duration::from_millis(10))),
            Err(ReadError::Deleted)
        ),
        "a later read here is not Deleted"
    );
    let mut new_slot = None;
    within(Duration::from_secs(1), || {
        new_slot = Mailslot::create(&name).ok();
        new_slot.is_some()
    })
    .expect("the name was not free within 1 s of the child's delete");
    // Letting go of the dead handle leaves the new mailslot of the name alone.
    drop(slot);
    let new_slot = new_slot.expect("created");
    let w = MailslotWriter::open(&name).expect("open the new mailslot");
    write_numbered(&w, "n", 0..1);
    assert_eq!(read_here(&new_slot), ("n".to_string(), 0));
}

// 6. The creator SIGKILLed while a child holds the handle.

fn socket_path(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir()
        .join(format!(
            "mailslot-handles-{tag}-{}-{nanos}.sock",
            std::process::id()
        ))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_holder_keeps_the_mailslot_and_its_messages_when_the_creator_is_sigkilled() {
    const N: u64 = 200;
    let _serial = serial();
    let name = unique_name("h_parentkill");
    let path = socket_path("kill");
    let mut creator = Holder::spawn(&["create-pass", &name, &path], None);
    creator.expect("ready", Duration::from_secs(5));
    let w = MailslotWriter::open(&name).expect("open");
    // Queued in the creator before the handle is shared, then after.
    write_numbered(&w, "k", 0..N);
    let mut h = Holder::spawn(&["holder", "connect", &path], None);
    creator.expect("passed", Duration::from_secs(5));
    h.expect("holding", Duration::from_secs(5));
    let _ = std::fs::remove_file(&path);
    write_numbered(&w, "k", N..2 * N);

    common::kill9(&mut creator.child);
    let (got, err) = h.read(2 * N, 2000);
    assert_eq!(
        err, None,
        "the holder's reads failed after the creator was killed"
    );
    assert_eq!(
        got,
        numbered("k", 0..2 * N),
        "the holder did not read every message queued before the creator was killed, in order"
    );
    // New writers find the name; the writer opened before keeps writing.
    let w2 = MailslotWriter::open(&name).expect("open after the creator was killed");
    write_numbered(&w2, "n", 0..10);
    let old_writer = w.write_with(&make_message("k", 2 * N, 40), first_class());
    assert!(
        old_writer.is_ok(),
        "a writer opened before the creator's death got {old_writer:?}"
    );
    let (got, err) = h.read(11, 2000);
    assert_eq!(err, None);
    let mut expected = numbered("n", 0..10);
    expected.push(("k".to_string(), 2 * N));
    let mut sorted = got.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "the messages written after the kill");
    h.exit();
    assert_gone(
        &name,
        &[&w, &w2],
        "the holder exited after the creator was killed",
    );
}

// 7. Descriptors that are not owner handles.

fn memfd(len: usize, fill: u8) -> OwnedFd {
    // SAFETY: memfd_create with a constant name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"not-a-mailslot".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd);
    f.write_all(&vec![fill; len]).expect("fill memfd");
    f.into()
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn assert_not_a_mailslot(what: &str, r: Result<Mailslot, ShareError>) {
    match r {
        Err(e @ ShareError::NotAMailslot(_)) => {
            assert_eq!(e.win32_code(), INVALID_HANDLE, "{what}: {e}");
        }
        Err(e) => panic!("{what}: gave {e:?}, not NotAMailslot"),
        Ok(_) => panic!("{what}: was taken up as a mailslot handle"),
    }
}

/// Sends `fd` with `SCM_RIGHTS` (and one byte) on `sock`.
fn send_fd(sock: &UnixStream, fd: RawFd) {
    send_fds(sock.as_raw_fd(), b"x", &[fd]);
}

/// Sends `bytes` with the descriptors `fds` (`SCM_RIGHTS`, at most 16) on socket `sock`.
fn send_fds(sock: RawFd, bytes: &[u8], fds: &[RawFd]) {
    assert!(fds.len() <= 16);
    let mut data = bytes.to_vec();
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // A control buffer of u64s is aligned enough for a cmsghdr.
    let mut control = [0u64; 16];
    let fd_bytes = size_of_val(fds) as u32;
    // SAFETY: msghdr is plain old data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size (at most 16 + 64 bytes, within `control`).
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(fd_bytes) } as _;
    // SAFETY: the control buffer is large enough for the header and the descriptors.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_bytes) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            fd_bytes as usize,
        );
    }
    // SAFETY: `msg` points at live buffers for the duration of the call.
    let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    assert_eq!(
        r,
        data.len() as isize,
        "sendmsg: {}",
        std::io::Error::last_os_error()
    );
}

/// A `SOCK_SEQPACKET` socket pair.
fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn descriptors_that_are_not_owner_handles_are_refused() {
    let _serial = serial();
    let (rd, wr) = pipe();
    assert_not_a_mailslot("a pipe", Mailslot::from_shared(rd));
    assert_not_a_mailslot("a pipe's write end", Mailslot::from_shared(wr));
    let (a, _b) = UnixStream::pair().expect("socketpair");
    assert_not_a_mailslot("a socketpair end", Mailslot::from_shared(a.into()));
    assert_not_a_mailslot("an empty memfd", Mailslot::from_shared(memfd(0, 0)));
    assert_not_a_mailslot("a memfd of zeros", Mailslot::from_shared(memfd(65_536, 0)));
    assert_not_a_mailslot(
        "a memfd of 0xFF",
        Mailslot::from_shared(memfd(65_536, 0xFF)),
    );
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    assert_not_a_mailslot("/dev/null", Mailslot::from_shared(null.into()));

    assert_not_a_mailslot("inherited(9999)", Mailslot::inherited(9999));
    assert_not_a_mailslot("inherited(-1)", Mailslot::inherited(-1));
    let (rd, _wr) = pipe();
    assert_not_a_mailslot("inherited(a pipe)", Mailslot::inherited(rd.as_raw_fd()));
    assert!(
        is_open(rd.as_raw_fd()),
        "inherited() closed the descriptor it was given"
    );

    // receive_handle: bytes without a descriptor, a closed peer, a descriptor of another kind.
    let (a, mut b) = UnixStream::pair().expect("socketpair");
    b.write_all(b"x").expect("write");
    assert_not_a_mailslot("bytes without a descriptor", Mailslot::receive_handle(&a));
    drop(b);
    let r = Mailslot::receive_handle(&a);
    assert!(
        matches!(r, Err(ShareError::NotAMailslot(_) | ShareError::Io(_))),
        "a closed peer: {:?}",
        r.map(|_| ())
    );
    let (a, b) = UnixStream::pair().expect("socketpair");
    let (rd, _wr) = pipe();
    send_fd(&b, rd.as_raw_fd());
    assert_not_a_mailslot("a pipe sent on the socket", Mailslot::receive_handle(&a));
    let fake = memfd(65_536, 0xFF);
    send_fd(&b, fake.as_raw_fd());
    assert_not_a_mailslot("a memfd sent on the socket", Mailslot::receive_handle(&a));
}

/// Sockets that carry what looks like an owner handle's message (the bytes a handle carries,
/// with descriptors of the wrong kind, too few, or memory full of garbage): refused as
/// `NotAMailslot`, never a panic, never taken up.
#[test]
fn forged_owner_handles_are_refused() {
    let _serial = serial();
    // The bytes a real handle's descriptor carries.
    let real = Mailslot::create(&unique_name("h_forge")).expect("create");
    let shared = real.share().expect("share");
    let mut head = [0u8; 64];
    // SAFETY: peeks at most 64 bytes into `head`; descriptors that come with them are not
    // asked for (no control buffer), so none is received.
    let n = unsafe {
        libc::recv(
            shared.as_raw_fd(),
            head.as_mut_ptr().cast(),
            head.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    assert!(n > 0, "a shared descriptor carries no bytes to peek at");
    let magic = &head[..n as usize];
    drop(shared);
    drop(real);

    let (rd, wr) = pipe();
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let cases: Vec<(&str, Vec<OwnedFd>)> = vec![
        (
            "seven pipes and /dev/null",
            (0..7)
                .map(|k| match k {
                    0 => rd.try_clone().expect("dup"),
                    6 => null.try_clone().expect("dup").into(),
                    _ => wr.try_clone().expect("dup"),
                })
                .collect(),
        ),
        (
            "seven memfds of 0xFF",
            (0..7).map(|_| memfd(65_536, 0xFF)).collect(),
        ),
        (
            "seven memfds of zeros",
            (0..7).map(|_| memfd(4096, 0)).collect(),
        ),
        (
            "seven memfds of 1 MiB of 0x5A",
            (0..7).map(|_| memfd(1 << 20, 0x5A)).collect(),
        ),
        ("six memfds", (0..6).map(|_| memfd(4096, 0xFF)).collect()),
        ("eight memfds", (0..8).map(|_| memfd(4096, 0xFF)).collect()),
        ("no descriptors", Vec::new()),
    ];
    for (what, fds) in &cases {
        let (a, b) = seqpacket_pair();
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        if raw.is_empty() {
            // SAFETY: sends the bytes of `magic` on a socket we own.
            let r = unsafe {
                libc::send(
                    b.as_raw_fd(),
                    magic.as_ptr().cast(),
                    magic.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            assert_eq!(r, magic.len() as isize);
        } else {
            send_fds(b.as_raw_fd(), magic, &raw);
        }
        assert_not_a_mailslot(what, Mailslot::from_shared(a));
    }
}

#[test]
fn a_shared_descriptor_of_a_deleted_mailslot_is_refused() {
    let _serial = serial();
    let name = unique_name("h_deadshare");
    let slot = Mailslot::create(&name).expect("create");
    let fd = slot.share().expect("share");
    slot.delete();
    match Mailslot::from_shared(fd) {
        Err(e @ ShareError::Deleted) => assert_eq!(e.win32_code(), INVALID_HANDLE),
        Err(e) => panic!("gave {e:?}, not Deleted"),
        Ok(_) => panic!("a deleted mailslot's descriptor was taken up"),
    }
    within(Duration::from_secs(1), || Mailslot::create(&name).is_ok())
        .expect("the name was not free within 1 s of delete");
}

/// Every descriptor a writer holds (the socket, the rings and pages the owner gave it), tried
/// as an owner handle in the writer's process: none may make it a holder.
#[test]
fn a_writers_descriptors_are_not_owner_handles() {
    let _serial = serial();
    let name = unique_name("h_writerfds");
    let slot = Mailslot::builder()
        .access(mailslot::Access::Everyone)
        .create(&name)
        .expect("create");
    let mut h = Holder::spawn(&["take-writer-fds", &name], None);
    let mut taken = Vec::new();
    let tried: u64 = loop {
        let line = h
            .next_line(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no summary from the writer: {:?}", h.said));
        if let Some(n) = line.strip_prefix("summary tried=") {
            break n.parse().expect("count");
        }
        if line.starts_with("taken ") {
            taken.push(line);
        }
    };
    eprintln!("a writer tried {tried} descriptors: {:?}", h.said);
    assert!(tried >= 1, "the writer held no descriptors to try");
    assert!(
        taken.is_empty(),
        "a writer took up an owner handle from what it was given: {taken:?}"
    );
    // Its message arrived, and the mailslot is the creator's alone.
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(2)))
        .expect("the writer's message");
    assert_eq!(m.data, b"hello");
}
