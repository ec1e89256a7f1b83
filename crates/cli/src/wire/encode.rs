//! `encode` and `encode-name-query`: arguments to bytes, printed as hex.

use std::io::{self, Write};

use anyhow::{anyhow, bail, Context};
use mailslot_proto::{
    mailslot_path, Announcement, BrowserMessage, DatagramFlags, Election, MailslotMessage,
    MailslotWriteRepr, MessengerMessage, MsgType, NamePacket, NetbiosName, NetlogonMessage,
    NodeType, QualifiedName, VersionTokens,
};

use super::args::{EncodeArgs, EncodeNameQueryArgs, MsgTypeArg, NodeTypeArg, PayloadArg};

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

/// Hex digits to bytes; whitespace is ignored.
pub(super) fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
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
pub(super) fn encode_bytes(a: &EncodeArgs) -> anyhow::Result<Vec<u8>> {
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
pub(crate) fn run_encode(args: &EncodeArgs) -> anyhow::Result<()> {
    let bytes = encode_bytes(args)?;
    writeln!(io::stdout(), "{}", hex::encode(bytes))?;
    Ok(())
}

/// `mailslot encode-name-query`.
pub(crate) fn run_encode_name_query(args: &EncodeNameQueryArgs) -> anyhow::Result<()> {
    let name = parse_name(&args.name, &args.scope)?;
    let p = NamePacket::name_query(args.id, name, args.broadcast);
    writeln!(io::stdout(), "{}", hex::encode(p.to_vec()?))?;
    Ok(())
}
