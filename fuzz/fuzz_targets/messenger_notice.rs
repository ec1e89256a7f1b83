//! The Messenger's notices, from the bytes a host sends to `\MAILSLOT\MESSNGR`: parsing never
//! panics, and nothing it shows can act on a terminal — no ESC, no C0 control but LF and TAB in
//! the text and none at all in the names, no DEL, no C1 control, no bidirectional override or
//! isolate — and every field keeps its bound. The first byte picks the code page.
#![no_main]
use std::net::Ipv4Addr;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use mailslot_messenger::{Codepage, Notice, Origin, MAX_NAME_CHARS, MAX_TEXT_CHARS};

/// Whether `c` could move the cursor, change the terminal's state or reorder what is shown.
fn acts(c: char, one_line: bool) -> bool {
    match c {
        '\n' | '\t' => one_line,
        '\0'..='\u{1F}' | '\u{7F}'..='\u{9F}' => true,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn check(field: &str, max: usize, one_line: bool) {
    assert!(
        field.chars().count() <= max,
        "{field:?} over {max} characters"
    );
    assert!(
        !field.chars().any(|c| acts(c, one_line)),
        "{field:?} keeps a control"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let codepage = [437, 850, 852, 866].map(|n| Codepage::new(n).expect("a known code page"))
        [usize::from(pick) % 4];
    let origin = Origin::Remote {
        host: mailslot_messenger::sanitize_name(&String::from_utf8_lossy(bytes), MAX_NAME_CHARS),
        ip: Ipv4Addr::LOCALHOST,
    };
    if let Origin::Remote { host, .. } = &origin {
        check(host, MAX_NAME_CHARS, true);
    }
    if let Ok(n) = Notice::parse(bytes, origin, SystemTime::UNIX_EPOCH, codepage) {
        check(&n.from, MAX_NAME_CHARS, true);
        check(&n.to, MAX_NAME_CHARS, true);
        check(&n.text, MAX_TEXT_CHARS, false);
        assert_eq!(
            n.from.trim_matches(' '),
            n.from,
            "a name keeps no outer spaces"
        );
    }
});
