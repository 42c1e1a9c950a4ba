//! The connector against a real `proxystore-ucx-server` process, over
//! shared memory (`shm,cma,self`) and over TCP, including faults and bad input:
//! the object server's test kit (`object_server::testkit`) per set of UCX
//! transports, and what is UCX's own.

mod common;

use std::time::Duration;

use common::{ServerProcess, UcxTests};
use object_server::testkit::{self, transport_tests};
use proxy_core::{Connector, Error, Payload};
use ucx_connector::{DataPath, TransportConfig, UcxConfig, UcxConnector};

fn timeout_error(e: &Error) {
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.is_temporary());
}

/// Cancel safety over TCP: a read from a server frozen with SIGSTOP (UCX
/// emulates the get with messages the server must answer) is in flight when
/// the wait gives up; its buffer stays in use until UCX completes it and comes
/// back after (see the kit's body for each step).
#[test]
fn timed_out_get_keeps_its_buffer_tcp() {
    testkit::timed_out_get_keeps_its_buffer::<UcxTests>("tcp", &[], timeout_error);
}

/// Cancel safety over shared memory (`posix,sysv,self`; not `shm`, which
/// includes `cma` in newer UCX): the
/// server's segments come from the heap (`UCX_ALLOC_PRIO=heap`), which the
/// shared-memory transports cannot map, and without `cma` UCX emulates the
/// get with shared-memory messages the frozen server must answer, so the read
/// is held in flight (with its segments in shared memory, or over `cma`, the
/// read needs no server CPU and nothing holds it).
#[test]
fn timed_out_get_keeps_its_buffer_shm() {
    testkit::timed_out_get_keeps_its_buffer::<UcxTests>(
        "posix,sysv,self",
        &[("UCX_ALLOC_PRIO", "heap")],
        timeout_error,
    );
}

// Same node: reads map the server's segments (no copy at all) ...
transport_tests!(UcxTests;
    shm,
    "shm,cma,self",
    DataPath::Auto,
    zero_copy = true,
    one_sided = true
);
// ... unless zero copy is off: one-sided gets into receive buffers.
transport_tests!(UcxTests;
    shm_copy,
    "shm,cma,self",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
// Every transport UCX has (as with UCX_TLS unset), zero copy off, server on
// this node: the endpoint goes without peer error handling, so UCX serves
// it over shared memory, not loopback TCP; a killed or restarted server is
// still seen (the control connection), and every fault test holds.
transport_tests!(UcxTests;
    all_copy,
    "all",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
// Auto picks the stream data path over TCP-only UCX (see the README).
transport_tests!(UcxTests;
    tcp,
    "tcp",
    DataPath::Auto,
    zero_copy = false,
    one_sided = false
);
// The one-sided path works over TCP too (emulated by UCX 1.13, slower).
transport_tests!(UcxTests;
    tcp_rma,
    "tcp",
    DataPath::Rma,
    zero_copy = false,
    one_sided = true
);
// Zero copy does not depend on the fabric: the same over TCP-only UCX.
transport_tests!(UcxTests;
    tcp_mapped,
    "tcp",
    DataPath::Auto,
    zero_copy = true,
    one_sided = false
);

/// The server's data-path hint decides `Auto`: a server whose UCX runs over
/// TCP only asks for the stream path even when this process could do RMA
/// (shared memory enabled here), and the capabilities say so after contact.
#[test]
fn server_hint_decides_auto() {
    let server = ServerProcess::start("tcp", &[]);
    let c = UcxConnector::new(
        UcxConfig::new(&server.addr)
            .with_ucx_tls("tcp,shm,cma,self")
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    // Before any contact, this process's own view: RMA.
    assert_eq!(c.data_path(), DataPath::Rma);
    let key = c.put(Payload::from(vec![9u8; 100])).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&[9u8; 100][..]));
    assert_eq!(c.data_path(), DataPath::Stream);
    assert!(!c.capabilities().one_sided_get);
}

// Verbs (InfiniBand, RoCE, soft-RoCE rxe): `rc_verbs,ud_verbs,self`, or
// PROXYSTORE_TEST_UCX_VERBS_TLS. Auto picks one-sided gets (RDMA reads).
transport_tests!(UcxTests;
    #[ignore = "needs an RDMA device (InfiniBand, RoCE or soft-RoCE rxe): docker/entrypoint.sh runs it with --ignored where one exists"]
    verbs,
    &crate::common::verbs_tls(),
    DataPath::Auto,
    zero_copy = false, // same-node zero copy would bypass the fabric
    one_sided = true
);
