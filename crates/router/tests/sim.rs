//! Routers wired together by an in-memory network, driven by a fake clock. Deterministic.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use mailslot::daemon::RemoteWrite;
use mailslot::error::code::BAD_NETPATH as ERROR_BAD_NETPATH;
use mailslot::trusted::Caller;
use mailslot::{Class, Target};
use mailslot_proto::{
    MailslotMessage, NamePacket, NetbiosName, NsFlags, NsOpcode, RData, ResourceRecord, RrType,
};
use mailslot_router::{Event, Interface, LocalRequest, Port, Router, RouterConfig, Transmit};

const WG: &str = "LAB";

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

struct Node {
    router: Router,
    ip: Ipv4Addr,
    events: Vec<Event>,
}

/// The network: every packet is delivered after the sender's step; broadcasts go to every node
/// (the sender too, as Linux loops them back).
struct Net {
    now: Instant,
    nodes: Vec<Node>,
    /// Every packet sent, for inspection: (from ip, transmit).
    wire: Vec<(Ipv4Addr, Transmit)>,
    /// Packets to drop (by index in `wire` order) — unused unless a test sets a filter.
    drop_to: Option<Ipv4Addr>,
}

impl Net {
    fn new() -> Self {
        Self {
            now: Instant::now(),
            nodes: Vec::new(),
            wire: Vec::new(),
            drop_to: None,
        }
    }

    fn cfg(name: &str, n: u8) -> RouterConfig {
        let mut c = RouterConfig::new(name, WG, vec![Interface::new(ip(n), 24)]);
        c.seed = u16::from(n) * 1000;
        c
    }

    fn add(&mut self, name: &str, n: u8) -> usize {
        self.add_cfg(Self::cfg(name, n))
    }

    /// A node beside nmbd (no name service of its own), with `aliases`.
    fn add_beside_nmbd(&mut self, name: &str, n: u8, aliases: &[&str]) -> usize {
        let mut c = Self::cfg(name, n);
        c.beside_nmbd = true;
        c.aliases = aliases.iter().map(|a| (*a).to_string()).collect();
        self.add_cfg(c)
    }

    fn add_cfg(&mut self, cfg: RouterConfig) -> usize {
        let ip = cfg.interfaces[0].ip;
        self.nodes.push(Node {
            router: Router::new(cfg, self.now),
            ip,
            events: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.nodes[i].router.handle_timeout(self.now);
        self.step();
        i
    }

    /// Delivers everything until nothing moves.
    fn step(&mut self) {
        loop {
            let mut moved = false;
            let mut queue: VecDeque<(Ipv4Addr, Transmit)> = VecDeque::new();
            for node in &mut self.nodes {
                while let Some(t) = node.router.poll_transmit() {
                    queue.push_back((node.ip, t));
                }
                while let Some(e) = node.router.poll_event() {
                    node.events.push(e);
                }
            }
            while let Some((from, t)) = queue.pop_front() {
                moved = true;
                self.wire.push((from, t.clone()));
                let src_port = match t.port {
                    Port::Datagram => 138,
                    Port::Name => 137,
                };
                let bcast = t.dest.ip().octets()[3] == 255;
                for node in &mut self.nodes {
                    if (bcast || node.ip == *t.dest.ip()) && self.drop_to != Some(node.ip) {
                        node.router.handle_datagram(
                            self.now,
                            t.port,
                            SocketAddrV4::new(from, src_port),
                            &t.payload,
                        );
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for node in &mut self.nodes {
            while let Some(e) = node.router.poll_event() {
                node.events.push(e);
            }
        }
    }

    /// Advances the clock in small steps, firing every due timer.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.router.poll_timeout())
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = t.max(self.now);
            for node in &mut self.nodes {
                if node.router.poll_timeout().is_some_and(|x| x <= self.now) {
                    node.router.handle_timeout(self.now);
                }
            }
            self.step();
        }
        self.now = end;
    }

    /// Hands node `i` a packet on `port` from `from`, at the current time (no step).
    fn receive(&mut self, i: usize, port: Port, from: SocketAddrV4, payload: &[u8]) {
        let now = self.now;
        self.nodes[i]
            .router
            .handle_datagram(now, port, from, payload);
    }

    /// A request from a local client to node `i`, then a step.
    fn local(&mut self, i: usize, request: LocalRequest) {
        let now = self.now;
        self.nodes[i].router.handle_local(now, request);
        self.step();
    }

    /// Node `i` shuts down, then a step.
    fn shutdown(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].router.shutdown(now);
        self.step();
    }

    /// Node 0 writes `data` (write id 1) to `path` on `host` on a cleared wire; the first
    /// datagram that went out for it.
    fn sent_datagram(&mut self, host: &str, path: &str, data: &[u8]) -> Transmit {
        self.wire.clear();
        self.write(0, 1, Target::Host(host.into()), path, data);
        let (_, t) = self
            .wire
            .iter()
            .find(|(_, t)| t.port == Port::Datagram)
            .cloned()
            .unwrap();
        t
    }

    /// Node `i`'s own names.
    fn names(&self, i: usize) -> Vec<String> {
        self.nodes[i]
            .router
            .names()
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    fn events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.nodes[i].events)
    }

    fn write(&mut self, i: usize, id: u64, target: Target, path: &str, data: &[u8]) {
        self.local(
            i,
            LocalRequest::Write {
                id,
                write: RemoteWrite {
                    target,
                    path: path.into(),
                    priority: 1,
                    class: Class::Second,
                    timeout_ms: None,
                    data: data.to_vec(),
                },
                caller: None,
            },
        );
    }
}

fn delivered(events: &[Event]) -> Vec<(String, Vec<u8>, String, Ipv4Addr)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deliver(d) => Some((
                d.path.to_string(),
                d.data.to_vec(),
                d.sender_name.to_string(),
                d.sender_ip,
            )),
            _ => None,
        })
        .collect()
}

