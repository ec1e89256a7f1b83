//! From a captured link-layer frame down to the UDP payload, so that captures
//! (pcap/pcapng, read by the caller) can be fed to the parsers of this crate.
//!
//! Understood: Ethernet II with any number of 802.1Q / 802.1ad tags, Linux
//! cooked capture v1 (SLL) and v2 (SLL2), and raw IPv4; then an IPv4 header
//! with options and a UDP header. A frame that is anything else (ARP, IPv6,
//! TCP, a later IP fragment, a frame cut short) gives `None`: a capture holds
//! all kinds of traffic and the caller skips what is not UDP over IPv4.
//!
//! The lengths in the IPv4 and UDP headers bound the payload (Ethernet pads
//! short frames), but never beyond the bytes captured.
//!
//! ```
//! use mailslot_proto::link::{udp_payload, LinkType};
//! let frame = [
//!     0x45, 0, 0, 30, 0, 1, 0, 0, 64, 17, 0, 0, // IPv4, 30 bytes, UDP
//!     10, 0, 0, 1, 10, 0, 0, 255, //              source, destination
//!     0, 138, 0, 138, 0, 10, 0, 0, //             UDP 138 -> 138, 10 bytes
//!     b'h', b'i',
//! ];
//! let udp = udp_payload(LinkType::RawIpv4, &frame).unwrap();
//! assert_eq!(udp.source.to_string(), "10.0.0.1:138");
//! assert_eq!(udp.payload, b"hi");
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

/// Link types of captured frames (pcap `LINKTYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture, 16-byte header.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2, 20-byte header.
    LinuxSll2,
    /// `LINKTYPE_RAW` (101) or `LINKTYPE_IPV4` (228): the frame is the IPv4 packet.
    RawIpv4,
}

impl LinkType {
    /// The link type of a pcap `LINKTYPE_*` number; `None` for the ones not understood.
    pub fn from_linktype(linktype: u32) -> Option<Self> {
        match linktype {
            1 => Some(Self::Ethernet),
            113 => Some(Self::LinuxSll),
            276 => Some(Self::LinuxSll2),
            101 | 228 => Some(Self::RawIpv4),
            _ => None,
        }
    }
}

/// A UDP datagram found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// IPv4 source address and UDP source port.
    pub source: SocketAddrV4,
    /// IPv4 destination address and UDP destination port.
    pub destination: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// Where the fields are.
