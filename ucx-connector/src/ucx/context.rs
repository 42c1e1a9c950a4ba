//! The UCP context.

use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::Arc;

use proxy_core::{Error, Result};
use ucx_sys::*;

use super::check;

/// Which UCP features a context enables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    /// One-sided put/get.
    pub rma: bool,
    /// Active messages.
    pub am: bool,
    /// Event-fd based waiting (`ucp_worker_arm` + poll).
    pub wakeup: bool,
}

/// An initialised UCP context (`ucp_init` .. `ucp_cleanup`). Reads the usual
/// `UCX_*` environment variables (`UCX_TLS`, `UCX_NET_DEVICES`, ...).
#[derive(Debug)]
pub struct Context {
    raw: ucp_context_h,
}

// SAFETY: the context is created with `mt_workers_shared = 1`, which makes the
// context-level calls we use (ucp_mem_map/unmap, ucp_rkey_pack, worker
// creation) safe to call from several threads; the handle itself is an opaque
// pointer that UCX does not tie to the creating thread.
unsafe impl Send for Context {}
// SAFETY: see `Send`; no method takes `&mut` state on the Rust side.
unsafe impl Sync for Context {}

impl Context {
    /// An RMA context with UCX's transports limited to `tls` (`UCX_TLS`
    /// syntax; `None` keeps the environment's choice); `wakeup` for a
    /// progress loop that sleeps on the worker's event fd.
    pub fn rma(tls: Option<&str>, wakeup: bool) -> Result<Arc<Context>> {
        let overrides: Vec<(&str, &str)> = tls.map(|t| ("TLS", t)).into_iter().collect();
        Context::new(
            Features {
                rma: true,
                am: false,
                wakeup,
            },
            &overrides,
        )
    }

    /// Initialise UCP with the given features. `overrides` are UCX options
    /// without the `UCX_` prefix (`("TLS", "tcp")`), applied over the
    /// environment.
    ///
    /// Fails first if the UCX library loaded at run time is not the UCX API
    /// version (major.minor) that the bindings were generated for.
    pub fn new(features: Features, overrides: &[(&str, &str)]) -> Result<Arc<Context>> {
        check_loaded_version()?;
        let mut feat = ucp_feature(0);
        if features.rma {
            feat |= ucp_feature::UCP_FEATURE_RMA;
        }
        if features.am {
            feat |= ucp_feature::UCP_FEATURE_AM;
        }
        if features.wakeup {
            feat |= ucp_feature::UCP_FEATURE_WAKEUP;
        }
        let params = ucp_params_t {
            field_mask: (ucp_params_field::UCP_PARAM_FIELD_FEATURES
                | ucp_params_field::UCP_PARAM_FIELD_MT_WORKERS_SHARED)
                .0 as u64,
            features: feat.0 as u64,
            mt_workers_shared: 1,
            ..Default::default()
        };
        let mut config: *mut ucp_config_t = ptr::null_mut();
        // SAFETY: NULL env prefix and file name mean "defaults + UCX_* variables";
        // `config` is a valid out-pointer.
        check("ucp_config_read", unsafe {
            ucp_config_read(ptr::null(), ptr::null(), &mut config)
        })?;
        for (name, value) in overrides {
            let (Ok(n), Ok(v)) = (CString::new(*name), CString::new(*value)) else {
                // SAFETY: `config` came from ucp_config_read and is released once.
                unsafe { ucp_config_release(config) };
                return Err(Error::config(
                    "ucx",
                    format!("UCX option {name}={value:?} contains a NUL byte"),
                ));
            };
            // SAFETY: `config` is live; both strings are NUL-terminated and outlive the call.
            let status = unsafe { ucp_config_modify(config, n.as_ptr(), v.as_ptr()) };
            if status != ucs_status_t::UCS_OK {
                // SAFETY: as above.
                unsafe { ucp_config_release(config) };
                return Err(Error::config(
                    "ucx",
                    format!("UCX option {name}={value:?}: {}", super::UcsError(status)),
                ));
            }
        }
        let mut raw: ucp_context_h = ptr::null_mut();
        // SAFETY: `params` and `config` are valid for the call; `raw` is an out-pointer.
        let status = unsafe { ps_ucp_init(&params, config, &mut raw) };
        // SAFETY: `config` came from ucp_config_read and is released exactly once.
        unsafe { ucp_config_release(config) };
        check("ucp_init", status)?;
        Ok(Arc::new(Context { raw }))
    }

