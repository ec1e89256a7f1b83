//! `mailslot-bench`: throughput, round-trip and idle-memory benchmarks of our mailslots, each
//! printed beside the anchors of `shared/bench/ipcbench.c` and `shared/bench/memidle.c` measured
//! in the same run, with ratios.
//!
//! ```sh
//! cargo run --release -p mailslot-bench -- [--quick] [--json]
//! ```
//!
//! Every measurement runs in separate processes: this binary re-executes itself with hidden role
//! subcommands (`__tput-owner`, `__tput-writer`, `__rtt-ping`, `__rtt-echo`, `__rtt8-echo`,
//! `__rtt8-ping`, `__net-owner`, `__net-sender`, `__mem-idle`), pinned like ipcbench (writer side cpu0, reader
//! side cpu1; `PIN` changes it for both). The `net` bench also starts `mailslotd` as a child. See
//! `bench/README.md`.

mod anchor;
mod mem;
mod mount;
mod mq;
mod net;
mod rtt;
mod sys;
mod tput;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::tput::Transport;

/// Command line of the harness.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Mailslot benchmarks beside the ipcbench anchors, with ratios"
)]
struct Cli {
    /// Small counts and one run per value (finishes in well under two minutes).
    #[arg(long)]
    quick: bool,
    /// One JSON object per line per (bench, size, anchor) instead of a table.
    #[arg(long)]
    json: bool,
    /// Runs per value; the median is reported (default 3, or 1 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Messages per throughput run (default 500000, or 50000 with --quick).
    #[arg(long)]
    tput_count: Option<u64>,
    /// Recorded round trips per latency run (default 20000, or 5000 with --quick).
    #[arg(long)]
    rtt_count: Option<u64>,
    /// Message sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 424])]
    sizes: Vec<usize>,
    /// ipcbench transports used as anchors.
    #[arg(long, value_delimiter = ',', default_values_t = ["mq".to_string(), "useqpacket".into(), "pipe".into(), "shmfutex".into(), "shmhybrid".into()])]
    anchors: Vec<String>,
    /// Quota (bytes) of the mailslots we create (default: the library's default quota).
    #[arg(long, default_value_t = mailslot::DEFAULT_QUOTA)]
    quota: usize,
    /// Quota as a number of messages of the size being measured (quota = N × size), e.g. 10 for
    /// the same buffering as the mq anchor; overrides --quota.
    #[arg(long)]
    quota_msgs: Option<usize>,
    /// Writer processes of the multi-writer throughput bench.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Skip the harness-side multi-writer POSIX mq anchor (`mq8`).
    #[arg(long)]
    no_mq8: bool,
    /// Which benches to run: `tput` (tput_1to1, tput_kto1), `rtt` (rtt_1to1, rtt_1to1_nospin,
    /// rtt_kto1), `net` (UDP → mailslotd → mailslot beside ipcbench udp/udprouter), `mem`
    /// (idle_slot, idle_10k beside memidle udgram); default all.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Bench>,
    /// Datagrams per network throughput run (default 500000, or 100000 with --quick).
    #[arg(long)]
    net_count: Option<u64>,
    /// Internal: a role in a benchmark process (the harness re-executes itself).
    #[command(subcommand)]
    role: Option<Role>,
}

/// Groups of benches selectable with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bench {
    /// Local throughput (tput_1to1, tput_kto1) and their anchors.
    Tput,
    /// Local round trips (rtt_1to1, rtt_1to1_nospin, rtt_kto1) and their anchors.
    Rtt,
    /// UDP loopback → mailslotd → local mailslot, beside ipcbench udp and udprouter.
    Net,
    /// Memory of idle mailslots (idle_slot, idle_10k) beside memidle's udgram.
    Mem,
    /// Writes through the FUSE file view (mount_tput) beside the library's writes and mq
    /// (needs root, /dev/fuse and fusermount3; skipped with a note otherwise).
    Mount,
}

