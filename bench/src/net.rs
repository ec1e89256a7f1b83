//! Network throughput: NetBIOS datagrams over UDP loopback → `mailslotd` → a local mailslot,
//! beside ipcbench's `udp` (direct UDP, `BATCH=32`) and `udprouter` (UDP → a forwarding process →
//! Unix socket → owner, `BATCH=32`).
//!
//! Three processes, as in `udprouter`: a **sender** (this binary, `__net-sender`) sends N
//! pre-encoded DIRECT_UNIQUE datagrams to the daemon's port with `sendmmsg` batches of 32 from an
//! ephemeral port; the **daemon** (`target/release/mailslotd`, started once by the harness on a
//! free high port) parses them and delivers them into the local mailslot; the **owner**
//! (`__net-owner`) reads the mailslot as fast as it can. Timing mirrors ipcbench `tput`: t0 in the
//! sender just before its first send (20 ms after `go`), t1 in the owner after the last message
//! it received; it stops at the last sequence number, at N messages, or after [`IDLE`] without
//! one. rate = received / (t1 − t0); loss = 1 − received / N. The daemon's CPU is the growth of
//! utime + stime in `/proc/<pid>/stat` across the measurement, divided by N.
//!
//! Placement: each measurement runs twice. **Pinned** places the processes as ipcbench places
//! the `udp` anchor the target is set against (its default, `PIN=1`): the sender on cpu0, the
//! receiving side — the daemon and the owner — on cpu1. **Unpinned** pins nothing; it is set
//! beside `udp` run with `PIN=0`. `udprouter` is unpinned in both (its own default). The `PIN`
//! environment variable does not apply to this bench.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use mailslot::daemon::DaemonClient;
use mailslot::{Mailslot, ReadError, Timeout};
use mailslot_proto::{MailslotMessage, MailslotWriteRepr, MsgType, NetbiosName};

use crate::roles::NetRun;
use crate::sys::{self, Peer};
use crate::tput::SETTLE;

/// The local mailslot the datagrams go to. Its path has 8 characters so that a 424-byte payload
/// is within the network limit (`432 − roundup4(8)` = 424, [MS-MAIL]).
pub(crate) const SLOT_NAME: &str = r"\\.\mailslot\netbench";
/// The same name as it travels in the SMB transaction.
const WIRE_NAME: &[u8] = b"\\MAILSLOT\\netbench";
/// The daemon's NetBIOS computer name: the datagrams' destination.
const DAEMON_NAME: &str = "BENCH";
/// Datagrams per `sendmmsg`, as `BATCH=32` in ipcbench.
pub(crate) const BATCH: usize = 32;
/// Quota of the owner's mailslot.
pub(crate) const QUOTA: usize = 16 << 20;
/// Queued-message limit of the owner's mailslot (the quota, not the count, should be the limit).
const MAX_MESSAGES: usize = 1 << 20;
/// The owner stops after this long without a message.
pub(crate) const IDLE: Duration = Duration::from_millis(500);
/// Environment variable naming the daemon binary (default: `mailslotd` beside this binary).
pub(crate) const DAEMON_ENV: &str = "MAILSLOTD";

/// Where the processes of one measurement run (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Placement {
    /// Sender on cpu0; daemon and owner on cpu1 (as ipcbench pins `udp`).
    Pinned,
    /// Nothing pinned.
    Unpinned,
}

impl Placement {
    /// Both placements, in the order they are measured.
    pub(crate) const ALL: [Self; 2] = [Self::Pinned, Self::Unpinned];
}

/// Pins the calling process to `cpu` when `pinned`.
fn pin(cpu: usize, pinned: bool) -> Result<()> {
    if pinned {
        sys::set_affinity(0, Some(cpu))
    } else {
        Ok(())
    }
}

