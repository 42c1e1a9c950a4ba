//! Embed the run path to the UCX that `ucx-sys` linked, when it lies outside
//! the system library directories (see `sys/ucx-sys/build.rs`;
//! `UCX_SYS_NO_RPATH=1` turns it off).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_UCP_RPATH");
    let rpath = std::env::var_os("DEP_UCP_RPATH").unwrap_or_default();
    for dir in std::env::split_paths(&rpath).filter(|d| !d.as_os_str().is_empty()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
