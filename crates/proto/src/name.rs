//! NetBIOS names: the 16-byte form, first- and second-level encoding, scope.
//!
//! A NetBIOS name is 16 raw bytes: up to 15 name bytes padded with spaces
//! (0x20), then one suffix byte that says what the name is for (see the
//! `SUFFIX_*` constants). The wildcard `*` is padded with NULs instead.
//! Names built by [`NetbiosName::new`] are upper-cased (Windows and Samba
//! register names in upper case) and validated; names parsed from the wire are
//! taken as they are (e.g. `\x01\x02__MSBROWSE__\x02<01>`). [`NetbiosName`]
//! equality is byte equality; use [`NetbiosName::eq_ignore_case`] to compare the
//! way receivers do.
//!
//! On the wire a name is *second-level* encoded (RFC 1002 §4.1): a length byte
//! 0x20, the 32 *first-level* characters (`'A' + nibble` for each nibble),
//! the scope labels (length + bytes each) and a final 0x00.

use core::fmt;
use core::str::FromStr;

use crate::cursor::{self, Reader, Writer};
use crate::error::{Error, Result};

/// `<00>`: workstation (unique) and domain/workgroup (group).
pub const SUFFIX_WORKSTATION: u8 = 0x00;
/// `<03>`: messenger service (unique).
pub const SUFFIX_MESSENGER: u8 = 0x03;
/// `<1B>`: domain master browser / PDC (unique).
pub const SUFFIX_DOMAIN_MASTER_BROWSER: u8 = 0x1B;
/// `<1C>`: domain controllers (group).
pub const SUFFIX_DOMAIN_CONTROLLERS: u8 = 0x1C;
/// `<1D>`: local master browser (unique).
pub const SUFFIX_LOCAL_MASTER_BROWSER: u8 = 0x1D;
/// `<1E>`: browser election (group).
pub const SUFFIX_BROWSER_ELECTION: u8 = 0x1E;
/// `<20>`: file server (unique).
pub const SUFFIX_FILE_SERVER: u8 = 0x20;
/// `<01>`: suffix of `__MSBROWSE__` (master browsers, group).
pub const SUFFIX_MSBROWSE: u8 = 0x01;

/// Maximum total length of an encoded scope (RFC 1002: a domain name ≤ 255 bytes).
pub const MAX_SCOPE_LEN: usize = 255 - 34;

/// Characters Microsoft does not allow in NetBIOS computer names.
const FORBIDDEN: &[u8] = b"\\/:*?\"<>|";

/// A 16-byte NetBIOS name (15 name bytes + suffix).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetbiosName {
    raw: [u8; 16],
}

impl NetbiosName {
    /// The wildcard name `*` (15 NULs, suffix 0), used in node status requests
    /// and as the target of NetBIOS broadcast datagrams.
    pub const WILDCARD: Self = Self {
        raw: *b"*\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    };

    /// `\x01\x02__MSBROWSE__\x02<01>`, the master browsers' group name.
    pub const MSBROWSE: Self = Self {
        raw: *b"\x01\x02__MSBROWSE__\x02\x01",
    };

    /// Builds a name from text and a suffix, upper-casing it (ASCII).
    ///
    /// Fails if `name` is empty, longer than 15 bytes, non-ASCII, has control
    /// characters or one of `\ / : * ? " < > |`. `"*"` gives [`Self::WILDCARD`]
    /// with the given suffix.
    pub fn new(name: &str, suffix: u8) -> Result<Self> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > 15 {
            return Err(Error::NameLength { len: b.len() });
        }
        if b == b"*" {
            return Ok(Self::WILDCARD.with_suffix(suffix));
        }
        let mut raw = [b' '; 16];
        for (i, &c) in b.iter().enumerate() {
            if !(0x20..0x7f).contains(&c) || FORBIDDEN.contains(&c) {
                return Err(Error::NameChar { byte: c });
            }
            raw[i] = c.to_ascii_uppercase();
        }
        raw[15] = suffix;
        Ok(Self { raw })
    }

    /// Takes 16 raw bytes as they are (no validation, no case change).
    pub const fn from_raw(raw: [u8; 16]) -> Self {
        Self { raw }
    }

    /// The same name with another suffix (`HOST<00>` → `HOST<20>`).
    pub const fn with_suffix(mut self, suffix: u8) -> Self {
        self.raw[15] = suffix;
        self
    }

    /// The 16 raw bytes.
    pub const fn as_raw(&self) -> &[u8; 16] {
        &self.raw
    }

    /// The suffix (16th) byte.
    pub const fn suffix(&self) -> u8 {
        self.raw[15]
    }

    /// The first 15 bytes without the padding (trailing spaces, or NULs after `*`).
    pub fn name_bytes(&self) -> &[u8] {
        let mut end = 15;
        while end > 0 && (self.raw[end - 1] == b' ' || self.raw[end - 1] == 0) {
            end -= 1;
        }
        &self.raw[..end]
    }