/// Where the daemon binary is: `$MAILSLOTD`, else `mailslotd` in this binary's directory. When
/// it is missing there and this binary is a cargo release build of this workspace, builds it
/// (`cargo build --release -p mailslotd`) once.
pub(crate) fn daemon_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(DAEMON_ENV) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("{DAEMON_ENV}={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("benchmark binary has no directory"))?;
    let path = dir.join("mailslotd");
    let hint = format!(
        "the daemon binary {} is missing: build it with `cargo build --release -p mailslotd` \
         (or set {DAEMON_ENV}=<path to mailslotd>)",
        path.display()
    );
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.toml");
    if dir.file_name().and_then(|n| n.to_str()) != Some("release") || !manifest.is_file() {
        // Not in a source tree: use the binary beside us as it is.
        if path.is_file() {
            return Ok(path);
        }
        bail!("{hint}");
    }
    // In the source tree, cargo rebuilds it if the sources changed (a daemon built from older
    // sources may not speak the library's current local protocol) and does nothing otherwise.
    crate::progress("building mailslotd (cargo build --release -p mailslotd)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "mailslotd",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", dir.parent().unwrap_or(dir))
        .status();
    match st {
        Ok(st) if st.success() && path.is_file() => Ok(path),
        Ok(st) => bail!("{hint} (the automatic build ended with {st})"),
        Err(e) => bail!("{hint} (cannot run cargo: {e})"),
    }
}

/// Two free UDP ports `p`, `p + 1` on 0.0.0.0, starting near `20000 + pid % 10000`.
fn free_ports() -> Result<(u16, u16)> {
    let base = 20_000 + (std::process::id() % 10_000) as u16;
    for i in 0..200u16 {
        let p = base.wrapping_add(i * 2);
        if !(20_000..=60_000).contains(&p) {
            continue;
        }
        let a = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p));
        let b = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p + 1));
        if a.is_ok() && b.is_ok() {
            return Ok((p, p + 1));
        }
    }
    bail!("no two free UDP ports found above 20000")
}

/// The daemon under test, a child of the harness; stopped (SIGTERM) when dropped.
pub(crate) struct Daemon {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Its datagram port.
    pub port: u16,
}

impl Daemon {
    /// Starts `mailslotd` on free high ports (no root needed, real ports untouched) with an empty
    /// configuration file in `dir`, and waits until its names are registered.
    pub(crate) fn start(dir: &std::path::Path) -> Result<Self> {
        if DaemonClient::connect().is_ok() {
            bail!(
                "a mailslot daemon already runs in this network namespace (only one can bind the \
                 control socket): stop it, or run the benchmark in its own namespace, e.g. \
                 `unshare --net sh -c 'ip link set lo up && target/release/mailslot-bench …'`"
            );
        }
        let exe = daemon_path()?;
        let (port, name_port) = free_ports()?;
        std::fs::create_dir_all(dir)?;
        let config = dir.join("mailslotd.toml");
        // The sender stamps each datagram with a made-up source address (to spread the
        // daemon's duplicate filter), so the check of the header's source against the packet's
        // is off for this run.
        std::fs::write(&config, "[network]\ncheck_source = false\n")?;
        let mut cmd = Command::new(&exe);
        cmd.arg("--config")
            .arg(&config)
            .args(["--netbios-name", DAEMON_NAME, "--workgroup", "BENCHWG"])
            .args(["--interface", "127.0.0.1/8", "--user", ""])
            .args([
                "--port",
                &port.to_string(),
                "--name-port",
                &name_port.to_string(),
            ])
            .env("MAILSLOTD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut d = Self {
            pid: child.id(),
            child,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = d.child.try_wait()? {
                bail!("{} exited during startup ({st})", exe.display());
            }
            if let Ok(s) = d.status() {
                let names = s["names"].as_array().cloned().unwrap_or_default();
                if !names.is_empty() && names.iter().all(|n| n["registered"] == true) {
                    return Ok(d);
                }
            }
            if Instant::now() > deadline {
                bail!("mailslotd did not register its names within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's status (`Request::Status`) as JSON.
    pub(crate) fn status(&self) -> Result<serde_json::Value> {
        let s = DaemonClient::connect()?.status(Duration::from_secs(5))?;
        Ok(serde_json::to_value(s)?)
    }

    /// Places every thread of the daemon: on the reader side's CPU when pinned, else anywhere.
    ///
    /// The daemon starts and ends threads while it runs: a thread listed in
    /// `/proc/<pid>/task` that exits before its affinity is set (`ESRCH`), or whose entry
    /// vanishes while the directory is read (`ENOENT`), is skipped. Any other error is one; so
    /// is the daemon itself being gone.
    pub(crate) fn place(&self, placement: Placement) -> Result<()> {
        let cpu = (placement == Placement::Pinned).then_some(sys::READER_CPU);
        let what = || format!("listing the threads of mailslotd (pid {})", self.pid);
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).with_context(what)?;
        let gone =
            |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ESRCH) | Some(libc::ENOENT));
        let mut placed = 0usize;
        for t in tasks {
            let t = match t {
                Ok(t) => t,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e).with_context(what),
            };
            let name = t.file_name();
            let tid: libc::pid_t = name
                .to_string_lossy()
                .parse()
                .with_context(|| format!("{}: entry {name:?} is not a thread id", what()))?;
            match sys::try_set_affinity(tid, cpu) {
                Ok(()) => placed += 1,
                Err(e) if gone(&e) => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("sched_setaffinity of mailslotd thread {tid} to {cpu:?}")
                    })
                }
            }
        }
        if placed == 0 {
            bail!(
                "mailslotd (pid {}) is gone: none of its threads could be placed",
                self.pid
            );
        }
        Ok(())
    }

    /// CPU time (utime + stime, all threads) the daemon used so far, ns.
    pub(crate) fn cpu_ns(&self) -> Result<u64> {
        sys::proc_stat(self.pid)
            .map(|s| s.cpu_ns)
            .ok_or_else(|| anyhow!("mailslotd (pid {}) is gone", self.pid))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        sys::stop_child(&mut self.child, Duration::from_secs(3));
    }
}

