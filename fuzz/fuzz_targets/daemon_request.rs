//! The daemon's control protocol: decode never panics; decode → encode → decode is stable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot::daemon::{Reply, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let bytes = r.encode().expect("a decoded request re-encodes");
        assert_eq!(Request::decode(&bytes).ok().as_ref(), Some(&r));
    }
    if let Ok(r) = Reply::decode(data) {
        // Defaulted fields come back written out, so the record may grow past the limit.
        if let Ok(bytes) = r.encode() {
            assert_eq!(Reply::decode(&bytes).ok().as_ref(), Some(&r));
        }
    }
});
