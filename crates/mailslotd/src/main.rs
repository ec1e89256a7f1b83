//! `mailslotd`: the mailslot network daemon (NetBIOS datagrams on UDP 138, name service on 137).
//!
//! Exit status: 0 after SIGTERM/SIGINT (names released), 2 on a configuration or startup error,
//! 3 when another node holds our computer name.

use std::process::ExitCode;

use clap::Parser;

/// The mailslot network daemon: delivers mailslot writes between hosts, interoperating with
/// Windows and Samba.
#[derive(Parser, Debug)]
#[command(name = "mailslotd", version, about)]
struct Cli {
    #[command(flatten)]
    args: mailslotd::DaemonArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(mailslotd::run(&cli.args))
}
