//! `mailslot-hostile`: the processes the hostile tests run, one role per subcommand.
//!
//! Every role writes one line per event to stdout (flushed at once), so that a test driving it
//! knows exactly what happened, also when it kills the process.
//!
//! ```text
//! mailslot-hostile scribble <name> <seconds>
//! mailslot-hostile hang-up-scribble <name> <count>
//! mailslot-hostile wake-flood <name> <seconds>
//! mailslot-hostile numbered <name> <count> <class 1|2> <timeout_ms> [wait-stdin]
//! mailslot-hostile torture-writer <name> <writer-id> <start-seq>
//! mailslot-hostile connect-flood <name> <n>
//! mailslot-hostile fill-and-block <name> <size> [<delay_ms>]
//! mailslot-hostile own <name> <quota> <max_msg>
//! mailslot-hostile own-drain <name> <quota> <max_msg>
//! mailslot-hostile evil-owner <name> <mode>
//! mailslot-hostile holder <inherit|socket|connect> <fd|path>
//! mailslot-hostile create-pass <name> <socket-path>
//! mailslot-hostile take-writer-fds <name>
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mailslot::{Class, Mailslot, MailslotWriter, Timeout, WriteError, WriteOptions};
use mailslot_hostile::{make_message, Rng};

/// Prints one line and flushes it (one `write(2)`, so a kill never leaves half a line).
macro_rules! say {
    ($($t:tt)*) => {{
        let mut line = format!($($t)*);
        line.push('\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }};
}

mod evil;
mod holder;

fn usage() -> ! {
    eprintln!(
        "usage: mailslot-hostile <role> ...\n  scribble <name> <seconds>\n  hang-up-scribble <name> <count>\n  wake-flood <name> <seconds>\n  numbered <name> <count> <class 1|2> <timeout_ms> [wait-stdin]\n  torture-writer <name> <writer-id> <start-seq>\n  connect-flood <name> <n>\n  fill-and-block <name> <size> [<delay_ms>]\n  own <name> <quota> <max_msg>\n  own-drain <name> <quota> <max_msg>\n  evil-owner <name> <mode>\n  holder <inherit|socket|connect> <fd|path>\n  create-pass <name> <socket-path>\n  take-writer-fds <name>"
    );
    std::process::exit(2)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let role = args.first().map(String::as_str).unwrap_or_else(|| usage());
    let name: String = arg(&args, 1);
    match role {
        "scribble" => scribble(&name, arg(&args, 2)),
        "hang-up-scribble" => hang_up_scribble(&name, arg(&args, 2)),
        "wake-flood" => wake_flood(&name, arg(&args, 2)),
        "numbered" => numbered(
            &name,
            arg(&args, 2),
            arg(&args, 3),
            arg(&args, 4),
            args.get(5).map(String::as_str) == Some("wait-stdin"),
        ),
        "torture-writer" => torture_writer(&name, &arg::<String>(&args, 2), arg(&args, 3)),
        "connect-flood" => connect_flood(&name, arg(&args, 2)),
        "fill-and-block" => fill_and_block(
            &name,
            arg(&args, 2),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0),
        ),
        "own" => own(&name, arg(&args, 2), arg(&args, 3)),
        "own-drain" => own_drain(&name, arg(&args, 2), arg(&args, 3)),
        "evil-owner" => evil::run(&name, &arg::<String>(&args, 2)),
        "holder" => holder::holder(&name, &arg::<String>(&args, 2)),
        "create-pass" => holder::create_pass(&name, &arg::<String>(&args, 2)),
        "take-writer-fds" => holder::take_writer_fds(&name),
        _ => usage(),
    }
}

fn open(name: &str) -> MailslotWriter {
    match MailslotWriter::open(name) {
        Ok(w) => w,
        Err(e) => {
            say!("open-failed {} {e}", e.win32_code());
            std::process::exit(1)
        }
    }
}

/// One shared mapping the scribbler found.
struct Map {
    ptr: *mut u8,
    len: usize,
    writable: bool,
}

fn readlink_fd(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn fd_list() -> Vec<RawFd> {
    let mut v: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// The shared mappings of this process that are memfds (`/memfd:` in /proc/self/maps) or any
/// other shared file mapping; non-writable ones are made writable with `mprotect` when the
/// kernel allows it, else kept read-only (and reported).
fn existing_shared_mappings() -> Vec<Map> {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let path = f[5..].join(" ");
        let perms = f[1];
        let shared = perms.as_bytes().get(3) == Some(&b's');
        if !(path.starts_with("/memfd:") || (shared && path.starts_with('/'))) {
            continue;
        }
        let Some((lo, hi)) = f[0].split_once('-') else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        else {
            continue;
        };
        let (ptr, len) = (lo as *mut u8, hi - lo);
        let mut writable = perms.as_bytes().get(1) == Some(&b'w');
        let mut how = "rw";
        if !writable {
            // SAFETY: changes the protection of a mapping that exists in this process.
            let r = unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) };
            writable = r == 0;
            how = if writable {
                "made-rw"
            } else {
                "ro (mprotect refused)"
            };
        }
        say!(
            "map existing {} perms={perms} path={path} size={len} {how}",
            f[0]
        );
        out.push(Map { ptr, len, writable });
    }
    out
}

/// Maps every memfd and regular file this process holds; sends garbage on every socket; keeps
/// writing through the library. Never panics.
fn scribble(name: &str, seconds: f64) {
    let writer = open(name);
    say!("opened");
    // Shared mappings the library already made (the library may have closed the descriptor
    // after mapping it, so /proc/self/fd alone does not find them).
    let mut maps = existing_shared_mappings();
    let mut sockets = Vec::new();
    for fd in fd_list() {
        let link = readlink_fd(fd);
        if link.starts_with("socket:") {
            say!("socket fd={fd} link={link}");
            sockets.push(fd);
            continue;
        }
        // SAFETY: `st` is plain old data filled by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes into `st`; a bad descriptor only returns an error.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
        if !(link.starts_with("/memfd:") || regular) {
            continue;
        }
        let len = st.st_size as usize;
        if len == 0 {
            say!("map fd={fd} link={link} size=0 skipped");
            continue;
        }
        let try_map = |prot| {
            // SAFETY: a fresh shared mapping of a descriptor we hold; failure is MAP_FAILED.
            unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) }
        };
        let p = try_map(libc::PROT_READ | libc::PROT_WRITE);
        if p != libc::MAP_FAILED {
            say!("map fd={fd} link={link} size={len} rw");
            maps.push(Map {
                ptr: p.cast(),
                len,
                writable: true,
            });
            continue;
        }
        let err = std::io::Error::last_os_error();
        let p = try_map(libc::PROT_READ);
        if p != libc::MAP_FAILED {
            say!("map fd={fd} link={link} size={len} ro (rw failed: {err})");
            maps.push(Map {
                ptr: p.cast(),
                len,
                writable: false,
            });
        } else {
            say!("map fd={fd} link={link} size={len} failed: {err}");
        }
    }
    say!(
        "start maps={} rw={} sockets={}",
        maps.len(),
        maps.iter().filter(|m| m.writable).count(),
        sockets.len()
    );
    let mut rng = Rng::from_time();
    let mut garbage = vec![0u8; 70_000];
    let (mut fills, mut sends_ok, mut sends_err, mut writes_ok) = (0u64, 0u64, 0u64, 0u64);
    let mut write_errs: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seq = 0u64;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < deadline {
        for round in 0..3 {
            for m in maps.iter().filter(|m| m.writable) {
                // SAFETY: the mapping is `len` bytes, readable and writable, and stays mapped;
                // other processes writing it at the same time only change the bytes we see.
                let bytes = unsafe { std::slice::from_raw_parts_mut(m.ptr, m.len) };
                match round {
                    0 => rng.fill(bytes),
                    1 => bytes.fill(0xFF),
                    _ => bytes.fill(0x00),
                }
                fills += 1;
            }
            for &fd in &sockets {
                let len = rng.range(0, 69_999) as usize;
                rng.fill(&mut garbage[..len]);
                // SAFETY: sends `len` bytes of our buffer; errors are only counted.
                let r = unsafe {
                    libc::send(
                        fd,
                        garbage.as_ptr().cast(),
                        len,
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if r >= 0 {
                    sends_ok += 1;
                } else {
                    sends_err += 1;
                }
            }
            if seq < 20_000 {
                let opts = WriteOptions::new()
                    .class(if seq & 1 == 0 {
                        Class::Second
                    } else {
                        Class::First
                    })
                    .timeout(Timeout::After(Duration::from_millis(5)));
                match writer.write_with(&make_message("scrib", seq, 30), opts) {
                    Ok(()) => writes_ok += 1,
                    Err(e) => *write_errs.entry(e.win32_code()).or_default() += 1,
                }
                seq += 1;
            }
        }
    }
    say!(
        "summary maps={} fills={fills} sends_ok={sends_ok} sends_err={sends_err} writes_ok={writes_ok} write_errs={write_errs:?}",
        maps.len()
    );
}

/// The ring layout the hang-up scribbler forges against (the library's `shm` module): a header
/// of 256 bytes whose first word is the tail (bytes published), then the records.
const RING_HDR: usize = 256;

/// Writes `count` numbered class-2 messages (id `hang`), keeps a copy of its ring, hangs up its
/// connection (`shutdown`, the process and its mapping of the ring stay), prints
/// `hung-up wrote=<n> ring=<bytes published>` and waits for a line on stdin. Then, until the
/// line `destroy`, puts the ring back as it was at the hang-up with a copy of all its records
/// appended after them and the tail moved past the copy: records added after the hang-up,
/// which the owner must never read. After `destroy`, for two seconds, also fills the ring with
/// random bytes, 0xFF and 0x00 between those forgeries. Prints a summary at the end. Never
/// panics.
fn hang_up_scribble(name: &str, count: u64) {
    let writer = open(name);
    let mut wrote = 0u64;
    for seq in 0..count {
        if writer.write(&make_message("hang", seq, 30)).is_ok() {
            wrote += 1;
        }
    }
    let rings: Vec<Map> = existing_shared_mappings()
        .into_iter()
        .filter(|m| m.writable && m.len > RING_HDR + 4096)
        .collect();
    let Some(ring) = rings.first() else {
        say!("no-ring");
        std::process::exit(1)
    };
    // SAFETY: the mapping is `len` bytes and stays mapped; the owner only reads it and writes
    // its own words of the header meanwhile, which the copy may catch half-way: any bytes do.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ring.ptr, ring.len) };
    let snapshot = bytes.to_vec();
    let tail = u64::from_le_bytes(snapshot[..8].try_into().unwrap_or_default());
    // The data area is the largest power of two after the header.
    let cap = 1usize << (usize::BITS - 1 - (ring.len - RING_HDR).leading_zeros());
    let published = usize::try_from(tail).unwrap_or(usize::MAX);
    if published == 0 || 2 * published > cap {
        say!("ring-unfit tail={tail} cap={cap}");
        std::process::exit(1)
    }
    let mut sockets = 0;
    for fd in fd_list() {
        if readlink_fd(fd).starts_with("socket:") {
            // SAFETY: shutdown on a descriptor of ours; errors are only counted.
            if unsafe { libc::shutdown(fd, libc::SHUT_RDWR) } == 0 {
                sockets += 1;
            }
        }
    }
    say!("hung-up wrote={wrote} ring={tail} sockets={sockets}");
    let _ = std::io::stdin().read_line(&mut String::new());
    // Stdin is read by a thread: the forgeries go on while the test decides.
    let destroy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let destroy = destroy.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.trim() == "destroy" {
                    destroy.store(true, std::sync::atomic::Ordering::SeqCst);
                    return;
                }
                line.clear();
            }
        });
    }
    let forge = |bytes: &mut [u8]| {
        bytes.copy_from_slice(&snapshot);
        let data = &mut bytes[RING_HDR..RING_HDR + cap];
        data.copy_within(..published, published);
        bytes[..8].copy_from_slice(&(2 * tail).to_le_bytes());
    };
    let mut rng = Rng::from_time();
    let (mut forgeries, mut fills) = (0u64, 0u64);
    let mut until: Option<Instant> = None;
    loop {
        forge(bytes);
        forgeries += 1;
        std::thread::sleep(Duration::from_micros(200));
        if until.is_none() && destroy.load(std::sync::atomic::Ordering::SeqCst) {
            until = Some(Instant::now() + Duration::from_secs(2));
        }
        let Some(end) = until else {
            if forgeries > 600_000 {
                // Two minutes without `destroy`: the test is gone.
                break;
            }
            continue;
        };
        if Instant::now() >= end {
            break;
        }
        match fills % 3 {
            0 => rng.fill(bytes),
            1 => bytes.fill(0xFF),
            _ => bytes.fill(0x00),
        }
        fills += 1;
    }
    say!("summary forgeries={forgeries} fills={fills}");
    drop(writer);
}