    /// The name part as text: padding removed, bytes outside printable ASCII
    /// written as `\xNN`.
    pub fn name_lossy(&self) -> String {
        let mut s = String::new();
        for &b in self.name_bytes() {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                s.push(b as char);
            } else if b == b'\\' {
                s.push_str("\\\\");
            } else {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
        s
    }

    /// Is this the wildcard `*` name (any suffix)?
    pub fn is_wildcard(&self) -> bool {
        self.raw[0] == b'*' && self.raw[1..15].iter().all(|&b| b == 0)
    }

    /// Equality as receivers use it: the 15 name bytes compared ASCII
    /// case-insensitively, the suffix exactly.
    pub fn eq_ignore_case(&self, other: &Self) -> bool {
        self.raw.eq_ignore_ascii_case(&other.raw) && self.raw[15] == other.raw[15]
    }

    /// First-level encoding: 32 bytes in `'A'..='P'`.
    pub fn first_level(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, &b) in self.raw.iter().enumerate() {
            out[2 * i] = b'A' + (b >> 4);
            out[2 * i + 1] = b'A' + (b & 0x0f);
        }
        out
    }

    /// Decodes 32 first-level bytes. `base` is only used for error offsets.
    pub fn from_first_level(enc: &[u8], base: usize) -> Result<Self> {
        if enc.len() != 32 {
            return Err(Error::Truncated {
                offset: base,
                need: 32,
                have: enc.len(),
            });
        }
        let enc: &[u8; 32] = enc.try_into().map_err(|_| Error::Truncated {
            offset: base,
            need: 32,
            have: enc.len(),
        })?;
        // Branch-free decode; locate the offending byte only on failure.
        let mut raw = [0u8; 16];
        let mut bad = 0u8;
        for (i, out) in raw.iter_mut().enumerate() {
            let hi = enc[2 * i].wrapping_sub(b'A');
            let lo = enc[2 * i + 1].wrapping_sub(b'A');
            bad |= (hi | lo) & 0xF0;
            *out = (hi << 4) | (lo & 0x0F);
        }
        if bad != 0 {
            let i = enc
                .iter()
                .position(|b| b.wrapping_sub(b'A') > 15)
                .unwrap_or(0);
            return Err(Error::BadNameEncoding {
                offset: base + i,
                byte: enc[i],
            });
        }
        Ok(Self { raw })
    }
}

impl fmt::Display for NetbiosName {
    /// `NAME<XX>` with the suffix as two upper-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<{:02X}>", self.name_lossy(), self.suffix())
    }
}

impl fmt::Debug for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetbiosName({self})")
    }
}

impl FromStr for NetbiosName {
    type Err = Error;

    /// Parses `NAME<XX>` (suffix in hex) or plain `NAME` (suffix `<00>`),
    /// validating as [`NetbiosName::new`] does.
    fn from_str(s: &str) -> Result<Self> {
        if let Some(open) = s.rfind('<') {
            if let Some(hex) = s[open + 1..].strip_suffix('>') {
                let suffix =
                    u8::from_str_radix(hex, 16).map_err(|_| Error::NameChar { byte: b'<' })?;
                if hex.len() != 2 {
                    return Err(Error::NameChar { byte: b'<' });
                }
                return Self::new(&s[..open], suffix);
            }
        }
        Self::new(s, 0)
    }
}

/// A NetBIOS name with its scope, as carried on the wire.
///
/// `scope` is the dotted scope ID (`""` for none, the usual case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// The 16-byte name.
    pub name: NetbiosName,
    /// Dotted scope (e.g. `"corp.example"`), empty for none.
    pub scope: String,
}

impl From<NetbiosName> for QualifiedName {
    fn from(name: NetbiosName) -> Self {
        Self {
            name,
            scope: String::new(),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scope.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}.{}", self.name, self.scope)
        }
    }
}

impl QualifiedName {
    /// Bytes of the second-level encoding: 34 plus the scope labels.
    pub fn encoded_len(&self) -> usize {
        34 + if self.scope.is_empty() {
            0
        } else {
            self.scope.len() + 1
        }
    }

