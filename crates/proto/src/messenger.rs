//! Messenger service messages on `\MAILSLOT\MESSNGR` ("net send", WinPopup;
//! [MS-MSRP] §3.2.4.4): `From\0To\0Text\0`, OEM bytes, no type byte.
//! A directed message goes to `<recipient><03>`.

use crate::cursor::{self, Reader};
use crate::error::{Error, Result};

/// A Messenger message (JSON: `from`, `to`, `text` as Latin-1 text).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MessengerMessage<'a> {
    /// Sender, no NUL.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
    pub from: &'a [u8],
    /// Recipient (a NetBIOS name without suffix), no NUL.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
    pub to: &'a [u8],
    /// Text, no NUL (≤ 652 bytes by the spec; the datagram limit also applies).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::ser::latin1"))]
    pub text: &'a [u8],
}

impl<'a> MessengerMessage<'a> {
    /// Parses `From\0To\0Text[\0]`: the text may lack its NUL (it then runs
    /// to the end); bytes after the text's NUL are ignored.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let from = r.cstr()?;
        let to = r.cstr()?;
        let text = match r.cstr() {
            Ok(t) => t,
            Err(_) => r.rest(),
        };
        Ok(MessengerMessage { from, to, text })
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.from.len() + self.to.len() + self.text.len() + 3
    }

    /// Writes `From\0To\0Text\0` into `buf[..buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.from.contains(&0) || self.to.contains(&0) || self.text.contains(&0) {
            return Err(Error::Inconsistent {
                what: "NUL inside a string",
            });
        }
        cursor::emit(buf, self.buffer_len(), |w| {
            w.cstr(self.from);
            w.cstr(self.to);
            w.cstr(self.text);
        })
    }

    /// [`Self::emit`] into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        cursor::to_vec(self.buffer_len(), |b| self.emit(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win98_example() {
        let d = b"WIN98USER\0WORKGROUP\0HELLO WORLD\0";
        assert_eq!(d.len(), 32);
        let m = MessengerMessage::parse(d).unwrap();
        assert_eq!(m.from, b"WIN98USER");
        assert_eq!(m.to, b"WORKGROUP");
        assert_eq!(m.text, b"HELLO WORLD");
        assert_eq!(m.to_vec().unwrap(), d);
        assert!(MessengerMessage::parse(b"A\0B").is_err());
        assert_eq!(MessengerMessage::parse(b"A\0B\0hi").unwrap().text, b"hi");
    }
}
