//! Embed the run path of UCX when it lies outside the system library
//! directories (`proxystore_sys_probe::forward_rpath`; `UCX_SYS_NO_RPATH=1`
//! turns it off), and emit the cfg
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
