//! The few system calls of the daemon: host name, interfaces, socket buffer, privileges,
//! `recvmmsg`, the control socket's peer credentials and records, and the directory's event loop
//! (epoll, eventfd, non-blocking records, the descriptor limit).

use std::ffi::CStr;
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use rustix::event::{epoll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{RecvAncillaryBuffer, RecvFlags, ReturnFlags, SocketFlags};
use rustix::process::{Resource, Rlimit};
use tracing::{info, warn};

use mailslot_router::Interface;

/// The host name (`uname`).
pub(crate) fn hostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// `(interface name, address/prefix)` of every IPv4 address (`getifaddrs`).
pub(crate) fn ipv4_interfaces() -> io::Result<Vec<(String, Interface)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list and stores its head in `head`.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs; the
        // address structures are sockaddr_in when sa_family is AF_INET.
        unsafe {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
                && !ifa.ifa_netmask.is_null()
            {
                let addr = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let mask = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
                let prefix = u32::from_be(mask.sin_addr.s_addr).count_ones() as u8;
                let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
                out.push((name, Interface::new(ip, prefix)));
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: frees the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Raises SO_RCVBUF past net.core.rmem_max when we are root (SO_RCVBUFFORCE); best effort.
pub(crate) fn force_recv_buffer(s: &socket2::Socket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: passes a pointer to a live c_int and its size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Switches to `user` when running as root (after the sockets are bound). An empty name keeps
/// root; a user that does not exist keeps root with a warning.
pub(crate) fn drop_privileges(user: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if user.is_empty() || unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let cname = std::ffi::CString::new(user).context("user name")?;
    // SAFETY: getpwnam returns NULL or a pointer to static storage, read at once.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        warn!("user {user:?} does not exist; staying root (create it, or set user = \"\")");
        return Ok(());
    }
    // SAFETY: `pw` is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: plain system calls; each result is checked.
    unsafe {
        if libc::setgroups(1, &gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            bail!(
                "cannot switch to user {user:?}: {}",
                io::Error::last_os_error()
            );
        }
    }
    info!("running as user {user} (uid {uid})");
    Ok(())
}

/// Receives up to `n` UDP datagrams per system call (`recvmmsg`).
pub(crate) struct RecvBatch {
    size: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    /// Room for `n` datagrams of up to `size` bytes (longer ones are reported truncated).
    pub(crate) fn new(n: usize, size: usize) -> Self {
        Self {
            size,
            bufs: vec![0; n * size],
            // SAFETY: sockaddr_in and mmsghdr are plain old data; all-zero is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; n],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                n
            ],
            // SAFETY: as above.
            hdrs: vec![unsafe { std::mem::zeroed() }; n],
        }
    }

    /// Receives without blocking; `WouldBlock` when nothing is queued.
    pub(crate) fn recv(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        let n = self.hdrs.len();
        for i in 0..n {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i * self.size..].as_mut_ptr().cast(),
                iov_len: self.size,
            };
            // SAFETY: plain old data.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs[i] = h;
        }
        // SAFETY: every header points into buffers owned by `self` that live across the call
        // and are not moved (no Vec is resized here).
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Datagram `i` of the last [`recv`](Self::recv): sender, bytes, truncated.
    pub(crate) fn get(&self, i: usize) -> (std::net::SocketAddrV4, &[u8], bool) {
        let a = &self.addrs[i];
        let src = std::net::SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
            u16::from_be(a.sin_port),
        );
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(self.size);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        (
            src,
            &self.bufs[i * self.size..i * self.size + len],
            truncated,
        )
    }
}

