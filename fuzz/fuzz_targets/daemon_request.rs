//! The daemon's control protocol: decode never panics; decode → encode → decode is stable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot::daemon::{Reply, Request};

fuzz_target!(|data: &[u8]| {
    if let Some(r) = Request::decode(data) {
        let bytes = r.encode().expect("a decoded request re-encodes");
        assert_eq!(Request::decode(&bytes).as_ref(), Some(&r));
    }
    if let Some(r) = Reply::decode(data) {
        assert_eq!(Reply::decode(&r.encode()).as_ref(), Some(&r));
    }
});
