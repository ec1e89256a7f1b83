//! Browser frames on `\MAILSLOT\BROWSE` and `\MAILSLOT\LANMAN` ([MS-BRWS] §2.2).
//!
//! Byte 0 is the opcode; integers are little-endian; strings are OEM bytes
//! ending in NUL (kept as borrowed byte slices without the NUL).

use crate::cursor::{self, Reader, Writer};
use crate::error::{Error, Result};

open_enum! {
    /// Browser opcode (byte 0).
    pub enum BrowserOpcode(u8) {
        /// 0x01.
        HostAnnouncement = 0x01,
        /// 0x02.
        AnnouncementRequest = 0x02,
        /// 0x08.
        RequestElection = 0x08,
        /// 0x09.
        GetBackupListRequest = 0x09,
        /// 0x0A.
        GetBackupListResponse = 0x0A,
        /// 0x0B.
        BecomeBackup = 0x0B,
        /// 0x0C.
        DomainAnnouncement = 0x0C,
        /// 0x0D.
        MasterAnnouncement = 0x0D,
        /// 0x0E.
        ResetStateRequest = 0x0E,
        /// 0x0F.
        LocalMasterAnnouncement = 0x0F,
    }
}

/// Sizes of the fixed parts of the frames ([MS-BRWS] §2.2), after the opcode byte.
mod field {
    /// The server name field of an announcement: NUL-padded.
    pub(crate) const SERVER_NAME_LEN: usize = 16;
    /// An announcement up to its comment: UpdateCount, Periodicity, ServerName,
    /// OS versions, ServerType, browser versions, signature.
    pub(crate) const ANNOUNCEMENT_FIXED: usize = 1 + 4 + SERVER_NAME_LEN + 2 + 4 + 2 + 2;
    /// RequestElection up to the server name: Version, Criteria, Uptime, Reserved.
    pub(crate) const ELECTION_FIXED: usize = 1 + 4 + 4 + 4;
    /// A backup list request, or a response up to its names: count and token.
    pub(crate) const BACKUP_LIST_FIXED: usize = 1 + 4;
}

/// Periodicity Windows uses once settled: 12 minutes.
pub const DEFAULT_PERIODICITY_MS: u32 = 720_000;
/// The announcement signature (bytes `55 AA`).
pub const ANNOUNCEMENT_SIGNATURE: u16 = 0xAA55;

/// The shared body of HostAnnouncement (0x01), DomainAnnouncement (0x0C) and
/// LocalMasterAnnouncement (0x0F). JSON (feature `serde`): see the `Serialize` impl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement<'a> {
    /// UpdateCount (senders use 0).
    pub update_count: u8,
    /// Periodicity in ms.
    pub periodicity_ms: u32,
    /// Server (or, in 0x0C, workgroup) name: up to 16 bytes, no NUL.
    pub name: &'a [u8],
    /// OS major version.
    pub os_major: u8,
    /// OS minor version.
    pub os_minor: u8,
    /// SV_TYPE_* bits.
    pub server_type: u32,
    /// Browser version major (0x0F); in 0x0C part of a u32 Samba calls "mysterious".
    pub browser_major: u8,
    /// Browser version minor (0x01).
    pub browser_minor: u8,
    /// Signature (0xAA55).
    pub signature: u16,
    /// Comment (in 0x0C: the local master browser's name), no NUL.
    pub comment: &'a [u8],
}

/// A RequestElection body (opcode 0x08).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Election<'a> {
    /// Version (1).
    pub version: u8,
    /// Election criteria.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::hex32"))]
    pub criteria: u32,
    /// Uptime in seconds.
    pub uptime: u32,
    /// Sender's name, no NUL.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
    pub server_name: &'a [u8],
}

