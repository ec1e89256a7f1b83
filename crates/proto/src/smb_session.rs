//! SMB1 messages carried in NetBIOS session messages (see [`session`](crate::session)):
//! the Messenger's message commands, and first-class mailslot writes with their replies.
//!
//! Every SMB message starts with the 32-byte [`SmbHeader`], then WordCount,
//! WordCount 16-bit words, ByteCount and ByteCount bytes (all little-endian).
//!
//! # Messenger commands ([MS-CIFS] §2.2.4.51–2.2.4.54)
//! `smbclient -M` and Windows send these without negotiating a dialect or
//! setting up a session (TID and UID 0). A short message is one
//! SMB_COM_SEND_MESSAGE (0xD0); a longer one is SMB_COM_SEND_START_MB_MESSAGE
//! (0xD5, answered with a message group id), one SMB_COM_SEND_TEXT_MB_MESSAGE
//! (0xD7) per block of at most [`MAX_TEXT_BLOCK`] bytes, and
//! SMB_COM_SEND_END_MB_MESSAGE (0xD6). Names are buffer-format-4 (0x04) NUL-terminated
//! OEM strings, text is a buffer-format-1 (0x01) data block with a 16-bit length.
//! [`MessageCommand::parse`] checks the WordCount of each command, that
//! ByteCount lies inside the message and every string/block inside ByteCount;
//! bytes after the block and after ByteCount are ignored.
//!
//! A reply ([`message_reply`], [`MessageReply`]) copies the request's header with the reply
//! bit set. Samba's smbd answers 0xD5 with WordCount 0 (no group id; the client
//! then uses group 0); Windows sends WordCount 1 with the id.
//!
//! # Mailslot writes on a session
//! [`SessionMailslotWrite`] is the SMB_COM_TRANSACTION of a datagram mailslot
//! write ([`smb`](crate::smb), same encoder and parser) with two additions: the
//! Timeout is meaningful (how long the receiver may wait for room), and the
//! 16 Parameters bytes carry a write id (sender instance, then sequence
//! number) so that a receiver can make writes exactly-once across reconnects.
//! It must fit one transaction (no secondary requests): TotalDataCount =
//! DataCount and TotalParameterCount = ParameterCount = 16. It is answered by a
//! [`TransactionReply`].

use crate::cursor::{self, Reader, Writer};
use crate::error::{Error, Result};
use crate::smb::{ParsedWrite, TransactionRequest, FIXED_LEN};
pub use crate::smb::{SmbHeader, FLAGS_REPLY, SMB_COM_TRANSACTION, SMB_HEADER_LEN};

/// SMB_COM_SEND_MESSAGE: a whole message in one request.
pub const SMB_COM_SEND_MESSAGE: u8 = 0xD0;
/// SMB_COM_SEND_START_MB_MESSAGE: starts a multi-block message.
pub const SMB_COM_SEND_START_MB_MESSAGE: u8 = 0xD5;
/// SMB_COM_SEND_END_MB_MESSAGE: ends a multi-block message.
pub const SMB_COM_SEND_END_MB_MESSAGE: u8 = 0xD6;
/// SMB_COM_SEND_TEXT_MB_MESSAGE: one block of a multi-block message.
pub const SMB_COM_SEND_TEXT_MB_MESSAGE: u8 = 0xD7;
/// Error class ERRDOS (the code is a Win32 error number).
pub const ERRDOS: u8 = 0x01;
/// Error class ERRSRV (server errors).
pub const ERRSRV: u8 = 0x02;
/// Largest text block a sender should put in one 0xD0/0xD7 command ([MS-CIFS];
/// `smbclient` sends at most 127). Parsing accepts longer blocks.
pub const MAX_TEXT_BLOCK: usize = 128;

/// Win32 error 2: no such mailslot.
pub const ERROR_FILE_NOT_FOUND: u16 = 2;
/// Win32 error 5: the sender may not write to this mailslot.
pub const ERROR_ACCESS_DENIED: u16 = 5;
/// Win32 error 87: the message is too large or the request invalid.
pub const ERROR_INVALID_PARAMETER: u16 = 87;
/// Win32 error 109: the mailslot was closed.
pub const ERROR_BROKEN_PIPE: u16 = 109;
/// Win32 error 121: no room in the mailslot before the write's timeout.
pub const ERROR_SEM_TIMEOUT: u16 = 121;

/// Buffer format of an OEM string.
const FORMAT_STRING: u8 = 0x04;
/// Buffer format of a data block.
const FORMAT_DATA_BLOCK: u8 = 0x01;
/// Words of an SMB_COM_TRANSACTION success reply with no setup.
const TRANSACTION_REPLY_WORDS: u8 = 10;
/// Bytes of the write id in a session mailslot write's Parameters.
pub const WRITE_ID_LEN: usize = 16;

