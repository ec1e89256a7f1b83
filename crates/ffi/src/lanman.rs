//! LAN Manager calls: `DosMakeMailslot` and friends.
//!
//! Every call returns 0 (`NERR_Success`) or an error number; none touches `GetLastError`.
//! Handles are `unsigned short` numbers from the shared table (never 0 or 0xFFFF). Output
//! pointers must not be NULL (`ERROR_INVALID_PARAMETER`) and nothing is written on an error
//! other than the documented zeroing of `*returned`.

use std::ffi::{c_char, c_long, c_ushort, c_void};

use ms::{Class, Mailslot, Message, Timeout, WriteOptions};

use crate::codes::*;
use crate::handles::{self, Entry, Object, Owner, ReadFail};
use crate::{c_name, guard, put, NameArg};

/// Largest message size a LAN Manager caller can ask for (sizes are `unsigned short`).
const LM_MAX: usize = 0xFFFF;

/// A LAN Manager timeout: milliseconds, negative (`MAILSLOT_NO_TIMEOUT`) = forever.
// `c_long` is `i64` on 64-bit targets only; the conversion is needed on 32-bit ones.
#[allow(clippy::useless_conversion)]
fn lm_timeout(ms: c_long) -> Timeout {
    Timeout::from_lanman_millis(i64::from(ms))
}

fn panic_code() -> u32 {
    ERROR_GEN_FAILURE
}

/// Looks up an owner handle (writers' handles do not exist in LAN Manager: `ERROR_INVALID_HANDLE`).
fn owner_entry(h: c_ushort) -> Result<std::sync::Arc<Entry>, u32> {
    match handles::get(h) {
        Some(e) if e.owner().is_some() => Ok(e),
        _ => Err(ERROR_INVALID_HANDLE),
    }
}

fn owner(e: &Entry) -> &Owner {
    e.owner().expect("checked by owner_entry")
}

fn clamp16(n: usize) -> c_ushort {
    n.min(LM_MAX) as c_ushort
}

/// (next size, next priority) of the head message, LAN Manager style: 0 and 0 when empty.
fn next_of(slot: &Mailslot) -> (c_ushort, c_ushort) {
    let info = slot.info();
    (
        info.next_size.map_or(0, clamp16),
        info.next_priority.map_or(0, c_ushort::from),
    )
}

/// Creates the mailslot `name` (`\mailslot\x`, or any local form the library accepts) and
/// stores its handle in `*hmailslot`.
///
/// `message_size` is the largest message (0 = 65535, or `mailslot_size` if smaller);
/// `mailslot_size` is the total of queued message bytes allowed (0 = the library default,
/// 1 MiB). Errors: 3 (NULL or bad name), 87 (NULL `hmailslot`, `mailslot_size` smaller than
/// `message_size`), 183 (the name exists), 8 (out of handles or memory).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `hmailslot` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn DosMakeMailslot(
    name: *const c_char,
    message_size: c_ushort,
    mailslot_size: c_ushort,
    hmailslot: *mut c_ushort,
) -> u32 {
    guard(panic_code, || {
        // SAFETY: caller's contract.
        let name = match unsafe { c_name(name) } {
            Ok(n) => n,
            Err(NameArg::Null | NameArg::BadText) => return ERROR_PATH_NOT_FOUND,
        };
        if hmailslot.is_null() {
            return ERROR_INVALID_PARAMETER;
        }
        let quota = usize::from(mailslot_size);
        let max = match (message_size, quota) {
            (0, 0) => LM_MAX,
            (0, q) => q.min(LM_MAX),
            (m, _) => usize::from(m),
        };
        let mut b = Mailslot::builder()
            .max_message_size(max)
            .read_timeout(Timeout::Forever);
        if quota != 0 {
            b = b.quota(quota);
        }
        let slot = match b.create(name) {
            Ok(s) => s,
            Err(e) => return e.lanman_code(),
        };
        let entry = Entry::new(Object::Owner(Owner::new(slot, None)));
        match handles::insert(entry) {
            Some(h) => {
                // SAFETY: checked non-NULL above; writable by contract.
                unsafe { hmailslot.write(h) };
                NERR_SUCCESS
            }
            None => ERROR_NOT_ENOUGH_MEMORY,
        }
    })
}

