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
    /// A session packet announces more payload than the receiver accepts.
    FrameTooLong {
        /// Offset of the length field.
        offset: usize,
        /// The announced payload length.
        len: usize,
        /// The receiver's limit.
        limit: usize,
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
        self.clone().offset_mut().map(|o| *o)
    }

    /// The same error with its offset moved by `base` bytes: used when an inner
    /// message (SMB, payload) was parsed from a sub-slice of a datagram.
    #[must_use]
    pub fn shifted(mut self, base: usize) -> Self {
        if let Some(offset) = self.offset_mut() {
            *offset = offset.saturating_add(base);
        }
        self
    }

    /// The `offset` field of the variants that come from parsing.
    fn offset_mut(&mut self) -> Option<&mut usize> {
        use Error::*;
        match self {
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
            | BadLength { offset, .. }
            | FrameTooLong { offset, .. } => Some(offset),
            NameLength { .. }
            | NameChar { .. }
            | TooLargeForNetwork { .. }
            | TooLong { .. }
            | BufferTooSmall { .. }
            | Inconsistent { .. } => None,
        }
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
            FrameTooLong { len, limit, .. } => write!(
                f,
                "session packet of {len} bytes exceeds the limit of {limit} bytes"
            ),
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
