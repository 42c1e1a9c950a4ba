//! Build-script helper of the proxystore-rs `-sys` crates (`ucx-sys`,
//! `libfabric-sys`, `margo-sys`, `daos-sys`): find a native library and, when
//! it is not there, say everything that was tried and how to install it.
//!
//! A [`Probe`] looks, in this order, at
//!
//! 1. an install-prefix variable (e.g. `UCX_DIR`, also read in its
//!    target-prefixed form `<TARGET>_UCX_DIR`): a prefix with the library's
//!    headers under `include/` and its shared (or static) library in one of
//!    the library subdirectories (`lib/`, `lib64/`, ...);
//! 2. pkg-config, with a version floor (`PKG_CONFIG_PATH` selects a site
//!    install);
//! 3. fallback prefixes (e.g. `/usr`, where RPMs install).
//!
//! The first that works wins and gives a [`Found`] (include and library
//! directories, version when known, and [`How`] it was found). When none
//! works, [`Probe::run`] returns a [`Tried`] report: every attempt with the
//! reason it failed, rendered as the multi-line message a build script panics
//! with ([`Display`](fmt::Display)) or as one line for a `cargo::warning`
//! ([`Tried::one_line`]), each with the install hint the crate gave.
//!
//! Every variable read through [`env_var`] is announced to cargo with
//! `cargo::rerun-if-env-changed`.
//!
//! Run paths: a library found outside the system library directories is
//! embedded as the run path of the `-sys` crate's test binaries and exported
//! as `DEP_<LINKS>_RPATH` ([`Found::emit_rpath`]); every crate that links a
//! binary, example, test or `cdylib` against it calls [`forward_rpath`] from
//! its build script, so all of them load the library they were built against.
//!
//! ```no_run
//! let found = proxystore_sys_probe::Probe::new("ucx-sys", "UCX", "headers and libucp")
//!     .prefix_var("UCX_DIR")
//!     .headers(&["ucp/api/ucp.h"])
//!     .libs(&["libucp.so", "libucp.a"])
//!     .pkg_config("ucx")
//!     .min_version("1.10")
//!     .install_hint("Debian/Ubuntu: `apt-get install libucx-dev`; Spack: `spack load ucx`")
//!     .run()
//!     .unwrap_or_else(|tried| panic!("{tried}"));
//! found.link(&["ucp", "uct", "ucs", "ucm"]);
//! found.emit_rpath("UCX_SYS_NO_RPATH");
//! ```

/// The pkg-config crate this one probes with, for a build script's other
/// pkg-config questions.
pub use pkg_config;

mod rpath;
pub use rpath::forward_rpath;

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};

/// Read an environment variable, the target-prefixed form
/// (`X86_64_UNKNOWN_LINUX_GNU_<NAME>`) first, and ask cargo to rerun the build
/// script when either form changes. An empty value counts as unset.
pub fn env_var(name: &str) -> Option<String> {
    let target = env::var("TARGET")
        .unwrap_or_default()
        .to_uppercase()
        .replace('-', "_");
    let prefixed = format!("{target}_{name}");
    for var in [prefixed.as_str(), name] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    env::var(&prefixed)
        .ok()
        .or_else(|| env::var(name).ok())
        .filter(|v| !v.is_empty())
}

/// Whether dotted version `version` is at least `min`, comparing the numeric
/// parts in order (`"1.13.1"` >= `"1.10"`; a suffix such as `rc1` is ignored,
/// a missing part counts as less).
pub fn at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> {
        v.trim()
            .split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    parse(version) >= parse(min)
}

/// Read `major` and `minor`, two numbers that the C preprocessor output
/// `preprocessed` has right after the tokens `major_tag` and `minor_tag` (a
/// `version.c` of the form `PS_MAJOR FOO_MAJOR_VERSION`, run through `cc`'s
/// `expand`: nothing is run, so cross builds work). Preprocessors may split a
/// macro expansion from a system header over several lines with line markers:
/// the token stream is read, line markers left out. `header` names the header
/// in the error.
pub fn read_version_pair(
    preprocessed: &[u8],
    major_tag: &str,
    minor_tag: &str,
    header: &str,
) -> Result<(u32, u32), String> {
    let text = String::from_utf8_lossy(preprocessed);
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
            .ok_or_else(|| format!("{tag} not found in the preprocessed {header}"))
    };
    Ok((read(major_tag)?, read(minor_tag)?))
}

