//! `evil-owner <name> <mode>`: an owner that squats a name and hands its writers what no honest
//! owner would: control pages and rings that are not sealed, too small, on hugetlbfs, truncated or
//! grown after the greeting, header words and totals that make no sense, garbage greetings and
//! descriptors of the wrong kind. It speaks the transport's greeting format by hand (version
//! `MSG2`) so that it can lie in every field.
//!
//! Prints `ready` once bound, `greeted <n> <what>` after each greeting, and `records <n> <count>`
//! when writer `n` hung up (socket records it sent; the ring path sends none).

use std::io::Write;
use std::os::fd::RawFd;
use std::time::Duration;

use mailslot_hostile::Rng;

/// The modes, for the tests.
pub(crate) const MODES: &[&str] = &[
    "unsealed-control",
    "short-control",
    "hugetlb-control",
    "unsealed-ring",
    "bad-ring",
    "grown-ring",
    "hostile-words",
    "huge-limits",
    "garbage",
];

const PAGE: usize = 4096;
const RING_HDR: usize = 256;
const RING_CAP: usize = 64 * 1024;
const MAGIC: u32 = 0x4d53_4c43;
const VERSION: u32 = 2;
// Ring header words (byte offsets), as the transport lays them out.
const R_TAIL: usize = 0;
const R_WAKE_SENT: usize = 8;
const R_WAITING: usize = 12;
const R_HEAD: usize = 64;
const R_SCANNED_BYTES: usize = 72;
const R_SCANNED_COUNT: usize = 80;
const R_CAP: usize = 128;
const C_USED: usize = 16;

const SEALS_SIZE: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;

fn fail(what: &str) -> ! {
    say!("fail {what}: {}", std::io::Error::last_os_error());
    std::process::exit(1)
}

/// A memfd of `len` bytes holding `content` at its start, with `seals` added.
fn memfd(len: usize, content: &[u8], seals: libc::c_int, huge: bool) -> Option<RawFd> {
    let flags =
        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | if huge { libc::MFD_HUGETLB } else { 0 };
    // SAFETY: a constant C string and flags.
    let fd = unsafe { libc::memfd_create(c"evil".as_ptr(), flags) };
    if fd < 0 {
        return None;
    }
    // SAFETY: plain system calls on the descriptor just made.
    unsafe {
        if libc::ftruncate(fd, len as libc::off_t) != 0 {
            libc::close(fd);
            return None;
        }
        if !content.is_empty() {
            // hugetlbfs has no write(2): map it instead.
            if huge {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    0,
                );
                if p != libc::MAP_FAILED {
                    std::ptr::copy_nonoverlapping(content.as_ptr(), p.cast(), content.len());
                    libc::munmap(p, len);
                }
            } else {
                libc::pwrite(fd, content.as_ptr().cast(), content.len(), 0);
            }
        }
        if seals != 0 {
            libc::fcntl(fd, libc::F_ADD_SEALS, seals);
        }
    }
    Some(fd)
}

fn control_page(used: u64) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    p[4..8].copy_from_slice(&VERSION.to_le_bytes());
    p[C_USED..C_USED + 8].copy_from_slice(&used.to_le_bytes());
    p
}

fn ring_header(cap: u64, tail: u64) -> Vec<u8> {
    let mut h = vec![0u8; RING_HDR];
    h[R_CAP..R_CAP + 8].copy_from_slice(&cap.to_le_bytes());
    h[R_TAIL..R_TAIL + 8].copy_from_slice(&tail.to_le_bytes());
    h
}

/// A sealed control page as an honest owner makes it.
fn good_control() -> RawFd {
    memfd(
        PAGE,
        &control_page(0),
        SEALS_SIZE | libc::F_SEAL_FUTURE_WRITE,
        false,
    )
    .unwrap_or_else(|| fail("memfd"))
}

/// A sealed ring as an honest owner makes it.
fn good_ring() -> RawFd {
    memfd(
        RING_HDR + RING_CAP,
        &ring_header(RING_CAP as u64, 0),
        SEALS_SIZE,
        false,
    )
    .unwrap_or_else(|| fail("memfd"))
}

/// The greeting of an owner that admits everybody, with these limits.
fn greeting(max_msg: u64, quota: u64, max_messages: u64) -> Vec<u8> {
    let mut g = Vec::with_capacity(48);
    g.extend_from_slice(b"MSG2");
    g.extend_from_slice(&0u16.to_le_bytes()); // admitted
    g.extend_from_slice(&1u16.to_le_bytes()); // accepts remote
    g.extend_from_slice(&max_msg.to_le_bytes());
    g.extend_from_slice(&quota.to_le_bytes());
    g.extend_from_slice(&max_messages.to_le_bytes());
    // SAFETY: always succeeds.
    g.extend_from_slice(&unsafe { libc::geteuid() }.to_le_bytes());
    g.extend_from_slice(&2u32.to_le_bytes()); // everyone
    g.extend_from_slice(&0u32.to_le_bytes());
    g.extend_from_slice(&[0u8; 4]);
    g
}

