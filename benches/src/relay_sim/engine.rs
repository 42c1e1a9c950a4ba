//! The discrete-event simulation: a plan of messages (source node,
//! destination node, bytes, at most two messages it waits for), run over
//! nodes with one full-duplex NIC each.
//!
//! The network model (alpha-beta, fluid):
//! - a message that became ready (every message it waits for has arrived)
//!   first spends `alpha` (the per-hop latency: software, NIC, wire, switch),
//!   using no bandwidth, then moves its bytes;
//! - a node sends at `bandwidth` bytes/s and receives at `bandwidth` bytes/s
//!   at the same time (full duplex); its concurrent sends share its send
//!   bandwidth equally, its concurrent receives its receive bandwidth;
//! - a message in its byte phase goes at the smaller of its two shares
//!   (`bandwidth / sends at its source`, `bandwidth / receives at its
//!   destination`), recomputed whenever a message starts or ends at either
//!   node. This is max-min fair whenever a node's concurrent messages are
//!   bound by the same side, which holds in every shape of `shapes.rs`.
//!
//! No switch contention (a full-bisection fabric), no congestion control, no
//! CPU: what is left is what a relay's shape costs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Per-hop latency and per-direction NIC bandwidth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Net {
    /// Seconds.
    pub alpha: f64,
    /// Bytes per second, per direction.
    pub bandwidth: f64,
}

/// Index of a message in a [`Plan`].
pub(crate) type MsgId = u32;
const NONE: MsgId = MsgId::MAX;

#[derive(Debug, Clone, Copy)]
struct Msg {
    src: u32,
    dst: u32,
    bytes: f64,
    deps: [MsgId; 2],
}

/// A set of messages and what each waits for (a DAG: a message only waits
/// for earlier ones).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    nodes: u32,
    msgs: Vec<Msg>,
}

impl Plan {
    pub fn new(nodes: u32) -> Self {
        Plan {
            nodes,
            msgs: Vec::new(),
        }
    }

    /// A message of `bytes` from `src` to `dst` that starts once every
    /// message of `deps` (at most two; `None`s are skipped) has arrived.
    pub fn send(&mut self, src: u32, dst: u32, bytes: f64, deps: [Option<MsgId>; 2]) -> MsgId {
        assert!(src < self.nodes && dst < self.nodes && src != dst);
        assert!(bytes > 0.0, "a message moves bytes");
        let id = self.msgs.len() as MsgId;
        assert!(id < NONE, "too many messages");
        let deps = deps.map(|d| {
            let d = d.unwrap_or(NONE);
            assert!(d == NONE || d < id, "a message waits only for earlier ones");
            d
        });
        self.msgs.push(Msg {
            src,
            dst,
            bytes,
            deps,
        });
        id
    }

    /// Bytes sent by `node`.
    pub fn bytes_sent_by(&self, node: u32) -> f64 {
        self.msgs
            .iter()
            .filter(|m| m.src == node)
            .map(|m| m.bytes)
            .sum()
    }
}

/// What a run gives.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// When the last message arrived (seconds).
    pub makespan: f64,
    /// When each node received its last message (0 for a node that received
    /// none, such as the owner).
    pub node_done: Vec<f64>,
}

/// An event: a message's latency is over (`Start`) or its last byte may have
/// arrived (`Finish`, valid if its version is still the message's).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    t: f64,
    id: MsgId,
    finish: bool,
    version: u32,
}

impl Eq for Event {}
impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        // Earliest first (BinaryHeap is a max-heap); ties by id for determinism.
        o.t.total_cmp(&self.t).then(o.id.cmp(&self.id))
    }
}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    remaining: f64,
    rate: f64,
    since: f64,
    version: u32,
}

