//! # daos-sys
//!
//! Hand-written declarations of the part of the DAOS client API (`libdaos`,
//! DAOS 2.6) that `daos-connector` uses, and a loader that opens `libdaos` at
//! run time with [`libloading`].
//!
//! DAOS is in no package registry a build machine can count on (sites install
//! it from DAOS's RPMs or Spack), so this crate needs neither the headers nor
//! the library to compile: every type and function below is declared here,
//! and [`api`] resolves the functions the first time it is called. Without
//! libdaos, [`api`] returns a [`LoadError`] that names what is missing and how
//! to install it.
//!
//! When the build script finds the DAOS headers (`DAOS_DIR`, or `/usr`,
//! `/usr/local`), it sets the `has_daos` cfg and generates bindgen
//! declarations from them; `tests/layout.rs` then checks every hand-written
//! type (size, alignment, field offsets) and every function signature against
//! them, so a drift between these declarations and the real headers fails a
//! test instead of corrupting memory.
//!
//! Library lookup order: `$DAOS_DIR/lib64/libdaos.so.2` (then `lib/`), the
//! library directory found at build time, then the dynamic loader's search
//! path (`libdaos.so.2`, `LD_LIBRARY_PATH`).
//!
//! Names follow the C API; a few functions are macros in the headers and are
//! resolved under their real symbol (`daos_pool_connect` is
//! `daos_pool_connect2`, `daos_cont_open` is `daos_cont_open2`,
//! `daos_obj_generate_oid` is `daos_obj_generate_oid2`).

#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::fmt;
use std::sync::OnceLock;

/// Environment variable naming a DAOS install prefix (as for the build script).
pub const DAOS_DIR_ENV: &str = "DAOS_DIR";

/// How to get DAOS, for error messages.
pub const INSTALL_HINT: &str = "install the DAOS client (the daos-client RPM from packages.daos.io, \
     or `spack install daos`), or build DAOS 2.6 from source, then set DAOS_DIR to its prefix \
     (or put its lib64/ on LD_LIBRARY_PATH)";

/// Generic handle (pool, container, object, transaction, event queue).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct daos_handle_t {
    /// Opaque handle value; 0 is the invalid handle.
    pub cookie: u64,
}

/// `DAOS_TX_NONE`: an independent operation (no transaction).
pub const DAOS_TX_NONE: daos_handle_t = daos_handle_t { cookie: 0 };

/// A 128-bit object id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct daos_obj_id_t {
    /// Low bits (the part the application chooses).
    pub lo: u64,
    /// High bits (DAOS encodes the object type and class in the top 32).
    pub hi: u64,
}

/// One memory buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct d_iov_t {
    /// Start address.
    pub iov_buf: *mut c_void,
    /// Buffer length.
    pub iov_buf_len: usize,
    /// Data length.
    pub iov_len: usize,
}

/// Scatter-gather list of memory buffers.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct d_sg_list_t {
    /// Number of entries in `sg_iovs`.
    pub sg_nr: u32,
    /// Entries used (on output).
    pub sg_nr_out: u32,
    /// The buffers.
    pub sg_iovs: *mut d_iov_t,
}

/// A range of array records.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct daos_range_t {
    /// First record.
    pub rg_idx: u64,
    /// Number of records.
    pub rg_len: u64,
}

/// Array I/O descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct daos_array_iod_t {
    /// Number of ranges.
    pub arr_nr: u64,
    /// The ranges.
    pub arr_rgs: *mut daos_range_t,
    /// (read) records short-fetched from the largest dkey(s).
    pub arr_nr_short_read: u64,
    /// (read) records actually read.
    pub arr_nr_read: u64,
}

/// The value of a property entry: a number, a string or a pointer to a
/// property-specific structure (`dpe_val_ptr`).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub union daos_prop_entry_val {
    /// A numeric value.
    pub dpe_val: u64,
    /// A string value.
    pub dpe_str: *mut c_char,
    /// Any other value (for `DAOS_PROP_CO_ROOTS`: a [`daos_prop_co_roots`]).
    pub dpe_val_ptr: *mut c_void,
}

