//! `mailslot demo`: a self-contained tour of local mailslots, with real writer processes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mailslot::{Mailslot, MailslotWriter, ReadError, Timeout, WriteError, WriteOptions};

/// Options of the demo.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Mailslot name to use (default: \\.\mailslot\demo\<pid>).
    #[arg(long)]
    name: Option<String>,
}

fn step(title: &str) {
    println!("\n== {title}");
}

/// Runs the tour, one step after the other; any surprise is an error.
pub(crate) fn run(a: &DemoArgs) -> Result<()> {
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!(r"\\.\mailslot\demo\{}", std::process::id()));
    let exe = std::env::current_exe().context("cannot find the mailslot executable")?;
    let slot = create(&name)?;
    let w = write_from_processes(&exe, &name, &slot)?;
    too_small_buffer(&slot)?;
    read_in_priority_order(&slot)?;
    empty_reads(&slot)?;
    limits(&w)?;
    owner_gone(slot, &w, &name)?;
    println!("\ndemo finished.");
    Ok(())
}

/// The owner creates a small mailslot.
fn create(name: &str) -> Result<Mailslot> {
    step("The owner creates the mailslot (only it can read)");
    let slot = Mailslot::builder()
        .max_message_size(424)
        .quota(4096)
        .read_timeout(Duration::from_millis(500))
        .create(name)?;
    let info = slot.info();
    println!(
        "created {} (max message {} bytes, quota {} bytes, read timeout {} ms), pid {}",
        slot.name(),
        info.max_message_size,
        info.quota,
        info.read_timeout.as_win32_millis(),
        std::process::id()
    );
    Ok(slot)
}

/// Writer processes (`mailslot send`) with priorities, and this process with an empty message;
/// returns this process's writer.
fn write_from_processes(exe: &Path, name: &str, slot: &Mailslot) -> Result<MailslotWriter> {
    step("Three writer processes each send one message, with priorities 0, 9 and 5");
    for (prio, text) in [
        (0, "routine: disk 71% full"),
        (9, "URGENT: server on fire"),
        (5, "notice: backup done"),
    ] {
        let status = Command::new(exe)
            .args(["send", name, text, "--priority", &prio.to_string()])
            .status()
            .context("cannot start a writer process")?;
        if !status.success() {
            bail!("writer process failed: {status}");
        }
        println!("`mailslot send {name} {text:?} --priority {prio}` -> exit 0");
    }
    let w = MailslotWriter::open(name)?;
    w.write(b"")?;
    println!("this process also writes a zero-length message (priority 0): it is a real message");

    let info = slot.info();
    println!(
        "queued: {} messages; next is {} bytes at priority {}",
        info.count,
        info.next_size.unwrap_or(0),
        info.next_priority.unwrap_or(0)
    );
    Ok(w)
}

/// A buffer smaller than the next message.
fn too_small_buffer(slot: &Mailslot) -> Result<()> {
    step("A too-small buffer is refused and the message stays queued");
    let mut small = [0u8; 4];
    match slot.read(&mut small) {
        Err(ReadError::BufferTooSmall { needed }) => println!(
            "read with a 4-byte buffer -> BufferTooSmall {{ needed: {needed} }} (Win32 error {}); count still {}",
            ReadError::BufferTooSmall { needed }.win32_code(),
            slot.info().count
        ),
        other => bail!("expected BufferTooSmall, got {other:?}"),
    }
    Ok(())
}

/// Reads everything queued.
fn read_in_priority_order(slot: &Mailslot) -> Result<()> {
    step("The owner reads: highest priority first, FIFO within a priority");
    while slot.info().count > 0 {
        let m = slot.read_message()?;
        println!("  {}", crate::listen::message_text(&m));
    }
    Ok(())
}

/// Reads of the empty mailslot: with its read timeout, and with none.
fn empty_reads(slot: &Mailslot) -> Result<()> {
    step("Reading an empty mailslot waits for the read timeout");
    let t0 = Instant::now();
    match slot.read_message() {
        Err(e @ ReadError::Timeout) => println!(
            "empty read -> {e} after {} ms (Win32 error {})",
            t0.elapsed().as_millis(),
            e.win32_code()
        ),
        other => bail!("expected a timeout, got {other:?}"),
    }
    match slot.read_message_timeout(Timeout::ZERO) {
        Err(e) => println!("with timeout 0 -> {e} at once"),
        Ok(m) => bail!("unexpected message {m:?}"),
    }
    Ok(())
}

/// The size limit, the quota, and a first-class write that waits for room.
fn limits(w: &MailslotWriter) -> Result<()> {
    step("Limits are checked before anything is queued");
    match w.write(&[0u8; 500]) {
        Err(e @ WriteError::TooLarge { .. }) => println!("500-byte write -> {e}"),
        other => bail!("expected TooLarge, got {other:?}"),
    }
    let mut n = 0;
    let full = loop {
        match w.write(&[b'x'; 400]) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    println!(
        "{n} writes of 400 bytes filled the 4096-byte quota; the next second-class write -> {full}"
    );
    match w.write_with(
        &[b'x'; 400],
        WriteOptions::new()
            .class(mailslot::Class::First)
            .timeout(Duration::from_millis(200)),
    ) {
        Err(e) => println!("a first-class write waits for room up to its timeout (200 ms) -> {e}"),
        Ok(()) => bail!("expected the first-class write to time out"),
    }
    Ok(())
}

/// The owner closes: the writer is told, and the name can be created again.
fn owner_gone(slot: Mailslot, w: &MailslotWriter, name: &str) -> Result<()> {
    step("When the owner goes away, writers are told and the name is free again");
    drop(slot);
    match w.write(b"anyone there?") {
        Err(e) => println!(
            "write after the owner closed -> {e} (Win32 error {})",
            e.win32_code()
        ),
        Ok(()) => bail!("write after close should fail"),
    }
    let again = Mailslot::create(name)?;
    println!("created {} again at once", again.name());
    Ok(())
}
