//! Arbitrary sequences of control requests (and the clock, and packets from the network) against
//! the daemon's request handling in its protocol core: never a panic, every write and resolution
//! answered exactly once, out-of-range fields refused with 87 before anything is sent, and the
//! local copy of a local write always delivered on behalf of the caller that asked.
//!
//! Input: a sequence of steps, each an opcode byte and its operand:
//! `0 LEN_HI LEN_LO RECORD` a control record (JSON, as a client sends it) from caller `uid`,
//! `1 UID` the caller of the next records, `2 N` the clock advances N × 10 ms,
//! `3 LEN RECORD` a datagram on UDP 138, `4 LEN RECORD` a packet on UDP 137.
#![no_main]
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mailslot::daemon::Request;
use mailslot::trusted::Caller;
use mailslot_router::{Event, Interface, LocalRequest, Port, Router, RouterConfig};

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, tail) = data.split_at(n);
    *data = tail;
    Some(head)
}

fn take_up_to<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let n = n.min(data.len());
    take(data, n)
}

fuzz_target!(|input: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut cfg = RouterConfig::new(
        "FUZZHOST",
        "FUZZWG",
        vec![Interface::new(Ipv4Addr::new(10, 0, 0, 1), 24)],
    );
    cfg.wins_server = Some(Ipv4Addr::new(10, 0, 0, 3));
    let mut router = Router::new(cfg, start);
    let mut caller = Caller {
        pid: 1,
        uid: 0,
        gid: 0,
        groups: vec![],
    };
    // Outstanding ids → whether the request is out of range (must fail with 87).
    let mut open: HashMap<u64, bool> = HashMap::new();
    let mut next_id = 1u64;
    let mut data = input;
    let peer = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 138);
    while let Some(&[op]) = take(&mut data, 1) {
        match op % 5 {
            0 => {
                let Some(len) = take(&mut data, 2) else { break };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let Some(rec) = take_up_to(&mut data, len) else {
                    break;
                };
                let Ok(req) = Request::decode(rec) else {
                    continue;
                };
                let id = next_id;
                next_id += 1;
                match req {
                    Request::Write(write) => {
                        let bad =
                            write.priority > 9 || write.path.is_empty() || write.path.len() > 95;
                        open.insert(id, bad);
                        router.handle_local(
                            now,
                            LocalRequest::Write {
                                id,
                                write,
                                caller: Some(caller.clone()),
                            },
                        );
                    }
                    Request::Resolve { name, suffix } => {
                        open.insert(id, false);
                        router.handle_local(now, LocalRequest::Resolve { id, name, suffix });
                    }
                    _ => {
                        let _ = (router.counters(), router.names(), router.cache(now));
                    }
                }
            }
            1 => {
                let Some(&[uid]) = take(&mut data, 1) else {
                    break;
                };
                caller = Caller {
                    pid: u32::from(uid) + 1,
                    uid: u32::from(uid),
                    gid: u32::from(uid),
                    groups: vec![],
                };
            }
            2 => {
                let Some(&[n]) = take(&mut data, 1) else {
                    break;
                };
                now += Duration::from_millis(u64::from(n) * 10);
                router.handle_timeout(now);
            }
            port => {
                let Some(&[len]) = take(&mut data, 1) else {
                    break;
                };
                let Some(rec) = take_up_to(&mut data, usize::from(len)) else {
                    break;
                };
                let port = if port == 3 {
                    Port::Datagram
                } else {
                    Port::Name
                };
                router.handle_datagram(now, port, peer, rec);
            }
        }
        drain(&mut router, &mut open);
    }
    // Long enough for every resolution to finish.
    for _ in 0..40 {
        now += Duration::from_millis(250);
        router.handle_timeout(now);
        drain(&mut router, &mut open);
    }
    assert!(open.is_empty(), "requests never answered: {open:?}");
});

fn drain(router: &mut Router, open: &mut HashMap<u64, bool>) {
    while router.poll_transmit().is_some() {}
    while let Some(ev) = router.poll_event() {
        match ev {
            Event::WriteDone { id, result } => {
                let bad = open
                    .remove(&id)
                    .expect("a write answered twice or never asked");
                if bad {
                    assert_eq!(result.err().map(|f| f.code), Some(87), "write {id}");
                }
            }
            Event::Resolved { id, .. } => {
                open.remove(&id)
                    .expect("a resolution answered twice or never asked");
            }
            Event::Deliver(d) => {
                if let Some(c) = &d.caller {
                    // A local copy: of a checked request, for a caller this target made.
                    assert!(d.priority <= 9);
                    assert_eq!((c.pid, c.gid), (c.uid + 1, c.uid));
                }
            }
            _ => {}
        }
    }
}
