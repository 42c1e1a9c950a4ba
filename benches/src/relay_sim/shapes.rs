//! The shapes of one-to-many delivery, each as a plan of messages for the
//! simulation and, where one exists, its closed form.
//!
//! Node 0 is the owner (it holds the object of `size` bytes); nodes
//! 1..`nodes` want it. With node-level dedup one transfer reaches a node and
//! its `ranks` ranks read it there; without it (today's path) every rank of
//! every other node pulls from the owner.

use super::engine::{MsgId, Net, Plan};

/// A way to get one object from its owner to every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Every rank of every other node gets the whole object from the owner,
    /// all at once: today's path (no dedup).
    Star,
    /// The star with node-level dedup: one get per node.
    StarDedup,
    /// Store and forward along a line: node i gets the whole object from i-1.
    Chain,
    /// Binomial tree, whole object per hop: in round r every node that has
    /// it sends it to one that has not (a node's sends one after another).
    Binomial,
    /// A line forwarding chunk by chunk: node i sends chunk c to i+1 as
    /// soon as it has it and chunk c-1 has left.
    PipelinedChain,
    /// A k-ary tree (heap order: node i's children are k·i+1..k·i+k),
    /// forwarding chunk by chunk to its children at once (they share its
    /// send bandwidth).
    PipelinedTree,
    /// Two pipelined binary trees (even chunks down one, odd down the
    /// other), each node interior in at most one (`two_tree.rs`).
    TwoTree,
    /// MPICH's MPI_Bcast for long messages: binomial scatter of N blocks,
    /// then a ring allgather (van de Geijn); a node's sends one after another.
    ScatterAllgather,
}

impl Shape {
    pub const ALL: [Shape; 8] = [
        Shape::Star,
        Shape::StarDedup,
        Shape::Chain,
        Shape::Binomial,
        Shape::PipelinedChain,
        Shape::PipelinedTree,
        Shape::TwoTree,
        Shape::ScatterAllgather,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Star => "star",
            Shape::StarDedup => "star-dedup",
            Shape::Chain => "chain",
            Shape::Binomial => "binomial",
            Shape::PipelinedChain => "pipelined-chain",
            Shape::PipelinedTree => "pipelined-tree",
            Shape::TwoTree => "pipelined-two-tree",
            Shape::ScatterAllgather => "scatter-allgather",
        }
    }

    pub fn parse(s: &str) -> Result<Shape, String> {
        Shape::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown shape {s:?} (one of: {})",
                    Shape::ALL.map(Shape::name).join(", ")
                )
            })
    }
}

/// One case: how many nodes, ranks per node, the object and the chunking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    /// Nodes, the owner's included (>= 2).
    pub nodes: u32,
    /// Ranks per node that want the object (>= 1).
    pub ranks: u32,
    /// Object size in bytes.
    pub size: f64,
    /// Chunk size in bytes of the pipelined shapes.
    pub chunk: f64,
    /// Fan-out of the pipelined tree (>= 1; 1 is the pipelined chain).
    pub fanout: u32,
}

impl Case {
    fn chunks(&self) -> Vec<f64> {
        let n = (self.size / self.chunk).ceil().max(1.0) as usize;
        let mut v = vec![self.chunk; n];
        v[n - 1] = self.size - self.chunk * (n - 1) as f64;
        v
    }
}

