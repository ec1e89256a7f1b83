//! The daemon-related commands without a running daemon (the network suite with daemons in
//! network namespaces is `tests/netns/run.sh`), and payload decoding in `listen`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_mailslot")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(exe()).args(args).output().unwrap()
}

fn daemon_running() -> bool {
    mailslot::daemon::DaemonClient::connect().is_ok()
}

#[test]
fn validate_reports_good_and_bad_configurations() {
    let dir = std::env::temp_dir().join(format!("mailslot-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "netbios_name = \"hosta\"\nworkgroup = \"LAB\"\ninterfaces = [\"10.9.9.1/24\"]\n",
    )
    .unwrap();
    let o = run(&["daemon", "--config", good.to_str().unwrap(), "--validate"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("netbios_name = \"HOSTA\""), "{out}");
    assert!(out.contains("broadcast 10.9.9.255"), "{out}");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "colour = \"blue\"\n").unwrap();
    let o = run(&["daemon", "--config", bad.to_str().unwrap(), "--validate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown field"));

    let o = run(&[
        "daemon",
        "--config",
        "/nonexistent/mailslotd.toml",
        "--validate",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");

    let o = run(&[
        "daemon",
        "--netbios-name",
        "WAY-TOO-LONG-A-NAME",
        "--validate",
        "--interface",
        "10.9.9.1/24",
    ]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn remote_commands_without_a_daemon_fail_clearly() {
    if daemon_running() {
        eprintln!("SKIP remote_commands_without_a_daemon: a daemon runs in this namespace");
        return;
    }
    for args in [
        vec!["send", r"\\HOSTB\mailslot\x", "hi"],
        vec!["send", r"\\*\mailslot\x", "hi"],
        vec!["daemon-status"],
        vec!["resolve", "HOSTB<20>"],
        vec!["messenger", "--to", "HOSTB", "hello"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("not running"), "{args:?}: {err}");
    }
    let o = run(&["resolve", "HOST<zz>"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn listen_decodes_well_known_payloads() {
    // Only \MAILSLOT\MESSNGR is decoded as Messenger: as root, use that exact name in a new
    // network namespace (a host of its own), else the plain name, which must then be free.
    // SAFETY: geteuid has no preconditions.
    let ns_prefix: Vec<&str> = if unsafe { libc::geteuid() } == 0 {
        vec!["unshare", "--net"]
    } else {
        vec![]
    };
    let script = format!(
        "{exe} listen '\\\\.\\mailslot\\messngr' --json --count 1 --timeout 5000 & sleep 0.3; \
         {exe} send '\\\\.\\mailslot\\messngr' --hex 46524f4d00544f0068656c6c6f00; wait",
        exe = exe()
    );
    let mut cmd = if ns_prefix.is_empty() {
        Command::new("sh")
    } else {
        let mut c = Command::new(ns_prefix[0]);
        c.args(&ns_prefix[1..]).arg("sh");
        c
    };
    let mut child = cmd
        .arg("-c")
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["payload"]["type"], "messenger", "{v}");
    assert_eq!(v["payload"]["from"], "FROM");
    assert_eq!(v["payload"]["to"], "TO");
    assert_eq!(v["payload"]["text"], "hello");
}
