//! MPI-launched benchmark: proxies sent between ranks and resolved there,
//! next to the same payload sent with MPI point-to-point (the fabric's
//! reference).
//!
//! Patterns (rank 0 is the producer where there is one):
//! - `pair`: rank 0 → rank 1;
//! - `fanout`: rank 0 → every other rank (each resolves the same proxy);
//! - `alltoall`: every rank produces one object and resolves everyone else's.
//!
//! References: `mpi` (the payload sent with point-to-point send/receive) and
//! `mpi-get` (pair and fan-out: the consumers read the payload from rank 0's
//! window with a passive-target `MPI_Get`).
//!
//! Per connector and size: producer put time, serialized proxy size, consumer
//! resolve latency (median, p10, p90) twice over, end-to-end time on the
//! producer's clock (put + send proxy + remote resolve + ack), bandwidth per
//! consumer and aggregate. Rows are appended to the CSV as soon as they are
//! measured, so a run that dies still leaves its partial results.
//!
//! The two resolve figures of one resolve (CSV ops):
//! - `resolve`: resolve, then read one byte per 4 KiB page ("touch");
//! - `resolve_read_all`: the same resolve, timed on until a checksum of every
//!   byte is done (it includes the touch, a strided pass that costs no more
//!   than the page faults a first full read would take anyway).
//!
//! A bandwidth (MB/s = 10^6 B/s, size / median) is given only for what moved
//! or was read: the read-all figure always; the touch figure only when the
//! data moved into the consumer (`data=moved`: a copy, a receive, a one-sided
//! read into local memory). When the consumer's bytes are a mapping of memory
//! already on its node (`data=mapped`: the file connector's `mmap` of the page
//! cache), the touch moves nothing and its MB/s cell stays empty.

mod pattern;
mod patterns;
mod references;
mod report;
mod setup;

use std::path::PathBuf;

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use proxy_core::{Error, Result};

use crate::connectors::{self, ConnectorOpts};
use crate::csv::fmt_size;
use crate::progress::Progress;
use crate::rma;
pub use pattern::Pattern;
use patterns::{payload, proxy_rep};
use references::{mpi_get_rep, mpi_rep};
use report::Sink;
pub use report::{Series, data_moves, table};
use setup::{Ctx, agree, close_store, nodes_of, open_store, series_moves, size_limit};

pub struct MpiOpts {
    pub patterns: Vec<Pattern>,
    pub connectors: Vec<String>,
    pub sizes: Vec<usize>,
    pub reps: usize,
    pub warmup: usize,
    pub alltoall_max: usize,
    pub csv: Option<PathBuf>,
    pub conn: ConnectorOpts,
}

/// Run every pattern × connector × size. Returns the series measured (on rank
/// 0; also the ones before a failure) and how the run ended.
pub fn run(
    world: &SimpleCommunicator,
    opts: &MpiOpts,
    progress: &Progress,
) -> (Vec<Series>, Result<()>) {
    let mut out = Vec::new();
    let res = run_into(world, opts, progress, &mut out);
    (out, res)
}

