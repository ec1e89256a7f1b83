//! Thin, checked wrappers over the Linux system calls the transport needs.
//!
//! Most of them go through `rustix`, whose calls take borrowed descriptors and typed flags and
//! return `rustix::io::Errno` (turned into `io::Error` with the same errno here). What `rustix`
//! has no safe call for stays on `libc`, each with the reason it is sound: `SO_PEERCRED` and
//! `SO_PEERGROUPS`, and the user and group database lookups (`getpwnam_r`, `getgrnam_r`). The
//! memory mappings themselves are in `shm`.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

use rustix::event::{epoll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use rustix::io::{Errno, FdFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use rustix::process::{Resource, Rlimit};

/// Retries a call while it fails with `EINTR`; the error as an `io::Error` (same errno).
fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// The result of a `libc` call that returns -1 and sets `errno` on failure.
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Borrows a descriptor number handed to one of this module's functions.
///
/// Every `RawFd` these functions take is, by their contract, a descriptor the caller keeps open
/// for the duration of the call; the borrow lives no longer than the reference to the number,
/// so it cannot outlive the call. A negative number fails with `EBADF`, as the system call would.
fn borrow(fd: &RawFd) -> io::Result<BorrowedFd<'_>> {
    if *fd < 0 {
        return Err(Errno::BADF.into());
    }
    // SAFETY: not -1, and open for as long as the borrow lives (see above).
    Ok(unsafe { BorrowedFd::borrow_raw(*fd) })
}

/// An abstract Unix address (leading NUL, no trailing NUL).
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddrUnix> {
    SocketAddrUnix::new_abstract_name(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "abstract socket name too long"))
}

/// A new `SOCK_SEQPACKET` Unix socket (close-on-exec).
pub(crate) fn seqpacket(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        flags,
        None,
    )?)
}

/// Binds `fd` to the abstract address `name`.
pub(crate) fn bind_abstract(fd: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let addr = abstract_addr(name)?;
    Ok(rustix::net::bind(fd, &addr)?)
}

/// Connects `fd` to the abstract address `name`.
pub(crate) fn connect_abstract(fd: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let addr = abstract_addr(name)?;
    retry(|| rustix::net::connect(fd, &addr))
}

/// `SO_SNDTIMEO`: how long a blocking `connect` (or send) on a Unix socket may wait; `None`
/// waits forever.
pub(crate) fn set_send_timeout(fd: &OwnedFd, timeout: Option<Duration>) -> io::Result<()> {
    // A zero timeval means "forever" to the kernel: wait at least a microsecond.
    let timeout = timeout.map(|d| d.max(Duration::from_micros(1)));
    Ok(rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Send,
        timeout,
    )?)
}