fn three_hosts() -> Net {
    let mut net = Net::new();
    net.add("A", 1);
    net.add("B", 2);
    net.add("C", 3);
    net.advance(Duration::from_secs(1));
    for i in 0..3 {
        let ev = net.events(i);
        assert!(ev.contains(&Event::NamesRegistered), "node {i}: {ev:?}");
    }
    net
}

#[test]
fn registration_takes_three_broadcasts_per_name() {
    let mut net = Net::new();
    net.add("A", 1);
    net.advance(Duration::from_millis(600));
    assert!(
        net.events(0).is_empty(),
        "not registered before the third retry"
    );
    net.advance(Duration::from_millis(400));
    assert_eq!(net.events(0), vec![Event::NamesRegistered]);
    // 4 names × 3 broadcasts, all to 10.0.0.255:137.
    assert_eq!(net.wire.len(), 12);
    for (_, t) in &net.wire {
        assert_eq!(t.dest, SocketAddrV4::new(ip(255), 137));
        let p = NamePacket::parse(&t.payload).unwrap();
        assert_eq!(u8::from(p.flags.opcode()), 5);
    }
    assert_eq!(net.names(0), ["A<00>", "A<03>", "LAB<00>", "LAB<1E>"]);
}

#[test]
fn a_second_node_with_the_same_name_is_refused() {
    let mut net = three_hosts();
    let dup = net.add("b", 9);
    net.advance(Duration::from_secs(1));
    let ev = net.events(dup);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::NameConflict { name, by } if name == "B<00>" && *by == ip(2))
        ),
        "{ev:?}"
    );
    assert!(net.nodes[1].router.counters().names_defended >= 1);
    // Group names are shared, not defended.
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::NameConflict { name, .. } if name.starts_with("LAB"))));
}

#[test]
fn unique_write_reaches_only_that_host() {
    let mut net = three_hosts();
    net.wire.clear();
    net.write(0, 7, Target::Host("b".into()), "t", b"hello B");
    net.advance(Duration::from_millis(100));
    let a = net.events(0);
    assert!(
        a.contains(&Event::WriteDone {
            id: 7,
            result: Ok(())
        }),
        "{a:?}"
    );
    assert!(delivered(&a).is_empty());
    // The path travels in upper case (receivers compare case-insensitively).
    assert_eq!(
        delivered(&net.events(1)),
        vec![("T".into(), b"hello B".to_vec(), "A".into(), ip(1))]
    );
    assert!(delivered(&net.events(2)).is_empty());
    // One broadcast query, one answer, one DIRECT_UNIQUE datagram to B.
    let dgms: Vec<&Transmit> = net
        .wire
        .iter()
        .filter(|(_, t)| t.port == Port::Datagram)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(dgms.len(), 1);
    assert_eq!(dgms[0].dest, SocketAddrV4::new(ip(2), 138));
    let m = MailslotMessage::parse(&dgms[0].payload).unwrap();
    assert_eq!(u8::from(m.msg_type), 0x10);
    assert_eq!(m.destination.name, NetbiosName::new("B", 0).unwrap());
    assert_eq!(m.source.name, NetbiosName::new("A", 0).unwrap());
    assert_eq!(m.write.name, b"\\MAILSLOT\\T");
    // The answer is cached: a second write sends no query.
    net.wire.clear();
    net.write(0, 8, Target::Host("B".into()), "t", b"again");
    assert!(net.wire.iter().all(|(_, t)| t.port == Port::Datagram));
    assert_eq!(delivered(&net.events(1)).len(), 1);
}

#[test]
fn domain_and_star_writes_reach_every_host_once_including_the_sender() {
    for target in [Target::PrimaryDomain, Target::Host("lab".into())] {
        let mut net = three_hosts();
        net.wire.clear();
        let own_before = net.nodes[0].router.counters().ignored_own;
        net.write(0, 1, target.clone(), "t", b"to all");
        for i in 0..3 {
            let d = delivered(&net.events(i));
            assert_eq!(d.len(), 1, "node {i} {target:?}: {d:?}");
            assert_eq!(d[0].1, b"to all");
            assert_eq!(d[0].2, "A");
        }
        // No name query for our own workgroup: straight to the broadcast address.
        assert!(net.wire.iter().all(|(_, t)| t.port == Port::Datagram));
        let (_, t) = &net.wire[0];
        assert_eq!(t.dest, SocketAddrV4::new(ip(255), 138));
        let m = MailslotMessage::parse(&t.payload).unwrap();
        assert_eq!(u8::from(m.msg_type), 0x11);
        assert_eq!(m.destination.name, NetbiosName::new("LAB", 0).unwrap());
        assert_eq!(
            net.nodes[0].router.counters().ignored_own,
            own_before + 1,
            "own broadcast ignored"
        );
    }
}

