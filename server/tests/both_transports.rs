//! One `proxystore-server` process serving the same objects over UCX,
//! libfabric and Margo at once: an object put through one transport is read
//! through the others, every way, with one-sided gets on each (zero copy off,
//! so that no get is a same-node read of a mapped segment: each client
//! asserts it mapped nothing), and, named as such, with same-node mapped
//! reads.

use std::process::{Command, Stdio};
use std::time::Duration;

use margo_connector::{MargoConfig, MargoConnector};
use object_server::testkit::pattern;
use ofi_connector::{OfiConfig, OfiConnector};
use proxy_core::{Connector, Payload};
use ucx_connector::{DataPath, TransportConfig, UcxConfig, UcxConnector};

mod common;
use common::Server;

fn start(args: &[&str]) -> Server {
    Server::start_with("16M", "256M", args)
}

/// UCX and libfabric clients of the server at `addr`: one-sided gets over
/// the fabric (`zero_copy` false), or same-node reads of the mapped segments.
fn rma_clients(
    addr: &str,
    tls: &str,
    provider: &str,
    zero_copy: bool,
) -> (UcxConnector, OfiConnector) {
    let t = Duration::from_secs(10);
    let ucx = UcxConnector::new(
        UcxConfig::new(addr)
            .with_ucx_tls(tls)
            .with_data_path(DataPath::Rma)
            .with_zero_copy(zero_copy)
            .with_timeout(t),
    )
    .unwrap();
    let ofi = OfiConnector::new(
        OfiConfig::new(addr)
            .with_provider(provider)
            .with_data_path(DataPath::Rma)
            .with_zero_copy(zero_copy)
            .with_timeout(t),
    )
    .unwrap();
    (ucx, ofi)
}

fn both(tls: &str, provider: &str, zero_copy: bool) {
    let s = start(&[
        "--transports",
        "ucx,ofi",
        "--tls",
        tls,
        "--provider",
        provider,
    ]);
    let (ucx, ofi) = rma_clients(&s.addr, tls, provider, zero_copy);
    // Sizes below and above the one-sided put threshold (256 KiB).
    for (i, len) in [10usize, 100_000, 3 << 20].into_iter().enumerate() {
        let a = pattern(len, i as u8);
        let b = pattern(len, 100 + i as u8);
        let via_ucx = ucx.put(Payload::from(a.clone())).unwrap();
        let via_ofi = ofi.put(Payload::from(b.clone())).unwrap();
        assert_eq!(
            ofi.get(&via_ucx).unwrap().as_deref(),
            Some(&a[..]),
            "ucx -> ofi, {len} B"
        );
        assert_eq!(
            ucx.get(&via_ofi).unwrap().as_deref(),
            Some(&b[..]),
            "ofi -> ucx, {len} B"
        );
        let got = ofi.get_batch(&[via_ucx.clone(), via_ofi.clone()]).unwrap();
        assert_eq!(got[0].as_deref(), Some(&a[..]));
        assert_eq!(got[1].as_deref(), Some(&b[..]));
        // Evicted through one, gone for the other.
        ofi.evict(&via_ucx).unwrap();
        assert_eq!(ucx.get(&via_ucx).unwrap(), None);
        ucx.evict(&via_ofi).unwrap();
        assert_eq!(ofi.get(&via_ofi).unwrap(), None);
    }
    assert_eq!(ucx.data_path(), DataPath::Rma);
    assert_eq!(ofi.data_path(), DataPath::Rma);
    // Which path served the gets: the fabric's one-sided reads, or the
    // mapped segments (asked for, and the server is on this node).
    assert_eq!(ucx.mapped(), zero_copy, "UCX mapped the server's segments");
    assert_eq!(
        ofi.mapped(),
        zero_copy,
        "libfabric mapped the server's segments"
    );
}

#[test]
fn ucx_and_ofi_share_objects_one_sided_over_shared_memory() {
    both("shm,cma,self", "shm", false);
}

#[test]
fn ucx_and_ofi_share_objects_one_sided_over_tcp() {
    both("tcp", "tcp;ofi_rxm", false);
}

#[test]
fn ucx_and_ofi_share_objects_mapped_on_the_same_node() {
    both("shm,cma,self", "shm", true);
}

#[test]
fn a_transport_the_server_does_not_serve_is_refused() {
    let s = start(&["--transports", "ucx", "--tls", "shm,cma,self"]);
    let ofi = OfiConnector::new(
        OfiConfig::new(&s.addr)
            .with_provider("shm")
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let e = ofi.put(Payload::from(vec![1u8; 10])).unwrap_err();
    assert!(e.to_string().contains("ofi"), "{e}");
}

/// UCX, libfabric and Margo clients of one server process: an object put
/// over any of them (below and above the one-sided put threshold) is read
/// over each of the others with one-sided gets (Margo: bulk pulls over
/// `protocol`).
fn three(tls: &str, provider: &str, protocol: &str) {
    let s = start(&[
        "--transports",
        "ucx,ofi,margo",
        "--tls",
        tls,
        "--provider",
        provider,
        "--margo-protocol",
        protocol,
    ]);
    let (ucx, ofi) = rma_clients(&s.addr, tls, provider, false);
    let margo = MargoConnector::new(
        MargoConfig::new(&s.addr)
            .with_protocol(protocol)
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false)
            .with_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let all: [&dyn Connector; 3] = [&ucx, &ofi, &margo];
    for (i, len) in [10usize, 100_000, 3 << 20].into_iter().enumerate() {
        for (w, writer) in all.iter().enumerate() {
            let data = pattern(len, (10 * i + w) as u8);
            let key = writer.put(Payload::from(data.clone())).unwrap();
            for reader in all {
                assert_eq!(
                    reader.get(&key).unwrap().as_deref(),
                    Some(&data[..]),
                    "{} -> {}, {len} B",
                    writer.kind(),
                    reader.kind()
                );
            }
            // Evicted through Margo (or another), gone for every reader.
            all[(w + 1) % 3].evict(&key).unwrap();
            for reader in all {
                assert_eq!(reader.get(&key).unwrap(), None, "{}", reader.kind());
            }
        }
    }
    assert_eq!(margo.data_path(), DataPath::Rma);
    for c in [&ucx.mapped(), &ofi.mapped(), &margo.mapped()] {
        assert!(!c, "a client mapped the server's segments");
    }
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn ucx_put_margo_get_over_shared_memory() {
    three("shm,cma,self", "shm", "na+sm");
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn ucx_put_margo_get_over_tcp() {
    three("tcp", "tcp;ofi_rxm", "ofi+tcp://127.0.0.1");
}

/// Without Margo, asking the server for it fails at start with the error
/// that says how to install it (and the other transports are unaffected).
#[test]
#[cfg_attr(
    has_margo,
    ignore = "Margo is installed here: the missing-Margo message is checked where it is not"
)]
fn margo_missing_is_a_clear_start_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_proxystore-server"))
        .args(["--listen", "127.0.0.1:0", "--transports", "margo"])
        .env_remove("MARGO_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run proxystore-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start transport margo") && err.contains("spack install mochi-margo"),
        "{err}"
    );
}