/// Hidden subcommands: the processes of one measurement.
#[derive(Debug, Subcommand)]
enum Role {
    /// Throughput reader (owner) that starts its writers.
    #[command(name = "__tput-owner", hide = true)]
    TputOwner {
        #[arg(long, value_enum)]
        transport: Transport,
        #[arg(long)]
        writers: usize,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
    },
    /// Throughput writer.
    #[command(name = "__tput-writer", hide = true)]
    TputWriter {
        #[arg(long, value_enum)]
        transport: Transport,
        #[arg(long)]
        name: String,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        id: u8,
    },
    /// Round-trip pinger that starts the echoer.
    #[command(name = "__rtt-ping", hide = true)]
    RttPing {
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
        #[arg(long, default_value_t = 0)]
        spin_us: u64,
        /// The library's read spin off on both mailslots (`Builder::spin(Duration::ZERO)`).
        #[arg(long)]
        nospin: bool,
    },
    /// Round-trip echoer.
    #[command(name = "__rtt-echo", hide = true)]
    RttEcho {
        #[arg(long)]
        reply: String,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
        #[arg(long, default_value_t = 0)]
        spin_us: u64,
        #[arg(long)]
        nospin: bool,
    },
    /// Multi-client round-trip coordinator and echoer.
    #[command(name = "__rtt8-echo", hide = true)]
    RttManyEcho {
        #[arg(long)]
        clients: usize,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
    },
    /// Network throughput owner (reads the local mailslot; starts the sender).
    #[command(name = "__net-owner", hide = true)]
    NetOwner {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        epoch: u8,
        /// Pin (owner on the reader CPU, sender on the writer CPU).
        #[arg(long)]
        pinned: bool,
    },
    /// Network throughput sender (UDP datagrams to the daemon).
    #[command(name = "__net-sender", hide = true)]
    NetSender {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        epoch: u8,
        /// Pin to the writer CPU.
        #[arg(long)]
        pinned: bool,
    },
    /// One pinger of the multi-client round trip.
    #[command(name = "__rtt8-ping", hide = true)]
    RttManyPing {
        #[arg(long)]
        echo: String,
        #[arg(long)]
        id: u8,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
    },
    /// Creates idle mailslots and prints their memory the way memidle does.
    #[command(name = "__mem-idle", hide = true)]
    MemIdle {
        #[arg(long)]
        count: usize,
    },
    /// Serves the file view (`mailslot mount`) at a directory until SIGTERM.
    #[command(name = "__mount-fs", hide = true)]
    MountFs {
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.role.is_some() {
        sys::watchdog("benchmark role");
    }
    match cli.role {
        Some(Role::TputOwner {
            transport,
            writers,
            size,
            count,
            quota,
        }) => tput::owner(transport, writers, size, count, quota),
        Some(Role::TputWriter {
            transport,
            name,
            size,
            count,
            id,
        }) => tput::writer(transport, &name, size, count, id),
        Some(Role::RttPing {
            size,
            count,
            quota,
            spin_us,
            nospin,
        }) => rtt::ping(size, count, quota, Duration::from_micros(spin_us), nospin),
        Some(Role::RttEcho {
            reply,
            size,
            count,
            quota,
            spin_us,
            nospin,
        }) => rtt::echo(
            &reply,
            size,
            count,
            quota,
            Duration::from_micros(spin_us),
            nospin,
        ),
        Some(Role::RttManyEcho {
            clients,
            size,
            count,
            quota,
        }) => rtt::echo_many(clients, size, count, quota),
        Some(Role::RttManyPing {
            echo,
            id,
            size,
            count,
            quota,
        }) => rtt::ping_one(&echo, id, size, count, quota),
        Some(Role::NetOwner {
            port,
            size,
            count,
            epoch,
            pinned,
        }) => net::owner(port, size, count, epoch, pinned),
        Some(Role::NetSender {
            port,
            size,
            count,
            epoch,
            pinned,
        }) => net::sender(port, size, count, epoch, pinned),
        Some(Role::MemIdle { count }) => mem::idle(count),
        Some(Role::MountFs { dir }) => mount::serve(&dir),
        None => harness(&cli),
    }
}

/// One series of samples: who measured what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Series {
    /// ipcbench throughput of a transport, msg/s.
    AnchorTput(String),
    /// ipcbench round trip of a transport (p50, p99), ns.
    AnchorLat(String, Pct),
    /// Our 1→1 throughput, msg/s.
    OursTput1,
    /// Our k→1 throughput, msg/s.
    OursTputK,
    /// Our 1→1 throughput with the writer using `write(2)` on the FUSE file view, msg/s.
    OursTputMount,
    /// The harness's k-writer POSIX mq throughput, msg/s.
    Mq8,
    /// Our 1→1 round trip (p50, p99), ns.
    OursRtt(Pct),
    /// Our 1→1 round trip with the library's read spin off (p50, p99), ns.
    OursRttNoSpin(Pct),
    /// Our k→1 round trip (p50, p99 over all pingers' samples), ns.
    OursRttK(Pct),
    /// Our UDP → mailslotd → mailslot throughput, placed one way.
    OursNet(net::Placement, NetMetric),
    /// ipcbench `BATCH=32 <udp|udprouter> tput` (by its name in [`net_anchors`]).
    AnchorNet(String, NetMetric),
    /// Our idle mailslots, K of them in one process (samples under size 0).
    OursMem(usize, MemMetric),
    /// memidle `udgram K` (samples under size 0).
    AnchorMem(usize, MemMetric),
}

/// What one idle-memory run yields (per object unless said otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MemMetric {
    /// Kernel slab + RSS, bytes per object ([`mem::bytes_per`]).
    Bytes,
    /// `Slab` delta, bytes per object.
    Slab,
    /// `KernelStack` delta, bytes per object.
    Kstack,
    /// `PageTables` delta, bytes per object.
    Pgtbl,
    /// `VmRSS` delta, bytes per object.
    Rss,
    /// `MemFree` drop, bytes per object (system-wide, noisiest).
    MemFree,
    /// Descriptors per object (ours).
    Fds,
    /// Seconds to create all (ours).
    CreateSecs,
    /// Seconds to drop all (ours).
    CloseSecs,
    /// `VmRSS` given back by dropping all, bytes in total (ours).
    RssReturned,
    /// Objects actually created (ours; fewer than K when creation failed).
    Created,
}

/// The per-object keys of a memidle-style line, besides the sum [`MemMetric::Bytes`].
const MEM_KEYS: [(MemMetric, &str); 5] = [
    (MemMetric::Slab, "slab_B_per"),
    (MemMetric::Kstack, "kstack_B_per"),
    (MemMetric::Pgtbl, "pgtbl_B_per"),
    (MemMetric::Rss, "rss_B_per"),
    (MemMetric::MemFree, "memfree_B_per"),
];

/// The anchor kind of the memory rows: memidle's bound (abstract) Unix datagram socket.
const MEM_ANCHOR: &str = "udgram";
/// `idle_slot` target: bytes per idle slot ≤ 1.0 × udgram.
const MEM_SLOT_TARGET: f64 = 1.0;

