//! Helpers shared by the integration tests: fixtures and capture reading.
#![allow(dead_code)]

use std::path::PathBuf;

use mailslot_proto::link::{udp_payload, LinkType};
use mailslot_proto::NetlogonMessage;

/// Path of a fixture file.
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Bytes of a `.hex` fixture (`#` comment lines, whitespace ignored).
pub(crate) fn hex_fixture(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let digits: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    hex::decode(digits).unwrap()
}

/// A UDP payload from a capture.
pub(crate) struct Udp {
    /// 1-based frame number in the capture.
    pub frame: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// UDP payloads on ports 137/138 of a pcapng capture (through [`mailslot_proto::link`]).
pub(crate) fn capture(name: &str) -> Vec<Udp> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let data = std::fs::read(fixture(name)).unwrap();
    let mut r = PcapNgReader::new(&data[..]).unwrap();
    let mut links = Vec::new();
    let mut out = Vec::new();
    let mut frame = 0;
    while let Some(b) = r.next_block() {
        match b.unwrap() {
            Block::InterfaceDescription(i) => links.push(i.linktype),
            Block::EnhancedPacket(p) => {
                frame += 1;
                let link = LinkType::from_linktype(links[p.interface_id as usize].into())
                    .expect("a link type the captures use");
                let Some(u) = udp_payload(link, &p.data) else {
                    continue;
                };
                let (sp, dp) = (u.source.port(), u.destination.port());
                if [sp, dp].iter().any(|p| *p == 137 || *p == 138) {
                    out.push(Udp {
                        frame,
                        src_port: sp,
                        dst_port: dp,
                        payload: u.payload.to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `data` is nmbd's LOGON_PRIMARY_RESPONSE in the lab: SMBPEER, domain MSLAB,
/// with the 2 pad bytes nmbd writes before NtVersion.
pub(crate) fn assert_nmbd_primary_response(data: &[u8]) {
    match NetlogonMessage::parse(data).unwrap() {
        NetlogonMessage::PrimaryResponse {
            primary_dc_name,
            unicode_domain_name,
            pad_before_nt_version,
            ..
        } => {
            assert_eq!(primary_dc_name, b"SMBPEER");
            assert_eq!(unicode_domain_name, "MSLAB");
            assert_eq!(pad_before_nt_version, 2);
        }
        other => panic!("{other:?}"),
    }
}

/// One frame of a `.frames` fixture: who sent it and its bytes.
pub(crate) struct Frame {
    /// `true` = client to server (`> `), `false` = server to client (`< `).
    pub from_client: bool,
    pub bytes: Vec<u8>,
}

/// A `.frames` fixture: one whole session packet per line, `> hex` or `< hex`; `#` comments.
pub(crate) fn frames_fixture(name: &str) -> Vec<Frame> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l.split_once(' ').unwrap();
            Frame {
                from_client: dir == ">",
                bytes: hex::decode(hex.trim()).unwrap(),
            }
        })
        .collect()
}
