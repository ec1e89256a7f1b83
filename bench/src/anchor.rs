//! The anchors: `shared/bench/ipcbench.c`, compiled with gcc at run time and run beside our
//! benchmarks so that every ratio compares numbers measured in the same run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::sys;

/// Environment variable naming the directory that holds `ipcbench.c` (overrides the default).
pub const ANCHORS_DIR_ENV: &str = "MAILSLOT_ANCHORS_DIR";

/// The compiled ipcbench program.
pub struct IpcBench {
    exe: PathBuf,
}

/// Where `ipcbench.c` is: `$MAILSLOT_ANCHORS_DIR/ipcbench.c`, else `<workspace>/../shared/bench/`.
pub fn source_path() -> PathBuf {
    match std::env::var_os(ANCHORS_DIR_ENV) {
        Some(dir) => PathBuf::from(dir).join("ipcbench.c"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("shared")
            .join("bench")
            .join("ipcbench.c"),
    }
}

impl IpcBench {
    /// Compiles ipcbench into `out_dir` with `gcc -O2 -Wall … -lrt`. Fails (never skips) when
    /// the source or gcc is missing or the build fails.
    pub fn build(out_dir: &Path) -> Result<IpcBench> {
        let src = source_path();
        if !src.is_file() {
            bail!(
                "anchor source {} not found: the repository must be checked out with `shared/` \
                 beside it, or set {ANCHORS_DIR_ENV} to the directory holding ipcbench.c",
                src.display()
            );
        }
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
        let exe = out_dir.join("ipcbench");
        let out = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&exe)
            .arg(&src)
            .arg("-lrt")
            .output()
            .context("running gcc to build the ipcbench anchor (is gcc installed?)")?;
        if !out.status.success() {
            bail!(
                "gcc failed to build {} ({}):\n{}",
                src.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(IpcBench { exe })
    }

    /// Runs `ipcbench <transport> <test> <size> <count>` and returns its `key=value` line.
    pub fn run(
        &self,
        transport: &str,
        test: &str,
        size: usize,
        count: u64,
    ) -> Result<BTreeMap<String, String>> {
        let out = Command::new(&self.exe)
            .args([transport, test, &size.to_string(), &count.to_string()])
            .output()
            .with_context(|| format!("running {}", self.exe.display()))?;
        let what = format!("ipcbench {transport} {test} {size} {count}");
        if !out.status.success() {
            bail!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
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
    pub fn run_lossy_tput(
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
