//! Parse speed of a whole browser datagram: NetBIOS header and names, SMB
//! mailslot write and browser payload.
//!
//! Run with `cargo run --release -p mailslot-proto --example parse_bench`.
//! Prints JSON lines `{"bench":"proto_parse_browser","size":200,"ns_per_datagram":…}`
//! (a 200-byte GetBackupListResponse datagram) and the same for the most common
//! browser datagram, a 201-byte HostAnnouncement.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use mailslot_proto::{
    Announcement, BrowserMessage, MailslotMessage, MailslotWriteRepr, MsgType, NetbiosName, Payload,
};

fn datagram(payload: &[u8]) -> Vec<u8> {
    MailslotMessage::new(
        MsgType::DirectGroup,
        0x7cef,
        Ipv4Addr::new(10, 99, 0, 3),
        NetbiosName::new("SMBPEER", 0).unwrap().into(),
        NetbiosName::new("MSLAB", 0x1D).unwrap().into(),
        MailslotWriteRepr {
            name: b"\\MAILSLOT\\BROWSE",
            priority: 1,
            class: 2,
            data: payload,
        },
    )
    .to_vec()
    .unwrap()
}

/// Full decode; returns something derived from every layer so nothing is optimised away.
fn parse(buf: &[u8]) -> usize {
    let m = MailslotMessage::parse(buf).unwrap();
    let p = Payload::parse(m.write.name, m.write.data).unwrap().unwrap();
    let n = match p {
        Payload::Browser(BrowserMessage::HostAnnouncement(a)) => a.name.len() + a.comment.len(),
        Payload::Browser(BrowserMessage::GetBackupListResponse { servers, .. }) => servers.len(),
        _ => 0,
    };
    n + usize::from(m.destination.name.suffix()) + m.write.data.len()
}

fn bench(name: &str, buf: &[u8]) {
    // warm up, then take the best of 15 rounds (the machine is shared and noisy)
    for _ in 0..100_000 {
        black_box(parse(black_box(buf)));
    }
    let iters = 300_000u32;
    let mut best = f64::MAX;
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(parse(black_box(buf)));
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    println!(
        "{{\"bench\":\"{name}\",\"size\":{},\"ns_per_datagram\":{best:.1}}}",
        buf.len()
    );
}

fn main() {
    let backup = BrowserMessage::GetBackupListResponse {
        token: 1,
        servers: vec![b"SERVERONE", b"SERVERTWO", b"SRV03"],
    }
    .to_vec()
    .unwrap();
    let a = datagram(&backup);
    assert_eq!(a.len(), 200);
    bench("proto_parse_browser", &a);

    let host = BrowserMessage::HostAnnouncement(Announcement {
        update_count: 0,
        periodicity_ms: 720_000,
        name: b"SMBPEER",
        os_major: 4,
        os_minor: 9,
        server_type: 0x0001_9a03,
        browser_major: 15,
        browser_minor: 1,
        signature: 0xAA55,
        comment: b"",
    })
    .to_vec()
    .unwrap();
    let b = datagram(&host);
    bench("proto_parse_browser_host_announcement", &b);
    if std::env::var_os("PARTS").is_some() {
        parts(&b);
    }
}

#[allow(dead_code)]
fn parts(buf: &[u8]) {
    let t = Instant::now();
    for _ in 0..1_000_000 {
        black_box(mailslot_proto::DatagramRepr::parse(black_box(buf)).unwrap());
    }
    println!("datagram {:?}", t.elapsed() / 1_000_000);
    let t = Instant::now();
    for _ in 0..1_000_000 {
        black_box(mailslot_proto::QualifiedName::parse(black_box(buf), 14).unwrap());
    }
    println!("name {:?}", t.elapsed() / 1_000_000);
    let smb = &buf[82..];
    let t = Instant::now();
    for _ in 0..1_000_000 {
        black_box(MailslotWriteRepr::parse(black_box(smb)).unwrap());
    }
    println!("smb {:?}", t.elapsed() / 1_000_000);
    let data = &smb[86..];
    let t = Instant::now();
    for _ in 0..1_000_000 {
        black_box(BrowserMessage::parse(black_box(data)).unwrap());
    }
    println!("browser {:?}", t.elapsed() / 1_000_000);
}