#[test]
fn unknown_host_fails_with_bad_netpath_after_three_tries() {
    let mut net = three_hosts();
    net.wire.clear();
    net.write(0, 5, Target::Host("NOBODY".into()), "t", b"x");
    net.advance(Duration::from_millis(700));
    assert!(net.events(0).is_empty(), "still trying");
    net.advance(Duration::from_millis(100));
    let ev = net.events(0);
    match &ev[..] {
        [Event::WriteDone {
            id: 5,
            result: Err(f),
        }] => {
            assert_eq!(f.code, ERROR_BAD_NETPATH);
            assert!(f.message.contains("NOBODY<00>"));
        }
        other => panic!("{other:?}"),
    }
    let queries = net
        .wire
        .iter()
        .filter(|(_, t)| t.port == Port::Name)
        .count();
    assert_eq!(queries, 3);
    assert_eq!(net.nodes[0].router.counters().resolution_failures, 1);
    // Remembered for a moment: the next write fails at once, without queries.
    net.wire.clear();
    net.write(0, 6, Target::Host("NOBODY".into()), "t", b"x");
    assert!(matches!(
        &net.events(0)[..],
        [Event::WriteDone {
            id: 6,
            result: Err(_)
        }]
    ));
    assert!(net.wire.is_empty());
}

#[test]
fn too_large_for_the_network_fails_before_sending() {
    let mut net = three_hosts();
    net.wire.clear();
    // "t" is 1 character: 432 - 4 = 428 bytes at most.
    net.write(0, 1, Target::PrimaryDomain, "t", &[0; 429]);
    assert!(
        matches!(&net.events(0)[..], [Event::WriteDone { id: 1, result: Err(f) }] if f.code == ERROR_BAD_NETPATH)
    );
    assert!(net.wire.is_empty());
    net.write(0, 2, Target::PrimaryDomain, "t", &[0; 428]);
    assert!(net.events(0).contains(&Event::WriteDone {
        id: 2,
        result: Ok(())
    }));
}

#[test]
fn duplicates_within_two_seconds_are_dropped_once() {
    let mut net = three_hosts();
    let t = net.sent_datagram("B", "t", b"once");
    net.events(1);
    let src = SocketAddrV4::new(ip(1), 138);
    net.receive(1, Port::Datagram, src, &t.payload);
    net.step();
    assert!(delivered(&net.events(1)).is_empty());
    assert_eq!(net.nodes[1].router.counters().dropped_duplicate, 1);
    net.advance(Duration::from_millis(2100));
    net.receive(1, Port::Datagram, src, &t.payload);
    net.step();
    assert_eq!(
        delivered(&net.events(1)).len(),
        1,
        "accepted again after the window"
    );
}

#[test]
fn foreign_malformed_and_fragmented_datagrams_are_counted() {
    let mut net = three_hosts();
    let t = net.sent_datagram("B", "t", b"x");
    let r = &mut net.nodes[2].router; // C: not addressed to it
    let now = net.now;
    let src = SocketAddrV4::new(ip(1), 138);
    r.handle_datagram(now, Port::Datagram, src, &t.payload);
    assert_eq!(r.counters().dropped_not_for_us, 1);
    r.handle_datagram(now, Port::Datagram, src, b"\x10\x02garbage");
    r.handle_datagram(now, Port::Name, SocketAddrV4::new(ip(1), 137), b"\x00");
    assert_eq!(r.counters().dropped_malformed, 1);
    assert_eq!(r.counters().dropped_malformed_name, 1);
    let mut frag = t.payload.clone();
    frag[1] |= 0x01; // M: more fragments follow
    let r = &mut net.nodes[1].router;
    r.handle_datagram(now, Port::Datagram, src, &frag);
    assert_eq!(r.counters().dropped_fragment, 1);
}

