//! C API for Linux mailslots: `libmailslot.so` / `libmailslot.a` and `include/mailslot.h`.
//!
//! Two families of calls wrap the [`ms`] (`mailslot`) crate:
//!
//! - **LAN Manager** ([`lanman`]): `DosMakeMailslot`, `DosWriteMailslot`, `DosReadMailslot`,
//!   `DosPeekMailslot`, `DosMailslotInfo`, `DosDeleteMailslot`. They return 0 (`NERR_Success`)
//!   or an error number, use `unsigned short` handles and sizes, priorities 0–9 and classes 1/2.
//! - **Win32 style** ([`win32`]): `CreateMailslotA/W`, `MailslotOpenA/W` (the `CreateFile` of a
//!   writer), `MailslotWrite`, `MailslotRead`, `GetMailslotInfo`, `SetMailslotInfo`,
//!   `MailslotClose`, with `BOOL` results and a per-thread `GetLastError`.
//!
//! Where Windows and LAN Manager disagree, each family follows its own system (for example the
//! "next size" of an empty mailslot is `MAILSLOT_NO_MESSAGE` for `GetMailslotInfo` and 0 for
//! `DosMailslotInfo`; a bad name is 123 for `CreateMailslotA` and 3 for `DosMakeMailslot`).
//!
//! # Safety rules at the boundary
//! - No panic crosses into C: every exported body runs under [`std::panic::catch_unwind`]; a
//!   panic becomes `ERROR_GEN_FAILURE` (31).
//! - NULL pointers are checked: where the header says "may be NULL" they are accepted, elsewhere
//!   they give `ERROR_INVALID_PARAMETER` (87). Other invalid pointers cannot be detected.
//! - Handles live in one process-wide table behind a mutex (module `handles`); any thread may use any
//!   handle, and no lock is held while a call blocks.
//!
//! # fork, exec and shared owner handles
//! An owner handle created with `bInheritHandle` is inheritable: its value is the number of a
//! descriptor without close-on-exec, so a child started with `fork` + `exec` (or a plain
//! `fork`) uses the same value, and its first call with it takes the mailslot up (module
//! `handles`). `MailslotSendHandle` / `MailslotReceiveHandle` pass an owner handle over a Unix
//! socket. Every holder may read; closing a handle lets go of that holder only, and
//! `DosDeleteMailslot` deletes the mailslot for all of them.
//!
//! A child must not use the other owner handles it inherits from a plain `fork`: their state
//! lives in the parent. In the child such handles fail with `ERROR_INVALID_HANDLE`; closing one
//! there only forgets it (the parent's mailslot is left alone). Writers may be opened in the
//! child as usual.

pub mod codes;
pub mod lanman;
pub mod win32;

mod handles;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use codes::*;

/// Runs `f`, turning a panic into `on_panic`.
fn guard<T>(on_panic: impl FnOnce() -> T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| on_panic())
}

/// Why a C name could not be used.
#[derive(Debug, Clone, Copy)]
enum NameArg {
    /// The pointer is NULL.
    Null,
    /// Not valid UTF-8 (or UTF-32 for the `W` calls).
    BadText,
}

/// Reads a NUL-terminated UTF-8 name.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn c_name<'a>(p: *const c_char) -> Result<&'a str, NameArg> {
    if p.is_null() {
        return Err(NameArg::Null);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| NameArg::BadText)
}

/// Reads a NUL-terminated `wchar_t` (UTF-32 on Linux) name.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated `wchar_t` string.
unsafe fn w_name(p: *const libc::wchar_t) -> Result<String, NameArg> {
    if p.is_null() {
        return Err(NameArg::Null);
    }
    let mut out = String::new();
    for i in 0.. {
        // SAFETY: the string is NUL-terminated, and we stop at the NUL.
        let c = unsafe { *p.add(i) };
        if c == 0 {
            break;
        }
        out.push(char::from_u32(c as u32).ok_or(NameArg::BadText)?);
        if out.len() > 4096 {
            return Err(NameArg::BadText);
        }
    }
    Ok(out)
}

