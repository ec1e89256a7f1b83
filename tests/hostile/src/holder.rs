//! The processes of the shared owner-handle tests: a holder that takes up an owner handle made
//! by another process and reads on command, and a creator that hands its handle to a holder.
//!
//! ```text
//! mailslot-hostile holder inherit <fd>     take up the inherited descriptor <fd>
//! mailslot-hostile holder socket <fd>      receive the handle on the inherited socket <fd>
//! mailslot-hostile holder connect <path>   connect to the named socket <path>, receive it there
//! mailslot-hostile create-pass <name> <path>
//! mailslot-hostile take-writer-fds <name>
//! ```
//!
//! A holder prints `holding` once it holds the handle (`take-failed <code> <error>` and exits 1
//! when it cannot), then runs the commands it reads on stdin, one per line:
//!
//! - `read <n> <timeout_ms>`: reads up to `n` messages, each with that timeout; prints
//!   `msg <writer-id> <seq>` for each (`bad <preview>` for one that does not decode), and on an
//!   error `err <win32-code> <error>` and stops; then `done <count>`.
//! - `stream`: prints `reading`, then reads until the command `stop` arrives, printing `msg` /
//!   `bad` lines as above (`err` lines for errors other than a timeout, after which it stops);
//!   then `done <count>`.
//! - `read-forever`: prints `reading`, then one read that waits for ever; prints the `msg`,
//!   `bad` or `err` line.
//! - `delete`: deletes the mailslot for every holder, prints `deleted` and exits 0.
//! - `share`: tries [`Mailslot::share`]; prints `shared` or `err <code> <error>`.
//! - `exit` (or the end of stdin): drops the handle and exits 0.
//!
//! `create-pass` creates the mailslot `<name>` (owner-only access), listens on the named Unix
//! socket `<path>` and prints `ready`; then accepts one connection, sends the owner handle on it
//! ([`Mailslot::send_handle`]), prints `passed` (or `pass-failed <code> <error>`) and sleeps,
//! holding its own handle, until it is killed.
//!
//! `take-writer-fds` opens `<name>` as a writer, writes `hello`, then tries every descriptor it
//! holds (above 2) as an inherited owner handle, and every memfd it has mapped (reopened through
//! `/proc/self/map_files`, which needs `CAP_SYS_ADMIN`): `taken …` or `refused …` for each, then
//! `summary tried=<n>`. A writer must not be able to become a holder.

use std::io::{BufRead, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use mailslot::{Mailslot, Message, ReadError, Timeout};
use mailslot_hostile::{decode, preview};

/// Takes up the handle as `how` says, prints `holding`, then serves commands from stdin.
pub(crate) fn holder(how: &str, what: &str) {
    let taken = match how {
        "inherit" => match what.parse::<RawFd>() {
            Ok(fd) => {
                let r = Mailslot::inherited(fd);
                // The handle holds a duplicate: let go of the inherited number, as a child that
                // does not pass it on should.
                if r.is_ok() {
                    // SAFETY: closes the inherited descriptor, which nothing else here uses.
                    unsafe { libc::close(fd) };
                }
                r
            }
            Err(_) => super::usage(),
        },
        "socket" => match what.parse::<RawFd>() {
            Ok(fd) => {
                // SAFETY: the parent handed us this descriptor (a Unix stream socket) to own.
                let sock = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
                Mailslot::receive_handle(&sock)
            }
            Err(_) => super::usage(),
        },
        "connect" => match UnixStream::connect(what) {
            Ok(sock) => Mailslot::receive_handle(&sock),
            Err(e) => {
                say!("take-failed 0 connect: {e}");
                std::process::exit(1)
            }
        },
        _ => super::usage(),
    };
    let slot = match taken {
        Ok(s) => s,
        Err(e) => {
            say!("take-failed {} {e:?}", e.win32_code());
            std::process::exit(1)
        }
    };
    say!("holding");
    let commands = stdin_lines();
    while let Ok(line) = commands.recv() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["read", n, ms] => {
                let (Ok(n), Ok(ms)) = (n.parse::<u64>(), ms.parse::<u64>()) else {
                    say!("bad-command {line}");
                    continue;
                };
                let mut count = 0u64;
                while count < n {
                    match slot.read_message_timeout(Timeout::After(Duration::from_millis(ms))) {
                        Ok(m) => {
                            report(&m);
                            count += 1;
                        }
                        Err(e) => {
                            report_err(&e);
                            break;
                        }
                    }
                }
                say!("done {count}");
            }
            ["stream"] => stream(&slot, &commands),
            ["read-forever"] => {
                say!("reading");
                match slot.read_message_timeout(Timeout::Forever) {
                    Ok(m) => report(&m),
                    Err(e) => report_err(&e),
                }
            }
            ["share"] => match slot.share() {
                Ok(_fd) => say!("shared"),
                Err(e) => say!("err {} {e:?}", e.win32_code()),
            },
            ["delete"] => {
                slot.delete();
                say!("deleted");
                return;
            }
            ["exit"] => break,
            _ => say!("bad-command {line}"),
        }
    }
    drop(slot);
}