    /// Checks the scope can be encoded (labels 1–63 bytes, total ≤ [`MAX_SCOPE_LEN`]).
    pub fn check(&self) -> Result<()> {
        if self.scope.is_empty() {
            return Ok(());
        }
        if self.scope.len() + 1 > MAX_SCOPE_LEN {
            return Err(Error::TooLong {
                field: "scope",
                len: self.scope.len(),
            });
        }
        for label in self.scope.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(Error::TooLong {
                    field: "scope label",
                    len: label.len(),
                });
            }
        }
        Ok(())
    }

    /// Parses a second-level encoded name at `offset` of `buf` with no
    /// compression pointers; returns the name and the offset after it.
    pub fn parse(buf: &[u8], offset: usize) -> Result<(Self, usize)> {
        let mut r = Reader::at(buf, offset);
        let q = Self::read(&mut r, false)?;
        Ok((q, r.pos()))
    }

    /// Reads a name. With `pointers`, a 0xC0 label may point backwards into `r`'s
    /// buffer (name service); the pointed-to name must not itself be a pointer.
    pub(crate) fn read(r: &mut Reader<'_>, pointers: bool) -> Result<Self> {
        let start = r.pos();
        let len = r.u8()?;
        if len & 0xC0 == 0xC0 {
            if !pointers {
                return Err(Error::BadPointer { offset: start });
            }
            let lo = r.u8()?;
            let target = (usize::from(len & 0x3F) << 8) | usize::from(lo);
            if target >= start {
                return Err(Error::BadPointer { offset: start });
            }
            let mut inner = Reader::at(r.full(), target);
            return Self::read(&mut inner, false).map_err(|e| match e {
                Error::BadPointer { .. } => Error::BadPointer { offset: start },
                e => e,
            });
        }
        if len != 32 {
            return Err(Error::BadNameLength { offset: start, len });
        }
        let enc = r.take(32)?;
        let name = NetbiosName::from_first_level(enc, start + 1)?;
        let mut scope = String::new();
        loop {
            let at = r.pos();
            let l = r.u8()?;
            if l == 0 {
                break;
            }
            if l & 0xC0 != 0 {
                return Err(Error::BadPointer { offset: at });
            }
            let label = r.take(usize::from(l))?;
            if !scope.is_empty() {
                scope.push('.');
            }
            if label.contains(&b'.') || !label.is_ascii() {
                return Err(Error::BadScope { offset: at });
            }
            // checked ASCII above, so this is lossless
            scope
                .push_str(core::str::from_utf8(label).map_err(|_| Error::BadScope { offset: at })?);
            if scope.len() + 1 > MAX_SCOPE_LEN {
                return Err(Error::BadScope { offset: at });
            }
        }
        Ok(Self { name, scope })
    }

    /// Writes the second-level encoding.
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u8(32);
        w.bytes(&self.name.first_level());
        if !self.scope.is_empty() {
            for label in self.scope.split('.') {
                w.u8(label.len() as u8);
                w.bytes(label.as_bytes());
            }
        }
        w.u8(0);
    }

    /// The second-level encoding as a vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        self.check()?;
        let len = self.encoded_len();
        cursor::to_vec(len, |b| cursor::emit(b, len, |w| self.write(w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_level_examples() {
        let n = NetbiosName::new("WORKGROUP", 0x1D).unwrap();
        assert_eq!(&n.first_level(), b"FHEPFCELEHFCEPFFFACACACACACACABN");
        assert_eq!(
            &NetbiosName::MSBROWSE.first_level(),
            b"ABACFPFPENFDECFCEPFHFDEFFPFPACAB"
        );
        assert_eq!(&NetbiosName::WILDCARD.first_level()[..4], b"CKAA");
        assert!(NetbiosName::WILDCARD.is_wildcard());
        assert_eq!(
            NetbiosName::MSBROWSE.to_string(),
            "\\x01\\x02__MSBROWSE__\\x02<01>"
        );
    }

    #[test]
    fn validation_and_case() {
        assert_eq!(NetbiosName::new("", 0), Err(Error::NameLength { len: 0 }));
        assert_eq!(
            NetbiosName::new("ABCDEFGHIJKLMNOP", 0),
            Err(Error::NameLength { len: 16 })
        );
        assert_eq!(
            NetbiosName::new("a?b", 0),
            Err(Error::NameChar { byte: b'?' })
        );
        assert_eq!(
            NetbiosName::new("a\tb", 0),
            Err(Error::NameChar { byte: b'\t' })
        );
        let n: NetbiosName = "client<1c>".parse().unwrap();
        assert_eq!(n.to_string(), "CLIENT<1C>");
        let plain: NetbiosName = "client".parse().unwrap();
        assert_eq!(plain.suffix(), 0);
        let lower = NetbiosName::from_raw(*b"client         \x00");
        assert!(lower.eq_ignore_case(&plain));
        assert_ne!(lower, plain);
    }

    #[test]
    fn scope_round_trip() {
        let q = QualifiedName {
            name: NetbiosName::new("A", 0x20).unwrap(),
            scope: "corp.example".into(),
        };
        let v = q.to_vec().unwrap();
        assert_eq!(v.len(), q.encoded_len());
        assert_eq!(&v[33..], b"\x04corp\x07example\x00");
        assert_eq!(QualifiedName::parse(&v, 0).unwrap(), (q, v.len()));
    }

    #[test]
    fn bad_names() {
        let mut v = QualifiedName::from(NetbiosName::WILDCARD).to_vec().unwrap();
        v[5] = b'Z';
        assert_eq!(
            QualifiedName::parse(&v, 0),
            Err(Error::BadNameEncoding {
                offset: 5,
                byte: b'Z'
            })
        );
        assert_eq!(
            QualifiedName::parse(&[31], 0),
            Err(Error::BadNameLength { offset: 0, len: 31 })
        );
        assert!(matches!(
            QualifiedName::parse(&v[..20], 0),
            Err(Error::Truncated { .. })
        ));
        assert_eq!(
            QualifiedName::parse(&[0xC0, 0x0C], 0),
            Err(Error::BadPointer { offset: 0 })
        );
    }
}
