//! The hidden role subcommands: the processes of one measurement, which the harness starts by
//! re-executing its own binary (`sys::run_role`). Each role is one function of the bench module
//! it belongs to; this module names them and hands each its options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::netfc::FcRun;
use crate::tput::Transport;
use crate::{mem, mount, net, netfc, rtt, sys, tput};

/// The options of a role that moves `count` messages of `size` bytes through mailslots with a
/// `quota` of bytes.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Load {
    #[arg(long)]
    pub(crate) size: usize,
    #[arg(long)]
    pub(crate) count: u64,
    #[arg(long)]
    pub(crate) quota: usize,
}

impl Load {
    /// The options as they stand on a role's command line.
    pub(crate) fn args(self) -> [String; 6] {
        [
            "--size".into(),
            self.size.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--quota".into(),
            self.quota.to_string(),
        ]
    }
}

/// How the round-trip roles wait for a message.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Spin {
    /// Microseconds to spin on an empty mailslot before a blocking read.
    #[arg(long, default_value_t = 0)]
    spin_us: u64,
    /// The library's read spin off on both mailslots (`Builder::spin(Duration::ZERO)`).
    #[arg(long)]
    pub(crate) nospin: bool,
}

impl Spin {
    /// How long to spin on an empty mailslot before a blocking read.
    pub(crate) fn spin(self) -> Duration {
        Duration::from_micros(self.spin_us)
    }

    /// The options as they stand on a role's command line.
    pub(crate) fn args(self) -> Vec<String> {
        let mut args = vec!["--spin-us".into(), self.spin_us.to_string()];
        if self.nospin {
            args.push("--nospin".into());
        }
        args
    }
}

/// The options of the two network throughput roles: `count` datagrams of `size` bytes to the
/// daemon's `port`, marked with the measurement's `epoch`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct NetRun {
    #[arg(long)]
    pub(crate) port: u16,
    #[arg(long)]
    pub(crate) size: usize,
    #[arg(long)]
    pub(crate) count: u64,
    #[arg(long)]
    pub(crate) epoch: u8,
    /// Pin (owner on the reader CPU, sender on the writer CPU).
    #[arg(long)]
    pub(crate) pinned: bool,
}

