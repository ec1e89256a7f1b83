//! parse → emit → parse for name-service packets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::NamePacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = NamePacket::parse(data) {
        let v = p.to_vec().expect("a parsed packet re-encodes");
        assert_eq!(NamePacket::parse(&v).expect("re-parse"), p);
    }
});
