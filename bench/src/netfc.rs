//! First-class writes between two hosts (issue 15): class-1 remote writes from one network
//! namespace to a mailslot in another, beside class-2 datagrams over the same pair and a plain
//! TCP request/response anchor between the same two namespaces, all in one run.
//!
//! The harness makes two network namespaces joined by a veth pair (host A 10.231.0.1, host B
//! 10.231.0.2, /24) and starts one `mailslotd` in each (`FCBENCHA`, `FCBENCHB`, default ports
//! 137/138 and the session service on TCP 139). For each measurement a **receiver** role runs in
//! B and a **sender** role in A; the sender starts `writers` writer processes that each perform
//! `warmup` unmeasured then `count` measured operations, one at a time:
//!
//! - `first`: `MailslotWriter::write_with` to `\\FCBENCHB\mailslot\fc_bench`, class 1 with a
//!   10 s timeout. The write goes to A's daemon (Unix seqpacket), over the pooled NetBIOS session
//!   (TCP 139) to B's daemon, which queues it into the receiver's mailslot and answers; the write
//!   returns with that answer. The receiver reads the mailslot and checks that every write
//!   arrived exactly once.
//! - `second`: the same write, class 2: A's daemon sends one datagram (UDP 138) and answers the
//!   writer at once; B's daemon delivers it. Datagrams can be lost: the receiver counts them.
//! - `tcp` (the anchor): each writer holds one TCP connection (`TCP_NODELAY`) to the receiver,
//!   which answers every `size`-byte request with [`REPLY_LEN`] bytes; one request outstanding
//!   per connection. Thread per connection, std only.
//!
//! Every operation is timed in the writer (`CLOCK_MONOTONIC` before the call and after it
//! returns); p50 and p99 are taken over all writers' samples together. Rate: `first` and `tcp`
//! operations ÷ (latest writer end − earliest writer start); `second` messages *received* ÷ (the
//! receiver's last arrival − earliest writer start), as `net_tput` does.
//!
//! Placement, as ipcbench's default `PIN=1`: host A (its daemon, the sender and the writers) on
//! cpu0, host B (its daemon and the receiver) on cpu1. `PIN=0` leaves everything unpinned, `PIN=2`
//! puts everything on cpu0. Needs root (`ip netns`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use mailslot::daemon::DaemonClient;
use mailslot::{Class, Mailslot, MailslotWriter, ReadError, Timeout, WriteOptions};

use crate::sys::{self, Peer};
use crate::tput::SETTLE;

/// The receiver's mailslot path (8 characters, so that 424 bytes fit one datagram, as in
/// `net_tput`).
pub(crate) const SLOT_PATH: &str = "fc_bench";
/// Host A's NetBIOS name (the writers' host).
const HOST_A: &str = "FCBENCHA";
/// Host B's NetBIOS name (the receiver's host).
const HOST_B: &str = "FCBENCHB";
/// Both daemons' workgroup.
const WORKGROUP: &str = "FCBENCHWG";
/// Host A's address on the veth pair.
const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
/// Host B's address on the veth pair.
const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);
/// The pair's prefix length.
const PREFIX: u8 = 24;
/// The veth device in each namespace.
const DEV: &str = "fc0";
/// Quota of the receiver's mailslot (nothing waits for room).
pub(crate) const QUOTA: usize = 16 << 20;
/// Queued-message limit of the receiver's mailslot.
const MAX_MESSAGES: usize = 1 << 20;
/// Timeout of each class-1 write (the wait for room on host B; never reached here).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once the writers are done, the receiver stops after this long without a message.
const IDLE: Duration = Duration::from_millis(300);
/// Bytes of the TCP anchor's answer.
pub(crate) const REPLY_LEN: usize = 4;
/// Smallest message: sequence number (bytes 0–7), writer id (8), warm-up flag (9).
pub(crate) const MIN_SIZE: usize = 16;

/// What one measurement moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Kind {
    /// Class-1 remote writes (answered when host B has queued them).
    First,
    /// Class-2 remote writes (one datagram each).
    Second,
    /// The anchor: TCP request/response.
    Tcp,
}

