//! Rust and Python processes exchanging objects through two ProxyStore
//! endpoints peered over WebRTC through a relay server, all of ProxyStore
//! 1.1.0 (`pip install 'proxystore[endpoints]==1.1.0'`, in a venv at
//! `$PROXYSTORE_ENDPOINT_VENV` or `~/.cache/proxystore-rs-py/venv-endpoints-1.1.0`,
//! made on first use: needs `python3 -m venv` and PyPI). The test starts the
//! relay and the endpoints on free loopback ports with a temporary
//! `PROXYSTORE_HOME`, and stops them and removes the directory on drop.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Sites, run, venv_bin};
use endpoint_connector::EndpointKey;
use proxy_core::{Connector, Key, Payload};

/// Object `seed` of `len` bytes (period 251; Python makes the same).
fn data(seed: usize, len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..251)
        .map(|i| ((i * 7 + seed * 13) % 251) as u8)
        .collect();
    block.iter().copied().cycle().take(len).collect()
}

const SIZES: [usize; 5] = [1, 1000, 1_000_000, 10_000_000, 100_000_000];

/// `python -c PY ENDPOINT_UUID HOME put` stores objects 0..5 of SIZES and
/// prints `object_id endpoint_id` per line; `... get OID EID SEED SIZE ...`
/// reads and checks each, printing `ok`.
const PY: &str = r#"
import sys
from proxystore.connectors.endpoint import EndpointConnector, EndpointKey
ep, home, mode = sys.argv[1], sys.argv[2], sys.argv[3]
c = EndpointConnector([ep], proxystore_dir=home)
def data(seed, n):
    block = bytes(((i * 7 + seed * 13) % 251) for i in range(251))
    return (block * (n // 251 + 1))[:n]
if mode == 'put':
    for seed, n in enumerate([1, 1000, 1_000_000, 10_000_000, 100_000_000]):
        k = c.put(data(seed, n))
        print(k.object_id, k.endpoint_id)
else:
    a = sys.argv[4:]
    for i in range(0, len(a), 4):
        got = c.get(EndpointKey(a[i], a[i + 1]))
        want = data(int(a[i + 2]), int(a[i + 3]))
        assert got == want, (a[i], None if got is None else len(got), len(want))
    print('ok')
c.close()
"#;

/// Run the Python side against endpoint `i`.
fn python(sites: &Sites, i: usize, args: &[&str]) -> String {
    run(
        Command::new(venv_bin().join("python"))
            .args([
                "-c",
                PY,
                &sites.endpoints[i].0,
                &sites.home.to_string_lossy(),
            ])
            .args(args),
        "the Python EndpointConnector",
    )
}

/// Rust puts at ep1, Python gets through ep2; Python puts at ep2, Rust gets
/// through ep1: 1 B .. 100 MB, every byte checked.
#[test]
fn rust_and_python_through_two_endpoints() {
    let sites = Sites::start();
    let c = sites.connector(0, 60_000);
    let mut args = Vec::new();
    for (seed, &n) in SIZES.iter().enumerate() {
        let k = EndpointKey::from_key(&c.put(Payload::from(data(seed, n))).unwrap()).unwrap();
        args.extend([
            k.object_id_str(),
            k.endpoint_id_str().unwrap(),
            seed.to_string(),
            n.to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut all = vec!["get"];
    all.extend(args);
    assert_eq!(python(&sites, 1, &all).trim(), "ok", "Rust -> Python");

    let out = python(&sites, 1, &["put"]);
    let keys: Vec<Key> = out
        .lines()
        .map(|l| {
            let (o, e) = l.split_once(' ').expect("object_id endpoint_id");
            EndpointKey::from_strs(o, Some(e)).unwrap().into()
        })
        .collect();
    assert_eq!(keys.len(), SIZES.len());
    for (seed, (k, &n)) in keys.iter().zip(SIZES.iter()).enumerate() {
        assert!(c.exists(k).unwrap());
        let got = c.get(k).unwrap().expect("Python's object through ep1");
        assert!(
            got == data(seed, n),
            "object {seed} of {n} bytes: other bytes"
        );
    }
    c.evict(&keys[0]).unwrap();
    assert!(!c.exists(&keys[0]).unwrap());
    assert_eq!(c.get(&keys[0]).unwrap(), None);
}

/// The remote endpoint killed: a get of its objects fails with a temporary
/// error, at the latest at the connector's timeout (the local endpoint itself
/// waits for the lost peer longer than that). The local endpoint killed:
/// clear temporary errors naming it, at once. Both restarted (empty: they
/// kept their objects in memory): they peer again, the same connectors work
/// again and objects flow both ways.
#[test]
fn endpoint_killed_and_restarted() {
    let mut sites = Sites::start();
    let c = sites.connector(0, 8000);
    let remote = sites.connector(1, 8000);
    let k = remote.put(Payload::from(data(1, 5000))).unwrap();
    assert_eq!(c.get(&k).unwrap().unwrap(), data(1, 5000));

    sites.kill_endpoint(1);
    let t = Instant::now();
    let e = c.get(&k).unwrap_err();
    assert!(e.is_temporary(), "{e}");
    eprintln!("remote endpoint down: {e} (after {:?})", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());

    sites.kill_endpoint(0);
    let t = Instant::now();
    let e = c.put(Payload::from(data(3, 10))).unwrap_err();
    assert!(
        e.is_temporary() && t.elapsed() < Duration::from_secs(3),
        "{e}"
    );
    assert!(e.to_string().contains(&sites.endpoints[0].0), "{e}");
    eprintln!("local endpoint down: {e}");

    sites.start_endpoint(0);
    sites.start_endpoint(1);
    let t = Instant::now();
    sites.wait_peered();
    eprintln!("peered again {:?} after the restart", t.elapsed());
    assert_eq!(
        c.get(&k).unwrap(),
        None,
        "the restarted endpoint starts empty"
    );
    let k2 = remote.put(Payload::from(data(2, 70_000))).unwrap();
    assert_eq!(c.get(&k2).unwrap().unwrap(), data(2, 70_000));
    let k3 = c.put(Payload::from(data(3, 10))).unwrap();
    assert_eq!(remote.get(&k3).unwrap().unwrap(), data(3, 10));
}
