//! `decode` / `encode` / `encode-name-query` subcommands: the wire-protocol tools.
//!
//! Everything about bytes lives in `mailslot-proto`; this module only reads
//! input (hex or pcap/pcapng captures), prints JSON lines and builds hex.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::ValueEnum;
use mailslot_proto::{
    mailslot_path, Announcement, BrowserMessage, DatagramBody, DatagramFlags, DatagramRepr,
    Election, MailslotMessage, MailslotWriteRepr, MessengerMessage, MsgType, NamePacket,
    NetbiosName, NetlogonMessage, NodeType, Payload, QualifiedName, RData, ResourceRecord,
    VersionTokens,
};
use serde_json::{json, Map, Value};

const DECODE_HELP: &str =
    "Input is `--hex HEX` (one packet), or FILE: a pcap/pcapng capture (recognised
by its magic number; Ethernet, 802.1Q, Linux cooked SLL/SLL2 and raw IPv4
link types; UDP payloads on ports 137/138 are decoded, other frames skipped)
or a hex text file (`#` starts a comment to the end of the line, whitespace
is ignored, blank lines separate packets: one block = one packet). FILE `-`
reads standard input.

Kind: from a capture, port 138 means datagram and 137 name service. Without
ports (hex), both parsers are tried: if only one accepts the bytes it wins;
if both do, name service wins when its parse covers every byte, else datagram;
if neither does, the error reported is the datagram one when the first byte is
a datagram MSG_TYPE (0x10–0x16), the name-service one otherwise. `--kind` forces one.

Output: one JSON object per packet (`kind`, header fields, names with
`*_suffix` as two hex digits, `mailslot`, `priority`, `class`, `data_hex`,
`payload` for BROWSE/LANMAN, NET\\*, MESSNGR; from captures also `frame`,
`udp_source`, `udp_destination`). A packet that does not parse
prints `{\"error\": \"...\", \"offset\": N}`. Exit status: 0 all packets decoded,
1 some packet failed, 2 the input could not be read (a capture damaged part-way:
the packets before the damage are printed, then exit 2).";

/// Decode NetBIOS datagrams (UDP 138) and name-service packets (UDP 137) to JSON lines.
///
/// Input is `--hex HEX` (one packet), or FILE: a pcap/pcapng capture (recognised
/// by its magic number; Ethernet, 802.1Q, Linux cooked SLL/SLL2 and raw IPv4
/// link types; UDP payloads on ports 137/138 are decoded, other frames skipped)
/// or a hex text file (`#` starts a comment to the end of the line, whitespace
/// is ignored, blank lines separate packets: one block = one packet). FILE `-`
/// reads standard input.
///
/// Kind: from a capture, port 138 means datagram and 137 name service. Without
/// ports (hex), both parsers are tried: if only one accepts the bytes it wins;
/// if both do, name service wins when its parse covers every byte, else datagram;
/// if neither does, the error reported is the datagram one when the first byte is
/// a datagram MSG_TYPE (0x10–0x16), the name-service one otherwise. `--kind` forces one.
///
/// Output: one JSON object per packet (`kind`, header fields, names with
/// `*_suffix` as two hex digits, `mailslot`, `priority`, `class`, `data_hex`,
/// `payload` for BROWSE/LANMAN, NET\*, MESSNGR; from captures also `frame`,
/// `udp_source`, `udp_destination`). A packet that does not parse
/// prints `{"error": "...", "offset": N}`. Exit status: 0 all packets decoded,
/// 1 some packet failed, 2 the input could not be read (a capture damaged part-way:
/// the packets before the damage are printed, then exit 2).
#[derive(clap::Args, Debug)]
#[command(after_long_help = DECODE_HELP)]
pub struct DecodeArgs {
    /// One packet as hex digits (whitespace allowed).
    #[arg(long, value_name = "HEX", conflicts_with = "file")]
    pub hex: Option<String>,
    /// A pcap/pcapng capture or a .hex text file (`-` = stdin).
    #[arg(value_name = "FILE", required_unless_present = "hex")]
    pub file: Option<PathBuf>,
    /// Force how packets are decoded instead of guessing.
    #[arg(long, value_enum, default_value_t = KindArg::Auto)]
    pub kind: KindArg,
}

/// How to decode a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// By port (captures) or content (hex).
    Auto,
    /// NetBIOS datagram (UDP 138).
    Datagram,
    /// NetBIOS name service (UDP 137).
    NameService,
}

/// NetBIOS datagram MSG_TYPE for `encode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MsgTypeArg {
    /// DIRECT_UNIQUE (0x10): to a unique name, unicast.
    Unique,
    /// DIRECT_GROUP (0x11): to a group name, subnet broadcast.
    Group,
    /// BROADCAST (0x12): to `*`, subnet broadcast.
    Broadcast,
}

