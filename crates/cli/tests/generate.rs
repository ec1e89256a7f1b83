//! The man pages and shell completions generated from the clap definitions (what
//! `scripts/install.sh` installs): one page per subcommand, `mailslotd(8)`, completions naming
//! every subcommand.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mailslot(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_mailslot"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mailslot {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The subcommands `mailslot --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = mailslot(&["--help"]);
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    for expected in [
        "listen",
        "send",
        "list",
        "daemon",
        "daemon-status",
        "resolve",
        "mount",
    ] {
        assert!(list.iter().any(|c| c == expected), "{expected} in {list:?}");
    }
    list
}

/// A fresh directory under the system's temporary directory.
fn scratch(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mailslot-gen-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn man_pages_name_every_subcommand_and_the_daemon() {
    let dir = scratch("man");
    mailslot(&["generate-man", dir.to_str().unwrap()]);
    let top = read(&dir.join("mailslot.1"));
    assert!(top.contains(".TH mailslot 1"), "{top}");
    for sub in subcommands() {
        let page = read(&dir.join(format!("mailslot-{sub}.1")));
        assert!(
            page.contains(&format!(".TH mailslot-{sub} 1")),
            "{sub}: {page}"
        );
        // The top page lists it (roff escapes '-' as '\-').
        let listed = format!("mailslot\\-{}(1)", sub.replace('-', "\\-"));
        assert!(top.contains(&listed), "{listed} not in mailslot.1");
    }
    // Hidden subcommands (these generators) get no page and are not listed.
    assert!(!dir.join("mailslot-generate-man.1").exists());
    assert!(!top.contains("generate"));

    let daemon = read(&dir.join("mailslotd.8"));
    assert!(daemon.contains(".TH mailslotd 8"), "{daemon}");
    for opt in [
        "config",
        "validate",
        "workgroup",
        "wins\\-server",
        "metrics\\-port",
    ] {
        assert!(
            daemon.contains(&format!("\\-\\-{opt}")),
            "--{opt} in mailslotd.8"
        );
    }
    assert!(daemon.contains("Exit status"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_name_every_subcommand() {
    let subs = subcommands();
    for (shell, files) in [
        ("bash", ["mailslot.bash", "mailslotd.bash"]),
        ("zsh", ["_mailslot", "_mailslotd"]),
        ("fish", ["mailslot.fish", "mailslotd.fish"]),
    ] {
        let dir = scratch(shell);
        mailslot(&["generate-completions", shell, dir.to_str().unwrap()]);
        let top = read(&dir.join(files[0]));
        for sub in &subs {
            assert!(
                top.contains(sub.as_str()),
                "{shell}: {sub} not in {}",
                files[0]
            );
        }
        let daemon = read(&dir.join(files[1]));
        assert!(daemon.contains("workgroup"), "{shell}: {}", files[1]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn generators_fail_cleanly_on_an_unwritable_directory() {
    let o = Command::new(env!("CARGO_BIN_EXE_mailslot"))
        .args(["generate-man", "/proc/mailslot-man"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mailslot: error:"));
}
