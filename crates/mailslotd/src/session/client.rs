//! First-class writes to other hosts: one pooled session per peer, each write an
//! SMB_COM_TRANSACTION answered by the peer's daemon when its mailslot has queued the message.
//!
//! Each peer has a task that owns its connection and the writes waiting for an answer (by
//! multiplex id). When the connection is lost, the task connects again (up to
//! [`RECONNECT_TRIES`] times) and sends every unanswered write again with the same write id, so
//! the peer queues each once. A write fails with 53 when the peer cannot be reached, 109 when
//! the connection was lost and cannot be made again, the peer's answer (2, 5, 87, 121) when it
//! refused, and 121 when no answer came within the write's timeout and [`ANSWER_GRACE`].
//!
//! A peer's task closes its connection after [`IDLE`] without writes, and ends after
//! [`RETIRE`] more with nothing to do: it closes its channel, carries out the writes that were
//! already in it and ends, and the pool starts a new task for that peer's next write. So the
//! pool holds tasks only for peers written to lately, not for every host ever written to.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mailslot::daemon::{Failure, RemoteWrite, Reply};
use mailslot::error::code::{BAD_NETPATH, BROKEN_PIPE, NOT_ENOUGH_MEMORY, SEM_TIMEOUT};
use mailslot::Class;
use mailslot_proto::session::{self as nbss, PacketType, SessionRequest};
use mailslot_proto::smb::MAILSLOT_PREFIX;
use mailslot_proto::smb::SMB_COM_TRANSACTION;
use mailslot_proto::smb_session::{SessionMailslotWrite, SmbHeader, TransactionReply};
use mailslot_proto::NetbiosName;
use mailslot_router::session::{known_write_error, reply_code};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;

use super::{next_frame, Counters};

/// Connecting (TCP and the session request) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Connection attempts after a connection with unanswered writes was lost.
const RECONNECT_TRIES: u32 = 3;
/// Beyond a write's own timeout, how long its answer may take (the path and the peer's work).
pub(crate) const ANSWER_GRACE: Duration = Duration::from_secs(10);
/// Writes waiting for a peer (queued or unanswered) at most; more fail with 8.
const MAX_PENDING: usize = 256;
/// A peer's connection without writes for this long is closed.
#[cfg(not(test))]
const IDLE: Duration = Duration::from_secs(60);
#[cfg(test)]
const IDLE: Duration = Duration::from_millis(100);
/// A peer's task without a connection and without writes for this long ends (after the
/// connection's [`IDLE`]; 11 minutes since the last write in all).
#[cfg(not(test))]
const RETIRE: Duration = Duration::from_secs(600);
#[cfg(test)]
const RETIRE: Duration = Duration::from_millis(200);
/// Largest answer frame taken.
const MAX_ANSWER: usize = 4096;

/// A write for a peer.
pub(crate) struct Job {
    /// The name to call (`HOST<20>`).
    pub(crate) called: NetbiosName,
    /// Our name.
    pub(crate) calling: NetbiosName,
    /// The write.
    pub(crate) write: RemoteWrite,
    /// Where the answer goes.
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The peers' tasks.
pub(crate) struct Pool {
    peers: HashMap<SocketAddrV4, mpsc::Sender<Job>>,
    ids: Arc<WriteIds>,
    counters: Counters,
}

/// Write ids: this daemon's random instance and a sequence.
struct WriteIds {
    instance: [u8; 8],
    next: AtomicU64,
}

impl WriteIds {
    fn next(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.instance);
        id[8..].copy_from_slice(&self.next.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        id
    }
}

impl Pool {
    pub(crate) fn new(counters: Counters) -> Self {
        Self {
            peers: HashMap::new(),
            ids: Arc::new(WriteIds {
                instance: random_instance(),
                next: AtomicU64::new(1),
            }),
            counters,
        }
    }

    /// Hands `job` to the task of the peer at `to` (starting it if needed).
    pub(crate) fn submit(&mut self, to: SocketAddrV4, job: Job) {
        self.counters.count(|c| c.first_class_sent += 1);
        let job = match self.peers.get(&to) {
            None => job,
            Some(tx) => match tx.try_send(job) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(job)) => {
                    return fail(
                        job,
                        NOT_ENOUGH_MEMORY,
                        "too many first-class writes wait for this host",
                    );
                }
                Err(mpsc::error::TrySendError::Closed(job)) => job,
            },
        };
        let (tx, rx) = mpsc::channel(MAX_PENDING);
        let peer = Peer {
            to,
            rx,
            ids: self.ids.clone(),
            counters: self.counters.clone(),
            waiting: HashMap::new(),
            next_mid: 1,
            retiring: false,
        };
        // A new channel always has room for its first job.
        let _ = tx.try_send(job);
        self.peers.retain(|_, tx| !tx.is_closed());
        self.peers.insert(to, tx);
        tokio::spawn(peer.run());
    }
}

