//! NetBIOS Name Service (RFC 1002 §4.2), UDP port 137.
//!
//! [`NamePacket`] is the parsed form of any name-service packet (header,
//! questions and three resource-record sections); constructors build the
//! packets a B-node or a WINS client sends: [`NamePacket::name_query`],
//! [`NamePacket::positive_query_response`], [`NamePacket::negative_query_response`],
//! [`NamePacket::registration`], [`NamePacket::refresh`], [`NamePacket::release`],
//! [`NamePacket::negative_registration_response`] (defending a name),
//! [`NamePacket::node_status_request`] and [`NamePacket::node_status_response`].
//!
//! Header and RR fields are big-endian. Parsing follows name pointers
//! (`0xC0 0x0C` in registrations) if they point backwards to an uncompressed
//! name. Emitting writes the pointer `0xC00C` for a resource record whose name
//! equals the first question's name (as Windows and Samba do in registrations),
//! the full name otherwise. RDATA of type NB whose length is a multiple of 6 is
//! decoded to addresses, NBSTAT RDATA to a node status; anything else is kept raw.

use std::net::Ipv4Addr;

use crate::cursor::{self, Reader};
use crate::datagram::NodeType;
use crate::error::{Error, Result};
use crate::name::{NetbiosName, QualifiedName};

/// UDP port of the name service.
pub const NAME_SERVICE_PORT: u16 = 137;
/// QCLASS/CLASS IN.
pub const CLASS_IN: u16 = 1;
/// TTL Samba uses for registrations (3 days).
pub const DEFAULT_TTL: u32 = 259_200;

/// Sizes of the fixed parts of a name-service packet (RFC 1002 §4.2.1).
mod field {
    /// NAME_TRN_ID, FLAGS and the four section counts.
    pub(crate) const HEADER_LEN: usize = 12;
    /// QUESTION_TYPE and QUESTION_CLASS after a question's name.
    pub(crate) const QUESTION_TAIL: usize = 4;
    /// RR_TYPE, RR_CLASS, TTL and RDLENGTH after a record's name.
    pub(crate) const RR_TAIL: usize = 10;
    /// A compression pointer in place of a name.
    pub(crate) const POINTER_LEN: usize = 2;
    /// The pointer to the first question's name, right after the header.
    pub(crate) const POINTER_TO_QUESTION: u16 = 0xC000 | HEADER_LEN as u16;
    /// One NB RDATA entry: NB_FLAGS and NB_ADDRESS.
    pub(crate) const NB_ENTRY: usize = 6;
    /// NBSTAT RDATA: NUM_NAMES, then entries of a 16-byte name and NAME_FLAGS.
    pub(crate) const NUM_NAMES: usize = 1;
    pub(crate) const NODE_NAME_ENTRY: usize = 18;
}

open_enum! {
    /// OPCODE of a name-service packet (FLAGS bits 11–14).
    pub enum NsOpcode(u8) {
        /// 0: name query / node status.
        Query = 0,
        /// 5: name registration.
        Registration = 5,
        /// 6: name release.
        Release = 6,
        /// 7: WACK (wait for acknowledgement).
        Wack = 7,
        /// 8: name refresh (what Windows NT sends).
        Refresh = 8,
        /// 9: name refresh (the RFC's alternative code).
        RefreshAlt = 9,
        /// 15: multi-homed name registration.
        MultiHomedRegistration = 15,
    }
}

open_enum! {
    /// Resource-record / question type.
    pub enum RrType(u16) {
        /// 0x0001 A (unused by NetBIOS, seen in redirects).
        A = 0x0001,
        /// 0x0002 NS.
        Ns = 0x0002,
        /// 0x000A NULL (negative responses).
        Null = 0x000A,
        /// 0x0020 NB: NetBIOS general name service.
        Nb = 0x0020,
        /// 0x0021 NBSTAT: node status.
        NbStat = 0x0021,
    }
}

/// FLAGS of a name-service packet (R, OPCODE, NM_FLAGS, RCODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NsFlags(pub u16);

