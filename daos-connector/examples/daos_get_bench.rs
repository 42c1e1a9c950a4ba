//! Connector `get` against a raw libdaos read loop, side by side in one run.
//!
//! For each size, one object is put through the connector; then, taking
//! turns at going first in each iteration, (a) `DaosConnector::get` (event queue, header
//! check, the receive pool's buffer handed out as `Bytes`, dropped before the
//! next get so the buffer is reused) and (b) `daos_sys` `daos_array_read` of
//! the same object (opened once, blocking) into one pre-faulted buffer of the
//! same kind (`proxy_core::mem::BufferPool` over anonymous mappings), reused;
//! and (c) the same raw read on an event queue waited for with
//! `daos_eq_poll` (the connector's mechanics without its checks). The ratio
//! is the connector against the faster raw variant.
//!
//! ```sh
//! PROXYSTORE_DAOS_POOL=pool PROXYSTORE_DAOS_CONT=cont \
//!   cargo run --release -p daos-connector --example daos_get_bench -- [SIZES_MB] [ITERS]
//! ```
//! `SIZES_MB` defaults to `1,4,16,64,100`, `ITERS` to 30.

use std::time::{Duration, Instant};

use daos_connector::raw::RawReader;
use daos_connector::{DaosConnector, DaosOptions};
use proxy_core::mem::{AnonAllocator, BufferPool};
use proxy_core::{Connector, Payload};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "1,4,16,64,100".into())
        .split(',')
        .map(|s| s.parse::<usize>().map(|mb| mb * 1_000_000))
        .collect::<Result<_, _>>()?;
    let iters: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let pool = std::env::var("PROXYSTORE_DAOS_POOL")?;
    let cont = std::env::var("PROXYSTORE_DAOS_CONT")?;
    let opts = DaosOptions::new(pool, cont).namespace(format!("bench-{}", std::process::id()));
    let c = DaosConnector::new(opts.clone())?;
    let bufs = BufferPool::new(AnonAllocator, 1 << 30);

    println!(
        "| size | connector get p50 | MB/s | raw read, blocking p50 | MB/s | raw read, event queue p50 | MB/s | connector / best raw |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &size in &sizes {
        let data = proxy_core::conformance::pattern(size, 3);
        let key = c.put(Payload::from(data.clone()))?;
        let mut raw = RawReader::open(&opts, &key)?;
        let mut buf = bufs.acquire(size)?;
        // Warm up both paths (first-touch, connections, pool buffers).
        for _ in 0..2 {
            assert_eq!(c.get(&key)?.as_deref(), Some(&data[..]));
            raw.read_into(buf.as_mut_slice())?;
        }
        assert_eq!(buf.as_slice(), &data[..], "raw read returned other bytes");
        let (mut tc, mut tr, mut te) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iters {
            // The three take turns at going first: no variant always runs
            // right after the same other one (on 2 cores shared with the
            // engine, what ran just before shifts a read's time).
            for j in 0..3 {
                match (i + j) % 3 {
                    0 => {
                        let t = Instant::now();
                        let got = c.get(&key)?.expect("stored");
                        tc.push(t.elapsed());
                        assert_eq!(got.len(), size);
                        drop(got);
                    }
                    1 => {
                        let t = Instant::now();
                        raw.read_into(buf.as_mut_slice())?;
                        tr.push(t.elapsed());
                    }
                    _ => {
                        let t = Instant::now();
                        raw.read_into_eq(buf.as_mut_slice())?;
                        te.push(t.elapsed());
                    }
                }
            }
        }
        assert_eq!(buf.as_slice(), &data[..], "raw read returned other bytes");
        let (mc, mr, me) = (median(&mut tc), median(&mut tr), median(&mut te));
        let mbs = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
        println!(
            "| {} MB | {:.2} ms | {:.0} | {:.2} ms | {:.0} | {:.2} ms | {:.0} | {:.0}% |",
            size / 1_000_000,
            mc.as_secs_f64() * 1e3,
            mbs(mc),
            mr.as_secs_f64() * 1e3,
            mbs(mr),
            me.as_secs_f64() * 1e3,
            mbs(me),
            100.0 * mbs(mc) / mbs(mr.min(me))
        );
        drop(raw);
        c.evict(&key)?;
    }
    Ok(())
}
