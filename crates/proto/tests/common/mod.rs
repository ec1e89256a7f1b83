//! Helpers shared by the integration tests: fixtures and capture reading.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Bytes of a `.hex` fixture (`#` comment lines, whitespace ignored).
pub fn hex_fixture(name: &str) -> Vec<u8> {
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
pub struct Udp {
    pub frame: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// UDP payloads on ports 137/138 of an Ethernet pcapng capture.
pub fn capture(name: &str) -> Vec<Udp> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let data = std::fs::read(fixture(name)).unwrap();
    let mut r = PcapNgReader::new(&data[..]).unwrap();
    let mut out = Vec::new();
    let mut frame = 0;
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.unwrap() {
            frame += 1;
            let f = &p.data[..];
            if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
                continue;
            }
            let ihl = usize::from(f[14] & 0x0f) * 4;
            let u = &f[14 + ihl..];
            let sp = u16::from_be_bytes([u[0], u[1]]);
            let dp = u16::from_be_bytes([u[2], u[3]]);
            let len = usize::from(u16::from_be_bytes([u[4], u[5]]));
            if [sp, dp].iter().any(|p| *p == 137 || *p == 138) {
                out.push(Udp {
                    frame,
                    src_port: sp,
                    dst_port: dp,
                    payload: u[8..len].to_vec(),
                });
            }
        }
    }
    out
}
