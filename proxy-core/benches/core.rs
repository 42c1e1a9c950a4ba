//! criterion micro-benchmarks of proxy-core's hot paths.
//!
//! ```sh
//! cargo bench -p proxy-core --bench core            # all
//! cargo bench -p proxy-core --bench core -- get/file # one group
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proxy_core::{Bytes, Connector, FileConnector, LocalConnector, Payload, Proxy, Store, codec};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    values: Vec<f64>,
}

fn record() -> Record {
    Record {
        id: 42,
        name: "simulation-output".into(),
        tags: vec!["a".into(), "bb".into(), "ccc".into()],
        values: (0..128).map(|i| i as f64 * 0.25).collect(),
    }
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    for size in [1_000usize, 1_000_000] {
        let b = Bytes::from(vec![1u8; size]);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encode_bytes", size), &b, |bch, b| {
            bch.iter(|| codec::encode(black_box(b)).unwrap())
        });
        let enc = codec::encode(&b).unwrap().to_bytes();
        g.bench_with_input(BenchmarkId::new("decode_bytes", size), &enc, |bch, e| {
            bch.iter(|| codec::decode::<Bytes>(black_box(e.clone())).unwrap())
        });
        let s = "x".repeat(size);
        g.bench_with_input(BenchmarkId::new("encode_str", size), &s, |bch, s| {
            bch.iter(|| codec::encode(black_box(s)).unwrap())
        });
        let enc = codec::encode(&s).unwrap().to_bytes();
        g.bench_with_input(BenchmarkId::new("decode_str", size), &enc, |bch, e| {
            bch.iter(|| codec::decode::<String>(black_box(e.clone())).unwrap())
        });
    }
    g.throughput(Throughput::Elements(1));
    let r = record();
    g.bench_function("encode_serde_struct", |b| {
        b.iter(|| codec::encode(black_box(&r)).unwrap())
    });
    let enc = codec::encode(&r).unwrap().to_bytes();
    g.bench_function("decode_serde_struct", |b| {
        b.iter(|| codec::decode::<Record>(black_box(enc.clone())).unwrap())
    });
    g.finish();
}

fn proxies(c: &mut Criterion) {
    let store = Store::builder("bench-proxy", LocalConnector::new())
        .cache_bytes(0)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("proxy");
    g.bench_function("create_and_serialize_1KB", |b| {
        let obj = Bytes::from(vec![1u8; 1000]);
        b.iter(|| {
            let p = store.proxy(obj.clone()).unwrap();
            let w = p.to_bytes().unwrap();
            store.evict(p.key()).unwrap();
            w
        })
    });
    let p = store.proxy(Bytes::from(vec![1u8; 1000])).unwrap();
    let wire = p.to_bytes().unwrap();
    g.bench_function("deserialize_and_resolve_1KB_local", |b| {
        b.iter(|| {
            let q: Proxy<Bytes> = Proxy::from_bytes(black_box(&wire)).unwrap();
            q.resolve().unwrap().len()
        })
    });
    g.finish();
}

fn gets(c: &mut Criterion) {
    let dir = std::path::Path::new(if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    })
    .join(format!("proxystore-bench-{}", std::process::id()));
    let conns: Vec<(&str, Box<dyn Connector>)> = vec![
        ("local", Box::new(LocalConnector::new())),
        ("file", Box::new(FileConnector::new(&dir).unwrap())),
    ];
    let mut g = c.benchmark_group("get");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, conn) in &conns {
        for size in [1_000usize, 1_000_000, 10_000_000, 100_000_000] {
            if size >= 10_000_000 {
                g.sample_size(10);
            }
            let key = conn.put(Payload::from(vec![3u8; size])).unwrap();
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(*name, size), &key, |b, k| {
                b.iter(|| conn.get(k).unwrap().unwrap().len())
            });
            conn.evict(&key).unwrap();
        }
    }
    g.finish();
    std::fs::remove_dir_all(dir).ok();
}

criterion_group!(benches, codecs, proxies, gets);
criterion_main!(benches);
