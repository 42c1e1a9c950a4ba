//! Build script of `daos-sys`: look for the DAOS client headers; when they
//! are present, set the `has_daos` cfg, remember where the library is, and
//! generate bindgen declarations for the layout/signature test
//! (`tests/layout.rs`). Without the headers nothing is generated and the crate
//! still compiles completely: its declarations are hand-written and libdaos
//! is loaded at run time.
//!
//! Search order (the probing is `proxystore-sys-probe`'s, shared with the
//! other -sys crates; when nothing is found, the warning lists every
//! attempt): `DAOS_DIR` (or `<TARGET>_DAOS_DIR`), a prefix with
//! `include/daos.h` and `lib64/` or `lib/` holding `libdaos.so`; then
//! `/usr` and `/usr/local` (the DAOS RPMs install into `/usr`).
//!
//! Cargo metadata for dependents (`links = "daos"`): `DEP_DAOS_FOUND=1` and
//! `DEP_DAOS_LIB_DIR` when the headers were found.

use proxystore_sys_probe::Probe;
use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_daos)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=wrapper.h");

    let probe = Probe::new("daos-sys", "DAOS", "client headers and libdaos")
        .prefix_var("DAOS_DIR")
        .headers(&["daos.h"])
        .lib_subdirs(&["lib64", "lib", "lib/x86_64-linux-gnu"])
        .libs(&["libdaos.so", "libdaos.so.2"])
        // The DAOS RPMs install into /usr.
        .fallback_prefixes(&["/usr", "/usr/local"])
        .install_hint("the daos-client RPM with daos-devel, or `spack install daos`")
        .extra_hint(
            "Until then daos-sys builds with its hand-written declarations only, and the DAOS tests are ignored.",
        );
    let found = match probe.run() {
        Ok(found) => found,
        Err(tried) => {
            println!("cargo::warning={}", tried.one_line());
            return;
        }
    };
    // Found in a prefix (no pkg-config here): one include and one lib directory.
    let (include, lib) = (&found.include_paths[0], &found.lib_dirs[0]);
    for p in [include.join("daos.h"), lib.clone()] {
        println!("cargo::rerun-if-changed={}", p.display());
    }
    println!("cargo::rustc-cfg=has_daos");
    println!("cargo::rustc-env=DAOS_SYS_LIB_DIR={}", lib.display());
    println!("cargo::metadata=found=1");
    println!("cargo::metadata=lib_dir={}", lib.display());
    // The layout/signature test takes function addresses: link it (only it) to libdaos.
    println!("cargo::rustc-link-arg-tests=-L{}", lib.display());
    println!("cargo::rustc-link-arg-tests=-Wl,-rpath,{}", lib.display());
    println!("cargo::rustc-link-arg-tests=-Wl,--no-as-needed");
    println!("cargo::rustc-link-arg-tests=-ldaos");
    println!("cargo::rustc-link-arg-tests=-lgurt");
    // daos_prop_alloc/daos_prop_free live in libdaos_common (a dependency of libdaos).
    println!("cargo::rustc-link-arg-tests=-ldaos_common");
    // ... whose own undefined symbols libdaos's other dependencies resolve at load time.
    println!("cargo::rustc-link-arg-tests=-Wl,--allow-shlib-undefined");

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let clang_include = format!("-I{}", include.display());
    // 1. The C types daos-sys declares by hand, for the layout comparison.
    let types = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(&clang_include)
        .allowlist_type(HAND_TYPES.join("|"))
        .derive_debug(false)
        .derive_copy(true)
        .layout_tests(false)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen (types) over {}: {e}", include.display()));
    write(&types, &out_dir.join("bindgen_types.rs"));
    // 2. The functions, with the hand-declared types left out (blocklisted):
    //    the test includes this where those names are daos-sys's own types,
    //    so each bindgen function item must coerce to daos-sys's pointer type.
    let mut fns = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(&clang_include)
        .allowlist_function("daos_.*|d_errstr|d_errdesc")
        .allowlist_type("daos_errno|daos_otype_t|daos_cont_props")
        .allowlist_var("DAOS_PC_R[OW]|DAOS_COO_R[OW]|DAOS_COND_DKEY_INSERT|OID_FMT_TYPE_SHIFT|DAOS_PROP_CO_LAYOUT_(UNKNOWN|POSIX|PYTHON)")
        .derive_debug(false)
        .layout_tests(false);
    for t in HAND_TYPES.iter().chain(OPAQUE_TYPES) {
        fns = fns.blocklist_type(t);
    }
    let fns = fns
        .generate()
        .unwrap_or_else(|e| panic!("bindgen (functions) over {}: {e}", include.display()));
    write(&fns, &out_dir.join("bindgen_fns.rs"));
}

/// Types daos-sys declares field by field.
const HAND_TYPES: &[&str] = &[
    "daos_handle_t",
    "daos_obj_id_t",
    "d_iov_t",
    "d_sg_list_t",
    "daos_range_t",
    "daos_array_iod_t",
    "daos_event_t",
    "daos_event",
    "daos_prop_t",
    "daos_prop_entry",
    "daos_prop_co_roots",
];

/// Types daos-sys passes only by untyped pointer (`*mut c_void`).
const OPAQUE_TYPES: &[&str] = &["daos_pool_info_t", "daos_cont_info_t"];

fn write(b: &bindgen::Bindings, path: &Path) {
    b.write_to_file(path)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
