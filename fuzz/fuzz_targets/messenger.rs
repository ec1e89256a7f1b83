//! parse → emit → parse for Messenger messages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::MessengerMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = MessengerMessage::parse(data) {
        let v = m.to_vec().expect("a parsed message re-encodes");
        assert_eq!(MessengerMessage::parse(&v).expect("re-parse"), m);
    }
});
