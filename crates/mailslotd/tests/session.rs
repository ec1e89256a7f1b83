//! The daemon's NetBIOS session service on loopback: first-class writes from another host (a raw
//! TCP client speaking the frames), exactly-once across connections, the Messenger's SMB
//! commands (replayed from a real `smbclient -M` conversation), refusals, hostile input, and a
//! local program's first-class write to this host's own name.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use mailslot::daemon::{RemoteWrite, Reply, Request};
use mailslot::error::code;
use mailslot::{Class, Mailslot, Sender, Target, Timeout};
use mailslot_proto::session::{self as nbss, PacketType, SessionRequest};
use mailslot_proto::smb::SMB_COM_TRANSACTION;
use mailslot_proto::smb_session::{SessionMailslotWrite, SmbHeader, TransactionReply};
use mailslot_proto::{MessengerMessage, NetbiosName};

use common::{Running, HOST, WAIT};

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "SESSIONTEST\\{tag}{}X{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A raw session client.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(d: &Running) -> Self {
        let s = TcpStream::connect(d.session).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        Self { s, buf: Vec::new() }
    }

    /// Connects and opens a session to `called`; the first frame of the answer.
    fn call(d: &Running, called: NetbiosName) -> (Self, Vec<u8>) {
        let mut c = Self::connect(d);
        let req = SessionRequest {
            called,
            calling: NetbiosName::new("PEERHOST", 0).unwrap(),
        };
        c.s.write_all(&req.to_vec().unwrap()).unwrap();
        let answer = c.frame().expect("an answer to the session request");
        (c, answer)
    }

    fn open(d: &Running) -> Self {
        let (c, answer) = Self::call(d, NetbiosName::new(HOST, 0x20).unwrap());
        assert_eq!(answer, nbss::positive_response());
        c
    }

    /// The next frame, `None` when the daemon closed the connection.
    fn frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(n) = nbss::frame_len(&self.buf, 1 << 17).unwrap() {
                if self.buf.len() >= n {
                    let rest = self.buf.split_off(n);
                    return Some(std::mem::replace(&mut self.buf, rest));
                }
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn send_smb(&mut self, smb: &[u8]) {
        self.s.write_all(&nbss::message(smb).unwrap()).unwrap();
    }

    /// Sends a first-class write and returns its answer's status (`None` = success).
    fn write(&mut self, path: &str, data: &[u8], timeout_ms: u32, id: [u8; 16]) -> Option<u16> {
        let name = format!("\\MAILSLOT\\{path}");
        let mut header = SmbHeader::new(SMB_COM_TRANSACTION);
        header.mid = 7;
        let w = SessionMailslotWrite {
            header,
            name: name.as_bytes(),
            priority: 3,
            class: 1,
            timeout_ms,
            write_id: id,
            data,
        };
        self.send_smb(&w.to_vec().unwrap());
        let f = self.frame().expect("an answer");
        let r = TransactionReply::parse(&f[nbss::HEADER_LEN..]).unwrap();
        assert_eq!(r.header.mid, 7);
        (r.header.error_class != 0).then_some(r.header.error_code)
    }
}

