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
//! reported beside it (a thread or a mapping per slot would show there). Both sides also read
//! `/proc/slabinfo` with the counters, and the slab part is counted by objects in use, as
//! memidle's `sum=` (see [`SlabBasis`]): `Slab` of `/proc/meminfo` counts pages, of which a run
//! finds many free (the run before freed its K sockets), so at K = 1000 it undercounted both
//! sides by a different amount each run (± 15 %).
//!
//! Before the first reading the role makes one mailslot of its own and keeps it to the end: the
//! first mailslot of a process starts the process's service thread and pages in the library's
//! code, which no later slot pays again (memidle's objects have their code in libc, long paged
//! in). What that first slot took (`VmRSS`) is printed as `first_rss_B=` and shown beside the
//! row, so the per-slot figure is what each further slot costs.
//!
//! When the daemon runs (the harness starts one for this bench), the names of the slots are in
//! its directory and the slots have no socket of their own (see `mailslot::directory`); the role
//! then also reads the daemon's `VmRSS` before and after (`daemon_rss_B_per=`, `directory=1`),
//! and that is added to the slot's bytes: the slab part is system-wide and counts the daemon's
//! kernel objects by itself.
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

/// Key of the object-level slab figure in a result line (ours and memidle's, see
/// [`SlabBasis::Objects`]).
pub(crate) const SLAB_OBJECTS_KEY: &str = "slab_objs_B_per";
/// memidle lists (and sums) only the caches that grew by at least this many bytes per object.
const SLAB_MIN_PER_OBJECT: f64 = 24.0;

/// What the kernel part of a row's bytes per object is measured by (serialized as its
/// [`label`](Self::label)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub(crate) enum SlabBasis {
    /// The objects in use of each slab cache (`/proc/slabinfo`, which only root may read):
    /// Σ (objects after − before) × object size over the caches that grew by at least 24 bytes
    /// per object, memidle's `sum=`. Exact for what the K objects hold, whatever the caches'
    /// free room before (a run after another one that just freed K sockets finds their slab
    /// pages still there, and `Slab` of `/proc/meminfo` then moves less than it should).
    #[serde(rename = "slab objects")]
    Objects,
    /// `Slab` of `/proc/meminfo` (pages held by all caches): what is left when `/proc/slabinfo`
    /// cannot be read; swings by ± 150 bytes per object at K = 1000.
    #[default]
    #[serde(rename = "slab pages")]
    Pages,
}

impl SlabBasis {
    /// [`Objects`](Self::Objects) when this process can read `/proc/slabinfo`, as the two
    /// measured processes (memidle, `__mem-idle`) can then too.
    pub(crate) fn detect() -> Self {
        if std::fs::File::open("/proc/slabinfo").is_ok() {
            Self::Objects
        } else {
            Self::Pages
        }
    }

    /// The name the report gives it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Objects => "slab objects",
            Self::Pages => "slab pages",
        }
    }
}

/// One reading of the counters memidle reads, in kB as the kernel gives them, and the slab
/// caches' objects in use (empty when `/proc/slabinfo` cannot be read).
#[derive(Debug, Clone)]
struct Counters {
    memfree: i64,
    slab: i64,
    kstack: i64,
    pgtbl: i64,
    rss: i64,
    caches: Vec<Cache>,
}

/// One line of `/proc/slabinfo`: a cache's name, objects in use and object size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cache {
    name: String,
    active: i64,
    size: i64,
}

/// The caches of `/proc/slabinfo` (version 2.x: `name active_objs num_objs objsize …`, two
/// header lines); lines that do not parse are skipped, as memidle skips them.
fn parse_slabinfo(text: &str) -> Vec<Cache> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("slabinfo"))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let active = f.next()?.parse().ok()?;
            let _total: i64 = f.next()?.parse().ok()?;
            let size = f.next()?.parse().ok()?;
            Some(Cache { name, active, size })
        })
        .collect()
}

/// memidle's `sum=`: bytes per object of the caches whose objects in use grew by at least
/// [`SLAB_MIN_PER_OBJECT`] per object between `before` and `after` (object size of `after`).
fn slab_objects_per(before: &[Cache], after: &[Cache], k: f64) -> f64 {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.name == a.name)?;
            let d = (a.active - b.active) as f64 * a.size as f64 / k;
            (d >= SLAB_MIN_PER_OBJECT).then_some(d)
        })
        .sum()
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
    rss_kb_of("self")
}

