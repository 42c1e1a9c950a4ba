//! - The shared library's SONAME: `libproxystore.so.0.MINOR` before 1.0 (a
//!   new minor version may change the ABI), `libproxystore.so.MAJOR` after;
//!   `scripts/install-capi.sh` installs the file under that name's links.
//! - The run path of the UCX this crate links when it lies outside the
//!   system library directories (`proxystore_sys_probe::forward_rpath`;
//!   `UCX_SYS_NO_RPATH=1` turns it off).
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libproxystore.so.{abi}");
    proxystore_sys_probe::forward_rpath();
}