/// What one network throughput run yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NetMetric {
    /// Delivered msg/s.
    Rate,
    /// Fraction lost.
    Loss,
    /// CPU ns per sent datagram of the daemon (ours) or of ipcbench's first child (anchor).
    Cpu,
    /// The same CPU time per datagram the owner / reader received.
    CpuPerDelivered,
    /// Fraction lost before the daemon read it (ours).
    LossSocket,
    /// Fraction the daemon read but did not deliver (ours).
    LossDaemon,
}

/// The ipcbench runs the `net` bench sets ours beside, per placement: (name in the results,
/// transport, `PIN`). `udp` is pinned by default in ipcbench and `udprouter` unpinned.
fn net_anchors(p: net::Placement) -> [(&'static str, &'static str, &'static str); 2] {
    match p {
        net::Placement::Pinned => [("udp", "udp", "1"), ("udprouter", "udprouter", "0")],
        net::Placement::Unpinned => [("udp PIN=0", "udp", "0"), ("udprouter", "udprouter", "0")],
    }
}

/// The bench name of our `net` rows for a placement.
fn net_bench_name(p: net::Placement) -> &'static str {
    match p {
        net::Placement::Pinned => "net_tput",
        net::Placement::Unpinned => "net_tput_unpinned",
    }
}
/// The issue's goal: delivered rate ≥ 1.0 × direct UDP …
const NET_TARGET: f64 = 1.0;
/// … with at most 2 % loss.
const NET_LOSS_TARGET: f64 = 0.02;

/// Which percentile of a latency run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pct {
    P50,
    P99,
}

/// Samples per (series, size), one per run.
type Samples = BTreeMap<(Series, usize), Vec<f64>>;

/// Records the p50 and p99 (`p50_ns=`, `p99_ns=`) of a latency run as `series(P50/P99)`.
fn add_percentiles(
    add: &mut impl FnMut(Series, usize, f64),
    size: usize,
    kv: &BTreeMap<String, String>,
    what: &str,
    series: impl Fn(Pct) -> Series,
) -> Result<()> {
    add(series(Pct::P50), size, sys::kv_f64(kv, "p50_ns", what)?);
    add(series(Pct::P99), size, sys::kv_f64(kv, "p99_ns", what)?);
    Ok(())
}

/// One output row: our value beside one anchor's.
#[derive(Debug, Serialize)]
struct Row {
    bench: String,
    size: usize,
    unit: &'static str,
    ours: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_p99: Option<f64>,
    anchor: String,
    anchor_value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_p99: Option<f64>,
    anchor_mode: &'static str,
    ratio: f64,
    better: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meets_target: Option<bool>,
    runs: usize,
    mode: &'static str,
    /// Our per-run values (the p50s for rtt), in run order.
    ours_runs: Vec<f64>,
    /// The anchor's per-run values, in run order.
    anchor_runs: Vec<f64>,
    /// Quota of our mailslots in bytes.
    quota: usize,
    /// The `net` bench's extra columns (absent from the other benches' rows).
    #[serde(flatten)]
    net: NetColumns,
    /// The `mem` bench's extra columns (absent from the other benches' rows).
    #[serde(flatten)]
    mem: MemColumns,
}

/// The columns only `mem` rows (`idle_slot`, `idle_10k`) have. Memory figures are medians over
/// the runs, bytes per object for `idle_slot` and in total for `idle_10k`.
#[derive(Debug, Default, Serialize)]
struct MemColumns {
    /// Mailslots asked for (and memidle objects made) in one process.
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<usize>,
    /// Mailslots actually created (the fewest of the runs; below `slots` when creation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<usize>,
    /// Our `Slab` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_slab: Option<f64>,
    /// Our `KernelStack` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_kstack: Option<f64>,
    /// Our `PageTables` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_pgtbl: Option<f64>,
    /// Our `VmRSS` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_rss: Option<f64>,
    /// Our `MemFree` drop (not in `ours`: system-wide).
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_memfree: Option<f64>,
    /// memidle's `slab_B_per`.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_slab: Option<f64>,
    /// memidle's `kstack_B_per`.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_kstack: Option<f64>,
    /// memidle's `pgtbl_B_per`.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_pgtbl: Option<f64>,
    /// memidle's `rss_B_per`.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_rss: Option<f64>,
    /// memidle's `memfree_B_per`.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_memfree: Option<f64>,
    /// Descriptors per idle mailslot (`/proc/self/fd` after − before, ÷ created).
    #[serde(skip_serializing_if = "Option::is_none")]
    fds_per_slot: Option<f64>,
    /// `idle_10k`: seconds to create all the slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    create_s: Option<f64>,
    /// `idle_10k`: seconds to close (drop) all the slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    close_s: Option<f64>,
    /// `idle_10k`: `VmRSS` given back by closing them all, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_returned: Option<f64>,
    /// `idle_10k`: the target on `ours` (total bytes); `meets_target` needs it, all slots
    /// created and both times within `target_secs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_bytes: Option<f64>,
    /// `idle_10k`: the target on `create_s` and on `close_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_secs: Option<f64>,
}

