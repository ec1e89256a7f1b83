//! Small process-level helpers shared by every role: CPU pinning, the clock, self re-exec with a
//! line protocol over stdin/stdout, and `key=value` result lines.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

/// The writer side's CPU (as in ipcbench: writer/pinger on cpu0).
pub(crate) const WRITER_CPU: usize = 0;
/// The reader side's CPU (as in ipcbench: reader/owner/echoer on cpu1).
pub(crate) const READER_CPU: usize = 1;

/// Pins the calling thread (and so every thread it starts later) to `cpu`, honouring the same
/// `PIN` environment variable as ipcbench: `1` (default) pins as asked, `2` pins everything to
/// cpu0, `0` leaves the process unpinned.
pub(crate) fn pin(cpu: usize) -> Result<()> {
    let mode = std::env::var("PIN").unwrap_or_else(|_| "1".into());
    let cpu = match mode.trim() {
        "0" => return Ok(()),
        "2" => 0,
        _ => cpu,
    };
    set_affinity(0, Some(cpu)).context("set PIN=0 to run unpinned")
}

/// Sets the CPU affinity of thread `tid` (0: the calling thread) to `cpu`, or to every CPU for
/// `None`.
pub(crate) fn set_affinity(tid: libc::pid_t, cpu: Option<usize>) -> Result<()> {
    try_set_affinity(tid, cpu)
        .with_context(|| format!("sched_setaffinity of thread {tid} to {cpu:?}"))
}

/// [`set_affinity`] returning the bare OS error, so that a caller can tell a thread that has
/// exited (`ESRCH`) from a real failure.
pub(crate) fn try_set_affinity(tid: libc::pid_t, cpu: Option<usize>) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it, and
    // sched_setaffinity reads exactly size_of::<cpu_set_t>() bytes from it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => {
                for c in 0..libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Longest a measuring role may run before [`watchdog`] ends it.
pub(crate) const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(300);

/// Ends this process with an error after [`WATCHDOG`], so that a lost message cannot hang the
/// harness. The measuring roles read with the library's default timeout (forever), as a user
/// would; their peers see the owner gone and exit too.
pub(crate) fn watchdog(what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(WATCHDOG);
        eprintln!("mailslot-bench: {what} still running after {WATCHDOG:?}; giving up");
        std::process::exit(3);
    });
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock ipcbench uses, comparable across processes.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Parses a line of whitespace-separated `key=value` pairs (ipcbench's and our roles' output).
pub(crate) fn parse_kv(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Reads `key` from a parsed result line as a number.
pub(crate) fn kv_f64(kv: &BTreeMap<String, String>, key: &str, what: &str) -> Result<f64> {
    kv.get(key)
        .ok_or_else(|| anyhow!("{what}: no `{key}=` in its output {kv:?}"))?
        .parse()
        .with_context(|| format!("{what}: `{key}` is not a number"))
}

/// The running benchmark binary, for re-executing it with a hidden role subcommand; inside the
/// named network namespace `netns` (`ip netns exec`) when given.
fn self_command(netns: Option<&str>, args: &[String]) -> Result<Command> {
    let exe = std::env::current_exe().context("locating the benchmark binary to re-exec")?;
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args);
    Ok(cmd)
}

/// Runs this binary with a hidden role subcommand to completion and returns its last stdout line
/// parsed as `key=value` pairs. Its stderr is passed through.
pub(crate) fn run_role(args: &[String]) -> Result<BTreeMap<String, String>> {
    run_role_in(None, args)
}

