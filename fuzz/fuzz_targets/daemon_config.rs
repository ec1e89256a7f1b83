//! The daemon's configuration file (`mailslotd.toml`): parsing any text never panics; a bad
//! file is an error that names what is wrong, and a file that parses passes its own check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslotd::config::DaemonConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match DaemonConfig::parse(text) {
        Ok(c) => c.check().expect("a parsed configuration passes its check"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
