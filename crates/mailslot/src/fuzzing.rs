//! Entry points for the fuzz targets (feature `fuzzing`; not a stable API): the parsers of what
//! crosses a process boundary in the local transport.

use crate::shm::{RingReader, RING_HDR};
use crate::transport::{decode_header, decode_remote, Greeting};

/// What an owner does with a ring a hostile writer filled with `bytes` (header words first, then
/// records): freezes it as at a hang-up (some inputs) and lets it be scribbled over again, reads
/// records straight from it while they look like one priority, scans the rest (every record's
/// bounds checked), copies each record out, scans again.
/// Also decodes `bytes` as a greeting, a socket-path record header, a remote-sender block and a
/// writer's hello on a process listener.
/// Must never panic, whatever the bytes.
pub fn local_input(bytes: &[u8]) {
    let _ = Greeting::decode(bytes);
    let _ = decode_header(bytes);
    let _ = decode_remote(bytes);
    let _ = crate::transport::registry::decode_hello(bytes);
    let Ok((_fd, mut ring)) = RingReader::create(4096) else {
        return;
    };
    ring.fill_for_fuzzing(bytes);
    // A writer that hung up (when the input says so): the ring ends where its tail was, and is
    // scribbled over again afterwards (by a process the writer passed it to).
    if bytes.get(24).is_some_and(|b| b & 1 == 1) {
        let mut records = 0usize;
        let frozen = ring.freeze(|rec| {
            assert!(rec.len <= 4096);
            records += 1;
        });
        if frozen.is_ok() {
            assert!(records <= 4096 / 16);
            ring.fill_for_fuzzing(bytes.get(25..).unwrap_or_default());
        }
    }
    // The owner's direct reads (one writer, one priority), then scans of the rest.
    let mut out = vec![0u8; 4096];
    for _ in 0..64 {
        let Some((rec, next)) = ring.first_if_uniform() else {
            break;
        };
        assert!(rec.len <= out.len());
        ring.data_to(&rec, &mut out[..rec.len]);
        ring.skip_first(next, rec.len);
    }
    // Scans up to a cut (the first one from the input, so that records are left and taken
    // by the next), then up to the end.
    let cut = bytes.get(16..24).map_or(u64::MAX, |b| {
        u64::from_le_bytes(b.try_into().unwrap_or_default())
    });
    for cut in [cut, cut, u64::MAX] {
        let mut out = Vec::new();
        let r = ring.scan_until(cut, |ring, rec| {
            out.clear();
            ring.data_into(&rec, &mut out);
            assert_eq!(out.len(), rec.len);
            let _ = ring.remote_block(&rec);
            let _ = ring.behalf_block(&rec);
        });
        if r.is_err() {
            break;
        }
        ring.commit();
    }
    let _ = RING_HDR;
}

/// A shared store as a broken (or hostile) holder may leave it: `bytes` over its level words,
/// levels, journal and table; then what every holder does (repair, read everything, queue a
/// message). Must never panic, read or write outside the store, or loop for ever.
pub fn shared_store(bytes: &[u8]) {
    use crate::shm::store::{Settings, Store, FOREVER};
    use std::cell::RefCell;
    thread_local! {
        // One store for all runs (making one costs more than a run).
        static STORE: RefCell<Option<(std::os::fd::OwnedFd, Store)>> = const { RefCell::new(None) };
    }
    STORE.with_borrow_mut(|slot| {
        if slot.is_none() {
            let settings = Settings {
                max_message_size: 512,
                quota: 2048,
                max_messages: 16,
                access_kind: 0,
                access_gid: 0,
                owner_uid: 0,
                accept_remote: true,
                spin_ns: 0,
                read_timeout_ms: FOREVER,
                name: r"\\.\mailslot\fuzz".into(),
            };
            *slot = Store::create(&settings, 0).ok();
        }
        if let Some((_, store)) = slot.as_mut() {
            store.fill_for_fuzzing(bytes);
            store.exercise_for_fuzzing();
        }
    });
}
