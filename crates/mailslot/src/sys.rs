//! Thin, checked wrappers over the Linux system calls the transport needs. Every `unsafe` block of
//! the crate lives here, each with the reason it is sound.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries a call while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful system call that creates a descriptor, so it
    // is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A `sockaddr_un` for an abstract address (leading NUL, no trailing NUL).
fn abstract_addr(name: &[u8]) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "abstract socket name too long",
        ));
    }
    for (i, b) in name.iter().enumerate() {
        addr.sun_path[i + 1] = *b as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + 1 + name.len();
    Ok((addr, len as libc::socklen_t))
}

/// A new `SOCK_SEQPACKET` Unix socket (close-on-exec).
pub(crate) fn seqpacket(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain system call with constant arguments.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, ty, 0) })?;
    Ok(owned(fd))
}

/// Binds `fd` to the abstract address `name`.
pub(crate) fn bind_abstract(fd: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let (addr, len) = abstract_addr(name)?;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), ptr::addr_of!(addr).cast(), len) })?;
    Ok(())
}

/// Connects `fd` to the abstract address `name`.
pub(crate) fn connect_abstract(fd: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let (addr, len) = abstract_addr(name)?;
    retry(|| {
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        cvt(unsafe { libc::connect(fd.as_raw_fd(), ptr::addr_of!(addr).cast(), len) })
    })?;
    Ok(())
}

/// `SO_SNDTIMEO`: how long a blocking `connect` (or send) on a Unix socket may wait; `None`
/// waits forever.
pub(crate) fn set_send_timeout(fd: &OwnedFd, timeout: Option<Duration>) -> io::Result<()> {
    let tv = timeout.map_or(
        libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        |d| {
            // A zero timeval means "forever" to the kernel: wait at least a microsecond.
            let d = d.max(Duration::from_micros(1));
            libc::timeval {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_usec: libc::suseconds_t::from(d.subsec_micros()),
            }
        },
    );
    // SAFETY: `tv` is a valid timeval of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            ptr::addr_of!(tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `listen(2)`.
pub(crate) fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we own.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(())
}

/// Accepts one connection without blocking; `Ok(None)` when none is pending.
pub(crate) fn accept(fd: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let r = retry(|| {
        // SAFETY: NULL address pointers are allowed by accept4.
        cvt(unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                ptr::null_mut(),
                ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        })
    });
    match r {
        Ok(fd) => Ok(Some(owned(fd))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Kernel-verified credentials of the peer of a connected Unix socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerCred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `SO_PEERCRED`.
pub(crate) fn peer_cred(fd: &impl AsRawFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a writable ucred and `len` holds its size.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            ptr::addr_of_mut!(cred).cast(),
            &mut len,
        )
    })?;
    Ok(PeerCred {
        pid: cred.pid as u32,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// `SO_PEERGROUPS`: the peer's supplementary groups.
pub(crate) fn peer_groups(fd: &impl AsRawFd) -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: `groups` has `len` writable bytes.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r == 0 {
            groups.truncate(len as usize / 4);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && groups.len() < 65536 {
            groups.resize((len as usize / 4).max(groups.len() * 2), 0);
            continue;
        }
        return Err(e);
    }
}

/// Most descriptors [`send_parts`] passes at once (and [`recv_msg`] keeps).
pub(crate) const MAX_PASS_FDS: usize = 128;

/// Sends `parts` as one message (gathered), with `MSG_NOSIGNAL`, passing the descriptors `pass`
/// (at most [`MAX_PASS_FDS`]) with `SCM_RIGHTS`.
pub(crate) fn send_parts(
    fd: RawFd,
    parts: &[&[u8]],
    pass: &[RawFd],
    dontwait: bool,
) -> io::Result<usize> {
    const MAX_PARTS: usize = 4;
    if parts.len() > MAX_PARTS || pass.len() > MAX_PASS_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many parts or descriptors",
        ));
    }
    let mut iov = [libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }; MAX_PARTS];
    for (v, p) in iov.iter_mut().zip(parts) {
        v.iov_base = p.as_ptr() as *mut libc::c_void;
        v.iov_len = p.len();
    }
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = parts.len();
    // Room for the SCM_RIGHTS descriptors, aligned for cmsghdr (allocated only when passing).
    let mut cbuf: Vec<u64> = Vec::new();
    if !pass.is_empty() {
        let bytes = size_of_val(pass) as u32;
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
        cbuf.resize(space.div_ceil(8), 0);
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points to `space` zeroed, aligned bytes, enough for one cmsghdr
        // with `pass`; CMSG_FIRSTHDR therefore returns a valid pointer and CMSG_DATA has room
        // for the descriptors.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            let data = libc::CMSG_DATA(c).cast::<RawFd>();
            for (i, pfd) in pass.iter().enumerate() {
                ptr::write_unaligned(data.add(i), *pfd);
            }
        }
    }
    let mut flags = libc::MSG_NOSIGNAL;
    if dontwait {
        flags |= libc::MSG_DONTWAIT;
    }
    retry(|| {
        // SAFETY: `msg` points to live iovecs and control data for the duration of the call.
        cvt_size(unsafe { libc::sendmsg(fd, &msg, flags) })
    })
}

