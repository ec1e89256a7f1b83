//! The local transport: how messages get from a writer process into the owner's queue.
//!
//! Everything about sockets, descriptors and the wire format between local processes is in this
//! module, so that a faster transport (shared memory) can replace it without touching the API.
//!
//! # How it works
//! - The owner binds a Linux **abstract** `SOCK_SEQPACKET` socket named
//!   `mailslot/v1/<lower-case path>`. Abstract names live in the network namespace (one host
//!   each), vanish when the socket closes — also when the process is killed — and leave nothing on
//!   disk. A second bind of the same name fails, which is `AlreadyExists`.
//! - A writer connects. The owner's side accepts, reads the writer's kernel-verified credentials
//!   (`SO_PEERCRED`, `SO_PEERGROUPS`), applies the access policy and a bound on connections per
//!   user, and answers with a greeting (limits and, if admitted, the read-only control page and
//!   the writer's own ring, as `SCM_RIGHTS` descriptors; see `shm`).
//! - Each write is one record in the writer's ring (header with priority, class and a
//!   `CLOCK_MONOTONIC` stamp, then the data), made visible by a store of the ring's tail (a
//!   release, and a full fence for the wake-up handshake).
//!   The writer sends one wake-up byte on its socket only when the owner asked for it (nobody on
//!   its side is looking at the rings).
//! - Owner side, a reader takes every ring's new records into the in-process priority queue
//!   (ordered by stamp within a priority) before it looks at the head, checking each record's
//!   bounds first. So that writers never stall while the owner is busy elsewhere, one
//!   **per-process** service thread (not one per mailslot) does the same for slots nobody is
//!   reading; it stays out of the way of active readers (see [`service`]).
//! - When the daemon runs, a private mailslot has no listener of its own: its name is in the
//!   daemon's directory, writers connect to the owner process's one listener and say which
//!   slot they want, and the service thread hands them over (see [`registry`] and
//!   [`crate::directory`]).
//! - Fallback: a writer without a ring (the owner could not make one, or the writer could not
//!   map it) sends each message as one `SEQPACKET` record on its socket: a 16-byte header
//!   (version, priority, class, stamp) and the data.

pub(crate) mod list;
pub(crate) mod registry;
pub(crate) mod service;
pub(crate) mod slot;
pub(crate) mod writer;

/// Prefix of every abstract socket name of this project (format version 1).
pub(crate) const ADDR_PREFIX: &str = crate::directory::SOCKET_PREFIX;

/// The abstract address of the mailslot with comparison key `key`.
pub(crate) fn address(key: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(ADDR_PREFIX.len() + key.len());
    a.extend_from_slice(ADDR_PREFIX.as_bytes());
    a.extend_from_slice(key.as_bytes());
    a
}

/// Header of each message record.
pub(crate) const HEADER_LEN: usize = 16;

/// A trusted writer's question about the queue (one byte on its socket).
pub(crate) const QUERY: u8 = b'Q';
/// The owner's answer: `q`, the queued messages (u64), the next message's size (u64,
/// `u64::MAX`: none) and priority (u8), little-endian.
pub(crate) const ANSWER_LEN: usize = 18;

/// Encodes the owner's answer to [`QUERY`].
pub(crate) fn encode_answer(count: usize, next: Option<(usize, u8)>) -> [u8; ANSWER_LEN] {
    let mut b = [0u8; ANSWER_LEN];
    b[0] = b'q';
    b[1..9].copy_from_slice(&(count as u64).to_le_bytes());
    let size = next.map_or(u64::MAX, |(s, _)| s as u64);
    b[9..17].copy_from_slice(&size.to_le_bytes());
    b[17] = next.map_or(0, |(_, p)| p);
    b
}

/// Decodes an answer: `(count, next size and priority)`.
pub(crate) fn decode_answer(b: &[u8]) -> Option<(usize, Option<(usize, u8)>)> {
    if b.len() != ANSWER_LEN || b[0] != b'q' {
        return None;
    }
    let count = u64::from_le_bytes(b[1..9].try_into().ok()?);
    let size = u64::from_le_bytes(b[9..17].try_into().ok()?);
    let next = (size != u64::MAX).then(|| (size as usize, b[17]));
    Some((usize::try_from(count).ok()?, next))
}
const HEADER_VERSION: u8 = 1;

/// Header flag: a [`REMOTE_LEN`]-byte remote-sender block follows the header.
pub(crate) const FLAG_REMOTE: u8 = 0x01;
/// Remote-sender block: 16 bytes of NetBIOS name (NUL padded), 4 bytes of IPv4 address.
pub(crate) const REMOTE_LEN: usize = 20;
/// Header flag: a [`BEHALF_LEN`]-byte on-behalf-of block follows the header.
pub(crate) const FLAG_BEHALF: u8 = 0x02;
/// On-behalf-of block: the local caller's pid, uid and gid (u32 each, little-endian).
pub(crate) const BEHALF_LEN: usize = 12;