/// One measurement of our path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Delivered messages per second.
    pub rate: f64,
    /// 1 − received / sent.
    pub loss: f64,
    /// Daemon CPU time per sent datagram, ns.
    pub cpu_ns_per_dgram: f64,
    /// Daemon CPU time per message the owner received, ns.
    pub cpu_ns_per_delivered: f64,
    /// Fraction of the datagrams the daemon never received (socket buffer overflow).
    pub loss_socket: f64,
    /// Fraction the daemon received but did not deliver (mailslot full, or other drops).
    pub loss_daemon: f64,
}

/// Counter `section.key` of a daemon status, 0 when absent.
fn counter(s: &serde_json::Value, section: &str, key: &str) -> u64 {
    s[section][key].as_u64().unwrap_or(0)
}

/// Measures our path once: `count` datagrams with `size`-byte payloads. `epoch` (one per
/// measurement) goes into the header SOURCE_IP so that no (SOURCE_IP, DGM_ID) pair repeats across
/// measurements within the daemon's 2 s duplicate window.
pub(crate) fn measure(
    d: &Daemon,
    size: usize,
    count: u64,
    epoch: u8,
    placement: Placement,
) -> Result<Sample> {
    d.place(placement)?;
    let (s0, c0) = (d.status()?, d.cpu_ns()?);
    let run = NetRun {
        port: d.port,
        size,
        count,
        epoch,
        pinned: placement == Placement::Pinned,
    };
    let kv = sys::run_role(&run.command("__net-owner"))?;
    let c1 = d.cpu_ns()?;
    let s1 = d.status()?;
    let delta = |section: &str, key: &str| {
        counter(&s1, section, key).saturating_sub(counter(&s0, section, key)) as f64
    };
    let n = count as f64;
    let received = delta("counters", "datagrams_received");
    let delivered = delta("delivery", "delivered");
    let recvd = sys::kv_f64(&kv, "recvd", "net owner")?;
    let sample = Sample {
        rate: sys::kv_f64(&kv, "rate", "net owner")?,
        loss: 1.0 - recvd / n,
        cpu_ns_per_dgram: c1.saturating_sub(c0) as f64 / n,
        cpu_ns_per_delivered: c1.saturating_sub(c0) as f64 / recvd.max(1.0),
        loss_socket: 1.0 - received.min(n) / n,
        loss_daemon: (received - delivered).max(0.0) / n,
    };
    crate::progress(&format!(
        "  net {size} B {placement:?}: sent {count}, daemon received {received}, delivered {delivered} \
         (full {}, worker backlog full {}, duplicate {}, other {}), owner read {recvd}; {:.0} msg/s; \
         CPU per sent datagram: daemon {:.0} ns, owner {:.0} ns",
        delta("delivery", "dropped_full"),
        delta("delivery", "dropped_backlog"),
        delta("counters", "dropped_duplicate"),
        delta("counters", "dropped_malformed")
            + delta("counters", "dropped_fragment")
            + delta("counters", "dropped_not_mailslot")
            + delta("counters", "dropped_not_for_us")
            + delta("counters", "ignored_own")
            + delta("delivery", "dropped_refused_remote")
            + delta("delivery", "dropped_too_large")
            + delta("delivery", "dropped_bad_name")
            + delta("delivery", "dropped_no_mailslot")
            + delta("delivery", "dropped_error"),
        sample.rate,
        sample.cpu_ns_per_dgram,
        sys::kv_f64(&kv, "cpu_ns", "net owner")? / n,
    ));
    Ok(sample)
}

