//! The MPI references: the same payload sent with MPI point-to-point
//! (`mpi`; all-to-all: an all-gather), and read by the consumers from rank
//! 0's window with a passive-target `MPI_Get` (`mpi-get`; pair and fan-out).

use std::time::Instant;

use bytes::Bytes;
use mpi::traits::*;
use proxy_core::{Error, Result};

use super::pattern::Pattern;
use super::patterns::{Rep, Timings, checksum, touch, us};
use super::setup::Ctx;
use crate::rma;

/// One repetition of the `MPI_Get` reference (pair, fan-out): rank 0 tells
/// each consumer to read (a one-word message, as a proxy would be), the
/// consumer reads the object from rank 0's window with a passive-target
/// `MPI_Get` (rank 0 only waits for the answers), touches it, then reads
/// every byte.
pub(super) fn mpi_get_rep(
    ctx: &Ctx<'_>,
    pat: Pattern,
    win: &rma::Window,
    size: usize,
    recv: &mut [u8],
) -> Result<Option<Rep>> {
    let world = ctx.world;
    world.barrier();
    let consumers = pat.consumers(ctx.n);
    if ctx.rank == 0 {
        let t0 = Instant::now();
        for &c in &consumers {
            world.process_at_rank(c as i32).send(&[size as u64][..]);
        }
        let (timings, failed) = Timings::receive(world, &consumers);
        let e2e = us(t0);
        if failed {
            return Err(Error::permanent(
                "mpi",
                "MPI_Get",
                "a consumer rank failed to read (see its message)",
            ));
        }
        Ok(Some(Rep {
            put: None,
            timings,
            e2e,
            bytes: consumers.len() * size,
            proxy_bytes: 0,
        }))
    } else if consumers.contains(&ctx.rank) {
        let mut go = [0u64; 1];
        world.process_at_rank(0).receive_into(&mut go[..]);
        let t = Instant::now();
        let r = win.get(0, &mut recv[..size]);
        std::hint::black_box(touch(&recv[..size]));
        let touched = us(t);
        std::hint::black_box(checksum(&recv[..size]));
        let reply = [touched, us(t), if r.is_ok() { 1.0 } else { -1.0 }];
        world.process_at_rank(0).send(&reply[..]);
        r.map(|()| None)
    } else {
        Ok(None)
    }
}

/// One repetition of the MPI reference: the payload itself over MPI.
pub(super) fn mpi_rep(ctx: &Ctx<'_>, pat: Pattern, obj: &Bytes, recv: &mut [u8]) -> Option<Rep> {
    let size = obj.len();
    let world = ctx.world;
    world.barrier();
    match pat {
        Pattern::Pair | Pattern::Fanout => {
            let consumers = pat.consumers(ctx.n);
            if ctx.rank == 0 {
                let t0 = Instant::now();
                for &c in &consumers {
                    world.process_at_rank(c as i32).send(&obj[..]);
                }
                // A receive does not fail: every reply says ok.
                let (timings, _) = Timings::receive(world, &consumers);
                Some(Rep {
                    put: None,
                    timings,
                    e2e: us(t0),
                    bytes: consumers.len() * size,
                    proxy_bytes: 0,
                })
            } else if consumers.contains(&ctx.rank) {
                let t = Instant::now();
                world.process_at_rank(0).receive_into(&mut recv[..size]);
                std::hint::black_box(touch(&recv[..size]));
                let touched = us(t);
                std::hint::black_box(checksum(&recv[..size]));
                let reply = [touched, us(t), 1.0];
                world.process_at_rank(0).send(&reply[..]);
                None
            } else {
                None
            }
        }
        Pattern::AllToAll => {
            let t = Instant::now();
            world.all_gather_into(&obj[..], &mut recv[..size * ctx.n]);
            let gathered_us = us(t);
            // Read every byte of the other ranks' objects.
            for r in (0..ctx.n).filter(|&r| r != ctx.rank) {
                std::hint::black_box(checksum(&recv[r * size..(r + 1) * size]));
            }
            let mine = [gathered_us, us(t)];
            let mut gathered = vec![0f64; 2 * ctx.n];
            let root = world.process_at_rank(0);
            if ctx.rank == 0 {
                root.gather_into_root(&mine[..], &mut gathered[..]);
                let timings = Timings::new(
                    gathered.chunks(2).map(|c| c[0]).collect(),
                    gathered.chunks(2).map(|c| c[1]).collect(),
                );
                Some(Rep {
                    put: None,
                    e2e: timings.worst(),
                    timings,
                    bytes: ctx.n * (ctx.n - 1) * size,
                    proxy_bytes: 0,
                })
            } else {
                root.gather_into(&mine[..]);
                None
            }
        }
    }
}
