//! Our own capture from the interop lab (`own-encode-vs-nmbd.pcapng`): datagrams
//! built by `mailslot encode` / `encode-name-query` (sent from 10.99.0.1) and
//! Samba nmbd 4.17's answers (10.99.0.3). nmbd answering at all proves it
//! accepted our bytes; here we check we decode its answers.

mod common;

use std::net::Ipv4Addr;

use common::capture;
use mailslot_proto::{
    MailslotMessage, NamePacket, NetlogonMessage, NetlogonOpcode, NodeType, RData,
};

const CAP: &str = "own-encode-vs-nmbd.pcapng";

fn datagrams() -> Vec<(usize, Vec<u8>)> {
    capture(CAP)
        .into_iter()
        .filter(|u| u.dst_port == 138)
        .map(|u| (u.frame, u.payload))
        .collect()
}

#[test]
fn nmbd_answers_our_netlogon_queries() {
    let all = datagrams();
    let msgs: Vec<MailslotMessage<'_>> = all
        .iter()
        .map(|(_, b)| MailslotMessage::parse(b).unwrap())
        .collect();
    // Our primary query, and nmbd's 0x0C answer on the reply mailslot we named.
    let q = msgs
        .iter()
        .find(|m| {
            m.write.name == b"\\MAILSLOT\\NET\\NETLOGON"
                && m.source_ip == Ipv4Addr::new(10, 99, 0, 1)
        })
        .unwrap();
    assert_eq!(q.source.name.to_string(), "CLIENT<00>");
    let r = msgs
        .iter()
        .find(|m| m.write.name == b"\\MAILSLOT\\NET\\GETDC101")
        .expect("nmbd answered our LOGON_PRIMARY_QUERY");
    assert_eq!(r.destination.name.to_string(), "CLIENT<00>");
    common::assert_nmbd_primary_response(r.write.data);
    // Our SAM logon (DIRECT_GROUP to MSLAB<1C>) got 0x13 answers on GETDC102.
    let sam: Vec<_> = msgs
        .iter()
        .filter(|m| m.write.name == b"\\MAILSLOT\\NET\\GETDC102")
        .map(|m| NetlogonMessage::parse(m.write.data).unwrap())
        .collect();
    assert!(!sam.is_empty());
    for m in sam {
        assert_eq!(m.opcode(), NetlogonOpcode::LogonSamLogonResponse);
        if let NetlogonMessage::SamLogonResponse {
            unicode_logon_server,
            unicode_user_name,
            ..
        } = m
        {
            assert_eq!(unicode_logon_server, "\\\\SMBPEER");
            assert_eq!(unicode_user_name, "alice");
        }
    }
}

#[test]
fn nmbd_answers_our_name_query() {
    let ns: Vec<NamePacket> = capture(CAP)
        .iter()
        .filter(|u| u.dst_port == 137 || u.src_port == 137)
        .map(|u| NamePacket::parse(&u.payload).unwrap())
        .collect();
    let q = ns
        .iter()
        .find(|p| p.trn_id == 4103 && !p.flags.is_response())
        .unwrap();
    assert_eq!(q.questions[0].name.name.to_string(), "SMBPEER<20>");
    let r = ns
        .iter()
        .find(|p| p.trn_id == 4103 && p.flags.is_response())
        .unwrap();
    assert_eq!(r.flags.0, 0x8580);
    match &r.answers[0].rdata {
        RData::Nb(a) => {
            assert_eq!(a[0].ip, Ipv4Addr::new(10, 99, 0, 3));
            assert_eq!(a[0].node_type(), NodeType::H);
            assert!(!a[0].is_group());
        }
        other => panic!("{other:?}"),
    }
    for p in &ns {
        assert_eq!(&NamePacket::parse(&p.to_vec().unwrap()).unwrap(), p);
    }
}
