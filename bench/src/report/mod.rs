//! The report: medians of the samples as rows of our value beside an anchor's, with ratios and
//! targets, printed as JSON lines or as a table ([`table`]).

mod table;

use anyhow::Result;
use serde::Serialize;

use crate::netfc::Kind as FcKind;
use crate::samples::{
    fc_writer_counts, net_anchors, FcMetric, MemMetric, NetMetric, Pct, Samples, Series, MEM_ANCHOR,
};
use crate::{mem, net, netfc, Cli};

pub(crate) use table::print_table;

/// `idle_slot` target: bytes per idle slot ≤ 1.0 × udgram.
const MEM_SLOT_TARGET: f64 = 1.0;
/// The goal: delivered rate ≥ 1.0 × direct UDP …
const NET_TARGET: f64 = 1.0;
/// … with at most 2 % loss.
const NET_LOSS_TARGET: f64 = 0.02;

/// The bench name of our `net` rows for a placement.
fn net_bench_name(p: net::Placement) -> &'static str {
    match p {
        net::Placement::Pinned => "net_tput",
        net::Placement::Unpinned => "net_tput_unpinned",
    }
}

/// One output row: our value beside one anchor's.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
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
    /// Samples behind the medians (the local and network benches run three times in a quick
    /// run).
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
pub(crate) struct MemColumns {
    /// Mailslots asked for (and memidle objects made) in one process.
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<usize>,
    /// Mailslots actually created (the fewest of the runs; below `slots` when creation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<usize>,
    /// Our `Slab` delta (pages of all slab caches).
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_slab: Option<f64>,
    /// Our slab caches' objects in use (memidle's `sum=` way).
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_slab_objects: Option<f64>,
    /// Our `KernelStack` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_kstack: Option<f64>,
    /// Our `PageTables` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_pgtbl: Option<f64>,
    /// Our `VmRSS` delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_rss: Option<f64>,
    /// The daemon's `VmRSS` delta, when its directory kept the names (in `ours`).
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_daemon_rss: Option<f64>,
    /// Whether the daemon's directory kept the names (no socket per slot).
    #[serde(skip_serializing_if = "Option::is_none")]
    directory: Option<bool>,
    /// Our `MemFree` drop (not in `ours`: system-wide).
    #[serde(skip_serializing_if = "Option::is_none")]
    ours_memfree: Option<f64>,
    /// memidle's `slab_B_per`.
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_slab: Option<f64>,
    /// memidle's `sum=` (slab caches' objects in use).
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor_slab_objects: Option<f64>,
    /// What `ours` and `anchor_value` count as the kernel's part: `slab objects` (objects in
    /// use, when `/proc/slabinfo` could be read) or `slab pages` (`Slab` of `/proc/meminfo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    slab_basis: Option<mem::SlabBasis>,
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
    /// `VmRSS` of the process's first mailslot (made before the K are counted), bytes: what a
    /// process pays once (the service thread, the library's code paged in), not per slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_rss: Option<f64>,
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
pub(crate) struct NetColumns {
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

/// Prints the rows as JSON, one object per line.
pub(crate) fn print_json(rows: &[Row]) -> Result<()> {
    for r in rows {
        println!("{}", serde_json::to_string(r)?);
    }
    Ok(())
}

/// `full`, or `quick` with `--quick`.
fn mode(cli: &Cli) -> &'static str {
    if cli.quick {
        "quick"
    } else {
        "full"
    }
}

/// Rounded to three decimals (the ratios).
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Each value rounded to a whole number.
fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|v| v.round()).collect()
}

/// What a row compares, and which way is better.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Messages per second: higher is better.
    Rate,
    /// Round-trip nanoseconds: lower is better.
    Latency,
}

