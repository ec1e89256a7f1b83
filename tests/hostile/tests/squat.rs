//! Squatting, with and without a name policy: user nobody binds a name before root's service.
//!
//! Without a policy the squatter gets the name and root's writer sends it its data (first come,
//! first served: today's documented behaviour; `owner()` shows the squatter's uid as the kernel
//! reports it). With a policy that gives the name to root, root's writer refuses the squatter
//! before sending anything (`OwnerNotAllowed`, code 5) and the squatter reads nothing; nobody's
//! `create` of a name under the pattern is refused at once (`NotAllowed`, code 5); names outside
//! every pattern stay first come; rules that name the squatter's primary group or one of its
//! supplementary groups (the kernel's `SO_PEERCRED` / `SO_PEERGROUPS` of the listening process)
//! let it serve; a broken policy file is an error of every open and create.

mod common;

use std::time::Duration;

use mailslot::policy::POLICY_ENV;
use mailslot::{CreateError, Mailslot, MailslotWriter, OpenError, WriteError, WriteOptions};

fn main() {
    common::run_as_root_test(
        "squatting_with_and_without_a_name_policy",
        "runs the squatter as user nobody (setpriv)",
        squatting_with_and_without_a_name_policy,
    );
}

/// Starts `own-drain` for `name` as nobody; waits for `ready` (or returns the line it said
/// instead, such as `create-failed ...`).
fn squatter(name: &str) -> (common::Reaper, std::sync::mpsc::Receiver<String>, String) {
    let mut child = common::spawn_io(true, &["own-drain", name, "65536", "1024"], true);
    let rx = common::lines(&mut child);
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the squatter says something");
    (common::Reaper(vec![child]), rx, first)
}

/// Asks the squatter how many messages it got.
fn drained(reaper: &mut common::Reaper, rx: &std::sync::mpsc::Receiver<String>) -> u64 {
    use std::io::Write;
    let stdin = reaper.0[0].stdin.as_mut().expect("stdin");
    writeln!(stdin, "drain").expect("tell the squatter");
    let line = common::wait_line(rx, "drained ", Duration::from_secs(10), &mut Vec::new());
    line["drained ".len()..].parse().expect("a count")
}