/// The owner role: creates [`SLOT_NAME`], starts the sender, reads until the last sequence
/// number, `count` messages or [`IDLE`] without one, and prints one result line.
pub(crate) fn owner(run: NetRun) -> Result<()> {
    let NetRun {
        size,
        count,
        pinned,
        ..
    } = run;
    pin(sys::READER_CPU, pinned)?;
    if size < 8 {
        bail!("message size must be at least 8 bytes (sequence number)");
    }
    let slot = Mailslot::builder()
        .quota(QUOTA)
        .max_messages(MAX_MESSAGES)
        .create(SLOT_NAME)
        .with_context(|| format!("creating {SLOT_NAME}"))?;
    let mut sender = Peer::spawn(&run.command("__net-sender"))?;
    sender.expect("ready")?;
    sender.send_line("go")?;
    let mut buf = vec![0u8; size + 64];
    let (mut got, mut last, mut reordered, mut expect) = (0u64, 0u64, 0u64, 0u64);
    // Like ipcbench's reader, which reads the clock once per recvmmsg batch: the time of the
    // last message is taken when the queue runs empty (a zero-timeout read finds nothing), or
    // at the final sequence number, not after every message.
    let mut unstamped = false;
    while got < count {
        let info = match slot.read_timeout_with(&mut buf, Timeout::ZERO) {
            Ok(i) => i,
            Err(ReadError::Timeout) => {
                if unstamped {
                    last = sys::now_ns();
                    unstamped = false;
                }
                match slot.read_timeout_with(&mut buf, Timeout::After(IDLE)) {
                    Ok(i) => i,
                    Err(ReadError::Timeout) => break,
                    Err(e) => return Err(e).context("mailslot read"),
                }
            }
            Err(e) => return Err(e).context("mailslot read"),
        };
        unstamped = true;
        if info.len != size {
            bail!("received {} bytes, expected {size}", info.len);
        }
        let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        if seq < expect {
            reordered += 1;
        }
        expect = seq + 1;
        got += 1;
        if seq == count - 1 {
            break;
        }
    }
    if unstamped {
        last = sys::now_ns();
    }
    let kv = sys::parse_kv(&sender.read_line()?);
    let t0 = sys::kv_f64(&kv, "t0", "net sender")? as u64;
    sender.finish()?;
    let secs = last.saturating_sub(t0) as f64 / 1e9;
    let cpu = sys::proc_stat(std::process::id()).map_or(0, |s| s.cpu_ns);
    sys::say(&format!(
        "transport=mailslotd test=tput size={size} batch={BATCH} n={count} recvd={got} secs={secs:.4} rate={:.0} loss={:.4} reordered={reordered} cpu_ns={cpu}",
        if secs > 0.0 { got as f64 / secs } else { 0.0 },
        1.0 - got as f64 / count as f64
    ))
}

