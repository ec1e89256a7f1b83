//! NETLOGON mailslot messages on `\MAILSLOT\NET\NETLOGON` / `NTLOGON` and
//! their reply mailslots ([MS-ADTS] §6.3.1; Samba `nbt.idl`).
//!
//! The opcode is a little-endian u16. ASCII strings end in NUL; "Unicode"
//! strings are UTF-16LE ending in a 16-bit NUL. Alignment rules, with offsets
//! counted from the start of the NETLOGON message:
//! - LOGON_PRIMARY_QUERY / LOGON_PRIMARY_RESPONSE: after the ASCII name(s),
//!   pad to an even offset before the first Unicode string (pad bytes ignored on
//!   receipt, zero when sent);
//! - LOGON_PRIMARY_RESPONSE from nmbd has 2 zero bytes before NtVersion (a
//!   4-byte alignment); 0–3 zero pad bytes there are accepted and kept in
//!   `pad_before_nt_version` so the message round-trips;
//! - LOGON_SAM_LOGON_REQUEST: a non-empty domain SID is preceded by zero
//!   padding to a 4-byte offset.

use crate::cursor::{self, utf16z_len, Reader, Writer};
use crate::error::{Error, Result};

open_enum! {
    /// NETLOGON opcode.
    pub enum NetlogonOpcode(u16) {
        /// 0: LM 1.0/2.0 logon request.
        LogonRequest = 0x00,
        /// 6: LM 2.0 logon response.
        LogonResponse2 = 0x06,
        /// 7: who is the PDC?
        LogonPrimaryQuery = 0x07,
        /// 12: the PDC answers.
        LogonPrimaryResponse = 0x0C,
        /// 0x12: SAM logon request (DC locator).
        LogonSamLogonRequest = 0x12,
        /// 0x13: NT4 SAM logon response.
        LogonSamLogonResponse = 0x13,
        /// 0x14: DC paused.
        LogonSamPauseResponse = 0x14,
        /// 0x15: user unknown.
        LogonSamUserUnknown = 0x15,
        /// 0x17: _EX response.
        LogonSamLogonResponseEx = 0x17,
        /// 0x18: _EX pause.
        LogonSamPauseResponseEx = 0x18,
        /// 0x19: _EX user unknown.
        LogonSamUserUnknownEx = 0x19,
    }
}

/// NtVersion, LmNtToken and Lm20Token, the tail of most NETLOGON messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VersionTokens {
    /// NtVersion bits (1 = NETLOGON_NT_VERSION_1, …).
    pub nt_version: u32,
    /// LmNtToken (0xFFFF).
    pub lmnt_token: u16,
    /// Lm20Token (0xFFFF).
    pub lm20_token: u16,
}

impl VersionTokens {
    /// Bytes on the wire: NtVersion (4), LmNtToken (2), Lm20Token (2).
    const LEN: usize = 8;

    /// NtVersion `v` with both tokens 0xFFFF.
    pub const fn new(nt_version: u32) -> Self {
        Self {
            nt_version,
            lmnt_token: 0xFFFF,
            lm20_token: 0xFFFF,
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            nt_version: r.le32()?,
            lmnt_token: r.le16()?,
            lm20_token: r.le16()?,
        })
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.le32(self.nt_version);
        w.le16(self.lmnt_token);
        w.le16(self.lm20_token);
    }
}

