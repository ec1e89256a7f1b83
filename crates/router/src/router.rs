//! The protocol logic of the daemon, without I/O: name service (B-node, H-node with WINS) and
//! mailslot datagram routing. The caller passes the time in, feeds received packets and local
//! requests, and takes out what to transmit, what to deliver and when to call back.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

// The cache is on the path of every datagram: a fast hash (the keys are not attacker-chosen in a
// way that matters: the map is bounded in size).
use rustc_hash::FxHashMap as HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use crate::dedupe::DuplicateFilter;
use crate::nmbd;
use mailslot::daemon::{
    Address, CachedName, Failure, NameStatus, RemoteWrite, RouterCounters, MAX_FIRST_CLASS_NETWORK,
};
use mailslot::error::code::{BAD_NETPATH, INVALID_PARAMETER};
use mailslot::trusted::{Caller, RemoteMessage};
use mailslot::{Class, Target};
use mailslot_proto::datagram::{MsgType, NodeType};
use mailslot_proto::nbns::{
    NbAddress, NodeStatus, NodeStatusName, NsOpcode, Question, RData, ResourceRecord, RrType,
};
use mailslot_proto::smb::MAILSLOT_PREFIX;
use mailslot_proto::{
    max_network_payload, DatagramFlags, MailslotMessage, MailslotWriteRepr, NamePacket, NetbiosName,
};

use crate::config::RouterConfig;

/// RFC 1002 BCAST_REQ_RETRY_TIMEOUT.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// RFC 1002 BCAST_REQ_RETRY_COUNT.
pub const RETRY_COUNT: u32 = 3;
/// Duplicates (same source IP and DGM_ID) are dropped within this window.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2);
/// Most names in the resolution cache.
pub(crate) const CACHE_CAPACITY: usize = 4096;
/// Most addresses taken from one name query answer (a WINS server gives at most 25 for a group):
/// an answer may carry thousands, each of which would be cached and written to.
pub(crate) const MAX_ANSWER_ADDRESSES: usize = 64;
/// Most resolutions in progress (each with its waiters).
pub(crate) const MAX_PENDING_QUERIES: usize = 1024;
/// TTL we register with and answer with.
pub(crate) const NAME_TTL: u32 = 259_200;
/// Shortest interval between refreshes of our names with the WINS server, whatever TTL it grants.
pub(crate) const MIN_WINS_REFRESH: Duration = Duration::from_secs(60);
/// How long a name learnt from an answer is kept when the answer's TTL is 0.
const MIN_CACHE_TTL: Duration = Duration::from_secs(60);
/// Most a cached entry is kept, whatever the TTL.
const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);
/// How long a negative resolution is remembered.
const NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most cache entries [`Router::cache`] lists: the daemon's status carries the listing in one
/// control record, which must stay within `MAX_RECORD` however full the cache is.
pub(crate) const LISTED_CACHE_ENTRIES: usize = 256;
/// Most addresses [`Router::cache`] lists for one name (an answer may carry hundreds).
pub(crate) const LISTED_ADDRESSES: usize = 8;

/// Which of our two sockets a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// UDP 138: NetBIOS datagrams.
    Datagram,
    /// UDP 137: NetBIOS name service.
    Name,
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Send from this socket.
    pub port: Port,
    /// To this address.
    pub dest: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// A request from a local program (through the daemon's control socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRequest {
    /// Send a mailslot write.
    Write {
        /// Identifies the answer ([`Event::WriteDone`]).
        id: u64,
        /// The write ([`Target::Local`] is refused: local names need no network).
        write: RemoteWrite,
        /// Who asked, as the kernel reported it to the shell (`SO_PEERCRED` of the control
        /// connection, with the supplementary groups). The copy of the write delivered on this
        /// host ([`Event::Deliver`] for our own group, our own name, `*`) carries it, so that the
        /// shell delivers it as this local process under the slot's access policy, never as a
        /// message from the network. `None`: delivered as from the network (tests, tools).
        caller: Option<Caller>,
    },
    /// Resolve a NetBIOS name.
    Resolve {
        /// Identifies the answer ([`Event::Resolved`]).
        id: u64,
        /// Name (≤ 15 characters).
        name: String,
        /// Suffix byte.
        suffix: u8,
    },
}

/// Why a first-class write to a group name fails.
const FIRST_CLASS_GROUP: &str =
    "a first-class write cannot go to a group name (domain, workgroup or *): write second class";

/// Something for the shell to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Deliver a message into a local mailslot (our own group writes, writes to ourselves, and
    /// datagrams fed through [`Router::handle_datagram`]).
    Deliver(Delivery<'static>),
    /// A local write finished.
    WriteDone {
        /// The request id.
        id: u64,
        /// Sent, or why not.
        result: Result<(), Failure>,
    },
    /// A local resolution finished.
    Resolved {
        /// The request id.
        id: u64,
        /// The addresses, or why not.
        result: Result<Vec<Address>, Failure>,
    },
    /// A local program's first-class write to one host, resolved: the shell carries it over a
    /// NetBIOS session ([`FirstClassWrite::to`]) or, for this host, writes it itself, and answers
    /// request [`FirstClassWrite::id`] with the outcome.
    FirstClass(FirstClassWrite),
    /// All our names are registered (the registration broadcasts drew no objection).
    NamesRegistered,
    /// Another node holds one of our unique names: the daemon must not run.
    NameConflict {
        /// The name, e.g. `HOSTA<00>`.
        name: String,
        /// Who objected.
        by: Ipv4Addr,
    },
}

/// A first-class write to one host, for the shell to carry ([`Event::FirstClass`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstClassWrite {
    /// The request id to answer.
    pub id: u64,
    /// The other host's session service; `None` when the name is this host's own (the shell
    /// writes into the local mailslot on behalf of [`caller`](Self::caller), waiting for room).
    pub to: Option<SocketAddrV4>,
    /// The name to call on the session (`HOST<20>`, the server service).
    pub called: NetbiosName,
    /// Our name as the caller (`COMPUTER<00>`).
    pub calling: NetbiosName,
    /// The write (its `timeout_ms` bounds the wait for room on the other side).
    pub write: RemoteWrite,
    /// The local program that asked.
    pub caller: Option<Caller>,
}

/// A mailslot write to deliver into the local mailslot `path`: the one type for it from the
/// router to the delivery. Borrowing the received packet on the shell's fast path
/// ([`Router::accept_datagram`]), owned in an [`Event::Deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Mailslot path after `\MAILSLOT\` (case as received). Shared between consecutive
    /// deliveries with the same path.
    pub path: Arc<str>,
    /// The message.
    pub data: Cow<'a, [u8]>,
    /// Priority 0–9 (Windows sends 0 or 1).
    pub priority: u8,
    /// Class from the wire.
    pub class: Class,
    /// Sender's NetBIOS name (shared like `path`).
    pub sender_name: Arc<str>,
    /// Sender's IPv4 address (from the datagram header).
    pub sender_ip: Ipv4Addr,
    /// For the local copy of a local program's write ([`LocalRequest::Write`]): that program.
    /// The shell must deliver it on behalf of this caller (the slot's access policy applied to
    /// it, recorded as a local sender), never as a remote message. `None` for what came from the
    /// network.
    pub caller: Option<Caller>,
}