impl Kind {
    /// Every kind, in the order they are measured.
    pub(crate) const ALL: [Self; 3] = [Self::Tcp, Self::First, Self::Second];

    fn arg(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Second => "second",
            Self::Tcp => "tcp",
        }
    }
}

/// Unmeasured operations of each writer before it measures `count`.
fn warmup(count: u64) -> u64 {
    count / 10 + 20
}

/// The options of the roles of one measurement.
#[derive(Debug, Clone, Args)]
pub(crate) struct FcRun {
    #[arg(long, value_enum)]
    pub(crate) kind: Kind,
    #[arg(long)]
    pub(crate) size: usize,
    /// Measured operations per writer.
    #[arg(long)]
    pub(crate) count: u64,
    /// Unmeasured operations per writer, before.
    #[arg(long)]
    pub(crate) warmup: u64,
    /// Writer processes.
    #[arg(long)]
    pub(crate) writers: usize,
    /// Where the writers write: the mailslot's name, or the TCP anchor's address.
    #[arg(long, default_value = "")]
    pub(crate) to: String,
}

impl FcRun {
    /// The command line of `role` (a hidden subcommand's name) with these options.
    pub(crate) fn command(&self, role: &str) -> Vec<String> {
        vec![
            role.into(),
            "--kind".into(),
            self.kind.arg().into(),
            "--size".into(),
            self.size.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--writers".into(),
            self.writers.to_string(),
            "--to".into(),
            self.to.clone(),
        ]
    }

    /// Measured operations of all writers.
    fn total(&self) -> u64 {
        self.count * self.writers as u64
    }
}

/// Which side of the pair a process belongs to.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// Host A: the writers and their daemon.
    A,
    /// Host B: the receiver and its daemon.
    B,
}

/// The CPU of a side's processes under `PIN` (as ipcbench: `1`, the default, writers' side on
/// cpu0 and readers' on cpu1; `2` both on cpu0; `0` unpinned).
fn cpu_of(side: Side) -> Option<usize> {
    match std::env::var("PIN").as_deref().map(str::trim) {
        Ok("0") => None,
        Ok("2") => Some(sys::WRITER_CPU),
        _ => Some(match side {
            Side::A => sys::WRITER_CPU,
            Side::B => sys::READER_CPU,
        }),
    }
}

/// Pins the calling process to its side's CPU (see [`cpu_of`]).
fn pin(side: Side) -> Result<()> {
    match cpu_of(side) {
        Some(cpu) => sys::set_affinity(0, Some(cpu)),
        None => Ok(()),
    }
}

/// Why this bench cannot run on this machine, if it cannot.
pub(crate) fn unavailable() -> Option<String> {
    // SAFETY: geteuid always succeeds.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (it makes two network namespaces with `ip netns`)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns list` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!(
            "cannot run `ip` (Debian: apt-get install iproute2): {e}"
        )),
    }
}

/// Runs `ip <args>`; an error quoting its standard error if it fails.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A named network namespace of this run; deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn add(name: String) -> Result<Self> {
        ip(&["netns", "add", &name])?;
        Ok(Self { name })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            crate::progress(&format!("removing network namespace {}: {e:#}", self.name));
        }
    }
}

/// Runs `f` on a thread that has entered the named network namespace `ns` (so that it can reach
/// the daemon's control socket there, an abstract address of that namespace).
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: `file` is an open descriptor of a network namespace; setns changes only
            // the namespace of this thread, which ends with `f`.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("entering network namespace {ns}"));
            }
            f()
        })
        .join()
        .map_err(|_| anyhow!("the thread in network namespace {ns} panicked"))?
    })
}

/// A `mailslotd` in one of the pair's namespaces; stopped (SIGTERM) when dropped.
struct NsDaemon {
    child: Child,
    pid: u32,
    ns: String,
}

