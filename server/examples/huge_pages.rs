//! Same-node resolves of one large object with and without transparent
//! huge pages in the object server's segments, in one run.
//!
//! ```text
//! cargo build --release -p proxystore-server --bins --examples
//! target/release/examples/huge_pages [--size 1GiB] [--iters 5]
//! ```
//! Two `proxystore-server --transports ofi --provider shm --no-zero-copy`
//! (segments are then the server's own anonymous memory, which takes huge
//! pages where `/sys/kernel/mm/transparent_hugepage/enabled` allows; the
//! shared segments that same-node readers map also need `shmem_enabled`),
//! the second with `PROXYSTORE_HUGE_PAGES=off`. One object of `--size` is
//! put into each; this reader gets them in turn (a one-sided `fi_read`
//! into its receive buffer) and touches one byte of every 4 KiB page;
//! median and best of `--iters` per server, after one warm-up get each.

mod common;

use std::time::{Duration, Instant};

use common::{ServerChild, parse_size, stats};
use object_server::{DataPath, TransportConfig};
use ofi_connector::{OfiConfig, OfiConnector};
use proxy_core::{Connector, Payload};

/// `AnonHugePages` of process `pid` (kB), from `/proc/PID/smaps_rollup`.
fn anon_huge_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mut size = parse_size("1GiB");
    let mut iters = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--size" => size = parse_size(&v),
            "--iters" => iters = v.parse().expect("iters"),
            other => panic!("unknown option {other}"),
        }
    }
    let thp = |f: &str| {
        std::fs::read_to_string(format!("/sys/kernel/mm/transparent_hugepage/{f}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "(none)".into())
    };
    println!(
        "THP enabled: {}; shmem_enabled: {}; object {size} B, median of {iters} (best)",
        thp("enabled"),
        thp("shmem_enabled")
    );
    let seg = (size + (64 << 20)).to_string();
    let limit = (2 * size + (256 << 20)).to_string();
    let server_args = [
        "--transports",
        "ofi",
        "--provider",
        "shm",
        "--no-zero-copy",
        "--segment-size",
        &seg,
        "--memory-limit",
        &limit,
    ];
    let servers = [
        ("huge pages", ServerChild::start(&server_args)),
        (
            "4 KiB pages",
            ServerChild::start_env(&server_args, &[(object_server::HUGE_PAGES_ENV, "off")]),
        ),
    ];
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let readers: Vec<_> = servers
        .iter()
        .map(|(_, s)| {
            let c = OfiConnector::new(
                OfiConfig::new(&s.addr)
                    .with_provider("shm")
                    .with_data_path(DataPath::Rma)
                    .with_zero_copy(false)
                    .with_timeout(Duration::from_secs(60)),
            )
            .expect("ofi connector");
            let k = c.put(Payload::from(data.clone())).expect("put");
            (c, k)
        })
        .collect();
    drop(data);
    let mut times = vec![Vec::new(); servers.len()];
    for i in 0..iters + 1 {
        for (j, (c, k)) in readers.iter().enumerate() {
            let t = Instant::now();
            let b = c.get(k).expect("get").expect("stored");
            let touched: u64 = b.iter().step_by(4096).map(|&x| u64::from(x)).sum();
            let d = t.elapsed();
            assert_eq!(b.len(), size);
            std::hint::black_box(touched);
            if i > 0 {
                times[j].push(d);
            }
        }
    }
    println!(
        "\n| server segments | AnonHugePages of the server | resolve + touch, median (best) |"
    );
    println!("|---|---:|---:|");
    for ((name, s), t) in servers.iter().zip(times) {
        let (m, b) = stats(t);
        println!(
            "| {name} | {} MiB | {:.2} ms ({:.2} ms) |",
            anon_huge_kb(s.pid()).map_or(0, |k| k / 1024),
            m.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        );
    }
}