/// Messages of `shape` for `case`.
pub(crate) fn plan(shape: Shape, case: &Case) -> Plan {
    let n = case.nodes;
    let mut p = Plan::new(n);
    match shape {
        Shape::Star | Shape::StarDedup => {
            let per_node = if shape == Shape::Star { case.ranks } else { 1 };
            for node in 1..n {
                for _ in 0..per_node {
                    p.send(0, node, case.size, [None, None]);
                }
            }
        }
        Shape::Chain => {
            let mut prev = None;
            for node in 1..n {
                prev = Some(p.send(node - 1, node, case.size, [prev, None]));
            }
        }
        Shape::Binomial => {
            // got[i]: the message that brought node i the object.
            let mut got: Vec<Option<MsgId>> = vec![None; n as usize];
            let mut last_send: Vec<Option<MsgId>> = vec![None; n as usize];
            let mut have = 1u32;
            while have < n {
                for i in 0..have.min(n - have) {
                    let to = i + have;
                    let m = p.send(i, to, case.size, [got[i as usize], last_send[i as usize]]);
                    got[to as usize] = Some(m);
                    last_send[i as usize] = Some(m);
                }
                have *= 2;
            }
        }
        Shape::PipelinedChain | Shape::PipelinedTree => {
            let k = if shape == Shape::PipelinedChain {
                1
            } else {
                case.fanout
            };
            let chunks = case.chunks();
            // into[i]: the message that brought node i the previous chunk.
            let mut into: Vec<Option<MsgId>> = vec![None; n as usize];
            for &c in &chunks {
                // Node order is parent before child, so a parent's chunk
                // message exists when its children's are made.
                let before = into.clone();
                for node in 1..n {
                    let parent = (node - 1) / k;
                    let has_chunk = if parent == 0 {
                        None
                    } else {
                        into[parent as usize]
                    };
                    into[node as usize] =
                        Some(p.send(parent, node, c, [has_chunk, before[node as usize]]));
                }
            }
        }
        Shape::TwoTree => super::two_tree::plan(&mut p, n, &case.chunks()),
        Shape::ScatterAllgather => scatter_allgather(&mut p, case),
    }
    p
}

/// Binomial scatter of `nodes` blocks (node i ends up with block i), then
/// a ring allgather: at step s node i sends block (i - s) mod N to i + 1.
fn scatter_allgather(p: &mut Plan, case: &Case) {
    let n = case.nodes as usize;
    let block = |b: usize| {
        let per = (case.size / n as f64).ceil();
        (case.size - per * b as f64).clamp(0.0, per)
    };
    let mut got: Vec<Option<MsgId>> = vec![None; n];
    let mut last_send: Vec<Option<MsgId>> = vec![None; n];
    // Node lo holds blocks [lo, hi): it sends the upper part of its range,
    // split at a power of two, to the node that starts it, then recurses.
    let mut stack = vec![(0usize, n)];
    while let Some((lo, hi)) = stack.pop() {
        if hi - lo < 2 {
            continue;
        }
        let mid = lo + (hi - lo).next_power_of_two() / 2;
        let bytes: f64 = (mid..hi).map(block).sum();
        if bytes > 0.0 {
            let m = p.send(lo as u32, mid as u32, bytes, [got[lo], last_send[lo]]);
            got[mid] = Some(m);
            last_send[lo] = Some(m);
        }
        // lo's next (smaller) send comes after this one: pushed last, popped
        // first, depth first, as each node runs its part.
        stack.push((mid, hi));
        stack.push((lo, mid));
    }
    // The ring: recv[i] is the message of the previous step into i.
    let mut recv: Vec<Option<MsgId>> = got.clone();
    for s in 0..n - 1 {
        let mut next = vec![None; n];
        for i in 0..n {
            let b = (i + n - s) % n;
            let to = (i + 1) % n;
            if block(b) > 0.0 {
                let m = p.send(i as u32, to as u32, block(b), [recv[i], last_send[i]]);
                next[to] = Some(m);
                last_send[i] = Some(m);
            } else {
                next[to] = recv[i];
            }
        }
        recv = next;
    }
}