/// The header SOURCE_IP of message `seq` in measurement `epoch`: 10.epoch.hi.lo with
/// hi.lo = seq / 65536, so (SOURCE_IP, DGM_ID = seq mod 65536) never repeats.
fn source_ip(epoch: u8, seq: u64) -> [u8; 4] {
    let hi = (seq >> 16) as u16;
    [10, epoch, (hi >> 8) as u8, hi as u8]
}

/// The sender role: sends `count` DIRECT_UNIQUE datagrams to `BENCH<00>` at 127.0.0.1:`port`
/// from an ephemeral port, in `sendmmsg` batches of [`BATCH`], like ipcbench's `BATCH=32` writer.
pub(crate) fn sender(run: NetRun) -> Result<()> {
    let NetRun {
        port,
        size,
        count,
        epoch,
        pinned,
    } = run;
    pin(sys::WRITER_CPU, pinned)?;
    let payload = vec![0u8; size];
    let proto = |e: mailslot_proto::Error| anyhow!("encoding the datagram: {e}");
    let msg = MailslotMessage::new(
        MsgType::DirectUnique,
        0,
        Ipv4Addr::new(10, epoch, 0, 0),
        NetbiosName::new("SENDER", 0).map_err(proto)?.into(),
        NetbiosName::new(DAEMON_NAME, 0).map_err(proto)?.into(),
        MailslotWriteRepr {
            name: WIRE_NAME,
            priority: 0,
            class: 2,
            data: &payload,
        },
    );
    msg.write.check_network_size().map_err(proto)?;
    let template = msg.to_vec().map_err(proto)?;
    // The payload is the datagram's tail; DGM_ID is bytes 2–3, SOURCE_IP bytes 4–7 (RFC 1002).
    let off = template.len() - size;
    {
        let mut t = template.clone();
        t[2..4].copy_from_slice(&0x1234u16.to_be_bytes());
        t[4..8].copy_from_slice(&source_ip(epoch, 0x5_0000));
        t[off..off + 8].copy_from_slice(&7u64.to_le_bytes());
        let m = MailslotMessage::parse(&t).map_err(proto)?;
        if m.dgm_id != 0x1234
            || m.source_ip != Ipv4Addr::from(source_ip(epoch, 0x5_0000))
            || m.write.data[..8] != 7u64.to_le_bytes()
        {
            bail!("datagram template: fields are not where the sender patches them");
        }
    }
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the sender socket")?;
    sock.connect((Ipv4Addr::LOCALHOST, port))
        .context("connecting the sender socket")?;
    let mut bufs: Vec<Vec<u8>> = vec![template.clone(); BATCH];
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut mm: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    sys::say("ready")?;
    let go = sys::hear()?;
    if go != "go" {
        bail!("sender expected `go`, got {go:?}");
    }
    std::thread::sleep(SETTLE);
    let t0 = sys::now_ns();
    let mut s = 0u64;
    while s < count {
        let n = (count - s).min(BATCH as u64) as usize;
        for (i, b) in bufs.iter_mut().enumerate().take(n) {
            let q = s + i as u64;
            b[2..4].copy_from_slice(&(q as u16).to_be_bytes());
            b[4..8].copy_from_slice(&source_ip(epoch, q));
            b[off..off + 8].copy_from_slice(&q.to_le_bytes());
        }
        let mut done = 0usize;
        while done < n {
            // SAFETY: `mm[done..n]` are valid headers whose iovecs point into `bufs`, which live
            // (unmoved) until the end of this function.
            let r = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    mm.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error()).context("sendmmsg");
            }
            done += r as usize;
        }
        s += n as u64;
    }
    sys::say(&format!("t0={t0}"))
}
