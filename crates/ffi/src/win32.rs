//! Win32 style calls: `CreateMailslotA`, `MailslotOpenA`, `MailslotWrite`, `MailslotRead`,
//! `GetMailslotInfo`, `SetMailslotInfo`, `MailslotClose`, `GetLastError`, and the passing of
//! owner handles between processes (`MailslotSendHandle`, `MailslotReceiveHandle`).
//!
//! Calls return a `BOOL` (or a `HANDLE`, `INVALID_HANDLE_VALUE` on failure) and set this thread's
//! last error on failure only, as Windows does. Error numbers are the Windows ones
//! (semantics.md A.1–A.7).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use ms::{Mailslot, MailslotWriter, ShareError, Timeout, MAX_MESSAGE_SIZE};

use crate::codes::*;
use crate::handles::{self, set_last_error, Entry, Object, Owner, ReadFail};
use crate::{c_name, guard, put, w_name, NameArg};

/// `DWORD`.
pub type Dword = u32;
/// `BOOL`.
pub type Bool = c_int;
/// `HANDLE`.
pub type Handle = *mut c_void;

/// `SECURITY_ATTRIBUTES`: only `b_inherit_handle` is used.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SecurityAttributes {
    /// `nLength`: the structure's size (not checked).
    pub n_length: Dword,
    /// `lpSecurityDescriptor`: ignored (only the owner's user and root may write).
    pub lp_security_descriptor: *mut c_void,
    /// `bInheritHandle`: non-zero makes the owner handle inheritable by child processes.
    pub b_inherit_handle: Bool,
}

/// `TRUE`.
pub const TRUE: Bool = 1;
/// `FALSE`.
pub const FALSE: Bool = 0;
/// `MAILSLOT_WAIT_FOREVER`: a read timeout that never expires.
pub const MAILSLOT_WAIT_FOREVER: Dword = 0xFFFF_FFFF;
/// `MAILSLOT_NO_MESSAGE`: `GetMailslotInfo`'s next size when the mailslot is empty.
pub const MAILSLOT_NO_MESSAGE: Dword = 0xFFFF_FFFF;

/// `INVALID_HANDLE_VALUE`.
fn invalid_handle() -> Handle {
    usize::MAX as Handle
}

/// Sets the last error and returns `FALSE`.
fn fail(code: u32) -> Bool {
    set_last_error(code);
    FALSE
}

fn fail_handle(code: u32) -> Handle {
    set_last_error(code);
    invalid_handle()
}

fn panic_bool() -> Bool {
    fail(ERROR_GEN_FAILURE)
}

fn panic_handle() -> Handle {
    fail_handle(ERROR_GEN_FAILURE)
}

fn lookup(h: Handle) -> Result<std::sync::Arc<Entry>, u32> {
    let e = handles::from_ptr(h)
        .and_then(handles::get)
        .ok_or(ERROR_INVALID_HANDLE)?;
    match e.obj {
        // An owner handle inherited across fork is dead in the child.
        Object::Owner(_) if e.owner().is_none() => Err(ERROR_INVALID_HANDLE),
        _ => Ok(e),
    }
}

/// Runs `body` with the open handle `h` and its object of the kind `pick` selects: fails with
/// the handle's error (6) when `h` is not open, or with `wrong_kind` for the other kind.
fn with_kind<T>(
    h: Handle,
    pick: fn(&Object) -> Option<&T>,
    wrong_kind: u32,
    body: impl FnOnce(&Entry, &T) -> Bool,
) -> Bool {
    let entry = match lookup(h) {
        Ok(e) => e,
        Err(c) => return fail(c),
    };
    match pick(&entry.obj) {
        Some(obj) => body(&entry, obj),
        None => fail(wrong_kind),
    }
}

/// [`with_kind`] for a read or a write of `len` bytes at `buf` that reports its byte count in
/// `*count`: `*count` = 0 first; after the handle's checks a NULL `count`, or a NULL `buf` with
/// `len` > 0, fails with 87.
///
/// # Safety
/// `count` is NULL or writable.
unsafe fn with_io<T>(
    h: Handle,
    buf_is_null: bool,
    len: Dword,
    count: *mut Dword,
    pick: fn(&Object) -> Option<&T>,
    wrong_kind: u32,
    body: impl FnOnce(&Entry, &T) -> Bool,
) -> Bool {
    // SAFETY: NULL or writable by the caller's contract.
    unsafe { put(count, 0) };
    with_kind(h, pick, wrong_kind, |entry, obj| {
        if count.is_null() || (buf_is_null && len > 0) {
            return fail(ERROR_INVALID_PARAMETER);
        }
        body(entry, obj)
    })
}

