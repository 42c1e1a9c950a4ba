//! Raw `fi_read` latency and bandwidth between two processes: the ceiling
//! of the libfabric connector's gets on this machine and provider.
//!
//! ```text
//! cargo build --release -p ofi-connector --examples
//! target/release/examples/fi_read_bench [--provider shm] [--sizes 1K,64K,1M,64M] [--iters N] [--window W]
//! ```
//! Starts itself as the target process (`--target LEN`), which registers
//! the largest size with `FI_REMOTE_READ` and prints its address and key;
//! this process then times `--iters` reads per size (`--window` in flight
//! at once, default 1) into a registered buffer and prints a Markdown table
//! (median and best per batch; bandwidth from the median), one `CSV,` line
//! per size after it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ofi_connector::raw::{RawReader, RawTarget};

fn parse_size(s: &str) -> usize {
    proxy_core::size::parse_len(s).unwrap_or_else(|e| panic!("{e}"))
}

fn target(provider: Option<String>, len: usize) {
    let t = RawTarget::new(provider.as_deref(), len).expect("raw target");
    println!("{}", t.line());
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    // Until the reader closes our stdin.
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        s2.store(true, Ordering::Relaxed);
    });
    t.progress(&stop);
}

fn main() {
    let mut provider: Option<String> = std::env::var("FI_PROVIDER").ok();
    let mut sizes = "1K,64K,1M,16M,64M".to_string();
    let mut iters = 200usize;
    let mut window = 1usize;
    let mut target_len: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--provider" => provider = Some(v),
            "--sizes" => sizes = v,
            "--iters" => iters = v.parse().expect("iters"),
            "--window" => window = v.parse::<usize>().expect("window").max(1),
            "--target" => target_len = Some(parse_size(&v)),
            other => panic!("unknown option {other}"),
        }
    }
    if let Some(len) = target_len {
        return target(provider, len);
    }
    let sizes: Vec<usize> = sizes.split(',').map(parse_size).collect();
    let max = *sizes.iter().max().expect("a size");
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args(["--target", &max.to_string()]);
    if let Some(p) = &provider {
        cmd.args(["--provider", p]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the target process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("target line");
    let r = RawReader::connect(provider.as_deref(), line.trim()).expect("connect");
    println!("raw fi_read, {} ({window} in flight)\n", r.provider());
    println!("| size | median | best | bandwidth (median) |");
    println!("|---:|---:|---:|---:|");
    let mut csv = Vec::new();
    for &len in &sizes {
        let n = iters.min((4usize << 30) / len.max(1)).max(5 * window);
        r.run(len, window, window * 2).expect("warm-up");
        let mut t = r.run(len, window, n).expect("reads");
        t.sort();
        let med = t[t.len() / 2];
        let best = t[0];
        let per = |d: Duration| d / window as u32;
        let gbs = (len * window) as f64 / med.as_secs_f64() / 1e9;
        println!(
            "| {len} | {:.1} µs | {:.1} µs | {gbs:.2} GB/s |",
            per(med).as_secs_f64() * 1e6,
            per(best).as_secs_f64() * 1e6
        );
        csv.push(format!(
            "CSV,{len},{},{}",
            per(med).as_nanos(),
            per(best).as_nanos()
        ));
    }
    for c in csv {
        println!("{c}");
    }
    drop(child.stdin.take());
    let _ = child.wait();
}
