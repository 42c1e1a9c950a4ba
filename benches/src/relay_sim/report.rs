//! Runs the shapes over the node counts and writes what they give: a
//! Markdown table with the winner per node count, the crossovers, a CSV and
//! a chart.

use std::fmt::Write as _;

use super::Preset;
use super::engine::{Net, run};
use super::shapes::{Case, Shape, closed_form, plan};
use crate::chart::{Axes, Line, svg_axes};
use crate::csv::fmt_size;

/// One shape at one node count.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub shape: Shape,
    pub nodes: u32,
    /// Simulated seconds (`None`: the plan was over the message limit).
    pub sim: Option<f64>,
    pub closed: Option<f64>,
    /// Bytes that left the owner's node.
    pub owner_bytes: f64,
    /// Simulated seconds until the first node other than the owner has it.
    pub first_node: Option<f64>,
}

impl Point {
    /// The simulated time, else the closed form.
    pub fn time(&self) -> Option<f64> {
        self.sim.or(self.closed)
    }
}

/// Messages of a shape's plan, without making it.
fn messages(shape: Shape, c: &Case) -> u64 {
    let n = c.nodes as u64;
    let chunks = (c.size / c.chunk).ceil() as u64;
    match shape {
        Shape::Star => (n - 1) * c.ranks as u64,
        Shape::StarDedup | Shape::Chain | Shape::Binomial => n - 1,
        Shape::PipelinedChain | Shape::PipelinedTree | Shape::TwoTree => (n - 1) * chunks,
        Shape::ScatterAllgather => (n - 1) + n * (n - 1),
    }
}

pub(crate) fn simulate(
    shapes: &[Shape],
    nodes: &[u32],
    base: Case,
    net: Net,
    max_messages: u64,
) -> Vec<Point> {
    let mut out = Vec::new();
    for &n in nodes {
        let c = Case { nodes: n, ..base };
        for &shape in shapes {
            let closed = closed_form(shape, &c, net);
            let (sim, first_node, owner_bytes) = if messages(shape, &c) <= max_messages {
                let p = plan(shape, &c);
                let o = run(&p, net);
                let first = o.node_done[1..]
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min);
                (Some(o.makespan), Some(first), p.bytes_sent_by(0))
            } else {
                (None, None, f64::NAN)
            };
            out.push(Point {
                shape,
                nodes: n,
                sim,
                closed,
                owner_bytes,
                first_node,
            });
        }
    }
    out
}

fn ms(t: Option<f64>) -> String {
    match t {
        None => "-".into(),
        Some(t) if t * 1e3 >= 100.0 => format!("{:.0}", t * 1e3),
        Some(t) if t * 1e3 >= 10.0 => format!("{:.1}", t * 1e3),
        Some(t) => format!("{:.2}", t * 1e3),
    }
}

fn node_counts(points: &[Point]) -> Vec<u32> {
    let mut v: Vec<u32> = points.iter().map(|p| p.nodes).collect();
    v.dedup();
    v
}

fn shapes_of(points: &[Point]) -> Vec<Shape> {
    let mut v: Vec<Shape> = Vec::new();
    for p in points {
        if !v.contains(&p.shape) {
            v.push(p.shape);
        }
    }
    v
}

/// The fastest shape at `n` nodes.
fn winner(points: &[Point], n: u32) -> Option<&Point> {
    points
        .iter()
        .filter(|p| p.nodes == n && p.time().is_some())
        .min_by(|a, b| a.time().unwrap().total_cmp(&b.time().unwrap()))
}

/// Two times closer than this (relative) are a tie, not an order.
const TIE: f64 = 0.005;

