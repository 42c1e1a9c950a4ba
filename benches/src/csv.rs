//! Rows in the CSV schema shared with the Python reference harness
//! (`benches/python/bench_store.py`), so `benches/python/compare.py` shows the
//! Rust and Python figures side by side.

use std::fmt::Write as _;

use crate::stats::Summary;

pub const HEADER: &str = "impl,section,connector,payload,size_bytes,op,reps,median_us,p10_us,p90_us,min_us,mb_per_s,extra";
pub const IMPL: &str = "proxystore-rs";

#[derive(Debug, Clone)]
pub struct Row {
    pub section: String,
    pub connector: String,
    pub payload: String,
    pub size: usize,
    pub op: String,
    pub summary: Summary,
    /// `k=v` pairs for the `extra` column.
    pub extra: Vec<(String, String)>,
    /// Whether `size / median` is a bandwidth: false for a resolve that only
    /// touched a mapping (nothing moved); its `mb_per_s` cell is left empty.
    pub bandwidth: bool,
}

impl Row {
    pub fn mb_per_s(&self) -> f64 {
        // Decimal MB/s from the median, as the reference.
        self.size as f64 / self.summary.median
    }

    pub fn to_csv(&self) -> String {
        let s = &self.summary;
        let extra = self
            .extra
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let mbps = if self.bandwidth {
            format!("{:.1}", self.mb_per_s())
        } else {
            String::new()
        };
        let mut line = String::new();
        let _ = write!(
            line,
            "{IMPL},{},{},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{},{}",
            self.section,
            self.connector,
            self.payload,
            self.size,
            self.op,
            s.reps,
            s.median,
            s.p10,
            s.p90,
            s.min,
            mbps,
            extra
        );
        line
    }
}

pub fn fmt_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

pub fn fmt_size(n: usize) -> String {
    match n {
        n if n >= 1_000_000_000 && n % 1_000_000_000 == 0 => format!("{}GB", n / 1_000_000_000),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}MB", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}KB", n / 1_000),
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}

/// Parse `1KB`, `100MB`, `1GiB`, `4096` (decimal units as the reference;
/// binary with `i`, or a bare `K`/`M`/`G`): [`proxy_core::size`].
pub fn parse_size(s: &str) -> Result<usize, String> {
    proxy_core::size::parse_len(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1KB").unwrap(), 1000);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(fmt_size(100_000_000), "100MB");
        assert_eq!(fmt_size(1 << 30), "1GiB");
        assert!(parse_size("3 parsecs").is_err());
    }
}
