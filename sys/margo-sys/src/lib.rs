//! Declarations of the few Mochi Margo and Mercury functions that
//! proxystore-rs uses, loaded at run time.
//!
//! Margo, Mercury and Argobots are in no package registry (sites install them
//! with Spack: `spack install mochi-margo`), so this crate does not link them:
//! it declares the functions by hand ([`fns`]) and [`api`] opens `libmargo.so`
//! with `libloading` the first time it is asked. Everything built on it
//! compiles without Margo; without it, [`api`] returns a [`LoadError`] that
//! says how to install it.
//!
//! Where `libmargo.so` is looked for, in order: `$MARGO_DIR/lib` (and
//! `lib64`) at run time; the library directory found at build time
//! (`MARGO_DIR` or pkg-config `margo`, see `build.rs`); the dynamic linker's
//! search path (`LD_LIBRARY_PATH`, the system's directories). Mercury's
//! functions (`HG_*`) are resolved through Margo's own dependency on
//! `libmercury`.
//!
//! When the headers were found at build time and libclang is installed, the
//! unit test `header_check` compares every declaration with what bindgen
//! reads from the real headers (signatures at compile time, struct layouts
//! and constants at run time).
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    missing_debug_implementations
)]
#![warn(missing_docs)]

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong, c_void};
use std::marker::{PhantomData, PhantomPinned};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Oldest Margo this crate works with: `margo_bulk_ctransfer_timed` (a bulk
/// transfer with a timeout that cancels it, completed by a callback) appears
/// in 0.20.
pub const MIN_MARGO: &str = "0.20";

/// How to get Margo, for error messages.
pub const INSTALL_HINT: &str = "install Mochi Margo >= 0.20 (it brings Mercury and Argobots), \
    e.g. `spack install mochi-margo`, then set MARGO_DIR to its prefix \
    (`spack location -i mochi-margo`) or put its lib/ directory on LD_LIBRARY_PATH; \
    building with PKG_CONFIG_PATH naming the directory of its margo.pc also records where it is";

macro_rules! opaque {
    ($($(#[$m:meta])* $name:ident;)*) => {$(
        $(#[$m])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// A Margo instance (`struct margo_instance`).
    margo_instance;
    /// A Margo request (`struct margo_request_struct`).
    margo_request_struct;
    /// A Mercury address (`struct hg_addr`).
    hg_addr;
    /// A Mercury bulk handle (`struct hg_bulk`).
    hg_bulk;
    /// A Mercury class (`hg_class_t`).
    hg_class;
    /// A Mercury context (`hg_context_t`).
    hg_context;
    /// An Argobots pool (`struct ABT_pool_opaque`).
    ABT_pool_opaque;
    /// Mercury's init options (`struct hg_init_info`).
    hg_init_info;
    /// A Margo logger (`struct margo_logger`).
    margo_logger;
    /// A Margo monitor (`struct margo_monitor`).
    margo_monitor;
}

/// `margo_instance_id`.
pub type margo_instance_id = *mut margo_instance;
/// `margo_request`.
pub type margo_request = *mut margo_request_struct;
/// `hg_addr_t`.
pub type hg_addr_t = *mut hg_addr;
/// `hg_bulk_t`.
pub type hg_bulk_t = *mut hg_bulk;
/// `hg_class_t`.
pub type hg_class_t = hg_class;
/// `hg_context_t`.
pub type hg_context_t = hg_context;
/// `ABT_pool`.
pub type ABT_pool = *mut ABT_pool_opaque;
/// `hg_size_t`.
pub type hg_size_t = u64;
/// `hg_uint8_t`.
pub type hg_uint8_t = u8;
/// `hg_uint32_t`.
pub type hg_uint32_t = u32;
/// `hg_return_t` (a C enum).
pub type hg_return_t = c_uint;
/// `hg_bulk_op_t` (a C enum).
pub type hg_bulk_op_t = c_uint;
/// The completion callback of `margo_bulk_ctransfer_timed`.
pub type margo_bulk_callback = Option<unsafe extern "C" fn(uargs: *mut c_void, ret: hg_return_t)>;

/// `struct margo_init_info` (Margo 0.20 .. 0.24; checked by `header_check`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct margo_init_info {
    /// JSON configuration.
    pub json_config: *const c_char,
    /// Progress pool.
    pub progress_pool: ABT_pool,
    /// RPC handler pool.
    pub rpc_pool: ABT_pool,
    /// An existing Mercury class.
    pub hg_class: *mut hg_class_t,
    /// An existing Mercury context.
    pub hg_context: *mut hg_context_t,
    /// Mercury's init options.
    pub hg_init_info: *mut hg_init_info,
    /// A logger.
    pub logger: *mut margo_logger,
    /// A monitor.
    pub monitor: *mut margo_monitor,
    /// A parent instance.
    pub parent_mid: margo_instance_id,
}

impl Default for margo_init_info {
    fn default() -> Self {
        margo_init_info {
            json_config: std::ptr::null(),
            progress_pool: std::ptr::null_mut(),
            rpc_pool: std::ptr::null_mut(),
            hg_class: std::ptr::null_mut(),
            hg_context: std::ptr::null_mut(),
            hg_init_info: std::ptr::null_mut(),
            logger: std::ptr::null_mut(),
            monitor: std::ptr::null_mut(),
            parent_mid: std::ptr::null_mut(),
        }
    }
}

/// `MARGO_CLIENT_MODE`.
pub const MARGO_CLIENT_MODE: c_int = 0;
/// `MARGO_SERVER_MODE`.
pub const MARGO_SERVER_MODE: c_int = 1;
/// `HG_BULK_READ_ONLY`.
pub const HG_BULK_READ_ONLY: hg_uint8_t = 1 << 0;
/// `HG_BULK_WRITE_ONLY`.
pub const HG_BULK_WRITE_ONLY: hg_uint8_t = 1 << 1;
/// `HG_BULK_READWRITE`.
pub const HG_BULK_READWRITE: hg_uint8_t = HG_BULK_READ_ONLY | HG_BULK_WRITE_ONLY;
/// `HG_BULK_PUSH`: write local memory to the origin handle.
pub const HG_BULK_PUSH: hg_bulk_op_t = 0;
/// `HG_BULK_PULL`: read the origin handle into local memory.
pub const HG_BULK_PULL: hg_bulk_op_t = 1;

/// `hg_return_t` values (Mercury 2.x: `HG_RETURN_VALUES`).
pub mod hg {
    use super::hg_return_t;
    /// Names in the enum's order (the value is the index).
    pub const NAMES: [&str; 27] = [
        "HG_SUCCESS",
        "HG_PERMISSION",
        "HG_NOENTRY",
        "HG_INTERRUPT",
        "HG_AGAIN",
        "HG_NOMEM",
        "HG_ACCESS",
        "HG_FAULT",
        "HG_BUSY",
        "HG_EXIST",
        "HG_NODEV",
        "HG_INVALID_ARG",
        "HG_PROTOCOL_ERROR",
        "HG_OVERFLOW",
        "HG_MSGSIZE",
        "HG_PROTONOSUPPORT",
        "HG_OPNOTSUPPORTED",
        "HG_ADDRINUSE",
        "HG_ADDRNOTAVAIL",
        "HG_HOSTUNREACH",
        "HG_TIMEOUT",
        "HG_CANCELED",
        "HG_IO_ERROR",
        "HG_HOSTFIREWALL",
        "HG_CHECKSUM_ERROR",
        "HG_NA_ERROR",
        "HG_OTHER_ERROR",
    ];
    /// `HG_SUCCESS`.
    pub const SUCCESS: hg_return_t = 0;
    /// `HG_PERMISSION`.
    pub const PERMISSION: hg_return_t = 1;
    /// `HG_NOENTRY`.
    pub const NOENTRY: hg_return_t = 2;
    /// `HG_AGAIN`.
    pub const AGAIN: hg_return_t = 4;
    /// `HG_ACCESS`.
    pub const ACCESS: hg_return_t = 6;
    /// `HG_FAULT`.
    pub const FAULT: hg_return_t = 7;
    /// `HG_INVALID_ARG`.
    pub const INVALID_ARG: hg_return_t = 11;
    /// `HG_PROTOCOL_ERROR` (also what `na+sm` returns for an errno it does
    /// not map, such as `ESRCH` from `process_vm_readv` of a dead process).
    pub const PROTOCOL_ERROR: hg_return_t = 12;
    /// `HG_OVERFLOW`.
    pub const OVERFLOW: hg_return_t = 13;
    /// `HG_HOSTUNREACH`.
    pub const HOSTUNREACH: hg_return_t = 19;
    /// `HG_TIMEOUT`.
    pub const TIMEOUT: hg_return_t = 20;
    /// `HG_CANCELED`.
    pub const CANCELED: hg_return_t = 21;
    /// `HG_IO_ERROR`.
    pub const IO_ERROR: hg_return_t = 22;
    /// `HG_NA_ERROR`.
    pub const NA_ERROR: hg_return_t = 25;
    /// `HG_OTHER_ERROR`.
    pub const OTHER_ERROR: hg_return_t = 26;
}

macro_rules! api {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*) => {
        /// The function pointer type of every declared function.
        pub mod fns {
            use super::*;
            $( $(#[$m])* pub type $name = unsafe extern "C" fn($($arg: $ty),*) $(-> $ret)?; )*
        }

        /// The loaded library: one field per declared function.
        pub struct Api {
            $( $(#[$m])* pub $name: fns::$name, )*
            path: PathBuf,
            _lib: libloading::Library,
        }

        impl Api {
            /// Resolve every declared function in `lib`.
            fn resolve(lib: libloading::Library, path: PathBuf) -> Result<Api, String> {
                $(
                    // SAFETY: the symbol's type is the function's C signature
                    // (checked against the headers by `header_check`); the
                    // pointer is kept together with the library.
                    let $name: fns::$name = unsafe {
                        *lib.get::<fns::$name>(concat!(stringify!($name), "\0").as_bytes())
                            .map_err(|e| format!("{} lacks {}: {e}", path.display(), stringify!($name)))?
                    };
                )*
                Ok(Api { $($name,)* path, _lib: lib })
            }
        }

        #[cfg(all(test, margo_headers))]
        mod header_check_signatures {
            #![allow(dead_code, non_snake_case, unused_imports, clippy::all, missing_docs)]
            #![allow(unsafe_op_in_unsafe_fn)]
            use super::*;
            mod real {
                use super::super::*;
                include!(concat!(env!("OUT_DIR"), "/margo_functions.rs"));
            }
            /// Compiles only if every hand-written signature is the header's.
            #[test]
            fn signatures_match_headers() {
                $( let _: fns::$name = real::$name; )*
                let names: &[&str] = &[$(stringify!($name)),*];
                assert_eq!(names.len(), FUNCTION_COUNT);
            }
        }

        /// Number of declared functions.
        pub const FUNCTION_COUNT: usize = [$(stringify!($name)),*].len();
    };
}

api! {
    /// `margo_init_ext(address, mode, args)`.
    fn margo_init_ext(address: *const c_char, mode: c_int, args: *const margo_init_info) -> margo_instance_id;
    /// `margo_finalize(mid)`.
    fn margo_finalize(mid: margo_instance_id);
    /// `margo_addr_lookup(mid, name, addr)`.
    fn margo_addr_lookup(mid: margo_instance_id, name: *const c_char, addr: *mut hg_addr_t) -> hg_return_t;
    /// `margo_addr_free(mid, addr)`.
    fn margo_addr_free(mid: margo_instance_id, addr: hg_addr_t) -> hg_return_t;
    /// `margo_addr_self(mid, addr)`.
    fn margo_addr_self(mid: margo_instance_id, addr: *mut hg_addr_t) -> hg_return_t;
    /// `margo_addr_to_string(mid, buf, buf_size, addr)`.
    fn margo_addr_to_string(mid: margo_instance_id, buf: *mut c_char, buf_size: *mut hg_size_t, addr: hg_addr_t) -> hg_return_t;
    /// `margo_bulk_create(mid, count, ptrs, sizes, flags, handle)`.
    fn margo_bulk_create(mid: margo_instance_id, count: hg_uint32_t, buf_ptrs: *mut *mut c_void, buf_sizes: *const hg_size_t, flags: hg_uint8_t, handle: *mut hg_bulk_t) -> hg_return_t;
    /// `margo_bulk_free(handle)`.
    fn margo_bulk_free(handle: hg_bulk_t) -> hg_return_t;
    /// `margo_bulk_deserialize(mid, handle, buf, size)`.
    fn margo_bulk_deserialize(mid: margo_instance_id, handle: *mut hg_bulk_t, buf: *const c_void, buf_size: hg_size_t) -> hg_return_t;
    /// `margo_bulk_ctransfer_timed(...)`: start a bulk transfer; Margo cancels
    /// it after `timeout_ms` (0: never) and calls `on_complete(uargs, ret)`
    /// exactly once, on its progress thread.
    fn margo_bulk_ctransfer_timed(mid: margo_instance_id, op: hg_bulk_op_t, origin_addr: hg_addr_t, origin_handle: hg_bulk_t, origin_offset: usize, local_handle: hg_bulk_t, local_offset: usize, size: usize, timeout_ms: f64, on_complete: margo_bulk_callback, uargs: *mut c_void) -> hg_return_t;
    /// `margo_bulk_transfer_timed(...)`: the blocking form.
    fn margo_bulk_transfer_timed(mid: margo_instance_id, op: hg_bulk_op_t, origin_addr: hg_addr_t, origin_handle: hg_bulk_t, origin_offset: usize, local_handle: hg_bulk_t, local_offset: usize, size: usize, timeout_ms: f64) -> hg_return_t;
    /// `HG_Version_get(major, minor, patch)`.
    fn HG_Version_get(major: *mut c_uint, minor: *mut c_uint, patch: *mut c_uint) -> hg_return_t;
    /// `HG_Error_to_string(errnum)`.
    fn HG_Error_to_string(errnum: hg_return_t) -> *const c_char;
    /// `HG_Bulk_get_serialize_size(handle, flags)`.
    fn HG_Bulk_get_serialize_size(handle: hg_bulk_t, flags: c_ulong) -> hg_size_t;
    /// `HG_Bulk_serialize(buf, size, flags, handle)`.
    fn HG_Bulk_serialize(buf: *mut c_void, buf_size: hg_size_t, flags: c_ulong, handle: hg_bulk_t) -> hg_return_t;
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("path", &self.path).finish()
    }
}

impl Api {
    /// The file the library was loaded from (as asked for).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Mercury's version (`HG_Version_get`).
    pub fn mercury_version(&self) -> (u32, u32, u32) {
        let (mut a, mut b, mut c) = (0, 0, 0);
        // SAFETY: three valid out-pointers.
        unsafe { (self.HG_Version_get)(&mut a, &mut b, &mut c) };
        (a, b, c)
    }

    /// Mercury's name of an `hg_return_t` (`HG_Error_to_string`).
    pub fn error_string(&self, ret: hg_return_t) -> String {
        // SAFETY: HG_Error_to_string returns a static string (or null for
        // values out of range, checked).
        let p = unsafe { (self.HG_Error_to_string)(ret) };
        if p.is_null() {
            return format!("hg_return_t {ret}");
        }
        // SAFETY: non-null, NUL-terminated, static.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Margo could not be loaded: what was tried, and how to install it.
#[derive(Debug, Clone)]
pub struct LoadError {
    tried: Vec<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Margo is not available in this process ({}); {INSTALL_HINT}",
            self.tried.join("; ")
        )
    }
}

impl std::error::Error for LoadError {}

/// The Margo found at build time (`"0.24.0 through pkg-config margo"`), if any.
pub fn build_time_margo() -> Option<String> {
    Some(format!(
        "{} through {}",
        option_env!("MARGO_SYS_VERSION")?,
        option_env!("MARGO_SYS_FOUND_BY")?
    ))
}

fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(dir) = std::env::var_os("MARGO_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        v.push(dir.join("lib/libmargo.so"));
        v.push(dir.join("lib64/libmargo.so"));
    }
    if let Some(dir) = option_env!("MARGO_SYS_LIBDIR") {
        v.push(PathBuf::from(dir).join("libmargo.so"));
    }
    // The dynamic linker's search path.
    v.push(PathBuf::from("libmargo.so"));
    v.push(PathBuf::from("libmargo.so.0"));
    v
}

/// Signals whose handlers belong to the application: loading and
/// initialising the native stack must not take them over.
const APP_SIGNALS: [c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Run `f`, which loads or initialises the native stack, and put back the
/// process's handlers of SIGINT, SIGTERM, SIGHUP and SIGQUIT if `f` replaced
/// them.
///
/// Loading Margo loads Mercury's NA plugins and their libraries; with
/// Debian's libfabric that includes `libpsm_infinipath`, whose constructor
/// installs SIGINT and SIGTERM handlers that end the process with status 1,
/// and UCX installs one for SIGHUP. A program linked with them at build time
/// installs its own handlers after theirs; loaded at run time, they would
/// silently replace a server's clean shutdown.
pub fn keep_signal_handlers<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: sigaction with a null new action only reads the current one
    // into zeroed storage.
    let before: Vec<libc::sigaction> = APP_SIGNALS
        .iter()
        .map(|&sig| unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            old
        })
        .collect();
    let r = f();
    for (&sig, old) in APP_SIGNALS.iter().zip(&before) {
        // SAFETY: as above; then re-installing the exact action that was in
        // place before (a handler of this process, or a default).
        unsafe {
            let mut now: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut now);
            if now.sa_sigaction != old.sa_sigaction {
                libc::sigaction(sig, old, std::ptr::null_mut());
            }
        }
    }
    r
}

fn load() -> Result<Api, LoadError> {
    keep_signal_handlers(load_unguarded)
}

fn load_unguarded() -> Result<Api, LoadError> {
    let mut tried = Vec::new();
    for path in candidates() {
        if path.is_absolute() && !path.exists() {
            tried.push(format!("{}: no such file", path.display()));
            continue;
        }
        // SAFETY: loading Margo runs its (and Mercury's, Argobots') library
        // constructors, which only initialise their own state.
        let lib = match unsafe { libloading::Library::new(&path) } {
            Ok(l) => l,
            Err(e) => {
                tried.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match Api::resolve(lib, path.clone()) {
            Ok(api) => return Ok(api),
            Err(e) => tried.push(format!("{e} (Margo older than {MIN_MARGO}?)")),
        }
    }
    Err(LoadError { tried })
}

/// The Margo of this process, loaded on first use.
pub fn api() -> Result<&'static Api, LoadError> {
    static API: OnceLock<Result<Api, LoadError>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

#[cfg(all(test, margo_headers))]
mod header_check {
    #![allow(
        dead_code,
        non_snake_case,
        unused_imports,
        clippy::all,
        missing_docs,
        unsafe_op_in_unsafe_fn
    )]
    use std::mem::{align_of, offset_of, size_of};

    mod real {
        include!(concat!(env!("OUT_DIR"), "/margo_types.rs"));
    }

    #[test]
    fn init_info_layout_matches_headers() {
        use super::margo_init_info as Ours;
        use real::margo_init_info as Real;
        assert_eq!(size_of::<Ours>(), size_of::<Real>());
        assert_eq!(align_of::<Ours>(), align_of::<Real>());
        macro_rules! same {
            ($($f:ident),*) => {$(
                assert_eq!(offset_of!(Ours, $f), offset_of!(Real, $f), stringify!($f));
            )*};
        }
        same!(
            json_config,
            progress_pool,
            rpc_pool,
            hg_class,
            hg_context,
            hg_init_info,
            logger,
            monitor,
            parent_mid
        );
    }

    #[test]
    fn constants_match_headers() {
        assert_eq!(super::HG_BULK_READ_ONLY as u32, real::HG_BULK_READ_ONLY);
        assert_eq!(super::HG_BULK_WRITE_ONLY as u32, real::HG_BULK_WRITE_ONLY);
        assert_eq!(super::HG_BULK_READWRITE as u32, real::HG_BULK_READWRITE);
        assert_eq!(super::MARGO_CLIENT_MODE as u32, real::MARGO_CLIENT_MODE);
        assert_eq!(super::MARGO_SERVER_MODE as u32, real::MARGO_SERVER_MODE);
        assert_eq!(super::HG_BULK_PUSH, real::hg_bulk_op_HG_BULK_PUSH);
        assert_eq!(super::HG_BULK_PULL, real::hg_bulk_op_HG_BULK_PULL);
        assert_eq!(
            size_of::<super::hg_return_t>(),
            size_of::<real::hg_return_t>()
        );
        let named = [
            (super::hg::SUCCESS, real::hg_return_HG_SUCCESS),
            (super::hg::PERMISSION, real::hg_return_HG_PERMISSION),
            (super::hg::NOENTRY, real::hg_return_HG_NOENTRY),
            (super::hg::AGAIN, real::hg_return_HG_AGAIN),
            (super::hg::ACCESS, real::hg_return_HG_ACCESS),
            (super::hg::FAULT, real::hg_return_HG_FAULT),
            (super::hg::INVALID_ARG, real::hg_return_HG_INVALID_ARG),
            (super::hg::PROTOCOL_ERROR, real::hg_return_HG_PROTOCOL_ERROR),
            (super::hg::OVERFLOW, real::hg_return_HG_OVERFLOW),
            (super::hg::HOSTUNREACH, real::hg_return_HG_HOSTUNREACH),
            (super::hg::TIMEOUT, real::hg_return_HG_TIMEOUT),
            (super::hg::CANCELED, real::hg_return_HG_CANCELED),
            (super::hg::IO_ERROR, real::hg_return_HG_IO_ERROR),
            (super::hg::NA_ERROR, real::hg_return_HG_NA_ERROR),
            (super::hg::OTHER_ERROR, real::hg_return_HG_OTHER_ERROR),
        ];
        for (ours, theirs) in named {
            assert_eq!(ours, theirs);
        }
        assert_eq!(super::hg::NAMES.len() as u32, real::hg_return_HG_RETURN_MAX);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_follow_values() {
        assert_eq!(super::hg::NAMES[super::hg::TIMEOUT as usize], "HG_TIMEOUT");
        assert_eq!(
            super::hg::NAMES[super::hg::CANCELED as usize],
            "HG_CANCELED"
        );
        assert_eq!(super::FUNCTION_COUNT, 15);
    }
}
