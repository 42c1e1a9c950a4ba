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

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use proxy_core::{Error, Proxy, ProxyOptions, Result, Store};

use crate::connectors::{self, ConnectorOpts};
use crate::csv::{HEADER, Row, fmt_size, fmt_us};
use crate::progress::Progress;
use crate::rma;
use crate::stats::summarize;

/// Fixed slot for a serialized proxy in collective exchanges.
const SLOT: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Pair,
    Fanout,
    AllToAll,
}

impl Pattern {
    pub fn parse(s: &str) -> std::result::Result<Vec<Pattern>, String> {
        match s {
            "pair" => Ok(vec![Pattern::Pair]),
            "fanout" => Ok(vec![Pattern::Fanout]),
            "alltoall" => Ok(vec![Pattern::AllToAll]),
            "all" => Ok(vec![Pattern::Pair, Pattern::Fanout, Pattern::AllToAll]),
            o => Err(format!(
                "unknown pattern {o:?} (pair, fanout, alltoall, all)"
            )),
        }
    }
    /// The ranks that receive rank 0's proxy (pair and fan-out).
    fn consumers(self, ranks: usize) -> Vec<usize> {
        match self {
            Pattern::Pair => vec![1],
            _ => (1..ranks).collect(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Pair => "pair",
            Pattern::Fanout => "fanout",
            Pattern::AllToAll => "alltoall",
        }
    }
}

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

/// One measured series (on rank 0).
#[derive(Debug, Clone)]
pub struct Series {
    pub pattern: Pattern,
    pub connector: String,
    pub size: usize,
    pub ranks: usize,
    pub put_us: Vec<f64>,
    /// Resolve + touch one byte per page, per consumer and repetition.
    pub resolve_us: Vec<f64>,
    /// The same resolves until every byte was read (checksum).
    pub read_us: Vec<f64>,
    pub e2e_us: Vec<f64>,
    /// Per repetition: bytes resolved / resolve+touch time of the slowest consumer.
    pub aggregate_mbps: Vec<f64>,
    /// Per repetition: bytes read / resolve+read-all time of the slowest consumer.
    pub read_aggregate_mbps: Vec<f64>,
    pub proxy_bytes: usize,
    /// The resolved bytes moved into the consumer (copy, receive, one-sided
    /// read); false for a mapping of memory already on its node (see
    /// [`data_moves`]).
    pub moved: bool,
}

/// Whether a resolve through a connector of this kind moves the data into
/// the consumer (a copy, a receive, a one-sided read into local memory), as
/// Redis, UCX and libfabric do; not so for a mapping of memory already on the
/// node: the file connector's `mmap` of the page cache, the local connector's
/// own memory, where touching one byte per page moves nothing. (The
/// capabilities cannot tell: a UCX connector on its stream data path is a
/// zero-copy get that is not one-sided, yet its data crossed the network.) A
/// file connector on a shared file system of another node does fault its pages
/// in over the network; it is still counted as mapped, so no touch bandwidth
/// is claimed for it: its read-all figure is the one to quote.
pub fn data_moves(kind: &str) -> bool {
    !matches!(kind, "file" | "local")
}

impl Series {
    /// `moved` or `mapped` (the `data` column of the table, `data=` in the CSV).
    pub fn data(&self) -> &'static str {
        if self.moved { "moved" } else { "mapped" }
    }
}

