//! `mailslot messenger serve` and `deliver` end to end: the terminal path on a pseudo-terminal
//! this test owns (listed in a utmp file written by the C library's own `pututxline`), the
//! neutralising of escape sequences on the way, `mesg n`, the `--json` fields, a second service
//! refused, `deliver` without a service, and SIGTERM ending the service with status 0.
//!
//! One test: the service owns the host-wide `\\.\mailslot\messngr`, so its steps run in order.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_mailslot")
}

fn deliver(from: &str, to: &str, text: &[u8]) -> Output {
    let mut c = Command::new(exe())
        .args(["messenger", "deliver", "--from", from, "--to", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailslot messenger deliver");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(text)
        .expect("write stdin");
    c.wait_with_output().expect("deliver output")
}

/// A pseudo-terminal: the master (this test reads what the service writes) and the slave's
/// path, kept open so that the master reads do not fail.
struct Pty {
    master: File,
    _slave: File,
    path: PathBuf,
}

fn open_pty() -> Pty {
    // SAFETY: standard pty calls on the descriptor just opened; ptsname_r gets a valid buffer.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
        let path = PathBuf::from(CStr::from_ptr(buf.as_ptr()).to_str().expect("pts path"));
        let master = File::from_raw_fd(fd);
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .expect("open the pty slave");
        Pty {
            master,
            _slave: slave,
            path,
        }
    }
}

impl Pty {
    /// What arrives on the master within `wait` (stops early once `until` is seen).
    fn read(&mut self, wait: Duration, until: Option<&str>) -> String {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
            if until.is_some_and(|u| String::from_utf8_lossy(&got).contains(u)) {
                break;
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    fn set_mesg(&self, on: bool) {
        let mode = if on { 0o620 } else { 0o600 };
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))
            .expect("chmod the pty");
    }
}

/// A utmp file with one USER_PROCESS record, written by the C library (`pututxline`).
fn write_utmp(file: &Path, user: &str, line: &str) {
    std::fs::write(file, b"").expect("create utmp");
    let name = CString::new(file.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a zeroed utmpx is valid (integers and char arrays); the C library's utmp calls get
    // a valid path and record, from this thread only.
    unsafe {
        let mut ut: libc::utmpx = std::mem::zeroed();
        ut.ut_type = libc::USER_PROCESS;
        ut.ut_pid = std::process::id() as i32;
        for (d, b) in ut.ut_user.iter_mut().zip(user.bytes()) {
            *d = b as libc::c_char;
        }
        for (d, b) in ut.ut_line.iter_mut().zip(line.bytes()) {
            *d = b as libc::c_char;
        }
        for (d, b) in ut.ut_id.iter_mut().zip(line.bytes().rev()) {
            *d = b as libc::c_char;
        }
        assert_eq!(libc::utmpxname(name.as_ptr()), 0);
        libc::setutxent();
        assert!(!libc::pututxline(&ut).is_null(), "pututxline");
        libc::endutxent();
    }
}

struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Service {
    fn next_json(&self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the service printed a line for the message");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(utmp: &Path) -> Service {
    let mut child = Command::new(exe())
        .args(["messenger", "serve", "--json", "--no-desktop", "--utmp"])
        .arg(utmp)
        .args(["--netbios-name", "TESTHOST", "--workgroup", "TESTLAB"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailslot messenger serve");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // Ready once it says it serves.
    let (rtx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(err);
        let mut l = String::new();
        while r.read_line(&mut l).map(|n| n > 0).unwrap_or(false) {
            eprint!("serve: {l}");
            if l.contains("serving") {
                let _ = rtx.send(());
            }
            l.clear();
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("the service started");
    Service { child, lines }
}

#[test]
fn serve_and_deliver_on_a_terminal() {
    // No service yet: deliver fails clearly, exit 2.
    let o = deliver("alice", "bob", b"nobody listens");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no Messenger service runs"), "{err}");

    let dir = std::env::temp_dir().join(format!("mailslot-messenger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let utmp = dir.join("utmp");
    let mut pty = open_pty();
    pty.set_mesg(true);
    let line = pty
        .path
        .strip_prefix("/dev")
        .expect("pty under /dev")
        .to_str()
        .expect("utf-8")
        .to_string();
    write_utmp(&utmp, "msgtester", &line);

    let mut svc = start_service(&utmp);

    // A second service is refused: exit 2 and why.
    let second = Command::new(exe())
        .args(["messenger", "serve", "--no-desktop", "--no-terminals"])
        .output()
        .expect("second serve");
    assert_eq!(second.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another Messenger service runs"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    // 1. To the user (case-insensitive): on the pty, with the header.
    let o = deliver(
        "alice",
        "MSGTESTER",
        "hello pty\r\nsecond line caf\u{e9}\n".as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = svc.next_json();
    assert_eq!(v["from"], "alice");
    assert_eq!(v["to"], "MSGTESTER");
    assert_eq!(v["text"], "hello pty\nsecond line caf\u{e9}");
    assert_eq!(v["desktop"], false);
    assert_eq!(v["origin"]["local"]["uid"], unsafe { libc::geteuid() });
    assert!(v["origin"]["local"]["pid"].as_u64().is_some());
    let received = v["received"].as_str().expect("received");
    assert_eq!(received.len(), 20, "{received}");
    assert!(received.ends_with('Z'));
    assert_eq!(v["terminals"][0]["line"], line.as_str());
    assert_eq!(v["terminals"][0]["user"], "msgtester");
    assert_eq!(v["terminals"][0]["written"], true);
    let shown = pty.read(Duration::from_secs(5), Some("café"));
    assert!(
        shown.contains("Message from alice to MSGTESTER at "),
        "{shown:?}"
    );
    assert!(shown.contains("hello pty"), "{shown:?}");
    assert!(shown.contains("second line café"), "{shown:?}");

    // 2. Escape sequences: neutralised, nothing of them reaches the terminal.
    let o = deliver(
        "mallory\x1b[31m",
        "testhost",
        b"\x1b[2J\x1b[H\x1b]0;owned\x07visible\x9b\x07text",
    );
    assert!(o.status.success());
    let v = svc.next_json();
    assert_eq!(v["from"], "mallory\u{241b}");
    assert_eq!(
        v["terminals"][0]["written"], true,
        "to the host: every user"
    );
    let shown = pty.read(Duration::from_secs(5), Some("text"));
    assert!(shown.contains("visible"), "{shown:?}");
    assert!(
        !shown.contains('\x1b'),
        "an ESC reached the terminal: {shown:?}"
    );
    assert!(
        !shown.contains('\x07'),
        "a BEL reached the terminal: {shown:?}"
    );
    assert!(!shown.contains("owned"), "{shown:?}");
    assert!(shown.contains("\u{241b}"), "{shown:?}");

    // 3. `mesg n`: nothing written, the reason reported.
    pty.set_mesg(false);
    let o = deliver("alice", "msgtester", b"must not show");
    assert!(o.status.success());
    let v = svc.next_json();
    assert_eq!(v["terminals"][0]["written"], false);
    let why = v["terminals"][0]["error"].as_str().unwrap_or_default();
    assert!(why.contains("mesg n"), "{why}");
    let shown = pty.read(Duration::from_millis(500), None);
    assert!(shown.is_empty(), "written despite mesg n: {shown:?}");

    // 4. A user who is not logged in: no terminal; the workgroup: everyone (still mesg n).
    let o = deliver("alice", "carol", b"for carol");
    assert!(o.status.success());
    let v = svc.next_json();
    assert_eq!(v["terminals"], serde_json::json!([]));
    pty.set_mesg(true);
    let o = deliver("alice", "testlab", b"to the workgroup");
    assert!(o.status.success());
    let v = svc.next_json();
    assert_eq!(v["terminals"][0]["written"], true);
    let shown = pty.read(Duration::from_secs(5), Some("workgroup"));
    assert!(shown.contains("to the workgroup"), "{shown:?}");

    // 5. SIGTERM: a clean exit, status 0, and the name is free again.
    // SAFETY: a signal to the child this test started.
    assert_eq!(
        unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) },
        0
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = svc.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let o = deliver("alice", "bob", b"after");
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).expect("clean up");
}