/// One line per pair of shapes whose order flips along the node counts
/// (ties skipped): "X overtakes Y between N = a and b".
pub(crate) fn crossovers(points: &[Point]) -> Vec<String> {
    let ns = node_counts(points);
    let shapes = shapes_of(points);
    let time = |s: Shape, n: u32| {
        points
            .iter()
            .find(|p| p.shape == s && p.nodes == n)
            .and_then(Point::time)
    };
    let mut out = Vec::new();
    for (i, &x) in shapes.iter().enumerate() {
        for &y in &shapes[i + 1..] {
            // The last node count where one was clearly ahead, and which.
            let mut last: Option<(u32, bool)> = None;
            for &n in &ns {
                let (Some(tx), Some(ty)) = (time(x, n), time(y, n)) else {
                    continue;
                };
                if (tx - ty).abs() <= TIE * tx.max(ty) {
                    continue;
                }
                let x_ahead = tx < ty;
                if let Some((m, was)) = last
                    && was != x_ahead
                {
                    let (won, lost) = if x_ahead { (x, y) } else { (y, x) };
                    out.push(format!(
                        "{} overtakes {} between N = {m} and {n}",
                        won.name(),
                        lost.name()
                    ));
                }
                last = Some((n, x_ahead));
            }
        }
    }
    out
}

pub(crate) fn markdown(points: &[Point], base: Case, net: Net, preset: Preset) -> String {
    let shapes = shapes_of(points);
    let one = net.alpha + base.size / net.bandwidth;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "relay-sim ({:?} figures): alpha {:.1} us, {:.0} MB/s per direction, object {}, chunk {}, \
         {} rank(s) per node, pipelined-tree fan-out {}. One transfer (alpha + S/B): {} ms. \
         Simulated time until every node has the object, ms (* = fastest; \
         a closed form only where marked cf).\n",
        preset,
        net.alpha * 1e6,
        net.bandwidth / 1e6,
        fmt_size(base.size as usize),
        fmt_size(base.chunk as usize),
        base.ranks,
        base.fanout,
        ms(Some(one)),
    );
    let _ = write!(s, "| N |");
    for sh in &shapes {
        let _ = write!(s, " {} |", sh.name());
    }
    let _ = writeln!(s, " best / one transfer |");
    let _ = writeln!(s, "|---:|{}---:|", "---:|".repeat(shapes.len()));
    for n in node_counts(points) {
        let best = winner(points, n);
        let _ = write!(s, "| {n} |");
        for sh in &shapes {
            let p = points.iter().find(|p| p.shape == *sh && p.nodes == n);
            let cell = match p {
                Some(p) if p.sim.is_some() => ms(p.sim),
                Some(p) if p.closed.is_some() => format!("{} cf", ms(p.closed)),
                _ => "-".into(),
            };
            let star = if best.is_some_and(|b| b.shape == *sh) {
                "*"
            } else {
                ""
            };
            let _ = write!(s, " {cell}{star} |");
        }
        let ratio = best.and_then(Point::time).map(|t| t / one);
        let _ = writeln!(s, " {} |", ratio.map_or("-".into(), |r| format!("{r:.2}x")));
    }
    // Winners as ranges of node counts.
    let _ = writeln!(s, "\nFastest shape by node count:");
    let mut run_start: Option<(Shape, u32, u32)> = None;
    let ns = node_counts(points);
    for &n in &ns {
        let Some(w) = winner(points, n) else { continue };
        match run_start {
            Some((sh, a, _)) if sh == w.shape => run_start = Some((sh, a, n)),
            other => {
                if let Some((sh, a, b)) = other {
                    let _ = writeln!(s, "- N = {a}..{b}: {}", sh.name());
                }
                run_start = Some((w.shape, n, n));
            }
        }
    }
    if let Some((sh, a, b)) = run_start {
        let _ = writeln!(s, "- N = {a}..{b}: {}", sh.name());
    }
    let cross = crossovers(points);
    if !cross.is_empty() {
        let _ = writeln!(s, "\nCrossovers (on the grid of node counts):");
        for c in cross {
            let _ = writeln!(s, "- {c}");
        }
    }
    s
}

pub(crate) fn csv(points: &[Point], base: Case, net: Net) -> String {
    let mut s = String::from(
        "shape,nodes,ranks,size_bytes,chunk_bytes,fanout,alpha_us,bandwidth_mbs,sim_s,closed_form_s,first_node_s,owner_bytes\n",
    );
    let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.9}"));
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            p.shape.name(),
            p.nodes,
            base.ranks,
            base.size,
            base.chunk,
            base.fanout,
            net.alpha * 1e6,
            net.bandwidth / 1e6,
            f(p.sim),
            f(p.closed),
            f(p.first_node),
            if p.owner_bytes.is_nan() {
                String::new()
            } else {
                format!("{}", p.owner_bytes)
            }
        );
    }
    s
}

