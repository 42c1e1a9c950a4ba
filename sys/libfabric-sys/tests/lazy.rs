//! libfabric is loaded on first use: before `load()` nothing of it is in the
//! process and its entry points fail cleanly; after, they work. (Its own test
//! binary, so that no other test has loaded it first.)

use libfabric_sys::*;
use std::ffi::CStr;

fn mapped_libfabric() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .contains("libfabric")
}

#[test]
fn nothing_works_before_load_and_everything_after() {
    // One test, so that no other test of this binary has loaded it first.
    assert!(!is_loaded());
    assert!(!mapped_libfabric(), "libfabric is mapped before load()");
    // SAFETY: the shim's entry points check for a loaded library.
    unsafe {
        assert!(fi_allocinfo().is_null());
        assert_eq!(fi_version(), 0);
        let mut info: *mut fi_info = std::ptr::null_mut();
        let r = fi_getinfo(
            fi_version_of(1, 10),
            std::ptr::null(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            &mut info,
        );
        assert_eq!(r, -(FI_ENOSYS as i32));
        assert!(
            !CStr::from_ptr(fi_strerror(FI_ENOSYS as i32))
                .to_bytes()
                .is_empty()
        );
    }
    // The process's own signal handlers survive the load (PSM, which
    // Debian's libfabric links, installs exiting ones for SIGTERM, SIGINT,
    // SIGSEGV and SIGBUS when it loads).
    extern "C" fn ours(_: i32) {}
    let handler = ours as extern "C" fn(i32) as libc::sighandler_t;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: installing a handler that does nothing; no other thread of
        // this test binary depends on these signals.
        assert_ne!(unsafe { libc::signal(sig, handler) }, libc::SIG_ERR);
    }
    let path = load().expect("libfabric loads");
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: reading the disposition (sigaction with no new action).
        let now = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            old.sa_sigaction
        };
        assert_eq!(
            now, handler,
            "signal {sig}: the load replaced the process's handler"
        );
    }
    assert!(path.contains("libfabric"), "{path}");
    assert!(is_loaded());
    assert!(mapped_libfabric());
    assert_eq!(load().unwrap(), path, "a second load is the first one's");
    // SAFETY: loaded now.
    assert_ne!(unsafe { fi_version() }, 0);
}