/// Writes once (so that it has a ring), then, for `seconds`, sets its ring's wake word (the
/// `u32` at byte 8 of the ring's header, which the owner's reader sleeps on while it is 0) to 1
/// and calls `FUTEX_WAKE` on it, over and over: every wake-up it can cause, for nothing. The
/// rest of the ring stays as it is, so that the owner keeps this writer (and its wake-ups).
/// Never panics.
fn wake_flood(name: &str, seconds: f64) {
    const WAKE_WORD: usize = 8;
    let writer = open(name);
    if let Err(e) = writer.write(b"flood") {
        say!("write-failed {}", e.win32_code());
    }
    let maps: Vec<Map> = existing_shared_mappings()
        .into_iter()
        .filter(|m| m.writable && m.len > WAKE_WORD + 4)
        .collect();
    say!("start maps={}", maps.len());
    let (mut wakes, mut woken) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < deadline {
        for m in &maps {
            // SAFETY: in bounds (checked above), aligned (mappings are page-aligned), and the
            // mapping stays mapped; the word is only used atomically here.
            let word = unsafe { &*m.ptr.add(WAKE_WORD).cast::<std::sync::atomic::AtomicU32>() };
            word.store(1, std::sync::atomic::Ordering::SeqCst);
            // SAFETY: FUTEX_WAKE only uses the word's address.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAKE,
                    i32::MAX,
                    0,
                    0,
                    0,
                )
            };
            wakes += 1;
            if r > 0 {
                woken += r as u64;
            }
        }
    }
    say!("summary wakes={wakes} woken={woken}");
}