/// Waits for one record on a blocking socket (bounded by its `SO_RCVTIMEO`): its length and
/// whether it was longer than `buf`; `None` when the receive timeout ran out.
pub(crate) fn recv_record_wait(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<(usize, bool)>> {
    match retry(|| rustix::net::recv(fd, &mut *buf, RecvFlags::TRUNC)) {
        Ok((got, full)) => Ok(Some((got, full > got))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// `SO_RCVTIMEO`: how long a blocking receive may wait (`EAGAIN` after it); `None` waits
/// forever.
pub(crate) fn set_recv_timeout(fd: &OwnedFd, timeout: Option<Duration>) -> io::Result<()> {
    let timeout = timeout.map(|d| d.max(Duration::from_micros(1)));
    Ok(rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Recv,
        timeout,
    )?)
}

/// The socket's send buffer (`SO_SNDBUF`, as the kernel reports it).
pub(crate) fn send_buffer_size(fd: &OwnedFd) -> io::Result<usize> {
    Ok(rustix::net::sockopt::socket_send_buffer_size(fd)?)
}

/// Asks for a send buffer of `bytes` (`SO_SNDBUF`; the kernel caps it at `wmem_max`).
pub(crate) fn set_send_buffer_size(fd: &OwnedFd, bytes: usize) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_send_buffer_size(
        fd, bytes,
    )?)
}

/// Bytes of data waiting to be read on a socket (`FIONREAD`; on a `SOCK_SEQPACKET` Unix
/// socket, of all its queued records).
pub(crate) fn queued_bytes(fd: &OwnedFd) -> io::Result<u64> {
    Ok(rustix::io::ioctl_fionread(fd)?)
}

/// `listen(2)`.
pub(crate) fn listen(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    Ok(rustix::net::listen(fd, backlog)?)
}

/// Accepts one connection without blocking; `Ok(None)` when none is pending.
pub(crate) fn accept(fd: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    match retry(|| rustix::net::accept_with(fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)) {
        Ok(fd) => Ok(Some(fd)),
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
///
/// On `libc`: `rustix`'s `UCred` holds the pid as a non-zero `Pid`, and the kernel reports 0 for
/// a peer outside this process's pid namespace.
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

/// `SO_PEERGROUPS`: the peer's supplementary groups (on `libc`: `rustix` has no such option).
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
    let sock = borrow(&fd)?;
    let mut iov = [IoSlice::new(&[]); MAX_PARTS];
    for (v, p) in iov.iter_mut().zip(parts) {
        *v = IoSlice::new(p);
    }
    // Room for the SCM_RIGHTS descriptors (allocated only when passing).
    let lent = pass.iter().map(borrow).collect::<io::Result<Vec<_>>>()?;
    let mut space = Vec::new();
    let mut control = SendAncillaryBuffer::default();
    if !lent.is_empty() {
        space.resize(
            rustix::cmsg_space!(ScmRights(lent.len())),
            MaybeUninit::uninit(),
        );
        control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&lent)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "descriptors do not fit the control buffer",
            ));
        }
    }
    let mut flags = SendFlags::NOSIGNAL;
    if dontwait {
        flags |= SendFlags::DONTWAIT;
    }
    retry(|| rustix::net::sendmsg(sock, &iov[..parts.len()], &mut control, flags))
}

