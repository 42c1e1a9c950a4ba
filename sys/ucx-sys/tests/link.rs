//! Compile-and-link smoke test: the library and the shim resolve and agree.

use std::ffi::CStr;
use ucx_sys::*;

#[test]
fn version_matches_headers() {
    let (mut major, mut minor, mut release) = (0u32, 0u32, 0u32);
    // SAFETY: ucp_get_version only writes the three out-parameters.
    unsafe { ucp_get_version(&mut major, &mut minor, &mut release) };
    // SAFETY: ps_api_version is a pure shim function.
    let api = unsafe { ps_api_version() };
    assert_eq!(
        (major, minor),
        (api >> 24, (api >> 16) & 0xff),
        "libucp and headers disagree"
    );
    assert!((major, minor) >= (1, 10));
    // SAFETY: ucp_get_version_string returns a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ucp_get_version_string()) };
    assert!(s.to_str().unwrap().starts_with(&format!("{major}.{minor}")));
}

#[test]
fn status_helpers() {
    // SAFETY: ucs_status_string returns a static string for every status value.
    let s = unsafe { CStr::from_ptr(ucs_status_string(ucs_status_t::UCS_ERR_NO_MEMORY)) };
    assert!(s.to_str().unwrap().to_lowercase().contains("memory"));
    // NULL is UCS_OK; an encoded error is an error; a real pointer is in progress.
    let err = ucs_status_t::UCS_ERR_IO_ERROR.0 as isize as *const core::ffi::c_void;
    let mut x = 0u8;
    let ptr = (&raw mut x).cast::<core::ffi::c_void>();
    // SAFETY: the ps_ptr_* shims only inspect the pointer value.
    unsafe {
        assert_eq!(ps_ptr_status(core::ptr::null()), ucs_status_t::UCS_OK);
        assert_eq!(ps_ptr_is_err(err), 1);
        assert_eq!(ps_ptr_status(err), ucs_status_t::UCS_ERR_IO_ERROR);
        assert_eq!(ps_ptr_is_ptr(ptr), 1);
        assert_eq!(ps_ptr_status(ptr), ucs_status_t::UCS_INPROGRESS);
    }
}
