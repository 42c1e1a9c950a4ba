//! Throughput of one `redis-server` (the Redis connector) against a Redis
//! Cluster of 3 masters + 3 replicas (the cluster connector), both started
//! here on loopback, in the same run: `THREADS` threads share one connector
//! and loop over `get` (or `get_batch` of 16 keys) of 64 KB and 1 KB objects
//! for a fixed time each; then one thread times single `put`/`get`s of
//! larger objects.
//!
//! `cargo bench -p redis-connector --bench cluster` (about a minute).
//! Environment: `PROXYSTORE_BENCH_SECONDS` (per series, default 3),
//! `PROXYSTORE_BENCH_THREADS` (default 8). A markdown table goes to stdout.
//! `PROXYSTORE_BENCH_REDIS=HOST:PORT` and `PROXYSTORE_BENCH_REDIS_CLUSTER=
//! HOST:PORT[,HOST:PORT...]` (both or neither) use servers started elsewhere
//! instead: `scripts/cluster/bench-redis-cluster.sh` puts each on a host of
//! the virtual cluster.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::RedisServer;
use common::cluster::RedisCluster;
use proxy_core::{Connector, Key, Payload};
use redis_connector::{RedisClusterConnector, RedisConnector};

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Operations per second of `threads` threads looping over `op` for `secs`.
fn rate(threads: usize, secs: f64, op: &(dyn Fn(usize) + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, done) = (&stop, &done);
            s.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    op(i);
                    i += threads;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

fn median_us(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let secs = env_num("PROXYSTORE_BENCH_SECONDS", 3.0);
    let threads = env_num("PROXYSTORE_BENCH_THREADS", 8.0) as usize;
    let given = (
        std::env::var("PROXYSTORE_BENCH_REDIS"),
        std::env::var("PROXYSTORE_BENCH_REDIS_CLUSTER"),
    );
    // Servers started here live until the end of main.
    let (_started, (host, port), seeds) = match given {
        (Ok(single), Ok(seeds)) => {
            let (host, port) = single
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .expect("PROXYSTORE_BENCH_REDIS: give HOST:PORT");
            let seeds: Vec<String> = seeds.split(',').map(str::to_string).collect();
            (None, (host, port), seeds)
        }
        (Err(_), Err(_)) => {
            let server = RedisServer::start();
            let cluster = RedisCluster::start();
            let (port, seeds) = (server.port, cluster.seeds());
            (
                Some((server, cluster)),
                ("127.0.0.1".to_string(), port),
                seeds,
            )
        }
        _ => panic!(
            "give both PROXYSTORE_BENCH_REDIS and PROXYSTORE_BENCH_REDIS_CLUSTER, or neither"
        ),
    };
    let single: Arc<dyn Connector> = Arc::new(
        RedisConnector::builder(host, port)
            .prefix("bench:")
            .clear(true)
            .build()
            .unwrap(),
    );
    let clustered: Arc<dyn Connector> = Arc::new(
        RedisClusterConnector::builder(seeds)
            .prefix("bench:")
            .clear(true)
            .build()
            .unwrap(),
    );
    let targets = [
        ("redis (1 server)", single),
        ("redis+cluster (3 masters)", clustered),
    ];
    println!(
        "| series | {} | {} | cluster vs single |",
        targets[0].0, targets[1].0
    );
    println!("|---|---:|---:|---:|");
    for size in [64_000usize, 1000] {
        let mut line_get = Vec::new();
        let mut line_batch = Vec::new();
        for (_, c) in &targets {
            let keys: Vec<Key> = (0..512)
                .map(|i| c.put(Payload::from(vec![i as u8; size])).unwrap())
                .collect();
            let get = rate(threads, secs, &|i| {
                let b = c.get(&keys[i % keys.len()]).unwrap().unwrap();
                assert_eq!(b.len(), size);
            });
            let batch = rate(threads, secs, &|i| {
                let ks: Vec<Key> = (0..16)
                    .map(|j| keys[(i * 16 + j) % keys.len()].clone())
                    .collect();
                let got = c.get_batch(&ks).unwrap();
                assert!(
                    got.iter()
                        .all(|b| b.as_ref().is_some_and(|b| b.len() == size))
                );
            }) * 16.0;
            line_get.push(get);
            line_batch.push(batch);
            for k in &keys {
                c.evict(k).unwrap();
            }
        }
        for (what, v) in [("get", &line_get), ("get_batch(16)", &line_batch)] {
            println!(
                "| {} KB {what}, {threads} threads: objects/s (MB/s) | {:.0} ({:.0}) | {:.0} ({:.0}) | **{:.2}x** |",
                size / 1000,
                v[0],
                v[0] * size as f64 / 1e6,
                v[1],
                v[1] * size as f64 / 1e6,
                v[1] / v[0]
            );
        }
    }
    for size in [1_000_000usize, 10_000_000, 100_000_000] {
        let reps = if size >= 100_000_000 { 5 } else { 15 };
        let data = Payload::from(vec![7u8; size]);
        let mut put = Vec::new();
        let mut get = Vec::new();
        for (_, c) in &targets {
            let mut last = None;
            put.push(median_us(reps, || {
                if let Some(k) = last.take() {
                    c.evict(&k).unwrap();
                }
                last = Some(c.put(data.clone()).unwrap());
            }));
            let k = last.unwrap();
            get.push(median_us(reps, || {
                assert_eq!(c.get(&k).unwrap().unwrap().len(), size);
            }));
            c.evict(&k).unwrap();
        }
        for (what, v) in [("put", &put), ("get", &get)] {
            println!(
                "| {} MB {what}, 1 thread: median | {:.0} us | {:.0} us | {:.2}x |",
                size / 1_000_000,
                v[0],
                v[1],
                v[0] / v[1]
            );
        }
    }
    for (_, c) in &targets {
        c.close().unwrap();
    }
}
