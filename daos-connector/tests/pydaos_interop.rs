//! The Python ProxyStore's DAOS connector (`proxystore_ex.connectors.daos.
//! DAOSConnector`, over pydaos) and ours, with the pydaos layout, read each
//! other's objects in one PyDAOS dictionary, whichever side creates it;
//! each side's evict is seen by the other.
//!
//! Needs, besides a running DAOS (see `common`): Python 3 with pydaos (from
//! the DAOS build: `$DAOS_DIR/lib64/python3.X/site-packages`, put on
//! `PYTHONPATH` by this test) and the packages of `tests/pydaos/
//! requirements.txt`. `PROXYSTORE_DAOS_PYTHON` names such an interpreter;
//! without it the test makes a virtual environment under the target
//! directory and installs them from PyPI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use daos_connector::DaosConnector;
use proxy_core::conformance::pattern;
use proxy_core::{Connector, Payload};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pydaos/peer.py");
const REQUIREMENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pydaos/requirements.txt");

/// Sizes that cover one byte, pydaos's 1 MiB first-read buffer (below, at
/// and above it) and a value of several MiB.
const SIZES: &[usize] = &[1, 1000, (1 << 20) - 1, 1 << 20, (1 << 20) + 3, 5 << 20];

/// A Python with proxystore_ex importable (pydaos comes from `PYTHONPATH`).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PROXYSTORE_DAOS_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pydaos-venv");
    let py = venv.join("bin/python");
    let stamp = venv.join("requirements.txt");
    let want = std::fs::read_to_string(REQUIREMENTS).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let run = |c: &mut Command| {
            let out = c.output().unwrap();
            assert!(
                out.status.success(),
                "{c:?} failed (set PROXYSTORE_DAOS_PYTHON to a Python with the packages of \
                 {REQUIREMENTS} to skip this step): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(&py)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(REQUIREMENTS));
        std::fs::write(&stamp, want).unwrap();
    }
    py
}

/// `$DAOS_DIR/lib64/python3.X/site-packages` for the interpreter's 3.X.
fn pydaos_path(py: &Path) -> String {
    let out = Command::new(py)
        .args([
            "-c",
            "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')",
        ])
        .output()
        .unwrap();
    let ver = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let dir = std::env::var("DAOS_DIR").expect("DAOS_DIR (the DAOS prefix, for its pydaos)");
    let site = Path::new(&dir)
        .join("lib64")
        .join(&ver)
        .join("site-packages");
    assert!(
        site.join("pydaos").is_dir(),
        "no pydaos in {} (DAOS builds it for the Python it was built with)",
        site.display()
    );
    site.display().to_string()
}

/// Run the Python peer; its result (the JSON of its one `RESULT` line:
/// libdaos may print other lines on the same standard output).
fn peer(args: &[&str]) -> serde_json::Value {
    let py = python();
    let out = Command::new(&py)
        .arg(PEER)
        .args(args)
        .env("PYTHONPATH", pydaos_path(&py))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "peer.py {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    result_line(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("peer.py {args:?}: {e}"))
}

/// The JSON of the one line `RESULT <json>` of `stdout`, whatever else it
/// holds.
fn result_line(stdout: &str) -> Result<serde_json::Value, String> {
    let mut found = stdout.lines().filter_map(|l| l.strip_prefix("RESULT "));
    let (Some(json), None) = (found.next(), found.next()) else {
        return Err(format!(
            "not exactly one RESULT line in its output:\n{stdout}"
        ));
    };
    serde_json::from_str(json).map_err(|e| format!("bad RESULT line {json:?}: {e}"))
}

#[test]
fn the_result_line_is_found_among_other_output() {
    let out = "libdaos: cannot raise the open-file limit\nRESULT {\"exists\": true}\n";
    assert_eq!(
        result_line(out).unwrap(),
        serde_json::json!({"exists": true})
    );
    assert!(result_line("True\n").is_err());
    assert!(result_line("RESULT {}\nRESULT {}\n").is_err());
    assert!(result_line("RESULT {not json\n").is_err());
}