/// One property (`struct daos_prop_entry`).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct daos_prop_entry {
    /// Property type (`DAOS_PROP_CO_*`).
    pub dpe_type: u32,
    /// Flags (e.g. a negative entry).
    pub dpe_flags: u16,
    /// Reserved.
    pub dpe_reserv: u16,
    /// The value.
    pub dpe_val: daos_prop_entry_val,
}

/// A list of properties (allocated and freed by libdaos:
/// `daos_prop_alloc`, `daos_prop_free`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct daos_prop_t {
    /// Number of entries.
    pub dpp_nr: u32,
    /// Reserved.
    pub dpp_reserv: u32,
    /// The entries.
    pub dpp_entries: *mut daos_prop_entry,
}

/// The container's root object ids (`DAOS_PROP_CO_ROOTS`): the first is
/// the root key-value object of PyDAOS containers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct daos_prop_co_roots {
    /// Root object ids (nil when unused).
    pub cr_oids: [daos_obj_id_t; 4],
}

/// Private part of an event (the library's state).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)]
pub struct daos_event_private {
    /// Opaque.
    pub space: [u64; 20],
}

/// Completion event of a non-blocking operation. It must stay at one address
/// from `daos_event_init` to `daos_event_fini`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct daos_event_t {
    /// Result of the operation (0 or `-DER_*`).
    pub ev_error: c_int,
    /// Library state.
    pub ev_private: daos_event_private,
    /// Debugging.
    pub ev_debug: u64,
}

impl daos_event_t {
    /// An all-zero event, ready for `daos_event_init`.
    pub const fn zeroed() -> Self {
        daos_event_t {
            ev_error: 0,
            ev_private: daos_event_private { space: [0; 20] },
            ev_debug: 0,
        }
    }
}

impl fmt::Debug for daos_event_t {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "daos_event_t(ev_error {})", self.ev_error)
    }
}

/// `daos_eq_poll`/`daos_event_test` timeout: do not wait.
pub const DAOS_EQ_NOWAIT: i64 = 0;
/// `daos_eq_poll`/`daos_event_test` timeout: wait forever.
pub const DAOS_EQ_WAIT: i64 = -1;

/// Pool connect: read only.
pub const DAOS_PC_RO: c_uint = 1 << 0;
/// Pool connect: read and write.
pub const DAOS_PC_RW: c_uint = 1 << 1;
/// Container open: read only.
pub const DAOS_COO_RO: c_uint = 1 << 0;
/// Container open: read and write.
pub const DAOS_COO_RW: c_uint = 1 << 1;
/// Object open: read only.
pub const DAOS_OO_RO: c_uint = 1 << 1;
/// Object open: read and write.
pub const DAOS_OO_RW: c_uint = 1 << 2;
/// Transaction flag: read only (one snapshot epoch for every read in it).
pub const DAOS_TF_RDONLY: u64 = 1 << 0;

/// `enum daos_otype_t`: a byte array whose cell and chunk sizes the opener
/// gives (no metadata object).
pub const DAOS_OT_ARRAY_BYTE: c_uint = 13;
/// `enum daos_otype_t`: a flat key-value object (the `daos_kv_*` API).
pub const DAOS_OT_KV_HASHED: c_uint = 8;
/// Bit position of the object type in `daos_obj_id_t::hi`.
pub const OID_FMT_TYPE_SHIFT: u32 = 56;
/// `daos_kv_put` flag: insert only if the key does not exist (`-DER_EXIST` otherwise).
pub const DAOS_COND_KEY_INSERT: u64 = 1 << 1;
/// Container property: layout type (`DAOS_PROP_CO_LAYOUT_*`).
pub const DAOS_PROP_CO_LAYOUT_TYPE: u32 = 4098;
/// Container property: root object ids ([`daos_prop_co_roots`]).
pub const DAOS_PROP_CO_ROOTS: u32 = 4113;
/// Container layout: not set (`daos container create` without `--type`).
pub const DAOS_PROP_CO_LAYOUT_UNKNOWN: u64 = 0;
/// Container layout: POSIX (DFS, dfuse, MPI-IO).
pub const DAOS_PROP_CO_LAYOUT_POSIX: u64 = 1;
/// Container layout: PyDAOS (`--type PYTHON`).
pub const DAOS_PROP_CO_LAYOUT_PYTHON: u64 = 3;
/// `OC_UNKNOWN`: let DAOS choose the object class (container properties).
pub const OC_UNKNOWN: u32 = 0;