/// A parsed browser frame.
///
/// JSON (feature `serde`): the variant's fields (names as Latin-1 text, raw
/// bytes as `body_hex`); [`crate::Payload`] adds `opcode` and `opcode_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum BrowserMessage<'a> {
    /// 0x01, sent to `<workgroup><1D>`.
    HostAnnouncement(Announcement<'a>),
    /// 0x02 `{unused u8, ResponseName}`. nmbd's variant (an extra 0 byte before
    /// the name, no final NUL) is accepted; `emit` writes the [MS-BRWS] layout.
    AnnouncementRequest {
        /// Unused byte (0).
        #[cfg_attr(feature = "serde", serde(skip))]
        unused: u8,
        /// Name to answer to.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
        response_name: &'a [u8],
    },
    /// 0x08.
    RequestElection(Election<'a>),
    /// 0x09 `{count u8, token u32}`.
    GetBackupListRequest {
        /// Number of backup servers wanted.
        count: u8,
        /// Token echoed by the response.
        token: u32,
    },
    /// 0x0A `{count u8, token u32, names}`.
    GetBackupListResponse {
        /// Token from the request.
        token: u32,
        /// Backup browser names (BackupServerCount is their number).
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1_list"))]
        servers: Vec<&'a [u8]>,
    },
    /// 0x0B `{BrowserToPromote}`.
    BecomeBackup {
        /// Name of the browser to promote.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
        browser_name: &'a [u8],
    },
    /// 0x0C, sent to `__MSBROWSE__<01>`.
    DomainAnnouncement(Announcement<'a>),
    /// 0x0D `{MasterBrowserServerName}`.
    MasterAnnouncement {
        /// Name of the master browser.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
        master_name: &'a [u8],
    },
    /// 0x0E `{options u8}`.
    ResetStateRequest {
        /// Option bits.
        options: u8,
    },
    /// 0x0F, sent to `<workgroup><1E>`.
    LocalMasterAnnouncement(Announcement<'a>),
    /// Any other opcode, with the bytes after it.
    Unknown {
        /// The opcode byte.
        #[cfg_attr(feature = "serde", serde(skip))]
        opcode: u8,
        /// Everything after it.
        #[cfg_attr(
            feature = "serde",
            serde(rename = "body_hex", serialize_with = "crate::ser::hex")
        )]
        body: &'a [u8],
    },
}

/// A NUL-terminated string, or the rest of the buffer if there is no NUL.
fn cstr_or_rest<'a>(r: &mut Reader<'a>) -> &'a [u8] {
    match r.cstr() {
        Ok(s) => s,
        Err(_) => {
            let s = r.rest();
            let _ = r.skip(s.len());
            s
        }
    }
}

fn check_str(field: &'static str, s: &[u8], max: usize) -> Result<()> {
    if s.contains(&0) {
        return Err(Error::Inconsistent {
            what: "NUL inside a string",
        });
    }
    if s.len() > max {
        return Err(Error::TooLong {
            field,
            len: s.len(),
        });
    }
    Ok(())
}

impl<'a> Announcement<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let update_count = r.u8()?;
        let periodicity_ms = r.le32()?;
        let raw = r.take(field::SERVER_NAME_LEN)?;
        let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        Ok(Announcement {
            update_count,
            periodicity_ms,
            name,
            os_major: r.u8()?,
            os_minor: r.u8()?,
            server_type: r.le32()?,
            browser_major: r.u8()?,
            browser_minor: r.u8()?,
            signature: r.le16()?,
            comment: cstr_or_rest(r),
        })
    }
    fn len(&self) -> usize {
        field::ANNOUNCEMENT_FIXED + self.comment.len() + 1
    }
    fn write(&self, w: &mut Writer<'_>) {
        w.u8(self.update_count);
        w.le32(self.periodicity_ms);
        w.bytes(self.name);
        w.zeros(field::SERVER_NAME_LEN - self.name.len());
        w.u8(self.os_major);
        w.u8(self.os_minor);
        w.le32(self.server_type);
        w.u8(self.browser_major);
        w.u8(self.browser_minor);
        w.le16(self.signature);
        w.cstr(self.comment);
    }
}