/// A parsed NETLOGON message.
///
/// JSON (feature `serde`): the variant's fields (ASCII strings as Latin-1 text,
/// `mailslot` as `reply_mailslot`, the SID as `domain_sid_hex`, the version
/// tokens inline); [`crate::Payload`] adds `opcode` and `opcode_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum NetlogonMessage<'a> {
    /// 7: LOGON_PRIMARY_QUERY.
    PrimaryQuery {
        /// ComputerName (ASCII).
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
        computer_name: &'a [u8],
        /// Reply mailslot, e.g. `\MAILSLOT\NET\GETDC817`.
        #[cfg_attr(
            feature = "serde",
            serde(rename = "reply_mailslot", serialize_with = "crate::ser::latin1")
        )]
        mailslot: &'a [u8],
        /// UnicodeComputerName.
        unicode_computer_name: String,
        /// NtVersion and tokens.
        #[cfg_attr(feature = "serde", serde(flatten))]
        version: VersionTokens,
    },
    /// 12: LOGON_PRIMARY_RESPONSE.
    PrimaryResponse {
        /// PrimaryDCName (ASCII).
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
        primary_dc_name: &'a [u8],
        /// UnicodePrimaryDCName.
        unicode_primary_dc_name: String,
        /// UnicodeDomainName.
        unicode_domain_name: String,
        /// Zero bytes before NtVersion (0 from Windows, 2 from nmbd).
        pad_before_nt_version: u8,
        /// NtVersion and tokens.
        #[cfg_attr(feature = "serde", serde(flatten))]
        version: VersionTokens,
    },
    /// 0x12: LOGON_SAM_LOGON_REQUEST.
    SamLogonRequest {
        /// RequestCount.
        request_count: u16,
        /// UnicodeComputerName.
        unicode_computer_name: String,
        /// UnicodeUserName.
        unicode_user_name: String,
        /// Reply mailslot (ASCII).
        #[cfg_attr(
            feature = "serde",
            serde(rename = "reply_mailslot", serialize_with = "crate::ser::latin1")
        )]
        mailslot: &'a [u8],
        /// AllowableAccountControlBits.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex32"))]
        allowable_account_control: u32,
        /// Domain SID bytes (empty when DomainSidSize is 0).
        #[cfg_attr(
            feature = "serde",
            serde(rename = "domain_sid_hex", serialize_with = "crate::ser::hex")
        )]
        domain_sid: &'a [u8],
        /// NtVersion and tokens.
        #[cfg_attr(feature = "serde", serde(flatten))]
        version: VersionTokens,
    },
    /// 0x13 / 0x14 / 0x15: the NT4 SAM logon responses.
    SamLogonResponse {
        /// LogonSamLogonResponse, LogonSamPauseResponse or LogonSamUserUnknown.
        #[cfg_attr(feature = "serde", serde(skip))]
        opcode: NetlogonOpcode,
        /// UnicodeLogonServer (`\\NAME`).
        unicode_logon_server: String,
        /// UnicodeUserName.
        unicode_user_name: String,
        /// UnicodeDomainName.
        unicode_domain_name: String,
        /// NtVersion and tokens.
        #[cfg_attr(feature = "serde", serde(flatten))]
        version: VersionTokens,
    },
    /// Any other opcode, with the bytes after it.
    Unknown {
        /// The opcode.
        #[cfg_attr(feature = "serde", serde(skip))]
        opcode: u16,
        /// Everything after it.
        #[cfg_attr(
            feature = "serde",
            serde(rename = "body_hex", serialize_with = "crate::ser::hex")
        )]
        body: &'a [u8],
    },
}

fn is_sam_response(op: NetlogonOpcode) -> bool {
    matches!(
        op,
        NetlogonOpcode::LogonSamLogonResponse
            | NetlogonOpcode::LogonSamPauseResponse
            | NetlogonOpcode::LogonSamUserUnknown
    )
}

fn no_nul(s: &[u8]) -> Result<()> {
    if s.contains(&0) {
        return Err(Error::Inconsistent {
            what: "NUL inside a string",
        });
    }
    Ok(())
}

fn no_nul_str(s: &str) -> Result<()> {
    no_nul(s.as_bytes())
}

impl<'a> NetlogonMessage<'a> {
    /// The opcode of this message.
    pub fn opcode(&self) -> NetlogonOpcode {
        match self {
            NetlogonMessage::PrimaryQuery { .. } => NetlogonOpcode::LogonPrimaryQuery,
            NetlogonMessage::PrimaryResponse { .. } => NetlogonOpcode::LogonPrimaryResponse,
            NetlogonMessage::SamLogonRequest { .. } => NetlogonOpcode::LogonSamLogonRequest,
            NetlogonMessage::SamLogonResponse { opcode, .. } => *opcode,
            NetlogonMessage::Unknown { opcode, .. } => NetlogonOpcode::from(*opcode),
        }
    }