impl NetRun {
    /// The command line of `role` (a hidden subcommand's name) with these options.
    pub(crate) fn command(self, role: &str) -> Vec<String> {
        let mut args = vec![
            role.into(),
            "--port".into(),
            self.port.to_string(),
            "--size".into(),
            self.size.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--epoch".into(),
            self.epoch.to_string(),
        ];
        if self.pinned {
            args.push("--pinned".into());
        }
        args
    }
}

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
        #[command(flatten)]
        load: Load,
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
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        spin: Spin,
    },
    /// Round-trip echoer.
    #[command(name = "__rtt-echo", hide = true)]
    RttEcho {
        #[arg(long)]
        reply: String,
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        spin: Spin,
    },
    /// Multi-client round-trip coordinator and echoer.
    #[command(name = "__rtt8-echo", hide = true)]
    RttManyEcho {
        #[arg(long)]
        clients: usize,
        #[command(flatten)]
        load: Load,
    },
    /// Network throughput owner (reads the local mailslot; starts the sender).
    #[command(name = "__net-owner", hide = true)]
    NetOwner(NetRun),
    /// Network throughput sender (UDP datagrams to the daemon).
    #[command(name = "__net-sender", hide = true)]
    NetSender(NetRun),
    /// One pinger of the multi-client round trip.
    #[command(name = "__rtt8-ping", hide = true)]
    RttManyPing {
        #[arg(long)]
        echo: String,
        #[arg(long)]
        id: u8,
        #[command(flatten)]
        load: Load,
    },
    /// Creates idle mailslots and prints their memory the way memidle does.
    #[command(name = "__mem-idle", hide = true)]
    MemIdle {
        #[arg(long)]
        count: usize,
        /// Without the daemon's directory: each slot binds a socket of its own.
        #[arg(long)]
        own_sockets: bool,
    },
    /// First-class bench receiver on host B (mailslot owner or TCP anchor server).
    #[command(name = "__fc-recv", hide = true)]
    FcRecv(FcRun),
    /// First-class bench sender on host A (starts the writers).
    #[command(name = "__fc-send", hide = true)]
    FcSend(FcRun),
    /// One writer of the first-class bench.
    #[command(name = "__fc-writer", hide = true)]
    FcWriter {
        #[command(flatten)]
        run: FcRun,
        #[arg(long)]
        id: u8,
    },
    /// Serves the file view (`mailslot mount`) at a directory until SIGTERM.
    #[command(name = "__mount-fs", hide = true)]
    MountFs {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs one role process to its end (a measuring role under a watchdog, so that a stuck role
/// cannot outlive the harness; not the file view, which serves the whole run until SIGTERM).
pub(crate) fn run(role: Role) -> Result<()> {
    if !matches!(role, Role::MountFs { .. }) {
        sys::watchdog("benchmark role");
    }
    match role {
        Role::TputOwner {
            transport,
            writers,
            load,
        } => tput::owner(transport, writers, load),
        Role::TputWriter {
            transport,
            name,
            size,
            count,
            id,
        } => tput::writer(transport, &name, size, count, id),
        Role::RttPing { load, spin } => rtt::ping(load, spin),
        Role::RttEcho { reply, load, spin } => rtt::echo(&reply, load, spin),
        Role::RttManyEcho { clients, load } => rtt::echo_many(clients, load),
        Role::RttManyPing { echo, id, load } => rtt::ping_one(&echo, id, load),
        Role::NetOwner(run) => net::owner(run),
        Role::NetSender(run) => net::sender(run),
        Role::MemIdle { count, own_sockets } => mem::idle(count, own_sockets),
        Role::MountFs { dir } => mount::serve(&dir),
        Role::FcRecv(run) => netfc::recv(run),
        Role::FcSend(run) => netfc::send(run),
        Role::FcWriter { run, id } => netfc::writer(run, id),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;

    fn parse(args: &[String]) -> Role {
        let argv = std::iter::once("mailslot-bench".to_string()).chain(args.iter().cloned());
        Cli::try_parse_from(argv)
            .expect("the role's command line parses")
            .role
            .expect("a role")
    }

    #[test]
    fn role_command_lines_parse_back_to_their_options() {
        let load = Load {
            size: 64,
            count: 1000,
            quota: 4096,
        };
        let spin = Spin {
            spin_us: 5,
            nospin: true,
        };
        let mut args = vec!["__rtt-echo".into(), "--reply".into(), "r".into()];
        args.extend(load.args());
        args.extend(spin.args());
        let Role::RttEcho { reply, load, spin } = parse(&args) else {
            panic!("not the echo role");
        };
        assert_eq!(
            (reply.as_str(), load.size, load.count, load.quota),
            ("r", 64, 1000, 4096)
        );
        assert_eq!((spin.spin(), spin.nospin), (Duration::from_micros(5), true));

        let run = NetRun {
            port: 1138,
            size: 100,
            count: 7,
            epoch: 3,
            pinned: true,
        };
        let Role::NetSender(back) = parse(&run.command("__net-sender")) else {
            panic!("not the sender role");
        };
        assert_eq!(
            (back.port, back.size, back.count, back.epoch, back.pinned),
            (1138, 100, 7, 3, true)
        );
        let Role::NetOwner(back) = parse(
            &NetRun {
                pinned: false,
                ..run
            }
            .command("__net-owner"),
        ) else {
            panic!("not the owner role");
        };
        assert!(!back.pinned);

        let run = FcRun {
            kind: netfc::Kind::Second,
            size: 64,
            count: 250,
            warmup: 45,
            writers: 8,
            to: r"\\FCBENCHB\mailslot\fc_bench".into(),
        };
        let mut args = run.command("__fc-writer");
        args.extend(["--id".into(), "3".into()]);
        let Role::FcWriter { run: back, id } = parse(&args) else {
            panic!("not the writer role");
        };
        assert_eq!(
            (
                back.kind,
                back.size,
                back.count,
                back.warmup,
                back.writers,
                id
            ),
            (netfc::Kind::Second, 64, 250, 45, 8, 3)
        );
        assert_eq!(back.to, run.to);
        let Role::FcRecv(back) = parse(&run.command("__fc-recv")) else {
            panic!("not the receiver role");
        };
        assert_eq!(back.kind, netfc::Kind::Second);
    }
}