/// The closed form of `shape` for `case` on `net`, where one exists:
/// exact for the simulation's model (the tests check it) in the cases named.
pub(crate) fn closed_form(shape: Shape, case: &Case, net: Net) -> Option<f64> {
    let (a, b, s) = (net.alpha, net.bandwidth, case.size);
    let n = case.nodes as f64;
    let chunks = (case.size / case.chunk).ceil();
    let hop = |bytes: f64| a + bytes / b;
    Some(match shape {
        // All gets at once, bound by the owner's send side.
        Shape::Star => a + (n - 1.0) * case.ranks as f64 * s / b,
        Shape::StarDedup => a + (n - 1.0) * s / b,
        Shape::Chain => (n - 1.0) * hop(s),
        Shape::Binomial => n.log2().ceil() * hop(s),
        // Exact when the chunk divides the object.
        Shape::PipelinedChain => (n - 2.0 + chunks) * hop(case.chunk),
        // Exact for a complete tree (every parent with k children) and a
        // chunk that divides the object: each chunk hop shares the sender's
        // bandwidth with k - 1 siblings; the deepest node is `depth` hops away.
        Shape::PipelinedTree => {
            let k = case.fanout;
            let depth = tree_depth(case.nodes, k) as f64;
            (depth - 1.0 + chunks) * (a + k.min(case.nodes - 1) as f64 * case.chunk / b)
        }
        // Exact for N a power of two (complete trees of N - 1 nodes) and an
        // even number of chunks: each tree carries half the chunks, every hop
        // shares a NIC two ways (two children, or two parents), and the
        // deepest node is log2 N hops from the owner.
        Shape::TwoTree => {
            let depth = (n - 1.0).log2().floor() + 1.0;
            ((chunks / 2.0).ceil() - 1.0 + depth) * (a + 2.0 * case.chunk / b)
        }
        // Exact for a power-of-two node count that divides the object:
        // log2 N halving rounds, then N - 1 ring steps of one block.
        Shape::ScatterAllgather => {
            n.log2().ceil() * a + (n - 1.0) / n * s / b + (n - 1.0) * hop(s / n)
        }
    })
}

