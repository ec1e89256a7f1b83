//! The router fed arbitrary packets on both ports: never panics, and whatever it answers is a
//! packet our own parsers accept.
#![no_main]
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mailslot_proto::{MailslotMessage, NamePacket};
use mailslot_router::{Interface, Port, Router, RouterConfig};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let cfg = RouterConfig::new("FUZZ", "LAB", vec![Interface::new(Ipv4Addr::new(10, 0, 0, 1), 24)]);
    let mut r = Router::new(cfg, now);
    // Registered names, so queries and datagrams for them are processed too.
    for i in 0..4 {
        r.handle_timeout(now + Duration::from_millis(250 * i));
    }
    while r.poll_transmit().is_some() {}
    let (port, bytes) = match data.split_first() {
        Some((b, rest)) if b & 1 == 0 => (Port::Datagram, rest),
        Some((_, rest)) => (Port::Name, rest),
        None => return,
    };
    let later = now + Duration::from_secs(1);
    r.handle_datagram(later, port, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 138), bytes);
    r.handle_timeout(later + Duration::from_secs(3));
    while let Some(t) = r.poll_transmit() {
        match t.port {
            Port::Name => {
                NamePacket::parse(&t.payload).expect("our name packets parse");
            }
            Port::Datagram => {
                MailslotMessage::parse(&t.payload).expect("our datagrams parse");
            }
        }
    }
    while r.poll_event().is_some() {}
});
