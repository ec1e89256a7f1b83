//! Mailslots as files: a FUSE filesystem that shows the host's mailslots (this network
//! namespace) as a tree, live.
//!
//! `\\.\mailslot\app\events` is the file `app/events` under the mount point (names compare
//! case-insensitively; they are listed in lower case).
//!
//! | what | how |
//! |---|---|
//! | write one message | `write(2)` on a file opened `O_WRONLY`: each call is one message; larger than the slot's maximum: `EMSGSIZE`, nothing queued; slot full: `EAGAIN` |
//! | priority | open `app/events:P` (P = 0–9; `:` cannot occur in a mailslot name) instead of `app/events`; default 0 |
//! | first class | open with `O_SYNC` or `O_DSYNC` (`dd oflag=sync`): a write to a full slot waits for room instead of failing |
//! | create and own | `open(O_RDONLY\|O_CREAT)` or `open(O_RDWR\|O_CREAT)` of a name that does not exist creates the mailslot, owned by that open file; the create mode's write bits choose who may write: `o+w` everyone, `g+w` the creator's group, else the creator's user (and root) |
//! | read | each `read(2)` returns one whole message, highest priority first; a buffer too small: `EMSGSIZE`, the message stays; `O_NONBLOCK` and empty: `EAGAIN`; `poll`/`select` report readability |
//! | delete | the mailslot disappears when the last descriptor of that open file closes |
//! | stat | `st_size` = size of the next message (0 when empty), extended attributes `user.mailslot.count`, `user.mailslot.next_size`, `user.mailslot.next_priority`, `user.mailslot.max_message_size` — of every local mailslot: from the handle of one created through the mount, else asked of its owner (the file view is a trusted writer: `MailslotWriter::queue_state`) |
//! | directories | the levels of existing names; `mkdir` makes an empty level to create mailslots in (kept in memory while the mount lives) |
//! | other hosts | `.net/COMPUTER/x` is `\\COMPUTER\mailslot\x`, `.net/DOMAIN/x` is `\\DOMAIN\mailslot\x`, `.net/*/x` is `\\*\mailslot\x`: write-only, through the mailslot daemon (`mailslotd`); deeper names need their levels made with `mkdir -p` first (`mkdir -p .net/HOSTB/net` for `\\HOSTB\mailslot\net\x`); nothing is listed (the names of other hosts are not known here) |
//!
//! Errors: a missing mailslot `ENOENT`; a caller the mailslot's access policy does not admit, or an
//! open for reading of a mailslot that exists: `EACCES`; the owner gone while the file is open:
//! `EPIPE`. Under `.net`: more than one datagram carries (`432 − roundup4(path)` bytes, 424 for
//! most names): `EMSGSIZE`; the name does not resolve: `EHOSTUNREACH`; no daemon running:
//! `ECONNREFUSED`; an invalid computer name: `ENOENT`.
//!
//! # Security
//! The filesystem runs as root and mounts with `allow_other`, without `default_permissions`: the
//! mailslot's own policy decides, applied to the process that made the request (FUSE tells its
//! pid, uid and gid; supplementary groups are read from `/proc/<pid>/status`). Messages are written
//! with [`mailslot::MailslotWriter::write_on_behalf`], so the recorded sender is the calling
//! process and the owner checks the policy again (see [`mailslot::trusted`]).
//!
//! # Limits
//! A mailslot whose name is also a level of another mailslot's name (`a` and `a\b`) shows as a
//! directory only. A blocked `read(2)` whose process is killed may take one message with it
//! (FUSE has no way to hand it back).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, PollEvents, PollFlags, PollNotifier,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyPoll, ReplyWrite, ReplyXattr, Request, WriteFlags,
};
use mailslot::trusted::{Caller, QueueState};
use mailslot::{
    Access, Class, Mailslot, MailslotWriter, OpenError, ReadError, Timeout, WriteError,
    WriteOptions,
};

const ROOT: u64 = 1;
/// The directory of remote names.
const NET: &str = ".net";
/// Attributes and entries are not cached: the tree is live.
const TTL: Duration = Duration::ZERO;
/// How long a blocked read or a poll watcher waits before it looks whether its file was closed.
const SLICE: Duration = Duration::from_millis(100);
/// How long opening a writer waits for the owner's process.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stat` waits for the owner of a mailslot created elsewhere to say what it holds.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a connection `stat` or `getxattr` asked on is kept without a question.
const QUERIER_IDLE: Duration = Duration::from_secs(10);
/// Most connections kept for `stat`.
const QUERIERS_MAX: usize = 256;

/// What a path of the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    /// A mailslot; `priority` from a `:P` suffix.
    Slot {
        owner_uid: u32,
        priority: u8,
    },
}

/// An open file.
enum Handle {
    Writer(WriterFile),
    Owner(Arc<OwnerFile>),
}

