//! The pattern drivers: one repetition of pair, fan-out or all-to-all with
//! proxies (put on the producer, the serialized proxy sent in a fixed slot,
//! resolved and read on the consumers, timings gathered on rank 0), and the
//! payload and read helpers the MPI references share.

use std::time::Instant;

use bytes::Bytes;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use proxy_core::{Error, Proxy, ProxyOptions, Result, Store};

use super::pattern::Pattern;
use super::report::Series;
use super::setup::Ctx;

/// Fixed slot for a serialized proxy in collective exchanges.
const SLOT: usize = 2048;

pub(super) fn payload(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(5))
        .collect::<Vec<u8>>()
        .into()
}

/// Read one byte per 4 KiB page.
pub(super) fn touch(b: &[u8]) -> u64 {
    b.iter().step_by(4096).map(|&x| x as u64).sum()
}

/// Read every byte: a wrapping sum of little-endian 64-bit words (and the
/// tail's bytes), so the loop runs at memory speed.
pub(super) fn checksum(b: &[u8]) -> u64 {
    let words = b.chunks_exact(8);
    let tail: u64 = words.remainder().iter().map(|&x| x as u64).sum();
    words.fold(tail, |acc, w| {
        acc.wrapping_add(u64::from_le_bytes(w.try_into().expect("8-byte chunk")))
    })
}

/// Sent instead of a proxy when the producer failed.
const FAILED_SLOT: [u8; SLOT] = {
    let mut s = [0u8; SLOT];
    s[0] = 0xff;
    s[1] = 0xff;
    s[2] = 0xff;
    s[3] = 0xff;
    s
};

fn pack(wire: &[u8]) -> Result<[u8; SLOT]> {
    if wire.len() + 4 > SLOT {
        return Err(Error::Encode {
            reason: format!(
                "serialized proxy of {} bytes exceeds the {SLOT}-byte slot",
                wire.len()
            ),
        });
    }
    let mut slot = [0u8; SLOT];
    slot[..4].copy_from_slice(&(wire.len() as u32).to_le_bytes());
    slot[4..4 + wire.len()].copy_from_slice(wire);
    Ok(slot)
}

fn unpack(slot: &[u8]) -> &[u8] {
    let n = u32::from_le_bytes(slot[..4].try_into().unwrap()) as usize;
    &slot[4..4 + n.min(SLOT - 4)]
}

pub(super) fn us(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6
}

/// What a consumer measured on one resolve.
#[derive(Debug, Clone, Copy, Default)]
struct Resolved {
    /// Resolve + touch one byte per page.
    touch_us: f64,
    /// The same, until a checksum of every byte is done.
    read_us: f64,
    bytes: usize,
}

/// Resolve a received proxy, touch its pages, then read every byte.
fn resolve_wire(wire: &[u8]) -> Result<Resolved> {
    let t = Instant::now();
    let p: Proxy<Bytes> = Proxy::from_bytes(wire)?;
    let b = p.resolve()?;
    std::hint::black_box(touch(b));
    let touch_us = us(t);
    std::hint::black_box(checksum(b));
    Ok(Resolved {
        touch_us,
        read_us: us(t),
        bytes: b.len(),
    })
}

/// A proxied object: (proxy, put micros, slot to send, serialized size).
type Produced = (Proxy<Bytes>, f64, [u8; SLOT], usize);

/// Put `obj` and serialize its proxy into a slot. On failure the slot is
/// [`FAILED_SLOT`], so the ranks waiting for it are told instead of being left
/// blocked in a receive.
fn produce(store: &Store, obj: &Bytes, t0: Instant) -> (Result<Produced>, [u8; SLOT]) {
    let made = store
        .proxy_with(obj.clone(), ProxyOptions::default().populate_target(false))
        .and_then(|p| {
            let put = us(t0);
            let wire = p.to_bytes()?;
            Ok((p, put, pack(&wire)?, wire.len()))
        });
    let slot = match &made {
        Ok((_, _, slot, _)) => *slot,
        Err(_) => FAILED_SLOT,
    };
    (made, slot)
}

