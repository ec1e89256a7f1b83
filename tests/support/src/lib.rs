//! Helpers shared by the integration tests of the workspace's crates (the library, the CLI and
//! the hostile suite): whether the test runs as root, the calling thread's id, unique mailslot
//! names, waiting until a thread sleeps in the kernel (instead of sleeping and hoping), and
//! tests that are reported as `ignored` with a reason at run time, never as passed.
//!
//! A dev-dependency only; it does not depend on the crates under test, so that each of them can
//! use it without a second copy of itself in its tests.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Trial};

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The kernel's id of the calling thread.
pub fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// A mailslot name below `\\.\mailslot\{suite}\{tag}\` that no other test (or test process)
/// uses: the process id and a counter of this process end it.
pub fn unique_name(suite: &str, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        r"\\.\mailslot\{suite}\{tag}\{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` in a new thread that first takes uid and gid 65534 (nobody) and no supplementary
/// groups, and returns what it returns. Raw system calls change the credentials of the calling
/// thread only; the thread ends with `f`. What it connects keeps nobody's credentials
/// (`SO_PEERCRED` is taken at connect). Needs root.
pub fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: raw syscalls on this thread only, with an empty group list; the thread ends
        // after `f`.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
                0
            );
            assert_eq!(libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534), 0);
        }
        f()
    })
    .join()
    .unwrap()
}

/// The CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Whether thread `tid` of process `pid` sleeps in the kernel (state `S`: waiting for an
/// event, such as a `poll` or a futex). False once it has ended.
pub fn asleep(pid: u32, tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        == Some('S')
}

/// Waits until `ready` holds, polling every 200 µs; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{timeout:?} passed and still not: {what}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Waits until thread `tid` of this process sleeps in the kernel; panics after 10 s.
pub fn wait_until_asleep(tid: u32, what: &str) {
    wait_for(&format!("{what} sleeps"), Duration::from_secs(10), || {
        asleep(std::process::id(), tid)
    });
}

/// A test (for a target with `harness = false`) that is reported as `ignored` with the reason
/// `skip` gives when it gives one, and run otherwise.
pub fn ignored_if(
    name: &str,
    skip: impl FnOnce() -> Option<String> + Send + 'static,
    test: fn(),
) -> Trial {
    Trial::ignorable_test(name, move || {
        if let Some(why) = skip() {
            return Ok(Completion::ignored_with(why));
        }
        test();
        Ok(Completion::Completed)
    })
}

/// A test that needs root: reported as `ignored`, with `why`, when not root.
pub fn as_root(name: &str, why: &'static str, test: fn()) -> Trial {
    ignored_if(
        name,
        move || (!is_root()).then(|| format!("needs root: {why}")),
        test,
    )
}

/// Runs `tests` with the command line's arguments and exits with their result: the `main` of a
/// test target without the standard harness.
pub fn run_tests(tests: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), tests).exit()
}

/// Runs `test` as the only test of a target without the standard harness: when not root it is
/// reported as `ignored` with the reason, never as passed.
pub fn run_as_root_test(name: &str, why: &'static str, test: fn()) -> ! {
    run_tests(vec![as_root(name, why, test)])
}
