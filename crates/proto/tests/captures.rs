//! Real nmbd traffic (captured in the interop lab) decodes, round-trips, and
//! nmbd's own datagrams re-encode to exactly the captured bytes.

mod common;

use common::capture;
use mailslot_proto::{
    BrowserMessage, DatagramFlags, MailslotMessage, MsgType, NamePacket, NodeType, NsOpcode,
    Payload,
};

const CAPTURES: &[&str] = &["nmbd-round.pcapng", "nmbd-startup-330s.pcapng"];

fn payload_bytes(p: &Payload<'_>) -> Vec<u8> {
    match p {
        Payload::Browser(b) => b.to_vec().unwrap(),
        Payload::Netlogon(n) => n.to_vec().unwrap(),
        Payload::Messenger(m) => m.to_vec().unwrap(),
    }
}

#[test]
fn every_datagram_decodes_and_round_trips() {
    let mut n = 0;
    for c in CAPTURES {
        for u in capture(c).iter().filter(|u| u.dst_port == 138) {
            let m = MailslotMessage::parse(&u.payload)
                .unwrap_or_else(|e| panic!("{c} frame {}: {e}", u.frame));
            let again = m.to_vec().unwrap();
            assert_eq!(MailslotMessage::parse(&again).unwrap(), m);
            let Some(p) = Payload::parse(m.write.name, m.write.data) else {
                assert_eq!(m.write.name, b"\\MAILSLOT\\demo\\hello");
                n += 1;
                continue;
            };
            let p = p.unwrap_or_else(|e| panic!("{c} frame {}: payload: {e}", u.frame));
            assert_eq!(
                Payload::parse(m.write.name, &payload_bytes(&p))
                    .unwrap()
                    .unwrap(),
                p
            );
            n += 1;
        }
    }
    assert_eq!(n, 29, "datagrams in the two captures");
}

#[test]
fn nmbd_datagrams_are_reproduced_byte_for_byte() {
    let mut n = 0;
    for c in CAPTURES {
        for u in capture(c)
            .iter()
            .filter(|u| u.src_port == 138 && u.dst_port == 138)
        {
            let m = MailslotMessage::parse(&u.payload).unwrap();
            if m.flags != DatagramFlags::new(NodeType::M) {
                continue; // sent by the lab's Python tools, not nmbd
            }
            assert_eq!(m.to_vec().unwrap(), u.payload, "{c} frame {}", u.frame);
            let p = Payload::parse(m.write.name, m.write.data).unwrap().unwrap();
            if let Payload::Browser(BrowserMessage::AnnouncementRequest { response_name, .. }) = &p
            {
                // nmbd writes an extra 0 byte before the name and no final NUL;
                // we read the name and re-emit the [MS-BRWS] layout.
                assert_eq!(*response_name, b"SMBPEER");
                n += 1;
                continue;
            }
            assert_eq!(
                payload_bytes(&p),
                m.write.data,
                "{c} frame {} payload",
                u.frame
            );
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} nmbd datagrams");
}

#[test]
fn every_name_service_packet_decodes_and_is_reproduced() {
    let mut regs = 0;
    let mut n = 0;
    for c in CAPTURES {
        for u in capture(c)
            .iter()
            .filter(|u| u.dst_port == 137 || u.src_port == 137)
        {
            let p = NamePacket::parse(&u.payload)
                .unwrap_or_else(|e| panic!("{c} frame {}: {e}", u.frame));
            assert_eq!(p.to_vec().unwrap(), u.payload, "{c} frame {}", u.frame);
            if p.flags.opcode() == NsOpcode::Registration {
                regs += 1;
                // nmbd uses the C0 0C pointer for the additional record's name.
                assert_eq!(p.additional[0].name, p.questions[0].name);
            }
            n += 1;
        }
    }
    assert!(regs >= 40 && n >= 150, "{regs} registrations, {n} packets");
}

#[test]
fn known_frames_have_expected_content() {
    let frames = capture("nmbd-round.pcapng");
    let get = |f: usize| &frames.iter().find(|u| u.frame == f).unwrap().payload;
    // frame 4: nmbd's LOGON_PRIMARY_RESPONSE with 2 pad bytes before NtVersion.
    let m = MailslotMessage::parse(get(4)).unwrap();
    assert_eq!(m.source.name.to_string(), "SMBPEER<00>");
    assert_eq!(m.destination.name.to_string(), "CLIENT<00>");
    assert_eq!(m.write.name, b"\\MAILSLOT\\NET\\GETDC576");
    assert_eq!(m.flags.bits(), 0x0A);
    common::assert_nmbd_primary_response(m.write.data);
    // frame 9: RequestElection as DIRECT_GROUP to MSLAB<1E>.
    let m = MailslotMessage::parse(get(9)).unwrap();
    assert_eq!(m.msg_type, MsgType::DirectGroup);
    assert_eq!(m.destination.name.to_string(), "MSLAB<1E>");
    match BrowserMessage::parse(m.write.data).unwrap() {
        BrowserMessage::RequestElection(e) => assert_eq!(e.server_name, b"SMBPEER"),
        other => panic!("{other:?}"),
    }
    // A DomainAnnouncement goes to __MSBROWSE__<01>.
    assert!(frames
        .iter()
        .filter(|u| u.dst_port == 138)
        .map(|u| MailslotMessage::parse(&u.payload).unwrap())
        .any(
            |m| m.destination.name == mailslot_proto::NetbiosName::MSBROWSE
                && matches!(
                    BrowserMessage::parse(m.write.data),
                    Ok(BrowserMessage::DomainAnnouncement(_))
                )
        ));
}

#[test]
fn link_layer_extractor_finds_every_netbios_frame() {
    // What tshark shows for `udp.port==137 or udp.port==138` (ICMP errors quoting UDP aside).
    for (c, frames) in [
        ("nmbd-round.pcapng", 117),
        ("nmbd-startup-330s.pcapng", 78),
        ("own-encode-vs-nmbd.pcapng", 20),
    ] {
        let udp = capture(c);
        assert_eq!(udp.len(), frames, "{c}");
        for u in &udp {
            // The UDP length bounds the payload: each parses to its last byte.
            let parsed_len = if u.src_port == 138 || u.dst_port == 138 {
                MailslotMessage::parse(&u.payload).unwrap().buffer_len()
            } else {
                NamePacket::parse(&u.payload).unwrap().buffer_len()
            };
            assert!(parsed_len <= u.payload.len(), "{c} frame {}", u.frame);
        }
    }
}
