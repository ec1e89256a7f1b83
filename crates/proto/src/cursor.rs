//! Bounds-checked byte cursors: [`Reader`] for parsing, [`Writer`] for
//! emitting, and [`to_vec`], the one place that turns an `emit` into a vector.

use core::ops::Range;

use crate::error::{Error, Result};

/// Byte range of a fixed-size field (smoltcp's `Field`).
pub(crate) type Field = Range<usize>;

/// Fails with [`Error::Truncated`] (at offset 0) unless `buf` holds `need` bytes.
pub(crate) fn check_len(buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        return Err(Error::Truncated {
            offset: 0,
            need,
            have: buf.len(),
        });
    }
    Ok(())
}

/// The big-endian `u16` at `field` (the caller checked the length).
pub(crate) fn be16_at(buf: &[u8], field: Field) -> u16 {
    let b = &buf[field];
    u16::from_be_bytes([b[0], b[1]])
}

/// The little-endian `u16` at `field` (the caller checked the length).
pub(crate) fn le16_at(buf: &[u8], field: Field) -> u16 {
    let b = &buf[field];
    u16::from_le_bytes([b[0], b[1]])
}

/// A bounds-checked reading cursor over a byte slice (big- or little-endian reads).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn full(&self) -> &'a [u8] {
        self.buf
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let have = self.remaining();
        if n > have {
            return Err(Error::Truncated {
                offset: self.pos,
                need: n,
                have,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn be16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn be32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn le16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn le32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A NUL-terminated byte string (NUL consumed, not returned).
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8]> {
        let rest = self.rest();
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(Error::Unterminated { offset: self.pos }),
        }
    }
    /// A NUL-terminated UTF-16LE string (terminator consumed).
    pub(crate) fn utf16z(&mut self) -> Result<String> {
        let start = self.pos;
        let rest = self.rest();
        let mut units = Vec::new();
        let mut i = 0;
        loop {
            if i + 2 > rest.len() {
                return Err(Error::Unterminated { offset: start });
            }
            let u = u16::from_le_bytes([rest[i], rest[i + 1]]);
            i += 2;
            if u == 0 {
                break;
            }
            units.push(u);
        }
        self.pos += i;
        String::from_utf16(&units).map_err(|_| Error::BadUtf16 { offset: start })
    }
}

/// An appending writer into a caller's slice; lengths were checked by `buffer_len`.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Fails with `BufferTooSmall` unless `buf` holds `need` bytes.
    pub(crate) fn new(buf: &'a mut [u8], need: usize) -> Result<Self> {
        if buf.len() < need {
            return Err(Error::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        Ok(Writer { buf, pos: 0 })
    }
    /// A writer over a buffer the caller sized exactly for what it writes.
    pub(crate) fn fill(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf[self.pos..self.pos + n].fill(0);
        self.pos += n;
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    pub(crate) fn be16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn be32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub(crate) fn le16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn le32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub(crate) fn cstr(&mut self, s: &[u8]) {
        self.bytes(s);
        self.u8(0);
    }
    pub(crate) fn utf16z(&mut self, s: &str) {
        for u in s.encode_utf16() {
            self.le16(u);
        }
        self.le16(0);
    }
}

/// Bytes of `s` as NUL-terminated UTF-16LE.
pub(crate) fn utf16z_len(s: &str) -> usize {
    2 * s.encode_utf16().count() + 2
}

/// Writes exactly `len` bytes into `buf[..len]` with `fill` and returns `len`;
/// fails with [`Error::BufferTooSmall`] before writing anything if `buf` is short.
/// The one preamble of every `emit`: its `len` comes from `buffer_len`.
pub(crate) fn emit(
    buf: &mut [u8],
    len: usize,
    fill: impl FnOnce(&mut Writer<'_>),
) -> Result<usize> {
    let mut w = Writer::new(buf, len)?;
    fill(&mut w);
    debug_assert_eq!(w.pos, len, "buffer_len and emit disagree");
    Ok(len)
}

/// Runs an `emit` into a zeroed vector of `len` bytes (what every `to_vec` does).
pub(crate) fn to_vec(len: usize, emit: impl FnOnce(&mut [u8]) -> Result<usize>) -> Result<Vec<u8>> {
    let mut v = vec![0; len];
    emit(&mut v)?;
    Ok(v)
}
