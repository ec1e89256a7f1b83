//! The one error type of this crate.

use core::fmt;

/// Why bytes could not be parsed or a packet could not be built.
///
/// Every variant that comes from parsing carries the byte `offset` at which
/// the problem was found, relative to the start of the buffer handed to the
/// `parse` function (see [`Error::offset`] and [`Error::shifted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before a field that must be there.
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// Bytes needed from `offset`.
        need: usize,
        /// Bytes available from `offset`.
        have: usize,
    },
    /// A NetBIOS name's first label is not 32 bytes long.
    BadNameLength {
        /// Offset of the length byte.
        offset: usize,
        /// The length found.
        len: u8,
    },
    /// A first-level encoded name contains a byte outside `'A'..='P'`.
    BadNameEncoding {
        /// Offset of the bad byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A compression pointer where none is allowed, or one that points forward or loops.
    BadPointer {
        /// Offset of the pointer.
        offset: usize,
    },
    /// A scope label is malformed (too long, or the scope exceeds 255 bytes).
    BadScope {
        /// Offset of the label.
        offset: usize,
    },
    /// A NetBIOS name given by a caller is longer than 15 bytes (or empty).
    NameLength {
        /// The length given.
        len: usize,
    },
    /// A NetBIOS name given by a caller contains a character that is not allowed.
    NameChar {
        /// The offending byte.
        byte: u8,
    },
    /// A NetBIOS datagram MSG_TYPE this crate does not know.
    UnknownMsgType {
        /// Always 0.
        offset: usize,
        /// The MSG_TYPE byte.
        msg_type: u8,
    },
    /// A datagram fragment (M=1 or F=0). Fragments are rejected, never reassembled:
    /// no known implementation sends them (see the crate documentation).
    Fragmented {
        /// Offset of the FLAGS byte (1).
        offset: usize,
        /// The FLAGS byte.
        flags: u8,
    },
    /// The datagram is not a DIRECT_UNIQUE / DIRECT_GROUP / BROADCAST one, so it carries no mailslot write.
    NoUserData {
        /// Always 0.
        offset: usize,
        /// The MSG_TYPE byte.
        msg_type: u8,
    },
    /// User data does not start with `\xFFSMB`.
    NotSmb {
        /// Offset of the protocol signature.
        offset: usize,
    },
    /// The SMB command is not SMB_COM_TRANSACTION (0x25).
    NotTransaction {
        /// Offset of the command byte.
        offset: usize,
        /// The command byte.
        command: u8,
    },
    /// WordCount is not 14 + SetupCount, or SetupCount is below 3.
    BadWordCount {
        /// Offset of the WordCount byte.
        offset: usize,
        /// WordCount found.
        word_count: u8,
        /// SetupCount found.
        setup_count: u8,
    },
    /// The transaction name does not start with `\MAILSLOT\` (any case).
    NotMailslot {
        /// Offset of the transaction name.
        offset: usize,
    },
    /// DataOffset/DataCount point outside the SMB message (or into its header).
    DataOutOfBounds {
        /// Offset of the DataCount field.
        offset: usize,
        /// DataOffset found.
        data_offset: u16,
        /// DataCount found.
        data_count: u16,
        /// Length of the SMB message.
        len: usize,
    },
    /// A NUL-terminated string has no NUL.
    Unterminated {
        /// Where the string starts.
        offset: usize,
    },
    /// A UTF-16LE string is not valid UTF-16.
    BadUtf16 {
        /// Where the string starts.
        offset: usize,
    },
    /// A value that must have one of a few values has another.
    BadValue {
        /// Offset of the field.
        offset: usize,
        /// Name of the field.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A count or length field disagrees with the rest of the packet.
    BadLength {
        /// Offset of the field.
        offset: usize,
        /// Name of the field.
        field: &'static str,
    },
    /// The payload is larger than a second-class mailslot message may be on the network.
    TooLargeForNetwork {
        /// Payload length.
        len: usize,
        /// The limit, see [`crate::max_network_payload`].
        limit: usize,
    },
    /// A value is too large for its wire field (e.g. more than 65535 bytes).
    TooLong {
        /// Name of the field.
        field: &'static str,
        /// The length.
        len: usize,
    },
    /// `emit` was given a buffer shorter than `buffer_len()`.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// A `Repr` whose parts contradict each other (e.g. an ERROR body with MSG_TYPE BROADCAST).
    Inconsistent {
        /// What contradicts what.
        what: &'static str,
    },
}

impl Error {
    /// The byte offset of a parse error, if the error came from parsing.
    pub fn offset(&self) -> Option<usize> {
        use Error::*;
        match *self {
            Truncated { offset, .. }
            | BadNameLength { offset, .. }
            | BadNameEncoding { offset, .. }
            | BadPointer { offset }
            | BadScope { offset }
            | UnknownMsgType { offset, .. }
            | Fragmented { offset, .. }
            | NoUserData { offset, .. }
            | NotSmb { offset }
            | NotTransaction { offset, .. }
            | BadWordCount { offset, .. }
            | NotMailslot { offset }
            | DataOutOfBounds { offset, .. }
            | Unterminated { offset }
            | BadUtf16 { offset }
            | BadValue { offset, .. }
            | BadLength { offset, .. } => Some(offset),
            _ => None,
        }
    }

    /// The same error with its offset moved by `base` bytes: used when an inner
    /// message (SMB, payload) was parsed from a sub-slice of a datagram.
    #[must_use]
    pub fn shifted(mut self, base: usize) -> Self {
        use Error::*;
        match &mut self {
            Truncated { offset, .. }
            | BadNameLength { offset, .. }
            | BadNameEncoding { offset, .. }
            | BadPointer { offset }
            | BadScope { offset }
            | UnknownMsgType { offset, .. }
            | Fragmented { offset, .. }
            | NoUserData { offset, .. }
            | NotSmb { offset }
            | NotTransaction { offset, .. }
            | BadWordCount { offset, .. }
            | NotMailslot { offset }
            | DataOutOfBounds { offset, .. }
            | Unterminated { offset }
            | BadUtf16 { offset }
            | BadValue { offset, .. }
            | BadLength { offset, .. } => *offset = offset.saturating_add(base),
            _ => {}
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            Truncated { offset, need, have } => write!(
                f,
                "truncated at offset {offset}: need {need} bytes, have {have}"
            ),
            BadNameLength { offset, len } => write!(
                f,
                "NetBIOS name at offset {offset}: first label length {len}, expected 32"
            ),
            BadNameEncoding { offset, byte } => write!(
                f,
                "NetBIOS name: byte 0x{byte:02x} at offset {offset} is not in 'A'..='P'"
            ),
            BadPointer { offset } => write!(f, "bad or disallowed name pointer at offset {offset}"),
            BadScope { offset } => write!(f, "bad NetBIOS scope label at offset {offset}"),
            NameLength { len } => write!(f, "NetBIOS name must be 1 to 15 bytes, got {len}"),
            NameChar { byte } => {
                write!(f, "character 0x{byte:02x} is not allowed in a NetBIOS name")
            }
            UnknownMsgType { msg_type, .. } => {
                write!(f, "unknown NetBIOS datagram type 0x{msg_type:02x}")
            }
            Fragmented { flags, .. } => write!(
                f,
                "fragmented NetBIOS datagram (flags 0x{flags:02x}): fragments are not supported"
            ),
            NoUserData { msg_type, .. } => write!(
                f,
                "NetBIOS datagram type 0x{msg_type:02x} carries no user data"
            ),
            NotSmb { offset } => write!(f, "no \\xFFSMB signature at offset {offset}"),
            NotTransaction { command, .. } => write!(
                f,
                "SMB command 0x{command:02x} is not SMB_COM_TRANSACTION (0x25)"
            ),
            BadWordCount {
                word_count,
                setup_count,
                ..
            } => write!(
                f,
                "SMB WordCount {word_count} with SetupCount {setup_count} is not a mailslot write"
            ),
            NotMailslot { offset } => write!(
                f,
                "transaction name at offset {offset} does not start with \\MAILSLOT\\"
            ),
            DataOutOfBounds {
                data_offset,
                data_count,
                len,
                ..
            } => write!(
                f,
                "DataOffset {data_offset} + DataCount {data_count} outside the {len}-byte SMB message"
            ),
            Unterminated { offset } => write!(f, "string at offset {offset} has no terminating NUL"),
            BadUtf16 { offset } => write!(f, "invalid UTF-16 string at offset {offset}"),
            BadValue {
                offset,
                field,
                value,
            } => write!(f, "{field} at offset {offset} has unexpected value {value:#x}"),
            BadLength { offset, field } => {
                write!(f, "{field} at offset {offset} disagrees with the packet")
            }
            TooLargeForNetwork { len, limit } => write!(
                f,
                "payload of {len} bytes is too large for the network (limit {limit})"
            ),
            TooLong { field, len } => write!(f, "{field} is too long ({len} bytes)"),
            BufferTooSmall { need, have } => {
                write!(f, "buffer too small: need {need} bytes, have {have}")
            }
            Inconsistent { what } => write!(f, "inconsistent packet description: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// A bounds-checked reading cursor over a byte slice (big- or little-endian reads).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn full(&self) -> &'a [u8] {
        self.buf
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let have = self.remaining();
        if n > have {
            return Err(Error::Truncated {
                offset: self.pos,
                need: n,
                have,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn be16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn be32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn le16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn le32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A NUL-terminated byte string (NUL consumed, not returned).
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8]> {
        let rest = self.rest();
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(Error::Unterminated { offset: self.pos }),
        }
    }
    /// A NUL-terminated UTF-16LE string (terminator consumed).
    pub(crate) fn utf16z(&mut self) -> Result<String> {
        let start = self.pos;
        let rest = self.rest();
        let mut units = Vec::new();
        let mut i = 0;
        loop {
            if i + 2 > rest.len() {
                return Err(Error::Unterminated { offset: start });
            }
            let u = u16::from_le_bytes([rest[i], rest[i + 1]]);
            i += 2;
            if u == 0 {
                break;
            }
            units.push(u);
        }
        self.pos += i;
        String::from_utf16(&units).map_err(|_| Error::BadUtf16 { offset: start })
    }
}

/// An appending writer into a caller's slice; lengths were checked by `buffer_len`.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Fails with `BufferTooSmall` unless `buf` holds `need` bytes.
    pub(crate) fn new(buf: &'a mut [u8], need: usize) -> Result<Self> {
        if buf.len() < need {
            return Err(Error::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        Ok(Writer { buf, pos: 0 })
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf[self.pos..self.pos + n].fill(0);
        self.pos += n;
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub(crate) fn be16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn be32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn le16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn le32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn cstr(&mut self, s: &[u8]) {
        self.bytes(s);
        self.u8(0);
    }
    pub(crate) fn utf16z(&mut self, s: &str) {
        for u in s.encode_utf16() {
            self.le16(u);
        }
        self.le16(0);
    }
}

/// Bytes of `s` as NUL-terminated UTF-16LE.
pub(crate) fn utf16z_len(s: &str) -> usize {
    2 * s.encode_utf16().count() + 2
}
