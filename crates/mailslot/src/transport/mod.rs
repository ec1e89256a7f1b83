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
//!   (`SO_PEERCRED`, `SO_PEERGROUPS`), applies the access policy and answers with a greeting (limits
//!   and, if admitted, the control page as an `SCM_RIGHTS` descriptor).
//! - Each write is one `SEQPACKET` record: a 16-byte header (version, priority, class, write-order
//!   number) and the data.
//! - Owner side, a reader drains every connection into the in-process priority queue before it
//!   looks at the head. So that writers never stall while the owner is busy elsewhere, one
//!   **per-process** service thread (not one per mailslot) drains slots nobody is reading;
//!   it stays out of the way of active readers (see [`service`]).

pub(crate) mod list;
pub(crate) mod service;
pub(crate) mod slot;
pub(crate) mod writer;

/// Prefix of every abstract socket name of this project (format version 1).
pub(crate) const ADDR_PREFIX: &str = "mailslot/v1/";

/// The abstract address of the mailslot with comparison key `key`.
pub(crate) fn address(key: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(ADDR_PREFIX.len() + key.len());
    a.extend_from_slice(ADDR_PREFIX.as_bytes());
    a.extend_from_slice(key.as_bytes());
    a
}

/// Header of each message record.
pub(crate) const HEADER_LEN: usize = 16;
const HEADER_VERSION: u8 = 1;

/// Header flag: a [`REMOTE_LEN`]-byte remote-sender block follows the header.
pub(crate) const FLAG_REMOTE: u8 = 0x01;
/// Remote-sender block: 16 bytes of NetBIOS name (NUL padded), 4 bytes of IPv4 address.
pub(crate) const REMOTE_LEN: usize = 20;
/// Header flag: the record carries several network messages (only the daemon sends these).
/// After the header come entries of [`BATCH_ENTRY_LEN`] bytes of entry header, a remote-sender
/// block and the data; the header's `seq` is the write-order number of the first entry, the
/// others follow in order.
pub(crate) const FLAG_BATCH: u8 = 0x02;
/// Entry header of a batch record: data length (u32 LE), priority, class, 2 bytes reserved.
pub(crate) const BATCH_ENTRY_LEN: usize = 8;
/// Largest batch record a writer builds; owners can always receive a record of this size.
pub(crate) const BATCH_RECORD_MAX: usize = 64 * 1024;

/// One entry of a batch record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchEntry<'a> {
    pub priority: u8,
    pub class: u8,
    pub remote: &'a [u8],
    pub data: &'a [u8],
}

/// Appends the head of one batch entry (entry header and remote-sender block, not the data).
pub(crate) fn encode_batch_head(
    out: &mut Vec<u8>,
    priority: u8,
    class: u8,
    remote: &[u8; REMOTE_LEN],
    data_len: usize,
) {
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    out.extend_from_slice(&[priority, class, 0, 0]);
    out.extend_from_slice(remote);
}

/// Appends one whole batch entry to `out`.
#[cfg(test)]
pub(crate) fn encode_batch_entry(
    out: &mut Vec<u8>,
    priority: u8,
    class: u8,
    remote: &[u8; REMOTE_LEN],
    data: &[u8],
) {
    encode_batch_head(out, priority, class, remote, data.len());
    out.extend_from_slice(data);
}