/// Read a `(major, minor)` version from the headers in `include_paths` by
/// running the C file `version_c` (e.g. `src/version.c`, of the form
/// `PS_MAJOR FOO_MAJOR_VERSION PS_MINOR FOO_MINOR_VERSION` after including the
/// header) through the C preprocessor, then [`read_version_pair`]. Nothing is
/// run, so cross builds work. Feature `cc`.
#[cfg(feature = "cc")]
pub fn preprocessed_version(
    version_c: &str,
    include_paths: &[PathBuf],
    major_tag: &str,
    minor_tag: &str,
    header: &str,
) -> Result<(u32, u32), String> {
    let mut build = cc::Build::new();
    build.file(version_c).cargo_warnings(false);
    for p in include_paths {
        build.include(p);
    }
    let out = build
        .try_expand()
        .map_err(|e| format!("preprocessing {version_c} failed: {e}"))?;
    read_version_pair(&out, major_tag, minor_tag, header)
}

/// Paths joined with the platform's separator (`:`), for `cargo:KEY=` metadata.
pub fn join_paths(paths: &[PathBuf]) -> String {
    env::join_paths(paths)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| {
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        })
}

/// How a library was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum How {
    /// Through the install-prefix variable `var`, set to `dir`.
    PrefixVar {
        /// The variable (e.g. `UCX_DIR`).
        var: String,
        /// Its value.
        dir: PathBuf,
    },
    /// Through pkg-config package `name`.
    PkgConfig {
        /// The package (e.g. `ucx`).
        name: String,
        /// The version pkg-config reported.
        version: String,
    },
    /// In fallback prefix `dir`.
    Prefix(PathBuf),
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            How::PrefixVar { var, dir } => write!(f, "{var}={}", dir.display()),
            How::PkgConfig { name, .. } => write!(f, "pkg-config {name}"),
            How::Prefix(dir) => write!(f, "prefix {}", dir.display()),
        }
    }
}

/// A library installation the probe accepted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Found {
    /// Directories to pass to the C compiler / bindgen with `-I`.
    pub include_paths: Vec<PathBuf>,
    /// Directories holding the library (pkg-config's `-L` directories).
    pub lib_dirs: Vec<PathBuf>,
    /// The version, when pkg-config or the probe's header reader told it.
    pub version: Option<String>,
    /// Where it was found.
    pub how: How,
}

impl Found {
    /// Whether it was found in a prefix (variable or fallback) rather than by
    /// pkg-config, which emits the link lines itself when asked to
    /// ([`Probe::pkg_config_link`]).
    pub fn in_prefix(&self) -> bool {
        !matches!(self.how, How::PkgConfig { .. })
    }

    /// Where it was found, with the version pkg-config reported
    /// (`"pkg-config ucx 1.13.1"`, `"UCX_DIR=/opt/ucx"`), for messages.
    pub fn describe(&self) -> String {
        match &self.how {
            How::PkgConfig { version, .. } => format!("{} {version}", self.how),
            how => how.to_string(),
        }
    }

    /// Link the build to `libs` (`-l` names), searching the library
    /// directories, when it was found in a prefix: pkg-config found ones are
    /// linked by pkg-config already.
    pub fn link(&self, libs: &[&str]) {
        if !self.in_prefix() {
            return;
        }
        for d in &self.lib_dirs {
            println!("cargo:rustc-link-search=native={}", d.display());
        }
        for l in libs {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
    }

    /// The `links` metadata of a linked library for dependents
    /// (`DEP_<LINKS>_*`): `version_number` (hex `MMmm`), `version`
    /// (`major.minor`), `include` and `lib_dir` (paths joined with `:`).
    pub fn emit_metadata(&self, (major, minor): (u32, u32)) {
        println!("cargo:version_number={:x}", (major << 8) | minor);
        println!("cargo:version={major}.{minor}");
        println!("cargo:include={}", join_paths(&self.include_paths));
        println!("cargo:lib_dir={}", join_paths(&self.lib_dirs));
    }

    /// The first library directory that holds `file` (e.g. `libmargo.so`).
    pub fn lib_dir_holding(&self, file: &str) -> Option<&Path> {
        self.lib_dirs
            .iter()
            .find(|d| d.join(file).exists())
            .map(PathBuf::as_path)
    }
}

/// What a [`Probe`] tried, each attempt with the reason it failed, and how to
/// install the library. `Display` gives the message a build script panics
/// with; [`Tried::one_line`] the form for a `cargo::warning`.
#[derive(Debug, Clone)]
pub struct Tried(Box<Report>);

#[derive(Debug, Clone)]
struct Report {
    crate_name: String,
    library: String,
    what: String,
    min_version: Option<String>,
    attempts: Vec<String>,
    fix: String,
}

impl Tried {
    /// The attempts, in the order they were made.
    pub fn attempts(&self) -> &[String] {
        &self.0.attempts
    }