/// The columns only `net` rows have.
#[derive(Debug, Default, Serialize)]
struct NetColumns {
    /// `net`: median fraction of our datagrams lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_loss: Option<f64>,
    /// `net`: median fraction of the anchor's datagrams lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_loss: Option<f64>,
    /// `net`: the loss target (`meets_target` needs ratio ≥ target and ours_loss ≤ this).
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_target: Option<f64>,
    /// `net`: our median loss before the daemon (its socket buffer), fraction of sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_loss_socket: Option<f64>,
    /// `net`: our median loss inside the daemon (received, not delivered), fraction of sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_loss_daemon: Option<f64>,
    /// `net`: median daemon CPU (utime + stime) per sent datagram, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_cpu_ns_per_dgram: Option<f64>,
    /// `net`: median CPU per sent datagram of the anchor process in `anchor_cpu_of`, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_cpu_ns_per_dgram: Option<f64>,
    /// `net`: median daemon CPU per message the owner received, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_cpu_ns_per_delivered: Option<f64>,
    /// `net`: median anchor-process CPU per message its reader received, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_cpu_ns_per_delivered: Option<f64>,
    /// `net`: which anchor process `anchor_cpu_ns_per_dgram` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_cpu_of: Option<&'static str>,
    /// `net`: ours_cpu_ns_per_delivered ÷ anchor_cpu_ns_per_delivered (lower is better). Per
    /// delivered, not per sent: a datagram the kernel drops before the daemon reads it costs the
    /// daemon nothing, so per sent a lossier path looks cheaper.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_ratio: Option<f64>,
}

/// Prints progress on stderr (stdout carries only results).
fn progress(msg: &str) {
    eprintln!("mailslot-bench: {msg}");
}

/// Runs every measurement `runs` times (interleaved), then prints medians and ratios.
fn harness(cli: &Cli) -> Result<()> {
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 3 }).max(1);
    let tput_n = cli
        .tput_count
        .unwrap_or(if cli.quick { 50_000 } else { 500_000 });
    let rtt_n = cli
        .rtt_count
        .unwrap_or(if cli.quick { 5_000 } else { 20_000 });
    let net_n = cli
        .net_count
        .unwrap_or(if cli.quick { 100_000 } else { 500_000 });
    let k = cli.writers.max(1);
    let dir = std::env::temp_dir().join(format!("mailslot-bench-{}", std::process::id()));
    let ipc = anchor::IpcBench::build(&dir);
    let ipc = match ipc {
        Ok(i) => i,
        Err(e) => {
            std::fs::remove_dir_all(&dir).ok();
            return Err(e);
        }
    };
    let counts = Counts {
        tput: tput_n,
        rtt: rtt_n,
        net: net_n,
    };
    let result = measure(cli, &ipc, &dir, runs, counts, k);
    std::fs::remove_dir_all(&dir).ok();
    let samples = result?;
    let rows = rows(cli, &samples, runs, k);
    if cli.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print_table(&rows, runs, tput_n, rtt_n, net_n);
    }
    Ok(())
}

/// Messages per run of each kind of bench.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Local throughput messages.
    tput: u64,
    /// Recorded round trips.
    rtt: u64,
    /// Network datagrams.
    net: u64,
}