/// Where the fields are (after the header).
mod field {
    pub(crate) const COMMAND: usize = 4;
    pub(crate) const FLAGS: usize = 9;
    pub(crate) const WORD_COUNT: usize = 32;
    pub(crate) const WORDS: usize = WORD_COUNT + 1;
    pub(crate) const TOTAL_PARAMETER_COUNT: usize = 33;
    pub(crate) const TOTAL_DATA_COUNT: usize = 35;
    pub(crate) const PARAMETER_COUNT: usize = 51;
    pub(crate) const PARAMETER_OFFSET: usize = 53;
}

/// The parameter words and the byte block of an SMB message, bounds-checked.
struct Body<'a> {
    words: &'a [u8],
    /// The whole message up to the end of the byte block.
    upto_bytes_end: &'a [u8],
    /// Offset of the byte block.
    bytes_start: usize,
}

impl<'a> Body<'a> {
    fn parse(smb: &'a [u8]) -> Result<Self> {
        let mut r = Reader::at(smb, field::WORD_COUNT);
        let wc = r.u8()?;
        let words = r.take(2 * usize::from(wc))?;
        let bc_at = r.pos();
        let bc = usize::from(r.le16()?);
        let bytes_start = r.pos();
        if bc > r.remaining() {
            return Err(Error::BadLength {
                offset: bc_at,
                field: "ByteCount",
            });
        }
        Ok(Self {
            words,
            upto_bytes_end: &smb[..bytes_start + bc],
            bytes_start,
        })
    }

    /// Fails unless WordCount is `want`.
    fn expect_words(&self, want: u8) -> Result<()> {
        if self.words.len() != 2 * usize::from(want) {
            return Err(Error::BadValue {
                offset: field::WORD_COUNT,
                field: "WordCount",
                value: (self.words.len() / 2) as u32,
            });
        }
        Ok(())
    }

    /// Word `i` (the caller checked WordCount).
    fn word(&self, i: usize) -> u16 {
        u16::from_le_bytes([self.words[2 * i], self.words[2 * i + 1]])
    }

    /// A reader over the byte block (offsets from the start of the message).
    fn bytes(&self) -> Reader<'a> {
        Reader::at(self.upto_bytes_end, self.bytes_start)
    }
}

/// Reads a buffer-format byte and fails unless it is `want`.
fn buffer_format(r: &mut Reader<'_>, want: u8) -> Result<()> {
    let at = r.pos();
    let f = r.u8()?;
    if f != want {
        return Err(Error::BadValue {
            offset: at,
            field: "buffer format",
            value: u32::from(f),
        });
    }
    Ok(())
}

/// A buffer-format-4 NUL-terminated string.
fn oem_string<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    buffer_format(r, FORMAT_STRING)?;
    r.cstr()
}

/// A buffer-format-1 data block.
fn data_block<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    buffer_format(r, FORMAT_DATA_BLOCK)?;
    let n = r.le16()?;
    r.take(usize::from(n))
}

/// Checks the header's reply bit (replies only).
fn expect_reply(header: &SmbHeader) -> Result<()> {
    if !header.is_reply() {
        return Err(Error::BadValue {
            offset: field::FLAGS,
            field: "SMB reply flag",
            value: u32::from(header.flags),
        });
    }
    Ok(())
}

/// The Messenger's SMB commands (requests), as smbclient -M / Windows send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageCommand<'a> {
    /// 0xD0: a whole message.
    Single {
        /// Sender name, no NUL.
        originator: &'a [u8],
        /// Recipient name, no NUL.
        destination: &'a [u8],
        /// The text (OEM bytes; line ends as the sender wrote them, `\r\n` from smbclient).
        text: &'a [u8],
    },
    /// 0xD5: starts a multi-block message; the reply carries the group id.
    Start {
        /// Sender name, no NUL.
        originator: &'a [u8],
        /// Recipient name, no NUL.
        destination: &'a [u8],
    },
    /// 0xD7: one block of text of the message `group`.
    Text {
        /// Message group id from the reply to [`MessageCommand::Start`].
        group: u16,
        /// The block's text.
        text: &'a [u8],
    },
    /// 0xD6: ends the message `group`.
    End {
        /// Message group id.
        group: u16,
    },
}