fn random_instance() -> [u8; 8] {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    b
}

fn fail(job: Job, code: u32, message: impl Into<String>) {
    let _ = job.reply.send(Reply::Failed(Failure {
        code,
        message: message.into(),
    }));
}

/// A write sent and not answered yet.
struct Waiting {
    job: Job,
    /// The whole frame, to send again after a reconnect.
    frame: Vec<u8>,
    deadline: Option<Instant>,
}

/// One peer's task.
struct Peer {
    to: SocketAddrV4,
    rx: mpsc::Receiver<Job>,
    ids: Arc<WriteIds>,
    counters: Counters,
    waiting: HashMap<u16, Waiting>,
    next_mid: u16,
    /// Our channel is closed (the pool starts a new task for new writes): we end once what was
    /// in it has been sent and answered.
    retiring: bool,
}

struct Link {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Peer {
    async fn run(mut self) {
        let mut link: Option<Link> = None;
        // The channel is empty and closed: no more jobs come.
        let mut drained = false;
        loop {
            if drained && (!self.retiring || self.waiting.is_empty()) {
                break;
            }
            let deadline = self.waiting.values().filter_map(|w| w.deadline).min();
            let idle = link.is_some() && self.waiting.is_empty();
            let unused = link.is_none() && self.waiting.is_empty() && !self.retiring;
            tokio::select! {
                job = self.rx.recv(), if !drained && self.waiting.len() < MAX_PENDING => {
                    match job {
                        Some(job) => self.send(&mut link, job).await,
                        None => drained = true,
                    }
                }
                frame = read(&mut link) => match frame {
                    Ok(frame) => self.answer(&frame),
                    Err(e) => {
                        debug!("session to {} lost: {e}", self.to);
                        link = None;
                        self.reconnect(&mut link).await;
                    }
                },
                () = sleep_until(deadline) => self.expire(),
                // The connection goes first; the task stays a while for the next write.
                () = tokio::time::sleep(IDLE), if idle => link = None,
                () = tokio::time::sleep(RETIRE), if unused => self.retire(),
            }
        }
        // The pool is gone (the daemon stops): what still waits cannot be answered.
        for (_, w) in self.waiting.drain() {
            fail(w.job, BROKEN_PIPE, "the mailslot daemon is stopping");
        }
    }

    /// Closes the channel: a job submitted from now on finds it closed and gets a new task.
    /// Jobs already in it are still received (until `None`) and answered, so none is dropped
    /// without an answer, and the task ends when the last of them is.
    fn retire(&mut self) {
        self.rx.close();
        self.retiring = true;
    }

