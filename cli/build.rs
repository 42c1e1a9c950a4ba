//! Embed the run path of the UCX this crate links when it lies outside the
//! system library directories (`proxystore_sys_probe::forward_rpath`;
//! `UCX_SYS_NO_RPATH=1` turns it off).
fn main() {
    proxystore_sys_probe::forward_rpath();
}