#[test]
fn answers_queries_and_node_status_for_its_names_only() {
    let mut net = three_hosts();
    let r = &mut net.nodes[1].router;
    let asker = SocketAddrV4::new(ip(50), 137);
    let q = NamePacket::name_query(0x1234, NetbiosName::new("b", 0).unwrap().into(), true);
    r.handle_datagram(net.now, Port::Name, asker, &q.to_vec().unwrap());
    let t = r.poll_transmit().expect("an answer");
    assert_eq!(t.dest, asker);
    let p = NamePacket::parse(&t.payload).unwrap();
    assert!(p.flags.is_response());
    assert_eq!(p.trn_id, 0x1234);
    assert_eq!(p.flags.rcode(), 0);
    match &p.answers[0].rdata {
        RData::Nb(a) => assert_eq!(a[0].ip, ip(2)),
        other => panic!("{other:?}"),
    }
    let q = NamePacket::name_query(0x1235, NetbiosName::new("OTHER", 0).unwrap().into(), true);
    r.handle_datagram(net.now, Port::Name, asker, &q.to_vec().unwrap());
    assert!(
        r.poll_transmit().is_none(),
        "no answer for a name we do not hold"
    );
    let q = NamePacket::node_status_request(0x1236, NetbiosName::WILDCARD.into());
    r.handle_datagram(net.now, Port::Name, asker, &q.to_vec().unwrap());
    let p = NamePacket::parse(&r.poll_transmit().unwrap().payload).unwrap();
    match &p.answers[0].rdata {
        RData::NodeStatus(s) => assert_eq!(s.names.len(), 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wins_is_asked_first_then_broadcast() {
    let mut net = Net::new();
    let mut cfg = Net::cfg("A", 1);
    cfg.wins_server = Some(ip(100));
    net.add_cfg(cfg);
    net.add("B", 2);
    net.advance(Duration::from_secs(1));
    net.wire.clear();
    net.write(0, 1, Target::Host("B".into()), "t", b"x");
    net.advance(Duration::from_secs(2));
    let to: Vec<Ipv4Addr> = net
        .wire
        .iter()
        .filter(|(_, t)| t.port == Port::Name && t.dest.ip() != &ip(2))
        .map(|(_, t)| *t.dest.ip())
        .collect();
    assert_eq!(
        &to[..3],
        &[ip(100); 3],
        "three unicast tries to WINS first: {to:?}"
    );
    assert_eq!(to[3], ip(255));
    assert!(net.events(0).contains(&Event::WriteDone {
        id: 1,
        result: Ok(())
    }));
}

#[test]
fn shutdown_releases_names() {
    let mut net = three_hosts();
    net.wire.clear();
    net.shutdown(0);
    let releases = net
        .wire
        .iter()
        .filter(|(_, t)| {
            NamePacket::parse(&t.payload)
                .map(|p| u8::from(p.flags.opcode()) == 6)
                .unwrap_or(false)
        })
        .count();
    assert_eq!(releases, 4);
}

#[test]
fn resolve_requests_report_addresses() {
    let mut net = three_hosts();
    net.local(
        0,
        LocalRequest::Resolve {
            id: 3,
            name: "c".into(),
            suffix: 0,
        },
    );
    let ev = net.events(0);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Resolved { id: 3, result: Ok(a) } if a[0].ip == ip(3) && !a[0].group)),
        "{ev:?}"
    );
    net.local(
        0,
        LocalRequest::Resolve {
            id: 4,
            name: "LAB".into(),
            suffix: 0,
        },
    );
    let ev = net.events(0);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::Resolved { id: 4, result: Ok(a) } if a.iter().all(|x| x.group))
        ),
        "{ev:?}"
    );
}

proptest::proptest! {
    #[test]
    fn random_packets_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), port in 0u8..2) {
        let mut r = Router::new(Net::cfg("A", 1), Instant::now());
        let p = if port == 0 { Port::Datagram } else { Port::Name };
        r.handle_datagram(Instant::now(), p, SocketAddrV4::new(ip(9), 138), &data);
        while r.poll_transmit().is_some() {}
        while r.poll_event().is_some() {}
    }
}

#[test]
fn a_stray_objection_does_not_stop_a_registered_node() {
    // Regression: one forged negative registration response used to stop a running daemon.
    let mut net = three_hosts();
    let owner =
        mailslot_proto::nbns::NbAddress::new(ip(9), false, mailslot_proto::datagram::NodeType::B);
    let forged = NamePacket::negative_registration_response(
        0x7777,
        NetbiosName::new("B", 0).unwrap().into(),
        owner,
    );
    net.receive(
        1,
        Port::Name,
        SocketAddrV4::new(ip(9), 137),
        &forged.to_vec().unwrap(),
    );
    net.step();
    assert!(!net
        .events(1)
        .iter()
        .any(|e| matches!(e, Event::NameConflict { .. })));
    assert_eq!(net.nodes[1].router.counters().ignored_objections, 1);
    assert!(
        net.nodes[1].router.names().iter().all(|n| n.registered),
        "names stay registered"
    );
}

#[test]
fn the_loser_of_a_name_does_not_release_it_and_others_keep_their_cache() {
    let mut net = three_hosts();
    // A learns B's address.
    net.write(0, 1, Target::Host("B".into()), "t", b"x");
    net.events(0);
    net.events(1);
    let dup = net.add("B", 9);
    net.advance(Duration::from_secs(1));
    assert!(net
        .events(dup)
        .iter()
        .any(|e| matches!(e, Event::NameConflict { .. })));
    net.wire.clear();
    net.shutdown(dup);
    let released: Vec<String> = net
        .wire
        .iter()
        .filter_map(|(from, t)| {
            let p = NamePacket::parse(&t.payload).ok()?;
            (*from == ip(9) && u8::from(p.flags.opcode()) == 6)
                .then(|| p.questions[0].name.name.name_lossy())
        })
        .collect();
    assert!(
        !released.iter().any(|n| n == "B"),
        "released B's names: {released:?}"
    );
    // A still has B's real address cached: no new query for the next write.
    net.wire.clear();
    net.write(0, 2, Target::Host("B".into()), "t", b"y");
    assert!(
        net.wire.iter().all(|(_, t)| t.port == Port::Datagram),
        "{:?}",
        net.wire
    );
    assert_eq!(delivered(&net.events(1)).len(), 1);
}