struct WriterFile {
    writer: Arc<MailslotWriter>,
    priority: u8,
    class: Class,
}

/// A mailslot created through the mount, owned by one open file.
struct OwnerFile {
    slot: Mailslot,
    key: String,
    /// The creator's uid (the policy's owner).
    owner_uid: u32,
    /// For writes on an `O_RDWR` file, opened on first use.
    writer: Mutex<Option<MailslotWriter>>,
    priority: u8,
    class: Class,
    closed: AtomicBool,
    /// A poll waiting to be told that a message is ready.
    poll: Mutex<Option<PollNotifier>>,
    watcher: AtomicBool,
}

#[derive(Default)]
struct Tables {
    ino_of: HashMap<String, u64>,
    path_of: HashMap<u64, String>,
    next_ino: u64,
    /// Levels made with `mkdir`.
    dirs: HashSet<String>,
}

/// A connection `stat` or `getxattr` asked a mailslot's owner on, kept for the next question
/// about that mailslot (a new connection costs the owner a ring; `ls -l` asks of every
/// mailslot, often twice).
struct Querier {
    /// Locked while asking: one question at a time on a connection.
    writer: Arc<Mutex<MailslotWriter>>,
    used: Instant,
}

/// The kept connections, by mailslot name: at most [`QUERIERS_MAX`], each let go after
/// [`QUERIER_IDLE`] without a question.
#[derive(Default)]
struct Queriers(HashMap<String, Querier>);

impl Queriers {
    /// The kept connection for `name`, if it was used recently.
    fn get(&mut self, name: &str, now: Instant) -> Option<Arc<Mutex<MailslotWriter>>> {
        self.0
            .retain(|_, q| now.duration_since(q.used) < QUERIER_IDLE);
        let q = self.0.get_mut(name)?;
        q.used = now;
        Some(q.writer.clone())
    }

    /// Keeps `writer` for `name` (the least recently used one goes when there are too many).
    fn keep(&mut self, name: String, writer: Arc<Mutex<MailslotWriter>>, now: Instant) {
        if self.0.len() >= QUERIERS_MAX && !self.0.contains_key(&name) {
            if let Some(oldest) = self
                .0
                .iter()
                .min_by_key(|(_, q)| q.used)
                .map(|(k, _)| k.clone())
            {
                self.0.remove(&oldest);
            }
        }
        self.0.insert(name, Querier { writer, used: now });
    }

    fn forget(&mut self, name: &str) {
        self.0.remove(name);
    }
}

/// The filesystem: [`run`] mounts one (or give it to `fuser` directly).
pub struct MailslotFs {
    tables: Mutex<Tables>,
    handles: Mutex<HashMap<u64, Handle>>,
    /// Slots created through the mount, by path.
    owned: Mutex<HashMap<String, std::sync::Weak<OwnerFile>>>,
    /// Connections that `stat` and `getxattr` ask other owners on (see [`MailslotFs::querier`]).
    queriers: Mutex<Queriers>,
    /// The library refused this process's questions to owners (it is not trusted).
    queries_refused: AtomicBool,
    next_fh: AtomicU64,
    uid: u32,
    gid: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `app/events` → `\\.\mailslot\app\events`; `.net/HOSTB/chat` → `\\HOSTB\mailslot\chat`.
fn slot_name(path: &str) -> String {
    match remote_parts(path) {
        Some((host, Some(rest))) => format!(r"\\{host}\mailslot\{}", rest.replace('/', "\\")),
        _ => format!(r"\\.\mailslot\{}", path.replace('/', "\\")),
    }
}

/// `.net/HOST[/rest]` → (HOST, rest).
fn remote_parts(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = path.strip_prefix(NET)?;
    if rest.is_empty() {
        return None;
    }
    let rest = rest.strip_prefix('/')?;
    Some(match rest.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (rest, None),
    })
}

/// The path without its `:P` priority suffix (as it is when it has none, or an invalid one).
fn without_priority(path: &str) -> &str {
    split_priority(path).map_or(path, |(b, _)| b)
}

