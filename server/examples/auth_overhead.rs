//! What authentication costs, side by side in one run: the UCX and libfabric
//! connectors getting from a `proxystore-server --transports ucx,ofi` that
//! requires the secret (the default: this user's secret file) and from one
//! started with `--no-auth`, interleaved.
//!
//! ```text
//! cargo build --release -p proxystore-server --bins --examples
//! target/release/examples/auth_overhead [--provider shm] [--tls shm,cma,self] [--sizes 1K,64M] [--iters N]
//! ```
//! Rows: each size's get (median of `--iters`, one-sided: zero copy off),
//! and "first get": a new connector's first 1 KiB get (connection, hello
//! with the secret, endpoint, descriptor), where authentication happens.
//! The last column is auth on / auth off (100%: no cost).

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

fn pct(on: Duration, off: Duration) -> String {
    format!("{:.1}%", 100.0 * on.as_secs_f64() / off.as_secs_f64())
}

fn main() {
    let mut o = Opts {
        provider: "shm".into(),
        tls: "shm,cma,self".into(),
    };
    let mut sizes = "1K,64M".to_string();
    let mut iters = 200usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--provider" => o.provider = v,
            "--tls" => o.tls = v,
            "--sizes" => sizes = v,
            "--iters" => iters = v.parse().expect("iters"),
            other => panic!("unknown option {other}"),
        }
    }
    let sizes: Vec<usize> = sizes.split(',').map(parse_size).collect();
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
    let (on, off) = (ServerChild::start(&with), ServerChild::start(&without));
    println!(
        "proxystore-server --transports ucx,ofi twice (secret required, --no-auth); \
         UCX_TLS={}, libfabric {}; one-sided gets (zero copy off), interleaved, \
         median of {iters} (best in brackets)\n",
        o.tls, o.provider
    );
    println!("| fabric | what | auth on | auth off | on / off |");
    println!("|---|---|---:|---:|---:|");
    for fabric in ["ucx", "ofi"] {
        let (c_on, c_off) = (
            connector(&o, fabric, &on.addr),
            connector(&o, fabric, &off.addr),
        );
        for &len in &sizes {
            let n = iters.min((8usize << 30) / len.max(1)).max(5);
            let (k_on, g_on) = getter(&*c_on, len);
            let (k_off, g_off) = getter(&*c_off, len);
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
            let ((m_on, b_on), (m_off, b_off)) = (stats(t_on), stats(t_off));
            println!(
                "| {fabric} | get {len} B | {} ({}) | {} ({}) | {} |",
                fmt(m_on, len),
                fmt(b_on, len),
                fmt(m_off, len),
                fmt(b_off, len),
                pct(m_on, m_off)
            );
            println!(
                "CSV,{fabric},get,{len},{},{}",
                m_on.as_nanos(),
                m_off.as_nanos()
            );
        }
        let k_on = c_on.put(Payload::from(vec![7u8; 1024])).unwrap();
        let k_off = c_off.put(Payload::from(vec![7u8; 1024])).unwrap();
        let (mut t_on, mut t_off) = (Vec::new(), Vec::new());
        for _ in 0..iters.min(50) {
            t_on.push(first_get(&o, fabric, &on.addr, &k_on));
            t_off.push(first_get(&o, fabric, &off.addr, &k_off));
        }
        let ((m_on, b_on), (m_off, b_off)) = (stats(t_on), stats(t_off));
        println!(
            "| {fabric} | first get (new connector) | {} ({}) | {} ({}) | {} |",
            fmt(m_on, 1024),
            fmt(b_on, 1024),
            fmt(m_off, 1024),
            fmt(b_off, 1024),
            pct(m_on, m_off)
        );
        println!(
            "CSV,{fabric},first,1024,{},{}",
            m_on.as_nanos(),
            m_off.as_nanos()
        );
    }
}