/// Sending node type for the datagram FLAGS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NodeTypeArg {
    /// B-node (flags 0x02).
    B,
    /// P-node (0x06).
    P,
    /// M-node (0x0A, as nmbd).
    M,
    /// H-node (0x0E, as Windows).
    H,
}

/// Well-known payloads `encode --payload` can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PayloadArg {
    /// Browser HostAnnouncement (0x01); default mailslot \MAILSLOT\BROWSE, send to WORKGROUP<1D>.
    HostAnnouncement,
    /// Browser LocalMasterAnnouncement (0x0F); send to WORKGROUP<1E>.
    LocalMasterAnnouncement,
    /// Browser DomainAnnouncement (0x0C) (--server-name = workgroup, --comment = master); send to __MSBROWSE__<01>.
    DomainAnnouncement,
    /// Browser AnnouncementRequest (0x02) with --server-name as response name.
    AnnouncementRequest,
    /// Browser RequestElection (0x08).
    RequestElection,
    /// NETLOGON LOGON_PRIMARY_QUERY (7); default mailslot \MAILSLOT\NET\NETLOGON.
    NetlogonPrimaryQuery,
    /// NETLOGON LOGON_SAM_LOGON_REQUEST (0x12) for --user.
    NetlogonSamLogon,
    /// Messenger message From\0To\0Text\0 (from/to = the NetBIOS names, text = --message);
    /// default mailslot \MAILSLOT\MESSNGR.
    Messenger,
}

const ENCODE_HELP: &str =
    "The datagram is unfragmented (F=1), DGM_LENGTH exact, SMB laid out as Samba
does (no padding, timeout 0, as nmbd). Data comes from --data-hex, --text or a
--payload builder. Payloads above the network limit
(432 − roundup4(chars after \\MAILSLOT\\)) are refused.

Example: `mailslot encode --from CLIENT --to SMBPEER<00> --mailslot 'NET\\NETLOGON'
--payload netlogon-primary-query --reply-mailslot '\\MAILSLOT\\NET\\GETDC42'`";

/// Build one mailslot-write datagram and print the whole UDP payload as one line of hex.
///
/// The datagram is unfragmented (F=1), DGM_LENGTH exact, SMB laid out as Samba
/// does (no padding, timeout 0, as nmbd). Data comes from --data-hex, --text or a
/// --payload builder. Payloads above the network limit
/// (432 − roundup4(chars after \MAILSLOT\)) are refused.
///
/// Example: `mailslot encode --from CLIENT --to SMBPEER<00> --mailslot 'NET\NETLOGON'
/// --payload netlogon-primary-query --reply-mailslot '\MAILSLOT\NET\GETDC42'`
#[derive(clap::Args, Debug)]
#[command(after_long_help = ENCODE_HELP)]
pub struct EncodeArgs {
    /// Source NetBIOS name, `NAME<xx>` (suffix hex; `<00>` if omitted).
    #[arg(long, value_name = "NAME<xx>")]
    pub from: String,
    /// Destination NetBIOS name, `NAME<xx>`; `*` is the wildcard.
    #[arg(long, value_name = "NAME<xx>")]
    pub to: String,
    /// Mailslot: `\MAILSLOT\path`, `/mailslot/path` or `path` (required unless --payload gives a default).
    #[arg(long, value_name = "NAME")]
    pub mailslot: Option<String>,
    /// Message data as hex.
    #[arg(long, value_name = "HEX", group = "data")]
    pub data_hex: Option<String>,
    /// Message data as text (bytes of the UTF-8 string, no NUL added).
    #[arg(long, value_name = "T", group = "data")]
    pub text: Option<String>,
    /// Build a well-known payload instead of --data-hex/--text.
    #[arg(long, value_enum, group = "data")]
    pub payload: Option<PayloadArg>,
    /// Priority (Setup[1]).
    #[arg(long, default_value_t = 1)]
    pub priority: u16,
    /// Class (Setup[2]); 2 is the only one used over datagrams.
    #[arg(long, default_value_t = 2)]
    pub class: u16,
    /// SOURCE_IP in the datagram header.
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT in the datagram header.
    #[arg(long, default_value_t = 138)]
    pub source_port: u16,
    /// MSG_TYPE (default: broadcast when --to is `*`, unique otherwise).
    #[arg(long, value_enum)]
    pub msg_type: Option<MsgTypeArg>,
    /// DGM_ID (default: derived from the clock and pid).
    #[arg(long)]
    pub dgm_id: Option<u16>,
    /// Node type in FLAGS.
    #[arg(long, value_enum, default_value_t = NodeTypeArg::B)]
    pub node_type: NodeTypeArg,
    /// NetBIOS scope for both names (dotted; default none).
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Payload: server/computer name (default: the --from name).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Payload: announcement comment.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Payload: announcement server type bits (hex or decimal).
    #[arg(long, default_value = "0x00001003")]
    pub server_type: String,
    /// Payload: announcement periodicity in ms.
    #[arg(long, default_value_t = 720_000)]
    pub periodicity: u32,
    /// Payload: NETLOGON reply mailslot (default \MAILSLOT\NET\GETDC<pid>).
    #[arg(long)]
    pub reply_mailslot: Option<String>,
    /// Payload: user name for --payload netlogon-sam-logon.
    #[arg(long, default_value = "")]
    pub user: String,
    /// Payload: NETLOGON NtVersion.
    #[arg(long, default_value_t = 1)]
    pub nt_version: u32,
    /// Payload: Messenger text.
    #[arg(long, default_value = "")]
    pub message: String,
}