    /// Parses a NETLOGON message (mailslot data). Bytes after the last field are ignored.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let raw_op = r.le16()?;
        let op = NetlogonOpcode::from(raw_op);
        Ok(match op {
            NetlogonOpcode::LogonPrimaryQuery => {
                let computer_name = r.cstr()?;
                let mailslot = r.cstr()?;
                if r.pos() % 2 == 1 {
                    r.skip(1)?;
                }
                NetlogonMessage::PrimaryQuery {
                    computer_name,
                    mailslot,
                    unicode_computer_name: r.utf16z()?,
                    version: VersionTokens::read(&mut r)?,
                }
            }
            NetlogonOpcode::LogonPrimaryResponse => {
                let primary_dc_name = r.cstr()?;
                if r.pos() % 2 == 1 {
                    r.skip(1)?;
                }
                let unicode_primary_dc_name = r.utf16z()?;
                let unicode_domain_name = r.utf16z()?;
                let at = r.pos();
                let rest = r.rest();
                let pad = rest.len().saturating_sub(VersionTokens::LEN);
                if pad > 3 || rest[..pad].iter().any(|&b| b != 0) {
                    // Windows' layout: NtVersion follows directly; trailing bytes ignored.
                    let version = VersionTokens::read(&mut r)?;
                    return Ok(NetlogonMessage::PrimaryResponse {
                        primary_dc_name,
                        unicode_primary_dc_name,
                        unicode_domain_name,
                        pad_before_nt_version: 0,
                        version,
                    });
                }
                r.skip(pad).map_err(|_| Error::BadLength {
                    offset: at,
                    field: "pad",
                })?;
                NetlogonMessage::PrimaryResponse {
                    primary_dc_name,
                    unicode_primary_dc_name,
                    unicode_domain_name,
                    pad_before_nt_version: pad as u8,
                    version: VersionTokens::read(&mut r)?,
                }
            }
            NetlogonOpcode::LogonSamLogonRequest => {
                let request_count = r.le16()?;
                let unicode_computer_name = r.utf16z()?;
                let unicode_user_name = r.utf16z()?;
                let mailslot = r.cstr()?;
                let allowable_account_control = r.le32()?;
                let sid_size = r.le32()? as usize;
                let domain_sid = if sid_size > 0 {
                    let pad = (4 - r.pos() % 4) % 4;
                    r.skip(pad)?;
                    r.take(sid_size)?
                } else {
                    &[]
                };
                NetlogonMessage::SamLogonRequest {
                    request_count,
                    unicode_computer_name,
                    unicode_user_name,
                    mailslot,
                    allowable_account_control,
                    domain_sid,
                    version: VersionTokens::read(&mut r)?,
                }
            }
            op if is_sam_response(op) => NetlogonMessage::SamLogonResponse {
                opcode: op,
                unicode_logon_server: r.utf16z()?,
                unicode_user_name: r.utf16z()?,
                unicode_domain_name: r.utf16z()?,
                version: VersionTokens::read(&mut r)?,
            },
            _ => NetlogonMessage::Unknown {
                opcode: raw_op,
                body: r.rest(),
            },
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            NetlogonMessage::PrimaryQuery {
                computer_name,
                mailslot,
                unicode_computer_name,
                ..
            } => {
                let a = 2 + computer_name.len() + 1 + mailslot.len() + 1;
                a + a % 2 + utf16z_len(unicode_computer_name) + VersionTokens::LEN
            }
            NetlogonMessage::PrimaryResponse {
                primary_dc_name,
                unicode_primary_dc_name,
                unicode_domain_name,
                pad_before_nt_version,
                ..
            } => {
                let a = 2 + primary_dc_name.len() + 1;
                a + a % 2
                    + utf16z_len(unicode_primary_dc_name)
                    + utf16z_len(unicode_domain_name)
                    + usize::from(*pad_before_nt_version)
                    + VersionTokens::LEN
            }
            NetlogonMessage::SamLogonRequest {
                unicode_computer_name,
                unicode_user_name,
                mailslot,
                domain_sid,
                ..
            } => {
                let mut n = 4
                    + utf16z_len(unicode_computer_name)
                    + utf16z_len(unicode_user_name)
                    + mailslot.len()
                    + 1
                    + 8;
                if !domain_sid.is_empty() {
                    n += (4 - n % 4) % 4 + domain_sid.len();
                }
                n + VersionTokens::LEN
            }
            NetlogonMessage::SamLogonResponse {
                unicode_logon_server,
                unicode_user_name,
                unicode_domain_name,
                ..
            } => {
                2 + utf16z_len(unicode_logon_server)
                    + utf16z_len(unicode_user_name)
                    + utf16z_len(unicode_domain_name)
                    + VersionTokens::LEN
            }
            NetlogonMessage::Unknown { body, .. } => 2 + body.len(),
        }
    }

    fn check(&self) -> Result<()> {
        match self {
            NetlogonMessage::PrimaryQuery {
                computer_name,
                mailslot,
                unicode_computer_name,
                ..
            } => {
                no_nul(computer_name)?;
                no_nul(mailslot)?;
                no_nul_str(unicode_computer_name)
            }
            NetlogonMessage::PrimaryResponse {
                primary_dc_name,
                unicode_primary_dc_name,
                unicode_domain_name,
                pad_before_nt_version,
                ..
            } => {
                if *pad_before_nt_version > 3 {
                    return Err(Error::Inconsistent {
                        what: "pad_before_nt_version > 3",
                    });
                }
                no_nul(primary_dc_name)?;
                no_nul_str(unicode_primary_dc_name)?;
                no_nul_str(unicode_domain_name)
            }
            NetlogonMessage::SamLogonRequest {
                unicode_computer_name,
                unicode_user_name,
                mailslot,
                ..
            } => {
                no_nul_str(unicode_computer_name)?;
                no_nul_str(unicode_user_name)?;
                no_nul(mailslot)
            }
            NetlogonMessage::SamLogonResponse {
                opcode,
                unicode_logon_server,
                unicode_user_name,
                unicode_domain_name,
                ..
            } => {
                if !is_sam_response(*opcode) {
                    return Err(Error::Inconsistent {
                        what: "SamLogonResponse opcode",
                    });
                }
                no_nul_str(unicode_logon_server)?;
                no_nul_str(unicode_user_name)?;
                no_nul_str(unicode_domain_name)
            }
            NetlogonMessage::Unknown { opcode, .. } => match NetlogonOpcode::from(*opcode) {
                NetlogonOpcode::LogonPrimaryQuery
                | NetlogonOpcode::LogonPrimaryResponse
                | NetlogonOpcode::LogonSamLogonRequest => Err(Error::Inconsistent {
                    what: "Unknown with a parsed opcode",
                }),
                op if is_sam_response(op) => Err(Error::Inconsistent {
                    what: "Unknown with a parsed opcode",
                }),
                _ => Ok(()),
            },
        }
    }