fn nodes_tick(x: f64) -> String {
    format!("{}", x.round())
}

pub(crate) fn chart(points: &[Point], base: Case, net: Net) -> String {
    let lines: Vec<Line> = shapes_of(points)
        .into_iter()
        .map(|sh| Line {
            label: sh.name().into(),
            points: points
                .iter()
                .filter(|p| p.shape == sh)
                .filter_map(|p| p.time().map(|t| (p.nodes as f64, t * 1e3)))
                .collect(),
        })
        .collect();
    let title = format!(
        "{} to N nodes: alpha {} us, {:.0} MB/s, chunk {}",
        fmt_size(base.size as usize),
        net.alpha * 1e6,
        net.bandwidth / 1e6,
        fmt_size(base.chunk as usize)
    );
    svg_axes(
        &title,
        &Axes {
            x: "nodes (log)",
            y: "ms until every node has it (log)",
            x_tick: nodes_tick,
        },
        &lines,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: Net = Net {
        alpha: 2e-6,
        bandwidth: 25e9,
    };

    fn base() -> Case {
        Case {
            nodes: 2,
            ranks: 1,
            size: 64.0 * 1048576.0,
            chunk: 1048576.0,
            fanout: 2,
        }
    }

    #[test]
    fn star_wins_at_two_nodes_and_pipelines_win_at_many() {
        let shapes = [Shape::StarDedup, Shape::Binomial, Shape::PipelinedChain];
        let pts = simulate(&shapes, &[2, 4, 64], base(), NET, 1 << 20);
        assert_eq!(winner(&pts, 2).unwrap().shape, Shape::StarDedup);
        assert_eq!(winner(&pts, 64).unwrap().shape, Shape::PipelinedChain);
        let cross = crossovers(&pts);
        assert!(
            cross
                .iter()
                .any(|c| c.starts_with("pipelined-chain overtakes star-dedup")),
            "{cross:?}"
        );
        let md = markdown(&pts, base(), NET, Preset::Slingshot);
        assert!(md.contains("| 64 |"), "{md}");
        assert!(md.contains("N = 2..2: star-dedup"), "{md}");
    }

    #[test]
    fn ties_are_not_crossovers() {
        let pt = |shape, nodes, t: f64| Point {
            shape,
            nodes,
            sim: Some(t),
            closed: None,
            owner_bytes: 0.0,
            first_node: None,
        };
        // Equal at 2, chain behind at 4: no flip. Chain ahead at 8: a flip
        // between 4 and 8.
        let pts = [
            pt(Shape::Star, 2, 1.0),
            pt(Shape::Chain, 2, 1.0001),
            pt(Shape::Star, 4, 3.0),
            pt(Shape::Chain, 4, 3.5),
            pt(Shape::Star, 8, 7.0),
            pt(Shape::Chain, 8, 6.0),
        ];
        assert_eq!(
            crossovers(&pts),
            vec!["chain overtakes star between N = 4 and 8".to_string()]
        );
    }

    #[test]
    fn over_the_message_limit_only_the_closed_form_is_shown() {
        let pts = simulate(&[Shape::PipelinedChain], &[100], base(), NET, 10);
        assert!(pts[0].sim.is_none() && pts[0].closed.is_some());
        let md = markdown(&pts, base(), NET, Preset::Slingshot);
        assert!(md.contains(" cf*"), "{md}");
    }

    #[test]
    fn csv_and_chart_carry_every_point() {
        let pts = simulate(&[Shape::Chain, Shape::Binomial], &[2, 8], base(), NET, 1000);
        let csv = csv(&pts, base(), NET);
        assert_eq!(csv.lines().count(), 5);
        assert!(csv.contains("\nbinomial,8,1,"));
        let svg = chart(&pts, base(), NET);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">nodes (log)</text>") && svg.contains(">8</text>"));
    }
}
