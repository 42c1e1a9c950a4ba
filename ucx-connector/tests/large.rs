//! Large objects over shared memory: a 1 GiB object round-trips through a
//! server process, and repeated large put/evict/get cycles reuse the server's
//! segments and the client's receive buffers instead of mapping, faulting in
//! and registering new memory each time (registered memory stays flat on both
//! sides, and so does the shared memory this process maps).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};
use ucx_connector::TransportConfig;

use common::ServerProcess;
use proxy_core::{Connector, Payload};
use ucx_connector::{UcxConfig, UcxConnector};

const TLS: &str = "shm,cma,self";

/// The tests read this process's mappings: one at a time (and one GiB-sized
/// working set at a time).
static SERIAL: Mutex<()> = Mutex::new(());
const MIB: usize = 1 << 20;

fn connector(server: &ServerProcess) -> UcxConnector {
    UcxConnector::new(
        UcxConfig::new(&server.addr)
            .with_ucx_tls(TLS)
            .with_timeout(Duration::from_secs(60)),
    )
    .unwrap()
}

/// `len` bytes, cheap to make in a debug build: zeroes with a distinct
/// 8-byte stamp at the start of every 4 KiB page and at the very end.
fn object(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (i, page) in v.chunks_mut(4096).enumerate() {
        let stamp = (seed << 40 | i as u64).to_le_bytes();
        let n = page.len().min(8);
        page[..n].copy_from_slice(&stamp[..n]);
    }
    let n = len.min(8);
    v[len - n..].copy_from_slice(&seed.to_le_bytes()[..n]);
    v
}

/// Bytes of shared-memory mappings in this process (the receive pool's
/// buffers, the server segments mapped through their remote keys or, with
/// zero copy, their files, UCX's own FIFOs).
fn shm_mapped() -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| {
            l.contains("SYSV")
                || l.contains("/dev/shm")
                || l.contains("ucx")
                || l.contains("memfd:proxystore")
        })
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        })
        .sum()
}

#[test]
fn one_gib_round_trip_and_flat_cycles() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = ServerProcess::start(TLS, &["--memory-limit", "2G", "--segment-size", "64M"]);
    let c = connector(&server);
    let base = c.server_stats().unwrap().registered;

    // A 1 GiB object round-trips, byte for byte.
    let big = object(1 << 30, 1);
    let payload = Payload::from(big.clone());
    let t = Instant::now();
    let k = c.put(payload).unwrap();
    let put = t.elapsed();
    let t = Instant::now();
    let got = c.get(&k).unwrap().expect("stored");
    let get = t.elapsed();
    assert!(
        got[..] == big[..],
        "1 GiB object differs after a round trip"
    );
    eprintln!("1 GiB: first put {put:?}, first get {get:?}");
    drop(got);
    c.evict(&k).unwrap();
    assert!(c.get(&k).unwrap().is_none(), "evicted: None");
    drop(big);

    // Repeated large put/get/evict cycles of varying sizes: the server reuses
    // its retained large segment, the client its pooled large buffer.
    let sizes = [
        1 << 30,
        (1 << 30) - 3 * MIB,
        900 * MIB + 5,
        1 << 30,
        850 * MIB,
    ];
    let mut first = None;
    let mut times = Vec::new();
    for (round, &len) in sizes.iter().cycle().take(2 * sizes.len()).enumerate() {
        let data = object(len, round as u64 + 2);
        let payload = Payload::from(data.clone());
        let t = Instant::now();
        let k = c.put(payload).unwrap();
        let put = t.elapsed();
        let t = Instant::now();
        let got = c.get(&k).unwrap().expect("stored");
        let get = t.elapsed();
        assert!(got[..] == data[..], "round {round}: object differs");
        times.push((len / MIB, put, get));
        drop(got);
        c.evict(&k).unwrap();
        assert!(c.get(&k).unwrap().is_none(), "round {round}: evicted: None");
        let now = (
            c.server_stats().unwrap().registered,
            c.pool().expect("the fabric").allocated_bytes(),
            shm_mapped(),
        );
        match first {
            None => first = Some(now),
            Some(f) => assert_eq!(
                f, now,
                "round {round}: (server registered, client pool registered, shm mapped here) grew"
            ),
        }
    }
    eprintln!("cycles (MiB, put, get): {times:?}");
    let (server_reg, pool_reg, mapped) = first.unwrap();
    eprintln!("server registered {server_reg}, pool {pool_reg}, shm mapped {mapped}");
    // One retained large segment besides the default ones, one large buffer.
    assert!(server_reg <= base + (1 << 30) + (2 << 20), "{server_reg}");
    assert!(pool_reg <= (1 << 30) + 4 * MIB, "{pool_reg}");
}

/// Under memory pressure, retained empty segments are unmapped to make room
/// for a segment of another size, and readers drop their stale mappings of
/// the unmapped ones.
#[test]
fn retained_segments_yield_under_pressure() {
    // Copying: this process maps each live segment once (UCX's remote keys,
    // shared by its puts and gets).
    yield_under_pressure(false, 700 * MIB as u64);
    // Zero copy: and once more, read-only, for its gets.
    yield_under_pressure(true, 1400 * MIB as u64);
}

fn yield_under_pressure(zero_copy: bool, bound: u64) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = ServerProcess::start(TLS, &["--memory-limit", "640M", "--segment-size", "16M"]);
    // No idle receive buffers: what this process maps is then the server's
    // segments (through their remote keys) and UCX's own small FIFOs.
    let mut opts = UcxConfig::new(&server.addr)
        .with_ucx_tls(TLS)
        .with_zero_copy(zero_copy)
        .with_timeout(Duration::from_secs(60));
    opts.client.max_idle_bytes = 0;
    let c = UcxConnector::new(opts).unwrap();
    let mut mapped = Vec::new();
    for (round, len) in [300 * MIB, 400 * MIB, 300 * MIB, 500 * MIB, 200 * MIB]
        .into_iter()
        .enumerate()
    {
        let data = object(len, round as u64);
        let k = c.put(Payload::from(data.clone())).unwrap();
        assert!(c.get(&k).unwrap().unwrap()[..] == data[..]);
        c.evict(&k).unwrap();
        let s = c.server_stats().unwrap();
        assert!(s.registered <= s.limit, "{s:?}");
        mapped.push(shm_mapped());
    }
    // This process maps the server's live segments (at most the limit, once
    // or twice), not every segment the server ever had (1.7 GiB over these
    // rounds, 3.4 GiB twice).
    let max = *mapped.iter().max().unwrap();
    assert!(
        max < bound,
        "zero copy {zero_copy}: shm mapped here: {mapped:?}"
    );
}

/// Objects of 2^31 - 1, 2^31 and 2^32 + 7 bytes through UCX's one-sided
/// gets (zero copy off) and through the mapped segments.
#[test]
fn objects_past_2_gib() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    object_server::testkit::objects_past_2_gib::<common::UcxTests>(TLS, false);
    object_server::testkit::objects_past_2_gib::<common::UcxTests>(TLS, true);
}
