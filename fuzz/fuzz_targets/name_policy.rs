//! The name policy file (`/etc/mailslot/policy.toml`): parsing any text never panics (a bad
//! file is an error), and for a policy that parses, the verdict on any local name never panics,
//! never denies root, and is "unrestricted" exactly when no rule's pattern covers the name.
//! The input is the file, then a NUL, then the name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot::policy::{Lookup, Pattern, Policy, Verdict};
use mailslot::Name;

/// Users and groups as a test system would have them: a name made of digits 1–9 is that id.
struct Digits;

impl Lookup for Digits {
    fn uid(&self, name: &str) -> Option<u32> {
        name.parse().ok().filter(|&n| n > 0)
    }

    fn gid(&self, name: &str) -> Option<u32> {
        self.uid(name)
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, name) = text.split_once('\0').unwrap_or((text, r"\\.\mailslot\a"));
    let Ok(policy) = Policy::from_toml(file) else {
        return;
    };
    for r in policy.rules() {
        match &r.pattern {
            Pattern::Exact(k) => assert!(!k.is_empty(), "an exact rule names something"),
            Pattern::Prefix(_) => {}
        }
    }
    let Ok(name) = Name::parse(name) else {
        return;
    };
    if !name.is_local() {
        return;
    }
    let covered = policy.rules().iter().any(|r| match &r.pattern {
        Pattern::Exact(k) => *k == name.key(),
        Pattern::Prefix(p) => name.key().starts_with(p.as_str()),
    });
    for (uid, groups) in [
        (0, &[][..]),
        (1, &[1, 2][..]),
        (7, &[][..]),
        (65534, &[65534][..]),
    ] {
        let v = policy.verdict(&name, uid, groups, &Digits);
        assert_eq!(v == Verdict::Unrestricted, !covered, "coverage of {name}");
        if uid == 0 {
            assert!(v.is_allowed(), "root is never denied");
        }
    }
});
