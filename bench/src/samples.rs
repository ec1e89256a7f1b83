//! What the measurements record: one value per run for each (series, message size).

use std::collections::BTreeMap;

use anyhow::Result;

use crate::mem::SlabBasis;
use crate::{net, netfc, sys};

/// One series of samples: who measured what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Series {
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
    /// The first-class bench: a kind of remote write (or the TCP anchor) with a number of
    /// writers.
    Fc(netfc::Kind, usize, FcMetric),
    /// Our idle mailslots, K of them in one process (samples under size 0), their names in the
    /// daemon's directory when one runs.
    OursMem(usize, MemMetric),
    /// The same, each slot with a socket of its own (no directory).
    OursMemOwn(usize, MemMetric),
    /// memidle `udgram K` (samples under size 0).
    AnchorMem(usize, MemMetric),
}

/// What one idle-memory run yields (per object unless said otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MemMetric {
    /// Kernel slab + RSS, bytes per object ([`crate::mem::bytes_per`]).
    Bytes,
    /// `Slab` delta, bytes per object.
    Slab,
    /// Slab caches' objects in use, bytes per object (memidle's `sum=`; 0 when
    /// `/proc/slabinfo` cannot be read).
    SlabObjects,
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
    /// `VmRSS` the process's first mailslot took, bytes (ours; paid once per process, before the
    /// K are counted: the service thread and the library's code).
    FirstRss,
    /// The daemon's `VmRSS` delta, bytes per object (ours, when its directory keeps the names;
    /// part of [`Bytes`](Self::Bytes)).
    DaemonRss,
    /// 1 when the daemon's directory kept the names, 0 when each slot had a socket (ours).
    Directory,
}

/// The per-object keys of a memidle-style line, besides the sum [`MemMetric::Bytes`].
pub(crate) const MEM_KEYS: [(MemMetric, &str); 6] = [
    (MemMetric::Slab, "slab_B_per"),
    (MemMetric::SlabObjects, crate::mem::SLAB_OBJECTS_KEY),
    (MemMetric::Kstack, "kstack_B_per"),
    (MemMetric::Pgtbl, "pgtbl_B_per"),
    (MemMetric::Rss, "rss_B_per"),
    (MemMetric::MemFree, "memfree_B_per"),
];

/// The anchor kind of the memory rows: memidle's bound (abstract) Unix datagram socket.
pub(crate) const MEM_ANCHOR: &str = "udgram";

/// What one network throughput run yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NetMetric {
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
pub(crate) fn net_anchors(p: net::Placement) -> [(&'static str, &'static str, &'static str); 2] {
    match p {
        net::Placement::Pinned => [("udp", "udp", "1"), ("udprouter", "udprouter", "0")],
        net::Placement::Unpinned => [("udp PIN=0", "udp", "0"), ("udprouter", "udprouter", "0")],
    }
}

/// What one first-class bench measurement yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FcMetric {
    /// Operations (messages received, for class 2) per second.
    Rate,
    /// Median duration of one write call or request, ns.
    P50,
    /// 99th percentile, ns.
    P99,
    /// Fraction of the messages lost (class 2).
    Loss,
}

/// The writer counts of the first-class bench: 1 and `k` (once when `k` is 1).
pub(crate) fn fc_writer_counts(k: usize) -> Vec<usize> {
    if k <= 1 {
        vec![1]
    } else {
        vec![1, k]
    }
}

/// Which percentile of a latency run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Pct {
    P50,
    P99,
}

/// Samples per (series, size), one per run, in run order.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    values: BTreeMap<(Series, usize), Vec<f64>>,
    /// How the idle-memory rows counted the kernel's part (chosen once by the measurement, for
    /// both sides; the report says which).
    pub(crate) slab_basis: SlabBasis,
}

impl Samples {
    /// No samples yet; the idle-memory rows will be counted by `slab_basis`.
    pub(crate) fn new(slab_basis: SlabBasis) -> Self {
        Self {
            values: BTreeMap::new(),
            slab_basis,
        }
    }

    /// Records one run's value.
    pub(crate) fn add(&mut self, series: Series, size: usize, v: f64) {
        self.values.entry((series, size)).or_default().push(v);
    }

    /// The values of every run, if the series was measured at that size.
    pub(crate) fn get(&self, series: &Series, size: usize) -> Option<&[f64]> {
        self.values.get(&(series.clone(), size)).map(Vec::as_slice)
    }

    /// Records the p50 and p99 (`p50_ns=`, `p99_ns=`) of a latency run as `series(P50/P99)`.
    pub(crate) fn add_percentiles(
        &mut self,
        size: usize,
        kv: &BTreeMap<String, String>,
        what: &str,
        series: impl Fn(Pct) -> Series,
    ) -> Result<()> {
        self.add(series(Pct::P50), size, sys::kv_f64(kv, "p50_ns", what)?);
        self.add(series(Pct::P99), size, sys::kv_f64(kv, "p99_ns", what)?);
        Ok(())
    }
}
