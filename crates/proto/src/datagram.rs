//! NetBIOS Datagram Service header (RFC 1002 §4.4), UDP port 138.
//!
//! All header fields are big-endian. [`Datagram`] is a zero-copy view of the
//! fixed header; [`DatagramRepr`] is the parsed form of a whole datagram;
//! [`MailslotMessage`] is a datagram whose user data is a mailslot write.
//!
//! # What receivers accept
//! - DIRECT_UNIQUE (0x10), DIRECT_GROUP (0x11) and BROADCAST (0x12) for any
//!   destination name: the MSG_TYPE does not always match the name type.
//! - The reserved FLAGS bits (0xF0) are masked away.
//! - DGM_LENGTH is ignored: the user data runs to the end of the UDP payload
//!   (Samba does the same). The SMB inside is then bounded by DataOffset/DataCount.
//! - **Fragments are rejected**, not reassembled: a datagram with M=1 (more
//!   fragments), F=0 (not the first) or a non-zero PACKET_OFFSET gives
//!   [`Error::Fragmented`]. Windows and Samba never fragment (user data is capped
//!   well below the 576-byte limit that would require it), so reassembly would be
//!   untested code; a caller sees a clear error instead.

use std::net::Ipv4Addr;

use crate::cursor::{self, Reader};
use crate::error::{Error, Result};
use crate::name::QualifiedName;
use crate::smb::MailslotWriteRepr;

/// UDP port of the datagram service.
pub const DATAGRAM_PORT: u16 = 138;

open_enum! {
    /// MSG_TYPE of a datagram.
    pub enum MsgType(u8) {
        /// 0x10: to a unique name.
        DirectUnique = 0x10,
        /// 0x11: to a group name.
        DirectGroup = 0x11,
        /// 0x12: NetBIOS broadcast (to `*`).
        Broadcast = 0x12,
        /// 0x13: datagram error.
        Error = 0x13,
        /// 0x14: NBDD query request.
        QueryRequest = 0x14,
        /// 0x15: NBDD positive query response.
        PositiveQueryResponse = 0x15,
        /// 0x16: NBDD negative query response.
        NegativeQueryResponse = 0x16,
    }
}

impl MsgType {
    /// Does this type carry source/destination names and user data?
    pub fn has_user_data(self) -> bool {
        matches!(
            self,
            Self::DirectUnique | Self::DirectGroup | Self::Broadcast
        )
    }
    /// Is it one of the three NBDD query types?
    pub fn is_query(self) -> bool {
        matches!(
            self,
            Self::QueryRequest | Self::PositiveQueryResponse | Self::NegativeQueryResponse
        )
    }
}

open_enum! {
    /// ERROR_CODE of a 0x13 datagram.
    pub enum DatagramErrorCode(u8) {
        /// 0x82: destination name not present.
        DestinationNameNotPresent = 0x82,
        /// 0x83: invalid source name format.
        InvalidSourceName = 0x83,
        /// 0x84: invalid destination name format.
        InvalidDestinationName = 0x84,
    }
}

open_enum! {
    /// Sending node type (the SNT bits of FLAGS).
    pub enum NodeType(u8) {
        /// B-node.
        B = 0,
        /// P-node.
        P = 1,
        /// M-node (nmbd).
        M = 2,
        /// 11b: NBDD per RFC 1002; Microsoft uses it for H-nodes.
        H = 3,
    }
}

/// FLAGS byte with the reserved bits (0xF0) masked off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramFlags(u8);

impl DatagramFlags {
    /// M: more fragments follow.
    pub const MORE: u8 = 0x01;
    /// F: first fragment.
    pub const FIRST: u8 = 0x02;

    /// An unfragmented datagram (F=1, M=0) from a node of `node_type`:
    /// B → 0x02, M → 0x0A (nmbd), H → 0x0E (Windows).
    pub fn new(node_type: NodeType) -> Self {
        Self(Self::FIRST | ((u8::from(node_type) & 3) << 2))
    }
    /// From a wire byte; reserved bits are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & 0x0F)
    }
    /// The byte (reserved bits 0).
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// The sending node type.
    pub fn node_type(self) -> NodeType {
        NodeType::from((self.0 >> 2) & 3)
    }
    /// F bit.
    pub const fn first(self) -> bool {
        self.0 & Self::FIRST != 0
    }
    /// M bit.
    pub const fn more(self) -> bool {
        self.0 & Self::MORE != 0
    }
}