fn standard_greeting() -> Vec<u8> {
    greeting(64 * 1024, 1 << 20, 65_536)
}

/// Sends `data` with the descriptors `fds` (`SCM_RIGHTS`); errors are reported, not fatal.
fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 64];
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = size_of_val(fds);
        // SAFETY: CMSG_SPACE of a small length (at most 16 descriptors fit `cbuf`).
        let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
        assert!(space <= size_of_val(&cbuf));
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer holds one cmsg of `space` bytes; CMSG_* stay inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: `msg` refers to live buffers for the duration of the call.
    let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    if r < 0 {
        say!("send-failed {}", std::io::Error::last_os_error());
    }
}

fn bind(name: &str) -> RawFd {
    let (addr, len) = super::slot_address(name);
    // SAFETY: plain system calls with a valid address of `len` bytes.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            fail("socket");
        }
        if libc::bind(fd, std::ptr::addr_of!(addr).cast(), len) != 0 {
            fail("bind");
        }
        if libc::listen(fd, 128) != 0 {
            fail("listen");
        }
        fd
    }
}

/// Reads (and counts) what a writer sends on its socket until it hangs up.
fn drain(n: u64, sock: RawFd) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 128 * 1024];
        let mut records = 0u64;
        loop {
            // SAFETY: reads into our buffer.
            let r = unsafe { libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r <= 0 {
                break;
            }
            if r > 1 {
                records += 1; // one-byte messages are wake-ups
            }
        }
        say!("records {n} {records}");
    });
}

