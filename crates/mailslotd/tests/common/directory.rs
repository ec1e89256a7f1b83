//! Directory servers at abstract names of their own and plain-socket clients for them.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mailslot::daemon::DirectoryStatus;
use mailslot::directory::{Reply, Request, MAX_RECORD};
use mailslotd::directory::{DirectoryHandle, DirectoryLimits};
use mailslotd::DirectoryServer;
use socket2::{Domain, SockAddr, Socket, Type};

/// How long a client waits for an answer before the test fails.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// A directory serving at an abstract name no other test uses; stopped when dropped.
pub(crate) struct Directory {
    pub(crate) address: String,
    pub(crate) handle: DirectoryHandle,
}

impl Directory {
    pub(crate) fn start() -> Self {
        Self::with_limits(DirectoryLimits::default())
    }

    pub(crate) fn with_limits(limits: DirectoryLimits) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let address = format!(
            "mailslotd/test/directory/{}/{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let handle = DirectoryServer::bind_at(&address)
            .unwrap()
            .with_limits(limits)
            .spawn()
            .unwrap();
        Self { address, handle }
    }

    /// A new (blocking) connection.
    pub(crate) fn connect(&self) -> Client {
        Client::connect(&self.address).unwrap()
    }

    pub(crate) fn stats(&self) -> DirectoryStatus {
        self.handle.counters().snapshot()
    }
}

/// A process listener address for tests (never listened on: the directory does not connect).
pub(crate) fn listener_address(tag: &str) -> Vec<u8> {
    format!("mailslot/v1p/{}/{tag}", std::process::id()).into_bytes()
}

/// A key under a prefix of this process, so that tests running at once (and real mailslots)
/// never meet.
pub(crate) fn unique_key(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "mailslotd_test\\directory\\{}-{}\\{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connection to a directory.
pub(crate) struct Client(pub(crate) Socket);

impl Client {
    pub(crate) fn connect(address: &str) -> std::io::Result<Self> {
        let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        s.connect(&SockAddr::unix(format!("\0{address}"))?)?;
        s.set_read_timeout(Some(ANSWER_WAIT))?;
        s.set_write_timeout(Some(ANSWER_WAIT))?;
        Ok(Self(s))
    }

    /// Sends one raw record.
    pub(crate) fn send_raw(&self, bytes: &[u8]) {
        self.0.send_with_flags(bytes, libc::MSG_NOSIGNAL).unwrap();
    }

    /// The next reply; `None` when the directory closed the connection.
    pub(crate) fn recv(&self) -> Option<Reply> {
        let mut buf = vec![0u8; MAX_RECORD + 1];
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::ConnectionReset {
                return None;
            }
            panic!("no answer from the directory: {e}");
        }
        if n == 0 {
            return None;
        }
        Some(Reply::decode(&buf[..n as usize]).expect("a reply that decodes"))
    }

    /// Sends `req` and returns the answer (panics when the connection closes).
    pub(crate) fn call(&self, req: &Request) -> Reply {
        self.send_raw(&req.encode());
        self.recv().expect("the directory closed the connection")
    }

    pub(crate) fn owner(&self, tag: &str) -> Vec<u8> {
        let address = listener_address(tag);
        assert_eq!(
            self.call(&Request::Owner {
                address: address.clone()
            }),
            Reply::Done
        );
        address
    }

    pub(crate) fn register(&self, id: u64, key: &str) -> Reply {
        self.call(&Request::Register {
            id,
            key: key.into(),
        })
    }

    pub(crate) fn lookup(&self, key: &str) -> Reply {
        self.call(&Request::Lookup { key: key.into() })
    }
}

/// The Win32 failure code `code`.
pub(crate) fn failed(code: u32) -> Reply {
    Reply::Failed { code }
}
