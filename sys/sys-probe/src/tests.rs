//! Tests over real directories and the real pkg-config.
//!
//! A probe reads the process environment (the prefix variable,
//! `PKG_CONFIG_PATH`), which tests must not change while other test threads
//! run. The tests that need a variable set therefore run in a child process:
//! the parent builds the prefixes and `.pc` files in a temporary directory and
//! runs this test binary again with only its `child_*` test selected and the
//! environment set; the child probes and asserts, the parent asserts that the
//! child passed. The child tests are ignored in a plain run (they would see no
//! environment) and return at once when not started by their parent.

use super::*;
use std::fs;
use std::process::Command;

/// A directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = env::temp_dir().join(format!("sys-probe-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A prefix `root/name` with `include/fake/fake.h` (and `fake-version.h`
/// saying `version`, if given) and `lib_subdir/libfake.so` (if given).
fn prefix(root: &Path, name: &str, lib_subdir: Option<&str>, version: Option<&str>) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(dir.join("include/fake")).unwrap();
    fs::write(dir.join("include/fake/fake.h"), "int fake(void);\n").unwrap();
    if let Some(v) = version {
        fs::write(
            dir.join("include/fake-version.h"),
            format!("#define FAKE_VERSION \"{v}\"\n"),
        )
        .unwrap();
    }
    if let Some(sub) = lib_subdir {
        fs::create_dir_all(dir.join(sub)).unwrap();
        fs::write(dir.join(sub).join("libfake.so"), "").unwrap();
    }
    dir
}

/// `pcdir/fake.pc` for version `version`, installed in `prefix`.
fn pc_file(pcdir: &Path, version: &str, prefix: &Path) {
    fs::create_dir_all(pcdir).unwrap();
    fs::write(
        pcdir.join("fake.pc"),
        format!(
            "prefix={}\nincludedir=${{prefix}}/include\nlibdir=${{prefix}}/lib\n\n\
             Name: fake\nDescription: a test library\nVersion: {version}\n\
             Cflags: -I${{includedir}}\nLibs: -L${{libdir}} -lfake\n",
            prefix.display()
        ),
    )
    .unwrap();
}

fn read_fake_version(include: &Path) -> Option<String> {
    let text = fs::read_to_string(include.join("fake-version.h")).ok()?;
    let v = text.split('"').nth(1)?;
    Some(v.to_string())
}

/// The probe every test uses: `FAKE_DIR`, pkg-config `fake >= 2.0`, the
/// fallback prefixes given.
fn probe(fallbacks: &[&str]) -> Probe {
    Probe::new("fake-sys", "Fake", "headers and libfake")
        .prefix_var("SYS_PROBE_TEST_FAKE_DIR")
        .headers(&["fake/fake.h"])
        .libs(&["libfake.so", "libfake.a"])
        .pkg_config("fake")
        .pkg_config_link(false)
        .fallback_prefixes(fallbacks)
        .min_version("2.0")
        .header_version(read_fake_version)
        .install_hint("Debian: `apt-get install libfake-dev`; Spack: `spack install fake`")
        .extra_hint("bindgen also needs libclang.")
}

