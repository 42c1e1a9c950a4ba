//! `proxystore-bench relay-sim`: an alpha-beta-chunk model of getting one
//! object from its owner to N nodes, by shape (star, chain, binomial tree,
//! pipelined chain, tree and two-tree, MPICH's scatter-allgather broadcast), simulated
//! event by event (`engine.rs`) next to each shape's closed form
//! (`shapes.rs`), as a Markdown table, a CSV and an SVG chart (`report.rs`).
//!
//! Independent of MPI and the connectors: a model of what a relay among node
//! servers could reach, not a measurement of one.

mod engine;
mod report;
mod shapes;
mod two_tree;

use std::path::PathBuf;

use engine::Net;
use shapes::{Case, Shape};

use crate::csv::parse_size;

/// Link figures of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Preset {
    /// HPE Slingshot-11: 200 Gbit/s (25 GB/s) per direction, ~2 us per hop.
    Slingshot,
    /// This repository's virtual cluster (`scripts/cluster/`) at 1 Gbit/s
    /// links, as measured by `scripts/cluster/bench-fanout.sh`.
    Cluster,
}

impl Preset {
    pub fn net(self) -> Net {
        match self {
            Preset::Slingshot => Net {
                alpha: 2e-6,
                bandwidth: 25e9,
            },
            // Measured on the virtual cluster (docs/results/fanout/): the
            // round trip of a TCP ping-pong node2 <-> node1 and one TCP
            // stream through a 1 Gbit/s link.
            Preset::Cluster => Net {
                alpha: 46e-6,
                bandwidth: 120e6,
            },
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Link figures: slingshot or cluster (the virtual cluster at 1 Gbit/s).
    #[arg(long, value_enum, default_value = "slingshot")]
    preset: Preset,
    /// Per-hop latency in microseconds (overrides the preset's).
    #[arg(long)]
    alpha_us: Option<f64>,
    /// Per-direction NIC bandwidth in MB/s = 10^6 B/s (overrides the preset's).
    #[arg(long)]
    bandwidth_mbs: Option<f64>,
    /// Object size (1GiB, 128MiB, ...).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: usize,
    /// Chunk size of the pipelined shapes.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    chunk: usize,
    /// Ranks per node that want the object (the star without dedup pulls
    /// once per rank; every other shape once per node).
    #[arg(long, default_value_t = 1)]
    ranks: u32,
    /// Fan-out of the pipelined tree.
    #[arg(long, default_value_t = 2)]
    fanout: u32,
    /// Comma-separated node counts, the owner's node included (default:
    /// 2, 3, 4, 6, 8, 12, ... 768, 1024).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<u32>,
    /// Comma-separated shapes (default: all): star, star-dedup, chain,
    /// binomial, pipelined-chain, pipelined-tree, pipelined-two-tree,
    /// scatter-allgather.
    #[arg(long, value_delimiter = ',', value_parser = Shape::parse)]
    shapes: Vec<Shape>,
    /// Largest plan simulated, in messages; bigger cases show only their
    /// closed form.
    #[arg(long, default_value_t = 5_000_000)]
    max_messages: u64,
    /// Write the long-form CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the chart (time vs nodes, log-log) here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// Node counts of the default grid: 2, 3, 4, 6, 8, 12, ... up to 1024.
fn default_nodes() -> Vec<u32> {
    let mut v = Vec::new();
    let mut p = 2u32;
    while p <= 1024 {
        v.push(p);
        if p * 3 / 2 < 1024 && p >= 2 {
            v.push(p * 3 / 2);
        }
        p *= 2;
    }
    v.retain(|&n| n >= 2);
    v.sort_unstable();
    v.dedup();
    v
}

/// Checks the arguments; a clear message for each bad one.
fn validate(a: &Args, net: Net) -> Result<(), String> {
    if !(net.alpha.is_finite() && net.alpha >= 0.0) {
        return Err(format!("--alpha-us must be >= 0, got {}", net.alpha * 1e6));
    }
    if !(net.bandwidth.is_finite() && net.bandwidth > 0.0) {
        return Err(format!(
            "--bandwidth-mbs must be > 0, got {}",
            net.bandwidth / 1e6
        ));
    }
    if a.size == 0 || a.chunk == 0 {
        return Err("--size and --chunk must be > 0".into());
    }
    if a.ranks == 0 || a.fanout == 0 {
        return Err("--ranks and --fanout must be >= 1".into());
    }
    if let Some(n) = a.nodes.iter().find(|&&n| !(2..=1 << 20).contains(&n)) {
        return Err(format!("--nodes: {n} is not in 2..=1048576"));
    }
    Ok(())
}

pub(crate) fn run(a: Args) -> Result<(), String> {
    let mut net = a.preset.net();
    if let Some(us) = a.alpha_us {
        net.alpha = us * 1e-6;
    }
    if let Some(mbs) = a.bandwidth_mbs {
        net.bandwidth = mbs * 1e6;
    }
    validate(&a, net)?;
    let nodes = if a.nodes.is_empty() {
        default_nodes()
    } else {
        a.nodes.clone()
    };
    let shapes: Vec<Shape> = if a.shapes.is_empty() {
        Shape::ALL
            .into_iter()
            .filter(|&s| s != Shape::StarDedup || a.ranks > 1)
            .collect()
    } else {
        a.shapes.clone()
    };
    let base = Case {
        nodes: 2,
        ranks: a.ranks,
        size: a.size as f64,
        chunk: a.chunk.min(a.size) as f64,
        fanout: a.fanout,
    };
    let results = report::simulate(&shapes, &nodes, base, net, a.max_messages);
    print!("{}", report::markdown(&results, base, net, a.preset));
    if let Some(p) = &a.csv {
        std::fs::write(p, report::csv(&results, base, net))
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
        eprintln!("relay-sim: CSV in {}", p.display());
    }
    if let Some(p) = &a.svg {
        std::fs::write(p, report::chart(&results, base, net))
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
        eprintln!("relay-sim: chart in {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_runs_from_2_to_1024() {
        let v = default_nodes();
        assert_eq!(v.first(), Some(&2));
        assert_eq!(v.last(), Some(&1024));
        assert!(v.contains(&3) && v.contains(&768) && v.contains(&8));
        assert!(v.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_arguments_give_a_clear_error() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            a: Args,
        }
        let args = |s: &[&str]| Cli::try_parse_from(std::iter::once("x").chain(s.iter().copied()));
        let net = Preset::Slingshot.net();
        let a = args(&["--nodes", "1,4"]).unwrap().a;
        assert!(validate(&a, net).unwrap_err().contains("--nodes: 1"));
        let a = args(&["--ranks", "0"]).unwrap().a;
        assert!(validate(&a, net).unwrap_err().contains("--ranks"));
        let a = args(&[]).unwrap().a;
        assert!(
            validate(
                &a,
                Net {
                    bandwidth: 0.0,
                    ..net
                }
            )
            .unwrap_err()
            .contains("bandwidth")
        );
        assert!(validate(&a, net).is_ok());
        assert!(args(&["--shapes", "ring"]).is_err());
        assert!(args(&["--size", "lots"]).is_err());
    }
}
