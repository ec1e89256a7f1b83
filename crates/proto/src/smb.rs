//! SMB_COM_TRANSACTION carrying a mailslot write ([MS-MAIL] §2.2.1, [MS-CIFS] §2.2.4.33).
//!
//! All SMB fields are little-endian. Offsets are from the start of the SMB
//! message, which is the user data of a NetBIOS datagram.
//!
//! # Receiving
//! [`MailslotWriteRepr::parse`] checks the signature, command 0x25, WordCount
//! = 14 + SetupCount with SetupCount ≥ 3, Setup\[0\] = 1 (write) and a
//! `\MAILSLOT\` transaction name (any case), then takes the data from
//! **DataOffset/DataCount only**: padding between the name and the data may be
//! absent, zero or garbage. DataOffset may not point into the name, and
//! DataOffset + DataCount must lie inside the message (as Samba checks).
//! Every other header field (SMB Flags/Flags2, PID, MaxParameterCount,
//! transaction Flags, Timeout, ParameterOffset, ByteCount) is ignored.
//!
//! # Sending
//! [`MailslotWriteRepr::emit`] writes the layout Samba's nmbd uses (byte for byte,
//! checked against captures): SMB Flags, Flags2, PID, UID, MID, TID all 0 (what Samba and the
//! Windows browser send; [MS-MAIL]'s suggested 0x18/0x0004/0xFEFF are optional
//! and ignored by every receiver); WordCount 17; TotalDataCount = DataCount = N;
//! all parameter counts and MaxParameter/MaxData/MaxSetup 0; transaction Flags
//! 0; Timeout 0 (what nmbd sends and the [MS-MAIL] example has; the Windows
//! browser sends 1000; ignored on receipt);
//! ParameterOffset 0; SetupCount 3 with opcode 1, priority and class;
//! ByteCount = name + NUL + N; **no padding**, so DataOffset = 70 + L where L is
//! the length of the `\MAILSLOT\…` name (Samba's and the browser's layout,
//! which tshark and nmbd accept).
//!
//! # Shared with the session path
//! [`SmbHeader`] (the 32-byte SMB1 header) and the one transaction encoder and
//! parser live here; [`SessionMailslotWrite`](crate::SessionMailslotWrite)
//! uses them with a non-zero header, a Timeout and 16 parameter bytes, which
//! are written right after the name's NUL (ParameterOffset 0 when there are
//! none, as above).

use crate::cursor::{self, Reader, Writer};
use crate::error::{Error, Result};

/// SMB_COM_TRANSACTION.
pub const SMB_COM_TRANSACTION: u8 = 0x25;
/// The SMB protocol signature.
pub const SMB_SIGNATURE: [u8; 4] = *b"\xFFSMB";
/// Mailslot opcode 1: write.
pub const MAILSLOT_WRITE: u16 = 1;
/// The transaction-name prefix of every mailslot.
pub const MAILSLOT_PREFIX: &str = "\\MAILSLOT\\";
/// Fixed part of an emitted message before the name: header, WordCount, 17 words, ByteCount.
pub const FIXED_LEN: usize = field::BYTE_COUNT.end;
/// Timeout (ms) written by [`MailslotWriteRepr::emit`] (0, as nmbd).
pub const EMIT_TIMEOUT_MS: u32 = 0;

