//! What `decode` reads: one `--hex` packet, a hex text file, or a pcap/pcapng
//! capture whose frames go through [`mailslot_proto::link`] down to the UDP
//! payloads on ports 137 and 138.

use std::io::{self, Read};
use std::net::SocketAddrV4;

use anyhow::{anyhow, bail, Context};
use mailslot_proto::link::{udp_payload, LinkType};
use mailslot_proto::{DATAGRAM_PORT, NAME_SERVICE_PORT};
use pcap_file::DataLink;

use super::args::{DecodeArgs, KindArg};
use super::encode::parse_hex;

/// One packet taken from the input, with what is known about where it came from.
pub(super) struct Packet {
    /// The UDP payload.
    pub(super) bytes: Vec<u8>,
    /// From the port in a capture; `Auto` otherwise.
    pub(super) kind: KindArg,
    /// 1-based frame number in a capture.
    pub(super) frame: Option<usize>,
    /// UDP source and destination in a capture.
    pub(super) udp: Option<(SocketAddrV4, SocketAddrV4)>,
}

impl Packet {
    fn bare(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            kind: KindArg::Auto,
            frame: None,
            udp: None,
        }
    }
}

/// The packets read, and an error that stopped reading part-way (a damaged capture).
pub(super) type Input = (Vec<Packet>, Option<anyhow::Error>);

/// Reads `--hex` or FILE (`-` = stdin): a capture if it starts with a pcap or
/// pcapng magic number, hex text otherwise.
pub(super) fn read_input(args: &DecodeArgs) -> anyhow::Result<Input> {
    if let Some(h) = &args.hex {
        return Ok((vec![Packet::bare(parse_hex(h)?)], None));
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

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn is_capture(d: &[u8]) -> bool {
    matches!(
        d.get(..4),
        Some([0xa1, 0xb2, 0xc3, 0xd4])
            | Some([0xd4, 0xc3, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0x3c, 0x4d])
            | Some([0x4d, 0x3c, 0xb2, 0xa1])
    ) || d.starts_with(&PCAPNG_MAGIC)
}

/// Hex text: `#` to end of line is a comment; blank lines separate packets.
fn read_hex_text(data: &[u8]) -> anyhow::Result<Vec<Packet>> {
    let text = std::str::from_utf8(data).context("input is neither a capture nor hex text")?;
    let mut blocks: Vec<String> = vec![String::new()];
    for line in text.lines() {
        let content = line.split('#').next().unwrap_or("");
        let is_comment = line.trim_start().starts_with('#');
        if content.trim().is_empty() {
            if !is_comment && !blocks.last().is_some_and(String::is_empty) {
                blocks.push(String::new());
            }
            continue;
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(content);
        }
    }
    let mut out = Vec::new();
    for b in blocks.iter().filter(|b| !b.trim().is_empty()) {
        let bytes = parse_hex(b).context("input is neither a capture nor valid hex text")?;
        out.push(Packet::bare(bytes));
    }
    if out.is_empty() {
        bail!("no hex data in input");
    }
    Ok(out)
}

/// The frames of a capture with their link types, and the error that stopped
/// reading part-way, if any.
type Frames = (Vec<(DataLink, Vec<u8>)>, Option<anyhow::Error>);

fn pcapng_frames(data: &[u8]) -> anyhow::Result<Frames> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut r = PcapNgReader::new(data).context("reading pcapng")?;
    let mut frames = Vec::new();
    let mut links: Vec<DataLink> = Vec::new();
    while let Some(b) = r.next_block() {
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                let e =
                    anyhow!(e).context(format!("reading pcapng after {} frame(s)", frames.len()));
                return Ok((frames, Some(e)));
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
    Ok((frames, None))
}

fn pcap_frames(data: &[u8]) -> anyhow::Result<Frames> {
    let mut r = pcap_file::pcap::PcapReader::new(data).context("reading pcap")?;
    let link = r.header().datalink;
    let mut frames = Vec::new();
    while let Some(p) = r.next_packet() {
        match p {
            Ok(p) => frames.push((link, p.data.into_owned())),
            Err(e) => {
                let e = anyhow!(e).context(format!("reading pcap after {} frame(s)", frames.len()));
                return Ok((frames, Some(e)));
            }
        }
    }
    Ok((frames, None))
}

/// The UDP payloads on port 138 (datagram) or 137 (name service) of a capture.
fn read_capture(data: &[u8]) -> anyhow::Result<Input> {
    let (frames, error) = if data.starts_with(&PCAPNG_MAGIC) {
        pcapng_frames(data)?
    } else {
        pcap_frames(data)?
    };
    let mut out = Vec::new();
    for (i, (link, frame)) in frames.iter().enumerate() {
        let Some(u) = LinkType::from_linktype(u32::from(*link)).and_then(|l| udp_payload(l, frame))
        else {
            continue;
        };
        let ports = [u.source.port(), u.destination.port()];
        let kind = if ports.contains(&DATAGRAM_PORT) {
            KindArg::Datagram
        } else if ports.contains(&NAME_SERVICE_PORT) {
            KindArg::NameService
        } else {
            continue;
        };
        out.push(Packet {
            bytes: u.payload.to_vec(),
            kind,
            frame: Some(i + 1),
            udp: Some((u.source, u.destination)),
        });
    }
    Ok((out, error))
}
