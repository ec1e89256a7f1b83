//! Property tests: `parse(emit(x)) == x` for every Repr, and parsers never
//! panic (and re-parse what they emit) on arbitrary bytes.

use std::net::Ipv4Addr;

use mailslot_proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn nb_name() -> impl Strategy<Value = NetbiosName> {
    any::<[u8; 16]>().prop_map(NetbiosName::from_raw)
}

fn scope() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => vec("[a-z0-9-]{1,20}", 1..4).prop_map(|l| l.join(".")),
    ]
}

fn qname() -> impl Strategy<Value = QualifiedName> {
    (nb_name(), scope()).prop_map(|(name, scope)| QualifiedName { name, scope })
}

/// Byte strings without NUL.
fn cbytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, 0..max)
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\x00]{{0,{max}}}")).unwrap()
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn mailslot_name() -> impl Strategy<Value = Vec<u8>> {
    cbytes(40).prop_map(|rest| {
        let mut v = b"\\MAILSLOT\\".to_vec();
        v.extend(rest);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn name_round_trip(q in qname()) {
        let v = q.to_vec().unwrap();
        prop_assert_eq!(v.len(), q.encoded_len());
        prop_assert_eq!(QualifiedName::parse(&v, 0).unwrap(), (q, v.len()));
    }

    #[test]
    fn name_from_str_round_trip(s in "[A-Z0-9!#$%&'()^_{}~ .-]{1,15}", suffix: u8) {
        prop_assume!(!s.ends_with(' '));
        let n = NetbiosName::new(&s, suffix).unwrap();
        let again: NetbiosName = n.to_string().parse().unwrap();
        prop_assert_eq!(again, n);
        prop_assert_eq!(NetbiosName::from_first_level(&n.first_level(), 0).unwrap(), n);
    }

    #[test]
    fn smb_round_trip(name in mailslot_name(), priority: u16, class: u16, data in vec(any::<u8>(), 0..700)) {
        let w = MailslotWriteRepr { name: &name, priority, class, data: &data };
        let v = w.to_vec().unwrap();
        prop_assert_eq!(v.len(), w.buffer_len());
        prop_assert_eq!(MailslotWriteRepr::parse(&v).unwrap(), w);
    }

    #[test]
    fn datagram_round_trip(
        kind in 0u8..3, t in 0u8..3, node in 0u8..4, raw_flags in 0u8..16, dgm_id: u16, sip in ip(), sport: u16,
        src in qname(), dst in qname(), code: u8, user_data in vec(any::<u8>(), 0..300),
    ) {
        let (msg_type, flags, body) = match kind {
            0 => (MsgType::from(0x10 + t), DatagramFlags::new(NodeType::from(node)),
                  DatagramBody::Data { source: src, destination: dst, user_data: &user_data }),
            1 => (MsgType::Error, DatagramFlags::from_bits(raw_flags), DatagramBody::Error(code.into())),
            _ => (MsgType::from(0x14 + t), DatagramFlags::from_bits(raw_flags), DatagramBody::Query(dst)),
        };
        let d = DatagramRepr { msg_type, flags, dgm_id, source_ip: sip, source_port: sport, body };
        let v = d.to_vec().unwrap();
        prop_assert_eq!(v.len(), d.buffer_len());
        prop_assert_eq!(DatagramRepr::parse(&v).unwrap(), d);
    }

    #[test]
    fn mailslot_message_round_trip(
        t in 0u8..3, node in 0u8..4, dgm_id: u16, sip in ip(), sport: u16, src in qname(), dst in qname(),
        name in mailslot_name(), priority: u16, class: u16, data in vec(any::<u8>(), 0..500),
    ) {
        let m = MailslotMessage {
            msg_type: MsgType::from(0x10 + t),
            flags: DatagramFlags::new(NodeType::from(node)),
            dgm_id, source_ip: sip, source_port: sport, source: src, destination: dst,
            write: MailslotWriteRepr { name: &name, priority, class, data: &data },
        };
        let v = m.to_vec().unwrap();
        prop_assert_eq!(v.len(), m.buffer_len());
        prop_assert_eq!(u16::from_be_bytes([v[10], v[11]]) as usize, v.len() - 14);
        prop_assert_eq!(MailslotMessage::parse(&v).unwrap(), m);
    }

    #[test]
    fn name_packet_round_trip(p in name_packet()) {
        let v = p.to_vec().unwrap();
        prop_assert_eq!(v.len(), p.buffer_len());
        prop_assert_eq!(NamePacket::parse(&v).unwrap(), p);
    }

    #[test]
    fn constructors_round_trip(id: u16, q in qname(), ttl: u32, a in ip(), g: bool, node in 0u8..4, b: bool) {
        let addr = NbAddress::new(a, g, NodeType::from(node));
        for p in [
            NamePacket::name_query(id, q.clone(), b),
            NamePacket::positive_query_response(id, q.clone(), ttl, vec![addr, addr]),
            NamePacket::negative_query_response(id, q.clone()),
            NamePacket::registration(id, q.clone(), ttl, addr, b),
            NamePacket::refresh(id, q.clone(), ttl, addr),
            NamePacket::release(id, q.clone(), addr, b),
            NamePacket::negative_registration_response(id, q.clone(), addr),
            NamePacket::node_status_request(id, q.clone()),
        ] {
            let v = p.to_vec().unwrap();
            prop_assert_eq!(NamePacket::parse(&v).unwrap(), p);
        }
    }

    #[test]
    fn browser_round_trip(owned in browser_owned()) {
        let m = owned.as_message();
        let v = m.to_vec().unwrap();
        prop_assert_eq!(v.len(), m.buffer_len());
        prop_assert_eq!(BrowserMessage::parse(&v).unwrap(), m);
    }

    #[test]
    fn netlogon_round_trip(owned in netlogon_owned()) {
        let m = owned.as_message();
        let v = m.to_vec().unwrap();
        prop_assert_eq!(v.len(), m.buffer_len());
        prop_assert_eq!(NetlogonMessage::parse(&v).unwrap(), m);
    }

    #[test]
    fn messenger_round_trip(from in cbytes(20), to in cbytes(16), text in cbytes(300)) {
        let m = MessengerMessage { from: &from, to: &to, text: &text };
        let v = m.to_vec().unwrap();
        prop_assert_eq!(MessengerMessage::parse(&v).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..400)) {
        if let Ok(x) = DatagramRepr::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(DatagramRepr::parse(&e).unwrap(), x);
        }
        if let Ok(x) = MailslotMessage::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(MailslotMessage::parse(&e).unwrap(), x);
        }
        if let Ok(x) = MailslotWriteRepr::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(MailslotWriteRepr::parse(&e).unwrap(), x);
        }
        if let Ok(x) = NamePacket::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(NamePacket::parse(&e).unwrap(), x);
        }
        if let Ok(x) = BrowserMessage::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(BrowserMessage::parse(&e).unwrap(), x);
        }
        if let Ok(x) = NetlogonMessage::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(NetlogonMessage::parse(&e).unwrap(), x);
        }
        if let Ok(x) = MessengerMessage::parse(&b) {
            let e = x.to_vec().unwrap();
            prop_assert_eq!(MessengerMessage::parse(&e).unwrap(), x);
        }
        session_parsers_agree(&b)?;
    }

    #[test]
    fn session_request_round_trip(called in nb_name(), calling in nb_name()) {
        let r = session::SessionRequest { called, calling };
        let v = r.to_vec().unwrap();
        prop_assert_eq!(session::frame_len(&v, 68).unwrap(), Some(72));
        prop_assert_eq!(session::SessionRequest::parse(&v[4..]).unwrap(), r);
    }

    #[test]
    fn message_command_round_trip(kind in 0u8..4, o in cbytes(20), d in cbytes(20), text in vec(any::<u8>(), 0..300), group: u16, pid: u16, mid: u16) {
        let c = match kind {
            0 => MessageCommand::Single { originator: &o, destination: &d, text: &text },
            1 => MessageCommand::Start { originator: &o, destination: &d },
            2 => MessageCommand::Text { group, text: &text },
            _ => MessageCommand::End { group },
        };
        let h = SmbHeader { pid, mid, ..SmbHeader::default() };
        let v = c.to_vec(&h).unwrap();
        prop_assert_eq!(v.len(), c.buffer_len());
        prop_assert_eq!(MessageCommand::parse(&v).unwrap(), (SmbHeader { command: c.command(), ..h }, c));
    }

    #[test]
    fn session_write_round_trip(name in mailslot_name(), priority: u16, class: u16, timeout_ms: u32, write_id: [u8; 16], data in vec(any::<u8>(), 0..700), mid: u16) {
        let w = SessionMailslotWrite {
            header: SmbHeader { mid, ..SmbHeader::new(0x25) },
            name: &name, priority, class, timeout_ms, write_id, data: &data,
        };
        let v = w.to_vec().unwrap();
        prop_assert_eq!(SessionMailslotWrite::parse(&v).unwrap(), w);
        let ok = TransactionReply::success(&w.header);
        prop_assert_eq!(TransactionReply::parse(&ok.to_vec()).unwrap(), ok);
        let err = TransactionReply::error(&w.header, mid);
        prop_assert_eq!(TransactionReply::parse(&err.to_vec()).unwrap(), err);
    }

    #[test]
    fn session_write_mutations_never_panic(i in 0usize..140, byte: u8, cut in 0usize..150) {
        let w = SessionMailslotWrite {
            header: SmbHeader::new(0x25), name: b"\\MAILSLOT\\x", priority: 1, class: 1,
            timeout_ms: 100, write_id: [7; 16], data: b"abcdef",
        };
        let mut v = w.to_vec().unwrap();
        if i < v.len() { v[i] = byte; }
        v.truncate(cut);
        session_parsers_agree(&v)?;
    }

    #[test]
    fn smb_mutations_never_panic(i in 0usize..120, byte: u8, cut in 0usize..130) {
        let w = MailslotWriteRepr { name: b"\\MAILSLOT\\BROWSE", priority: 1, class: 2, data: &[1, 2, 3, 4, 5] };
        let mut v = w.to_vec().unwrap();
        if i < v.len() { v[i] = byte; }
        v.truncate(cut);
        let _ = MailslotWriteRepr::parse(&v);
    }
}