impl NsFlags {
    /// R: response.
    pub const RESPONSE: u16 = 0x8000;
    /// AA: authoritative answer.
    pub const AA: u16 = 0x0400;
    /// TC: truncated.
    pub const TC: u16 = 0x0200;
    /// RD: recursion desired.
    pub const RD: u16 = 0x0100;
    /// RA: recursion available.
    pub const RA: u16 = 0x0080;
    /// B: broadcast.
    pub const BROADCAST: u16 = 0x0010;

    /// Builds flags from an opcode, the other bits and an rcode.
    pub fn new(opcode: NsOpcode, bits: u16, rcode: u8) -> Self {
        Self((u16::from(u8::from(opcode) & 0x0F) << 11) | (bits & 0x87F0) | u16::from(rcode & 0x0F))
    }
    /// Is R set?
    pub fn is_response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }
    /// OPCODE.
    pub fn opcode(self) -> NsOpcode {
        NsOpcode::from(((self.0 >> 11) & 0x0F) as u8)
    }
    /// RCODE (0 ok, 1 FMT_ERR, 2 SRV_ERR, 3 NAM_ERR, 4 IMP_ERR, 5 RFS_ERR, 6 ACT_ERR, 7 CFT_ERR).
    pub fn rcode(self) -> u8 {
        (self.0 & 0x0F) as u8
    }
    /// Is the bit (one of the constants) set?
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// A question entry (JSON: `name`, `suffix`, `scope`?, `type`, `class`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Question {
    /// QUESTION_NAME.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub name: QualifiedName,
    /// QUESTION_TYPE (NB or NBSTAT).
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub qtype: RrType,
    /// QUESTION_CLASS (IN).
    #[cfg_attr(feature = "serde", serde(rename = "class"))]
    pub qclass: u16,
}

/// One address of an NB record: NB_FLAGS and IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NbAddress {
    /// NB_FLAGS: G 0x8000, ONT 0x6000 (B 0, P 0x2000, M 0x4000, H 0x6000).
    pub flags: u16,
    /// NB_ADDRESS.
    pub ip: Ipv4Addr,
}

impl NbAddress {
    /// An address entry for a unique or group name owned by a node of `node_type`.
    pub fn new(ip: Ipv4Addr, group: bool, node_type: NodeType) -> Self {
        let g = if group { 0x8000 } else { 0 };
        Self {
            flags: g | (u16::from(u8::from(node_type) & 3) << 13),
            ip,
        }
    }
    /// G bit.
    pub fn is_group(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// Owner node type.
    pub fn node_type(&self) -> NodeType {
        NodeType::from(((self.flags >> 13) & 3) as u8)
    }
}

/// One entry of a node status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeStatusName {
    /// The 16-byte name.
    pub name: NetbiosName,
    /// NAME_FLAGS: G 0x8000, ONT 0x6000, DRG 0x1000, CNF 0x0800, ACT 0x0400, PRM 0x0200.
    pub flags: u16,
}

/// RDATA of a node status response (JSON: `node_names`, and `mac`, the
/// first six bytes of the statistics, when there are six).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NodeStatus {
    /// The node's name table.
    #[cfg_attr(feature = "serde", serde(rename = "node_names"))]
    pub names: Vec<NodeStatusName>,
    /// The statistics block (normally 46 bytes starting with the MAC address).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "mac",
            serialize_with = "crate::ser::mac",
            skip_serializing_if = "crate::ser::no_mac"
        )
    )]
    pub statistics: Vec<u8>,
}

/// RDATA (JSON: `{"addresses": […]}`, the [`NodeStatus`] entries, or `{"rdata_hex": …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum RData {
    /// NB: address entries.
    #[cfg_attr(feature = "serde", serde(rename = "addresses"))]
    Nb(Vec<NbAddress>),
    /// Anything else, as bytes (e.g. NULL records, WACK).
    #[cfg_attr(
        feature = "serde",
        serde(rename = "rdata_hex", serialize_with = "crate::ser::hex")
    )]
    Raw(Vec<u8>),
    /// NBSTAT: node status.
    #[cfg_attr(feature = "serde", serde(untagged))]
    NodeStatus(NodeStatus),
}

impl RData {
    fn len(&self) -> usize {
        match self {
            Self::Nb(a) => field::NB_ENTRY * a.len(),
            Self::NodeStatus(s) => {
                field::NUM_NAMES + field::NODE_NAME_ENTRY * s.names.len() + s.statistics.len()
            }
            Self::Raw(b) => b.len(),
        }
    }
}