    /// What to do about it: the install hint and the variables that select an
    /// installation.
    pub fn fix(&self) -> &str {
        &self.0.fix
    }

    fn wanted(&self) -> String {
        match &self.0.min_version {
            Some(min) => format!("{} >= {min}", self.0.library),
            None => self.0.library.clone(),
        }
    }

    /// The report on one line (for `cargo::warning=`, which ends at a line
    /// break): the attempts separated by `;`, then the fix.
    pub fn one_line(&self) -> String {
        let attempts: Vec<String> = self
            .0
            .attempts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let flat: Vec<&str> = a.split_whitespace().collect();
                format!("{}. {}", i + 1, flat.join(" "))
            })
            .collect();
        format!(
            "{}: {} not found ({}); tried: {}. Fix: {}",
            self.0.crate_name,
            self.wanted(),
            self.0.what,
            attempts.join("; "),
            self.0.fix
        )
    }
}

impl fmt::Display for Tried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n\n{}: could not find {} ({}). Tried:",
            self.0.crate_name,
            self.wanted(),
            self.0.what
        )?;
        for (i, a) in self.0.attempts.iter().enumerate() {
            writeln!(f, "  {}. {a}", i + 1)?;
        }
        writeln!(f, "\nFix: {}", self.0.fix)
    }
}

impl std::error::Error for Tried {}

/// Reads the version of an installation from its include directory.
pub type HeaderVersion = fn(&Path) -> Option<String>;

/// The description of where and how to look for one library; [`Probe::run`]
/// looks.
#[derive(Debug, Clone)]
pub struct Probe {
    crate_name: String,
    library: String,
    what: String,
    prefix_var: Option<String>,
    report_unset: bool,
    headers: Vec<String>,
    lib_subdirs: Vec<String>,
    libs: Vec<String>,
    pkg_config: Option<String>,
    pkg_config_link: bool,
    fallback_prefixes: Vec<PathBuf>,
    min_version: Option<String>,
    header_version: Option<HeaderVersion>,
    install_hint: String,
    extra_hint: Option<String>,
}

impl Probe {
    /// A probe for `library` (its name in messages, e.g. `"UCX"`) on behalf of
    /// `crate_name`; `what` says what must be there (e.g. `"headers and
    /// libucp"`). Library subdirectories default to `lib/` and `lib64/`.
    pub fn new(crate_name: &str, library: &str, what: &str) -> Self {
        Probe {
            crate_name: crate_name.into(),
            library: library.into(),
            what: what.into(),
            prefix_var: None,
            report_unset: true,
            headers: Vec::new(),
            lib_subdirs: vec!["lib".into(), "lib64".into()],
            libs: Vec::new(),
            pkg_config: None,
            pkg_config_link: true,
            fallback_prefixes: Vec::new(),
            min_version: None,
            header_version: None,
            install_hint: String::new(),
            extra_hint: None,
        }
    }

    /// The install-prefix variable, tried first (e.g. `UCX_DIR`).
    pub fn prefix_var(mut self, var: &str) -> Self {
        self.prefix_var = Some(var.into());
        self
    }

    /// Whether an unset prefix variable is listed as an attempt (default:
    /// yes, so that the report names the variable).
    pub fn report_unset_var(mut self, report: bool) -> Self {
        self.report_unset = report;
        self
    }

