//! NetBIOS session service packets (RFC 1002 §4.3), the framing of TCP port 139.
//!
//! Every session packet is a 4-byte header — TYPE, FLAGS, and a 16-bit
//! big-endian LENGTH whose 17th bit is bit 0 of FLAGS (the E bit) — followed
//! by LENGTH bytes of payload. A connection starts with a session request
//! (type 0x81: the called and the calling NetBIOS name, second-level encoded),
//! answered by a positive (0x82, no payload) or negative (0x83, one error
//! byte) response; after a positive response each session message (0x00)
//! carries one SMB message. Keep-alives (0x85) may come at any time and are
//! ignored.
//!
//! # Receiving
//! [`frame_len`] tells a reader how many bytes the first frame of its buffer
//! needs, rejecting frames above the reader's own limit before reading them;
//! [`Header::parse`] rejects FLAGS bits other than the E bit. Unknown packet
//! types are kept as [`PacketType::Unknown`]; what to do with them is the
//! caller's choice. [`SessionRequest::parse`] accepts names with a scope and
//! drops it.
//!
//! # Sending
//! Every builder returns the whole packet, header included. Names are sent
//! without scope.
//!
//! ```
//! use mailslot_proto::session::{self, Header, PacketType, SessionRequest};
//! use mailslot_proto::NetbiosName;
//!
//! let req = SessionRequest {
//!     called: NetbiosName::new("testhost", 0x03)?,
//!     calling: NetbiosName::new("clientpc", 0x00)?,
//! };
//! let bytes = req.to_vec()?;
//! assert_eq!(bytes.len(), 4 + 68);
//! assert_eq!(session::frame_len(&bytes, 1024)?, Some(72));
//! let h = Header::parse(&bytes)?;
//! assert_eq!(h.packet_type, PacketType::Request);
//! assert_eq!(SessionRequest::parse(&bytes[4..])?, req);
//! # Ok::<(), mailslot_proto::Error>(())
//! ```

use crate::cursor;
use crate::error::{Error, Result};
use crate::name::{NetbiosName, QualifiedName};

/// Bytes of a session packet header.
pub const HEADER_LEN: usize = 4;
/// Largest payload a session packet can announce: 17 bits (FLAGS bit 0 is bit 16).
pub const MAX_LENGTH: usize = 0x1_FFFF;
/// The well-known session service port.
pub const SESSION_PORT: u16 = 139;

/// Where the fields are.
mod field {
    pub(crate) const TYPE: usize = 0;
    pub(crate) const FLAGS: usize = 1;
    pub(crate) const LENGTH: crate::cursor::Field = 2..4;
    /// FLAGS bit 0: bit 16 of the length.
    pub(crate) const FLAG_E: u8 = 0x01;
}

open_enum! {
    /// The TYPE byte of a session packet.
    pub enum PacketType(u8) {
        /// 0x00: session message (carries an SMB message).
        Message = 0x00,
        /// 0x81: session request (called and calling name).
        Request = 0x81,
        /// 0x82: positive session response (no payload).
        PositiveResponse = 0x82,
        /// 0x83: negative session response (one error byte, see [`NegativeCode`]).
        NegativeResponse = 0x83,
        /// 0x84: retarget response (IPv4 address and port to try instead).
        RetargetResponse = 0x84,
        /// 0x85: keep-alive (no payload).
        KeepAlive = 0x85,
    }
}

open_enum! {
    /// The error byte of a negative session response.
    pub enum NegativeCode(u8) {
        /// 0x80: not listening on the called name.
        NotListeningOnCalledName = 0x80,
        /// 0x81: not listening for the calling name.
        NotListeningForCallingName = 0x81,
        /// 0x82: the called name is not present.
        CalledNameNotPresent = 0x82,
        /// 0x83: called name present, but insufficient resources.
        InsufficientResources = 0x83,
        /// 0x8F: unspecified error.
        Unspecified = 0x8F,
    }
}

