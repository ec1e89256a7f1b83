//! The network side of mailslots, without I/O: NetBIOS name service and mailslot datagrams on
//! UDP 137/138. The daemon that runs it (sockets, clock, delivery, control socket) is the crate
//! `mailslotd`.
//!
//! - [`Router`] is the protocol logic without I/O (in the style of `quinn-proto`): feed it
//!   packets ([`Router::handle_datagram`]) and local requests ([`Router::handle_local`]), take
//!   out packets to send ([`Router::poll_transmit`]), things to do ([`Router::poll_event`]) and
//!   the next deadline ([`Router::poll_timeout`], [`Router::handle_timeout`]). The time is always
//!   passed in, so tests run with a fake clock and an in-memory network.
//! - [`RouterConfig`] is what it needs to know of the host (names, interfaces, ports).
//! - What it reports uses the vocabulary of the `mailslot` library: [`mailslot::Target`] for where
//!   a write goes, and the control protocol's types ([`mailslot::daemon::RouterCounters`],
//!   [`mailslot::daemon::NameStatus`], [`mailslot::daemon::Address`],
//!   [`mailslot::daemon::Failure`]) for what a client of the daemon reads.
//!
//! Behaviour (see `ARCHITECTURE.md` of the project for the full story):
//! - registers `COMPUTER<00>` and `COMPUTER<03>` (unique), `WORKGROUP<00>` and `WORKGROUP<1E>`
//!   (group) by three broadcasts 250 ms apart (and with the WINS server, if configured); a
//!   negative response to a unique name is a [`Event::NameConflict`];
//! - defends its unique names with negative registration responses, answers name queries and
//!   node-status requests for its names;
//! - resolves names by WINS (H-node) then broadcast, 3 tries 250 ms apart each, and caches them;
//! - `\\COMPUTER\…` goes DIRECT_UNIQUE to the resolved address (DIRECT_GROUP to the broadcast
//!   address if the name is a group); `\\DOMAIN\…` and `\\*\…` go DIRECT_GROUP to every subnet
//!   broadcast, and — as on Windows, where every mailslot of that name in the domain receives it —
//!   also to the local mailslot of that name;
//! - incoming mailslot writes addressed to our names or to `*` are delivered; malformed, foreign,
//!   fragmented and duplicate (same source IP and DGM_ID within 2 s) datagrams are dropped and
//!   counted.
//! - beside Samba's `nmbd` ([`RouterConfig::beside_nmbd`]) it holds the names nmbd holds without
//!   registering, defending or answering anything, takes the datagrams nmbd relays
//!   ([`Router::accept_relayed`], the relay format in [`nmbd`]) and drops writes to the
//!   mailslots nmbd keeps.

#![forbid(unsafe_code)]

mod config;
mod dedupe;
pub mod nmbd;
mod router;
pub mod session;

pub use config::{Interface, RouterConfig};
pub use router::{
    Delivery, Event, FirstClassWrite, LocalRequest, Port, Router, Transmit, DUPLICATE_WINDOW,
    RETRY_COUNT, RETRY_INTERVAL,
};
