//! Side by side in one run: raw `fi_read` (the ceiling), the libfabric
//! connector's get and the UCX connector's get, both connectors reading
//! from one `proxystore-server --transports ucx,ofi`.
//!
//! ```text
//! cargo build --release -p proxystore-server --bins --examples
//! target/release/examples/side_by_side [--provider shm] [--tls shm,cma,self] [--sizes 1K,1M,64M] [--iters N]
//! ```
//! Gets are timed one at a time (median and best of `--iters`), each into
//! the connector's pooled registered buffer, the returned `Bytes` dropped
//! before the next; the raw reads go into one registered buffer, one
//! `fi_read` at a time, from a separate target process.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ServerChild, first_line, fmt, getter, parse_size, stats};
use ofi_connector::raw::{RawReader, RawTarget};
use ofi_connector::{OfiConfig, OfiConnector};
use proxy_core::Connector;
use ucx_connector::{DataPath, TransportConfig, UcxConfig, UcxConnector};

fn target(provider: String, len: usize) {
    let t = RawTarget::new(Some(&provider), len).expect("raw target");
    println!("{}", t.line());
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        s2.store(true, Ordering::Relaxed);
    });
    t.progress(&stop);
}

fn main() {
    let mut provider = "shm".to_string();
    let mut tls = "shm,cma,self".to_string();
    let mut sizes = "1K,64K,1M,64M".to_string();
    let mut iters = 100usize;
    let mut target_len = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--provider" => provider = v,
            "--tls" => tls = v,
            "--sizes" => sizes = v,
            "--iters" => iters = v.parse().expect("iters"),
            "--target" => target_len = Some(parse_size(&v)),
            other => panic!("unknown option {other}"),
        }
    }
    if let Some(len) = target_len {
        return target(provider, len);
    }
    let sizes: Vec<usize> = sizes.split(',').map(parse_size).collect();
    let max = *sizes.iter().max().expect("a size");

    let server = ServerChild::start(&[
        "--transports",
        "ucx,ofi",
        "--tls",
        &tls,
        "--provider",
        &provider,
        "--memory-limit",
        "2G",
    ]);
    let addr = server.addr.clone();
    let mut raw_target = Command::new(std::env::current_exe().expect("own path"))
        .args(["--target", &max.to_string(), "--provider", &provider])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the raw target");
    let raw = RawReader::connect(Some(&provider), &first_line(&mut raw_target)).expect("raw");

    let t = Duration::from_secs(30);
    let ofi = OfiConnector::new(
        OfiConfig::new(&addr)
            .with_provider(&provider)
            .with_data_path(DataPath::Rma)
            // The one-sided read itself, not a same-node mapping.
            .with_zero_copy(false)
            .with_timeout(t),
    )
    .expect("ofi connector");
    let ucx = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(&tls)
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false)
            .with_timeout(t),
    )
    .expect("ucx connector");

    println!(
        "one process each: raw fi_read target, proxystore-server --transports ucx,ofi, this reader\n\
         libfabric: {}; UCX_TLS={tls}; interleaved, median of {iters} (best in brackets); \
         latency below 1 MiB, bandwidth from 1 MiB\n",
        raw.provider()
    );
    println!("| size | raw fi_read | ofi connector get | ucx connector get | ofi / raw |");
    println!("|---:|---:|---:|---:|---:|");
    for &len in &sizes {
        let n = iters.min((8usize << 30) / len.max(1)).max(5);
        // Interleaved (raw, ofi, ucx, raw, ...), so that all three see the
        // same machine load.
        let (ko, go) = getter(&ofi, len);
        let (ku, gu) = getter(&ucx, len);
        let (mut tr, mut to, mut tu) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n + 3 {
            let r = raw.run(len, 1, 1).expect("raw read")[0];
            let o = go(&ofi);
            let u = gu(&ucx);
            if i >= 3 {
                tr.push(r);
                to.push(o);
                tu.push(u);
            }
        }
        ofi.evict(&ko).unwrap();
        ucx.evict(&ku).unwrap();
        let ((rm, rb), (om, ob), (um, ub)) = (stats(tr), stats(to), stats(tu));
        println!(
            "| {len} | {} ({}) | {} ({}) | {} ({}) | {:.0}% |",
            fmt(rm, len),
            fmt(rb, len),
            fmt(om, len),
            fmt(ob, len),
            fmt(um, len),
            fmt(ub, len),
            100.0 * rm.as_secs_f64() / om.as_secs_f64()
        );
        println!(
            "CSV,{len},{},{},{}",
            rm.as_nanos(),
            om.as_nanos(),
            um.as_nanos()
        );
    }
    drop(raw_target.stdin.take());
    let _ = raw_target.wait();
    drop(server);
}
