//! The NetBIOS session service (TCP 139), without I/O: one [`Connection`] per TCP connection
//! decides what each frame means and what to answer, and one [`WriteLog`] per daemon makes
//! first-class writes exactly-once across reconnects. The shell (`mailslotd`) reads frames
//! (splitting the stream with [`mailslot_proto::session::frame_len`]), feeds them in, carries out
//! the [`Output`]s, and turns each outcome into a reply with [`Pending::reply`].
//!
//! What a session carries (all in SMB1 messages after a session request to one of our names; no
//! negotiate, as `smbclient -M` and LAN Manager's Messenger sent them):
//! - first-class mailslot writes: an SMB_COM_TRANSACTION with `\MAILSLOT\path`, answered only
//!   when the local mailslot has queued the message, or with a DOS error: 2 no such mailslot,
//!   5 refused, 87 too large, 121 timed out waiting for room;
//! - Messenger messages: `SMBsends` (one block) and `SMBsendstrt`/`SMBsendtxt`/`SMBsendend`
//!   (multi-block), delivered to the local mailslot `messngr` as `From\0To\0Text\0`, exactly as
//!   a `\MAILSLOT\MESSNGR` datagram would be.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use mailslot::error::code::INVALID_PARAMETER;
use mailslot::Class;
use mailslot_proto::session::{self as nbss, NegativeCode, PacketType, SessionRequest};
use mailslot_proto::smb::MAILSLOT_PREFIX;
use mailslot_proto::smb::SMB_COM_TRANSACTION;
use mailslot_proto::smb_session::{
    MessageCommand, SessionMailslotWrite, SmbHeader, TransactionReply, ERRDOS,
    ERROR_INVALID_PARAMETER, ERRSRV,
};
use mailslot_proto::{MessengerMessage, NetbiosName};

use crate::Delivery;

/// The local mailslot Messenger messages go to.
pub const MESSENGER_PATH: &str = "messngr";
/// Longest Messenger text taken from a session (all blocks of one message), in bytes; longer is
/// refused (87) and nothing is delivered. NT's Messenger limit.
pub const MAX_MESSENGER_TEXT: usize = 1600;
/// Longest frame payload a connection takes: one first-class write of
/// [`mailslot::daemon::MAX_FIRST_CLASS_NETWORK`] bytes with its headers.
pub const MAX_FRAME: usize = 66 * 1024;
/// SMB error: the server does not support the request (class ERRSRV).
const ERR_NO_SUPPORT: u16 = 0xFFFF;

/// Counts of what connections saw, for the daemon's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A session request for one of our names, accepted.
    Accepted,
    /// A session request for a name we do not hold, refused.
    RefusedName,
    /// A frame that does not parse, or one out of place; the connection is closed.
    Malformed,
    /// An SMB command we do not serve, answered with an error.
    Unsupported,
    /// A request answered with an error and nothing delivered: a first-class write with a
    /// mailslot name that is not one or an empty path, or a priority over 9; a Messenger text
    /// over [`MAX_MESSENGER_TEXT`], a block of text or an end with no message started or after
    /// the message grew too long, or a text with a NUL (the local message could not hold it).
    Refused,
}

/// What the shell must do after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes (one whole session packet).
    Send(Vec<u8>),
    /// Deliver a message into a local mailslot and, with its outcome, send
    /// [`Pending::reply`].
    Deliver(Box<Incoming>),
    /// Count this.
    Note(Note),
    /// Close the connection (after sending what came before).
    Close,
}

/// A message a session brought, to deliver into a local mailslot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The message, as from the network (the sender is the calling name and the peer).
    pub delivery: Delivery<'static>,
    /// How long the delivery may wait for room (first class: the writer's timeout, `None` =
    /// forever; Messenger messages do not wait).
    pub wait_ms: Option<u64>,
    /// For a first-class write: the writer's id (peer address, 16 bytes); the shell runs it
    /// through the [`WriteLog`] so that a write sent again after a reconnect is queued once.
    pub write_id: Option<WriteId>,
    /// The reply to send with the outcome.
    pub reply: Pending,
}

/// A reply owed for a request on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    header: SmbHeader,
}

impl Pending {
    /// The reply packet for `result`: `Ok` or a Win32 error number (sent as a DOS error).
    pub fn reply(&self, result: Result<(), u32>) -> Vec<u8> {
        let error = result
            .err()
            .map(|code| u16::try_from(code).unwrap_or(u16::MAX));
        let smb = match (self.header.command == SMB_COM_TRANSACTION, error) {
            (true, None) => TransactionReply::success(&self.header).to_vec(),
            (true, Some(code)) => TransactionReply::error(&self.header, code).to_vec(),
            (false, error) => mailslot_proto::smb_session::message_reply(
                &self.header,
                None,
                error.map(|code| (ERRDOS, code)),
            ),
        };
        framed(&smb)
    }
}

