//! The exit status of `mailslot`, by name (documented in the header of `main.rs` and the README).

use std::process::ExitCode;

/// What a run of `mailslot` ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: done.
    Success,
    /// 1: `listen` timed out before `--count` messages, or `decode` met a packet it could not
    /// parse.
    Incomplete,
    /// 2: an error (its message is on stderr).
    Error,
}

impl Exit {
    /// The number the process exits with.
    pub(crate) const fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Incomplete => 1,
            Self::Error => 2,
        }
    }

    /// The status a handler reported as a number (0, 1 or 2; anything else is an error).
    pub(crate) fn from_code(code: i32) -> Self {
        match code {
            0 => Self::Success,
            1 => Self::Incomplete,
            _ => Self::Error,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        Self::from(e.code())
    }
}
