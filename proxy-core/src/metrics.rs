//! Per-store metrics: operation counters and latency histograms, split into
//! connector, (de)serialization and cache time.
//!
//! Enable with [`StoreBuilder::metrics`](crate::StoreBuilder::metrics); read
//! with [`Store::metrics`](crate::Store::metrics) and
//! [`Metrics::snapshot`]. Recording is a few relaxed atomic adds and one
//! clock read per phase (tens of nanoseconds), so it can stay on.
//!
//! Times are measured with [`std::time::Instant`] in **nanoseconds** and
//! exported in nanoseconds (`*_ns`) next to milliseconds (`*_ms`, floats):
//! the two can be checked against each other (ProxyStore's `TimeStats`
//! stores nanoseconds under `*_ms` names).
//!
//! ```
//! use proxy_core::{LocalConnector, Store};
//! let store = Store::builder("m", LocalConnector::new()).metrics(true).build()?;
//! let k = store.put(&vec![1u8; 1000])?;
//! let _ = store.get::<Vec<u8>>(&k)?;
//! let snap = store.metrics().unwrap().snapshot();
//! assert_eq!(snap.op("put").unwrap().count, 1);
//! println!("{}", snap.to_json());
//! # Ok::<(), proxy_core::Error>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A store operation that is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `put`, `put_batch`, `put_encoded`, proxy creation.
    Put,
    /// `get`, `get_batch`, `get_encoded`.
    Get,
    /// `exists`.
    Exists,
    /// `evict`.
    Evict,
    /// A proxy resolving (factory: find the store, get, decode, evict if asked).
    Resolve,
}

impl Op {
    const ALL: [Op; 5] = [Op::Put, Op::Get, Op::Exists, Op::Evict, Op::Resolve];

    /// The name used in snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Exists => "exists",
            Op::Evict => "evict",
            Op::Resolve => "resolve",
        }
    }
}

/// Where the time of an operation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// The whole operation.
    Total,
    /// Inside the connector.
    Connector,
    /// Encoding (put) or decoding (get).
    Serialize,
    /// Looking up or filling this process's cache.
    Cache,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::Total,
        Phase::Connector,
        Phase::Serialize,
        Phase::Cache,
    ];

    /// The name used in snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Total => "total",
            Phase::Connector => "connector",
            Phase::Serialize => "serialize",
            Phase::Cache => "cache",
        }
    }
}

/// Histogram buckets: bucket `i` holds durations in `[2^i, 2^(i+1))` ns
/// (bucket 0 also holds 0 ns); 40 buckets reach ~18 minutes.
const BUCKETS: usize = 40;

#[derive(Debug)]
struct Histogram {
    count: AtomicU64,
    sum_ns: AtomicU64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn record(&self, ns: u64) {
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.min_ns.fetch_min(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
        let b = (63 - ns.max(1).leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[b].fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> Option<TimeStats> {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return None;
        }
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let max_ns = self.max_ns.load(Relaxed);
        let quantile = |q: f64| {
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, &n) in buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    // Upper edge of the bucket, never above the largest sample.
                    return (1u64 << (i + 1)).saturating_sub(1).min(max_ns);
                }
            }
            max_ns
        };
        let sum_ns = self.sum_ns.load(Relaxed);
        let ms = |ns: u64| ns as f64 / 1e6;
        let avg_ns = sum_ns / count;
        Some(TimeStats {
            count,
            sum_ns,
            avg_ns,
            min_ns: self.min_ns.load(Relaxed),
            max_ns,
            p50_ns: quantile(0.5),
            p99_ns: quantile(0.99),
            avg_ms: ms(avg_ns),
            min_ms: ms(self.min_ns.load(Relaxed)),
            max_ms: ms(max_ns),
            buckets: buckets
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, &n)| (1u64 << i, n))
                .collect(),
        })
    }
}

#[derive(Debug)]
struct OpStats {
    objects: AtomicU64,
    bytes: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    phases: [Histogram; 4],
}

/// The counters and histograms of one store (see the [module docs](self)).
#[derive(Debug)]
pub struct Metrics {
    ops: [OpStats; 5],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn idx_op(op: Op) -> usize {
    Op::ALL.iter().position(|o| *o == op).unwrap_or(0)
}

fn idx_phase(p: Phase) -> usize {
    Phase::ALL.iter().position(|o| *o == p).unwrap_or(0)
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Metrics {
            ops: std::array::from_fn(|_| OpStats {
                objects: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                cache_misses: AtomicU64::new(0),
                phases: std::array::from_fn(|_| Histogram::new()),
            }),
        }
    }

    /// Record the duration of one phase of `op`.
    pub fn time(&self, op: Op, phase: Phase, d: Duration) {
        self.ops[idx_op(op)].phases[idx_phase(phase)]
            .record(d.as_nanos().min(u64::MAX as u128) as u64);
    }

    /// Count objects and bytes moved by `op`.
    pub fn count(&self, op: Op, objects: u64, bytes: u64) {
        let s = &self.ops[idx_op(op)];
        s.objects.fetch_add(objects, Relaxed);
        s.bytes.fetch_add(bytes, Relaxed);
    }

    /// Count cache hits and misses of `op`.
    pub fn cache(&self, op: Op, hits: u64, misses: u64) {
        let s = &self.ops[idx_op(op)];
        s.cache_hits.fetch_add(hits, Relaxed);
        s.cache_misses.fetch_add(misses, Relaxed);
    }