/// One session message around `smb` (an SMB message is always far below the frame limit).
fn framed(smb: &[u8]) -> Vec<u8> {
    nbss::message(smb).unwrap_or_default()
}

/// A first-class write's identity: the peer and the 16 bytes its writer chose.
pub type WriteId = (Ipv4Addr, [u8; 16]);

/// What a called name reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The computer's server name (`<20>`, `<00>`): first-class writes (and Messenger commands).
    Server,
    /// A Messenger name (`<03>`).
    Messenger,
}

#[derive(Debug)]
enum State {
    /// Waiting for the session request.
    Request,
    /// A session is established; `calling` is the other side's name.
    Open { calling: Arc<str> },
    /// Nothing more is read.
    Closed,
}

/// A multi-block Messenger message being assembled.
#[derive(Debug)]
struct MultiBlock {
    from: Vec<u8>,
    to: Vec<u8>,
    text: Vec<u8>,
    too_long: bool,
}

/// One TCP connection of the session service.
#[derive(Debug)]
pub struct Connection {
    peer: Ipv4Addr,
    state: State,
    message: Option<MultiBlock>,
    next_group: u16,
}

impl Connection {
    /// A connection from `peer`, waiting for its session request.
    pub fn new(peer: Ipv4Addr) -> Self {
        Self {
            peer,
            state: State::Request,
            message: None,
            next_group: 1,
        }
    }

    /// Whether a session is established.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// One whole frame (header and payload, as [`nbss::frame_len`] delimits it); `ours` says
    /// which of our services a called name reaches (`None`: not ours).
    pub fn handle_frame(
        &mut self,
        frame: &[u8],
        ours: impl Fn(&NetbiosName) -> Option<Service>,
    ) -> Vec<Output> {
        let Ok(header) = nbss::Header::parse(frame) else {
            return self.malformed();
        };
        let payload = frame.get(nbss::HEADER_LEN..).unwrap_or_default();
        match (&self.state, header.packet_type) {
            (State::Closed, _) => Vec::new(),
            (_, PacketType::KeepAlive) => Vec::new(),
            (State::Request, PacketType::Request) => self.session_request(payload, ours),
            (State::Open { calling }, PacketType::Message) => {
                let calling = calling.clone();
                self.smb(payload, &calling)
            }
            _ => self.malformed(),
        }
    }

    fn malformed(&mut self) -> Vec<Output> {
        self.state = State::Closed;
        vec![Output::Note(Note::Malformed), Output::Close]
    }

    fn session_request(
        &mut self,
        payload: &[u8],
        ours: impl Fn(&NetbiosName) -> Option<Service>,
    ) -> Vec<Output> {
        let Ok(req) = SessionRequest::parse(payload) else {
            return self.malformed();
        };
        if ours(&req.called).is_none() {
            self.state = State::Closed;
            return vec![
                Output::Note(Note::RefusedName),
                Output::Send(nbss::negative_response(NegativeCode::CalledNameNotPresent).to_vec()),
                Output::Close,
            ];
        }
        self.state = State::Open {
            calling: Arc::from(req.calling.name_lossy().trim_end()),
        };
        vec![
            Output::Note(Note::Accepted),
            Output::Send(nbss::positive_response().to_vec()),
        ]
    }

    /// One SMB message on an open session.
    fn smb(&mut self, smb: &[u8], calling: &Arc<str>) -> Vec<Output> {
        let Ok(header) = SmbHeader::parse(smb) else {
            return self.malformed();
        };
        if header.command == SMB_COM_TRANSACTION {
            return match SessionMailslotWrite::parse(smb) {
                Ok(w) => self.mailslot_write(&w, calling),
                Err(_) => self.malformed(),
            };
        }
        match MessageCommand::parse(smb) {
            Ok((header, cmd)) => self.message(&header, cmd, calling),
            Err(_) if is_message_command(header.command) => self.malformed(),
            Err(_) => {
                let reply = mailslot_proto::smb_session::message_reply(
                    &header,
                    None,
                    Some((ERRSRV, ERR_NO_SUPPORT)),
                );
                vec![
                    Output::Note(Note::Unsupported),
                    Output::Send(framed(&reply)),
                ]
            }
        }
    }