/// Splits the body of a batch record into entries; `None` if anything is malformed.
pub(crate) fn decode_batch(mut b: &[u8]) -> Option<Vec<BatchEntry<'_>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < BATCH_ENTRY_LEN + REMOTE_LEN {
            return None;
        }
        let len = u32::from_le_bytes(b[..4].try_into().ok()?) as usize;
        let (priority, class) = (b[4], b[5]);
        if priority > crate::types::MAX_PRIORITY || !(class == 1 || class == 2) {
            return None;
        }
        let rest = &b[BATCH_ENTRY_LEN..];
        let (remote, rest) = rest.split_at(REMOTE_LEN);
        if rest.len() < len {
            return None;
        }
        let (data, rest) = rest.split_at(len);
        out.push(BatchEntry {
            priority,
            class,
            remote,
            data,
        });
        b = rest;
    }
    Some(out)
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
    if flags & !(FLAG_REMOTE | FLAG_BATCH) != 0 || flags == FLAG_REMOTE | FLAG_BATCH {
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

/// The owner's answer to a connecting writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Greeting {
    pub admitted: bool,
    pub accepts_remote: bool,
    pub max_message_size: u64,
    pub quota: u64,
    pub max_messages: u64,
    pub owner_pid: u32,
    pub owner_uid: u32,
    pub display: String,
}

const GREETING_MAGIC: &[u8; 4] = b"MSG1";
const GREETING_FIXED: usize = 40;

impl Greeting {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(GREETING_FIXED + self.display.len());
        b.extend_from_slice(GREETING_MAGIC);
        b.extend_from_slice(&u16::from(!self.admitted).to_le_bytes());
        b.extend_from_slice(&u16::from(self.accepts_remote).to_le_bytes());
        b.extend_from_slice(&self.max_message_size.to_le_bytes());
        b.extend_from_slice(&self.quota.to_le_bytes());
        b.extend_from_slice(&self.max_messages.to_le_bytes());
        b.extend_from_slice(&self.owner_pid.to_le_bytes());
        b.extend_from_slice(&self.owner_uid.to_le_bytes());
        b.extend_from_slice(self.display.as_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Greeting> {
        if b.len() < GREETING_FIXED || &b[..4] != GREETING_MAGIC {
            return None;
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
        Some(Greeting {
            admitted: u16::from_le_bytes([b[4], b[5]]) == 0,
            accepts_remote: u16::from_le_bytes([b[6], b[7]]) & 1 != 0,
            max_message_size: u64_at(8),
            quota: u64_at(16),
            max_messages: u64_at(24),
            owner_pid: u32_at(32),
            owner_uid: u32_at(36),
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
    fn batch_entries_round_trip_and_reject_garbage() {
        let ip = std::net::Ipv4Addr::new(10, 0, 0, 1);
        let r = encode_remote("HOSTA", ip);
        let mut b = Vec::new();
        encode_batch_entry(&mut b, 9, 2, &r, b"first");
        encode_batch_entry(&mut b, 0, 1, &r, b"");
        let e = decode_batch(&b).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].priority, e[0].class, e[0].data),
            (9, 2, &b"first"[..])
        );
        assert_eq!(decode_remote(e[1].remote), Some(("HOSTA".into(), ip)));
        assert_eq!(e[1].data, b"");
        assert_eq!(decode_batch(&b[..b.len() - 1]), None, "truncated entry");
        let mut bad = b.clone();
        bad[4] = 10;
        assert_eq!(decode_batch(&bad), None, "priority 10");
        let mut long = b.clone();
        long[0] = 200;
        assert_eq!(decode_batch(&long), None, "length past the end");
        assert_eq!(decode_batch(&[]), Some(vec![]));
        assert_eq!(
            decode_header(&encode_header(0, 2, FLAG_REMOTE | FLAG_BATCH, 0)),
            None
        );
    }

    #[test]
    fn greeting_round_trip() {
        let g = Greeting {
            admitted: true,
            accepts_remote: true,
            max_message_size: 424,
            quota: 1 << 20,
            max_messages: 4096,
            owner_pid: 42,
            owner_uid: 1000,
            display: r"\\.\mailslot\App".into(),
        };
        assert_eq!(Greeting::decode(&g.encode()), Some(g.clone()));
        assert_eq!(Greeting::decode(&g.encode()[..39]), None);
        let denied = Greeting {
            admitted: false,
            ..g
        };
        assert!(!Greeting::decode(&denied.encode()).unwrap().admitted);
    }
}