impl Default for DatagramFlags {
    /// 0x02: B-node, unfragmented.
    fn default() -> Self {
        Self::new(NodeType::B)
    }
}

/// Where the header fields are (RFC 1002 §4.4.1).
mod field {
    use crate::cursor::Field;
    pub(crate) const MSG_TYPE: usize = 0;
    pub(crate) const FLAGS: usize = 1;
    pub(crate) const DGM_ID: Field = 2..4;
    pub(crate) const SOURCE_IP: Field = 4..8;
    pub(crate) const SOURCE_PORT: Field = 8..10;
    /// The header every MSG_TYPE has.
    pub(crate) const HEADER_LEN: usize = SOURCE_PORT.end;
    /// 0x13 only.
    pub(crate) const ERROR_CODE: usize = HEADER_LEN;
    /// A whole 0x13 datagram.
    pub(crate) const ERROR_LEN: usize = ERROR_CODE + 1;
    /// 0x14/0x15/0x16 only: DESTINATION_NAME.
    pub(crate) const QUERY_NAME: usize = HEADER_LEN;
    /// 0x10/0x11/0x12 only: the bytes after PACKET_OFFSET.
    pub(crate) const DGM_LENGTH: Field = 10..12;
    /// 0x10/0x11/0x12 only.
    pub(crate) const PACKET_OFFSET: Field = 12..14;
    /// 0x10/0x11/0x12: the two names, then the user data.
    pub(crate) const NAMES: usize = PACKET_OFFSET.end;
}

/// Zero-copy view of a datagram header (smoltcp style).
#[derive(Debug, Clone)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps a buffer without checking; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }
    /// Wraps a buffer after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let d = Self::new_unchecked(buffer);
        d.check_len()?;
        Ok(d)
    }
    /// Ensures the fixed header for this MSG_TYPE is present (10 bytes; 11 for
    /// ERROR; 14 for data datagrams). After it, accessors for those fields do not panic.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        let need = match b.first().map(|&t| MsgType::from(t)) {
            Some(t) if t.has_user_data() => field::NAMES,
            Some(MsgType::Error) => field::ERROR_LEN,
            _ => field::HEADER_LEN,
        };
        cursor::check_len(b, need)
    }
    fn be16(&self, field: cursor::Field) -> u16 {
        cursor::be16_at(self.buffer.as_ref(), field)
    }
    /// MSG_TYPE.
    pub fn msg_type(&self) -> MsgType {
        MsgType::from(self.buffer.as_ref()[field::MSG_TYPE])
    }
    /// FLAGS, reserved bits masked.
    pub fn flags(&self) -> DatagramFlags {
        DatagramFlags::from_bits(self.buffer.as_ref()[field::FLAGS])
    }
    /// DGM_ID.
    pub fn dgm_id(&self) -> u16 {
        self.be16(field::DGM_ID)
    }
    /// SOURCE_IP.
    pub fn source_ip(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SOURCE_IP];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// SOURCE_PORT.
    pub fn source_port(&self) -> u16 {
        self.be16(field::SOURCE_PORT)
    }
    /// DGM_LENGTH (data datagrams only; informational).
    pub fn dgm_length(&self) -> u16 {
        self.be16(field::DGM_LENGTH)
    }
    /// PACKET_OFFSET (data datagrams only).
    pub fn packet_offset(&self) -> u16 {
        self.be16(field::PACKET_OFFSET)
    }
    /// ERROR_CODE (ERROR datagrams only).
    pub fn error_code(&self) -> DatagramErrorCode {
        DatagramErrorCode::from(self.buffer.as_ref()[field::ERROR_CODE])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
    /// Sets DGM_ID (e.g. to vary it when resending the same datagram).
    pub fn set_dgm_id(&mut self, id: u16) {
        self.buffer.as_mut()[field::DGM_ID].copy_from_slice(&id.to_be_bytes());
    }
}

/// What follows the 10-byte header prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramBody<'a> {
    /// 0x10/0x11/0x12: names and user data.
    Data {
        /// SOURCE_NAME.
        source: QualifiedName,
        /// DESTINATION_NAME.
        destination: QualifiedName,
        /// USER_DATA (normally an SMB mailslot write).
        user_data: &'a [u8],
    },
    /// 0x13: ERROR_CODE.
    Error(DatagramErrorCode),
    /// 0x14/0x15/0x16: DESTINATION_NAME.
    Query(QualifiedName),
}