fn id(n: u8) -> [u8; 16] {
    let mut id = [0x5a; 16];
    id[0] = n;
    id[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    id
}

#[test]
fn a_first_class_write_is_answered_when_queued() {
    let d = Running::start();
    let path = unique("FC");
    let slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    let mut c = Client::open(&d);
    assert_eq!(c.write(&path, b"first class", 1000, id(1)), None);
    if mailslot::daemon::is_trusted() {
        let m = slot.read_message_timeout(Timeout::ZERO).unwrap();
        assert_eq!(m.data, b"first class");
        assert_eq!(m.class, Class::First);
        assert_eq!(m.priority, 3);
        match m.sender {
            Sender::Remote { name, ip } => {
                assert_eq!(name.as_str(), "PEERHOST");
                assert_eq!(ip, Ipv4Addr::LOCALHOST);
            }
            other => panic!("sender {other:?}"),
        }
    }
    let s = d.status();
    assert_eq!(s.session.sessions_accepted, 1);
    assert_eq!(s.session.first_class_received, 1);
    assert_eq!(s.session.first_class_delivered, 1);
    assert_eq!(s.ports.session, d.session.port());
}

#[test]
fn a_write_sent_again_on_a_new_connection_is_queued_once() {
    let d = Running::start();
    let path = unique("ONCE");
    let slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    let mut c = Client::open(&d);
    assert_eq!(c.write(&path, b"once", 1000, id(2)), None);
    drop(c);
    let mut again = Client::open(&d);
    assert_eq!(again.write(&path, b"once", 1000, id(2)), None);
    // Another id is another write.
    assert_eq!(again.write(&path, b"twice", 1000, id(3)), None);
    if mailslot::daemon::is_trusted() {
        assert_eq!(
            slot.read_message_timeout(Timeout::ZERO).unwrap().data,
            b"once"
        );
        assert_eq!(
            slot.read_message_timeout(Timeout::ZERO).unwrap().data,
            b"twice"
        );
        assert!(slot.read_message_timeout(Timeout::ZERO).is_err());
    }
    let s = d.status();
    assert_eq!(s.session.first_class_repeated, 1);
    assert_eq!(s.session.first_class_delivered, 2);
}

#[test]
fn refusals_carry_their_codes() {
    let d = Running::start();
    let mut c = Client::open(&d);
    // No such mailslot: 2.
    assert_eq!(c.write(&unique("NONE"), b"x", 100, id(10)), Some(2));
    // Larger than the mailslot's maximum message size: 87.
    let path = unique("SMALL");
    let _small = Mailslot::builder()
        .max_message_size(8)
        .create(&format!("\\\\.\\mailslot\\{path}"))
        .unwrap();
    assert_eq!(c.write(&path, b"more than eight", 100, id(11)), Some(87));
    // Refuses messages from other hosts: 5.
    let path = unique("LOCALONLY");
    let _local = Mailslot::builder()
        .accept_remote(false)
        .create(&format!("\\\\.\\mailslot\\{path}"))
        .unwrap();
    assert_eq!(c.write(&path, b"x", 100, id(12)), Some(5));
    // Not a mailslot name: 87, refused before any delivery (and counted as such).
    assert_eq!(c.write("", b"x", 100, id(13)), Some(87));
    let s = d.status().session;
    assert_eq!((s.first_class_failed, s.requests_refused), (3, 1));
}

#[test]
fn a_full_mailslot_times_out_with_121_or_takes_the_write_when_read() {
    if !mailslot::daemon::is_trusted() {
        // As another user the owner drops network messages, so the slot never fills.
        return;
    }
    let d = Running::start();
    let path = unique("FULL");
    let slot = Mailslot::builder()
        .max_message_size(100)
        .quota(100)
        .create(&format!("\\\\.\\mailslot\\{path}"))
        .unwrap();
    let mut c = Client::open(&d);
    assert_eq!(c.write(&path, &[1u8; 100], 1000, id(20)), None);
    let t = Instant::now();
    assert_eq!(c.write(&path, &[2u8; 100], 300, id(21)), Some(121));
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(270) && waited < Duration::from_millis(1500),
        "waited {waited:?} for a 300 ms timeout"
    );
    // A reader frees room while the write waits: delivered.
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let first = slot.read_message_timeout(Timeout::ZERO).unwrap();
        let second = slot.read_message_timeout(Timeout::After(WAIT)).unwrap();
        (first.data, second.data)
    });
    assert_eq!(c.write(&path, &[3u8; 100], 5000, id(22)), None);
    let (first, second) = reader.join().unwrap();
    assert_eq!((first[0], second[0]), (1, 3));
}