/// Writes `count` numbered messages; `ok <seq>` or `err <seq> <code>` after each. With
/// `wait_stdin`, first waits for a line on stdin (so it can be started before the test needs it).
fn numbered(name: &str, count: u64, class: u8, timeout_ms: u64, wait_stdin: bool) {
    if wait_stdin {
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    let t0 = Instant::now();
    let writer = open(name);
    say!("opened {}us", t0.elapsed().as_micros());
    let id = format!("n{}", std::process::id());
    let class = if class == 1 {
        Class::First
    } else {
        Class::Second
    };
    let opts = WriteOptions::new()
        .class(class)
        .timeout(Timeout::After(Duration::from_millis(timeout_ms)));
    for seq in 0..count {
        match writer.write_with(&make_message(&id, seq, 200), opts) {
            Ok(()) => say!("ok {seq}"),
            Err(e) => say!("err {seq} {}", e.win32_code()),
        }
    }
}

/// Writes numbered class-1 messages for ever; `ok <id> <seq>` after each accepted one.
fn torture_writer(name: &str, id: &str, start: u64) {
    let writer = open(name);
    say!("opened {id}");
    let opts = WriteOptions::new()
        .class(Class::First)
        .timeout(Timeout::After(Duration::from_secs(5)));
    let mut seq = start;
    loop {
        match writer.write_with(&make_message(id, seq, 200), opts) {
            Ok(()) => say!("ok {id} {seq}"),
            Err(WriteError::OwnerGone) => {
                say!("err {id} {seq} 109");
                return;
            }
            Err(e) => say!("err {id} {seq} {}", e.win32_code()),
        }
        seq += 1;
    }
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EAGAIN => "EAGAIN".into(),
        libc::EMFILE => "EMFILE".into(),
        libc::ENFILE => "ENFILE".into(),
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::ENOBUFS => "ENOBUFS".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        e => format!("errno{e}"),
    }
}