    /// Headers, relative to `include/`, that a prefix must have (all of them).
    pub fn headers(mut self, headers: &[&str]) -> Self {
        self.headers = headers.iter().map(|h| (*h).into()).collect();
        self
    }

    /// Library files of which a prefix's library directory must hold one
    /// (e.g. `libucp.so`, `libucp.a`).
    pub fn libs(mut self, files: &[&str]) -> Self {
        self.libs = files.iter().map(|l| (*l).into()).collect();
        self
    }

    /// The subdirectories of a prefix to look for the library in, in order
    /// (default `lib`, `lib64`).
    pub fn lib_subdirs(mut self, dirs: &[&str]) -> Self {
        self.lib_subdirs = dirs.iter().map(|d| (*d).into()).collect();
        self
    }

    /// The pkg-config package, tried after the prefix variable.
    pub fn pkg_config(mut self, name: &str) -> Self {
        self.pkg_config = Some(name.into());
        self
    }

    /// Whether pkg-config emits the link lines (`cargo:rustc-link-*`) for
    /// what it finds (default: yes). `false` for a library loaded at run time.
    pub fn pkg_config_link(mut self, link: bool) -> Self {
        self.pkg_config_link = link;
        self
    }

    /// Prefixes tried after pkg-config, in order (e.g. `/usr`, `/usr/local`).
    pub fn fallback_prefixes(mut self, prefixes: &[&str]) -> Self {
        self.fallback_prefixes = prefixes.iter().map(PathBuf::from).collect();
        self
    }

    /// The version floor: pkg-config is asked for `>= min`, and a prefix
    /// whose [`header_version`](Probe::header_version) is older is refused.
    pub fn min_version(mut self, min: &str) -> Self {
        self.min_version = Some(min.into());
        self
    }

    /// How to read a prefix's version from its include directory (`None`:
    /// unknown, then the prefix is accepted).
    pub fn header_version(mut self, read: HeaderVersion) -> Self {
        self.header_version = Some(read);
        self
    }

    /// How to install the library (e.g. ``"Debian/Ubuntu: `apt-get install
    /// libucx-dev`; Spack: `spack load ucx`"``): the report's fix says
    /// "install it (HINT)" and then names the prefix variable and pkg-config.
    pub fn install_hint(mut self, hint: &str) -> Self {
        self.install_hint = hint.into();
        self
    }

    /// A sentence after the fix (e.g. that bindgen needs libclang).
    pub fn extra_hint(mut self, hint: &str) -> Self {
        self.extra_hint = Some(hint.into());
        self
    }

    /// Look, in order: the prefix variable, pkg-config, the fallback
    /// prefixes. The first installation that has everything wins.
    pub fn run(&self) -> Result<Found, Tried> {
        let mut attempts = Vec::new();
        if let Some(var) = &self.prefix_var {
            match env_var(var) {
                Some(dir) => {
                    let dir = PathBuf::from(dir);
                    let label = format!("{var}={}", dir.display());
                    let how = How::PrefixVar {
                        var: var.clone(),
                        dir: dir.clone(),
                    };
                    match self.probe_prefix(&dir, &label, how) {
                        Ok(found) => return Ok(found),
                        Err(e) => attempts.push(e),
                    }
                }
                None if self.report_unset => attempts.push(format!(
                    "{var} is not set (set it to a {} prefix with include/ and {}/ to use a specific {})",
                    self.library,
                    self.lib_subdirs.first().map_or("lib", String::as_str),
                    self.library
                )),
                None => {}
            }
        }
        if let Some(name) = &self.pkg_config {
            match self.probe_pkg_config(name) {
                Ok(found) => return Ok(found),
                Err(e) => attempts.push(e),
            }
        }
        for dir in &self.fallback_prefixes {
            let label = dir.display().to_string();
            match self.probe_prefix(dir, &label, How::Prefix(dir.clone())) {
                Ok(found) => return Ok(found),
                Err(e) => attempts.push(e),
            }
        }
        Err(Tried(Box::new(Report {
            crate_name: self.crate_name.clone(),
            library: self.library.clone(),
            what: self.what.clone(),
            min_version: self.min_version.clone(),
            attempts,
            fix: self.fix(),
        })))
    }

