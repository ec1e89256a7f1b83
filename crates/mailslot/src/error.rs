//! Errors, one enum per operation, each mapping to the Win32 and LAN Manager error numbers that
//! the C API returns (see `reference/semantics.md` of the project for the sources).
//!
//! Choices the Windows documentation leaves open, decided here:
//! - a write larger than the slot's maximum message size: [`WriteError::TooLarge`], Win32 and LAN
//!   Manager code 87 (`ERROR_INVALID_PARAMETER`), nothing queued;
//! - a write after the owner closed or died: [`WriteError::OwnerGone`], code 109
//!   (`ERROR_BROKEN_PIPE`, the code LAN Manager used for a mailslot whose owner went away);
//! - a slot whose quota is used up: [`WriteError::Full`], code 8 (`ERROR_NOT_ENOUGH_MEMORY`, as NT
//!   3.51 reported a full mailslot);
//! - creating with a remote name: [`CreateError::RemoteName`], code 123 (`ERROR_INVALID_NAME`);
//! - a name can be created again as soon as the owner closes (writers that still hold a handle
//!   get `OwnerGone`, they never write into the new slot);
//! - a mailslot served by a process the name policy ([`crate::policy`]) does not allow to serve
//!   that name: [`OpenError::OwnerNotAllowed`], Win32 and LAN Manager code 5
//!   (`ERROR_ACCESS_DENIED`), nothing sent. Windows has no code for "the server is not who it
//!   should be"; 5 is what a refused access to a named object gets on both systems, every caller
//!   already treats it as "do not retry", and LAN Manager's error set has nothing finer. The
//!   Rust variant (and its message) tells it apart from [`OpenError::AccessDenied`];
//! - creating a name the policy does not allow this user to serve: [`CreateError::NotAllowed`],
//!   code 5 (`ERROR_ACCESS_DENIED`, as a create refused by the security of the object namespace
//!   on Windows);
//! - a policy file that cannot be read or parsed: [`CreateError::Policy`] and
//!   [`OpenError::Policy`], Win32 code 1610 (`ERROR_BAD_CONFIGURATION`), LAN Manager 31
//!   (`ERROR_GEN_FAILURE`, LAN Manager has no configuration error for this).

use std::io;

use thiserror::Error;

use crate::name::NameError;
use crate::policy::PolicyError;

/// Win32 and LAN Manager error numbers used by this crate.
pub mod code {
    /// `NERR_Success` / `ERROR_SUCCESS`.
    pub const SUCCESS: u32 = 0;
    /// `ERROR_FILE_NOT_FOUND`: no mailslot of that name.
    pub const FILE_NOT_FOUND: u32 = 2;
    /// `ERROR_PATH_NOT_FOUND`: NULL name (Win32), bad name (LAN Manager).
    pub const PATH_NOT_FOUND: u32 = 3;
    /// `ERROR_ACCESS_DENIED`.
    pub const ACCESS_DENIED: u32 = 5;
    /// `ERROR_INVALID_HANDLE`.
    pub const INVALID_HANDLE: u32 = 6;
    /// `ERROR_NOT_ENOUGH_MEMORY`: out of resources, or the mailslot is full.
    pub const NOT_ENOUGH_MEMORY: u32 = 8;
    /// `ERROR_GEN_FAILURE`: an unexpected system error.
    pub const GEN_FAILURE: u32 = 31;
    /// `ERROR_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: u32 = 50;
    /// `ERROR_BAD_NETPATH`: a remote name that cannot be reached or resolved.
    pub const BAD_NETPATH: u32 = 53;
    /// `ERROR_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: u32 = 87;
    /// `ERROR_BROKEN_PIPE`: the owner of the mailslot is gone.
    pub const BROKEN_PIPE: u32 = 109;
    /// `ERROR_SEM_TIMEOUT`: a read or a first-class write timed out.
    pub const SEM_TIMEOUT: u32 = 121;
    /// `ERROR_INSUFFICIENT_BUFFER`: the read buffer is smaller than the next message.
    pub const INSUFFICIENT_BUFFER: u32 = 122;
    /// `ERROR_INVALID_NAME`.
    pub const INVALID_NAME: u32 = 123;
    /// `ERROR_PIPE_BUSY`: every instance the owner allows this user is in use.
    pub const PIPE_BUSY: u32 = 231;
    /// `ERROR_ALREADY_EXISTS`.
    pub const ALREADY_EXISTS: u32 = 183;
    /// `ERROR_BAD_CONFIGURATION`: the name policy file cannot be read or parsed.
    pub const BAD_CONFIGURATION: u32 = 1610;
    /// `NERR_NetNotStarted`: the network part (the daemon) is not running.
    pub const NERR_NET_NOT_STARTED: u32 = 2102;
}

