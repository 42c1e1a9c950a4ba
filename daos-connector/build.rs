//! Sets the `has_daos` cfg when `daos-sys` found the DAOS headers at build
//! time: the tests that need a real DAOS then run, otherwise they are
//! ignored with a message naming DAOS as missing.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_daos)");
    println!("cargo::rerun-if-env-changed=DEP_DAOS_FOUND");
    if std::env::var("DEP_DAOS_FOUND").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=has_daos");
    }
}
