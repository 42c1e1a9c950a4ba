//! Build script of `margo-sys`: look for Margo, never require it.
//!
//! The crate declares the Margo and Mercury functions it uses by hand and
//! loads them at run time (`libloading`), so it compiles everywhere. This
//! script only finds out whether a Margo installation is at hand, to
//!
//! - emit the cfg `has_margo` (tests that need Margo run only then; dependents
//!   read `DEP_MARGO_FOUND`, `DEP_MARGO_VERSION`, `DEP_MARGO_LIBDIR`);
//! - bake its library directory in as the first place the loader looks
//!   (`MARGO_SYS_LIBDIR`);
//! - when its headers are there and libclang is installed, run bindgen over
//!   them (two files in `OUT_DIR`: the functions, with the types this crate
//!   declares itself left out so that they resolve to this crate's; and the
//!   structs and constants) and emit the cfg `margo_headers`, under which the
//!   unit test `header_check` checks every hand-written declaration against
//!   them: a signature that differs fails to compile.
//!
//! Search order (the probing is `proxystore-sys-probe`'s, shared with the
//! other -sys crates; when nothing is found, `DEP_MARGO_NOTES` lists every
//! attempt):
//! 1. `MARGO_DIR` (or `<TARGET>_MARGO_DIR`): a prefix with `include/margo.h`
//!    and `lib/` (or `lib64/`) holding `libmargo.so` (a Spack prefix:
//!    `spack location -i mochi-margo`); Mercury's and Argobots' headers come
//!    from pkg-config or `MERCURY_DIR` / `ARGOBOTS_DIR` when they live in
//!    prefixes of their own;
//! 2. pkg-config `margo >= 0.20` (`PKG_CONFIG_PATH` selects a site install).
//!
//! Version floor 0.20: `margo_bulk_ctransfer_timed` (a bulk transfer with a
//! timeout that cancels it, completed by a callback, so that no thread blocks
//! in Argobots and a caller that gives up never leaves memory behind) first
//! appears there; everything else used is older (`margo_init_ext` 0.9,
//! `HG_Bulk_serialize` with option flags, Mercury 2.0).

use proxystore_sys_probe::{Found, Probe, env_var, pkg_config};
use std::env;
use std::path::{Path, PathBuf};

/// Oldest Margo this crate works with (see above).
const MIN_VERSION: &str = "0.20";

/// The `#define MARGO_VERSION_{MAJOR,MINOR,PATCH}` of `margo-version.h`.
fn header_version(include: &Path) -> Option<String> {
    let text = std::fs::read_to_string(include.join("margo-version.h")).ok()?;
    let field = |tag: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("#define {tag} ")))
            .map(|v| v.trim().to_string())
    };
    Some(format!(
        "{}.{}.{}",
        field("MARGO_VERSION_MAJOR")?,
        field("MARGO_VERSION_MINOR")?,
        field("MARGO_VERSION_PATCH")?
    ))
}

/// Look for Margo; `Err` holds every attempt (not an error: the crate loads
/// Margo at run time, and says then how to install it).
fn probe() -> Result<Found, proxystore_sys_probe::Tried> {
    let mut found = Probe::new("margo-sys", "Margo", "margo.h and libmargo.so")
        .prefix_var("MARGO_DIR")
        .headers(&["margo.h"])
        .libs(&["libmargo.so"])
        .header_version(header_version)
        .pkg_config("margo")
        // Loaded at run time, never linked.
        .pkg_config_link(false)
        .min_version(MIN_VERSION)
        .install_hint("Spack: `spack install mochi-margo`, then `spack load mochi-margo`")
        .run()?;
    if found.in_prefix() {
        // Mercury's and Argobots' headers, when they live in prefixes of their own.
        for (var, pc) in [("MERCURY_DIR", "mercury"), ("ARGOBOTS_DIR", "argobots")] {
            if let Some(d) = env_var(var) {
                found.include_paths.push(PathBuf::from(d).join("include"));
            } else if let Ok(l) = pkg_config::Config::new()
                .cargo_metadata(false)
                .env_metadata(false)
                .probe(pc)
            {
                found.include_paths.extend(l.include_paths);
            }
        }
    }
    Ok(found)
}

/// Functions and types this crate declares; bindgen leaves the types out of
/// the signature file so that its signatures name this crate's types.
const FUNCTIONS: &str = "margo_(init_ext|finalize|addr_lookup|addr_free|addr_self|addr_to_string|bulk_create|bulk_free|bulk_deserialize|bulk_ctransfer_timed|bulk_transfer_timed)|HG_(Version_get|Error_to_string|Bulk_get_serialize_size|Bulk_serialize)";
const OWN_TYPES: &str = "margo_instance|margo_instance_id|margo_init_info|margo_request_struct|margo_request|hg_addr|hg_addr_t|hg_bulk|hg_bulk_t|hg_class|hg_class_t|hg_context|hg_context_t|ABT_pool_opaque|ABT_pool|hg_init_info|margo_logger|margo_monitor";

fn bindgen(found: &Found, out: &Path) -> Result<(), String> {
    let base = || {
        let mut b = bindgen::Builder::default()
            .header("src/wrapper.h")
            .size_t_is_usize(true)
            .layout_tests(false)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        for p in &found.include_paths {
            b = b.clang_arg(format!("-I{}", p.display()));
        }
        b
    };
    base()
        .allowlist_function(FUNCTIONS)
        .blocklist_type(OWN_TYPES)
        .generate()
        .map_err(|e| format!("bindgen (functions): {e}"))?
        .write_to_file(out.join("margo_functions.rs"))
        .map_err(|e| e.to_string())?;
    base()
        .allowlist_type("margo_init_info|hg_bulk_desc_info|hg_return_t|hg_bulk_op_t")
        .allowlist_var("HG_BULK_(READ_ONLY|WRITE_ONLY|READWRITE)|MARGO_(CLIENT|SERVER)_MODE")
        .opaque_type("ABT_pool_opaque|hg_class|hg_context|hg_init_info|margo_logger|margo_monitor|margo_instance")
        .generate()
        .map_err(|e| format!("bindgen (types): {e}"))?
        .write_to_file(out.join("margo_types.rs"))
        .map_err(|e| e.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo::rustc-check-cfg=cfg(has_margo)");
    println!("cargo::rustc-check-cfg=cfg(margo_headers)");

    let found = match probe() {
        Ok(found) => found,
        Err(tried) => {
            // Not an error: the crate loads Margo at run time, and says then
            // how to install it. Dependents see DEP_MARGO_FOUND=0.
            println!("cargo:found=0");
            println!("cargo:notes={}", tried.one_line());
            return;
        }
    };
    let version = found.version.clone().unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-cfg=has_margo");
    println!("cargo:found=1");
    println!("cargo:version={version}");
    if let Some(lib) = found.lib_dir_holding("libmargo.so") {
        println!("cargo:rustc-env=MARGO_SYS_LIBDIR={}", lib.display());
        println!("cargo:libdir={}", lib.display());
    }
    println!("cargo:rustc-env=MARGO_SYS_FOUND_BY={}", found.how);
    println!("cargo:rustc-env=MARGO_SYS_VERSION={version}");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    match bindgen(&found, &out) {
        Ok(()) => println!("cargo:rustc-cfg=margo_headers"),
        Err(e) => println!(
            "cargo:warning=margo-sys: Margo {version} found through {}, but its headers could not be \
             checked against the declarations (needs libclang: `apt-get install libclang-dev`): {e}",
            found.how
        ),
    }
}