/// Sends `parts` as one message, gathered (any number of parts, up to `IOV_MAX`), with
/// `MSG_NOSIGNAL | MSG_DONTWAIT`.
pub(crate) fn send_gather(fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    let iov: Vec<libc::iovec> = parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len();
    retry(|| {
        // SAFETY: `msg` points to live iovecs (over live slices) for the duration of the call.
        cvt_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) })
    })
}

/// Result of [`recv_msg`].
pub(crate) struct Received {
    /// Bytes of the message (possibly more than the buffer when `truncated`).
    pub len: usize,
    /// The message did not fit in the buffer.
    pub truncated: bool,
    /// Descriptors passed with `SCM_RIGHTS` (at most [`MAX_PASS_FDS`] are kept).
    pub fds: Vec<OwnedFd>,
}

/// Receives one message without blocking (`Ok(None)` when none is queued; `len == 0` at EOF).
pub(crate) fn recv_msg(fd: RawFd, buf: &mut [u8], want_fd: bool) -> io::Result<Option<Received>> {
    recv_msg_flags(fd, buf, want_fd, 0)
}

/// [`recv_msg`] that leaves the message queued (`MSG_PEEK`; passed descriptors are duplicated
/// into this process all the same).
pub(crate) fn peek_msg(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<Received>> {
    recv_msg_flags(fd, buf, true, libc::MSG_PEEK)
}

fn recv_msg_flags(
    fd: RawFd,
    buf: &mut [u8],
    want_fd: bool,
    extra: libc::c_int,
) -> io::Result<Option<Received>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // Room for MAX_PASS_FDS descriptors, allocated only when they are wanted.
    let mut cbuf: Vec<u64> = Vec::new();
    if want_fd {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space =
            unsafe { libc::CMSG_SPACE((MAX_PASS_FDS * size_of::<RawFd>()) as u32) } as usize;
        cbuf.resize(space.div_ceil(8), 0);
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
    }
    let r = retry(|| {
        // SAFETY: `msg` points to a live buffer and control area for the duration of the call.
        cvt_size(unsafe {
            libc::recvmsg(
                fd,
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC | libc::MSG_CMSG_CLOEXEC | extra,
            )
        })
    });
    let len = match r {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut passed = Vec::new();
    if want_fd && msg.msg_controllen > 0 {
        // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed cmsgs;
        // CMSG_FIRSTHDR/NXTHDR walk them within those bounds.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let n =
                        ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                    let data = libc::CMSG_DATA(c).cast::<RawFd>();
                    for i in 0..n {
                        let got = owned(ptr::read_unaligned(data.add(i)));
                        if passed.len() < MAX_PASS_FDS {
                            passed.push(got);
                        } // extra descriptors are closed when `got` drops
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
    }
    Ok(Some(Received {
        len,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        fds: passed,
    }))
}

/// `poll(2)` on one descriptor; returns the revents (0 on timeout).
pub(crate) fn poll_one(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout_ms(timeout);
    // SAFETY: one valid pollfd.
    let n = cvt(unsafe { libc::poll(&mut p, 1, ms) });
    match n {
        Ok(0) => Ok(0),
        Ok(_) => Ok(p.revents),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Milliseconds for poll/epoll, rounded up so that a wait is never shorter than asked.
pub(crate) fn timeout_ms(t: Option<Duration>) -> i32 {
    match t {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(i32::MAX as u128) as i32
        }
    }
}

/// An epoll instance.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain system call.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    Ok(owned(fd))
}

/// `epoll_ctl` with a u64 token.
pub(crate) fn epoll_ctl(
    ep: RawFd,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event.
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) })?;
    Ok(())
}