/// A broadcast release of `C<00>` (transaction `trn`) that names `owner` as its address.
fn release_of_c(trn: u16, owner: Ipv4Addr) -> Vec<u8> {
    let owner =
        mailslot_proto::nbns::NbAddress::new(owner, false, mailslot_proto::datagram::NodeType::B);
    NamePacket::release(trn, NetbiosName::new("C", 0).unwrap().into(), owner, true)
        .to_vec()
        .unwrap()
}

#[test]
fn a_release_from_another_address_keeps_the_cache_entry() {
    let mut net = three_hosts();
    net.write(0, 1, Target::Host("C".into()), "t", b"x");
    net.receive(
        0,
        Port::Name,
        SocketAddrV4::new(ip(77), 137),
        &release_of_c(5, ip(77)),
    );
    assert_eq!(
        net.nodes[0]
            .router
            .cache(net.now)
            .iter()
            .find(|c| c.name == "C<00>")
            .map(|c| c.addresses.len()),
        Some(1)
    );
    net.receive(
        0,
        Port::Name,
        SocketAddrV4::new(ip(3), 137),
        &release_of_c(6, ip(3)),
    );
    assert!(net.nodes[0]
        .router
        .cache(net.now)
        .iter()
        .all(|c| c.name != "C<00>"));
}

#[test]
fn mailslot_names_go_upper_case_on_the_wire() {
    let mut net = three_hosts();
    let t = net.sent_datagram("B", "net\\netlogon", b"x");
    assert_eq!(
        MailslotMessage::parse(&t.payload).unwrap().write.name,
        b"\\MAILSLOT\\NET\\NETLOGON"
    );
}

/// What the node sent the WINS server at `wins` on the name port since the wire was cleared:
/// (opcode, name, trn_id, packet).
fn sent_to_wins(net: &Net, wins: Ipv4Addr) -> Vec<(NsOpcode, String, NamePacket)> {
    net.wire
        .iter()
        .filter(|(_, t)| t.port == Port::Name && *t.dest.ip() == wins)
        .map(|(_, t)| {
            let p = NamePacket::parse(&t.payload).expect("our name packet parses");
            let name = p.questions[0].name.name.to_string();
            (p.flags.opcode(), name, p)
        })
        .collect()
}

/// The WINS server's answer to a registration or refresh `req`: granted with `ttl`, or refused.
fn wins_answer(req: &NamePacket, ttl: u32, refused: bool) -> Vec<u8> {
    let rec = &req.additional[0];
    NamePacket {
        trn_id: req.trn_id,
        flags: NsFlags::new(
            req.flags.opcode(),
            NsFlags::RESPONSE | NsFlags::AA | NsFlags::RD | NsFlags::RA,
            if refused { 6 } else { 0 },
        ),
        questions: Vec::new(),
        answers: vec![ResourceRecord {
            name: rec.name.clone(),
            rr_type: RrType::Nb,
            class: 1,
            ttl,
            rdata: rec.rdata.clone(),
        }],
        authority: Vec::new(),
        additional: Vec::new(),
    }
    .to_vec()
    .expect("answer encodes")
}

#[test]
fn names_are_refreshed_with_wins_at_half_the_granted_ttl() {
    let wins = ip(100);
    let mut net = Net::new();
    let mut cfg = Net::cfg("A", 1);
    cfg.wins_server = Some(wins);
    net.add_cfg(cfg);
    net.advance(Duration::from_secs(1));
    // Registered by broadcast and with WINS (a unicast registration per try and name).
    let regs = sent_to_wins(&net, wins);
    assert!(regs.iter().all(|(op, ..)| *op == NsOpcode::Registration));
    assert_eq!(regs.len(), 4 * 3, "4 names × 3 tries: {regs:?}");
    // The server grants 600 s: refreshes come 300 s later, for every name, then every 300 s.
    let from_wins = SocketAddrV4::new(wins, 137);
    for (_, _, req) in &regs {
        net.receive(0, Port::Name, from_wins, &wins_answer(req, 600, false));
    }
    net.wire.clear();
    net.advance(Duration::from_secs(299));
    assert!(sent_to_wins(&net, wins).is_empty(), "nothing before 300 s");
    net.advance(Duration::from_secs(2));
    let refreshes = sent_to_wins(&net, wins);
    let mut names: Vec<&str> = refreshes.iter().map(|(_, n, _)| n.as_str()).collect();
    names.sort();
    assert!(
        refreshes.iter().all(|(op, ..)| *op == NsOpcode::Refresh),
        "{refreshes:?}"
    );
    assert_eq!(names, ["A<00>", "A<03>", "LAB<00>", "LAB<1E>"]);
    // Each refresh carries our address, the group bit as registered, and no broadcast flag.
    for (_, n, p) in &refreshes {
        let RData::Nb(a) = &p.additional[0].rdata else {
            panic!("no address in the refresh of {n}");
        };
        assert_eq!(a[0].ip, ip(1));
        assert_eq!(a[0].is_group(), n.starts_with("LAB"), "{n}");
        assert!(!p.flags.has(NsFlags::BROADCAST), "{n}");
    }
    net.wire.clear();
    net.advance(Duration::from_secs(300));
    assert_eq!(
        sent_to_wins(&net, wins).len(),
        4,
        "the next round 300 s later"
    );
    // A refusal: the next round registers again instead of refreshing.
    let (_, _, req) = sent_to_wins(&net, wins).remove(0);
    net.receive(0, Port::Name, from_wins, &wins_answer(&req, 600, true));
    net.wire.clear();
    net.advance(Duration::from_secs(300));
    let again = sent_to_wins(&net, wins);
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|(op, ..)| *op == NsOpcode::Registration));
    // The node still holds its names and did not stop.
    assert!(!net
        .events(0)
        .iter()
        .any(|e| matches!(e, Event::NameConflict { .. })));
}