fn scratch(tag: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(common::fresh_namespace(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Our objects, read by the Python connector: byte for byte.
fn python_reads_ours(c: &DaosConnector) -> Vec<String> {
    let o = c.options();
    let mut entries = Vec::new();
    for (i, &n) in SIZES.iter().enumerate() {
        let key = c.put(Payload::from(pattern(n, i as u8))).unwrap();
        let text = c.key_to_string(&key).unwrap();
        // daos:POOL/CONT/NS/ENTRY:LEN
        let entry = text.rsplit('/').next().unwrap();
        let (entry, len) = entry.rsplit_once(':').unwrap();
        assert_eq!(len, n.to_string());
        entries.push(entry.to_string());
    }
    let dir = scratch("py-get");
    let mut args = vec![
        "get",
        &o.pool,
        &o.container,
        &o.namespace,
        dir.to_str().unwrap(),
    ];
    args.extend(entries.iter().map(String::as_str));
    let out = peer(&args);
    assert_eq!(
        out["missing"],
        serde_json::json!([]),
        "the Python connector missed some"
    );
    for (i, &n) in SIZES.iter().enumerate() {
        let got = std::fs::read(dir.join(i.to_string())).unwrap();
        assert_eq!(got.len(), n, "object {i}");
        assert!(
            got == pattern(n, i as u8),
            "object {i} ({n} bytes) differs as read by the Python connector"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
    entries
}

/// The Python connector's objects, read by ours: byte for byte.
fn we_read_pythons(c: &DaosConnector) -> Vec<proxy_core::Key> {
    let o = c.options();
    let dir = scratch("py-put");
    for (i, &n) in SIZES.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:02}")), pattern(n, 100 + i as u8)).unwrap();
    }
    let out = peer(&[
        "put",
        &o.pool,
        &o.container,
        &o.namespace,
        dir.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(dir).unwrap();
    let pairs = out["keys"].as_array().expect("a list of keys");
    assert_eq!(pairs.len(), SIZES.len(), "{out}");
    let mut keys = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let (Some(name), Some(dict_key)) = (pair[0].as_str(), pair[1].as_str()) else {
            panic!("not a [name, key] pair: {pair}");
        };
        assert_eq!(name, format!("{i:02}"));
        // The Python key's four fields, as our text form (no length).
        let text = format!("daos:{}/{}/{}/{dict_key}", o.pool, o.container, o.namespace);
        let key = c.parse_key(&text).unwrap();
        assert!(c.exists(&key).unwrap());
        keys.push(key);
    }
    // One batch (sizes probed, values read with many in flight), then one
    // by one.
    let got = c.get_batch(&keys).unwrap();
    for (i, (&n, v)) in SIZES.iter().zip(&got).enumerate() {
        let v = v.as_ref().unwrap_or_else(|| panic!("object {i} missing"));
        assert!(
            v[..] == pattern(n, 100 + i as u8)[..],
            "object {i} ({n} bytes) differs as read by ours"
        );
        assert_eq!(c.get(&keys[i]).unwrap().as_deref(), Some(&v[..]));
    }
    keys
}

fn evicts_cross(c: &DaosConnector, ours: &[String], theirs: &[proxy_core::Key]) {
    let o = c.options();
    // Python evicts one of ours: we see it gone.
    peer(&["evict", &o.pool, &o.container, &o.namespace, &ours[0]]);
    let text = format!(
        "daos:{}/{}/{}/{}",
        o.pool, o.container, o.namespace, ours[0]
    );
    let k = c.parse_key(&text).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    assert!(!c.exists(&k).unwrap());
    // We evict one of Python's: it sees it gone.
    c.evict(&theirs[1]).unwrap();
    assert_eq!(c.get(&theirs[1]).unwrap(), None);
    let entry = c.key_to_string(&theirs[1]).unwrap();
    let entry = entry.rsplit('/').next().unwrap();
    let out = peer(&["exists", &o.pool, &o.container, &o.namespace, entry]);
    assert_eq!(out["exists"], false);
    let out = peer(&["exists", &o.pool, &o.container, &o.namespace, &ours[1]]);
    assert_eq!(out["exists"], true);
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR), a running DAOS pool + PYTHON container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_PY_CONT) and pydaos"
)]
fn python_proxystore_and_ours_read_each_others_objects_we_create_the_dictionary() {
    let c = DaosConnector::new(common::pydaos_options("interop-rs")).unwrap();
    let ours = python_reads_ours(&c);
    let theirs = we_read_pythons(&c);
    evicts_cross(&c, &ours, &theirs);
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR), a running DAOS pool + PYTHON container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_PY_CONT) and pydaos"
)]
fn python_proxystore_and_ours_read_each_others_objects_python_creates_the_dictionary() {
    let opts = common::pydaos_options("interop-py");
    // The Python connector creates the dictionary (its first use of the
    // namespace); ours then finds it through the container's root object.
    let out = peer(&[
        "exists",
        &opts.pool,
        &opts.container,
        &opts.namespace,
        "nothing-yet",
    ]);
    assert_eq!(out["exists"], false);
    let c = DaosConnector::new(opts).unwrap();
    let theirs = we_read_pythons(&c);
    let ours = python_reads_ours(&c);
    evicts_cross(&c, &ours, &theirs);
}
