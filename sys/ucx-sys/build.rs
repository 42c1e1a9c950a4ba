//! Build script of `ucx-sys`: find UCX, compile the `ps_*` shim, run bindgen.
//!
//! Search order (every failed attempt is reported if none succeeds; the
//! probing is `proxystore-sys-probe`'s, shared with the other -sys crates):
//! 1. `UCX_DIR` (or `<TARGET>_UCX_DIR`): a prefix with `include/ucp/api/ucp.h`
//!    and `lib/` (or `lib64/`) holding `libucp`.
//! 2. pkg-config `ucx`, version >= 1.10 (the `*_nbx` API); `PKG_CONFIG_PATH`
//!    selects a site UCX or a wheel's `.pc` files.
//!
//! Run path: a UCX outside the system library directories (from `UCX_DIR`,
//! or a pkg-config prefix elsewhere) is what the program must load at run
//! time too, not whatever UCX the loader finds first. Its library directory
//! is embedded as a run path (`DT_RUNPATH`, so `LD_LIBRARY_PATH` still takes
//! precedence) in this crate's own test binaries and, through the
//! `DEP_UCP_RPATH` metadata, in every binary, example, test and `cdylib` of
//! the crates that link UCX (`proxystore_sys_probe::forward_rpath` in their
//! build scripts). Packagers who place UCX themselves turn it off with
//! `UCX_SYS_NO_RPATH=1`.

use proxystore_sys_probe::{Probe, preprocessed_version};
use std::env;
use std::path::{Path, PathBuf};

/// First UCX release with the complete `*_nbx` API.
const MIN_VERSION: &str = "1.10";

fn main() {
    for f in [
        "build.rs",
        "src/shim.c",
        "src/shim.h",
        "src/wrapper.h",
        "src/version.c",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }

    let probe = Probe::new("ucx-sys", "UCX", "headers and libucp")
        .prefix_var("UCX_DIR")
        .headers(&["ucp/api/ucp.h"])
        .libs(&["libucp.so", "libucp.a"])
        .pkg_config("ucx")
        .min_version(MIN_VERSION)
        .install_hint("Debian/Ubuntu: `apt-get install libucx-dev`; Spack: `spack load ucx`")
        .extra_hint("bindgen also needs libclang (Debian: `apt-get install libclang-dev`).");
    let ucx = probe.run().unwrap_or_else(|tried| panic!("{tried}"));
    let (major, minor) = probe
        .check_version(
            &ucx,
            preprocessed_version(
                "src/version.c",
                &ucx.include_paths,
                "PS_UCP_API_MAJOR",
                "PS_UCP_API_MINOR",
                "ucp_version.h",
            ),
            " (no *_nbx API)",
        )
        .unwrap_or_else(|e| panic!("{e}"));

    ucx.link(&["ucp", "uct", "ucs", "ucm"]);

    // Metadata for dependents (DEP_UCP_*): version as 0xMMmm, include and lib dirs.
    ucx.emit_metadata((major, minor));

    // Run path to a UCX outside the system directories (see the module docs).
    ucx.emit_rpath("UCX_SYS_NO_RPATH");

    // The shim: real symbols for macros and inline functions.
    let mut shim = cc::Build::new();
    shim.file("src/shim.c").warnings(true).extra_warnings(true);
    for p in &ucx.include_paths {
        // System include: warnings in UCX's own headers are not the shim's.
        shim.flag("-isystem").flag(p);
    }
    shim.compile("ps_ucx_shim");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    let mut b = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_arg(format!("-I{}", Path::new("src").display()))
        .allowlist_function("ucp_.*|ucs_status_string|ps_.*")
        .allowlist_type("ucp_.*|ucs_status_t|ucs_thread_mode_t|ucs_memory_type_t|ucs_sock_addr_t")
        .allowlist_var("UCP_.*|UCS_.*")
        // Flags and field masks are bit sets.
        .bitfield_enum(".*_field$|.*_field_t$|.*_flags$|.*_flags_t$|ucp_feature|ucp_op_attr_t|ucp_mem_advice_t|ucp_am_cb_flags|ucp_send_am_flags")
        // Everything else (ucs_status_t included) is a transparent newtype with
        // associated constants: a value the headers do not name is still a valid
        // value, never undefined behaviour as with a Rust enum.
        .default_enum_style(bindgen::EnumVariation::NewType { is_bitfield: false, is_global: false })
        .derive_default(true)
        .derive_debug(true)
        .size_t_is_usize(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &ucx.include_paths {
        b = b.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = b.generate().unwrap_or_else(|e| {
        panic!(
            "ucx-sys: bindgen failed on the UCX headers found through {}: {e}",
            ucx.how
        )
    });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