/// Writes one message of `size` bytes to the mailslot `name` (opens, writes, closes).
///
/// `priority` 0–9 (9 is read first); `mailslot_class` 1 (first class: when the mailslot is
/// full, waits up to `timeout_ms` for room, `MAILSLOT_NO_TIMEOUT` = forever) or 2 (second
/// class: fails at once when full). Errors: 3 (NULL or bad name), 2 (no such mailslot),
/// 87 (NULL `buf` with `size` > 0, priority > 9, class not 1 or 2, message larger than the
/// mailslot's message size), 121 (first class: no room before the timeout), 8 (second class:
/// mailslot full), 109 (the owner went away), 53 (remote name), 5 (access denied).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `buf` is NULL or readable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn DosWriteMailslot(
    name: *const c_char,
    buf: *const c_void,
    size: c_ushort,
    priority: c_ushort,
    mailslot_class: c_ushort,
    timeout_ms: c_long,
) -> u32 {
    guard(panic_code, || {
        // SAFETY: caller's contract.
        let Ok(name) = (unsafe { c_name(name) }) else {
            return ERROR_PATH_NOT_FOUND;
        };
        let Some(class) = Class::from_number(mailslot_class) else {
            return ERROR_INVALID_PARAMETER;
        };
        if priority > u16::from(ms::MAX_PRIORITY) {
            return ERROR_INVALID_PARAMETER;
        }
        let data: &[u8] = if size == 0 {
            &[]
        } else if buf.is_null() {
            return ERROR_INVALID_PARAMETER;
        } else {
            // SAFETY: non-NULL and readable for `size` bytes by contract.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), usize::from(size)) }
        };
        let opts = WriteOptions::new()
            .priority(priority as u8)
            .class(class)
            .timeout(lm_timeout(timeout_ms));
        // The timeout bounds only the wait for room (first class), as in LAN Manager.
        match ms::write_mailslot(name, data, opts) {
            Ok(()) => NERR_SUCCESS,
            Err(e) => e.lanman_code(),
        }
    })
}

/// Copies `m` into `buf` and reports its size.
///
/// # Safety
/// `buf` is writable for the message's size; `returned` is writable.
unsafe fn deliver(m: &Message, buf: *mut c_void, returned: *mut c_ushort) {
    let n = m.data.len().min(LM_MAX);
    // SAFETY: the caller's buffer holds at least the mailslot's message size (LAN Manager
    // contract), and no message is larger than that.
    unsafe {
        std::ptr::copy_nonoverlapping(m.data.as_ptr(), buf.cast::<u8>(), n);
        returned.write(n as c_ushort);
    }
}

/// The start of [`DosReadMailslot`] and [`DosPeekMailslot`], in their order of checks:
/// `*returned` = 0, the owner's handle (6), then a NULL pointer (87).
///
/// # Safety
/// `returned` is NULL or writable.
unsafe fn read_start(
    h: c_ushort,
    buf: *mut c_void,
    returned: *mut c_ushort,
    next_size: *mut c_ushort,
    next_priority: *mut c_ushort,
) -> Result<std::sync::Arc<Entry>, u32> {
    // SAFETY: NULL or writable by the caller's contract.
    unsafe { put(returned, 0) };
    let entry = owner_entry(h)?;
    if buf.is_null() || returned.is_null() || next_size.is_null() || next_priority.is_null() {
        return Err(ERROR_INVALID_PARAMETER);
    }
    Ok(entry)
}

/// Writes the head message's size and priority ([`next_of`]) to `next_size` and `next_priority`.
///
/// # Safety
/// Both pointers are non-NULL and writable.
unsafe fn write_next(slot: &Mailslot, next_size: *mut c_ushort, next_priority: *mut c_ushort) {
    let (ns, np) = next_of(slot);
    // SAFETY: non-NULL and writable by the caller's contract.
    unsafe {
        next_size.write(ns);
        next_priority.write(np);
    }
}

/// Reads and removes the next message (highest priority first, FIFO within a priority).
///
/// `buf` must hold the mailslot's message size. Waits up to `timeout_ms` (0 = do not wait,
/// `MAILSLOT_NO_TIMEOUT` = forever). On success `*returned` is the message's size and
/// `*next_size` / `*next_priority` describe the message that is now at the head (0 and 0 when
/// the mailslot is empty). Errors: 6 (not an owner handle), 87 (a NULL pointer),
/// 121 (no message before the timeout; `*returned` = 0).
///
/// # Safety
/// Pointers are NULL or valid; `buf` holds the mailslot's message size.
#[no_mangle]
pub unsafe extern "C" fn DosReadMailslot(
    hmailslot: c_ushort,
    buf: *mut c_void,
    returned: *mut c_ushort,
    next_size: *mut c_ushort,
    next_priority: *mut c_ushort,
    timeout_ms: c_long,
) -> u32 {
    guard(panic_code, || {
        // SAFETY: `returned` is NULL or writable by contract.
        let entry = match unsafe { read_start(hmailslot, buf, returned, next_size, next_priority) }
        {
            Ok(e) => e,
            Err(c) => return c,
        };
        let slot = &owner(&entry).slot;
        let timeout = lm_timeout(timeout_ms);
        match handles::sliced_read(&entry, timeout, |t| slot.read_message_timeout(t)) {
            Ok(m) => {
                // SAFETY: checked non-NULL; valid by contract.
                unsafe {
                    deliver(&m, buf, returned);
                    write_next(slot, next_size, next_priority);
                }
                NERR_SUCCESS
            }
            Err(ReadFail::Closed) => ERROR_INVALID_HANDLE,
            Err(ReadFail::Lib(e)) => e.lanman_code(),
        }
    })
}