impl<'a> MessageCommand<'a> {
    /// Parses a whole SMB message (header + words + bytes) carrying one of the
    /// four commands; any other command is [`Error::BadValue`] at offset 4.
    pub fn parse(smb: &'a [u8]) -> Result<(SmbHeader, Self)> {
        let header = SmbHeader::parse(smb)?;
        let body = Body::parse(smb)?;
        let mut r = body.bytes();
        let cmd = match header.command {
            SMB_COM_SEND_MESSAGE => {
                body.expect_words(0)?;
                let originator = oem_string(&mut r)?;
                let destination = oem_string(&mut r)?;
                let text = data_block(&mut r)?;
                Self::Single {
                    originator,
                    destination,
                    text,
                }
            }
            SMB_COM_SEND_START_MB_MESSAGE => {
                body.expect_words(0)?;
                let originator = oem_string(&mut r)?;
                let destination = oem_string(&mut r)?;
                Self::Start {
                    originator,
                    destination,
                }
            }
            SMB_COM_SEND_TEXT_MB_MESSAGE => {
                body.expect_words(1)?;
                let text = data_block(&mut r)?;
                Self::Text {
                    group: body.word(0),
                    text,
                }
            }
            SMB_COM_SEND_END_MB_MESSAGE => {
                body.expect_words(1)?;
                Self::End {
                    group: body.word(0),
                }
            }
            other => {
                return Err(Error::BadValue {
                    offset: field::COMMAND,
                    field: "SMB message command",
                    value: u32::from(other),
                })
            }
        };
        Ok((header, cmd))
    }

    /// The command byte.
    pub fn command(&self) -> u8 {
        match self {
            Self::Single { .. } => SMB_COM_SEND_MESSAGE,
            Self::Start { .. } => SMB_COM_SEND_START_MB_MESSAGE,
            Self::Text { .. } => SMB_COM_SEND_TEXT_MB_MESSAGE,
            Self::End { .. } => SMB_COM_SEND_END_MB_MESSAGE,
        }
    }

    /// WordCount of this command.
    fn word_count(&self) -> u8 {
        match self {
            Self::Single { .. } | Self::Start { .. } => 0,
            Self::Text { .. } | Self::End { .. } => 1,
        }
    }

    /// ByteCount of this command.
    fn byte_count(&self) -> usize {
        let names = |o: &[u8], d: &[u8]| o.len() + d.len() + 4;
        match self {
            Self::Single {
                originator,
                destination,
                text,
            } => names(originator, destination) + 3 + text.len(),
            Self::Start {
                originator,
                destination,
            } => names(originator, destination),
            Self::Text { text, .. } => 3 + text.len(),
            Self::End { .. } => 0,
        }
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        SMB_HEADER_LEN + 1 + 2 * usize::from(self.word_count()) + 2 + self.byte_count()
    }

    /// Checks the strings have no NUL and the text and byte block fit their 16-bit counts.
    pub fn check(&self) -> Result<()> {
        let (names, text): (&[&[u8]], &[u8]) = match self {
            Self::Single {
                originator,
                destination,
                text,
            } => (&[originator, destination], text),
            Self::Start {
                originator,
                destination,
            } => (&[originator, destination], &[]),
            Self::Text { text, .. } => (&[], text),
            Self::End { .. } => (&[], &[]),
        };
        if names.iter().any(|n| n.contains(&0)) {
            return Err(Error::Inconsistent {
                what: "NUL inside a message name",
            });
        }
        if u16::try_from(text.len()).is_err() {
            return Err(Error::TooLong {
                field: "message text block",
                len: text.len(),
            });
        }
        if u16::try_from(self.byte_count()).is_err() {
            return Err(Error::TooLong {
                field: "ByteCount",
                len: self.byte_count(),
            });
        }
        Ok(())
    }

    /// Writes the SMB message into `buf[..buffer_len()]`: `header` with its
    /// command set from `self`.
    pub fn emit(&self, header: &SmbHeader, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        let string = |w: &mut Writer<'_>, s: &[u8]| {
            w.u8(FORMAT_STRING);
            w.cstr(s);
        };
        let block = |w: &mut Writer<'_>, t: &[u8]| {
            w.u8(FORMAT_DATA_BLOCK);
            w.le16(t.len() as u16); // checked
            w.bytes(t);
        };
        cursor::emit(buf, self.buffer_len(), |w| {
            SmbHeader {
                command: self.command(),
                ..*header
            }
            .write(w);
            w.u8(self.word_count());
            match self {
                Self::Text { group, .. } | Self::End { group } => w.le16(*group),
                Self::Single { .. } | Self::Start { .. } => {}
            }
            w.le16(self.byte_count() as u16); // checked
            match self {
                Self::Single {
                    originator,
                    destination,
                    text,
                } => {
                    string(w, originator);
                    string(w, destination);
                    block(w, text);
                }
                Self::Start {
                    originator,
                    destination,
                } => {
                    string(w, originator);
                    string(w, destination);
                }
                Self::Text { text, .. } => block(w, text),
                Self::End { .. } => {}
            }
        })
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self, header: &SmbHeader) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(header, b))
    }
}

/// The reply to a Messenger command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageReply {
    /// Header (reply bit set; status in `error_class`/`error_code`).
    pub header: SmbHeader,
    /// The message group id (WordCount 1), sent in reply to 0xD5; `None` = WordCount 0.
    pub group: Option<u16>,
}