/// `VmRSS` of `/proc/<pid>/status`, kB.
fn rss_kb_of(pid: &str) -> Result<i64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
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
            caches: std::fs::read_to_string("/proc/slabinfo")
                .map(|t| parse_slabinfo(&t))
                .unwrap_or_default(),
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
pub(crate) fn idle(count: usize, own_sockets: bool) -> Result<()> {
    if own_sockets {
        // Before the first mailslot (the library reads it at each create), while this process
        // has one thread.
        std::env::set_var(mailslot::directory::DIRECTORY_ENV, "off");
    }
    let (soft, hard) = raise_nofile();
    let pid = std::process::id();
    let r_first = rss_kb()?;
    let first = Mailslot::create(&format!(r"\\.\mailslot\bench\{pid}\idle\first"))
        .context("creating the first mailslot")?;
    let first_rss = (rss_kb()? - r_first) * 1024;
    let fd0 = open_fds()?;
    // The daemon whose directory keeps the names (when one runs): its memory for them counts.
    let daemon = mailslot::directory::server_pid().map(|p| p.to_string());
    // As memidle: flush dirty pages, let the system settle, then read.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::thread::sleep(SETTLE);
    let c0 = Counters::read()?;
    let d0 = daemon.as_deref().map(rss_kb_of).transpose()?;
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
    let d1 = daemon.as_deref().map(rss_kb_of).transpose()?;
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
         {SLAB_OBJECTS_KEY}={:.0} kstack_B_per={:.0} pgtbl_B_per={:.0} rss_B_per={:.0} fds_per={:.3} create_s={create_s:.6} \
         close_s={close_s:.6} rss_returned_B={} first_rss_B={first_rss} nofile_soft={soft} \
         nofile_hard={hard} directory={} daemon_rss_B_per={:.0}",
        u8::from(failed),
        per(c0.memfree - c1.memfree),
        per(c1.slab - c0.slab),
        slab_objects_per(&c0.caches, &c1.caches, k),
        per(c1.kstack - c0.kstack),
        per(c1.pgtbl - c0.pgtbl),
        per(c1.rss - c0.rss),
        (fd1 as f64 - fd0 as f64) / k,
        (c1.rss - rss2) * 1024,
        u8::from(daemon.is_some()),
        d0.zip(d1).map_or(0.0, |(a, b)| per(b - a)),
    ))
}

/// Bytes per object of a memidle-style result line: kernel slab (by `basis`) + RSS, the figure
/// memidle is described by ("kernel slab + RSS per idle object"). `KernelStack` and
/// `PageTables` are reported separately: on a shared machine their system-wide deltas are mostly
/// other processes' noise (often negative). `MemFree` is left out for the same reason (page
/// cache).
pub(crate) fn bytes_per(
    kv: &std::collections::BTreeMap<String, String>,
    basis: SlabBasis,
    what: &str,
) -> Result<f64> {
    let slab_key = match basis {
        SlabBasis::Objects => SLAB_OBJECTS_KEY,
        SlabBasis::Pages => "slab_B_per",
    };
    // Ours also counts what the daemon's directory holds for the names (memidle has no such key).
    let daemon = sys::kv_f64(kv, "daemon_rss_B_per", what).unwrap_or(0.0);
    Ok(sys::kv_f64(kv, slab_key, what)? + sys::kv_f64(kv, "rss_B_per", what)? + daemon)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/slabinfo` as this kernel writes it (2.1), before and after 1000 bound sockets.
    const BEFORE: &str = "slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
sock_inode_cache     262    418    832   19    4 : tunables    0    0    0 : slabdata     22     22      0
signal_cache         161    322   1152   14    4 : tunables    0    0    0 : slabdata     23     23      0
kmalloc-32          2153   5504     32  128    1 : tunables    0    0    0 : slabdata     43     43      0
kmalloc-8          10000  10240      8  512    1 : tunables    0    0    0 : slabdata     20     20      0
";
    const AFTER: &str = "slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
sock_inode_cache    1262   1273    832   19    4 : tunables    0    0    0 : slabdata     67     67      0
signal_cache        1161   1162   1152   14    4 : tunables    0    0    0 : slabdata     83     83      0
kmalloc-32          3153   5504     32  128    1 : tunables    0    0    0 : slabdata     43     43      0
kmalloc-8          11000  11264      8  512    1 : tunables    0    0    0 : slabdata     22     22      0
";

    #[test]
    fn slabinfo_lines_are_read_past_the_headers() {
        let c = parse_slabinfo(BEFORE);
        assert_eq!(c.len(), 4);
        assert_eq!(
            c[0],
            Cache {
                name: "sock_inode_cache".into(),
                active: 262,
                size: 832
            }
        );
        assert!(parse_slabinfo("slabinfo - version: 2.1\ngarbage\nx y z w\n").is_empty());
    }

    #[test]
    fn objects_in_use_are_summed_as_memidle_sums_them() {
        let (b, a) = (parse_slabinfo(BEFORE), parse_slabinfo(AFTER));
        // 832 + 1152 + 32 per socket; kmalloc-8 (8 bytes each) is under memidle's 24-byte floor,
        // whatever the free room of the caches (sock_inode_cache had 156 free objects before).
        assert_eq!(slab_objects_per(&b, &a, 1000.0), 2016.0);
        // Nothing readable (not root): nothing counted.
        assert_eq!(slab_objects_per(&[], &[], 1000.0), 0.0);
        // A cache that shrank counts nothing.
        assert_eq!(slab_objects_per(&a, &b, 1000.0), 0.0);
    }
}