/// A resource record (JSON: `name`, `suffix`, `scope`?, `type`, `class`,
/// `ttl`, then `addresses`, `node_names` or `rdata_hex`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ResourceRecord {
    /// RR_NAME.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub name: QualifiedName,
    /// RR_TYPE.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub rr_type: RrType,
    /// RR_CLASS (IN).
    pub class: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rdata: RData,
}

/// A name-service packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePacket {
    /// NAME_TRN_ID.
    pub trn_id: u16,
    /// FLAGS.
    pub flags: NsFlags,
    /// Question section.
    pub questions: Vec<Question>,
    /// Answer section.
    pub answers: Vec<ResourceRecord>,
    /// Authority section.
    pub authority: Vec<ResourceRecord>,
    /// Additional section.
    pub additional: Vec<ResourceRecord>,
}

impl NamePacket {
    /// Name query for `name`: FLAGS 0x0110 (RD|B) when `broadcast`, 0x0100
    /// (unicast to a WINS server) otherwise; QTYPE NB, QCLASS IN.
    pub fn name_query(trn_id: u16, name: QualifiedName, broadcast: bool) -> Self {
        let b = if broadcast { NsFlags::BROADCAST } else { 0 };
        Self {
            trn_id,
            flags: NsFlags::new(NsOpcode::Query, NsFlags::RD | b, 0),
            questions: vec![Question {
                name,
                qtype: RrType::Nb,
                qclass: CLASS_IN,
            }],
            answers: vec![],
            authority: vec![],
            additional: vec![],
        }
    }

    fn one_answer(trn_id: u16, flags: NsFlags, rr: ResourceRecord) -> Self {
        Self {
            trn_id,
            flags,
            questions: vec![],
            answers: vec![rr],
            authority: vec![],
            additional: vec![],
        }
    }

    /// Positive name query response: FLAGS 0x8580 (R|AA|RD|RA, as end nodes send),
    /// one NB answer with the addresses.
    pub fn positive_query_response(
        trn_id: u16,
        name: QualifiedName,
        ttl: u32,
        addresses: Vec<NbAddress>,
    ) -> Self {
        Self::one_answer(
            trn_id,
            NsFlags::new(
                NsOpcode::Query,
                NsFlags::RESPONSE | NsFlags::AA | NsFlags::RD | NsFlags::RA,
                0,
            ),
            ResourceRecord {
                name,
                rr_type: RrType::Nb,
                class: CLASS_IN,
                ttl,
                rdata: RData::Nb(addresses),
            },
        )
    }

    /// Negative name query response: FLAGS 0x8583 (RCODE NAM_ERR), a NULL record, TTL 0.
    pub fn negative_query_response(trn_id: u16, name: QualifiedName) -> Self {
        Self::one_answer(
            trn_id,
            NsFlags::new(
                NsOpcode::Query,
                NsFlags::RESPONSE | NsFlags::AA | NsFlags::RD | NsFlags::RA,
                3,
            ),
            ResourceRecord {
                name,
                rr_type: RrType::Null,
                class: CLASS_IN,
                ttl: 0,
                rdata: RData::Raw(vec![]),
            },
        )
    }

    fn with_additional(
        trn_id: u16,
        flags: NsFlags,
        name: QualifiedName,
        ttl: u32,
        addr: NbAddress,
    ) -> Self {
        Self {
            trn_id,
            flags,
            questions: vec![Question {
                name: name.clone(),
                qtype: RrType::Nb,
                qclass: CLASS_IN,
            }],
            answers: vec![],
            authority: vec![],
            additional: vec![ResourceRecord {
                name,
                rr_type: RrType::Nb,
                class: CLASS_IN,
                ttl,
                rdata: RData::Nb(vec![addr]),
            }],
        }
    }

    /// Name registration request: FLAGS 0x2910 broadcast (B-node) or 0x2900 to
    /// a WINS server; the question plus an additional NB record (name pointer
    /// `C0 0C`) with `ttl` and `addr`.
    pub fn registration(
        trn_id: u16,
        name: QualifiedName,
        ttl: u32,
        addr: NbAddress,
        broadcast: bool,
    ) -> Self {
        let b = if broadcast { NsFlags::BROADCAST } else { 0 };
        Self::with_additional(
            trn_id,
            NsFlags::new(NsOpcode::Registration, NsFlags::RD | b, 0),
            name,
            ttl,
            addr,
        )
    }