impl MessageReply {
    /// Parses a reply: the reply bit must be set, WordCount 0 or 1, ByteCount inside the message.
    pub fn parse(smb: &[u8]) -> Result<Self> {
        let header = SmbHeader::parse(smb)?;
        expect_reply(&header)?;
        let body = Body::parse(smb)?;
        let group = match body.words.len() {
            0 => None,
            2 => Some(body.word(0)),
            n => {
                return Err(Error::BadValue {
                    offset: field::WORD_COUNT,
                    field: "WordCount",
                    value: (n / 2) as u32,
                })
            }
        };
        Ok(Self { header, group })
    }

    /// The reply's bytes (ByteCount 0).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; SMB_HEADER_LEN + 3 + 2 * usize::from(self.group.is_some())];
        let mut w = Writer::fill(&mut v);
        self.header.write(&mut w);
        match self.group {
            Some(g) => {
                w.u8(1);
                w.le16(g);
            }
            None => w.u8(0),
        }
        w.le16(0);
        v
    }
}

/// The reply to a Messenger command: `group` = Some(id) for 0xD5 (WordCount 1), else WordCount 0;
/// error = Some((class, code)) sets the DOS status. ByteCount 0.
pub fn message_reply(request: &SmbHeader, group: Option<u16>, error: Option<(u8, u16)>) -> Vec<u8> {
    let mut header = request.reply();
    if let Some((class, code)) = error {
        header.error_class = class;
        header.error_code = code;
    }
    MessageReply { header, group }.to_vec()
}

/// A first-class mailslot write carried on a session: SMB_COM_TRANSACTION (0x25) with name
/// `\MAILSLOT\<path>`, setup = [opcode 1, priority, class], Timeout = how long the receiver may wait for
/// room (ms; 0xFFFFFFFF = forever), Parameters = the 16-byte write id (sender instance 8 bytes + sequence
/// 8 bytes; the receiver remembers it to make writes exactly-once across reconnects), Data = the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionMailslotWrite<'a> {
    /// SMB header (its command is written as 0x25).
    pub header: SmbHeader,
    /// Full transaction name, `\MAILSLOT\<path>` (prefix in any case), no NUL.
    pub name: &'a [u8],
    /// Setup\[1\]: priority.
    pub priority: u16,
    /// Setup\[2\]: class (1 = first class, the class of session writes).
    pub class: u16,
    /// How long the receiver may wait for room, in ms ([`Self::WAIT_FOREVER`] = no limit).
    pub timeout_ms: u32,
    /// Sender instance (8 bytes) then sequence number (8 bytes).
    pub write_id: [u8; 16],
    /// The message.
    pub data: &'a [u8],
}

impl<'a> SessionMailslotWrite<'a> {
    /// Timeout meaning "wait as long as it takes".
    pub const WAIT_FOREVER: u32 = u32::MAX;

    /// Parses a session mailslot write: what [`MailslotWriteRepr::parse`](crate::MailslotWriteRepr::parse)
    /// checks, plus exactly 16 parameter bytes inside the message, after the
    /// name, and no secondary requests announced (total counts = counts).
    pub fn parse(smb: &'a [u8]) -> Result<Self> {
        let w = ParsedWrite::parse(smb)?;
        let v = &w.view;
        if usize::from(v.total_parameter_count()) != WRITE_ID_LEN {
            return Err(Error::BadLength {
                offset: field::TOTAL_PARAMETER_COUNT,
                field: "TotalParameterCount",
            });
        }
        if usize::from(v.parameter_count()) != WRITE_ID_LEN {
            return Err(Error::BadLength {
                offset: field::PARAMETER_COUNT,
                field: "ParameterCount",
            });
        }
        if v.total_data_count() != v.data_count() {
            return Err(Error::BadLength {
                offset: field::TOTAL_DATA_COUNT,
                field: "TotalDataCount",
            });
        }
        let start = usize::from(v.parameter_offset());
        let id = smb
            .get(start..start + WRITE_ID_LEN)
            .filter(|_| start >= w.name_end)
            .ok_or(Error::BadLength {
                offset: field::PARAMETER_OFFSET,
                field: "ParameterOffset",
            })?;
        let mut write_id = [0; WRITE_ID_LEN];
        write_id.copy_from_slice(id);
        Ok(Self {
            header: w.header,
            name: w.name,
            priority: v.priority(),
            class: v.class(),
            timeout_ms: v.timeout(),
            write_id,
            data: w.data,
        })
    }

    /// Largest `data` for a mailslot `name` (full `\MAILSLOT\…` form): the
    /// whole message must stay within 65 535 bytes.
    pub fn max_data_len(name: &[u8]) -> usize {
        usize::from(u16::MAX).saturating_sub(FIXED_LEN + name.len() + 1 + WRITE_ID_LEN)
    }

