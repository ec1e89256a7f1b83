//! The file view under test (`mailslot mount`) for the `mount_tput` rows: mounted by a child of
//! the harness (the hidden role `__mount-fs`) in the harness's temporary directory, unmounted
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The mounted file view.
pub(crate) struct Mount {
    child: Child,
    /// The mount point.
    pub dir: PathBuf,
}

fn mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy();
    std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(want.as_ref()))
    })
}

/// Why the file view cannot be measured on this machine, if it cannot.
pub(crate) fn unavailable() -> Option<&'static str> {
    // SAFETY: geteuid always succeeds.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (FUSE with allow_other)");
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse");
    }
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").is_file()));
    if !found {
        return Some("no fusermount3 (Debian: apt-get install fuse3)");
    }
    None
}

impl Mount {
    /// Mounts the file view at `dir` (created) and waits until it is mounted.
    pub(crate) fn start(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let exe = std::env::current_exe().context("locating the benchmark binary")?;
        let child = Command::new(exe)
            .arg("__mount-fs")
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the file view")?;
        let mut m = Self {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mounted(dir) {
            if let Some(st) = m.child.try_wait()? {
                bail!("the file view exited during start-up ({st})");
            }
            if Instant::now() > deadline {
                bail!(
                    "the file view was not mounted at {} within 10 s",
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        crate::sys::stop_child(&mut self.child, Duration::from_secs(5));
        if mounted(&self.dir) {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.dir)
                .status();
        }
    }
}

/// The `__mount-fs` role: serves the file view at `dir` until SIGTERM.
pub(crate) fn serve(dir: &Path) -> Result<()> {
    mailslot_mount::run(dir).with_context(|| format!("mounting {}", dir.display()))
}