/// The consumers' times of one repetition, gathered on rank 0.
pub(super) struct Timings {
    /// Resolve (MPI: receive) + touch one byte per page, per consumer.
    resolves: Vec<f64>,
    /// The same until every byte was read, per consumer.
    reads: Vec<f64>,
}

impl Timings {
    pub(super) fn new(resolves: Vec<f64>, reads: Vec<f64>) -> Timings {
        Timings { resolves, reads }
    }

    /// Receive one `[touch µs, read-all µs, ok (1) / failed (-1)]` reply
    /// from each consumer; also whether any failed.
    pub(super) fn receive(world: &SimpleCommunicator, consumers: &[usize]) -> (Timings, bool) {
        let (mut resolves, mut reads) = (Vec::new(), Vec::new());
        let mut failed = false;
        for &c in consumers {
            let mut reply = [0f64; 3];
            world.process_at_rank(c as i32).receive_into(&mut reply[..]);
            failed |= reply[2] < 0.0;
            resolves.push(reply[0]);
            reads.push(reply[1]);
        }
        (Timings { resolves, reads }, failed)
    }

    /// The slowest consumer's resolve + touch.
    pub(super) fn worst(&self) -> f64 {
        self.resolves.iter().copied().fold(0f64, f64::max)
    }

    /// The slowest consumer's resolve + read-all.
    fn worst_read(&self) -> f64 {
        self.reads.iter().copied().fold(0f64, f64::max)
    }
}

/// What rank 0 learns from one repetition of a proxy pattern or an MPI
/// reference.
pub(super) struct Rep {
    /// The producer's put (none for the MPI references).
    pub(super) put: Option<f64>,
    pub(super) timings: Timings,
    pub(super) e2e: f64,
    /// All bytes the consumers resolved.
    pub(super) bytes: usize,
    pub(super) proxy_bytes: usize,
}

impl Rep {
    /// Add this repetition to series `s`: aggregate bandwidths are `bytes`
    /// over the slowest consumer's times.
    pub(super) fn record(self, s: &mut Series) {
        let bytes = self.bytes as f64;
        s.aggregate_mbps.push(bytes / self.timings.worst());
        s.read_aggregate_mbps
            .push(bytes / self.timings.worst_read());
        s.resolve_us.extend(self.timings.resolves);
        s.read_us.extend(self.timings.reads);
        s.e2e_us.push(self.e2e);
        if let Some(put) = self.put {
            s.put_us.push(put);
            s.proxy_bytes = self.proxy_bytes;
        }
    }
}