/// Sends `parts` as one message, gathered (any number of parts, up to `IOV_MAX`), with
/// `MSG_NOSIGNAL | MSG_DONTWAIT`.
pub(crate) fn send_gather(fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    let sock = borrow(&fd)?;
    let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut control = SendAncillaryBuffer::default();
    retry(|| {
        rustix::net::sendmsg(
            sock,
            &iov,
            &mut control,
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        )
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
    /// Some passed descriptors could not be received (`MSG_CTRUNC`: out of descriptors, or no
    /// room for them).
    pub fds_cut: bool,
}

/// Receives one message without blocking (`Ok(None)` when none is queued; `len == 0` at EOF).
pub(crate) fn recv_msg(fd: RawFd, buf: &mut [u8], want_fd: bool) -> io::Result<Option<Received>> {
    recv_msg_flags(fd, buf, want_fd, RecvFlags::empty())
}

/// [`recv_msg`] that leaves the message queued (`MSG_PEEK`; passed descriptors are duplicated
/// into this process all the same).
pub(crate) fn peek_msg(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<Received>> {
    recv_msg_flags(fd, buf, true, RecvFlags::PEEK)
}

fn recv_msg_flags(
    fd: RawFd,
    buf: &mut [u8],
    want_fd: bool,
    extra: RecvFlags,
) -> io::Result<Option<Received>> {
    let sock = borrow(&fd)?;
    let mut iov = [IoSliceMut::new(buf)];
    // Room for MAX_PASS_FDS descriptors, allocated only when they are wanted.
    let mut space = Vec::new();
    if want_fd {
        space.resize(
            rustix::cmsg_space!(ScmRights(MAX_PASS_FDS)),
            MaybeUninit::uninit(),
        );
    }
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let flags = RecvFlags::DONTWAIT | RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC | extra;
    let r = match retry(|| rustix::net::recvmsg(sock, &mut iov, &mut control, flags)) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut passed = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for got in fds {
                if passed.len() < MAX_PASS_FDS {
                    passed.push(got);
                } // extra descriptors are closed when `got` drops
            }
        }
    }
    Ok(Some(Received {
        len: r.bytes,
        truncated: r.flags.contains(ReturnFlags::TRUNC),
        fds: passed,
        fds_cut: r.flags.contains(ReturnFlags::CTRUNC),
    }))
}

/// `poll(2)` on `p` until `timeout`; whether any descriptor is ready (`false` on timeout or
/// when a signal interrupted the wait: then no revents are to be read).
fn poll_fds(p: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<bool> {
    let ts = timeout_ts(timeout);
    match rustix::event::poll(p, ts.as_ref()) {
        Ok(0) | Err(Errno::INTR) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// `poll(2)` on one descriptor; returns the revents (0 on timeout).
pub(crate) fn poll_one(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let bfd = borrow(&fd)?;
    let mut p = [PollFd::from_borrowed_fd(
        bfd,
        PollFlags::from_bits_retain(events as u16),
    )];
    Ok(if poll_fds(&mut p, timeout)? {
        p[0].revents().bits() as libc::c_short
    } else {
        0
    })
}

/// `poll(2)` on several descriptors for the same events; returns each one's revents (all 0 on
/// timeout or when a signal interrupted the wait).
pub(crate) fn poll_many<F: AsFd>(
    fds: &[F],
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<Vec<libc::c_short>> {
    let flags = PollFlags::from_bits_retain(events as u16);
    let mut p: Vec<PollFd<'_>> = fds.iter().map(|f| PollFd::new(f, flags)).collect();
    Ok(if poll_fds(&mut p, timeout)? {
        p.iter()
            .map(|f| f.revents().bits() as libc::c_short)
            .collect()
    } else {
        vec![0; fds.len()]
    })
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

/// [`timeout_ms`] as the timespec `rustix` takes (`None`: wait forever).
fn timeout_ts(t: Option<Duration>) -> Option<Timespec> {
    let ms = timeout_ms(t);
    (ms >= 0).then(|| Timespec {
        tv_sec: i64::from(ms / 1000),
        tv_nsec: i64::from(ms % 1000) * 1_000_000,
    })
}

/// An epoll instance.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    Ok(epoll::create(epoll::CreateFlags::CLOEXEC)?)
}

/// `epoll_ctl` with a u64 token.
pub(crate) fn epoll_ctl(
    ep: RawFd,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let (ep, fd) = (borrow(&ep)?, borrow(&fd)?);
    let data = epoll::EventData::new_u64(token);
    let flags = epoll::EventFlags::from_bits_retain(events);
    Ok(match op {
        libc::EPOLL_CTL_ADD => epoll::add(ep, fd, data, flags),
        libc::EPOLL_CTL_MOD => epoll::modify(ep, fd, data, flags),
        libc::EPOLL_CTL_DEL => epoll::delete(ep, fd),
        _ => Err(Errno::INVAL),
    }?)
}

/// `epoll_wait`; returns the number of events filled (0 on timeout or EINTR), at most 64 per
/// call.
pub(crate) fn epoll_wait(
    ep: RawFd,
    events: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let ep = borrow(&ep)?;
    let mut got = [MaybeUninit::<epoll::Event>::uninit(); 64];
    let want = events.len().min(got.len());
    let ts = timeout_ts(timeout);
    let got = match epoll::wait(ep, &mut got[..want], ts.as_ref()) {
        Ok((got, _)) => got,
        Err(Errno::INTR) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    for (out, &ev) in events.iter_mut().zip(got.iter()) {
        // `Event` is packed: copy its fields out before use.
        let (flags, data) = (ev.flags, ev.data);
        *out = libc::epoll_event {
            events: flags.bits(),
            u64: data.u64(),
        };
    }
    Ok(got.len())
}

/// One word for [`futex_waitv`] (see [`futex_word`]).
pub(crate) type FutexWord = rustix::thread::futex::Wait;

/// A word for [`futex_waitv`]: sleep while the `u32` at `addr` holds `expected`. `shared`: the
/// word is in memory shared with another process (else private to this one). Only the kernel
/// looks at the address: one that went away ends the wait.
pub(crate) fn futex_word(addr: *mut u32, expected: u32, shared: bool) -> FutexWord {
    use rustix::thread::futex::{WaitFlags, WaitPtr};
    let mut w = FutexWord::new();
    w.val = u64::from(expected);
    w.uaddr = WaitPtr::new(addr.cast());
    w.flags = if shared {
        WaitFlags::SIZE_U32
    } else {
        WaitFlags::SIZE_U32 | WaitFlags::PRIVATE
    };
    w
}

/// How a [`futex_waitv`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWake {
    /// Woken, or a word did not hold its expected value (or went away) when the wait began.
    Woken,
    /// The timeout passed, or a signal interrupted the wait.
    Timeout,
}

/// `futex_waitv` (Linux 5.16): sleeps until one of `words` is woken, one of them does not hold
/// its expected value, or `timeout` passes. An error means the call cannot be used here
/// (`ENOSYS` on an older kernel, `EPERM` under a filter, `EINVAL`, more than 128 words).
pub(crate) fn futex_waitv(words: &[FutexWord], timeout: Option<Duration>) -> io::Result<FutexWake> {
    use rustix::thread::futex::{self, ClockId, WaitvFlags};
    // The timeout is a point on the monotonic clock.
    let deadline = timeout.map(|d| {
        let now = rustix::time::clock_gettime(ClockId::Monotonic);
        let nanos = now.tv_nsec as u128 + d.subsec_nanos() as u128;
        let secs = (now.tv_sec as u64)
            .saturating_add(d.as_secs())
            .saturating_add((nanos / 1_000_000_000) as u64)
            .min(i64::MAX as u64);
        Timespec {
            tv_sec: secs as i64,
            tv_nsec: (nanos % 1_000_000_000) as _,
        }
    });
    match futex::waitv(
        words,
        WaitvFlags::empty(),
        deadline.as_ref(),
        ClockId::Monotonic,
    ) {
        Ok(_) | Err(Errno::AGAIN) | Err(Errno::FAULT) => Ok(FutexWake::Woken),
        Err(Errno::TIMEDOUT) | Err(Errno::INTR) => Ok(FutexWake::Timeout),
        Err(e) => Err(e.into()),
    }
}

/// `FUTEX_WAKE`: wakes up to `n` threads asleep on `word` (`shared`: in memory shared with
/// other processes, else private to this one).
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32, shared: bool, n: u32) {
    use rustix::thread::futex::{self, Flags};
    let flags = if shared {
        Flags::empty()
    } else {
        Flags::PRIVATE
    };
    let _ = futex::wake(word, flags, n);
}

/// A non-blocking eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?)
}

/// Adds one to an eventfd.
pub(crate) fn eventfd_signal(fd: RawFd) {
    // A full counter (EAGAIN) already means "signalled".
    if let Ok(fd) = borrow(&fd) {
        let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
    }
}

/// Resets an eventfd.
pub(crate) fn eventfd_clear(fd: RawFd) {
    // EAGAIN (not signalled) is fine.
    if let Ok(fd) = borrow(&fd) {
        let _ = rustix::io::read(fd, &mut [0u8; 8]);
    }
}

/// A sealed-size anonymous shared memory file of `len` bytes named `name` (shown in
/// `/proc/PID/fd`). Its size is sealed (`F_SEAL_SHRINK | F_SEAL_GROW`), so that nobody it is passed
/// to can shrink it under a mapping (which would raise `SIGBUS`) or grow it; further seals can be
/// added with [`add_seals`] until `F_SEAL_SEAL`.
pub(crate) fn memfd(name: &std::ffi::CStr, len: usize) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, len as u64)?;
    add_seals(&fd, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW)?;
    Ok(fd)
}

/// `F_ADD_SEALS`.
pub(crate) fn add_seals(fd: &OwnedFd, seals: libc::c_int) -> io::Result<()> {
    let seals = SealFlags::from_bits_retain(seals as u32);
    Ok(rustix::fs::fcntl_add_seals(fd, seals)?)
}

/// `F_GET_SEALS` (an error for a file that is not a memfd).
pub(crate) fn seals(fd: &OwnedFd) -> io::Result<libc::c_int> {
    Ok(rustix::fs::fcntl_get_seals(fd)?.bits() as libc::c_int)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine.
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Monotonic)
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: the monotonic clock as of the last timer tick (1–4
/// ms behind at most). It reads no hardware counter, so it costs a few nanoseconds where the
/// precise clock costs tens (more inside a virtual machine).
pub(crate) fn coarse_ns() -> u64 {
    clock_ns(rustix::time::ClockId::MonotonicCoarse)
}

/// A clock's reading in nanoseconds.
fn clock_ns(id: rustix::time::ClockId) -> u64 {
    let ts = rustix::time::clock_gettime(id);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Size of a file.
pub(crate) fn file_size(fd: RawFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(borrow(&fd)?)?.st_size as u64)
}

/// `fchmod(2)`.
pub(crate) fn fchmod(fd: &OwnedFd, mode: libc::mode_t) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?)
}