/// `epoll_wait`; returns the number of events filled (0 on timeout or EINTR).
pub(crate) fn epoll_wait(
    ep: RawFd,
    events: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let ms = timeout_ms(timeout);
    // SAFETY: `events` is a writable array of its length.
    let r = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// A non-blocking eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    Ok(owned(fd))
}

/// Adds one to an eventfd.
pub(crate) fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) already means "signalled".
    unsafe { libc::write(fd, ptr::addr_of!(one).cast(), 8) };
}

/// Resets an eventfd.
pub(crate) fn eventfd_clear(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; EAGAIN (not signalled) is fine.
    unsafe { libc::read(fd, ptr::addr_of_mut!(v).cast(), 8) };
}

/// A sealed-size anonymous shared memory file of `len` bytes named `name` (shown in
/// `/proc/PID/fd`). Its size is sealed (`F_SEAL_SHRINK | F_SEAL_GROW`), so that nobody it is passed
/// to can shrink it under a mapping (which would raise `SIGBUS`) or grow it; further seals can be
/// added with [`add_seals`] until `F_SEAL_SEAL`.
pub(crate) fn memfd(name: &std::ffi::CStr, len: usize) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string.
    let fd = owned(cvt(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?);
    // SAFETY: plain system calls on a descriptor we own.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    add_seals(&fd, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW)?;
    Ok(fd)
}

/// `F_ADD_SEALS`.
pub(crate) fn add_seals(fd: &OwnedFd, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we own.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(())
}

/// `F_GET_SEALS` (an error for a file that is not a memfd).
pub(crate) fn seals(fd: &OwnedFd) -> io::Result<libc::c_int> {
    // SAFETY: plain system call on a descriptor we own.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Size of a file.
pub(crate) fn file_size(fd: RawFd) -> io::Result<u64> {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_size as u64)
}

/// A shared read-write mapping of the first `len` bytes of `fd`, unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics and raw copies (see `shm.rs`); the
// pointer itself can move between threads.
unsafe impl Send for Mapping {}
// SAFETY: as above, all shared access is atomic.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write.
    pub(crate) fn new(fd: RawFd, len: usize) -> io::Result<Self> {
        Self::map(fd, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps `len` bytes of `fd` shared and read-only.
    pub(crate) fn read_only(fd: RawFd, len: usize) -> io::Result<Self> {
        Self::map(fd, len, libc::PROT_READ)
    }

    fn map(fd: RawFd, len: usize, prot: libc::c_int) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel; the result is checked.
        let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: p.cast(), len })
    }

    /// Base address.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `fchmod(2)`.
pub(crate) fn fchmod(fd: &OwnedFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: fchmod on an owned descriptor.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// A new, read-only open file of the same file (through `/proc/self/fd`), close-on-exec.
pub(crate) fn reopen_read_only(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid C string; the result is checked and owned.
    let r = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned(r))
}