impl NsDaemon {
    /// Starts the daemon `exe` as `name` on `addr` in namespace `ns`, placed on `side`'s CPU,
    /// and waits until its names are registered.
    fn start(
        exe: &Path,
        config: &Path,
        ns: &str,
        name: &str,
        addr: Ipv4Addr,
        side: Side,
    ) -> Result<Self> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(exe)
            .arg("--config")
            .arg(config)
            .args(["--netbios-name", name, "--workgroup", WORKGROUP])
            .args(["--interface", &format!("{addr}/{PREFIX}")])
            .args(["--user", "", "--standalone", "--session-port", "139"])
            .env("MAILSLOTD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let cpu = cpu_of(side);
        // SAFETY: the hook only makes one system call (no allocation, no lock); the daemon and
        // every thread it starts inherit the affinity.
        unsafe {
            cmd.pre_exec(move || match cpu {
                Some(c) => sys::try_set_affinity(0, Some(c)),
                None => Ok(()),
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} in {ns}", exe.display()))?;
        let mut d = Self {
            pid: child.id(),
            child,
            ns: ns.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = d.child.try_wait()? {
                bail!("mailslotd in {ns} exited during startup ({st})");
            }
            if let Ok(s) = d.status() {
                let names = s["names"].as_array().cloned().unwrap_or_default();
                if !names.is_empty() && names.iter().all(|n| n["registered"] == true) {
                    return Ok(d);
                }
            }
            if Instant::now() > deadline {
                bail!("mailslotd in {ns} did not register its names within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's status (`Request::Status`) as JSON.
    fn status(&self) -> Result<serde_json::Value> {
        let s = in_netns(&self.ns, || {
            Ok(DaemonClient::connect()?.status(Duration::from_secs(5))?)
        })?;
        Ok(serde_json::to_value(s)?)
    }

    /// CPU time the daemon used so far, ns.
    fn cpu_ns(&self) -> Result<u64> {
        sys::proc_stat(self.pid)
            .map(|s| s.cpu_ns)
            .ok_or_else(|| anyhow!("mailslotd in {} (pid {}) is gone", self.ns, self.pid))
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        sys::stop_child(&mut self.child, Duration::from_secs(3));
    }
}

/// The two hosts: their namespaces and daemons. Dropping it stops the daemons, then removes the
/// namespaces.
pub(crate) struct Pair {
    // Fields drop in this order: the daemons before their namespaces.
    a: NsDaemon,
    b: NsDaemon,
    ns_a: Netns,
    ns_b: Netns,
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Operations per second (for `second`: messages received per second).
    pub(crate) rate: f64,
    /// Median duration of one operation, ns.
    pub(crate) p50: f64,
    /// 99th percentile, ns.
    pub(crate) p99: f64,
    /// Fraction of the measured messages that did not arrive (0 for `first` and `tcp`).
    pub(crate) loss: f64,
}

impl Pair {
    /// Makes the namespaces, the veth pair between them and the two daemons (`mailslotd` found
    /// as for the `net` bench), with an empty configuration file in `dir`.
    pub(crate) fn start(dir: &Path) -> Result<Self> {
        let exe = crate::net::daemon_path()?;
        std::fs::create_dir_all(dir)?;
        let config = dir.join("mailslotd-fc.toml");
        std::fs::write(&config, "# net_fc bench: defaults\n")?;
        let pid = std::process::id();
        let ns_a = Netns::add(format!("msfc{pid}a"))?;
        let ns_b = Netns::add(format!("msfc{pid}b"))?;
        let (a, b) = (ns_a.name.as_str(), ns_b.name.as_str());
        ip(&[
            "-n", a, "link", "add", DEV, "type", "veth", "peer", "name", DEV, "netns", b,
        ])?;
        for (ns, addr) in [(a, ADDR_A), (b, ADDR_B)] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            let cidr = format!("{addr}/{PREFIX}");
            ip(&["-n", ns, "addr", "add", &cidr, "brd", "+", "dev", DEV])?;
            ip(&["-n", ns, "link", "set", DEV, "up"])?;
        }
        let da = NsDaemon::start(&exe, &config, a, HOST_A, ADDR_A, Side::A)?;
        let db = NsDaemon::start(&exe, &config, b, HOST_B, ADDR_B, Side::B)?;
        Ok(Self {
            a: da,
            b: db,
            ns_a,
            ns_b,
        })
    }

    /// Measures `kind` once: `writers` writers, `total` measured operations in all, `size`-byte
    /// messages.
    pub(crate) fn measure(
        &self,
        kind: Kind,
        size: usize,
        total: u64,
        writers: usize,
    ) -> Result<Sample> {
        let count = (total / writers as u64).max(1);
        let mut run = FcRun {
            kind,
            size,
            count,
            warmup: warmup(count),
            writers,
            to: String::new(),
        };
        let mut recv = Peer::spawn_in(Some(&self.ns_b.name), &run.command("__fc-recv"))?;
        let ready = recv.read_line()?;
        run.to = match kind {
            Kind::Tcp => {
                let port = ready
                    .strip_prefix("ready port=")
                    .ok_or_else(|| anyhow!("the TCP anchor's server said {ready:?}"))?;
                format!("{ADDR_B}:{port}")
            }
            Kind::First | Kind::Second => {
                if ready != "ready" {
                    bail!("the receiver said {ready:?}, expected \"ready\"");
                }
                format!(r"\\{HOST_B}\mailslot\{SLOT_PATH}")
            }
        };
        let (a0, b0) = (self.a.status()?, self.b.status()?);
        // The daemons' CPU time is sampled while the sender runs, so that the part spent
        // between the writers' start and end can be picked out afterwards.
        let stop = AtomicBool::new(false);
        let (sent, trace) = std::thread::scope(|s| {
            let sampler = s.spawn(|| {
                let mut trace = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    if let (Ok(a), Ok(b)) = (self.a.cpu_ns(), self.b.cpu_ns()) {
                        trace.push((sys::now_ns(), [a, b]));
                    }
                    std::thread::sleep(CPU_SAMPLE);
                }
                trace
            });
            let sent = sys::run_role_in(Some(&self.ns_a.name), &run.command("__fc-send"));
            stop.store(true, Ordering::Release);
            (sent, sampler.join().unwrap_or_default())
        });
        // If the sender failed, `recv` is dropped with it: its stdin closes and it ends.
        let sent = sent?;
        // A receiver that got every message has ended already: its pipe may be closed.
        let _ = recv.send_line("done");
        let got = sys::parse_kv(&recv.read_line()?);
        recv.finish()?;
        let (a1, b1) = (self.a.status()?, self.b.status()?);
        let n = run.total();
        let warm = run.warmup * writers as u64;
        let what = format!("net_fc {} ×{writers}", kind.arg());
        let num = |kv, key| sys::kv_f64(kv, key, &what);
        let (t0, t1) = (num(&sent, "t0")?, num(&sent, "t1")?);
        let secs = |end: f64| (end - t0).max(1.0) / 1e9;
        let [ca, cb] = {
            let (c0, c1) = (cpu_at(&trace, t0 as u64), cpu_at(&trace, t1 as u64));
            [c1[0].saturating_sub(c0[0]), c1[1].saturating_sub(c0[1])]
        };
        let (rate, loss, note) = match kind {
            Kind::Tcp => {
                let served = num(&got, "served")? as u64;
                if served != n + warm {
                    bail!(
                        "{what}: the server answered {served} requests, expected {}",
                        n + warm
                    );
                }
                (n as f64 / secs(t1), 0.0, String::new())
            }
            Kind::First | Kind::Second => {
                let recvd = num(&got, "recvd")?;
                let dup = num(&got, "dup")?;
                let delta = |(s0, s1): (&serde_json::Value, &serde_json::Value), sec, key| {
                    let v = |s: &serde_json::Value| s[sec][key].as_u64().unwrap_or(0);
                    v(s1).saturating_sub(v(s0))
                };
                let (a, b) = ((&a0, &a1), (&b0, &b1));
                let path = if kind == Kind::First {
                    format!(
                        "A sent {} (acknowledged {}, sessions opened {}, resent {}), B received {} \
                         (queued {}, repeated {}, failed {})",
                        delta(a, "session", "first_class_sent"),
                        delta(a, "session", "first_class_acknowledged"),
                        delta(a, "session", "sessions_opened"),
                        delta(a, "session", "first_class_resent"),
                        delta(b, "session", "first_class_received"),
                        delta(b, "session", "first_class_delivered"),
                        delta(b, "session", "first_class_repeated"),
                        delta(b, "session", "first_class_failed"),
                    )
                } else {
                    format!(
                        "B received {} datagrams, delivered {} (dropped {} full)",
                        delta(b, "counters", "datagrams_received"),
                        delta(b, "delivery", "delivered"),
                        delta(b, "delivery", "dropped_full"),
                    )
                };
                let note = format!(
                    "; receiver got {recvd} of {n} ({dup} twice), {} warm-up; {path} (warm-up \
                     included); daemons' CPU per write: A {:.0} ns, B {:.0} ns",
                    num(&got, "warm")?,
                    ca as f64 / n as f64,
                    cb as f64 / n as f64
                );
                if kind == Kind::First && (recvd as u64 != n || dup > 0.0) {
                    bail!("{what}: every class-1 write returned success, but{note}");
                }
                let rate = if kind == Kind::First {
                    n as f64 / secs(t1)
                } else {
                    recvd / secs(num(&got, "t_last")?)
                };
                (rate, 1.0 - recvd / n as f64, note)
            }
        };
        let sample = Sample {
            rate,
            p50: num(&sent, "p50_ns")?,
            p99: num(&sent, "p99_ns")?,
            loss,
        };
        crate::progress(&format!(
            "  {what}, {size} B: {n} operations, {:.0}/s, p50 {:.1} µs, p99 {:.1} µs{note}",
            sample.rate,
            sample.p50 / 1e3,
            sample.p99 / 1e3
        ));
        Ok(sample)
    }
}

/// How often the harness samples the daemons' CPU time during a measurement.
const CPU_SAMPLE: Duration = Duration::from_millis(5);

/// The CPU times (host A's daemon, host B's) of the last sample taken at or before `t` (the
/// first sample if none was; zeros if there is none).
fn cpu_at(trace: &[(u64, [u64; 2])], t: u64) -> [u64; 2] {
    trace
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .or(trace.first())
        .map_or([0, 0], |&(_, c)| c)
}

/// A thread that waits for the harness's `done` (or its stdin closing); the flag is set then.
fn watch_done() -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    std::thread::spawn(move || {
        let _ = sys::hear();
        flag.store(true, Ordering::Release);
    });
    done
}

/// The receiver role (host B): the mailslot's owner, or the TCP anchor's server.
pub(crate) fn recv(run: FcRun) -> Result<()> {
    pin(Side::B)?;
    if run.size < MIN_SIZE {
        bail!("message size must be at least {MIN_SIZE} bytes");
    }
    match run.kind {
        Kind::Tcp => serve_tcp(&run),
        Kind::First | Kind::Second => read_slot(&run),
    }
}

/// Owns `\\.\mailslot\fc_bench`, says `ready`, and reads until every measured message arrived,
/// or the harness said `done` and nothing came for [`IDLE`]; prints what it received.
fn read_slot(run: &FcRun) -> Result<()> {
    let name = format!(r"\\.\mailslot\{SLOT_PATH}");
    let slot = Mailslot::builder()
        .quota(QUOTA)
        .max_messages(MAX_MESSAGES)
        .create(&name)
        .with_context(|| format!("creating {name}"))?;
    sys::say("ready")?;
    let done = watch_done();
    let n = run.total();
    let mut seen = vec![vec![false; run.count as usize]; run.writers];
    let mut buf = vec![0u8; run.size + 64];
    let (mut recvd, mut warm, mut dup, mut last) = (0u64, 0u64, 0u64, 0u64);
    let mut quiet_since = Instant::now();
    while recvd < n {
        let info = match slot.read_timeout_with(&mut buf, Timeout::After(Duration::from_millis(20)))
        {
            Ok(i) => i,
            Err(ReadError::Timeout) => {
                if done.load(Ordering::Acquire) && quiet_since.elapsed() >= IDLE {
                    break;
                }
                continue;
            }
            Err(e) => return Err(e).context("mailslot read"),
        };
        quiet_since = Instant::now();
        if info.len != run.size {
            bail!("received {} bytes, expected {}", info.len, run.size);
        }
        if buf[9] != 0 {
            warm += 1;
            continue;
        }
        let (id, seq) = (buf[8], u64::from_le_bytes(buf[..8].try_into()?));
        let cell = seen
            .get_mut(id as usize)
            .and_then(|v| v.get_mut(seq as usize))
            .ok_or_else(|| anyhow!("message {seq} of writer {id}: no such writer or sequence"))?;
        if *cell {
            dup += 1;
        } else {
            *cell = true;
            recvd += 1;
            last = sys::now_ns();
        }
    }
    sys::say(&format!(
        "kind={} recvd={recvd} warm={warm} dup={dup} t_last={last}",
        run.kind.arg()
    ))
}

/// The TCP anchor's server: listens on an ephemeral port, says `ready port=P`, answers every
/// `size`-byte request of every connection with [`REPLY_LEN`] bytes (a thread per connection)
/// until the harness says `done`, then prints how many it answered.
fn serve_tcp(run: &FcRun) -> Result<()> {
    let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).context("binding the TCP anchor")?;
    let port = l.local_addr()?.port();
    let served = Arc::new(AtomicU64::new(0));
    let size = run.size;
    {
        let served = Arc::clone(&served);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let served = Arc::clone(&served);
                std::thread::spawn(move || answer(s, size, &served));
            }
        });
    }
    sys::say(&format!("ready port={port}"))?;
    let _ = sys::hear();
    sys::say(&format!(
        "kind=tcp served={}",
        served.load(Ordering::Acquire)
    ))
}