fn run_into(
    world: &SimpleCommunicator,
    opts: &MpiOpts,
    progress: &Progress,
    out: &mut Vec<Series>,
) -> Result<()> {
    let ctx = Ctx {
        world,
        rank: world.rank() as usize,
        n: world.size() as usize,
        node_of: nodes_of(world),
    };
    if ctx.n < 2 {
        return Err(Error::InvalidConfig {
            connector: None,
            reason: too_few_ranks(std::env::var("SLURM_STEP_NUM_TASKS").ok().as_deref()),
        });
    }
    connectors::register_all();
    let mut sink = if ctx.rank == 0 {
        Sink::new(opts.csv.as_ref())?
    } else {
        Sink { file: None }
    };
    let max_size = opts.sizes.iter().copied().max().unwrap_or(0);
    // Receive buffer of the MPI reference: one object (pair, fanout) or one per
    // rank (all-to-all's all-gather).
    let mut recv = vec![0u8; max_size.max(max_size.min(opts.alltoall_max) * ctx.n)];
    recv.iter_mut().step_by(4096).for_each(|b| *b = 1); // pre-fault
    for &pat in &opts.patterns {
        let references = ["mpi", "mpi-get"];
        for cname in references
            .into_iter()
            .chain(opts.connectors.iter().map(String::as_str))
        {
            // MPI_Get: rank 0's object read by the consumers (pair, fan-out).
            if cname == "mpi-get" && pat == Pattern::AllToAll {
                continue;
            }
            let needs_store = !references.contains(&cname);
            let made = open_store(&ctx, pat, cname, needs_store, &opts.conn)?;
            let min_limit = size_limit(&ctx, made.as_ref());
            for &size in &opts.sizes {
                if pat == Pattern::AllToAll && size > opts.alltoall_max {
                    continue;
                }
                if size as i64 > min_limit {
                    if ctx.rank == 0 {
                        eprintln!(
                            "skipping {} {cname} {}: over the connector's object size limit",
                            pat.name(),
                            fmt_size(size)
                        );
                    }
                    continue;
                }
                if ctx.rank == 0 {
                    progress.say(&format!(
                        "{} {cname} {} x{}",
                        pat.name(),
                        fmt_size(size),
                        opts.reps
                    ));
                }
                let obj = payload(size);
                // The MPI_Get reference reads rank 0's window (filled untimed).
                let window = if cname == "mpi-get" {
                    let w = rma::Window::allocate(world, if ctx.rank == 0 { size } else { 0 });
                    let mut w = agree(&ctx, w)?;
                    let mine = w.local_mut();
                    let n = mine.len();
                    mine.copy_from_slice(&obj[..n]);
                    Some(w)
                } else {
                    None
                };
                let mut s = Series {
                    pattern: pat,
                    connector: cname.to_string(),
                    size,
                    ranks: ctx.n,
                    put_us: vec![],
                    resolve_us: vec![],
                    read_us: vec![],
                    e2e_us: vec![],
                    aggregate_mbps: vec![],
                    read_aggregate_mbps: vec![],
                    proxy_bytes: 0,
                    // MPI moves the payload; a connector as its capabilities say.
                    moved: made.as_ref().is_none_or(|m| data_moves(m.1.kind())),
                };
                for rep in 0..opts.warmup + opts.reps {
                    let record = rep >= opts.warmup;
                    if let Some(w) = &window {
                        let r = mpi_get_rep(&ctx, pat, w, size, &mut recv);
                        if let Some(m) = agree(&ctx, r)?
                            && record
                        {
                            m.record(&mut s);
                        }
                    } else if cname == "mpi" {
                        if let Some(m) = mpi_rep(&ctx, pat, &obj, &mut recv)
                            && record
                        {
                            m.record(&mut s);
                        }
                    } else {
                        let r = proxy_rep(&ctx, pat, made.as_ref().map(|m| &m.0), &obj);
                        if let Err(e) = &r {
                            eprintln!(
                                "rank {}: {} {cname} {}: {e}",
                                ctx.rank,
                                pat.name(),
                                fmt_size(size)
                            );
                        }
                        let r = agree(&ctx, r);
                        match r {
                            Ok(Some(rep)) if record => rep.record(&mut s),
                            Ok(_) => {}
                            Err(e) => {
                                if ctx.rank == 0 && !s.e2e_us.is_empty() {
                                    sink.push(&s);
                                    out.push(s);
                                }
                                return Err(e);
                            }
                        }
                    }
                }
                // A connector that read a server on this node in place moved
                // nothing (known once it has talked to the server), unless
                // consumers on other nodes read it (they copy).
                if let Some((_, c)) = &made {
                    let consumers = match pat {
                        Pattern::AllToAll => (0..ctx.n).collect(),
                        p => p.consumers(ctx.n),
                    };
                    s.moved = series_moves(
                        s.moved,
                        c.capabilities().mapped_get,
                        &ctx.node_of,
                        &consumers,
                    );
                }
                if ctx.rank == 0 {
                    sink.push(&s);
                    out.push(s);
                }
            }
            close_store(&ctx, pat, made);
        }
    }
    Ok(())
}

/// Why a one-rank world cannot run, given the task count of the Slurm job
/// step this process belongs to (`SLURM_STEP_NUM_TASKS`), if any: several
/// tasks that each see one rank were started by an `srun` without MPI
/// wire-up (a site's `MpiDefault=none`).
fn too_few_ranks(step_tasks: Option<&str>) -> String {
    match step_tasks.and_then(|n| n.trim().parse::<usize>().ok()) {
        Some(n) if n > 1 => format!(
            "srun started {n} tasks, but each is a one-rank MPI job: srun gave them no MPI \
             wire-up; run srun --mpi=pmi2 (MPICH; pmix for an MPI built with PMIx; \
             `srun --mpi=list` shows what this Slurm offers)"
        ),
        _ => "the MPI benchmark needs at least 2 ranks (mpiexec -n 2 ...)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rank_under_srun_names_the_missing_mpi_plugin() {
        let m = too_few_ranks(Some("2"));
        assert!(
            m.contains("srun started 2 tasks") && m.contains("--mpi=pmi2"),
            "{m}"
        );
        for outside in [None, Some("1"), Some("x")] {
            assert!(too_few_ranks(outside).contains("at least 2 ranks"));
        }
    }
}
