//! The committed header `include/proxystore.h` is what cbindgen generates from
//! the current source (regenerate with `PROXYSTORE_BLESS=1 cargo test -p
//! proxystore-capi --test header`).

use std::path::PathBuf;

#[test]
fn header_is_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    assert!(
        generated.contains("ps_status ps_proxy_resolve("),
        "{generated}"
    );
    let path = dir.join("include/proxystore.h");
    if std::env::var_os("PROXYSTORE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with PROXYSTORE_BLESS=1 cargo test -p proxystore-capi --test header",
        path.display()
    );
}
