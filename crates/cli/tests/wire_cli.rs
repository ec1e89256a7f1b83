//! End-to-end tests of `mailslot decode`, `encode` and `encode-name-query`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailslot"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../proto/tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().unwrap()
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn encode(args: &[&str]) -> String {
    let o = run(&[&["encode"], args].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    assert_eq!(s.lines().count(), 1);
    s.trim().to_string()
}

/// The arguments of `encode` for a datagram with a text payload.
fn text_args<'a>(from: &'a str, to: &'a str, mailslot: &'a str, text: &'a str) -> [&'a str; 8] {
    [
        "--from",
        from,
        "--to",
        to,
        "--mailslot",
        mailslot,
        "--text",
        text,
    ]
}

/// `decode FILE`, which must succeed (exit 0); its JSON lines.
fn decode_ok(file: &Path) -> Vec<Value> {
    let o = run(&["decode", file.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    lines(&o)
}

fn decode_hex(hex: &str) -> (i32, Value) {
    let o = run(&["decode", "--hex", hex]);
    let mut l = lines(&o);
    assert_eq!(l.len(), 1);
    (o.status.code().unwrap(), l.remove(0))
}

#[test]
fn decode_nmbd_capture() {
    let f = fixture("nmbd-round.pcapng");
    let l = decode_ok(&f);
    assert_eq!(l.len(), 117);
    assert!(l.iter().all(|j| j.get("error").is_none()));
    let dgrams = l.iter().filter(|j| j["kind"] == "datagram").count();
    let ns = l.iter().filter(|j| j["kind"] == "name_service").count();
    assert_eq!((dgrams, ns), (18, 99));
    let f4 = l.iter().find(|j| j["frame"] == 4).unwrap();
    assert_eq!(f4["msg_type"], 16);
    assert_eq!(f4["flags"], 10);
    assert_eq!(f4["source_name"], "SMBPEER");
    assert_eq!(f4["source_suffix"], "00");
    assert_eq!(f4["source_ip"], "10.99.0.3");
    assert_eq!(f4["source_port"], 138);
    assert_eq!(f4["destination_name"], "CLIENT");
    assert_eq!(f4["destination_suffix"], "00");
    assert_eq!(f4["mailslot"], "\\MAILSLOT\\NET\\GETDC576");
    assert_eq!(f4["priority"], 1);
    assert_eq!(f4["class"], 2);
    assert_eq!(f4["payload"]["type"], "netlogon");
    assert_eq!(f4["payload"]["opcode"], 12);
    assert_eq!(f4["payload"]["primary_dc_name"], "SMBPEER");
    assert_eq!(f4["payload"]["unicode_domain_name"], "MSLAB");
    let elections = l
        .iter()
        .filter(|j| j["payload"]["opcode_name"] == "RequestElection")
        .count();
    assert_eq!(elections, 5);
    let reg = l
        .iter()
        .find(|j| j["opcode_name"] == "registration")
        .unwrap();
    assert_eq!(reg["additional"][0]["addresses"][0]["ip"], "10.99.0.3");
}

#[test]
fn decode_startup_capture_has_host_announcement() {
    let f = fixture("nmbd-startup-330s.pcapng");
    let l = decode_ok(&f);
    let host = l
        .iter()
        .find(|j| j["payload"]["opcode_name"] == "HostAnnouncement")
        .unwrap();
    assert_eq!(host["payload"]["server_name"], "SMBPEER");
    assert_eq!(host["destination_suffix"], "1D");
    assert_eq!(host["payload"]["type"], "browser");
}

#[test]
fn decode_hex_name_query_and_response() {
    let (code, j) = decode_hex("0000011000010000000000002046454546464446454442434143414341434143414341434143414341434143410000200001");
    assert_eq!(code, 0);
    assert_eq!(j["kind"], "name_service");
    assert_eq!(j["flags"], 0x0110);
    assert_eq!(j["questions"][0]["name"], "TEST1");
    assert_eq!(j["questions"][0]["suffix"], "20");
    let f = fixture("nbns-positive-response-POTATO-00.hex");
    let j = &decode_ok(&f)[0];
    assert_eq!(j["answers"][0]["addresses"][0]["ip"], "192.168.1.65");
    assert_eq!(j["answers"][0]["ttl"], 259200);
}

#[test]
fn decode_hex_file_with_blocks_and_errors() {
    let dir = std::env::temp_dir().join(format!("wire-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = encode(&text_args("A", "B", "x", "hi"));
    let text = format!(
        "# two good datagrams and a bad one\n{}\n{}\n\n# second\n{good}\n\n10 02 00 01 0a 00 00 01 00 8a 00 10 00 00 20 41\n",
        &good[..20],
        &good[20..]
    );
    let p = dir.join("t.hex");
    std::fs::write(&p, text).unwrap();
    let o = run(&["decode", p.to_str().unwrap()]);
    let l = lines(&o);
    assert_eq!(l.len(), 3);
    assert_eq!(l[0]["mailslot"], "\\MAILSLOT\\x");
    assert_eq!(l[1]["data_hex"], "6869");
    assert!(l[2]["error"].is_string());
    assert_eq!(l[2]["offset"], 15);
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn decode_errors_and_exit_codes() {
    let (code, j) = decode_hex("ffff");
    assert_eq!(code, 1);
    assert!(j["error"].as_str().unwrap().contains("truncated"), "{j}");
    assert!(j["offset"].is_number());
    // fragment
    let mut good = encode(&text_args("A", "B", "x", "hi"));
    good.replace_range(2..4, "03");
    let (code, j) = decode_hex(&good);
    assert_eq!(code, 1);
    assert!(j["error"].as_str().unwrap().contains("fragment"), "{j}");
    assert_eq!(j["offset"], 1);
    // unreadable input
    assert_eq!(
        run(&["decode", "/nonexistent/file.pcap"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["decode", "--hex", "zz"]).status.code(), Some(2));
}

#[test]
fn encode_then_decode() {
    let h = encode(&[
        "--from",
        "client<00>",
        "--to",
        "MSLAB<1C>",
        "--mailslot",
        "\\MAILSLOT\\demo\\hello",
        "--data-hex",
        "00ff10",
        "--priority",
        "7",
        "--class",
        "2",
        "--source-ip",
        "10.99.0.1",
        "--msg-type",
        "group",
        "--dgm-id",
        "513",
    ]);
    assert!(h.starts_with("110202010a630001008a"), "{h}");
    let (code, j) = decode_hex(&h);
    assert_eq!(code, 0);
    assert_eq!(j["msg_type"], 17);
    assert_eq!(j["dgm_id"], 513);
    assert_eq!(j["source_ip"], "10.99.0.1");
    assert_eq!(j["source_name"], "CLIENT");
    assert_eq!(j["destination_name"], "MSLAB");
    assert_eq!(j["destination_suffix"], "1C");
    assert_eq!(j["mailslot"], "\\MAILSLOT\\demo\\hello");
    assert_eq!(j["priority"], 7);
    assert_eq!(j["data_hex"], "00ff10");
    assert!(j.get("payload").is_none());
    // wildcard destination defaults to BROADCAST
    let (_, j) = decode_hex(&encode(&text_args("A", "*", "x", "t")));
    assert_eq!(j["msg_type"], 18);
    assert_eq!(j["destination_name"], "*");
}

#[test]
fn encode_payload_helpers() {
    let (_, j) = decode_hex(&encode(&[
        "--from",
        "ALICE<03>",
        "--to",
        "BOB<03>",
        "--payload",
        "messenger",
        "--message",
        "hello bob",
    ]));
    assert_eq!(j["mailslot"], "\\MAILSLOT\\MESSNGR");
    assert_eq!(j["payload"]["from"], "ALICE");
    assert_eq!(j["payload"]["to"], "BOB");
    assert_eq!(j["payload"]["text"], "hello bob");
    let (_, j) = decode_hex(&encode(&[
        "--from",
        "CLIENT",
        "--to",
        "MSLAB<1C>",
        "--payload",
        "netlogon-sam-logon",
        "--user",
        "alice",
        "--reply-mailslot",
        "\\MAILSLOT\\NET\\GETDC9",
    ]));
    assert_eq!(j["payload"]["opcode"], 18);
    assert_eq!(j["payload"]["unicode_user_name"], "alice");
    assert_eq!(j["payload"]["reply_mailslot"], "\\MAILSLOT\\NET\\GETDC9");
    let (_, j) = decode_hex(&encode(&[
        "--from",
        "SRV",
        "--to",
        "WG<1E>",
        "--payload",
        "local-master-announcement",
        "--comment",
        "c",
    ]));
    assert_eq!(j["payload"]["opcode"], 15);
    assert_eq!(j["payload"]["server_name"], "SRV");
    assert_eq!(j["payload"]["comment"], "c");
}

#[test]
fn encode_refuses_too_large_and_bad_names() {
    let big = "a".repeat(425);
    let o = run(&[&["encode"][..], &text_args("A", "B", "BROWSE", &big)].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("too large"));
    let ok = "a".repeat(424);
    assert!(
        run(&[&["encode"][..], &text_args("A", "B", "BROWSE", &ok)].concat())
            .status
            .success()
    );
    let o = run(&[
        &["encode"][..],
        &text_args("WAYTOOLONGNAME1234", "B", "x", "t"),
    ]
    .concat());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn encode_name_query_matches_vector() {
    let o = run(&[
        "encode-name-query",
        "--name",
        "TEST1<20>",
        "--broadcast",
        "--id",
        "0",
    ]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        "0000011000010000000000002046454546464446454442434143414341434143414341434143414341434143410000200001"
    );
    let o = run(&["encode-name-query", "--name", "SMBPEER", "--id", "258"]);
    let h = String::from_utf8(o.stdout).unwrap();
    assert!(h.starts_with("01020100"), "{h}");
}

#[test]
fn decode_classic_pcap_with_linux_sll() {
    // A classic pcap, link type LINUX_SLL (113), with one IPv4/UDP 138 frame.
    let dgram = hex::decode(encode(&text_args("A", "B", "x", "sll"))).unwrap();
    let mut udp = vec![0, 138, 0, 138];
    udp.extend_from_slice(&((8 + dgram.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&dgram);
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 255]);
    ip.extend_from_slice(&udp);
    let mut frame = vec![0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 113, 1, 0] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    // (the last two words above are ts_sec=1, ts_usec=0 of the packet record)
    pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    pcap.extend_from_slice(&frame);
    let p = std::env::temp_dir().join(format!("wire-cli-sll-{}.pcap", std::process::id()));
    std::fs::write(&p, &pcap).unwrap();
    let l = decode_ok(&p);
    std::fs::remove_file(&p).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["data_hex"], "736c6c");
    assert_eq!(l[0]["udp_source"], "10.0.0.1:138");
}

#[test]
fn damaged_captures_never_panic() {
    let data = std::fs::read(fixture("nmbd-round.pcapng")).unwrap();
    let dir = std::env::temp_dir().join(format!("wire-cli-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Cut short: the frames before the cut are decoded, then exit 2.
    let p = dir.join("cut.pcapng");
    std::fs::write(&p, &data[..data.len() / 2]).unwrap();
    let o = run(&["decode", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!lines(&o).is_empty());
    // Flipped bytes all over the file: any exit code but never a crash.
    let mut seed = 0x1234_5678u32;
    for round in 0..30 {
        let mut d = data.clone();
        for _ in 0..20 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (seed as usize >> 4) % d.len();
            d[i] ^= (seed >> 24) as u8 | 1;
        }
        std::fs::write(&p, &d).unwrap();
        let o = run(&["decode", p.to_str().unwrap()]);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "round {round}: {code:?} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = lines(&o);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