    fn mailslot_write(&mut self, w: &SessionMailslotWrite<'_>, calling: &Arc<str>) -> Vec<Output> {
        let pending = Pending { header: w.header };
        let path = strip_prefix(w.name);
        let bad = match path {
            None => Some("not a mailslot name"),
            Some("") => Some("empty mailslot path"),
            Some(_) if w.priority > 9 => Some("priority out of range"),
            Some(_) => None,
        };
        let Some(path) = path.filter(|_| bad.is_none()) else {
            return vec![
                Output::Note(Note::Refused),
                Output::Send(pending.reply(Err(INVALID_PARAMETER))),
            ];
        };
        let class = if w.class == 1 {
            Class::First
        } else {
            Class::Second
        };
        let delivery = Delivery {
            path: Arc::from(path),
            data: Cow::Owned(w.data.to_vec()),
            priority: u8::try_from(w.priority).unwrap_or(9),
            class,
            sender_name: calling.clone(),
            sender_ip: self.peer,
            caller: None,
        };
        let wait_ms = match (class, w.timeout_ms) {
            (Class::Second, _) => Some(0),
            (Class::First, u32::MAX) => None,
            (Class::First, ms) => Some(u64::from(ms)),
        };
        vec![Output::Deliver(Box::new(Incoming {
            delivery,
            wait_ms,
            write_id: Some((self.peer, w.write_id)),
            reply: pending,
        }))]
    }

    fn message(
        &mut self,
        header: &SmbHeader,
        cmd: MessageCommand<'_>,
        calling: &Arc<str>,
    ) -> Vec<Output> {
        let reply = |error: Option<(u8, u16)>, group: Option<u16>| {
            Output::Send(framed(&mailslot_proto::smb_session::message_reply(
                header, group, error,
            )))
        };
        let refuse = || {
            vec![
                Output::Note(Note::Refused),
                reply(Some((ERRDOS, ERROR_INVALID_PARAMETER)), None),
            ]
        };
        match cmd {
            MessageCommand::Single {
                originator,
                destination,
                text,
            } => {
                if text.len() > MAX_MESSENGER_TEXT {
                    return refuse();
                }
                self.messenger(header, originator, destination, text, calling)
            }
            MessageCommand::Start {
                originator,
                destination,
            } => {
                let group = self.next_group;
                self.next_group = self.next_group.wrapping_add(1).max(1);
                self.message = Some(MultiBlock {
                    from: originator.to_vec(),
                    to: destination.to_vec(),
                    text: Vec::new(),
                    too_long: false,
                });
                vec![reply(None, Some(group))]
            }
            // The group id is not checked (as Samba's smbd does not): a connection has one
            // message in progress, and a client that got no id from a server that answers
            // without one (smbd) sends 0.
            MessageCommand::Text { text, .. } => match &mut self.message {
                Some(m) => {
                    if m.text.len() + text.len() > MAX_MESSENGER_TEXT {
                        m.too_long = true;
                        return refuse();
                    }
                    m.text.extend_from_slice(text);
                    vec![reply(None, None)]
                }
                None => refuse(),
            },
            MessageCommand::End { .. } => match self.message.take() {
                Some(m) if !m.too_long => self.messenger(header, &m.from, &m.to, &m.text, calling),
                _ => refuse(),
            },
        }
    }

    /// A whole Messenger message, for the local `messngr` mailslot.
    fn messenger(
        &self,
        header: &SmbHeader,
        from: &[u8],
        to: &[u8],
        text: &[u8],
        calling: &Arc<str>,
    ) -> Vec<Output> {
        let pending = Pending { header: *header };
        let Ok(data) = (MessengerMessage { from, to, text }).to_vec() else {
            return vec![
                Output::Note(Note::Refused),
                Output::Send(pending.reply(Err(INVALID_PARAMETER))),
            ];
        };
        let delivery = Delivery {
            path: Arc::from(MESSENGER_PATH),
            data: Cow::Owned(data),
            priority: 0,
            class: Class::Second,
            sender_name: calling.clone(),
            sender_ip: self.peer,
            caller: None,
        };
        vec![Output::Deliver(Box::new(Incoming {
            delivery,
            wait_ms: Some(0),
            write_id: None,
            reply: pending,
        }))]
    }
}

fn is_message_command(c: u8) -> bool {
    (0xD0..=0xD7).contains(&c)
}