    /// A consistent-enough copy of everything (each number is read atomically).
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            units: "durations in nanoseconds (*_ns) and milliseconds (*_ms)",
            ops: Op::ALL
                .iter()
                .map(|&op| {
                    let s = &self.ops[idx_op(op)];
                    OpSnapshot {
                        op: op.name(),
                        count: s.phases[0].count.load(Relaxed),
                        objects: s.objects.load(Relaxed),
                        bytes: s.bytes.load(Relaxed),
                        cache_hits: s.cache_hits.load(Relaxed),
                        cache_misses: s.cache_misses.load(Relaxed),
                        times: Phase::ALL
                            .iter()
                            .filter_map(|&p| {
                                s.phases[idx_phase(p)].snapshot().map(|t| (p.name(), t))
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }
}

/// Statistics of one histogram.
#[derive(Debug, Clone, Serialize)]
pub struct TimeStats {
    /// Samples.
    pub count: u64,
    /// Sum, ns.
    pub sum_ns: u64,
    /// Mean, ns.
    pub avg_ns: u64,
    /// Smallest, ns.
    pub min_ns: u64,
    /// Largest, ns.
    pub max_ns: u64,
    /// Median (upper edge of its power-of-two bucket), ns.
    pub p50_ns: u64,
    /// 99th percentile (upper edge of its bucket), ns.
    pub p99_ns: u64,
    /// Mean, ms.
    pub avg_ms: f64,
    /// Smallest, ms.
    pub min_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Non-empty buckets as (lower edge in ns, samples).
    pub buckets: Vec<(u64, u64)>,
}

/// One operation in a [`MetricsSnapshot`].
#[derive(Debug, Clone, Serialize)]
pub struct OpSnapshot {
    /// Operation name (`put`, `get`, `exists`, `evict`, `resolve`).
    pub op: &'static str,
    /// Calls (batch calls count once).
    pub count: u64,
    /// Objects moved.
    pub objects: u64,
    /// Encoded bytes moved.
    pub bytes: u64,
    /// Objects answered by the cache.
    pub cache_hits: u64,
    /// Objects not in the cache.
    pub cache_misses: u64,
    /// Per phase (`total`, `connector`, `serialize`, `cache`), when recorded.
    pub times: Vec<(&'static str, TimeStats)>,
}

impl OpSnapshot {
    /// The statistics of one phase, if recorded.
    pub fn phase(&self, phase: Phase) -> Option<&TimeStats> {
        self.times
            .iter()
            .find(|(n, _)| *n == phase.name())
            .map(|(_, t)| t)
    }
}

/// A copy of a store's [`Metrics`], exportable as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    /// A reminder of the units.
    pub units: &'static str,
    /// Every operation, in a fixed order.
    pub ops: Vec<OpSnapshot>,
}

impl MetricsSnapshot {
    /// The operation named `name`.
    pub fn op(&self, name: &str) -> Option<&OpSnapshot> {
        self.ops.iter().find(|o| o.op == name)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A plain-text table (one row per operation and phase with samples).
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<8} {:<10} {:>8} {:>12} {:>12} {:>12} {:>12}\n",
            "op", "phase", "count", "avg ms", "p50 ms", "p99 ms", "max ms"
        );
        for o in &self.ops {
            for (p, t) in &o.times {
                s.push_str(&format!(
                    "{:<8} {:<10} {:>8} {:>12.4} {:>12.4} {:>12.4} {:>12.4}\n",
                    o.op,
                    p,
                    t.count,
                    t.avg_ms,
                    t.p50_ns as f64 / 1e6,
                    t.p99_ns as f64 / 1e6,
                    t.max_ms
                ));
            }
        }
        s
    }
}

/// A start time, taken only when metrics are on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Option<Instant>);

impl Clock {
    pub(crate) fn start(m: Option<&Metrics>) -> Clock {
        Clock(m.map(|_| Instant::now()))
    }

    /// Record the time since the start (or the last lap) as `phase`; restart.
    pub(crate) fn lap(&mut self, m: Option<&Metrics>, op: Op, phase: Phase) {
        if let (Some(m), Some(t)) = (m, self.0) {
            let now = Instant::now();
            m.time(op, phase, now - t);
            self.0 = Some(now);
        }
    }

    /// Record the time since the start as `phase` without restarting.
    pub(crate) fn since(&self, m: Option<&Metrics>, op: Op, phase: Phase) {
        if let (Some(m), Some(t)) = (m, self.0) {
            m.time(op, phase, t.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_units_and_quantiles() {
        let m = Metrics::new();
        for ms in [1u64, 2, 2, 2, 100] {
            m.time(Op::Get, Phase::Total, Duration::from_millis(ms));
        }
        let s = m.snapshot();
        let t = s.op("get").unwrap().phase(Phase::Total).unwrap();
        assert_eq!(t.count, 5);
        assert_eq!(t.min_ns, 1_000_000);
        assert_eq!(t.max_ns, 100_000_000);
        assert!((t.max_ms - 100.0).abs() < 1e-9);
        assert_eq!(t.sum_ns, 107_000_000);
        // The median 2 ms lies in [2^20, 2^21) ns: reported as that bucket's upper edge.
        assert!(t.p50_ns >= 2_000_000 && t.p50_ns < 1 << 21, "{}", t.p50_ns);
        assert_eq!(t.p99_ns, 100_000_000);
        assert!(s.op("put").unwrap().times.is_empty());
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(json["ops"][1]["op"], "get");
    }
}
