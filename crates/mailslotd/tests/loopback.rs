//! The daemon on loopback, as any user: its sockets are bound by the test (127.0.0.1, ephemeral
//! ports) and its control socket has a name of its own, so several run at once beside a real
//! daemon. Its interface is 127.0.0.2/32, so that what it sends to "the subnet" arrives at
//! 127.0.0.2 on its own datagram port, where a test can listen.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mailslot::daemon::{RemoteWrite, Reply, Request};
use mailslot::error::code;
use mailslot::{Class, Mailslot, Sender, Target, Timeout};
use mailslot_proto::datagram::MsgType;
use mailslot_proto::nbns::RData;
use mailslot_proto::{MailslotMessage, NamePacket, NetbiosName};

use common::{mailslot_datagram, Running, HOST, OWN_IP, WAIT, WORKGROUP};

fn recv_timeout(s: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.recv_from(buf).expect("an answer within the timeout")
}

#[test]
fn a_datagram_for_a_local_mailslot_is_delivered() {
    let d = Running::start();
    let path = format!("MAILSLOTD_TEST\\DELIVER{}", std::process::id());
    let slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    let m = mailslot_datagram(
        &path,
        77,
        "SENDER",
        Ipv4Addr::new(127, 0, 0, 9),
        b"from the network",
    );
    // Sent from the address the header names (the daemon drops a datagram whose header names
    // another source).
    let peer = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 9), 0)).unwrap();
    peer.send_to(&m, d.datagram).unwrap();

    let s = d.wait_for("delivered", |s| s.delivery.delivered == 1);
    assert_eq!(s.counters.accepted, 1);
    // Owners take network messages only from root or the daemon's user: as another user the
    // message reaches the owner, which drops it and says so.
    let trusted = mailslot::daemon::is_trusted();
    if trusted {
        let got = slot.read_message_timeout(Timeout::After(WAIT)).unwrap();
        assert_eq!(got.data, b"from the network");
        assert_eq!(got.priority, 1);
        assert_eq!(got.class, Class::Second);
        match got.sender {
            Sender::Remote { name, ip } => {
                assert_eq!(name.as_str(), "SENDER");
                assert_eq!(ip, Ipv4Addr::new(127, 0, 0, 9));
            }
            other => panic!("sender {other:?}"),
        }
    } else {
        let deadline = Instant::now() + WAIT;
        while slot.counters().dropped == 0 {
            let _ = slot.read_message_timeout(Timeout::After(Duration::from_millis(20)));
            assert!(Instant::now() < deadline, "the owner never saw the message");
        }
    }
}

#[test]
fn a_name_query_is_answered() {
    let d = Running::start();
    d.wait_registered();
    let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let q = NamePacket::name_query(0x4242, NetbiosName::new(HOST, 0x00).unwrap().into(), false);
    peer.send_to(&q.to_vec().unwrap(), d.name).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = recv_timeout(&peer, &mut buf);
    assert_eq!(from, SocketAddr::V4(d.name));
    let p = NamePacket::parse(&buf[..n]).unwrap();
    assert_eq!(p.trn_id, 0x4242);
    assert!(p.flags.is_response());
    assert_eq!(p.flags.rcode(), 0);
    match &p.answers[0].rdata {
        RData::Nb(a) => {
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].ip, OWN_IP);
            assert!(!a[0].is_group());
        }
        other => panic!("answer {other:?}"),
    }
    assert_eq!(d.status().counters.queries_answered, 1);
}

#[test]
fn a_remote_write_over_the_control_socket_goes_out_as_a_datagram() {
    let d = Running::start();
    // The subnet's "broadcast" is 127.0.0.2 (a /32): listen there on the datagram port.
    let subnet = UdpSocket::bind((OWN_IP, d.datagram.port())).unwrap();
    let c = d.client();
    let write = |target: Target, data: &[u8]| {
        c.call(
            &Request::Write(RemoteWrite {
                target,
                path: "mailslotd_test\\remote".into(),
                priority: 1,
                class: Class::Second,
                timeout_ms: None,
                data: data.to_vec(),
            }),
            WAIT,
        )
        .unwrap()
    };
    assert_eq!(write(Target::PrimaryDomain, b"to everyone"), Reply::Written);
    let mut buf = [0u8; 1500];
    let (n, from) = recv_timeout(&subnet, &mut buf);
    assert_eq!(from, SocketAddr::V4(d.datagram));
    let m = MailslotMessage::parse(&buf[..n]).unwrap();
    assert_eq!(m.msg_type, MsgType::DirectGroup);
    assert_eq!(m.source_ip, OWN_IP);
    assert_eq!(m.source.name, NetbiosName::new(HOST, 0).unwrap());
    assert_eq!(m.destination.name, NetbiosName::new(WORKGROUP, 0).unwrap());
    assert_eq!(m.write.name, b"\\MAILSLOT\\MAILSLOTD_TEST\\REMOTE");
    assert_eq!(m.write.priority, 1);
    assert_eq!(m.write.data, b"to everyone");

    // Nobody answers for NOBODY: the writer learns it, as Windows' ERROR_BAD_NETPATH.
    match write(Target::Host("NOBODY".into()), b"x") {
        Reply::Failed(f) => assert_eq!(f.code, code::BAD_NETPATH, "{f}"),
        other => panic!("{other:?}"),
    }
    // A local name is not the daemon's business.
    match write(Target::Local, b"x") {
        Reply::Failed(f) => assert_eq!(f.code, code::INVALID_PARAMETER, "{f}"),
        other => panic!("{other:?}"),
    }
}