    /// Encodes and sends a new write (connecting first if needed).
    async fn send(&mut self, link: &mut Option<Link>, job: Job) {
        let mid = self.mid();
        let frame = match encode(&job, mid, self.ids.next()) {
            Ok(f) => f,
            Err(e) => return fail(job, mailslot::error::code::INVALID_PARAMETER, e),
        };
        if link.is_none() {
            match connect(self.to, &job.called, &job.calling).await {
                Ok(l) => {
                    self.counters.count(|c| c.sessions_opened += 1);
                    *link = Some(l);
                }
                Err(e) => {
                    self.counters.count(|c| c.first_class_unreachable += 1);
                    let name = job.called.name_lossy();
                    return fail(
                        job,
                        BAD_NETPATH,
                        format!("cannot reach {} ({}): {e}", name.trim_end(), self.to),
                    );
                }
            }
        }
        let deadline = job
            .write
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms) + ANSWER_GRACE);
        self.waiting.insert(
            mid,
            Waiting {
                job,
                frame: frame.clone(),
                deadline,
            },
        );
        if let Some(l) = link {
            if l.wr.write_all(&frame).await.is_err() {
                *link = None;
                self.reconnect(link).await;
            }
        }
    }

    fn mid(&mut self) -> u16 {
        loop {
            let mid = self.next_mid;
            self.next_mid = self.next_mid.wrapping_add(1).max(1);
            if !self.waiting.contains_key(&mid) {
                return mid;
            }
        }
    }

    /// The connection was lost with writes unanswered: connect again and send them again (the
    /// peer answers a write it has seen with its first outcome), or fail them all.
    async fn reconnect(&mut self, link: &mut Option<Link>) {
        let Some((called, calling)) = self
            .waiting
            .values()
            .next()
            .map(|w| (w.job.called, w.job.calling))
        else {
            return;
        };
        let mut last = String::new();
        for attempt in 0..RECONNECT_TRIES {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            match connect(self.to, &called, &calling).await {
                Ok(mut l) => {
                    self.counters.count(|c| c.reconnects += 1);
                    let mut ok = true;
                    for w in self.waiting.values() {
                        if l.wr.write_all(&w.frame).await.is_err() {
                            ok = false;
                            break;
                        }
                        self.counters.count(|c| c.first_class_resent += 1);
                    }
                    if ok {
                        *link = Some(l);
                        return;
                    }
                }
                Err(e) => last = e,
            }
        }
        for (_, w) in self.waiting.drain() {
            self.counters.count(|c| c.first_class_unreachable += 1);
            fail(
                w.job,
                BROKEN_PIPE,
                format!(
                    "the session to {} was lost and cannot be made again: {last}",
                    self.to
                ),
            );
        }
    }

    /// An answer from the peer.
    fn answer(&mut self, frame: &[u8]) {
        let Ok(h) = nbss::Header::parse(frame) else {
            return;
        };
        if h.packet_type != PacketType::Message {
            return;
        }
        let smb = frame.get(nbss::HEADER_LEN..).unwrap_or_default();
        let Ok(reply) = TransactionReply::parse(smb) else {
            return;
        };
        let Some(w) = self.waiting.remove(&reply.header.mid) else {
            return;
        };
        let reply = match reply_code(&reply.header, mailslot::error::code::NOT_SUPPORTED) {
            None => {
                self.counters.count(|c| c.first_class_acknowledged += 1);
                Reply::Written
            }
            Some(code) => {
                self.counters.count(|c| c.first_class_refused += 1);
                let code = known_write_error(code);
                Reply::Failed(Failure {
                    code,
                    message: refusal(code, &w.job.write.path, self.to),
                })
            }
        };
        let _ = w.job.reply.send(reply);
    }

    /// Writes whose answer is overdue fail with 121.
    fn expire(&mut self) {
        let now = Instant::now();
        let overdue: Vec<u16> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.deadline.is_some_and(|d| d <= now))
            .map(|(m, _)| *m)
            .collect();
        for mid in overdue {
            if let Some(w) = self.waiting.remove(&mid) {
                self.counters.count(|c| c.first_class_unanswered += 1);
                fail(
                    w.job,
                    SEM_TIMEOUT,
                    format!("{} did not answer in time", self.to),
                );
            }
        }
    }
}