impl Delivery<'_> {
    /// The same delivery owning its data.
    pub fn into_owned(self) -> Delivery<'static> {
        Delivery {
            path: self.path,
            data: Cow::Owned(self.data.into_owned()),
            priority: self.priority,
            class: self.class,
            sender_name: self.sender_name,
            sender_ip: self.sender_ip,
            caller: self.caller,
        }
    }

    /// The message as the library's delivery call takes it
    /// ([`MailslotWriter::write_batch_from_remote`](mailslot::MailslotWriter::write_batch_from_remote)),
    /// the priority capped at 9.
    pub fn message(&self) -> RemoteMessage<'_> {
        RemoteMessage {
            data: &self.data,
            priority: self.priority.min(9),
            class: self.class,
            sender_name: &self.sender_name,
            sender_ip: self.sender_ip,
        }
    }
}

/// State of one of our names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameState {
    /// Registration broadcast `sent` times so far.
    Registering {
        sent: u32,
    },
    Registered,
    /// Another node objected to our registration: the name is theirs.
    Lost,
}

#[derive(Debug, Clone)]
struct OwnName {
    name: NetbiosName,
    /// `name` as receivers compare it (see `name_key`).
    key: NetbiosName,
    group: bool,
    state: NameState,
    /// Transaction ids of our registration requests for this name (an objection must answer one
    /// of them).
    trn_ids: Vec<u16>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    addrs: Vec<Address>,
    expires: Instant,
}

#[derive(Debug)]
enum Waiter {
    Write {
        id: u64,
        write: RemoteWrite,
        dest: NetbiosName,
        caller: Option<Caller>,
    },
    Resolve {
        id: u64,
    },
}

#[derive(Debug)]
struct Query {
    trn_id: u16,
    name: NetbiosName,
    /// Tries sent to the WINS server, then broadcast tries.
    wins_tries: u32,
    bcast_tries: u32,
    next: Instant,
    waiters: Vec<Waiter>,
}

/// The sans-IO router.
#[derive(Debug)]
pub struct Router {
    cfg: RouterConfig,
    names: Vec<OwnName>,
    registration_next: Option<Instant>,
    registered_reported: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    cache: HashMap<NetbiosName, CacheEntry>,
    queries: Vec<Query>,
    duplicates: DuplicateFilter,
    /// When to refresh our names with the WINS server next (RFC 1002 §5.1.2.6).
    wins_refresh_next: Option<Instant>,
    /// The shortest TTL the WINS server granted one of our names (ours until it answers).
    wins_ttl: Duration,
    /// The WINS server refused a refresh: the next round registers instead of refreshing.
    wins_reregister: bool,
    next_trn: u16,
    next_dgm: u16,
    counters: RouterCounters,
    shut_down: bool,
    /// The last delivered path and sender name, reused while they repeat (saves two
    /// allocations per datagram in a stream).
    last_path: Arc<str>,
    last_sender: (NetbiosName, Arc<str>),
    own_name: Arc<str>,
}

fn name_key(n: &NetbiosName) -> NetbiosName {
    // Receivers compare the 15 name bytes case-insensitively, the suffix exactly.
    let mut raw = *n.as_raw();
    raw[..15].make_ascii_uppercase();
    NetbiosName::from_raw(raw)
}

impl Router {
    /// A router for `cfg`, starting name registration at `now`.
    pub fn new(cfg: RouterConfig, now: Instant) -> Self {
        let mut names = Vec::new();
        let own = |name: NetbiosName, group| OwnName {
            name,
            key: name_key(&name),
            group,
            state: NameState::Registering { sent: 0 },
            trn_ids: Vec::new(),
        };
        names.push(own(cfg.computer(0x00), false));
        names.push(own(cfg.computer(0x03), false));
        for m in &cfg.messenger_names {
            if let Ok(n) = NetbiosName::new(m, 0x03) {
                names.push(own(n, false));
            }
        }
        names.push(own(cfg.workgroup_name(0x00), true));
        names.push(own(cfg.workgroup_name(0x1E), true));
        let mut registration_next = Some(now);
        if cfg.beside_nmbd {
            // nmbd registers and defends these; we only receive for them. It also holds
            // `<20>` for the computer name and every alias.
            names.push(own(cfg.computer(0x20), false));
            for a in &cfg.aliases {
                for suffix in [0x00, 0x03, 0x20] {
                    if let Ok(n) = NetbiosName::new(a, suffix) {
                        names.push(own(n, false));
                    }
                }
            }
            for n in &mut names {
                n.state = NameState::Registered;
            }
            registration_next = None;
        }
        let seed = cfg.seed;
        let own_name: Arc<str> = Arc::from(cfg.netbios_name.as_str());
        Self {
            cfg,
            names,
            registration_next,
            registered_reported: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            cache: HashMap::default(),
            queries: Vec::new(),
            duplicates: DuplicateFilter::new(DUPLICATE_WINDOW),
            wins_refresh_next: None,
            wins_ttl: Duration::from_secs(u64::from(NAME_TTL)),
            wins_reregister: false,
            next_trn: seed,
            next_dgm: seed.rotate_left(7),
            counters: RouterCounters::default(),
            shut_down: false,
            last_path: Arc::from(""),
            last_sender: (NetbiosName::WILDCARD, Arc::from("*")),
            own_name,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn counters(&self) -> &RouterCounters {
        &self.counters
    }

    /// Our names.
    pub fn names(&self) -> Vec<NameStatus> {
        self.names
            .iter()
            .map(|n| NameStatus {
                name: n.name.to_string(),
                group: n.group,
                registered: n.state == NameState::Registered,
            })
            .collect()
    }

    /// Cached resolutions still valid at `now`, sorted by name: the first 256 names with at
    /// most their first 8 addresses each, so that the daemon's status always fits one control
    /// record (the cache itself holds up to 4096 names).
    pub fn cache(&self, now: Instant) -> Vec<CachedName> {
        let mut v: Vec<_> = self
            .cache
            .iter()
            .filter(|(_, e)| e.expires > now)
            .map(|(k, e)| (k.to_string(), e))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v.truncate(LISTED_CACHE_ENTRIES);
        v.into_iter()
            .map(|(name, e)| CachedName {
                name,
                addresses: e.addrs.iter().take(LISTED_ADDRESSES).copied().collect(),
            })
            .collect()
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let q = self.queries.iter().map(|q| q.next).min();
        [self.registration_next, q, self.wins_refresh_next]
            .into_iter()
            .flatten()
            .min()
    }

    fn trn(&mut self) -> u16 {
        self.next_trn = self.next_trn.wrapping_add(1);
        self.next_trn
    }

    fn dgm(&mut self) -> u16 {
        self.next_dgm = self.next_dgm.wrapping_add(1);
        self.next_dgm
    }

    fn send_ns(&mut self, dest: SocketAddrV4, p: &NamePacket) {
        if let Ok(payload) = p.to_vec() {
            self.counters.name_packets_sent += 1;
            self.transmits.push_back(Transmit {
                port: Port::Name,
                dest,
                payload,
            });
        }
    }

    fn ns_broadcasts(&self) -> Vec<SocketAddrV4> {
        self.cfg
            .interfaces
            .iter()
            .map(|i| SocketAddrV4::new(i.broadcast, self.cfg.name_port))
            .collect()
    }

    fn node_type(&self) -> NodeType {
        if self.cfg.wins_server.is_some() {
            NodeType::H
        } else {
            NodeType::B
        }
    }

    /// Our address as seen from `peer` (the interface on its subnet, else the first).
    fn local_ip_for(&self, peer: Ipv4Addr) -> Ipv4Addr {
        self.cfg
            .interfaces
            .iter()
            .find(|i| i.contains(peer))
            .or(self.cfg.interfaces.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |i| i.ip)
    }

    fn is_own_ip(&self, ip: Ipv4Addr) -> bool {
        self.cfg.interfaces.iter().any(|i| i.ip == ip)
    }

    fn own(&self, n: &NetbiosName) -> Option<&OwnName> {
        let k = name_key(n);
        self.names.iter().find(|o| o.key == k)
    }

    // ---- timers -------------------------------------------------------------------------------

    /// Runs what is due at `now`: registration broadcasts, query retries, expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.registration_next {
            if t <= now {
                self.registration_step(now);
            }
        }
        self.query_step(now);
        if self.wins_refresh_next.is_some_and(|t| t <= now) {
            self.wins_refresh(now);
        }
    }

