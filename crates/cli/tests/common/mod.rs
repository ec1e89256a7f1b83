//! Helpers shared by the CLI's integration tests: the binary, unique names, and waiting for a
//! thread or a process to be blocked (instead of sleeping and hoping). What the library's and
//! the hostile tests need too is in `mailslot-test-support`.

#![allow(dead_code, unused_imports)] // not every test target uses every helper

use std::time::Duration;

pub(crate) use mailslot_test_support::{as_root, asleep, ignored_if, is_root, run_tests, tid};

/// The `mailslot` binary under test.
pub(crate) fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_mailslot")
}

/// A mailslot name no other test (or test process) uses.
pub(crate) fn unique(tag: &str) -> String {
    mailslot_test_support::unique_name("test", tag)
}

/// Waits until `ready` holds; panics with `what` after 10 s.
pub(crate) fn wait_for(what: &str, ready: impl FnMut() -> bool) {
    mailslot_test_support::wait_for(what, Duration::from_secs(10), ready);
}

/// Whether writer process `pid` has opened a local mailslot (it maps the control page the
/// owner hands over in its greeting) and its main thread now sleeps: after the open, the only
/// place a `mailslot send` sleeps is the wait for room.
pub(crate) fn writer_waits(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .is_ok_and(|maps| maps.contains("mailslot-control"))
        && asleep(pid, pid)
}
