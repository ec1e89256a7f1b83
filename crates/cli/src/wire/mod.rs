//! `decode` / `encode` / `encode-name-query` subcommands: the wire-protocol tools.
//!
//! Everything about bytes lives in `mailslot-proto` (down to the link layer of
//! captures, [`mailslot_proto::link`], and the JSON, its `serde` feature); this
//! module reads input (hex, or pcap/pcapng captures with `pcap-file`), prints
//! JSON lines and builds hex.
//!
//! | module | what |
//! |---|---|
//! | `args` | the clap arguments and their help |
//! | `encode` | arguments to datagram / name-query bytes |
//! | `input` | hex text and captures to packets |
//! | `decode` | packets to JSON lines |

mod args;
mod decode;
mod encode;
mod input;

pub(crate) use args::{DecodeArgs, EncodeArgs, EncodeNameQueryArgs};
pub(crate) use decode::payload_json;
pub(crate) use decode::run_decode;
pub(crate) use encode::{run_encode, run_encode_name_query};
