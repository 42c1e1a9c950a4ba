//! The connector against a real `proxystore-margo-server` process, over
//! Mercury's `na+sm` and `ofi+tcp` (loopback), including faults and bad
//! input: the object server's test kit (`object_server::testkit`) per
//! protocol. Every test is ignored where the build found no Margo.

mod common;

use common::MargoTests;
use margo_connector::DataPath;
use object_server::testkit::{self, transport_tests};
use proxy_core::Error;

/// Cancel safety: a get that times out while Mercury still owns its buffer
/// (the server is frozen with SIGSTOP, so over `ofi+tcp` (`tcp;ofi_rxm`),
/// whose target side needs the server's progress, the pull cannot finish)
/// keeps that buffer out of the pool until Margo completes the transfer
/// (its timer cancels it); the connector stays usable.
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn timed_out_get_keeps_its_buffer() {
    testkit::timed_out_get_keeps_its_buffer::<MargoTests>(TCP, &[], |e| {
        assert!(e.is_temporary(), "{e}");
        assert!(
            e.to_string().contains("HG_TIMEOUT") || matches!(e, Error::Timeout { .. }),
            "{e}"
        );
    });
}

/// One-sided for real: with the server frozen (SIGSTOP), gets over `na+sm`
/// keep returning the right bytes (the bulk pull is the reader's own
/// `process_vm_readv` of the server's memory: no server CPU at all).
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn gets_while_the_server_is_stopped() {
    testkit::gets_while_the_server_is_stopped::<MargoTests>(SM);
}

const SM: &str = "na+sm";
const TCP: &str = "ofi+tcp://127.0.0.1";

// Auto picks bulk pulls with both protocols; zero copy off, so every get is a
// pull over the named protocol (`data_path` checks the connector's count of
// pulls), not a read of the same node's mapped segments.
transport_tests!(MargoTests;
    #[cfg_attr(not(has_margo), ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it")]
    na_sm, SM, DataPath::Auto, zero_copy = false, one_sided = true
);
transport_tests!(MargoTests;
    #[cfg_attr(not(has_margo), ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it")]
    ofi_tcp, TCP, DataPath::Auto, zero_copy = false, one_sided = true
);
// Same node with zero copy on: gets read the server's mapped segments (no pull).
transport_tests!(MargoTests;
    #[cfg_attr(not(has_margo), ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it")]
    mapped, SM, DataPath::Auto, zero_copy = true, one_sided = true
);
// The stream data path (server writes to the control connection) as a baseline.
transport_tests!(MargoTests;
    #[cfg_attr(not(has_margo), ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it")]
    na_sm_stream, SM, DataPath::Stream, zero_copy = false, one_sided = false
);

/// The server killed (SIGKILL) while batches of 64 MiB objects are pulled
/// over `na+sm`: the kill lands inside a `process_vm_readv` of the dead
/// process (`ESRCH`, which Mercury reports as `HG_PROTOCOL_ERROR`), and every
/// failed get must be a temporary error (the server can be restarted).
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn killed_server_64mib_na_sm() {
    testkit::killed_server_with::<MargoTests>(SM, PULLS, (8, 64 << 20));
}

/// The same over `ofi+tcp` (loopback).
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn killed_server_64mib_ofi_tcp() {
    testkit::killed_server_with::<MargoTests>(TCP, PULLS, (8, 64 << 20));
}

/// Bulk pulls: zero copy off.
const PULLS: testkit::Mode = testkit::Mode {
    path: DataPath::Auto,
    zero_copy: Some(false),
};
