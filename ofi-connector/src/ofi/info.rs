//! Provider discovery: `fi_getinfo` with the hints the connector needs.

use std::ffi::{CStr, CString};
use std::ptr;

use libfabric_sys::*;
use proxy_core::{Error, Result};

use super::{KIND, check};

/// The provider's `mr_mode` bits (`FI_MR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MrMode(pub u32);

impl MrMode {
    /// Bits this layer honours; providers needing others (`FI_MR_RAW`,
    /// `FI_MR_HMEM`, `FI_MR_MMU_NOTIFY`, ...) do not match at `fi_getinfo`.
    pub const SUPPORTED: MrMode =
        MrMode(FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT);

    /// Local buffers must be registered, their `fi_mr_desc` passed along.
    pub fn local(self) -> bool {
        self.0 & FI_MR_LOCAL != 0
    }
    /// Remote addresses are virtual addresses (else offsets into the MR).
    pub fn virt_addr(self) -> bool {
        self.0 & FI_MR_VIRT_ADDR != 0
    }
    /// The provider chooses keys (else we request unique ones).
    pub fn prov_key(self) -> bool {
        self.0 & FI_MR_PROV_KEY != 0
    }
    /// MRs are bound to an endpoint and enabled before use.
    pub fn endpoint(self) -> bool {
        self.0 & FI_MR_ENDPOINT != 0
    }
    /// Registered memory must be backed (allocated, faulted in).
    pub fn allocated(self) -> bool {
        self.0 & FI_MR_ALLOCATED != 0
    }
}

/// The libfabric API version asked for (the crate's floor, see
/// `libfabric-sys`'s build script).
pub const API_VERSION: u32 = fi_version_of(1, 10);

/// What to ask `fi_getinfo` for.
#[derive(Debug, Clone, Default)]
pub struct InfoQuery {
    /// Provider name (`"shm"`, `"tcp;ofi_rxm"`, `"cxi"`, `"efa"`,
    /// `"verbs;ofi_rxm"`); `None`: libfabric's choice, filtered by `FI_PROVIDER`.
    pub provider: Option<String>,
    /// Domain (NIC) name (`"lo"`, `"eth0"`, `"cxi0"`); `None`: the first.
    pub domain: Option<String>,
}

/// An owned `fi_info` list (freed on drop); [`Info::raw`] is its first entry.
#[derive(Debug)]
pub struct Info {
    raw: *mut fi_info,
}

// SAFETY: the list is plain heap data owned by this value; libfabric only
// reads it (fi_fabric/fi_domain/fi_endpoint copy what they need).
unsafe impl Send for Info {}
// SAFETY: `&Info` only reads.
unsafe impl Sync for Info {}

/// Owned hints (freed on drop, also on early return).
struct Hints(*mut fi_info);

impl Drop for Hints {
    fn drop(&mut self) {
        // SAFETY: allocated by fi_allocinfo, freed once; fi_freeinfo also
        // frees the strdup'ed strings we stored in it.
        unsafe { fi_freeinfo(self.0) };
    }
}

fn strdup(s: &str) -> Result<*mut std::os::raw::c_char> {
    let c =
        CString::new(s).map_err(|_| Error::config(KIND, format!("{s:?} contains a NUL byte")))?;
    // SAFETY: `c` is a valid NUL-terminated string; the copy is malloc'ed,
    // which is what fi_freeinfo frees.
    let p = unsafe { libc::strdup(c.as_ptr()) };
    if p.is_null() {
        return Err(Error::io("strdup", std::io::Error::last_os_error()));
    }
    Ok(p)
}

