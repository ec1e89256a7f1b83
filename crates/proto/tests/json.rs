//! The `serde` feature: the JSON keys `mailslot decode` prints (and scripts
//! read) come from the types, for real nmbd traffic.
#![cfg(feature = "serde")]

mod common;

use common::capture;
use mailslot_proto::{MailslotMessage, NamePacket, NsOpcode};
use serde_json::{json, Value};

fn frame(c: &str, n: usize) -> Vec<u8> {
    capture(c)
        .into_iter()
        .find(|u| u.frame == n)
        .unwrap()
        .payload
}

#[test]
fn mailslot_message_keys() {
    let b = frame("nmbd-round.pcapng", 4);
    let v = serde_json::to_value(MailslotMessage::parse(&b).unwrap()).unwrap();
    for (k, want) in [
        ("msg_type", json!(16)),
        ("msg_type_name", json!("DIRECT_UNIQUE")),
        ("flags", json!(10)),
        ("node_type", json!("M")),
        ("source_name", json!("SMBPEER")),
        ("source_suffix", json!("00")),
        ("source_ip", json!("10.99.0.3")),
        ("destination_name", json!("CLIENT")),
        ("mailslot", json!("\\MAILSLOT\\NET\\GETDC576")),
        ("priority", json!(1)),
        ("class", json!(2)),
    ] {
        assert_eq!(v[k], want, "{k} in {v}");
    }
    let p = &v["payload"];
    assert_eq!(p["type"], "netlogon");
    assert_eq!(p["opcode"], 12);
    assert_eq!(p["opcode_name"], "LogonPrimaryResponse");
    assert_eq!(p["primary_dc_name"], "SMBPEER");
    assert_eq!(p["pad_before_nt_version"], 2);
    assert_eq!(p["nt_version"], 1);
    assert!(v.get("source_scope").is_none());
}

#[test]
fn browser_and_name_service_keys() {
    let msgs: Vec<Value> = capture("nmbd-startup-330s.pcapng")
        .iter()
        .filter(|u| u.dst_port == 138)
        .map(|u| serde_json::to_value(MailslotMessage::parse(&u.payload).unwrap()).unwrap())
        .collect();
    let host = msgs
        .iter()
        .find(|v| v["payload"]["opcode_name"] == "HostAnnouncement")
        .unwrap();
    let p = &host["payload"];
    assert_eq!(p["type"], "browser");
    assert_eq!(p["server_name"], "SMBPEER");
    assert!(p["server_type"].as_str().unwrap().starts_with("0x"));
    assert_eq!(p["signature"], "0xaa55");
    assert!(p["os_version"].as_str().unwrap().contains('.'));

    let reg = capture("nmbd-round.pcapng")
        .iter()
        .filter(|u| u.dst_port == 137)
        .map(|u| NamePacket::parse(&u.payload).unwrap())
        .find(|p| p.flags.opcode() == NsOpcode::Registration)
        .unwrap();
    let v = serde_json::to_value(&reg).unwrap();
    assert_eq!(v["opcode_name"], "registration");
    assert_eq!(v["questions"][0]["type"], 32);
    assert_eq!(v["additional"][0]["addresses"][0]["ip"], "10.99.0.3");
    assert_eq!(v["additional"][0]["ttl"], reg.additional[0].ttl);
    assert!(v["nm_flags"].as_array().unwrap().contains(&json!("B")));
}