impl Kind {
    fn unit(self) -> &'static str {
        match self {
            Self::Rate => "msg/s",
            Self::Latency => "ns",
        }
    }

    fn better(self) -> &'static str {
        match self {
            Self::Rate => "higher",
            Self::Latency => "lower",
        }
    }

    /// Whether ours ÷ anchor meets the target.
    fn meets(self, ratio: f64, target: f64) -> bool {
        match self {
            Self::Rate => ratio >= target,
            Self::Latency => ratio <= target,
        }
    }
}

/// What every row of one message size shares.
#[derive(Debug, Clone, Copy)]
struct RowBase {
    size: usize,
    mode: &'static str,
    /// Quota of our mailslots at this size, bytes.
    quota: usize,
}

impl RowBase {
    /// Our samples `o` beside the anchor's `a`: medians, ratio, target, per-run values.
    fn row(
        &self,
        kind: Kind,
        bench: String,
        anchor: String,
        (o, a): (&[f64], &[f64]),
        target: Option<f64>,
    ) -> Row {
        let ratio = median(o) / median(a);
        Row {
            bench,
            size: self.size,
            unit: kind.unit(),
            ours: median(o).round(),
            ours_p99: None,
            anchor,
            anchor_value: median(a).round(),
            anchor_p99: None,
            anchor_mode: "1to1",
            ratio: round3(ratio),
            better: kind.better(),
            target,
            meets_target: target.map(|t| kind.meets(ratio, t)),
            runs: o.len(),
            mode: self.mode,
            ours_runs: rounded(o),
            anchor_runs: rounded(a),
            quota: self.quota,
            net: NetColumns::default(),
            mem: MemColumns::default(),
        }
    }
}

/// Builds the output rows from the medians: per size the throughput, round-trip and network
/// rows, then the idle-memory rows.
pub(crate) fn rows(cli: &Cli, s: &Samples, runs: usize, k: usize) -> Vec<Row> {
    let mut out = Vec::new();
    for &size in &cli.sizes {
        let base = RowBase {
            size,
            mode: mode(cli),
            quota: cli.quota_msgs.map_or(cli.quota, |n| n.max(1) * size),
        };
        out.extend(tput_rows(cli, s, &base, k));
        out.extend(rtt_rows(cli, s, &base, k));
        out.extend(net_rows(s, &base));
        out.extend(fc_rows(s, &base, k));
    }
    out.extend(mem_rows(cli, s, runs));
    out
}

/// One throughput comparison: a bench's series beside an anchor's.
struct TputPair {
    bench: String,
    ours: Series,
    anchor: String,
    anchor_series: Series,
    anchor_mode: &'static str,
}

/// The throughput comparisons, in the order of the report: the file view beside mq and the
/// library, 1→1 and k→1 beside every `--anchors` transport, k→1 beside the k-writer mq.
fn tput_pairs(cli: &Cli, k: usize) -> Vec<TputPair> {
    let pair = |bench: &str, ours: Series, anchor: &str, anchor_series: Series| TputPair {
        bench: bench.to_string(),
        ours,
        anchor: anchor.to_string(),
        anchor_series,
        anchor_mode: "1to1",
    };
    let kto1 = format!("tput_{k}to1");
    let mut pairs = vec![
        pair(
            "mount_tput",
            Series::OursTputMount,
            "mq",
            Series::AnchorTput("mq".into()),
        ),
        pair(
            "mount_tput",
            Series::OursTputMount,
            "library",
            Series::OursTput1,
        ),
    ];
    for (bench, ours) in [
        ("tput_1to1", Series::OursTput1),
        (&*kto1, Series::OursTputK),
    ] {
        for t in &cli.anchors {
            pairs.push(pair(bench, ours.clone(), t, Series::AnchorTput(t.clone())));
        }
    }
    pairs.push(TputPair {
        anchor_mode: if k == 8 { "8to1" } else { "kto1" },
        ..pair(&kto1, Series::OursTputK, &format!("mq{k}"), Series::Mq8)
    });
    pairs
}

