//! The shared store of a mailslot whose owner handle several processes hold, as a broken holder
//! may leave it (queue words, journal, table and levels overwritten): the next holder repairs it,
//! reads every message and queues one; nothing may panic or touch memory outside the store.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailslot::fuzzing::shared_store(data);
});