/// DAOS error numbers (returned negated).
pub mod der {
    #![allow(missing_docs)]
    pub const DER_NO_PERM: i32 = 1001;
    pub const DER_NO_HDL: i32 = 1002;
    pub const DER_INVAL: i32 = 1003;
    pub const DER_EXIST: i32 = 1004;
    pub const DER_NONEXIST: i32 = 1005;
    pub const DER_UNREACH: i32 = 1006;
    pub const DER_NOSPACE: i32 = 1007;
    pub const DER_NOMEM: i32 = 1009;
    pub const DER_TIMEDOUT: i32 = 1011;
    pub const DER_BUSY: i32 = 1012;
    pub const DER_AGAIN: i32 = 1013;
    pub const DER_UNINIT: i32 = 1015;
    pub const DER_CANCELED: i32 = 1018;
    pub const DER_OOG: i32 = 1019;
    pub const DER_HG: i32 = 1020;
    pub const DER_MISC: i32 = 1025;
    pub const DER_EXCLUDED: i32 = 1032;
    pub const DER_NOREPLY: i32 = 1033;
    pub const DER_GRPVER: i32 = 1036;
    pub const DER_HG_FATAL: i32 = 1045;
    pub const DER_IO: i32 = 2001;
    pub const DER_STALE: i32 = 2007;
    pub const DER_NOTLEADER: i32 = 2008;
    pub const DER_REC2BIG: i32 = 2013;
    pub const DER_SHUTDOWN: i32 = 2017;
    pub const DER_INPROGRESS: i32 = 2018;
    pub const DER_TX_RESTART: i32 = 2025;
    pub const DER_OP_CANCELED: i32 = 2027;
    pub const DER_TX_BUSY: i32 = 2028;
    pub const DER_AGENT_INCOMPAT: i32 = 2029;
    pub const DER_RF: i32 = 2031;
    pub const DER_FETCH_AGAIN: i32 = 2032;
    pub const DER_TX_UNCERTAIN: i32 = 2033;
    pub const DER_AGENT_COMM: i32 = 2034;
    pub const DER_TGT_RETRY: i32 = 2036;
    pub const DER_NO_SERVICE: i32 = 2039;
    pub const DER_UPDATE_AGAIN: i32 = 2041;
    pub const DER_OVERLOAD_RETRY: i32 = 2048;
    pub const DER_CONT_NONEXIST: i32 = 2050;
}

