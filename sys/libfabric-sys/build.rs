//! Build script of `libfabric-sys`: find libfabric, compile the `wrap_fi_*`
//! shim, run bindgen.
//!
//! Search order (every failed attempt is reported if none succeeds; the
//! probing is `proxystore-sys-probe`'s, shared with the other -sys crates):
//! 1. `LIBFABRIC_DIR` (or `<TARGET>_LIBFABRIC_DIR`): a prefix with
//!    `include/rdma/fabric.h` and `lib/` (or `lib64/`) holding `libfabric`
//!    (a site install, e.g. `/opt/cray/libfabric/1.x` or `/opt/amazon/efa`).
//! 2. pkg-config `libfabric`, version >= 1.10; `PKG_CONFIG_PATH` selects a
//!    site libfabric's `.pc` file.
//!
//! Version floor 1.10: the API version this crate asks `fi_getinfo` for.
//! Everything the connector uses exists there: `FI_EP_RDM` with `FI_RMA`,
//! the `mr_mode` bits it honours (`FI_MR_LOCAL`, `FI_MR_VIRT_ADDR`,
//! `FI_MR_ALLOCATED`, `FI_MR_PROV_KEY` from 1.5, `FI_MR_ENDPOINT` with
//! `fi_mr_bind`/`fi_mr_enable` from 1.7), `fi_context2` (1.5), and the `shm`
//! (1.8) and `tcp;ofi_rxm` providers with RMA reads.

use proxystore_sys_probe::{Probe, preprocessed_version};
use std::env;
use std::path::PathBuf;

/// libfabric's exported functions the shim loads at run time (`shim.c`).
const LOADED: &[&str] = &[
    "fi_getinfo",
    "fi_freeinfo",
    "fi_dupinfo",
    "fi_fabric",
    "fi_version",
    "fi_strerror",
    "fi_tostr",
];

/// Oldest libfabric API this crate builds against (see above).
const MIN_VERSION: &str = "1.10";

/// Expose each `wrap_fi_xyz` shim symbol as `fi_xyz` (the inline function's
/// own name), keeping the link name. libfabric's own exported functions are
/// the shim's too (calls through the pointers `ps_fabric_load` fills): the
/// headers' declarations of them are renamed out of the allowlist, so that
/// nothing refers to a libfabric symbol and binaries do not link it.
#[derive(Debug)]
struct Rename;

impl bindgen::callbacks::ParseCallbacks for Rename {
    fn generated_name_override(&self, item: bindgen::callbacks::ItemInfo<'_>) -> Option<String> {
        match item.kind {
            bindgen::callbacks::ItemKind::Function => match item.name.strip_prefix("wrap_") {
                Some(name) => Some(name.to_string()),
                None if LOADED.contains(&item.name) => Some(format!("unlinked_{}", item.name)),
                None => None,
            },
            _ => None,
        }
    }
}

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

    let probe = Probe::new("libfabric-sys", "libfabric", "headers and libfabric.so")
        .prefix_var("LIBFABRIC_DIR")
        .headers(&["rdma/fabric.h"])
        .libs(&["libfabric.so", "libfabric.a"])
        .pkg_config("libfabric")
        // Loaded at run time (`libfabric_sys::load`), not linked: see lib.rs.
        .pkg_config_link(false)
        .min_version(MIN_VERSION)
        .install_hint(
            "Debian/Ubuntu: `apt-get install libfabric-dev`; Spack: `spack load libfabric`; \
             Cray/HPE: `module load libfabric`",
        )
        .extra_hint("bindgen also needs libclang (Debian: `apt-get install libclang-dev`).");
    let fabric = probe.run().unwrap_or_else(|tried| panic!("{tried}"));
    let (major, minor) = probe
        .check_version(
            &fabric,
            preprocessed_version(
                "src/version.c",
                &fabric.include_paths,
                "PS_FI_MAJOR",
                "PS_FI_MINOR",
                "rdma/fabric.h",
            ),
            "",
        )
        .unwrap_or_else(|e| panic!("{e}"));

    // Not linked: `load()` dlopens it when a libfabric store is first
    // opened. The directory it was found in is tried first at run time.
    let lib_dir = fabric
        .lib_dir_holding("libfabric.so.1")
        .or_else(|| fabric.lib_dir_holding("libfabric.so"))
        .or(fabric.lib_dirs.first().map(PathBuf::as_path))
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=PS_FABRIC_LIB_DIR={lib_dir}");
    println!("cargo:rustc-link-lib=dylib=dl");

    // Metadata for dependents (DEP_FABRIC_*): version as 0xMMmm, include and lib dirs.
    fabric.emit_metadata((major, minor));

    // The shim: real symbols for the static inline calls.
    let mut shim = cc::Build::new();
    shim.file("src/shim.c").warnings(true).extra_warnings(true);
    for p in &fabric.include_paths {
        shim.include(p);
    }
    shim.compile("ps_fabric_shim");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    let mut b = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_arg("-Isrc")
        // Real library symbols, and the shim's wrappers of the inline calls
        // (matched by their Rust names, after `Rename`; bindgen never emits
        // the inline functions themselves).
        .allowlist_function(
            "ps_fabric_load|fi_(getinfo|freeinfo|dupinfo|fabric|version|strerror|tostr)|fi_(allocinfo|av_insert|av_open|av_remove|av_straddr|cancel|close|cq_open|cq_read|cq_readerr|cq_strerror|control|trywait|domain|enable|endpoint|ep_bind|getname|mr_bind|mr_desc|mr_enable|mr_key|mr_reg|read|write|writemsg|header_version|addr_unspec)",
        )
        .allowlist_type("fi_.*|fid_.*|fid")
        .allowlist_var("FI_.*")
        .derive_default(true)
        .derive_debug(true)
        .size_t_is_usize(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(Rename))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &fabric.include_paths {
        b = b.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = b.generate().unwrap_or_else(|e| {
        panic!(
            "libfabric-sys: bindgen failed on the libfabric headers found through {}: {e}",
            fabric.how
        )
    });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
