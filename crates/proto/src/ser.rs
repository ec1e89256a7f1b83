//! `Serialize` for the parsed forms (feature `serde`): the JSON `mailslot
//! decode` prints comes from here.
//!
//! The shape is made for people and scripts reading captures, not for a
//! round trip: byte strings are text with one character per byte (Latin-1, so
//! nothing is lost), raw bytes are `*_hex`, bit fields are `"0x…"` strings,
//! a NetBIOS name is `name` (padding removed, see [`NetbiosName::name_lossy`])
//! plus `suffix` (two hex digits) and `scope` when there is one, code numbers
//! are numbers with a `*_name` beside them where people want one. Most types
//! derive `Serialize` with renamed fields; the ones below are written out
//! because a JSON key is computed from several fields (or one field gives two keys).

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::browser::Announcement;
use crate::datagram::{DatagramBody, DatagramFlags, DatagramRepr, MailslotMessage, MsgType};
use crate::name::QualifiedName;
use crate::nbns::{NamePacket, NbAddress, NodeStatusName, NsFlags, NsOpcode};
use crate::payload::Payload;
use crate::smb::MailslotWriteRepr;

/// Bytes as text, one character per byte (Latin-1), so nothing is lost.
pub(crate) fn latin1<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Latin1(b))
}

/// A list of byte strings as Latin-1 texts.
pub(crate) fn latin1_list<S: Serializer>(list: &[&[u8]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(|b| Latin1(b)))
}

/// Bytes as lower-case hex digits.
pub(crate) fn hex<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Hex(b))
}

/// A 32-bit field of flags as `0x` and eight hex digits.
pub(crate) fn hex32<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("0x{v:08x}"))
}

/// The first six bytes of a node status' statistics: the MAC address, `aa:bb:…`.
pub(crate) fn mac<S: Serializer>(statistics: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!(
        "{}",
        statistics
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    ))
}

/// Is there no MAC address (fewer than six bytes of statistics)?
pub(crate) fn no_mac(statistics: &[u8]) -> bool {
    statistics.len() < 6
}

struct Latin1<'a>(&'a [u8]);

impl core::fmt::Display for Latin1<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0
            .iter()
            .try_for_each(|&c| core::fmt::Write::write_char(f, char::from(c)))
    }
}

impl Serialize for Latin1<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// `"{a}.{b}"`, for the two version bytes of an announcement.
struct Version(u8, u8);

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}.{}", self.0, self.1))
    }
}

/// A suffix byte as two upper-case hex digits.
struct Suffix(u8);

impl Serialize for Suffix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:02X}", self.0))
    }
}

/// Writes `{prefix}name`, `{prefix}suffix` and, if there is a scope, `{prefix}scope`.
fn name_entries<M: SerializeMap>(
    m: &mut M,
    prefix: &str,
    q: &QualifiedName,
) -> Result<(), M::Error> {
    m.serialize_entry(&format!("{prefix}name"), &q.name.name_lossy())?;
    m.serialize_entry(&format!("{prefix}suffix"), &Suffix(q.name.suffix()))?;
    if !q.scope.is_empty() {
        m.serialize_entry(&format!("{prefix}scope"), &q.scope)?;
    }
    Ok(())
}

/// `{"name", "suffix", "scope"?}`.
impl Serialize for QualifiedName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        name_entries(&mut m, "", self)?;
        m.end()
    }
}

/// The MSG_TYPE names of RFC 1002.
fn msg_type_name(t: MsgType) -> &'static str {
    match t {
        MsgType::DirectUnique => "DIRECT_UNIQUE",
        MsgType::DirectGroup => "DIRECT_GROUP",
        MsgType::Broadcast => "BROADCAST",
        MsgType::Error => "ERROR",
        MsgType::QueryRequest => "QUERY_REQUEST",
        MsgType::PositiveQueryResponse => "POSITIVE_QUERY_RESPONSE",
        MsgType::NegativeQueryResponse => "NEGATIVE_QUERY_RESPONSE",
        MsgType::Unknown(_) => "UNKNOWN",
    }
}

