//! Samba `nmbd`'s "unexpected" socket, without I/O: the query a client sends once, the header
//! nmbd puts before each datagram it relays, and which mailslots nmbd keeps for itself.
//!
//! The socket is a Unix stream socket at `<nmbd:socket dir>/unexpected`. A client sends one
//! `struct nb_packet_query { int type; size_t namelen; int trn_id; }` and reads one byte `0`;
//! from then on nmbd writes, for each datagram, a `struct nb_packet_client_header { size_t len;
//! int type; time_t timestamp; struct in_addr src_ip; int src_port; }` followed by `len` bytes
//! of the NetBIOS datagram as nmbd rebuilt it. Both structs are native C layouts: their sizes and
//! offsets are taken from the target's C ABI here ([`QUERY_LEN`], [`HEADER_LEN`]), not written
//! down for one architecture.

use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, SocketAddrV4};

/// `struct nb_packet_query` as nmbd reads it (source3/libsmb/unexpected.c).
#[repr(C)]
#[allow(dead_code)] // Only its layout is used.
struct NbPacketQuery {
    kind: libc::c_int,
    namelen: libc::size_t,
    trn_id: libc::c_int,
}

/// `struct nb_packet_client_header` as nmbd writes it.
#[repr(C)]
#[allow(dead_code)] // Only its layout is used.
struct NbPacketClientHeader {
    len: libc::size_t,
    kind: libc::c_int,
    timestamp: libc::time_t,
    src_ip: libc::in_addr,
    src_port: libc::c_int,
}

/// Size of the query a client sends (24 bytes on x86_64).
pub const QUERY_LEN: usize = size_of::<NbPacketQuery>();
/// Size of the header before each relayed datagram (32 bytes on x86_64).
pub const HEADER_LEN: usize = size_of::<NbPacketClientHeader>();
/// nmbd's packet type of a NetBIOS datagram (`DGRAM_PACKET`).
pub const DGRAM_PACKET: i32 = 1;
/// nmbd reads datagrams into a buffer of this many bytes: a longer datagram is relayed cut.
pub const NMBD_MAX_DATAGRAM: usize = 576;
/// The largest `len` accepted in a header: nmbd never relays more than it read, so anything
/// much larger means the stream is out of step.
pub const MAX_RELAYED: usize = 64 * 1024;
/// The byte nmbd answers a query with.
pub const QUERY_ACK: u8 = 0;

/// The query for every datagram (type 1, no name filter, any transaction id).
pub fn datagram_query() -> [u8; QUERY_LEN] {
    let mut q = [0u8; QUERY_LEN];
    put(
        &mut q,
        offset_of!(NbPacketQuery, kind),
        &DGRAM_PACKET.to_ne_bytes(),
    );
    put(
        &mut q,
        offset_of!(NbPacketQuery, namelen),
        &(0 as libc::size_t).to_ne_bytes(),
    );
    put(
        &mut q,
        offset_of!(NbPacketQuery, trn_id),
        &(-1 as libc::c_int).to_ne_bytes(),
    );
    q
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = buf.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

fn take<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at + N)?.try_into().ok()
}

/// One relay header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayHeader {
    /// Bytes of datagram that follow.
    pub len: usize,
    /// nmbd's packet type ([`DGRAM_PACKET`] for what we ask for).
    pub kind: i32,
    /// Where nmbd received the datagram from.
    pub source: SocketAddrV4,
}

/// Why a relay header is not usable (the stream is out of step: reconnect).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("relay header of {0} bytes, expected {HEADER_LEN}")]
    Short(usize),
    /// A length above [`MAX_RELAYED`].
    #[error("relayed datagram of {0} bytes announced")]
    TooLong(usize),
    /// A source port outside 0..=65535.
    #[error("source port {0} out of range")]
    BadPort(i64),
}

