//! The anchors: `shared/bench/ipcbench.c` and `shared/bench/memidle.c`, compiled with gcc at run
//! time and run beside our benchmarks so that every ratio compares numbers measured in the same
//! run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{mem, sys};

/// Environment variable naming the directory that holds `ipcbench.c` and `memidle.c` (overrides
/// the default).
pub(crate) const ANCHORS_DIR_ENV: &str = "MAILSLOT_ANCHORS_DIR";

/// The compiled ipcbench program.
pub(crate) struct IpcBench {
    exe: PathBuf,
}

/// Where the anchor source `file` is: `$MAILSLOT_ANCHORS_DIR/<file>`, else
/// `<workspace>/../shared/bench/<file>`.
fn source_path(file: &str) -> PathBuf {
    match std::env::var_os(ANCHORS_DIR_ENV) {
        Some(dir) => PathBuf::from(dir).join(file),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("shared")
            .join("bench")
            .join(file),
    }
}

/// Compiles the anchor `<name>.c` into `out_dir/<name>` with `gcc -O2 -Wall -o … <libs>`. Fails
/// (never skips) when the source or gcc is missing or the build fails.
fn compile(out_dir: &Path, name: &str, libs: &[&str]) -> Result<PathBuf> {
    let src = source_path(&format!("{name}.c"));
    if !src.is_file() {
        bail!(
            "anchor source {} not found: the repository must be checked out with `shared/` \
             beside it, or set {ANCHORS_DIR_ENV} to the directory holding {name}.c",
            src.display()
        );
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let exe = out_dir.join(name);
    let out = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(libs)
        .output()
        .with_context(|| format!("running gcc to build the {name} anchor (is gcc installed?)"))?;
    if !out.status.success() {
        bail!(
            "gcc failed to build {} ({}):\n{}",
            src.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(exe)
}

/// Runs the anchor `exe` with `args` to its end and returns its standard output; fails, naming
/// the run `what` and quoting its standard error, when it cannot be started or does not succeed.
fn run(exe: &Path, args: &[&str], what: &str) -> Result<String> {
    let out = Command::new(exe)
        .args(args)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The compiled memidle program.
pub(crate) struct MemIdle {
    exe: PathBuf,
}

impl MemIdle {
    /// Compiles memidle into `out_dir` with `gcc -O2 -Wall … -lrt -lpthread` (its own build line).
    pub(crate) fn build(out_dir: &Path) -> Result<Self> {
        Ok(Self {
            exe: compile(out_dir, "memidle", &["-lrt", "-lpthread"])?,
        })
    }

    /// Runs `memidle <kind> <k>` and returns its result line (the one starting `kind=`), plus
    /// `slab_objs_B_per=`: the `sum=` of its second line, which lists the slab caches whose
    /// objects in use grew by at least 24 bytes per object (0 when `/proc/slabinfo` could not be
    /// read).
    pub(crate) fn run(&self, kind: &str, k: usize) -> Result<BTreeMap<String, String>> {
        let what = format!("memidle {kind} {k}");
        let text = run(&self.exe, &[kind, &k.to_string()], &what)?;
        let line = text
            .lines()
            .find(|l| l.starts_with("kind="))
            .with_context(|| format!("{what}: no result line in {text:?}"))?;
        let mut kv = sys::parse_kv(line);
        let objects = text
            .lines()
            .find(|l| l.contains("slab caches grown"))
            .and_then(|l| l.rsplit_once("sum="))
            .map(|(_, v)| v.trim().to_string())
            .with_context(|| format!("{what}: no slab caches line with `sum=` in {text:?}"))?;
        kv.insert(mem::SLAB_OBJECTS_KEY.into(), objects);
        Ok(kv)
    }
}

impl IpcBench {
    /// Compiles ipcbench into `out_dir` with `gcc -O2 -Wall … -lrt`. Fails (never skips) when
    /// the source or gcc is missing or the build fails.
    pub(crate) fn build(out_dir: &Path) -> Result<Self> {
        Ok(Self {
            exe: compile(out_dir, "ipcbench", &["-lrt"])?,
        })
    }

    /// Runs `ipcbench <transport> <test> <size> <count>` and returns its `key=value` line.
    pub(crate) fn run(
        &self,
        transport: &str,
        test: &str,
        size: usize,
        count: u64,
    ) -> Result<BTreeMap<String, String>> {
        let what = format!("ipcbench {transport} {test} {size} {count}");
        let text = run(
            &self.exe,
            &[transport, test, &size.to_string(), &count.to_string()],
            &what,
        )?;
        let kv = sys::parse_kv(text.lines().last().unwrap_or(""));
        if test == "tput" {
            let (n, recvd) = (
                sys::kv_f64(&kv, "n", &what)?,
                sys::kv_f64(&kv, "recvd", &what)?,
            );
            if recvd < n {
                bail!("{what}: lost messages ({recvd} of {n})");
            }
        }
        Ok(kv)
    }

    /// Runs `<env> ipcbench <transport> tput <size> <count>` for a lossy transport (`udp`,
    /// `udprouter`: loss is a result, not an error) and returns its `key=value` line and the CPU
    /// time (ns) its **first forked child** used: the reader of `udp`, the forwarding process of
    /// `udprouter`. ipcbench does not report CPU, so the harness samples that child's
    /// `/proc/<pid>/stat` every few ms while it runs; the child idles for its 300 ms receive
    /// timeout before it exits, so the last sample holds all its work. `None` if the child was
    /// never seen.
    pub(crate) fn run_lossy_tput(
        &self,
        transport: &str,
        size: usize,
        count: u64,
        env: &[(&str, &str)],
    ) -> Result<(BTreeMap<String, String>, Option<u64>)> {
        let what = format!("ipcbench {transport} tput {size} {count}");
        let mut child = Command::new(&self.exe)
            .args([transport, "tput", &size.to_string(), &count.to_string()])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.exe.display()))?;
        let parent = child.id();
        let (mut watched, mut cpu) = (None::<u32>, None::<u64>);
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            match watched {
                None => watched = sys::children_of(parent).first().copied(),
                Some(pid) => {
                    if let Some(s) = sys::proc_stat(pid).filter(|s| s.ppid == parent) {
                        cpu = Some(s.cpu_ns);
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(if watched.is_some() {
                10
            } else {
                1
            }));
        };
        let out = child.wait_with_output()?;
        if !status.success() {
            bail!(
                "{what} failed ({status}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok((sys::parse_kv(text.lines().last().unwrap_or("")), cpu))
    }
}
