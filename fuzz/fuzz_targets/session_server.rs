//! The session service's receiving side: a connection fed an arbitrary byte stream, split into
//! frames as the daemon splits it. Never panics; every reply it asks to send is a session packet
//! our parser accepts; it closes after a malformed frame and then ignores the rest.
#![no_main]
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use mailslot_proto::session::{self as nbss, frame_len};
use mailslot_proto::NetbiosName;
use mailslot_router::session::{Connection, Output, Service, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let ours = NetbiosName::new("FUZZ", 0x20).expect("a valid name");
    let messenger = NetbiosName::new("FUZZ", 0x03).expect("a valid name");
    let mut conn = Connection::new(Ipv4Addr::new(10, 0, 0, 9));
    // Start with a valid session request half the time, so the SMB layer is reached.
    let mut stream = Vec::new();
    if data.first().is_some_and(|b| b & 1 == 0) {
        let req = nbss::SessionRequest { called: ours, calling: messenger };
        stream.extend_from_slice(&req.to_vec().expect("encodes"));
    }
    stream.extend_from_slice(data.get(1..).unwrap_or_default());
    let mut rest = &stream[..];
    let mut closed = false;
    while let Ok(Some(n)) = frame_len(rest, MAX_FRAME) {
        if rest.len() < n {
            break;
        }
        let outs = conn.handle_frame(&rest[..n], |n| {
            if n.eq_ignore_case(&ours) {
                Some(Service::Server)
            } else if n.eq_ignore_case(&messenger) {
                Some(Service::Messenger)
            } else {
                None
            }
        });
        if closed {
            assert!(outs.is_empty(), "a closed connection answers nothing");
        }
        for out in outs {
            match out {
                Output::Send(bytes) => {
                    nbss::Header::parse(&bytes).expect("our replies parse");
                }
                Output::Deliver(incoming) => {
                    let reply = incoming.reply.reply(Err(2));
                    nbss::Header::parse(&reply).expect("our replies parse");
                    assert!(incoming.delivery.data.len() <= MAX_FRAME);
                }
                Output::Close => closed = true,
                Output::Note(_) => {}
            }
        }
        rest = &rest[n..];
    }
});
