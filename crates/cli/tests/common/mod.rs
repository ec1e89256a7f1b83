//! Helpers shared by the CLI's integration tests: the binary, unique names, and waiting for a
//! thread or a process to be blocked (instead of sleeping and hoping).

#![allow(dead_code)] // not every test target uses every helper

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `mailslot` binary under test.
pub(crate) fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_mailslot")
}

/// A mailslot name no other test (or test process) uses.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        r"\\.\mailslot\test\{tag}\{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// True when running as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The kernel's id of the calling thread.
pub(crate) fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Whether thread `tid` of process `pid` sleeps in the kernel (state `S`: waiting for an
/// event, such as a `poll`). False once it has ended.
pub(crate) fn asleep(pid: u32, tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        == Some('S')
}

/// Waits until `ready` holds; panics with `what` after 10 s.
pub(crate) fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "10 s passed and still not: {what}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Whether writer process `pid` has opened a local mailslot (it maps the control page the
/// owner hands over in its greeting) and its main thread now sleeps: after the open, the only
/// place a `mailslot send` sleeps is the wait for room.
pub(crate) fn writer_waits(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .is_ok_and(|maps| maps.contains("mailslot-control"))
        && asleep(pid, pid)
}
