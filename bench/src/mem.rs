//! Memory of idle mailslots, measured the way `shared/bench/memidle.c` measures its idle objects,
//! so that the two are comparable.
//!
//! memidle (`memidle <kind> <K>`) calls `sync()`, sleeps 1 s, reads `MemFree`, `Slab`,
//! `KernelStack` and `PageTables` of `/proc/meminfo` and its own `VmRSS` of `/proc/self/status`,
//! creates K objects, sleeps 1 s, reads them again and prints each delta ÷ K in bytes
//! (`memfree_B_per= slab_B_per= kstack_B_per= pgtbl_B_per= rss_B_per=`). The `__mem-idle` role
//! does exactly that with K mailslots made by [`Mailslot::create`] (unique names, no writer),
//! and also counts `/proc/self/fd` before and after, times the creation of all K and the drop of
//! all K, and reads `VmRSS` again after the drop. The cost per object is memidle's own headline,
//! **kernel slab + RSS** (see [`bytes_per`]); the kernel stack and page-table deltas are
//! reported beside it (a thread or a mapping per slot would show there).
//!
//! Before the first reading the role makes one mailslot of its own and keeps it to the end: the
//! first mailslot of a process starts the process's service thread and pages in the library's
//! code, which no later slot pays again (memidle's objects have their code in libc, long paged
//! in). What that first slot took (`VmRSS`) is printed as `first_rss_B=` and shown beside the
//! row, so the per-slot figure is what each further slot costs.
//!
//! The meminfo counters are system-wide: anything else the machine does between the two readings
//! lands in them, so the figures are noisy on a shared machine (less so with a larger K).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mailslot::Mailslot;

use crate::sys;

/// Slots of the `idle_slot` row (memidle's anchor runs with the same K).
pub(crate) const K_SLOT: usize = 1000;
/// Slots of the `idle_10k` row.
pub(crate) const K_10K: usize = 10_000;
/// Target of `idle_10k`: total bytes of 10 000 idle slots.
pub(crate) const TARGET_10K_BYTES: f64 = 24.0 * 1024.0 * 1024.0;
/// Target of `idle_10k`: seconds to create all of them, and to close all of them.
pub(crate) const TARGET_10K_SECS: f64 = 1.0;
/// memidle's settling pause before each reading.
const SETTLE: Duration = Duration::from_secs(1);

/// One reading of the counters memidle reads, in kB as the kernel gives them.
#[derive(Debug, Clone, Copy)]
struct Counters {
    memfree: i64,
    slab: i64,
    kstack: i64,
    pgtbl: i64,
    rss: i64,
}

/// Value of `key:` in `/proc/meminfo`, kB.
fn meminfo(text: &str, key: &str) -> Result<i64> {
    text.lines()
        .find_map(|l| {
            let (k, rest) = l.split_once(':')?;
            (k == key).then(|| rest.split_whitespace().next()?.parse().ok())?
        })
        .with_context(|| format!("no `{key}:` in /proc/meminfo"))
}

/// Own `VmRSS` of `/proc/self/status`, kB.
fn rss_kb() -> Result<i64> {
    let text = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("no `VmRSS:` in /proc/self/status")
}

impl Counters {
    fn read() -> Result<Self> {
        let m = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
        Ok(Self {
            memfree: meminfo(&m, "MemFree")?,
            slab: meminfo(&m, "Slab")?,
            kstack: meminfo(&m, "KernelStack")?,
            pgtbl: meminfo(&m, "PageTables")?,
            rss: rss_kb()?,
        })
    }
}

/// Descriptors open in this process now.
fn open_fds() -> Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")
        .context("listing /proc/self/fd")?
        .count())
}

/// Raises the soft descriptor limit to the hard one; returns the (soft, hard) limits after.
fn raise_nofile() -> (u64, u64) {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit only read and write it.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return (0, 0);
        }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        (rl.rlim_cur as u64, rl.rlim_max as u64)
    }
}

/// The `__mem-idle` role: creates `count` idle mailslots and prints one line with memidle's
/// per-object keys plus `fds_per=`, `create_s=`, `close_s=`, `rss_returned_B=`, `first_rss_B=`,
/// `created=` and `failed=` (1 when not all could be created: the error goes to stderr and the
/// figures are per slot created). Exits successfully in that case too, so that the harness can
/// report it.
pub(crate) fn idle(count: usize) -> Result<()> {
    let (soft, hard) = raise_nofile();
    let pid = std::process::id();
    let r_first = rss_kb()?;
    let first = Mailslot::create(&format!(r"\\.\mailslot\bench\{pid}\idle\first"))
        .context("creating the first mailslot")?;
    let first_rss = (rss_kb()? - r_first) * 1024;
    let fd0 = open_fds()?;
    // As memidle: flush dirty pages, let the system settle, then read.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::thread::sleep(SETTLE);
    let c0 = Counters::read()?;
    let mut slots = Vec::with_capacity(count);
    let mut failed = false;
    let t0 = Instant::now();
    for i in 0..count {
        let name = format!(r"\\.\mailslot\bench\{pid}\idle\{i}");
        match Mailslot::create(&name) {
            Ok(s) => slots.push(s),
            Err(e) => {
                eprintln!(
                    "mailslot-bench: idle mailslots: creating #{i} of {count} failed: {e} \
                     ({} open descriptors, RLIMIT_NOFILE soft {soft} hard {hard}); figures are \
                     for the {i} created",
                    open_fds().unwrap_or(0)
                );
                failed = true;
                break;
            }
        }
    }
    let create_s = t0.elapsed().as_secs_f64();
    let created = slots.len();
    std::thread::sleep(SETTLE);
    let c1 = Counters::read()?;
    let fd1 = open_fds()?;
    let t1 = Instant::now();
    drop(slots);
    let close_s = t1.elapsed().as_secs_f64();
    let rss2 = rss_kb()?;
    drop(first);
    let k = created.max(1) as f64;
    let per = |kb: i64| kb as f64 * 1024.0 / k;
    sys::say(&format!(
        "kind=mailslot K={count} created={created} failed={} memfree_B_per={:.0} slab_B_per={:.0} \
         kstack_B_per={:.0} pgtbl_B_per={:.0} rss_B_per={:.0} fds_per={:.3} create_s={create_s:.6} \
         close_s={close_s:.6} rss_returned_B={} first_rss_B={first_rss} nofile_soft={soft} \
         nofile_hard={hard}",
        u8::from(failed),
        per(c0.memfree - c1.memfree),
        per(c1.slab - c0.slab),
        per(c1.kstack - c0.kstack),
        per(c1.pgtbl - c0.pgtbl),
        per(c1.rss - c0.rss),
        (fd1 as f64 - fd0 as f64) / k,
        (c1.rss - rss2) * 1024,
    ))
}

/// Bytes per object of a memidle-style result line: kernel slab + RSS, the figure memidle is
/// described by ("kernel slab + RSS per idle object"). `KernelStack` and `PageTables` are
/// reported separately: on a shared machine their system-wide deltas are mostly other
/// processes' noise (often negative). `MemFree` is left out for the same reason (page cache).
pub(crate) fn bytes_per(
    kv: &std::collections::BTreeMap<String, String>,
    what: &str,
) -> Result<f64> {
    Ok(sys::kv_f64(kv, "slab_B_per", what)? + sys::kv_f64(kv, "rss_B_per", what)?)
}