/// Run the ignored test `tests::{child}` of this binary in a child process
/// with `envs` set, pkg-config limited to `pcdir` (no system directories).
fn run_child(child: &str, pcdir: &Path, envs: &[(&str, String)]) {
    let mut cmd = Command::new(env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &format!("tests::{child}"),
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("SYS_PROBE_TEST_CHILD", "1")
    .env("PKG_CONFIG_PATH", pcdir)
    .env("PKG_CONFIG_LIBDIR", pcdir)
    .env_remove("SYS_PROBE_TEST_FAKE_DIR")
    .env_remove("TARGET");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {child} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In a child: the variable the parent passes, `None` when not a child.
fn child_var(name: &str) -> Option<PathBuf> {
    env::var_os("SYS_PROBE_TEST_CHILD")?;
    Some(PathBuf::from(
        env::var_os(name).expect("set by the parent test"),
    ))
}

#[test]
fn versions_compare_by_numeric_parts() {
    assert!(at_least("1.13.1", "1.10"));
    assert!(at_least("1.10", "1.10"));
    assert!(!at_least("1.9.9", "1.10"));
    assert!(at_least("0.24.0", "0.20"));
    assert!(!at_least("0.19.2", "0.20"));
    assert!(at_least("2.0rc1", "2.0"));
    assert!(!at_least("1", "1.0"));
}

#[test]
fn version_pair_is_read_from_tokens_across_line_markers() {
    let text = b"# 1 \"version.c\"\nint x;\nPS_MAJOR\n# 12 \"/usr/include/v.h\"\n 1\nPS_MINOR 17\n";
    assert_eq!(
        read_version_pair(text, "PS_MAJOR", "PS_MINOR", "v.h"),
        Ok((1, 17))
    );
    let err = read_version_pair(b"PS_MAJOR 1\n", "PS_MAJOR", "PS_MINOR", "v.h").unwrap_err();
    assert_eq!(err, "PS_MINOR not found in the preprocessed v.h");
    // A macro the header does not define stays a name: not a number.
    let err = read_version_pair(
        b"PS_MAJOR FI_MAJOR\nPS_MINOR 2",
        "PS_MAJOR",
        "PS_MINOR",
        "v.h",
    )
    .unwrap_err();
    assert!(err.starts_with("PS_MAJOR not found"), "{err}");
}

#[test]
fn fallback_prefixes_are_tried_in_order_and_each_failure_is_listed() {
    let t = TempDir::new("fallback");
    let no_header = t.0.join("empty");
    fs::create_dir_all(&no_header).unwrap();
    let no_lib = prefix(&t.0, "nolib", None, Some("2.1"));
    let good = prefix(&t.0, "good", Some("lib64"), Some("2.1"));
    let also_good = prefix(&t.0, "also", Some("lib"), Some("3.0"));
    let p = |d: &Path| d.to_str().unwrap().to_string();
    let prefixes = [p(&no_header), p(&no_lib), p(&good), p(&also_good)];
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let found = probe(&refs)
        .pkg_config_link(false)
        .run_without_env()
        .unwrap();
    assert_eq!(found.how, How::Prefix(good.clone()));
    assert_eq!(found.include_paths, vec![good.join("include")]);
    assert_eq!(found.lib_dirs, vec![good.join("lib64")]);
    assert_eq!(found.version.as_deref(), Some("2.1"));
    assert!(found.in_prefix());
    assert_eq!(
        found.lib_dir_holding("libfake.so"),
        Some(&*good.join("lib64"))
    );
    assert_eq!(found.lib_dir_holding("libother.so"), None);

    let tried = probe(&refs[..2]).run_without_env().unwrap_err();
    assert_eq!(
        tried.attempts(),
        [
            format!(
                "{}: {} not found",
                no_header.display(),
                no_header.join("include/fake/fake.h").display()
            ),
            format!(
                "{}: no libfake.so or libfake.a in lib/ or lib64/",
                no_lib.display()
            ),
        ]
    );
}

#[test]
fn prefix_older_than_the_floor_is_refused_with_its_version() {
    let t = TempDir::new("old");
    let old = prefix(&t.0, "old", Some("lib"), Some("1.9.3"));
    let unknown = prefix(&t.0, "unknown", Some("lib"), None);
    let tried = probe(&[old.to_str().unwrap()])
        .run_without_env()
        .unwrap_err();
    assert_eq!(
        tried.attempts(),
        [format!("{}: Fake 1.9.3 is older than 2.0", old.display())]
    );
    // No version header: the version is unknown, and the prefix accepted.
    let found = probe(&[old.to_str().unwrap(), unknown.to_str().unwrap()])
        .run_without_env()
        .unwrap();
    assert_eq!(found.how, How::Prefix(unknown));
    assert_eq!(found.version, None);
}

#[test]
fn header_version_is_checked_against_the_floor() {
    let t = TempDir::new("check");
    let dir = prefix(&t.0, "p", Some("lib"), None);
    let found = probe(&[dir.to_str().unwrap()]).run_without_env().unwrap();
    let p = probe(&[]);
    assert_eq!(p.check_version(&found, Ok((2, 0)), ""), Ok((2, 0)));
    assert_eq!(p.check_version(&found, Ok((10, 3)), ""), Ok((10, 3)));
    assert_eq!(
        p.check_version(&found, Ok((1, 9)), " (no fake API)"),
        Err(format!(
            "fake-sys: Fake 1.9 found through prefix {} is older than 2.0 (no fake API); \
             install a newer Fake and point SYS_PROBE_TEST_FAKE_DIR or PKG_CONFIG_PATH at it",
            dir.display()
        ))
    );
    assert_eq!(
        p.check_version(&found, Err("FAKE_MAJOR not found".into()), ""),
        Err(format!(
            "fake-sys: found Fake through prefix {} but cannot read its version: FAKE_MAJOR not found",
            dir.display()
        ))
    );
}

#[test]
fn report_lists_every_try_and_the_fix() {
    let tried = Tried(Box::new(Report {
        crate_name: "fake-sys".into(),
        library: "Fake".into(),
        what: "headers and libfake".into(),
        min_version: Some("2.0".into()),
        attempts: vec![
            "FAKE_DIR=/x: /x/include/fake.h not found".into(),
            "pkg-config fake >= 2.0: not found\n   (set PKG_CONFIG_PATH ...)".into(),
        ],
        fix: probe(&[]).fix(),
    }));
    assert_eq!(
        tried.to_string(),
        "\n\nfake-sys: could not find Fake >= 2.0 (headers and libfake). Tried:\n\
         \x20 1. FAKE_DIR=/x: /x/include/fake.h not found\n\
         \x20 2. pkg-config fake >= 2.0: not found\n   (set PKG_CONFIG_PATH ...)\n\
         \nFix: install it (Debian: `apt-get install libfake-dev`; Spack: `spack install fake`), \
         or set SYS_PROBE_TEST_FAKE_DIR to a Fake prefix (include/fake/fake.h + lib/libfake.so), \
         or set PKG_CONFIG_PATH to the directory holding fake.pc. bindgen also needs libclang.\n"
    );
    let line = tried.one_line();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with(
            "fake-sys: Fake >= 2.0 not found (headers and libfake); tried: \
             1. FAKE_DIR=/x: /x/include/fake.h not found; 2. pkg-config fake >= 2.0: not found (set"
        ),
        "{line}"
    );
    assert!(line.ends_with(tried.fix()), "{line}");
}

#[test]
fn prefix_variable_wins_over_pkg_config() {
    let t = TempDir::new("var-wins");
    let by_var = prefix(&t.0, "by-var", Some("lib"), Some("2.5"));
    let by_pc = prefix(&t.0, "by-pc", Some("lib"), Some("3.1"));
    pc_file(&t.0.join("pc"), "3.1", &by_pc);
    run_child(
        "child_prefix_variable_wins",
        &t.0.join("pc"),
        &[
            ("SYS_PROBE_TEST_FAKE_DIR", by_var.display().to_string()),
            ("SYS_PROBE_TEST_BY_VAR", by_var.display().to_string()),
            ("SYS_PROBE_TEST_BY_PC", by_pc.display().to_string()),
        ],
    );
}

#[test]
#[ignore = "run by prefix_variable_wins_over_pkg_config in a child process with its environment"]
fn child_prefix_variable_wins() {
    let Some(by_var) = child_var("SYS_PROBE_TEST_BY_VAR") else {
        return;
    };
    let by_pc = child_var("SYS_PROBE_TEST_BY_PC").unwrap();
    let found = probe(&[]).run().unwrap();
    assert_eq!(
        found.how,
        How::PrefixVar {
            var: "SYS_PROBE_TEST_FAKE_DIR".into(),
            dir: by_var.clone()
        }
    );
    assert_eq!(
        found.how.to_string(),
        format!("SYS_PROBE_TEST_FAKE_DIR={}", by_var.display())
    );
    assert_eq!(found.version.as_deref(), Some("2.5"));
    assert_eq!(found.lib_dirs, vec![by_var.join("lib")]);
    // Without the variable, pkg-config finds the other one.
    let found = probe(&[])
        .prefix_var("SYS_PROBE_TEST_UNSET_DIR")
        .run()
        .unwrap();
    assert_eq!(
        found.how,
        How::PkgConfig {
            name: "fake".into(),
            version: "3.1".into()
        }
    );
    assert_eq!(found.how.to_string(), "pkg-config fake");
    assert_eq!(found.describe(), "pkg-config fake 3.1");
    assert_eq!(found.include_paths, vec![by_pc.join("include")]);
    assert_eq!(
        found.lib_dir_holding("libfake.so"),
        Some(&*by_pc.join("lib"))
    );
    assert!(!found.in_prefix());
}

#[test]
fn pkg_config_below_the_floor_is_refused_with_the_found_version() {
    let t = TempDir::new("floor");
    let old = prefix(&t.0, "old", Some("lib"), Some("1.2.3"));
    pc_file(&t.0.join("pc"), "1.2.3", &old);
    run_child("child_pkg_config_floor", &t.0.join("pc"), &[]);
}

#[test]
#[ignore = "run by pkg_config_below_the_floor_is_refused_with_the_found_version in a child process with its environment"]
fn child_pkg_config_floor() {
    if env::var_os("SYS_PROBE_TEST_CHILD").is_none() {
        return;
    }
    let tried = probe(&[]).run().unwrap_err();
    let [unset, pc] = tried.attempts() else {
        panic!("two attempts expected: {tried}");
    };
    assert!(
        unset.starts_with("SYS_PROBE_TEST_FAKE_DIR is not set"),
        "{unset}"
    );
    assert!(pc.starts_with("pkg-config fake >= 2.0: "), "{pc}");
    assert!(pc.contains("1.2.3"), "the found version is named: {pc}");
    assert!(
        pc.ends_with("(set PKG_CONFIG_PATH to the directory holding fake.pc to use a site Fake)"),
        "{pc}"
    );
    // Without a floor the same installation is taken.
    let mut no_floor = probe(&[]);
    no_floor.min_version = None;
    assert_eq!(no_floor.run().unwrap().version.as_deref(), Some("1.2.3"));
}

#[test]
fn missing_everywhere_lists_each_try_in_order() {
    let t = TempDir::new("missing");
    let pcdir = t.0.join("pc");
    fs::create_dir_all(&pcdir).unwrap();
    let nothing = t.0.join("nothing");
    run_child(
        "child_missing",
        &pcdir,
        &[
            ("SYS_PROBE_TEST_FAKE_DIR", nothing.display().to_string()),
            ("SYS_PROBE_TEST_NOTHING", nothing.display().to_string()),
        ],
    );
}

#[test]
#[ignore = "run by missing_everywhere_lists_each_try_in_order in a child process with its environment"]
fn child_missing() {
    let Some(nothing) = child_var("SYS_PROBE_TEST_NOTHING") else {
        return;
    };
    let tried = probe(&["/nonexistent-sys-probe-prefix"]).run().unwrap_err();
    let attempts = tried.attempts();
    assert_eq!(attempts.len(), 3, "{tried}");
    assert_eq!(
        attempts[0],
        format!(
            "SYS_PROBE_TEST_FAKE_DIR={}: {} not found",
            nothing.display(),
            nothing.join("include/fake/fake.h").display()
        )
    );
    assert!(
        attempts[1].starts_with("pkg-config fake >= 2.0: "),
        "{}",
        attempts[1]
    );
    assert!(attempts[1].contains("fake"), "{}", attempts[1]);
    assert_eq!(
        attempts[2],
        "/nonexistent-sys-probe-prefix: /nonexistent-sys-probe-prefix/include/fake/fake.h not found"
    );
    let text = tried.to_string();
    for (i, a) in attempts.iter().enumerate() {
        assert!(text.contains(&format!("  {}. {a}\n", i + 1)), "{text}");
    }
    assert!(text.contains("`apt-get install libfake-dev`"), "{text}");
    // With the variable unset, the report says so and names it.
    let tried = probe(&[])
        .prefix_var("SYS_PROBE_TEST_UNSET_DIR")
        .run()
        .unwrap_err();
    assert_eq!(
        tried.attempts()[0],
        "SYS_PROBE_TEST_UNSET_DIR is not set (set it to a Fake prefix with include/ and lib/ to use a specific Fake)"
    );
    let quiet = probe(&[])
        .prefix_var("SYS_PROBE_TEST_UNSET_DIR")
        .report_unset_var(false)
        .run()
        .unwrap_err();
    assert_eq!(quiet.attempts().len(), 1, "{quiet}");
}

impl Probe {
    /// [`Probe::run`] without the prefix variable and pkg-config: only the
    /// fallback prefixes, which need no environment.
    fn run_without_env(self) -> Result<Found, Tried> {
        Probe {
            prefix_var: None,
            pkg_config: None,
            ..self
        }
        .run()
    }
}
