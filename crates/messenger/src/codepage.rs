//! OEM code pages: the byte encoding of Messenger messages on the wire.
//!
//! Messenger messages carry no charset; Windows sent them in the sender's OEM code page and
//! Samba reads them with its `dos charset` (CP850 unless configured). The tables come from the
//! `oem_cp` crate.

use std::fmt;
use std::str::FromStr;

use oem_cp::code_table::{DECODING_TABLE_CP_MAP, ENCODING_TABLE_CP_MAP};
use thiserror::Error;

/// An OEM code page known to this crate (a single-byte table: CP437, CP850, CP852, CP866, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Codepage(u16);

/// Error from parsing a [`Codepage`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodepageError {
    /// Not a code page name or number.
    #[error("expected a code page such as CP850 or 437, got {0:?}")]
    Syntax(String),
    /// A number for which no table is known.
    #[error("code page {0} is not supported (known: {known})", known = Codepage::known_list())]
    Unknown(u16),
}

impl Codepage {
    /// CP437, the original IBM PC code page (US DOS, and Windows' OEM code page in the US).
    pub const CP437: Self = Self(437);
    /// CP850, DOS Latin-1: Samba's default `dos charset`, and the default here.
    pub const CP850: Self = Self(850);

    /// The code page with this number, if a table is known for it.
    pub fn new(number: u16) -> Result<Self, CodepageError> {
        if DECODING_TABLE_CP_MAP.contains_key(&number)
            && ENCODING_TABLE_CP_MAP.contains_key(&number)
        {
            Ok(Self(number))
        } else {
            Err(CodepageError::Unknown(number))
        }
    }

    /// The number (850 for CP850).
    pub fn number(self) -> u16 {
        self.0
    }

    /// The known numbers, ascending, comma-separated (for error messages and help).
    pub fn known_list() -> String {
        let mut v: Vec<u16> = DECODING_TABLE_CP_MAP
            .keys()
            .copied()
            .filter(|n| ENCODING_TABLE_CP_MAP.contains_key(n))
            .collect();
        v.sort_unstable();
        v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
    }

    /// Decodes OEM bytes to UTF-8. Bytes below 0x80 are ASCII; a byte the table leaves undefined
    /// becomes U+FFFD. Control characters are kept (see [`crate::sanitize_text`]).
    pub fn decode(self, bytes: &[u8]) -> String {
        match DECODING_TABLE_CP_MAP.get(&self.0) {
            Some(table) => table.decode_string_lossy(bytes),
            // `new` admitted only numbers with a table; keep ASCII, mark the rest.
            None => bytes
                .iter()
                .map(|&b| if b < 0x80 { char::from(b) } else { '\u{FFFD}' })
                .collect(),
        }
    }

    /// Encodes text to OEM bytes; a character the code page lacks becomes `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match ENCODING_TABLE_CP_MAP.get(&self.0) {
            Some(table) => oem_cp::encode_string_lossy(text, table),
            None => text
                .chars()
                .map(|c| u8::try_from(c).ok().filter(u8::is_ascii).unwrap_or(b'?'))
                .collect(),
        }
    }
}

impl Default for Codepage {
    fn default() -> Self {
        Self::CP850
    }
}

impl fmt::Display for Codepage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CP{}", self.0)
    }
}

impl FromStr for Codepage {
    type Err = CodepageError;

    /// `850`, `CP850`, `cp850`, `IBM850` (Samba's spelling of `dos charset`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = ["cp", "ibm"]
            .iter()
            .find_map(|p| {
                t.get(..p.len())
                    .filter(|head| head.eq_ignore_ascii_case(p))
                    .map(|_| &t[p.len()..])
            })
            .unwrap_or(t);
        let n: u16 = digits
            .trim_start_matches('-')
            .parse()
            .map_err(|_| CodepageError::Syntax(s.to_string()))?;
        Self::new(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!("850".parse(), Ok(Codepage::CP850));
        assert_eq!("CP850".parse(), Ok(Codepage::CP850));
        assert_eq!("cp437".parse(), Ok(Codepage::CP437));
        assert_eq!("IBM437".parse(), Ok(Codepage::CP437));
        assert_eq!("cp-866".parse::<Codepage>().map(Codepage::number), Ok(866));
        assert_eq!(
            "latin1".parse::<Codepage>(),
            Err(CodepageError::Syntax("latin1".into()))
        );
        assert_eq!(
            "1252".parse::<Codepage>(),
            Err(CodepageError::Unknown(1252))
        );
        assert!(Codepage::known_list().contains("437, "));
        assert_eq!(Codepage::default().to_string(), "CP850");
    }

    #[test]
    fn decodes_oem_bytes() {
        // CP850: 0x81 ü, 0x82 é, 0x9C £, 0xE1 ß; CP437 agrees on these but differs on 0x9B
        // (CP437 ¢, CP850 ø) and 0xD5 (CP437 ╒, CP850 ı).
        assert_eq!(Codepage::CP850.decode(b"\x81\x82\x9C\xE1"), "üé£ß");
        assert_eq!(Codepage::CP850.decode(b"\x9B\xD5"), "øı");
        assert_eq!(Codepage::CP437.decode(b"\x9B\xD5"), "¢╒");
        assert_eq!(Codepage::CP850.decode(b"plain ASCII\n"), "plain ASCII\n");
    }

    #[test]
    fn encodes_to_oem_bytes_lossily() {
        assert_eq!(Codepage::CP850.encode("Grüße ø"), b"Gr\x81\xE1e \x9B");
        assert_eq!(Codepage::CP437.encode("ø"), b"?");
        assert_eq!(Codepage::CP850.encode("日本"), b"??");
        let round = Codepage::CP850.encode("Café £5");
        assert_eq!(Codepage::CP850.decode(&round), "Café £5");
    }
}