/// The writer of a writer's handle.
fn writer(obj: &Object) -> Option<&MailslotWriter> {
    match obj {
        Object::Writer(w) => Some(w),
        Object::Owner(_) => None,
    }
}

/// The owner part of an owner's handle.
fn owner(obj: &Object) -> Option<&Owner> {
    match obj {
        Object::Owner(o) => Some(o),
        Object::Writer(_) => None,
    }
}

fn create(
    name: Result<&str, NameArg>,
    max_message_size: Dword,
    read_timeout: Dword,
    inherit: bool,
) -> Handle {
    let name = match name {
        Ok(n) => n,
        Err(NameArg::Null) => return fail_handle(ERROR_PATH_NOT_FOUND),
        Err(NameArg::BadText) => return fail_handle(ERROR_INVALID_NAME),
    };
    // The library caps messages at 64 KiB; larger requests (and -1) mean "no limit" there, but
    // GetMailslotInfo reports the value as given, as Windows does.
    let lib_max = if max_message_size as usize > MAX_MESSAGE_SIZE {
        0
    } else {
        max_message_size as usize
    };
    let slot = match Mailslot::builder()
        .max_message_size(lib_max)
        .read_timeout(Timeout::from_win32_millis(read_timeout))
        .create(name)
    {
        Ok(s) => s,
        Err(e) => return fail_handle(e.win32_code()),
    };
    let owner = Owner::new(slot, Some(max_message_size));
    if inherit {
        let fd = match owner.slot.inheritable() {
            Ok(fd) => fd,
            Err(e) => return fail_handle(share_code(&e)),
        };
        return match handles::insert_inheritable(owner, fd) {
            Ok(h) => usize::from(h) as Handle,
            Err(code) => fail_handle(code),
        };
    }
    match handles::insert(Entry::new(Object::Owner(owner))) {
        Some(h) => usize::from(h) as Handle,
        None => fail_handle(ERROR_NOT_ENOUGH_MEMORY),
    }
}

/// Whether `sa` asks for an inheritable handle.
///
/// # Safety
/// `sa` is NULL or points to a `SECURITY_ATTRIBUTES`.
unsafe fn inherit_of(sa: *const SecurityAttributes) -> bool {
    // SAFETY: NULL checked; valid by the caller's contract.
    !sa.is_null() && unsafe { (*sa).b_inherit_handle } != FALSE
}

/// The error number for a failed share, pass or take-up: the library's, except that a socket
/// whose peer has gone is 109.
fn share_code(e: &ShareError) -> u32 {
    match e {
        ShareError::Io(io)
            if matches!(
                io.raw_os_error(),
                Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)
            ) =>
        {
            ERROR_BROKEN_PIPE
        }
        other => other.win32_code(),
    }
}

/// Creates the mailslot `name` (`\\.\mailslot\path`) and returns its owner (read-only) handle.
///
/// `max_message_size` 0 means any size (up to 64 KiB here; larger values, including -1, are
/// accepted and read back unchanged by `GetMailslotInfo`). `read_timeout` in ms applies to every
/// `MailslotRead` (0 = do not wait, `MAILSLOT_WAIT_FOREVER`). `security_attributes` may be NULL
/// (not inheritable); its `bInheritHandle` makes the handle inheritable: its value is then the
/// number of a descriptor without close-on-exec, and a child started with `fork` + `exec` (or a
/// plain `fork`) uses the same value. The security descriptor is ignored: only the owner's user
/// and root may write. Errors (`INVALID_HANDLE_VALUE`): 3 (NULL name), 123 (not a local
/// mailslot name), 183 (the name exists), 8 (out of handles or descriptors).
///
/// # Safety
/// `name` is NULL or a NUL-terminated UTF-8 string; `security_attributes` is NULL or points to
/// a `SECURITY_ATTRIBUTES`.
#[no_mangle]
pub unsafe extern "C" fn CreateMailslotA(
    name: *const c_char,
    max_message_size: Dword,
    read_timeout: Dword,
    security_attributes: *const SecurityAttributes,
) -> Handle {
    guard(panic_handle, || {
        // SAFETY: caller's contract.
        let (name, inherit) = unsafe { (c_name(name), inherit_of(security_attributes)) };
        create(name, max_message_size, read_timeout, inherit)
    })
}

