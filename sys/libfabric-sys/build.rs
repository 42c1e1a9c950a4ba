//! Build script of `libfabric-sys`: find libfabric, compile the `wrap_fi_*`
//! shim, run bindgen.
//!
//! Search order (every failed attempt is reported if none succeeds):
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

use std::env;
use std::path::PathBuf;

/// Oldest libfabric API this crate builds against (see above).
const MIN_VERSION: (u32, u32) = (1, 10);

/// A libfabric installation that the probe accepted.
struct Fabric {
    include_paths: Vec<PathBuf>,
    lib_dirs: Vec<PathBuf>,
    /// Set when the probe itself must emit the link lines (pkg-config already does).
    emit_link: bool,
    how: String,
}

/// Read an environment variable (target-prefixed form first) and ask cargo to
/// rerun when either form changes.
fn env_var(name: &str) -> Option<String> {
    let target = env::var("TARGET")
        .unwrap_or_default()
        .to_uppercase()
        .replace('-', "_");
    let prefixed = format!("{target}_{name}");
    for var in [prefixed.as_str(), name] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    env::var(&prefixed)
        .ok()
        .or_else(|| env::var(name).ok())
        .filter(|v| !v.is_empty())
}

fn probe_dir(errors: &mut Vec<String>) -> Option<Fabric> {
    let Some(dir) = env_var("LIBFABRIC_DIR") else {
        errors.push(
            "LIBFABRIC_DIR is not set (set it to a libfabric prefix with include/ and lib/ to use a site libfabric)"
                .into(),
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    let include = dir.join("include");
    if !include.join("rdma/fabric.h").is_file() {
        errors.push(format!(
            "LIBFABRIC_DIR={}: {} not found",
            dir.display(),
            include.join("rdma/fabric.h").display()
        ));
        return None;
    }
    let lib = ["lib", "lib64"]
        .iter()
        .map(|l| dir.join(l))
        .find(|l| l.join("libfabric.so").exists() || l.join("libfabric.a").exists());
    let Some(lib) = lib else {
        errors.push(format!(
            "LIBFABRIC_DIR={}: no libfabric.so or libfabric.a in lib/ or lib64/",
            dir.display()
        ));
        return None;
    };
    Some(Fabric {
        include_paths: vec![include],
        lib_dirs: vec![lib],
        emit_link: true,
        how: format!("LIBFABRIC_DIR={}", dir.display()),
    })
}

fn probe_pkg_config(errors: &mut Vec<String>) -> Option<Fabric> {
    let min = format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1);
    match pkg_config::Config::new()
        .atleast_version(&min)
        .probe("libfabric")
    {
        Ok(lib) => Some(Fabric {
            include_paths: lib.include_paths,
            lib_dirs: lib.link_paths,
            emit_link: false,
            how: format!("pkg-config libfabric {}", lib.version),
        }),
        Err(e) => {
            errors.push(format!(
                "pkg-config libfabric >= {min}: {e}\n   (set PKG_CONFIG_PATH to the directory holding libfabric.pc to use a site libfabric)"
            ));
            None
        }
    }
}

/// Read `FI_MAJOR_VERSION`/`FI_MINOR_VERSION` by running `version.c` through
/// the C preprocessor (no code is run, so cross builds work).
fn header_version(include_paths: &[PathBuf]) -> Result<(u32, u32), String> {
    let mut build = cc::Build::new();
    build.file("src/version.c").cargo_warnings(false);
    for p in include_paths {
        build.include(p);
    }
    let out = build
        .try_expand()
        .map_err(|e| format!("preprocessing src/version.c failed: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    let tokens: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .collect();
    let read = |tag: &str| -> Result<u32, String> {
        tokens
            .iter()
            .position(|t| *t == tag)
            .and_then(|i| tokens.get(i + 1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{tag} not found in the preprocessed rdma/fabric.h"))
    };
    Ok((read("PS_FI_MAJOR")?, read("PS_FI_MINOR")?))
}

/// Expose each `wrap_fi_xyz` shim symbol as `fi_xyz` (the inline function's
/// own name), keeping the link name.
#[derive(Debug)]
struct Rename;

impl bindgen::callbacks::ParseCallbacks for Rename {
    fn generated_name_override(&self, item: bindgen::callbacks::ItemInfo<'_>) -> Option<String> {
        match item.kind {
            bindgen::callbacks::ItemKind::Function => {
                item.name.strip_prefix("wrap_").map(String::from)
            }
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

    let mut errors = Vec::new();
    let fabric = probe_dir(&mut errors).or_else(|| probe_pkg_config(&mut errors));
    let Some(fabric) = fabric else {
        let list: String = errors
            .iter()
            .enumerate()
            .map(|(i, e)| format!("  {}. {e}\n", i + 1))
            .collect();
        panic!(
            "\n\nlibfabric-sys: could not find libfabric >= {}.{} (headers and libfabric.so). Tried:\n{list}\n\
             Fix: install it (Debian/Ubuntu: `apt-get install libfabric-dev`; Spack: `spack load libfabric`;\n\
             Cray/HPE: `module load libfabric`), or set LIBFABRIC_DIR to a libfabric prefix (include/ + lib/),\n\
             or PKG_CONFIG_PATH to the directory holding libfabric.pc. bindgen also needs libclang\n\
             (Debian: `apt-get install libclang-dev`).\n",
            MIN_VERSION.0, MIN_VERSION.1
        );
    };

    let (major, minor) = match header_version(&fabric.include_paths) {
        Ok(v) => v,
        Err(e) => panic!(
            "libfabric-sys: found libfabric through {} but cannot read its version: {e}",
            fabric.how
        ),
    };
    if (major, minor) < MIN_VERSION {
        panic!(
            "libfabric-sys: libfabric {major}.{minor} found through {} is older than {}.{}; \
             install a newer libfabric and point LIBFABRIC_DIR or PKG_CONFIG_PATH at it",
            fabric.how, MIN_VERSION.0, MIN_VERSION.1
        );
    }

    if fabric.emit_link {
        for d in &fabric.lib_dirs {
            println!("cargo:rustc-link-search=native={}", d.display());
        }
        println!("cargo:rustc-link-lib=dylib=fabric");
    }

    // Metadata for dependents (DEP_FABRIC_*): version as 0xMMmm, include and lib dirs.
    println!("cargo:version_number={:x}", (major << 8) | minor);
    println!("cargo:version={major}.{minor}");
    let join = |v: &[PathBuf]| {
        env::join_paths(v)
            .expect("paths joinable")
            .to_string_lossy()
            .into_owned()
    };
    println!("cargo:include={}", join(&fabric.include_paths));
    println!("cargo:lib_dir={}", join(&fabric.lib_dirs));

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
            "fi_(getinfo|freeinfo|dupinfo|fabric|version|strerror|tostr)|fi_(allocinfo|av_insert|av_open|av_remove|av_straddr|cancel|close|cq_open|cq_read|cq_readerr|cq_strerror|control|trywait|domain|enable|endpoint|ep_bind|getname|mr_bind|mr_desc|mr_enable|mr_key|mr_reg|read|write|writemsg|header_version|addr_unspec)",
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