#[test]
fn without_wins_nothing_is_refreshed() {
    let mut net = Net::new();
    net.add("A", 1);
    net.advance(Duration::from_secs(1));
    net.wire.clear();
    net.advance(Duration::from_secs(4 * 86_400));
    assert!(net.wire.is_empty(), "{:?}", net.wire);
}

#[test]
fn a_header_source_other_than_the_packet_source_is_dropped_and_counted() {
    let mut net = three_hosts();
    let t = net.sent_datagram("B", "t", b"spoof");
    net.events(1);
    // The header says 10.0.0.1 (A); the packet comes from 10.0.0.3.
    let now = net.now + Duration::from_secs(3);
    let spoofer = SocketAddrV4::new(ip(3), 138);
    let r = &mut net.nodes[1].router;
    r.handle_datagram(now, Port::Datagram, spoofer, &t.payload);
    assert_eq!(r.counters().dropped_spoofed_source, 1);
    assert!(delivered(&std::mem::take(&mut net.nodes[1].events)).is_empty());
    let mut events = Vec::new();
    while let Some(e) = net.nodes[1].router.poll_event() {
        events.push(e);
    }
    assert!(delivered(&events).is_empty());

    // Switched off (a network with an NBDD relaying datagrams), the same datagram is delivered.
    let mut cfg = Net::cfg("D", 4);
    cfg.check_source = false;
    let mut r = Router::new(cfg, now);
    let mut m = MailslotMessage::parse(&t.payload).unwrap();
    m.destination.name = NetbiosName::new("D", 0).unwrap();
    let bytes = m.to_vec().unwrap();
    r.handle_datagram(now, Port::Datagram, spoofer, &bytes);
    assert_eq!(r.counters().dropped_spoofed_source, 0);
    let mut events = Vec::new();
    while let Some(e) = r.poll_event() {
        events.push(e);
    }
    assert_eq!(delivered(&events).len(), 1);
}

#[test]
fn out_of_range_request_fields_fail_with_87() {
    let mut net = three_hosts();
    net.wire.clear();
    let bad = [
        (Target::PrimaryDomain, "t".to_string(), 200u8),
        (Target::PrimaryDomain, "t".to_string(), 10),
        (Target::PrimaryDomain, String::new(), 1),
        (Target::PrimaryDomain, "x".repeat(96), 1),
        (Target::Host("SIXTEEN-CHARS-XX".into()), "t".to_string(), 1),
        (Target::Host(String::new()), "t".to_string(), 1),
    ];
    for (i, (target, path, priority)) in bad.into_iter().enumerate() {
        let now = net.now;
        let id = i as u64 + 1;
        net.nodes[0].router.handle_local(
            now,
            LocalRequest::Write {
                id,
                write: RemoteWrite {
                    target,
                    path,
                    priority,
                    class: Class::Second,
                    timeout_ms: None,
                    data: b"x".to_vec(),
                },
                caller: None,
            },
        );
        net.step();
        let ev = net.events(0);
        assert!(
            matches!(&ev[..], [Event::WriteDone { id: got, result: Err(f) }] if *got == id && f.code == 87),
            "{i}: {ev:?}"
        );
    }
    assert!(net.wire.is_empty(), "nothing sent");
    assert_eq!(net.nodes[0].router.counters().requests_invalid, 6);
    let now = net.now;
    net.nodes[0].router.handle_local(
        now,
        LocalRequest::Resolve {
            id: 9,
            name: "SIXTEEN-CHARS-XX".into(),
            suffix: 0,
        },
    );
    net.step();
    assert!(matches!(
        &net.events(0)[..],
        [Event::Resolved { id: 9, result: Err(f) }] if f.code == 87
    ));
}