/// A new, read-only open file of the same file (through `/proc/self/fd`), close-on-exec.
pub(crate) fn reopen_read_only(fd: &OwnedFd) -> io::Result<OwnedFd> {
    reopen(fd, OFlags::RDONLY)
}

/// A new open file of the same file, for reading and writing (through `/proc/self/fd`),
/// close-on-exec: a description of its own, whose `flock` is independent of `fd`'s.
pub(crate) fn reopen_read_write(fd: &OwnedFd) -> io::Result<OwnedFd> {
    reopen(fd, OFlags::RDWR)
}

/// A new open file of the same file, with `access` and close-on-exec.
fn reopen(fd: &OwnedFd, access: OFlags) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::open(
        path.as_str(),
        access | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `flock(fd, op)`, never waiting: a lock of the open file description, which the kernel lets
/// go when the description's last descriptor closes (also when its process dies).
pub(crate) fn flock(fd: &OwnedFd, op: Flock) -> io::Result<()> {
    use rustix::fs::FlockOperation as F;
    let op = match op {
        Flock::Shared => F::NonBlockingLockShared,
        Flock::Exclusive => F::NonBlockingLockExclusive,
        Flock::Unlock => F::NonBlockingUnlock,
    };
    Ok(rustix::fs::flock(fd, op)?)
}

/// What [`flock`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flock {
    Shared,
    Exclusive,
    Unlock,
}