mod field {
    use crate::cursor::Field;
    /// Ethernet: the EtherType after the two MAC addresses.
    pub(crate) const ETHERTYPE: usize = 12;
    /// One 802.1Q / 802.1ad tag: TPID and TCI.
    pub(crate) const VLAN_TAG_LEN: usize = 4;
    /// SLL: the protocol type, then the packet.
    pub(crate) const SLL_PROTOCOL: usize = 14;
    pub(crate) const SLL_LEN: usize = 16;
    /// SLL2: the protocol type comes first.
    pub(crate) const SLL2_PROTOCOL: usize = 0;
    pub(crate) const SLL2_LEN: usize = 20;
    /// IPv4.
    pub(crate) const IP_MIN_LEN: usize = 20;
    pub(crate) const IP_TOTAL_LENGTH: usize = 2;
    pub(crate) const IP_FRAGMENT: usize = 6;
    pub(crate) const IP_PROTOCOL: usize = 9;
    pub(crate) const IP_SOURCE: Field = 12..16;
    pub(crate) const IP_DESTINATION: Field = 16..20;
    /// UDP.
    pub(crate) const UDP_SOURCE_PORT: usize = 0;
    pub(crate) const UDP_DESTINATION_PORT: usize = 2;
    pub(crate) const UDP_LENGTH: usize = 4;
    pub(crate) const UDP_HEADER_LEN: usize = 8;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IP_PROTOCOL_UDP: u8 = 17;
/// The fragment-offset bits of the IPv4 flags/fragment field.
const IP_FRAGMENT_OFFSET: u16 = 0x1fff;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn ipv4(b: &[u8], r: crate::cursor::Field) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(r)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

/// The IPv4 packet in a link-layer frame, if the frame carries one.
fn ip_packet(link: LinkType, frame: &[u8]) -> Option<&[u8]> {
    let (ethertype, start) = match link {
        LinkType::Ethernet => {
            let mut at = field::ETHERTYPE;
            let mut t = be16(frame, at)?;
            while t == ETHERTYPE_VLAN || t == ETHERTYPE_QINQ {
                at += field::VLAN_TAG_LEN;
                t = be16(frame, at)?;
            }
            (t, at + 2)
        }
        LinkType::LinuxSll => (be16(frame, field::SLL_PROTOCOL)?, field::SLL_LEN),
        LinkType::LinuxSll2 => (be16(frame, field::SLL2_PROTOCOL)?, field::SLL2_LEN),
        LinkType::RawIpv4 => (ETHERTYPE_IPV4, 0),
    };
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    frame.get(start..)
}

/// The UDP datagram in `frame` (captured on a link of type `link`); `None`
/// if the frame does not hold an unfragmented (or first-fragment) IPv4/UDP packet.
pub fn udp_payload(link: LinkType, frame: &[u8]) -> Option<UdpDatagram<'_>> {
    let ip = ip_packet(link, frame)?;
    let version_ihl = *ip.first()?;
    if ip.len() < field::IP_MIN_LEN
        || version_ihl >> 4 != 4
        || ip[field::IP_PROTOCOL] != IP_PROTOCOL_UDP
        || be16(ip, field::IP_FRAGMENT)? & IP_FRAGMENT_OFFSET != 0
    {
        return None;
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    let total = usize::from(be16(ip, field::IP_TOTAL_LENGTH)?).min(ip.len());
    let udp = ip.get(header_len..total)?;
    if udp.len() < field::UDP_HEADER_LEN {
        return None;
    }
    let udp_len =
        usize::from(be16(udp, field::UDP_LENGTH)?).clamp(field::UDP_HEADER_LEN, udp.len());
    Some(UdpDatagram {
        source: SocketAddrV4::new(
            ipv4(ip, field::IP_SOURCE)?,
            be16(udp, field::UDP_SOURCE_PORT)?,
        ),
        destination: SocketAddrV4::new(
            ipv4(ip, field::IP_DESTINATION)?,
            be16(udp, field::UDP_DESTINATION_PORT)?,
        ),
        payload: udp.get(field::UDP_HEADER_LEN..udp_len)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4/UDP 10.0.0.1:138 -> 10.0.0.255:138 carrying `payload`.
    fn ip_udp(payload: &[u8]) -> Vec<u8> {
        let udp_len = 8 + payload.len() as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 255]);
        ip.extend_from_slice(&[0, 138, 0, 138]);
        ip.extend_from_slice(&udp_len.to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(payload);
        ip
    }

    fn framed(link: LinkType, ip: &[u8]) -> Vec<u8> {
        let mut f = match link {
            LinkType::Ethernet => {
                let mut h = vec![0xff; 12];
                h.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]); // one VLAN tag
                h
            }
            LinkType::LinuxSll => vec![0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00],
            LinkType::LinuxSll2 => {
                let mut h = vec![0x08, 0x00];
                h.resize(20, 0);
                h
            }
            LinkType::RawIpv4 => vec![],
        };
        f.extend_from_slice(ip);
        f
    }

    const LINKS: [LinkType; 4] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIpv4,
    ];

    #[test]
    fn every_link_type() {
        let ip = ip_udp(b"payload");
        for link in LINKS {
            let f = framed(link, &ip);
            let u = udp_payload(link, &f).unwrap_or_else(|| panic!("{link:?}"));
            assert_eq!(u.source, "10.0.0.1:138".parse().unwrap());
            assert_eq!(u.destination, "10.0.0.255:138".parse().unwrap());
            assert_eq!(u.payload, b"payload");
            // Ethernet padding after the IP packet is not payload.
            let mut padded = f.clone();
            padded.extend_from_slice(&[0; 9]);
            assert_eq!(udp_payload(link, &padded).unwrap().payload, b"payload");
            // Cut anywhere: never a panic, and never bytes that were not captured.
            for n in 0..f.len() {
                if let Some(u) = udp_payload(link, &f[..n]) {
                    assert!(b"payload".starts_with(u.payload));
                }
            }
        }
    }

    #[test]
    fn other_traffic_is_skipped() {
        let mut tcp = ip_udp(b"x");
        tcp[9] = 6;
        assert_eq!(udp_payload(LinkType::RawIpv4, &tcp), None);
        let mut later_fragment = ip_udp(b"x");
        later_fragment[7] = 1;
        assert_eq!(udp_payload(LinkType::RawIpv4, &later_fragment), None);
        let mut v6 = ip_udp(b"x");
        v6[0] = 0x60;
        assert_eq!(udp_payload(LinkType::RawIpv4, &v6), None);
        let mut arp = framed(LinkType::Ethernet, &ip_udp(b"x"));
        arp[16..18].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(udp_payload(LinkType::Ethernet, &arp), None);
        assert_eq!(LinkType::from_linktype(113), Some(LinkType::LinuxSll));
        assert_eq!(LinkType::from_linktype(228), Some(LinkType::RawIpv4));
        assert_eq!(LinkType::from_linktype(105), None);
    }
}
