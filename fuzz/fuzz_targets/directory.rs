//! The mailslot directory's records: decode never panics; decode → encode → decode is stable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot::directory::{Reply, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(Request::decode(&r.encode()).as_ref(), Ok(&r));
    }
    if let Ok(r) = Reply::decode(data) {
        assert_eq!(Reply::decode(&r.encode()).as_ref(), Ok(&r));
    }
});