fn rr() -> impl Strategy<Value = ResourceRecord> {
    let rdata = prop_oneof![
        vec(
            (any::<u16>(), ip()).prop_map(|(flags, ip)| NbAddress { flags, ip }),
            0..4
        )
        .prop_map(|a| (RrType::Nb, RData::Nb(a))),
        (
            vec(
                (nb_name(), any::<u16>()).prop_map(|(name, flags)| NodeStatusName { name, flags }),
                0..5
            ),
            vec(any::<u8>(), 0..50)
        )
            .prop_map(|(names, statistics)| (
                RrType::NbStat,
                RData::NodeStatus(NodeStatus { names, statistics })
            )),
        (
            prop_oneof![Just(0x000Au16), Just(1), Just(2), 0x22u16..0xFFFF],
            vec(any::<u8>(), 0..20)
        )
            .prop_map(|(t, b)| (RrType::from(t), RData::Raw(b))),
    ];
    (qname(), rdata, any::<u16>(), any::<u32>()).prop_map(|(name, (rr_type, rdata), class, ttl)| {
        ResourceRecord {
            name,
            rr_type,
            class,
            ttl,
            rdata,
        }
    })
}

fn name_packet() -> impl Strategy<Value = NamePacket> {
    let q = (qname(), any::<u16>(), any::<u16>()).prop_map(|(name, t, qclass)| Question {
        name,
        qtype: RrType::from(t),
        qclass,
    });
    (
        any::<u16>(),
        any::<u16>(),
        vec(q, 0..3),
        vec(rr(), 0..3),
        vec(rr(), 0..2),
        vec(rr(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(trn_id, flags, questions, answers, authority, mut additional, share)| {
                // Exercise the C0 0C pointer: an additional record named like the question.
                if share {
                    if let (Some(q), Some(a)) = (questions.first(), additional.first_mut()) {
                        a.name = q.name.clone();
                    }
                }
                NamePacket {
                    trn_id,
                    flags: NsFlags(flags),
                    questions,
                    answers,
                    authority,
                    additional,
                }
            },
        )
}

/// Owned inputs for a BrowserMessage (which borrows).
#[derive(Debug, Clone)]
struct BrowserOwned {
    op: u8,
    a: [u8; 4],
    b: u32,
    c: u32,
    s1: Vec<u8>,
    s2: Vec<u8>,
    list: Vec<Vec<u8>>,
}

impl BrowserOwned {
    fn as_message(&self) -> BrowserMessage<'_> {
        let ann = Announcement {
            update_count: self.a[0],
            periodicity_ms: self.b,
            name: &self.s1[..self.s1.len().min(16)],
            os_major: self.a[1],
            os_minor: self.a[2],
            server_type: self.c,
            browser_major: self.a[3],
            browser_minor: self.a[0],
            signature: self.b as u16,
            comment: &self.s2,
        };
        match self.op % 11 {
            0 => BrowserMessage::HostAnnouncement(ann),
            1 => BrowserMessage::LocalMasterAnnouncement(ann),
            2 => BrowserMessage::DomainAnnouncement(ann),
            3 => BrowserMessage::AnnouncementRequest {
                unused: self.a[0],
                response_name: &self.s1,
            },
            4 => BrowserMessage::RequestElection(Election {
                version: self.a[0],
                criteria: self.b,
                uptime: self.c,
                server_name: &self.s1,
            }),
            5 => BrowserMessage::GetBackupListRequest {
                count: self.a[0],
                token: self.b,
            },
            6 => BrowserMessage::GetBackupListResponse {
                token: self.b,
                servers: self.list.iter().map(|s| &s[..]).collect(),
            },
            7 => BrowserMessage::BecomeBackup {
                browser_name: &self.s1,
            },
            8 => BrowserMessage::MasterAnnouncement {
                master_name: &self.s1,
            },
            9 => BrowserMessage::ResetStateRequest { options: self.a[0] },
            _ => BrowserMessage::Unknown {
                opcode: 0x10 | self.a[0],
                body: &self.s2,
            },
        }
    }
}

fn browser_owned() -> impl Strategy<Value = BrowserOwned> {
    (
        any::<u8>(),
        any::<[u8; 4]>(),
        any::<u32>(),
        any::<u32>(),
        cbytes(20),
        cbytes(60),
        vec(cbytes(16), 0..5),
    )
        .prop_map(|(op, a, b, c, s1, s2, list)| BrowserOwned {
            op,
            a,
            b,
            c,
            s1,
            s2,
            list,
        })
}

#[derive(Debug, Clone)]
struct NetlogonOwned {
    op: u8,
    a1: Vec<u8>,
    a2: Vec<u8>,
    u1: String,
    u2: String,
    u3: String,
    sid: Vec<u8>,
    n: u32,
    t: u16,
    pad: u8,
}

impl NetlogonOwned {
    fn as_message(&self) -> NetlogonMessage<'_> {
        let version = VersionTokens {
            nt_version: self.n,
            lmnt_token: self.t,
            lm20_token: !self.t,
        };
        match self.op % 5 {
            0 => NetlogonMessage::PrimaryQuery {
                computer_name: &self.a1,
                mailslot: &self.a2,
                unicode_computer_name: self.u1.clone(),
                version,
            },
            1 => NetlogonMessage::PrimaryResponse {
                primary_dc_name: &self.a1,
                unicode_primary_dc_name: self.u1.clone(),
                unicode_domain_name: self.u2.clone(),
                pad_before_nt_version: self.pad % 4,
                version,
            },
            2 => NetlogonMessage::SamLogonRequest {
                request_count: self.t,
                unicode_computer_name: self.u1.clone(),
                unicode_user_name: self.u2.clone(),
                mailslot: &self.a2,
                allowable_account_control: self.n,
                domain_sid: &self.sid,
                version,
            },
            3 => NetlogonMessage::SamLogonResponse {
                opcode: NetlogonOpcode::from(0x13 + u16::from(self.pad % 3)),
                unicode_logon_server: self.u1.clone(),
                unicode_user_name: self.u2.clone(),
                unicode_domain_name: self.u3.clone(),
                version,
            },
            _ => NetlogonMessage::Unknown {
                opcode: 0x30 + self.t % 100,
                body: &self.a1,
            },
        }
    }
}

