//! Put/get through a proxy-core `Store` over `RedisConnector`, next to
//! `redis-benchmark -c 1` against the same locally started `redis-server`.
//!
//! `cargo bench -p redis-connector --bench redis` (about a minute). Rows are
//! written in the CSV schema of `proxystore-bench` (impl `proxystore-rs`) to
//! `$PROXYSTORE_BENCH_CSV`, or `<target dir>/redis-bench.csv`; a markdown
//! table goes to stdout.
//!
//! Environment: `PROXYSTORE_BENCH_SIZES` (comma-separated byte counts,
//! default `1000,1000000,10000000,100000000`), `PROXYSTORE_BENCH_BUDGET`
//! (seconds per series, default 3), `PROXYSTORE_BENCH_QUICK=1` (5 reps).

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use proxy_core::{Bytes, Store};

struct Row {
    section: &'static str,
    connector: String,
    size: usize,
    op: String,
    reps: usize,
    median: f64,
    p10: f64,
    p90: f64,
    min: f64,
    extra: String,
}

impl Row {
    fn csv(&self) -> String {
        let mbps = self.size as f64 / self.median; // bytes/us = MB/s
        format!(
            "proxystore-rs,{},{},bytes,{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{}",
            self.section,
            self.connector,
            self.size,
            self.op,
            self.reps,
            self.median,
            self.p10,
            self.p90,
            self.min,
            mbps,
            self.extra
        )
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn plan(size: usize) -> (usize, usize) {
    // (warm-up runs, max timed reps), as proxystore-bench and benches/python.
    match size {
        0..=1_000 => (20, 300),
        1_001..=100_000 => (10, 150),
        100_001..=1_000_000 => (5, 60),
        1_000_001..=10_000_000 => (2, 25),
        _ => (1, 7),
    }
}

/// Time `f` (which returns the duration it measured) per the plan.
fn series(size: usize, budget: Duration, quick: bool, mut f: impl FnMut() -> Duration) -> Vec<f64> {
    let (warm, max) = if quick { (1, 5) } else { plan(size) };
    for _ in 0..warm {
        f();
    }
    let start = Instant::now();
    let mut v = Vec::new();
    while v.len() < max && (v.len() < 5 || start.elapsed() < budget) {
        v.push(f().as_secs_f64() * 1e6);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn row(op: &str, size: usize, v: &[f64]) -> Row {
    Row {
        section: "proxystore",
        connector: "redis".into(),
        size,
        op: op.into(),
        reps: v.len(),
        median: quantile(v, 0.5),
        p10: quantile(v, 0.1),
        p90: quantile(v, 0.9),
        min: v[0],
        extra: String::new(),
    }
}

/// `redis-benchmark -t set,get -d SIZE -c 1 --csv`: one row per test.
fn redis_benchmark(port: u16, size: usize) -> Vec<Row> {
    let n = match size {
        0..=10_000 => 20_000,
        10_001..=1_000_000 => 300,
        1_000_001..=10_000_000 => 40,
        _ => 6,
    };
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set,get"])
        .args([
            "-d",
            &size.to_string(),
            "-c",
            "1",
            "-n",
            &n.to_string(),
            "--csv",
        ])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "redis-benchmark failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return Vec::new();
        }
        Err(e) => {
            eprintln!("redis-benchmark not run ({e}): apt-get install redis-tools");
            return Vec::new();
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<String> = line
            .split(',')
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        if f.len() < 8 {
            continue;
        }
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN);
        let (rps, avg, min, p50, p99) = (num(1), num(2), num(3), num(4), num(6));
        rows.push(Row {
            section: "redis-benchmark",
            connector: "c=1".into(),
            size,
            op: f[0].clone(),
            reps: 1,
            median: p50 * 1000.0,
            p10: p50 * 1000.0,
            p90: p50 * 1000.0,
            min: min * 1000.0,
            extra: format!(
                "rps={rps};n={n};avg_ms={avg};p99_ms={p99};mb_per_s_aggregate={:.1};us_per_op={:.1}",
                rps * size as f64 / 1e6,
                1e6 / rps
            ),
        });
    }
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no
    // such flag: then only check that we start.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let quick = std::env::var("PROXYSTORE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let budget = Duration::from_secs_f64(
        std::env::var("PROXYSTORE_BENCH_BUDGET")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    );
    let sizes: Vec<usize> = std::env::var("PROXYSTORE_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,1000000,10000000,100000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let server = common::RedisServer::start();
    let connector = server.builder().build().unwrap();
    let store = Store::builder("bench", connector)
        .cache_bytes(0)
        .build()
        .unwrap();

    let mut rows = Vec::new();
    for &size in &sizes {
        let data = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        eprintln!("size {size}: put");
        let v = series(size, budget, quick, || {
            let t = Instant::now();
            let k = store.put(&data).unwrap();
            let d = t.elapsed();
            store.evict(&k).unwrap();
            d
        });
        rows.push(row("put", size, &v));
        eprintln!("size {size}: get");
        let key = store.put(&data).unwrap();
        let v = series(size, budget, quick, || {
            let t = Instant::now();
            let got = store.get::<Bytes>(&key).unwrap().unwrap();
            let d = t.elapsed();
            assert_eq!(got.len(), size);
            drop(got);
            d
        });
        rows.push(row("get", size, &v));
        // The same, keeping every result until the series ends: each get
        // then receives into fresh memory (no recycled buffer).
        eprintln!("size {size}: get, results held");
        let mut held = Vec::new();
        let v = series(size, budget, quick, || {
            let t = Instant::now();
            let got = store.get::<Bytes>(&key).unwrap().unwrap();
            let d = t.elapsed();
            held.push(got);
            d
        });
        drop(held);
        store.evict(&key).unwrap();
        let mut r = row("get_held", size, &v);
        r.extra = "results_held=1".into();
        rows.push(r);
        eprintln!("size {size}: redis-benchmark");
        rows.extend(redis_benchmark(server.port, size));
    }

    let mut csv = String::from(
        "impl,section,connector,payload,size_bytes,op,reps,median_us,p10_us,p90_us,min_us,mb_per_s,extra\n",
    );
    for r in &rows {
        let _ = writeln!(csv, "{}", r.csv());
    }
    let path = std::env::var("PROXYSTORE_BENCH_CSV").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_string());
        format!("{dir}/redis-bench.csv")
    });
    if let Some(parent) = std::path::Path::new(&path).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&path, &csv).unwrap_or_else(|e| panic!("writing {path}: {e}"));

    println!(
        "| size | op | proxystore-rs median | p10 | p90 | MB/s | redis-benchmark -c 1 p50 | redis-benchmark us/op (1/rps) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for r in rows.iter().filter(|r| r.section == "proxystore") {
        let rb = rows.iter().find(|b| {
            b.section == "redis-benchmark"
                && b.size == r.size
                && b.op
                    .eq_ignore_ascii_case(if r.op == "put" { "SET" } else { "GET" })
        });
        let (p50, per_op) = rb
            .map(|b| {
                let per = b
                    .extra
                    .split(';')
                    .find_map(|kv| kv.strip_prefix("us_per_op="))
                    .unwrap_or("?")
                    .to_string();
                (format!("{:.0} us", b.median), format!("{per} us"))
            })
            .unwrap_or(("-".into(), "-".into()));
        println!(
            "| {} | {} | {:.0} us | {:.0} | {:.0} | {:.0} | {} | {} |",
            r.size,
            r.op,
            r.median,
            r.p10,
            r.p90,
            r.size as f64 / r.median,
            p50,
            per_op
        );
    }
    println!("\nCSV: {path}");
}
