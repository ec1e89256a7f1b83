//! The daemon beside Samba's `nmbd` ("beside Samba" mode): finding nmbd's "unexpected" socket,
//! reading the host's names from Samba's configuration (`testparm`), and the client of that
//! socket, which feeds the daemon's loop each datagram nmbd relays ([`Command::Relayed`]) and
//! reconnects with a backoff when nmbd restarts.
//!
//! The wire format of the socket (query, relay header) is parsed without I/O in
//! [`mailslot_router::nmbd`]; what to do with a relayed datagram is the router's
//! ([`Router::accept_relayed`](mailslot_router::Router::accept_relayed)).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use mailslot_router::nmbd::{self, RelayError, RelayHeader};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::daemon::Command;

/// Debian's (and Samba's default) path of the socket.
pub const DEFAULT_SOCKET: &str = "/run/samba/nmbd/unexpected";
/// How long nmbd may take to acknowledge the query.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// First wait before reconnecting.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What the client of the unexpected socket tells the daemon's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SambaEvent {
    /// Connected, and nmbd acknowledged the query.
    Connected,
    /// The connection ended (nmbd stopped or restarted); reconnecting.
    Disconnected,
}

/// Why a session on the unexpected socket ended.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Connecting, writing the query or reading failed (or nmbd closed the socket).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// nmbd did not acknowledge the query in time, or not with 0.
    #[error("nmbd did not acknowledge the query")]
    NoAck,
    /// The stream is out of step.
    #[error("bad relay header: {0}")]
    Header(#[from] RelayError),
    /// The daemon stopped.
    #[error("the daemon stopped")]
    Stopped,
}

/// The socket's path: `configured`, else `nmbd:socket dir` from Samba's configuration, else the
/// `NMBDSOCKETDIR` Samba was built with (`smbd -b`), else [`DEFAULT_SOCKET`].
pub fn socket_path(configured: Option<&Path>, smb_conf: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(dir) = testparm(smb_conf, "nmbd:socket dir").filter(|d| !d.is_empty()) {
        return Path::new(&dir).join("unexpected");
    }
    let built = Process::new("smbd")
        .arg("-b")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|out| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix("NMBDSOCKETDIR:").map(str::trim))
                .map(|d| Path::new(d).join("unexpected"))
        });
    built.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// One parameter of Samba's configuration (`testparm -s --parameter-name=NAME [smb.conf]`);
/// `None` when testparm is missing or fails.
pub fn testparm(smb_conf: Option<&Path>, name: &str) -> Option<String> {
    let mut cmd = Process::new("testparm");
    cmd.arg("-s").arg(format!("--parameter-name={name}"));
    if let Some(c) = smb_conf {
        cmd.arg(c);
    }
    let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The host's names as Samba holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SambaNames {
    /// `netbios name`, upper case.
    pub netbios_name: Option<String>,
    /// `workgroup`, upper case.
    pub workgroup: Option<String>,
    /// `netbios aliases`, upper case.
    pub aliases: Vec<String>,
}

/// Reads the names from Samba's configuration.
pub fn samba_names(smb_conf: Option<&Path>) -> SambaNames {
    let upper = |s: String| Some(s.to_ascii_uppercase()).filter(|s| !s.is_empty());
    SambaNames {
        netbios_name: testparm(smb_conf, "netbios name").and_then(upper),
        workgroup: testparm(smb_conf, "workgroup").and_then(upper),
        aliases: testparm(smb_conf, "netbios aliases")
            .map(|s| parse_list(&s))
            .unwrap_or_default(),
    }
}

/// A Samba list value (separated by spaces, commas or tabs), upper case.
fn parse_list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

/// What [`probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// nmbd answers, and runs in this network namespace.
    Answers,
    /// nmbd answers, but runs in another network namespace (its ports are not ours to share).
    OtherNamespace,
    /// Nothing answers.
    Silent,
}

/// Does nmbd answer on `path`, in this network namespace? (Connects, sends the query, waits for
/// the acknowledgement, compares the peer's network namespace with ours.)
pub fn probe(path: &Path) -> Probe {
    let run = || -> std::io::Result<Probe> {
        let mut s = std::os::unix::net::UnixStream::connect(path)?;
        s.set_read_timeout(Some(ACK_TIMEOUT))?;
        s.write_all(&nmbd::datagram_query())?;
        let mut ack = [1u8; 1];
        s.read_exact(&mut ack)?;
        if ack[0] != nmbd::QUERY_ACK {
            return Ok(Probe::Silent);
        }
        let peer = mailslot::trusted::Caller::of_peer(&s)?;
        let ours = std::fs::read_link("/proc/self/ns/net")?;
        // Unreadable (not root): assume the same namespace.
        Ok(
            match std::fs::read_link(format!("/proc/{}/ns/net", peer.pid)) {
                Ok(theirs) if theirs != ours => Probe::OtherNamespace,
                _ => Probe::Answers,
            },
        )
    };
    run().unwrap_or(Probe::Silent)
}