#[test]
fn a_name_we_do_not_hold_gets_a_negative_session_response() {
    let d = Running::start();
    let (mut c, answer) = Client::call(&d, NetbiosName::new("SOMEBODY", 0x20).unwrap());
    assert_eq!(
        answer,
        nbss::negative_response(nbss::NegativeCode::CalledNameNotPresent)
    );
    assert_eq!(c.frame(), None, "the connection is closed after a refusal");
    assert_eq!(d.status().session.sessions_refused_name, 1);
}

#[test]
fn hostile_input_closes_the_connection_and_is_counted() {
    let d = Running::start();
    // A message before any session request.
    let mut c = Client::connect(&d);
    c.s.write_all(&nbss::message(b"\xffSMB").unwrap()).unwrap();
    assert_eq!(c.frame(), None);
    // A frame longer than the daemon takes.
    let mut c = Client::open(&d);
    c.s.write_all(&[0x00, 0x01, 0xff, 0xff]).unwrap();
    assert_eq!(c.frame(), None);
    // Bytes that are not an SMB message on an open session.
    let mut c = Client::open(&d);
    c.send_smb(b"not an SMB message at all, but long enough for a header");
    assert_eq!(c.frame(), None);
    let s = d.status();
    assert_eq!(s.session.sessions_malformed, 3);
    // The daemon still serves.
    let path = unique("AFTER");
    let _slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    assert_eq!(Client::open(&d).write(&path, b"ok", 100, id(30)), None);
}

#[test]
fn an_unsupported_smb_command_is_answered_with_an_error() {
    let d = Running::start();
    let mut c = Client::open(&d);
    let mut h = SmbHeader::new(0x72); // negotiate
    h.mid = 9;
    let mut smb = vec![0u8; 35];
    h.emit(&mut smb).unwrap();
    c.send_smb(&smb);
    let f = c.frame().expect("an answer");
    let r = SmbHeader::parse(&f[nbss::HEADER_LEN..]).unwrap();
    assert_eq!((r.mid, r.error_class), (9, 2));
    assert_eq!(d.status().session.requests_unsupported, 1);
}

#[test]
fn a_silent_connection_is_closed() {
    // The session request must come within the request timeout (10 s): too slow for a unit
    // test to wait for; a connection that sends half a header and stops is the same case for
    // the reader, so check that the daemon keeps serving others meanwhile.
    let d = Running::start();
    let mut stalled = Client::connect(&d);
    stalled.s.write_all(&[0x81, 0x00]).unwrap();
    let path = unique("BESIDE");
    let _slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    assert_eq!(Client::open(&d).write(&path, b"ok", 100, id(40)), None);
}

