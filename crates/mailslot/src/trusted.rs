//! For trusted processes only: writing on behalf of local callers, and delivering messages
//! from other hosts.
//!
//! Two kinds of trusted writer use this module: the mailslot daemon (`mailslotd`), which delivers
//! what arrives from the network naming the sending host
//! ([`MailslotWriter::write_from_remote`], [`MailslotWriter::write_batch_from_remote`] with
//! [`RemoteMessage`]), and the FUSE view, which writes for local callers (below). Owners accept
//! both only over a connection whose kernel credentials are root or the daemon's user.
//!
//! A process that runs as root (or as the daemon's user, [`crate::daemon::DAEMON_USER`]) and
//! writes for other local processes — the FUSE view `mailslot mount`, where the kernel tells the
//! filesystem which process called `write(2)` — uses these calls so that:
//!
//! - the mailslot's **access policy is applied to the caller**, not to the trusted process
//!   (which would pass every policy): [`MailslotWriter::admits`] gives the owner's verdict from
//!   the policy the owner sent when the handle was opened, and
//!   [`MailslotWriter::write_on_behalf`] refuses with `AccessDenied` before anything is queued;
//! - the message's recorded sender ([`crate::Sender::Local`]) is the **caller's** pid, uid and
//!   gid.
//!
//! The owner does not take the trusted process's word for it. Each such message carries an
//! on-behalf-of block, which the owner accepts only over a connection whose kernel credentials
//! (`SO_PEERCRED`) are root or the daemon's user — from anyone else the message is dropped and
//! counted in [`crate::Counters::dropped`], as a forged remote-sender block is — and the owner
//! applies its access policy to the caller again (dropped and counted in
//! [`crate::Counters::refused_behalf`] when refused). So a buggy trusted writer cannot get a
//! message past the policy, and an ordinary process cannot appear as anybody else.
//!
//! The policy: the owner's uid, root and the daemon's user always; with
//! [`crate::Access::Group`] the caller's primary group or any supplementary group; with
//! [`crate::Access::Everyone`] anybody. Supplementary groups are those of `Groups:` in
//! `/proc/<pid>/status` ([`caller_groups`]).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use crate::error::{OpenError, WriteError};
use crate::sys;
use crate::transport::slot::{is_trusted_uid, policy_admits};
use crate::types::{AccessPolicy, Class, WriteOptions};
use crate::{Builder, CreateError, Mailslot, MailslotWriter, WriterInner};

/// A local process a trusted writer writes for: its ids as the kernel reported them to the
/// trusted process (for FUSE: the request's pid, uid and gid), and its supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Process id.
    pub pid: u32,
    /// User id (for FUSE: the caller's filesystem uid).
    pub uid: u32,
    /// Primary group id (for FUSE: the caller's filesystem gid).
    pub gid: u32,
    /// Supplementary groups (only looked at for [`Access::Group`](crate::Access::Group)).
    pub groups: Vec<u32>,
}

impl Caller {
    /// The process at the other end of a connected Unix socket, as the kernel recorded it when
    /// that process connected (`SO_PEERCRED`, `SO_PEERGROUPS`): neither the peer nor another
    /// thread of it can change or race what is reported.
    pub fn of_peer(socket: &impl AsRawFd) -> io::Result<Self> {
        let cred = sys::peer_cred(socket)?;
        Ok(Self {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
            groups: sys::peer_groups(socket)?,
        })
    }

    /// A caller with the supplementary groups read from `/proc/<pid>/status` (none if the
    /// process is gone or hidden).
    pub fn from_pid(pid: u32, uid: u32, gid: u32) -> Self {
        Self {
            pid,
            uid,
            gid,
            groups: caller_groups(pid).unwrap_or_default(),
        }
    }
}

