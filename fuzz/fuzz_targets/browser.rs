//! parse → emit → parse for browser frames.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::BrowserMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = BrowserMessage::parse(data) {
        let v = m.to_vec().expect("a parsed frame re-encodes");
        assert_eq!(BrowserMessage::parse(&v).expect("re-parse"), m);
    }
});
