//! Build script of `ucx-sys`: find UCX, compile the `ps_*` shim, run bindgen.
//!
//! Search order (every failed attempt is reported if none succeeds):
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
//! `DEP_UCP_RPATH` metadata, in every dependent whose build script passes it
//! on (`ucx-connector`, `cli`, `benches`). Packagers who place UCX themselves
//! turn it off with `UCX_SYS_NO_RPATH=1`.

use std::env;
use std::path::{Path, PathBuf};

/// First UCX release with the complete `*_nbx` API.
const MIN_VERSION: (u32, u32) = (1, 10);

/// A UCX installation that the probe accepted.
struct Ucx {
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

fn probe_dir(errors: &mut Vec<String>) -> Option<Ucx> {
    let Some(dir) = env_var("UCX_DIR") else {
        errors.push("UCX_DIR is not set (set it to a UCX prefix with include/ and lib/ to use a specific UCX)".into());
        return None;
    };
    let dir = PathBuf::from(dir);
    let include = dir.join("include");
    if !include.join("ucp/api/ucp.h").is_file() {
        errors.push(format!(
            "UCX_DIR={}: {} not found",
            dir.display(),
            include.join("ucp/api/ucp.h").display()
        ));
        return None;
    }
    let lib = ["lib", "lib64"]
        .iter()
        .map(|l| dir.join(l))
        .find(|l| l.join("libucp.so").exists() || l.join("libucp.a").exists());
    let Some(lib) = lib else {
        errors.push(format!(
            "UCX_DIR={}: no libucp.so or libucp.a in lib/ or lib64/",
            dir.display()
        ));
        return None;
    };
    Some(Ucx {
        include_paths: vec![include],
        lib_dirs: vec![lib],
        emit_link: true,
        how: format!("UCX_DIR={}", dir.display()),
    })
}

fn probe_pkg_config(errors: &mut Vec<String>) -> Option<Ucx> {
    let min = format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1);
    match pkg_config::Config::new().atleast_version(&min).probe("ucx") {
        Ok(lib) => Some(Ucx {
            include_paths: lib.include_paths,
            lib_dirs: lib.link_paths,
            emit_link: false,
            how: format!("pkg-config ucx {}", lib.version),
        }),
        Err(e) => {
            errors.push(format!(
                "pkg-config ucx >= {min}: {e}\n   (set PKG_CONFIG_PATH to the directory holding ucx.pc to use a site UCX)"
            ));
            None
        }
    }
}

/// Whether `dir` is searched by the dynamic loader without being told
/// (`/usr/lib`, `/lib64`, Debian's `/usr/lib/x86_64-linux-gnu`, ...).
fn is_system_lib_dir(dir: &Path) -> bool {
    let plain = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"];
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if plain.iter().any(|p| dir == Path::new(p)) {
        return true;
    }
    // Multiarch directories.
    let under_lib = dir
        .parent()
        .is_some_and(|p| p == Path::new("/lib") || p == Path::new("/usr/lib"));
    under_lib
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("-linux-"))
}

/// Read `UCP_API_MAJOR`/`UCP_API_MINOR` by running `version.c` through the C
/// preprocessor (no code is run, so cross builds work).
fn header_version(include_paths: &[PathBuf]) -> Result<(u32, u32), String> {
    let mut build = cc::Build::new();
    build.file("src/version.c").cargo_warnings(false);
    for p in include_paths {
        build.include(p);
    }
    let out = build
        .try_expand()
        .map_err(|e| format!("preprocessing src/version.c failed: {e}"))?;
    // Preprocessors may split a macro expansion from a system header over
    // several lines (with line markers): read the token stream instead.
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
            .ok_or_else(|| format!("{tag} not found in the preprocessed ucp_version.h"))
    };
    Ok((read("PS_UCP_API_MAJOR")?, read("PS_UCP_API_MINOR")?))
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
    let ucx = probe_dir(&mut errors).or_else(|| probe_pkg_config(&mut errors));
    let Some(ucx) = ucx else {
        let list: String = errors
            .iter()
            .enumerate()
            .map(|(i, e)| format!("  {}. {e}\n", i + 1))
            .collect();
        panic!(
            "\n\nucx-sys: could not find UCX >= {}.{} (headers and libucp). Tried:\n{list}\n\
             Fix: install it (Debian/Ubuntu: `apt-get install libucx-dev`; Spack: `spack load ucx`),\n\
             or set UCX_DIR to a UCX prefix (include/ + lib/), or PKG_CONFIG_PATH to the directory\n\
             holding ucx.pc. bindgen also needs libclang (Debian: `apt-get install libclang-dev`).\n",
            MIN_VERSION.0, MIN_VERSION.1
        );
    };

    let (major, minor) = match header_version(&ucx.include_paths) {
        Ok(v) => v,
        Err(e) => panic!(
            "ucx-sys: found UCX through {} but cannot read its version: {e}",
            ucx.how
        ),
    };
    if (major, minor) < MIN_VERSION {
        panic!(
            "ucx-sys: UCX {major}.{minor} found through {} is older than {}.{} (no *_nbx API); \
             install a newer UCX and point UCX_DIR or PKG_CONFIG_PATH at it",
            ucx.how, MIN_VERSION.0, MIN_VERSION.1
        );
    }

    if ucx.emit_link {
        for d in &ucx.lib_dirs {
            println!("cargo:rustc-link-search=native={}", d.display());
        }
        for l in ["ucp", "uct", "ucs", "ucm"] {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
    }

    // Metadata for dependents (DEP_UCP_*): version as 0xMMmm, include and lib dirs.
    println!("cargo:version_number={:x}", (major << 8) | minor);
    println!("cargo:version={major}.{minor}");
    let join = |v: &[PathBuf]| {
        env::join_paths(v)
            .expect("paths joinable")
            .to_string_lossy()
            .into_owned()
    };
    println!("cargo:include={}", join(&ucx.include_paths));
    println!("cargo:lib_dir={}", join(&ucx.lib_dirs));

    // Run path to a UCX outside the system directories (see the module docs).
    let rpath: Vec<PathBuf> = if env_var("UCX_SYS_NO_RPATH").is_some_and(|v| v != "0") {
        Vec::new()
    } else {
        ucx.lib_dirs
            .iter()
            .filter(|d| !is_system_lib_dir(d))
            .cloned()
            .collect()
    };
    for d in &rpath {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", d.display());
    }
    println!("cargo:rpath={}", join(&rpath));

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