fn squatting_with_and_without_a_name_policy() {
    let dir = std::env::temp_dir().join(format!("mailslot-squat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = Cleanup(dir.clone());
    let policy = dir.join("policy.toml");
    let base = format!(r"\\.\mailslot\hostile\svc{}", std::process::id());
    std::fs::write(
        &policy,
        format!(
            "[[serve]]\nname = '{base}\\*'\nusers = [\"root\"]\ngroups = []\n\
             [[serve]]\nname = '{base}\\grp\\*'\ngroups = [65534]\n\
             [[serve]]\nname = '{base}\\sup\\*'\ngroups = [4242]\n"
        ),
    )
    .expect("write policy");
    // The directory and the file must be readable by nobody (its create reads the policy).
    set_mode(&dir, 0o755);
    set_mode(&policy, 0o644);

    // No policy (a file that does not exist; the machine's own policy must not interfere).
    std::env::set_var(POLICY_ENV, dir.join("none.toml"));
    let name = format!(r"{base}\without");
    let (mut sq, rx, first) = squatter(&name);
    assert_eq!(first, "ready");
    assert!(matches!(
        Mailslot::create(&name),
        Err(CreateError::AlreadyExists(_))
    ));
    let w = MailslotWriter::open(&name).expect("without a policy the squatter's name opens");
    assert_eq!(w.owner().map(|o| o.uid), Some(65534), "kernel's uid");
    w.write(b"secret").expect("write");
    assert_eq!(
        drained(&mut sq, &rx),
        1,
        "without a policy the squatter reads it"
    );
    drop(sq);

    // With the policy: the squatter (which ignores the policy; its own environment has none)
    // binds the name, root's writer refuses it before sending anything.
    let name = format!(r"{base}\with");
    let (mut sq, rx, first) = squatter(&name);
    assert_eq!(first, "ready");
    std::env::set_var(POLICY_ENV, &policy);
    match MailslotWriter::open(&name) {
        Err(e @ OpenError::OwnerNotAllowed { uid: 65534, .. }) => {
            assert_eq!((e.win32_code(), e.lanman_code()), (5, 5));
            eprintln!("refused: {e}");
        }
        other => panic!("expected OwnerNotAllowed, got {other:?}"),
    }
    assert!(matches!(
        mailslot::write_mailslot(&name, b"secret", WriteOptions::new()),
        Err(WriteError::Open(OpenError::OwnerNotAllowed {
            uid: 65534,
            ..
        }))
    ));
    // Root may serve the name, but it is taken.
    assert!(matches!(
        Mailslot::create(&name),
        Err(CreateError::AlreadyExists(_))
    ));
    assert_eq!(drained(&mut sq, &rx), 0, "nothing reached the squatter");
    drop(sq);

    // With the policy in nobody's environment, its create of a name under the pattern is
    // refused at once; a name outside every pattern is still first come.
    let (_sq, _rx, first) = squatter(&format!(r"{base}\early"));
    assert!(
        first.starts_with("create-failed 5 "),
        "nobody's create: {first}"
    );
    let outside = format!(r"\\.\mailslot\hostile\open{}", std::process::id());
    let (_sq2, _rx2, first) = squatter(&outside);
    assert_eq!(first, "ready", "a name outside the policy");
    let w = MailslotWriter::open(&outside).expect("outside the policy: first come");
    assert_eq!(w.owner().map(|o| o.uid), Some(65534));
    // A rule that names nobody's group (its primary group, as the kernel reports it for the
    // listening socket) lets it serve.
    let grp = format!(r"{base}\grp\x");
    let (_sq3, _rx3, first) = squatter(&grp);
    assert_eq!(first, "ready", "nobody's group may serve {grp}");
    let w = MailslotWriter::open(&grp).expect("allowed by group");
    assert_eq!(w.owner().map(|o| o.uid), Some(65534));
    // And a supplementary group (`SO_PEERGROUPS`), started with one; without it, refused.
    let sup = format!(r"{base}\sup\x");
    std::env::set_var(POLICY_ENV, dir.join("none.toml"));
    let mut child = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--groups=4242"])
        .args([common::bin(), "own-drain", &sup, "65536", "1024"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv");
    let rx4 = common::lines(&mut child);
    let sq4 = common::Reaper(vec![child]);
    common::wait_line(&rx4, "ready", Duration::from_secs(10), &mut Vec::new());
    std::env::set_var(POLICY_ENV, &policy);
    MailslotWriter::open(&sup).expect("allowed by a supplementary group");
    drop(sq4);
    let sup2 = format!(r"{base}\sup\y");
    std::env::set_var(POLICY_ENV, dir.join("none.toml"));
    let (_sq5, _rx5, first) = squatter(&sup2);
    assert_eq!(first, "ready");
    std::env::set_var(POLICY_ENV, &policy);
    assert!(matches!(
        MailslotWriter::open(&sup2),
        Err(OpenError::OwnerNotAllowed { uid: 65534, .. })
    ));
    // Root itself may serve names under the pattern.
    let mine = Mailslot::create(&format!(r"{base}\root")).expect("root serves");
    let w = MailslotWriter::open(&format!(r"{base}\root")).expect("root's own slot opens");
    w.write(b"hello").expect("write");
    assert_eq!(mine.read_message().expect("read").data, b"hello");

    // A broken policy: every local open and create fails clearly, nothing is allowed by default.
    std::fs::write(&policy, "[[serve]]\nname = 'not a mailslot name'\n").expect("break it");
    match MailslotWriter::open(&outside) {
        Err(e @ OpenError::Policy(_)) => {
            assert_eq!((e.win32_code(), e.lanman_code()), (1610, 31));
            eprintln!("broken: {e}");
        }
        other => panic!("expected Policy, got {other:?}"),
    }
    assert!(matches!(
        Mailslot::create(&format!(r"{base}\broken")),
        Err(CreateError::Policy(_))
    ));
    std::env::remove_var(POLICY_ENV);
}

fn set_mode(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Removes the temporary directory when dropped.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