/// Build a NetBIOS name query (UDP 137) and print it as one line of hex.
#[derive(clap::Args, Debug)]
pub struct EncodeNameQueryArgs {
    /// Name to resolve, `NAME<xx>` (`<00>` if omitted).
    #[arg(long, value_name = "NAME<xx>")]
    pub name: String,
    /// Broadcast query (FLAGS 0x0110); default unicast/WINS (0x0100).
    #[arg(long)]
    pub broadcast: bool,
    /// NAME_TRN_ID.
    #[arg(long, default_value_t = 0)]
    pub id: u16,
    /// NetBIOS scope (dotted; default none).
    #[arg(long, default_value = "")]
    pub scope: String,
}

// ------------------------------------------------------------------ encode

fn parse_name(s: &str, scope: &str) -> anyhow::Result<QualifiedName> {
    let name: NetbiosName = s
        .parse()
        .map_err(|e| anyhow!("bad NetBIOS name {s:?}: {e}"))?;
    let q = QualifiedName {
        name,
        scope: scope.to_string(),
    };
    q.check().map_err(|e| anyhow!("bad scope {scope:?}: {e}"))?;
    Ok(q)
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).context("invalid hex")
}

fn parse_u32(s: &str) -> anyhow::Result<u32> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.with_context(|| format!("bad number {s:?}"))
}

fn default_dgm_id() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t ^ (t >> 16) ^ std::process::id()) as u16
}

fn build_payload(
    a: &EncodeArgs,
    kind: PayloadArg,
    from: &NetbiosName,
    to: &NetbiosName,
) -> anyhow::Result<Vec<u8>> {
    let own = from.name_bytes().to_vec();
    let server = a
        .server_name
        .as_ref()
        .map(|s| s.to_ascii_uppercase().into_bytes())
        .unwrap_or(own);
    let reply = a
        .reply_mailslot
        .as_deref()
        .map(mailslot_path)
        .unwrap_or_else(|| format!("\\MAILSLOT\\NET\\GETDC{}", std::process::id() % 1000));
    let ann = || -> anyhow::Result<Announcement<'_>> {
        if server.len() > 15 {
            bail!("server name longer than 15 bytes");
        }
        Ok(Announcement {
            update_count: 0,
            periodicity_ms: a.periodicity,
            name: &server,
            os_major: 4,
            os_minor: 9,
            server_type: parse_u32(&a.server_type)?,
            browser_major: 0x0F,
            browser_minor: 0x01,
            signature: 0xAA55,
            comment: a.comment.as_bytes(),
        })
    };
    let server_str = String::from_utf8_lossy(&server).into_owned();
    let v = match kind {
        PayloadArg::HostAnnouncement => BrowserMessage::HostAnnouncement(ann()?).to_vec(),
        PayloadArg::LocalMasterAnnouncement => {
            BrowserMessage::LocalMasterAnnouncement(ann()?).to_vec()
        }
        PayloadArg::DomainAnnouncement => BrowserMessage::DomainAnnouncement(ann()?).to_vec(),
        PayloadArg::AnnouncementRequest => BrowserMessage::AnnouncementRequest {
            unused: 0,
            response_name: &server,
        }
        .to_vec(),
        PayloadArg::RequestElection => BrowserMessage::RequestElection(Election {
            version: 1,
            criteria: 0x0001_0f00,
            uptime: 0,
            server_name: &server,
        })
        .to_vec(),
        PayloadArg::NetlogonPrimaryQuery => NetlogonMessage::PrimaryQuery {
            computer_name: &server,
            mailslot: reply.as_bytes(),
            unicode_computer_name: server_str,
            version: VersionTokens::new(a.nt_version),
        }
        .to_vec(),
        PayloadArg::NetlogonSamLogon => NetlogonMessage::SamLogonRequest {
            request_count: 0,
            unicode_computer_name: server_str,
            unicode_user_name: a.user.clone(),
            mailslot: reply.as_bytes(),
            allowable_account_control: 0x80,
            domain_sid: &[],
            version: VersionTokens::new(a.nt_version),
        }
        .to_vec(),
        PayloadArg::Messenger => MessengerMessage {
            from: from.name_bytes(),
            to: to.name_bytes(),
            text: a.message.as_bytes(),
        }
        .to_vec(),
    };
    v.map_err(|e| anyhow!("cannot build payload: {e}"))
}