/// Takes all samples.
fn measure(
    cli: &Cli,
    ipc: &anchor::IpcBench,
    dir: &std::path::Path,
    runs: usize,
    counts: Counts,
    k: usize,
) -> Result<Samples> {
    let Counts {
        tput: tput_n,
        rtt: rtt_n,
        net: net_n,
    } = counts;
    let mut s = Samples::new();
    let mut add =
        |series: Series, size: usize, v: f64| s.entry((series, size)).or_default().push(v);
    let want = |b: Bench| cli.only.is_empty() || cli.only.contains(&b);
    let daemon = if want(Bench::Net) {
        progress("starting mailslotd for the net bench");
        Some(net::Daemon::start(&dir.join("mailslotd"))?)
    } else {
        None
    };
    let mount = match (want(Bench::Mount), mount::unavailable()) {
        (false, _) => None,
        (true, Some(why)) => {
            progress(&format!("mount bench skipped: {why}"));
            None
        }
        (true, None) => {
            progress("mounting the file view for the mount bench");
            let m = mount::Mount::start(&dir.join("mnt"))?;
            // Writer processes started by the tput owner find it here.
            std::env::set_var(tput::MOUNT_ENV, &m.dir);
            Some(m)
        }
    };
    let memidle = if want(Bench::Mem) {
        Some(anchor::MemIdle::build(dir)?)
    } else {
        None
    };
    let mut epoch = 0u8;
    for run in 1..=runs {
        if let Some(m) = &memidle {
            progress(&format!(
                "run {run}/{runs}: idle memory, memidle {MEM_ANCHOR} and ours, {} and {} objects \
                 (≈ 2 s each: memidle's settling pauses)",
                mem::K_SLOT,
                mem::K_10K
            ));
            for k in [mem::K_SLOT, mem::K_10K] {
                let what = format!("memidle {MEM_ANCHOR} {k}");
                let kv = m.run(MEM_ANCHOR, k)?;
                let anchor = |m| Series::AnchorMem(k, m);
                add(anchor(MemMetric::Bytes), 0, mem::bytes_per(&kv, &what)?);
                for (metric, key) in MEM_KEYS {
                    add(anchor(metric), 0, sys::kv_f64(&kv, key, &what)?);
                }
                let what = format!("{k} idle mailslots");
                let kv = sys::run_role(&["__mem-idle".into(), "--count".into(), k.to_string()])?;
                let ours = |m| Series::OursMem(k, m);
                add(ours(MemMetric::Bytes), 0, mem::bytes_per(&kv, &what)?);
                for (metric, key) in MEM_KEYS.into_iter().chain([
                    (MemMetric::Fds, "fds_per"),
                    (MemMetric::CreateSecs, "create_s"),
                    (MemMetric::CloseSecs, "close_s"),
                    (MemMetric::RssReturned, "rss_returned_B"),
                    (MemMetric::Created, "created"),
                ]) {
                    add(ours(metric), 0, sys::kv_f64(&kv, key, &what)?);
                }
                let created = sys::kv_f64(&kv, "created", &what)?;
                if created < k as f64 {
                    progress(&format!(
                        "{what}: only {created} of {k} could be created (see the error above); \
                         the figures are for those"
                    ));
                }
            }
        }
        for &size in &cli.sizes {
            let quota = cli
                .quota_msgs
                .map_or(cli.quota, |n| n.max(1) * size)
                .to_string();
            if let Some(d) = &daemon {
                progress(&format!(
                    "run {run}/{runs}, {size} B: net (udp pinned and not, udprouter, ours pinned and not)"
                ));
                let mut done: Vec<&str> = Vec::new();
                for (name, t, pin) in net::Placement::ALL.into_iter().flat_map(net_anchors) {
                    if done.contains(&name) {
                        continue;
                    }
                    done.push(name);
                    let env = [("BATCH", "32"), ("PIN", pin)];
                    let (kv, cpu) = ipc.run_lossy_tput(t, size, net_n, &env)?;
                    let what = format!("ipcbench {t} PIN={pin}");
                    let n = sys::kv_f64(&kv, "n", &what)?;
                    let series = |m| Series::AnchorNet(name.into(), m);
                    add(
                        series(NetMetric::Rate),
                        size,
                        sys::kv_f64(&kv, "rate", &what)?,
                    );
                    add(
                        series(NetMetric::Loss),
                        size,
                        sys::kv_f64(&kv, "loss", &what)?,
                    );
                    if let Some(c) = cpu {
                        let recvd = sys::kv_f64(&kv, "recvd", &what)?;
                        add(series(NetMetric::Cpu), size, c as f64 / n);
                        add(
                            series(NetMetric::CpuPerDelivered),
                            size,
                            c as f64 / recvd.max(1.0),
                        );
                    }
                }
                for p in net::Placement::ALL {
                    let o = net::measure(d, size, net_n, epoch, p)?;
                    epoch = epoch.wrapping_add(1);
                    let series = |m| Series::OursNet(p, m);
                    add(series(NetMetric::Rate), size, o.rate);
                    add(series(NetMetric::Loss), size, o.loss);
                    add(series(NetMetric::Cpu), size, o.cpu_ns_per_dgram);
                    add(
                        series(NetMetric::CpuPerDelivered),
                        size,
                        o.cpu_ns_per_delivered,
                    );
                    add(series(NetMetric::LossSocket), size, o.loss_socket);
                    add(series(NetMetric::LossDaemon), size, o.loss_daemon);
                }
            }
            let tput_rows = want(Bench::Tput) || mount.is_some();
            if !tput_rows && !want(Bench::Rtt) {
                continue;
            }
            progress(&format!("run {run}/{runs}, {size} B: anchors"));
            for t in &cli.anchors {
                if tput_rows {
                    let kv = ipc.run(t, "tput", size, tput_n)?;
                    add(
                        Series::AnchorTput(t.clone()),
                        size,
                        sys::kv_f64(&kv, "rate", t)?,
                    );
                }
                if !want(Bench::Rtt) {
                    continue;
                }
                let kv = ipc.run(t, "lat", size, rtt_n)?;
                add_percentiles(&mut add, size, &kv, t, |p| Series::AnchorLat(t.clone(), p))?;
            }
            progress(&format!("run {run}/{runs}, {size} B: mailslots"));
            let owner = |transport: &str, writers: usize| -> Result<f64> {
                let kv = sys::run_role(&[
                    "__tput-owner".into(),
                    "--transport".into(),
                    transport.into(),
                    "--writers".into(),
                    writers.to_string(),
                    "--size".into(),
                    size.to_string(),
                    "--count".into(),
                    tput_n.to_string(),
                    "--quota".into(),
                    quota.clone(),
                ])?;
                let bad = sys::kv_f64(&kv, "badseq", "tput owner")?;
                if bad > 0.0 {
                    anyhow::bail!("{transport} {writers}→1: {bad} messages out of order");
                }
                sys::kv_f64(&kv, "rate", "tput owner")
            };
            if tput_rows {
                add(Series::OursTput1, size, owner("ours", 1)?);
            }
            if want(Bench::Tput) {
                add(Series::OursTputK, size, owner("ours", k)?);
                if !cli.no_mq8 {
                    add(Series::Mq8, size, owner("mq", k)?);
                }
            }
            if mount.is_some() {
                add(Series::OursTputMount, size, owner("mount", 1)?);
            }
            if !want(Bench::Rtt) {
                continue;
            }
            let rtt_role = |role: &str, extra: &[String]| {
                let mut args = vec![role.to_string()];
                args.extend_from_slice(extra);
                args.extend([
                    "--size".into(),
                    size.to_string(),
                    "--count".into(),
                    rtt_n.to_string(),
                    "--quota".into(),
                    quota.clone(),
                ]);
                sys::run_role(&args)
            };
            let kv = rtt_role("__rtt-ping", &[])?;
            add_percentiles(&mut add, size, &kv, "rtt", Series::OursRtt)?;
            let kv = rtt_role("__rtt-ping", &["--nospin".into()])?;
            add_percentiles(&mut add, size, &kv, "rtt nospin", Series::OursRttNoSpin)?;
            let kv = rtt_role("__rtt8-echo", &["--clients".into(), k.to_string()])?;
            add_percentiles(&mut add, size, &kv, "rtt k", Series::OursRttK)?;
        }
    }
    Ok(s)
}

