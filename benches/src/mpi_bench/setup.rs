//! What every rank shares while a run sets up its connectors: the rank's
//! context (world, rank, node of each rank), the one collective that makes
//! every rank learn of a failure, and whether a series' data moved.

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use proxy_core::{Error, Result, Store};

use super::pattern::Pattern;
use crate::connectors::{self, ConnectorOpts};
use proxy_core::DynConnector;

pub(super) struct Ctx<'a> {
    pub(super) world: &'a SimpleCommunicator,
    pub(super) rank: usize,
    pub(super) n: usize,
    /// Each rank's node: the lowest world rank on that node.
    pub(super) node_of: Vec<i32>,
}

/// Each rank's node, as the lowest world rank of its shared-memory node
/// (`MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`), gathered on every rank.
pub(super) fn nodes_of(world: &SimpleCommunicator) -> Vec<i32> {
    let node = world.split_shared(0);
    let mut leader = 0i32;
    node.all_reduce_into(
        &world.rank(),
        &mut leader,
        mpi::collective::SystemOperation::min(),
    );
    let mut all = vec![0i32; world.size() as usize];
    world.all_gather_into(&leader, &mut all[..]);
    all
}

/// Whether a series' data moved into its consumers: always for MPI and the
/// connectors that copy (`kind_moves`); for one that maps a server on its
/// node (`mapped_get`), unless every consumer is on the producer's node
/// (rank 0's; all-to-all: every rank) — a consumer on another node copies
/// over the network.
pub(super) fn series_moves(
    kind_moves: bool,
    mapped_get: bool,
    node_of: &[i32],
    consumers: &[usize],
) -> bool {
    kind_moves && !(mapped_get && consumers.iter().all(|&c| node_of.get(c) == node_of.first()))
}

/// Check `r` on every rank: if any rank failed, all learn it (no rank is left
/// blocked in a receive) and the failing rank's message is printed by it.
pub(super) fn agree<T>(ctx: &Ctx<'_>, r: Result<T>) -> Result<T> {
    // Exactly one collective per call, on every rank, whatever happened.
    let mine: i32 = i32::from(r.is_err());
    let mut any = 0i32;
    ctx.world
        .all_reduce_into(&mine, &mut any, mpi::collective::SystemOperation::max());
    match r {
        Err(e) => Err(e),
        Ok(_) if any != 0 => Err(Error::permanent(
            "mpi",
            "benchmark",
            "another rank failed (see its message)",
        )),
        Ok(v) => Ok(v),
    }
}

/// A rank's store and its connector, where the rank needs one.
pub(super) type Made = Option<(Store, DynConnector)>;

/// Make connector `cname`'s store on the ranks that need one (every rank for
/// all-to-all; only the producer otherwise; none when `needs_store` is
/// false, for the MPI references). A rank that fails says why, and every
/// rank learns of it ([`agree`]).
pub(super) fn open_store(
    ctx: &Ctx<'_>,
    pat: Pattern,
    cname: &str,
    needs_store: bool,
    opts: &ConnectorOpts,
) -> Result<Made> {
    let needs_store = needs_store && (pat == Pattern::AllToAll || ctx.rank == 0);
    let made = if needs_store {
        connectors::make(cname, opts)
            .and_then(|c| {
                // One store name per rank: in all-to-all each rank's proxies
                // name their own store, and names must not collide.
                let store = Store::builder(format!("mpi-bench-{cname}-r{}", ctx.rank), c.clone())
                    .cache_bytes(0)
                    .build()?;
                Ok((store, c))
            })
            .map(Some)
    } else {
        Ok(None)
    };
    if let Err(e) = &made {
        eprintln!("rank {}: cannot set up connector '{cname}': {e}", ctx.rank);
    }
    agree(ctx, made)
}

/// The largest object every rank's connector takes (e.g. Redis' 512 MiB
/// strings), so that larger sizes are skipped on every rank alike.
pub(super) fn size_limit(ctx: &Ctx<'_>, made: Option<&(Store, DynConnector)>) -> i64 {
    let limit = made
        .and_then(|m| m.1.capabilities().max_object_size)
        .map_or(i64::MAX, |l| {
            i64::try_from(l.saturating_sub(4096)).unwrap_or(i64::MAX)
        });
    // (i64: a u64 all-reduce was treated as signed here, making u64::MAX -1.)
    let mut min_limit = 0i64;
    ctx.world.all_reduce_into(
        &limit,
        &mut min_limit,
        mpi::collective::SystemOperation::min(),
    );
    min_limit
}

/// Close a rank's store; the ranks that made the connector's resources
/// (rank 0; every rank for all-to-all) remove them.
pub(super) fn close_store(ctx: &Ctx<'_>, pat: Pattern, made: Made) {
    if let Some((store, conn)) = made {
        let _ = store.close();
        if ctx.rank == 0 || pat == Pattern::AllToAll {
            connectors::cleanup(&conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_unless_every_consumer_maps_on_the_producers_node() {
        // node_of: ranks 0, 1 on node 0; ranks 2, 3 on node 2.
        let nodes = [0, 0, 2, 2];
        assert!(!series_moves(true, true, &nodes, &[1]), "same node, mapped");
        assert!(
            series_moves(true, true, &nodes, &[1, 2]),
            "one consumer elsewhere"
        );
        assert!(
            series_moves(true, false, &nodes, &[1]),
            "not mapped: copied"
        );
        assert!(
            !series_moves(false, false, &nodes, &[2]),
            "file: mapped pages"
        );
    }
}
