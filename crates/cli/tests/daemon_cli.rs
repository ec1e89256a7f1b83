//! The daemon-related commands without a running daemon (the network suite with daemons in
//! network namespaces is `tests/netns/run.sh`), and payload decoding in `listen`.
//!
//! Without the standard harness (`libtest-mimic`): a test that needs no daemon in this network
//! namespace is reported as `ignored` with the reason when one runs, never as passed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{exe, ignored_if, is_root, run_tests};
use libtest_mimic::Trial;

fn main() {
    run_tests(vec![
        Trial::test("validate_reports_good_and_bad_configurations", || {
            validate_reports_good_and_bad_configurations();
            Ok(())
        }),
        ignored_if(
            "remote_commands_without_a_daemon_fail_clearly",
            || {
                daemon_running()
                    .then(|| "a mailslot daemon runs in this network namespace".to_string())
            },
            remote_commands_without_a_daemon_fail_clearly,
        ),
        Trial::test("listen_decodes_well_known_payloads", || {
            listen_decodes_well_known_payloads();
            Ok(())
        }),
    ]);
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(exe()).args(args).output().unwrap()
}

fn daemon_running() -> bool {
    mailslot::daemon::DaemonClient::connect().is_ok()
}

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

fn remote_commands_without_a_daemon_fail_clearly() {
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

fn listen_decodes_well_known_payloads() {
    // Only \MAILSLOT\MESSNGR is decoded as Messenger: as root, use that exact name in a new
    // network namespace (a host of its own), else the plain name, which must then be free.
    const NAME: &str = r"\\.\mailslot\messngr";
    let listen = [
        "listen",
        NAME,
        "--json",
        "--count",
        "1",
        "--timeout",
        "5000",
    ];
    let send = ["send", NAME, "--hex", "46524f4d00544f0068656c6c6f00"];
    let root = is_root();
    let mut listener = if root {
        let mut c = Command::new("unshare");
        c.arg("--net").arg(exe());
        c
    } else {
        Command::new(exe())
    };
    let mut listener = listener
        .args(listen)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The listener says so once its slot exists; only then can the send find it.
    let mut said = String::new();
    BufReader::new(listener.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert!(said.contains("listening on"), "listen said: {said}");
    // `unshare` runs the listener in its own process, so its namespace is the listener's.
    let o = if root {
        Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", listener.id()))
            .arg(exe())
            .args(send)
            .output()
            .unwrap()
    } else {
        run(&send)
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = BufReader::new(listener.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert!(listener.wait().unwrap().success());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["payload"]["type"], "messenger", "{v}");
    assert_eq!(v["payload"]["from"], "FROM");
    assert_eq!(v["payload"]["to"], "TO");
    assert_eq!(v["payload"]["text"], "hello");
}
