//! End-to-end tests of local mailslots with separate processes: the owner is either this test
//! process (through the library) or a `mailslot listen` process; writers are `mailslot send`
//! processes or library writers in this process. Tests that need root are in `local_env.rs`.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{asleep, exe, tid, unique, wait_for, writer_waits};
use mailslot::{Mailslot, MailslotWriter, ReadError, Sender, Timeout, WriteError, WriteOptions};

fn send(name: &str, args: &[&str]) -> Output {
    Command::new(exe())
        .arg("send")
        .arg(name)
        .args(args)
        .output()
        .expect("run mailslot send")
}

fn send_ok(name: &str, args: &[&str]) {
    let o = send(name, args);
    assert!(
        o.status.success(),
        "send {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Starts `mailslot listen NAME ARGS` and waits until it has created the slot.
fn listen(name: &str, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(exe())
        .arg("listen")
        .arg(name)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "listen said: {line}");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn texts(slot: &Mailslot, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            String::from_utf8(
                slot.read_message_timeout(Timeout::After(Duration::from_secs(10)))
                    .unwrap()
                    .data,
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn fifo_across_three_writer_processes() {
    let name = unique("fifo");
    let slot = Mailslot::create(&name).unwrap();
    let mut expected = Vec::new();
    for round in 0..3 {
        for w in ["a", "b", "c"] {
            let t = format!("{w}{round}");
            send_ok(&name, &[&t]);
            expected.push(t);
        }
    }
    assert_eq!(texts(&slot, 9), expected);
    // Every message came from a different process, and none of them is this one.
    assert_eq!(slot.info().count, 0);
}

#[test]
fn priority_order_nine_first_fifo_within() {
    let name = unique("prio");
    let slot = Mailslot::create(&name).unwrap();
    for (p, t) in [
        (0, "p0-a"),
        (5, "p5-a"),
        (9, "p9-a"),
        (5, "p5-b"),
        (0, "p0-b"),
        (9, "p9-b"),
        (1, "p1"),
    ] {
        send_ok(&name, &[t, "--priority", &p.to_string()]);
    }
    let info = slot.info();
    assert_eq!(info.count, 7);
    assert_eq!(info.next_priority, Some(9));
    assert_eq!(
        texts(&slot, 7),
        ["p9-a", "p9-b", "p5-a", "p5-b", "p1", "p0-a", "p0-b"]
    );
}

#[test]
fn zero_length_message_is_a_real_message() {
    let name = unique("zero");
    let slot = Mailslot::create(&name).unwrap();
    send_ok(&name, &["--hex", ""]);
    let info = slot.info();
    assert_eq!(info.count, 1);
    assert_eq!(info.next_size, Some(0));
    let mut buf = [0u8; 0];
    let r = slot.read(&mut buf).unwrap();
    assert_eq!(r.len, 0);
    assert_eq!(slot.info().count, 0);
    assert_eq!(slot.info().next_size, None);
}

#[test]
fn buffer_too_small_keeps_the_message() {
    let name = unique("small");
    let slot = Mailslot::create(&name).unwrap();
    send_ok(&name, &["hello world"]);
    let mut small = [0u8; 5];
    match slot.read(&mut small) {
        Err(ReadError::BufferTooSmall { needed }) => assert_eq!(needed, 11),
        other => panic!("expected BufferTooSmall, got {other:?}"),
    }
    assert_eq!(slot.info().count, 1);
    assert_eq!(slot.info().next_size, Some(11));
    let mut big = [0u8; 64];
    let r = slot.read(&mut big).unwrap();
    assert_eq!(&big[..r.len], b"hello world");
    match r.sender {
        Sender::Local { pid, .. } => assert_ne!(pid, std::process::id()),
        other => panic!("unexpected sender {other:?}"),
    }
}

#[test]
fn read_timeouts_zero_t_and_forever_woken_by_a_write() {
    let name = unique("timeout");
    let slot = Mailslot::create(&name).unwrap();

    let t0 = Instant::now();
    assert!(matches!(
        slot.read_message_timeout(Timeout::ZERO),
        Err(ReadError::Timeout)
    ));
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "timeout 0 must return at once"
    );

    let t = Duration::from_millis(300);
    let t0 = Instant::now();
    assert!(matches!(
        slot.read_message_timeout(Timeout::After(t)),
        Err(ReadError::Timeout)
    ));
    let waited = t0.elapsed();
    assert!(waited >= t, "waited only {waited:?}");
    assert!(waited < t + Duration::from_secs(2), "waited {waited:?}");

    // Forever: a writer process started once the read sleeps completes the read at once.
    let n2 = name.clone();
    let reader = tid();
    let writer = std::thread::spawn(move || {
        wait_for("the reading thread sleeps", || {
            asleep(std::process::id(), reader)
        });
        let t_send = Instant::now();
        send_ok(&n2, &["wake up"]);
        t_send
    });
    let m = slot.read_message_timeout(Timeout::Forever).unwrap();
    let woke = Instant::now();
    let t_send = writer.join().unwrap();
    assert_eq!(m.data, b"wake up");
    // The read finished within a short time of the writer process starting.
    assert!(
        woke.duration_since(t_send) < Duration::from_secs(2),
        "woke {:?} after the writer started",
        woke.duration_since(t_send)
    );
}

#[test]
fn oversize_write_is_rejected_and_nothing_queued() {
    let name = unique("oversize");
    let slot = Mailslot::builder()
        .max_message_size(10)
        .create(&name)
        .unwrap();
    let o = send(&name, &["this is longer than ten bytes"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("larger than"), "stderr: {err}");
    assert_eq!(slot.info().count, 0);
    send_ok(&name, &["ten bytes!"]);
    assert_eq!(slot.info().count, 1);
    // The library reports the sizes.
    let w = MailslotWriter::open(&name).unwrap();
    assert!(matches!(
        w.write(&[0; 11]),
        Err(WriteError::TooLarge { size: 11, max: 10 })
    ));
}

#[test]
fn second_create_fails_already_exists() {
    let name = unique("dup");
    let (mut child, _out) = listen(&name, &[]);
    let err = Mailslot::create(&name).unwrap_err();
    assert!(
        matches!(err, mailslot::CreateError::AlreadyExists(_)),
        "{err:?}"
    );
    assert_eq!(err.win32_code(), 183);
    // Case-insensitive, any form.
    let other_form = name
        .replace(r"\\.\mailslot\", "/MAILSLOT/")
        .replace('\\', "/");
    assert!(matches!(
        Mailslot::create(&other_form),
        Err(mailslot::CreateError::AlreadyExists(_))
    ));
    // The CLI exits 2 with a message.
    let o = Command::new(exe())
        .args(["listen", &name, "--timeout", "100"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn open_missing_fails_not_found() {
    let name = unique("missing");
    let err = MailslotWriter::open(&name).unwrap_err();
    assert!(matches!(err, mailslot::OpenError::NotFound(_)));
    assert_eq!(err.win32_code(), 2);
    let o = send(&name, &["x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no mailslot"));
}

#[test]
fn owner_sigkilled_writers_get_an_error_and_the_name_is_free() {
    let name = unique("kill");
    let (mut child, _out) = listen(&name, &[]);
    let w = MailslotWriter::open(&name).unwrap();
    w.write(b"before").unwrap();
    // SIGKILL: no destructor runs in the owner.
    child.kill().unwrap();
    child.wait().unwrap();
    let t0 = Instant::now();
    loop {
        match w.write(b"after") {
            Err(WriteError::OwnerGone) => break,
            Ok(()) if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => panic!("expected OwnerGone, got {other:?}"),
        }
    }
    assert!(matches!(
        MailslotWriter::open(&name),
        Err(mailslot::OpenError::NotFound(_))
    ));
    let again = Mailslot::create(&name).expect("name free after SIGKILL");
    assert!(mailslot::list()
        .unwrap()
        .iter()
        .any(|e| e.name == *again.name()));
}

#[test]
fn class1_write_waits_for_room_then_succeeds() {
    let name = unique("class1");
    let slot = Mailslot::builder()
        .max_message_size(100)
        .quota(100)
        .create(&name)
        .unwrap();
    send_ok(&name, &["--hex", &"aa".repeat(100)]);
    // Full now: second class fails at once.
    let o = send(&name, &["x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("full"));
    // First class waits for room: the writer process opens the slot, then sleeps.
    let mut child = Command::new(exe())
        .args([
            "send",
            &name,
            "waited",
            "--class",
            "1",
            "--timeout",
            "10000",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for("the class-1 writer waits for room", || {
        writer_waits(pid) || child.try_wait().unwrap().is_some()
    });
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the class-1 write returned while the slot was full"
    );
    assert_eq!(
        slot.info().count,
        1,
        "the class-1 write must not be queued yet"
    );
    assert_eq!(slot.read_message().unwrap().data, vec![0xaa; 100]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = slot
        .read_message_timeout(Timeout::After(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(m.data, b"waited");
    assert_eq!(m.class, mailslot::Class::First);
}

#[test]
fn class1_write_times_out_when_nobody_reads() {
    let name = unique("class1to");
    let slot = Mailslot::builder()
        .max_message_size(10)
        .quota(10)
        .create(&name)
        .unwrap();
    send_ok(&name, &["0123456789"]);
    let t0 = Instant::now();
    let o = send(&name, &["more", "--class", "1", "--timeout", "300"]);
    let waited = t0.elapsed();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("timed out"));
    assert!(waited >= Duration::from_millis(300), "waited {waited:?}");
    assert_eq!(slot.info().count, 1);
    let w = MailslotWriter::open(&name).unwrap();
    let r = w.write_with(
        b"x",
        WriteOptions::new()
            .class(mailslot::Class::First)
            .timeout(Duration::from_millis(50)),
    );
    assert!(matches!(r, Err(WriteError::Timeout)));
    assert_eq!(r.unwrap_err().win32_code(), 121);
}

#[test]
fn thousand_writer_processes_all_arrive_exactly_once() {
    let name = unique("thousand");
    let slot = Mailslot::create(&name).unwrap();
    let mut expected = HashSet::new();
    let mut children = Vec::new();
    for i in 0..1000 {
        let t = format!("msg-{i}");
        expected.insert(t.clone());
        children.push(
            Command::new(exe())
                .args(["send", &name, &t])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        if children.len() >= 64 {
            for mut c in children.drain(..) {
                assert!(c.wait().unwrap().success());
            }
        }
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut got = HashSet::new();
    for _ in 0..1000 {
        let m = slot
            .read_message_timeout(Timeout::After(Duration::from_secs(10)))
            .unwrap();
        assert!(got.insert(String::from_utf8(m.data).unwrap()), "duplicate");
    }
    assert_eq!(got, expected);
    assert!(matches!(
        slot.read_message_timeout(Timeout::ZERO),
        Err(ReadError::Timeout)
    ));
}

#[test]
fn listen_json_count_and_exit_codes() {
    let name = unique("listen");
    let (mut child, out) = listen(&name, &["--count", "2", "--json"]);
    send_ok(&name, &["héllo", "--priority", "3"]);
    send_ok(&name, &["--hex", "00ff"]);
    let lines: Vec<String> = out.lines().map(|l| l.unwrap()).collect();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(lines.len(), 2);
    let a: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(a["size"], 6);
    assert_eq!(a["priority"], 3);
    assert_eq!(a["class"], 2);
    assert_eq!(a["text"], "héllo");
    assert_eq!(a["data_hex"], hex::encode("héllo"));
    assert!(a["sender"]["pid"].as_u64().unwrap() > 0);
    assert!(a["sender"]["uid"].is_u64());
    let b: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(b["data_hex"], "00ff");
    assert!(b["text"].is_null());

    // Timeout with fewer messages: exit 1.
    let o = Command::new(exe())
        .args(["listen", &unique("to"), "--count", "1", "--timeout", "200"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // Invalid name: exit 2.
    let o = Command::new(exe())
        .args(["listen", "not-a-mailslot"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a mailslot name"));
    // Remote name: exit 2, clear message.
    let o = Command::new(exe())
        .args(["listen", r"\\SERVER\mailslot\x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("remote"));
}

#[test]
fn send_reads_stdin_and_file_and_list_shows_owner() {
    let name = unique("stdin");
    let slot = Mailslot::create(&name).unwrap();
    let mut c = Command::new(exe())
        .args(["send", &name])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    assert!(c.wait().unwrap().success());
    let f = std::env::temp_dir().join(format!("mailslot-test-{}", std::process::id()));
    std::fs::write(&f, b"from file").unwrap();
    send_ok(&name, &["--file", f.to_str().unwrap()]);
    std::fs::remove_file(&f).ok();
    assert_eq!(texts(&slot, 2), ["from stdin", "from file"]);

    let o = Command::new(exe())
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let key = slot.name().key();
    let found = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| {
            v["name"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
                .ends_with(&key)
        })
        .expect("slot listed");
    assert_eq!(found["owner_pid"], std::process::id());
}

#[test]
fn demo_runs() {
    let o = Command::new(exe()).arg("demo").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("URGENT"));
    assert!(s.contains("demo finished"));
}