/// A parsed datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRepr<'a> {
    /// MSG_TYPE (never `Unknown` after parse).
    pub msg_type: MsgType,
    /// FLAGS; for data datagrams always F=1, M=0.
    pub flags: DatagramFlags,
    /// DGM_ID.
    pub dgm_id: u16,
    /// SOURCE_IP.
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT.
    pub source_port: u16,
    /// The rest, matching `msg_type`.
    pub body: DatagramBody<'a>,
}

impl<'a> DatagramRepr<'a> {
    /// Parses a datagram (the UDP payload). See the module docs for what is
    /// accepted; fragments give [`Error::Fragmented`].
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let d = Datagram::new_checked(buf)?;
        let msg_type = d.msg_type();
        let flags = d.flags();
        let body = match msg_type {
            MsgType::Unknown(t) => {
                return Err(Error::UnknownMsgType {
                    offset: 0,
                    msg_type: t,
                })
            }
            t if t.has_user_data() => {
                let (source, destination, user_data) = parse_data_body(&d, buf)?;
                DatagramBody::Data {
                    source,
                    destination,
                    user_data,
                }
            }
            MsgType::Error => DatagramBody::Error(d.error_code()),
            _ => {
                let mut r = Reader::at(buf, field::QUERY_NAME);
                DatagramBody::Query(QualifiedName::read(&mut r, false)?)
            }
        };
        Ok(DatagramRepr {
            msg_type,
            flags,
            dgm_id: d.dgm_id(),
            source_ip: d.source_ip(),
            source_port: d.source_port(),
            body,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match &self.body {
            DatagramBody::Data {
                source,
                destination,
                user_data,
            } => field::NAMES + source.encoded_len() + destination.encoded_len() + user_data.len(),
            DatagramBody::Error(_) => field::ERROR_LEN,
            DatagramBody::Query(n) => field::QUERY_NAME + n.encoded_len(),
        }
    }

    /// Writes the datagram into `buf[..buffer_len()]`, returns the length.
    /// DGM_LENGTH is set to the bytes after PACKET_OFFSET, PACKET_OFFSET to 0.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let consistent = match &self.body {
            DatagramBody::Data { .. } => self.msg_type.has_user_data(),
            DatagramBody::Error(_) => self.msg_type == MsgType::Error,
            DatagramBody::Query(_) => self.msg_type.is_query(),
        };
        if !consistent {
            return Err(Error::Inconsistent {
                what: "msg_type does not match the body",
            });
        }
        if self.msg_type.has_user_data() && (self.flags.more() || !self.flags.first()) {
            return Err(Error::Inconsistent {
                what: "fragment flags on an unfragmented datagram",
            });
        }
        let len = self.buffer_len();
        let dgm_length = match &self.body {
            DatagramBody::Data {
                source,
                destination,
                ..
            } => {
                source.check()?;
                destination.check()?;
                dgm_length(len)?
            }
            DatagramBody::Query(n) => {
                n.check()?;
                0
            }
            DatagramBody::Error(_) => 0,
        };
        cursor::emit(buf, len, |w| {
            w.u8(self.msg_type.into());
            w.u8(self.flags.bits());
            w.be16(self.dgm_id);
            w.bytes(&self.source_ip.octets());
            w.be16(self.source_port);
            match &self.body {
                DatagramBody::Data {
                    source,
                    destination,
                    user_data,
                } => {
                    w.be16(dgm_length);
                    w.be16(0); // PACKET_OFFSET
                    source.write(w);
                    destination.write(w);
                    w.bytes(user_data);
                }
                DatagramBody::Error(code) => w.u8((*code).into()),
                DatagramBody::Query(n) => n.write(w),
            }
        })
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

/// DGM_LENGTH of a data datagram `len` bytes long: the bytes after PACKET_OFFSET.
fn dgm_length(len: usize) -> Result<u16> {
    u16::try_from(len - field::NAMES).map_err(|_| Error::TooLong {
        field: "datagram",
        len,
    })
}

/// Fragment check, then the two names and the user data of a 0x10/0x11/0x12 datagram.
fn parse_data_body<'a>(
    d: &Datagram<&'a [u8]>,
    buf: &'a [u8],
) -> Result<(QualifiedName, QualifiedName, &'a [u8])> {
    let flags = d.flags();
    if flags.more() || !flags.first() || d.packet_offset() != 0 {
        return Err(Error::Fragmented {
            offset: field::FLAGS,
            flags: buf[field::FLAGS],
        });
    }
    let mut r = Reader::at(buf, field::NAMES);
    let source = QualifiedName::read(&mut r, false)?;
    let destination = QualifiedName::read(&mut r, false)?;
    Ok((source, destination, r.rest()))
}

