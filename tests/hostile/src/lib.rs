//! Shared pieces of the hostile-writer tests: the self-checking message format, a small
//! pseudo-random generator and unique mailslot names.
//!
//! A message is `"<writer-id>:<seq>:<checksum>:<payload>"`: the checksum (FNV-1a 64, 16 hex
//! digits) covers the payload, and the payload is derived from the writer id and sequence number,
//! so a message that was cut, mixed with another or overwritten is detected.

use std::time::{SystemTime, UNIX_EPOCH};

/// FNV-1a 64 over `data`.
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The payload of message `seq` of writer `id`: `len` printable bytes derived from both.
pub fn payload(id: &str, seq: u64, len: usize) -> Vec<u8> {
    let mut x = checksum(id.as_bytes()) ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// The payload length used for message `seq` (0 to `max` bytes, varying).
pub fn payload_len(seq: u64, max: usize) -> usize {
    if max == 0 {
        return 0;
    }
    ((seq.wrapping_mul(2_654_435_761) >> 7) % (max as u64 + 1)) as usize
}

/// Encodes message `seq` of writer `id` with the given payload.
pub fn encode(id: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = format!("{id}:{seq}:{:016x}:", checksum(payload)).into_bytes();
    m.extend_from_slice(payload);
    m
}

/// Encodes message `seq` of writer `id` with the standard payload of up to `max_payload` bytes.
pub fn make_message(id: &str, seq: u64, max_payload: usize) -> Vec<u8> {
    encode(id, seq, &payload(id, seq, payload_len(seq, max_payload)))
}

/// A decoded, checked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The writer id.
    pub id: String,
    /// The sequence number.
    pub seq: u64,
    /// Payload length.
    pub len: usize,
}

/// Decodes and checks a message: the checksum must match and the payload must be the one writer
/// `id` sends as message `seq`. `Err` says what is wrong.
pub fn decode(m: &[u8]) -> Result<Decoded, String> {
    let mut parts = m.splitn(4, |&c| c == b':');
    let (Some(id), Some(seq), Some(sum), Some(body)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not 4 fields: {:?}", preview(m)));
    };
    let id = std::str::from_utf8(id).map_err(|_| format!("id not UTF-8: {:?}", preview(m)))?;
    let seq: u64 = std::str::from_utf8(seq)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad seq: {:?}", preview(m)))?;
    let sum = std::str::from_utf8(sum)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| format!("bad checksum field: {:?}", preview(m)))?;
    if checksum(body) != sum {
        return Err(format!("checksum mismatch: {:?}", preview(m)));
    }
    if body != payload(id, seq, body.len()).as_slice() {
        return Err(format!(
            "payload is not {id}'s message {seq}: {:?}",
            preview(m)
        ));
    }
    Ok(Decoded {
        id: id.to_string(),
        seq,
        len: body.len(),
    })
}

/// The first bytes of a message, for error reports.
pub fn preview(m: &[u8]) -> String {
    String::from_utf8_lossy(&m[..m.len().min(80)]).into_owned()
}

/// xorshift64* pseudo-random numbers (no dependency; good enough to pick timings and garbage).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed` (0 is replaced by a constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x2545_f491_4f6c_dd1d
        } else {
            seed
        })
    }

    /// Seeded from the clock and the process id.
    pub fn from_time() -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self::new(t ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// A mailslot name nobody else uses: `\\.\mailslot\hostile\<tag>_<pid>_<nanos>`.
pub fn unique_name(tag: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(r"\\.\mailslot\hostile\{tag}_{}_{t}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let m = make_message("w1", 42, 300);
        let d = decode(&m).unwrap();
        assert_eq!((d.id.as_str(), d.seq), ("w1", 42));
        let mut bad = m.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode(&bad).is_err() || d.len == 0);
        assert!(decode(&m[..m.len() / 2]).is_err() || d.len == 0);
        assert!(decode(&encode("w1", 43, &payload("w1", 42, 5))).is_err());
    }
}