/// A duplicate of `fd` with close-on-exec set.
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(borrow(&fd)?, 3)?)
}

/// A connected pair of `SOCK_SEQPACKET` Unix sockets, close-on-exec.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// Device and inode of an open file (what tells two descriptors of one object apart from two
/// objects).
pub(crate) fn file_id(fd: RawFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(borrow(&fd)?)?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// A duplicate of `fd` without close-on-exec (inherited by programs this process `exec`s).
pub(crate) fn dup_inheritable(fd: &OwnedFd) -> io::Result<OwnedFd> {
    // `rustix` offers `F_DUPFD` only with close-on-exec: duplicate, then clear the flag.
    let dup = rustix::io::fcntl_dupfd_cloexec(fd, 3)?;
    rustix::io::fcntl_setfd(&dup, FdFlags::empty())?;
    Ok(dup)
}

/// Shuts both directions of a connected socket (tests: a peer that hangs up but keeps the
/// descriptor).
#[cfg(test)]
pub(crate) fn shutdown(socket: &impl AsRawFd) {
    // SAFETY: shutdown acts only on the descriptor, which the caller keeps open meanwhile.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
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
    rustix::process::geteuid().as_raw()
}

/// Process id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid().as_raw_pid() as u32
}

/// Raises the soft open-file limit to the hard limit (an owner may hold many writer connections).
pub(crate) fn raise_nofile_limit() {
    // `None` is RLIM_INFINITY.
    let rl = rustix::process::getrlimit(Resource::Nofile);
    let (cur, max) = (
        rl.current.unwrap_or(u64::MAX),
        rl.maximum.unwrap_or(u64::MAX),
    );
    if cur < max {
        let _ = rustix::process::setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max.min(1 << 20)),
                maximum: rl.maximum,
            },
        );
    }
}