impl<'a> BrowserMessage<'a> {
    /// The opcode of this frame.
    pub fn opcode(&self) -> BrowserOpcode {
        use BrowserMessage::*;
        match self {
            HostAnnouncement(_) => BrowserOpcode::HostAnnouncement,
            AnnouncementRequest { .. } => BrowserOpcode::AnnouncementRequest,
            RequestElection(_) => BrowserOpcode::RequestElection,
            GetBackupListRequest { .. } => BrowserOpcode::GetBackupListRequest,
            GetBackupListResponse { .. } => BrowserOpcode::GetBackupListResponse,
            BecomeBackup { .. } => BrowserOpcode::BecomeBackup,
            DomainAnnouncement(_) => BrowserOpcode::DomainAnnouncement,
            MasterAnnouncement { .. } => BrowserOpcode::MasterAnnouncement,
            ResetStateRequest { .. } => BrowserOpcode::ResetStateRequest,
            LocalMasterAnnouncement(_) => BrowserOpcode::LocalMasterAnnouncement,
            Unknown { opcode, .. } => BrowserOpcode::from(*opcode),
        }
    }

    /// Parses a browser frame (mailslot data). Strings without a final NUL
    /// run to the end; bytes after the last field are ignored.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        use BrowserMessage::*;
        let mut r = Reader::new(data);
        let op = r.u8()?;
        Ok(match BrowserOpcode::from(op) {
            BrowserOpcode::HostAnnouncement => HostAnnouncement(Announcement::read(&mut r)?),
            BrowserOpcode::DomainAnnouncement => DomainAnnouncement(Announcement::read(&mut r)?),
            BrowserOpcode::LocalMasterAnnouncement => {
                LocalMasterAnnouncement(Announcement::read(&mut r)?)
            }
            BrowserOpcode::AnnouncementRequest => {
                let unused = r.u8()?;
                // nmbd writes one extra 0 byte before the name (and no final NUL).
                if r.rest().len() > 1 && r.rest()[0] == 0 {
                    r.skip(1)?;
                }
                AnnouncementRequest {
                    unused,
                    response_name: cstr_or_rest(&mut r),
                }
            }
            BrowserOpcode::RequestElection => {
                let version = r.u8()?;
                let criteria = r.le32()?;
                let uptime = r.le32()?;
                r.skip(4)?;
                RequestElection(Election {
                    version,
                    criteria,
                    uptime,
                    server_name: cstr_or_rest(&mut r),
                })
            }
            BrowserOpcode::GetBackupListRequest => GetBackupListRequest {
                count: r.u8()?,
                token: r.le32()?,
            },
            BrowserOpcode::GetBackupListResponse => {
                let count = r.u8()?;
                let token = r.le32()?;
                let mut servers = Vec::new();
                for _ in 0..count {
                    servers.push(r.cstr()?);
                }
                GetBackupListResponse { token, servers }
            }
            BrowserOpcode::BecomeBackup => BecomeBackup {
                browser_name: cstr_or_rest(&mut r),
            },
            BrowserOpcode::MasterAnnouncement => MasterAnnouncement {
                master_name: cstr_or_rest(&mut r),
            },
            BrowserOpcode::ResetStateRequest => ResetStateRequest { options: r.u8()? },
            BrowserOpcode::Unknown(opcode) => Unknown {
                opcode,
                body: r.rest(),
            },
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        use BrowserMessage::*;
        1 + match self {
            HostAnnouncement(a) | DomainAnnouncement(a) | LocalMasterAnnouncement(a) => a.len(),
            AnnouncementRequest { response_name, .. } => 1 + response_name.len() + 1,
            RequestElection(e) => field::ELECTION_FIXED + e.server_name.len() + 1,
            GetBackupListRequest { .. } => field::BACKUP_LIST_FIXED,
            GetBackupListResponse { servers, .. } => {
                field::BACKUP_LIST_FIXED + servers.iter().map(|s| s.len() + 1).sum::<usize>()
            }
            BecomeBackup { browser_name: s } | MasterAnnouncement { master_name: s } => s.len() + 1,
            ResetStateRequest { .. } => 1,
            Unknown { body, .. } => body.len(),
        }
    }

    fn check(&self) -> Result<()> {
        use BrowserMessage::*;
        match self {
            HostAnnouncement(a) | DomainAnnouncement(a) | LocalMasterAnnouncement(a) => {
                check_str("announcement name", a.name, field::SERVER_NAME_LEN)?;
                check_str("comment", a.comment, usize::MAX)
            }
            AnnouncementRequest {
                response_name: s, ..
            }
            | BecomeBackup { browser_name: s }
            | MasterAnnouncement { master_name: s } => check_str("name", s, usize::MAX),
            RequestElection(e) => check_str("server name", e.server_name, usize::MAX),
            GetBackupListResponse { servers, .. } => {
                if servers.len() > 255 {
                    return Err(Error::TooLong {
                        field: "backup list",
                        len: servers.len(),
                    });
                }
                servers
                    .iter()
                    .try_for_each(|s| check_str("server name", s, usize::MAX))
            }
            Unknown { opcode, .. } => {
                if matches!(BrowserOpcode::from(*opcode), BrowserOpcode::Unknown(_)) {
                    Ok(())
                } else {
                    Err(Error::Inconsistent {
                        what: "Unknown with a known opcode",
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// Writes the frame into `buf[..buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        use BrowserMessage::*;
        self.check()?;
        cursor::emit(buf, self.buffer_len(), |w| {
            w.u8(self.opcode().into());
            match self {
                HostAnnouncement(a) | DomainAnnouncement(a) | LocalMasterAnnouncement(a) => {
                    a.write(w);
                }
                AnnouncementRequest {
                    unused,
                    response_name,
                } => {
                    w.u8(*unused);
                    w.cstr(response_name);
                }
                RequestElection(e) => {
                    w.u8(e.version);
                    w.le32(e.criteria);
                    w.le32(e.uptime);
                    w.le32(0);
                    w.cstr(e.server_name);
                }
                GetBackupListRequest { count, token } => {
                    w.u8(*count);
                    w.le32(*token);
                }
                GetBackupListResponse { token, servers } => {
                    w.u8(servers.len() as u8);
                    w.le32(*token);
                    for s in servers {
                        w.cstr(s);
                    }
                }
                BecomeBackup { browser_name: s } | MasterAnnouncement { master_name: s } => {
                    w.cstr(s);
                }
                ResetStateRequest { options } => w.u8(*options),
                Unknown { body, .. } => w.bytes(body),
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
    fn host_announcement_layout() {
        let a = BrowserMessage::HostAnnouncement(Announcement {
            update_count: 0,
            periodicity_ms: DEFAULT_PERIODICITY_MS,
            name: b"SMBPEER",
            os_major: 4,
            os_minor: 9,
            server_type: 0x0001_9a03,
            browser_major: 0x0f,
            browser_minor: 0x01,
            signature: ANNOUNCEMENT_SIGNATURE,
            comment: b"Samba",
        });
        let v = a.to_vec().unwrap();
        assert_eq!(v.len(), 32 + 6);
        assert_eq!(v[0], 1);
        assert_eq!(&v[2..6], &720_000u32.to_le_bytes());
        assert_eq!(&v[6..14], b"SMBPEER\0");
        assert_eq!(&v[30..32], &[0x55, 0xAA]);
        assert_eq!(BrowserMessage::parse(&v).unwrap(), a);
        for n in 0..32 {
            assert!(BrowserMessage::parse(&v[..n]).is_err());
        }
    }

    #[test]
    fn small_frames() {
        for m in [
            BrowserMessage::AnnouncementRequest {
                unused: 0,
                response_name: b"MSB",
            },
            BrowserMessage::RequestElection(Election {
                version: 1,
                criteria: 0x2001_0000,
                uptime: 5,
                server_name: b"SMBPEER",
            }),
            BrowserMessage::GetBackupListRequest { count: 4, token: 7 },
            BrowserMessage::GetBackupListResponse {
                token: 7,
                servers: vec![b"A", b"BB"],
            },
            BrowserMessage::BecomeBackup { browser_name: b"X" },
            BrowserMessage::ResetStateRequest { options: 1 },
            BrowserMessage::Unknown {
                opcode: 0x42,
                body: b"zz",
            },
        ] {
            let v = m.to_vec().unwrap();
            assert_eq!(BrowserMessage::parse(&v).unwrap(), m);
        }
    }
}
