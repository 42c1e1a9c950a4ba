//! Load-and-call smoke test: the library loads at run time, and it and the
//! shim agree.

use libfabric_sys::*;
use std::ffi::CStr;

fn loaded() {
    load().expect("libfabric loads");
}

#[test]
fn version_matches_headers() {
    loaded();
    // SAFETY: fi_version and the shim's fi_header_version take no arguments.
    let (lib, hdr) = unsafe { (fi_version(), fi_header_version()) };
    assert!(
        lib >= hdr,
        "libfabric {}.{} is older than its headers {}.{}",
        fi_major(lib),
        fi_minor(lib),
        fi_major(hdr),
        fi_minor(hdr)
    );
    assert!((fi_major(hdr), fi_minor(hdr)) >= (1, 10));
    assert_eq!(
        (fi_major(hdr), fi_minor(hdr)),
        (FI_MAJOR_VERSION, FI_MINOR_VERSION)
    );
}

#[test]
fn errors_and_constants() {
    loaded();
    // SAFETY: fi_strerror returns a static string for any error number.
    let s = unsafe { CStr::from_ptr(fi_strerror(FI_EAGAIN as i32)) };
    assert!(!s.to_bytes().is_empty());
    // SAFETY: pure shim function.
    assert_eq!(unsafe { fi_addr_unspec() }, u64::MAX);
    assert_ne!(FI_READ, FI_REMOTE_READ);
}

#[test]
fn getinfo_finds_an_rdm_provider() {
    loaded();
    // SAFETY: fi_allocinfo returns a zeroed fi_info with attribute structs (or
    // null); the hints are only written through those pointers; every
    // fi_info is freed exactly once.
    unsafe {
        let hints = fi_allocinfo();
        assert!(!hints.is_null());
        (*hints).caps = FI_RMA as u64 | FI_READ as u64;
        (*(*hints).ep_attr).type_ = fi_ep_type_FI_EP_RDM;
        let mut info: *mut fi_info = std::ptr::null_mut();
        let r = fi_getinfo(
            fi_version_of(1, 10),
            std::ptr::null(),
            std::ptr::null(),
            0,
            hints,
            &mut info,
        );
        fi_freeinfo(hints);
        // The shm provider is built into every Debian libfabric; a site build
        // may lack RMA on RDM entirely, which is what this test would show.
        assert_eq!(
            r,
            0,
            "fi_getinfo(FI_EP_RDM, FI_RMA): {}",
            CStr::from_ptr(fi_strerror(-r)).to_string_lossy()
        );
        assert!(!info.is_null());
        let name = CStr::from_ptr((*(*info).fabric_attr).prov_name);
        assert!(!name.to_bytes().is_empty());
        fi_freeinfo(info);
    }
}
