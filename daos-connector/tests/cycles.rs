//! 10 000 put/get/evict cycles leave the pool's used space and the process's
//! receive memory (the pooled buffers gets read into) flat.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use proxy_core::{Connector, Payload};

/// Free bytes of the pool's first (SCM) tier, from `daos pool query --json`.
fn pool_free(pool: &str) -> u64 {
    let daos = std::env::var("DAOS_DIR")
        .map(|d| format!("{d}/bin/daos"))
        .unwrap_or_else(|_| "daos".into());
    let out = Command::new(&daos)
        .args(["pool", "query", pool, "--json"])
        .output()
        .unwrap_or_else(|e| panic!("run {daos}: {e}"));
    assert!(
        out.status.success(),
        "{daos} pool query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["response"]["tier_stats"][0]["free"]
        .as_u64()
        .unwrap_or_else(|| panic!("no tier_stats[0].free in {v}"))
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT) and the daos tool"
)]
fn ten_thousand_put_evict_cycles_leave_space_and_memory_flat() {
    let (pool, _) = common::target();
    let c = common::connector("cycles");
    let data = proxy_core::conformance::pattern(256 << 10, 5);
    let cycle = |i: usize| {
        let key = c.put(Payload::from(data.clone())).unwrap();
        let got = c.get(&key).unwrap().expect("just stored");
        assert_eq!(got.len(), data.len(), "cycle {i}");
        drop(got);
        c.evict(&key).unwrap();
        assert!(
            !c.exists(&key).unwrap(),
            "cycle {i}: evicted object still exists"
        );
    };
    for i in 0..200 {
        cycle(i);
    }
    let (free0, mem0, rss0) = (
        pool_free(&pool),
        daos_connector::recv_pool_allocated_bytes(),
        rss_bytes(),
    );
    let start = Instant::now();
    for i in 0..10_000 {
        cycle(i);
    }
    eprintln!("10 000 cycles of 256 KiB in {:?}", start.elapsed());
    let (mem1, rss1) = (daos_connector::recv_pool_allocated_bytes(), rss_bytes());
    eprintln!("receive pool {mem0} -> {mem1} bytes, RSS {rss0} -> {rss1} bytes");
    assert_eq!(mem1, mem0, "receive buffers grew");
    assert!(rss1 < rss0 + (32 << 20), "RSS grew from {rss0} to {rss1}");
    // Punched extents are reclaimed by DAOS's aggregation in the background:
    // wait for it (the 10 000 objects were 2.5 GB of writes in all).
    let waited = Instant::now();
    let slack = 64u64 << 20;
    loop {
        let free1 = pool_free(&pool);
        eprintln!(
            "pool free before {free0}, now {free1} (after {:?})",
            waited.elapsed()
        );
        if free1 + slack >= free0 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "pool space not reclaimed: {free0} free before, {free1} after"
        );
        std::thread::sleep(Duration::from_secs(5));
    }
}
