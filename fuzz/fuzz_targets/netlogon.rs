//! parse → emit → parse for NETLOGON messages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::NetlogonMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = NetlogonMessage::parse(data) {
        let v = m.to_vec().expect("a parsed message re-encodes");
        assert_eq!(NetlogonMessage::parse(&v).expect("re-parse"), m);
    }
});
