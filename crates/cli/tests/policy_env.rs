//! The name policy seen from the command line, as root with a squatter running as user nobody
//! (`setpriv`): `mailslot list` flags the squatter's name (text and `--json`), root's
//! `mailslot send` refuses it (exit 2, nothing sent) and nobody's `mailslot listen` of a name
//! the policy gives to root fails at once. Without root the test is reported as `ignored`.
//!
//! A test target of its own without the standard harness (`libtest-mimic`), because only a
//! custom harness can decide at run time that a test is ignored.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{exe, is_root};
use libtest_mimic::{Arguments, Completion, Trial};

fn main() {
    let args = Arguments::from_args();
    let tests = vec![Trial::ignorable_test(
        "list_flags_and_send_refuses_a_squatter_the_policy_does_not_allow",
        || {
            if !is_root() {
                return Ok(Completion::ignored_with(
                    "needs root: runs the squatter as user nobody",
                ));
            }
            list_flags_and_send_refuses_a_squatter_the_policy_does_not_allow();
            Ok(Completion::Completed)
        },
    )];
    libtest_mimic::run(&args, tests).exit();
}

/// `mailslot ARGS` as nobody, with `policy` as its `MAILSLOT_POLICY`.
fn as_nobody(args: &[&str], policy: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", exe()])
        .args(args)
        .env("MAILSLOT_POLICY", policy);
    c
}

fn as_root(args: &[&str], policy: &str) -> Output {
    Command::new(exe())
        .args(args)
        .env("MAILSLOT_POLICY", policy)
        .output()
        .expect("run mailslot")
}

/// Kills the child when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn list_flags_and_send_refuses_a_squatter_the_policy_does_not_allow() {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("mailslot-cli-policy-{pid}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.toml");
    let base = format!(r"\\.\mailslot\test\policy{pid}");
    std::fs::write(
        &policy,
        format!("[[serve]]\nname = '{base}\\*'\nusers = [\"root\"]\n"),
    )
    .expect("write policy");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let policy = policy.to_str().expect("UTF-8 path").to_string();
    let none = dir
        .join("none.toml")
        .to_str()
        .expect("UTF-8 path")
        .to_string();

    // The squatter ignores the policy (its environment names none) and binds the name.
    let name = format!(r"{base}\svc");
    let squatter = Kill(
        as_nobody(&["listen", &name, "--access", "everyone"], &none)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the squatter"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mailslot::list()
        .expect("list")
        .iter()
        .any(|e| e.name.key() == mailslot::Name::parse(&name).unwrap().key())
    {
        assert!(Instant::now() < deadline, "the squatter never bound {name}");
        std::thread::sleep(Duration::from_millis(10));
    }

    let text = as_root(&["list"], &policy);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("policy{pid}")))
        .unwrap_or_else(|| panic!("not listed: {text}"));
    assert!(
        line.contains("uid 65534") && line.contains("NOT ALLOWED BY POLICY"),
        "{line}"
    );
    // Without the policy nothing is flagged.
    let plain = as_root(&["list"], &none);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("NOT ALLOWED"));

    let json = as_root(&["list", "--json"], &policy);
    let entry = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.contains(&format!("policy{pid}")))
        })
        .expect("listed in JSON");
    assert_eq!(entry["owner_uid"], 65534);
    assert_eq!(entry["owner_allowed"], false, "{entry}");

    // Root's send refuses the squatter.
    let sent = as_root(&["send", &name, "secret"], &policy);
    let err = String::from_utf8_lossy(&sent.stderr);
    assert_eq!(sent.status.code(), Some(2), "{err}");
    assert!(err.contains("does not allow"), "{err}");
    let mut squatter = squatter;
    let squatter_out = killed_output(&mut squatter.0);
    assert!(
        !squatter_out.contains("secret"),
        "the squatter got: {squatter_out}"
    );

    // Nobody's listen of a name the policy gives to root fails at once.
    let refused = as_nobody(&["listen", &format!(r"{base}\other")], &policy)
        .output()
        .expect("run listen");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("does not allow user 65534"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills the child and returns what it printed.
fn killed_output(child: &mut Child) -> String {
    use std::io::Read;
    let _ = child.kill();
    let _ = child.wait();
    let mut s = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut s);
    }
    s
}