/// [`run_role`] inside the named network namespace `netns` (`ip netns exec`), when given.
pub(crate) fn run_role_in(
    netns: Option<&str>,
    args: &[String],
) -> Result<BTreeMap<String, String>> {
    let out = self_command(netns, args)?
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running role {args:?}"))?;
    if !out.status.success() {
        bail!("role {args:?} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .last()
        .ok_or_else(|| anyhow!("role {args:?} printed nothing"))?;
    Ok(parse_kv(line))
}

/// A peer process (this binary re-executed) that talks one line at a time over stdin/stdout.
pub(crate) struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    what: String,
}

impl Peer {
    /// Starts this binary with `args` (a hidden role), stdin and stdout piped.
    pub(crate) fn spawn(args: &[String]) -> Result<Self> {
        Self::spawn_in(None, args)
    }

    /// [`spawn`](Self::spawn) inside the named network namespace `netns` (`ip netns exec`), when
    /// given.
    pub(crate) fn spawn_in(netns: Option<&str>, args: &[String]) -> Result<Self> {
        let mut child = self_command(netns, args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting role {args:?}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Self {
            child,
            stdin,
            stdout,
            what: args.first().cloned().unwrap_or_default(),
        })
    }

    /// The next line the peer prints (without the newline); an error if it exited instead.
    pub(crate) fn read_line(&mut self) -> Result<String> {
        let mut s = String::new();
        let n = self
            .stdout
            .read_line(&mut s)
            .with_context(|| format!("reading from {}", self.what))?;
        if n == 0 {
            let st = self.child.wait()?;
            bail!("{} exited early ({st})", self.what);
        }
        Ok(s.trim_end().to_string())
    }

    /// Waits for the peer to print exactly `want`.
    pub(crate) fn expect(&mut self, want: &str) -> Result<()> {
        let got = self.read_line()?;
        if got != want {
            bail!("{} said {got:?}, expected {want:?}", self.what);
        }
        Ok(())
    }

    /// Sends one line to the peer.
    pub(crate) fn send_line(&mut self, line: &str) -> Result<()> {
        let w = self.stdin.as_mut().ok_or_else(|| anyhow!("stdin closed"))?;
        writeln!(w, "{line}")
            .and_then(|()| w.flush())
            .with_context(|| format!("writing to {}", self.what))
    }

    /// Closes the peer's stdin and waits for it to exit successfully.
    pub(crate) fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let st = self.child.wait()?;
        if !st.success() {
            bail!("{} failed ({st})", self.what);
        }
        Ok(())
    }
}

/// The role side of [`Peer`]: prints one line to the parent.
pub(crate) fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The role side of [`Peer`]: waits for one line from the parent.
pub(crate) fn hear() -> Result<String> {
    let mut s = String::new();
    if std::io::stdin().read_line(&mut s)? == 0 {
        bail!("parent closed the control pipe");
    }
    Ok(s.trim_end().to_string())
}

/// What the harness reads from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcStat {
    /// Parent process id.
    pub ppid: u32,
    /// CPU time its live threads have used so far, in nanoseconds: the sum of
    /// `/proc/<pid>/task/*/schedstat` run times (ns resolution), or utime + stime of
    /// `/proc/<pid>/stat` (clock-tick resolution, 10 ms) where schedstat is missing.
    pub cpu_ns: u64,
    /// Start time after boot, in clock ticks (orders processes forked one after the other).
    pub start: u64,
}

/// Reads `/proc/<pid>/stat`; `None` once the process is gone (or unreadable).
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': [0] state, [1] ppid, … [11] utime, [12] stime, … [19] starttime (man 5 proc).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ticks_ns = (num(11)? + num(12)?) * (1_000_000_000 / tck);
    Some(ProcStat {
        ppid: num(1)? as u32,
        cpu_ns: schedstat_ns(pid).unwrap_or(ticks_ns),
        start: num(19)?,
    })
}

/// The children of `parent` that exist now, oldest (first forked) first.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let mut out: Vec<(u64, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = proc_stat(pid)?;
            (s.ppid == parent).then_some((s.start, pid))
        })
        .collect();
    out.sort_unstable();
    out.into_iter().map(|(_, pid)| pid).collect()
}

/// The summed run time (ns) of every live thread of `pid`, from `/proc/<pid>/task/*/schedstat`.
fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut sum = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
        sum += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// Stops a child: SIGTERM, up to `grace` for it to exit, then SIGKILL; reaps it.
pub(crate) fn stop_child(child: &mut Child, grace: std::time::Duration) {
    // SAFETY: signals only our own child, by its pid (not reaped yet).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