/// A session packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// TYPE.
    pub packet_type: PacketType,
    /// Payload bytes after the header (0 ..= [`MAX_LENGTH`]).
    pub length: usize,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes` (more may follow).
    ///
    /// Fails with [`Error::Truncated`] on fewer than 4 bytes and with
    /// [`Error::BadValue`] (offset 1) if a FLAGS bit other than bit 0 is set.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        cursor::check_len(bytes, HEADER_LEN)?;
        let flags = bytes[field::FLAGS];
        if flags & !field::FLAG_E != 0 {
            return Err(Error::BadValue {
                offset: field::FLAGS,
                field: "session packet flags",
                value: u32::from(flags),
            });
        }
        let high = usize::from(flags & field::FLAG_E) << 16;
        Ok(Self {
            packet_type: PacketType::from(bytes[field::TYPE]),
            length: high | usize::from(cursor::be16_at(bytes, field::LENGTH)),
        })
    }

    /// The 4 header bytes; fails with [`Error::TooLong`] if `length` exceeds [`MAX_LENGTH`].
    pub fn to_bytes(&self) -> Result<[u8; 4]> {
        if self.length > MAX_LENGTH {
            return Err(Error::TooLong {
                field: "session packet",
                len: self.length,
            });
        }
        let [_, e, hi, lo] = (self.length as u32).to_be_bytes();
        Ok([u8::from(self.packet_type), e & field::FLAG_E, hi, lo])
    }
}

/// Total length (header + payload) of the first frame in `buf` once its header is there:
/// `Ok(None)` = need more bytes; `Err` if its length > `max_payload`
/// ([`Error::FrameTooLong`]) or the header is invalid.
pub fn frame_len(buf: &[u8], max_payload: usize) -> Result<Option<usize>> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = Header::parse(buf)?;
    if h.length > max_payload {
        return Err(Error::FrameTooLong {
            offset: field::LENGTH.start,
            len: h.length,
            limit: max_payload,
        });
    }
    Ok(Some(HEADER_LEN + h.length))
}

/// A session request: whom the caller wants to reach and who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRequest {
    /// The called name (e.g. `HOST<03>` for the Messenger service, `HOST<20>` for a file server).
    pub called: NetbiosName,
    /// The calling name (the client's `<00>` name).
    pub calling: NetbiosName,
}

impl SessionRequest {
    /// Parses the payload of a session request (the bytes after the header):
    /// two second-level encoded names, nothing after them. A scope is accepted and dropped.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let (called, at) = QualifiedName::parse(payload, 0)?;
        let (calling, end) = QualifiedName::parse(payload, at)?;
        if end != payload.len() {
            return Err(Error::BadLength {
                offset: end,
                field: "session request",
            });
        }
        Ok(Self {
            called: called.name,
            calling: calling.name,
        })
    }

    /// Bytes [`Self::emit`] writes: header + two 34-byte names.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + 2 * 34
    }

    /// Writes the whole packet (header included, names without scope) into `buf[..buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let header = Header {
            packet_type: PacketType::Request,
            length: self.buffer_len() - HEADER_LEN,
        }
        .to_bytes()?;
        cursor::emit(buf, self.buffer_len(), |w| {
            w.bytes(&header);
            QualifiedName::from(self.called).write(w);
            QualifiedName::from(self.calling).write(w);
        })
    }

    /// The whole packet, header included.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

/// Parses the payload of a negative session response: exactly one error byte.
pub fn parse_negative_response(payload: &[u8]) -> Result<NegativeCode> {
    match payload {
        [code] => Ok(NegativeCode::from(*code)),
        [] => Err(Error::Truncated {
            offset: 0,
            need: 1,
            have: 0,
        }),
        _ => Err(Error::BadLength {
            offset: 0,
            field: "negative session response",
        }),
    }
}

/// A positive session response (type 0x82, length 0).
pub fn positive_response() -> [u8; 4] {
    [u8::from(PacketType::PositiveResponse), 0, 0, 0]
}

/// A negative session response (type 0x83, length 1, the error byte).
pub fn negative_response(code: NegativeCode) -> [u8; 5] {
    [
        u8::from(PacketType::NegativeResponse),
        0,
        0,
        1,
        u8::from(code),
    ]
}

/// A keep-alive (type 0x85, length 0).
pub fn keep_alive() -> [u8; 4] {
    [u8::from(PacketType::KeepAlive), 0, 0, 0]
}

