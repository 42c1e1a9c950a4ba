//! Side by side in one run: raw `fi_read` (the ceiling), the libfabric
//! connector's get and the UCX connector's get, both connectors reading
//! from one `proxystore-server --transports ucx,ofi`.
//!
//! ```text
//! cargo build --release -p proxystore-server --bins --examples
//! target/release/examples/side_by_side [--provider shm] [--tls shm,cma,self] [--sizes 1K,1M,64M] [--iters N]
//!     [--ucx-path rma|auto|stream] [--server HOST:PORT --raw-target 'RAW ...'] [--puts 1]
//!     [--zero-copy 1]
//! target/release/examples/side_by_side --target LEN --provider P --hold 1
//! ```
//! Gets are timed one at a time (median and best of `--iters`), each into
//! the connector's pooled registered buffer, the returned `Bytes` dropped
//! before the next; the raw reads go into one registered buffer, one
//! `fi_read` at a time, from a separate target process.
//!
//! With `--puts 1`, a second table times the two connectors' puts the
//! same way (interleaved; each put's payload copied untimed before it,
//! the object evicted untimed after it). Both connectors copy over the
//! fabric unless `--zero-copy 1` (same-node gets read the mapped segments,
//! same-node puts write them).
//!
//! Across nodes (`scripts/cluster/bench-two-nodes.sh`): the server and the
//! raw target run on another node (`--target LEN --hold 1` prints the
//! target's `RAW` line and serves until killed), and `--server` and
//! `--raw-target` point this reader at them instead of starting its own.
//! `--ucx-path` picks the UCX connector's data path (`rma` by default, the
//! one-sided get the raw tools are compared with; `auto` lets the connector
//! choose, e.g. the stream path where UCX emulates RMA over TCP).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ServerChild, first_line, fmt, getter, parse_size, putter, stats};
use ofi_connector::raw::{RawReader, RawTarget};
use ofi_connector::{OfiConfig, OfiConnector};
use proxy_core::Connector;
use ucx_connector::{DataPath, TransportConfig, UcxConfig, UcxConnector};

/// The raw target: serves until stdin closes, or with `hold` until killed.
fn target(provider: String, len: usize, hold: bool) {
    let t = RawTarget::new(Some(&provider), len).expect("raw target");
    println!("{}", t.line());
    let stop = Arc::new(AtomicBool::new(false));
    if !hold {
        let s2 = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            s2.store(true, Ordering::Relaxed);
        });
    }
    t.progress(&stop);
}

fn main() {
    let mut provider = "shm".to_string();
    let mut tls = "shm,cma,self".to_string();
    let mut sizes = "1K,64K,1M,64M".to_string();
    let mut iters = 100usize;
    let mut target_len = None;
    let mut hold = false;
    let mut ucx_path = DataPath::Rma;
    let mut remote_server: Option<String> = None;
    let mut remote_raw: Option<String> = None;
    let mut puts = false;
    let mut zero_copy = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--provider" => provider = v,
            "--tls" => tls = v,
            "--sizes" => sizes = v,
            "--iters" => iters = v.parse().expect("iters"),
            "--target" => target_len = Some(parse_size(&v)),
            "--hold" => hold = v == "1",
            "--ucx-path" => {
                ucx_path = match v.as_str() {
                    "rma" => DataPath::Rma,
                    "auto" => DataPath::Auto,
                    "stream" => DataPath::Stream,
                    other => panic!("--ucx-path: rma, auto or stream, not {other}"),
                }
            }
            "--server" => remote_server = Some(v),
            "--raw-target" => remote_raw = Some(v),
            "--puts" => puts = v == "1",
            "--zero-copy" => zero_copy = v == "1",
            other => panic!("unknown option {other}"),
        }
    }
    if let Some(len) = target_len {
        return target(provider, len, hold);
    }
    let sizes: Vec<usize> = sizes.split(',').map(parse_size).collect();
    let max = *sizes.iter().max().expect("a size");

    // Our own server and raw target, or those of another node.
    let server = match &remote_server {
        Some(_) => None,
        None => Some(ServerChild::start(&[
            "--transports",
            "ucx,ofi",
            "--tls",
            &tls,
            "--provider",
            &provider,
            "--memory-limit",
            "2G",
        ])),
    };
    let addr = match (&remote_server, &server) {
        (Some(a), _) => a.clone(),
        (None, Some(s)) => s.addr.clone(),
        (None, None) => unreachable!("a server was started"),
    };
    let mut raw_target = match &remote_raw {
        Some(_) => None,
        None => Some(
            Command::new(std::env::current_exe().expect("own path"))
                .args(["--target", &max.to_string(), "--provider", &provider])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the raw target"),
        ),
    };
    let raw_line = match (&remote_raw, raw_target.as_mut()) {
        (Some(l), _) => l.clone(),
        (None, Some(child)) => first_line(child),
        (None, None) => unreachable!("a raw target was started"),
    };
    let raw = RawReader::connect(Some(&provider), &raw_line).expect("raw");

    let t = Duration::from_secs(30);
    let ofi = OfiConnector::new(
        OfiConfig::new(&addr)
            .with_provider(&provider)
            .with_data_path(DataPath::Rma)
            // The one-sided read itself, not a same-node mapping.
            .with_zero_copy(zero_copy)
            .with_timeout(t),
    )
    .expect("ofi connector");
    let ucx = UcxConnector::new(
        UcxConfig::new(&addr)
            .with_ucx_tls(&tls)
            .with_data_path(ucx_path)
            .with_zero_copy(zero_copy)
            .with_timeout(t),
    )
    .expect("ucx connector");

    println!(
        "one process each: raw fi_read target, proxystore-server --transports ucx,ofi ({}), this reader\n\
         libfabric: {}; UCX_TLS={tls}, UCX data path {ucx_path:?} (one-sided: {}); interleaved, \
         median of {iters} (best in brackets); latency below 1 MiB, bandwidth from 1 MiB\n",
        if remote_server.is_some() {
            "elsewhere"
        } else {
            "this node"
        },
        raw.provider(),
        ucx.capabilities().one_sided_get
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
    if puts {
        println!("\n| size | ofi connector put | ucx connector put | ofi / ucx |");
        println!("|---:|---:|---:|---:|");
        for &len in &sizes {
            let n = iters.min((8usize << 30) / len.max(1)).max(5);
            let put = putter(len);
            let (mut to, mut tu) = (Vec::new(), Vec::new());
            for i in 0..n + 3 {
                let o = put(&ofi);
                let u = put(&ucx);
                if i >= 3 {
                    to.push(o);
                    tu.push(u);
                }
            }
            let ((om, ob), (um, ub)) = (stats(to), stats(tu));
            println!(
                "| {len} | {} ({}) | {} ({}) | {:.2}x |",
                fmt(om, len),
                fmt(ob, len),
                fmt(um, len),
                fmt(ub, len),
                om.as_secs_f64() / um.as_secs_f64()
            );
            println!("CSV-PUT,{len},{},{}", om.as_nanos(), um.as_nanos());
        }
    }
    if let Some(mut child) = raw_target {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    drop(server);
}