/// Hops from the root to the deepest of `nodes` nodes in a heap-ordered
/// `k`-ary tree.
pub(crate) fn tree_depth(nodes: u32, k: u32) -> u32 {
    if k == 1 {
        return nodes - 1;
    }
    let mut depth = 0;
    let mut node = nodes - 1;
    while node > 0 {
        node = (node - 1) / k;
        depth += 1;
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::super::engine::run;
    use super::*;

    const MIB: f64 = 1048576.0;
    /// Round figures where every closed form is exact in binary floating
    /// point up to rounding.
    const NET: Net = Net {
        alpha: 2e-6,
        bandwidth: 25e9,
    };

    fn case(nodes: u32) -> Case {
        Case {
            nodes,
            ranks: 1,
            size: 64.0 * MIB,
            chunk: MIB,
            fanout: 2,
        }
    }

    fn check(shape: Shape, c: &Case) {
        let sim = run(&plan(shape, c), NET).makespan;
        let cf = closed_form(shape, c, NET).expect("closed form");
        assert!(
            (sim - cf).abs() <= 1e-9 * cf,
            "{} nodes={} ranks={} fanout={}: simulated {sim} s, closed form {cf} s",
            shape.name(),
            c.nodes,
            c.ranks,
            c.fanout
        );
    }

    /// `x` and `y` take the same time on `c`.
    fn same(x: Shape, y: Shape, c: &Case) {
        let (tx, ty) = (
            run(&plan(x, c), NET).makespan,
            run(&plan(y, c), NET).makespan,
        );
        assert!(
            (tx - ty).abs() <= 1e-9 * ty,
            "{}: {tx} s, {}: {ty} s",
            x.name(),
            y.name()
        );
    }

    #[test]
    fn star_is_alpha_plus_all_bytes_at_the_owners_nic() {
        for n in [2, 3, 8, 64] {
            check(Shape::Star, &case(n));
            check(Shape::StarDedup, &case(n));
            // Without dedup the owner sends K times as much.
            check(
                Shape::Star,
                &Case {
                    ranks: 4,
                    ..case(n)
                },
            );
            check(
                Shape::StarDedup,
                &Case {
                    ranks: 4,
                    ..case(n)
                },
            );
        }
        let four = Case {
            ranks: 4,
            ..case(8)
        };
        let star = run(&plan(Shape::Star, &four), NET).makespan;
        let dedup = run(&plan(Shape::StarDedup, &four), NET).makespan;
        assert!(star > 3.9 * dedup, "{star} vs {dedup}");
    }

    #[test]
    fn chain_and_binomial_match_their_closed_forms() {
        for n in [2, 3, 5, 8, 13, 64] {
            check(Shape::Chain, &case(n));
            check(Shape::Binomial, &case(n));
        }
    }

    #[test]
    fn pipelined_chain_matches_its_closed_form() {
        for n in [2, 3, 8, 100] {
            check(Shape::PipelinedChain, &case(n));
        }
        // One chunk: the store-and-forward chain.
        let one = Case {
            chunk: 64.0 * MIB,
            ..case(8)
        };
        same(Shape::PipelinedChain, Shape::Chain, &one);
    }

    #[test]
    fn pipelined_tree_matches_its_closed_form_on_complete_trees() {
        for n in [3, 7, 15, 63] {
            check(Shape::PipelinedTree, &case(n));
        }
        for n in [4, 13, 40] {
            check(
                Shape::PipelinedTree,
                &Case {
                    fanout: 3,
                    ..case(n)
                },
            );
        }
        // Fan-out 1 is the pipelined chain.
        let c = Case {
            fanout: 1,
            ..case(9)
        };
        same(Shape::PipelinedTree, Shape::PipelinedChain, &c);
        // On an incomplete tree the closed form is an upper bound.
        let c = case(10);
        let sim = run(&plan(Shape::PipelinedTree, &c), NET).makespan;
        assert!(sim <= closed_form(Shape::PipelinedTree, &c, NET).unwrap() * (1.0 + 1e-9));
    }

    #[test]
    fn two_tree_matches_its_closed_form_and_sends_the_object_once_per_node() {
        for n in [4, 8, 64] {
            check(Shape::TwoTree, &case(n));
        }
        let c = case(64);
        let p = plan(Shape::TwoTree, &c);
        for node in 0..64 {
            assert!(
                p.bytes_sent_by(node) <= c.size,
                "node {node} sends more than S"
            );
        }
        // Flat in N, whatever N: within 1.3 x one transfer (64 chunks).
        let one = NET.alpha + c.size / NET.bandwidth;
        for n in [6, 12, 64, 100, 200] {
            let t = run(&plan(Shape::TwoTree, &case(n)), NET).makespan;
            assert!(t < 1.3 * one, "{n} nodes: {t} s, one transfer {one} s");
        }
    }

    #[test]
    fn scatter_allgather_matches_its_closed_form_on_powers_of_two() {
        for n in [2, 4, 8, 32] {
            check(Shape::ScatterAllgather, &case(n));
        }
        // Any node count delivers every block to every node.
        for n in [3, 5, 6, 7, 12] {
            let c = case(n);
            let p = plan(Shape::ScatterAllgather, &c);
            let into_each: f64 = p.bytes_sent_by(0);
            assert!(into_each > 0.0);
            let o = run(&p, NET);
            assert!(
                o.node_done[1..].iter().all(|&t| t > 0.0),
                "{:?}",
                o.node_done
            );
        }
    }

    #[test]
    fn bytes_leaving_the_owner_per_shape() {
        let c = Case {
            ranks: 4,
            ..case(8)
        };
        let s = c.size;
        let sent = |shape| plan(shape, &c).bytes_sent_by(0);
        assert_eq!(sent(Shape::Star), 7.0 * 4.0 * s);
        assert_eq!(sent(Shape::StarDedup), 7.0 * s);
        assert_eq!(sent(Shape::Chain), s);
        assert_eq!(sent(Shape::PipelinedChain), s);
        assert_eq!(sent(Shape::PipelinedTree), 2.0 * s);
        assert_eq!(sent(Shape::Binomial), 3.0 * s);
    }

    #[test]
    fn depth_of_heap_ordered_trees() {
        assert_eq!(tree_depth(2, 2), 1);
        assert_eq!(tree_depth(3, 2), 1);
        assert_eq!(tree_depth(4, 2), 2);
        assert_eq!(tree_depth(7, 2), 2);
        assert_eq!(tree_depth(8, 2), 3);
        assert_eq!(tree_depth(1024, 2), 10);
        assert_eq!(tree_depth(5, 1), 4);
        assert_eq!(tree_depth(13, 3), 2);
    }

    #[test]
    fn shapes_parse_by_name() {
        for s in Shape::ALL {
            assert_eq!(Shape::parse(s.name()), Ok(s));
        }
        assert!(Shape::parse("ring").unwrap_err().contains("pipelined-tree"));
    }
}
