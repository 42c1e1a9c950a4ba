//! What authentication costs, side by side in one run: the UCX and libfabric
//! connectors getting from a `proxystore-server --transports ucx,ofi` that
//! requires the secret (the default: this user's secret file) and from one
//! started with `--no-auth`, interleaved.
//!
//! ```text
//! cargo build --release -p proxystore-server --bins --examples
//! target/release/examples/auth_overhead [--provider shm] [--tls shm,cma,self] [--sizes 1K,64M] [--iters N] [--rounds R]
//! ```
//! Rows: each size's get (median of `--iters`, one-sided: zero copy off),
//! and "first get": a new connector's first 1 KiB get (connection, hello
//! with the secret, endpoint, descriptor), where authentication happens.
//! The last column is auth on / auth off (100%: no cost), the median over
//! `--rounds` rounds of new servers: two server processes differ by more
//! than authentication could (where their memory landed), so one pair of
//! servers says little.

mod common;

use std::time::{Duration, Instant};

use common::{ServerChild, fmt, getter, parse_size, stats};
use ofi_connector::{OfiConfig, OfiConnector};
use proxy_core::{Connector, Payload};
use ucx_connector::{DataPath, TransportConfig, UcxConfig, UcxConnector};

struct Opts {
    provider: String,
    tls: String,
}

fn connector(o: &Opts, fabric: &str, addr: &str) -> Box<dyn Connector> {
    let t = Duration::from_secs(30);
    match fabric {
        "ofi" => Box::new(
            OfiConnector::new(
                OfiConfig::new(addr)
                    .with_provider(&o.provider)
                    .with_data_path(DataPath::Rma)
                    .with_zero_copy(false)
                    .with_timeout(t),
            )
            .expect("ofi connector"),
        ),
        _ => Box::new(
            UcxConnector::new(
                UcxConfig::new(addr)
                    .with_ucx_tls(&o.tls)
                    .with_data_path(DataPath::Rma)
                    .with_zero_copy(false)
                    .with_timeout(t),
            )
            .expect("ucx connector"),
        ),
    }
}

/// A new connector's first get of a 1 KiB object `key` (and its close).
fn first_get(o: &Opts, fabric: &str, addr: &str, key: &proxy_core::Key) -> Duration {
    let t = Instant::now();
    let c = connector(o, fabric, addr);
    let b = c.get(key).unwrap().expect("object");
    let d = t.elapsed();
    assert_eq!(b.len(), 1024);
    d
}

/// One fabric's figures in one round: per size the medians (on, off), then
/// the first get's.
type Round = Vec<(String, usize, Duration, Duration)>;