/// The throughput goals (ours ÷ anchor at least this): the shared-memory transport's issue asks
/// for half the shared-memory ring that spins before sleeping and never less than a pipe (1 → 1),
/// and twice the 8-writer POSIX mq (8 → 1); the POSIX mq goal of the first local transport stays.
fn tput_target(bench: &str, anchor: &str) -> Option<f64> {
    match (bench, anchor) {
        ("tput_1to1", "shmhybrid") => Some(0.5),
        ("tput_1to1", "pipe") => Some(1.0),
        ("tput_1to1", "mq") => Some(0.9),
        ("tput_8to1", "mq8") => Some(2.0),
        ("mount_tput", "mq") => Some(0.5),
        _ => None,
    }
}

/// The round-trip goals (ours ÷ anchor at most this, p50): with the reader's spin, twice the
/// spinning shared-memory ring (and the first transport's 1.2 × mq); without it, the mq. A
/// k-client round trip beside a 1-client anchor has none.
fn rtt_target(bench: &str, anchor: &str) -> Option<f64> {
    match (bench, anchor) {
        ("rtt_1to1", "shmhybrid") => Some(2.0),
        ("rtt_1to1", "mq") => Some(1.2),
        ("rtt_1to1_nospin", "mq") => Some(1.0),
        _ => None,
    }
}

/// The median of the samples (the mean of the middle two for an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Builds the output rows from the medians.
fn rows(cli: &Cli, s: &Samples, runs: usize, k: usize) -> Vec<Row> {
    let mode = if cli.quick { "quick" } else { "full" };
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut out = Vec::new();
    for &size in &cli.sizes {
        let get = |series: &Series| s.get(&(series.clone(), size));
        let quota = cli.quota_msgs.map_or(cli.quota, |n| n.max(1) * size);
        // (bench, our series, anchor name, anchor series, anchor mode)
        let mut tput = vec![
            (
                "mount_tput".to_string(),
                Series::OursTputMount,
                "mq".to_string(),
                Series::AnchorTput("mq".into()),
                "1to1",
            ),
            (
                "mount_tput".to_string(),
                Series::OursTputMount,
                "library".to_string(),
                Series::OursTput1,
                "1to1",
            ),
        ];
        for (bench, ours) in [
            ("tput_1to1".to_string(), Series::OursTput1),
            (format!("tput_{k}to1"), Series::OursTputK),
        ] {
            for t in &cli.anchors {
                tput.push((
                    bench.clone(),
                    ours.clone(),
                    t.clone(),
                    Series::AnchorTput(t.clone()),
                    "1to1",
                ));
            }
        }
        let kmode = if k == 8 { "8to1" } else { "kto1" };
        tput.push((
            format!("tput_{k}to1"),
            Series::OursTputK,
            format!("mq{k}"),
            Series::Mq8,
            kmode,
        ));
        for (bench, ours, anchor, aseries, amode) in tput {
            let (Some(o), Some(a)) = (get(&ours), get(&aseries)) else {
                continue;
            };
            let ratio = median(o) / median(a);
            let target = tput_target(&bench, &anchor);
            out.push(Row {
                bench,
                size,
                unit: "msg/s",
                ours: median(o).round(),
                ours_p99: None,
                anchor,
                anchor_value: median(a).round(),
                anchor_p99: None,
                anchor_mode: amode,
                ratio: round(ratio),
                better: "higher",
                target,
                meets_target: target.map(|t| ratio >= t),
                runs,
                mode,
                ours_runs: o.iter().map(|v| v.round()).collect(),
                anchor_runs: a.iter().map(|v| v.round()).collect(),
                quota,
                net: NetColumns::default(),
                mem: MemColumns::default(),
            });
        }
        for (bench, series) in [
            ("rtt_1to1".to_string(), Series::OursRtt as fn(Pct) -> Series),
            ("rtt_1to1_nospin".to_string(), Series::OursRttNoSpin),
            (format!("rtt_{k}to1"), Series::OursRttK),
        ] {
            for t in &cli.anchors {
                let a50 = get(&Series::AnchorLat(t.clone(), Pct::P50));
                let a99 = get(&Series::AnchorLat(t.clone(), Pct::P99));
                let (Some(o), Some(a)) = (get(&series(Pct::P50)), a50) else {
                    continue;
                };
                let ratio = median(o) / median(a);
                let target = rtt_target(&bench, t);
                out.push(Row {
                    bench: bench.clone(),
                    size,
                    unit: "ns",
                    ours: median(o).round(),
                    ours_p99: get(&series(Pct::P99)).map(|v| median(v).round()),
                    anchor: t.clone(),
                    anchor_value: median(a).round(),
                    anchor_p99: a99.map(|v| median(v).round()),
                    anchor_mode: "1to1",
                    ratio: round(ratio),
                    better: "lower",
                    target,
                    meets_target: target.map(|t| ratio <= t),
                    runs,
                    mode,
                    ours_runs: o.iter().map(|v| v.round()).collect(),
                    anchor_runs: a.iter().map(|v| v.round()).collect(),
                    quota,
                    net: NetColumns::default(),
                    mem: MemColumns::default(),
                });
            }
        }
        for (p, (anchor, transport, _)) in net::Placement::ALL
            .into_iter()
            .flat_map(|p| net_anchors(p).map(|a| (p, a)))
        {
            let ours = |m| get(&Series::OursNet(p, m)).map(|v| median(v));
            let theirs = |m| get(&Series::AnchorNet(anchor.into(), m)).map(|v| median(v));
            let (Some(o), Some(a)) = (
                get(&Series::OursNet(p, NetMetric::Rate)),
                get(&Series::AnchorNet(anchor.into(), NetMetric::Rate)),
            ) else {
                continue;
            };
            let ratio = median(o) / median(a);
            let ours_loss = ours(NetMetric::Loss);
            let (target, loss_target) = if transport == "udp" {
                (Some(NET_TARGET), Some(NET_LOSS_TARGET))
            } else {
                (None, None)
            };
            let meets =
                target.map(|t| ratio >= t && ours_loss.is_some_and(|l| l <= NET_LOSS_TARGET));
            let (oc, ac) = (ours(NetMetric::Cpu), theirs(NetMetric::Cpu));
            let (od, ad) = (
                ours(NetMetric::CpuPerDelivered),
                theirs(NetMetric::CpuPerDelivered),
            );
            let round1 = |v: f64| (v * 10.0).round() / 10.0;
            let round4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
            out.push(Row {
                bench: net_bench_name(p).into(),
                size,
                unit: "msg/s",
                ours: median(o).round(),
                ours_p99: None,
                anchor: anchor.into(),
                anchor_value: median(a).round(),
                anchor_p99: None,
                anchor_mode: "1to1",
                ratio: round(ratio),
                better: "higher",
                target,
                meets_target: meets,
                runs,
                mode,
                ours_runs: o.iter().map(|v| v.round()).collect(),
                anchor_runs: a.iter().map(|v| v.round()).collect(),
                quota: net::QUOTA,
                net: NetColumns {
                    ours_loss: ours_loss.map(round4),
                    anchor_loss: theirs(NetMetric::Loss).map(round4),
                    loss_target,
                    ours_loss_socket: ours(NetMetric::LossSocket).map(round4),
                    ours_loss_daemon: ours(NetMetric::LossDaemon).map(round4),
                    ours_cpu_ns_per_dgram: oc.map(round1),
                    anchor_cpu_ns_per_dgram: ac.map(round1),
                    ours_cpu_ns_per_delivered: od.map(round1),
                    anchor_cpu_ns_per_delivered: ad.map(round1),
                    anchor_cpu_of: Some(if transport == "udp" {
                        "reader process"
                    } else {
                        "router process"
                    }),
                    cpu_ratio: od.zip(ad).map(|(o, a)| round(o / a)),
                },
                mem: MemColumns::default(),
            });
        }
    }
    out.extend(mem_rows(cli, s, runs));
    out
}

