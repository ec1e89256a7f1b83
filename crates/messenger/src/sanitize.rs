//! Making received text safe to show on a terminal or a desktop.
//!
//! Rules, in order: CRLF (and a CR at the very end) becomes LF; an escape sequence (ESC and
//! what follows it: a CSI sequence up to its final byte, an OSC/DCS/SOS/PM/APC string up to its
//! terminator, or the one character after a bare ESC) becomes the single mark `␛`; every other
//! C0 control except LF and TAB becomes its Unicode control picture (`␀`…`␟`), DEL becomes `␡`,
//! a C1 control (U+0080–U+009F) becomes U+FFFD; the bidirectional overrides and isolates
//! (U+202A–U+202E, U+2066–U+2069) also become U+FFFD, since they reorder what the user sees.
//! Nothing that reaches a terminal can move the cursor, change colours, set a title or send
//! the terminal a query. Then the text is cut to its bound with a visible [`CUT_MARK`].

/// Appended to a field that was cut to its bound.
pub const CUT_MARK: char = '…';

/// Shown in place of a whole escape sequence.
const ESC_MARK: char = '␛';

/// Shown in place of a C1 control or a bidirectional control.
const REPLACEMENT: char = '\u{FFFD}';

/// Longest OSC/DCS/... string consumed while looking for its terminator.
const MAX_STRING_SEQUENCE: usize = 256;

/// The text of a message made safe to show: see the module rules; at most `max_chars`
/// characters, the last one [`CUT_MARK`] when something was cut. LF and TAB are kept.
pub fn sanitize_text(raw: &str, max_chars: usize) -> String {
    let mut out = neutralise(raw, false);
    cut(&mut out, max_chars);
    out
}

/// A sender or recipient name made safe: as [`sanitize_text`], but LF and TAB are replaced as
/// well (a name is one line), and leading and trailing spaces are trimmed.
pub fn sanitize_name(raw: &str, max_chars: usize) -> String {
    let mut out = neutralise(raw.trim_matches(' '), true)
        .trim_matches(' ')
        .to_string();
    cut(&mut out, max_chars);
    out
}

fn cut(s: &mut String, max_chars: usize) {
    if max_chars == 0 {
        s.clear();
        return;
    }
    if let Some((at, _)) = s.char_indices().nth(max_chars) {
        // Keep max_chars - 1 characters and the mark.
        let keep = s.char_indices().nth(max_chars - 1).map_or(at, |(i, _)| i);
        s.truncate(keep);
        s.push(CUT_MARK);
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn neutralise(raw: &str, one_line: bool) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '\r' if chars.get(i) == Some(&'\n') || i == chars.len() => {
                // CRLF: the LF (next turn) stands for both; a final CR is a line end too.
                if i == chars.len() && !one_line {
                    out.push('\n');
                } else if i == chars.len() {
                    out.push('\u{240A}');
                }
            }
            '\n' | '\t' if !one_line => out.push(c),
            '\u{1B}' => {
                i += escape_len(&chars[i..]);
                out.push(ESC_MARK);
            }
            // C0 controls: their control pictures, U+2400 + code.
            '\0'..='\u{1F}' => {
                out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or(REPLACEMENT));
            }
            '\u{7F}' => out.push('␡'),
            '\u{80}'..='\u{9F}' => out.push(REPLACEMENT),
            c if is_bidi_control(c) => out.push(REPLACEMENT),
            c => out.push(c),
        }
    }
    out
}