fn default_mailslot(kind: PayloadArg) -> &'static str {
    match kind {
        PayloadArg::NetlogonPrimaryQuery | PayloadArg::NetlogonSamLogon => {
            "\\MAILSLOT\\NET\\NETLOGON"
        }
        PayloadArg::Messenger => "\\MAILSLOT\\MESSNGR",
        _ => "\\MAILSLOT\\BROWSE",
    }
}

/// Builds the datagram `encode` prints (exposed for tests).
pub fn encode_bytes(a: &EncodeArgs) -> anyhow::Result<Vec<u8>> {
    let source = parse_name(&a.from, &a.scope)?;
    let destination = parse_name(&a.to, &a.scope)?;
    let data = match (&a.data_hex, &a.text, a.payload) {
        (Some(h), _, _) => parse_hex(h)?,
        (_, Some(t), _) => t.as_bytes().to_vec(),
        (_, _, Some(k)) => build_payload(a, k, &source.name, &destination.name)?,
        _ => bail!("give one of --data-hex, --text or --payload"),
    };
    let mailslot = match (&a.mailslot, a.payload) {
        (Some(m), _) => mailslot_path(m),
        (None, Some(k)) => default_mailslot(k).to_string(),
        (None, None) => bail!("--mailslot is required"),
    };
    if mailslot.contains('\0') {
        bail!("mailslot name contains NUL");
    }
    let msg_type = match a.msg_type {
        Some(MsgTypeArg::Unique) => MsgType::DirectUnique,
        Some(MsgTypeArg::Group) => MsgType::DirectGroup,
        Some(MsgTypeArg::Broadcast) => MsgType::Broadcast,
        None if destination.name.is_wildcard() => MsgType::Broadcast,
        None => MsgType::DirectUnique,
    };
    let write = MailslotWriteRepr {
        name: mailslot.as_bytes(),
        priority: a.priority,
        class: a.class,
        data: &data,
    };
    write.check_network_size()?;
    let mut msg = MailslotMessage::new(
        msg_type,
        a.dgm_id.unwrap_or_else(default_dgm_id),
        a.source_ip,
        source,
        destination,
        write,
    );
    msg.source_port = a.source_port;
    msg.flags = DatagramFlags::new(match a.node_type {
        NodeTypeArg::B => NodeType::B,
        NodeTypeArg::P => NodeType::P,
        NodeTypeArg::M => NodeType::M,
        NodeTypeArg::H => NodeType::H,
    });
    Ok(msg.to_vec()?)
}

/// `mailslot encode`.
pub fn run_encode(args: &EncodeArgs) -> anyhow::Result<()> {
    let bytes = encode_bytes(args)?;
    writeln!(io::stdout(), "{}", hex::encode(bytes))?;
    Ok(())
}

/// `mailslot encode-name-query`.
pub fn run_encode_name_query(args: &EncodeNameQueryArgs) -> anyhow::Result<()> {
    let name = parse_name(&args.name, &args.scope)?;
    let p = NamePacket::name_query(args.id, name, args.broadcast);
    writeln!(io::stdout(), "{}", hex::encode(p.to_vec()?))?;
    Ok(())
}

// ------------------------------------------------------------------ decode

/// One packet taken from the input, with what is known about where it came from.
struct Packet {
    bytes: Vec<u8>,
    kind: KindArg,
    frame: Option<usize>,
    udp: Option<(Ipv4Addr, u16, Ipv4Addr, u16)>,
}

