//! Embed the run paths of the native libraries this crate links (UCX,
//! libfabric) when they lie outside the system library directories
//! (`proxystore_sys_probe::forward_rpath`; `UCX_SYS_NO_RPATH=1` and
//! `LIBFABRIC_SYS_NO_RPATH=1` turn them off).
fn main() {
    proxystore_sys_probe::forward_rpath();
}
