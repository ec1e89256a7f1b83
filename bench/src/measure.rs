//! Taking the samples: the anchors and our roles, every bench `runs` times, interleaved.

use std::path::Path;

use anyhow::Result;

use crate::samples::{
    fc_writer_counts, net_anchors, FcMetric, MemMetric, NetMetric, Samples, Series, MEM_ANCHOR,
    MEM_KEYS,
};
use crate::{anchor, mem, mount, net, netfc, progress, sys, tput, Bench, Cli};

/// Messages per run of each kind of bench.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    /// Local throughput messages.
    pub(crate) tput: u64,
    /// Recorded round trips.
    pub(crate) rtt: u64,
    /// Network datagrams.
    pub(crate) net: u64,
    /// Remote writes (and TCP anchor requests) per first-class measurement.
    pub(crate) fc: u64,
}

/// Takes all samples: starts what the selected benches need (the daemon, the two namespaces of
/// the first-class bench, the file view, the memidle anchor), then for each of `runs` runs the
/// idle-memory bench once and, for each message size, the first-class bench once and the network
/// and local benches `repeats` times.
pub(crate) fn measure(
    cli: &Cli,
    ipc: &anchor::IpcBench,
    dir: &Path,
    (runs, repeats): (usize, usize),
    counts: Counts,
    k: usize,
) -> Result<Samples> {
    // The daemon also keeps the names of the local mailslots made while it runs (its
    // directory): the idle-memory rows measure slots as a system with the daemon has them.
    let daemon = if cli.wants(Bench::Net) || cli.wants(Bench::Mem) {
        progress("starting mailslotd for the net and mem benches");
        Some(net::Daemon::start(&dir.join("mailslotd"))?)
    } else {
        None
    };
    let fc = start_fc(cli, dir)?;
    let mount = start_mount(cli, dir)?;
    let memidle = if cli.wants(Bench::Mem) {
        Some(anchor::MemIdle::build(dir)?)
    } else {
        None
    };
    let mut m = Measurer {
        cli,
        ipc,
        counts,
        k,
        runs,
        mount: mount.is_some(),
        epoch: 0,
        samples: Samples::new(mem::SlabBasis::detect()),
    };
    for run in 1..=runs {
        if let Some(memidle) = &memidle {
            m.idle_memory(memidle, run)?;
        }
        for &size in &cli.sizes {
            if let (Some(d), true) = (&daemon, cli.wants(Bench::Net)) {
                for _ in 0..repeats {
                    m.network(d, size, run)?;
                }
            }
            if let Some(pair) = &fc {
                m.first_class(pair, size, run)?;
            }
            for repeat in 0..repeats {
                // The file view's row once per run: ≈ 3 s a time, and bounded by FUSE.
                m.local(size, run, repeat == 0)?;
            }
        }
    }
    Ok(m.samples)
}

/// Makes the two hosts of the `net-fc` bench when it is selected. When it cannot run (not root,
/// no `ip netns`) it is left out with a note, or under `CI=true` the run fails: CI must not
/// silently lose the rows.
fn start_fc(cli: &Cli, dir: &Path) -> Result<Option<netfc::Pair>> {
    if !cli.wants(Bench::NetFc) {
        return Ok(None);
    }
    if let Some(why) = netfc::unavailable() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            anyhow::bail!(
                "net-fc bench cannot run: {why}; under CI=true that is an error, not a skip \
                 (leave it out with --only, or run as root)"
            );
        }
        progress(&format!(
            "net-fc bench skipped: {why} (no net_fc_*/net_dg_* rows)"
        ));
        return Ok(None);
    }
    progress("net-fc bench: two network namespaces, a mailslotd in each");
    Ok(Some(netfc::Pair::start(&dir.join("fc"))?))
}

/// Mounts the file view for the `mount` bench when it is selected and can run.
fn start_mount(cli: &Cli, dir: &Path) -> Result<Option<mount::Mount>> {
    match (cli.wants(Bench::Mount), mount::unavailable()) {
        (false, _) => Ok(None),
        (true, Some(why)) => {
            progress(&format!("mount bench skipped: {why}"));
            Ok(None)
        }
        (true, None) => {
            progress("mounting the file view for the mount bench");
            let m = mount::Mount::start(&dir.join("mnt"))?;
            // Writer processes started by the tput owner find it here.
            std::env::set_var(tput::MOUNT_ENV, &m.dir);
            Ok(Some(m))
        }
    }
}