/// A NetBIOS datagram carrying a mailslot write: the usual thing on UDP 138.
///
/// Build one with [`MailslotMessage::new`] and adjust the public fields, then
/// [`emit`](Self::emit)/[`to_vec`](Self::to_vec); parse one with [`MailslotMessage::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotMessage<'a> {
    /// DIRECT_UNIQUE, DIRECT_GROUP or BROADCAST.
    pub msg_type: MsgType,
    /// FLAGS (F=1, M=0; node type).
    pub flags: DatagramFlags,
    /// DGM_ID.
    pub dgm_id: u16,
    /// SOURCE_IP (the sender's IPv4 address).
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT (138).
    pub source_port: u16,
    /// Sender's NetBIOS name (normally `COMPUTER<00>`).
    pub source: QualifiedName,
    /// Destination NetBIOS name.
    pub destination: QualifiedName,
    /// The SMB mailslot write.
    pub write: MailslotWriteRepr<'a>,
}

impl<'a> MailslotMessage<'a> {
    /// A message with B-node flags (0x02), source port 138 and the given fields.
    pub fn new(
        msg_type: MsgType,
        dgm_id: u16,
        source_ip: Ipv4Addr,
        source: QualifiedName,
        destination: QualifiedName,
        write: MailslotWriteRepr<'a>,
    ) -> Self {
        MailslotMessage {
            msg_type,
            flags: DatagramFlags::default(),
            dgm_id,
            source_ip,
            source_port: DATAGRAM_PORT,
            source,
            destination,
            write,
        }
    }

