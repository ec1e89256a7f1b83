//! Real nmbd traffic (from the interop lab) decodes, and re-encodes to the same bytes.

mod common;

use common::capture;
use mailslot_proto::{
    BrowserMessage, MailslotMessage, NamePacket, NetlogonMessage, Payload, PayloadKind,
};

const CAPTURES: &[&str] = &["nmbd-round.pcapng", "nmbd-startup-330s.pcapng"];

#[test]
fn differences_probe() {
    for c in CAPTURES {
        for u in capture(c) {
            if u.src_port == 138 || u.dst_port == 138 {
                let m = MailslotMessage::parse(&u.payload).unwrap();
                let v = m.to_vec().unwrap();
                if v != u.payload {
                    let diffs: Vec<usize> = (0..v.len().min(u.payload.len()))
                        .filter(|&i| v[i] != u.payload[i])
                        .collect();
                    println!(
                        "{c} frame {} len {} vs {} diffs {:?}",
                        u.frame,
                        u.payload.len(),
                        v.len(),
                        diffs
                    );
                }
                if let Some(Ok(p)) = Payload::parse(m.write.name, m.write.data) {
                    let pv = match &p {
                        Payload::Browser(b) => b.to_vec().unwrap(),
                        Payload::Netlogon(n) => n.to_vec().unwrap(),
                        Payload::Messenger(x) => x.to_vec().unwrap(),
                    };
                    if pv != m.write.data {
                        println!(
                            "payload differs frame {} {}\n{}",
                            u.frame,
                            hex::encode(m.write.data),
                            hex::encode(&pv)
                        );
                    }
                }
            } else {
                let p = NamePacket::parse(&u.payload).unwrap();
                let v = p.to_vec().unwrap();
                if v != u.payload {
                    println!("ns frame {} differs", u.frame);
                }
            }
        }
    }
    let _ = (
        PayloadKind::Browser,
        std::any::type_name::<BrowserMessage<'_>>(),
        std::any::type_name::<NetlogonMessage<'_>>(),
    );
}
