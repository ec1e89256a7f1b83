//! Writer side: connect, handshake, reserve room, send one record per message.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{
    address, encode_batch_head, encode_header, encode_remote, Greeting, BATCH_ENTRY_LEN,
    BATCH_RECORD_MAX, FLAG_BATCH, FLAG_REMOTE, HEADER_LEN, REMOTE_LEN,
};
use crate::control::Control;
use crate::error::{OpenError, WriteError};
use crate::name::Name;
use crate::sys;
use crate::types::{Class, Timeout, WriteOptions, MAX_PRIORITY};
use crate::{BatchOutcome, RemoteMessage};

/// How long a second-class write waits for socket buffer space when the owner's process is slow
/// to drain (the quota already had room, so this is back-pressure, not a full mailslot).
const SEND_GRACE: Duration = Duration::from_secs(2);
/// The same for the daemon delivering a network message (see `write`).
const DAEMON_SEND_GRACE: Duration = Duration::from_millis(10);
/// Longest single futex sleep while waiting for room, so a dead owner is noticed quickly.
const ROOM_POLL: Duration = Duration::from_millis(50);

/// An open connection to a local mailslot.
pub(crate) struct Connection {
    sock: OwnedFd,
    control: Control,
    pub greeting: Greeting,
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN | libc::ECONNREFUSED)
    )
}