/// The path after `\MAILSLOT\` (any case), if `name` is a mailslot name in ASCII.
fn strip_prefix(name: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(name).ok()?;
    let p = MAILSLOT_PREFIX.len();
    (name.len() >= p && name.is_char_boundary(p) && name[..p].eq_ignore_ascii_case(MAILSLOT_PREFIX))
        .then(|| &name[p..])
}

/// The Win32 code an SMB reply's status stands for: its DOS error code, or `fallback` for a
/// status of another class.
pub fn reply_code(header: &SmbHeader, fallback: u32) -> Option<u32> {
    match (header.error_class, header.error_code) {
        (0, 0) => None,
        (ERRDOS, c) => Some(u32::from(c)),
        _ => Some(fallback),
    }
}

/// What [`WriteLog::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// A new write: deliver it, then [`WriteLog::finish`].
    Run,
    /// Delivered (or failed) before: answer with this outcome, deliver nothing.
    Done(Result<(), u32>),
    /// The same write is being delivered (from a connection that was lost): the waiter was
    /// stored and [`WriteLog::finish`] returns it.
    Wait,
}

/// The receiver's memory of first-class writes, so that a write sent again over a new
/// connection (its answer was lost with the old one) is queued once. Keeps the last
/// `capacity` finished writes; writes in progress are never forgotten.
#[derive(Debug)]
pub struct WriteLog<W> {
    entries: HashMap<WriteId, Entry<W>>,
    finished: VecDeque<WriteId>,
    capacity: usize,
}

#[derive(Debug)]
enum Entry<W> {
    Running(Vec<W>),
    Done(Result<(), u32>),
}

impl<W> WriteLog<W> {
    /// A log that remembers `capacity` finished writes.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            finished: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// A write arrives; `waiter` is kept only for [`Begin::Wait`].
    pub fn begin(&mut self, id: WriteId, waiter: W) -> Begin {
        match self.entries.get_mut(&id) {
            None => {
                self.entries.insert(id, Entry::Running(Vec::new()));
                Begin::Run
            }
            Some(Entry::Done(r)) => Begin::Done(*r),
            Some(Entry::Running(waiters)) => {
                waiters.push(waiter);
                Begin::Wait
            }
        }
    }

    /// The write `id` (begun with [`Begin::Run`]) has this outcome; returns the waiters of its
    /// copies, to be answered the same.
    pub fn finish(&mut self, id: WriteId, result: Result<(), u32>) -> Vec<W> {
        let waiters = match self.entries.insert(id, Entry::Done(result)) {
            Some(Entry::Running(w)) => w,
            _ => Vec::new(),
        };
        self.finished.push_back(id);
        while self.finished.len() > self.capacity {
            if let Some(old) = self.finished.pop_front() {
                if matches!(self.entries.get(&old), Some(Entry::Done(_))) {
                    self.entries.remove(&old);
                }
            }
        }
        waiters
    }

