//! The proxy-core conformance suite, unchanged, against a real DAOS with the
//! pydaos layout (objects as values of a PyDAOS dictionary): pool
//! `PROXYSTORE_DAOS_POOL`, container `PROXYSTORE_DAOS_PY_CONT` (type
//! PYTHON; default: `PROXYSTORE_DAOS_CONT`). Each case gets a fresh
//! namespace, so a fresh dictionary.

mod common;

fn setup() -> daos_connector::DaosConnector {
    daos_connector::DaosConnector::new(common::pydaos_options("pyconf"))
        .expect("connect to the test DAOS pool and PYTHON container")
}

#[cfg(has_daos)]
mod suite {
    use super::setup;
    proxy_core::conformance_suite!(setup = setup, register = daos_connector::register);
}

#[cfg(not(has_daos))]
mod suite {
    use super::setup;
    use proxy_core::IntoDynConnector;
    use proxy_core::conformance::{CASES, Ctx, child_entry, run_case};

    #[test]
    #[ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR), and a running DAOS pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_PY_CONT)"]
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