/// One connection of the TCP anchor: reads `size` bytes, answers [`REPLY_LEN`], until the client
/// closes it (or it fails: the client then fails the run).
fn answer(mut s: TcpStream, size: usize, served: &AtomicU64) {
    if s.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; size];
    let reply = [0u8; REPLY_LEN];
    while s.read_exact(&mut buf).is_ok() {
        served.fetch_add(1, Ordering::AcqRel);
        if s.write_all(&reply).is_err() {
            return;
        }
    }
}

/// The sender role (host A): starts the writers, lets them go together, and prints the rate and
/// the percentiles over all their samples.
pub(crate) fn send(run: FcRun) -> Result<()> {
    pin(Side::A)?;
    if run.size < MIN_SIZE || !(1..=255).contains(&run.writers) {
        bail!("size must be at least {MIN_SIZE} and writers 1–255");
    }
    let mut peers = Vec::with_capacity(run.writers);
    for id in 0..run.writers {
        let mut args = run.command("__fc-writer");
        args.extend(["--id".into(), id.to_string()]);
        peers.push(Peer::spawn(&args)?);
    }
    for p in &mut peers {
        p.expect("ready")?;
    }
    for p in &mut peers {
        p.send_line("go")?;
    }
    let (mut t0, mut t1) = (u64::MAX, 0u64);
    let mut lat = Vec::with_capacity(run.total() as usize);
    for mut p in peers {
        let kv = sys::parse_kv(&p.read_line()?);
        t0 = t0.min(sys::kv_f64(&kv, "t0", "writer")? as u64);
        t1 = t1.max(sys::kv_f64(&kv, "t1", "writer")? as u64);
        for v in p.read_line()?.split_whitespace() {
            lat.push(v.parse::<u64>().context("writer sample")?);
        }
        p.finish()?;
    }
    lat.sort_unstable();
    let n = lat.len();
    if n == 0 {
        bail!("the writers measured nothing");
    }
    let secs = t1.saturating_sub(t0) as f64 / 1e9;
    sys::say(&format!(
        "kind={} writers={} n={n} t0={t0} t1={t1} rate={:.0} min_ns={} p50_ns={} p99_ns={}",
        run.kind.arg(),
        run.writers,
        n as f64 / secs.max(1e-9),
        lat[0],
        lat[n / 2],
        lat[n * 99 / 100]
    ))
}

