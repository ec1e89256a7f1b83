//! Serves only the daemon's mailslot directory, at the abstract address given (default: the
//! daemon's own), until killed. For running the library's test suites with the directory
//! (`MAILSLOT_DIRECTORY=<address>`), as `.ci/run` does, without the daemon's network ports.
//!
//! `cargo run -p mailslotd --example directory -- [address]`

use mailslotd::directory::DirectoryServer;

fn main() -> anyhow::Result<()> {
    let server = match std::env::args().nth(1) {
        Some(address) => DirectoryServer::bind_at(&address)?,
        None => DirectoryServer::bind()?,
    };
    mailslotd::directory::raise_fd_limit();
    let _running = server.spawn()?;
    println!("ready");
    loop {
        std::thread::park();
    }
}