    /// Writes the message into `buf[..buffer_len()]` (pads are zero).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        cursor::emit(buf, self.buffer_len(), |w| {
            w.le16(self.opcode().into());
            match self {
                NetlogonMessage::PrimaryQuery {
                    computer_name,
                    mailslot,
                    unicode_computer_name,
                    version,
                } => {
                    w.cstr(computer_name);
                    w.cstr(mailslot);
                    let p = w.pos() % 2;
                    w.zeros(p);
                    w.utf16z(unicode_computer_name);
                    version.write(w);
                }
                NetlogonMessage::PrimaryResponse {
                    primary_dc_name,
                    unicode_primary_dc_name,
                    unicode_domain_name,
                    pad_before_nt_version,
                    version,
                } => {
                    w.cstr(primary_dc_name);
                    let p = w.pos() % 2;
                    w.zeros(p);
                    w.utf16z(unicode_primary_dc_name);
                    w.utf16z(unicode_domain_name);
                    w.zeros(usize::from(*pad_before_nt_version));
                    version.write(w);
                }
                NetlogonMessage::SamLogonRequest {
                    request_count,
                    unicode_computer_name,
                    unicode_user_name,
                    mailslot,
                    allowable_account_control,
                    domain_sid,
                    version,
                } => {
                    w.le16(*request_count);
                    w.utf16z(unicode_computer_name);
                    w.utf16z(unicode_user_name);
                    w.cstr(mailslot);
                    w.le32(*allowable_account_control);
                    w.le32(domain_sid.len() as u32);
                    if !domain_sid.is_empty() {
                        let p = (4 - w.pos() % 4) % 4;
                        w.zeros(p);
                        w.bytes(domain_sid);
                    }
                    version.write(w);
                }
                NetlogonMessage::SamLogonResponse {
                    unicode_logon_server,
                    unicode_user_name,
                    unicode_domain_name,
                    version,
                    ..
                } => {
                    w.utf16z(unicode_logon_server);
                    w.utf16z(unicode_user_name);
                    w.utf16z(unicode_domain_name);
                    version.write(w);
                }
                NetlogonMessage::Unknown { body, .. } => w.bytes(body),
            }
        })
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmbd_primary_response_pad() {
        // From the nmbd-round capture: 0x0C reply with 2 zero bytes before NtVersion.
        let d = hex_decode(
            "0c00534d42504545520053004d004200500045004500520000004d0053004c00410042000000000001000000ffffffff",
        );
        let m = NetlogonMessage::parse(&d).unwrap();
        match &m {
            NetlogonMessage::PrimaryResponse {
                primary_dc_name,
                unicode_domain_name,
                pad_before_nt_version,
                version,
                ..
            } => {
                assert_eq!(*primary_dc_name, b"SMBPEER");
                assert_eq!(unicode_domain_name, "MSLAB");
                assert_eq!(*pad_before_nt_version, 2);
                assert_eq!(version.nt_version, 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.to_vec().unwrap(), d);
    }

    #[test]
    fn sam_logon_request_with_sid() {
        let sid = [
            1u8, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let m = NetlogonMessage::SamLogonRequest {
            request_count: 0,
            unicode_computer_name: "CLIENT".into(),
            unicode_user_name: "alice".into(),
            mailslot: b"\\MAILSLOT\\NET\\GETDC1",
            allowable_account_control: 0x80,
            domain_sid: &sid,
            version: VersionTokens::new(1),
        };
        let v = m.to_vec().unwrap();
        let sid_at = v.len() - 8 - sid.len();
        assert_eq!(sid_at % 4, 0);
        assert_eq!(&v[sid_at..sid_at + sid.len()], &sid);
        assert_eq!(NetlogonMessage::parse(&v).unwrap(), m);
        for n in 0..v.len() {
            assert!(NetlogonMessage::parse(&v[..n]).is_err());
        }
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