    /// How long after a registration or refresh the names are refreshed again: half the TTL the
    /// WINS server granted (as Windows and Samba do), at least [`MIN_WINS_REFRESH`].
    fn wins_refresh_interval(&self) -> Duration {
        (self.wins_ttl / 2).max(MIN_WINS_REFRESH)
    }

    /// Sends a name refresh request to the WINS server for each of our names we hold, one per
    /// interface address (a registration instead after the server refused one), and schedules
    /// the next round.
    fn wins_refresh(&mut self, now: Instant) {
        let Some(wins) = self.cfg.wins_server else {
            self.wins_refresh_next = None;
            return;
        };
        if self.shut_down {
            self.wins_refresh_next = None;
            return;
        }
        let held: Vec<OwnName> = self
            .names
            .iter()
            .filter(|n| matches!(n.state, NameState::Registered))
            .cloned()
            .collect();
        let reregister = std::mem::take(&mut self.wins_reregister);
        for n in held {
            for iface in self.cfg.interfaces.clone() {
                let trn = self.trn();
                let addr = NbAddress::new(iface.ip, n.group, self.node_type());
                let p = if reregister {
                    NamePacket::registration(trn, n.name.into(), NAME_TTL, addr, false)
                } else {
                    self.counters.wins_refreshes_sent += 1;
                    NamePacket::refresh(trn, n.name.into(), NAME_TTL, addr)
                };
                self.send_ns(SocketAddrV4::new(wins, self.cfg.name_port), &p);
            }
        }
        self.wins_refresh_next = Some(now + self.wins_refresh_interval());
    }

    /// The WINS server answered a registration or refresh of ours.
    fn on_wins_answer(&mut self, now: Instant, p: &NamePacket, ttl: u32) {
        if p.flags.rcode() != 0 {
            // Refused (the name is taken there, or the server forgot us and wants a
            // registration): count it and register again at the next round.
            self.counters.wins_refusals += 1;
            self.wins_reregister = true;
            return;
        }
        let granted = Duration::from_secs(u64::from(ttl).max(1));
        self.wins_ttl = self.wins_ttl.min(granted);
        let next = now + self.wins_refresh_interval();
        if self.wins_refresh_next.is_none_or(|t| t > next) {
            self.wins_refresh_next = Some(next);
        }
    }

    fn registration_step(&mut self, now: Instant) {
        let mut pending = Vec::new();
        for (i, n) in self.names.iter_mut().enumerate() {
            if let NameState::Registering { sent } = n.state {
                if sent >= RETRY_COUNT {
                    n.state = NameState::Registered;
                } else {
                    n.state = NameState::Registering { sent: sent + 1 };
                    pending.push(i);
                }
            }
        }
        for i in pending {
            let n = self.names[i].clone();
            for iface in self.cfg.interfaces.clone() {
                let trn = self.trn();
                self.names[i].trn_ids.push(trn);
                let addr = NbAddress::new(iface.ip, n.group, self.node_type());
                let p = NamePacket::registration(trn, n.name.into(), NAME_TTL, addr, true);
                self.send_ns(SocketAddrV4::new(iface.broadcast, self.cfg.name_port), &p);
                if let Some(wins) = self.cfg.wins_server {
                    let trn = self.trn();
                    self.names[i].trn_ids.push(trn);
                    let p = NamePacket::registration(trn, n.name.into(), NAME_TTL, addr, false);
                    self.send_ns(SocketAddrV4::new(wins, self.cfg.name_port), &p);
                }
            }
        }
        if self
            .names
            .iter()
            .all(|n| matches!(n.state, NameState::Registered | NameState::Lost))
        {
            self.registration_next = None;
            if self.cfg.wins_server.is_some() && self.wins_refresh_next.is_none() {
                self.wins_refresh_next = Some(now + self.wins_refresh_interval());
            }
            if !self.registered_reported {
                self.registered_reported = true;
                self.events.push_back(Event::NamesRegistered);
            }
        } else {
            self.registration_next = Some(now + RETRY_INTERVAL);
        }
    }