/// One measurement session: what every bench reads, and the samples so far.
struct Measurer<'a> {
    cli: &'a Cli,
    ipc: &'a anchor::IpcBench,
    counts: Counts,
    /// Writers of the k→1 benches.
    k: usize,
    runs: usize,
    /// The file view is mounted (the `mount` bench runs).
    mount: bool,
    /// Distinguishes the network runs' datagrams from stale ones.
    epoch: u8,
    samples: Samples,
}

impl Measurer<'_> {
    /// The `mem` bench: memidle's udgram and our idle mailslots, K of each, for both K.
    fn idle_memory(&mut self, memidle: &anchor::MemIdle, run: usize) -> Result<()> {
        let runs = self.runs;
        progress(&format!(
            "run {run}/{runs}: idle memory, memidle {MEM_ANCHOR} and ours, {} and {} objects \
             (≈ 2 s each: memidle's settling pauses)",
            mem::K_SLOT,
            mem::K_10K
        ));
        for k in [mem::K_SLOT, mem::K_10K] {
            self.idle_memory_anchor(memidle, k)?;
            self.idle_memory_ours(k, false)?;
            self.idle_memory_ours(k, true)?;
        }
        Ok(())
    }

    /// memidle `udgram K`.
    fn idle_memory_anchor(&mut self, memidle: &anchor::MemIdle, k: usize) -> Result<()> {
        let what = format!("memidle {MEM_ANCHOR} {k}");
        let kv = memidle.run(MEM_ANCHOR, k)?;
        let anchor = |m| Series::AnchorMem(k, m);
        let s = &mut self.samples;
        s.add(
            anchor(MemMetric::Bytes),
            0,
            mem::bytes_per(&kv, s.slab_basis, &what)?,
        );
        for (metric, key) in MEM_KEYS {
            s.add(anchor(metric), 0, sys::kv_f64(&kv, key, &what)?);
        }
        Ok(())
    }

    /// K idle mailslots in one `__mem-idle` process: as the daemon's directory keeps them, or
    /// each with a socket of its own (`own`).
    fn idle_memory_ours(&mut self, k: usize, own: bool) -> Result<()> {
        let what = format!("{k} idle mailslots");
        let mut args = vec!["__mem-idle".into(), "--count".into(), k.to_string()];
        if own {
            args.push("--own-sockets".into());
        }
        let kv = sys::run_role(&args)?;
        let ours = |m| {
            if own {
                Series::OursMemOwn(k, m)
            } else {
                Series::OursMem(k, m)
            }
        };
        let s = &mut self.samples;
        s.add(
            ours(MemMetric::Bytes),
            0,
            mem::bytes_per(&kv, s.slab_basis, &what)?,
        );
        for (metric, key) in MEM_KEYS.into_iter().chain([
            (MemMetric::Fds, "fds_per"),
            (MemMetric::CreateSecs, "create_s"),
            (MemMetric::CloseSecs, "close_s"),
            (MemMetric::RssReturned, "rss_returned_B"),
            (MemMetric::Created, "created"),
            (MemMetric::FirstRss, "first_rss_B"),
            (MemMetric::DaemonRss, "daemon_rss_B_per"),
            (MemMetric::Directory, "directory"),
        ]) {
            s.add(ours(metric), 0, sys::kv_f64(&kv, key, &what)?);
        }
        let created = sys::kv_f64(&kv, "created", &what)?;
        if created < k as f64 {
            progress(&format!(
                "{what}: only {created} of {k} could be created (see the error above); \
                 the figures are for those"
            ));
        }
        Ok(())
    }

    /// The `net` bench at one size: the ipcbench UDP anchors, then ours in each placement.
    fn network(&mut self, daemon: &net::Daemon, size: usize, run: usize) -> Result<()> {
        progress(&format!(
            "run {run}/{runs}, {size} B: net (udp pinned and not, udprouter, ours pinned and not)",
            runs = self.runs
        ));
        let mut done: Vec<&str> = Vec::new();
        for (name, t, pin) in net::Placement::ALL.into_iter().flat_map(net_anchors) {
            if done.contains(&name) {
                continue;
            }
            done.push(name);
            self.network_anchor(name, t, pin, size)?;
        }
        for p in net::Placement::ALL {
            let o = net::measure(daemon, size, self.counts.net, self.epoch, p)?;
            self.epoch = self.epoch.wrapping_add(1);
            let series = |m| Series::OursNet(p, m);
            let s = &mut self.samples;
            s.add(series(NetMetric::Rate), size, o.rate);
            s.add(series(NetMetric::Loss), size, o.loss);
            s.add(series(NetMetric::Cpu), size, o.cpu_ns_per_dgram);
            s.add(
                series(NetMetric::CpuPerDelivered),
                size,
                o.cpu_ns_per_delivered,
            );
            s.add(series(NetMetric::LossSocket), size, o.loss_socket);
            s.add(series(NetMetric::LossDaemon), size, o.loss_daemon);
        }
        Ok(())
    }

    /// The `net-fc` bench at one size: the TCP anchor, class-1 and class-2 remote writes, each
    /// with one writer and with `k`.
    fn first_class(&mut self, pair: &netfc::Pair, size: usize, run: usize) -> Result<()> {
        let writers: Vec<String> = fc_writer_counts(self.k)
            .iter()
            .map(usize::to_string)
            .collect();
        progress(&format!(
            "run {run}/{runs}, {size} B: net-fc (tcp anchor, class 1, class 2; {} writer(s))",
            writers.join(" and "),
            runs = self.runs,
        ));
        for w in fc_writer_counts(self.k) {
            for kind in netfc::Kind::ALL {
                let o = pair.measure(kind, size, self.counts.fc, w)?;
                let series = |m| Series::Fc(kind, w, m);
                let s = &mut self.samples;
                s.add(series(FcMetric::Rate), size, o.rate);
                s.add(series(FcMetric::P50), size, o.p50);
                s.add(series(FcMetric::P99), size, o.p99);
                s.add(series(FcMetric::Loss), size, o.loss);
            }
        }
        Ok(())
    }

    /// ipcbench `BATCH=32 PIN=pin <t> tput`, recorded under `name`.
    fn network_anchor(&mut self, name: &str, t: &str, pin: &str, size: usize) -> Result<()> {
        let env = [("BATCH", "32"), ("PIN", pin)];
        let (kv, cpu) = self.ipc.run_lossy_tput(t, size, self.counts.net, &env)?;
        let what = format!("ipcbench {t} PIN={pin}");
        let n = sys::kv_f64(&kv, "n", &what)?;
        let series = |m| Series::AnchorNet(name.into(), m);
        let s = &mut self.samples;
        s.add(
            series(NetMetric::Rate),
            size,
            sys::kv_f64(&kv, "rate", &what)?,
        );
        s.add(
            series(NetMetric::Loss),
            size,
            sys::kv_f64(&kv, "loss", &what)?,
        );
        if let Some(c) = cpu {
            let recvd = sys::kv_f64(&kv, "recvd", &what)?;
            s.add(series(NetMetric::Cpu), size, c as f64 / n);
            s.add(
                series(NetMetric::CpuPerDelivered),
                size,
                c as f64 / recvd.max(1.0),
            );
        }
        Ok(())
    }

    /// The local benches at one size (`tput`, `rtt`, and `mount`'s throughput): the ipcbench
    /// throughput anchors, ours, then the round-trip anchors and ours right after them.
    ///
    /// Round trips are run last and next to their anchors: on this kind of machine (two vCPUs)
    /// the round trip of every transport, the anchors' as well as ours, moves between two
    /// levels (≈ 250 and ≈ 900 ns at 64 B for `shmhybrid`) for seconds at a time, so a ratio
    /// is only fair between runs made one right after the other. `shmhybrid`, the anchor of
    /// the spinning round trip, is the last anchor run, just before ours.
    /// `mount` without `with_mount` leaves the file view out.
    fn local(&mut self, size: usize, run: usize, with_mount: bool) -> Result<()> {
        let mount = self.mount && with_mount;
        let tput = self.cli.wants(Bench::Tput) || mount;
        let rtt = self.cli.wants(Bench::Rtt);
        if !tput && !rtt {
            return Ok(());
        }
        let runs = self.runs;
        let quota = self
            .cli
            .quota_msgs
            .map_or(self.cli.quota, |n| n.max(1) * size)
            .to_string();
        if tput {
            progress(&format!("run {run}/{runs}, {size} B: throughput anchors"));
            self.tput_anchors(size)?;
            progress(&format!(
                "run {run}/{runs}, {size} B: mailslots' throughput"
            ));
        }
        self.local_tput(size, &quota, tput, mount)?;
        if rtt {
            progress(&format!(
                "run {run}/{runs}, {size} B: round-trip anchors, then mailslots'"
            ));
            self.rtt_anchors(size)?;
            self.local_rtt(size, &quota)?;
        }
        Ok(())
    }

    /// ipcbench `tput` of every `--anchors` transport.
    fn tput_anchors(&mut self, size: usize) -> Result<()> {
        for t in &self.cli.anchors {
            let kv = self.ipc.run(t, "tput", size, self.counts.tput)?;
            self.samples.add(
                Series::AnchorTput(t.clone()),
                size,
                sys::kv_f64(&kv, "rate", t)?,
            );
        }
        Ok(())
    }

    /// ipcbench `lat` of every `--anchors` transport, `shmhybrid` last (see [`Self::local`]).
    fn rtt_anchors(&mut self, size: usize) -> Result<()> {
        let mut order: Vec<&String> = self.cli.anchors.iter().collect();
        order.sort_by_key(|t| t.as_str() == "shmhybrid");
        for t in order {
            let kv = self.ipc.run(t, "lat", size, self.counts.rtt)?;
            self.samples
                .add_percentiles(size, &kv, t, |p| Series::AnchorLat(t.clone(), p))?;
        }
        Ok(())
    }

    /// Our throughput: 1→1 (with `tput` or `mount`), k→1 and the harness's k-writer mq (with
    /// `tput`), 1→1 through the file view (with `mount`).
    fn local_tput(&mut self, size: usize, quota: &str, tput: bool, mount: bool) -> Result<()> {
        let (k, count) = (self.k, self.counts.tput);
        let owner =
            |transport: &str, writers: usize| tput_owner(transport, writers, size, count, quota);
        let s = &mut self.samples;
        if tput {
            s.add(Series::OursTput1, size, owner("ours", 1)?);
        }
        if self.cli.wants(Bench::Tput) {
            s.add(Series::OursTputK, size, owner("ours", k)?);
            if !self.cli.no_mq8 {
                s.add(Series::Mq8, size, owner("mq", k)?);
            }
        }
        if mount {
            s.add(Series::OursTputMount, size, owner("mount", 1)?);
        }
        Ok(())
    }

    /// Our round trips: 1→1 with and without the read spin, k→1.
    fn local_rtt(&mut self, size: usize, quota: &str) -> Result<()> {
        let count = self.counts.rtt;
        let rtt_role = |role: &str, extra: &[String]| {
            let mut args = vec![role.to_string()];
            args.extend_from_slice(extra);
            args.extend([
                "--size".into(),
                size.to_string(),
                "--count".into(),
                count.to_string(),
                "--quota".into(),
                quota.to_string(),
            ]);
            sys::run_role(&args)
        };
        let s = &mut self.samples;
        let kv = rtt_role("__rtt-ping", &[])?;
        s.add_percentiles(size, &kv, "rtt", Series::OursRtt)?;
        let kv = rtt_role("__rtt-ping", &["--nospin".into()])?;
        s.add_percentiles(size, &kv, "rtt nospin", Series::OursRttNoSpin)?;
        let kv = rtt_role("__rtt8-echo", &["--clients".into(), self.k.to_string()])?;
        s.add_percentiles(size, &kv, "rtt k", Series::OursRttK)?;
        Ok(())
    }
}

/// One `__tput-owner` run: its rate, or an error if any message arrived out of order.
fn tput_owner(
    transport: &str,
    writers: usize,
    size: usize,
    count: u64,
    quota: &str,
) -> Result<f64> {
    let kv = sys::run_role(&[
        "__tput-owner".into(),
        "--transport".into(),
        transport.into(),
        "--writers".into(),
        writers.to_string(),
        "--size".into(),
        size.to_string(),
        "--count".into(),
        count.to_string(),
        "--quota".into(),
        quota.into(),
    ])?;
    let bad = sys::kv_f64(&kv, "badseq", "tput owner")?;
    if bad > 0.0 {
        anyhow::bail!("{transport} {writers}→1: {bad} messages out of order");
    }
    sys::kv_f64(&kv, "rate", "tput owner")
}