/// Splits a `:P` priority suffix off the last level.
fn split_priority(path: &str) -> Option<(&str, u8)> {
    match path.rsplit_once(':') {
        None => Some((path, 0)),
        Some((base, p)) if p.len() == 1 && !base.is_empty() => {
            let d = p.as_bytes()[0];
            d.is_ascii_digit().then_some((base, d - b'0'))
        }
        Some(_) => None,
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

fn write_errno(e: &WriteError) -> Errno {
    match e {
        WriteError::TooLarge { .. } | WriteError::TooLargeForNetwork { .. } => Errno::EMSGSIZE,
        // ERROR_BAD_NETPATH: the name did not resolve.
        WriteError::Network { code: 53, .. } => Errno::EHOSTUNREACH,
        WriteError::Network { .. } => Errno::EIO,
        WriteError::Full | WriteError::Timeout => Errno::EAGAIN,
        WriteError::OwnerGone => Errno::EPIPE,
        WriteError::InvalidPriority(_) => Errno::EINVAL,
        WriteError::Open(o) => open_errno(o),
        _ => Errno::EIO,
    }
}

fn open_errno(e: &OpenError) -> Errno {
    match e {
        OpenError::NotFound(_) => Errno::ENOENT,
        OpenError::AccessDenied(_) => Errno::EACCES,
        OpenError::InvalidName(_) => Errno::EINVAL,
        OpenError::Busy(_) => Errno::EBUSY,
        OpenError::NotResponding(_) => Errno::ETIMEDOUT,
        OpenError::OwnerNotAllowed { .. } => Errno::EACCES,
        _ => Errno::EIO,
    }
}

impl Default for MailslotFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MailslotFs {
    /// A filesystem showing this host's mailslots.
    pub fn new() -> Self {
        let mut t = Tables {
            next_ino: ROOT + 1,
            ..Tables::default()
        };
        t.ino_of.insert(String::new(), ROOT);
        t.path_of.insert(ROOT, String::new());
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            tables: Mutex::new(t),
            handles: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashMap::new()),
            queriers: Mutex::new(Queriers::default()),
            queries_refused: AtomicBool::new(false),
            next_fh: AtomicU64::new(1),
            uid,
            gid,
        }
    }

    fn ino(&self, path: &str) -> u64 {
        let mut t = lock(&self.tables);
        if let Some(&i) = t.ino_of.get(path) {
            return i;
        }
        let i = t.next_ino;
        t.next_ino += 1;
        t.ino_of.insert(path.to_string(), i);
        t.path_of.insert(i, path.to_string());
        i
    }

    fn path(&self, ino: INodeNo) -> Option<String> {
        lock(&self.tables).path_of.get(&ino.0).cloned()
    }

    /// The path of `name` in the directory `parent` (lower case): `ENOENT` when the directory is
    /// unknown, `bad_name` when the name is not UTF-8.
    fn child_path(&self, parent: INodeNo, name: &OsStr, bad_name: Errno) -> Result<String, Errno> {
        let pp = self.path(parent).ok_or(Errno::ENOENT)?;
        let name = std::str::from_utf8(name.as_bytes()).map_err(|_| bad_name)?;
        Ok(join(&pp, &name.to_ascii_lowercase()))
    }

    /// The host's mailslots: path → owner uid.
    fn slots(&self) -> HashMap<String, u32> {
        let mut m: HashMap<String, u32> = mailslot::list()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name.key().replace('\\', "/"), e.owner_uid.unwrap_or(0)))
            .collect();
        for (k, o) in lock(&self.owned).iter() {
            if let Some(o) = o.upgrade() {
                m.insert(k.clone(), o.owner_uid);
            }
        }
        m
    }

    fn node(&self, path: &str) -> Option<Node> {
        if path.is_empty() || path == NET {
            return Some(Node::Dir);
        }
        if let Some((host, rest)) = remote_parts(path) {
            let probe = match rest {
                None => format!(r"\\{host}\mailslot\x"),
                Some(_) => slot_name(without_priority(path)),
            };
            if mailslot::Name::parse(&probe).is_err() {
                return None;
            }
            return match rest {
                None => Some(Node::Dir),
                Some(_) if lock(&self.tables).dirs.contains(path) => Some(Node::Dir),
                // Remote mailslots are not owned here: priority from the suffix.
                Some(_) => split_priority(path).map(|(_, priority)| Node::Slot {
                    owner_uid: self.uid,
                    priority,
                }),
            };
        }
        let slots = self.slots();
        let prefix = format!("{path}/");
        if lock(&self.tables).dirs.contains(path) || slots.keys().any(|k| k.starts_with(&prefix)) {
            return Some(Node::Dir);
        }
        let (base, priority) = split_priority(path)?;
        slots.get(base).map(|&owner_uid| Node::Slot {
            owner_uid,
            priority,
        })
    }

    /// What the queue of the mailslot at `path` holds: from its handle when it was created
    /// through the mount, else asked of its owner (the file view is a trusted writer; an owner
    /// that does not answer within [`QUERY_TIMEOUT`] gives `None`).
    fn queue_state(&self, path: &str) -> Option<QueueState> {
        if let Some(o) = self.owner_file(path) {
            let i = o.slot.info();
            return Some(QueueState {
                count: i.count,
                next_size: i.next_size,
                next_priority: i.next_priority,
            });
        }
        if remote_parts(path).is_some() {
            return None; // write-only names of other hosts
        }
        if self.queries_refused.load(Ordering::Relaxed) {
            return None; // owners answer only root and the daemon's user
        }
        let name = slot_name(without_priority(path));
        // A kept connection whose owner did not answer (it may have just gone) is let go, and
        // the question asked once more on a new one.
        loop {
            let (w, kept) = self.querier(&name)?;
            let answer = lock(&w).queue_state(QUERY_TIMEOUT);
            match answer {
                Ok(q) => return Some(q),
                Err(e) => {
                    lock(&self.queriers).forget(&name);
                    if let WriteError::Open(OpenError::AccessDenied(_)) = e {
                        // This process may not ask (not root, not the daemon's user): never again.
                        self.queries_refused.store(true, Ordering::Relaxed);
                        return None;
                    }
                    if !kept {
                        return None;
                    }
                }
            }
        }
    }

    /// The connection this view asks the owner of `name` on (see [`Queriers`]): the one it
    /// keeps while that owner is there (`true`), else a new one (`false`), kept from now on. So
    /// that `stat` and `getxattr` do not make the owner accept a writer (and make its ring)
    /// for every question. `None` when the mailslot cannot be opened.
    fn querier(&self, name: &str) -> Option<(Arc<Mutex<MailslotWriter>>, bool)> {
        let now = Instant::now();
        let kept = lock(&self.queriers).get(name, now);
        if let Some(w) = kept {
            if !lock(&w).owner_gone() {
                return Some((w, true));
            }
            lock(&self.queriers).forget(name);
        }
        let w = Arc::new(Mutex::new(
            MailslotWriter::open_timeout(name, QUERY_TIMEOUT).ok()?,
        ));
        lock(&self.queriers).keep(name.to_string(), w.clone(), now);
        Some((w, false))
    }

    fn owner_file(&self, path: &str) -> Option<Arc<OwnerFile>> {
        lock(&self.owned)
            .get(without_priority(path))
            .and_then(std::sync::Weak::upgrade)
    }

    fn attr(&self, ino: u64, path: &str, node: &Node) -> FileAttr {
        let now = SystemTime::now();
        let (kind, perm, nlink, size, uid) = match node {
            Node::Dir => (FileType::Directory, 0o755, 2, 0, self.uid),
            Node::Slot { owner_uid, .. } => {
                let size = self
                    .queue_state(path)
                    .and_then(|q| q.next_size)
                    .unwrap_or(0);
                (FileType::RegularFile, 0o666, 1, size as u64, *owner_uid)
            }
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm,
            nlink,
            uid,
            gid: if uid == self.uid { self.gid } else { uid },
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn new_fh(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, h);
        fh
    }

    fn open_flags() -> FopenFlags {
        // One FUSE request per read(2)/write(2), no page cache, no seeking.
        FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NONSEEKABLE
    }
}