    fn query_step(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.queries.len() {
            if self.queries[i].next > now {
                i += 1;
                continue;
            }
            let q = &mut self.queries[i];
            let wins = self.cfg.wins_server;
            let (dests, done) = if let (Some(w), true) = (wins, q.wins_tries < RETRY_COUNT) {
                q.wins_tries += 1;
                (
                    vec![(SocketAddrV4::new(w, self.cfg.name_port), false)],
                    false,
                )
            } else if q.bcast_tries < RETRY_COUNT {
                q.bcast_tries += 1;
                (
                    self.cfg
                        .interfaces
                        .iter()
                        .map(|i| (SocketAddrV4::new(i.broadcast, self.cfg.name_port), true))
                        .collect(),
                    false,
                )
            } else {
                (Vec::new(), true)
            };
            if done {
                let q = self.queries.swap_remove(i);
                self.counters.resolution_failures += 1;
                self.cache_insert(
                    now,
                    name_key(&q.name),
                    CacheEntry {
                        addrs: Vec::new(),
                        expires: now + NEGATIVE_CACHE_TTL,
                    },
                );
                self.fail_waiters(q.waiters, &format!("cannot resolve {}", q.name));
                continue;
            }
            q.next = now + RETRY_INTERVAL;
            let (trn, name) = (q.trn_id, q.name);
            for (dest, bcast) in dests {
                let p = NamePacket::name_query(trn, name.into(), bcast);
                self.send_ns(dest, &p);
            }
            i += 1;
        }
    }

    /// Caches `entry` for `key`, keeping the cache within [`CACHE_CAPACITY`] names: when it is
    /// full, the expired entries go first (they are otherwise only removed when their name is
    /// looked up again), and if it is still full, all of them (the names still in use are soon
    /// resolved again; looking for the one to evict would cost a pass over the cache each time).
    fn cache_insert(&mut self, now: Instant, key: NetbiosName, entry: CacheEntry) {
        if self.cache.len() >= CACHE_CAPACITY && !self.cache.contains_key(&key) {
            self.cache.retain(|_, e| e.expires > now);
            if self.cache.len() >= CACHE_CAPACITY {
                self.cache.clear();
            }
        }
        self.cache.insert(key, entry);
    }

    fn fail_waiters(&mut self, waiters: Vec<Waiter>, why: &str) {
        for w in waiters {
            let failure = Failure {
                code: BAD_NETPATH,
                message: why.to_string(),
            };
            match w {
                Waiter::Write { id, .. } => {
                    self.counters.writes_failed += 1;
                    self.events.push_back(Event::WriteDone {
                        id,
                        result: Err(failure),
                    });
                }
                Waiter::Resolve { id } => self.events.push_back(Event::Resolved {
                    id,
                    result: Err(failure),
                }),
            }
        }
    }

    // ---- local requests -----------------------------------------------------------------------

    /// A request from a local program.
    pub fn handle_local(&mut self, now: Instant, req: LocalRequest) {
        match req {
            LocalRequest::Resolve { id, name, suffix } => match NetbiosName::new(&name, suffix) {
                Err(e) => {
                    self.counters.requests_invalid += 1;
                    self.events.push_back(Event::Resolved {
                        id,
                        result: Err(Failure {
                            code: INVALID_PARAMETER,
                            message: format!("invalid NetBIOS name {name:?}: {e}"),
                        }),
                    });
                }
                Ok(n) => self.resolve(now, n, Waiter::Resolve { id }),
            },
            LocalRequest::Write { id, write, caller } => self.local_write(now, id, write, caller),
        }
    }

    fn local_write(&mut self, now: Instant, id: u64, write: RemoteWrite, caller: Option<Caller>) {
        let wire = format!("{MAILSLOT_PREFIX}{}", write.path);
        let limit = max_network_payload(&wire);
        let fail = |this: &mut Self, code, message: String| {
            this.counters.writes_failed += 1;
            this.events.push_back(Event::WriteDone {
                id,
                result: Err(Failure { code, message }),
            });
        };
        if let Err(message) = check_write(&write) {
            self.counters.requests_invalid += 1;
            return fail(self, INVALID_PARAMETER, message);
        }
        let first = write.class == Class::First;
        if first && write.data.len() > MAX_FIRST_CLASS_NETWORK {
            return fail(
                self,
                INVALID_PARAMETER,
                format!(
                    "{} bytes is more than the {MAX_FIRST_CLASS_NETWORK} a first-class network \
                     write carries",
                    write.data.len()
                ),
            );
        }
        if first && write.target == Target::PrimaryDomain {
            return fail(self, INVALID_PARAMETER, FIRST_CLASS_GROUP.into());
        }
        if !first && write.data.len() > limit {
            return fail(
                self,
                BAD_NETPATH,
                format!(
                    "{} bytes is more than the {limit} a network mailslot write carries",
                    write.data.len()
                ),
            );
        }
        let host = match &write.target {
            Target::PrimaryDomain => self.cfg.workgroup.clone(),
            Target::Host(h) => h.clone(),
            Target::Local => {
                let message = format!(
                    "{:?} is a local name: write it without the daemon",
                    write.path
                );
                return fail(self, INVALID_PARAMETER, message);
            }
        };
        let mut dest = match NetbiosName::new(&host, 0x00) {
            Ok(d) => d,
            Err(e) => return fail(self, BAD_NETPATH, format!("invalid name {host:?}: {e}")),
        };
        let group = name_key(&dest) == name_key(&self.cfg.workgroup_name(0));
        if !group
            && write
                .path
                .eq_ignore_ascii_case(crate::session::MESSENGER_PATH)
        {
            // The Messenger's name is `NAME<03>` (a computer's, or a user's messenger name):
            // its messages are addressed there, as Windows addresses them.
            dest = dest.with_suffix(mailslot_proto::name::SUFFIX_MESSENGER);
        }
        let waiter = Waiter::Write {
            id,
            write,
            dest,
            caller,
        };
        // Our workgroup (and `*`) is a group: broadcast without asking anybody.
        if group {
            if first {
                return fail(self, INVALID_PARAMETER, FIRST_CLASS_GROUP.into());
            }
            return self.complete_write(
                waiter,
                &[Address {
                    ip: Ipv4Addr::BROADCAST,
                    group: true,
                }],
            );
        }
        // Ourselves (the computer name, or beside nmbd one of its aliases).
        if self.own(&dest).is_some_and(|o| !o.group) {
            let ip = self
                .cfg
                .interfaces
                .first()
                .map_or(Ipv4Addr::LOCALHOST, |i| i.ip);
            return self.complete_write(waiter, &[Address { ip, group: false }]);
        }
        self.resolve(now, dest, waiter);
    }

    fn resolve(&mut self, now: Instant, name: NetbiosName, waiter: Waiter) {
        let key = name_key(&name);
        if let Some(e) = self.cache.get(&key) {
            if e.expires > now {
                let addrs = e.addrs.clone();
                if addrs.is_empty() {
                    self.counters.resolution_failures += 1;
                    return self.fail_waiters(vec![waiter], &format!("cannot resolve {name}"));
                }
                return self.complete(waiter, &addrs);
            }
            self.cache.remove(&key);
        }
        if let Some(q) = self.queries.iter_mut().find(|q| name_key(&q.name) == key) {
            q.waiters.push(waiter);
            return;
        }
        if self.queries.len() >= MAX_PENDING_QUERIES {
            return self.fail_waiters(vec![waiter], "too many name resolutions in progress");
        }
        let trn_id = self.trn();
        self.queries.push(Query {
            trn_id,
            name,
            wins_tries: 0,
            bcast_tries: 0,
            next: now,
            waiters: vec![waiter],
        });
        self.query_step(now);
    }

