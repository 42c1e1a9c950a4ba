//! Get latency/bandwidth of the UCX connector against a server process.
//!
//! ```text
//! cargo build --release -p ucx-connector --examples --bins
//! target/release/examples/ucx_bench [--tls shm,cma,self] [--path auto|rma|stream] [--sizes 1K,1M,64M] [--iters N] [--owner 1]
//! ```
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

use proxy_core::FromConfig;
use proxy_core::{Connector, Payload};
use ucx_connector::{DataPath, UcxConfig, UcxConnector, UcxOwnerConfig};

fn parse_size(s: &str) -> usize {
    let (n, m) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<usize>().expect("size") * m
}

fn main() {
    let mut tls = "shm,cma,self".to_string();
    let mut path = DataPath::Auto;
    let mut sizes = "1K,64K,1M,16M,64M,100M".to_string();
    let mut iters = 50usize;
    let mut owner = false;
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
            _ => panic!("unknown argument {a}"),
        }
    }
    if owner {
        let o = UcxConnector::owner(UcxOwnerConfig {
            memory_limit: 2 << 30,
            options: UcxConfig::default()
                .with_ucx_tls(&tls)
                .with_data_path(path)
                .with_timeout(Duration::from_secs(60)),
            ..Default::default()
        })
        .unwrap();
        let reader = UcxConnector::from_config(&o.config()).unwrap();
        println!("in-process owner, UCX_TLS={tls} data path {path:?}");
        bench(&o, &reader, &sizes, iters);
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
            "2G",
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

/// Puts through `c`, gets through `r` (the same connector against a server).
fn bench(c: &UcxConnector, r: &UcxConnector, sizes: &str, iters: usize) {
    println!("| size | put median | get median | get best | get MB/s (median) |");
    println!("|---:|---:|---:|---:|---:|");
    for s in sizes.split(',') {
        let size = parse_size(s);
        let data = bytes::Bytes::from(vec![0x5au8; size]);
        // Puts: median of several (each evicted), the same source buffer.
        let mut puts: Vec<Duration> = (0..5.max(iters / 5))
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
        let n = if size >= 16 << 20 {
            iters.min(20)
        } else {
            iters
        };
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
            "| {s} | {put:.2?} | {med:.2?} | {:.2?} | {:.0} |",
            times[0],
            size as f64 / med.as_secs_f64() / 1e6
        );
        c.evict(&key).unwrap();
    }
}
