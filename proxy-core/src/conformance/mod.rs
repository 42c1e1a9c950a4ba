//! The connector conformance suite: the behaviour every [`Connector`](crate::Connector) must
//! show, run unchanged by each connector's tests (in this repository and
//! outside it).
//!
//! # Use
//!
//! Through [`conformance_suite!`](crate::conformance_suite), which expands to
//! one `#[test]` per case in the current module:
//!
//! ```ignore
//! fn setup() -> MyConnector { MyConnector::new(/* a fresh namespace */).unwrap() }
//! proxy_core::conformance_suite!(setup = setup, register = my_connector::register);
//! // optional: what is left of a case's namespace after close (empty when torn down)
//! // proxy_core::conformance_suite!(setup = setup, register = ..., leftovers = list_left);
//! // optional: every case ignored with a reason (a suite that needs hardware a host
//! // may lack, run with `-- --ignored` where it has it)
//! // proxy_core::conformance_suite!(setup = setup, register = ..., ignore = "needs ...");
//! ```
//!
//! - `setup` runs once per case (cases run in parallel threads) and returns a
//!   connector over a *fresh namespace* (directory, key prefix, server). Make
//!   it one that `close` tears down (e.g. a `clear` option), or each case
//!   leaves an empty namespace behind.
//! - `register` makes every connector kind the configuration needs
//!   rebuildable (it calls
//!   [`registry::register_connector`](crate::registry::register_connector)).
//!   It runs in the test process and in child processes: the cross-process
//!   cases re-run the test binary as a child (the generated
//!   `conformance_child_entry`, an ignored test that only such a child runs)
//!   which rebuilds the connector from its configuration.
//! - `leftovers` (optional), `fn(&ConnectorConfig) -> Vec<String>`: what
//!   remains of the namespace after the case closed its connector (files,
//!   server keys); the case fails unless it is empty.
//!
//! Every case ends the same way (see [`run_case`]): `close()` twice (both
//! `Ok`), no file descriptor of the process left open at or under an absolute
//! path of the configuration (Linux), then every operation once more (each must return within two minutes
//! and behave as [`Connector::close`](crate::Connector::close) documents), then no object stored
//! through the connector during the case may remain.
//!
//! Cases write real data: `large_object` 256 MiB, `deferrable_set_atomic`
//! 2 (up to 40) x 32 MiB, `concurrent_instances` 36 MiB; the opt-in
//! `huge_object` (ignored unless run with `cargo test huge_object --
//! --ignored`) writes one object over 4 GiB, for 32-bit length framing.
//!
//! Differences between connectors come from [`Capabilities`](crate::Capabilities) and
//! [`Connector::as_deferrable`](crate::Connector::as_deferrable) and are checked, not skipped: e.g. a connector
//! without `cross_process` must make the child's resolve fail with a clear
//! error (not hang, not panic).
//!
//! # Cases as functions
//!
//! Each case is a public function of a [`Ctx`] that panics on failure, listed
//! in [`CASES`]; [`run_case`] runs one with the end-of-case checks and returns
//! the failure as an `Err`. This is how a test shows that a deliberately broken
//! connector is caught:
//!
//! ```ignore
//! let ctx = Ctx::new(Arc::new(Broken::new()), "conformance_child_entry");
//! assert!(run_case(case("shared_namespace").unwrap(), ctx).is_err());
//! ```
//!
//! # Layout
//!
//! This file holds the entry points ([`Case`], [`CASES`], [`Ctx`] and the
//! macros); `ctx.rs` the context and the recorder of minted keys, `run.rs`
//! [`run_case`], `finish.rs` the end-of-case checks (close, descriptors,
//! operations after close, leftovers), `data.rs` the objects the cases write,
//! `child.rs` the child side of the cross-process cases, and `cases/` the
//! cases by area (basic, batches, keys, limits, store, notify, deferrable,
//! processes).
//!
//! The suite is not part of the stable API.

mod cases;
mod child;
mod ctx;
mod data;
mod finish;
mod huge_pages;
mod run;

pub use cases::*;
pub use child::child_entry;
pub use ctx::Ctx;
pub use data::{assert_repeated, pattern, repeated};
pub use huge_pages::HugePagePool;
pub use run::{run_case, run_test};

use crate::connector::ConnectorConfig;

/// Environment variable carrying a task to the child process.
pub const CHILD_ENV: &str = "PROXYSTORE_CONFORMANCE_CHILD";
const RESULT_TAG: &str = "@@proxystore-conformance:";

/// What remains of a namespace after its connector was closed (see the module
/// docs): file names, server keys. Empty when the namespace is torn down.
pub type Leftovers = fn(&ConnectorConfig) -> Vec<String>;