/// Sends `record` as it is on a new connection to the control socket `control` and decodes the
/// answer.
fn raw_call(control: &str, record: &[u8]) -> Reply {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    s.connect(&SockAddr::unix(format!("\0{control}")).unwrap())
        .unwrap();
    s.send(record).unwrap();
    let mut buf = vec![0u8; 4096];
    s.set_read_timeout(Some(WAIT)).unwrap();
    let n = std::io::Read::read(&mut &s, &mut buf).unwrap();
    Reply::decode(&buf[..n]).unwrap()
}

#[test]
fn garbage_on_the_control_socket_is_refused_and_the_daemon_goes_on() {
    let d = Running::start();
    match raw_call(&d.control, b"\xffnot a request") {
        Reply::Failed(f) => assert_eq!(f.code, code::INVALID_PARAMETER),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.status().netbios_name, HOST);
}

#[test]
fn a_datagram_whose_header_names_another_source_is_dropped_and_counted() {
    let d = Running::start();
    let path = format!("MAILSLOTD_TEST\\SPOOF{}", std::process::id());
    let slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    // From 127.0.0.1, claiming to be DC01 at 10.20.30.40.
    let m = mailslot_datagram(&path, 78, "DC01", Ipv4Addr::new(10, 20, 30, 40), b"spoofed");
    let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    peer.send_to(&m, d.datagram).unwrap();
    let s = d.wait_for("dropped as spoofed", |s| {
        s.counters.dropped_spoofed_source == 1
    });
    assert_eq!(s.counters.accepted, 0);
    assert_eq!(s.delivery.delivered, 0);
    assert!(slot
        .read_message_timeout(Timeout::After(Duration::from_millis(100)))
        .is_err());
}

#[test]
fn out_of_range_request_fields_fail_with_87_and_the_daemon_goes_on() {
    let d = Running::start();
    let c = d.client();
    let write = |target: Target, path: &str, priority: u8| {
        c.call(
            &Request::Write(RemoteWrite {
                target,
                path: path.into(),
                priority,
                class: Class::Second,
                timeout_ms: None,
                data: b"x".to_vec(),
            }),
            WAIT,
        )
        .unwrap()
    };
    let long = "x".repeat(200);
    for (target, path, priority) in [
        (Target::PrimaryDomain, "t", 200),
        (Target::Host("*".into()), "t", 10),
        (Target::PrimaryDomain, "", 1),
        (Target::PrimaryDomain, long.as_str(), 1),
        (Target::Host("A-NAME-OF-16-CHR".into()), "t", 1),
    ] {
        match write(target.clone(), path, priority) {
            Reply::Failed(f) => assert_eq!(f.code, code::INVALID_PARAMETER, "{target:?} {f}"),
            other => panic!("{target:?} {priority}: {other:?}"),
        }
    }
    // Class 7 is no class: the record does not decode (87 too).
    let rec = br#"{"v":1,"msg":{"op":"write","target":"PrimaryDomain","path":"t","priority":1,"class":7,"data":[1]}}"#;
    match raw_call(&d.control, rec) {
        Reply::Failed(f) => assert_eq!(f.code, code::INVALID_PARAMETER),
        other => panic!("{other:?}"),
    }
    let st = d.status();
    assert_eq!(st.counters.requests_invalid, 5);
    assert_eq!(st.counters.datagrams_sent, 0);
}

/// A stream of datagrams for one mailslot: the first goes through the slot's delivery worker,
/// which opens it; the rest are written by the loop through that handle (or by the worker when
/// the ring is full). Every one arrives once, in order, whichever path it took.
#[test]
fn a_stream_for_one_mailslot_arrives_whole_and_in_order() {
    if !mailslot::daemon::is_trusted() {
        eprintln!("(as another user the owner drops network messages: order not observable)");
    }
    let d = Running::start();
    let path = format!("MAILSLOTD_TEST\\STREAM{}", std::process::id());
    let slot = Mailslot::builder()
        .quota(16 * 1024 * 1024)
        .create(&format!("\\\\.\\mailslot\\{path}"))
        .unwrap();
    let peer = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 9), 0)).unwrap();
    const N: u16 = 2_000;
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < usize::from(N) {
            match slot.read_message_timeout(Timeout::After(Duration::from_millis(500))) {
                Ok(m) => got.push(u16::from_be_bytes([m.data[0], m.data[1]])),
                Err(_) => break,
            }
        }
        got
    });
    for i in 0..N {
        let m = mailslot_datagram(
            &path,
            i,
            "SENDER",
            Ipv4Addr::new(127, 0, 0, 9),
            &i.to_be_bytes(),
        );
        peer.send_to(&m, d.datagram).unwrap();
        if i % 64 == 63 {
            // Stay within the receive buffer: this is about delivery, not UDP loss.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let s = d.wait_for("all handled", |s| {
        s.delivery.delivered + s.delivery.dropped_full + s.delivery.dropped_backlog >= u64::from(N)
    });
    assert_eq!(s.delivery.delivered, u64::from(N), "{:?}", s.delivery);
    if mailslot::daemon::is_trusted() {
        let got = reader.join().unwrap();
        assert_eq!(got, (0..N).collect::<Vec<_>>());
    }
}