    /// Name refresh request to a WINS server: opcode 8 (as Windows NT), FLAGS 0x4000.
    pub fn refresh(trn_id: u16, name: QualifiedName, ttl: u32, addr: NbAddress) -> Self {
        Self::with_additional(
            trn_id,
            NsFlags::new(NsOpcode::Refresh, 0, 0),
            name,
            ttl,
            addr,
        )
    }

    /// Name release request: opcode 6, FLAGS 0x3010 broadcast or 0x3000 unicast, TTL 0.
    pub fn release(trn_id: u16, name: QualifiedName, addr: NbAddress, broadcast: bool) -> Self {
        let b = if broadcast { NsFlags::BROADCAST } else { 0 };
        Self::with_additional(trn_id, NsFlags::new(NsOpcode::Release, b, 0), name, 0, addr)
    }

    /// Negative registration response (defending a unique name we own):
    /// FLAGS 0xAD86 (R, opcode 5, AA|RD|RA, RCODE ACT_ERR 6), answer = the name
    /// with the owner's address, TTL 0. Send it unicast to the claimant.
    pub fn negative_registration_response(
        trn_id: u16,
        name: QualifiedName,
        owner: NbAddress,
    ) -> Self {
        Self::one_answer(
            trn_id,
            NsFlags::new(
                NsOpcode::Registration,
                NsFlags::RESPONSE | NsFlags::AA | NsFlags::RD | NsFlags::RA,
                6,
            ),
            ResourceRecord {
                name,
                rr_type: RrType::Nb,
                class: CLASS_IN,
                ttl: 0,
                rdata: RData::Nb(vec![owner]),
            },
        )
    }

    /// Node status request for `name` (usually `*`): FLAGS 0, QTYPE NBSTAT.
    pub fn node_status_request(trn_id: u16, name: QualifiedName) -> Self {
        Self {
            trn_id,
            flags: NsFlags(0),
            questions: vec![Question {
                name,
                qtype: RrType::NbStat,
                qclass: CLASS_IN,
            }],
            answers: vec![],
            authority: vec![],
            additional: vec![],
        }
    }

    /// Node status response: FLAGS 0x8400 (R|AA), one NBSTAT answer, TTL 0.
    pub fn node_status_response(trn_id: u16, name: QualifiedName, status: NodeStatus) -> Self {
        Self::one_answer(
            trn_id,
            NsFlags::new(NsOpcode::Query, NsFlags::RESPONSE | NsFlags::AA, 0),
            ResourceRecord {
                name,
                rr_type: RrType::NbStat,
                class: CLASS_IN,
                ttl: 0,
                rdata: RData::NodeStatus(status),
            },
        )
    }