/// `mailslot decode`: returns the exit code (0 ok, 1 a packet failed, 2 unreadable input).
pub fn run_decode(args: &DecodeArgs) -> i32 {
    let (packets, read_error) = match read_input(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mailslot decode: {e:#}");
            return 2;
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for p in packets {
        let kind = if args.kind == KindArg::Auto {
            p.kind
        } else {
            args.kind
        };
        let mut v = decode_packet(&p.bytes, kind);
        if v.get("error").is_some() {
            failed = true;
        }
        if let Value::Object(m) = &mut v {
            if let Some(f) = p.frame {
                m.insert("frame".into(), json!(f));
            }
            if let Some((sip, sp, dip, dp)) = p.udp {
                m.insert("udp_source".into(), json!(format!("{sip}:{sp}")));
                m.insert("udp_destination".into(), json!(format!("{dip}:{dp}")));
            }
        }
        if writeln!(out, "{v}").is_err() {
            // Broken pipe: stop quietly.
            return if failed { 1 } else { 0 };
        }
    }
    if let Some(e) = read_error {
        // e.g. a capture cut short: what could be read was decoded above.
        eprintln!("mailslot decode: {e:#}");
        return 2;
    }
    i32::from(failed)
}

/// The packets read, and an error that stopped reading part-way (a damaged capture).
type Input = (Vec<Packet>, Option<anyhow::Error>);

fn read_input(args: &DecodeArgs) -> anyhow::Result<Input> {
    if let Some(h) = &args.hex {
        let bytes = parse_hex(h)?;
        let p = Packet {
            bytes,
            kind: KindArg::Auto,
            frame: None,
            udp: None,
        };
        return Ok((vec![p], None));
    }
    let path = args
        .file
        .as_ref()
        .ok_or_else(|| anyhow!("give --hex HEX or FILE"))?;
    let mut data = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .read_to_end(&mut data)
            .context("reading stdin")?;
    } else {
        data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    if is_capture(&data) {
        read_capture(&data)
    } else {
        Ok((read_hex_text(&data)?, None))
    }
}

fn is_capture(d: &[u8]) -> bool {
    matches!(
        d.get(..4),
        Some([0xa1, 0xb2, 0xc3, 0xd4])
            | Some([0xd4, 0xc3, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0x3c, 0x4d])
            | Some([0x4d, 0x3c, 0xb2, 0xa1])
            | Some([0x0a, 0x0d, 0x0d, 0x0a])
    )
}

/// Hex text: `#` to end of line is a comment; blank lines separate packets.
fn read_hex_text(data: &[u8]) -> anyhow::Result<Vec<Packet>> {
    let text = std::str::from_utf8(data).context("input is neither a capture nor hex text")?;
    let mut blocks: Vec<String> = vec![String::new()];
    for line in text.lines() {
        let content = line.split('#').next().unwrap_or("");
        let is_comment = line.trim_start().starts_with('#');
        if content.trim().is_empty() {
            if !is_comment && !blocks.last().is_some_and(|b| b.is_empty()) {
                blocks.push(String::new());
            }
            continue;
        }
        blocks.last_mut().expect("non-empty").push_str(content);
    }
    let mut out = Vec::new();
    for b in blocks.iter().filter(|b| !b.trim().is_empty()) {
        out.push(Packet {
            bytes: parse_hex(b).context("input is neither a capture nor valid hex text")?,
            kind: KindArg::Auto,
            frame: None,
            udp: None,
        });
    }
    if out.is_empty() {
        bail!("no hex data in input");
    }
    Ok(out)
}

fn read_capture(data: &[u8]) -> anyhow::Result<Input> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    use pcap_file::DataLink;
    let mut frames: Vec<(DataLink, Vec<u8>)> = Vec::new();
    let mut error = None;
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(data).context("reading pcapng")?;
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(b) = r.next_block() {
            let b = match b {
                Ok(b) => b,
                Err(e) => {
                    error = Some(
                        anyhow!(e)
                            .context(format!("reading pcapng after {} frame(s)", frames.len())),
                    );
                    break;
                }
            };
            match b {
                Block::SectionHeader(_) => links.clear(),
                Block::InterfaceDescription(i) => links.push(i.linktype),
                Block::EnhancedPacket(p) => {
                    let l = links
                        .get(p.interface_id as usize)
                        .copied()
                        .unwrap_or(DataLink::ETHERNET);
                    frames.push((l, p.data.into_owned()));
                }
                Block::SimplePacket(p) => {
                    let l = links.first().copied().unwrap_or(DataLink::ETHERNET);
                    frames.push((l, p.data.into_owned()));
                }
                _ => {}
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(data).context("reading pcap")?;
        let link = r.header().datalink;
        while let Some(p) = r.next_packet() {
            match p {
                Ok(p) => frames.push((link, p.data.into_owned())),
                Err(e) => {
                    error = Some(
                        anyhow!(e).context(format!("reading pcap after {} frame(s)", frames.len())),
                    );
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, (link, frame)) in frames.iter().enumerate() {
        if let Some((sip, sp, dip, dp, payload)) = udp_payload(*link, frame) {
            let kind = if sp == 138 || dp == 138 {
                KindArg::Datagram
            } else if sp == 137 || dp == 137 {
                KindArg::NameService
            } else {
                continue;
            };
            out.push(Packet {
                bytes: payload.to_vec(),
                kind,
                frame: Some(i + 1),
                udp: Some((sip, sp, dip, dp)),
            });
        }
    }
    Ok((out, error))
}

type Udp<'a> = (Ipv4Addr, u16, Ipv4Addr, u16, &'a [u8]);

/// Ethernet (with 802.1Q tags) / Linux SLL / SLL2 / raw IPv4 → IPv4 → UDP payload.
fn udp_payload(link: pcap_file::DataLink, f: &[u8]) -> Option<Udp<'_>> {
    use pcap_file::DataLink;
    let be16 = |b: &[u8], o: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(o)?, *b.get(o + 1)?]))
    };
    let ip = match link {
        DataLink::ETHERNET => {
            let mut off = 12;
            let mut et = be16(f, off)?;
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = be16(f, off)?;
            }
            if et != 0x0800 {
                return None;
            }
            f.get(off + 2..)?
        }
        DataLink::LINUX_SLL => {
            if be16(f, 14)? != 0x0800 {
                return None;
            }
            f.get(16..)?
        }
        DataLink::LINUX_SLL2 => {
            if be16(f, 0)? != 0x0800 {
                return None;
            }
            f.get(20..)?
        }
        DataLink::RAW | DataLink::IPV4 => f,
        _ => return None,
    };
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    if be16(ip, 6)? & 0x1fff != 0 {
        return None; // not the first IP fragment
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?).min(ip.len());
    let udp = ip.get(ihl..total)?;
    let sip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let sp = be16(udp, 0)?;
    let dp = be16(udp, 2)?;
    let ulen = usize::from(be16(udp, 4)?).clamp(8, udp.len());
    Some((sip, sp, dip, dp, udp.get(8..ulen)?))
}