    /// Check the `(major, minor)` version read from the headers of `found`
    /// (by the build script, e.g. through the C preprocessor) against the
    /// version floor. `Err` is the message to panic with: that the version
    /// could not be read (`read` failed), or that it is older than the floor,
    /// `why` saying what older versions lack (e.g. `" (no *_nbx API)"`).
    pub fn check_version(
        &self,
        found: &Found,
        read: Result<(u32, u32), String>,
        why: &str,
    ) -> Result<(u32, u32), String> {
        let (crate_name, library, how) = (&self.crate_name, &self.library, found.describe());
        let (major, minor) = read.map_err(|e| {
            format!("{crate_name}: found {library} through {how} but cannot read its version: {e}")
        })?;
        match &self.min_version {
            Some(min) if !at_least(&format!("{major}.{minor}"), min) => {
                let mut point = Vec::new();
                if let Some(var) = &self.prefix_var {
                    point.push(var.as_str());
                }
                if self.pkg_config.is_some() {
                    point.push("PKG_CONFIG_PATH");
                }
                Err(format!(
                    "{crate_name}: {library} {major}.{minor} found through {how} is older than {min}{why}; \
                     install a newer {library} and point {} at it",
                    point.join(" or ")
                ))
            }
            _ => Ok((major, minor)),
        }
    }

    fn fix(&self) -> String {
        let mut ways = Vec::new();
        if !self.install_hint.is_empty() {
            ways.push(format!("install it ({})", self.install_hint));
        }
        if let Some(var) = &self.prefix_var {
            let first = |v: &[String]| v.first().cloned().unwrap_or_default();
            ways.push(format!(
                "set {var} to a {} prefix (include/{} + {}/{})",
                self.library,
                first(&self.headers),
                first(&self.lib_subdirs),
                first(&self.libs)
            ));
        }
        if let Some(name) = &self.pkg_config {
            ways.push(format!(
                "set PKG_CONFIG_PATH to the directory holding {name}.pc"
            ));
        }
        let mut fix = ways.join(", or ");
        fix.push('.');
        if let Some(extra) = &self.extra_hint {
            fix.push(' ');
            fix.push_str(extra);
        }
        fix
    }

    /// A prefix with every header under `include/` and a library file in a
    /// library subdirectory, at the version floor or newer.
    fn probe_prefix(&self, dir: &Path, label: &str, how: How) -> Result<Found, String> {
        let include = dir.join("include");
        for h in &self.headers {
            let header = include.join(h);
            if !header.is_file() {
                return Err(format!("{label}: {} not found", header.display()));
            }
        }
        let lib = self
            .lib_subdirs
            .iter()
            .map(|l| dir.join(l))
            .find(|l| self.libs.iter().any(|f| l.join(f).exists()));
        let Some(lib) = lib else {
            return Err(format!(
                "{label}: no {} in {}",
                self.libs.join(" or "),
                self.lib_subdirs
                    .iter()
                    .map(|l| format!("{l}/"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        };
        let version = self.header_version.and_then(|read| read(&include));
        if let (Some(v), Some(min)) = (&version, &self.min_version) {
            if !at_least(v, min) {
                return Err(format!("{label}: {} {v} is older than {min}", self.library));
            }
        }
        Ok(Found {
            include_paths: vec![include],
            lib_dirs: vec![lib],
            version,
            how,
        })
    }

    fn probe_pkg_config(&self, name: &str) -> Result<Found, String> {
        let mut config = pkg_config::Config::new();
        config
            .cargo_metadata(self.pkg_config_link)
            .env_metadata(true);
        let wanted = match &self.min_version {
            Some(min) => {
                config.atleast_version(min);
                format!("{name} >= {min}")
            }
            None => name.to_string(),
        };
        match config.probe(name) {
            Ok(lib) => Ok(Found {
                include_paths: lib.include_paths,
                lib_dirs: lib.link_paths,
                version: Some(lib.version.clone()),
                how: How::PkgConfig {
                    name: name.into(),
                    version: lib.version,
                },
            }),
            Err(e) => Err(format!(
                "pkg-config {wanted}: {e}\n   (set PKG_CONFIG_PATH to the directory holding {name}.pc to use a site {})",
                self.library
            )),
        }
    }
}

#[cfg(test)]
mod tests;
