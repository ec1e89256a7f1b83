//! End-to-end tests of local mailslots that need root: writers as another user (`setpriv`),
//! and a network namespace of their own (`unshare --net`). Without root each is reported as
//! `ignored` with the reason, never as passed; `cargo test` as root runs them.
//!
//! A test target of its own without the standard harness (`libtest-mimic`), because only a
//! custom harness can decide at run time that a test is ignored.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{as_root, exe, run_tests, unique};
use mailslot::{Mailslot, Sender, Timeout};

fn main() {
    run_tests(vec![
        as_root(
            "access_denied_for_another_uid_and_allowed_with_everyone",
            "runs writers as user nobody",
            access_denied_for_another_uid_and_allowed_with_everyone,
        ),
        as_root(
            "each_network_namespace_is_its_own_host",
            "unshare --net",
            each_network_namespace_is_its_own_host,
        ),
    ]);
}

/// `mailslot send NAME TEXT` as user nobody (uid and gid 65534) with the supplementary
/// `groups`.
fn run_as_nobody(name: &str, text: &str, groups: &[u32]) -> Output {
    let groups = if groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        format!("--groups={}", list.join(","))
    };
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            &groups,
            exe(),
            "send",
            name,
            text,
        ])
        .output()
        .expect("setpriv")
}

fn access_denied_for_another_uid_and_allowed_with_everyone() {
    let name = unique("access");
    let slot = Mailslot::create(&name).unwrap();
    let o = run_as_nobody(&name, "let me in", &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("denied"));
    assert_eq!(slot.info().count, 0);
    assert_eq!(
        slot.counters().refused_writers,
        1,
        "one refused writer counted"
    );

    let open = unique("open");
    let slot2 = Mailslot::builder()
        .access(mailslot::Access::Everyone)
        .create(&open)
        .unwrap();
    let o = run_as_nobody(&open, "hello from nobody", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = slot2
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"hello from nobody");
    assert!(
        matches!(m.sender, Sender::Local { uid: 65534, .. }),
        "{:?}",
        m.sender
    );

    let grp = unique("group");
    let slot3 = Mailslot::builder()
        .access(mailslot::Access::Group(65534))
        .create(&grp)
        .unwrap();
    let o = run_as_nobody(&grp, "group member", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        slot3
            .read_message_timeout(Timeout::After(Duration::from_secs(5)))
            .unwrap()
            .data,
        b"group member"
    );

    // A supplementary group admits too (nobody's primary group is not 4711), and the same
    // writer without it is refused.
    let sup = unique("supplementary");
    let slot4 = Mailslot::builder()
        .access(mailslot::Access::Group(4711))
        .create(&sup)
        .unwrap();
    let o = run_as_nobody(&sup, "outsider", &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a writer outside group 4711 got in"
    );
    let o = run_as_nobody(&sup, "supplementary member", &[100, 4711]);
    assert!(
        o.status.success(),
        "a writer with supplementary group 4711 was refused: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = slot4
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"supplementary member");
    assert!(
        matches!(
            m.sender,
            Sender::Local {
                uid: 65534,
                gid: 65534,
                ..
            }
        ),
        "{:?}",
        m.sender
    );
    assert_eq!(slot4.counters().refused_writers, 1);
}

fn each_network_namespace_is_its_own_host() {
    let name = unique("netns");
    let _here = Mailslot::create(&name).unwrap();
    let in_new_netns = |args: &[&str]| {
        Command::new("unshare")
            .arg("--net")
            .arg(exe())
            .args(args)
            .output()
            .expect("unshare")
    };
    // The same name is free in another namespace (created, then exit 1 on the timeout)...
    let o = in_new_netns(&["listen", &name, "--count", "1", "--timeout", "100"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // ...and ours is not visible there.
    let o = in_new_netns(&["send", &name, "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no mailslot"));
}