impl Series {
    pub fn rows(&self) -> Vec<Row> {
        let section = format!("mpi-{}", self.pattern.name());
        let agg = summarize(&self.aggregate_mbps).median;
        let read_agg = summarize(&self.read_aggregate_mbps).median;
        let mut extra = vec![
            ("ranks".to_string(), self.ranks.to_string()),
            ("proxy_bytes".to_string(), self.proxy_bytes.to_string()),
            ("data".to_string(), self.data().to_string()),
        ];
        if self.moved {
            extra.push(("aggregate_mb_per_s".to_string(), format!("{agg:.1}")));
        }
        extra.push((
            "aggregate_read_mb_per_s".to_string(),
            format!("{read_agg:.1}"),
        ));
        let mut out = Vec::new();
        for (op, s, bandwidth) in [
            ("put", &self.put_us, true),
            ("resolve", &self.resolve_us, self.moved),
            ("resolve_read_all", &self.read_us, true),
            ("e2e", &self.e2e_us, true),
        ] {
            if !s.is_empty() {
                out.push(Row {
                    section: section.clone(),
                    connector: self.connector.clone(),
                    payload: "bytes".into(),
                    size: self.size,
                    op: op.into(),
                    summary: summarize(s),
                    extra: extra.clone(),
                    bandwidth,
                });
            }
        }
        out
    }
}

fn payload(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(5))
        .collect::<Vec<u8>>()
        .into()
}

/// Read one byte per 4 KiB page.
fn touch(b: &[u8]) -> u64 {
    b.iter().step_by(4096).map(|&x| x as u64).sum()
}