fn io_code(e: &io::Error) -> u32 {
    match e.raw_os_error() {
        Some(libc::ENOMEM | libc::EMFILE | libc::ENFILE | libc::ENOBUFS) => code::NOT_ENOUGH_MEMORY,
        Some(libc::EACCES | libc::EPERM) => code::ACCESS_DENIED,
        _ => code::GEN_FAILURE,
    }
}

/// Error from [`Mailslot::create`](crate::Mailslot::create) and its builder.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name is not a valid mailslot name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The name points to another host; a mailslot can only be created locally.
    #[error("cannot create a remote mailslot ({0}); use a local name such as \\\\.\\mailslot\\x")]
    RemoteName(String),
    /// A live mailslot of that name exists on this host.
    #[error("a mailslot named {0} already exists on this host")]
    AlreadyExists(String),
    /// An option is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The name policy ([`crate::policy`]) does not allow user `uid` to serve this name. Code 5
    /// (`ERROR_ACCESS_DENIED`).
    #[error("the mailslot name policy does not allow user {uid} to serve {name}")]
    NotAllowed {
        /// The name.
        name: String,
        /// The user the mailslot would be served for.
        uid: u32,
    },
    /// The name policy file cannot be read or parsed (nothing is created while it is broken).
    /// Win32 code 1610 (`ERROR_BAD_CONFIGURATION`), LAN Manager 31.
    #[error(transparent)]
    Policy(PolicyError),
    /// A system call failed.
    #[error("system error while creating the mailslot: {0}")]
    Io(#[from] io::Error),
}

impl CreateError {
    /// The Win32 error number (`GetLastError` after `CreateMailslot`).
    pub fn win32_code(&self) -> u32 {
        match self {
            Self::InvalidName(_) | Self::RemoteName(_) => code::INVALID_NAME,
            Self::AlreadyExists(_) => code::ALREADY_EXISTS,
            Self::InvalidParameter(_) => code::INVALID_PARAMETER,
            Self::NotAllowed { .. } => code::ACCESS_DENIED,
            Self::Policy(_) => code::BAD_CONFIGURATION,
            Self::Io(e) => io_code(e),
        }
    }

    /// The LAN Manager error number (`DosMakeMailslot`).
    pub fn lanman_code(&self) -> u32 {
        match self {
            Self::InvalidName(_) | Self::RemoteName(_) => code::PATH_NOT_FOUND,
            Self::Policy(_) => code::GEN_FAILURE,
            other => other.win32_code(),
        }
    }
}

/// Error from [`MailslotWriter::open`](crate::MailslotWriter::open).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not a valid mailslot name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No mailslot of that name exists on this host.
    #[error("no mailslot named {0} on this host")]
    NotFound(String),
    /// The mailslot's access policy does not admit this process's user.
    #[error("access to mailslot {0} denied by its owner's access policy")]
    AccessDenied(String),
    /// A remote name (`\\HOST\…`, `\\*\…`) and no mailslot daemon runs in this network namespace (or
    /// it cannot be reached).
    #[error("cannot write to remote mailslot {name}: {reason}")]
    Remote {
        /// The name as given.
        name: String,
        /// Why it cannot be reached.
        reason: String,
    },
    /// The owner did not answer the open handshake in time (its process is stopped or hung).
    #[error("the owner of mailslot {0} did not answer")]
    NotResponding(String),
    /// The owner refused one more connection from this user: the user already holds as many
    /// writer handles to this mailslot as an owner allows one user (256), or the owner is out of
    /// resources. Code 231 (`ERROR_PIPE_BUSY`).
    #[error("mailslot {0} refused another writer of this user (too many open writer handles)")]
    Busy(String),
    /// The mailslot is served by a process of user `uid`, whom the name policy
    /// ([`crate::policy`]) does not allow to serve this name (someone else took the name):
    /// nothing was sent. Code 5 (`ERROR_ACCESS_DENIED`).
    #[error(
        "mailslot {name} is served by user {uid}, whom the mailslot name policy does not allow \
         to serve it; nothing sent"
    )]
    OwnerNotAllowed {
        /// The name.
        name: String,
        /// The owner's user, as the kernel reports it.
        uid: u32,
    },
    /// The name policy file cannot be read or parsed (no local mailslot is opened while it is
    /// broken). Win32 code 1610 (`ERROR_BAD_CONFIGURATION`), LAN Manager 31.
    #[error(transparent)]
    Policy(PolicyError),
    /// A system call failed.
    #[error("system error while opening the mailslot: {0}")]
    Io(#[from] io::Error),
}

