//! The network side of mailslots: NetBIOS name service and mailslot datagrams on UDP 137/138.
//!
//! - [`Router`] is the protocol logic without I/O (in the style of `quinn-proto`): feed it
//!   packets ([`Router::handle_datagram`]) and local requests ([`Router::handle_local`]), take
//!   out packets to send ([`Router::poll_transmit`]), things to do ([`Router::poll_event`]) and
//!   the next deadline ([`Router::poll_timeout`], [`Router::handle_timeout`]). The time is always
//!   passed in, so tests run with a fake clock and an in-memory network.
//! - [`daemon`] is the thin tokio shell (`mailslotd`, also `mailslot daemon`): sockets, clock,
//!   delivery into local mailslots, the control socket, signals, privileges, metrics.
//! - [`config`] reads the TOML configuration.
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

pub mod config;
pub mod daemon;
mod dedupe;
mod router;

pub use config::{ConfigError, DaemonConfig, Interface, RouterConfig};
pub use router::{
    Counters, Event, Failure, Incoming, LocalRequest, Port, Resolved, Router, Target, Transmit,
    DUPLICATE_WINDOW, ERROR_BAD_NETPATH, RETRY_COUNT, RETRY_INTERVAL,
};