/// The header fields every datagram has: `msg_type`, `msg_type_name`, `flags`
/// (reserved bits masked), `node_type`, `dgm_id`, `source_ip`, `source_port`.
fn header_entries<M: SerializeMap>(
    m: &mut M,
    msg_type: MsgType,
    flags: DatagramFlags,
    dgm_id: u16,
    source: (&std::net::Ipv4Addr, u16),
) -> Result<(), M::Error> {
    m.serialize_entry("msg_type", &msg_type)?;
    m.serialize_entry("msg_type_name", msg_type_name(msg_type))?;
    m.serialize_entry("flags", &flags.bits())?;
    m.serialize_entry("node_type", &format_args!("{:?}", flags.node_type()))?;
    m.serialize_entry("dgm_id", &dgm_id)?;
    m.serialize_entry("source_ip", source.0)?;
    m.serialize_entry("source_port", &source.1)
}

/// The header, then `error_code` (0x13), `destination_*` (0x14–0x16) or
/// `source_*` and `destination_*` (0x10–0x12; the user data is left to
/// [`MailslotMessage`]).
impl Serialize for DatagramRepr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let source = (&self.source_ip, self.source_port);
        header_entries(&mut m, self.msg_type, self.flags, self.dgm_id, source)?;
        match &self.body {
            DatagramBody::Error(code) => m.serialize_entry("error_code", code)?,
            DatagramBody::Query(n) => name_entries(&mut m, "destination_", n)?,
            DatagramBody::Data {
                source,
                destination,
                ..
            } => {
                name_entries(&mut m, "source_", source)?;
                name_entries(&mut m, "destination_", destination)?;
            }
        }
        m.end()
    }
}

/// The datagram header, `source_*`, `destination_*`, then the write's entries.
impl Serialize for MailslotMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let source = (&self.source_ip, self.source_port);
        header_entries(&mut m, self.msg_type, self.flags, self.dgm_id, source)?;
        name_entries(&mut m, "source_", &self.source)?;
        name_entries(&mut m, "destination_", &self.destination)?;
        write_entries(&mut m, &self.write)?;
        m.end()
    }
}

/// `mailslot`, `priority`, `class`, `data_len`, `data_hex`, and for a
/// well-known mailslot the decoded `payload` (or why it did not decode, `payload_error`).
fn write_entries<M: SerializeMap>(m: &mut M, w: &MailslotWriteRepr<'_>) -> Result<(), M::Error> {
    m.serialize_entry("mailslot", &Latin1(w.name))?;
    m.serialize_entry("priority", &w.priority)?;
    m.serialize_entry("class", &w.class)?;
    m.serialize_entry("data_len", &w.data.len())?;
    m.serialize_entry("data_hex", &format_args!("{}", Hex(w.data)))?;
    match Payload::parse(w.name, w.data) {
        None => Ok(()),
        Some(Ok(p)) => m.serialize_entry("payload", &p),
        Some(Err(e)) => m.serialize_entry("payload_error", &format_args!("{e}")),
    }
}

/// See `write_entries`.
impl Serialize for MailslotWriteRepr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        write_entries(&mut m, self)?;
        m.end()
    }
}

/// `server_name`, `update_count`, `periodicity_ms`, `os_version` ("4.9"),
/// `server_type` ("0x…"), `browser_version` ("15.1"), `signature` ("0xaa55"), `comment`.
impl Serialize for Announcement<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("server_name", &Latin1(self.name))?;
        m.serialize_entry("update_count", &self.update_count)?;
        m.serialize_entry("periodicity_ms", &self.periodicity_ms)?;
        m.serialize_entry("os_version", &Version(self.os_major, self.os_minor))?;
        m.serialize_entry("server_type", &format_args!("0x{:08x}", self.server_type))?;
        let browser = Version(self.browser_major, self.browser_minor);
        m.serialize_entry("browser_version", &browser)?;
        m.serialize_entry("signature", &format_args!("0x{:04x}", self.signature))?;
        m.serialize_entry("comment", &Latin1(self.comment))?;
        m.end()
    }
}

