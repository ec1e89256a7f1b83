//! `mailslot-bench`: throughput and round-trip benchmarks of our mailslots, each printed beside
//! the anchors of `shared/bench/ipcbench.c` measured in the same run, with ratios.
//!
//! ```sh
//! cargo run --release -p mailslot-bench -- [--quick] [--json]
//! ```
//!
//! Every measurement runs in separate processes: this binary re-executes itself with hidden role
//! subcommands (`__tput-owner`, `__tput-writer`, `__rtt-ping`, `__rtt-echo`, `__rtt8-echo`,
//! `__rtt8-ping`), pinned like ipcbench (writer side cpu0, reader side cpu1; `PIN` changes it for
//! both). See `bench/README.md`.

mod anchor;
mod mq;
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
    #[arg(long, value_delimiter = ',', default_values_t = ["mq".to_string(), "useqpacket".into(), "pipe".into(), "shmhybrid".into()])]
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
    /// Internal: a role in a benchmark process (the harness re-executes itself).
    #[command(subcommand)]
    role: Option<Role>,
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
        }) => rtt::ping(size, count, quota, Duration::from_micros(spin_us)),
        Some(Role::RttEcho {
            reply,
            size,
            count,
            quota,
            spin_us,
        }) => rtt::echo(&reply, size, count, quota, Duration::from_micros(spin_us)),
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
    /// The harness's k-writer POSIX mq throughput, msg/s.
    Mq8,
    /// Our 1→1 round trip (p50, p99), ns.
    OursRtt(Pct),
    /// Our k→1 round trip (p50, p99 over all pingers' samples), ns.
    OursRttK(Pct),
}

/// Which percentile of a latency run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pct {
    P50,
    P99,
}

/// Samples per (series, size), one per run.
type Samples = BTreeMap<(Series, usize), Vec<f64>>;

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
    let result = measure(cli, &ipc, runs, tput_n, rtt_n, k);
    std::fs::remove_dir_all(&dir).ok();
    let samples = result?;
    let rows = rows(cli, &samples, runs, k);
    if cli.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print_table(&rows, runs, tput_n, rtt_n);
    }
    Ok(())
}

/// Takes all samples.
fn measure(
    cli: &Cli,
    ipc: &anchor::IpcBench,
    runs: usize,
    tput_n: u64,
    rtt_n: u64,
    k: usize,
) -> Result<Samples> {
    let mut s = Samples::new();
    let mut add =
        |series: Series, size: usize, v: f64| s.entry((series, size)).or_default().push(v);
    for run in 1..=runs {
        for &size in &cli.sizes {
            let quota = cli
                .quota_msgs
                .map_or(cli.quota, |n| n.max(1) * size)
                .to_string();
            progress(&format!("run {run}/{runs}, {size} B: anchors"));
            for t in &cli.anchors {
                let kv = ipc.run(t, "tput", size, tput_n)?;
                add(
                    Series::AnchorTput(t.clone()),
                    size,
                    sys::kv_f64(&kv, "rate", t)?,
                );
                let kv = ipc.run(t, "lat", size, rtt_n)?;
                add(
                    Series::AnchorLat(t.clone(), Pct::P50),
                    size,
                    sys::kv_f64(&kv, "p50_ns", t)?,
                );
                add(
                    Series::AnchorLat(t.clone(), Pct::P99),
                    size,
                    sys::kv_f64(&kv, "p99_ns", t)?,
                );
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
            add(Series::OursTput1, size, owner("ours", 1)?);
            add(Series::OursTputK, size, owner("ours", k)?);
            if !cli.no_mq8 {
                add(Series::Mq8, size, owner("mq", k)?);
            }
            let kv = sys::run_role(&[
                "__rtt-ping".into(),
                "--size".into(),
                size.to_string(),
                "--count".into(),
                rtt_n.to_string(),
                "--quota".into(),
                quota.clone(),
            ])?;
            add(
                Series::OursRtt(Pct::P50),
                size,
                sys::kv_f64(&kv, "p50_ns", "rtt")?,
            );
            add(
                Series::OursRtt(Pct::P99),
                size,
                sys::kv_f64(&kv, "p99_ns", "rtt")?,
            );
            let kv = sys::run_role(&[
                "__rtt8-echo".into(),
                "--clients".into(),
                k.to_string(),
                "--size".into(),
                size.to_string(),
                "--count".into(),
                rtt_n.to_string(),
                "--quota".into(),
                quota.clone(),
            ])?;
            add(
                Series::OursRttK(Pct::P50),
                size,
                sys::kv_f64(&kv, "p50_ns", "rtt k")?,
            );
            add(
                Series::OursRttK(Pct::P99),
                size,
                sys::kv_f64(&kv, "p99_ns", "rtt k")?,
            );
        }
    }
    Ok(s)
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
        let mut tput = Vec::new();
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
            let target = anchor.starts_with("mq").then_some(0.9);
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
            });
        }
        for (bench, series) in [
            ("rtt_1to1".to_string(), Series::OursRtt as fn(Pct) -> Series),
            (format!("rtt_{k}to1"), Series::OursRttK),
        ] {
            for t in &cli.anchors {
                let a50 = get(&Series::AnchorLat(t.clone(), Pct::P50));
                let a99 = get(&Series::AnchorLat(t.clone(), Pct::P99));
                let (Some(o), Some(a)) = (get(&series(Pct::P50)), a50) else {
                    continue;
                };
                let ratio = median(o) / median(a);
                // The goal is stated for 1→1; a k-client round trip beside a 1-client anchor gets
                // no target.
                let target = (t == "mq" && bench == "rtt_1to1").then_some(1.2);
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
                });
            }
        }
    }
    out
}

/// Prints the rows as a readable table.
fn print_table(rows: &[Row], runs: usize, tput_n: u64, rtt_n: u64) {
    println!(
        "mailslot-bench: median of {runs} run(s); {tput_n} msgs per throughput run, {rtt_n} round trips per latency run"
    );
    println!(
        "{:<11} {:>5} {:<6} {:>12} {:<11} {:>12} {:>7}  {:<16} target",
        "bench", "size", "unit", "ours", "anchor", "anchor", "ratio", "note"
    );
    for r in rows {
        let note = match (r.ours_p99, r.anchor_p99) {
            (Some(o), Some(a)) => format!("p99 {o:.0}/{a:.0}"),
            _ if r.anchor_mode == "1to1" && !r.bench.ends_with("1to1") => "anchor is 1→1".into(),
            _ => String::new(),
        };
        let target = match (r.target, r.meets_target) {
            (Some(t), Some(ok)) => format!(
                "{} {t} {}",
                if r.better == "higher" { "≥" } else { "≤" },
                if ok { "met" } else { "MISSED" }
            ),
            _ => String::new(),
        };
        println!(
            "{:<11} {:>5} {:<6} {:>12.0} {:<11} {:>12.0} {:>7.3}  {:<16} {target}",
            r.bench, r.size, r.unit, r.ours, r.anchor, r.anchor_value, r.ratio, note
        );
    }
}
