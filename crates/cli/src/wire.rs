//! `decode` / `encode` subcommands (wire protocol tools). Placeholder until the proto crate lands.
