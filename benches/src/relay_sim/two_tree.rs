//! Two pipelined binary trees over the same nodes (as NCCL's double binary
//! tree, after Sanders, Speck and Träff's two-tree broadcast): the owner
//! sends even chunks down tree A and odd chunks down tree B, and a node that
//! is interior in one tree is a leaf in the other, so no node sends more than
//! the object once (two children, half the chunks) while every node receives
//! it at the rate of one link: about S/B + depth x chunk hops, flat in N.

use super::engine::{MsgId, Plan};

/// The parent of role `x` in the in-order binary tree over roles 1..=m
/// (role x's height is its number of trailing zeros: odd roles are the
/// leaves), `None` for the root (the largest power of two <= m). A parent
/// beyond m is skipped for the first ancestor within 1..=m, which takes
/// its place: still at most two children each.
fn role_parent(x: u32, m: u32) -> Option<u32> {
    let root = 1u32 << (31 - m.leading_zeros());
    if x == root {
        return None;
    }
    let mut y = x;
    loop {
        let h = y.trailing_zeros();
        let up = if (y >> (h + 1)) & 1 == 0 {
            y + (1 << h)
        } else {
            y - (1 << h)
        };
        if up <= m {
            return Some(up);
        }
        y = up;
    }
}

/// Parents of nodes 1..=m (index 0 unused; the root's parent is node 0, the
/// owner) and the nodes parent first, for the tree in which node 1 + p plays
/// role (p + shift) mod m + 1. With shift 1, a node interior in the shift-0
/// tree (an even role) plays an odd role: a leaf.
pub(crate) fn tree(m: u32, shift: u32) -> (Vec<u32>, Vec<u32>) {
    let node_of = |role: u32| 1 + (role - 1 + m - shift % m) % m;
    let mut parent = vec![0u32; m as usize + 1];
    let mut depth = vec![0u32; m as usize + 1];
    for x in 1..=m {
        parent[node_of(x) as usize] = role_parent(x, m).map_or(0, node_of);
    }
    // Depths by roles in order of height, parents first: a role's parent is
    // higher, so sort roles by height descending and fill.
    let mut roles: Vec<u32> = (1..=m).collect();
    roles.sort_by_key(|&x| std::cmp::Reverse(x.trailing_zeros()));
    for x in roles {
        let node = node_of(x);
        let up = parent[node as usize];
        depth[node as usize] = if up == 0 { 1 } else { depth[up as usize] + 1 };
    }
    let mut order: Vec<u32> = (1..=m).collect();
    order.sort_by_key(|&n| depth[n as usize]);
    (parent, order)
}

/// Chunk c goes down tree c mod 2; on each edge of a tree a chunk waits for
/// its parent to have it and for the tree's previous chunk on that edge.
pub(crate) fn plan(p: &mut Plan, nodes: u32, chunks: &[f64]) {
    let m = nodes - 1;
    let trees = [tree(m, 0), tree(m, 1)];
    // into[t][node]: the message that brought node its last chunk of tree t.
    let mut into: [Vec<Option<MsgId>>; 2] =
        [vec![None; nodes as usize], vec![None; nodes as usize]];
    for (c, &bytes) in chunks.iter().enumerate() {
        let t = c % 2;
        let (parent, order) = &trees[t];
        let before = into[t].clone();
        for &node in order {
            let up = parent[node as usize];
            let has_chunk = if up == 0 { None } else { into[t][up as usize] };
            into[t][node as usize] =
                Some(p.send(up, node, bytes, [has_chunk, before[node as usize]]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children(parent: &[u32], node: u32) -> usize {
        parent[1..].iter().filter(|&&p| p == node).count()
    }

    #[test]
    fn every_node_is_in_both_trees_and_interior_in_at_most_one() {
        for m in [1u32, 2, 3, 5, 6, 7, 10, 15, 63, 100, 767, 1023] {
            let (a, oa) = tree(m, 0);
            let (b, ob) = tree(m, 1);
            assert_eq!(oa.len() as u32, m);
            assert_eq!(ob.len() as u32, m);
            // One root each, under the owner.
            assert_eq!(a[1..].iter().filter(|&&p| p == 0).count(), 1);
            assert_eq!(b[1..].iter().filter(|&&p| p == 0).count(), 1);
            for node in 1..=m {
                let (ca, cb) = (children(&a, node), children(&b, node));
                assert!(ca <= 2 && cb <= 2);
                assert!(
                    ca == 0 || cb == 0,
                    "m={m}: node {node} is interior in both trees"
                );
            }
        }
    }

    #[test]
    fn parents_come_before_their_children() {
        for m in [5u32, 12, 100] {
            for shift in [0, 1] {
                let (parent, order) = tree(m, shift);
                let pos = |n: u32| order.iter().position(|&x| x == n).unwrap();
                for &n in &order {
                    if parent[n as usize] != 0 {
                        assert!(pos(parent[n as usize]) < pos(n));
                    }
                }
            }
        }
    }
}
