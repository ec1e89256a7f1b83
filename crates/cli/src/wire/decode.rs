//! `decode`: each packet to one JSON line. The JSON is the `Serialize` form of
//! `mailslot-proto`'s types (feature `serde`); this module only picks the
//! parser and adds what the input knows (`kind`, `frame`, `udp_*`, errors).

use std::io::{self, Write};

use mailslot_proto::{DatagramBody, DatagramRepr, MailslotMessage, NamePacket, Payload};
use serde::Serialize;
use serde_json::{json, Value};

use super::args::{DecodeArgs, KindArg};
use super::input::read_input;

/// `mailslot decode`: returns the exit code (0 ok, 1 a packet failed, 2 unreadable input).
pub(crate) fn run_decode(args: &DecodeArgs) -> i32 {
    let (packets, read_error) = match read_input(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mailslot decode: {e:#}");
            return 2;
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for p in packets {
        let kind = if args.kind == KindArg::Auto {
            p.kind
        } else {
            args.kind
        };
        let mut v = decode_packet(&p.bytes, kind);
        failed |= v.get("error").is_some();
        if let Value::Object(m) = &mut v {
            if let Some(f) = p.frame {
                m.insert("frame".into(), json!(f));
            }
            if let Some((source, destination)) = p.udp {
                m.insert("udp_source".into(), json!(source.to_string()));
                m.insert("udp_destination".into(), json!(destination.to_string()));
            }
        }
        if writeln!(out, "{v}").is_err() {
            // Broken pipe: stop quietly.
            return i32::from(failed);
        }
    }
    if let Some(e) = read_error {
        // e.g. a capture cut short: what could be read was decoded above.
        eprintln!("mailslot decode: {e:#}");
        return 2;
    }
    i32::from(failed)
}

/// Decodes one packet to a JSON object.
///
/// Kind `Auto`: if only one parser accepts the bytes it wins; if both do, name
/// service wins when its parse covers every byte, else datagram; if neither
/// does, the error is the datagram one when the first byte is a datagram
/// MSG_TYPE (0x10–0x16), the name-service one otherwise.
pub(super) fn decode_packet(b: &[u8], kind: KindArg) -> Value {
    match kind {
        KindArg::Datagram => decode_datagram(b),
        KindArg::NameService => match NamePacket::parse(b) {
            Ok(p) => name_packet_json(&p),
            Err(e) => error_json("name_service", &e),
        },
        KindArg::Auto => match (DatagramRepr::parse(b), NamePacket::parse(b)) {
            (Ok(_), Err(_)) => decode_datagram(b),
            (Err(_), Ok(p)) => name_packet_json(&p),
            (Ok(_), Ok(p)) if p.buffer_len() == b.len() => name_packet_json(&p),
            (Ok(_), Ok(_)) => decode_datagram(b),
            (Err(de), Err(ne)) => {
                if matches!(b.first(), Some(0x10..=0x16)) {
                    error_json("datagram", &de)
                } else {
                    error_json("name_service", &ne)
                }
            }
        },
    }
}

/// A decoded well-known payload (browser, NETLOGON, Messenger) as JSON.
pub(crate) fn payload_json(p: &Payload<'_>) -> Value {
    to_json(p)
}

/// The JSON of a value of `mailslot-proto`: its `Serialize` form (maps with
/// string keys, which cannot fail to convert).
fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// `{"kind", ...}` with `kind` in front of the object's own fields.
fn with_kind(kind: &str, mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("kind".into(), json!(kind));
    }
    v
}

fn error_json(kind: &str, e: &mailslot_proto::Error) -> Value {
    json!({"kind": kind, "error": e.to_string(), "offset": e.offset().unwrap_or(0)})
}

fn name_packet_json(p: &NamePacket) -> Value {
    with_kind("name_service", to_json(p))
}

/// A datagram; for 0x10–0x12 the mailslot write in it, or why it did not parse
/// (`error` and `offset` beside the header fields).
fn decode_datagram(b: &[u8]) -> Value {
    let d = match DatagramRepr::parse(b) {
        Ok(d) => d,
        Err(e) => return error_json("datagram", &e),
    };
    let mut v = match (&d.body, MailslotMessage::parse(b)) {
        (DatagramBody::Data { .. }, Ok(msg)) => to_json(&msg),
        (DatagramBody::Data { .. }, Err(e)) => {
            let mut v = to_json(&d);
            if let Value::Object(m) = &mut v {
                m.insert("error".into(), json!(e.to_string()));
                m.insert("offset".into(), json!(e.offset().unwrap_or(0)));
            }
            v
        }
        _ => to_json(&d),
    };
    if let Value::Object(m) = &mut v {
        // FLAGS as received, reserved bits included (the parsed form masks them).
        m.insert("flags".into(), json!(b.get(1).copied().unwrap_or(0)));
    }
    with_kind("datagram", v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_flag_bits_are_shown() {
        let mut dgram = [0x13, 0x02, 0, 1, 10, 0, 0, 1, 0, 138, 0x82];
        dgram[1] = 0xF2;
        let v = decode_packet(&dgram, KindArg::Auto);
        assert_eq!(v["kind"], "datagram");
        assert_eq!(v["flags"], 0xF2);
        assert_eq!(v["error_code"], 0x82);
    }
}