/// The uid of the user `name`, if it exists (`getpwnam_r`; on `libc`: the user database goes
/// through NSS, which only the C library implements).
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

/// The gid of the group `name`, if it exists (`getgrnam_r`; on `libc`, as for users).
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
    let mut out = vec![rustix::process::getegid().as_raw()];
    if let Ok(groups) = rustix::process::getgroups() {
        out.extend(groups.iter().map(|g| g.as_raw()));
    }
    out
}

/// `TMPFS_MAGIC`: the file system of memfds made without `MFD_HUGETLB`.
pub(crate) const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The magic number of the file system that holds `fd` (`fstatfs`).
pub(crate) fn fs_magic(fd: &OwnedFd) -> io::Result<i64> {
    let st = rustix::fs::fstatfs(fd)?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Ok(st.f_type as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_name_too_long_is_invalid_input() {
        let fd = seqpacket(true).unwrap();
        let e = bind_abstract(&fd, &[b'x'; 108]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // 107 bytes (all of `sun_path` after the leading NUL) still fit.
        let name = format!("mailslot-test/{}/{}", getpid(), "n".repeat(80));
        let mut long = name.into_bytes();
        long.resize(107, b'z');
        bind_abstract(&fd, &long).unwrap();
        listen(&fd, 4).unwrap();
        assert!(accept(&fd).unwrap().is_none());
        let c = seqpacket(false).unwrap();
        connect_abstract(&c, &long).unwrap();
        let peer = accept(&fd).unwrap().unwrap();
        assert_eq!(peer_cred(&peer).unwrap().pid, getpid());
        assert_eq!(peer_cred(&c).unwrap().uid, geteuid());
    }

    #[test]
    fn descriptors_pass_and_truncation_is_reported() {
        let (a, b) = seqpacket_pair().unwrap();
        let passed = eventfd().unwrap();
        let sent = send_parts(
            a.as_raw_fd(),
            &[b"he", b"llo"],
            &[passed.as_raw_fd(), passed.as_raw_fd()],
            true,
        )
        .unwrap();
        assert_eq!(sent, 5);
        // A peek leaves the message queued, and duplicates the descriptors all the same.
        let mut buf = [0u8; 2];
        let p = peek_msg(b.as_raw_fd(), &mut buf).unwrap().unwrap();
        assert_eq!((p.len, p.truncated, p.fds.len()), (5, true, 2));
        let mut buf = [0u8; 16];
        let r = recv_msg(b.as_raw_fd(), &mut buf, true).unwrap().unwrap();
        assert_eq!((r.len, r.truncated), (5, false));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(r.fds.len(), 2);
        assert_eq!(
            file_id(r.fds[0].as_raw_fd()).unwrap(),
            file_id(passed.as_raw_fd()).unwrap()
        );
        let flags = rustix::io::fcntl_getfd(&r.fds[1]).unwrap();
        assert!(flags.contains(FdFlags::CLOEXEC));
        // Nothing queued: `None`, not an error.
        assert!(recv_msg(b.as_raw_fd(), &mut buf, false).unwrap().is_none());
        // Too many parts or descriptors.
        let e = send_parts(a.as_raw_fd(), &[&[][..]; 5], &[], true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = send_parts(a.as_raw_fd(), &[b"x"], &[-1], true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        // End of file once the peer is gone.
        drop(a);
        let r = recv_msg(b.as_raw_fd(), &mut buf, true).unwrap().unwrap();
        assert_eq!((r.len, r.fds.len()), (0, 0));
    }

    #[test]
    fn poll_epoll_and_eventfd() {
        let ev = eventfd().unwrap();
        let raw = ev.as_raw_fd();
        assert_eq!(
            poll_one(raw, libc::POLLIN, Some(Duration::ZERO)).unwrap(),
            0
        );
        let ep = epoll_create().unwrap();
        epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            raw,
            libc::EPOLLIN as u32,
            1 << 40,
        )
        .unwrap();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        assert_eq!(
            epoll_wait(ep.as_raw_fd(), &mut events, Some(Duration::ZERO)).unwrap(),
            0
        );
        eventfd_signal(raw);
        assert_eq!(poll_one(raw, libc::POLLIN, None).unwrap(), libc::POLLIN);
        assert_eq!(epoll_wait(ep.as_raw_fd(), &mut events, None).unwrap(), 1);
        let (flags, token) = (events[0].events, events[0].u64);
        assert_eq!((flags, token), (libc::EPOLLIN as u32, 1 << 40));
        eventfd_clear(raw);
        assert_eq!(
            poll_one(raw, libc::POLLIN, Some(Duration::from_micros(1))).unwrap(),
            0
        );
        let e = epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, raw, 0, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        let e = epoll_ctl(ep.as_raw_fd(), 99, raw, 0, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_DEL, raw, 0, 0).unwrap();
        let e = poll_one(-1, libc::POLLIN, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn timeouts_round_up_to_milliseconds() {
        assert_eq!(timeout_ts(None), None);
        let ts = timeout_ts(Some(Duration::from_nanos(1_000_001))).unwrap();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (0, 2_000_000));
        let ts = timeout_ts(Some(Duration::from_millis(2500))).unwrap();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (2, 500_000_000));
        let ts = timeout_ts(Some(Duration::MAX)).unwrap();
        assert_eq!(ts.tv_sec, i64::from(i32::MAX / 1000));
    }

    #[test]
    fn memfd_seals_mode_and_duplicates() {
        let fd = memfd(c"mailslot-sys-test", 8192).unwrap();
        assert_eq!(file_size(fd.as_raw_fd()).unwrap(), 8192);
        assert_eq!(fs_magic(&fd).unwrap(), TMPFS_MAGIC);
        let s = seals(&fd).unwrap();
        assert_eq!(s, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW);
        add_seals(&fd, libc::F_SEAL_SEAL).unwrap();
        let e = add_seals(&fd, libc::F_SEAL_WRITE).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        fchmod(&fd, 0o400).unwrap();
        let ro = reopen_read_only(&fd).unwrap();
        assert_eq!(
            file_id(ro.as_raw_fd()).unwrap(),
            file_id(fd.as_raw_fd()).unwrap()
        );
        let d = dup_cloexec(fd.as_raw_fd()).unwrap();
        assert!(d.as_raw_fd() >= 3);
        assert!(rustix::io::fcntl_getfd(&d)
            .unwrap()
            .contains(FdFlags::CLOEXEC));
        let i = dup_inheritable(&fd).unwrap();
        assert!(i.as_raw_fd() >= 3);
        assert!(!rustix::io::fcntl_getfd(&i)
            .unwrap()
            .contains(FdFlags::CLOEXEC));
        // Not a memfd: no seals.
        let (a, _b) = seqpacket_pair().unwrap();
        assert!(seals(&a).is_err());
        let e = file_size(-1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn ids_clock_and_groups() {
        assert_eq!(getpid(), std::process::id());
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a && a > 0);
        let g = own_groups();
        // "Gid:" in /proc/self/status: real, effective, saved, file system.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let gids = status.lines().find_map(|l| l.strip_prefix("Gid:")).unwrap();
        let egid: u32 = gids.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(g[0], egid);
        raise_nofile_limit();
        let rl = rustix::process::getrlimit(Resource::Nofile);
        let max = rl.maximum.unwrap_or(u64::MAX);
        assert!(rl.current.unwrap_or(u64::MAX) >= max.min(1 << 20));
    }
}
