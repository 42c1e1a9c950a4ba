//! MPI-launched benchmark: proxies sent between ranks and resolved there,
//! next to the same payload sent with MPI point-to-point (the fabric's
//! reference).
//!
//! Patterns (rank 0 is the producer where there is one):
//! - `pair`: rank 0 → rank 1;
//! - `fanout`: rank 0 → every other rank (each resolves the same proxy);
//! - `alltoall`: every rank produces one object and resolves everyone else's.
//!
//! Per connector and size: producer put time, serialized proxy size, consumer
//! resolve latency (median, p10, p90), end-to-end time on the producer's clock
//! (put + send proxy + remote resolve + ack), bandwidth per consumer and
//! aggregate. Rows are appended to the CSV as soon as they are measured, so a
//! run that dies still leaves its partial results.

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
    pub resolve_us: Vec<f64>,
    pub e2e_us: Vec<f64>,
    /// Per repetition: bytes moved / wall time of the slowest consumer.
    pub aggregate_mbps: Vec<f64>,
    pub proxy_bytes: usize,
}

impl Series {
    pub fn rows(&self) -> Vec<Row> {
        let section = format!("mpi-{}", self.pattern.name());
        let agg = summarize(&self.aggregate_mbps).median;
        let extra = vec![
            ("ranks".to_string(), self.ranks.to_string()),
            ("proxy_bytes".to_string(), self.proxy_bytes.to_string()),
            ("aggregate_mb_per_s".to_string(), format!("{agg:.1}")),
        ];
        let mut out = Vec::new();
        for (op, s) in [
            ("put", &self.put_us),
            ("resolve", &self.resolve_us),
            ("e2e", &self.e2e_us),
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

fn touch(b: &[u8]) -> u64 {
    b.iter().step_by(4096).map(|&x| x as u64).sum()
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

/// Resolve a received proxy and touch its pages; returns (micros, nbytes).
fn resolve_wire(wire: &[u8]) -> Result<(f64, usize)> {
    let t = Instant::now();
    let p: Proxy<Bytes> = Proxy::from_bytes(wire)?;
    let b = p.resolve()?;
    std::hint::black_box(touch(b));
    Ok((us(t), b.len()))
}

struct Ctx<'a> {
    world: &'a SimpleCommunicator,
    rank: usize,
    n: usize,
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
        Ok(_) if any != 0 => Err(Error::connector(
            "mpi",
            "benchmark",
            false,
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
    e2e: f64,
    aggregate_mbps: f64,
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
                let mut worst = 0f64;
                let mut failed = false;
                for &c in &consumers {
                    let mut reply = [0f64; 2];
                    world.process_at_rank(c as i32).receive_into(&mut reply[..]);
                    failed |= reply[1] < 0.0;
                    resolves.push(reply[0]);
                    worst = worst.max(reply[0]);
                }
                let e2e = us(t0);
                let (p, put, _, wire_len) = made?;
                store.evict(p.key())?;
                if failed {
                    return Err(Error::connector(
                        "mpi",
                        "remote resolve",
                        false,
                        "a consumer rank failed to resolve (see its message)",
                    ));
                }
                let agg = (consumers.len() * size) as f64 / worst;
                Ok(Some(Rep {
                    put,
                    resolves,
                    e2e,
                    aggregate_mbps: agg,
                    proxy_bytes: wire_len,
                }))
            } else if consumers.contains(&ctx.rank) {
                let mut slot = [0u8; SLOT];
                world.process_at_rank(0).receive_into(&mut slot[..]);
                if slot[..4] == FAILED_SLOT[..4] {
                    world.process_at_rank(0).send(&[0.0f64, -1.0][..]);
                    return Ok(None); // the producer reports its own error
                }
                let r = resolve_wire(unpack(&slot));
                let reply = match &r {
                    Ok((t, n)) if *n == size => [*t, 1.0],
                    _ => [0.0, -1.0],
                };
                world.process_at_rank(0).send(&reply[..]);
                match r {
                    Ok((_, n)) if n != size => Err(Error::connector(
                        "mpi",
                        "resolve",
                        false,
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
            let t1 = Instant::now();
            let mut ok = if made.is_ok() { 1f64 } else { -1f64 };
            for r in 0..ctx.n {
                let theirs = &all[r * SLOT..(r + 1) * SLOT];
                if r == ctx.rank || theirs[..4] == FAILED_SLOT[..4] {
                    continue;
                }
                match resolve_wire(unpack(theirs)) {
                    Ok((_, n)) if n == size => {}
                    Ok((_, n)) => {
                        eprintln!("rank {}: resolved {n} bytes, expected {size}", ctx.rank);
                        ok = -1.0;
                    }
                    Err(e) => {
                        eprintln!("rank {}: {e}", ctx.rank);
                        ok = -1.0;
                    }
                }
            }
            let put = made.as_ref().map_or(0.0, |m| m.1);
            let mine = [us(t1), ok, put];
            let e2e_local = us(t0);
            world.barrier();
            let mut gathered = vec![0f64; 3 * ctx.n];
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
            if gathered.chunks(3).any(|c| c[1] < 0.0) {
                return Err(Error::connector(
                    "mpi",
                    "remote resolve",
                    false,
                    "a rank failed to resolve (see its message)",
                ));
            }
            let resolves: Vec<f64> = gathered.chunks(3).map(|c| c[0]).collect();
            let worst = resolves.iter().copied().fold(0f64, f64::max);
            let agg = (ctx.n * (ctx.n - 1) * size) as f64 / worst;
            Ok(Some(Rep {
                put,
                resolves,
                e2e: e2e_local,
                aggregate_mbps: agg,
                proxy_bytes: wire_len,
            }))
        }
    }
}

/// One repetition of the MPI reference: the payload itself over MPI.
fn mpi_rep(
    ctx: &Ctx<'_>,
    pat: Pattern,
    obj: &Bytes,
    recv: &mut [u8],
) -> Option<(Vec<f64>, f64, f64)> {
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
                let mut resolves = Vec::new();
                for &c in &consumers {
                    let mut reply = [0f64; 1];
                    world.process_at_rank(c as i32).receive_into(&mut reply[..]);
                    resolves.push(reply[0]);
                }
                let e2e = us(t0);
                let worst = resolves.iter().copied().fold(0f64, f64::max);
                Some((resolves, e2e, (consumers.len() * size) as f64 / worst))
            } else if consumers.contains(&ctx.rank) {
                let t = Instant::now();
                world.process_at_rank(0).receive_into(&mut recv[..size]);
                std::hint::black_box(touch(&recv[..size]));
                let reply = [us(t)];
                world.process_at_rank(0).send(&reply[..]);
                None
            } else {
                None
            }
        }
        Pattern::AllToAll => {
            let t = Instant::now();
            world.all_gather_into(&obj[..], &mut recv[..size * ctx.n]);
            let mine = [us(t)];
            let mut gathered = vec![0f64; ctx.n];
            let root = world.process_at_rank(0);
            if ctx.rank == 0 {
                root.gather_into_root(&mine[..], &mut gathered[..]);
                let worst = gathered.iter().copied().fold(0f64, f64::max);
                Some((
                    gathered.clone(),
                    worst,
                    (ctx.n * (ctx.n - 1) * size) as f64 / worst,
                ))
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

/// Run every pattern × connector × size; returns the series (on rank 0).
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
    };
    if ctx.n < 2 {
        return Err(Error::InvalidConfig {
            connector: None,
            reason: "the MPI benchmark needs at least 2 ranks (mpiexec -n 2 ...)".into(),
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
        for cname in std::iter::once("mpi").chain(opts.connectors.iter().map(String::as_str)) {
            // Every rank makes the store for all-to-all; only the producer otherwise.
            let needs_store = cname != "mpi" && (pat == Pattern::AllToAll || ctx.rank == 0);
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
                let mut s = Series {
                    pattern: pat,
                    connector: cname.to_string(),
                    size,
                    ranks: ctx.n,
                    put_us: vec![],
                    resolve_us: vec![],
                    e2e_us: vec![],
                    aggregate_mbps: vec![],
                    proxy_bytes: 0,
                };
                for rep in 0..opts.warmup + opts.reps {
                    let record = rep >= opts.warmup;
                    if cname == "mpi" {
                        if let Some((res, e2e, agg)) = mpi_rep(&ctx, pat, &obj, &mut recv)
                            && record
                        {
                            s.resolve_us.extend(res);
                            s.e2e_us.push(e2e);
                            s.aggregate_mbps.push(agg);
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
                                s.e2e_us.push(rep.e2e);
                                s.aggregate_mbps.push(rep.aggregate_mbps);
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

/// Markdown table of the series.
pub fn table(series: &[Series]) -> String {
    let mut t = String::from(
        "| pattern | ranks | connector | size | put | proxy B | resolve p50 (p10-p90) | e2e p50 | MB/s per consumer | aggregate MB/s |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in series {
        let r = summarize(&s.resolve_us);
        let put = if s.put_us.is_empty() {
            "-".into()
        } else {
            fmt_us(summarize(&s.put_us).median)
        };
        let pb = if s.connector == "mpi" {
            "-".into()
        } else {
            s.proxy_bytes.to_string()
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} ({}-{}) | {} | {:.0} | {:.0} |\n",
            s.pattern.name(),
            s.ranks,
            s.connector,
            fmt_size(s.size),
            put,
            pb,
            fmt_us(r.median),
            fmt_us(r.p10),
            fmt_us(r.p90),
            fmt_us(summarize(&s.e2e_us).median),
            s.size as f64 / r.median,
            summarize(&s.aggregate_mbps).median,
        ));
    }
    t
}