/// A duplicate of `fd` with close-on-exec set.
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a caller-given number; the result is checked and owned.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned(r))
}

/// A connected pair of `SOCK_SEQPACKET` Unix sockets, close-on-exec.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two descriptors into `fds` on success.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Device and inode of an open file (what tells two descriptors of one object apart from two
/// objects).
pub(crate) fn file_id(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: stat is plain old data; fstat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable stat.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok((st.st_dev, st.st_ino))
}

/// A duplicate of `fd` without close-on-exec (inherited by programs this process `exec`s).
pub(crate) fn dup_inheritable(fd: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on an owned descriptor; the result is checked and owned.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned(r))
}

/// Sends one descriptor over a Unix socket (blocking), with one byte of data.
pub(crate) fn send_fd(socket: &impl AsRawFd, fd: &OwnedFd) -> io::Result<()> {
    send_parts(socket.as_raw_fd(), &[b"M"], &[fd.as_raw_fd()], false).map(drop)
}

/// Receives one descriptor sent with [`send_fd`] (blocking); `None` when the message carried
/// none (or at end of file).
pub(crate) fn recv_fd(socket: &impl AsRawFd) -> io::Result<Option<OwnedFd>> {
    let fd = socket.as_raw_fd();
    loop {
        let mut b = [0u8; 1];
        match recv_msg(fd, &mut b, true)? {
            Some(mut r) => {
                return Ok(if r.fds.is_empty() {
                    None
                } else {
                    Some(r.fds.swap_remove(0))
                })
            }
            None => {
                poll_one(fd, libc::POLLIN, None)?;
            }
        }
    }
}

/// Effective user id.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::geteuid() }
}

/// Process id.
pub(crate) fn getpid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() as u32 }
}

/// Raises the soft open-file limit to the hard limit (an owner may hold many writer connections).
pub(crate) fn raise_nofile_limit() {
    // SAFETY: rlimit is plain old data, get/setrlimit read/write it.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

/// The uid of the user `name`, if it exists (`getpwnam_r`).
pub(crate) fn uid_of_user(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: passwd is plain old data; all-zero is valid before getpwnam_r fills it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = ptr::null_mut();
    // SAFETY: every pointer refers to live, writable storage of the stated size.
    let r = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (r == 0 && !result.is_null()).then_some(pwd.pw_uid)
}

/// The gid of the group `name`, if it exists (`getgrnam_r`).
pub(crate) fn gid_of_group(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: group is plain old data; all-zero is valid before getgrnam_r fills it.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 64 * 1024];
    let mut result: *mut libc::group = ptr::null_mut();
    // SAFETY: every pointer refers to live, writable storage of the stated size.
    let r = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (r == 0 && !result.is_null()).then_some(grp.gr_gid)
}

/// The effective gid and the supplementary groups of this process.
pub(crate) fn own_groups() -> Vec<u32> {
    // SAFETY: always succeeds.
    let mut out = vec![unsafe { libc::getegid() }];
    // SAFETY: a count query (size 0, no buffer written).
    let n = unsafe { libc::getgroups(0, ptr::null_mut()) };
    if n > 0 {
        let mut g = vec![0 as libc::gid_t; n as usize];
        // SAFETY: `g` has room for `n` gids.
        let m = unsafe { libc::getgroups(n, g.as_mut_ptr()) };
        if m > 0 {
            g.truncate(m as usize);
            out.extend(g);
        }
    }
    out
}

/// `TMPFS_MAGIC`: the file system of memfds made without `MFD_HUGETLB`.
pub(crate) const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The magic number of the file system that holds `fd` (`fstatfs`).
pub(crate) fn fs_magic(fd: &OwnedFd) -> io::Result<i64> {
    // SAFETY: statfs is plain old data; all-zero is valid before fstatfs fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable statfs.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Ok(st.f_type as i64)
}