fn error_json(kind: &str, e: &mailslot_proto::Error) -> Value {
    json!({"kind": kind, "error": e.to_string(), "offset": e.offset().unwrap_or(0)})
}

/// Decodes one packet to a JSON object (exposed for tests).
pub fn decode_packet(b: &[u8], kind: KindArg) -> Value {
    match kind {
        KindArg::Datagram => decode_datagram(b),
        KindArg::NameService => match NamePacket::parse(b) {
            Ok(p) => name_packet_json(&p),
            Err(e) => error_json("name_service", &e),
        },
        KindArg::Auto => {
            let d = DatagramRepr::parse(b);
            let n = NamePacket::parse(b);
            match (&d, &n) {
                (Ok(_), Err(_)) => decode_datagram(b),
                (Err(_), Ok(p)) => name_packet_json(p),
                (Ok(_), Ok(p)) => {
                    if p.buffer_len() == b.len() {
                        name_packet_json(p)
                    } else {
                        decode_datagram(b)
                    }
                }
                (Err(de), Err(ne)) => {
                    if matches!(b.first(), Some(0x10..=0x16)) {
                        error_json("datagram", de)
                    } else {
                        error_json("name_service", ne)
                    }
                }
            }
        }
    }
}

/// Bytes as text, one char per byte (Latin-1), so nothing is lost.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

fn name_fields(m: &mut Map<String, Value>, prefix: &str, q: &QualifiedName) {
    m.insert(format!("{prefix}_name"), json!(q.name.name_lossy()));
    m.insert(
        format!("{prefix}_suffix"),
        json!(format!("{:02X}", q.name.suffix())),
    );
    if !q.scope.is_empty() {
        m.insert(format!("{prefix}_scope"), json!(q.scope));
    }
}

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

fn decode_datagram(b: &[u8]) -> Value {
    let d = match DatagramRepr::parse(b) {
        Ok(d) => d,
        Err(e) => return error_json("datagram", &e),
    };
    let mut m = Map::new();
    m.insert("kind".into(), json!("datagram"));
    m.insert("msg_type".into(), json!(u8::from(d.msg_type)));
    m.insert("msg_type_name".into(), json!(msg_type_name(d.msg_type)));
    m.insert("flags".into(), json!(b.get(1).copied().unwrap_or(0)));
    m.insert(
        "node_type".into(),
        json!(format!("{:?}", d.flags.node_type())),
    );
    m.insert("dgm_id".into(), json!(d.dgm_id));
    m.insert("source_ip".into(), json!(d.source_ip.to_string()));
    m.insert("source_port".into(), json!(d.source_port));
    match &d.body {
        DatagramBody::Error(code) => {
            m.insert("error_code".into(), json!(u8::from(*code)));
        }
        DatagramBody::Query(n) => name_fields(&mut m, "destination", n),
        DatagramBody::Data {
            source,
            destination,
            ..
        } => {
            name_fields(&mut m, "source", source);
            name_fields(&mut m, "destination", destination);
            match MailslotMessage::parse(b) {
                Ok(msg) => mailslot_fields(&mut m, &msg.write),
                Err(e) => {
                    m.insert("error".into(), json!(e.to_string()));
                    m.insert("offset".into(), json!(e.offset().unwrap_or(0)));
                }
            }
        }
    }
    Value::Object(m)
}

fn mailslot_fields(m: &mut Map<String, Value>, w: &MailslotWriteRepr<'_>) {
    m.insert("mailslot".into(), json!(latin1(w.name)));
    m.insert("priority".into(), json!(w.priority));
    m.insert("class".into(), json!(w.class));
    m.insert("data_len".into(), json!(w.data.len()));
    m.insert("data_hex".into(), json!(hex::encode(w.data)));
    match Payload::parse(w.name, w.data) {
        None => {}
        Some(Ok(p)) => {
            m.insert("payload".into(), payload_json(&p));
        }
        Some(Err(e)) => {
            m.insert("payload_error".into(), json!(e.to_string()));
        }
    }
}