    fn complete(&mut self, waiter: Waiter, addrs: &[Address]) {
        match waiter {
            Waiter::Resolve { id } => self.events.push_back(Event::Resolved {
                id,
                result: Ok(addrs.to_vec()),
            }),
            w @ Waiter::Write { .. } => self.complete_write(w, addrs),
        }
    }

    fn complete_write(&mut self, waiter: Waiter, addrs: &[Address]) {
        let Waiter::Write {
            id,
            write,
            dest,
            caller,
        } = waiter
        else {
            return;
        };
        if write.class == Class::First {
            return self.complete_first_class(id, write, dest, caller, addrs);
        }
        // Upper case on the wire, as LAN Manager and Windows programs name mailslots (receivers
        // compare case-insensitively; Wireshark dissects only upper-case names).
        let wire = format!("{MAILSLOT_PREFIX}{}", write.path.to_ascii_uppercase());
        let repr = MailslotWriteRepr {
            name: wire.as_bytes(),
            priority: u16::from(write.priority),
            class: u16::from(write.class.number()),
            data: &write.data,
        };
        let port = self.cfg.port;
        let sent = if addrs.iter().any(|a| a.group) {
            // DIRECT_GROUP to every subnet broadcast; our own copy is delivered directly. A
            // group write succeeds even if no datagram could be encoded (the copy is ours).
            for iface in self.cfg.interfaces.clone() {
                let to = SocketAddrV4::new(iface.broadcast, port);
                self.send_write(MsgType::DirectGroup, iface.ip, to, dest, &repr);
            }
            let own_ip = self
                .cfg
                .interfaces
                .first()
                .map_or(Ipv4Addr::LOCALHOST, |i| i.ip);
            self.deliver_own(&write, own_ip, caller);
            true
        } else if let Some(a) = addrs.first() {
            if self.is_own_ip(a.ip) {
                // A write to our own computer name never touches the network.
                self.deliver_own(&write, a.ip, caller);
                true
            } else {
                let to = SocketAddrV4::new(a.ip, port);
                let src_ip = self.local_ip_for(a.ip);
                self.send_write(MsgType::DirectUnique, src_ip, to, dest, &repr)
            }
        } else {
            false
        };
        let result = if sent {
            Ok(())
        } else {
            self.counters.writes_failed += 1;
            Err(Failure {
                code: INVALID_PARAMETER,
                message: "the message cannot be encoded as a datagram".into(),
            })
        };
        self.events.push_back(Event::WriteDone { id, result });
    }

    /// A resolved first-class write: to one host's session service (or, for ourselves, to the
    /// shell to write locally); a group name fails with 87.
    fn complete_first_class(
        &mut self,
        id: u64,
        write: RemoteWrite,
        dest: NetbiosName,
        caller: Option<Caller>,
        addrs: &[Address],
    ) {
        let Some(a) = addrs.first().filter(|_| !addrs.iter().any(|a| a.group)) else {
            self.counters.writes_failed += 1;
            let result = Err(Failure {
                code: INVALID_PARAMETER,
                message: FIRST_CLASS_GROUP.into(),
            });
            return self.events.push_back(Event::WriteDone { id, result });
        };
        let to = (!self.is_own_ip(a.ip)).then(|| SocketAddrV4::new(a.ip, self.cfg.session_port));
        self.events.push_back(Event::FirstClass(FirstClassWrite {
            id,
            to,
            called: dest.with_suffix(mailslot_proto::name::SUFFIX_FILE_SERVER),
            calling: self.cfg.computer(0x00),
            write,
            caller,
        }));
    }

    /// Queues a mailslot-write datagram of `msg_type` from our computer name at `src_ip` to the
    /// name `dest` at `to`; `false` if it cannot be encoded.
    fn send_write(
        &mut self,
        msg_type: MsgType,
        src_ip: Ipv4Addr,
        to: SocketAddrV4,
        dest: NetbiosName,
        repr: &MailslotWriteRepr<'_>,
    ) -> bool {
        let dgm = self.dgm();
        let source = self.cfg.computer(0).into();
        let mut m = MailslotMessage::new(msg_type, dgm, src_ip, source, dest.into(), repr.clone());
        m.flags = DatagramFlags::new(self.node_type());
        m.source_port = self.cfg.port;
        self.push_datagram(to, &m)
    }

    /// Delivers our own write into the local mailslot of its path, as sent by us from `ip`, on
    /// behalf of `caller` when a local program asked for it.
    fn deliver_own(&mut self, write: &RemoteWrite, ip: Ipv4Addr, caller: Option<Caller>) {
        self.counters.accepted += 1;
        self.events.push_back(Event::Deliver(Delivery {
            path: Arc::from(write.path.as_str()),
            data: Cow::Owned(write.data.clone()),
            priority: write.priority,
            class: write.class,
            sender_name: self.own_name.clone(),
            sender_ip: ip,
            caller,
        }));
    }

    fn push_datagram(&mut self, dest: SocketAddrV4, m: &MailslotMessage<'_>) -> bool {
        match m.to_vec() {
            Ok(payload) => {
                self.counters.datagrams_sent += 1;
                self.transmits.push_back(Transmit {
                    port: Port::Datagram,
                    dest,
                    payload,
                });
                true
            }
            Err(_) => false,
        }
    }

    // ---- received packets ---------------------------------------------------------------------

    /// Counts a datagram the shell could not read whole (longer than its buffer): malformed.
    pub fn count_truncated(&mut self) {
        self.counters.datagrams_received += 1;
        self.counters.dropped_malformed += 1;
    }

