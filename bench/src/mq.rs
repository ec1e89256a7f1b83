//! A minimal POSIX message queue wrapper, for the harness-side multi-writer anchor (`mq8`).

use std::ffi::CString;
use std::io;

/// An open POSIX message queue descriptor, closed on drop.
pub(crate) struct Mq {
    fd: libc::mqd_t,
}

fn retry<T: PartialEq + Copy>(bad: T, mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        let r = f();
        if r != bad {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Mq {
    /// Creates a new queue `name` (`/something`) holding `maxmsg` messages of `msgsize` bytes.
    pub(crate) fn create(name: &str, maxmsg: i64, msgsize: i64) -> io::Result<Self> {
        let c = CString::new(name)?;
        // SAFETY: mq_attr is plain data; all-zero is a valid value.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = maxmsg as _;
        attr.mq_msgsize = msgsize as _;
        // SAFETY: `c` is NUL-terminated and `attr` outlives the call; with O_CREAT mq_open takes
        // (mode_t, *mq_attr) as its variadic arguments.
        let fd = unsafe {
            libc::mq_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                0o600 as libc::mode_t,
                &mut attr as *mut libc::mq_attr,
            )
        };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Opens an existing queue for writing.
    pub(crate) fn open_writer(name: &str) -> io::Result<Self> {
        let c = CString::new(name)?;
        // SAFETY: `c` is NUL-terminated; without O_CREAT no variadic arguments are read.
        let fd = unsafe { libc::mq_open(c.as_ptr(), libc::O_WRONLY) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Removes the name (the queue lives on while descriptors are open).
    pub(crate) fn unlink(name: &str) -> io::Result<()> {
        let c = CString::new(name)?;
        // SAFETY: `c` is NUL-terminated.
        if unsafe { libc::mq_unlink(c.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends one message with priority 0, blocking while the queue is full.
    pub(crate) fn send(&self, data: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `data`.
        retry(-1, || unsafe {
            libc::mq_send(self.fd, data.as_ptr().cast(), data.len(), 0)
        })?;
        Ok(())
    }

    /// Receives one message into `buf` (at least the queue's message size), blocking.
    pub(crate) fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut prio = 0u32;
        // SAFETY: the pointer and length describe `buf`; `prio` is writable.
        let n = retry(-1, || unsafe {
            libc::mq_receive(self.fd, buf.as_mut_ptr().cast(), buf.len(), &mut prio)
        })?;
        Ok(n as usize)
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        // SAFETY: `fd` is an open queue descriptor owned by this value.
        unsafe { libc::mq_close(self.fd) };
    }
}