fn announcement_json(o: &mut Map<String, Value>, a: &Announcement<'_>) {
    o.insert("server_name".into(), json!(latin1(a.name)));
    o.insert("update_count".into(), json!(a.update_count));
    o.insert("periodicity_ms".into(), json!(a.periodicity_ms));
    o.insert(
        "os_version".into(),
        json!(format!("{}.{}", a.os_major, a.os_minor)),
    );
    o.insert(
        "server_type".into(),
        json!(format!("0x{:08x}", a.server_type)),
    );
    o.insert(
        "browser_version".into(),
        json!(format!("{}.{}", a.browser_major, a.browser_minor)),
    );
    o.insert("signature".into(), json!(format!("0x{:04x}", a.signature)));
    o.insert("comment".into(), json!(latin1(a.comment)));
}

pub(crate) fn payload_json(p: &Payload<'_>) -> Value {
    let mut o = Map::new();
    match p {
        Payload::Browser(b) => {
            o.insert("type".into(), json!("browser"));
            let op = b.opcode();
            o.insert("opcode".into(), json!(u8::from(op)));
            o.insert("opcode_name".into(), json!(format!("{op:?}")));
            match b {
                BrowserMessage::HostAnnouncement(a)
                | BrowserMessage::LocalMasterAnnouncement(a)
                | BrowserMessage::DomainAnnouncement(a) => announcement_json(&mut o, a),
                BrowserMessage::AnnouncementRequest { response_name, .. } => {
                    o.insert("response_name".into(), json!(latin1(response_name)));
                }
                BrowserMessage::RequestElection(e) => {
                    o.insert("version".into(), json!(e.version));
                    o.insert("criteria".into(), json!(format!("0x{:08x}", e.criteria)));
                    o.insert("uptime".into(), json!(e.uptime));
                    o.insert("server_name".into(), json!(latin1(e.server_name)));
                }
                BrowserMessage::GetBackupListRequest { count, token } => {
                    o.insert("count".into(), json!(count));
                    o.insert("token".into(), json!(token));
                }
                BrowserMessage::GetBackupListResponse { token, servers } => {
                    o.insert("token".into(), json!(token));
                    o.insert(
                        "servers".into(),
                        json!(servers.iter().map(|s| latin1(s)).collect::<Vec<_>>()),
                    );
                }
                BrowserMessage::BecomeBackup { browser_name } => {
                    o.insert("browser_name".into(), json!(latin1(browser_name)));
                }
                BrowserMessage::MasterAnnouncement { master_name } => {
                    o.insert("master_name".into(), json!(latin1(master_name)));
                }
                BrowserMessage::ResetStateRequest { options } => {
                    o.insert("options".into(), json!(options));
                }
                BrowserMessage::Unknown { body, .. } => {
                    o.insert("body_hex".into(), json!(hex::encode(body)));
                }
            }
        }
        Payload::Netlogon(n) => {
            o.insert("type".into(), json!("netlogon"));
            let op = n.opcode();
            o.insert("opcode".into(), json!(u16::from(op)));
            o.insert("opcode_name".into(), json!(format!("{op:?}")));
            let ver = |o: &mut Map<String, Value>, v: &VersionTokens| {
                o.insert("nt_version".into(), json!(v.nt_version));
                o.insert("lmnt_token".into(), json!(v.lmnt_token));
                o.insert("lm20_token".into(), json!(v.lm20_token));
            };
            match n {
                NetlogonMessage::PrimaryQuery {
                    computer_name,
                    mailslot,
                    unicode_computer_name,
                    version,
                } => {
                    o.insert("computer_name".into(), json!(latin1(computer_name)));
                    o.insert("reply_mailslot".into(), json!(latin1(mailslot)));
                    o.insert("unicode_computer_name".into(), json!(unicode_computer_name));
                    ver(&mut o, version);
                }
                NetlogonMessage::PrimaryResponse {
                    primary_dc_name,
                    unicode_primary_dc_name,
                    unicode_domain_name,
                    pad_before_nt_version,
                    version,
                } => {
                    o.insert("primary_dc_name".into(), json!(latin1(primary_dc_name)));
                    o.insert(
                        "unicode_primary_dc_name".into(),
                        json!(unicode_primary_dc_name),
                    );
                    o.insert("unicode_domain_name".into(), json!(unicode_domain_name));
                    o.insert("pad_before_nt_version".into(), json!(pad_before_nt_version));
                    ver(&mut o, version);
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
                    o.insert("request_count".into(), json!(request_count));
                    o.insert("unicode_computer_name".into(), json!(unicode_computer_name));
                    o.insert("unicode_user_name".into(), json!(unicode_user_name));
                    o.insert("reply_mailslot".into(), json!(latin1(mailslot)));
                    o.insert(
                        "allowable_account_control".into(),
                        json!(format!("0x{allowable_account_control:08x}")),
                    );
                    o.insert("domain_sid_hex".into(), json!(hex::encode(domain_sid)));
                    ver(&mut o, version);
                }
                NetlogonMessage::SamLogonResponse {
                    unicode_logon_server,
                    unicode_user_name,
                    unicode_domain_name,
                    version,
                    ..
                } => {
                    o.insert("unicode_logon_server".into(), json!(unicode_logon_server));
                    o.insert("unicode_user_name".into(), json!(unicode_user_name));
                    o.insert("unicode_domain_name".into(), json!(unicode_domain_name));
                    ver(&mut o, version);
                }
                NetlogonMessage::Unknown { body, .. } => {
                    o.insert("body_hex".into(), json!(hex::encode(body)));
                }
            }
        }
        Payload::Messenger(msg) => {
            o.insert("type".into(), json!("messenger"));
            o.insert("from".into(), json!(latin1(msg.from)));
            o.insert("to".into(), json!(latin1(msg.to)));
            o.insert("text".into(), json!(latin1(msg.text)));
        }
    }
    Value::Object(o)
}