/// [`CreateMailslotA`] with a `wchar_t` (UTF-32) name.
///
/// # Safety
/// `name` is NULL or a NUL-terminated `wchar_t` string; `security_attributes` is NULL or points
/// to a `SECURITY_ATTRIBUTES`.
#[no_mangle]
pub unsafe extern "C" fn CreateMailslotW(
    name: *const libc::wchar_t,
    max_message_size: Dword,
    read_timeout: Dword,
    security_attributes: *const SecurityAttributes,
) -> Handle {
    guard(panic_handle, || {
        // SAFETY: caller's contract.
        let (name, inherit) = unsafe { (w_name(name), inherit_of(security_attributes)) };
        create(
            name.as_deref().map_err(|e| *e),
            max_message_size,
            read_timeout,
            inherit,
        )
    })
}

fn open(name: Result<&str, NameArg>) -> Handle {
    let name = match name {
        Ok(n) => n,
        Err(NameArg::Null) => return fail_handle(ERROR_PATH_NOT_FOUND),
        Err(NameArg::BadText) => return fail_handle(ERROR_INVALID_NAME),
    };
    let w = match MailslotWriter::open(name) {
        Ok(w) => w,
        Err(e) => return fail_handle(e.win32_code()),
    };
    match handles::insert(Entry::new(Object::Writer(w))) {
        Some(h) => usize::from(h) as Handle,
        None => fail_handle(ERROR_NOT_ENOUGH_MEMORY),
    }
}

/// Opens the existing mailslot `name` for writing, like
/// `CreateFile(name, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL)`.
///
/// Errors (`INVALID_HANDLE_VALUE`): 3 (NULL name), 2 (no such mailslot), 123 (not a mailslot
/// name), 5 (refused by the mailslot's access policy), 53 (remote name).
///
/// # Safety
/// `name` is NULL or a NUL-terminated UTF-8 string.
#[no_mangle]
pub unsafe extern "C" fn MailslotOpenA(name: *const c_char) -> Handle {
    // SAFETY: caller's contract.
    guard(panic_handle, || open(unsafe { c_name(name) }))
}

/// [`MailslotOpenA`] with a `wchar_t` (UTF-32) name.
///
/// # Safety
/// `name` is NULL or a NUL-terminated `wchar_t` string.
#[no_mangle]
pub unsafe extern "C" fn MailslotOpenW(name: *const libc::wchar_t) -> Handle {
    guard(panic_handle, || {
        // SAFETY: caller's contract.
        let name = unsafe { w_name(name) };
        open(name.as_deref().map_err(|e| *e))
    })
}

/// Writes one message of `len` bytes (possibly 0) through a writer's handle, like `WriteFile`.
///
/// Never waits for room. On success `*written` = `len`. Errors (`FALSE`, `*written` = 0):
/// 6 (bad handle), 5 (an owner's handle), 87 (NULL `written`, NULL `buf` with `len` > 0, message
/// larger than the maximum), 8 (mailslot full), 109 (the owner closed the mailslot).
///
/// # Safety
/// `buf` is NULL or readable for `len` bytes; `written` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn MailslotWrite(
    h: Handle,
    buf: *const c_void,
    len: Dword,
    written: *mut Dword,
) -> Bool {
    guard(panic_bool, || {
        let write = |_: &Entry, w: &MailslotWriter| {
            let data: &[u8] = if len == 0 {
                &[]
            } else {
                // SAFETY: non-NULL and readable for `len` bytes by contract.
                unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len as usize) }
            };
            match w.write(data) {
                Ok(()) => {
                    // SAFETY: checked non-NULL.
                    unsafe { written.write(len) };
                    TRUE
                }
                Err(e) => fail(e.win32_code()),
            }
        };
        // SAFETY: `written` is NULL or writable by contract.
        unsafe {
            with_io(
                h,
                buf.is_null(),
                len,
                written,
                writer,
                ERROR_ACCESS_DENIED,
                write,
            )
        }
    })
}