fn class_of(flags: i32) -> Class {
    if flags & (libc::O_SYNC | libc::O_DSYNC) != 0 {
        Class::First
    } else {
        Class::Second
    }
}

fn caller_admitted(w: &MailslotWriter, req: &Request) -> bool {
    w.admits(req.uid(), req.gid(), &[])
        || w.admits(
            req.uid(),
            req.gid(),
            &mailslot::trusted::caller_groups(req.pid()).unwrap_or_default(),
        )
}

/// Writes one message for the caller of `req`.
fn write_for(
    w: &MailslotWriter,
    req: &Request,
    data: &[u8],
    priority: u8,
    class: Class,
    timeout: Timeout,
) -> Result<(), WriteError> {
    if !w.name().is_local() {
        // To another host: the sender there is this host, as for any remote write.
        let opts = WriteOptions::new().priority(priority).class(class);
        return w.write_with(data, opts);
    }
    let mut caller = Caller {
        pid: req.pid(),
        uid: req.uid(),
        gid: req.gid(),
        groups: Vec::new(),
    };
    if !w.admits(caller.uid, caller.gid, &[]) {
        caller.groups = mailslot::trusted::caller_groups(caller.pid).unwrap_or_default();
    }
    let opts = WriteOptions::new()
        .priority(priority)
        .class(class)
        .timeout(timeout);
    w.write_on_behalf(data, opts, &caller)
}

impl OwnerFile {
    /// Starts (once) the thread that tells a waiting poll when a message is ready.
    fn watch(self: &Arc<Self>) {
        if self.watcher.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            let fd = me.slot.as_raw_fd();
            while !me.closed.load(Ordering::SeqCst) {
                if lock(&me.poll).is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                if me.slot.info().count > 0 {
                    if let Some(ph) = lock(&me.poll).take() {
                        let _ = ph.notify();
                    }
                    continue;
                }
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; the descriptor lives as long as `me.slot`.
                unsafe { libc::poll(&mut pfd, 1, SLICE.as_millis() as i32) };
            }
        });
    }
}