    /// A datagram nmbd relayed through its unexpected socket (beside nmbd), received by it from
    /// `src`. Like [`accept_datagram`](Self::accept_datagram), except that a datagram that
    /// filled nmbd's whole read buffer ([`nmbd::NMBD_MAX_DATAGRAM`]) and does not parse was cut
    /// by nmbd: it is counted in `dropped_truncated_by_nmbd`, never delivered.
    pub fn accept_relayed<'a>(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        bytes: &'a [u8],
    ) -> Option<Delivery<'a>> {
        if bytes.len() >= nmbd::NMBD_MAX_DATAGRAM && MailslotMessage::parse(bytes).is_err() {
            self.counters.datagrams_received += 1;
            self.counters.dropped_truncated_by_nmbd += 1;
            return None;
        }
        self.accept_datagram(now, src, bytes)
    }

    /// A packet received on `port` from `src`.
    pub fn handle_datagram(&mut self, now: Instant, port: Port, src: SocketAddrV4, bytes: &[u8]) {
        match port {
            Port::Datagram => self.on_datagram(now, src, bytes),
            Port::Name => self.on_name_packet(now, src, bytes),
        }
    }

    fn on_datagram(&mut self, now: Instant, src: SocketAddrV4, bytes: &[u8]) {
        if let Some(m) = self.accept_datagram(now, src, bytes) {
            self.events.push_back(Event::Deliver(m.into_owned()));
        }
    }

    /// Like [`handle_datagram`](Self::handle_datagram) for a packet on the datagram port, but a
    /// mailslot write to deliver is returned borrowing `bytes` instead of being queued as an
    /// [`Event::Deliver`] (no copy: the shell's fast path). Everything else — counters, the
    /// duplicate filter, dropping — is the same.
    pub fn accept_datagram<'a>(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        bytes: &'a [u8],
    ) -> Option<Delivery<'a>> {
        self.counters.datagrams_received += 1;
        let m = match MailslotMessage::parse(bytes) {
            Ok(m) => m,
            Err(mailslot_proto::Error::Fragmented { .. }) => {
                self.counters.dropped_fragment += 1;
                return None;
            }
            Err(
                mailslot_proto::Error::NoUserData { .. }
                | mailslot_proto::Error::NotTransaction { .. }
                | mailslot_proto::Error::NotMailslot { .. },
            ) => {
                self.counters.dropped_not_mailslot += 1;
                return None;
            }
            Err(_) => {
                self.counters.dropped_malformed += 1;
                return None;
            }
        };
        if self.is_own_ip(*src.ip()) && src.port() == self.cfg.port {
            self.counters.ignored_own += 1;
            return None;
        }
        let dest = m.destination.name;
        let for_us = dest.is_wildcard() || self.own(&dest).is_some();
        if !for_us || !same_scope(&m.destination.scope, &self.cfg.scope) {
            self.counters.dropped_not_for_us += 1;
            return None;
        }
        if self.cfg.check_source && m.source_ip != *src.ip() {
            // Only a datagram relayed by an NBDD legitimately names another source: spoofing.
            self.counters.dropped_spoofed_source += 1;
            return None;
        }
        if self.duplicates.seen(now, m.source_ip, m.dgm_id) {
            self.counters.dropped_duplicate += 1;
            return None;
        }
        let Some(path) = mailslot_path_of(m.write.name) else {
            self.counters.dropped_not_mailslot += 1;
            return None;
        };
        if self.cfg.beside_nmbd && !dest.is_wildcard() && nmbd::is_kept_by_nmbd_path(path) {
            // nmbd keeps the unicast copies of these: never deliver only the broadcast ones.
            self.counters.dropped_kept_by_nmbd += 1;
            return None;
        }
        if *self.last_path != *path {
            self.last_path = Arc::from(path);
        }
        if self.last_sender.0 != m.source.name {
            self.last_sender = (
                m.source.name,
                Arc::from(m.source.name.name_lossy().as_str()),
            );
        }
        self.counters.accepted += 1;
        Some(Delivery {
            path: self.last_path.clone(),
            data: Cow::Borrowed(m.write.data),
            priority: u8::try_from(m.write.priority.min(9)).unwrap_or(0),
            class: if m.write.class == 1 {
                Class::First
            } else {
                Class::Second
            },
            sender_name: self.last_sender.1.clone(),
            sender_ip: m.source_ip,
            caller: None,
        })
    }

    fn on_name_packet(&mut self, now: Instant, src: SocketAddrV4, bytes: &[u8]) {
        self.counters.name_packets_received += 1;
        let Ok(p) = NamePacket::parse(bytes) else {
            self.counters.dropped_malformed_name += 1;
            return;
        };
        if self.cfg.beside_nmbd {
            // We send from an ephemeral port and answer nothing: nmbd owns the name service,
            // and its answers about its (our) names come from our own address.
            if p.flags.is_response() {
                self.on_ns_response(now, src, &p);
            }
            return;
        }
        if self.is_own_ip(*src.ip()) && src.port() == self.cfg.name_port {
            self.counters.ignored_own += 1;
            return;
        }
        if p.flags.is_response() {
            self.on_ns_response(now, src, &p);
        } else {
            self.on_ns_request(src, &p);
        }
    }

    fn on_ns_request(&mut self, src: SocketAddrV4, p: &NamePacket) {
        let Some(q) = p.questions.first() else {
            return;
        };
        if !same_scope(&q.name.scope, &self.cfg.scope) {
            return;
        }
        match p.flags.opcode() {
            NsOpcode::Query if q.qtype == RrType::NbStat => self.answer_node_status(src, p, q),
            NsOpcode::Query => self.answer_query(src, p, q),
            NsOpcode::Registration | NsOpcode::MultiHomedRegistration => {
                self.defend_name(src, p, q);
            }
            NsOpcode::Release => self.forget_released(p, q),
            _ => {}
        }
    }

    /// A node-status request for one of our names (or `*`): our registered names.
    fn answer_node_status(&mut self, src: SocketAddrV4, p: &NamePacket, q: &Question) {
        let ours = q.name.name.is_wildcard() || self.own(&q.name.name).is_some();
        if !ours {
            return;
        }
        let status = NodeStatus {
            names: self
                .names
                .iter()
                .filter(|n| n.state == NameState::Registered)
                .map(|n| NodeStatusName {
                    name: n.name,
                    flags: (if n.group { 0x8000 } else { 0 }) | 0x0400,
                })
                .collect(),
            statistics: vec![0; 46],
        };
        let r = NamePacket::node_status_response(p.trn_id, q.name.clone(), status);
        self.counters.queries_answered += 1;
        self.send_ns(src, &r);
    }

    /// A name query: answered for a name of ours once registered, with our address on the
    /// asker's subnet.
    fn answer_query(&mut self, src: SocketAddrV4, p: &NamePacket, q: &Question) {
        let Some(n) = self.own(&q.name.name).cloned() else {
            return;
        };
        if n.state != NameState::Registered {
            return;
        }
        let ip = self.local_ip_for(*src.ip());
        let addr = NbAddress::new(ip, n.group, self.node_type());
        let r = NamePacket::positive_query_response(p.trn_id, q.name.clone(), NAME_TTL, vec![addr]);
        self.counters.queries_answered += 1;
        self.send_ns(src, &r);
    }

    /// Another node registers a name: defend a unique name of ours (or a group name of ours
    /// claimed as unique) with a negative response.
    fn defend_name(&mut self, src: SocketAddrV4, p: &NamePacket, q: &Question) {
        let Some(claim) = p.additional.first() else {
            return;
        };
        let claimed = match &claim.rdata {
            RData::Nb(a) => a.first(),
            _ => None,
        };
        let claimed_group = claimed.is_some_and(NbAddress::is_group);
        if claimed.is_some_and(|a| self.is_own_ip(a.ip)) {
            return;
        }
        let Some(n) = self.own(&q.name.name).cloned() else {
            return;
        };
        if n.group && claimed_group {
            return;
        }
        let ip = self.local_ip_for(*src.ip());
        let owner = NbAddress::new(ip, n.group, self.node_type());
        let r = NamePacket::negative_registration_response(p.trn_id, q.name.clone(), owner);
        self.counters.names_defended += 1;
        self.send_ns(src, &r);
    }

    /// A node releases a name: forget the cached address only if the releasing node is the one
    /// we cached.
    fn forget_released(&mut self, p: &NamePacket, q: &Question) {
        let released: Vec<Ipv4Addr> = match p.additional.first().map(|r| &r.rdata) {
            Some(RData::Nb(v)) => v.iter().map(|x| x.ip).collect(),
            _ => Vec::new(),
        };
        let key = name_key(&q.name.name);
        if let Some(e) = self.cache.get_mut(&key) {
            e.addrs.retain(|x| !released.contains(&x.ip));
            if e.addrs.is_empty() {
                self.cache.remove(&key);
            }
        }
    }

    fn on_ns_response(&mut self, now: Instant, src: SocketAddrV4, p: &NamePacket) {
        let Some(a) = p.answers.first() else {
            return;
        };
        let registration = matches!(
            p.flags.opcode(),
            NsOpcode::Registration | NsOpcode::MultiHomedRegistration
        );
        let refresh = matches!(p.flags.opcode(), NsOpcode::Refresh | NsOpcode::RefreshAlt);
        if self.cfg.wins_server == Some(*src.ip())
            && (registration || refresh)
            && self.own(&a.name.name).is_some()
        {
            self.on_wins_answer(now, p, a.ttl);
            // A refused registration is also an objection (handled below, as from any node).
            if !registration || p.flags.rcode() == 0 {
                return;
            }
        }
        match p.flags.opcode() {
            NsOpcode::Registration | NsOpcode::MultiHomedRegistration if p.flags.rcode() != 0 => {
                self.on_objection(src, p, a);
            }
            NsOpcode::Query if a.rr_type == RrType::Nb => self.on_query_answer(now, src, p, a),
            _ => {}
        }
    }

    /// An objection to our registration: fatal for a unique name of ours, but only while we are
    /// registering it and only in answer to one of our own requests (RFC 1002 matches responses
    /// by NAME_TRN_ID). Anything else is a stray or a forgery and must not take a running daemon
    /// down.
    fn on_objection(&mut self, src: SocketAddrV4, p: &NamePacket, a: &ResourceRecord) {
        let key = name_key(&a.name.name);
        let Some(idx) = self.names.iter().position(|n| name_key(&n.name) == key) else {
            return;
        };
        let n = &self.names[idx];
        let registering = matches!(n.state, NameState::Registering { .. });
        if n.group || !registering || !n.trn_ids.contains(&p.trn_id) || self.shut_down {
            self.counters.ignored_objections += 1;
            return;
        }
        let by = match &a.rdata {
            RData::Nb(v) => v.first().map_or(*src.ip(), |x| x.ip),
            _ => *src.ip(),
        };
        self.names[idx].state = NameState::Lost;
        self.events.push_back(Event::NameConflict {
            name: self.names[idx].name.to_string(),
            by,
        });
    }

    /// An answer to one of our name queries: cache the addresses and complete the waiters.
    fn on_query_answer(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        p: &NamePacket,
        a: &ResourceRecord,
    ) {
        let Some(pos) = self
            .queries
            .iter()
            .position(|q| q.trn_id == p.trn_id && name_key(&q.name) == name_key(&a.name.name))
        else {
            return;
        };
        if p.flags.rcode() != 0 {
            // Negative: from WINS, go on with broadcast; from a node, ignore.
            if self.cfg.wins_server == Some(*src.ip()) {
                self.queries[pos].wins_tries = RETRY_COUNT;
                self.queries[pos].next = now;
                self.query_step(now);
            }
            return;
        }
        let RData::Nb(addrs) = &a.rdata else {
            return;
        };
        let resolved: Vec<Address> = addrs
            .iter()
            .take(MAX_ANSWER_ADDRESSES)
            .map(|x| Address {
                ip: x.ip,
                group: x.is_group(),
            })
            .collect();
        if resolved.is_empty() {
            return;
        }
        let q = self.queries.swap_remove(pos);
        let ttl = Duration::from_secs(u64::from(a.ttl))
            .max(MIN_CACHE_TTL)
            .min(MAX_CACHE_TTL);
        let entry = CacheEntry {
            addrs: resolved.clone(),
            expires: now + ttl,
        };
        self.cache_insert(now, name_key(&q.name), entry);
        for w in q.waiters {
            self.complete(w, &resolved);
        }
    }

    /// Starts an orderly shutdown: queues name releases. Send what
    /// [`poll_transmit`](Self::poll_transmit) gives, then stop.
    pub fn shutdown(&mut self, _now: Instant) {
        self.shut_down = true;
        let names: Vec<OwnName> = self
            .names
            .iter()
            // Beside nmbd the names are nmbd's: never release them.
            .filter(|_| !self.cfg.beside_nmbd)
            // Only names we hold: never one we are still registering or have lost (another
            // node owns it).
            .filter(|n| n.state == NameState::Registered)
            .cloned()
            .collect();
        for n in names {
            for iface in self.cfg.interfaces.clone() {
                let trn = self.trn();
                let addr = NbAddress::new(iface.ip, n.group, self.node_type());
                let p = NamePacket::release(trn, n.name.into(), addr, true);
                self.send_ns(SocketAddrV4::new(iface.broadcast, self.cfg.name_port), &p);
                if let Some(w) = self.cfg.wins_server {
                    let trn = self.trn();
                    let p = NamePacket::release(trn, n.name.into(), addr, false);
                    self.send_ns(SocketAddrV4::new(w, self.cfg.name_port), &p);
                }
            }
        }
        self.registration_next = None;
        let queries = std::mem::take(&mut self.queries);
        for q in queries {
            self.fail_waiters(q.waiters, "the mailslot daemon is shutting down");
        }
    }

    /// The name-service broadcast destinations (for the shell's logs).
    pub fn broadcast_destinations(&self) -> Vec<SocketAddrV4> {
        self.ns_broadcasts()
    }
}