thread_local! {
    /// Per-thread bounce buffer for reads (no message is larger than 64 KiB).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads and removes the next message through the owner's handle, like `ReadFile`.
///
/// Waits up to the mailslot's read timeout. On success `*read` is the message's size (0 for a
/// zero-length message). Errors (`FALSE`, `*read` = 0): 6 (bad handle), 87 (a writer's handle,
/// NULL `read`, NULL `buf` with `len` > 0), 121 (no message before the timeout, including
/// timeout 0), 122 (`len` smaller than the next message, which stays queued), 995 (the handle
/// was closed by another thread during the wait).
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `read` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn MailslotRead(
    h: Handle,
    buf: *mut c_void,
    len: Dword,
    read: *mut Dword,
) -> Bool {
    guard(panic_bool, || {
        let read_into = |entry: &Entry, o: &Owner| {
            let cap = (len as usize).min(MAX_MESSAGE_SIZE);
            let timeout = o.slot.info().read_timeout;
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < cap {
                    s.resize(cap, 0);
                }
                let r = handles::sliced_read(entry, timeout, |t| {
                    o.slot.read_timeout_with(&mut s[..cap], t)
                });
                match r {
                    Ok(info) => {
                        // SAFETY: `info.len` <= `cap` <= `len`; `buf` is writable for `len` bytes
                        // (non-NULL whenever `len` > 0); `read` checked non-NULL.
                        unsafe {
                            if info.len > 0 {
                                std::ptr::copy_nonoverlapping(
                                    s.as_ptr(),
                                    buf.cast::<u8>(),
                                    info.len,
                                );
                            }
                            read.write(info.len as Dword);
                        }
                        TRUE
                    }
                    Err(ReadFail::Closed) => fail(ERROR_OPERATION_ABORTED),
                    Err(ReadFail::Lib(e)) => fail(e.win32_code()),
                }
            })
        };
        // SAFETY: `read` is NULL or writable by contract.
        unsafe {
            with_io(
                h,
                buf.is_null(),
                len,
                read,
                owner,
                ERROR_INVALID_PARAMETER,
                read_into,
            )
        }
    })
}

/// Reports an owner handle's state; any pointer may be NULL.
///
/// `*max_message_size` is the value given to `CreateMailslot` (for a `DosMakeMailslot` handle,
/// the mailslot's message size), `*next_size` the head message's size or `MAILSLOT_NO_MESSAGE`
/// when empty, `*message_count` the number of queued messages, `*read_timeout` in ms
/// (`MAILSLOT_WAIT_FOREVER` for forever). Errors (`FALSE`): 6 (bad handle), 87 (a writer's
/// handle, as on Windows before 8: a writer cannot see the queue here).
///
/// # Safety
/// Each pointer is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn GetMailslotInfo(
    h: Handle,
    max_message_size: *mut Dword,
    next_size: *mut Dword,
    message_count: *mut Dword,
    read_timeout: *mut Dword,
) -> Bool {
    guard(panic_bool, || {
        with_kind(h, owner, ERROR_INVALID_PARAMETER, |_, o| {
            let info = o.slot.info();
            let max = o
                .win32_max
                .unwrap_or_else(|| info.max_message_size.min(u32::MAX as usize) as u32);
            // SAFETY: each pointer NULL or writable by contract.
            unsafe {
                put(max_message_size, max);
                put(
                    next_size,
                    info.next_size.map_or(MAILSLOT_NO_MESSAGE, |n| n as Dword),
                );
                put(message_count, info.count.min(u32::MAX as usize) as Dword);
                put(read_timeout, info.read_timeout.as_win32_millis());
            }
            TRUE
        })
    })
}

/// Changes an owner handle's read timeout (ms; `MAILSLOT_WAIT_FOREVER` = forever).
///
/// Errors (`FALSE`): 6 (bad handle, or a writer's handle, as in Wine).
#[no_mangle]
pub extern "C" fn SetMailslotInfo(h: Handle, read_timeout: Dword) -> Bool {
    guard(panic_bool, || {
        with_kind(h, owner, ERROR_INVALID_HANDLE, |_, o| {
            o.slot
                .set_read_timeout(Timeout::from_win32_millis(read_timeout));
            TRUE
        })
    })
}

/// Closes a handle, like `CloseHandle`. Closing the last owner handle of a mailslot deletes it
/// (queued messages are lost, writers get 109, the name is free again); while other processes
/// hold it (inherited or passed handles) it lives on with its messages.
///
/// A read blocked on the handle in another thread fails with 995 within about 100 ms. Errors
/// (`FALSE`): 6 (not an open handle).
#[no_mangle]
pub extern "C" fn MailslotClose(h: Handle) -> Bool {
    guard(panic_bool, || {
        let Some(n) = handles::from_ptr(h) else {
            return fail(ERROR_INVALID_HANDLE);
        };
        match handles::remove_if(n, |_| true) {
            Some(e) => {
                handles::dispose(e);
                TRUE
            }
            None => fail(ERROR_INVALID_HANDLE),
        }
    })
}