fn refusal(code: u32, path: &str, to: SocketAddrV4) -> String {
    use mailslot::error::code::*;
    let why = match code {
        FILE_NOT_FOUND => "no such mailslot there",
        ACCESS_DENIED => "the mailslot refused it (it does not accept messages from other hosts)",
        INVALID_PARAMETER => "too large for the mailslot, or invalid",
        SEM_TIMEOUT => "timed out waiting for room in the mailslot",
        BROKEN_PIPE => "the mailslot was closed",
        _ => "refused",
    };
    format!("{to} answered for mailslot {path:?}: {why} (error {code})")
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The next frame of the link; pending forever without one.
async fn read(link: &mut Option<Link>) -> std::io::Result<Vec<u8>> {
    let Some(l) = link else {
        return std::future::pending().await;
    };
    match next_frame(&mut l.rd, &mut l.buf, MAX_ANSWER).await? {
        Some(f) => Ok(f),
        None => Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Connects and opens a session to `called`.
async fn connect(
    to: SocketAddrV4,
    called: &NetbiosName,
    calling: &NetbiosName,
) -> Result<Link, String> {
    let go = async {
        let stream = TcpStream::connect(to).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream);
        let (mut rd, mut wr) = stream.into_split();
        let req = SessionRequest {
            called: *called,
            calling: *calling,
        }
        .to_vec()
        .map_err(|e| e.to_string())?;
        wr.write_all(&req).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let frame = next_frame(&mut rd, &mut buf, MAX_ANSWER)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the peer closed the connection")?;
        let h = nbss::Header::parse(&frame).map_err(|e| e.to_string())?;
        match h.packet_type {
            PacketType::PositiveResponse => Ok(Link { rd, wr, buf }),
            PacketType::NegativeResponse => Err(format!(
                "the session service refused {} (negative response {:#04x})",
                called.name_lossy().trim_end(),
                frame.get(nbss::HEADER_LEN).copied().unwrap_or(0)
            )),
            other => Err(format!("unexpected session answer {other:?}")),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, go)
        .await
        .unwrap_or_else(|_| Err("no answer (timed out)".into()))
}

/// Keep-alive probes so that a peer that vanished is noticed while a write waits (forever).
fn set_keepalive(stream: &TcpStream) {
    let s = socket2::SockRef::from(stream);
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(3);
    let _ = s.set_tcp_keepalive(&ka);
}

/// The transaction frame of one write.
fn encode(job: &Job, mid: u16, write_id: [u8; 16]) -> Result<Vec<u8>, String> {
    let w = &job.write;
    let name = format!("{MAILSLOT_PREFIX}{}", w.path.to_ascii_uppercase());
    let header = SmbHeader {
        mid,
        ..SmbHeader::new(SMB_COM_TRANSACTION)
    };
    let smb = SessionMailslotWrite {
        header,
        name: name.as_bytes(),
        priority: u16::from(w.priority),
        class: if w.class == Class::First { 1 } else { 2 },
        timeout_ms: w
            .timeout_ms
            .map_or(u32::MAX, |ms| u32::try_from(ms).unwrap_or(u32::MAX - 1)),
        write_id,
        data: &w.data,
    }
    .to_vec()
    .map_err(|e| e.to_string())?;
    nbss::message(&smb).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use mailslot::Target;
    use tokio::net::TcpListener;

    use super::*;

    /// A peer's session service that answers every write "queued"; its address.
    async fn peer() -> SocketAddrV4 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut rd, mut wr) = s.into_split();
                    let mut buf = Vec::new();
                    // The session request, then writes.
                    if !matches!(next_frame(&mut rd, &mut buf, 1 << 17).await, Ok(Some(_))) {
                        return;
                    }
                    wr.write_all(&nbss::positive_response()).await.unwrap();
                    while let Ok(Some(f)) = next_frame(&mut rd, &mut buf, 1 << 17).await {
                        let w = SessionMailslotWrite::parse(&f[nbss::HEADER_LEN..]).unwrap();
                        let reply = TransactionReply::success(&w.header).to_vec();
                        let _ = wr.write_all(&nbss::message(&reply).unwrap()).await;
                    }
                });
            }
        });
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    fn job() -> (Job, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            called: NetbiosName::new("PEER", 0x20).unwrap(),
            calling: NetbiosName::new("ME", 0x20).unwrap(),
            write: RemoteWrite {
                target: Target::Host("PEER".into()),
                path: "jobs".into(),
                priority: 1,
                class: Class::First,
                timeout_ms: Some(1000),
                data: b"x".to_vec(),
            },
            reply: tx,
        };
        (job, rx)
    }

    async fn write(pool: &mut Pool, to: SocketAddrV4) -> Reply {
        let (job, rx) = job();
        pool.submit(to, job);
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits until the task of `to` has ended (its channel is closed).
    async fn retired(pool: &Pool, to: SocketAddrV4) {
        let t = Instant::now();
        while !pool.peers[&to].is_closed() {
            assert!(
                t.elapsed() < (IDLE + RETIRE) * 10,
                "the unused task of {to} stays"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn an_unused_peer_task_ends_and_the_next_write_starts_another() {
        let (a, b) = (peer().await, peer().await);
        let counters = Counters::default();
        let mut pool = Pool::new(counters.clone());
        assert_eq!(write(&mut pool, a).await, Reply::Written);
        retired(&pool, a).await;
        // The next write to it gets a new task (and connection); the ended one leaves the map.
        assert_eq!(write(&mut pool, b).await, Reply::Written);
        assert_eq!(pool.peers.len(), 1, "only b's task is kept");
        assert_eq!(write(&mut pool, a).await, Reply::Written);
        assert_eq!(counters.get().sessions_opened, 3);
        assert_eq!(counters.get().first_class_acknowledged, 3);
    }

    #[tokio::test]
    async fn writes_in_the_channel_when_it_closes_are_still_answered() {
        let to = peer().await;
        let (tx, rx) = mpsc::channel(MAX_PENDING);
        let mut peer = Peer {
            to,
            rx,
            ids: Arc::new(WriteIds {
                instance: [1; 8],
                next: AtomicU64::new(1),
            }),
            counters: Counters::default(),
            waiting: HashMap::new(),
            next_mid: 1,
            retiring: false,
        };
        let replies: Vec<_> = (0..3)
            .map(|_| {
                let (job, reply) = job();
                assert!(tx.try_send(job).is_ok());
                reply
            })
            .collect();
        // The task retires with three jobs in its channel, as when they arrive just as its
        // time is up; a job after that finds the channel closed (the pool starts a new task).
        peer.retire();
        assert!(matches!(
            tx.try_send(job().0),
            Err(mpsc::error::TrySendError::Closed(_))
        ));
        let run = tokio::spawn(peer.run());
        for reply in replies {
            let reply = tokio::time::timeout(Duration::from_secs(5), reply).await;
            assert_eq!(reply.unwrap().unwrap(), Reply::Written);
        }
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the task ends once they are answered")
            .unwrap();
    }
}
