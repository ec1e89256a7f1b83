//! Throughput roles: one owner process reading `n` messages sent by `k` writer processes.
//!
//! Timing mirrors ipcbench's `tput`: the clock starts in the writer just before its first send
//! (after the owner is waiting and a 20 ms pause), and stops in the owner right after it has
//! received the last message; rate = messages received / (stop − start). With several writers the
//! start is the earliest writer's. Owner on cpu1, every writer on cpu0 (see [`crate::sys::pin`]).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use mailslot::{Class, Mailslot, MailslotWriter, WriteOptions};

use crate::mq::Mq;
use crate::roles::Load;
use crate::sys::{self, Peer};

/// What carries the messages in a throughput role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// Our mailslots (the `mailslot` crate).
    Ours,
    /// A POSIX message queue (maxmsg `MQMAX`, default 10, as in ipcbench).
    Mq,
    /// Our mailslots, written through the FUSE mount (`mailslot mount`, at `$MAILSLOT_BENCH_MOUNT`)
    /// with one `write(2)` per message; read with the library.
    Mount,
}

impl Transport {
    fn arg(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Mq => "mq",
            Self::Mount => "mount",
        }
    }
}

/// ipcbench's pause between "reader ready" and the first send.
pub(crate) const SETTLE: Duration = Duration::from_millis(20);

