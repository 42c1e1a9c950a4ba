//! The shared test kit of the transports (cargo feature `testkit`, off by
//! default; for the tests of the connector crates, not for applications).
//!
//! The UCX, libfabric and Margo connectors are all an [`ObjectClient`] over
//! their [`ClientTransport`], talking to their own server program, so one set
//! of tests serves them all. A connector crate describes its fabric in a few
//! lines (a [`Fabric`]: the server program, the arguments that select a
//! fabric, a client configuration), then instantiates the tests:
//!
//! ```ignore
//! struct UcxTests;
//! impl object_server::testkit::Fabric for UcxTests {
//!     type Transport = ucx_connector::Ucx;
//!     const SERVER_BIN: &'static str = env!("CARGO_BIN_EXE_proxystore-ucx-server");
//!     fn server_args(tls: &str) -> Vec<String> { vec!["--tls".into(), tls.into()] }
//!     fn config(addr: &str, tls: &str) -> ucx_connector::UcxConfig {
//!         ucx_connector::UcxConfig::new(addr).with_ucx_tls(tls)
//!     }
//! }
//! object_server::testkit::transport_tests!(
//!     UcxTests; shm, "shm,cma,self", DataPath::Auto, zero_copy = true, one_sided = true
//! );
//! ```
//!
//! which gives the tests `shm::roundtrip`, `shm::killed_server`, ... against
//! real server processes ([`ServerProcess`]). The pieces:
//! - [`ServerProcess`]: a server program started for a test (waits for its
//!   `LISTEN` line), frozen, thawed, killed, restarted, stopped on drop;
//! - [`WithServer`]: a connector that keeps its server process alive (the
//!   conformance suite's `setup`, [`conformance_setup`]), and what its server
//!   still holds after a case ([`server_leftovers`], the suite's `leftovers`
//!   hook);
//! - the test bodies ([`roundtrip`], [`restart`], [`killed_server`], ...)
//!   generic over the [`Fabric`], and [`transport_tests!`] that makes one
//!   module of `#[test]`s of them per fabric and data path;
//! - [`access`]: the read-only check of a reader's descriptor.

pub mod access;
mod bodies;
mod cancel;
mod huge_pages;
mod leftovers;
mod process;
mod remote;
mod with_server;

pub use bodies::*;
pub use cancel::timed_out_get_keeps_its_buffer;
pub use huge_pages::huge_page_segments;
pub use leftovers::{partial_batch_is_caught, server_leftovers};
pub use process::ServerProcess;
pub use remote::{remote_addr, remote_client, remote_gets_are_one_sided};
pub use with_server::{WithServer, conformance_setup};

#[doc(inline)]
pub use crate::__testkit_cross_node_tests as cross_node_tests;
#[doc(inline)]
pub use crate::__testkit_transport_tests as transport_tests;

use crate::{ClientTransport, ObjectClient};

/// What the kit needs to know of one connector crate.
pub trait Fabric: 'static {
    /// The client side of the fabric.
    type Transport: ClientTransport;
    /// The server program: the test crate's
    /// `env!("CARGO_BIN_EXE_proxystore-...-server")`.
    const SERVER_BIN: &'static str;
    /// Put/evict cycles of the `put_evict_cycles` test.
    const CYCLES: usize = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    /// Objects (count, size in bytes) read in batches while the server is
    /// killed (`killed_server`): batches must take long enough that the kill
    /// lands in one.
    const KILLED_SERVER_OBJECTS: (usize, usize) = (50, 200_000);

    /// Server arguments that select `fabric` (e.g. `--tls shm,cma,self`).
    fn server_args(fabric: &str) -> Vec<String>;
    /// A client configuration for the server at `addr` over `fabric`, all
    /// else default.
    fn config(addr: &str, fabric: &str) -> <Self::Transport as ClientTransport>::Config;

    /// The one-sided reads `c`'s transport has started so far, where the
    /// transport counts them (`None`: it does not). With a count, the kit
    /// checks that gets with zero copy off were served by the fabric (the
    /// count grew by at least one per object read) and that mapped gets were
    /// not (it stayed put): [`data_path`], [`WithServer`]'s gets.
    fn fabric_reads(_c: &Client<Self>) -> Option<u64> {
        None
    }
}

/// The connector of fabric `F`.
pub type Client<F> = ObjectClient<<F as Fabric>::Transport>;

/// A recognisable byte pattern of `len` bytes (another `seed`, other bytes).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// One `#[test]` module per fabric and mode: `roundtrip`,
/// `evicted_then_reused`, `batches`, `bad_keys`, `random_keys`,
/// `memory_limit`, `restart`, `killed_server`, `many_threads`,
/// `zero_copy_outlives`, `put_evict_cycles` and `data_path`, each running the
/// body of that name in [`testkit`](crate::testkit).
///
/// `transport_tests!(Kit; #[attrs] name, fabric, data_path, [zero_copy = bool,] one_sided = bool)`:
/// `Kit` is the crate's [`Fabric`](crate::testkit::Fabric), the attributes go
/// on every test (e.g. an `ignore` with its reason), `fabric` is what the
/// server and the client are started with; without `zero_copy` the client
/// keeps its default and the tests assert nothing about mapping.
#[doc(hidden)]
#[macro_export]
macro_rules! __testkit_transport_tests {
    ($kit:ty; $(#[$attr:meta])* $name:ident, $fabric:expr, $path:expr, $(zero_copy = $zc:expr,)? one_sided = $one_sided:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn mode() -> $crate::testkit::Mode {
                let zero_copy: ::std::option::Option<bool> = None $(.or(Some($zc)))?;
                $crate::testkit::Mode { path: $path, zero_copy }
            }
            #[test]
            $(#[$attr])*
            fn roundtrip() {
                $crate::testkit::roundtrip::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn evicted_then_reused() {
                $crate::testkit::evicted_then_reused::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn batches() {
                $crate::testkit::batches::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn bad_keys() {
                $crate::testkit::bad_keys::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn random_keys() {
                $crate::testkit::random_keys::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn memory_limit() {
                $crate::testkit::memory_limit::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn restart() {
                $crate::testkit::restart::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn killed_server() {
                $crate::testkit::killed_server::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn many_threads() {
                $crate::testkit::many_threads::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn zero_copy_outlives() {
                $crate::testkit::zero_copy_outlives::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn put_evict_cycles() {
                $crate::testkit::put_evict_cycles::<$kit>($fabric, mode())
            }
            #[test]
            $(#[$attr])*
            fn data_path() {
                $crate::testkit::data_path::<$kit>($fabric, mode(), $one_sided)
            }
        }
    };
}