/// Receives one record of a `SOCK_SEQPACKET` socket (blocking) into `buf`: its full length, which
/// is more than `buf.len()` when it did not fit (`MSG_TRUNC`); 0 when the peer hung up.
pub(crate) fn recv_record(s: &socket2::Socket, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::net::recv(s, &mut *buf, RecvFlags::TRUNC) {
            Ok((_, full)) => return Ok(full),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// One record taken without blocking from a `SOCK_SEQPACKET` socket by [`recv_record_nonblocking`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// Bytes copied into the buffer (0: the peer hung up, or an empty record).
    pub(crate) len: usize,
    /// The record was longer than the buffer (`MSG_TRUNC`).
    pub(crate) truncated: bool,
    /// The record carried ancillary data (descriptors, credentials), discarded by the kernel
    /// because no room was offered for it (`MSG_CTRUNC`).
    pub(crate) ancillary: bool,
}

/// Takes one record of `fd` into `buf` without blocking; `Ok(None)` when none is queued. No
/// room is offered for ancillary data, so descriptors a client passes are closed by the kernel
/// and never enter this process.
pub(crate) fn recv_record_nonblocking(fd: impl AsFd, buf: &mut [u8]) -> io::Result<Option<Record>> {
    let room = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let flags = RecvFlags::DONTWAIT | RecvFlags::TRUNC | RecvFlags::CMSG_CLOEXEC;
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut []);
        match rustix::net::recvmsg(&fd, &mut iov, &mut control, flags) {
            Ok(r) => {
                return Ok(Some(Record {
                    len: r.bytes.min(room),
                    truncated: r.flags.contains(ReturnFlags::TRUNC) || r.bytes > room,
                    ancillary: r.flags.contains(ReturnFlags::CTRUNC),
                }))
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether the peer of the connected socket `fd` hung up (`POLLRDHUP`, `POLLHUP` or `POLLERR`
/// right now; no waiting).
pub(crate) fn hung_up(fd: impl AsFd) -> bool {
    let mut p = [PollFd::new(&fd, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut p, Some(&now)).is_ok_and(|n| n > 0)
        && p[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
}

/// Accepts one connection on `listener`, non-blocking and close-on-exec.
pub(crate) fn accept(listener: impl AsFd) -> io::Result<OwnedFd> {
    Ok(rustix::net::accept_with(
        listener,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
    )?)
}

/// A (level-triggered) epoll instance; events are reported as (token, `EPOLL*` bits).
#[derive(Debug)]
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self(epoll::create(epoll::CreateFlags::CLOEXEC)?))
    }

    /// Watches `fd` for `events` (`EPOLL*` bits), reported with `token`.
    pub(crate) fn add(&self, fd: impl AsFd, events: u32, token: u64) -> io::Result<()> {
        let flags = epoll::EventFlags::from_bits_retain(events);
        Ok(epoll::add(
            &self.0,
            fd,
            epoll::EventData::new_u64(token),
            flags,
        )?)
    }

    /// Stops watching `fd`.
    pub(crate) fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        Ok(epoll::delete(&self.0, fd)?)
    }

    /// Changes the events watched on `fd`.
    pub(crate) fn modify(&self, fd: impl AsFd, events: u32, token: u64) -> io::Result<()> {
        let flags = epoll::EventFlags::from_bits_retain(events);
        Ok(epoll::modify(
            &self.0,
            fd,
            epoll::EventData::new_u64(token),
            flags,
        )?)
    }

    /// Waits up to `timeout` for events: (token, `EPOLL*` bits) into `events`, which is
    /// cleared first and receives at most `got.len()` of them.
    pub(crate) fn wait(
        &self,
        got: &mut [MaybeUninit<epoll::Event>],
        events: &mut Vec<(u64, u32)>,
        timeout: std::time::Duration,
    ) -> io::Result<()> {
        events.clear();
        let ts = Timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let got = match epoll::wait(&self.0, got, Some(&ts)) {
            Ok((got, _)) => got,
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // `Event` is packed: its fields are copied out before use.
        events.extend(got.iter().map(|&ev| {
            let (flags, data) = (ev.flags, ev.data);
            (data.u64(), flags.bits())
        }));
        Ok(())
    }
}

/// A non-blocking `eventfd` that wakes an [`Epoll`] from another thread.
#[derive(Debug)]
pub(crate) struct Waker(OwnedFd);

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self(rustix::event::eventfd(
            0,
            EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
        )?))
    }

    /// Makes the descriptor unreadable again (`EAGAIN`: it was).
    pub(crate) fn drain(&self) {
        let _ = rustix::io::read(&self.0, &mut [0u8; 8]);
    }

    /// Makes the descriptor readable (a full counter, `EAGAIN`, is readable anyway).
    pub(crate) fn wake(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Raises the soft limit on open descriptors towards `wanted` (at most the hard limit); best
/// effort.
pub(crate) fn raise_fd_limit(wanted: u64) {
    // `None` is RLIM_INFINITY.
    let l = rustix::process::getrlimit(Resource::Nofile);
    match l.current {
        Some(c) if c < wanted => {}
        // Already as high (or unlimited).
        _ => return,
    }
    let current = Some(l.maximum.map_or(wanted, |m| m.min(wanted)));
    let raised = rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current,
            maximum: l.maximum,
        },
    );
    if raised.is_err() {
        warn!("cannot raise the descriptor limit to {wanted}");
    }
}

/// `struct sched_attr` of `sched_setattr(2)` (the C library has no wrapper; `libc` has no type).
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Asks the scheduler to give the calling thread short time slices (`sched_setattr` with
/// `SCHED_OTHER` and `sched_runtime` = `slice`: the fair scheduler's custom slice, Linux 6.12
/// and later): a thread that wakes for a few microseconds of work then runs soon after it wakes
/// instead of waiting for a busy thread's whole slice (≈ 3 ms). Best effort: older kernels
/// refuse it (or ignore the field) and nothing changes.
pub(crate) fn prefer_short_slices(slice: std::time::Duration) {
    let attr = SchedAttr {
        size: size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice: 0,
        priority: 0,
        runtime: slice.as_nanos().min(u128::from(u64::MAX)) as u64,
        deadline: 0,
        period: 0,
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: `attr` is a valid, fully initialised sched_attr of the size it declares; pid 0 is
    // the calling thread; the kernel only reads it.
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
}

/// Gives the memory the allocator holds free back to the system (`malloc_trim`, GNU C library
/// only; elsewhere nothing happens).
pub(crate) fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the system; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}