/// A whole session message (type 0x00) carrying `payload`; fails with
/// [`Error::TooLong`] above [`MAX_LENGTH`] bytes.
pub fn message(payload: &[u8]) -> Result<Vec<u8>> {
    let header = Header {
        packet_type: PacketType::Message,
        length: payload.len(),
    }
    .to_bytes()?;
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&header);
    v.extend_from_slice(payload);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_and_flags() {
        let h = Header::parse(&[0x00, 0x01, 0xFF, 0xFF]).unwrap();
        assert_eq!(
            h,
            Header {
                packet_type: PacketType::Message,
                length: MAX_LENGTH
            }
        );
        assert_eq!(h.to_bytes().unwrap(), [0x00, 0x01, 0xFF, 0xFF]);
        let h = Header {
            packet_type: PacketType::Unknown(0x42),
            length: 0x1_0000,
        };
        assert_eq!(h.to_bytes().unwrap(), [0x42, 0x01, 0x00, 0x00]);
        assert_eq!(Header::parse(&h.to_bytes().unwrap()).unwrap(), h);
        assert_eq!(
            Header::parse(&[0x85, 0x02, 0, 0]),
            Err(Error::BadValue {
                offset: 1,
                field: "session packet flags",
                value: 2
            })
        );
        assert_eq!(
            Header::parse(&[0x85, 0, 0]),
            Err(Error::Truncated {
                offset: 0,
                need: 4,
                have: 3
            })
        );
        assert_eq!(
            Header {
                packet_type: PacketType::Message,
                length: MAX_LENGTH + 1
            }
            .to_bytes(),
            Err(Error::TooLong {
                field: "session packet",
                len: MAX_LENGTH + 1
            })
        );
    }

    #[test]
    fn frame_len_states() {
        assert_eq!(frame_len(&[], 10), Ok(None));
        assert_eq!(frame_len(&[0x00, 0x00, 0x00], 10), Ok(None));
        assert_eq!(frame_len(&[0x00, 0x00, 0x00, 0x0A], 10), Ok(Some(14)));
        assert_eq!(frame_len(&keep_alive(), 0), Ok(Some(4)));
        assert_eq!(
            frame_len(&[0x00, 0x00, 0x00, 0x0B, 1, 2], 10),
            Err(Error::FrameTooLong {
                offset: 2,
                len: 11,
                limit: 10
            })
        );
        assert_eq!(
            frame_len(&[0x00, 0x01, 0x00, 0x00], 0xFFFF),
            Err(Error::FrameTooLong {
                offset: 2,
                len: 0x1_0000,
                limit: 0xFFFF
            })
        );
        assert!(matches!(
            frame_len(&[0x00, 0x80, 0x00, 0x00], 10),
            Err(Error::BadValue { offset: 1, .. })
        ));
    }

    #[test]
    fn fixed_packets() {
        assert_eq!(positive_response(), [0x82, 0, 0, 0]);
        assert_eq!(keep_alive(), [0x85, 0, 0, 0]);
        assert_eq!(
            negative_response(NegativeCode::CalledNameNotPresent),
            [0x83, 0, 0, 1, 0x82]
        );
        assert_eq!(
            negative_response(NegativeCode::Unknown(0x99)),
            [0x83, 0, 0, 1, 0x99]
        );
        for code in [0x80, 0x81, 0x82, 0x83, 0x8F, 0x00] {
            let nr = negative_response(NegativeCode::from(code));
            assert_eq!(
                parse_negative_response(&nr[HEADER_LEN..]),
                Ok(NegativeCode::from(code))
            );
        }
        assert_eq!(
            NegativeCode::from(0x8F),
            NegativeCode::Unspecified,
            "0x8F is named"
        );
        assert!(matches!(
            parse_negative_response(&[]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            parse_negative_response(&[0x80, 0]),
            Err(Error::BadLength { .. })
        ));
        assert_eq!(message(b"abc").unwrap(), [0, 0, 0, 3, b'a', b'b', b'c']);
        let big = vec![0u8; MAX_LENGTH];
        let m = message(&big).unwrap();
        assert_eq!(&m[..4], &[0, 1, 0xFF, 0xFF]);
        let too_big = vec![0u8; MAX_LENGTH + 1];
        assert!(matches!(message(&too_big), Err(Error::TooLong { .. })));
    }

    #[test]
    fn request_errors() {
        let req = SessionRequest {
            called: NetbiosName::new("TESTHOST", 0x03).unwrap(),
            calling: NetbiosName::new("CLIENTPC", 0).unwrap(),
        };
        let v = req.to_vec().unwrap();
        let payload = &v[HEADER_LEN..];
        for n in 0..payload.len() {
            assert!(SessionRequest::parse(&payload[..n]).is_err(), "len {n}");
        }
        let mut extra = payload.to_vec();
        extra.push(0);
        assert_eq!(
            SessionRequest::parse(&extra),
            Err(Error::BadLength {
                offset: 68,
                field: "session request"
            })
        );
        let mut bad = payload.to_vec();
        bad[40] = b'Z';
        assert_eq!(
            SessionRequest::parse(&bad),
            Err(Error::BadNameEncoding {
                offset: 40,
                byte: b'Z'
            })
        );
        let mut bad = payload.to_vec();
        bad[34] = 16;
        assert_eq!(
            SessionRequest::parse(&bad),
            Err(Error::BadNameLength {
                offset: 34,
                len: 16
            })
        );
        let mut bad = payload.to_vec();
        bad[0] = 0xC0;
        assert_eq!(
            SessionRequest::parse(&bad),
            Err(Error::BadPointer { offset: 0 })
        );
        // A scope is accepted and dropped.
        let mut scoped = QualifiedName {
            name: req.called,
            scope: "corp".into(),
        }
        .to_vec()
        .unwrap();
        scoped.extend_from_slice(&payload[34..]);
        assert_eq!(SessionRequest::parse(&scoped), Ok(req));
        assert_eq!(
            req.emit(&mut [0u8; 71]),
            Err(Error::BufferTooSmall { need: 72, have: 71 })
        );
    }
}