    /// Parses a name-service packet (the UDP payload). Trailing bytes are ignored.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let trn_id = r.be16()?;
        let flags = NsFlags(r.be16()?);
        let qd = r.be16()?;
        let an = r.be16()?;
        let ns = r.be16()?;
        let ar = r.be16()?;
        let mut questions = Vec::new();
        for _ in 0..qd {
            let name = QualifiedName::read(&mut r, true)?;
            let qtype = RrType::from(r.be16()?);
            let qclass = r.be16()?;
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (n, sec) in [an, ns, ar].into_iter().zip(sections.iter_mut()) {
            for _ in 0..n {
                sec.push(read_rr(&mut r)?);
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Self {
            trn_id,
            flags,
            questions,
            answers,
            authority,
            additional,
        })
    }

    fn pointer_target(&self) -> Option<&QualifiedName> {
        self.questions.first().map(|q| &q.name)
    }

    fn rr_name_len(&self, rr: &ResourceRecord) -> usize {
        if self.pointer_target() == Some(&rr.name) {
            field::POINTER_LEN
        } else {
            rr.name.encoded_len()
        }
    }

    fn records(&self) -> impl Iterator<Item = &ResourceRecord> {
        self.answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN
            + self
                .questions
                .iter()
                .map(|q| q.name.encoded_len() + field::QUESTION_TAIL)
                .sum::<usize>()
            + self
                .records()
                .map(|rr| self.rr_name_len(rr) + field::RR_TAIL + rr.rdata.len())
                .sum::<usize>()
    }

    /// Writes the packet into `buf[..buffer_len()]`, returns the length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        for (n, what) in [
            (self.questions.len(), "questions"),
            (self.answers.len(), "answers"),
            (self.authority.len(), "authority records"),
            (self.additional.len(), "additional records"),
        ] {
            if n > usize::from(u16::MAX) {
                return Err(Error::TooLong {
                    field: what,
                    len: n,
                });
            }
        }
        for q in &self.questions {
            q.name.check()?;
        }
        for rr in self.records() {
            rr.name.check()?;
            if rr.rdata.len() > usize::from(u16::MAX) {
                return Err(Error::TooLong {
                    field: "RDATA",
                    len: rr.rdata.len(),
                });
            }
            match &rr.rdata {
                RData::NodeStatus(s) if s.names.len() > 255 => {
                    return Err(Error::TooLong {
                        field: "node status names",
                        len: s.names.len(),
                    })
                }
                RData::Nb(_) if rr.rr_type != RrType::Nb => {
                    return Err(Error::Inconsistent {
                        what: "NB RDATA in a non-NB record",
                    })
                }
                RData::NodeStatus(_) if rr.rr_type != RrType::NbStat => {
                    return Err(Error::Inconsistent {
                        what: "node status RDATA in a non-NBSTAT record",
                    })
                }
                _ => {}
            }
        }
        cursor::emit(buf, self.buffer_len(), |w| {
            w.be16(self.trn_id);
            w.be16(self.flags.0);
            w.be16(self.questions.len() as u16);
            w.be16(self.answers.len() as u16);
            w.be16(self.authority.len() as u16);
            w.be16(self.additional.len() as u16);
            for q in &self.questions {
                q.name.write(w);
                w.be16(q.qtype.into());
                w.be16(q.qclass);
            }
            let target = self.pointer_target();
            for rr in self.records() {
                if target == Some(&rr.name) {
                    w.be16(field::POINTER_TO_QUESTION);
                } else {
                    rr.name.write(w);
                }
                w.be16(rr.rr_type.into());
                w.be16(rr.class);
                w.be32(rr.ttl);
                w.be16(rr.rdata.len() as u16);
                match &rr.rdata {
                    RData::Nb(addrs) => {
                        for a in addrs {
                            w.be16(a.flags);
                            w.bytes(&a.ip.octets());
                        }
                    }
                    RData::NodeStatus(s) => {
                        w.u8(s.names.len() as u8);
                        for n in &s.names {
                            w.bytes(n.name.as_raw());
                            w.be16(n.flags);
                        }
                        w.bytes(&s.statistics);
                    }
                    RData::Raw(b) => w.bytes(b),
                }
            }
        })
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

fn read_rr(r: &mut Reader<'_>) -> Result<ResourceRecord> {
    let name = QualifiedName::read(r, true)?;
    let rr_type = RrType::from(r.be16()?);
    let class = r.be16()?;
    let ttl = r.be32()?;
    let rdlen_at = r.pos();
    let rdlen = usize::from(r.be16()?);
    let rd = r.take(rdlen)?;
    let rdata = match rr_type {
        RrType::Nb if rdlen % field::NB_ENTRY == 0 => RData::Nb(
            rd.chunks_exact(field::NB_ENTRY)
                .map(|c| NbAddress {
                    flags: u16::from_be_bytes([c[0], c[1]]),
                    ip: Ipv4Addr::new(c[2], c[3], c[4], c[5]),
                })
                .collect(),
        ),
        RrType::NbStat => {
            let n = usize::from(*rd.first().ok_or(Error::BadLength {
                offset: rdlen_at,
                field: "RDLENGTH",
            })?);
            let names_end = field::NUM_NAMES + field::NODE_NAME_ENTRY * n;
            if names_end > rd.len() {
                return Err(Error::BadLength {
                    offset: rdlen_at,
                    field: "NUM_NAMES",
                });
            }
            let names = rd[field::NUM_NAMES..names_end]
                .chunks_exact(field::NODE_NAME_ENTRY)
                .map(|c| {
                    let mut raw = [0u8; 16];
                    raw.copy_from_slice(&c[..16]);
                    NodeStatusName {
                        name: NetbiosName::from_raw(raw),
                        flags: u16::from_be_bytes([c[16], c[17]]),
                    }
                })
                .collect();
            RData::NodeStatus(NodeStatus {
                names,
                statistics: rd[names_end..].to_vec(),
            })
        }
        _ => RData::Raw(rd.to_vec()),
    };
    Ok(ResourceRecord {
        name,
        rr_type,
        class,
        ttl,
        rdata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str, suffix: u8) -> QualifiedName {
        NetbiosName::new(name, suffix).unwrap().into()
    }

    #[test]
    fn query_flags() {
        let p = NamePacket::name_query(0, q("TEST1", 0x20), true);
        assert_eq!(p.flags.0, 0x0110);
        let v = p.to_vec().unwrap();
        assert_eq!(v.len(), 50);
        assert_eq!(NamePacket::parse(&v).unwrap(), p);
        assert_eq!(NamePacket::name_query(0, q("A", 0), false).flags.0, 0x0100);
    }

    #[test]
    fn registration_uses_pointer() {
        let addr = NbAddress::new(Ipv4Addr::new(10, 99, 0, 1), false, NodeType::B);
        let p = NamePacket::registration(9, q("CLIENT", 0), DEFAULT_TTL, addr, true);
        assert_eq!(p.flags.0, 0x2910);
        let v = p.to_vec().unwrap();
        assert_eq!(&v[12 + 34 + 4..12 + 34 + 6], &[0xC0, 0x0C]);
        assert_eq!(v.len(), 12 + 38 + 2 + 10 + 6);
        assert_eq!(NamePacket::parse(&v).unwrap(), p);
        let neg = NamePacket::negative_registration_response(9, q("CLIENT", 0), addr);
        assert_eq!(neg.flags.0, 0xAD86);
        assert_eq!(neg.flags.rcode(), 6);
        assert_eq!(neg.flags.opcode(), NsOpcode::Registration);
        let v = neg.to_vec().unwrap();
        assert_eq!(NamePacket::parse(&v).unwrap(), neg);
        let rel = NamePacket::release(1, q("CLIENT", 0), addr, true);
        assert_eq!(rel.flags.0, 0x3010);
        assert_eq!(
            NamePacket::refresh(1, q("C", 0), 60, addr).flags.opcode(),
            NsOpcode::Refresh
        );
    }

    #[test]
    fn node_status() {
        let st = NodeStatus {
            names: vec![NodeStatusName {
                name: NetbiosName::new("SMBPEER", 0x20).unwrap(),
                flags: 0x0400,
            }],
            statistics: vec![0; 46],
        };
        let p = NamePacket::node_status_response(3, NetbiosName::WILDCARD.into(), st);
        let v = p.to_vec().unwrap();
        assert_eq!(
            u16::from_be_bytes([v[12 + 34 + 8], v[12 + 34 + 9]]),
            18 + 47
        );
        assert_eq!(NamePacket::parse(&v).unwrap(), p);
        let req = NamePacket::node_status_request(3, NetbiosName::WILDCARD.into());
        assert_eq!(&req.to_vec().unwrap()[13..17], b"CKAA");
    }

    #[test]
    fn negative_and_bad() {
        let p = NamePacket::negative_query_response(5, q("NOBODY", 0));
        assert_eq!(p.flags.0, 0x8583);
        let v = p.to_vec().unwrap();
        assert_eq!(NamePacket::parse(&v).unwrap(), p);
        for n in 0..v.len() {
            assert!(NamePacket::parse(&v[..n]).is_err());
        }
        // forward pointer
        let mut bad = NamePacket::registration(
            1,
            q("A", 0),
            1,
            NbAddress::new(Ipv4Addr::LOCALHOST, false, NodeType::B),
            true,
        )
        .to_vec()
        .unwrap();
        bad[51] = 0x40;
        assert!(matches!(
            NamePacket::parse(&bad),
            Err(Error::BadPointer { .. })
        ));
    }
}
