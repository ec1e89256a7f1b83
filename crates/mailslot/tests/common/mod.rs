//! Helpers shared by the library's integration tests: unique names, waiting until a thread is
//! asleep in the kernel (instead of sleeping and hoping), and running tests that need root.

#![allow(dead_code)] // not every test target uses every helper

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A mailslot name no other test (or test process) uses.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        r"\\.\mailslot\api\{tag}\{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The kernel's id of the calling thread.
pub(crate) fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// True when running as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether thread `tid` of this process sleeps in the kernel (state `S`: waiting for an event,
/// such as a `poll` or a futex). False once the thread has ended.
pub(crate) fn asleep(tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        == Some('S')
}

/// Waits until thread `tid` of this process sleeps in the kernel; panics after 10 s.
pub(crate) fn wait_until_asleep(tid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !asleep(tid) {
        assert!(Instant::now() < deadline, "{what} never went to sleep");
        std::thread::sleep(Duration::from_micros(100));
    }
}