/// The throughput rows (`mount_tput`, `tput_1to1`, `tput_kto1`) that were measured.
fn tput_rows(cli: &Cli, s: &Samples, base: &RowBase, k: usize) -> Vec<Row> {
    tput_pairs(cli, k)
        .into_iter()
        .filter_map(|p| {
            let o = s.get(&p.ours, base.size)?;
            let a = s.get(&p.anchor_series, base.size)?;
            let target = tput_target(&p.bench, &p.anchor);
            let mut row = base.row(Kind::Rate, p.bench, p.anchor, (o, a), target);
            row.anchor_mode = p.anchor_mode;
            Some(row)
        })
        .collect()
}

/// The round-trip rows (`rtt_1to1`, `rtt_1to1_nospin`, `rtt_kto1`, p50 with the p99s beside)
/// that were measured.
fn rtt_rows(cli: &Cli, s: &Samples, base: &RowBase, k: usize) -> Vec<Row> {
    let size = base.size;
    let mut out = Vec::new();
    for (bench, series) in [
        ("rtt_1to1".to_string(), Series::OursRtt as fn(Pct) -> Series),
        ("rtt_1to1_nospin".to_string(), Series::OursRttNoSpin),
        (format!("rtt_{k}to1"), Series::OursRttK),
    ] {
        for t in &cli.anchors {
            let a50 = s.get(&Series::AnchorLat(t.clone(), Pct::P50), size);
            let a99 = s.get(&Series::AnchorLat(t.clone(), Pct::P99), size);
            let (Some(o), Some(a)) = (s.get(&series(Pct::P50), size), a50) else {
                continue;
            };
            let target = rtt_target(&bench, t);
            let mut row = base.row(Kind::Latency, bench.clone(), t.clone(), (o, a), target);
            row.ours_p99 = s.get(&series(Pct::P99), size).map(|v| median(v).round());
            row.anchor_p99 = a99.map(|v| median(v).round());
            out.push(row);
        }
    }
    out
}

/// The network rows (`net_tput`, `net_tput_unpinned`, beside `udp` and `udprouter`) that were
/// measured, with loss and CPU columns.
fn net_rows(s: &Samples, base: &RowBase) -> Vec<Row> {
    let size = base.size;
    let mut out = Vec::new();
    for (p, (anchor, transport, _)) in net::Placement::ALL
        .into_iter()
        .flat_map(|p| net_anchors(p).map(|a| (p, a)))
    {
        let ours = |m| s.get(&Series::OursNet(p, m), size).map(median);
        let theirs = |m| {
            s.get(&Series::AnchorNet(anchor.into(), m), size)
                .map(median)
        };
        let (Some(o), Some(a)) = (
            s.get(&Series::OursNet(p, NetMetric::Rate), size),
            s.get(&Series::AnchorNet(anchor.into(), NetMetric::Rate), size),
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
        let (oc, ac) = (ours(NetMetric::Cpu), theirs(NetMetric::Cpu));
        let (od, ad) = (
            ours(NetMetric::CpuPerDelivered),
            theirs(NetMetric::CpuPerDelivered),
        );
        let round1 = |v: f64| (v * 10.0).round() / 10.0;
        let round4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
        let mut row = base.row(
            Kind::Rate,
            net_bench_name(p).into(),
            anchor.into(),
            (o, a),
            target,
        );
        row.meets_target =
            target.map(|t| ratio >= t && ours_loss.is_some_and(|l| l <= NET_LOSS_TARGET));
        row.quota = net::QUOTA;
        row.net = NetColumns {
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
            cpu_ratio: od.zip(ad).map(|(o, a)| round3(o / a)),
        };
        out.push(row);
    }
    out
}

/// The anchor names of the first-class rows: the TCP request/response anchor, and our class-2
/// writes beside class 1.
const FC_TCP: &str = "tcp_rr";
const FC_CLASS2: &str = "class2";

/// The `anchor_mode` of a first-class row measured with `w` writers (the anchor has as many
/// writers or connections).
fn fc_mode(w: usize) -> &'static str {
    match w {
        1 => "1to1",
        8 => "8to1",
        _ => "kto1",
    }
}