    /// The raw handle (valid while `self` lives).
    pub fn raw(&self) -> ucp_context_h {
        self.raw
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: every child (worker, registration) holds an Arc to this context,
        // so none is alive any more; the handle is cleaned up exactly once.
        unsafe { ucp_cleanup(self.raw) };
    }
}

/// The UCX version whose headers the bindings were generated from.
pub const HEADERS_VERSION: (u32, u32) = (UCP_API_MAJOR, UCP_API_MINOR);

/// The UCX library loaded in this process: `(major, minor, release)` and the
/// path of `libucp` (as the dynamic loader reports it).
pub fn loaded_version() -> ((u32, u32, u32), String) {
    let (mut major, mut minor, mut release) = (0u32, 0u32, 0u32);
    // SAFETY: ucp_get_version only writes its three out-parameters.
    unsafe { ucp_get_version(&mut major, &mut minor, &mut release) };
    // SAFETY: `info` is a plain C struct for dladdr to fill; the address is
    // that of a function of libucp; dli_fname, when set, is a NUL-terminated
    // string owned by the loader and read before returning.
    let path = unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let addr = ucp_get_version as *const libc::c_void;
        if libc::dladdr(addr, &mut info) != 0 && !info.dli_fname.is_null() {
            CStr::from_ptr(info.dli_fname)
                .to_string_lossy()
                .into_owned()
        } else {
            "libucp".to_string()
        }
    };
    ((major, minor, release), path)
}

/// Refuse a UCX library whose major.minor API version differs from the
/// headers': its structures and inline functions may not be the ones the
/// bindings were made for.
pub fn check_loaded_version() -> Result<()> {
    let (loaded, path) = loaded_version();
    version_check(HEADERS_VERSION, loaded, &path)
}

fn version_check(headers: (u32, u32), loaded: (u32, u32, u32), path: &str) -> Result<()> {
    if (loaded.0, loaded.1) == headers {
        return Ok(());
    }
    Err(Error::config(
        "ucx",
        format!(
            "UCX version mismatch: built against the UCX {}.{} headers, but the UCX loaded \
             at run time is {}.{}.{} ({path}). Run with the UCX it was built with (it is on \
             the run path unless LD_LIBRARY_PATH points elsewhere), or rebuild against this \
             one (UCX_DIR or PKG_CONFIG_PATH).",
            headers.0, headers.1, loaded.0, loaded.1, loaded.2
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_ucx_is_the_one_built_against() {
        let ((major, minor, _), path) = loaded_version();
        assert_eq!((major, minor), HEADERS_VERSION, "{path}");
        assert!(path.contains("libucp"), "{path}");
        check_loaded_version().unwrap();
    }

    #[test]
    fn other_major_or_minor_is_refused_with_both_versions() {
        for loaded in [(1, 13, 1), (2, 22, 0), (1, 23, 0)] {
            let e = version_check((1, 22), loaded, "/usr/lib/libucp.so.0")
                .unwrap_err()
                .to_string();
            assert!(e.contains("UCX version mismatch"), "{e}");
            assert!(e.contains("1.22 headers"), "{e}");
            let l = format!("{}.{}.{}", loaded.0, loaded.1, loaded.2);
            assert!(e.contains(&l) && e.contains("/usr/lib/libucp.so.0"), "{e}");
        }
        // Releases of one minor version share the API.
        version_check((1, 22), (1, 22, 7), "x").unwrap();
    }
}
