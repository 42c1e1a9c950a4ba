//! Tests against an object server on another node: the virtual cluster of
//! `scripts/cluster/` (nodes as Linux namespaces sharing one kernel) runs the
//! server on one node and these tests on another
//! (`scripts/cluster/test-cross-node.sh`). The server's address comes from an
//! environment variable; the tests are ignored elsewhere.

use std::time::Duration;

use proxy_core::{Connector, Payload};

use super::{Client, Fabric, pattern};
use crate::{DataPath, TransportConfig};

/// The address (`host:port`) in the environment variable `var`.
pub fn remote_addr(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| {
            panic!("{var} is not set: the address of an object server on another node (scripts/cluster/test-cross-node.sh sets it)")
        })
}

/// A connector to the server at the address in `var` over `fabric`, on the
/// one-sided data path (UCX over tcp alone would pick the stream path by
/// default), zero copy left at its default (on): only the client's own
/// finding that the server is on another node keeps its gets off the mapped
/// path. The conformance suite's `setup` across nodes.
pub fn remote_client<F: Fabric>(var: &str, fabric: &str) -> Client<F> {
    let cfg = F::config(&remote_addr(var), fabric)
        .with_data_path(DataPath::Rma)
        .with_timeout(Duration::from_secs(30));
    Client::<F>::new(cfg).expect("connector to the remote server")
}

/// Gets from a server on another node take the one-sided path into this
/// process's receive buffers, never a mapping: the capabilities and
/// `mapped()` say so, the server holds no pin while the bytes are held, and
/// the bytes live in the connector's own buffer pool.
pub fn remote_gets_are_one_sided<F: Fabric>(var: &str, fabric: &str) {
    let c = remote_client::<F>(var, fabric);
    let pid = c.server_pid().expect("the remote server's hello");
    let mut held = Vec::new();
    for (i, len) in [4000usize, 1 << 20, 16 << 20].into_iter().enumerate() {
        let data = pattern(len, 7 + i as u8);
        let key = c.put(Payload::from(data.clone())).unwrap();
        let got = c.get(&key).unwrap().expect("stored");
        assert_eq!(&got[..], &data[..], "{len} bytes");
        held.push((key, got));
    }
    assert!(
        !c.server_on_this_host(),
        "a server on another node (pid {pid} there) was taken for one on this node"
    );
    let caps = c.capabilities();
    assert!(
        !c.mapped() && !caps.mapped_get,
        "a server on another node (pid {pid} there) was read through a mapping"
    );
    assert!(caps.one_sided_get, "gets did not take the one-sided path");
    assert_eq!(c.data_path(), DataPath::Rma);
    // The held objects are in our receive buffers (a one-sided get lands
    // there), not pinned in the server's memory.
    let in_use = c.pool().expect("the fabric").allocated_bytes()
        - c.pool().expect("the fabric").idle_bytes();
    assert!(
        in_use >= (16 << 20) + (1 << 20),
        "{in_use} bytes of receive buffers in use while 17 MiB of objects are held"
    );
    assert_eq!(c.server_stats().unwrap().pins, 0, "pins on a remote server");
    for (key, _) in held.drain(..) {
        c.evict(&key).unwrap();
    }
}

/// The cross-node tests of a connector crate, ignored unless run on the
/// virtual cluster (`scripts/cluster/test-cross-node.sh`):
/// `remote_gets_are_one_sided` and the proxy-core conformance suite, against
/// the server at the address in the environment variable `var`, over
/// `fabric`.
///
/// `cross_node_tests!(Kit, "PROXYSTORE_TEST_REMOTE_UCX", "tcp", ucx_connector::register);`
#[doc(hidden)]
#[macro_export]
macro_rules! __testkit_cross_node_tests {
    ($kit:ty, $var:expr, $fabric:expr, $register:path $(,)?) => {
        #[test]
        #[ignore = "needs the virtual cluster: scripts/cluster/test-cross-node.sh"]
        fn remote_gets_are_one_sided() {
            $crate::testkit::remote_gets_are_one_sided::<$kit>($var, $fabric);
        }

        fn setup() -> $crate::testkit::Client<$kit> {
            $crate::testkit::remote_client::<$kit>($var, $fabric)
        }

        ::proxy_core::conformance_suite!(
            setup = setup,
            register = $register,
            ignore = "needs the virtual cluster: scripts/cluster/test-cross-node.sh"
        );
    };
}