/// Where the fields are: the 32-byte SMB header, then the transaction words
/// ([MS-CIFS] §2.2.4.33.1; the setup words of a mailslot write, [MS-MAIL] §2.2.1).
mod field {
    use crate::cursor::Field;
    pub(crate) const PROTOCOL: Field = 0..4;
    pub(crate) const COMMAND: usize = 4;
    pub(crate) const ERROR_CLASS: usize = 5;
    pub(crate) const ERROR_CODE: Field = 7..9;
    pub(crate) const FLAGS: usize = 9;
    pub(crate) const FLAGS2: Field = 10..12;
    pub(crate) const TID: Field = 24..26;
    pub(crate) const PID: Field = 26..28;
    pub(crate) const UID: Field = 28..30;
    pub(crate) const MID: Field = 30..32;
    pub(crate) const TOTAL_PARAMETER_COUNT: Field = 33..35;
    /// End of the SMB header; WordCount follows.
    pub(crate) const WORD_COUNT: usize = 32;
    /// The first parameter word.
    pub(crate) const WORDS: usize = WORD_COUNT + 1;
    pub(crate) const TOTAL_DATA_COUNT: Field = 35..37;
    pub(crate) const TIMEOUT: Field = 45..49;
    pub(crate) const PARAMETER_COUNT: Field = 51..53;
    pub(crate) const PARAMETER_OFFSET: Field = 53..55;
    pub(crate) const DATA_COUNT: Field = 55..57;
    pub(crate) const DATA_OFFSET: Field = 57..59;
    pub(crate) const SETUP_COUNT: usize = 59;
    pub(crate) const SETUP0: Field = 61..63;
    pub(crate) const SETUP1: Field = 63..65;
    pub(crate) const SETUP2: Field = 65..67;
    /// ByteCount after the 17 words of a write with three setup words.
    pub(crate) const BYTE_COUNT: Field = 67..69;
    /// The words a mailslot write emits: 14 + SetupCount 3.
    pub(crate) const EMIT_WORD_COUNT: u8 = 17;

    /// Offset of ByteCount after `word_count` parameter words.
    pub(crate) const fn byte_count(word_count: u8) -> usize {
        WORDS + 2 * word_count as usize
    }
}

/// Largest payload of a mailslot message sent in one datagram, given the
/// mailslot name (with or without the `\MAILSLOT\` prefix, any case):
/// `432 − roundup4(n)` where `n` is the number of characters after
/// `\MAILSLOT\` ([MS-MAIL] endnote 2: 1–4 → 428, 5–8 → 424, 9–12 → 420 …).
///
/// ```
/// assert_eq!(mailslot_proto::max_network_payload("\\MAILSLOT\\BROWSE"), 424);
/// assert_eq!(mailslot_proto::max_network_payload("net\\netlogon"), 420);
/// ```
pub fn max_network_payload(mailslot_name: &str) -> usize {
    let b = mailslot_name.as_bytes();
    let p = MAILSLOT_PREFIX.as_bytes();
    let rest = if b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p) {
        &b[p.len()..]
    } else {
        b
    };
    432usize.saturating_sub(rest.len().div_ceil(4) * 4)
}

/// Normalises a mailslot name to the wire form `\MAILSLOT\path`: accepts
/// `\MAILSLOT\path`, `\\.\mailslot\path`, `/mailslot/path`, `MAILSLOT\path`
/// or a bare `path`; `/` becomes `\`; the prefix is upper-cased (Wireshark only
/// dissects an upper-case prefix), the path keeps its case.
pub fn mailslot_path(name: &str) -> String {
    let n = name.replace('/', "\\");
    let n = n.strip_prefix("\\\\.").unwrap_or(&n);
    let lower = n.to_ascii_lowercase();
    let rest = if lower.starts_with("\\mailslot\\") {
        &n[10..]
    } else if lower.starts_with("mailslot\\") {
        &n[9..]
    } else {
        n.trim_start_matches('\\')
    };
    format!("{MAILSLOT_PREFIX}{rest}")
}