/// The `idle_slot` and `idle_10k` rows, when the `mem` bench ran.
fn mem_rows(cli: &Cli, s: &Samples, runs: usize) -> Vec<Row> {
    let mode = if cli.quick { "quick" } else { "full" };
    let get = |series: Series| s.get(&(series, 0)).map(|v| median(v));
    let runs_of = |series: Series| -> Vec<f64> {
        s.get(&(series, 0))
            .map(|v| v.iter().map(|x| x.round()).collect())
            .unwrap_or_default()
    };
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let mut out = Vec::new();
    for (bench, k) in [("idle_slot", mem::K_SLOT), ("idle_10k", mem::K_10K)] {
        let ours = |m| get(Series::OursMem(k, m));
        let theirs = |m| get(Series::AnchorMem(k, m));
        let (Some(o), Some(a)) = (ours(MemMetric::Bytes), theirs(MemMetric::Bytes)) else {
            continue;
        };
        // The fewest created over the runs: a single failed run shows.
        let created = s
            .get(&(Series::OursMem(k, MemMetric::Created), 0))
            .and_then(|v| v.iter().copied().reduce(f64::min))
            .unwrap_or(0.0) as usize;
        let ratio = o / a;
        // idle_slot: per object; idle_10k: the whole process's K slots (per object × created).
        let (scale, ascale, unit) = if k == mem::K_SLOT {
            (1.0, 1.0, "B/slot")
        } else {
            (created as f64, k as f64, "B")
        };
        let per_run = |series: Series, f: f64| -> Vec<f64> {
            runs_of(series)
                .into_iter()
                .map(|v| (v * f).round())
                .collect()
        };
        let mut row = Row {
            bench: bench.into(),
            size: 0,
            unit,
            ours: (o * scale).round(),
            ours_p99: None,
            anchor: MEM_ANCHOR.into(),
            anchor_value: (a * ascale).round(),
            anchor_p99: None,
            anchor_mode: "same K",
            ratio: round3(ratio),
            better: "lower",
            target: None,
            meets_target: None,
            runs,
            mode,
            ours_runs: per_run(Series::OursMem(k, MemMetric::Bytes), scale),
            anchor_runs: per_run(Series::AnchorMem(k, MemMetric::Bytes), ascale),
            quota: mailslot::DEFAULT_QUOTA,
            net: NetColumns::default(),
            mem: MemColumns {
                slots: Some(k),
                created: Some(created),
                ours_slab: ours(MemMetric::Slab).map(|v| (v * scale).round()),
                ours_kstack: ours(MemMetric::Kstack).map(|v| (v * scale).round()),
                ours_pgtbl: ours(MemMetric::Pgtbl).map(|v| (v * scale).round()),
                ours_rss: ours(MemMetric::Rss).map(|v| (v * scale).round()),
                ours_memfree: ours(MemMetric::MemFree).map(|v| (v * scale).round()),
                anchor_slab: theirs(MemMetric::Slab).map(|v| (v * ascale).round()),
                anchor_kstack: theirs(MemMetric::Kstack).map(|v| (v * ascale).round()),
                anchor_pgtbl: theirs(MemMetric::Pgtbl).map(|v| (v * ascale).round()),
                anchor_rss: theirs(MemMetric::Rss).map(|v| (v * ascale).round()),
                anchor_memfree: theirs(MemMetric::MemFree).map(|v| (v * ascale).round()),
                fds_per_slot: ours(MemMetric::Fds).map(round3),
                ..MemColumns::default()
            },
        };
        if k == mem::K_SLOT {
            row.target = Some(MEM_SLOT_TARGET);
            row.meets_target = Some(created == k && ratio <= MEM_SLOT_TARGET);
        } else {
            let (c, d) = (ours(MemMetric::CreateSecs), ours(MemMetric::CloseSecs));
            row.mem.create_s = c.map(|v| (v * 1e4).round() / 1e4);
            row.mem.close_s = d.map(|v| (v * 1e4).round() / 1e4);
            row.mem.rss_returned = ours(MemMetric::RssReturned).map(f64::round);
            row.mem.target_bytes = Some(mem::TARGET_10K_BYTES);
            row.mem.target_secs = Some(mem::TARGET_10K_SECS);
            let secs_ok = |v: Option<f64>| v.is_some_and(|v| v < mem::TARGET_10K_SECS);
            row.meets_target =
                Some(created == k && row.ours <= mem::TARGET_10K_BYTES && secs_ok(c) && secs_ok(d));
        }
        out.push(row);
    }
    out
}