impl OpenError {
    /// The Win32 error number (`GetLastError` after `CreateFile`).
    pub fn win32_code(&self) -> u32 {
        match self {
            Self::InvalidName(_) => code::INVALID_NAME,
            Self::NotFound(_) => code::FILE_NOT_FOUND,
            Self::AccessDenied(_) => code::ACCESS_DENIED,
            Self::Remote { .. } => code::BAD_NETPATH,
            Self::NotResponding(_) => code::SEM_TIMEOUT,
            Self::Busy(_) => code::PIPE_BUSY,
            Self::OwnerNotAllowed { .. } => code::ACCESS_DENIED,
            Self::Policy(_) => code::BAD_CONFIGURATION,
            Self::Io(e) => io_code(e),
        }
    }

    /// The LAN Manager error number (`DosWriteMailslot`).
    pub fn lanman_code(&self) -> u32 {
        match self {
            Self::InvalidName(_) => code::PATH_NOT_FOUND,
            Self::Policy(_) => code::GEN_FAILURE,
            other => other.win32_code(),
        }
    }
}

/// Error from writing a message.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Opening the mailslot failed (only from the one-shot [`write_mailslot`](crate::write_mailslot)).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The message is larger than the mailslot's maximum message size; nothing was queued.
    #[error("message of {size} bytes is larger than the mailslot's maximum of {max} bytes")]
    TooLarge {
        /// Size of the message.
        size: usize,
        /// The mailslot's maximum message size.
        max: usize,
    },
    /// Priority above 9.
    #[error("priority {0} is out of range 0-9")]
    InvalidPriority(u8),
    /// The mailslot's quota is used up (second class fails at once).
    #[error("mailslot is full")]
    Full,
    /// A first-class write waited for room until its timeout.
    #[error("timed out waiting for room in the mailslot")]
    Timeout,
    /// Larger than one datagram carries to another host (`432 − roundup4(path length)` bytes);
    /// nothing was sent. Windows reports this as `ERROR_BAD_NETPATH` (53).
    #[error(
        "message of {size} bytes is larger than the {max} bytes a network mailslot write carries"
    )]
    TooLargeForNetwork {
        /// Size of the message.
        size: usize,
        /// The limit for this name.
        max: usize,
    },
    /// The mailslot daemon could not send the message (for example 53: the computer name does
    /// not resolve).
    #[error("network write failed (error {code}): {message}")]
    Network {
        /// Win32 error number from the daemon.
        code: u32,
        /// The daemon's explanation.
        message: String,
    },
    /// The owner closed the mailslot or its process died; the message was not delivered.
    #[error("the mailslot's owner has closed it (or exited); message not delivered")]
    OwnerGone,
    /// A system call failed.
    #[error("system error while writing: {0}")]
    Io(#[from] io::Error),
}

impl WriteError {
    /// The Win32 error number (`GetLastError` after `WriteFile`).
    pub fn win32_code(&self) -> u32 {
        match self {
            Self::Open(e) => e.win32_code(),
            Self::TooLarge { .. } | Self::InvalidPriority(_) => code::INVALID_PARAMETER,
            Self::Full => code::NOT_ENOUGH_MEMORY,
            Self::Timeout => code::SEM_TIMEOUT,
            Self::OwnerGone => code::BROKEN_PIPE,
            Self::TooLargeForNetwork { .. } => code::BAD_NETPATH,
            Self::Network { code, .. } => *code,
            Self::Io(e) => io_code(e),
        }
    }