/// The first-class rows that were measured, for 1 and `k` writers: class-1 writes per second
/// (`net_fc_tput_Wto1`) and per-write p50/p99 (`net_fc_rtt_Wto1`) beside the TCP anchor and
/// class 2; class-2 messages received per second (`net_dg_tput_Wto1`, with loss) and the write
/// call's p50/p99 (`net_dg_call_Wto1`) beside the TCP anchor. No targets (the issue sets none).
fn fc_rows(s: &Samples, base: &RowBase, k: usize) -> Vec<Row> {
    let size = base.size;
    let mut out = Vec::new();
    for w in fc_writer_counts(k) {
        let get = |kind, m| s.get(&Series::Fc(kind, w, m), size);
        let med = |kind, m| get(kind, m).map(median);
        let benches = [
            (
                "net_fc_tput",
                Kind::Rate,
                FcKind::First,
                &[FC_TCP, FC_CLASS2][..],
            ),
            (
                "net_fc_rtt",
                Kind::Latency,
                FcKind::First,
                &[FC_TCP, FC_CLASS2][..],
            ),
            ("net_dg_tput", Kind::Rate, FcKind::Second, &[FC_TCP][..]),
            ("net_dg_call", Kind::Latency, FcKind::Second, &[FC_TCP][..]),
        ];
        for (bench, kind, ours, anchors) in benches {
            let metric = match kind {
                Kind::Rate => FcMetric::Rate,
                Kind::Latency => FcMetric::P50,
            };
            for &anchor in anchors {
                let theirs = if anchor == FC_TCP {
                    FcKind::Tcp
                } else {
                    FcKind::Second
                };
                let (Some(o), Some(a)) = (get(ours, metric), get(theirs, metric)) else {
                    continue;
                };
                let name = format!("{bench}_{w}to1");
                let mut row = base.row(kind, name, anchor.into(), (o, a), None);
                row.anchor_mode = fc_mode(w);
                row.quota = netfc::QUOTA;
                if let Kind::Latency = kind {
                    row.ours_p99 = med(ours, FcMetric::P99).map(f64::round);
                    row.anchor_p99 = med(theirs, FcMetric::P99).map(f64::round);
                } else {
                    let round4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
                    let loss = |k| (k == FcKind::Second).then(|| med(k, FcMetric::Loss));
                    row.net.ours_loss = loss(ours).flatten().map(round4);
                    row.net.anchor_loss = loss(theirs).flatten().map(round4);
                }
                out.push(row);
            }
        }
    }
    out
}

/// The `idle_slot` and `idle_10k` rows, when the `mem` bench ran: the slots as a system with
/// the daemon has them (their names in its directory; the rows with the targets), and each
/// with a socket of its own (`…_own_sockets`: as without the daemon; no target).
fn mem_rows(cli: &Cli, s: &Samples, runs: usize) -> Vec<Row> {
    [
        ("idle_slot", mem::K_SLOT, false),
        ("idle_10k", mem::K_10K, false),
        ("idle_slot_own_sockets", mem::K_SLOT, true),
        ("idle_10k_own_sockets", mem::K_10K, true),
    ]
    .into_iter()
    .filter_map(|(bench, k, own)| mem_row(cli, s, runs, (bench, k, own)))
    .collect()
}