#[test]
fn the_local_copy_of_a_local_write_carries_the_caller() {
    let mut net = three_hosts();
    net.wire.clear();
    let caller = Caller {
        pid: 4242,
        uid: 65534,
        gid: 65534,
        groups: vec![],
    };
    for (id, target) in [
        (1, Target::PrimaryDomain),
        (2, Target::Host(WG.into())),
        (3, Target::Host("A".into())),
    ] {
        let now = net.now;
        net.nodes[0].router.handle_local(
            now,
            LocalRequest::Write {
                id,
                write: RemoteWrite {
                    target,
                    path: "t".into(),
                    priority: 1,
                    class: Class::Second,
                    timeout_ms: None,
                    data: b"mine".to_vec(),
                },
                caller: Some(caller.clone()),
            },
        );
        net.step();
        let own: Vec<_> = net
            .events(0)
            .into_iter()
            .filter_map(|e| match e {
                Event::Deliver(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(own.len(), 1, "{id}");
        assert_eq!(own[0].caller.as_ref(), Some(&caller), "{id}");
    }
    // What other hosts receive is a network message: no caller.
    for e in net.events(1) {
        if let Event::Deliver(d) = e {
            assert_eq!(d.caller, None);
        }
    }
}

// ---- beside Samba's nmbd ----------------------------------------------------------------------

/// A router beside nmbd: SMBHOST with alias SMBALIAS in BESIDE on 10.99.0.5/24.
fn beside_nmbd(now: Instant) -> Router {
    let mut c = RouterConfig::new(
        "SMBHOST",
        "BESIDE",
        vec![Interface::new(Ipv4Addr::new(10, 99, 0, 5), 24)],
    );
    c.beside_nmbd = true;
    c.aliases = vec!["SMBALIAS".into()];
    Router::new(c, now)
}

/// What nmbd 4.17 relayed through its unexpected socket for `mailslot send
/// '\\SMBALIAS\mailslot\fixture' 'relayed by nmbd'` from 10.99.0.2 (x86_64 layout).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const RELAYED: &[u8] = include_bytes!("data/nmbd-relay-x86_64.bin");

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn relayed_datagram() -> (SocketAddrV4, &'static [u8]) {
    let h = mailslot_router::nmbd::RelayHeader::parse(RELAYED).unwrap();
    let at = mailslot_router::nmbd::HEADER_LEN;
    (h.source, &RELAYED[at..at + h.len])
}

#[test]
fn beside_nmbd_registers_defends_and_answers_nothing() {
    let mut net = Net::new();
    net.add("a", 1);
    net.add_beside_nmbd("s", 5, &["ALIAS"]);
    net.advance(Duration::from_secs(2));
    // Another node takes "S" (nmbd would defend it; we do not) and queries it.
    net.add("s", 6);
    net.advance(Duration::from_secs(2));
    net.local(
        0,
        LocalRequest::Resolve {
            id: 1,
            name: "alias".into(),
            suffix: 0,
        },
    );
    net.advance(Duration::from_secs(2));
    assert!(
        !net.wire
            .iter()
            .any(|(from, t)| *from == ip(5) && t.port == Port::Name),
        "the node beside nmbd sent on the name service"
    );
    let r = &net.nodes[1].router;
    assert!(r.names().iter().all(|n| n.registered));
    assert!(r.names().iter().any(|n| n.name == "ALIAS<20>"));
    assert_eq!(
        r.counters().names_defended + r.counters().queries_answered,
        0
    );
    // Shutting down releases nothing: the names are nmbd's.
    net.wire.clear();
    net.shutdown(1);
    net.advance(Duration::from_millis(100));
    assert!(net.wire.iter().all(|(from, _)| *from != ip(5)));
}

#[test]
fn beside_nmbd_resolves_with_answers_from_any_port() {
    let mut net = Net::new();
    net.add("a", 1);
    net.add_beside_nmbd("s", 5, &[]);
    net.advance(Duration::from_secs(2));
    net.wire.clear();
    net.write(1, 3, Target::Host("A".into()), "t", b"from beside");
    net.advance(Duration::from_millis(500));
    assert_eq!(
        delivered(&net.events(0)),
        vec![("T".into(), b"from beside".to_vec(), "S".into(), ip(5))]
    );
    // The query went out, and A's answer (to the query's source port) was taken.
    assert!(net
        .wire
        .iter()
        .any(|(from, t)| *from == ip(5) && t.port == Port::Name));
}

#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn relayed_writes_to_the_name_and_alias_are_delivered_once() {
    let now = Instant::now();
    let mut r = beside_nmbd(now);
    let (src, bytes) = relayed_datagram();
    assert_eq!(src, SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), 138));
    let d = r.accept_relayed(now, src, bytes).expect("delivered");
    assert_eq!(&*d.path, "FIXTURE");
    assert_eq!(&*d.data, b"relayed by nmbd");
    // nmbd relays some datagrams twice, and the co-bound socket sees broadcasts too.
    assert!(r.accept_relayed(now, src, bytes).is_none());
    assert!(r.accept_datagram(now, src, bytes).is_none());
    assert_eq!(r.counters().dropped_duplicate, 2);
    assert_eq!(r.counters().accepted, 1);
}

#[test]
fn datagrams_cut_by_nmbd_are_counted_never_delivered() {
    let mut net = Net::new();
    net.add("a", 1);
    net.advance(Duration::from_secs(2));
    let t = net.sent_datagram("LAB", "t", &[b'x'; 420]);
    assert!(t.payload.len() > 576);
    let now = Instant::now();
    let mut c = RouterConfig::new("S", WG, vec![Interface::new(ip(5), 24)]);
    c.beside_nmbd = true;
    let mut r = Router::new(c, now);
    let src = SocketAddrV4::new(ip(1), 138);
    assert!(r.accept_relayed(now, src, &t.payload[..576]).is_none());
    assert_eq!(r.counters().dropped_truncated_by_nmbd, 1);
    assert_eq!(r.counters().accepted, 0);
    // The whole datagram (the co-bound socket's broadcast copy) is delivered.
    assert!(r.accept_relayed(now, src, &t.payload).is_some());
}

