//! libfabric is loaded when it is first needed, not when a process starts.
//!
//! Binaries that link this crate do not link libfabric: [`load`] `dlopen`s
//! it (the shim's `ps_fabric_load`) and every exported libfabric function
//! (`fi_getinfo`, `fi_fabric`, `fi_freeinfo`, `fi_dupinfo`, `fi_version`,
//! `fi_strerror`, `fi_tostr`) goes through the pointers it resolved. Loading
//! libfabric costs what its provider libraries' constructors cost (Debian's
//! libfabric 1.17 pulls in `libpsm_infinipath` and `libpsm2`, ~100 ms each),
//! so a process that never opens a libfabric store (a CLI call, a rank that
//! only uses UCX) does not pay it.

use std::ffi::{CStr, CString, c_char};
use std::sync::Mutex;

/// Where the library was loaded from, once it was.
static LOADED: Mutex<Option<String>> = Mutex::new(None);

/// The directory the build found libfabric in (tried first).
const BUILD_LIB_DIR: &str = env!("PS_FABRIC_LIB_DIR");

/// Variable naming the libfabric shared library to load (a path), before
/// anything else is tried.
pub const LIBRARY_VAR: &str = "PROXYSTORE_LIBFABRIC";

/// What [`load`] tried, each with its failure, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// One entry per attempt: what was opened and why it failed.
    pub tried: Vec<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "libfabric could not be loaded; tried:")?;
        for (i, t) in self.tried.iter().enumerate() {
            write!(f, " {}. {t};", i + 1)?;
        }
        write!(
            f,
            " fix: install libfabric (Debian/Ubuntu: `apt-get install libfabric1`; Spack: \
             `spack load libfabric`; Cray/HPE: `module load libfabric`), or set {LIBRARY_VAR} \
             to the path of its libfabric.so.1"
        )
    }
}

impl std::error::Error for LoadError {}

/// The libraries to try, in order.
fn candidates() -> Vec<String> {
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os(LIBRARY_VAR).filter(|p| !p.is_empty()) {
        c.push(p.to_string_lossy().into_owned());
    }
    if !BUILD_LIB_DIR.is_empty() {
        c.push(format!("{BUILD_LIB_DIR}/libfabric.so.1"));
    }
    // The dynamic linker's search: LD_LIBRARY_PATH, the run path, ld.so.cache.
    c.push("libfabric.so.1".into());
    c.push("libfabric.so".into());
    c
}

/// Load libfabric if it is not loaded yet; the library's path (as opened).
/// Cheap once loaded. A failed attempt keeps nothing, so a later call tries
/// again (e.g. after `PROXYSTORE_LIBFABRIC` was set).
pub fn load() -> Result<String, LoadError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = loaded.as_ref() {
        return Ok(p.clone());
    }
    let mut tried = Vec::new();
    for path in candidates() {
        let Ok(c) = CString::new(path.as_bytes()) else {
            tried.push(format!("{path:?}: contains a NUL byte"));
            continue;
        };
        let mut err = [0 as c_char; 512];
        // SAFETY: `c` is NUL-terminated; `err` is writable for its length
        // and the shim NUL-terminates what it writes; the lock serializes
        // calls, as the shim requires.
        let r = unsafe { crate::ps_fabric_load(c.as_ptr(), err.as_mut_ptr(), err.len()) };
        if r == 0 {
            // SAFETY: loaded: fi_version and the shim's header version take
            // no arguments.
            let (lib, hdr) = unsafe { (crate::fi_version(), crate::fi_header_version()) };
            if crate::fi_major(lib) != crate::fi_major(hdr) {
                // Nothing else may be loaded in its place: refuse for good.
                tried.push(format!(
                    "{path}: libfabric {}.{}, but this build used the {}.{} headers",
                    crate::fi_major(lib),
                    crate::fi_minor(lib),
                    crate::fi_major(hdr),
                    crate::fi_minor(hdr)
                ));
                return Err(LoadError { tried });
            }
            *loaded = Some(path.clone());
            return Ok(path);
        }
        // SAFETY: the shim wrote a NUL-terminated message into `err`.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
        tried.push(format!("{path}: {}", msg.to_string_lossy()));
    }
    Err(LoadError { tried })
}

/// Whether libfabric is loaded in this process (by [`load`]).
pub fn is_loaded() -> bool {
    LOADED.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_lists_every_attempt_and_the_fix() {
        let e = LoadError {
            tried: vec![
                "/x/libfabric.so.1: no such file".into(),
                "libfabric.so.1: gone".into(),
            ],
        };
        let s = e.to_string();
        assert!(s.contains("1. /x/libfabric.so.1: no such file;"), "{s}");
        assert!(s.contains("2. libfabric.so.1: gone;"), "{s}");
        assert!(
            s.contains("apt-get install libfabric1") && s.contains(LIBRARY_VAR),
            "{s}"
        );
    }

    #[test]
    fn the_soname_is_tried_after_the_build_directory() {
        let c = candidates();
        let so = c
            .iter()
            .position(|p| p == "libfabric.so.1")
            .expect("soname tried");
        if !BUILD_LIB_DIR.is_empty() {
            assert_eq!(c[so - 1], format!("{BUILD_LIB_DIR}/libfabric.so.1"));
        }
        assert_eq!(c.last().map(String::as_str), Some("libfabric.so"));
    }
}
