//! The hidden role subcommands: the processes of one measurement, which the harness starts by
//! re-executing its own binary (`sys::run_role`). Each role is one function of the bench module
//! it belongs to; this module names them and hands each its options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;

use crate::tput::Transport;
use crate::{mem, mount, net, rtt, sys, tput};

/// Hidden subcommands: the processes of one measurement.
#[derive(Debug, Subcommand)]
pub(crate) enum Role {
    /// Throughput reader (owner) that starts its writers.
    #[command(name = "__tput-owner", hide = true)]
    TputOwner {
        #[arg(long, value_enum)]
        transport: Transport,
        #[arg(long)]
        writers: usize,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
    },
    /// Throughput writer.
    #[command(name = "__tput-writer", hide = true)]
    TputWriter {
        #[arg(long, value_enum)]
        transport: Transport,
        #[arg(long)]
        name: String,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        id: u8,
    },
    /// Round-trip pinger that starts the echoer.
    #[command(name = "__rtt-ping", hide = true)]
    RttPing {
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
        #[arg(long, default_value_t = 0)]
        spin_us: u64,
        /// The library's read spin off on both mailslots (`Builder::spin(Duration::ZERO)`).
        #[arg(long)]
        nospin: bool,
    },
    /// Round-trip echoer.
    #[command(name = "__rtt-echo", hide = true)]
    RttEcho {
        #[arg(long)]
        reply: String,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
        #[arg(long, default_value_t = 0)]
        spin_us: u64,
        #[arg(long)]
        nospin: bool,
    },
    /// Multi-client round-trip coordinator and echoer.
    #[command(name = "__rtt8-echo", hide = true)]
    RttManyEcho {
        #[arg(long)]
        clients: usize,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
    },
    /// Network throughput owner (reads the local mailslot; starts the sender).
    #[command(name = "__net-owner", hide = true)]
    NetOwner {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        epoch: u8,
        /// Pin (owner on the reader CPU, sender on the writer CPU).
        #[arg(long)]
        pinned: bool,
    },
    /// Network throughput sender (UDP datagrams to the daemon).
    #[command(name = "__net-sender", hide = true)]
    NetSender {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        epoch: u8,
        /// Pin to the writer CPU.
        #[arg(long)]
        pinned: bool,
    },
    /// One pinger of the multi-client round trip.
    #[command(name = "__rtt8-ping", hide = true)]
    RttManyPing {
        #[arg(long)]
        echo: String,
        #[arg(long)]
        id: u8,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        quota: usize,
    },
    /// Creates idle mailslots and prints their memory the way memidle does.
    #[command(name = "__mem-idle", hide = true)]
    MemIdle {
        #[arg(long)]
        count: usize,
    },
    /// Serves the file view (`mailslot mount`) at a directory until SIGTERM.
    #[command(name = "__mount-fs", hide = true)]
    MountFs {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs one role process to its end (under a watchdog, so that a stuck role cannot outlive the
/// harness).
pub(crate) fn run(role: Role) -> Result<()> {
    sys::watchdog("benchmark role");
    match role {
        Role::TputOwner {
            transport,
            writers,
            size,
            count,
            quota,
        } => tput::owner(transport, writers, size, count, quota),
        Role::TputWriter {
            transport,
            name,
            size,
            count,
            id,
        } => tput::writer(transport, &name, size, count, id),
        Role::RttPing {
            size,
            count,
            quota,
            spin_us,
            nospin,
        } => rtt::ping(size, count, quota, Duration::from_micros(spin_us), nospin),
        Role::RttEcho {
            reply,
            size,
            count,
            quota,
            spin_us,
            nospin,
        } => rtt::echo(
            &reply,
            size,
            count,
            quota,
            Duration::from_micros(spin_us),
            nospin,
        ),
        Role::RttManyEcho {
            clients,
            size,
            count,
            quota,
        } => rtt::echo_many(clients, size, count, quota),
        Role::RttManyPing {
            echo,
            id,
            size,
            count,
            quota,
        } => rtt::ping_one(&echo, id, size, count, quota),
        Role::NetOwner {
            port,
            size,
            count,
            epoch,
            pinned,
        } => net::owner(port, size, count, epoch, pinned),
        Role::NetSender {
            port,
            size,
            count,
            epoch,
            pinned,
        } => net::sender(port, size, count, epoch, pinned),
        Role::MemIdle { count } => mem::idle(count),
        Role::MountFs { dir } => mount::serve(&dir),
    }
}
