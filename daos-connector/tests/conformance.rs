//! The proxy-core conformance suite, unchanged, against a real DAOS pool and
//! container (`PROXYSTORE_DAOS_POOL`, `PROXYSTORE_DAOS_CONT`; see the README).
//! Each case gets a fresh namespace; `cross_process_resolve`,
//! `shared_namespace` and `outlives_process` rebuild the connector in a
//! child process from its configuration.

mod common;

fn setup() -> daos_connector::DaosConnector {
    common::connector("conf")
}

/// With the DAOS headers found at build time: one test per case.
#[cfg(has_daos)]
mod suite {
    use super::setup;
    proxy_core::conformance_suite!(setup = setup, register = daos_connector::register);
}

/// Without them, one ignored test that runs every case (with
/// `--ignored`, against a DAOS whose libdaos is on the loader path).
#[cfg(not(has_daos))]
mod suite {
    use super::setup;
    use proxy_core::IntoDynConnector;
    use proxy_core::conformance::{CASES, Ctx, child_entry, run_case};

    #[test]
    #[ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR), and a running DAOS pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT)"]
    fn conformance_all_cases() {
        daos_connector::register();
        let mut failed = Vec::new();
        for case in CASES.iter().filter(|c| !c.opt_in) {
            let ctx = Ctx::new(setup().into_dyn(), "suite::conformance_child_entry");
            if let Err(m) = run_case(case, ctx) {
                failed.push(m);
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    #[ignore = "entry point of the conformance suite's child processes"]
    fn conformance_child_entry() {
        child_entry(daos_connector::register);
    }
}