/// Declares the function-pointer types, the [`Api`] table and its loader
/// from one list, so the three cannot disagree.
macro_rules! daos_api {
    ($( $(#[$doc:meta])* $name:ident = $sym:literal : fn($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty; )*) => {
        /// Function-pointer types of the declared functions, named after them.
        pub mod types {
            #![allow(non_camel_case_types, missing_docs)]
            use super::*;
            $( pub type $name = unsafe extern "C" fn($($ty),*) -> $ret; )*
        }

        /// The libdaos functions, resolved from the loaded library.
        pub struct Api {
            $( $(#[$doc])* pub $name: types::$name, )*
            _lib: libloading::Library,
        }

        impl Api {
            /// Resolve every symbol from `lib`.
            ///
            /// # Safety
            /// `lib` must be libdaos 2.6 (or an ABI-compatible release): the
            /// declared signatures are trusted.
            unsafe fn from_library(lib: libloading::Library, path: &str) -> Result<Api, LoadError> {
                $(
                    // SAFETY: the symbol is declared with the signature of the
                    // DAOS 2.6 header (checked by tests/layout.rs when headers
                    // are present); the pointer stays valid while `_lib` lives,
                    // and it lives as long as the `Api`.
                    let $name: types::$name = unsafe {
                        *lib.get::<types::$name>(concat!($sym, "\0").as_bytes()).map_err(|e| {
                            LoadError(format!("{path} has no symbol {}: {e} (is it DAOS 2.6?)", $sym))
                        })?
                    };
                )*
                Ok(Api { $( $name, )* _lib: lib })
            }
        }

        /// The symbol names, in declaration order (for the layout test).
        pub const SYMBOLS: &[&str] = &[$($sym),*];
    };
}

daos_api! {
    /// `int daos_init(void)`
    daos_init = "daos_init": fn() -> c_int;
    /// `int daos_fini(void)`
    daos_fini = "daos_fini": fn() -> c_int;
    /// `daos_pool_connect(pool label or uuid, sys, flags, poh, info, ev)`
    daos_pool_connect = "daos_pool_connect2": fn(pool: *const c_char, sys: *const c_char, flags: c_uint, poh: *mut daos_handle_t, info: *mut c_void, ev: *mut daos_event_t) -> c_int;
    /// `daos_pool_disconnect(poh, ev)`
    daos_pool_disconnect = "daos_pool_disconnect": fn(poh: daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_cont_open(poh, container label or uuid, flags, coh, info, ev)`
    daos_cont_open = "daos_cont_open2": fn(poh: daos_handle_t, cont: *const c_char, flags: c_uint, coh: *mut daos_handle_t, info: *mut c_void, ev: *mut daos_event_t) -> c_int;
    /// `daos_cont_close(coh, ev)`
    daos_cont_close = "daos_cont_close": fn(coh: daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_cont_alloc_oids(coh, num_oids, *oid, ev)`: a range of object ids unique in the container
    daos_cont_alloc_oids = "daos_cont_alloc_oids": fn(coh: daos_handle_t, num_oids: u64, oid: *mut u64, ev: *mut daos_event_t) -> c_int;
    /// `daos_obj_generate_oid(coh, *oid, type, cid, hints, args)`
    daos_obj_generate_oid = "daos_obj_generate_oid2": fn(coh: daos_handle_t, oid: *mut daos_obj_id_t, otype: c_uint, cid: u32, hints: u16, args: u32) -> c_int;
    /// `daos_oclass_name2id(name)`: an object class id, 0 if unknown
    daos_oclass_name2id = "daos_oclass_name2id": fn(name: *const c_char) -> c_int;
    /// `daos_array_open_with_attr(coh, oid, th, mode, cell_size, chunk_size, *oh, ev)`
    daos_array_open_with_attr = "daos_array_open_with_attr": fn(coh: daos_handle_t, oid: daos_obj_id_t, th: daos_handle_t, mode: c_uint, cell_size: u64, chunk_size: u64, oh: *mut daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_array_close(oh, ev)`
    daos_array_close = "daos_array_close": fn(oh: daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_array_read(oh, th, iod, sgl, ev)`
    daos_array_read = "daos_array_read": fn(oh: daos_handle_t, th: daos_handle_t, iod: *mut daos_array_iod_t, sgl: *mut d_sg_list_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_array_write(oh, th, iod, sgl, ev)`
    daos_array_write = "daos_array_write": fn(oh: daos_handle_t, th: daos_handle_t, iod: *mut daos_array_iod_t, sgl: *mut d_sg_list_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_array_get_size(oh, th, *size, ev)`
    daos_array_get_size = "daos_array_get_size": fn(oh: daos_handle_t, th: daos_handle_t, size: *mut u64, ev: *mut daos_event_t) -> c_int;
    /// `daos_array_destroy(oh, th, ev)`: punch the whole array object
    daos_array_destroy = "daos_array_destroy": fn(oh: daos_handle_t, th: daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_tx_open(coh, *th, flags, ev)`
    daos_tx_open = "daos_tx_open": fn(coh: daos_handle_t, th: *mut daos_handle_t, flags: u64, ev: *mut daos_event_t) -> c_int;
    /// `daos_tx_close(th, ev)`
    daos_tx_close = "daos_tx_close": fn(th: daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_eq_create(*eqh)`
    daos_eq_create = "daos_eq_create": fn(eqh: *mut daos_handle_t) -> c_int;
    /// `daos_eq_destroy(eqh, flags)`
    daos_eq_destroy = "daos_eq_destroy": fn(eqh: daos_handle_t, flags: c_int) -> c_int;
    /// `daos_eq_poll(eqh, wait_running, timeout_us, nevents, events)`: completed events
    daos_eq_poll = "daos_eq_poll": fn(eqh: daos_handle_t, wait_running: c_int, timeout: i64, nevents: c_uint, events: *mut *mut daos_event_t) -> c_int;
    /// `daos_event_init(ev, eqh, parent)`
    daos_event_init = "daos_event_init": fn(ev: *mut daos_event_t, eqh: daos_handle_t, parent: *mut daos_event_t) -> c_int;
    /// `daos_event_fini(ev)`
    daos_event_fini = "daos_event_fini": fn(ev: *mut daos_event_t) -> c_int;
    /// `daos_event_test(ev, timeout_us, *flag)`
    daos_event_test = "daos_event_test": fn(ev: *mut daos_event_t, timeout: i64, flag: *mut bool) -> c_int;
    /// `daos_event_abort(ev)`
    daos_event_abort = "daos_event_abort": fn(ev: *mut daos_event_t) -> c_int;
    /// `daos_kv_open(coh, oid, mode, *oh, ev)`: open a flat key-value object
    daos_kv_open = "daos_kv_open": fn(coh: daos_handle_t, oid: daos_obj_id_t, mode: c_uint, oh: *mut daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_kv_close(oh, ev)`
    daos_kv_close = "daos_kv_close": fn(oh: daos_handle_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_kv_get(oh, th, flags, key, *size, buf, ev)`: with a null `buf`, only the size (0: no such key)
    daos_kv_get = "daos_kv_get": fn(oh: daos_handle_t, th: daos_handle_t, flags: u64, key: *const c_char, size: *mut u64, buf: *mut c_void, ev: *mut daos_event_t) -> c_int;
    /// `daos_kv_put(oh, th, flags, key, size, buf, ev)`
    daos_kv_put = "daos_kv_put": fn(oh: daos_handle_t, th: daos_handle_t, flags: u64, key: *const c_char, size: u64, buf: *const c_void, ev: *mut daos_event_t) -> c_int;
    /// `daos_kv_remove(oh, th, flags, key, ev)`
    daos_kv_remove = "daos_kv_remove": fn(oh: daos_handle_t, th: daos_handle_t, flags: u64, key: *const c_char, ev: *mut daos_event_t) -> c_int;
    /// `daos_cont_query(coh, info, prop, ev)`: the requested properties
    daos_cont_query = "daos_cont_query": fn(coh: daos_handle_t, info: *mut c_void, prop: *mut daos_prop_t, ev: *mut daos_event_t) -> c_int;
    /// `daos_prop_t *daos_prop_alloc(entries_nr)`
    daos_prop_alloc = "daos_prop_alloc": fn(entries_nr: u32) -> *mut daos_prop_t;
    /// `daos_prop_free(prop)`: also frees what the entries point to
    daos_prop_free = "daos_prop_free": fn(prop: *mut daos_prop_t) -> ();
    /// `const char *d_errstr(int rc)`: the `DER_*` name
    d_errstr = "d_errstr": fn(rc: c_int) -> *const c_char;
    /// `const char *d_errdesc(int rc)`: a description
    d_errdesc = "d_errdesc": fn(rc: c_int) -> *const c_char;
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("daos_sys::Api")
    }
}

impl Api {
    /// `DER_NAME (description)` for a DAOS return code (either sign).
    pub fn describe(&self, rc: c_int) -> String {
        let rc = -rc.abs();
        let text = |p: *const c_char| {
            if p.is_null() {
                String::from("?")
            } else {
                // SAFETY: d_errstr/d_errdesc return static NUL-terminated strings.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        // SAFETY: both accept any int and return a static string.
        let (name, desc) = unsafe { ((self.d_errstr)(rc), (self.d_errdesc)(rc)) };
        format!("{} ({}, rc {rc})", text(name), text(desc))
    }
}

/// libdaos could not be loaded (not installed, not found, or not DAOS 2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for LoadError {}

/// The candidate library paths, in lookup order.
pub fn library_candidates() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os(DAOS_DIR_ENV).filter(|d| !d.is_empty()) {
        let dir = std::path::PathBuf::from(dir);
        for l in ["lib64", "lib"] {
            out.push(dir.join(l).join("libdaos.so.2").display().to_string());
        }
    }
    if let Some(dir) = option_env!("DAOS_SYS_LIB_DIR") {
        out.push(format!("{dir}/libdaos.so.2"));
    }
    out.push("libdaos.so.2".to_string());
    out
}

fn load() -> Result<Api, LoadError> {
    let mut tried = Vec::new();
    for path in library_candidates() {
        if path.contains('/') && !std::path::Path::new(&path).exists() {
            tried.push(format!("{path}: no such file"));
            continue;
        }
        // RTLD_GLOBAL: libdaos loads its network plugins (mercury NA) itself.
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        // SAFETY: loading libdaos runs its (and its dependencies')
        // initialisers, which have no preconditions.
        match unsafe { libloading::os::unix::Library::open(Some(&path), flags) } {
            Ok(lib) => {
                // SAFETY: a library named libdaos.so.2 is the DAOS 2.x client;
                // the symbol set is checked by `from_library`.
                return unsafe { Api::from_library(lib.into(), &path) };
            }
            Err(e) => tried.push(format!("{path}: {e}")),
        }
    }
    Err(LoadError(format!(
        "DAOS is not available: libdaos could not be loaded ({}); {INSTALL_HINT}",
        tried.join("; ")
    )))
}

/// The loaded libdaos (loaded once per process), or why it cannot be.
pub fn api() -> Result<&'static Api, LoadError> {
    static API: OnceLock<Result<Api, LoadError>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Whether the DAOS headers were found when this crate was built (the
/// `has_daos` cfg).
pub const BUILT_WITH_HEADERS: bool = cfg!(has_daos);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_layouts_match_the_c_abi_of_x86_64() {
        use std::mem::{align_of, size_of};
        assert_eq!(size_of::<daos_handle_t>(), 8);
        assert_eq!(size_of::<daos_obj_id_t>(), 16);
        assert_eq!(size_of::<d_iov_t>(), 24);
        assert_eq!(size_of::<d_sg_list_t>(), 16);
        assert_eq!(size_of::<daos_range_t>(), 16);
        assert_eq!(size_of::<daos_array_iod_t>(), 32);
        assert_eq!(size_of::<daos_event_t>(), 176);
        assert_eq!(size_of::<daos_prop_entry>(), 16);
        assert_eq!(size_of::<daos_prop_t>(), 16);
        assert_eq!(size_of::<daos_prop_co_roots>(), 64);
        assert_eq!(align_of::<daos_event_t>(), 8);
    }

    #[test]
    fn without_libdaos_the_error_says_how_to_install_it() {
        match api() {
            // A machine with DAOS: the table resolves and describes codes.
            Ok(api) => {
                let d = api.describe(-der::DER_NONEXIST);
                assert!(d.contains("DER_NONEXIST"), "{d}");
            }
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains("DAOS is not available"), "{m}");
                assert!(m.contains("DAOS_DIR"), "{m}");
                assert!(m.contains("libdaos.so.2"), "{m}");
            }
        }
    }
}
