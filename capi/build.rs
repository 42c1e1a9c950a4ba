//! The shared library's SONAME: `libproxystore.so.0.MINOR` before 1.0 (a new
//! minor version may change the ABI), `libproxystore.so.MAJOR` after;
//! `scripts/install-capi.sh` installs the file under that name's links.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libproxystore.so.{abi}");
}
