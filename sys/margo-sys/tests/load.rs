//! Loading Margo at run time: it loads where it was found at build time, and
//! where it is missing the error says how to install it.

#[test]
fn loads_or_says_how_to_install() {
    match margo_sys::api() {
        Ok(api) => {
            let (major, minor, _) = api.mercury_version();
            assert!(major >= 2, "Mercury {major}.{minor} under Margo");
            assert_eq!(api.error_string(margo_sys::hg::TIMEOUT), "HG_TIMEOUT");
            assert_eq!(api.error_string(margo_sys::hg::SUCCESS), "HG_SUCCESS");
        }
        Err(e) => {
            let s = e.to_string();
            assert!(
                s.contains("spack install mochi-margo")
                    && s.contains("MARGO_DIR")
                    && s.contains("libmargo.so"),
                "{s}"
            );
            assert!(
                margo_sys::build_time_margo().is_none() || std::env::var_os("MARGO_DIR").is_some(),
                "Margo was found at build time ({:?}) but does not load: {s}",
                margo_sys::build_time_margo()
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and set MARGO_DIR or PKG_CONFIG_PATH"
)]
fn loads_the_margo_found_at_build_time() {
    let api = margo_sys::api().expect("Margo found at build time loads");
    assert!(margo_sys::build_time_margo().is_some());
    assert!(api.path().to_string_lossy().contains("libmargo"));
}
