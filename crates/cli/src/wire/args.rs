//! The clap arguments of `decode`, `encode` and `encode-name-query`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::ValueEnum;

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
pub(crate) struct DecodeArgs {
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
pub(crate) enum KindArg {
    /// By port (captures) or content (hex).
    Auto,
    /// NetBIOS datagram (UDP 138).
    Datagram,
    /// NetBIOS name service (UDP 137).
    NameService,
}

/// NetBIOS datagram MSG_TYPE for `encode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MsgTypeArg {
    /// DIRECT_UNIQUE (0x10): to a unique name, unicast.
    Unique,
    /// DIRECT_GROUP (0x11): to a group name, subnet broadcast.
    Group,
    /// BROADCAST (0x12): to `*`, subnet broadcast.
    Broadcast,
}

/// Sending node type for the datagram FLAGS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum NodeTypeArg {
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
pub(crate) enum PayloadArg {
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
pub(crate) struct EncodeArgs {
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
pub(crate) struct EncodeNameQueryArgs {
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
