//! parse → emit → parse for SMB_COM_TRANSACTION mailslot writes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::MailslotWriteRepr;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = MailslotWriteRepr::parse(data) {
        let v = w.to_vec().expect("a parsed write re-encodes");
        assert_eq!(MailslotWriteRepr::parse(&v).expect("re-parse"), w);
    }
});
