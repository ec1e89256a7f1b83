//! Sending a Messenger message over a NetBIOS session, as NT's `net send NAME` did: a session
//! to `NAME<03>` (TCP 139), then `SMBsends` for a text of one block, or `SMBsendstrt`,
//! `SMBsendtxt` per 128-byte block and `SMBsendend` for a longer one. The receiver answers each
//! command; any error, a refused session or no answer is an error here, and the caller may fall
//! back to the `\MAILSLOT\MESSNGR` datagram.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mailslot_proto::session::{self as nbss, PacketType, SessionRequest};
use mailslot_proto::smb_session::{MessageCommand, MessageReply, SmbHeader, MAX_TEXT_BLOCK};
use mailslot_proto::NetbiosName;

/// Connecting and each answer may take this long.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer frame read.
const MAX_ANSWER: usize = 4096;

/// Why a message could not be sent over a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionSendError {
    /// The connection failed or broke.
    #[error("cannot reach {addr}: {error}")]
    Connect {
        /// The address called.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The session request was refused.
    #[error("{called} refused the session (negative response {code:#04x})")]
    Refused {
        /// The name called.
        called: String,
        /// The negative response's code.
        code: u8,
    },
    /// The receiver answered a command with an error.
    #[error("the receiver refused the message (SMB error class {class}, code {code})")]
    Rejected {
        /// Error class.
        class: u8,
        /// Error code.
        code: u16,
    },
    /// The receiver sent something that is not a valid answer.
    #[error("invalid answer from the receiver: {0}")]
    Protocol(String),
}

/// Sends `from`/`to`/`text` (OEM bytes) to the Messenger name `called` at `addr`, as `calling`.
pub fn send(
    addr: SocketAddr,
    called: NetbiosName,
    calling: NetbiosName,
    from: &[u8],
    to: &[u8],
    text: &[u8],
) -> Result<(), SessionSendError> {
    let io = |error| SessionSendError::Connect { addr, error };
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(io)?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let _ = s.set_nodelay(true);
    let req = SessionRequest { called, calling }
        .to_vec()
        .map_err(|e| SessionSendError::Protocol(e.to_string()))?;
    s.write_all(&req).map_err(io)?;
    let answer = read_frame(&mut s).map_err(io)?;
    let header = parse_header(&answer)?;
    match header.packet_type {
        PacketType::PositiveResponse => {}
        PacketType::NegativeResponse => {
            return Err(SessionSendError::Refused {
                called: called.to_string(),
                code: answer.get(nbss::HEADER_LEN).copied().unwrap_or(0),
            })
        }
        other => return Err(SessionSendError::Protocol(format!("{other:?}"))),
    }
    let mut mid = 0u16;
    let mut command = |s: &mut TcpStream, cmd: MessageCommand<'_>| {
        mid += 1;
        let mut h = SmbHeader::new(cmd.command());
        h.mid = mid;
        h.pid = u16::try_from(std::process::id() & 0xFFFF).unwrap_or(0);
        let smb = cmd
            .to_vec(&h)
            .map_err(|e| SessionSendError::Protocol(e.to_string()))?;
        let frame = nbss::message(&smb).map_err(|e| SessionSendError::Protocol(e.to_string()))?;
        s.write_all(&frame).map_err(io)?;
        let answer = read_frame(s).map_err(io)?;
        let smb = answer.get(nbss::HEADER_LEN..).unwrap_or_default();
        let reply =
            MessageReply::parse(smb).map_err(|e| SessionSendError::Protocol(e.to_string()))?;
        match (reply.header.error_class, reply.header.error_code) {
            (0, 0) => Ok(reply.group),
            (class, code) => Err(SessionSendError::Rejected { class, code }),
        }
    };
    if text.len() <= MAX_TEXT_BLOCK {
        command(
            &mut s,
            MessageCommand::Single {
                originator: from,
                destination: to,
                text,
            },
        )?;
    } else {
        let group = command(
            &mut s,
            MessageCommand::Start {
                originator: from,
                destination: to,
            },
        )?
        .unwrap_or(0);
        for block in text.chunks(MAX_TEXT_BLOCK) {
            command(&mut s, MessageCommand::Text { group, text: block })?;
        }
        command(&mut s, MessageCommand::End { group })?;
    }
    Ok(())
}

fn parse_header(frame: &[u8]) -> Result<nbss::Header, SessionSendError> {
    nbss::Header::parse(frame).map_err(|e| SessionSendError::Protocol(e.to_string()))
}

/// One whole session frame.
fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        let need = nbss::frame_len(&buf, MAX_ANSWER)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        match need {
            // Keep-alives between answers are skipped.
            Some(n) if buf.len() >= n && buf[0] == 0x85 => {
                buf.drain(..n);
            }
            Some(n) if buf.len() >= n => {
                buf.truncate(n);
                return Ok(buf);
            }
            _ => {
                let mut chunk = [0u8; 1024];
                let k = s.read(&mut chunk)?;
                if k == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..k]);
            }
        }
    }
}