/// How many characters after an ESC belong to its sequence (ECMA-48 shapes): `[` starts a CSI
/// (parameters 0x30–0x3F, intermediates 0x20–0x2F, one final 0x40–0x7E); `]`, `P`, `X`, `^`
/// and `_` start a string ended by BEL or ESC `\`; anything else printable is a two-character
/// sequence. A sequence that is cut short or malformed ends where it stops making sense; what
/// remains is shown as text (it cannot act without its ESC).
fn escape_len(rest: &[char]) -> usize {
    let Some(&first) = rest.first() else {
        return 0;
    };
    match first {
        '[' => {
            let mut n = 1;
            while rest
                .get(n)
                .is_some_and(|c| ('\u{30}'..='\u{3F}').contains(c))
            {
                n += 1;
            }
            while rest
                .get(n)
                .is_some_and(|c| ('\u{20}'..='\u{2F}').contains(c))
            {
                n += 1;
            }
            if rest
                .get(n)
                .is_some_and(|c| ('\u{40}'..='\u{7E}').contains(c))
            {
                n += 1;
            }
            n
        }
        ']' | 'P' | 'X' | '^' | '_' => {
            let limit = rest.len().min(MAX_STRING_SEQUENCE);
            let mut n = 1;
            while n < limit {
                match rest[n] {
                    '\u{07}' => return n + 1,
                    '\u{1B}' if rest.get(n + 1) == Some(&'\\') => return n + 2,
                    '\u{1B}' => return n,
                    _ => n += 1,
                }
            }
            // No terminator within reach: only the introducer goes with the ESC.
            1
        }
        c if ('\u{20}'..='\u{7E}').contains(&c) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_becomes_lf_and_lone_cr_is_visible() {
        assert_eq!(sanitize_text("a\r\nb\r\n", 100), "a\nb\n");
        assert_eq!(sanitize_text("a\rb", 100), "a␍b");
        assert_eq!(sanitize_text("end\r", 100), "end\n");
        assert_eq!(sanitize_text("tab\tkept\n", 100), "tab\tkept\n");
    }

    #[test]
    fn c0_controls_and_del_become_pictures() {
        assert_eq!(sanitize_text("\0\u{7}\u{8}x\u{7F}", 100), "␀␇␈x␡");
        assert_eq!(sanitize_text("\u{C}\u{E}\u{1F}", 100), "␌␎␟");
    }

    #[test]
    fn c1_and_bidi_controls_are_replaced() {
        assert_eq!(
            sanitize_text("a\u{9B}31mb\u{85}", 100),
            "a\u{FFFD}31mb\u{FFFD}"
        );
        assert_eq!(sanitize_text("x\u{202E}gnp.exe", 100), "x\u{FFFD}gnp.exe");
        assert_eq!(sanitize_text("é ü ß 日本", 100), "é ü ß 日本");
    }

    #[test]
    fn escape_sequences_are_replaced_whole() {
        // CSI: colour, cursor movement, clear screen.
        assert_eq!(sanitize_text("\u{1B}[1;31mred\u{1B}[0m", 100), "␛red␛");
        assert_eq!(sanitize_text("\u{1B}[2J\u{1B}[H", 100), "␛␛");
        assert_eq!(sanitize_text("\u{1B}[?1049h", 100), "␛");
        // OSC: window title, ended by BEL or by ST.
        assert_eq!(sanitize_text("\u{1B}]0;pwned\u{7}after", 100), "␛after");
        assert_eq!(sanitize_text("\u{1B}]2;t\u{1B}\\after", 100), "␛after");
        // DCS without a terminator: only ESC P goes, the rest is plain text.
        assert_eq!(sanitize_text("\u{1B}Pq#0", 100), "␛q#0");
        // Two-character sequences and a trailing ESC.
        assert_eq!(sanitize_text("\u{1B}c\u{1B}7x\u{1B}", 100), "␛␛x␛");
        // ESC followed by a control: both replaced separately.
        assert_eq!(sanitize_text("\u{1B}\u{7}", 100), "␛␇");
        // No ESC survives, whatever follows it.
        for tail in ["[", "[12", "]", "]x", "P", "(", "\u{1B}", "[1;2"] {
            let s = sanitize_text(&format!("a\u{1B}{tail}"), 100);
            assert!(!s.contains('\u{1B}'), "{s:?}");
        }
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        let long = "x".repeat(2000);
        let s = sanitize_text(&long, 1600);
        assert_eq!(s.chars().count(), 1600);
        assert!(s.ends_with("x…"));
        assert_eq!(sanitize_text("exactly", 7), "exactly");
        assert_eq!(sanitize_text("exactly8", 7), "exactl…");
        // Counted in characters, not bytes.
        assert_eq!(sanitize_text("ééééé", 4), "ééé…");
        assert_eq!(sanitize_text("abc", 0), "");
    }

    #[test]
    fn names_are_one_line() {
        assert_eq!(sanitize_name("ALICE", 64), "ALICE");
        assert_eq!(sanitize_name(" BOB  ", 64), "BOB");
        assert_eq!(sanitize_name("A\nB\tC\r\n", 64), "A␊B␉C␊");
        assert_eq!(sanitize_name("\u{1B}[31mEVE", 64), "␛EVE");
        let s = sanitize_name(&"N".repeat(100), 64);
        assert_eq!(s.chars().count(), 64);
        assert!(s.ends_with('…'));
    }
}