/// A sender block that precedes a message's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block<'a> {
    /// Written by the daemon for a remote host.
    Remote(&'a [u8; REMOTE_LEN]),
    /// Written by a trusted process (root or the daemon's user) for a local caller.
    Behalf(&'a [u8; BEHALF_LEN]),
}

impl<'a> Block<'a> {
    /// The header flag of the socket path (the same bits as the ring's record flags).
    pub(crate) fn flag(&self) -> u8 {
        match self {
            Block::Remote(_) => FLAG_REMOTE,
            Block::Behalf(_) => FLAG_BEHALF,
        }
    }

    /// The record flag of the ring path.
    pub(crate) fn ring_flag(&self) -> u8 {
        match self {
            Block::Remote(_) => crate::shm::REC_REMOTE,
            Block::Behalf(_) => crate::shm::REC_BEHALF,
        }
    }

    /// The block's bytes.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        match self {
            Block::Remote(b) => b.as_slice(),
            Block::Behalf(b) => b.as_slice(),
        }
    }
}

/// Encodes an on-behalf-of block.
pub(crate) fn encode_behalf(pid: u32, uid: u32, gid: u32) -> [u8; BEHALF_LEN] {
    let mut b = [0u8; BEHALF_LEN];
    b[..4].copy_from_slice(&pid.to_le_bytes());
    b[4..8].copy_from_slice(&uid.to_le_bytes());
    b[8..].copy_from_slice(&gid.to_le_bytes());
    b
}

/// Decodes an on-behalf-of block: (pid, uid, gid).
pub(crate) fn decode_behalf(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < BEHALF_LEN {
        return None;
    }
    let at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    Some((at(0), at(4), at(8)))
}
/// Encodes a message header.
pub(crate) fn encode_header(priority: u8, class: u8, flags: u8, seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = HEADER_VERSION;
    h[1] = priority;
    h[2] = class;
    h[3] = flags;
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h
}

/// Encodes a remote-sender block.
pub(crate) fn encode_remote(name: &str, ip: std::net::Ipv4Addr) -> [u8; REMOTE_LEN] {
    let mut b = [0u8; REMOTE_LEN];
    let n = name.as_bytes();
    let len = n.len().min(16);
    b[..len].copy_from_slice(&n[..len]);
    b[16..].copy_from_slice(&ip.octets());
    b
}

/// Decodes a remote-sender block (name without padding, address).
pub(crate) fn decode_remote(b: &[u8]) -> Option<(crate::RemoteName, std::net::Ipv4Addr)> {
    if b.len() < REMOTE_LEN {
        return None;
    }
    let name = crate::RemoteName::from_record(&b[..16]);
    let ip = std::net::Ipv4Addr::new(b[16], b[17], b[18], b[19]);
    Some((name, ip))
}

/// A decoded message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub priority: u8,
    pub class: u8,
    pub flags: u8,
    pub seq: u64,
}

/// Decodes a message header; `None` for anything malformed.
pub(crate) fn decode_header(b: &[u8]) -> Option<Header> {
    if b.len() < HEADER_LEN || b[0] != HEADER_VERSION {
        return None;
    }
    let priority = b[1];
    let class = b[2];
    if priority > crate::types::MAX_PRIORITY || !(class == 1 || class == 2) {
        return None;
    }
    let flags = b[3];
    if flags & !(FLAG_REMOTE | FLAG_BEHALF) != 0 || flags == FLAG_REMOTE | FLAG_BEHALF {
        return None;
    }
    let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
    Some(Header {
        priority,
        class,
        flags,
        seq,
    })
}

/// Why an owner refused a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The access policy does not admit the writer's user.
    Denied,
    /// The writer's user holds too many connections to this mailslot already (or the owner is
    /// out of resources).
    Busy,
}

/// The owner's answer to a connecting writer. With an admitted writer it passes the control
/// page and, normally, the writer's ring (`SCM_RIGHTS`, in that order). The owner's identity is
/// not part of it: the writer asks the kernel (`SO_PEERCRED`). The access policy (the owner's
/// uid and `access`) is there so that a trusted writer writing on behalf of local callers knows
/// the owner's verdict before it reports success; the owner checks each such record again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Greeting {
    pub refusal: Option<Refusal>,
    pub accepts_remote: bool,
    pub max_message_size: u64,
    pub quota: u64,
    pub max_messages: u64,
    pub owner_uid: u32,
    pub access: crate::types::Access,
    pub display: String,
}

