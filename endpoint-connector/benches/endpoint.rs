//! GET rate at 1 KB and throughput at 10 MB through ProxyStore endpoints,
//! for this crate's client and the Python `EndpointConnector` in the same
//! run: from the local endpoint (the object stored there) and through the
//! other endpoint (fetched over the WebRTC peering). The endpoints, the
//! relay and the venv are those of the tests (`tests/common`).
//!
//! `cargo bench -p endpoint-connector --bench endpoint` (about a minute;
//! `PROXYSTORE_BENCH_SECONDS` per series, default 3). A markdown table goes
//! to stdout.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Sites, run, venv_bin};
use endpoint_connector::EndpointKey;
use proxy_core::{Connector, Key, Payload};

/// `python -c PY EP HOME SECONDS OID EID SIZE ...`: for each object, gets
/// per second and MB/s of a get loop; one line `rate mbps` per object.
const PY: &str = r#"
import sys, time
from proxystore.connectors.endpoint import EndpointConnector, EndpointKey
ep, home, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
c = EndpointConnector([ep], proxystore_dir=home)
a = sys.argv[4:]
for i in range(0, len(a), 3):
    k, size = EndpointKey(a[i], a[i + 1]), int(a[i + 2])
    assert len(c.get(k)) == size
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < secs:
        c.get(k)
        n += 1
    dt = time.perf_counter() - t0
    print(n / dt, n * size / dt / 1e6)
c.close()
"#;

/// Gets per second and MB/s of a get loop of `secs`.
fn rate(c: &dyn Connector, k: &Key, size: usize, secs: f64) -> (f64, f64) {
    assert_eq!(c.get(k).unwrap().unwrap().len(), size);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_secs_f64(secs) {
        c.get(k).unwrap();
        n += 1;
    }
    let dt = t0.elapsed().as_secs_f64();
    (n as f64 / dt, n as f64 * size as f64 / dt / 1e6)
}

fn main() {
    let secs: f64 = std::env::var("PROXYSTORE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let sites = Sites::start();
    let local = sites.connector(0, 120_000);
    let remote = sites.connector(1, 120_000);
    let sizes = [1000usize, 10_000_000];
    let keys: Vec<Key> = sizes
        .iter()
        .map(|&n| local.put(Payload::from(vec![7u8; n])).unwrap())
        .collect();
    let mut args: Vec<String> = vec![secs.to_string()];
    for (k, n) in keys.iter().zip(sizes) {
        let k = EndpointKey::from_key(k).unwrap();
        args.extend([
            k.object_id_str(),
            k.endpoint_id_str().unwrap(),
            n.to_string(),
        ]);
    }
    let py = |i: usize| -> Vec<(f64, f64)> {
        let out = run(
            Command::new(venv_bin().join("python"))
                .args([
                    "-c",
                    PY,
                    &sites.endpoints[i].0,
                    &sites.home.to_string_lossy(),
                ])
                .args(&args),
            "the Python benchmark",
        );
        out.lines()
            .map(|l| {
                let mut f = l.split_whitespace().map(|v| v.parse::<f64>().unwrap());
                (f.next().unwrap(), f.next().unwrap())
            })
            .collect()
    };
    println!("| path | client | 1 KB GET/s | 10 MB MB/s |");
    println!("|---|---|---:|---:|");
    for (i, path, c) in [
        (0, "local endpoint", &local),
        (1, "through the peer endpoint (WebRTC)", &remote),
    ] {
        let r: Vec<(f64, f64)> = keys
            .iter()
            .zip(sizes)
            .map(|(k, n)| rate(c, k, n, secs))
            .collect();
        println!(
            "| {path} | Rust (this crate) | {:.0} | {:.0} |",
            r[0].0, r[1].1
        );
        let p = py(i);
        println!(
            "| {path} | Python `EndpointConnector` | {:.0} | {:.0} |",
            p[0].0, p[1].1
        );
    }
}