    /// The LAN Manager error number (`DosWriteMailslot`).
    pub fn lanman_code(&self) -> u32 {
        match self {
            Self::Open(e) => e.lanman_code(),
            other => other.win32_code(),
        }
    }
}

/// Error from reading or peeking.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No message arrived within the read timeout (immediately for a zero timeout).
    #[error("no message within the read timeout")]
    Timeout,
    /// The buffer is smaller than the next message, which stays queued.
    #[error("buffer too small: the next message has {needed} bytes")]
    BufferTooSmall {
        /// Size of the next message.
        needed: usize,
    },
    /// Another holder of a shared handle deleted the mailslot ([`crate::Mailslot::delete`]):
    /// this handle is dead (Win32 and LAN Manager 6, `ERROR_INVALID_HANDLE`).
    #[error("the mailslot was deleted by another holder of its handle")]
    Deleted,
    /// A system call failed.
    #[error("system error while reading: {0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// The Win32 error number (`GetLastError` after `ReadFile`).
    pub fn win32_code(&self) -> u32 {
        match self {
            Self::Timeout => code::SEM_TIMEOUT,
            Self::BufferTooSmall { .. } => code::INSUFFICIENT_BUFFER,
            Self::Deleted => code::INVALID_HANDLE,
            Self::Io(e) => io_code(e),
        }
    }

    /// The LAN Manager error number (`DosReadMailslot`, `DosPeekMailslot`).
    pub fn lanman_code(&self) -> u32 {
        self.win32_code()
    }
}

/// Error from sharing an owner handle with another process or taking one up
/// ([`crate::Mailslot::share`], [`crate::Mailslot::from_shared`] and their relatives).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The descriptor is not a mailslot owner handle (or its contents are not valid).
    #[error("the descriptor is not a mailslot handle: {0}")]
    NotAMailslot(String),
    /// The mailslot was deleted.
    #[error("the mailslot was deleted")]
    Deleted,
    /// A system call failed (out of descriptors or memory, the socket closed).
    #[error("system error while sharing a mailslot handle: {0}")]
    Io(#[from] io::Error),
}

impl ShareError {
    /// The Win32 error number: 6 (`ERROR_INVALID_HANDLE`) for a descriptor that is not a
    /// mailslot or a deleted one, else the system error's.
    pub fn win32_code(&self) -> u32 {
        match self {
            Self::NotAMailslot(_) | Self::Deleted => code::INVALID_HANDLE,
            Self::Io(e) => io_code(e),
        }
    }

    /// The LAN Manager error number (the same numbers).
    pub fn lanman_code(&self) -> u32 {
        self.win32_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_reference() {
        assert_eq!(ReadError::Timeout.win32_code(), 121);
        assert_eq!(ReadError::BufferTooSmall { needed: 5 }.win32_code(), 122);
        assert_eq!(CreateError::AlreadyExists("x".into()).win32_code(), 183);
        assert_eq!(OpenError::NotFound("x".into()).win32_code(), 2);
        assert_eq!(OpenError::AccessDenied("x".into()).win32_code(), 5);
        assert_eq!(CreateError::InvalidName(NameError::Empty).win32_code(), 123);
        assert_eq!(CreateError::InvalidName(NameError::Empty).lanman_code(), 3);
        let owner = OpenError::OwnerNotAllowed {
            name: "x".into(),
            uid: 65534,
        };
        assert_eq!((owner.win32_code(), owner.lanman_code()), (5, 5));
        let create = CreateError::NotAllowed {
            name: "x".into(),
            uid: 65534,
        };
        assert_eq!((create.win32_code(), create.lanman_code()), (5, 5));
        let broken = || PolicyError::Invalid {
            path: "p".into(),
            reason: "r".into(),
        };
        let open = OpenError::Policy(broken());
        assert_eq!((open.win32_code(), open.lanman_code()), (1610, 31));
        let create = CreateError::Policy(broken());
        assert_eq!((create.win32_code(), create.lanman_code()), (1610, 31));
        assert_eq!(WriteError::Timeout.win32_code(), 121);
        assert_eq!(WriteError::OwnerGone.win32_code(), 109);
        assert_eq!(
            WriteError::TooLarge { size: 2, max: 1 }.win32_code(),
            code::INVALID_PARAMETER
        );
    }
}
