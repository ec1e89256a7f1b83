//! Session service and SMB message commands against real bytes: Samba's
//! `smbclient -M` talking to Samba's smbd (fixtures `nbss-smbclient-*.frames`),
//! and the smbclient bytes quoted in the wire-protocol notes §8.

mod common;

use common::{frames_fixture, Frame};
use mailslot_proto::session::{self, Header, PacketType, SessionRequest};
use mailslot_proto::smb_session::{
    message_reply, MessageCommand, MessageReply, SmbHeader, ERRDOS, SMB_COM_SEND_END_MB_MESSAGE,
    SMB_COM_SEND_START_MB_MESSAGE, SMB_COM_SEND_TEXT_MB_MESSAGE,
};
use mailslot_proto::NetbiosName;

/// Splits a byte stream the way a reader would, with `frame_len`.
fn reframe(frames: &[Frame]) -> Vec<Vec<u8>> {
    let stream: Vec<u8> = frames.iter().flat_map(|f| f.bytes.clone()).collect();
    let mut out = Vec::new();
    let mut rest = &stream[..];
    while !rest.is_empty() {
        // Fed byte by byte, the length is known once the header is there.
        for n in 0..session::HEADER_LEN.min(rest.len()) {
            assert_eq!(session::frame_len(&rest[..n], 0x1FFFF), Ok(None));
        }
        let len = session::frame_len(rest, 0x1FFFF).unwrap().unwrap();
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    out
}

/// The SMB message of a session message frame.
fn smb(frame: &[u8]) -> &[u8] {
    let h = Header::parse(frame).unwrap();
    assert_eq!(h.packet_type, PacketType::Message);
    assert_eq!(h.length, frame.len() - 4);
    &frame[4..]
}

/// Checks the session request and the positive response that open every conversation.
fn check_opening(frames: &[Frame]) {
    assert!(frames[0].from_client);
    let req_frame = &frames[0].bytes;
    let h = Header::parse(req_frame).unwrap();
    assert_eq!(
        h,
        Header {
            packet_type: PacketType::Request,
            length: 68
        }
    );
    let req = SessionRequest::parse(&req_frame[4..]).unwrap();
    assert_eq!(req.called, NetbiosName::new("TESTHOST", 0x03).unwrap());
    assert_eq!(req.calling, NetbiosName::new("CLIENTPC", 0x00).unwrap());
    assert_eq!(&req.to_vec().unwrap(), req_frame);
    assert!(!frames[1].from_client);
    assert_eq!(frames[1].bytes, session::positive_response());
}

/// Parses a client SMB message, checks `to_vec` re-creates it and the session framing too.
fn command(frame: &[u8]) -> (SmbHeader, MessageCommand<'_>) {
    let s = smb(frame);
    let (h, c) = MessageCommand::parse(s).unwrap();
    assert_eq!(c.to_vec(&h).unwrap(), s, "canonical re-encoding of {c:?}");
    assert_eq!(session::message(s).unwrap(), frame);
    (h, c)
}

/// A reply from smbd: our reply to the same request differs only in Flags2
/// (smbd sets 0x4003 on success, 0x0003 on error; we copy the request's).
fn check_smbd_reply(request: &SmbHeader, frame: &[u8], error: Option<(u8, u16)>) {
    let s = smb(frame);
    let r = MessageReply::parse(s).unwrap();
    assert!(r.header.is_reply());
    assert_eq!(r.group, None, "smbd sends no group id");
    assert_eq!(r.to_vec(), s, "canonical re-encoding of {r:?}");
    let ours = message_reply(request, None, error);
    let mut ours_hdr = MessageReply::parse(&ours).unwrap().header;
    ours_hdr.flags2 = r.header.flags2;
    assert_eq!(ours_hdr, r.header);
}

#[test]
fn smbclient_short_message() {
    let frames = frames_fixture("nbss-smbclient-message-short.frames");
    assert_eq!(frames.len(), 8);
    assert_eq!(
        reframe(&frames),
        frames.iter().map(|f| f.bytes.clone()).collect::<Vec<_>>()
    );
    check_opening(&frames);

    let (h, c) = command(&frames[2].bytes);
    assert_eq!(
        c,
        MessageCommand::Start {
            originator: b"alice",
            destination: b"TESTHOST"
        }
    );
    assert_eq!(h.command, SMB_COM_SEND_START_MB_MESSAGE);
    assert_eq!((h.tid, h.uid, h.flags, h.flags2), (0, 0, 0, 0));
    assert_eq!(h.pid, 0x220c);
    check_smbd_reply(&h, &frames[3].bytes, None);
    let r = MessageReply::parse(smb(&frames[3].bytes)).unwrap();
    assert_eq!((r.header.flags, r.header.flags2), (0x80, 0x4003));

    let (h, c) = command(&frames[4].bytes);
    assert_eq!(
        c,
        MessageCommand::Text {
            group: 0,
            text: b"hello popup\r\n"
        }
    );
    assert_eq!(h.command, SMB_COM_SEND_TEXT_MB_MESSAGE);
    check_smbd_reply(&h, &frames[5].bytes, None);

    let (h, c) = command(&frames[6].bytes);
    assert_eq!(c, MessageCommand::End { group: 0 });
    assert_eq!(h.command, SMB_COM_SEND_END_MB_MESSAGE);
    check_smbd_reply(&h, &frames[7].bytes, None);
}

#[test]
fn smbclient_long_message_in_blocks() {
    let frames = frames_fixture("nbss-smbclient-message-long.frames");
    check_opening(&frames);
    let mut text = Vec::new();
    let mut blocks = 0;
    let mut ended = false;
    for pair in frames[2..].chunks(2) {
        let (h, c) = command(&pair[0].bytes);
        check_smbd_reply(&h, &pair[1].bytes, None);
        match c {
            MessageCommand::Start { originator, .. } => assert_eq!(originator, b"alice"),
            MessageCommand::Text { group, text: t } => {
                assert_eq!(group, 0);
                assert!(t.len() <= mailslot_proto::smb_session::MAX_TEXT_BLOCK);
                text.extend_from_slice(t);
                blocks += 1;
            }
            MessageCommand::End { group } => {
                assert_eq!(group, 0);
                ended = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(ended);
    assert_eq!(blocks, 3);
    let want: String = (1..=7)
        .map(|i| format!("line {i:02}: the quick brown fox jumps over the lazy dog\r\n"))
        .collect();
    assert_eq!(String::from_utf8(text).unwrap(), want);
}

#[test]
fn smbd_refuses_a_message() {
    let frames = frames_fixture("nbss-smbclient-message-refused.frames");
    check_opening(&frames);
    let (h, _) = command(&frames[2].bytes);
    // smbd without a message command: ERRDOS / 71 (ERROR_REQ_NOT_ACCEP).
    check_smbd_reply(&h, &frames[3].bytes, Some((ERRDOS, 71)));
    let r = MessageReply::parse(smb(&frames[3].bytes)).unwrap();
    assert_eq!(
        (r.header.error_class, r.header.error_code, r.header.flags2),
        (ERRDOS, 71, 0x0003)
    );
    assert!(!r.header.is_success());
}

#[test]
fn documented_smbclient_bodies() {
    // Bodies quoted in the wire-protocol notes §8 (another smbclient run, group id 1),
    // behind a header like the captured ones.
    let header = SmbHeader {
        pid: 0x1a84,
        ..SmbHeader::new(0)
    };
    let bodies: [(u8, &str); 3] = [
        (0xD5, "00110004616c69636500 0454455354484f535400"),
        (0xD7, "0101001000010d0068656c6c6f20706f7075700d0a"),
        (0xD6, "0101000000"),
    ];
    let mut got = Vec::new();
    for (cmd, body) in bodies {
        let mut v = vec![0; 32];
        SmbHeader {
            command: cmd,
            ..header
        }
        .emit(&mut v)
        .unwrap();
        v.extend(hex::decode(body.replace(' ', "")).unwrap());
        let (h, c) = MessageCommand::parse(&v).unwrap();
        assert_eq!(h.pid, 0x1a84);
        assert_eq!(c.to_vec(&h).unwrap(), v);
        got.push(format!("{c:?}"));
    }
    assert_eq!(
        got,
        [
            "Start { originator: [97, 108, 105, 99, 101], destination: [84, 69, 83, 84, 72, 79, 83, 84] }",
            "Text { group: 1, text: [104, 101, 108, 108, 111, 32, 112, 111, 112, 117, 112, 13, 10] }",
            "End { group: 1 }",
        ]
    );
}
