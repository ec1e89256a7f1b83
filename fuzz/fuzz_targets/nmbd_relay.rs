//! nmbd's relay header parser fed arbitrary bytes: never panics, and a header it accepts
//! announces no more than the limit; the router takes whatever follows without panicking.
#![no_main]
use std::net::Ipv4Addr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use mailslot_router::nmbd::{RelayHeader, HEADER_LEN, MAX_RELAYED};
use mailslot_router::{Interface, Router, RouterConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = RelayHeader::parse(data) else {
        return;
    };
    assert!(h.len <= MAX_RELAYED);
    let rest = &data[HEADER_LEN.min(data.len())..];
    let body = &rest[..h.len.min(rest.len())];
    let mut cfg = RouterConfig::new("FUZZ", "LAB", vec![Interface::new(Ipv4Addr::new(10, 0, 0, 1), 24)]);
    cfg.beside_nmbd = true;
    let mut r = Router::new(cfg, Instant::now());
    let _ = r.accept_relayed(Instant::now(), h.source, body);
});