/// Writes random words into a ring's header and room notices on the socket until the writer
/// hangs up.
fn scribble_words(ring: RawFd, sock: RawFd) {
    std::thread::spawn(move || {
        let mut rng = Rng::from_time();
        loop {
            for off in [
                R_TAIL,
                R_WAKE_SENT,
                R_HEAD,
                R_SCANNED_BYTES,
                R_SCANNED_COUNT,
                R_CAP,
            ] {
                let v = match rng.range(0, 3) {
                    0 => u64::MAX,
                    1 => 0,
                    _ => rng.next_u64(),
                };
                // SAFETY: writes 8 bytes of our own value into the memfd.
                unsafe { libc::pwrite(ring, v.to_le_bytes().as_ptr().cast(), 8, off as i64) };
            }
            let w = rng.next_u64() as u32;
            // SAFETY: as above, 4 bytes.
            unsafe { libc::pwrite(ring, w.to_le_bytes().as_ptr().cast(), 4, R_WAITING as i64) };
            // SAFETY: a one-byte room notice on our socket.
            let r = unsafe {
                libc::send(
                    sock,
                    b"R".as_ptr().cast(),
                    1,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            let e = std::io::Error::last_os_error().raw_os_error();
            if r < 0 && e != Some(libc::EAGAIN) {
                break; // the writer hung up
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    });
}

/// A random descriptor of some kind (for `garbage`).
fn random_fd(rng: &mut Rng) -> RawFd {
    let mut p = [0 as RawFd; 2];
    match rng.range(0, 5) {
        // SAFETY: plain system calls; the results are checked by the receiver.
        0 => unsafe {
            libc::pipe(p.as_mut_ptr());
            p[0]
        },
        // SAFETY: as above.
        1 => unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDWR) },
        // SAFETY: as above.
        2 => unsafe {
            libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, p.as_mut_ptr());
            p[0]
        },
        3 => memfd(
            rng.range(0, 8192) as usize,
            &control_page(rng.next_u64()),
            SEALS_SIZE,
            false,
        )
        .unwrap_or(-1),
        4 => good_control(),
        _ => memfd(PAGE, &control_page(0), 0, false).unwrap_or(-1),
    }
}

pub(crate) fn run(name: &str, mode: &str) {
    if !MODES.contains(&mode) {
        say!("unknown-mode {mode} (one of {MODES:?})");
        std::process::exit(2)
    }
    let listener = bind(name);
    say!("ready");
    let mut rng = Rng::from_time();
    let mut keep: Vec<RawFd> = Vec::new();
    for n in 1u64.. {
        // SAFETY: accept on our listener; the peer address is not wanted.
        let sock = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if sock < 0 {
            continue;
        }
        let what = match mode {
            "unsealed-control" => {
                let c = memfd(PAGE, &control_page(0), 0, false).unwrap_or_else(|| fail("memfd"));
                let r = good_ring();
                send_with_fds(sock, &standard_greeting(), &[c, r]);
                // What killed writers before: the page shrinks under their mapping.
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: truncating our own memfd.
                unsafe { libc::ftruncate(c, 0) };
                keep.extend([c, r]);
                "control page unsealed, then truncated".to_string()
            }
            "short-control" => {
                let c =
                    memfd(64, &control_page(0), SEALS_SIZE, false).unwrap_or_else(|| fail("memfd"));
                let r = good_ring();
                send_with_fds(sock, &standard_greeting(), &[c, r]);
                keep.extend([c, r]);
                "control page of 64 bytes".to_string()
            }
            "hugetlb-control" => {
                let huge = 2 << 20;
                match memfd(huge, &control_page(0), SEALS_SIZE, true) {
                    Some(c) => {
                        let r = good_ring();
                        send_with_fds(sock, &standard_greeting(), &[c, r]);
                        std::thread::sleep(Duration::from_millis(50));
                        // Give the huge page back: the next touch needs a new one.
                        // SAFETY: punching a hole in our own memfd.
                        let p = unsafe {
                            libc::fallocate(
                                c,
                                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                                0,
                                huge as i64,
                            )
                        };
                        keep.extend([c, r]);
                        format!("hugetlb control page, hole punched: {p}")
                    }
                    None => {
                        // No hugetlbfs here: an unsealed page instead, so the writer is still
                        // handed something it must refuse.
                        let c = memfd(PAGE, &control_page(0), 0, false)
                            .unwrap_or_else(|| fail("memfd"));
                        send_with_fds(sock, &standard_greeting(), &[c]);
                        keep.push(c);
                        format!(
                            "no hugetlb memfd ({}), unsealed page",
                            std::io::Error::last_os_error()
                        )
                    }
                }
            }
            "unsealed-ring" => {
                let c = good_control();
                let r = memfd(
                    RING_HDR + RING_CAP,
                    &ring_header(RING_CAP as u64, 0),
                    0,
                    false,
                )
                .unwrap_or_else(|| fail("memfd"));
                send_with_fds(sock, &standard_greeting(), &[c, r]);
                std::thread::sleep(Duration::from_millis(50));
                // SAFETY: truncating our own memfd.
                unsafe { libc::ftruncate(r, 0) };
                keep.extend([c, r]);
                "ring unsealed, then truncated".to_string()
            }
            "bad-ring" => {
                let c = good_control();
                let r = memfd(
                    RING_HDR + 4096,
                    &ring_header(1 << 30, u64::MAX - 8),
                    SEALS_SIZE,
                    false,
                )
                .unwrap_or_else(|| fail("memfd"));
                send_with_fds(sock, &standard_greeting(), &[c, r]);
                keep.extend([c, r]);
                "ring capacity larger than the ring".to_string()
            }
            "grown-ring" => {
                let c = good_control();
                let r = memfd(
                    RING_HDR + RING_CAP,
                    &ring_header(RING_CAP as u64, 0),
                    libc::F_SEAL_SHRINK,
                    false,
                )
                .unwrap_or_else(|| fail("memfd"));
                send_with_fds(sock, &standard_greeting(), &[c, r]);
                std::thread::sleep(Duration::from_millis(20));
                // SAFETY: growing our own memfd (only its size is sealed against shrinking).
                let g = unsafe { libc::ftruncate(r, (RING_HDR + 4 * RING_CAP) as i64) };
                keep.extend([c, r]);
                format!("ring grown after the greeting: {g}")
            }
            "hostile-words" => {
                // A tail near the end of the counter, then random header words and room
                // notices while the writer writes.
                let c = memfd(
                    PAGE,
                    &control_page(0),
                    SEALS_SIZE | libc::F_SEAL_FUTURE_WRITE,
                    false,
                )
                .unwrap_or_else(|| fail("memfd"));
                let r = memfd(
                    RING_HDR + RING_CAP,
                    &ring_header(RING_CAP as u64, u64::MAX - 64),
                    SEALS_SIZE,
                    false,
                )
                .unwrap_or_else(|| fail("memfd"));
                send_with_fds(sock, &standard_greeting(), &[c, r]);
                scribble_words(r, sock);
                keep.extend([c, r]);
                "hostile totals and ring words".to_string()
            }
            "huge-limits" => {
                let c = good_control();
                let r = good_ring();
                send_with_fds(sock, &greeting(u64::MAX, u64::MAX, u64::MAX), &[c, r]);
                keep.extend([c, r]);
                "limits of u64::MAX".to_string()
            }
            _ => {
                // garbage: a random greeting (half of them with the right magic) and 0-6
                // descriptors of random kinds.
                let len = rng.range(0, 300) as usize;
                let mut g = vec![0u8; len];
                rng.fill(&mut g);
                if len >= 4 && rng.range(0, 1) == 0 {
                    g[..4].copy_from_slice(b"MSG2");
                    if len >= 6 {
                        g[4..6].copy_from_slice(&0u16.to_le_bytes());
                    }
                }
                let fds: Vec<RawFd> = (0..rng.range(0, 6))
                    .map(|_| random_fd(&mut rng))
                    .filter(|&f| f >= 0)
                    .collect();
                send_with_fds(sock, &g, &fds);
                keep.extend(fds);
                format!("{len} random bytes, descriptors")
            }
        };
        say!("greeted {n} {what}");
        drain(n, sock);
    }
}