/// One case of the suite.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Its name (also the name of its `#[test]`).
    pub name: &'static str,
    /// The case: panics on failure.
    pub run: fn(&Ctx),
    /// Opt-in (an ignored test): too heavy for every run.
    pub opt_in: bool,
}

/// The case called `name`.
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

macro_rules! case_table {
    (cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        /// Every case, in the order the suite lists them.
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($name), run: $name, opt_in: false },)*
            $(Case { name: stringify!($opt), run: $opt, opt_in: true },)*
        ];
    };
}
crate::__conformance_for_each_case!(case_table);

/// Calls `$cb! { cases: ...; opt_in: ... }` with the names of every case: the
/// one list behind [`CASES`] and the tests [`conformance_suite!`](crate::conformance_suite) generates.
#[macro_export]
#[doc(hidden)]
macro_rules! __conformance_for_each_case {
    (@list [$($cb:tt)*] [$($prefix:tt)*]) => {
        $($cb)*! {
            $($prefix)*
            cases:
                put_get_roundtrip,
                missing_key,
                batch_order,
                get_batch_duplicates,
                empty_object,
                large_object,
                too_large,
                concurrent_threads,
                key_and_config_serde,
                kind_and_config,
                bad_keys,
                never_stored_key,
                foreign_keys,
                shared_namespace,
                concurrent_instances,
                wait_for_timeout,
                wait_for_wakes,
                outlives_process,
                deferrable_set_atomic,
                set_replaces,
                store_bad_objects,
                store_and_proxy,
                cross_process_resolve;
            opt_in:
                huge_object,
        }
    };
    // `[callback] prefix...`: the prefix goes before `cases:`.
    ([$($cb:tt)*] $($prefix:tt)*) => {
        $crate::__conformance_for_each_case!(@list [$($cb)*] [$($prefix)*]);
    };
    ($($cb:tt)*) => {
        $crate::__conformance_for_each_case!(@list [$($cb)*] []);
    };
}

/// One `#[test]` per case (used by [`conformance_suite!`](crate::conformance_suite)).
#[macro_export]
#[doc(hidden)]
macro_rules! __conformance_cases {
    // Every case ignored with `reason` (a suite that needs what a host may lack).
    (ignore = $reason:literal; cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $reason]
            fn $name() {
                $crate::conformance::run_test(stringify!($name), __conformance_ctx);
            }
        )*
        $(
            #[test]
            #[ignore = "opt-in conformance case: run with `cargo test <name> -- --ignored`"]
            fn $opt() {
                $crate::conformance::run_test(stringify!($opt), __conformance_ctx);
            }
        )*
    };
    (cases: $($name:ident),* ; opt_in: $($opt:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::run_test(stringify!($name), __conformance_ctx);
            }
        )*
        $(
            #[test]
            #[ignore = "opt-in conformance case: run with `cargo test <name> -- --ignored`"]
            fn $opt() {
                $crate::conformance::run_test(stringify!($opt), __conformance_ctx);
            }
        )*
    };
}

/// Expand the conformance suite into `#[test]`s in the current module.
///
/// `setup` is a function (or closure) returning a connector (owned or
/// `Arc<dyn Connector>`) over a fresh namespace, called once per case;
/// `register` is a `fn()` registering every connector kind a child process
/// needs; the optional `leftovers` is a
/// [`Leftovers`](crate::conformance::Leftovers) hook; the optional `ignore`
/// (a string literal) marks every case `#[ignore = ...]` with that reason, for
/// a suite that needs what not every host has (an RDMA device), run with
/// `-- --ignored` where it is. See the [module docs](crate::conformance).
///
/// It also generates `conformance_child_entry`, an ignored test that only the
/// suite's child processes run.
#[macro_export]
macro_rules! conformance_suite {
    (setup = $setup:expr, register = $register:expr $(, leftovers = $leftovers:expr)?
     $(, ignore = $reason:literal)? $(,)?) => {
        fn __conformance_ctx() -> $crate::conformance::Ctx {
            ($register)();
            let path = module_path!();
            let child = match path.split_once("::") {
                Some((_, rest)) => format!("{rest}::conformance_child_entry"),
                None => "conformance_child_entry".to_string(),
            };
            $crate::conformance::Ctx::new($crate::IntoDynConnector::into_dyn(($setup)()), child)
                $(.with_leftovers($leftovers))?
        }

        /// Child side of the cross-process cases (run only by them).
        #[test]
        #[ignore = "entry point of the conformance suite's child processes"]
        fn conformance_child_entry() {
            $crate::conformance::child_entry($register);
        }

        $crate::__conformance_for_each_case!([$crate::__conformance_cases] $(ignore = $reason;)?);
    };
}