/// One `mem` row: K idle mailslots beside K memidle sockets (per object for `idle_slot`, in
/// total for `idle_10k`), with the make-up of the memory and the row's target (none for the
/// slots with sockets of their own, `own`).
fn mem_row(
    cli: &Cli,
    s: &Samples,
    runs: usize,
    (bench, k, own): (&str, usize, bool),
) -> Option<Row> {
    let series = move |m| {
        if own {
            Series::OursMemOwn(k, m)
        } else {
            Series::OursMem(k, m)
        }
    };
    let get = |series: Series| s.get(&series, 0).map(median);
    let runs_of = |series: Series| -> Vec<f64> {
        s.get(&series, 0)
            .map(|v| v.iter().map(|x| x.round()).collect())
            .unwrap_or_default()
    };
    let ours = |m| get(series(m));
    let theirs = |m| get(Series::AnchorMem(k, m));
    let (o, a) = (ours(MemMetric::Bytes)?, theirs(MemMetric::Bytes)?);
    // The fewest created over the runs: a single failed run shows.
    let created = s
        .get(&series(MemMetric::Created), 0)
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
        mode: mode(cli),
        ours_runs: per_run(series(MemMetric::Bytes), scale),
        anchor_runs: per_run(Series::AnchorMem(k, MemMetric::Bytes), ascale),
        quota: mailslot::DEFAULT_QUOTA,
        net: NetColumns::default(),
        mem: mem_columns(&ours, &theirs, (scale, ascale), s.slab_basis, k, created),
    };
    set_mem_target(&mut row, &ours, (k, own), created, ratio);
    Some(row)
}

/// The make-up of a `mem` row's memory: our figures × `scale`, memidle's × `ascale`, and the
/// kernel part's `basis`.
fn mem_columns(
    ours: &dyn Fn(MemMetric) -> Option<f64>,
    theirs: &dyn Fn(MemMetric) -> Option<f64>,
    (scale, ascale): (f64, f64),
    basis: mem::SlabBasis,
    k: usize,
    created: usize,
) -> MemColumns {
    MemColumns {
        slots: Some(k),
        created: Some(created),
        ours_slab: ours(MemMetric::Slab).map(|v| (v * scale).round()),
        ours_slab_objects: ours(MemMetric::SlabObjects).map(|v| (v * scale).round()),
        ours_kstack: ours(MemMetric::Kstack).map(|v| (v * scale).round()),
        ours_pgtbl: ours(MemMetric::Pgtbl).map(|v| (v * scale).round()),
        ours_rss: ours(MemMetric::Rss).map(|v| (v * scale).round()),
        ours_memfree: ours(MemMetric::MemFree).map(|v| (v * scale).round()),
        anchor_slab: theirs(MemMetric::Slab).map(|v| (v * ascale).round()),
        anchor_slab_objects: theirs(MemMetric::SlabObjects).map(|v| (v * ascale).round()),
        slab_basis: Some(basis),
        anchor_kstack: theirs(MemMetric::Kstack).map(|v| (v * ascale).round()),
        anchor_pgtbl: theirs(MemMetric::Pgtbl).map(|v| (v * ascale).round()),
        anchor_rss: theirs(MemMetric::Rss).map(|v| (v * ascale).round()),
        anchor_memfree: theirs(MemMetric::MemFree).map(|v| (v * ascale).round()),
        fds_per_slot: ours(MemMetric::Fds).map(round3),
        ours_daemon_rss: ours(MemMetric::DaemonRss).map(|v| (v * scale).round()),
        directory: ours(MemMetric::Directory).map(|v| v >= 0.5),
        first_rss: ours(MemMetric::FirstRss).map(f64::round),
        ..MemColumns::default()
    }
}

