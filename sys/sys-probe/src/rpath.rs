//! Run paths: a native library found outside the system library directories
//! (through `UCX_DIR`, or a pkg-config prefix elsewhere) is
//! what a program must load at run time too, not whatever copy the loader
//! finds first. Its library directory is embedded as a run path
//! (`DT_RUNPATH`, so `LD_LIBRARY_PATH` still takes precedence).
//!
//! Two halves:
//! - the `-sys` crate ([`Found::emit_rpath`]) embeds it in its own test
//!   binaries and exports it as `links` metadata, `DEP_<LINKS>_RPATH`;
//! - every crate that links a binary, example, test or `cdylib` against a
//!   `-sys` crate calls [`forward_rpath`] from its build script, with each
//!   `-sys` crate a direct dependency (cargo hands `DEP_*` metadata to
//!   direct dependents only).

use crate::{Found, env_var, join_paths};
use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Whether `dir` is searched by the dynamic loader without being told
/// (`/usr/lib`, `/lib64`, Debian's `/usr/lib/x86_64-linux-gnu`, ...).
pub(crate) fn is_system_lib_dir(dir: &Path) -> bool {
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

impl Found {
    /// The library directories to embed as run paths: those outside the
    /// system directories, none when the opt-out variable `no_rpath_var`
    /// (e.g. `UCX_SYS_NO_RPATH`, for packagers who place the library
    /// themselves) is set to anything but `0`.
    pub fn rpath_dirs(&self, no_rpath_var: &str) -> Vec<PathBuf> {
        if env_var(no_rpath_var).is_some_and(|v| v != "0") {
            return Vec::new();
        }
        self.lib_dirs
            .iter()
            .filter(|d| !is_system_lib_dir(d))
            .cloned()
            .collect()
    }

    /// In a `-sys` crate's build script: embed [`Found::rpath_dirs`] in the
    /// crate's own test binaries and export them to dependents as the
    /// `rpath` metadata (`DEP_<LINKS>_RPATH`, joined with `:`, empty when
    /// none), which their build scripts pass on with [`forward_rpath`].
    pub fn emit_rpath(&self, no_rpath_var: &str) {
        let dirs = self.rpath_dirs(no_rpath_var);
        for d in &dirs {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", d.display());
        }
        println!("cargo:rpath={}", join_paths(&dirs));
    }
}

/// Whether `name` is the `rpath` metadata of a `links` dependency.
fn is_rpath_var(name: &str) -> bool {
    name.starts_with("DEP_") && name.ends_with("_RPATH")
}

/// The run paths in `DEP_<LINKS>_RPATH` variables among `vars`, in the order
/// of the variables' names, each once, empty entries left out.
pub(crate) fn rpaths_in(vars: impl IntoIterator<Item = (String, OsString)>) -> Vec<PathBuf> {
    let mut found: Vec<(String, OsString)> =
        vars.into_iter().filter(|(k, _)| is_rpath_var(k)).collect();
    found.sort();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (_, v) in found {
        for d in env::split_paths(&v) {
            if !d.as_os_str().is_empty() && !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// In the build script of a crate that links a binary, example, test or
/// `cdylib` against a `-sys` crate that links its library (`ucx-sys`; the
/// libraries loaded at run time, libfabric, Margo and DAOS, are looked for
/// in the directory their build found them in first, and need none): embed
/// every run path that its direct `-sys` dependencies export
/// (`DEP_UCP_RPATH`, ...; see [`Found::emit_rpath`]).
/// Returns the directories, for the build script's own messages.
pub fn forward_rpath() -> Vec<PathBuf> {
    // (Not `env::vars`: it panics on any variable that is not UTF-8.)
    let vars: Vec<(String, OsString)> = env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .filter(|(k, _)| is_rpath_var(k))
        .collect();
    for (k, _) in &vars {
        println!("cargo:rerun-if-env-changed={k}");
    }
    let dirs = rpaths_in(vars);
    for d in &dirs {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", d.display());
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::How;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), OsString::from(v)))
            .collect()
    }

    #[test]
    fn run_paths_come_from_every_rpath_variable_once_in_name_order() {
        let dirs = rpaths_in(vars(&[
            ("DEP_UCP_RPATH", "/opt/ucx/lib:/opt/common/lib"),
            ("DEP_UCP_LIB_DIR", "/not/a/run/path"),
            ("PATH", "/usr/bin"),
            ("DEP_FABRIC_RPATH", "/opt/ofi/lib::/opt/common/lib"),
            ("DEP_MARGO_RPATH", ""),
        ]));
        let want: Vec<PathBuf> = ["/opt/ofi/lib", "/opt/common/lib", "/opt/ucx/lib"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs, want);
        assert!(rpaths_in(vars(&[("DEP_UCP_INCLUDE", "/x")])).is_empty());
    }

    #[test]
    fn system_directories_get_no_run_path() {
        for d in [
            "/usr/lib",
            "/lib64",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/local/lib",
        ] {
            assert!(is_system_lib_dir(Path::new(d)), "{d}");
        }
        for d in ["/opt/ucx/lib", "/usr/lib/ucx", "/home/u/spack/lib64"] {
            assert!(!is_system_lib_dir(Path::new(d)), "{d}");
        }
    }

    #[test]
    fn only_directories_outside_the_system_ones_are_run_paths() {
        let found = Found {
            include_paths: vec![],
            lib_dirs: [
                "/usr/lib",
                "/opt/ucx/lib",
                "/usr/lib/x86_64-linux-gnu",
                "/opt/ucx/lib64",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            version: None,
            how: How::Prefix(PathBuf::from("/opt/ucx")),
        };
        assert_eq!(
            found.rpath_dirs("PROXYSTORE_SYS_PROBE_TEST_UNSET_NO_RPATH"),
            vec![
                PathBuf::from("/opt/ucx/lib"),
                PathBuf::from("/opt/ucx/lib64")
            ]
        );
    }
}