impl Connection {
    pub fn open(name: &Name, timeout: Duration) -> Result<Connection, OpenError> {
        let sock = sys::seqpacket(false)?;
        match sys::connect_abstract(&sock, &address(&name.key())) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) => {
                return Err(OpenError::NotFound(name.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 256];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(OpenError::NotResponding(name.to_string()));
            }
            sys::poll_one(sock.as_raw_fd(), libc::POLLIN, Some(remaining))?;
            match sys::recv_msg(sock.as_raw_fd(), &mut buf, true) {
                Ok(None) => continue,
                Ok(Some(r)) if r.len == 0 => return Err(OpenError::NotFound(name.to_string())),
                Ok(Some(r)) => {
                    let g = Greeting::decode(&buf[..r.len.min(buf.len())]).ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "malformed greeting from owner")
                    })?;
                    if !g.admitted {
                        return Err(OpenError::AccessDenied(name.to_string()));
                    }
                    let fd = r.fd.ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "owner sent no control page")
                    })?;
                    let control = Control::attach(&fd)?;
                    return Ok(Connection {
                        sock,
                        control,
                        greeting: g,
                    });
                }
                Err(e) if is_gone(&e) => return Err(OpenError::NotFound(name.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn hung_up(&self) -> bool {
        self.control.is_closed()
            || sys::poll_one(self.sock.as_raw_fd(), 0, Some(Duration::ZERO))
                .map(|r| r & (libc::POLLHUP | libc::POLLERR) != 0)
                .unwrap_or(true)
    }

    /// Writes one message; `remote` is the sender block when the daemon delivers for a remote host.
    pub fn write(
        &self,
        data: &[u8],
        opts: WriteOptions,
        remote: Option<&[u8; REMOTE_LEN]>,
    ) -> Result<(), WriteError> {
        // The daemon delivering for a remote host must not block long on one slow owner (it
        // would stall every other delivery): it waits at most DAEMON_SEND_GRACE for socket
        // buffer space, then counts the mailslot as full.
        let daemon_delivery = remote.is_some() && opts.timeout.is_zero();
        if opts.priority > MAX_PRIORITY {
            return Err(WriteError::InvalidPriority(opts.priority));
        }
        let max = self.greeting.max_message_size as usize;
        if data.len() > max {
            return Err(WriteError::TooLarge {
                size: data.len(),
                max,
            });
        }
        if self.control.is_closed() {
            return Err(WriteError::OwnerGone);
        }
        let quota = self.greeting.quota as usize;
        let max_messages = self.greeting.max_messages as usize;
        let deadline = match (opts.class, opts.timeout) {
            (Class::Second, _) => Some(Instant::now()),
            (Class::First, Timeout::After(d)) => Some(Instant::now() + d),
            (Class::First, Timeout::Forever) => None,
        };
        // 1. Room in the quota.
        while !self.control.try_reserve(data.len(), quota, max_messages) {
            if opts.class == Class::Second {
                return Err(WriteError::Full);
            }
            let slice = match deadline {
                None => ROOM_POLL,
                Some(dl) => {
                    let left = dl.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WriteError::Timeout);
                    }
                    left.min(ROOM_POLL)
                }
            };
            if self
                .control
                .wait_for_room(data.len(), quota, max_messages, slice)
            {
                break;
            }
            // Still no room: is anybody still reading? (Checked after the wait, not before, so a
            // wait that ends with room costs no extra system call.)
            if self.hung_up() {
                return Err(WriteError::OwnerGone);
            }
        }
        // 2. Send; room is reserved, give it back on failure.
        let flags = if remote.is_some() { FLAG_REMOTE } else { 0 };
        let header = encode_header(
            opts.priority,
            opts.class.number(),
            flags,
            self.control.next_seq(),
        );
        let remote: &[u8] = remote.map_or(&[], |r| &r[..]);
        let record_len = HEADER_LEN + remote.len() + data.len();
        let send_deadline = match opts.class {
            _ if daemon_delivery => Some(Instant::now() + DAEMON_SEND_GRACE),
            Class::Second => Some(Instant::now() + SEND_GRACE),
            Class::First => deadline,
        };
        match self.send_record(&[&header, remote, data], record_len, send_deadline) {
            Ok(true) => Ok(()),
            other => {
                self.control.release(data.len());
                Err(match other {
                    Ok(_) if opts.class == Class::Second => WriteError::Full,
                    Ok(_) => WriteError::Timeout,
                    Err(e) => e,
                })
            }
        }
    }

    /// Sends one record of `len` bytes gathered from `parts`, waiting for socket space until
    /// `deadline` (`None`: for ever). `Ok(true)`: sent (and counted as sent on the control
    /// page); `Ok(false)`: no space before the deadline. On anything but `Ok(true)` the caller
    /// still holds its quota reservations and must release them.
    fn send_record(
        &self,
        parts: &[&[u8]],
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<bool, WriteError> {
        loop {
            match sys::send_gather(self.sock.as_raw_fd(), parts) {
                Ok(n) if n == len => {
                    self.control.note_sent();
                    return Ok(true);
                }
                Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short send").into()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if left == Some(Duration::ZERO) {
                        return Ok(false);
                    }
                    sys::poll_one(self.sock.as_raw_fd(), libc::POLLOUT, left)?;
                }
                Err(e) if is_gone(&e) => return Err(WriteError::OwnerGone),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Delivers network messages in as few records as possible (the daemon's path): each
    /// message reserves its own room; those that do not fit are counted, not waited for.
    pub fn write_batch(&self, msgs: &[RemoteMessage<'_>]) -> Result<BatchOutcome, WriteError> {
        if self.control.is_closed() {
            return Err(WriteError::OwnerGone);
        }
        let max = self.greeting.max_message_size as usize;
        let quota = self.greeting.quota as usize;
        let max_messages = self.greeting.max_messages as usize;
        let mut out = BatchOutcome::default();
        // Entry heads (28 bytes each); the data is gathered straight from the callers' buffers.
        let mut heads: Vec<u8> = Vec::with_capacity(msgs.len() * (BATCH_ENTRY_LEN + REMOTE_LEN));
        let mut datas: Vec<&[u8]> = Vec::with_capacity(msgs.len());
        let mut lens: Vec<usize> = Vec::with_capacity(msgs.len());
        let mut body_len;
        let mut i = 0;
        while i < msgs.len() {
            heads.clear();
            datas.clear();
            lens.clear();
            body_len = 0;
            // Fast path: the next messages that fit one record, all valid, all reserved with a
            // single atomic update (the quota word is shared with the reading CPU).
            let (mut k, mut size, mut total) = (0, HEADER_LEN, 0);
            while let Some(m) = msgs.get(i + k) {
                let entry = BATCH_ENTRY_LEN + REMOTE_LEN + m.data.len();
                if m.data.len() > max
                    || m.priority > MAX_PRIORITY
                    || size + entry > BATCH_RECORD_MAX
                {
                    break;
                }
                size += entry;
                total += m.data.len();
                k += 1;
            }
            if k > 1 && self.control.try_reserve_many(total, k, quota, max_messages) {
                for m in &msgs[i..i + k] {
                    let block = encode_remote(m.sender_name, m.sender_ip);
                    encode_batch_head(
                        &mut heads,
                        m.priority,
                        m.class.number(),
                        &block,
                        m.data.len(),
                    );
                    datas.push(m.data);
                    lens.push(m.data.len());
                    body_len += BATCH_ENTRY_LEN + REMOTE_LEN + m.data.len();
                }
                i += k;
            }
            // Otherwise (and after it, for what else fits the record), one message at a time.
            while let Some(m) = msgs.get(i) {
                let entry = BATCH_ENTRY_LEN + REMOTE_LEN + m.data.len();
                if m.data.len() > max || m.priority > MAX_PRIORITY {
                    out.too_large += 1;
                } else if HEADER_LEN + entry > BATCH_RECORD_MAX {
                    // Too big to share a record (never for a datagram): on its own.
                    let opts = WriteOptions::new()
                        .priority(m.priority)
                        .class(m.class)
                        .timeout(Timeout::ZERO);
                    let block = encode_remote(m.sender_name, m.sender_ip);
                    match self.write(m.data, opts, Some(&block)) {
                        Ok(()) => out.queued += 1,
                        Err(WriteError::Full | WriteError::Timeout) => out.full += 1,
                        Err(e) => return Err(e),
                    }
                } else if HEADER_LEN + body_len + entry > BATCH_RECORD_MAX {
                    break; // the record is full: send it, then go on with this message
                } else if self.control.try_reserve(m.data.len(), quota, max_messages) {
                    let block = encode_remote(m.sender_name, m.sender_ip);
                    encode_batch_head(
                        &mut heads,
                        m.priority,
                        m.class.number(),
                        &block,
                        m.data.len(),
                    );
                    datas.push(m.data);
                    lens.push(m.data.len());
                    body_len += entry;
                } else {
                    out.full += 1;
                }
                i += 1;
            }
            if lens.is_empty() {
                continue;
            }
            let header = encode_header(0, 2, FLAG_BATCH, self.control.next_seqs(lens.len() as u64));
            const HEAD: usize = BATCH_ENTRY_LEN + REMOTE_LEN;
            let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * datas.len());
            parts.push(&header);
            for (j, d) in datas.iter().enumerate() {
                parts.push(&heads[j * HEAD..(j + 1) * HEAD]);
                parts.push(d);
            }
            let deadline = Instant::now() + DAEMON_SEND_GRACE;
            match self.send_record(&parts, HEADER_LEN + body_len, Some(deadline)) {
                Ok(true) => out.queued += lens.len(),
                other => {
                    lens.iter().for_each(|&l| self.control.release(l));
                    match other {
                        Ok(_) => out.full += lens.len(),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(out)
    }
}
