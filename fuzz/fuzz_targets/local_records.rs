//! The local transport's parsers of untrusted input: a writer's ring as a hostile writer may fill
//! it (the owner scans and copies it), the owner's greeting (a writer decodes it), the socket
//! path's record header and remote-sender block. None may panic or read out of bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailslot::fuzzing::local_input(data);
});
