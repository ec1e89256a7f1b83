//! The report as a readable table: one line per row, with a note and the target.

use super::Row;
use crate::measure::Counts;
use crate::mem::SlabBasis;

/// Bytes as a short human figure (B, KiB, MiB).
fn human(b: f64) -> String {
    if b.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b.abs() >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// The note of a `mem` row: what its memory is made of, and for `idle_10k` the times.
fn mem_note(r: &Row) -> String {
    let m = &r.mem;
    let nan = f64::NAN;
    // The kernel's part as the row counted it.
    let by_objects = m.slab_basis == Some(SlabBasis::Objects);
    let kernel = |pages: Option<f64>, objects: Option<f64>| {
        if by_objects { objects } else { pages }.unwrap_or(nan)
    };
    let mut note = String::new();
    if let (Some(k), Some(c)) = (m.slots, m.created) {
        if c < k {
            note.push_str(&format!("ONLY {c}/{k} CREATED; "));
        }
    }
    if m.create_s.is_some() {
        note.push_str(&format!(
            "create {:.3} s, close {:.3} s, RSS returned {}",
            m.create_s.unwrap_or(nan),
            m.close_s.unwrap_or(nan),
            human(m.rss_returned.unwrap_or(nan))
        ));
    } else {
        note.push_str(&format!(
            "{}{:.2} fd/slot; {} {} + rss {}{} (udgram {} + {}); first slot of a process {}",
            if m.directory == Some(true) {
                "names in the daemon's directory; "
            } else {
                ""
            },
            m.fds_per_slot.unwrap_or(nan),
            m.slab_basis.map_or("slab", SlabBasis::label),
            human(kernel(m.ours_slab, m.ours_slab_objects)),
            human(m.ours_rss.unwrap_or(nan)),
            m.ours_daemon_rss
                .filter(|_| m.directory == Some(true))
                .map_or(String::new(), |d| format!(" + daemon {}", human(d))),
            human(kernel(m.anchor_slab, m.anchor_slab_objects)),
            human(m.anchor_rss.unwrap_or(nan)),
            human(m.first_rss.unwrap_or(nan))
        ));
    }
    note
}

/// The table's note for a row: p99s, the net bench's loss and CPU, the mem bench's make-up, or
/// what the anchor is.
fn note(r: &Row) -> String {
    let n = &r.net;
    if r.mem.slots.is_some() {
        return mem_note(r);
    }
    match (r.ours_p99, r.anchor_p99) {
        (Some(o), Some(a)) => format!("p99 {o:.0}/{a:.0}"),
        _ if n.anchor_cpu_of.is_none() && (n.ours_loss.is_some() || n.anchor_loss.is_some()) => {
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
            format!("loss {}/{}", pct(n.ours_loss), pct(n.anchor_loss))
        }
        _ if n.ours_loss.is_some() => format!(
            "loss {:.1}%/{:.1}%, cpu/delivered {:.0}/{:.0} ns",
            n.ours_loss.unwrap_or(f64::NAN) * 100.0,
            n.anchor_loss.unwrap_or(f64::NAN) * 100.0,
            n.ours_cpu_ns_per_delivered.unwrap_or(f64::NAN),
            n.anchor_cpu_ns_per_delivered.unwrap_or(f64::NAN)
        ),
        _ if r.anchor_mode == "1to1" && !r.bench.ends_with("1to1") => "anchor is 1→1".into(),
        _ => String::new(),
    }
}

/// Prints the rows as a readable table.
/// `runs` and `repeated_runs`: how many times the benches ran, and the local and network ones
/// (three times in each run of a quick run).
pub(crate) fn print_table(rows: &[Row], (runs, repeated_runs): (usize, usize), counts: &Counts) {
    let local = if repeated_runs == runs {
        String::new()
    } else {
        format!(" ({repeated_runs} of the local and network benches)")
    };
    println!(
        "mailslot-bench: median of {runs} run(s){local}; {} msgs per throughput run, {} round trips per latency run, {} datagrams per net run, {} writes per net-fc run",
        counts.tput, counts.rtt, counts.net, counts.fc
    );
    let notes: Vec<String> = rows.iter().map(note).collect();
    let w = notes
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    println!(
        "{:<17} {:>5} {:<6} {:>12} {:<11} {:>12} {:>7}  {:<w$} target",
        "bench", "size", "unit", "ours", "anchor", "anchor", "ratio", "note"
    );
    for (r, note) in rows.iter().zip(notes) {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        let target = match (r.target, r.meets_target) {
            (None, Some(ok)) if r.mem.target_bytes.is_some() => format!(
                "≤ {}, < {} s each {}",
                human(r.mem.target_bytes.unwrap_or(f64::NAN)),
                r.mem.target_secs.unwrap_or(f64::NAN),
                met(ok)
            ),
            (Some(t), Some(ok)) if r.net.loss_target.is_some() => format!(
                "≥ {t}, loss ≤ {}% {}",
                r.net.loss_target.unwrap_or(0.0) * 100.0,
                if ok { "met" } else { "MISSED" }
            ),
            (Some(t), Some(ok)) => format!(
                "{} {t} {}",
                if r.better == "higher" { "≥" } else { "≤" },
                if ok { "met" } else { "MISSED" }
            ),
            _ => String::new(),
        };
        println!(
            "{:<17} {:>5} {:<6} {:>12.0} {:<11} {:>12.0} {:>7.3}  {:<w$} {target}",
            r.bench, r.size, r.unit, r.ours, r.anchor, r.anchor_value, r.ratio, note
        );
    }
}
