//! Prints TCP 139 conversations built with this crate's session and SMB
//! encoders, for `tests/tshark-session.sh` to let Wireshark judge them.
//!
//! Run with `cargo run -q -p mailslot-proto --example session_frames`.
//! One line per session packet: `CONVERSATION DIRECTION EXPECT HEX`, where
//! DIRECTION is `C` (client to port 139) or `S` (server to client) and EXPECT
//! is what the packet must decode as: `nbss:0xNN` (session packet type),
//! `smb:0xNN` (SMB command in a session message), `mailslot:0x25` (an SMB
//! mailslot write) or `smberr:0xNN` (an SMB reply with an error status).

use mailslot_proto::session::{self, NegativeCode, SessionRequest};
use mailslot_proto::smb_session::{
    message_reply, MessageCommand, SessionMailslotWrite, SmbHeader, TransactionReply, ERRDOS,
    ERROR_SEM_TIMEOUT, ERRSRV,
};
use mailslot_proto::NetbiosName;

fn line(conv: u32, dir: char, expect: &str, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("{conv} {dir} {expect} {hex}");
}

/// A session message carrying `smb`.
fn msg(smb: &[u8]) -> Vec<u8> {
    session::message(smb).expect("small message")
}

fn main() -> Result<(), mailslot_proto::Error> {
    let request = SessionRequest {
        called: NetbiosName::new("TESTHOST", 0x03)?,
        calling: NetbiosName::new("CLIENTPC", 0x00)?,
    }
    .to_vec()?;
    let positive = session::positive_response();

    // 1: the Messenger commands and their replies.
    line(1, 'C', "nbss:0x81", &request);
    line(1, 'S', "nbss:0x82", &positive);
    let base = SmbHeader {
        pid: 0x4242,
        mid: 1,
        ..SmbHeader::default()
    };
    let commands = [
        (
            MessageCommand::Single {
                originator: b"ALICE",
                destination: b"TESTHOST",
                text: b"short note\r\n",
            },
            None,
        ),
        (
            MessageCommand::Start {
                originator: b"ALICE",
                destination: b"TESTHOST",
            },
            Some(0x0007),
        ),
        (
            MessageCommand::Text {
                group: 7,
                text: b"first block\r\n",
            },
            None,
        ),
        (MessageCommand::End { group: 7 }, None),
    ];
    for (i, (cmd, group)) in commands.iter().enumerate() {
        let header = SmbHeader {
            mid: i as u16 + 1,
            ..base
        };
        let smb = cmd.to_vec(&header)?;
        let expect = format!("smb:0x{:02x}", cmd.command());
        line(1, 'C', &expect, &msg(&smb));
        let (parsed, _) = MessageCommand::parse(&smb)?;
        line(1, 'S', &expect, &msg(&message_reply(&parsed, *group, None)));
    }
    // A refused message: ERRSRV / 0x30 (messages are off) to a 0xD0.
    let refused = commands[0].0.to_vec(&SmbHeader { mid: 9, ..base })?;
    line(1, 'C', "smb:0xd0", &msg(&refused));
    let (parsed, _) = MessageCommand::parse(&refused)?;
    line(
        1,
        'S',
        "smberr:0xd0",
        &msg(&message_reply(&parsed, None, Some((ERRSRV, 0x30)))),
    );
    line(1, 'C', "nbss:0x85", &session::keep_alive());

    // 2: a refused session.
    line(2, 'C', "nbss:0x81", &request);
    line(
        2,
        'S',
        "nbss:0x83",
        &session::negative_response(NegativeCode::CalledNameNotPresent),
    );

    // 3: first-class mailslot writes and both kinds of answer.
    line(3, 'C', "nbss:0x81", &request);
    line(3, 'S', "nbss:0x82", &positive);
    let write = SessionMailslotWrite {
        header: SmbHeader {
            pid: 0x4243,
            mid: 1,
            ..SmbHeader::default()
        },
        name: b"\\MAILSLOT\\DEMO\\INBOX",
        priority: 1,
        class: 1,
        timeout_ms: 5000,
        write_id: *b"\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\0\0\0\0\x01",
        data: b"hello over the session",
    };
    line(3, 'C', "mailslot:0x25", &msg(&write.to_vec()?));
    line(
        3,
        'S',
        "smb:0x25",
        &msg(&TransactionReply::success(&write.header).to_vec()),
    );
    let second = SessionMailslotWrite {
        header: SmbHeader {
            mid: 2,
            ..write.header
        },
        timeout_ms: SessionMailslotWrite::WAIT_FOREVER,
        write_id: *b"\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\0\0\0\0\x02",
        ..write
    };
    line(3, 'C', "mailslot:0x25", &msg(&second.to_vec()?));
    let err = TransactionReply::error(&second.header, ERROR_SEM_TIMEOUT);
    assert_eq!(err.header.error_class, ERRDOS);
    line(3, 'S', "smberr:0x25", &msg(&err.to_vec()));
    Ok(())
}
