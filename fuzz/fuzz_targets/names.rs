//! parse → emit → parse for second-level encoded NetBIOS names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailslot_proto::QualifiedName;

fuzz_target!(|data: &[u8]| {
    if let Ok((q, _)) = QualifiedName::parse(data, 0) {
        let v = q.to_vec().expect("a parsed name re-encodes");
        let (again, n) = QualifiedName::parse(&v, 0).expect("re-parse");
        assert_eq!(n, v.len());
        assert_eq!(again, q);
    }
});
