//! Mailslot names: parse never panics; a parsed name re-parses from its display form to an equal
//! name with the same path.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot::Name;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(n) = Name::parse(s) {
        let again = Name::parse(&n.to_string()).expect("display form re-parses");
        assert_eq!(again, n);
        assert_eq!(again.path(), n.path());
        assert!(n.path().len() <= mailslot::name::MAX_PATH_LEN);
    }
});