impl Filesystem for MailslotFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Every write(2) of up to a whole message must arrive as one request.
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let path = match self.child_path(parent, name, Errno::ENOENT) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        match self.node(&path) {
            Some(n) => {
                let ino = self.ino(&path);
                reply.entry(&TTL, &self.attr(ino, &path, &n), Generation(0));
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(path) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.node(&path) {
            Some(n) => reply.attr(&TTL, &self.attr(ino.0, &path, &n)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Truncation (`>` in a shell) and times mean nothing for a mailslot: accepted, ignored.
        self.getattr(req, ino, fh, reply);
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let path = match self.child_path(parent, name, Errno::EINVAL) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if self.node(&path).is_some() {
            return reply.error(Errno::EEXIST);
        }
        // The level must be valid in a name, with room for one more level.
        if mailslot::Name::local(&format!("{path}/x")).is_err() {
            return reply.error(Errno::EINVAL);
        }
        lock(&self.tables).dirs.insert(path.clone());
        let ino = self.ino(&path);
        reply.entry(&TTL, &self.attr(ino, &path, &Node::Dir), Generation(0));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(pp) = self.path(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let path = join(
            &pp,
            &String::from_utf8_lossy(name.as_bytes()).to_ascii_lowercase(),
        );
        let prefix = format!("{path}/");
        if self.slots().keys().any(|k| k.starts_with(&prefix))
            || lock(&self.tables)
                .dirs
                .iter()
                .any(|d| d.starts_with(&prefix))
        {
            return reply.error(Errno::ENOTEMPTY);
        }
        if lock(&self.tables).dirs.remove(&path) {
            reply.ok();
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(path) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(Node::Slot { priority, .. }) = self.node(&path) else {
            return match self.node(&path) {
                Some(Node::Dir) => reply.error(Errno::EISDIR),
                _ => reply.error(Errno::ENOENT),
            };
        };
        if flags.acc_mode() != OpenAccMode::O_WRONLY {
            // Only the open file that created a mailslot reads it; remote ones are write-only.
            return reply.error(Errno::EACCES);
        }
        let writer =
            match MailslotWriter::open_timeout(&slot_name(without_priority(&path)), OPEN_TIMEOUT) {
                Ok(w) => w,
                Err(OpenError::Remote { .. }) => return reply.error(Errno::ECONNREFUSED),
                Err(e) => return reply.error(open_errno(&e)),
            };
        if !caller_admitted(&writer, req) {
            return reply.error(Errno::EACCES);
        }
        let fh = self.new_fh(Handle::Writer(WriterFile {
            writer: Arc::new(writer),
            priority,
            class: class_of(flags.0),
        }));
        reply.opened(FileHandle(fh), Self::open_flags());
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let path = match self.child_path(parent, name, Errno::EINVAL) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if remote_parts(&path).is_some() || path == NET {
            // Mailslots are made on their own host.
            return reply.error(Errno::EACCES);
        }
        if flags & libc::O_ACCMODE == libc::O_WRONLY {
            // Writers do not create mailslots.
            return reply.error(Errno::ENOENT);
        }
        let Some((base, priority)) = split_priority(&path) else {
            return reply.error(Errno::EINVAL);
        };
        let mode = mode & !umask;
        let access = if mode & 0o002 != 0 {
            Access::Everyone
        } else if mode & 0o020 != 0 {
            Access::Group(req.gid())
        } else {
            Access::Owner
        };
        let slot = match Mailslot::builder().access(access).create_for_caller(
            &slot_name(base),
            &Caller::from_pid(req.pid(), req.uid(), req.gid()),
        ) {
            Ok(s) => s,
            Err(mailslot::CreateError::AlreadyExists(_)) => return reply.error(Errno::EEXIST),
            Err(mailslot::CreateError::NotAllowed { .. }) => return reply.error(Errno::EACCES),
            Err(mailslot::CreateError::InvalidName(mailslot::NameError::TooLong { .. })) => {
                return reply.error(Errno::ENAMETOOLONG)
            }
            Err(mailslot::CreateError::InvalidName(_)) => return reply.error(Errno::EINVAL),
            Err(_) => return reply.error(Errno::EIO),
        };
        let file = Arc::new(OwnerFile {
            slot,
            key: base.to_string(),
            owner_uid: req.uid(),
            writer: Mutex::new(None),
            priority,
            class: class_of(flags),
            closed: AtomicBool::new(false),
            poll: Mutex::new(None),
            watcher: AtomicBool::new(false),
        });
        lock(&self.owned).insert(base.to_string(), Arc::downgrade(&file));
        let node = Node::Slot {
            owner_uid: req.uid(),
            priority,
        };
        let ino = self.ino(&path);
        let attr = self.attr(ino, &path, &node);
        let fh = self.new_fh(Handle::Owner(file));
        reply.created(
            &TTL,
            &attr,
            Generation(0),
            FileHandle(fh),
            Self::open_flags(),
        );
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let file = match lock(&self.handles).get(&fh.0) {
            Some(Handle::Owner(o)) => Arc::clone(o),
            Some(Handle::Writer(_)) => return reply.error(Errno::EBADF),
            None => return reply.error(Errno::EBADF),
        };
        let mut buf = vec![0u8; size as usize];
        if flags.0 & libc::O_NONBLOCK != 0 {
            return match file.slot.read_timeout_with(&mut buf, Timeout::ZERO) {
                Ok(r) => reply.data(&buf[..r.len]),
                Err(e) => reply.error(read_errno(&e)),
            };
        }
        // Blocking: wait on a thread of its own, so that the filesystem goes on serving.
        let pid = req.pid();
        std::thread::spawn(move || loop {
            if file.closed.load(Ordering::SeqCst) {
                return reply.error(Errno::EBADF);
            }
            if interrupted(pid) {
                return reply.error(Errno::EINTR);
            }
            match file.slot.read_timeout_with(&mut buf, Timeout::After(SLICE)) {
                Ok(r) => return reply.data(&buf[..r.len]),
                Err(ReadError::Timeout) => continue,
                Err(e) => return reply.error(read_errno(&e)),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let handles = lock(&self.handles);
        let r = match handles.get(&fh.0) {
            Some(Handle::Writer(w)) => {
                if w.class == Class::First && w.writer.name().is_local() {
                    // With room, at once; waiting for room is not for the filesystem's thread.
                    match write_for(
                        &w.writer,
                        req,
                        data,
                        w.priority,
                        Class::First,
                        Timeout::ZERO,
                    ) {
                        Err(WriteError::Timeout) => {}
                        Ok(()) => return reply.written(data.len() as u32),
                        Err(e) => return reply.error(write_errno(&e)),
                    }
                    let data = data.to_vec();
                    let caller = (req.pid(), req.uid(), req.gid());
                    let (writer, priority) = (Arc::clone(&w.writer), w.priority);
                    drop(handles);
                    return first_class_write(writer, priority, caller, data, reply);
                }
                write_for(&w.writer, req, data, w.priority, w.class, Timeout::Forever)
            }
            Some(Handle::Owner(o)) => {
                let o = Arc::clone(o);
                drop(handles);
                let mut wg = lock(&o.writer);
                if wg.is_none() {
                    match MailslotWriter::open_timeout(&slot_name(&o.key), OPEN_TIMEOUT) {
                        Ok(w) => *wg = Some(w),
                        Err(e) => return reply.error(open_errno(&e)),
                    }
                }
                let class = if o.class == Class::First {
                    // Writing to a full slot one reads oneself would wait for ever.
                    Class::Second
                } else {
                    o.class
                };
                write_for(
                    wg.as_ref().expect("opened"),
                    req,
                    data,
                    o.priority,
                    class,
                    Timeout::Forever,
                )
            }
            None => return reply.error(Errno::EBADF),
        };
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(write_errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let h = lock(&self.handles).remove(&fh.0);
        if let Some(Handle::Owner(o)) = h {
            o.closed.store(true, Ordering::SeqCst);
            let mut owned = lock(&self.owned);
            if owned
                .get(&o.key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&o)))
            {
                owned.remove(&o.key);
            }
            drop(owned);
            *lock(&o.writer) = None;
            // Dropping the last reference deletes the mailslot (a blocked read ends within a
            // slice and lets go of its own).
            drop(o);
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(path) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if self.node(&path) != Some(Node::Dir) {
            return reply.error(Errno::ENOTDIR);
        }
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let slots = self.slots();
        let dirs: Vec<String> = lock(&self.tables).dirs.iter().cloned().collect();
        let mut children: std::collections::BTreeMap<String, FileType> = Default::default();
        for k in slots.keys().chain(dirs.iter()) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let (first, more) = match rest.split_once('/') {
                Some((f, _)) => (f, true),
                None => (rest, dirs.contains(k)),
            };
            let kind = if more {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            let e = children.entry(first.to_string()).or_insert(kind);
            if kind == FileType::Directory {
                *e = FileType::Directory;
            }
        }
        let parent_ino = match path.rsplit_once('/') {
            Some((p, _)) => self.ino(p),
            None => ROOT,
        };
        let mut entries: Vec<(u64, FileType, String)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (parent_ino, FileType::Directory, "..".into()),
        ];
        if path.is_empty() {
            children.insert(NET.to_string(), FileType::Directory);
        }
        for (name, kind) in children {
            let ino = self.ino(&format!("{prefix}{name}"));
            entries.push((ino, kind, name));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(path) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let value = match name.as_bytes() {
            b"user.mailslot.max_message_size" => match self.owner_file(&path) {
                Some(o) => o.slot.info().max_message_size.to_string(),
                None if remote_parts(&path).is_some() => return reply.error(Errno::ENODATA),
                None => match self.querier(&slot_name(without_priority(&path))) {
                    Some((w, _)) => lock(&w).max_message_size().to_string(),
                    None => return reply.error(Errno::ENODATA),
                },
            },
            n @ (b"user.mailslot.count"
            | b"user.mailslot.next_size"
            | b"user.mailslot.next_priority") => {
                let Some(q) = self.queue_state(&path) else {
                    return reply.error(Errno::ENODATA);
                };
                match n {
                    b"user.mailslot.count" => q.count.to_string(),
                    b"user.mailslot.next_size" => q.next_size.unwrap_or(0).to_string(),
                    _ => q.next_priority.map_or(String::new(), |p| p.to_string()),
                }
            }
            _ => return reply.error(Errno::ENODATA),
        };
        xattr_reply(value.as_bytes(), size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(path) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let local_slot =
            remote_parts(&path).is_none() && matches!(self.node(&path), Some(Node::Slot { .. }));
        let names: &[u8] = if local_slot {
            b"user.mailslot.count\0user.mailslot.next_size\0user.mailslot.next_priority\0user.mailslot.max_message_size\0"
        } else {
            b""
        };
        xattr_reply(names, size, reply);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // The mailslot's policy decides at open.
        reply.ok();
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let o = match lock(&self.handles).get(&fh.0) {
            Some(Handle::Owner(o)) => Arc::clone(o),
            Some(Handle::Writer(_)) => {
                return reply.poll(PollEvents::POLLOUT | PollEvents::POLLWRNORM)
            }
            None => return reply.error(Errno::EBADF),
        };
        let out = PollEvents::POLLOUT | PollEvents::POLLWRNORM;
        if o.slot.info().count > 0 {
            return reply.poll(out | PollEvents::POLLIN | PollEvents::POLLRDNORM);
        }
        if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
            *lock(&o.poll) = Some(ph);
            o.watch();
        }
        reply.poll(out);
    }
}

/// A first-class write, on a thread of its own: it waits for room as long as it takes.
fn first_class_write(
    w: Arc<MailslotWriter>,
    priority: u8,
    (pid, uid, gid): (u32, u32, u32),
    data: Vec<u8>,
    reply: ReplyWrite,
) {
    std::thread::spawn(move || {
        let caller = Caller::from_pid(pid, uid, gid);
        // In slices, so that a signal to the writer ends the wait.
        let opts = WriteOptions::new()
            .priority(priority)
            .class(Class::First)
            .timeout(Timeout::After(SLICE));
        loop {
            match w.write_on_behalf(&data, opts, &caller) {
                Ok(()) => return reply.written(data.len() as u32),
                Err(WriteError::Timeout) if !interrupted(pid) => continue,
                Err(WriteError::Timeout) => return reply.error(Errno::EINTR),
                Err(e) => return reply.error(write_errno(&e)),
            }
        }
    });
}

/// Whether the process (thread) `pid` has a signal pending that it does not block: then a
/// blocked request of it should end with `EINTR`. FUSE would tell with an interrupt request,
/// which `fuser` does not pass on; a killed process would otherwise stay in its `read(2)` until
/// a message came.
fn interrupted(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true; // gone
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    (field("SigPnd:") | field("ShdPnd:")) & !field("SigBlk:") != 0
}

fn read_errno(e: &ReadError) -> Errno {
    match e {
        ReadError::Timeout => Errno::EAGAIN,
        ReadError::BufferTooSmall { .. } => Errno::EMSGSIZE,
        _ => Errno::EIO,
    }
}

fn xattr_reply(value: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if (size as usize) < value.len() {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(value);
    }
}

/// Mount options of the view: every user may use it (`allow_other`), the mailslots' policies
/// decide (no `default_permissions`).
pub fn config() -> fuser::Config {
    let mut c = fuser::Config::default();
    c.mount_options = vec![
        fuser::MountOption::FSName("mailslot".into()),
        fuser::MountOption::Subtype("mailslot".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoExec,
        // fusermount3 stays and unmounts if this process dies (SIGKILL included).
        fuser::MountOption::AutoUnmount,
    ];
    c.acl = fuser::SessionACL::All;
    c.n_threads = Some(2);
    c
}

/// Mounts the view at `mountpoint` (made if missing) and serves it in the foreground until
/// SIGTERM, SIGINT or SIGHUP, then unmounts (lazily: files still open get `ENOTCONN`) and exits
/// the process with status 0. Mailslots created through the mount end with it.
pub fn run(mountpoint: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(mountpoint)?;
    // Block the signals in every thread (the filesystem's threads inherit the mask); one thread
    // waits for them.
    // SAFETY: plain signal-mask calls on a zeroed, then initialised, set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let mut session = fuser::Session::new(MailslotFs::new(), mountpoint, &config())?;
    let mut unmounter = session.unmount_callable();
    let path = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is initialised; `sig` is a valid out pointer.
        unsafe { libc::sigwait(&set, &mut sig) };
        // Lazily, so that files still open do not keep the mount (they get ENOTCONN once this
        // process is gone); without the privilege for that, fusermount3 does it.
        // SAFETY: `path` is a valid C string.
        let detached = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0;
        let code = match unmounter.unmount() {
            Ok(()) => 0,
            Err(_) if detached => 0,
            Err(e) => {
                eprintln!("mailslot mount: unmount failed: {e}");
                1
            }
        };
        std::process::exit(code);
    });
    session.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connections `stat` keeps: let go after [`QUERIER_IDLE`] without use, at most
    /// [`QUERIERS_MAX`] (the least recently used goes), forgotten on request.
    #[test]
    fn kept_query_connections_expire_and_are_bounded() {
        let name = format!(r"\\.\mailslot\mount-unit\queriers-{}", std::process::id());
        let _slot = Mailslot::create(&name).unwrap();
        let w = Arc::new(Mutex::new(MailslotWriter::open(&name).unwrap()));
        let t0 = Instant::now();
        let mut q = Queriers::default();
        q.keep("a".into(), w.clone(), t0);
        q.keep("b".into(), w.clone(), t0);
        assert!(q.get("a", t0 + QUERIER_IDLE / 2).is_some());
        // "a" was used half-way, "b" not: at QUERIER_IDLE only "a" is left.
        assert!(q.get("b", t0 + QUERIER_IDLE).is_none());
        assert!(q.get("a", t0 + QUERIER_IDLE).is_some());
        q.forget("a");
        assert!(q.get("a", t0 + QUERIER_IDLE).is_none());
        // Full: the least recently used one makes room.
        for i in 0..QUERIERS_MAX {
            q.keep(
                i.to_string(),
                w.clone(),
                t0 + Duration::from_millis(i as u64),
            );
        }
        let later = t0 + Duration::from_secs(1);
        q.keep("new".into(), w.clone(), later);
        assert_eq!(q.0.len(), QUERIERS_MAX);
        assert!(q.get("0", later).is_none());
        assert!(q.get("1", later).is_some());
        assert!(q.get("new", later).is_some());
    }

    /// `getxattr user.mailslot.max_message_size` of a mailslot another process owns asks on
    /// the kept connection (one connection for any number of questions), and on a new one when
    /// the owner has gone and another one has the name.
    #[test]
    fn attributes_of_another_owners_mailslot_are_asked_on_one_kept_connection() {
        let path = format!("mount-unit/max-size-{}", std::process::id());
        let name = slot_name(&path);
        let fs = MailslotFs::new();
        let first = Mailslot::builder()
            .max_message_size(300)
            .create(&name)
            .unwrap();
        let (w1, kept) = fs.querier(&name).unwrap();
        assert!(!kept, "nothing was kept before the first question");
        assert_eq!(lock(&w1).max_message_size(), 300);
        for _ in 0..20 {
            let (w, kept) = fs.querier(&name).unwrap();
            assert!(
                kept && Arc::ptr_eq(&w, &w1),
                "a new connection for a later question"
            );
        }
        assert_eq!(lock(&fs.queriers).0.len(), 1);
        // The owner goes; a new owner of the name, with another maximum, is asked anew.
        drop(first);
        assert!(lock(&w1).owner_gone());
        let _second = Mailslot::builder()
            .max_message_size(500)
            .create(&name)
            .unwrap();
        let (w2, kept) = fs.querier(&name).unwrap();
        assert!(!kept && !Arc::ptr_eq(&w2, &w1));
        assert_eq!(lock(&w2).max_message_size(), 500);
        assert!(!lock(&w2).owner_gone());
        // No mailslot: nothing to ask on, nothing kept.
        let missing = slot_name(&format!("{path}-missing"));
        assert!(fs.querier(&missing).is_none());
        assert!(lock(&fs.queriers).get(&missing, Instant::now()).is_none());
    }

    #[test]
    fn paths_map_to_names() {
        assert_eq!(slot_name("app/events"), r"\\.\mailslot\app\events");
        assert_eq!(slot_name(".net/hostb/chat"), r"\\hostb\mailslot\chat");
        assert_eq!(
            slot_name(".net/*/net/netlogon"),
            r"\\*\mailslot\net\netlogon"
        );
        assert_eq!(remote_parts(".net/hostb"), Some(("hostb", None)));
        assert_eq!(remote_parts(".net"), None);
        assert_eq!(remote_parts(".network/x"), None);
        assert_eq!(remote_parts("app/x"), None);
    }

    #[test]
    fn priority_suffix() {
        assert_eq!(split_priority("app/events"), Some(("app/events", 0)));
        assert_eq!(split_priority("app/events:9"), Some(("app/events", 9)));
        assert_eq!(split_priority("app/events:10"), None);
        assert_eq!(split_priority("app/events:x"), None);
        assert_eq!(split_priority(":5"), None);
    }

    #[test]
    fn pending_signals_are_seen() {
        // This thread has nothing pending; a process that does not exist counts as interrupted.
        assert!(!interrupted(std::process::id()));
        assert!(interrupted(u32::MAX));
    }
}