/// Copies the next message without removing it; never waits.
///
/// `buf` must hold the mailslot's message size. When the mailslot is empty it succeeds with
/// `*returned` = 0 and `*next_size` = 0. Otherwise `*returned` is the message's size and, as
/// the message stays queued, `*next_size` / `*next_priority` describe that same head message.
/// Errors: 6 (not an owner handle), 87 (a NULL pointer).
///
/// # Safety
/// Pointers are NULL or valid; `buf` holds the mailslot's message size.
#[no_mangle]
pub unsafe extern "C" fn DosPeekMailslot(
    hmailslot: c_ushort,
    buf: *mut c_void,
    returned: *mut c_ushort,
    next_size: *mut c_ushort,
    next_priority: *mut c_ushort,
) -> u32 {
    guard(panic_code, || {
        // SAFETY: `returned` is NULL or writable by contract.
        let entry = match unsafe { read_start(hmailslot, buf, returned, next_size, next_priority) }
        {
            Ok(e) => e,
            Err(c) => return c,
        };
        let slot = &owner(&entry).slot;
        match slot.peek_message() {
            Ok(m) => {
                if let Some(m) = &m {
                    // SAFETY: checked non-NULL; valid by contract.
                    unsafe { deliver(m, buf, returned) };
                }
                // SAFETY: checked non-NULL; valid by contract.
                unsafe { write_next(slot, next_size, next_priority) };
                NERR_SUCCESS
            }
            Err(e) => e.lanman_code(),
        }
    })
}

/// Reports the mailslot's limits and queue state.
///
/// `*message_size` and `*mailslot_size` are the limits (clamped to 65535: the default quota of
/// 1 MiB reads back as 65535), `*next_size` / `*next_priority` the head message (0 and 0 when
/// empty: LAN Manager's convention), `*message_count` the number of queued messages (clamped to
/// 65535). Errors: 6 (not an owner handle), 87 (a NULL pointer).
///
/// # Safety
/// Pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn DosMailslotInfo(
    hmailslot: c_ushort,
    message_size: *mut c_ushort,
    mailslot_size: *mut c_ushort,
    next_size: *mut c_ushort,
    next_priority: *mut c_ushort,
    message_count: *mut c_ushort,
) -> u32 {
    guard(panic_code, || {
        let entry = match owner_entry(hmailslot) {
            Ok(e) => e,
            Err(c) => return c,
        };
        if message_size.is_null()
            || mailslot_size.is_null()
            || next_size.is_null()
            || next_priority.is_null()
            || message_count.is_null()
        {
            return ERROR_INVALID_PARAMETER;
        }
        let info = owner(&entry).slot.info();
        // SAFETY: checked non-NULL; writable by contract.
        unsafe {
            message_size.write(clamp16(info.max_message_size));
            mailslot_size.write(clamp16(info.quota));
            next_size.write(info.next_size.map_or(0, clamp16));
            next_priority.write(info.next_priority.map_or(0, c_ushort::from));
            message_count.write(clamp16(info.count));
        }
        NERR_SUCCESS
    })
}

/// Deletes the mailslot for every holder of its handle: discards its queue, frees its name,
/// closes this handle.
///
/// Holders in other processes (children that inherited the handle, processes it was passed to)
/// get 6 from their reads, writers 109. A read blocked on the handle in another thread returns
/// `ERROR_INVALID_HANDLE` within about 100 ms. Errors: 6 (not an open owner handle).
#[no_mangle]
pub extern "C" fn DosDeleteMailslot(hmailslot: c_ushort) -> u32 {
    guard(panic_code, || {
        match handles::remove_if(hmailslot, |e| matches!(e.obj, Object::Owner(_))) {
            Some(e) => {
                let usable = match e.owner() {
                    Some(o) => {
                        o.delete_on_drop();
                        true
                    }
                    None => false,
                };
                handles::dispose(e);
                if usable {
                    NERR_SUCCESS
                } else {
                    // Inherited across fork: forgotten here, the parent's mailslot lives on.
                    ERROR_INVALID_HANDLE
                }
            }
            None => ERROR_INVALID_HANDLE,
        }
    })
}
