//! Helpers shared by the library's integration tests: unique names, waiting until a thread is
//! asleep in the kernel (instead of sleeping and hoping), and running tests that need root.
//! What the CLI's and the hostile tests need too is in `mailslot-test-support`.

#![allow(dead_code, unused_imports)] // not every test target uses every helper

pub(crate) use mailslot_test_support::{
    as_root, ignored_if, is_root, run_tests, tid, wait_until_asleep,
};

/// A mailslot name no other test (or test process) uses.
pub(crate) fn unique(tag: &str) -> String {
    mailslot_test_support::unique_name("api", tag)
}