fn ns_opcode_name(op: mailslot_proto::NsOpcode) -> &'static str {
    use mailslot_proto::NsOpcode::*;
    match op {
        Query => "query",
        Registration => "registration",
        Release => "release",
        Wack => "wack",
        Refresh | RefreshAlt => "refresh",
        MultiHomedRegistration => "multihomed_registration",
        Unknown(_) => "unknown",
    }
}

fn rr_json(rr: &ResourceRecord) -> Value {
    let mut m = Map::new();
    name_fields(&mut m, "rr", &rr.name);
    let mut m2 = Map::new();
    for (k, v) in m {
        m2.insert(k.trim_start_matches("rr_").to_string(), v);
    }
    let mut m = m2;
    m.insert("type".into(), json!(u16::from(rr.rr_type)));
    m.insert("class".into(), json!(rr.class));
    m.insert("ttl".into(), json!(rr.ttl));
    match &rr.rdata {
        RData::Nb(addrs) => {
            let a: Vec<Value> = addrs
                .iter()
                .map(|a| {
                    json!({"ip": a.ip.to_string(), "group": a.is_group(),
                           "node_type": format!("{:?}", a.node_type()), "nb_flags": a.flags})
                })
                .collect();
            m.insert("addresses".into(), json!(a));
        }
        RData::NodeStatus(s) => {
            let names: Vec<Value> = s
                .names
                .iter()
                .map(|n| {
                    json!({"name": n.name.name_lossy(), "suffix": format!("{:02X}", n.name.suffix()),
                           "group": n.flags & 0x8000 != 0, "flags": n.flags})
                })
                .collect();
            m.insert("node_names".into(), json!(names));
            if s.statistics.len() >= 6 {
                let mac = s.statistics[..6].iter().fold(String::new(), |mut acc, b| {
                    if !acc.is_empty() {
                        acc.push(':');
                    }
                    let _ = write!(acc, "{b:02x}");
                    acc
                });
                m.insert("mac".into(), json!(mac));
            }
        }
        RData::Raw(b) => {
            m.insert("rdata_hex".into(), json!(hex::encode(b)));
        }
    }
    Value::Object(m)
}

fn name_packet_json(p: &NamePacket) -> Value {
    use mailslot_proto::NsFlags as F;
    let f = p.flags;
    let mut nm = Vec::new();
    for (bit, n) in [
        (F::AA, "AA"),
        (F::TC, "TC"),
        (F::RD, "RD"),
        (F::RA, "RA"),
        (F::BROADCAST, "B"),
    ] {
        if f.has(bit) {
            nm.push(n);
        }
    }
    let questions: Vec<Value> = p
        .questions
        .iter()
        .map(|q| {
            let mut m = Map::new();
            m.insert("name".into(), json!(q.name.name.name_lossy()));
            m.insert(
                "suffix".into(),
                json!(format!("{:02X}", q.name.name.suffix())),
            );
            if !q.name.scope.is_empty() {
                m.insert("scope".into(), json!(q.name.scope));
            }
            m.insert("type".into(), json!(u16::from(q.qtype)));
            m.insert("class".into(), json!(q.qclass));
            Value::Object(m)
        })
        .collect();
    json!({
        "kind": "name_service",
        "trn_id": p.trn_id,
        "flags": f.0,
        "response": f.is_response(),
        "opcode": u8::from(f.opcode()),
        "opcode_name": ns_opcode_name(f.opcode()),
        "nm_flags": nm,
        "rcode": f.rcode(),
        "questions": questions,
        "answers": p.answers.iter().map(rr_json).collect::<Vec<_>>(),
        "authority": p.authority.iter().map(rr_json).collect::<Vec<_>>(),
        "additional": p.additional.iter().map(rr_json).collect::<Vec<_>>(),
    })
}