/// Zero-copy view of an SMB_COM_TRANSACTION message (smoltcp style).
#[derive(Debug, Clone)]
pub struct SmbTransaction<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SmbTransaction<T> {
    /// Wraps a buffer without checking it; accessors may panic on short input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures every fixed field and the words announced by WordCount are present;
    /// after it no accessor panics.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        let need = if b.len() > field::WORD_COUNT {
            (field::byte_count(b[field::WORD_COUNT]) + 2).max(FIXED_LEN)
        } else {
            FIXED_LEN
        };
        cursor::check_len(b, need)
    }

    fn le16(&self, field: cursor::Field) -> u16 {
        cursor::le16_at(self.buffer.as_ref(), field)
    }

    /// The SMB command byte.
    pub fn command(&self) -> u8 {
        self.buffer.as_ref()[field::COMMAND]
    }
    /// WordCount.
    pub fn word_count(&self) -> u8 {
        self.buffer.as_ref()[field::WORD_COUNT]
    }
    /// TotalParameterCount.
    pub fn total_parameter_count(&self) -> u16 {
        self.le16(field::TOTAL_PARAMETER_COUNT)
    }
    /// ParameterCount.
    pub fn parameter_count(&self) -> u16 {
        self.le16(field::PARAMETER_COUNT)
    }
    /// ParameterOffset (from the start of the SMB message).
    pub fn parameter_offset(&self) -> u16 {
        self.le16(field::PARAMETER_OFFSET)
    }
    /// TotalDataCount.
    pub fn total_data_count(&self) -> u16 {
        self.le16(field::TOTAL_DATA_COUNT)
    }
    /// Timeout in milliseconds (ignored on receipt).
    pub fn timeout(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::TIMEOUT];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    /// DataCount.
    pub fn data_count(&self) -> u16 {
        self.le16(field::DATA_COUNT)
    }
    /// DataOffset (from the start of the SMB message).
    pub fn data_offset(&self) -> u16 {
        self.le16(field::DATA_OFFSET)
    }
    /// SetupCount.
    pub fn setup_count(&self) -> u8 {
        self.buffer.as_ref()[field::SETUP_COUNT]
    }
    /// Setup\[0\]: mailslot opcode.
    pub fn opcode(&self) -> u16 {
        self.le16(field::SETUP0)
    }
    /// Setup\[1\]: priority.
    pub fn priority(&self) -> u16 {
        self.le16(field::SETUP1)
    }
    /// Setup\[2\]: class.
    pub fn class(&self) -> u16 {
        self.le16(field::SETUP2)
    }
    /// Offset of the ByteCount field.
    pub fn byte_count_offset(&self) -> usize {
        field::byte_count(self.word_count())
    }
    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// A mailslot write: what a receiver needs and a sender chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailslotWriteRepr<'a> {
    /// Full transaction name, e.g. `\MAILSLOT\BROWSE` (no NUL).
    pub name: &'a [u8],
    /// Priority (Setup\[1\]), 0–9 by convention; ignored by Windows.
    pub priority: u16,
    /// Class (Setup\[2\]): 2 = unreliable/broadcast (the only one used over datagrams), 1 = reliable.
    pub class: u16,
    /// The message (Databytes).
    pub data: &'a [u8],
}

