//! Error numbers returned by the LAN Manager calls and set by the Win32 style calls.
//!
//! The values are the Windows / LAN Manager ones; `include/mailslot.h` defines the same names.

use ms::error::code;

/// `NERR_Success` / `ERROR_SUCCESS`: no error.
pub const NERR_SUCCESS: u32 = code::SUCCESS;
/// `ERROR_FILE_NOT_FOUND`: no mailslot of that name.
pub const ERROR_FILE_NOT_FOUND: u32 = code::FILE_NOT_FOUND;
/// `ERROR_PATH_NOT_FOUND`: NULL name (Win32), bad name (LAN Manager).
pub const ERROR_PATH_NOT_FOUND: u32 = code::PATH_NOT_FOUND;
/// `ERROR_ACCESS_DENIED`: the owner's handle cannot write, the access policy refused, or the
/// name policy refused the owner (open) or the caller (create).
pub const ERROR_ACCESS_DENIED: u32 = code::ACCESS_DENIED;
/// `ERROR_INVALID_HANDLE`: not an open handle of this process (or of the right kind).
pub const ERROR_INVALID_HANDLE: u32 = code::INVALID_HANDLE;
/// `ERROR_NOT_ENOUGH_MEMORY`: out of resources, or the mailslot is full.
pub const ERROR_NOT_ENOUGH_MEMORY: u32 = code::NOT_ENOUGH_MEMORY;
/// `ERROR_GEN_FAILURE`: an unexpected failure (also what an internal panic turns into).
pub const ERROR_GEN_FAILURE: u32 = code::GEN_FAILURE;
/// `ERROR_BAD_NETPATH`: a remote name that cannot be reached.
pub const ERROR_BAD_NETPATH: u32 = code::BAD_NETPATH;
/// `ERROR_INVALID_PARAMETER`: a NULL or out-of-range argument, a writer's handle reads.
pub const ERROR_INVALID_PARAMETER: u32 = code::INVALID_PARAMETER;
/// `ERROR_BROKEN_PIPE`: the owner of the mailslot has gone.
pub const ERROR_BROKEN_PIPE: u32 = code::BROKEN_PIPE;
/// `ERROR_SEM_TIMEOUT`: a read (or a first-class write) timed out.
pub const ERROR_SEM_TIMEOUT: u32 = code::SEM_TIMEOUT;
/// `ERROR_INSUFFICIENT_BUFFER`: the buffer is smaller than the next message, which stays.
pub const ERROR_INSUFFICIENT_BUFFER: u32 = code::INSUFFICIENT_BUFFER;
/// `ERROR_INVALID_NAME`: not a mailslot name (Win32).
pub const ERROR_INVALID_NAME: u32 = code::INVALID_NAME;
/// `ERROR_ALREADY_EXISTS`: a mailslot of that name exists.
pub const ERROR_ALREADY_EXISTS: u32 = code::ALREADY_EXISTS;
/// `ERROR_OPERATION_ABORTED`: the handle was closed while this thread was reading from it.
pub const ERROR_OPERATION_ABORTED: u32 = 995;
/// `ERROR_BAD_CONFIGURATION`: the mailslot name policy file cannot be read or parsed (Win32
/// calls; the LAN Manager calls return `ERROR_GEN_FAILURE` for it). A mailslot served by a user
/// the name policy does not allow, and a create by such a user, are `ERROR_ACCESS_DENIED`.
pub const ERROR_BAD_CONFIGURATION: u32 = code::BAD_CONFIGURATION;
