//! `proxystore-bench small`: one client, small objects, operations per
//! second: `get` of one 1 KB object in a loop, and `get_batch` of 64 of them
//! (objects per second), per connector, each for a fixed time. The
//! connector's own gets (no store, no cache, no codec), so the figures sit
//! next to the raw tools' (`redis-benchmark -c 1`, `ucx_perftest`, the raw
//! `fi_read` loop) in `scripts/bench-small.sh`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proxy_core::{Error, Payload, Result};

use crate::connectors::{self, ConnectorOpts};
use crate::progress::Progress;

/// What `small` runs.
#[derive(Debug)]
pub struct SmallOpts {
    pub connectors: Vec<String>,
    pub size: usize,
    pub batch: usize,
    pub seconds: f64,
    pub conn: ConnectorOpts,
}

/// Operations (or objects) per second of `op` run for `secs` (after a warm-up
/// of a tenth of that), each call worth `per_call`.
fn rate(secs: f64, per_call: usize, mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < secs / 10.0 {
        op()?;
    }
    let t = Instant::now();
    let budget = Duration::from_secs_f64(secs);
    let mut n = 0usize;
    while t.elapsed() < budget {
        op()?;
        n += 1;
    }
    Ok((n * per_call) as f64 / t.elapsed().as_secs_f64())
}

/// Run; a Markdown table (one row per connector) and CSV-like lines
/// `SMALL,<connector>,<get ops/s>,<batch objects/s>`.
pub fn run(opts: &SmallOpts, progress: &Progress) -> Result<String> {
    let mut out = format!(
        "| connector | {} B get, ops/s | get_batch({}), objects/s |\n|---|---:|---:|\n",
        opts.size, opts.batch
    );
    let mut lines = Vec::new();
    for cname in &opts.connectors {
        progress.say(&format!("small {cname}"));
        let conn = connectors::make(cname, &opts.conn)?;
        let data = Bytes::from((0..opts.size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let keys = conn.put_batch(
            (0..opts.batch.max(1))
                .map(|_| Payload::from(data.clone()))
                .collect(),
        )?;
        let check = |b: Option<Bytes>| -> Result<()> {
            match b {
                Some(b) if b.len() == opts.size => Ok(()),
                Some(b) => Err(Error::permanent(
                    "bench",
                    "small get",
                    format!("got {} bytes, expected {}", b.len(), opts.size),
                )),
                None => Err(Error::permanent("bench", "small get", "object missing")),
            }
        };
        let one = rate(opts.seconds, 1, || check(conn.get(&keys[0])?))?;
        let batch = rate(opts.seconds, keys.len(), || {
            conn.get_batch(&keys)?.into_iter().try_for_each(check)
        })?;
        for k in &keys {
            conn.evict(k)?;
        }
        connectors::cleanup(&conn);
        out.push_str(&format!("| {cname} | {one:.0} | {batch:.0} |\n"));
        lines.push(format!("SMALL,{cname},{one:.0},{batch:.0}"));
    }
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_calls_and_their_worth() {
        let mut calls = 0u64;
        let r = rate(0.05, 10, || {
            calls += 1;
            std::thread::sleep(Duration::from_millis(1));
            Ok(())
        })
        .unwrap();
        // About 1000 calls/s at most (1 ms each), 10 objects per call.
        assert!(r > 1000.0 && r < 10_500.0, "{r}");
        assert!(calls > 5);
        assert!(rate(0.01, 1, || Err(Error::decode("x"))).is_err());
    }
}