/// Reads until `stop` arrives on `commands` (looked at whenever a short read times out).
fn stream(slot: &Mailslot, commands: &Receiver<String>) {
    say!("reading");
    let mut count = 0u64;
    loop {
        match slot.read_message_timeout(Timeout::After(Duration::from_millis(20))) {
            Ok(m) => {
                report(&m);
                count += 1;
            }
            Err(ReadError::Timeout) => match commands.try_recv() {
                Ok(l) if l.trim() == "stop" => break,
                Ok(l) => say!("bad-command {l}"),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            },
            Err(e) => {
                report_err(&e);
                break;
            }
        }
    }
    say!("done {count}");
}

/// The lines of stdin, delivered by a thread (so that a reading loop can look for a command
/// without blocking).
fn stdin_lines() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn report(m: &Message) {
    match decode(&m.data) {
        Ok(d) => say!("msg {} {}", d.id, d.seq),
        Err(_) => say!("bad {}", preview(&m.data)),
    }
}

fn report_err(e: &ReadError) {
    say!("err {} {e:?}", e.win32_code());
}

/// Creates `name`, passes its handle to the first process that connects to `path`, then sleeps.
pub(crate) fn create_pass(name: &str, path: &str) {
    let slot = match Mailslot::create(name) {
        Ok(s) => s,
        Err(e) => {
            say!("create-failed {} {e}", e.win32_code());
            std::process::exit(1)
        }
    };
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => {
            say!("bind-failed {e}");
            std::process::exit(1)
        }
    };
    say!("ready");
    match listener.accept() {
        Ok((sock, _)) => match slot.send_handle(&sock) {
            Ok(()) => say!("passed"),
            Err(e) => say!("pass-failed {} {e:?}", e.win32_code()),
        },
        Err(e) => say!("pass-failed 0 accept: {e}"),
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Tries every descriptor a writer holds as an owner handle (see the module docs).
pub(crate) fn take_writer_fds(name: &str) {
    let writer = super::open(name);
    if let Err(e) = writer.write(b"hello") {
        say!("write-failed {} {e}", e.win32_code());
        std::process::exit(1)
    }
    let mut tried = 0u64;
    for fd in super::fd_list().into_iter().filter(|&fd| fd > 2) {
        let link = super::readlink_fd(fd);
        if link.is_empty() {
            continue; // closed since it was listed (the listing's own descriptor)
        }
        match Mailslot::inherited(fd) {
            Ok(_slot) => say!("taken {fd} {link}"),
            Err(e) => say!("refused {fd} {link} {e:?}"),
        }
        tried += 1;
    }
    // The library may map a ring or page and close its descriptor: reopen those mappings
    // through /proc/self/map_files (allowed with CAP_SYS_ADMIN only; skipped without).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(path)) = (f.first(), f.get(5)) else {
            continue;
        };
        if !path.starts_with("/memfd:") {
            continue;
        }
        let file = format!("/proc/self/map_files/{range}");
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .or_else(|_| std::fs::File::open(&file));
        match opened {
            Ok(file) => {
                match Mailslot::from_shared(file.into()) {
                    Ok(_slot) => say!("taken map {range} {path}"),
                    Err(e) => say!("refused map {range} {path} {e:?}"),
                }
                tried += 1;
            }
            Err(e) => say!("skipped map {range} {path} {e}"),
        }
    }
    say!("summary tried={tried}");
}