/// `type` (`browser`, `netlogon`, `messenger`), for browser and NETLOGON
/// frames `opcode` and `opcode_name`, then the message's own entries.
impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Tagged<T> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            opcode: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            opcode_name: Option<String>,
            #[serde(flatten)]
            message: T,
        }
        match self {
            Payload::Browser(b) => Tagged {
                kind: "browser",
                opcode: Some(u8::from(b.opcode()).into()),
                opcode_name: Some(format!("{:?}", b.opcode())),
                message: b,
            }
            .serialize(s),
            Payload::Netlogon(n) => Tagged {
                kind: "netlogon",
                opcode: Some(n.opcode().into()),
                opcode_name: Some(format!("{:?}", n.opcode())),
                message: n,
            }
            .serialize(s),
            Payload::Messenger(msg) => Tagged {
                kind: "messenger",
                opcode: None,
                opcode_name: None,
                message: msg,
            }
            .serialize(s),
        }
    }
}

/// The opcode's name as the CLI has always printed it.
fn ns_opcode_name(op: NsOpcode) -> &'static str {
    match op {
        NsOpcode::Query => "query",
        NsOpcode::Registration => "registration",
        NsOpcode::Release => "release",
        NsOpcode::Wack => "wack",
        NsOpcode::Refresh | NsOpcode::RefreshAlt => "refresh",
        NsOpcode::MultiHomedRegistration => "multihomed_registration",
        NsOpcode::Unknown(_) => "unknown",
    }
}

/// `trn_id`, `flags` (the 16 bits), `response`, `opcode`, `opcode_name`,
/// `nm_flags` (the NM_FLAGS set, e.g. `["RD", "B"]`), `rcode`, and the four sections.
impl Serialize for NamePacket {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.flags;
        let nm_flags: Vec<&str> = [
            (NsFlags::AA, "AA"),
            (NsFlags::TC, "TC"),
            (NsFlags::RD, "RD"),
            (NsFlags::RA, "RA"),
            (NsFlags::BROADCAST, "B"),
        ]
        .into_iter()
        .filter(|&(bit, _)| f.has(bit))
        .map(|(_, n)| n)
        .collect();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("trn_id", &self.trn_id)?;
        m.serialize_entry("flags", &f.0)?;
        m.serialize_entry("response", &f.is_response())?;
        m.serialize_entry("opcode", &f.opcode())?;
        m.serialize_entry("opcode_name", ns_opcode_name(f.opcode()))?;
        m.serialize_entry("nm_flags", &nm_flags)?;
        m.serialize_entry("rcode", &f.rcode())?;
        m.serialize_entry("questions", &self.questions)?;
        m.serialize_entry("answers", &self.answers)?;
        m.serialize_entry("authority", &self.authority)?;
        m.serialize_entry("additional", &self.additional)?;
        m.end()
    }
}

/// `ip`, `group`, `node_type` and the raw `nb_flags`.
impl Serialize for NbAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("ip", &self.ip)?;
        m.serialize_entry("group", &self.is_group())?;
        m.serialize_entry("node_type", &format_args!("{:?}", self.node_type()))?;
        m.serialize_entry("nb_flags", &self.flags)?;
        m.end()
    }
}

/// `name`, `suffix`, `group` and the raw NAME_FLAGS `flags`.
impl Serialize for NodeStatusName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("name", &self.name.name_lossy())?;
        m.serialize_entry("suffix", &Suffix(self.name.suffix()))?;
        m.serialize_entry("group", &(self.flags & 0x8000 != 0))?;
        m.serialize_entry("flags", &self.flags)?;
        m.end()
    }
}