/// Stores `v` through `p` when `p` is not NULL.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-NULL, valid by the caller's contract.
        unsafe { p.write(v) };
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::ptr;

    use super::win32::*;
    use super::*;

    fn name(tag: &str) -> CString {
        CString::new(format!(
            r"\\.\mailslot\ffi-unit\{tag}\{}",
            std::process::id()
        ))
        .unwrap()
    }

    #[test]
    fn guard_turns_panics_into_values() {
        assert_eq!(guard(|| 31, || -> u32 { panic!("boom") }), 31);
        assert_eq!(guard(|| 31, || 7), 7);
    }

    #[test]
    fn handle_values_are_never_null_or_invalid() {
        assert_eq!(handles::from_ptr(ptr::null_mut()), None);
        assert_eq!(handles::from_ptr(usize::MAX as Handle), None);
        assert_eq!(handles::from_ptr(0xFFFF as Handle), None);
        assert_eq!(handles::from_ptr(1 as Handle), Some(1));
        assert_eq!(handles::from_ptr(0xFFFE as Handle), Some(0xFFFE));
    }

    #[test]
    fn create_read_write_close() {
        let n = name("rw");
        // SAFETY: valid C strings and pointers throughout.
        unsafe {
            let h = CreateMailslotA(n.as_ptr(), 0, 0, ptr::null_mut());
            assert_ne!(h, usize::MAX as Handle);
            let w = MailslotOpenA(n.as_ptr());
            assert_ne!(w, usize::MAX as Handle);
            let mut k = 0;
            assert_eq!(MailslotWrite(w, b"abc".as_ptr().cast(), 3, &mut k), TRUE);
            let mut buf = [0u8; 8];
            assert_eq!(MailslotRead(h, buf.as_mut_ptr().cast(), 2, &mut k), FALSE);
            assert_eq!(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
            assert_eq!(MailslotRead(h, buf.as_mut_ptr().cast(), 8, &mut k), TRUE);
            assert_eq!((k, &buf[..3]), (3, &b"abc"[..]));
            assert_eq!(MailslotRead(h, buf.as_mut_ptr().cast(), 8, &mut k), FALSE);
            assert_eq!(GetLastError(), ERROR_SEM_TIMEOUT);
            assert_eq!(MailslotClose(w), TRUE);
            assert_eq!(MailslotClose(h), TRUE);
            assert_eq!(MailslotClose(h), FALSE);
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        }
    }

    #[test]
    fn security_attributes_has_the_win32_layout() {
        assert_eq!(size_of::<SecurityAttributes>(), 3 * size_of::<usize>());
        assert_eq!(
            std::mem::offset_of!(SecurityAttributes, b_inherit_handle),
            2 * size_of::<usize>()
        );
    }

    #[test]
    fn inheritable_handle_is_a_descriptor_without_cloexec() {
        let n = name("inherit");
        let sa = SecurityAttributes {
            n_length: size_of::<SecurityAttributes>() as Dword,
            lp_security_descriptor: ptr::null_mut(),
            b_inherit_handle: TRUE,
        };
        // SAFETY: valid C strings and pointers throughout.
        unsafe {
            let h = CreateMailslotA(n.as_ptr(), 0, 0, &sa);
            assert_ne!(h, usize::MAX as Handle, "error {}", GetLastError());
            let fd = h as usize as libc::c_int;
            let flags = libc::fcntl(fd, libc::F_GETFD);
            assert!(flags >= 0 && flags & libc::FD_CLOEXEC == 0, "flags {flags}");
            assert_eq!(MailslotClose(h), TRUE);
        }
    }

    #[test]
    fn lanman_peek_and_info() {
        let n = CString::new(format!(r"\mailslot\ffi-unit\lm\{}", std::process::id())).unwrap();
        let mut h = 0;
        // SAFETY: valid C strings and pointers throughout.
        unsafe {
            assert_eq!(lanman::DosMakeMailslot(n.as_ptr(), 64, 0, &mut h), 0);
            assert_eq!(
                lanman::DosWriteMailslot(n.as_ptr(), b"hi".as_ptr().cast(), 2, 3, 2, 0),
                0
            );
            let (mut r, mut ns, mut np) = (0, 0, 0);
            let mut buf = [0u8; 64];
            let b = buf.as_mut_ptr().cast();
            assert_eq!(lanman::DosPeekMailslot(h, b, &mut r, &mut ns, &mut np), 0);
            assert_eq!((r, ns, np), (2, 2, 3));
            assert_eq!(
                lanman::DosReadMailslot(h, b, &mut r, &mut ns, &mut np, 0),
                0
            );
            assert_eq!((r, ns, np), (2, 0, 0));
            let (mut ms_, mut ss, mut c) = (0, 0, 0);
            assert_eq!(
                lanman::DosMailslotInfo(h, &mut ms_, &mut ss, &mut ns, &mut np, &mut c),
                0
            );
            assert_eq!((ms_, ss, ns, c), (64, 0xFFFF, 0, 0));
            assert_eq!(lanman::DosDeleteMailslot(h), 0);
            assert_eq!(lanman::DosDeleteMailslot(h), ERROR_INVALID_HANDLE);
        }
    }
}