/// The supplementary groups of process `pid` (`Groups:` in `/proc/<pid>/status`); `None` when
/// the process is gone or the file cannot be read.
pub fn caller_groups(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    Some(
        line.split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

/// A local mailslot's queue as its owner sees it (see [`MailslotWriter::queue_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Messages queued (including those written and not yet taken in).
    pub count: usize,
    /// Size of the next message to be read, if any.
    pub next_size: Option<usize>,
    /// Priority of the next message, if any.
    pub next_priority: Option<u8>,
}

impl MailslotWriter {
    /// Asks the owner of a local mailslot what its queue holds, and waits up to `timeout` for
    /// the answer (the owner answers when its process next looks at its writers: at once when
    /// it is idle or waiting, within a few reads when it is reading).
    ///
    /// Only root and the daemon's user are answered (the FUSE view's `stat` of a mailslot owned
    /// by another process), as the owner knows the handle: by the effective uid of the thread
    /// that opened it, whatever uid the process has now. A handle opened by anyone else gets
    /// `Open(AccessDenied)` (5) at once, without asking, and an owner ignores the question from
    /// anyone else. Do not call it while another thread writes first-class messages on the same
    /// handle (each could take the other's reply).
    /// Errors: `Timeout` (121), `OwnerGone` (109), `Open(AccessDenied)` (5), `Io`; a remote
    /// name: `Io` (`InvalidInput`).
    pub fn queue_state(&self, timeout: std::time::Duration) -> Result<QueueState, WriteError> {
        match &self.inner {
            WriterInner::Local(c) if !is_trusted_uid(c.euid) => {
                Err(WriteError::Open(OpenError::AccessDenied(
                    "only root and the mailslot daemon's user may ask an owner about its queue"
                        .into(),
                )))
            }
            WriterInner::Local(c) => {
                let (count, next) = c.query(timeout)?;
                Ok(QueueState {
                    count,
                    next_size: next.map(|(s, _)| s),
                    next_priority: next.map(|(_, p)| p),
                })
            }
            WriterInner::Remote(_) => Err(WriteError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "queue_state needs a local mailslot",
            ))),
        }
    }

    /// Delivers a message that arrived from another host, naming that host as the sender.
    ///
    /// For the mailslot daemon: owners accept it only from root or the [`crate::daemon::DAEMON_USER`]
    /// (anyone else's message is dropped) and only if the slot accepts remote messages.
    pub fn write_from_remote(
        &self,
        data: &[u8],
        opts: WriteOptions,
        sender_name: &str,
        sender_ip: Ipv4Addr,
    ) -> Result<(), WriteError> {
        match &self.inner {
            WriterInner::Local(c) => {
                let block = crate::transport::encode_remote(sender_name, sender_ip);
                c.write(data, opts, Some(crate::transport::Block::Remote(&block)))
            }
            WriterInner::Remote(_) => Err(WriteError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_from_remote needs a local mailslot",
            ))),
        }
    }

    /// Delivers several messages from other hosts, in as few system calls as possible: the
    /// mailslot daemon's path. Like [`write_from_remote`](Self::write_from_remote), owners accept
    /// them only from root or the daemon's user. Nothing waits for room: each message is queued
    /// or counted in the outcome. Errors: `OwnerGone` (the owner closed), `Io`.
    pub fn write_batch_from_remote(
        &self,
        msgs: &[RemoteMessage<'_>],
    ) -> Result<BatchOutcome, WriteError> {
        match &self.inner {
            WriterInner::Local(c) => c.write_batch(msgs, true).map(|(out, _)| out),
            WriterInner::Remote(_) => Err(WriteError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_batch_from_remote needs a local mailslot",
            ))),
        }
    }

    /// Like [`write_batch_from_remote`](Self::write_batch_from_remote), but never waits: it
    /// stops at the first message that does not fit the writer's ring right now (the owner has
    /// not taken it in yet) and returns the outcome of those before it and how many they were;
    /// the rest are the caller's to deliver later (with the waiting call, from a thread that
    /// may wait). The mailslot daemon's loop delivers this way.
    pub fn try_write_batch_from_remote(
        &self,
        msgs: &[RemoteMessage<'_>],
    ) -> Result<(BatchOutcome, usize), WriteError> {
        match &self.inner {
            WriterInner::Local(c) => c.write_batch(msgs, false),
            WriterInner::Remote(_) => Err(WriteError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "try_write_batch_from_remote needs a local mailslot",
            ))),
        }
    }

    /// Whether the mailslot's access policy admits the user `uid` with primary group `gid` and
    /// supplementary `groups` (see the [module docs](self)). The policy is the one the owner sent
    /// when this handle was opened. `true` for a remote name (the other host decides).
    pub fn admits(&self, uid: u32, gid: u32, groups: &[u32]) -> bool {
        match &self.inner {
            WriterInner::Local(c) => {
                policy_admits(c.greeting.owner_uid, c.greeting.access, uid, gid, |g| {
                    groups.contains(&g)
                })
            }
            WriterInner::Remote(_) => true,
        }
    }

    /// The owner's user id and access policy as it sent them (`None` for a remote name).
    pub fn access_policy(&self) -> Option<AccessPolicy> {
        match &self.inner {
            WriterInner::Local(c) => Some(AccessPolicy {
                owner_uid: c.greeting.owner_uid,
                access: c.greeting.access,
            }),
            WriterInner::Remote(_) => None,
        }
    }

    /// Writes one message for `caller`: the policy is applied to the caller (refused:
    /// `Open(AccessDenied)`, nothing queued) and the message's sender is the caller's pid, uid
    /// and gid. Otherwise like [`write_with`](Self::write_with).
    ///
    /// Only root and the daemon's user can do this: from any other process the owner drops the
    /// message (counted in [`crate::Counters::dropped`]) although the write returns `Ok`.
    /// Remote names are refused (`Io`, `InvalidInput`): write them with
    /// [`write_with`](Self::write_with).
    pub fn write_on_behalf(
        &self,
        data: &[u8],
        opts: WriteOptions,
        caller: &Caller,
    ) -> Result<(), WriteError> {
        match &self.inner {
            WriterInner::Local(c) => {
                if !self.admits(caller.uid, caller.gid, &caller.groups) {
                    return Err(WriteError::Open(OpenError::AccessDenied(
                        self.name.to_string(),
                    )));
                }
                let block = crate::transport::encode_behalf(caller.pid, caller.uid, caller.gid);
                c.write(data, opts, Some(crate::transport::Block::Behalf(&block)))
            }
            WriterInner::Remote(_) => Err(WriteError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_on_behalf needs a local mailslot",
            ))),
        }
    }
}

