//! parse → to_vec → parse for the SMB messages of a session: SmbHeader,
//! MessageCommand, MessageReply, SessionMailslotWrite, TransactionReply.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::smb_session::{
    MessageCommand, MessageReply, SessionMailslotWrite, SmbHeader, TransactionReply,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = SmbHeader::parse(data) {
        let mut v = [0u8; 32];
        h.emit(&mut v).expect("a header fits 32 bytes");
        assert_eq!(SmbHeader::parse(&v).expect("re-parse"), h);
    }
    if let Ok((h, c)) = MessageCommand::parse(data) {
        let v = c.to_vec(&h).expect("a parsed command re-encodes");
        assert_eq!(MessageCommand::parse(&v).expect("re-parse"), (h, c));
    }
    if let Ok(r) = MessageReply::parse(data) {
        assert_eq!(MessageReply::parse(&r.to_vec()).expect("re-parse"), r);
    }
    if let Ok(w) = SessionMailslotWrite::parse(data) {
        let v = w.to_vec().expect("a parsed write re-encodes");
        assert_eq!(SessionMailslotWrite::parse(&v).expect("re-parse"), w);
    }
    if let Ok(r) = TransactionReply::parse(data) {
        assert_eq!(TransactionReply::parse(&r.to_vec()).expect("re-parse"), r);
    }
});