    /// Writes remembered (finished or in progress).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether `code` is an error a first-class writer may see (documented Win32 numbers); others
/// are reported as not supported.
pub fn known_write_error(code: u32) -> u32 {
    use mailslot::error::code::*;
    match code {
        FILE_NOT_FOUND | ACCESS_DENIED | INVALID_PARAMETER | SEM_TIMEOUT | BROKEN_PIPE
        | BAD_NETPATH | NOT_ENOUGH_MEMORY => code,
        _ => NOT_SUPPORTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> WriteId {
        (Ipv4Addr::new(10, 0, 0, 1), [n; 16])
    }

    #[test]
    fn a_write_runs_once_and_its_repeats_get_its_outcome() {
        let mut log = WriteLog::new(2);
        assert_eq!(log.begin(id(1), "first"), Begin::Run);
        // A repeat while it runs waits for it.
        assert_eq!(log.begin(id(1), "repeat"), Begin::Wait);
        assert_eq!(log.finish(id(1), Err(121)), vec!["repeat"]);
        assert_eq!(log.begin(id(1), "late"), Begin::Done(Err(121)));
        // The same bytes from another peer are another write.
        let other = (Ipv4Addr::new(10, 0, 0, 2), [1; 16]);
        assert_eq!(log.begin(other, "x"), Begin::Run);
    }

    #[test]
    fn the_oldest_finished_writes_are_forgotten_first_never_running_ones() {
        let mut log = WriteLog::new(2);
        assert_eq!(log.begin(id(9), ()), Begin::Run); // stays running throughout
        for n in 1..=3 {
            assert_eq!(log.begin(id(n), ()), Begin::Run);
            log.finish(id(n), Ok(()));
        }
        assert_eq!(log.begin(id(1), ()), Begin::Run, "forgotten");
        assert_eq!(log.begin(id(3), ()), Begin::Done(Ok(())));
        assert_eq!(log.begin(id(9), ()), Begin::Wait, "a running write is kept");
    }

    fn open() -> Connection {
        let mut c = Connection::new(Ipv4Addr::new(10, 0, 0, 1));
        let req = SessionRequest {
            called: NetbiosName::new("HOST", 0x20).unwrap(),
            calling: NetbiosName::new("PEER", 0).unwrap(),
        };
        let out = c.handle_frame(&req.to_vec().unwrap(), |_| Some(Service::Server));
        assert_eq!(out[0], Output::Note(Note::Accepted));
        c
    }

    fn send(c: &mut Connection, smb: &[u8]) -> Vec<Output> {
        c.handle_frame(&nbss::message(smb).unwrap(), |_| Some(Service::Server))
    }

    fn write(name: &[u8], priority: u16) -> Vec<u8> {
        SessionMailslotWrite {
            header: SmbHeader::new(SMB_COM_TRANSACTION),
            name,
            priority,
            class: 1,
            timeout_ms: 100,
            write_id: [1; 16],
            data: b"x",
        }
        .to_vec()
        .unwrap()
    }

    fn command(cmd: MessageCommand<'_>) -> Vec<u8> {
        cmd.to_vec(&SmbHeader::new(cmd.command())).unwrap()
    }

    /// Answered with an error, counted, nothing delivered.
    #[track_caller]
    fn assert_refused(out: &[Output]) {
        assert!(
            matches!(out, [Output::Note(Note::Refused), Output::Send(_)]),
            "{out:?}"
        );
    }

    #[test]
    fn refused_mailslot_writes_are_counted() {
        let mut c = open();
        assert_refused(&send(&mut c, &write(b"\\MAILSLOT\\\xff", 1)));
        assert_refused(&send(&mut c, &write(b"\\MAILSLOT\\", 1)));
        assert_refused(&send(&mut c, &write(b"\\MAILSLOT\\jobs", 10)));
        // The connection still serves: a valid write is delivered, with no refusal.
        let out = send(&mut c, &write(b"\\MAILSLOT\\jobs", 9));
        assert!(matches!(out.as_slice(), [Output::Deliver(_)]), "{out:?}");
    }

    #[test]
    fn refused_messenger_messages_are_counted() {
        let mut c = open();
        let (originator, destination) = (&b"alice"[..], &b"HOST"[..]);
        let long = [b'a'; MAX_MESSENGER_TEXT + 1];
        // One block, too long.
        let single = |text| MessageCommand::Single {
            originator,
            destination,
            text,
        };
        assert_refused(&send(&mut c, &command(single(&long))));
        // A NUL in the text: the local message cannot hold it.
        assert_refused(&send(&mut c, &command(single(b"a\0b"))));
        // A block of text, or an end, with no message started.
        let text = |text| MessageCommand::Text { group: 1, text };
        assert_refused(&send(&mut c, &command(text(b"hi"))));
        assert_refused(&send(&mut c, &command(MessageCommand::End { group: 1 })));
        // A message that grows too long: its block, then its end.
        let start = MessageCommand::Start {
            originator,
            destination,
        };
        let out = send(&mut c, &command(start));
        assert!(matches!(out.as_slice(), [Output::Send(_)]), "{out:?}");
        let half = [b'a'; MAX_MESSENGER_TEXT / 2 + 1];
        let out = send(&mut c, &command(text(&half)));
        assert!(matches!(out.as_slice(), [Output::Send(_)]), "{out:?}");
        assert_refused(&send(&mut c, &command(text(&half))));
        assert_refused(&send(&mut c, &command(MessageCommand::End { group: 1 })));
        // A good one after all that is delivered.
        let out = send(&mut c, &command(single(b"hello")));
        assert!(matches!(out.as_slice(), [Output::Deliver(_)]), "{out:?}");
    }

    #[test]
    fn mailslot_names_are_recognised_in_any_case() {
        assert_eq!(strip_prefix(b"\\MAILSLOT\\jobs"), Some("jobs"));
        assert_eq!(strip_prefix(b"\\mailslot\\A\\B"), Some("A\\B"));
        assert_eq!(strip_prefix(b"\\PIPE\\x"), None);
        assert_eq!(strip_prefix(b"\\MAILSLOT"), None);
        assert_eq!(strip_prefix(b"\\MAILSLOT\\\xff"), None);
    }
}
