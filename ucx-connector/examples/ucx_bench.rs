//! Get latency/bandwidth of the UCX connector against a server process.
//!
//! ```text
//! cargo build --release -p ucx-connector --examples --bins
//! target/release/examples/ucx_bench [--tls shm,cma,self] [--path auto|rma|stream] [--sizes 1K,1M,64M] [--iters N] [--owner 1]
//!     [--server HOST:PORT] [--csv 1] [--big-iters N]
//! ```
//! With `--server`, the gets go to a server that is already running there
//! (`scripts/ucx-vs-perftest.sh` starts one); with `--csv 1`, one line per
//! size `CSV,<bytes>,<put median ns>,<get median ns>,<get best ns>` follows
//! the table.
//! With `--owner 1` no server process is started: an in-process owner
//! (`UcxConnector::owner`) puts into its own arena, and a separate client
//! connector (its own UCX context and worker, as another process would have)
//! times the one-sided gets from it.
//! Starts `proxystore-ucx-server` (next to this example's directory) with the
//! same transports, stores one object per size, then times `get` (median and
//! best of `--iters`, each get into the pooled registered buffer, the returned
//! `Bytes` dropped before the next) and prints a Markdown table.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ucx_connector::TransportConfig;

use proxy_core::FromConfig;
use proxy_core::{Connector, Payload};
use ucx_connector::{DataPath, UcxConfig, UcxConnector, UcxOwnerConfig};

fn parse_size(s: &str) -> usize {
    proxy_core::size::parse_len(s).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let mut tls = "shm,cma,self".to_string();
    let mut path = DataPath::Auto;
    let mut sizes = "1K,64K,1M,16M,64M,100M".to_string();
    let mut iters = 50usize;
    let mut owner = false;
    let mut server_addr: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--tls" => tls = v,
            "--path" => {
                path = match v.as_str() {
                    "rma" => DataPath::Rma,
                    "stream" => DataPath::Stream,
                    _ => DataPath::Auto,
                }
            }
            "--sizes" => sizes = v,
            "--iters" => iters = v.parse().expect("iters"),
            "--owner" => owner = v == "1",
            "--server" => server_addr = Some(v),
            "--big-iters" => BIG_ITERS.store(
                v.parse().expect("big-iters"),
                std::sync::atomic::Ordering::Relaxed,
            ),
            "--csv" => CSV.store(v == "1", std::sync::atomic::Ordering::Relaxed),
            _ => panic!("unknown argument {a}"),
        }
    }
    if owner {
        let o = UcxConnector::owner(UcxOwnerConfig {
            memory_limit: 4 << 30,
            options: UcxConfig::default()
                .with_ucx_tls(&tls)
                .with_data_path(path)
                // The RMA get that ucx_perftest is compared with, not a
                // same-node mapping of the segment.
                .with_zero_copy(false)
                .with_timeout(Duration::from_secs(60)),
            ..Default::default()
        })
        .unwrap();
        let reader = UcxConnector::from_config(&o.config()).unwrap();
        println!("in-process owner, UCX_TLS={tls} data path {path:?}");
        bench(&o, &reader, &sizes, iters);
        return;
    }
    if let Some(addr) = server_addr {
        let c = UcxConnector::new(
            UcxConfig::new(&addr)
                .with_ucx_tls(&tls)
                .with_data_path(path)
                // The RMA get that ucx_perftest is compared with, not a
                // same-node mapping of the segment.
                .with_zero_copy(false)
                .with_timeout(Duration::from_secs(60)),
        )
        .unwrap();
        println!("server {addr}, UCX_TLS={tls} data path {path:?}");
        bench(&c, &c, &sizes, iters);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let server_bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("proxystore-ucx-server");
    let mut server = Command::new(&server_bin)
        .args([
            "--tls",
            &tls,
            "--memory-limit",
            "4G",
            "--segment-size",
            "256M",
            "--exit-with-parent",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", server_bin.display()));
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("LISTEN ")
        .expect("LISTEN line")
        .to_string();
    let c = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(&tls)
            .with_data_path(path)
            .with_zero_copy(false)
            .with_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    println!(
        "UCX_TLS={tls} data path {path:?} (one-sided: {})",
        c.capabilities().one_sided_get
    );
    bench(&c, &c, &sizes, iters);
    drop(c);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}

static CSV: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Gets of objects of 16 MiB and more are timed at most this many times.
static BIG_ITERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(20);

/// Puts through `c`, gets through `r` (the same connector against a server).
///
/// "first" columns: the first put of this size (the server may map a new
/// segment, the reader may map it) and the first get (the reader's pool may
/// map a new receive buffer); then medians over repeated put+evict and get.
fn bench(c: &UcxConnector, r: &UcxConnector, sizes: &str, iters: usize) {
    println!(
        "| size | first put | put median | first get | get median | get best | get MB/s (median) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut csv = Vec::new();
    for s in sizes.split(',') {
        let size = parse_size(s);
        let data = bytes::Bytes::from(vec![0x5au8; size]);
        let t = Instant::now();
        let k = c.put(Payload::from(data.clone())).unwrap();
        let first_put = t.elapsed();
        let t = Instant::now();
        assert_eq!(r.get(&k).unwrap().unwrap().len(), size);
        let first_get = t.elapsed();
        c.evict(&k).unwrap();
        let n = if size >= 16 << 20 {
            iters.min(BIG_ITERS.load(std::sync::atomic::Ordering::Relaxed))
        } else {
            iters
        };
        // Puts: median of several (each evicted), the same source buffer.
        let mut puts: Vec<Duration> = (0..5.max(n / 5))
            .map(|_| {
                let t = Instant::now();
                let k = c.put(Payload::from(data.clone())).unwrap();
                let e = t.elapsed();
                c.evict(&k).unwrap();
                e
            })
            .collect();
        puts.sort();
        let put = puts[puts.len() / 2];
        let key = c.put(Payload::from(data)).unwrap();
        // Warm up: endpoint, rkey, pooled buffer of this class.
        for _ in 0..3 {
            assert_eq!(r.get(&key).unwrap().unwrap().len(), size);
        }
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let b = r.get(&key).unwrap().unwrap();
                let e = t.elapsed();
                assert_eq!(b.len(), size);
                e
            })
            .collect();
        times.sort();
        let med = times[times.len() / 2];
        println!(
            "| {s} | {first_put:.2?} | {put:.2?} | {first_get:.2?} | {med:.2?} | {:.2?} | {:.0} |",
            times[0],
            size as f64 / med.as_secs_f64() / 1e6
        );
        c.evict(&key).unwrap();
        csv.push(format!(
            "CSV,{size},{},{},{}",
            put.as_nanos(),
            med.as_nanos(),
            times[0].as_nanos()
        ));
    }
    if CSV.load(std::sync::atomic::Ordering::Relaxed) {
        for l in csv {
            println!("{l}");
        }
    }
}
