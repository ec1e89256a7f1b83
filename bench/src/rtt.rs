//! Round-trip roles: ping-pong between two processes that each own a mailslot.
//!
//! Mirrors ipcbench's `lat`: the pinger (cpu0) takes the clock, writes a message to the echoer's
//! mailslot, reads the echo from its own mailslot and takes the clock again — one sample is one
//! full **round trip**. The first `count / 10 + 100` round trips are warm-up and not recorded;
//! then `count` samples are sorted and p50 = sample `count / 2`, p99 = sample `count * 99 / 100`.
//! The echoer (cpu1) reads each message and writes the same bytes back.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mailslot::{Class, Mailslot, MailslotWriter, ReadError, ReadInfo, Timeout, WriteOptions};

use crate::roles::{Load, Spin};
use crate::sys::{self, Peer};
use crate::tput::SETTLE;

/// Warm-up round trips for `count` samples (ipcbench: `count / 10 + 100`).
fn warmup(count: u64) -> u64 {
    count / 10 + 100
}

/// Reads the next message; with a non-zero `spin`, first polls with zero-timeout reads for up to
/// that long (an experiment: what a spin-then-sleep read in the library would gain), then blocks.
fn read(slot: &Mailslot, buf: &mut [u8], spin: Duration) -> Result<ReadInfo> {
    if !spin.is_zero() {
        let start = std::time::Instant::now();
        loop {
            match slot.read_timeout_with(buf, Timeout::ZERO) {
                Ok(info) => return Ok(info),
                Err(ReadError::Timeout) if start.elapsed() < spin => std::hint::spin_loop(),
                Err(ReadError::Timeout) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(slot.read(buf)?)
}

/// Creates a mailslot for the round-trip roles. `nospin` turns off the library's own
/// spin-before-sleep of reads on it ([`mailslot::Builder::spin`] with zero); otherwise it keeps
/// the library's default.
fn create(name: &str, quota: usize, nospin: bool) -> Result<Mailslot> {
    let mut b = Mailslot::builder().max_message_size(0).quota(quota);
    if nospin {
        b = b.spin(Duration::ZERO);
    }
    b.create(name).with_context(|| format!("creating {name}"))
}

/// The pinger role: owns mailslot A, starts the echoer (which owns B), measures `count` round
/// trips of `size`-byte messages and prints ipcbench-style percentiles. `spin` (both sides): see
/// [`read`]; the harness always uses zero. `nospin` (both sides): the library's read spin off,
/// see [`create`].
pub(crate) fn ping(load: Load, spin: Spin) -> Result<()> {
    let Load { size, count, quota } = load;
    let nospin = spin.nospin;
    sys::pin(sys::WRITER_CPU)?;
    if size < 8 || count == 0 {
        bail!("size must be at least 8 and count at least 1");
    }
    let pid = std::process::id();
    let name_a = format!(r"\\.\mailslot\bench\{pid}\ping");
    let a = create(&name_a, quota, nospin)?;
    let total = warmup(count) + count;
    let mut args = vec!["__rtt-echo".into(), "--reply".into(), name_a.clone()];
    args.extend(
        Load {
            count: total,
            ..load
        }
        .args(),
    );
    args.extend(spin.args());
    let spin = spin.spin();
    let mut echo = Peer::spawn(&args)?;
    let line = echo.read_line()?;
    let name_b = line
        .strip_prefix("ready ")
        .ok_or_else(|| anyhow!("echoer said {line:?}"))?
        .to_string();
    let b = MailslotWriter::open(&name_b).with_context(|| format!("opening {name_b}"))?;
    let opts = WriteOptions::new().class(Class::First);
    let mut buf = vec![0u8; size];
    let mut rb = vec![0u8; 65536];
    let mut rt = Vec::with_capacity(count as usize);
    std::thread::sleep(SETTLE);
    for i in 0..total {
        let t = sys::now_ns();
        buf[..8].copy_from_slice(&i.to_le_bytes());
        b.write_with(&buf, opts).context("ping write")?;
        let info = read(&a, &mut rb, spin).context("ping read")?;
        let d = sys::now_ns() - t;
        if info.len != size || rb[..8] != buf[..8] {
            bail!("echo {i} came back wrong ({} bytes)", info.len);
        }
        if i >= total - count {
            rt.push(d);
        }
    }
    echo.finish()?;
    rt.sort_unstable();
    let n = rt.len();
    let mean = rt.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    sys::say(&format!(
        "transport=ours test=lat size={size} n={n} min_ns={} p50_ns={} p90_ns={} p99_ns={} p999_ns={} mean_ns={mean:.0}",
        rt[0],
        rt[n / 2],
        rt[n * 9 / 10],
        rt[n * 99 / 100],
        rt[n * 999 / 1000]
    ))
}

/// The echoer role: owns mailslot B, opens the pinger's mailslot `reply`, and sends back each of
/// the `count` messages it reads. `spin`: see [`read`]; `nospin`: see [`create`].
pub(crate) fn echo(reply: &str, load: Load, spin: Spin) -> Result<()> {
    let Load { size, count, quota } = load;
    let (spin, nospin) = (spin.spin(), spin.nospin);
    sys::pin(sys::READER_CPU)?;
    let name_b = format!(r"\\.\mailslot\bench\{}\echo", std::process::id());
    let b = create(&name_b, quota, nospin)?;
    let a = MailslotWriter::open(reply).with_context(|| format!("opening {reply}"))?;
    let opts = WriteOptions::new().class(Class::First);
    let mut rb = vec![0u8; 65536.max(size)];
    sys::say(&format!("ready {name_b}"))?;
    for _ in 0..count {
        let info = read(&b, &mut rb, spin).context("echo read")?;
        a.write_with(&rb[..info.len], opts).context("echo write")?;
    }
    Ok(())
}

/// The multi-client round-trip coordinator (`rtt_8to1`): owns the echo mailslot, starts `clients`
/// pinger processes that each own a mailslot and measure `count / clients` round trips at the
/// same time (after their own warm-up), echoes every message to the mailslot of the pinger named
/// in its byte 8, and prints percentiles over all pingers' samples together.
pub(crate) fn echo_many(clients: usize, load: Load) -> Result<()> {
    let Load { size, count, quota } = load;
    sys::pin(sys::READER_CPU)?;
    if size < 16 || !(1..=255).contains(&clients) {
        bail!("size must be at least 16 and clients 1–255");
    }
    let per = (count / clients as u64).max(1);
    let name_e = format!(r"\\.\mailslot\bench\{}\echo8", std::process::id());
    let e = create(&name_e, quota, false)?;
    let mut peers = Vec::with_capacity(clients);
    for id in 0..clients {
        let mut args = vec![
            "__rtt8-ping".into(),
            "--echo".into(),
            name_e.clone(),
            "--id".into(),
            id.to_string(),
        ];
        args.extend(Load { count: per, ..load }.args());
        peers.push(Peer::spawn(&args)?);
    }
    let mut replies = Vec::with_capacity(clients);
    for p in &mut peers {
        let line = p.read_line()?;
        let name = line
            .strip_prefix("ready ")
            .ok_or_else(|| anyhow!("pinger said {line:?}"))?;
        replies.push(MailslotWriter::open(name).with_context(|| format!("opening {name}"))?);
    }
    for p in &mut peers {
        p.send_line("go")?;
    }
    let opts = WriteOptions::new().class(Class::First);
    let mut rb = vec![0u8; 65536.max(size)];
    for _ in 0..(warmup(per) + per) * clients as u64 {
        let info = e.read(&mut rb).context("echo read")?;
        let id = rb[8] as usize;
        let w = replies
            .get(id)
            .ok_or_else(|| anyhow!("message from unknown pinger {id}"))?;
        w.write_with(&rb[..info.len], opts).context("echo write")?;
    }
    let mut rt = Vec::with_capacity((per * clients as u64) as usize);
    for mut p in peers {
        let line = p.read_line()?;
        for v in line.split_whitespace() {
            rt.push(v.parse::<u64>().context("pinger sample")?);
        }
        p.finish()?;
    }
    rt.sort_unstable();
    let n = rt.len();
    sys::say(&format!(
        "transport=ours test=lat8 clients={clients} size={size} n={n} min_ns={} p50_ns={} p99_ns={}",
        rt[0],
        rt[n / 2],
        rt[n * 99 / 100]
    ))
}

/// One pinger of [`echo_many`]: owns a mailslot, says `ready <name>`, waits for `go`, then
/// measures round trips through the echo mailslot and prints its recorded samples on one line.
pub(crate) fn ping_one(echo: &str, id: u8, load: Load) -> Result<()> {
    let Load { size, count, quota } = load;
    sys::pin(sys::WRITER_CPU)?;
    let name = format!(r"\\.\mailslot\bench\{}\ping8", std::process::id());
    let own = create(&name, quota, false)?;
    let e = MailslotWriter::open(echo).with_context(|| format!("opening {echo}"))?;
    sys::say(&format!("ready {name}"))?;
    let go = sys::hear()?;
    if go != "go" {
        bail!("pinger expected `go`, got {go:?}");
    }
    let opts = WriteOptions::new().class(Class::First);
    let mut buf = vec![0u8; size];
    buf[8] = id;
    let mut rb = vec![0u8; 65536];
    let total = warmup(count) + count;
    let mut out = String::with_capacity(count as usize * 7);
    std::thread::sleep(SETTLE);
    for i in 0..total {
        let t = sys::now_ns();
        buf[..8].copy_from_slice(&i.to_le_bytes());
        e.write_with(&buf, opts).context("ping write")?;
        let info = own.read(&mut rb).context("ping read")?;
        let d = sys::now_ns() - t;
        if info.len != size || rb[..9] != buf[..9] {
            bail!("echo {i} came back wrong ({} bytes)", info.len);
        }
        if i >= total - count {
            out.push_str(&d.to_string());
            out.push(' ');
        }
    }
    sys::say(out.trim_end())
}