/// Whether two NetBIOS scopes are the same. Two empty scopes (the usual case) are compared by
/// length only: `==` on two empty `String`s calls `memcmp` with their dangling pointers, which
/// some `memcmp` implementations (masked AVX-512 loads) turn into a slow fault-suppression assist
/// on every datagram.
fn same_scope(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// The path after `\MAILSLOT\` (case-insensitive prefix), if the name is a mailslot name.
fn mailslot_path_of(name: &[u8]) -> Option<&str> {
    const P: &[u8] = MAILSLOT_PREFIX.as_bytes();
    if name.len() <= P.len() || !name[..P.len()].eq_ignore_ascii_case(P) {
        return None;
    }
    std::str::from_utf8(&name[P.len()..]).ok()
}

/// Range checks of a local write's fields that the types leave open: priority 0–9, a mailslot
/// path of 1 to [`MAX_PATH_LEN`](mailslot::name::MAX_PATH_LEN) bytes, a host name of 1 to 15
/// characters. (The class is an enum; the data size is checked against the datagram's room.)
fn check_write(write: &RemoteWrite) -> Result<(), String> {
    if write.priority > 9 {
        return Err(format!("priority {} is not 0-9", write.priority));
    }
    if write.path.is_empty() || write.path.len() > mailslot::name::MAX_PATH_LEN {
        return Err(format!(
            "a mailslot path has 1 to {} bytes, not {}",
            mailslot::name::MAX_PATH_LEN,
            write.path.len()
        ));
    }
    if let Target::Host(h) = &write.target {
        if h.is_empty() || h.len() > 15 {
            return Err(format!(
                "a NetBIOS name has 1 to 15 characters, not {}",
                h.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mailslot::daemon::{
        DeliveryCounters, ModeStatus, Ports, Reply, SessionCounters, Status, MAX_RECORD,
    };

    use super::*;
    use crate::config::Interface;

    fn router(now: Instant) -> Router {
        let cfg = RouterConfig::new(
            "HOSTA",
            "WORKGROUP",
            vec![Interface::new(Ipv4Addr::new(10, 0, 0, 1), 24)],
        );
        Router::new(cfg, now)
    }

    /// Failed resolutions are remembered under the same bound as answered ones: more failing
    /// names than the cache holds, all within the negative TTL, never grow it beyond
    /// [`CACHE_CAPACITY`]; and once they have expired the listing leaves them out.
    #[test]
    fn failed_resolutions_keep_the_cache_within_its_capacity() {
        let mut now = Instant::now();
        let mut r = router(now);
        let mut id = 0u64;
        // Five rounds of as many resolutions as may be in progress, a second each: the first
        // round's failures are still remembered when the last round's come in.
        for _round in 0..5 {
            for _ in 0..MAX_PENDING_QUERIES {
                id += 1;
                r.handle_local(
                    now,
                    LocalRequest::Resolve {
                        id,
                        name: format!("NOBODY{id}"),
                        suffix: 0x20,
                    },
                );
            }
            // Three broadcast tries 250 ms apart, then the failure.
            for _ in 0..4 {
                now += RETRY_INTERVAL;
                r.handle_timeout(now);
                assert!(r.cache.len() <= CACHE_CAPACITY, "{} cached", r.cache.len());
            }
            while r.poll_transmit().is_some() {}
            while r.poll_event().is_some() {}
        }
        assert!(r.queries.is_empty());
        assert_eq!(r.counters().resolution_failures, id);
        assert!(id > CACHE_CAPACITY as u64);
        assert!(!r.cache(now).is_empty());
        now += NEGATIVE_CACHE_TTL;
        assert!(r.cache(now).is_empty(), "expired entries listed");
    }

    /// The daemon's status lists the cache; with the cache full of the longest entries (every
    /// name byte printed escaped, many addresses each) it still fits one control record.
    #[test]
    fn a_status_with_a_full_cache_fits_one_record() {
        let now = Instant::now();
        let mut r = router(now);
        for i in 0..CACHE_CAPACITY {
            let mut raw = [0x01u8; 16];
            raw[0] = 0x80 | (i >> 6) as u8;
            raw[1] = 0x80 | (i & 0x3f) as u8;
            raw[15] = 0x20;
            let addrs = (0..64)
                .map(|j| Address {
                    ip: Ipv4Addr::new(255, 255, 255, j),
                    group: false,
                })
                .collect();
            r.cache.insert(
                NetbiosName::from_raw(raw),
                CacheEntry {
                    addrs,
                    expires: now + MAX_CACHE_TTL,
                },
            );
        }
        let cache = r.cache(now);
        assert_eq!(cache.len(), LISTED_CACHE_ENTRIES);
        assert!(cache.iter().all(|c| c.addresses.len() == LISTED_ADDRESSES));
        assert!(cache.windows(2).all(|w| w[0].name < w[1].name));
        let status = Status {
            netbios_name: "HOSTA".into(),
            workgroup: "WORKGROUP".into(),
            interfaces: vec!["10.0.0.1/24".into()],
            wins_server: None,
            ports: Ports {
                datagram: 138,
                name: 137,
                session: 139,
            },
            uptime_s: u64::MAX,
            names: r.names(),
            cache,
            counters: r.counters().clone(),
            delivery: DeliveryCounters::default(),
            mode: ModeStatus::default(),
            session: SessionCounters::default(),
            directory: None,
        };
        let record = Reply::Status(Box::new(status))
            .encode()
            .expect("the status does not fit one record");
        assert!(record.len() <= MAX_RECORD);
    }

    /// An answer may carry any number of addresses: only the first [`MAX_ANSWER_ADDRESSES`]
    /// are taken (cached, and given to the request that asked), so that a host that lies in its
    /// answer can neither fill the daemon's memory (4096 cached names of thousands of
    /// addresses each) nor make it write to thousands of addresses.
    #[test]
    fn a_query_answer_with_thousands_of_addresses_is_cut() {
        let now = Instant::now();
        let mut r = router(now);
        r.handle_local(
            now,
            LocalRequest::Resolve {
                id: 1,
                name: "BIGGROUP".into(),
                suffix: 0x20,
            },
        );
        let query = std::iter::from_fn(|| r.poll_transmit())
            .filter(|t| t.port == Port::Name)
            .find_map(|t| NamePacket::parse(&t.payload).ok())
            .expect("a name query");
        let addresses = (0..1000u32)
            .map(|i| NbAddress::new(Ipv4Addr::from(0x0a01_0000 + i), true, NodeType::B))
            .collect();
        let answer = NamePacket::positive_query_response(
            query.trn_id,
            query.questions[0].name.clone(),
            300,
            addresses,
        );
        r.handle_datagram(
            now,
            Port::Name,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 137),
            &answer.to_vec().unwrap(),
        );
        let resolved = std::iter::from_fn(|| r.poll_event())
            .find_map(|e| match e {
                Event::Resolved {
                    id: 1,
                    result: Ok(a),
                } => Some(a),
                _ => None,
            })
            .expect("the name resolves");
        assert_eq!(resolved.len(), MAX_ANSWER_ADDRESSES);
        assert_eq!(r.cache.len(), 1);
        assert!(r
            .cache
            .values()
            .all(|e| e.addrs.len() == MAX_ANSWER_ADDRESSES));
    }
}