    /// Parses a datagram and the mailslot write in it. Error offsets are from
    /// the start of the datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let d = Datagram::new_checked(buf)?;
        let msg_type = d.msg_type();
        if !msg_type.has_user_data() {
            // Same errors as DatagramRepr::parse for bad input, else NoUserData.
            DatagramRepr::parse(buf)?;
            return Err(Error::NoUserData {
                offset: 0,
                msg_type: msg_type.into(),
            });
        }
        let (source, destination, user_data) = parse_data_body(&d, buf)?;
        let base = buf.len() - user_data.len();
        let write = MailslotWriteRepr::parse(user_data).map_err(|e| e.shifted(base))?;
        Ok(MailslotMessage {
            msg_type,
            flags: d.flags(),
            dgm_id: d.dgm_id(),
            source_ip: d.source_ip(),
            source_port: d.source_port(),
            source,
            destination,
            write,
        })
    }

    fn header_len(&self) -> usize {
        field::NAMES + self.source.encoded_len() + self.destination.encoded_len()
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.write.buffer_len()
    }

    /// Writes the datagram (header, names, SMB) into `buf[..buffer_len()]`.
    /// Does not apply the network size limit: call
    /// [`MailslotWriteRepr::check_network_size`] before sending new messages.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall {
                need: len,
                have: buf.len(),
            });
        }
        if !self.msg_type.has_user_data() {
            return Err(Error::Inconsistent {
                what: "a mailslot message needs MSG_TYPE 0x10, 0x11 or 0x12",
            });
        }
        let h = self.header_len();
        let (head, tail) = buf.split_at_mut(h);
        self.write.emit(tail)?;
        // Emit the header with an empty body, then patch DGM_LENGTH.
        let d = DatagramRepr {
            msg_type: self.msg_type,
            flags: self.flags,
            dgm_id: self.dgm_id,
            source_ip: self.source_ip,
            source_port: self.source_port,
            body: DatagramBody::Data {
                source: self.source.clone(),
                destination: self.destination.clone(),
                user_data: &[],
            },
        };
        d.emit(head)?;
        head[field::DGM_LENGTH].copy_from_slice(&dgm_length(len)?.to_be_bytes());
        Ok(len)
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NetbiosName;

    fn sample() -> MailslotMessage<'static> {
        MailslotMessage::new(
            MsgType::DirectUnique,
            0x1234,
            Ipv4Addr::new(10, 99, 0, 1),
            NetbiosName::new("CLIENT", 0).unwrap().into(),
            NetbiosName::new("SMBPEER", 0).unwrap().into(),
            MailslotWriteRepr {
                name: b"\\MAILSLOT\\demo\\hello",
                priority: 5,
                class: 2,
                data: b"hi from ms-a",
            },
        )
    }

    #[test]
    fn construct_and_parse() {
        let m = sample();
        let mut buf = vec![0xa5; m.buffer_len()];
        assert_eq!(m.emit(&mut buf).unwrap(), buf.len());
        assert_eq!(&buf[..4], &[0x10, 0x02, 0x12, 0x34]);
        assert_eq!(&buf[4..10], &[10, 99, 0, 1, 0, 138]);
        assert_eq!(
            usize::from(u16::from_be_bytes([buf[10], buf[11]])),
            buf.len() - 14
        );
        assert_eq!(&buf[12..14], &[0, 0]);
        assert_eq!(MailslotMessage::parse(&buf).unwrap(), m);
        let view = Datagram::new_checked(&buf[..]).unwrap();
        assert_eq!(view.dgm_id(), 0x1234);
        assert_eq!(view.flags().node_type(), NodeType::B);
    }

    #[test]
    fn lenient_header() {
        let m = sample();
        let mut buf = m.to_vec().unwrap();
        buf[1] = 0xFE; // reserved bits set, H-node, F=1
        buf[10] = 0; // wrong DGM_LENGTH
        buf[11] = 1;
        let p = MailslotMessage::parse(&buf).unwrap();
        assert_eq!(p.flags.bits(), 0x0E);
        assert_eq!(p.flags.node_type(), NodeType::H);
        for t in [0x11, 0x12] {
            buf[0] = t;
            assert_eq!(
                MailslotMessage::parse(&buf).unwrap().msg_type,
                MsgType::from(t)
            );
        }
    }

    #[test]
    fn fragments_rejected() {
        let mut buf = sample().to_vec().unwrap();
        buf[1] = 0x03;
        assert_eq!(
            DatagramRepr::parse(&buf),
            Err(Error::Fragmented {
                offset: 1,
                flags: 0x03
            })
        );
        buf[1] = 0x00;
        assert!(matches!(
            DatagramRepr::parse(&buf),
            Err(Error::Fragmented { .. })
        ));
        buf[1] = 0x02;
        buf[13] = 8;
        assert!(matches!(
            DatagramRepr::parse(&buf),
            Err(Error::Fragmented { .. })
        ));
    }

    #[test]
    fn error_and_query() {
        let e = [0x13, 0x02, 0, 1, 10, 0, 0, 1, 0, 138, 0x82];
        let d = DatagramRepr::parse(&e).unwrap();
        assert_eq!(
            d.body,
            DatagramBody::Error(DatagramErrorCode::DestinationNameNotPresent)
        );
        assert_eq!(d.to_vec().unwrap(), e);
        assert!(matches!(
            MailslotMessage::parse(&e),
            Err(Error::NoUserData { msg_type: 0x13, .. })
        ));
        let q = DatagramRepr {
            msg_type: MsgType::QueryRequest,
            flags: DatagramFlags::default(),
            dgm_id: 7,
            source_ip: Ipv4Addr::LOCALHOST,
            source_port: 138,
            body: DatagramBody::Query(NetbiosName::new("X", 0x20).unwrap().into()),
        };
        let v = q.to_vec().unwrap();
        assert_eq!(v.len(), 44);
        assert_eq!(DatagramRepr::parse(&v).unwrap(), q);
        assert_eq!(
            DatagramRepr::parse(&[0x20; 12]),
            Err(Error::UnknownMsgType {
                offset: 0,
                msg_type: 0x20
            })
        );
    }

    #[test]
    fn truncations_never_panic() {
        let buf = sample().to_vec().unwrap();
        for n in 0..buf.len() {
            assert!(MailslotMessage::parse(&buf[..n]).is_err());
            let _ = DatagramRepr::parse(&buf[..n]);
        }
    }

    #[test]
    fn inner_error_offsets_are_shifted() {
        let mut buf = sample().to_vec().unwrap();
        buf[82 + 4] = 0x72;
        assert_eq!(
            MailslotMessage::parse(&buf),
            Err(Error::NotTransaction {
                offset: 86,
                command: 0x72
            })
        );
    }
}
