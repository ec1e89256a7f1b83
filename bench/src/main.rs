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
//! `__rtt8-ping`, `__net-owner`, `__net-sender`, `__mem-idle`, `__mount-fs`, `__fc-recv`,
//! `__fc-send`, `__fc-writer`), pinned like ipcbench (writer side cpu0, reader side cpu1; `PIN`
//! changes it for both). The `net` bench also starts `mailslotd` as a child; the `net-fc` bench
//! starts two, each in a network namespace of its own. See `bench/README.md`.
//!
//! Modules: `roles` names the hidden role processes (their bodies are in `tput`, `rtt`, `net`,
//! `netfc`, `mem`, `mount`); `measure` takes the samples (`samples`); `report` turns them into rows with
//! ratios and targets and prints them as a table or JSON lines.

mod anchor;
mod measure;
mod mem;
mod mount;
mod mq;
mod net;
mod netfc;
mod report;
mod roles;
mod rtt;
mod samples;
mod sys;
mod tput;

use anyhow::Result;
use clap::Parser;

use crate::measure::Counts;

/// Command line of the harness.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Mailslot benchmarks beside the ipcbench anchors, with ratios"
)]
pub(crate) struct Cli {
    /// Small counts and one run per value, three of the local and network benches (`tput`,
    /// `rtt`, `net`: seconds each, and the rows that swing most with the machine); finishes in
    /// well under two minutes.
    #[arg(long)]
    pub(crate) quick: bool,
    /// One JSON object per line per (bench, size, anchor) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Runs per value; the median is reported (default 3, or 1 with --quick, whose local and
    /// network benches still run three times).
    #[arg(long)]
    pub(crate) runs: Option<usize>,
    /// Messages per throughput run (default 500000, or 200000 with --quick).
    #[arg(long)]
    pub(crate) tput_count: Option<u64>,
    /// Recorded round trips per latency run (default 20000, or 5000 with --quick).
    #[arg(long)]
    pub(crate) rtt_count: Option<u64>,
    /// Message sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 424])]
    pub(crate) sizes: Vec<usize>,
    /// ipcbench transports used as anchors.
    #[arg(long, value_delimiter = ',', default_values_t = ["mq".to_string(), "useqpacket".into(), "pipe".into(), "shmfutex".into(), "shmhybrid".into()])]
    pub(crate) anchors: Vec<String>,
    /// Quota (bytes) of the mailslots we create (default: the library's default quota).
    #[arg(long, default_value_t = mailslot::DEFAULT_QUOTA)]
    pub(crate) quota: usize,
    /// Quota as a number of messages of the size being measured (quota = N × size), e.g. 10 for
    /// the same buffering as the mq anchor; overrides --quota.
    #[arg(long)]
    pub(crate) quota_msgs: Option<usize>,
    /// Writer processes of the multi-writer throughput bench.
    #[arg(long, default_value_t = 8)]
    pub(crate) writers: usize,
    /// Skip the harness-side multi-writer POSIX mq anchor (`mq8`).
    #[arg(long)]
    pub(crate) no_mq8: bool,
    /// Which benches to run: `tput` (tput_1to1, tput_kto1), `rtt` (rtt_1to1, rtt_1to1_nospin,
    /// rtt_kto1), `net` (UDP → mailslotd → mailslot beside ipcbench udp/udprouter), `mem`
    /// (idle_slot, idle_10k beside memidle udgram), `net-fc` (class-1 remote writes between two
    /// network namespaces beside class 2 and a TCP request/response anchor); default all.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub(crate) only: Vec<Bench>,
    /// Datagrams per network throughput run (default 500000, or 100000 with --quick).
    #[arg(long)]
    pub(crate) net_count: Option<u64>,
    /// Remote writes (and TCP anchor requests) per first-class bench measurement, shared by its
    /// writers (default 20000, or 1000 with --quick).
    #[arg(long)]
    pub(crate) fc_count: Option<u64>,
    /// Internal: a role in a benchmark process (the harness re-executes itself).
    #[command(subcommand)]
    pub(crate) role: Option<roles::Role>,
}

/// Groups of benches selectable with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Bench {
    /// Local throughput (tput_1to1, tput_kto1) and their anchors.
    Tput,
    /// Local round trips (rtt_1to1, rtt_1to1_nospin, rtt_kto1) and their anchors.
    Rtt,
    /// UDP loopback → mailslotd → local mailslot, beside ipcbench udp and udprouter.
    Net,
    /// Memory of idle mailslots (idle_slot, idle_10k) beside memidle's udgram.
    Mem,
    /// Class-1 remote writes between two network namespaces (net_fc_*, net_dg_*) beside class-2
    /// writes and a TCP request/response anchor (needs root; skipped with a note otherwise, an
    /// error under CI=true).
    NetFc,
    /// Writes through the FUSE file view (mount_tput) beside the library's writes and mq
    /// (needs root, /dev/fuse and fusermount3; skipped with a note otherwise).
    Mount,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.role {
        Some(role) => roles::run(role),
        None => harness(&cli),
    }
}

impl Cli {
    /// Whether `--only` selects this group of benches (all when it is absent).
    fn wants(&self, b: Bench) -> bool {
        self.only.is_empty() || self.only.contains(&b)
    }
}

/// Prints progress on stderr (stdout carries only results).
pub(crate) fn progress(msg: &str) {
    eprintln!("mailslot-bench: {msg}");
}

/// Runs every measurement `runs` times (interleaved), then prints medians and ratios.
fn harness(cli: &Cli) -> Result<()> {
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 3 }).max(1);
    // Quick mode's one run would leave the local and network rows to the moment: the machine's
    // speed for two processes trading cache lines moves by 2x for seconds at a time
    // (BENCHMARKS.md), and those benches take seconds. They run three times there, as in a
    // full run.
    let repeats = if cli.quick && cli.runs.is_none() {
        3
    } else {
        1
    };
    let tput_n = cli
        .tput_count
        // Not fewer in a quick run: at 20 M msg/s a run would last 2 ms, about what a writer's
        // first pass over its ring costs in page faults (≈ 1 ms for 1 MiB, once per writer).
        .unwrap_or(if cli.quick { 200_000 } else { 500_000 });
    let rtt_n = cli
        .rtt_count
        .unwrap_or(if cli.quick { 5_000 } else { 20_000 });
    let net_n = cli
        .net_count
        .unwrap_or(if cli.quick { 100_000 } else { 500_000 });
    let fc_n = cli
        .fc_count
        .unwrap_or(if cli.quick { 1_000 } else { 20_000 });
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
        fc: fc_n,
    };
    let result = measure::measure(cli, &ipc, &dir, (runs, repeats), counts, k);
    std::fs::remove_dir_all(&dir).ok();
    let samples = result?;
    let rows = report::rows(cli, &samples, runs, k);
    if cli.json {
        report::print_json(&rows)?;
    } else {
        report::print_table(&rows, (runs, runs * repeats), &counts);
    }
    Ok(())
}