/// `MQMAX` as ipcbench reads it (default 10, the unprivileged ceiling).
fn mq_max() -> i64 {
    std::env::var("MQMAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// The reading end.
enum Receiver {
    Ours(Mailslot),
    Mq(Mq),
}

impl Receiver {
    fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        Ok(match self {
            Self::Ours(s) => s.read(buf).context("mailslot read")?.len,
            Self::Mq(q) => q.receive(buf).context("mq_receive")?,
        })
    }
}

/// The owner role: creates the mailslot (or queue), starts `writers` writer processes that send
/// `count / writers` messages of `size` bytes each, reads them all and prints one result line.
pub(crate) fn owner(transport: Transport, writers: usize, load: Load) -> Result<()> {
    let Load { size, count, quota } = load;
    sys::pin(sys::READER_CPU)?;
    if size < 16 {
        bail!("message size must be at least 16 bytes (sequence number and writer id)");
    }
    let writers = writers.max(1);
    let per = count / writers as u64;
    let total = per * writers as u64;
    let pid = std::process::id();
    let (name, rx) = match transport {
        Transport::Ours | Transport::Mount => {
            let name = format!(r"\\.\mailslot\bench\{pid}\tput");
            let slot = Mailslot::builder()
                .max_message_size(0)
                .quota(quota)
                .create(&name)
                .with_context(|| format!("creating {name}"))?;
            (name, Receiver::Ours(slot))
        }
        Transport::Mq => {
            let name = format!("/mailslot-bench-{pid}-tput");
            let q = Mq::create(&name, mq_max(), size as i64)
                .with_context(|| format!("mq_open {name} (maxmsg {})", mq_max()))?;
            (name, Receiver::Mq(q))
        }
    };
    let mut peers = Vec::with_capacity(writers);
    for id in 0..writers {
        peers.push(Peer::spawn(&[
            "__tput-writer".into(),
            "--transport".into(),
            transport.arg().into(),
            "--name".into(),
            name.clone(),
            "--size".into(),
            size.to_string(),
            "--count".into(),
            per.to_string(),
            "--id".into(),
            id.to_string(),
        ])?);
    }
    for p in &mut peers {
        p.expect("ready")?;
    }
    if transport == Transport::Mq {
        Mq::unlink(&name).ok();
    }
    for p in &mut peers {
        p.send_line("go")?;
    }
    let mut buf = vec![0u8; (size + 64).max(65536)];
    let mut expect = vec![0u64; writers];
    let (mut got, mut bad, mut last) = (0u64, 0u64, 0u64);
    while got < total {
        let n = rx.recv(&mut buf)?;
        last = sys::now_ns();
        if n != size {
            bail!("received {n} bytes, expected {size}");
        }
        let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        let id = buf[8] as usize;
        if id >= writers {
            bail!("message from unknown writer id {id}");
        }
        if seq != expect[id] {
            bad += 1;
        }
        expect[id] = seq + 1;
        got += 1;
    }
    let mut t0 = u64::MAX;
    for mut p in peers {
        let line = p.read_line()?;
        let kv = sys::parse_kv(&line);
        t0 = t0.min(sys::kv_f64(&kv, "t0", "writer")? as u64);
        p.finish()?;
    }
    let secs = last.saturating_sub(t0) as f64 / 1e9;
    sys::say(&format!(
        "transport={} test=tput writers={writers} size={size} n={total} recvd={got} secs={secs:.4} rate={:.0} badseq={bad}",
        transport.arg(),
        got as f64 / secs
    ))
}

/// The sending end.
enum SendEnd {
    Ours(MailslotWriter),
    Mq(Mq),
    /// The mailslot's file in the mount, opened with `O_SYNC` (first class: a write waits for
    /// room, like the other writers).
    File(std::fs::File),
}

/// Where the harness mounted the file view (see [`Transport::Mount`]).
pub(crate) const MOUNT_ENV: &str = "MAILSLOT_BENCH_MOUNT";

/// The path of the local mailslot `name` (`\\.\mailslot\a\b`) in the mount at `dir`.
fn path_in_mount(dir: &str, name: &str) -> Result<std::path::PathBuf> {
    let n = mailslot::Name::parse(name)?;
    let mut p = std::path::PathBuf::from(dir);
    for level in n.path().split(['\\', '/']) {
        p.push(level);
    }
    Ok(p)
}

/// The writer role: opens `name`, says `ready`, waits for `go`, pauses like ipcbench, then sends
/// `count` messages of `size` bytes (sequence number in bytes 0–7, `id` in byte 8) and prints
/// `t0=<ns>`, the clock just before its first send.
pub(crate) fn writer(
    transport: Transport,
    name: &str,
    size: usize,
    count: u64,
    id: u8,
) -> Result<()> {
    sys::pin(sys::WRITER_CPU)?;
    let tx = match transport {
        Transport::Ours => {
            SendEnd::Ours(MailslotWriter::open(name).with_context(|| format!("opening {name}"))?)
        }
        Transport::Mq => {
            SendEnd::Mq(Mq::open_writer(name).with_context(|| format!("mq_open {name}"))?)
        }
        Transport::Mount => {
            use std::os::unix::fs::OpenOptionsExt;
            let dir = std::env::var(MOUNT_ENV).with_context(|| format!("{MOUNT_ENV} unset"))?;
            let path = path_in_mount(&dir, name)?;
            SendEnd::File(
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_SYNC)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?,
            )
        }
    };
    // First class: waits for room like a blocking mq_send, so the writer is flow-controlled.
    let opts = WriteOptions::new().class(Class::First);
    let mut buf = vec![0u8; size];
    buf[8] = id;
    sys::say("ready")?;
    let go = sys::hear()?;
    if go != "go" {
        bail!("writer expected `go`, got {go:?}");
    }
    std::thread::sleep(SETTLE);
    let t0 = sys::now_ns();
    for seq in 0..count {
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        match &tx {
            SendEnd::Ours(w) => w.write_with(&buf, opts).context("mailslot write")?,
            SendEnd::Mq(q) => q.send(&buf).context("mq_send")?,
            SendEnd::File(f) => {
                use std::io::Write;
                let n = (&*f).write(&buf).context("write(2) to the mount")?;
                if n != buf.len() {
                    bail!("short write(2) to the mount: {n} of {}", buf.len());
                }
            }
        }
    }
    sys::say(&format!("t0={t0}"))
}