impl Info {
    /// The providers offering `FI_EP_RDM` endpoints with one-sided reads and
    /// writes, honouring the `mr_mode` bits this layer supports.
    pub fn get(q: &InfoQuery) -> Result<Info> {
        // libfabric is loaded here, when a libfabric store is first opened,
        // not when the process starts.
        libfabric_sys::load().map_err(|e| Error::config(KIND, e))?;
        // SAFETY: fi_allocinfo returns a zeroed fi_info with allocated
        // attribute structs, or null.
        let hints = Hints(unsafe { fi_allocinfo() });
        if hints.0.is_null() {
            return Err(Error::permanent(KIND, "fi_allocinfo", "out of memory"));
        }
        // SAFETY: hints.0 and its attribute pointers were allocated by
        // fi_allocinfo; we only write plain fields and malloc'ed strings.
        unsafe {
            let h = &mut *hints.0;
            h.caps = (FI_RMA | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE) as u64;
            // We supply an fi_context2 with every operation.
            h.mode = FI_CONTEXT | FI_CONTEXT2;
            (*h.ep_attr).type_ = fi_ep_type_FI_EP_RDM;
            let d = &mut *h.domain_attr;
            d.mr_mode = MrMode::SUPPORTED.0 as i32;
            d.threading = fi_threading_FI_THREAD_DOMAIN;
            d.resource_mgmt = fi_resource_mgmt_FI_RM_ENABLED;
            if let Some(name) = &q.domain {
                d.name = strdup(name)?;
            }
            if let Some(p) = &q.provider {
                (*h.fabric_attr).prov_name = strdup(p)?;
            }
        }
        let mut raw: *mut fi_info = ptr::null_mut();
        // SAFETY: hints are valid; `raw` is a valid out-pointer.
        let r = unsafe { fi_getinfo(API_VERSION, ptr::null(), ptr::null(), 0, hints.0, &mut raw) };
        if r < 0 || raw.is_null() {
            let what = match (&q.provider, std::env::var("FI_PROVIDER")) {
                (Some(p), _) => format!("provider {p:?}"),
                (None, Ok(p)) => format!("FI_PROVIDER={p:?}"),
                (None, Err(_)) => "any provider".into(),
            };
            let domain = q
                .domain
                .as_deref()
                .map(|d| format!(", domain {d:?}"))
                .unwrap_or_default();
            let cause = check("fi_getinfo", r)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no match".into());
            return Err(Error::config(
                KIND,
                format!(
                    "no libfabric provider offers FI_EP_RDM with FI_RMA for {what}{domain} ({cause}); \
                     `fi_info -t FI_EP_RDM -c FI_RMA` lists what this machine has"
                ),
            ));
        }
        Ok(Info { raw })
    }

    /// The first (best) entry.
    pub fn raw(&self) -> *mut fi_info {
        self.raw
    }

    /// `provider;domain` of the first entry, e.g. `tcp;ofi_rxm` on `lo`.
    pub fn describe(&self) -> String {
        // SAFETY: a non-empty list returned by fi_getinfo: its fabric and
        // domain attributes and their names are valid C strings (or null).
        unsafe {
            let i = &*self.raw;
            let s = |p: *const std::os::raw::c_char| {
                if p.is_null() {
                    String::from("?")
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            format!(
                "{} on {}",
                s((*i.fabric_attr).prov_name),
                s((*i.domain_attr).name)
            )
        }
    }

    /// The provider's name (`"shm"`, `"tcp;ofi_rxm"`, ...).
    pub fn provider(&self) -> String {
        // SAFETY: as in `describe`.
        unsafe {
            let p = (*(*self.raw).fabric_attr).prov_name;
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// The largest message (and one-sided transfer) the endpoint takes.
    pub fn max_msg_size(&self) -> u64 {
        // SAFETY: the first entry's endpoint attributes are valid (or null).
        unsafe {
            let ep = (*self.raw).ep_attr;
            if ep.is_null() {
                u64::MAX
            } else {
                (*ep).max_msg_size as u64
            }
        }
    }

    /// The provider's memory-registration key size in bytes (`mr_key_size`).
    pub fn mr_key_size(&self) -> usize {
        // SAFETY: the first entry's domain attributes are valid.
        unsafe { (*(*self.raw).domain_attr).mr_key_size }
    }

    /// The memory-registration mode the provider asks for.
    pub fn mr_mode(&self) -> MrMode {
        // SAFETY: the first entry's domain attributes are valid.
        MrMode(unsafe { (*(*self.raw).domain_attr).mr_mode } as u32)
    }
}

impl Drop for Info {
    fn drop(&mut self) {
        // SAFETY: the list came from fi_getinfo and is freed once.
        unsafe { fi_freeinfo(self.raw) };
    }
}