/// A `mem` row's target: `idle_slot` against the anchor per slot; `idle_10k` against a total and
/// the times to create and close all (with those times in its columns).
fn set_mem_target(
    row: &mut Row,
    ours: &dyn Fn(MemMetric) -> Option<f64>,
    (k, own): (usize, bool),
    created: usize,
    ratio: f64,
) {
    if k == mem::K_SLOT {
        if !own {
            row.target = Some(MEM_SLOT_TARGET);
            row.meets_target = Some(created == k && ratio <= MEM_SLOT_TARGET);
        }
    } else {
        let (c, d) = (ours(MemMetric::CreateSecs), ours(MemMetric::CloseSecs));
        row.mem.create_s = c.map(|v| (v * 1e4).round() / 1e4);
        row.mem.close_s = d.map(|v| (v * 1e4).round() / 1e4);
        row.mem.rss_returned = ours(MemMetric::RssReturned).map(f64::round);
        if own {
            return;
        }
        row.mem.target_bytes = Some(mem::TARGET_10K_BYTES);
        row.mem.target_secs = Some(mem::TARGET_10K_SECS);
        let secs_ok = |v: Option<f64>| v.is_some_and(|v| v < mem::TARGET_10K_SECS);
        row.meets_target =
            Some(created == k && row.ours <= mem::TARGET_10K_BYTES && secs_ok(c) && secs_ok(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Every series at every size: ours 2.0 (1000.0 for memory), the anchors 1.0 (500.0).
    fn samples(cli: &Cli) -> Samples {
        let mut s = Samples::default();
        for &size in &cli.sizes {
            for o in [Series::OursTput1, Series::OursTputK, Series::OursTputMount] {
                s.add(o, size, 2.0);
            }
            s.add(Series::Mq8, size, 1.0);
            for t in &cli.anchors {
                s.add(Series::AnchorTput(t.clone()), size, 1.0);
                for p in [Pct::P50, Pct::P99] {
                    s.add(Series::AnchorLat(t.clone(), p), size, 1.0);
                }
            }
            for p in [Pct::P50, Pct::P99] {
                for o in [Series::OursRtt, Series::OursRttNoSpin, Series::OursRttK] {
                    s.add(o(p), size, 2.0);
                }
            }
            for w in [1, 8] {
                for kind in FcKind::ALL {
                    let v = if kind == FcKind::Tcp { 1.0 } else { 2.0 };
                    for m in [FcMetric::Rate, FcMetric::P50, FcMetric::P99] {
                        s.add(Series::Fc(kind, w, m), size, v);
                    }
                    s.add(Series::Fc(kind, w, FcMetric::Loss), size, 0.0);
                }
            }
            for p in net::Placement::ALL {
                for (name, _, _) in net_anchors(p) {
                    s.add(Series::AnchorNet(name.into(), NetMetric::Rate), size, 1.0);
                }
                s.add(Series::OursNet(p, NetMetric::Rate), size, 2.0);
                s.add(Series::OursNet(p, NetMetric::Loss), size, 0.0);
            }
        }
        for k in [mem::K_SLOT, mem::K_10K] {
            s.add(Series::OursMem(k, MemMetric::Bytes), 0, 1000.0);
            s.add(Series::OursMem(k, MemMetric::Created), 0, k as f64);
            s.add(Series::AnchorMem(k, MemMetric::Bytes), 0, 500.0);
        }
        s
    }

    /// The row names `BENCHMARKS.md` and `.ci/run` read, in the report's order, with their
    /// ratios and targets.
    #[test]
    fn rows_keep_their_names_order_and_ratios() {
        let cli = Cli::parse_from([
            "mailslot-bench",
            "--quick",
            "--sizes",
            "64",
            "--anchors",
            "mq,shmhybrid",
        ]);
        let rows = rows(&cli, &samples(&cli), 1, 8);
        let names: Vec<(&str, &str)> = rows.iter().map(|r| (&*r.bench, &*r.anchor)).collect();
        assert_eq!(
            names,
            [
                ("mount_tput", "mq"),
                ("mount_tput", "library"),
                ("tput_1to1", "mq"),
                ("tput_1to1", "shmhybrid"),
                ("tput_8to1", "mq"),
                ("tput_8to1", "shmhybrid"),
                ("tput_8to1", "mq8"),
                ("rtt_1to1", "mq"),
                ("rtt_1to1", "shmhybrid"),
                ("rtt_1to1_nospin", "mq"),
                ("rtt_1to1_nospin", "shmhybrid"),
                ("rtt_8to1", "mq"),
                ("rtt_8to1", "shmhybrid"),
                ("net_tput", "udp"),
                ("net_tput", "udprouter"),
                ("net_tput_unpinned", "udp PIN=0"),
                ("net_tput_unpinned", "udprouter"),
                ("net_fc_tput_1to1", "tcp_rr"),
                ("net_fc_tput_1to1", "class2"),
                ("net_fc_rtt_1to1", "tcp_rr"),
                ("net_fc_rtt_1to1", "class2"),
                ("net_dg_tput_1to1", "tcp_rr"),
                ("net_dg_call_1to1", "tcp_rr"),
                ("net_fc_tput_8to1", "tcp_rr"),
                ("net_fc_tput_8to1", "class2"),
                ("net_fc_rtt_8to1", "tcp_rr"),
                ("net_fc_rtt_8to1", "class2"),
                ("net_dg_tput_8to1", "tcp_rr"),
                ("net_dg_call_8to1", "tcp_rr"),
                ("idle_slot", "udgram"),
                ("idle_10k", "udgram"),
            ]
        );
        for r in &rows {
            // The file view beside the library, class 1 beside class 2: ours beside ours.
            let ratio = if r.anchor == "library" || r.anchor == "class2" {
                1.0
            } else {
                2.0
            };
            assert_eq!(r.ratio, ratio, "{} {}", r.bench, r.anchor);
            assert_eq!(r.mode, "quick");
        }
        let row = |b: &str, a: &str| rows.iter().find(|r| r.bench == b && r.anchor == a).unwrap();
        assert_eq!(row("tput_1to1", "shmhybrid").meets_target, Some(true));
        assert_eq!(row("tput_8to1", "mq8").anchor_mode, "8to1");
        assert_eq!(row("rtt_1to1", "mq").meets_target, Some(false));
        assert_eq!(row("rtt_1to1", "mq").ours_p99, Some(2.0));
        assert_eq!(row("net_tput", "udp").meets_target, Some(true));
        assert_eq!(row("net_tput", "udp").quota, net::QUOTA);
        assert_eq!(row("idle_slot", "udgram").meets_target, Some(false));
        assert_eq!(row("idle_10k", "udgram").unit, "B");
        let fc = row("net_fc_rtt_8to1", "tcp_rr");
        assert_eq!(
            (fc.unit, fc.better, fc.anchor_mode),
            ("ns", "lower", "8to1")
        );
        assert_eq!(
            (fc.ours_p99, fc.anchor_p99, fc.target),
            (Some(2.0), Some(1.0), None)
        );
        let dg = row("net_dg_tput_1to1", "tcp_rr");
        assert_eq!((dg.unit, dg.anchor_mode), ("msg/s", "1to1"));
        assert_eq!((dg.net.ours_loss, dg.net.anchor_loss), (Some(0.0), None));
        assert_eq!(row("net_fc_tput_1to1", "class2").net.anchor_loss, Some(0.0));
        assert_eq!(row("net_fc_tput_1to1", "tcp_rr").net.ours_loss, None);
    }

    /// Rows whose series were not measured (a bench left out with `--only`) are left out.
    #[test]
    fn unmeasured_benches_give_no_rows() {
        let cli = Cli::parse_from(["mailslot-bench", "--sizes", "64"]);
        let mut s = Samples::default();
        s.add(Series::OursTput1, 64, 3.0);
        s.add(Series::AnchorTput("pipe".into()), 64, 2.0);
        let rows = rows(&cli, &s, 1, 8);
        assert_eq!(rows.len(), 1);
        assert_eq!((&*rows[0].bench, rows[0].ratio), ("tput_1to1", 1.5));
        assert_eq!(rows[0].mode, "full");
    }
}
