//! Byte tests against the shared test vectors (copied into tests/fixtures).

mod common;

use std::net::Ipv4Addr;

use common::hex_fixture;
use mailslot_proto::{
    MailslotMessage, MailslotWriteRepr, MsgType, NamePacket, NbAddress, NetbiosName,
    NetlogonMessage, NodeType, NsOpcode, QualifiedName, RData, VersionTokens,
};

fn name(s: &str) -> QualifiedName {
    s.parse::<NetbiosName>().unwrap().into()
}

#[test]
fn nbns_name_query_test1() {
    let bytes = hex_fixture("nbns-name-query-TEST1-20.hex");
    let p = NamePacket::parse(&bytes).unwrap();
    let expected = NamePacket::name_query(0, name("TEST1<20>"), true);
    assert_eq!(p, expected);
    assert_eq!(expected.to_vec().unwrap(), bytes);
    assert_eq!(p.flags.opcode(), NsOpcode::Query);
}

#[test]
fn nbns_positive_response_potato() {
    let bytes = hex_fixture("nbns-positive-response-POTATO-00.hex");
    let p = NamePacket::parse(&bytes).unwrap();
    let expected = NamePacket::positive_query_response(
        0x2f53,
        name("POTATO<00>"),
        259_200,
        vec![NbAddress::new(
            Ipv4Addr::new(192, 168, 1, 65),
            false,
            NodeType::B,
        )],
    );
    assert_eq!(p, expected);
    assert_eq!(expected.to_vec().unwrap(), bytes);
    assert!(p.flags.is_response());
    match &p.answers[0].rdata {
        RData::Nb(a) => assert!(!a[0].is_group()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn netlogon_primary_query() {
    let bytes = hex_fixture("netlogon-logon-primary-query.hex");
    assert_eq!(bytes.len(), 70);
    let m = NetlogonMessage::parse(&bytes).unwrap();
    let expected = NetlogonMessage::PrimaryQuery {
        computer_name: b"XPDATEV-PRO",
        mailslot: b"\\MAILSLOT\\NET\\GETDC817",
        unicode_computer_name: "XPDATEV-PRO".into(),
        version: VersionTokens::new(0x0B),
    };
    assert_eq!(m, expected);
    assert_eq!(
        expected.to_vec().unwrap(),
        bytes,
        "1 pad byte to an even offset"
    );
}

#[test]
fn smb_spec_example_is_read_from_data_offset() {
    let bytes = hex_fixture("smb-mailslot-write-spec-example.hex");
    assert_eq!(bytes.len(), 140);
    let w = MailslotWriteRepr::parse(&bytes).unwrap();
    assert_eq!(w.name, b"\\MAILSLOT\\test1\\sample_mailslot");
    assert_eq!(w.priority, 0);
    assert_eq!(w.class, 2);
    assert_eq!(w.data, &[0xCA; 36][..]);
    // Our layout has no padding: DataOffset 70 + 31 = 101 instead of 104.
    let ours = w.to_vec().unwrap();
    assert_eq!(ours.len(), 101 + 36);
    assert_eq!(u16::from_le_bytes([ours[57], ours[58]]), 101);
    assert_eq!(MailslotWriteRepr::parse(&ours).unwrap(), w);
    // Wrapped in a datagram it parses the same way (non-zero header fields ignored).
    let mut dgram = MailslotMessage::new(
        MsgType::DirectGroup,
        1,
        Ipv4Addr::new(10, 0, 0, 1),
        name("A"),
        name("B<1D>"),
        w.clone(),
    )
    .to_vec()
    .unwrap();
    dgram.truncate(82);
    dgram.extend_from_slice(&bytes);
    let m = MailslotMessage::parse(&dgram).unwrap();
    assert_eq!(m.write, w);
}

#[test]
fn garbage_padding_is_ignored() {
    // Win98 messenger style: 1 pad byte of 0x42 before the data.
    let w = MailslotWriteRepr {
        name: b"\\MAILSLOT\\MESSNGR",
        priority: 1,
        class: 2,
        data: b"WIN98USER\0WORKGROUP\0HELLO WORLD\0",
    };
    let mut b = w.to_vec().unwrap();
    let off = w.data_offset();
    b.insert(off, 0x42);
    b[57..59].copy_from_slice(&((off + 1) as u16).to_le_bytes());
    assert_eq!(MailslotWriteRepr::parse(&b).unwrap(), w);
}