/// One writer's operation: a remote write through the library, or a TCP request and its answer.
enum Op {
    Write(MailslotWriter, WriteOptions),
    Tcp(TcpStream),
}

impl Op {
    /// Opens the writer (class 1 with [`WRITE_TIMEOUT`], or class 2) or connects to the anchor.
    fn open(run: &FcRun) -> Result<Self> {
        Ok(match run.kind {
            Kind::First | Kind::Second => {
                let w =
                    MailslotWriter::open(&run.to).with_context(|| format!("opening {}", run.to))?;
                let opts = match run.kind {
                    Kind::First => WriteOptions::new()
                        .class(Class::First)
                        .timeout(WRITE_TIMEOUT),
                    _ => WriteOptions::new(),
                };
                Self::Write(w, opts)
            }
            Kind::Tcp => {
                let s = TcpStream::connect(&run.to)
                    .with_context(|| format!("connecting to the TCP anchor at {}", run.to))?;
                s.set_nodelay(true)?;
                Self::Tcp(s)
            }
        })
    }

    /// One write, returning when it is answered.
    fn call(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Self::Write(w, opts) => w.write_with(data, *opts).context("remote write"),
            Self::Tcp(s) => {
                let mut reply = [0u8; REPLY_LEN];
                s.write_all(data).context("TCP anchor request")?;
                s.read_exact(&mut reply).context("TCP anchor answer")
            }
        }
    }
}