    fn transaction(&self) -> TransactionRequest<'_> {
        TransactionRequest {
            header: self.header,
            timeout: self.timeout_ms,
            priority: self.priority,
            class: self.class,
            name: self.name,
            params: &self.write_id,
            data: self.data,
        }
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.transaction().buffer_len()
    }

    /// Writes the SMB message into `buf[..buffer_len()]`: the layout of
    /// [`smb`](crate::smb) with the write id as Parameters right after the
    /// name and the data right after them. Fails with [`Error::NotMailslot`]
    /// for a bad name and [`Error::TooLong`] above 65 535 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.transaction().emit(buf)
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

/// The answer to a [`SessionMailslotWrite`]: an SMB_COM_TRANSACTION response.
///
/// Success is WordCount 10 with no parameters, data or setup; an error is
/// status ERRDOS + a Win32 code (`ERROR_*` constants) with WordCount 0, the
/// usual form of SMB1 error responses. Parsing accepts both forms for either status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionReply {
    /// Header: command 0x25, reply bit; `error_class`/`error_code` carry the status.
    pub header: SmbHeader,
}

impl TransactionReply {
    /// The success reply to `request`.
    pub fn success(request: &SmbHeader) -> Self {
        Self {
            header: SmbHeader {
                command: SMB_COM_TRANSACTION,
                ..request.reply()
            },
        }
    }

    /// The ERRDOS reply with Win32 error `code` to `request`.
    pub fn error(request: &SmbHeader, code: u16) -> Self {
        let mut r = Self::success(request);
        r.header.error_class = ERRDOS;
        r.header.error_code = code;
        r
    }

    /// Parses a reply: command 0x25, reply bit set, WordCount 0 or 10 with no
    /// parameters, data or setup, ByteCount inside the message.
    pub fn parse(smb: &[u8]) -> Result<Self> {
        let header = SmbHeader::parse(smb)?;
        if header.command != SMB_COM_TRANSACTION {
            return Err(Error::NotTransaction {
                offset: field::COMMAND,
                command: header.command,
            });
        }
        expect_reply(&header)?;
        let body = Body::parse(smb)?;
        match body.words.len() / 2 {
            0 => {}
            n if n == usize::from(TRANSACTION_REPLY_WORDS) => {
                // TotalParameterCount, TotalDataCount, (Reserved), ParameterCount,
                // (ParameterOffset, ParameterDisplacement), DataCount, (DataOffset,
                // DataDisplacement), SetupCount + Reserved.
                for (i, name, mask) in [
                    (0, "TotalParameterCount", 0xFFFF),
                    (1, "TotalDataCount", 0xFFFF),
                    (3, "ParameterCount", 0xFFFF),
                    (6, "DataCount", 0xFFFF),
                    (9, "SetupCount", 0x00FF),
                ] {
                    if body.word(i) & mask != 0 {
                        return Err(Error::BadLength {
                            offset: field::WORDS + 2 * i,
                            field: name,
                        });
                    }
                }
            }
            n => {
                return Err(Error::BadValue {
                    offset: field::WORD_COUNT,
                    field: "WordCount",
                    value: n as u32,
                })
            }
        }
        Ok(Self { header })
    }