impl<'a> MailslotWriteRepr<'a> {
    /// Parses an SMB mailslot write (see the module docs for what is checked and ignored).
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let w = ParsedWrite::parse(buf)?;
        Ok(MailslotWriteRepr {
            name: w.name,
            priority: w.view.priority(),
            class: w.view.class(),
            data: w.data,
        })
    }

    /// The transaction this write is: an all-zero header, no parameters.
    fn transaction(&self) -> TransactionRequest<'a> {
        TransactionRequest {
            header: SmbHeader::default(),
            timeout: EMIT_TIMEOUT_MS,
            priority: self.priority,
            class: self.class,
            name: self.name,
            params: &[],
            data: self.data,
        }
    }

    /// Offset of the data in an emitted message: 70 + name length (no padding).
    pub fn data_offset(&self) -> usize {
        self.transaction().data_offset()
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.transaction().buffer_len()
    }

    /// Checks the fields fit their wire fields (offsets and counts ≤ 65535,
    /// no NUL in the name, name starts with `\MAILSLOT\`).
    pub fn check(&self) -> Result<()> {
        self.transaction().check()
    }

    /// Fails with [`Error::TooLargeForNetwork`] if the data exceeds
    /// [`max_network_payload`] for this name. Applies to any write sent as a
    /// datagram (second class; first class over datagrams has the same cap).
    pub fn check_network_size(&self) -> Result<()> {
        let limit = max_network_payload(&String::from_utf8_lossy(self.name));
        if self.data.len() > limit {
            return Err(Error::TooLargeForNetwork {
                len: self.data.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Writes the message (layout in the module docs) into `buf[..buffer_len()]`;
    /// returns the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.transaction().emit(buf)
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

/// Bytes of the SMB1 header.
pub const SMB_HEADER_LEN: usize = field::WORD_COUNT;
/// SMB header Flags bit 0x80: the message is a reply.
pub const FLAGS_REPLY: u8 = 0x80;

/// The 32-byte SMB1 header ([MS-CIFS] §2.2.3.1), little-endian.
///
/// The status is kept in its DOS form (class byte at offset 5, code at 7–8;
/// the reserved byte at 6 is ignored). PIDHigh, SecurityFeatures and the
/// reserved bytes are ignored on receipt and written as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SmbHeader {
    /// Command byte.
    pub command: u8,
    /// DOS error class (0 = success, [`ERRDOS`](crate::smb_session::ERRDOS), …).
    pub error_class: u8,
    /// DOS error code (a Win32 error number for `ERRDOS`).
    pub error_code: u16,
    /// Flags (0x80 = reply).
    pub flags: u8,
    /// Flags2.
    pub flags2: u16,
    /// Tree id.
    pub tid: u16,
    /// Process id (low 16 bits).
    pub pid: u16,
    /// User id.
    pub uid: u16,
    /// Multiplex id.
    pub mid: u16,
}

impl SmbHeader {
    /// A request header for `command` with every other field 0.
    pub fn new(command: u8) -> Self {
        Self {
            command,
            ..Self::default()
        }
    }

    /// Parses the header at the start of an SMB message: checks the
    /// `\xFFSMB` signature ([`Error::NotSmb`]) and that 32 bytes are there.
    pub fn parse(smb: &[u8]) -> Result<Self> {
        cursor::check_len(smb, field::PROTOCOL.end)?;
        if smb[field::PROTOCOL] != SMB_SIGNATURE {
            return Err(Error::NotSmb { offset: 0 });
        }
        cursor::check_len(smb, SMB_HEADER_LEN)?;
        let le = |f| cursor::le16_at(smb, f);
        Ok(Self {
            command: smb[field::COMMAND],
            error_class: smb[field::ERROR_CLASS],
            error_code: le(field::ERROR_CODE),
            flags: smb[field::FLAGS],
            flags2: le(field::FLAGS2),
            tid: le(field::TID),
            pid: le(field::PID),
            uid: le(field::UID),
            mid: le(field::MID),
        })
    }

    /// The header of the reply to this request: same command and ids,
    /// Flags with the reply bit set, status 0.
    #[must_use]
    pub fn reply(&self) -> Self {
        Self {
            flags: self.flags | FLAGS_REPLY,
            error_class: 0,
            error_code: 0,
            ..*self
        }
    }

    /// Is the reply bit set?
    pub fn is_reply(&self) -> bool {
        self.flags & FLAGS_REPLY != 0
    }

    /// Does the status say success (class and code 0)?
    pub fn is_success(&self) -> bool {
        self.error_class == 0 && self.error_code == 0
    }

    /// Bytes [`Self::emit`] writes: [`SMB_HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        SMB_HEADER_LEN
    }

    /// Writes the 32 header bytes into `buf[..32]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        cursor::emit(buf, SMB_HEADER_LEN, |w| self.write(w))
    }

    /// Appends the 32 header bytes.
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.bytes(&SMB_SIGNATURE);
        w.u8(self.command);
        w.u8(self.error_class);
        w.u8(0);
        w.le16(self.error_code);
        w.u8(self.flags);
        w.le16(self.flags2);
        w.zeros(field::TID.start - field::FLAGS2.end); // PIDHigh, SecurityFeatures, Reserved
        w.le16(self.tid);
        w.le16(self.pid);
        w.le16(self.uid);
        w.le16(self.mid);
    }
}

/// An SMB_COM_TRANSACTION mailslot write as this crate sends it, over a
/// datagram or a session: the one encoder of both. Three setup words, no
/// padding: the name at [`FIXED_LEN`], the parameters right after its NUL,
/// the data right after the parameters.
pub(crate) struct TransactionRequest<'a> {
    /// Header; its command is written as 0x25 whatever it says.
    pub(crate) header: SmbHeader,
    pub(crate) timeout: u32,
    pub(crate) priority: u16,
    pub(crate) class: u16,
    /// Full transaction name (`\MAILSLOT\…`), no NUL.
    pub(crate) name: &'a [u8],
    pub(crate) params: &'a [u8],
    pub(crate) data: &'a [u8],
}