/// Runs the client of nmbd's unexpected socket at `path` until the daemon stops.
pub fn spawn(path: PathBuf, tx: mpsc::Sender<Command>) {
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            let r = session(&path, &tx, &mut backoff).await;
            match r {
                Err(SessionError::Stopped) => return,
                Err(e) => debug!("nmbd unexpected socket {}: {e}", path.display()),
                Ok(()) => {}
            }
            if tx
                .send(Command::Samba(SambaEvent::Disconnected))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// One connection: the query, the acknowledgement, then relayed datagrams until it ends.
async fn session(
    path: &Path,
    tx: &mpsc::Sender<Command>,
    backoff: &mut Duration,
) -> Result<(), SessionError> {
    let mut s = tokio::net::UnixStream::connect(path).await?;
    s.write_all(&nmbd::datagram_query()).await?;
    // Never write after the query (nmbd takes anything more as a broken client).
    let mut ack = [1u8; 1];
    match tokio::time::timeout(ACK_TIMEOUT, s.read_exact(&mut ack)).await {
        Ok(Ok(_)) if ack[0] == nmbd::QUERY_ACK => {}
        Ok(Err(e)) => return Err(e.into()),
        _ => return Err(SessionError::NoAck),
    }
    info!(
        "receiving through nmbd's unexpected socket {}",
        path.display()
    );
    tx.send(Command::Samba(SambaEvent::Connected))
        .await
        .map_err(|_| SessionError::Stopped)?;
    *backoff = MIN_BACKOFF;
    let mut header = [0u8; nmbd::HEADER_LEN];
    loop {
        if let Err(e) = s.read_exact(&mut header).await {
            warn!("nmbd closed its unexpected socket ({e}); reconnecting");
            return Ok(());
        }
        let h = RelayHeader::parse(&header)?;
        let mut datagram = vec![0u8; h.len];
        s.read_exact(&mut datagram).await?;
        if h.kind != nmbd::DGRAM_PACKET {
            continue;
        }
        tx.send(Command::Relayed {
            source: h.source,
            datagram,
        })
        .await
        .map_err(|_| SessionError::Stopped)?;
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// A fake nmbd: takes the query, acknowledges it, relays one datagram, closes; then the
    /// same again (an nmbd restart). The client relays both and reconnects in between.
    #[tokio::test]
    async fn relays_and_reconnects_after_nmbd_closes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = std::env::temp_dir().join(format!("mailslotd-samba-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("unexpected");
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        spawn(path.clone(), tx);
        for round in 0..2u8 {
            let (mut c, _) = listener.accept().await.unwrap();
            let mut q = [0u8; nmbd::QUERY_LEN];
            c.read_exact(&mut q).await.unwrap();
            assert_eq!(q, nmbd::datagram_query());
            c.write_all(&[nmbd::QUERY_ACK]).await.unwrap();
            let body = [round; 5];
            let mut h = vec![0u8; nmbd::HEADER_LEN];
            h[..size_of::<usize>()].copy_from_slice(&body.len().to_ne_bytes());
            let kind_at = size_of::<usize>();
            h[kind_at..kind_at + 4].copy_from_slice(&nmbd::DGRAM_PACKET.to_ne_bytes());
            let ip_at = nmbd::HEADER_LEN - 8;
            h[ip_at..ip_at + 4].copy_from_slice(&[10, 0, 0, 7]);
            h[ip_at + 4..].copy_from_slice(&138i32.to_ne_bytes());
            c.write_all(&h).await.unwrap();
            c.write_all(&body).await.unwrap();
            assert!(matches!(
                rx.recv().await,
                Some(Command::Samba(SambaEvent::Connected))
            ));
            match rx.recv().await {
                Some(Command::Relayed { source, datagram }) => {
                    assert_eq!(source, "10.0.0.7:138".parse().unwrap());
                    assert_eq!(datagram, body);
                }
                other => panic!("{other:?}"),
            }
            drop(c);
            assert!(matches!(
                rx.recv().await,
                Some(Command::Samba(SambaEvent::Disconnected))
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("alias1, Alias2\tx"), ["ALIAS1", "ALIAS2", "X"]);
        assert!(parse_list("").is_empty());
    }
}