/// Read every byte: a wrapping sum of little-endian 64-bit words (and the
/// tail's bytes), so the loop runs at memory speed.
fn checksum(b: &[u8]) -> u64 {
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

fn us(t: Instant) -> f64 {
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

struct Ctx<'a> {
    world: &'a SimpleCommunicator,
    rank: usize,
    n: usize,
    /// Each rank's node: the lowest world rank on that node.
    node_of: Vec<i32>,
}

/// Each rank's node, as the lowest world rank of its shared-memory node
/// (`MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`), gathered on every rank.
fn nodes_of(world: &SimpleCommunicator) -> Vec<i32> {
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
fn series_moves(kind_moves: bool, mapped_get: bool, node_of: &[i32], consumers: &[usize]) -> bool {
    kind_moves && !(mapped_get && consumers.iter().all(|&c| node_of.get(c) == node_of.first()))
}

/// Check `r` on every rank: if any rank failed, all learn it (no rank is left
/// blocked in a receive) and the failing rank's message is printed by it.
fn agree<T>(ctx: &Ctx<'_>, r: Result<T>) -> Result<T> {
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

/// What rank 0 learns from one repetition.
struct Rep {
    put: f64,
    resolves: Vec<f64>,
    reads: Vec<f64>,
    e2e: f64,
    aggregate_mbps: f64,
    read_aggregate_mbps: f64,
    proxy_bytes: usize,
}

/// One repetition of a proxy pattern (results on rank 0).
fn proxy_rep(
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
                let mut resolves = Vec::new();
                let mut reads = Vec::new();
                let mut failed = false;
                for &c in &consumers {
                    // [resolve + touch µs, resolve + read-all µs, ok (1) / failed (-1)]
                    let mut reply = [0f64; 3];
                    world.process_at_rank(c as i32).receive_into(&mut reply[..]);
                    failed |= reply[2] < 0.0;
                    resolves.push(reply[0]);
                    reads.push(reply[1]);
                }
                let worst = resolves.iter().copied().fold(0f64, f64::max);
                let worst_read = reads.iter().copied().fold(0f64, f64::max);
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
                let bytes = (consumers.len() * size) as f64;
                Ok(Some(Rep {
                    put,
                    resolves,
                    reads,
                    e2e,
                    aggregate_mbps: bytes / worst,
                    read_aggregate_mbps: bytes / worst_read,
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
            let resolves: Vec<f64> = gathered.chunks(4).map(|c| c[0]).collect();
            let reads: Vec<f64> = gathered.chunks(4).map(|c| c[3]).collect();
            let worst = resolves.iter().copied().fold(0f64, f64::max);
            let worst_read = reads.iter().copied().fold(0f64, f64::max);
            let bytes = (ctx.n * (ctx.n - 1) * size) as f64;
            Ok(Some(Rep {
                put,
                resolves,
                reads,
                e2e: e2e_local,
                aggregate_mbps: bytes / worst,
                read_aggregate_mbps: bytes / worst_read,
                proxy_bytes: wire_len,
            }))
        }
    }
}

/// What rank 0 learns from one repetition of the MPI reference.
struct MpiRep {
    /// Receive + touch one byte per page, per consumer.
    resolves: Vec<f64>,
    /// Receive + read every byte, per consumer.
    reads: Vec<f64>,
    e2e: f64,
    aggregate_mbps: f64,
    read_aggregate_mbps: f64,
}

/// One repetition of the `MPI_Get` reference (pair, fan-out): rank 0 tells
/// each consumer to read (a one-word message, as a proxy would be), the
/// consumer reads the object from rank 0's window with a passive-target
/// `MPI_Get` (rank 0 only waits for the answers), touches it, then reads
/// every byte.
fn mpi_get_rep(
    ctx: &Ctx<'_>,
    pat: Pattern,
    win: &rma::Window,
    size: usize,
    recv: &mut [u8],
) -> Result<Option<MpiRep>> {
    let world = ctx.world;
    world.barrier();
    let consumers = pat.consumers(ctx.n);
    if ctx.rank == 0 {
        let t0 = Instant::now();
        for &c in &consumers {
            world.process_at_rank(c as i32).send(&[size as u64][..]);
        }
        let (mut resolves, mut reads) = (Vec::new(), Vec::new());
        let mut failed = false;
        for &c in &consumers {
            let mut reply = [0f64; 3];
            world.process_at_rank(c as i32).receive_into(&mut reply[..]);
            failed |= reply[2] < 0.0;
            resolves.push(reply[0]);
            reads.push(reply[1]);
        }
        let e2e = us(t0);
        if failed {
            return Err(Error::permanent(
                "mpi",
                "MPI_Get",
                "a consumer rank failed to read (see its message)",
            ));
        }
        let worst = resolves.iter().copied().fold(0f64, f64::max);
        let worst_read = reads.iter().copied().fold(0f64, f64::max);
        let bytes = (consumers.len() * size) as f64;
        Ok(Some(MpiRep {
            resolves,
            reads,
            e2e,
            aggregate_mbps: bytes / worst,
            read_aggregate_mbps: bytes / worst_read,
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
fn mpi_rep(ctx: &Ctx<'_>, pat: Pattern, obj: &Bytes, recv: &mut [u8]) -> Option<MpiRep> {
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
                let (mut resolves, mut reads) = (Vec::new(), Vec::new());
                for &c in &consumers {
                    let mut reply = [0f64; 2];
                    world.process_at_rank(c as i32).receive_into(&mut reply[..]);
                    resolves.push(reply[0]);
                    reads.push(reply[1]);
                }
                let e2e = us(t0);
                let worst = resolves.iter().copied().fold(0f64, f64::max);
                let worst_read = reads.iter().copied().fold(0f64, f64::max);
                let bytes = (consumers.len() * size) as f64;
                Some(MpiRep {
                    resolves,
                    reads,
                    e2e,
                    aggregate_mbps: bytes / worst,
                    read_aggregate_mbps: bytes / worst_read,
                })
            } else if consumers.contains(&ctx.rank) {
                let t = Instant::now();
                world.process_at_rank(0).receive_into(&mut recv[..size]);
                std::hint::black_box(touch(&recv[..size]));
                let touched = us(t);
                std::hint::black_box(checksum(&recv[..size]));
                let reply = [touched, us(t)];
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
                let resolves: Vec<f64> = gathered.chunks(2).map(|c| c[0]).collect();
                let reads: Vec<f64> = gathered.chunks(2).map(|c| c[1]).collect();
                let worst = resolves.iter().copied().fold(0f64, f64::max);
                let worst_read = reads.iter().copied().fold(0f64, f64::max);
                let bytes = (ctx.n * (ctx.n - 1) * size) as f64;
                Some(MpiRep {
                    resolves,
                    reads,
                    e2e: worst,
                    aggregate_mbps: bytes / worst,
                    read_aggregate_mbps: bytes / worst_read,
                })
            } else {
                root.gather_into(&mine[..]);
                None
            }
        }
    }
}

struct Sink {
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Sink {
    fn new(path: Option<&PathBuf>) -> Result<Sink> {
        let file = match path {
            None => None,
            Some(p) => {
                if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d)
                        .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
                }
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .map_err(|e| Error::io(format!("creating {}", p.display()), e))?,
                );
                writeln!(f, "{HEADER}")
                    .and_then(|_| f.flush())
                    .map_err(|e| Error::io("writing CSV", e))?;
                Some(f)
            }
        };
        Ok(Sink { file })
    }

    fn push(&mut self, s: &Series) {
        if let Some(f) = &mut self.file {
            for r in s.rows() {
                let _ = writeln!(f, "{}", r.to_csv());
            }
            let _ = f.flush();
        }
    }
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
            // Every rank makes the store for all-to-all; only the producer otherwise.
            let needs_store =
                !references.contains(&cname) && (pat == Pattern::AllToAll || ctx.rank == 0);
            let made = if needs_store {
                connectors::make(cname, &opts.conn)
                    .and_then(|c| {
                        // One store name per rank: in all-to-all each rank's proxies
                        // name their own store, and names must not collide.
                        let store =
                            Store::builder(format!("mpi-bench-{cname}-r{}", ctx.rank), c.clone())
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
            let made = agree(&ctx, made)?;
            // The largest object the connector takes (e.g. Redis' 512 MiB
            // strings): larger sizes are skipped, on every rank alike.
            let limit = made
                .as_ref()
                .and_then(|m| m.1.capabilities().max_object_size)
                .map_or(i64::MAX, |l| {
                    i64::try_from(l.saturating_sub(4096)).unwrap_or(i64::MAX)
                });
            // (i64: a u64 all-reduce was treated as signed here, making u64::MAX -1.)
            let mut min_limit = 0i64;
            world.all_reduce_into(
                &limit,
                &mut min_limit,
                mpi::collective::SystemOperation::min(),
            );
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
                            s.resolve_us.extend(m.resolves);
                            s.read_us.extend(m.reads);
                            s.e2e_us.push(m.e2e);
                            s.aggregate_mbps.push(m.aggregate_mbps);
                            s.read_aggregate_mbps.push(m.read_aggregate_mbps);
                        }
                    } else if cname == "mpi" {
                        if let Some(m) = mpi_rep(&ctx, pat, &obj, &mut recv)
                            && record
                        {
                            s.resolve_us.extend(m.resolves);
                            s.read_us.extend(m.reads);
                            s.e2e_us.push(m.e2e);
                            s.aggregate_mbps.push(m.aggregate_mbps);
                            s.read_aggregate_mbps.push(m.read_aggregate_mbps);
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
                            Ok(Some(rep)) if record => {
                                s.put_us.push(rep.put);
                                s.resolve_us.extend(rep.resolves);
                                s.read_us.extend(rep.reads);
                                s.e2e_us.push(rep.e2e);
                                s.aggregate_mbps.push(rep.aggregate_mbps);
                                s.read_aggregate_mbps.push(rep.read_aggregate_mbps);
                                s.proxy_bytes = rep.proxy_bytes;
                            }
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
            if let Some((store, conn)) = made {
                let _ = store.close();
                if ctx.rank == 0 || pat == Pattern::AllToAll {
                    connectors::cleanup(&conn);
                }
            }
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

/// Markdown table of the series, with a legend saying which figures are
/// bandwidths.
pub fn table(series: &[Series]) -> String {
    let mut t = String::from(
        "| pattern | ranks | connector | size | data | put | proxy B | resolve+touch p50 (p10-p90) | resolve+read all p50 (p10-p90) | e2e p50 | touch MB/s | read-all MB/s | aggregate read-all MB/s |\n|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in series {
        let r = summarize(&s.resolve_us);
        let rd = summarize(&s.read_us);
        let put = if s.put_us.is_empty() {
            "-".into()
        } else {
            fmt_us(summarize(&s.put_us).median)
        };
        let pb = if s.connector == "mpi" || s.connector == "mpi-get" {
            "-".into()
        } else {
            s.proxy_bytes.to_string()
        };
        let touch_mbps = if s.moved {
            format!("{:.0}", s.size as f64 / r.median)
        } else {
            "–".into()
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}-{}) | {} ({}-{}) | {} | {} | {:.0} | {:.0} |\n",
            s.pattern.name(),
            s.ranks,
            s.connector,
            fmt_size(s.size),
            s.data(),
            put,
            pb,
            fmt_us(r.median),
            fmt_us(r.p10),
            fmt_us(r.p90),
            fmt_us(rd.median),
            fmt_us(rd.p10),
            fmt_us(rd.p90),
            fmt_us(summarize(&s.e2e_us).median),
            touch_mbps,
            s.size as f64 / rd.median,
            summarize(&s.read_aggregate_mbps).median,
        ));
    }
    t.push_str(LEGEND);
    t
}

/// What the table's columns mean (printed under it).
pub const LEGEND: &str = "
resolve+touch: the consumer resolves the proxy and reads one byte per 4 KiB page (for mpi: \
receives the payload and touches it). resolve+read all: the same resolve, timed on until a \
checksum of every byte is done. MB/s = 10^6 B/s = size / median. touch MB/s only where the \
data moved into the consumer (data=moved: a copy, a receive, a one-sided read into local \
memory); where the consumer's bytes are a mapping of memory already on its node \
(data=mapped: the file connector's mmap of the page cache) the touch moves nothing and gives \
no bandwidth (–). aggregate: all bytes the consumers read / resolve+read-all time of the \
slowest consumer.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn series(connector: &str, moved: bool) -> Series {
        Series {
            pattern: Pattern::Pair,
            connector: connector.into(),
            size: 1 << 20,
            ranks: 2,
            put_us: if connector == "mpi" {
                vec![]
            } else {
                vec![100.0]
            },
            resolve_us: vec![10.0, 10.0],
            read_us: vec![200.0, 200.0],
            e2e_us: vec![400.0],
            aggregate_mbps: vec![104857.6],
            read_aggregate_mbps: vec![5242.88],
            proxy_bytes: 120,
            moved,
        }
    }

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

    #[test]
    fn mapped_resolve_has_no_touch_bandwidth() {
        let file = series("file", false);
        let redis = series("redis", true);
        let t = table(&[file.clone(), redis.clone()]);
        // file: no touch MB/s, read-all MB/s = 1048576 B / 200 µs.
        assert!(
            t.contains("| pair | 2 | file | 1MiB | mapped | 100 µs | 120 | 10 µs (10 µs-10 µs) | 200 µs (200 µs-200 µs) | 400 µs | – | 5243 | 5243 |"),
            "{t}"
        );
        assert!(t.contains("| redis | 1MiB | moved |"), "{t}");
        assert!(t.contains("| 104858 | 5243 | 5243 |"), "{t}");
        let rows = file.rows();
        let resolve = rows.iter().find(|r| r.op == "resolve").unwrap().to_csv();
        let read = rows
            .iter()
            .find(|r| r.op == "resolve_read_all")
            .unwrap()
            .to_csv();
        // The mb_per_s column (12th) is empty for the mapped touch only.
        assert_eq!(resolve.split(',').nth(11), Some(""), "{resolve}");
        assert_eq!(read.split(',').nth(11), Some("5242.9"), "{read}");
        assert!(resolve.contains("data=mapped") && !resolve.contains("aggregate_mb_per_s="));
        let rows = redis.rows();
        let resolve = rows.iter().find(|r| r.op == "resolve").unwrap().to_csv();
        assert_eq!(resolve.split(',').nth(11), Some("104857.6"), "{resolve}");
        assert!(resolve.contains("data=moved;aggregate_mb_per_s=104857.6"));
    }

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

    #[test]
    fn file_maps_ucx_and_redis_move() {
        assert!(!data_moves("file") && !data_moves("local"));
        assert!(data_moves("ucx") && data_moves("ofi") && data_moves("redis"));
    }
}
