//! What the CLI loads when it starts: no libfabric (and so none of the
//! provider libraries whose constructors cost ~100 ms each) unless a
//! libfabric store is opened.

use std::process::Command;

fn needed(bin: &str) -> String {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    assert!(out.status.success(), "ldd {bin}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn libfabric_is_not_linked() {
    let libs = needed(env!("CARGO_BIN_EXE_proxystore"));
    // Something is linked (the check would pass on an empty list otherwise).
    assert!(libs.contains("libc.so"), "{libs}");
    assert!(
        !libs.contains("libfabric"),
        "the CLI links libfabric:\n{libs}"
    );
    assert!(
        !libs.contains("libpsm"),
        "the CLI links a PSM library:\n{libs}"
    );
}

#[test]
fn a_file_store_never_loads_libfabric() {
    let dir = std::env::temp_dir().join(format!("ps-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in");
    std::fs::write(&input, b"hello").unwrap();
    // `strace`-free check: the dynamic linker's own trace of what it loads.
    let out = Command::new(env!("CARGO_BIN_EXE_proxystore"))
        .args([
            "--store",
            &format!("file://{}", dir.join("store").display()),
        ])
        .args(["put", input.to_str().unwrap()])
        .env("LD_DEBUG", "files")
        .output()
        .expect("run proxystore put");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{out:?}");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(trace.contains("libc.so"), "no loader trace: {trace}");
    assert!(
        !trace.contains("libfabric"),
        "a file store loaded libfabric:\n{trace}"
    );
}

#[test]
fn resolve_timing_line() {
    let dir = std::env::temp_dir().join(format!("ps-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in");
    std::fs::write(&input, vec![7u8; 3000]).unwrap();
    let store = format!("file://{}", dir.join("store").display());
    let put = Command::new(env!("CARGO_BIN_EXE_proxystore"))
        .args([
            "--store",
            &store,
            "put",
            input.to_str().unwrap(),
            "--print",
            "proxy",
        ])
        .output()
        .unwrap();
    assert!(put.status.success(), "{put:?}");
    let proxy = String::from_utf8(put.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proxystore"))
        .args(["resolve", proxy.trim(), "--output", "/dev/null", "--timing"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let line = err
        .lines()
        .find(|l| l.starts_with("resolve_us "))
        .expect("timing line");
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w.len(), 4, "{line}");
    assert!(w[1].parse::<f64>().unwrap() > 0.0, "{line}");
    assert_eq!((w[2], w[3]), ("bytes", "3000"), "{line}");
}
