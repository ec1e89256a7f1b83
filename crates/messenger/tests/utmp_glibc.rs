//! The utmp parser against records written by the C library itself (`pututxline` into a file
//! named with `utmpxname`), so that the layout is the real one and not this crate's idea of it.

use std::ffi::CString;
use std::path::Path;

use mailslot_messenger::terminal::{parse_utmp, read_utmp, Session, UTMP_RECORD_SIZE};

fn copy(dst: &mut [libc::c_char], s: &str) {
    for (d, b) in dst.iter_mut().zip(s.bytes()) {
        *d = b as libc::c_char;
    }
}

/// Appends one record with the C library's utmp writer.
fn put(file: &Path, ty: libc::c_short, user: &str, line: &str, id: &str, pid: i32) {
    let name = CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a zeroed utmpx is a valid value (integers and char arrays); the C library's utmp
    // functions are given a valid path and record and are used from this one thread.
    unsafe {
        let mut ut: libc::utmpx = std::mem::zeroed();
        ut.ut_type = ty;
        ut.ut_pid = pid;
        copy(&mut ut.ut_user, user);
        copy(&mut ut.ut_line, line);
        copy(&mut ut.ut_id, id);
        assert_eq!(libc::utmpxname(name.as_ptr()), 0);
        libc::setutxent();
        assert!(!libc::pututxline(&ut).is_null(), "pututxline failed");
        libc::endutxent();
    }
}

#[test]
fn reads_records_written_by_the_c_library() {
    let dir = std::env::temp_dir().join(format!("messenger-utmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("utmp");
    std::fs::write(&file, b"").unwrap();
    put(&file, libc::USER_PROCESS, "alice", "pts/7", "ts/7", 4242);
    put(&file, libc::LOGIN_PROCESS, "LOGIN", "tty3", "3", 17);
    put(&file, libc::USER_PROCESS, "bob", "tty2", "2", 99);
    // The same line again (a new login on pts/7): pututxline replaces that record.
    put(&file, libc::USER_PROCESS, "carol", "pts/7", "ts/7", 5151);

    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        bytes.len(),
        3 * UTMP_RECORD_SIZE,
        "three records of the C library's size"
    );
    let sessions = read_utmp(&file).unwrap();
    assert_eq!(
        sessions,
        vec![
            Session {
                user: "carol".into(),
                line: "pts/7".into(),
                pid: 5151
            },
            Session {
                user: "bob".into(),
                line: "tty2".into(),
                pid: 99
            },
        ]
    );
    assert_eq!(parse_utmp(&bytes[..UTMP_RECORD_SIZE + 10]).len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
