//! parse → emit → parse for NetBIOS datagrams and mailslot messages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::{DatagramRepr, MailslotMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = DatagramRepr::parse(data) {
        let v = d.to_vec().expect("a parsed datagram re-encodes");
        assert_eq!(DatagramRepr::parse(&v).expect("re-parse"), d);
    }
    if let Ok(m) = MailslotMessage::parse(data) {
        let v = m.to_vec().expect("a parsed message re-encodes");
        assert_eq!(MailslotMessage::parse(&v).expect("re-parse"), m);
    }
});