    /// The reply's bytes (command written as 0x25): WordCount 10 on success, 0 on error; ByteCount 0.
    pub fn to_vec(&self) -> Vec<u8> {
        let header = SmbHeader {
            command: SMB_COM_TRANSACTION,
            ..self.header
        };
        let words = if header.is_success() {
            TRANSACTION_REPLY_WORDS
        } else {
            0
        };
        let len = SMB_HEADER_LEN + 1 + 2 * usize::from(words) + 2;
        let mut v = vec![0; len];
        let mut w = Writer::fill(&mut v);
        header.write(&mut w);
        w.u8(words);
        if words != 0 {
            // No parameters or data: both offsets point at the end of the message.
            let end = len as u16;
            for word in [0, 0, 0, 0, end, 0, 0, end, 0, 0] {
                w.le16(word);
            }
        }
        w.le16(0);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(command: u8) -> SmbHeader {
        SmbHeader {
            command,
            pid: 0x1c4c,
            mid: 7,
            ..SmbHeader::default()
        }
    }

    #[test]
    fn header_fields_and_reply() {
        let h = SmbHeader {
            command: 0xD5,
            error_class: ERRSRV,
            error_code: 0x0102,
            flags: 0x18,
            flags2: 0x4003,
            tid: 0x1111,
            pid: 0x2222,
            uid: 0x3333,
            mid: 0x4444,
        };
        let mut buf = [0xAA; 33];
        assert_eq!(h.emit(&mut buf), Ok(32));
        assert_eq!(
            hex(&buf[..32]),
            "ff534d42d502000201180340000000000000000000000000111122223333444400"[..64]
        );
        assert_eq!(buf[32], 0xAA);
        assert_eq!(SmbHeader::parse(&buf), Ok(h));
        let r = h.reply();
        assert_eq!((r.flags, r.error_class, r.error_code), (0x98, 0, 0));
        assert_eq!(
            (r.tid, r.pid, r.uid, r.mid, r.flags2),
            (0x1111, 0x2222, 0x3333, 0x4444, 0x4003)
        );
        assert!(r.is_reply() && r.is_success() && !h.is_success());
        assert_eq!(
            h.emit(&mut [0; 31]),
            Err(Error::BufferTooSmall { need: 32, have: 31 })
        );
        assert_eq!(
            SmbHeader::parse(b"\xFFSM"),
            Err(Error::Truncated {
                offset: 0,
                need: 4,
                have: 3
            })
        );
        assert_eq!(
            SmbHeader::parse(b"\xFESMB1234"),
            Err(Error::NotSmb { offset: 0 })
        );
        assert_eq!(
            SmbHeader::parse(&buf[..31]),
            Err(Error::Truncated {
                offset: 0,
                need: 32,
                have: 31
            })
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn all_commands() -> Vec<MessageCommand<'static>> {
        vec![
            MessageCommand::Single {
                originator: b"ALICE",
                destination: b"BOB",
                text: b"hi\r\nthere",
            },
            MessageCommand::Start {
                originator: b"alice",
                destination: b"TESTHOST",
            },
            MessageCommand::Text {
                group: 0x1234,
                text: b"hello popup\r\n",
            },
            MessageCommand::End { group: 0x1234 },
        ]
    }

    #[test]
    fn message_commands_round_trip_and_truncation() {
        for cmd in all_commands() {
            let v = cmd.to_vec(&hdr(0)).unwrap();
            assert_eq!(v.len(), cmd.buffer_len());
            let (h, back) = MessageCommand::parse(&v).unwrap();
            assert_eq!(back, cmd);
            assert_eq!(h, hdr(cmd.command()));
            for n in 0..v.len() {
                assert!(
                    MessageCommand::parse(&v[..n]).is_err(),
                    "{cmd:?} cut at {n}"
                );
            }
            // Bytes after ByteCount are ignored.
            let mut longer = v.clone();
            longer.push(0x55);
            assert_eq!(MessageCommand::parse(&longer).unwrap().1, cmd);
        }
    }

    #[test]
    fn message_command_layout() {
        // The body smbclient sends for 0xD5 (wire-protocol notes §8).
        let v = all_commands()[1].to_vec(&hdr(0)).unwrap();
        assert_eq!(hex(&v[32..]), "00110004616c696365000454455354484f535400");
        let v = all_commands()[3].to_vec(&hdr(0)).unwrap();
        assert_eq!(hex(&v[32..]), "0134120000");
        let v = all_commands()[0].to_vec(&hdr(0)).unwrap();
        assert_eq!(
            hex(&v[32..]),
            "00180004414c4943450004424f420001090068690d0a7468657265"
        );
    }

    #[test]
    fn message_command_errors() {
        let text = all_commands()[2].to_vec(&hdr(0)).unwrap();
        // Wrong WordCount for the command.
        let mut b = text.clone();
        b[32] = 0;
        b.drain(33..35);
        assert_eq!(
            MessageCommand::parse(&b),
            Err(Error::BadValue {
                offset: 32,
                field: "WordCount",
                value: 0
            })
        );
        let start = all_commands()[1].to_vec(&hdr(0)).unwrap();
        let mut b = start.clone();
        b[32] = 1;
        assert!(matches!(
            MessageCommand::parse(&b),
            Err(Error::BadValue {
                offset: 32,
                field: "WordCount",
                ..
            }) | Err(Error::BadLength { .. })
        ));
        // ByteCount past the end.
        let mut b = start.clone();
        b[33] += 1;
        assert_eq!(
            MessageCommand::parse(&b),
            Err(Error::BadLength {
                offset: 33,
                field: "ByteCount"
            })
        );
        // A name without its NUL inside ByteCount.
        let mut b = start.clone();
        b[33] -= 1;
        assert_eq!(
            MessageCommand::parse(&b),
            Err(Error::Unterminated { offset: 43 })
        );
        // Wrong buffer format.
        let mut b = start.clone();
        b[35] = 0x02;
        assert_eq!(
            MessageCommand::parse(&b),
            Err(Error::BadValue {
                offset: 35,
                field: "buffer format",
                value: 2
            })
        );
        // Data block longer than ByteCount.
        let mut b = text.clone();
        b[38] += 1;
        assert!(matches!(
            MessageCommand::parse(&b),
            Err(Error::Truncated { offset: 40, .. })
        ));
        // Not a message command.
        let mut b = text;
        b[4] = 0x25;
        assert_eq!(
            MessageCommand::parse(&b),
            Err(Error::BadValue {
                offset: 4,
                field: "SMB message command",
                value: 0x25
            })
        );
        // Not SMB at all.
        let mut b = start;
        b[0] = 0;
        assert_eq!(MessageCommand::parse(&b), Err(Error::NotSmb { offset: 0 }));
        // Emit errors.
        let nul = MessageCommand::Start {
            originator: b"a\0b",
            destination: b"c",
        };
        assert!(matches!(
            nul.to_vec(&hdr(0)),
            Err(Error::Inconsistent { .. })
        ));
        let big = vec![b'x'; 70_000];
        let long = MessageCommand::Text {
            group: 1,
            text: &big,
        };
        assert!(matches!(long.to_vec(&hdr(0)), Err(Error::TooLong { .. })));
        let near = vec![b'x'; 65_533];
        let over = MessageCommand::Single {
            originator: b"a",
            destination: b"b",
            text: &near,
        };
        assert!(matches!(
            over.to_vec(&hdr(0)),
            Err(Error::TooLong {
                field: "ByteCount",
                ..
            })
        ));
    }

    #[test]
    fn message_replies() {
        let req = hdr(SMB_COM_SEND_START_MB_MESSAGE);
        let v = message_reply(&req, Some(0x1234), None);
        assert_eq!(hex(&v[32..]), "0134120000");
        assert_eq!(v[9], 0x80);
        let r = MessageReply::parse(&v).unwrap();
        assert_eq!(
            r,
            MessageReply {
                header: req.reply(),
                group: Some(0x1234)
            }
        );
        let v = message_reply(&req, None, Some((ERRSRV, 0x0030)));
        assert_eq!(v.len(), 35);
        let r = MessageReply::parse(&v).unwrap();
        assert_eq!(
            (r.header.error_class, r.header.error_code, r.group),
            (ERRSRV, 0x30, None)
        );
        assert_eq!(r.to_vec(), v);
        for n in 0..v.len() {
            assert!(MessageReply::parse(&v[..n]).is_err());
        }
        let mut b = v.clone();
        b[9] = 0;
        assert_eq!(
            MessageReply::parse(&b),
            Err(Error::BadValue {
                offset: 9,
                field: "SMB reply flag",
                value: 0
            })
        );
        let mut b = message_reply(&req, Some(1), None);
        b[32] = 2;
        b.extend_from_slice(&[0, 0]);
        assert_eq!(
            MessageReply::parse(&b),
            Err(Error::BadValue {
                offset: 32,
                field: "WordCount",
                value: 2
            })
        );
    }

    fn write() -> SessionMailslotWrite<'static> {
        SessionMailslotWrite {
            header: SmbHeader {
                pid: 0x77,
                mid: 3,
                ..SmbHeader::new(SMB_COM_TRANSACTION)
            },
            name: b"\\MAILSLOT\\demo\\inbox",
            priority: 1,
            class: 1,
            timeout_ms: 5000,
            write_id: *b"instanceseq00001",
            data: b"hello over tcp",
        }
    }

    #[test]
    fn session_write_layout_and_round_trip() {
        let w = write();
        let v = w.to_vec().unwrap();
        let name_end = 69 + w.name.len() + 1;
        assert_eq!(v.len(), name_end + 16 + w.data.len());
        let le = |o: usize| u16::from_le_bytes([v[o], v[o + 1]]);
        assert_eq!((le(33), le(35)), (16, 14)); // TotalParameterCount, TotalDataCount
        assert_eq!(u32::from_le_bytes([v[45], v[46], v[47], v[48]]), 5000);
        assert_eq!((le(51), le(53)), (16, name_end as u16)); // ParameterCount/Offset
        assert_eq!((le(55), le(57)), (14, (name_end + 16) as u16)); // DataCount/Offset
        assert_eq!(&v[name_end..name_end + 16], b"instanceseq00001");
        assert_eq!(SessionMailslotWrite::parse(&v), Ok(w));
        // The datagram parser reads the same message (parameters ignored).
        let d = crate::MailslotWriteRepr::parse(&v).unwrap();
        assert_eq!((d.name, d.data, d.class), (w.name, w.data, 1));
        // A header with another command is written as 0x25.
        let other = SessionMailslotWrite {
            header: SmbHeader::new(0xD5),
            ..w
        };
        assert_eq!(other.to_vec().unwrap()[4], 0x25);
        for n in 0..v.len() {
            assert!(SessionMailslotWrite::parse(&v[..n]).is_err(), "cut at {n}");
        }
        // A datagram write (no parameters) is not a session write.
        let dg = crate::MailslotWriteRepr {
            name: w.name,
            priority: 1,
            class: 2,
            data: b"x",
        }
        .to_vec()
        .unwrap();
        assert_eq!(
            SessionMailslotWrite::parse(&dg),
            Err(Error::BadLength {
                offset: 33,
                field: "TotalParameterCount"
            })
        );
    }

    #[test]
    fn session_write_errors() {
        let v = write().to_vec().unwrap();
        let set16 =
            |b: &mut Vec<u8>, o: usize, x: u16| b[o..o + 2].copy_from_slice(&x.to_le_bytes());
        let mut b = v.clone();
        set16(&mut b, 51, 15);
        assert_eq!(
            SessionMailslotWrite::parse(&b),
            Err(Error::BadLength {
                offset: 51,
                field: "ParameterCount"
            })
        );
        let mut b = v.clone();
        set16(&mut b, 35, 100); // secondary requests announced
        assert_eq!(
            SessionMailslotWrite::parse(&b),
            Err(Error::BadLength {
                offset: 35,
                field: "TotalDataCount"
            })
        );
        let mut b = v.clone();
        set16(&mut b, 53, 75); // parameters inside the name
        assert_eq!(
            SessionMailslotWrite::parse(&b),
            Err(Error::BadLength {
                offset: 53,
                field: "ParameterOffset"
            })
        );
        let mut b = v.clone();
        set16(&mut b, 53, (v.len() - 15) as u16); // parameters past the end
        assert!(matches!(
            SessionMailslotWrite::parse(&b),
            Err(Error::BadLength { offset: 53, .. })
        ));
        let mut b = v.clone();
        set16(&mut b, 55, 15); // data past the end
        set16(&mut b, 35, 15);
        assert!(matches!(
            SessionMailslotWrite::parse(&b),
            Err(Error::DataOutOfBounds { .. })
        ));
        let mut b = v.clone();
        b[32] = 18;
        assert!(matches!(
            SessionMailslotWrite::parse(&b),
            Err(Error::BadWordCount { .. })
        ));
        let mut b = v.clone();
        let nul = b.iter().skip(69).position(|&x| x == 0).unwrap() + 69;
        b[nul] = b'x';
        b.truncate(nul + 1);
        assert!(SessionMailslotWrite::parse(&b).is_err());
        let mut b = v;
        b[70] = b'X';
        assert_eq!(
            SessionMailslotWrite::parse(&b),
            Err(Error::NotMailslot { offset: 69 })
        );
        // Emit errors.
        let bad_name = SessionMailslotWrite {
            name: b"\\PIPE\\x",
            ..write()
        };
        assert_eq!(bad_name.to_vec(), Err(Error::NotMailslot { offset: 0 }));
        let max = SessionMailslotWrite::max_data_len(write().name);
        let big = vec![0u8; max + 1];
        let too_big = SessionMailslotWrite {
            data: &big,
            ..write()
        };
        assert!(matches!(too_big.to_vec(), Err(Error::TooLong { .. })));
        let fits = SessionMailslotWrite {
            data: &big[..max],
            ..write()
        };
        assert_eq!(fits.to_vec().unwrap().len(), 65_535);
    }

    #[test]
    fn transaction_replies() {
        let req = write().header;
        let ok = TransactionReply::success(&req);
        let v = ok.to_vec();
        assert_eq!(v.len(), 32 + 1 + 20 + 2);
        assert_eq!(v[32], 10);
        assert_eq!(TransactionReply::parse(&v), Ok(ok));
        assert!(ok.header.is_reply() && ok.header.is_success());
        assert_eq!((ok.header.pid, ok.header.mid), (0x77, 3));
        let err = TransactionReply::error(&req, ERROR_SEM_TIMEOUT);
        let e = err.to_vec();
        assert_eq!(e.len(), 35);
        assert_eq!(hex(&e[4..9]), "2501007900");
        assert_eq!(TransactionReply::parse(&e), Ok(err));
        for n in 0..v.len() {
            assert!(TransactionReply::parse(&v[..n]).is_err());
        }
        let mut b = v.clone();
        b[4] = 0x32;
        assert_eq!(
            TransactionReply::parse(&b),
            Err(Error::NotTransaction {
                offset: 4,
                command: 0x32
            })
        );
        let mut b = v.clone();
        b[9] = 0;
        assert!(matches!(
            TransactionReply::parse(&b),
            Err(Error::BadValue { offset: 9, .. })
        ));
        let mut b = v.clone();
        b[32] = 9;
        assert_eq!(
            TransactionReply::parse(&b),
            Err(Error::BadValue {
                offset: 32,
                field: "WordCount",
                value: 9
            })
        );
        let mut b = v.clone();
        b[35] = 4; // TotalDataCount
        assert_eq!(
            TransactionReply::parse(&b),
            Err(Error::BadLength {
                offset: 35,
                field: "TotalDataCount"
            })
        );
        let mut b = v.clone();
        b[51] = 1; // SetupCount
        assert_eq!(
            TransactionReply::parse(&b),
            Err(Error::BadLength {
                offset: 51,
                field: "SetupCount"
            })
        );
        let mut b = e;
        b[33] = 1; // ByteCount 1, nothing after it
        assert_eq!(
            TransactionReply::parse(&b),
            Err(Error::BadLength {
                offset: 33,
                field: "ByteCount"
            })
        );
    }
}