const GREETING_MAGIC: &[u8; 4] = b"MSG2";
const GREETING_FIXED: usize = 48;

impl Greeting {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(GREETING_FIXED + self.display.len());
        b.extend_from_slice(GREETING_MAGIC);
        let refusal: u16 = match self.refusal {
            None => 0,
            Some(Refusal::Denied) => 1,
            Some(Refusal::Busy) => 2,
        };
        b.extend_from_slice(&refusal.to_le_bytes());
        b.extend_from_slice(&u16::from(self.accepts_remote).to_le_bytes());
        b.extend_from_slice(&self.max_message_size.to_le_bytes());
        b.extend_from_slice(&self.quota.to_le_bytes());
        b.extend_from_slice(&self.max_messages.to_le_bytes());
        b.extend_from_slice(&self.owner_uid.to_le_bytes());
        let (kind, gid): (u32, u32) = match self.access {
            crate::types::Access::Owner => (0, 0),
            crate::types::Access::Group(g) => (1, g),
            crate::types::Access::Everyone => (2, 0),
        };
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&gid.to_le_bytes());
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(self.display.as_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < GREETING_FIXED || &b[..4] != GREETING_MAGIC {
            return None;
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let refusal = match u16::from_le_bytes([b[4], b[5]]) {
            0 => None,
            1 => Some(Refusal::Denied),
            _ => Some(Refusal::Busy),
        };
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
        // Unknown kinds read as the narrowest policy.
        let access = match u32_at(36) {
            1 => crate::types::Access::Group(u32_at(40)),
            2 => crate::types::Access::Everyone,
            _ => crate::types::Access::Owner,
        };
        Some(Self {
            refusal,
            owner_uid: u32_at(32),
            access,
            accepts_remote: u16::from_le_bytes([b[6], b[7]]) & 1 != 0,
            max_message_size: u64_at(8),
            quota: u64_at(16),
            max_messages: u64_at(24),
            display: String::from_utf8_lossy(&b[GREETING_FIXED..]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejects() {
        let h = encode_header(9, 1, FLAG_REMOTE, 77);
        assert_eq!(
            decode_header(&h),
            Some(Header {
                priority: 9,
                class: 1,
                flags: FLAG_REMOTE,
                seq: 77
            })
        );
        assert_eq!(decode_header(&h[..15]), None);
        assert_eq!(decode_header(&encode_header(10, 1, 0, 0)), None);
        assert_eq!(decode_header(&encode_header(0, 3, 0, 0)), None);
        assert_eq!(decode_header(&encode_header(0, 2, 0x80, 0)), None);
        assert_eq!(
            decode_header(&encode_header(0, 2, FLAG_REMOTE | FLAG_BEHALF, 0)),
            None
        );
        assert_eq!(
            decode_header(&encode_header(0, 2, FLAG_BEHALF, 0))
                .unwrap()
                .flags,
            FLAG_BEHALF
        );
        assert_eq!(
            decode_behalf(&encode_behalf(7, 65534, 65533)),
            Some((7, 65534, 65533))
        );
        assert_eq!(decode_behalf(&encode_behalf(7, 1, 2)[..11]), None);
        let r = encode_remote("SERVER1", std::net::Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(
            decode_remote(&r),
            Some((
                crate::RemoteName::new("SERVER1"),
                std::net::Ipv4Addr::new(10, 99, 0, 1)
            ))
        );
        assert_eq!(decode_remote(&r[..19]), None);
        let mut bad = h;
        bad[0] = 2;
        assert_eq!(decode_header(&bad), None);
    }

    #[test]
    fn greeting_round_trip() {
        let g = Greeting {
            refusal: None,
            accepts_remote: true,
            max_message_size: 424,
            quota: 1 << 20,
            max_messages: 4096,
            owner_uid: 1000,
            access: crate::types::Access::Group(44),
            display: r"\\.\mailslot\App".into(),
        };
        assert_eq!(Greeting::decode(&g.encode()), Some(g.clone()));
        assert_eq!(Greeting::decode(&g.encode()[..47]), None);
        for access in [crate::types::Access::Owner, crate::types::Access::Everyone] {
            let g2 = Greeting {
                access,
                ..g.clone()
            };
            assert_eq!(Greeting::decode(&g2.encode()), Some(g2.clone()));
        }
        for r in [Refusal::Denied, Refusal::Busy] {
            let refused = Greeting {
                refusal: Some(r),
                ..g.clone()
            };
            assert_eq!(
                Greeting::decode(&refused.encode()).unwrap().refusal,
                Some(r)
            );
        }
    }
}