#[test]
fn writes_to_mailslots_nmbd_keeps_are_counted_not_delivered() {
    let mut net = Net::new();
    net.add("a", 1);
    net.add_beside_nmbd("s", 5, &[]);
    net.add("b", 2);
    net.advance(Duration::from_secs(2));
    net.write(0, 1, Target::PrimaryDomain, "browse", b"announce");
    net.write(0, 2, Target::PrimaryDomain, "other", b"kept not");
    net.advance(Duration::from_millis(200));
    let s = delivered(&net.events(1));
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].0, "OTHER");
    assert_eq!(net.nodes[1].router.counters().dropped_kept_by_nmbd, 1);
    assert_eq!(delivered(&net.events(2)).len(), 2);
}

#[test]
fn messenger_names_are_registered_and_resolve() {
    let mut net = Net::new();
    let mut cfg = Net::cfg("A", 1);
    cfg.messenger_names = vec!["ALICE".into()];
    net.add_cfg(cfg);
    net.add("B", 2);
    net.advance(Duration::from_secs(1));
    let names = net.names(0);
    assert!(names.contains(&"ALICE<03>".to_string()), "{names:?}");
    net.events(1);
    net.local(
        1,
        LocalRequest::Resolve {
            id: 5,
            name: "alice".into(),
            suffix: 0x03,
        },
    );
    net.advance(Duration::from_millis(100));
    let resolved = net.events(1).into_iter().find_map(|e| match e {
        Event::Resolved { id: 5, result } => Some(result),
        _ => None,
    });
    let addrs = resolved.expect("an answer").expect("resolved");
    assert_eq!(addrs[0].ip, ip(1));
}

/// Node 0's first-class write of `len` bytes to `target`, and what came of it.
fn first_class(net: &mut Net, target: Target, len: usize) -> Event {
    net.events(0);
    net.local(
        0,
        LocalRequest::Write {
            id: 9,
            write: RemoteWrite {
                target,
                path: "jobs".into(),
                priority: 2,
                class: Class::First,
                timeout_ms: Some(1500),
                data: vec![7; len],
            },
            caller: None,
        },
    );
    net.advance(Duration::from_millis(900));
    let mut evs = net.events(0);
    assert_eq!(evs.len(), 1, "{evs:?}");
    evs.remove(0)
}

#[test]
fn a_first_class_write_goes_to_the_hosts_session_service_never_as_a_datagram() {
    let mut net = three_hosts();
    net.wire.clear();
    match first_class(&mut net, Target::Host("B".into()), 1000) {
        Event::FirstClass(w) => {
            assert_eq!(w.id, 9);
            assert_eq!(w.to, Some(SocketAddrV4::new(ip(2), 139)));
            assert_eq!(w.called.to_string(), "B<20>");
            assert_eq!(w.calling.to_string(), "A<00>");
            assert_eq!(w.write.timeout_ms, Some(1500));
            assert_eq!(
                w.write.data.len(),
                1000,
                "no datagram limit for first class"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        net.wire.iter().all(|(_, t)| t.port != Port::Datagram),
        "no datagram for a first-class write"
    );
    // Our own name: the shell writes it here.
    match first_class(&mut net, Target::Host("A".into()), 10) {
        Event::FirstClass(w) => assert_eq!(w.to, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_first_class_write_to_a_group_or_too_large_fails_with_87() {
    let mut net = three_hosts();
    for (target, len) in [
        (Target::PrimaryDomain, 10),
        (Target::Host(WG.into()), 10),
        (
            Target::Host("B".into()),
            mailslot::daemon::MAX_FIRST_CLASS_NETWORK + 1,
        ),
    ] {
        match first_class(&mut net, target.clone(), len) {
            Event::WriteDone {
                id: 9,
                result: Err(f),
            } => assert_eq!(f.code, 87, "{target:?}: {f:?}"),
            other => panic!("{target:?}: {other:?}"),
        }
    }
}

#[test]
fn a_messenger_datagram_is_addressed_to_the_messenger_name() {
    let mut net = three_hosts();
    let mut cfg = Net::cfg("D", 4);
    cfg.messenger_names = vec!["BOB".into()];
    net.add_cfg(cfg);
    net.advance(Duration::from_secs(1));
    for (host, to, node) in [("B", "B", 1), ("bob", "BOB", 3)] {
        net.events(node);
        let t = net.sent_datagram(host, "messngr", b"A\0B\0hi\0");
        let m = MailslotMessage::parse(&t.payload).unwrap();
        assert_eq!(m.destination.name, NetbiosName::new(to, 0x03).unwrap());
        net.advance(Duration::from_millis(100));
        assert_eq!(
            delivered(&net.events(node)).len(),
            1,
            "{to}<03> receives it"
        );
    }
    // To the workgroup it stays a group write to LAB<00>, received by all.
    let t = net.sent_datagram(WG, "messngr", b"A\0LAB\0all\0");
    let m = MailslotMessage::parse(&t.payload).unwrap();
    assert_eq!(m.destination.name, NetbiosName::new(WG, 0).unwrap());
}