/// Frames of a fixture of the proto crate: lines `> HEX` (client) and `< HEX` (server).
fn client_frames(fixture: &str) -> Vec<Vec<u8>> {
    let path = format!(
        "{}/../proto/tests/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix('>'))
        .map(|h| hex::decode(h.trim().replace(' ', "")).unwrap())
        .collect()
}

#[test]
fn smbclient_messages_reach_the_messenger_mailslot() {
    let d = Running::start();
    // The Messenger service is `\\.\mailslot\messngr`: at most one per host (network
    // namespace); skip if another runs here.
    let Ok(messenger) = Mailslot::create("\\\\.\\mailslot\\messngr") else {
        eprintln!("skipped: a Messenger service runs on this host");
        return;
    };
    for fixture in [
        "nbss-smbclient-message-short.frames",
        "nbss-smbclient-message-long.frames",
    ] {
        let frames = client_frames(fixture);
        let mut c = Client::connect(&d);
        // The session request calls TESTHOST<03>: ours.
        let req = nbss::Header::parse(&frames[0]).unwrap();
        assert_eq!(req.packet_type, PacketType::Request);
        let mut called = SessionRequest::parse(&frames[0][4..]).unwrap();
        called.called = NetbiosName::new(HOST, 0x03).unwrap();
        c.s.write_all(&called.to_vec().unwrap()).unwrap();
        assert_eq!(c.frame().unwrap(), nbss::positive_response());
        for f in &frames[1..] {
            c.s.write_all(f).unwrap();
            let answer = c.frame().expect("an answer to each command");
            let h = SmbHeader::parse(&answer[nbss::HEADER_LEN..]).unwrap();
            assert_eq!(h.error_class, 0, "{fixture}: refused {h:?}");
        }
    }
    // Our own sender (`mailslot messenger send` to a name): one block, and several.
    let called = NetbiosName::new(HOST, 0x03).unwrap();
    let calling = NetbiosName::new("PEERHOST", 0).unwrap();
    let long_text = "a longer text ".repeat(30);
    for text in ["sent by us", long_text.as_str()] {
        mailslot_messenger::session::send(
            d.session.into(),
            called,
            calling,
            b"BOB",
            HOST.as_bytes(),
            text.as_bytes(),
        )
        .unwrap();
    }
    // A name without a Messenger here: the session is refused.
    let refused = mailslot_messenger::session::send(
        d.session.into(),
        NetbiosName::new("NOBODY", 0x03).unwrap(),
        calling,
        b"BOB",
        b"NOBODY",
        b"x",
    );
    assert!(
        matches!(
            refused,
            Err(mailslot_messenger::session::SessionSendError::Refused { code: 0x82, .. })
        ),
        "{refused:?}"
    );
    if mailslot::daemon::is_trusted() {
        let m = messenger
            .read_message_timeout(Timeout::After(WAIT))
            .unwrap();
        let msg = MessengerMessage::parse(&m.data).unwrap();
        assert_eq!(msg.from, b"alice");
        assert_eq!(msg.text, b"hello popup\r\n");
        let long = messenger
            .read_message_timeout(Timeout::After(WAIT))
            .unwrap();
        let long = MessengerMessage::parse(&long.data).unwrap();
        assert!(long.text.len() > 128, "several blocks joined");
        assert!(matches!(m.sender, Sender::Remote { .. }));
        for want in ["sent by us", long_text.as_str()] {
            let m = messenger
                .read_message_timeout(Timeout::After(WAIT))
                .unwrap();
            let msg = MessengerMessage::parse(&m.data).unwrap();
            assert_eq!((msg.from, msg.text), (&b"BOB"[..], want.as_bytes()));
        }
    }
    assert_eq!(d.status().session.messenger_delivered, 4);
}

#[test]
fn a_first_class_write_to_our_own_name_is_written_here_with_its_outcome() {
    let d = Running::start();
    let c = d.client();
    let write = |path: &str, target: Target, timeout_ms| {
        c.call(
            &Request::Write(RemoteWrite {
                target,
                path: path.into(),
                priority: 1,
                class: Class::First,
                timeout_ms,
                data: b"to myself".to_vec(),
            }),
            WAIT,
        )
        .unwrap()
    };
    let path = unique("SELF");
    let slot = Mailslot::create(&format!("\\\\.\\mailslot\\{path}")).unwrap();
    assert_eq!(
        write(&path, Target::Host(HOST.into()), Some(500)),
        Reply::Written
    );
    let m = slot.read_message_timeout(Timeout::After(WAIT)).unwrap();
    assert_eq!(m.data, b"to myself");
    assert_eq!(m.class, Class::First);
    // As the program that asked (a local sender), never as a network message.
    assert!(matches!(m.sender, Sender::Local { .. }), "{:?}", m.sender);
    match write(&unique("MISSING"), Target::Host(HOST.into()), Some(100)) {
        Reply::Failed(f) => assert_eq!(f.code, code::FILE_NOT_FOUND, "{f}"),
        other => panic!("{other:?}"),
    }
    // First class cannot be broadcast: 87 at once.
    for target in [
        Target::PrimaryDomain,
        Target::Host(common::WORKGROUP.into()),
    ] {
        match write(&path, target, Some(100)) {
            Reply::Failed(f) => assert_eq!(f.code, code::INVALID_PARAMETER, "{f}"),
            other => panic!("{other:?}"),
        }
    }
}
