//! Link-layer frame → UDP payload: no panic on any frame of any link type, and
//! the payload found is always inside the frame. The first byte picks the link type.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::link::{udp_payload, LinkType};

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIpv4,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    if let Some(u) = udp_payload(LINKS[usize::from(pick) % LINKS.len()], frame) {
        let (start, end) = (frame.as_ptr() as usize, frame.as_ptr() as usize + frame.len());
        let p = u.payload.as_ptr() as usize;
        assert!(p >= start && p + u.payload.len() <= end, "payload outside the frame");
    }
});