impl TransactionRequest<'_> {
    fn params_offset(&self) -> usize {
        FIXED_LEN + self.name.len() + 1
    }

    pub(crate) fn data_offset(&self) -> usize {
        self.params_offset() + self.params.len()
    }

    pub(crate) fn buffer_len(&self) -> usize {
        self.data_offset() + self.data.len()
    }

    /// The name starts with `\MAILSLOT\` and has no NUL; the whole message
    /// fits the 16-bit offsets and counts.
    pub(crate) fn check(&self) -> Result<()> {
        if !has_mailslot_prefix(self.name) || self.name.contains(&0) {
            return Err(Error::NotMailslot { offset: 0 });
        }
        if self.buffer_len() > usize::from(u16::MAX) {
            return Err(Error::TooLong {
                field: "mailslot message",
                len: self.buffer_len(),
            });
        }
        Ok(())
    }

    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        // Lengths fit in u16: check() bounded the whole message.
        let params = self.params.len() as u16;
        let data = self.data.len() as u16;
        // No parameters: ParameterOffset 0, as nmbd writes it.
        let params_offset = if params == 0 {
            0
        } else {
            self.params_offset() as u16
        };
        cursor::emit(buf, self.buffer_len(), |w| {
            SmbHeader {
                command: SMB_COM_TRANSACTION,
                ..self.header
            }
            .write(w);
            w.u8(field::EMIT_WORD_COUNT);
            w.le16(params); // TotalParameterCount
            w.le16(data); // TotalDataCount
            w.le16(0); // MaxParameterCount
            w.le16(0); // MaxDataCount
            w.u8(0); // MaxSetupCount
            w.u8(0); // Reserved
            w.le16(0); // Flags
            w.le32(self.timeout);
            w.le16(0); // Reserved2
            w.le16(params); // ParameterCount
            w.le16(params_offset);
            w.le16(data); // DataCount
            w.le16(self.data_offset() as u16);
            w.u8(3); // SetupCount
            w.u8(0);
            w.le16(MAILSLOT_WRITE);
            w.le16(self.priority);
            w.le16(self.class);
            w.le16((self.buffer_len() - FIXED_LEN) as u16); // ByteCount
            w.cstr(self.name);
            w.bytes(self.params);
            w.bytes(self.data);
        })
    }
}

/// Does `name` start with `\MAILSLOT\` (any case)?
fn has_mailslot_prefix(name: &[u8]) -> bool {
    name.len() >= MAILSLOT_PREFIX.len()
        && name[..MAILSLOT_PREFIX.len()].eq_ignore_ascii_case(MAILSLOT_PREFIX.as_bytes())
}

/// A mailslot write located in an SMB message: the one parser of both the
/// datagram and the session write (checks in the module docs).
pub(crate) struct ParsedWrite<'a> {
    pub(crate) header: SmbHeader,
    pub(crate) view: SmbTransaction<&'a [u8]>,
    pub(crate) name: &'a [u8],
    /// Offset just after the name's NUL.
    pub(crate) name_end: usize,
    pub(crate) data: &'a [u8],
}