/// Bytes as a short human figure (B, KiB, MiB).
fn human(b: f64) -> String {
    if b.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b.abs() >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// The note of a `mem` row: what its memory is made of, and for `idle_10k` the times.
fn mem_note(r: &Row) -> String {
    let m = &r.mem;
    let nan = f64::NAN;
    let mut note = String::new();
    if let (Some(k), Some(c)) = (m.slots, m.created) {
        if c < k {
            note.push_str(&format!("ONLY {c}/{k} CREATED; "));
        }
    }
    if m.target_bytes.is_some() {
        note.push_str(&format!(
            "create {:.3} s, close {:.3} s, RSS returned {}",
            m.create_s.unwrap_or(nan),
            m.close_s.unwrap_or(nan),
            human(m.rss_returned.unwrap_or(nan))
        ));
    } else {
        note.push_str(&format!(
            "{:.2} fd/slot; slab {} + rss {} (udgram {} + {})",
            m.fds_per_slot.unwrap_or(nan),
            human(m.ours_slab.unwrap_or(nan)),
            human(m.ours_rss.unwrap_or(nan)),
            human(m.anchor_slab.unwrap_or(nan)),
            human(m.anchor_rss.unwrap_or(nan))
        ));
    }
    note
}

/// The table's note for a row: p99s, the net bench's loss and CPU, the mem bench's make-up, or
/// what the anchor is.
fn note(r: &Row) -> String {
    let n = &r.net;
    if r.mem.slots.is_some() {
        return mem_note(r);
    }
    match (r.ours_p99, r.anchor_p99) {
        (Some(o), Some(a)) => format!("p99 {o:.0}/{a:.0}"),
        _ if n.ours_loss.is_some() => format!(
            "loss {:.1}%/{:.1}%, cpu/delivered {:.0}/{:.0} ns",
            n.ours_loss.unwrap_or(f64::NAN) * 100.0,
            n.anchor_loss.unwrap_or(f64::NAN) * 100.0,
            n.ours_cpu_ns_per_delivered.unwrap_or(f64::NAN),
            n.anchor_cpu_ns_per_delivered.unwrap_or(f64::NAN)
        ),
        _ if r.anchor_mode == "1to1" && !r.bench.ends_with("1to1") => "anchor is 1→1".into(),
        _ => String::new(),
    }
}

/// Prints the rows as a readable table.
fn print_table(rows: &[Row], runs: usize, tput_n: u64, rtt_n: u64, net_n: u64) {
    println!(
        "mailslot-bench: median of {runs} run(s); {tput_n} msgs per throughput run, {rtt_n} round trips per latency run, {net_n} datagrams per net run"
    );
    let notes: Vec<String> = rows.iter().map(note).collect();
    let w = notes
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    println!(
        "{:<17} {:>5} {:<6} {:>12} {:<11} {:>12} {:>7}  {:<w$} target",
        "bench", "size", "unit", "ours", "anchor", "anchor", "ratio", "note"
    );
    for (r, note) in rows.iter().zip(notes) {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        let target = match (r.target, r.meets_target) {
            (None, Some(ok)) if r.mem.target_bytes.is_some() => format!(
                "≤ {}, < {} s each {}",
                human(r.mem.target_bytes.unwrap_or(f64::NAN)),
                r.mem.target_secs.unwrap_or(f64::NAN),
                met(ok)
            ),
            (Some(t), Some(ok)) if r.net.loss_target.is_some() => format!(
                "≥ {t}, loss ≤ {}% {}",
                r.net.loss_target.unwrap_or(0.0) * 100.0,
                if ok { "met" } else { "MISSED" }
            ),
            (Some(t), Some(ok)) => format!(
                "{} {t} {}",
                if r.better == "higher" { "≥" } else { "≤" },
                if ok { "met" } else { "MISSED" }
            ),
            _ => String::new(),
        };
        println!(
            "{:<17} {:>5} {:<6} {:>12.0} {:<11} {:>12.0} {:>7.3}  {:<w$} {target}",
            r.bench, r.size, r.unit, r.ours, r.anchor, r.anchor_value, r.ratio, note
        );
    }
}