fn netlogon_owned() -> impl Strategy<Value = NetlogonOwned> {
    (
        any::<u8>(),
        (cbytes(16), cbytes(40)),
        (text(16), text(16), text(16)),
        vec(any::<u8>(), 0..28),
        any::<u32>(),
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(
            |(op, (a1, a2), (u1, u2, u3), sid, n, t, pad)| NetlogonOwned {
                op,
                a1,
                a2,
                u1,
                u2,
                u3,
                sid,
                n,
                t,
                pad,
            },
        )
}

/// Every session-side parser on `b`: no panic, and parse → to_vec → parse is stable.
fn session_parsers_agree(b: &[u8]) -> core::result::Result<(), TestCaseError> {
    if let Ok(Some(n)) = session::frame_len(b, 0x1FFFF) {
        let h = session::Header::parse(b).unwrap();
        prop_assert_eq!(n, 4 + h.length);
        prop_assert_eq!(session::Header::parse(&h.to_bytes().unwrap()).unwrap(), h);
    }
    if let Ok(r) = session::SessionRequest::parse(b) {
        prop_assert_eq!(
            session::SessionRequest::parse(&r.to_vec().unwrap()[4..]).unwrap(),
            r
        );
    }
    if let Ok(h) = SmbHeader::parse(b) {
        let mut v = [0; 32];
        h.emit(&mut v).unwrap();
        prop_assert_eq!(SmbHeader::parse(&v).unwrap(), h);
    }
    if let Ok((h, c)) = MessageCommand::parse(b) {
        let v = c.to_vec(&h).unwrap();
        prop_assert_eq!(MessageCommand::parse(&v).unwrap(), (h, c));
    }
    if let Ok(r) = MessageReply::parse(b) {
        prop_assert_eq!(MessageReply::parse(&r.to_vec()).unwrap(), r);
    }
    if let Ok(w) = SessionMailslotWrite::parse(b) {
        let v = w.to_vec().unwrap();
        prop_assert_eq!(SessionMailslotWrite::parse(&v).unwrap(), w);
    }
    if let Ok(r) = TransactionReply::parse(b) {
        prop_assert_eq!(TransactionReply::parse(&r.to_vec()).unwrap(), r);
    }
    Ok(())
}