/// A file descriptor that polls readable (`POLLIN`) when a message may be ready on an owner
/// handle, for `poll`/`epoll` loops: wait on it, then `MailslotRead` with a zero timeout (treat
/// 121 as "wait again"). Owned by the handle: do not close it; it is valid until the handle is
/// closed. Returns -1 with the last error 6 (bad handle) or 87 (a writer's handle).
#[no_mangle]
pub extern "C" fn MailslotGetPollFd(h: Handle) -> c_int {
    guard(
        || {
            set_last_error(ERROR_GEN_FAILURE);
            -1
        },
        || {
            let entry = match lookup(h) {
                Ok(e) => e,
                Err(c) => {
                    set_last_error(c);
                    return -1;
                }
            };
            match &entry.obj {
                Object::Owner(o) => o.slot.as_raw_fd(),
                Object::Writer(_) => {
                    set_last_error(ERROR_INVALID_PARAMETER);
                    -1
                }
            }
        },
    )
}

/// Passes the owner handle `h` to the process at the other end of the Unix socket
/// `unix_socket` (`SCM_RIGHTS`), like `DuplicateHandle` into that process, which takes it up
/// with [`MailslotReceiveHandle`]. Both then hold the mailslot: either may read (each message
/// is read once), and it lives until the last holder closes it. Blocks while the socket is full.
///
/// Errors (`FALSE`): 6 (bad handle, a writer's handle, or the mailslot was deleted), 87
/// (`unix_socket` is not an open socket), 109 (the peer closed the socket), 8 (out of
/// resources), 31 (other system errors).
#[no_mangle]
pub extern "C" fn MailslotSendHandle(h: Handle, unix_socket: c_int) -> Bool {
    guard(panic_bool, || {
        with_kind(h, owner, ERROR_INVALID_HANDLE, |_, o| {
            let Some(sock) = borrow_socket(unix_socket) else {
                return fail(ERROR_INVALID_PARAMETER);
            };
            match o.slot.send_handle(&sock) {
                Ok(()) => TRUE,
                Err(e) => fail(share_code(&e)),
            }
        })
    })
}

/// Receives an owner handle sent with [`MailslotSendHandle`] on the Unix socket `unix_socket`
/// (blocking until one arrives) and returns a new handle for it in this process (not
/// inheritable; `GetMailslotInfo` reports the mailslot's own message size).
///
/// Errors (`INVALID_HANDLE_VALUE`): 6 (what arrived is not a mailslot handle, nothing arrived
/// because the peer closed the socket, or the mailslot was deleted), 87 (`unix_socket` is not an
/// open socket), 8 (out of handles or descriptors), 31 (other system errors).
#[no_mangle]
pub extern "C" fn MailslotReceiveHandle(unix_socket: c_int) -> Handle {
    guard(panic_handle, || {
        let Some(sock) = borrow_socket(unix_socket) else {
            return fail_handle(ERROR_INVALID_PARAMETER);
        };
        let slot = match Mailslot::receive_handle(&sock) {
            Ok(s) => s,
            Err(e) => return fail_handle(share_code(&e)),
        };
        match handles::insert(Entry::new(Object::Owner(Owner::new(slot, None)))) {
            Some(h) => usize::from(h) as Handle,
            None => fail_handle(ERROR_NOT_ENOUGH_MEMORY),
        }
    })
}

/// The caller's socket `fd` as a `UnixStream` that is never closed here; `None` when `fd` is
/// not an open socket.
fn borrow_socket(fd: c_int) -> Option<ManuallyDrop<UnixStream>> {
    if fd < 0 {
        return None;
    }
    // SAFETY: stat is plain old data; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable; fstat fails cleanly on a descriptor that is not open.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: `fd` is an open socket owned by the caller; ManuallyDrop keeps it open.
    Some(ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) }))
}

/// This thread's last error (set by the Win32 style calls when they fail).
#[no_mangle]
pub extern "C" fn GetLastError() -> Dword {
    handles::last_error()
}

/// Sets this thread's last error.
#[no_mangle]
pub extern "C" fn SetLastError(code: Dword) {
    set_last_error(code);
}
