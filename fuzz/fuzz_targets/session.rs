//! NetBIOS session packets: frame_len, Header::parse and SessionRequest::parse
//! on arbitrary bytes; what parses re-encodes and re-parses equal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::session::{self, Header, SessionRequest};

fuzz_target!(|data: &[u8]| {
    let limit = data.first().map_or(0, |&b| usize::from(b) << 9);
    match session::frame_len(data, limit) {
        Ok(Some(n)) => assert!(n >= session::HEADER_LEN && n - session::HEADER_LEN <= limit),
        Ok(None) => assert!(data.len() < session::HEADER_LEN),
        Err(_) => {}
    }
    if let Ok(h) = Header::parse(data) {
        let b = h.to_bytes().expect("a parsed header re-encodes");
        assert_eq!(Header::parse(&b).expect("re-parse"), h);
        assert_eq!(&b[1..], &data[1..4]);
    }
    for payload in [data, data.get(session::HEADER_LEN..).unwrap_or(&[])] {
        if let Ok(r) = SessionRequest::parse(payload) {
            let v = r.to_vec().expect("a parsed request re-encodes");
            assert_eq!(session::frame_len(&v, 68).expect("frame"), Some(v.len()));
            assert_eq!(
                SessionRequest::parse(&v[session::HEADER_LEN..]).expect("re-parse"),
                r
            );
        }
    }
});
