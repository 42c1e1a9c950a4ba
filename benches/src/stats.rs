//! Timing series and their summary.

use std::time::Instant;

/// Summary of one timed series (microseconds).
#[derive(Debug, Clone)]
pub struct Summary {
    pub reps: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub min: f64,
}

/// Percentile by linear interpolation between closest ranks (as numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub fn summarize(samples_us: &[f64]) -> Summary {
    let mut v = samples_us.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    Summary {
        reps: v.len(),
        median: percentile(&v, 0.5),
        p10: percentile(&v, 0.1),
        p90: percentile(&v, 0.9),
        min: v.first().copied().unwrap_or(f64::NAN),
    }
}

/// Repetition plan per size, as the Python reference (`bench_proxystore.py`):
/// warm-up runs, then up to `reps` timed runs, cut short after `budget_s` once
/// at least `MIN_REPS` ran.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warm: usize,
    pub reps: usize,
    pub budget_s: f64,
}

pub const MIN_REPS: usize = 5;

impl Plan {
    pub fn for_size(size: usize, quick: bool, budget_s: f64) -> Plan {
        if quick {
            return Plan {
                warm: 1,
                reps: MIN_REPS,
                budget_s,
            };
        }
        let (warm, reps) = match size {
            0..=1_000 => (20, 300),
            1_001..=100_000 => (10, 150),
            100_001..=1_000_000 => (5, 60),
            1_000_001..=10_000_000 => (2, 25),
            10_000_001..=100_000_000 => (1, 7),
            _ => (1, 5),
        };
        Plan {
            warm,
            reps,
            budget_s,
        }
    }

    /// Run `f` (which returns its own measured microseconds) by this plan.
    pub fn run<E>(&self, mut f: impl FnMut() -> Result<f64, E>) -> Result<Vec<f64>, E> {
        for _ in 0..self.warm {
            f()?;
        }
        let start = Instant::now();
        let mut out = Vec::with_capacity(self.reps);
        while out.len() < self.reps {
            out.push(f()?);
            if out.len() >= MIN_REPS && start.elapsed().as_secs_f64() > self.budget_s {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.median, s.min, s.reps), (3.0, 1.0, 5));
        assert!((s.p10 - 1.4).abs() < 1e-9 && (s.p90 - 4.6).abs() < 1e-9);
    }
}