fn round(o: &Opts, sizes: &[usize], iters: usize, on_first: bool) -> Round {
    let base = [
        "--transports",
        "ucx,ofi",
        "--tls",
        &o.tls,
        "--provider",
        &o.provider,
        "--memory-limit",
        "2G",
    ];
    // Over TCP both: on the Unix-domain socket a process of the server's
    // user needs no secret, so the hello there would not show its cost.
    let with: Vec<&str> = base.iter().copied().chain(["--no-unix-socket"]).collect();
    let without: Vec<&str> = with.iter().copied().chain(["--no-auth"]).collect();
    // Which server starts first alternates between rounds.
    let (on, off) = if on_first {
        let on = ServerChild::start(&with);
        (on, ServerChild::start(&without))
    } else {
        let off = ServerChild::start(&without);
        (ServerChild::start(&with), off)
    };
    let mut out = Vec::new();
    for fabric in ["ucx", "ofi"] {
        // Whatever is made first (connector, receive buffer, object) may
        // land better in memory: that order alternates with the rounds too.
        let (c_on, c_off) = if on_first {
            let c_on = connector(o, fabric, &on.addr);
            (c_on, connector(o, fabric, &off.addr))
        } else {
            let c_off = connector(o, fabric, &off.addr);
            (connector(o, fabric, &on.addr), c_off)
        };
        for &len in sizes {
            let n = iters.min((8usize << 30) / len.max(1)).max(5);
            let ((k_on, g_on), (k_off, g_off)) = if on_first {
                let a = getter(&*c_on, len);
                (a, getter(&*c_off, len))
            } else {
                let b = getter(&*c_off, len);
                (getter(&*c_on, len), b)
            };
            let (mut t_on, mut t_off) = (Vec::new(), Vec::new());
            for i in 0..n + 3 {
                // Alternate which goes first.
                let (a, b) = if i % 2 == 0 {
                    let a = g_on(&*c_on);
                    (a, g_off(&*c_off))
                } else {
                    let b = g_off(&*c_off);
                    (g_on(&*c_on), b)
                };
                if i >= 3 {
                    t_on.push(a);
                    t_off.push(b);
                }
            }
            c_on.evict(&k_on).unwrap();
            c_off.evict(&k_off).unwrap();
            out.push((fabric.to_string(), len, stats(t_on).0, stats(t_off).0));
        }
        let k_on = c_on.put(Payload::from(vec![7u8; 1024])).unwrap();
        let k_off = c_off.put(Payload::from(vec![7u8; 1024])).unwrap();
        let (mut t_on, mut t_off) = (Vec::new(), Vec::new());
        for _ in 0..iters.min(30) {
            t_on.push(first_get(o, fabric, &on.addr, &k_on));
            t_off.push(first_get(o, fabric, &off.addr, &k_off));
        }
        out.push((fabric.to_string(), 0, stats(t_on).0, stats(t_off).0));
    }
    out
}

fn main() {
    let mut o = Opts {
        provider: "shm".into(),
        tls: "shm,cma,self".into(),
    };
    let mut sizes = "1K,64M".to_string();
    let mut iters = 200usize;
    let mut rounds = 6usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--provider" => o.provider = v,
            "--tls" => o.tls = v,
            "--sizes" => sizes = v,
            "--iters" => iters = v.parse().expect("iters"),
            "--rounds" => rounds = v.parse().expect("rounds"),
            other => panic!("unknown option {other}"),
        }
    }
    let sizes: Vec<usize> = sizes.split(',').map(parse_size).collect();
    println!(
        "proxystore-server --transports ucx,ofi twice (secret required, --no-auth), new \
         servers in each of {rounds} rounds (which starts first alternates); UCX_TLS={}, \
         libfabric {}; one-sided gets (zero copy off), interleaved; per round the median \
         of {iters}; below the median over rounds (their range in brackets)\n",
        o.tls, o.provider
    );
    let all: Vec<Round> = (0..rounds)
        .map(|r| round(&o, &sizes, iters, r % 2 == 0))
        .collect();
    println!("| fabric | what | auth on | auth off | on / off |");
    println!("|---|---|---:|---:|---:|");
    for (row, (fabric, len, _, _)) in all[0].iter().enumerate() {
        let on: Vec<Duration> = all.iter().map(|r| r[row].2).collect();
        let off: Vec<Duration> = all.iter().map(|r| r[row].3).collect();
        let ratios: Vec<f64> = all
            .iter()
            .map(|r| r[row].2.as_secs_f64() / r[row].3.as_secs_f64())
            .collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let (m_on, m_off) = (stats(on).0, stats(off).0);
        let (what, shown) = if *len == 0 {
            ("first get (new connector)".to_string(), 1024)
        } else {
            (format!("get {len} B"), *len)
        };
        println!(
            "| {fabric} | {what} | {} | {} | {:.1}% ({:.1}%-{:.1}%) |",
            fmt(m_on, shown),
            fmt(m_off, shown),
            100.0 * sorted[sorted.len() / 2],
            100.0 * sorted[0],
            100.0 * sorted[sorted.len() - 1]
        );
        println!(
            "CSV,{fabric},{len},{},{},{:.4}",
            m_on.as_nanos(),
            m_off.as_nanos(),
            sorted[sorted.len() / 2]
        );
    }
}
