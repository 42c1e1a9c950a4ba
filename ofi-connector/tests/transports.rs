//! The connector against a real `proxystore-ofi-server` process, over
//! shared memory (`shm,cma,self`) and over TCP, including faults and bad input:
//! the object server's test kit (`object_server::testkit`) per provider, and
//! what is libfabric's own.

mod common;

use std::time::Duration;

use common::{OfiTests, ServerProcess};
use object_server::testkit::{self, pattern, transport_tests};
use ofi_connector::{DataPath, OfiConfig, OfiConnector, TransportConfig};
use proxy_core::{Connector, Error, Payload};

fn timeout_error(e: &Error) {
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.is_temporary());
}

/// Cancel safety over `tcp;ofi_rxm`: a read from a server frozen with
/// SIGSTOP (the target side needs the server's progress) is in flight when
/// the wait gives up; its buffer stays in use until the provider completes
/// it and comes back after (see the kit's body for each step).
#[test]
fn timed_out_get_keeps_its_buffer_tcp() {
    testkit::timed_out_get_keeps_its_buffer::<OfiTests>("tcp;ofi_rxm", &[], timeout_error);
}

/// Cancel safety over `shm`: the server runs with cross-memory attach off
/// (`FI_SHM_DISABLE_CMA=1`), so the provider serves reads through the frozen
/// server's own progress and the read is held in flight (with CMA the reader
/// copies the server's memory itself and nothing holds it).
#[test]
fn timed_out_get_keeps_its_buffer_shm() {
    testkit::timed_out_get_keeps_its_buffer::<OfiTests>(
        "shm",
        &[("FI_SHM_DISABLE_CMA", "1")],
        timeout_error,
    );
}

/// One-sided for real: with the server frozen (SIGSTOP), gets over `shm`
/// keep returning the right bytes (cross-memory attach reads the server's
/// memory without the server running); over `tcp;ofi_rxm` they cannot (the
/// target must progress) and fail with a timeout instead. (Zero copy on:
/// `mapped_gets_while_the_server_is_stopped`.)
#[test]
fn gets_while_the_server_is_stopped() {
    testkit::gets_while_the_server_is_stopped::<OfiTests>("shm");
}

/// Zero copy on, the server frozen (SIGSTOP): `Bytes` already handed out
/// stay readable, and new gets from the mapped segment work too (pins are
/// words in this reader's pin page, no request), as do evicts after SIGCONT.
#[test]
fn mapped_gets_while_the_server_is_stopped() {
    let server = ServerProcess::start("shm", &[]);
    let c = OfiConnector::new(
        OfiConfig::new(&server.addr)
            .with_provider("shm")
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let data = pattern(3 << 20, 9);
    let key = c.put(Payload::from(data.clone())).unwrap();
    let held = c.get(&key).unwrap().unwrap();
    assert!(c.mapped());
    server.freeze(true);
    assert_eq!(&held[..], &data[..]);
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
    drop(held);
    server.freeze(false);
    c.evict(&key).unwrap();
    assert_eq!(c.get(&key).unwrap(), None);
}

// Same node, zero copy on: reads map the server's segments.
transport_tests!(OfiTests;
    shm,
    "shm",
    DataPath::Auto,
    zero_copy = true,
    one_sided = true
);
// Zero copy off: Auto picks one-sided reads on both providers.
transport_tests!(OfiTests;
    shm_copy,
    "shm",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
transport_tests!(OfiTests;
    tcp,
    "tcp;ofi_rxm",
    DataPath::Auto,
    zero_copy = false,
    one_sided = true
);
// The stream data path (server writes to the control connection) as a baseline.
transport_tests!(OfiTests;
    tcp_stream,
    "tcp;ofi_rxm",
    DataPath::Stream,
    zero_copy = false,
    one_sided = false
);
// Verbs (InfiniBand, RoCE, soft-RoCE rxe): `verbs;ofi_rxm`, or
// PROXYSTORE_TEST_OFI_VERBS_PROVIDER. Auto picks one-sided reads.
transport_tests!(OfiTests;
    #[ignore = "needs an RDMA device (InfiniBand, RoCE or soft-RoCE rxe): docker/entrypoint.sh runs it with --ignored where one exists"]
    verbs,
    &crate::common::verbs_provider(),
    DataPath::Auto,
    zero_copy = false, // same-node zero copy would bypass the fabric
    one_sided = true
);
