//! What a read costs the owner, in one thread: `writers` writers (in this process) each write
//! `per` messages of `size` bytes, then the owner reads them all, into a buffer or (`whole`)
//! each as a `Message`; printed is the time per read (best and mean of 40 rounds), and per
//! write. With several writers the reads merge their rings.
//!
//! ```sh
//! cargo run --release -p mailslot --example read_cost -- 8 64 1000         # writers size per-writer
//! cargo run --release -p mailslot --example read_cost -- 8 64 1000 whole   # read_message
//! ```

use std::time::Instant;

use mailslot::{Mailslot, MailslotWriter, Timeout};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.parse().expect("a number"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (writers, size, per) = (arg(1, 8), arg(2, 64), arg(3, 1000));
    // A fourth argument `whole`: read each message whole (`read_message`), not into a buffer.
    let whole = std::env::args().nth(4).is_some_and(|a| a == "whole");
    let name = format!(r"\\.\mailslot\example\read-cost\{}", std::process::id());
    let slot = Mailslot::builder()
        .quota(64 << 20)
        .max_messages(1 << 20)
        .create(&name)?;
    let ws = (0..writers)
        .map(|_| MailslotWriter::open(&name))
        .collect::<Result<Vec<_>, _>>()?;
    // Each writer has its ring once it has written.
    for w in &ws {
        w.write(b"ring")?;
    }
    let mut buf = vec![0u8; 65_536];
    while slot.read_timeout_with(&mut buf, Timeout::ZERO).is_ok() {}
    let msg = vec![7u8; size];
    let rounds = 40;
    let (mut best, mut sum) = (f64::MAX, 0.0);
    let mut best_write = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per {
            for w in &ws {
                w.write(&msg)?;
            }
        }
        best_write = best_write.min(t.elapsed().as_nanos() as f64 / (per * writers) as f64);
        let t = Instant::now();
        let mut n = 0;
        if whole {
            while slot.read_message_timeout(Timeout::ZERO).is_ok() {
                n += 1;
            }
        } else {
            while slot.read_timeout_with(&mut buf, Timeout::ZERO).is_ok() {
                n += 1;
            }
        }
        assert_eq!(n, per * writers, "every message written is read");
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        best = best.min(ns);
        sum += ns;
    }
    println!(
        "writers={writers} size={size} whole={whole} ns/read best={best:.1} mean={:.1} ns/write best={best_write:.1}",
        sum / f64::from(rounds)
    );
    Ok(())
}
