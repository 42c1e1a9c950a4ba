//! Embed the run paths of UCX and libfabric when they lie outside the system
//! library directories (`proxystore_sys_probe::forward_rpath`; opt-outs
//! `UCX_SYS_NO_RPATH=1`, `LIBFABRIC_SYS_NO_RPATH=1`), and emit the cfg
//! `has_margo` when `margo-sys` found Margo at build time
//! (`DEP_MARGO_FOUND=1`): the tests that read over Margo run only then, and
//! are ignored with a reason naming it otherwise.
fn main() {
    proxystore_sys_probe::forward_rpath();
    println!("cargo::rustc-check-cfg=cfg(has_margo)");
    println!("cargo:rerun-if-env-changed=DEP_MARGO_FOUND");
    if std::env::var("DEP_MARGO_FOUND").as_deref() == Ok("1") {
        println!("cargo:rustc-cfg=has_margo");
    }
}