impl Builder {
    /// Creates the mailslot `name` for a local caller: the access policy's owner is `owner_uid`
    /// instead of this process's user (writers of that user are admitted; root and the daemon's
    /// user always are). For a trusted process that creates mailslots for others (the FUSE view
    /// creates one per `open(O_CREAT)` for the opening process); the handle and the queue stay in
    /// this process.
    ///
    /// The name policy ([`crate::policy`]) is applied to `owner_uid` alone (a rule's groups do
    /// not admit it: use [`create_for_caller`](Self::create_for_caller) when the caller's groups
    /// are known): refused, `NotAllowed`.
    pub fn create_for(self, name: &str, owner_uid: u32) -> Result<Mailslot, CreateError> {
        self.create_owned_by(name, owner_uid, &[])
    }

    /// Like [`create_for`](Self::create_for), with the name policy applied to the caller's user,
    /// primary group and supplementary groups.
    pub fn create_for_caller(self, name: &str, caller: &Caller) -> Result<Mailslot, CreateError> {
        let mut groups = Vec::with_capacity(caller.groups.len() + 1);
        groups.push(caller.gid);
        groups.extend_from_slice(&caller.groups);
        self.create_owned_by(name, caller.uid, &groups)
    }
}

/// A message from another host, for [`MailslotWriter::write_batch_from_remote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMessage<'a> {
    /// The message.
    pub data: &'a [u8],
    /// Priority 0–9.
    pub priority: u8,
    /// Class from the wire.
    pub class: Class,
    /// The sending host's NetBIOS name.
    pub sender_name: &'a str,
    /// The sending host's address.
    pub sender_ip: Ipv4Addr,
}

/// What [`MailslotWriter::write_batch_from_remote`] did with the messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Queued in the mailslot.
    pub queued: usize,
    /// Not queued: no room (quota, or the owner's process not keeping up).
    pub full: usize,
    /// Not queued: larger than the mailslot's maximum message size (or priority above 9).
    pub too_large: usize,
}