/// Runs `plan` on `net`.
pub(crate) fn run(plan: &Plan, net: Net) -> Outcome {
    assert!(net.bandwidth > 0.0 && net.alpha >= 0.0);
    let n = plan.msgs.len();
    // Who waits for whom, as compressed rows.
    let mut waiting = vec![0u8; n];
    let mut start = vec![0u32; n + 1];
    for m in &plan.msgs {
        for &d in m.deps.iter().filter(|&&d| d != NONE) {
            start[d as usize + 1] += 1;
        }
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut dependents = vec![0 as MsgId; start[n] as usize];
    for (i, m) in plan.msgs.iter().enumerate() {
        for &d in m.deps.iter().filter(|&&d| d != NONE) {
            dependents[fill[d as usize] as usize] = i as MsgId;
            fill[d as usize] += 1;
            waiting[i] += 1;
        }
    }

    let nodes = plan.nodes as usize;
    let mut sending: Vec<Vec<MsgId>> = vec![Vec::new(); nodes];
    let mut receiving: Vec<Vec<MsgId>> = vec![Vec::new(); nodes];
    let mut flows = vec![Flow::default(); n];
    let mut node_done = vec![0.0f64; nodes];
    let mut heap = BinaryHeap::new();
    for (i, w) in waiting.iter().enumerate() {
        if *w == 0 {
            heap.push(Event {
                t: net.alpha,
                id: i as MsgId,
                finish: false,
                version: 0,
            });
        }
    }
    let mut done = 0usize;
    let mut now = 0.0f64;
    // Nodes whose send (resp. receive) side changed at this instant.
    let mut touched_send: Vec<u32> = Vec::new();
    let mut touched_recv: Vec<u32> = Vec::new();
    while let Some(first) = heap.pop() {
        now = first.t;
        // Every event of this instant (within rounding) before rates change.
        let eps = now.abs() * 1e-12 + 1e-18;
        let mut batch = vec![first];
        while heap.peek().is_some_and(|e| e.t <= now + eps) {
            batch.push(heap.pop().expect("peeked"));
        }
        for e in batch {
            let i = e.id as usize;
            let m = plan.msgs[i];
            if e.finish {
                if e.version != flows[i].version {
                    continue; // superseded by a rate change
                }
                remove(&mut sending[m.src as usize], e.id);
                remove(&mut receiving[m.dst as usize], e.id);
                touched_send.push(m.src);
                touched_recv.push(m.dst);
                node_done[m.dst as usize] = now;
                done += 1;
                for &d in &dependents[start[i] as usize..start[i + 1] as usize] {
                    waiting[d as usize] -= 1;
                    if waiting[d as usize] == 0 {
                        heap.push(Event {
                            t: now + net.alpha,
                            id: d,
                            finish: false,
                            version: 0,
                        });
                    }
                }
            } else {
                flows[i] = Flow {
                    remaining: m.bytes,
                    rate: 0.0,
                    since: now,
                    version: 0,
                };
                sending[m.src as usize].push(e.id);
                receiving[m.dst as usize].push(e.id);
                touched_send.push(m.src);
                touched_recv.push(m.dst);
            }
        }
        // New rates for every flow at a touched side (a flow is recomputed
        // once even if both its nodes were touched).
        let mut affected: Vec<MsgId> = Vec::new();
        touched_send.sort_unstable();
        touched_send.dedup();
        touched_recv.sort_unstable();
        touched_recv.dedup();
        for &s in &touched_send {
            affected.extend_from_slice(&sending[s as usize]);
        }
        for &r in &touched_recv {
            affected.extend_from_slice(&receiving[r as usize]);
        }
        touched_send.clear();
        touched_recv.clear();
        affected.sort_unstable();
        affected.dedup();
        for id in affected {
            let m = plan.msgs[id as usize];
            let share = sending[m.src as usize]
                .len()
                .max(receiving[m.dst as usize].len());
            let rate = net.bandwidth / share as f64;
            let f = &mut flows[id as usize];
            f.remaining = (f.remaining - f.rate * (now - f.since)).max(0.0);
            f.since = now;
            f.rate = rate;
            f.version += 1;
            heap.push(Event {
                t: now + f.remaining / rate,
                id,
                finish: true,
                version: f.version,
            });
        }
    }
    assert_eq!(done, n, "a message waited for one that never arrived");
    Outcome {
        makespan: now,
        node_done,
    }
}

fn remove(list: &mut Vec<MsgId>, id: MsgId) {
    let at = list.iter().position(|&x| x == id).expect("active flow");
    list.swap_remove(at);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: Net = Net {
        alpha: 1e-3,
        bandwidth: 1e6,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn one_message_costs_alpha_plus_bytes_over_bandwidth() {
        let mut p = Plan::new(2);
        p.send(0, 1, 2e6, [None, None]);
        let o = run(&p, NET);
        assert!(close(o.makespan, 1e-3 + 2.0), "{}", o.makespan);
        assert!(close(o.node_done[1], o.makespan));
        assert_eq!(o.node_done[0], 0.0);
    }

    #[test]
    fn concurrent_sends_share_the_senders_bandwidth() {
        // Two sends from node 0 of 1 MB and 3 MB: both at half rate until
        // the small one ends (2 s), then the big one alone (2 MB more, 2 s).
        let mut p = Plan::new(3);
        let a = p.send(0, 1, 1e6, [None, None]);
        let b = p.send(0, 2, 3e6, [None, None]);
        let o = run(&p, NET);
        assert!(close(o.node_done[1], 1e-3 + 2.0), "{:?}", o.node_done);
        assert!(close(o.node_done[2], 1e-3 + 4.0), "{:?}", o.node_done);
        // Full duplex: a node receiving while it sends goes at full rate.
        let mut p = Plan::new(3);
        p.send(0, 1, 1e6, [None, None]);
        p.send(1, 2, 1e6, [None, None]);
        assert!(close(run(&p, NET).makespan, 1e-3 + 1.0));
        let _ = (a, b);
    }

    #[test]
    fn concurrent_receives_share_the_receivers_bandwidth() {
        let mut p = Plan::new(3);
        p.send(0, 2, 1e6, [None, None]);
        p.send(1, 2, 1e6, [None, None]);
        assert!(close(run(&p, NET).makespan, 1e-3 + 2.0));
    }

    #[test]
    fn a_message_waits_for_its_dependencies_then_alpha() {
        let mut p = Plan::new(3);
        let a = p.send(0, 1, 1e6, [None, None]);
        let b = p.send(0, 2, 2e6, [None, None]);
        p.send(1, 2, 1e6, [Some(a), Some(b)]);
        // a and b share node 0 until a ends at alpha + 2; b ends at alpha + 3;
        // the third starts after that and alpha: 2 alpha + 4.
        let o = run(&p, NET);
        assert!(close(o.makespan, 2e-3 + 4.0), "{}", o.makespan);
    }

    #[test]
    #[should_panic(expected = "earlier")]
    fn a_message_cannot_wait_for_a_later_one() {
        let mut p = Plan::new(2);
        p.send(0, 1, 1.0, [Some(3), None]);
    }
}