impl<'a> ParsedWrite<'a> {
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Self> {
        cursor::check_len(buf, field::PROTOCOL.end)?;
        if buf[field::PROTOCOL] != SMB_SIGNATURE {
            return Err(Error::NotSmb { offset: 0 });
        }
        if buf.len() > field::COMMAND && buf[field::COMMAND] != SMB_COM_TRANSACTION {
            return Err(Error::NotTransaction {
                offset: field::COMMAND,
                command: buf[field::COMMAND],
            });
        }
        let view = SmbTransaction::new_checked(buf)?;
        let header = SmbHeader::parse(buf)?;
        let (wc, sc) = (view.word_count(), view.setup_count());
        if sc < 3 || u16::from(wc) != 14 + u16::from(sc) {
            return Err(Error::BadWordCount {
                offset: field::WORD_COUNT,
                word_count: wc,
                setup_count: sc,
            });
        }
        if view.opcode() != MAILSLOT_WRITE {
            return Err(Error::BadValue {
                offset: field::SETUP0.start,
                field: "mailslot opcode",
                value: u32::from(view.opcode()),
            });
        }
        let name_off = view.byte_count_offset() + 2;
        let mut r = Reader::at(buf, name_off);
        let name = r.cstr()?;
        if !has_mailslot_prefix(name) {
            return Err(Error::NotMailslot { offset: name_off });
        }
        let name_end = r.pos();
        let (doff, dcnt) = (view.data_offset(), view.data_count());
        let start = usize::from(doff);
        let end = start + usize::from(dcnt);
        if start < name_end || end > buf.len() {
            return Err(Error::DataOutOfBounds {
                offset: field::DATA_COUNT.start,
                data_offset: doff,
                data_count: dcnt,
                len: buf.len(),
            });
        }
        Ok(Self {
            header,
            view,
            name,
            name_end,
            data: &buf[start..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(max_network_payload("\\MAILSLOT\\a"), 428);
        assert_eq!(max_network_payload("\\mailslot\\abcd"), 428);
        assert_eq!(max_network_payload("\\MAILSLOT\\abcde"), 424);
        assert_eq!(max_network_payload("abcdefgh"), 424);
        assert_eq!(max_network_payload("\\MAILSLOT\\abcdefghi"), 420);
        assert_eq!(max_network_payload("\\MAILSLOT\\abcdefghijklmnop"), 416);
        let data = [0u8; 425];
        let w = MailslotWriteRepr {
            name: b"\\MAILSLOT\\BROWSE",
            priority: 1,
            class: 2,
            data: &data,
        };
        assert_eq!(
            w.check_network_size(),
            Err(Error::TooLargeForNetwork {
                len: 425,
                limit: 424
            })
        );
        let ok = MailslotWriteRepr {
            data: &data[..424],
            ..w
        };
        assert_eq!(ok.check_network_size(), Ok(()));
    }

    #[test]
    fn paths() {
        assert_eq!(mailslot_path("NET\\NETLOGON"), "\\MAILSLOT\\NET\\NETLOGON");
        assert_eq!(mailslot_path("/mailslot/a/b"), "\\MAILSLOT\\a\\b");
        assert_eq!(mailslot_path("\\\\.\\mailslot\\x"), "\\MAILSLOT\\x");
        assert_eq!(mailslot_path("\\MAILSLOT\\BROWSE"), "\\MAILSLOT\\BROWSE");
    }

    #[test]
    fn emit_layout_prefilled() {
        let w = MailslotWriteRepr {
            name: b"\\MAILSLOT\\T",
            priority: 5,
            class: 2,
            data: b"hi",
        };
        let mut buf = vec![0xa5; w.buffer_len() + 3];
        assert_eq!(w.emit(&mut buf).unwrap(), 70 + 11 + 2);
        assert_eq!(&buf[83..], &[0xa5; 3]);
        assert_eq!(u16::from_le_bytes([buf[57], buf[58]]), 81);
        assert_eq!(MailslotWriteRepr::parse(&buf[..83]).unwrap(), w);
        assert_eq!(
            w.emit(&mut [0u8; 10]),
            Err(Error::BufferTooSmall { need: 83, have: 10 })
        );
    }

    #[test]
    fn bad_input() {
        let w = MailslotWriteRepr {
            name: b"\\MAILSLOT\\T",
            priority: 5,
            class: 2,
            data: b"hi",
        };
        let good = w.to_vec().unwrap();
        for n in 0..good.len() {
            assert!(MailslotWriteRepr::parse(&good[..n]).is_err(), "len {n}");
        }
        let mut b = good.clone();
        b[4] = 0x72;
        assert_eq!(
            MailslotWriteRepr::parse(&b),
            Err(Error::NotTransaction {
                offset: 4,
                command: 0x72
            })
        );
        let mut b = good.clone();
        b[32] = 16;
        assert!(matches!(
            MailslotWriteRepr::parse(&b),
            Err(Error::BadWordCount { .. })
        ));
        let mut b = good.clone();
        b[55] = 3; // DataCount past the end
        assert!(matches!(
            MailslotWriteRepr::parse(&b),
            Err(Error::DataOutOfBounds { .. })
        ));
        let mut b = good.clone();
        b[57] = 70; // DataOffset into the name
        assert!(matches!(
            MailslotWriteRepr::parse(&b),
            Err(Error::DataOutOfBounds { .. })
        ));
        let mut b = good.clone();
        b[70] = b'X';
        assert_eq!(
            MailslotWriteRepr::parse(&b),
            Err(Error::NotMailslot { offset: 69 })
        );
        let mut b = good;
        b[61] = 2;
        assert!(matches!(
            MailslotWriteRepr::parse(&b),
            Err(Error::BadValue { .. })
        ));
    }
}
