//! Helpers shared by the hostile tests: running roles (as root or as nobody), reading their
//! output lines, killing them. What the library's and the CLI's tests need too is in
//! `mailslot-test-support`.

#![allow(dead_code, unused_imports)] // not every test target uses every helper

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub(crate) use mailslot_test_support::{asleep, is_root, run_as_root_test, tid, wait_for};

/// The number in the environment variable `var`, or `default` when it is unset or not a number.
pub(crate) fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The role binary.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailslot-hostile")
}

/// Panics with a clear message if user nobody cannot execute the binary (a directory on its
/// path without search permission for others, or the file not executable by others).
pub(crate) fn assert_nobody_can_run_binary() {
    let p = Path::new(bin());
    let mode = std::fs::metadata(p)
        .expect("stat binary")
        .permissions()
        .mode();
    assert!(
        mode & 0o005 == 0o005,
        "{} is mode {:o}: user nobody cannot run it",
        p.display(),
        mode & 0o7777
    );
    for dir in p.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let mode = std::fs::metadata(dir)
            .expect("stat dir")
            .permissions()
            .mode();
        assert!(
            mode & 0o001 != 0,
            "directory {} is mode {:o}: user nobody cannot reach {} (give others search permission \
             or set CARGO_TARGET_DIR to a reachable place)",
            dir.display(),
            mode & 0o7777,
            p.display()
        );
    }
}

/// Starts a role; as user nobody through `setpriv` when `as_nobody`. Stdout is piped.
pub(crate) fn spawn(as_nobody: bool, args: &[&str]) -> Child {
    spawn_io(as_nobody, args, false)
}

/// Like [`spawn`]; stdin is piped too when `stdin_piped`.
pub(crate) fn spawn_io(as_nobody: bool, args: &[&str], stdin_piped: bool) -> Child {
    let mut cmd = if as_nobody {
        assert_nobody_can_run_binary();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.args(args)
        .stdin(if stdin_piped {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.spawn().expect("spawn role")
}

/// Lines of the child's stdout, delivered on a channel by a thread (which ends at EOF).
pub(crate) fn lines(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line that starts with `prefix` (others are collected into `seen`); panics after
/// `timeout` or at EOF.
pub(crate) fn wait_line(
    rx: &Receiver<String>,
    prefix: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(prefix) => return l,
            Ok(l) => seen.push(l),
            Err(e) => panic!("no line starting with {prefix:?} ({e:?}); got so far: {seen:?}"),
        }
    }
}

/// SIGKILLs the child and reaps it.
pub(crate) fn kill9(child: &mut Child) {
    // `Child::kill` sends SIGKILL, and nothing once the child was reaped.
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills the children when dropped (so a failing assertion leaves no process behind).
pub(crate) struct Reaper(pub Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            kill9(c);
        }
    }
}

/// Number of descriptors this process holds; `None` when /proc/self/fd cannot even be opened
/// (the process is out of descriptors).
pub(crate) fn fd_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

/// Sends a signal to the child.
pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: kill on the pid of a child that has not been reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// A slot owned by a separate `own` process (which never reads) that a writer of this process
/// has filled with class-2 messages of `size` bytes until `Full`.
#[allow(dead_code)] // not every test binary uses it
pub(crate) struct FullSlot {
    pub name: String,
    pub owner: Reaper,
    pub writer: mailslot::MailslotWriter,
    /// Messages it took to fill it.
    pub filled: usize,
}

/// Starts the owner process and fills its slot (see [`FullSlot`]).
#[allow(dead_code)]
pub(crate) fn full_slot(tag: &str, quota: usize, size: usize) -> FullSlot {
    let name = mailslot_hostile::unique_name(tag);
    let mut owner = spawn(
        false,
        &["own", &name, &quota.to_string(), &size.to_string()],
    );
    let rx = lines(&mut owner);
    let reaper = Reaper(vec![owner]);
    wait_line(&rx, "ready", Duration::from_secs(10), &mut Vec::new());
    let writer = mailslot::MailslotWriter::open(&name).expect("open");
    let data = vec![b'x'; size];
    let mut filled = 0;
    loop {
        match writer.write(&data) {
            Ok(()) => filled += 1,
            Err(mailslot::WriteError::Full) => break,
            Err(e) => panic!("filling: unexpected {e}"),
        }
        assert!(filled < 10_000, "never full");
    }
    FullSlot {
        name,
        owner: reaper,
        writer,
        filled,
    }
}

/// A new mailslot named `name` that every user may write to (what the hostile writers, run as
/// `nobody`, write to), shared with the test's reader thread.
pub(crate) fn everyone_slot(name: &str) -> std::sync::Arc<mailslot::Mailslot> {
    std::sync::Arc::new(
        mailslot::Mailslot::builder()
            .access(mailslot::Access::Everyone)
            .create(name)
            .expect("create"),
    )
}

/// Reads one message the way read number `n` of a test's reader does: even reads by message
/// (the way through the queue), odd ones into a buffer (the way that reads straight from the
/// writers' rings when it can), so that a test covers both.
pub(crate) fn read_nth(
    slot: &mailslot::Mailslot,
    n: u64,
    timeout: mailslot::Timeout,
) -> Result<mailslot::Message, mailslot::ReadError> {
    if n.is_multiple_of(2) {
        return slot.read_message_timeout(timeout);
    }
    let mut buf = vec![0u8; 65_536];
    let info = slot.read_timeout_with(&mut buf, timeout)?;
    buf.truncate(info.len);
    Ok(mailslot::Message {
        data: buf,
        priority: info.priority,
        class: info.class,
        sender: info.sender,
    })
}

/// How root writes message `seq` while a hostile writer runs: one in eleven first class (with
/// a 3 s timeout), the rest second class.
pub(crate) fn root_write_options(seq: u64) -> mailslot::WriteOptions {
    if seq % 11 == 10 {
        mailslot::WriteOptions::new()
            .class(mailslot::Class::First)
            .timeout(mailslot::Timeout::After(Duration::from_secs(3)))
    } else {
        mailslot::WriteOptions::new().class(mailslot::Class::Second)
    }
}

/// Reads until nothing arrives for 200 ms; returns how many (panics on any other error).
pub(crate) fn drain(slot: &mailslot::Mailslot) -> usize {
    let mut n = 0;
    loop {
        match slot.read_message_timeout(mailslot::Timeout::After(Duration::from_millis(200))) {
            Ok(_) => n += 1,
            Err(mailslot::ReadError::Timeout) => return n,
            Err(e) => panic!("drain: {e}"),
        }
    }
}