impl RelayHeader {
    /// Parses the first [`HEADER_LEN`] bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, RelayError> {
        let short = || RelayError::Short(buf.len());
        let len = take::<{ size_of::<libc::size_t>() }>(buf, offset_of!(NbPacketClientHeader, len))
            .map(libc::size_t::from_ne_bytes)
            .ok_or_else(short)?;
        let kind =
            take::<{ size_of::<libc::c_int>() }>(buf, offset_of!(NbPacketClientHeader, kind))
                .map(libc::c_int::from_ne_bytes)
                .ok_or_else(short)?;
        // `in_addr` holds the address in network byte order: its bytes are the address.
        let ip = take::<4>(buf, offset_of!(NbPacketClientHeader, src_ip)).ok_or_else(short)?;
        let port =
            take::<{ size_of::<libc::c_int>() }>(buf, offset_of!(NbPacketClientHeader, src_port))
                .map(libc::c_int::from_ne_bytes)
                .ok_or_else(short)?;
        if buf.len() < HEADER_LEN {
            return Err(short());
        }
        if len > MAX_RELAYED {
            return Err(RelayError::TooLong(len));
        }
        let port = u16::try_from(port).map_err(|_| RelayError::BadPort(i64::from(port)))?;
        Ok(Self {
            len,
            kind,
            source: SocketAddrV4::new(Ipv4Addr::from(ip), port),
        })
    }
}

/// The mailslots nmbd keeps when they are written to one of its own names (it never relays
/// those; nmbd_packets.c `process_dgram`), compared without case, with or without `\MAILSLOT\`.
pub const KEPT_BY_NMBD: [&str; 4] = [
    "\\MAILSLOT\\BROWSE",
    "\\MAILSLOT\\LANMAN",
    "\\MAILSLOT\\NET\\NETLOGON",
    "\\MAILSLOT\\NET\\NTLOGON",
];

/// Is `name` (the full mailslot name, `\MAILSLOT\…`) one nmbd keeps for itself?
pub fn is_kept_by_nmbd(name: &str) -> bool {
    KEPT_BY_NMBD.iter().any(|k| k.eq_ignore_ascii_case(name))
}

/// The same for a path after `\MAILSLOT\` (as delivered).
pub fn is_kept_by_nmbd_path(path: &str) -> bool {
    KEPT_BY_NMBD
        .iter()
        .any(|k| k[10..].eq_ignore_ascii_case(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_c_abi() {
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            assert_eq!(QUERY_LEN, 24);
            assert_eq!(HEADER_LEN, 32);
            assert_eq!(offset_of!(NbPacketClientHeader, src_ip), 24);
            assert_eq!(offset_of!(NbPacketClientHeader, src_port), 28);
        }
        let q = datagram_query();
        assert_eq!(&q[..4], &1i32.to_ne_bytes());
        let trn = offset_of!(NbPacketQuery, trn_id);
        assert_eq!(&q[trn..trn + 4], &(-1i32).to_ne_bytes());
    }

    #[test]
    fn short_and_bad_headers_are_errors() {
        assert_eq!(RelayHeader::parse(&[0; 5]), Err(RelayError::Short(5)));
        let mut h = [0u8; HEADER_LEN];
        h[..size_of::<libc::size_t>()].copy_from_slice(&(MAX_RELAYED + 1).to_ne_bytes());
        assert!(matches!(
            RelayHeader::parse(&h),
            Err(RelayError::TooLong(_))
        ));
    }

    /// Real bytes from nmbd 4.17 (x86_64): a write from 10.99.0.2:138 to SMBALIAS.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn parses_a_header_nmbd_sent() {
        let bytes = include_bytes!("../tests/data/nmbd-relay-x86_64.bin");
        let h = RelayHeader::parse(bytes).unwrap();
        assert_eq!(h.kind, DGRAM_PACKET);
        assert_eq!(h.source, "10.99.0.2:138".parse().unwrap());
        assert_eq!(h.len, bytes.len() - HEADER_LEN);
        assert_eq!(bytes[HEADER_LEN], 0x10); // DIRECT_UNIQUE
    }

    #[test]
    fn kept_mailslots() {
        assert!(is_kept_by_nmbd("\\MAILSLOT\\browse"));
        assert!(is_kept_by_nmbd("\\mailslot\\net\\netlogon"));
        assert!(!is_kept_by_nmbd("\\MAILSLOT\\MESSNGR"));
        assert!(is_kept_by_nmbd_path("Browse"));
        assert!(!is_kept_by_nmbd_path("BROWSER"));
    }
}
