//! The few system calls of the daemon: host name, interfaces, socket buffer, privileges,
//! `recvmmsg`, and the control socket's peer credentials and records.

use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
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
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which lives across the
        // call.
        let r = unsafe {
            libc::recv(
                s.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