/// One writer (host A): opens its mailslot writer or TCP connection, does its warm-up, says
/// `ready`, waits for `go`, then times `count` operations one at a time and prints
/// `t0=… t1=…` and a line of samples (ns).
pub(crate) fn writer(run: FcRun, id: u8) -> Result<()> {
    pin(Side::A)?;
    if run.size < MIN_SIZE {
        bail!("message size must be at least {MIN_SIZE} bytes");
    }
    let mut op = Op::open(&run)?;
    let mut buf = vec![0u8; run.size];
    buf[8] = id;
    buf[9] = 1;
    for i in 0..run.warmup {
        buf[..8].copy_from_slice(&i.to_le_bytes());
        op.call(&buf)?;
    }
    buf[9] = 0;
    sys::say("ready")?;
    let go = sys::hear()?;
    if go != "go" {
        bail!("writer expected `go`, got {go:?}");
    }
    std::thread::sleep(SETTLE);
    let mut out = String::with_capacity(run.count as usize * 7);
    let t0 = sys::now_ns();
    for i in 0..run.count {
        buf[..8].copy_from_slice(&i.to_le_bytes());
        let t = sys::now_ns();
        op.call(&buf)?;
        out.push_str(&(sys::now_ns() - t).to_string());
        out.push(' ');
    }
    let t1 = sys::now_ns();
    sys::say(&format!("t0={t0} t1={t1}"))?;
    sys::say(out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_read_from_the_last_sample_before_the_instant() {
        let trace = [(100, [1, 10]), (200, [2, 20]), (300, [3, 30])];
        assert_eq!(cpu_at(&trace, 50), [1, 10], "before the first: the first");
        assert_eq!(cpu_at(&trace, 200), [2, 20]);
        assert_eq!(cpu_at(&trace, 299), [2, 20]);
        assert_eq!(cpu_at(&trace, 1000), [3, 30]);
        assert_eq!(cpu_at(&[], 1000), [0, 0]);
    }

    #[test]
    fn the_roles_split_the_writes_and_warm_up_as_said() {
        let run = FcRun {
            kind: Kind::First,
            size: 64,
            count: 250,
            warmup: warmup(250),
            writers: 8,
            to: String::new(),
        };
        assert_eq!((run.total(), run.warmup), (2000, 45));
        let args = run.command("__fc-send");
        assert_eq!(args[0], "__fc-send");
        assert!(args.windows(2).any(|w| w == ["--kind", "first"]));
    }
}