/// One repetition of a proxy pattern (results on rank 0).
pub(super) fn proxy_rep(
    ctx: &Ctx<'_>,
    pat: Pattern,
    store: Option<&Store>,
    obj: &Bytes,
) -> Result<Option<Rep>> {
    let size = obj.len();
    let world = ctx.world;
    world.barrier();
    match pat {
        Pattern::Pair | Pattern::Fanout => {
            let consumers = pat.consumers(ctx.n);
            if ctx.rank == 0 {
                let store = store.expect("producer has a store");
                let t0 = Instant::now();
                let (made, slot) = produce(store, obj, t0);
                for &c in &consumers {
                    world.process_at_rank(c as i32).send(&slot[..]);
                }
                let (timings, failed) = Timings::receive(world, &consumers);
                let e2e = us(t0);
                let (p, put, _, wire_len) = made?;
                store.evict(p.key())?;
                if failed {
                    return Err(Error::permanent(
                        "mpi",
                        "remote resolve",
                        "a consumer rank failed to resolve (see its message)",
                    ));
                }
                Ok(Some(Rep {
                    put: Some(put),
                    timings,
                    e2e,
                    bytes: consumers.len() * size,
                    proxy_bytes: wire_len,
                }))
            } else if consumers.contains(&ctx.rank) {
                let mut slot = [0u8; SLOT];
                world.process_at_rank(0).receive_into(&mut slot[..]);
                if slot[..4] == FAILED_SLOT[..4] {
                    world.process_at_rank(0).send(&[0.0f64, 0.0, -1.0][..]);
                    return Ok(None); // the producer reports its own error
                }
                let r = resolve_wire(unpack(&slot));
                let reply = match &r {
                    Ok(m) if m.bytes == size => [m.touch_us, m.read_us, 1.0],
                    _ => [0.0, 0.0, -1.0],
                };
                world.process_at_rank(0).send(&reply[..]);
                match r.map(|m| m.bytes) {
                    Ok(n) if n != size => Err(Error::permanent(
                        "mpi",
                        "resolve",
                        format!("got {n} bytes, expected {size}"),
                    )),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            } else {
                Ok(None)
            }
        }
        Pattern::AllToAll => {
            let store = store.expect("every rank has a store");
            let t0 = Instant::now();
            let (made, slot) = produce(store, obj, t0);
            let mut all = vec![0u8; SLOT * ctx.n];
            world.all_gather_into(&slot[..], &mut all[..]);
            let mut ok = if made.is_ok() { 1f64 } else { -1f64 };
            // This rank's resolves, one after the other: (touch, read-all) totals.
            let (mut touch_us, mut read_us) = (0f64, 0f64);
            for r in 0..ctx.n {
                let theirs = &all[r * SLOT..(r + 1) * SLOT];
                if r == ctx.rank || theirs[..4] == FAILED_SLOT[..4] {
                    continue;
                }
                match resolve_wire(unpack(theirs)) {
                    Ok(m) if m.bytes == size => {
                        touch_us += m.touch_us;
                        read_us += m.read_us;
                    }
                    Ok(m) => {
                        eprintln!(
                            "rank {}: resolved {} bytes, expected {size}",
                            ctx.rank, m.bytes
                        );
                        ok = -1.0;
                    }
                    Err(e) => {
                        eprintln!("rank {}: {e}", ctx.rank);
                        ok = -1.0;
                    }
                }
            }
            let put = made.as_ref().map_or(0.0, |m| m.1);
            let mine = [touch_us, ok, put, read_us];
            let e2e_local = us(t0);
            world.barrier();
            let mut gathered = vec![0f64; 4 * ctx.n];
            let root = world.process_at_rank(0);
            if ctx.rank == 0 {
                root.gather_into_root(&mine[..], &mut gathered[..]);
            } else {
                root.gather_into(&mine[..]);
            }
            let (p, put, _, wire_len) = made?;
            store.evict(p.key())?;
            if ctx.rank != 0 {
                return Ok(None);
            }
            if gathered.chunks(4).any(|c| c[1] < 0.0) {
                return Err(Error::permanent(
                    "mpi",
                    "remote resolve",
                    "a rank failed to resolve (see its message)",
                ));
            }
            let timings = Timings::new(
                gathered.chunks(4).map(|c| c[0]).collect(),
                gathered.chunks(4).map(|c| c[3]).collect(),
            );
            Ok(Some(Rep {
                put: Some(put),
                timings,
                e2e: e2e_local,
                bytes: ctx.n * (ctx.n - 1) * size,
                proxy_bytes: wire_len,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_reads_every_byte() {
        let b: Vec<u8> = (0..4099u32).map(|i| (i % 251) as u8).collect();
        // Words summed as u64 differ from bytes summed, but every byte counts:
        // changing any one (also in the tail) changes the checksum.
        let c = checksum(&b);
        for i in [0, 7, 8, 4095, 4096, 4098] {
            let mut m = b.clone();
            m[i] ^= 1;
            assert_ne!(checksum(&m), c, "byte {i} not read");
        }
        // A tail shorter than a word: the sum of its bytes.
        let tail: u64 = b[4096..].iter().map(|&x| x as u64).sum();
        assert_eq!(checksum(&b[4096..]), tail);
    }
}