/// The abstract socket address a mailslot `name` is served on (exits on a bad name).
fn slot_address(name: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    let key = match mailslot::Name::parse(name) {
        Ok(k) => k.key(),
        Err(e) => {
            say!("bad-name {e}");
            std::process::exit(1)
        }
    };
    let path = format!("mailslot/v1/{key}");
    // SAFETY: sockaddr_un is plain old data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() + 1 > addr.sun_path.len() {
        say!("name-too-long");
        std::process::exit(1)
    }
    for (i, b) in path.bytes().enumerate() {
        addr.sun_path[i + 1] = b as libc::c_char;
    }
    let len = (size_of::<libc::sa_family_t>() + 1 + path.len()) as libc::socklen_t;
    (addr, len)
}

/// Opens up to `n` raw connections to the slot's socket and holds them without ever reading.
fn connect_flood(name: &str, n: usize) {
    let (addr, addr_len) = slot_address(name);
    let mut held: Vec<RawFd> = Vec::with_capacity(n);
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    let mut stall_since: Option<Instant> = None;
    while held.len() < n {
        // SAFETY: plain system call with constant arguments.
        let fd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            *failures
                .entry(format!("socket:{}", errno_name(e)))
                .or_default() += 1;
            break; // out of descriptors on our side
        }
        // SAFETY: `addr` is a valid sockaddr_un of `addr_len` bytes.
        let r = unsafe { libc::connect(fd, std::ptr::addr_of!(addr).cast(), addr_len) };
        if r == 0 {
            held.push(fd);
            stall_since = None;
            if held.len().rem_euclid(1000) == 0 {
                say!("connected {}", held.len());
            }
            continue;
        }
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: closing the descriptor we just created.
        unsafe { libc::close(fd) };
        *failures
            .entry(format!("connect:{}", errno_name(e)))
            .or_default() += 1;
        if e == libc::EAGAIN {
            // The listener's backlog is full: the owner is not accepting. Wait a little, give up
            // after 3 s without progress.
            let since = *stall_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        break;
    }
    say!(
        "done connected={} failures={failures:?} ms={}",
        held.len(),
        started.elapsed().as_millis()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Writes class-1 messages of `size` bytes with no timeout until one blocks (to be killed).
/// Prints `opened` once open, then waits `delay_ms` before the first write.
fn fill_and_block(name: &str, size: usize, delay_ms: u64) {
    let writer = open(name);
    say!("opened");
    std::thread::sleep(Duration::from_millis(delay_ms));
    let data = vec![b'F'; size];
    let opts = WriteOptions::new()
        .class(Class::First)
        .timeout(Timeout::Forever);
    loop {
        say!("blocked");
        match writer.write_with(&data, opts) {
            Ok(()) => say!("ok"),
            Err(e) => {
                say!("err {}", e.win32_code());
                return;
            }
        }
    }
}

/// Creates the slot (everyone may write), prints `ready` and sleeps without reading.
fn own(name: &str, quota: usize, max_msg: usize) {
    let _slot = create_everyone(name, quota, max_msg);
    say!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Like `own`, but reads on command: for each line `drain` on stdin it reads until nothing
/// arrives for 200 ms and prints `drained <n>`; exits at EOF.
fn own_drain(name: &str, quota: usize, max_msg: usize) {
    let slot = create_everyone(name, quota, max_msg);
    say!("ready");
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        if line.trim() != "drain" {
            continue;
        }
        let mut n = 0u64;
        while slot
            .read_message_timeout(Timeout::After(Duration::from_millis(200)))
            .is_ok()
        {
            n += 1;
        }
        say!("drained {n}");
    }
}

fn create_everyone(name: &str, quota: usize, max_msg: usize) -> Mailslot {
    match Mailslot::builder()
        .access(mailslot::Access::Everyone)
        .quota(quota)
        .max_message_size(max_msg)
        .create(name)
    {
        Ok(s) => s,
        Err(e) => {
            say!("create-failed {} {e}", e.win32_code());
            std::process::exit(1)
        }
    }
}
