//! Side by side in one run, over one Mercury protocol (default `na+sm`):
//!
//! 1. **`hg_bw_read`**, Mercury's own bulk-read benchmark from the same
//!    Mercury build, when found (`--hg-bin DIR`, else `$MARGO_DIR/bin`,
//!    else the directory of the loaded Mercury's `../bin`, else `PATH`), in
//!    two shapes: per request (one RPC) its `hg_perf_server` pushes `-w`
//!    bulk transfers of the size into the client's buffer, all in flight at
//!    once; `-w 1` is the connector's shape (one transfer in flight, server
//!    to client), `-w 64` the tool's default. The data goes the same way as
//!    a get's (server to client); the copy is the server's push, where the
//!    connector's is the client's pull;
//! 2. **raw bulk pull**: this crate's Margo layer alone, one
//!    `margo_bulk_ctransfer_timed(HG_BULK_PULL)` at a time of exactly the
//!    payload, from the server's segment handle into one pooled registered
//!    buffer at the payload's page phase (no header check, no header re-read,
//!    no control plane, no `Bytes`);
//! 3. **connector get**: `MargoConnector::get` of the same object (bulk pull
//!    into the pool, header/trailer check and header re-read, `Bytes`).
//!
//! The three run interleaved in rounds, so that all see the same machine
//! load; each reports the mean bandwidth (total bytes over total time) and
//! the mean time per transfer, median over the rounds.
//!
//! ```text
//! cargo build --release -p margo-connector --bins --examples
//! target/release/examples/margo_bench [--protocol na+sm] [--sizes 1K,64M] [--rounds 5]
//!                                     [--bytes-per-round 2G] [--hg-bin DIR]
//! ```

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use margo_connector::{DataPath, Margo, MargoConfig, MargoConnector, MargoKey, TransportConfig};
use object_server::layout;
use object_server::proto::{self, Request, Response};
use object_server::{ClientTransport, ServerBinary};
use proxy_core::mem::BufferPool;
use proxy_core::{Connector, Payload};

fn parse_size(s: &str) -> usize {
    proxy_core::size::parse_len(s).unwrap_or_else(|e| panic!("{e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `hg_perf_server`'s and `hg_bw_read`'s NA options for a protocol.
fn hg_args(protocol: &str) -> Option<Vec<String>> {
    let (class, rest) = protocol.split_once('+')?;
    let (proto, host) = match rest.split_once("://") {
        Some((p, h)) => (p, Some(h.split(':').next().unwrap_or(h))),
        None => (rest, None),
    };
    let proto = proto.split(';').next().unwrap_or(proto);
    let mut a = vec!["-c".into(), class.into(), "-p".into(), proto.into()];
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        a.extend(["-H".into(), h.into()]);
    }
    Some(a)
}

fn find_hg_bin(explicit: Option<PathBuf>) -> Option<PathBuf> {
    let ok = |d: &Path| d.join("hg_bw_read").is_file() && d.join("hg_perf_server").is_file();
    let mut dirs: Vec<PathBuf> = explicit.into_iter().collect();
    if let Some(m) = std::env::var_os("MARGO_DIR") {
        dirs.push(PathBuf::from(m).join("bin"));
    }
    if let Ok(api) = margo_sys::api() {
        if let Some(lib) = api.path().parent() {
            dirs.push(lib.join("../bin"));
        }
    }
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.into_iter().find(|d| ok(d))
}

/// One `hg_bw_read` run at `len` with `loops` loops of `window` transfers
/// in flight each (`-w`): (MiB/s, µs per transfer) as it prints them.
fn hg_bw_read(
    bin: &Path,
    protocol: &str,
    len: usize,
    loops: usize,
    window: usize,
) -> Option<(f64, f64)> {
    let na = hg_args(protocol)?;
    let dir = std::env::temp_dir().join(format!("margo-bench-hg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let cfg = dir.join("port.cfg");
    let _ = std::fs::remove_file(&cfg);
    let mut server = Command::new(bin.join("hg_perf_server"))
        .args(&na)
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&cfg).is_ok_and(|s| s.contains("://")) {
        if Instant::now() > deadline {
            let _ = server.kill();
            let _ = server.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = Command::new(bin.join("hg_bw_read"))
        .args(&na)
        .arg("-f")
        .arg(&cfg)
        .args(["-y", &len.to_string(), "-z", &len.to_string()])
        .args(["-l", &loops.to_string(), "-w", &window.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = client.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    // Bounded: a client whose server died (seen once on this loaded
    // machine) would wait for it forever. Its warm-up (10 loops) and the
    // loops at 50 MB/s.
    let bound = Duration::from_secs(60)
        + Duration::from_secs_f64(((loops + 10) * window * len) as f64 / 50e6);
    let deadline = Instant::now() + bound;
    let finished = loop {
        match client.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break false,
        }
    };
    if !finished {
        eprintln!(
            "margo_bench: hg_bw_read -w {window} at {len} B did not finish in {bound:?}: round left out"
        );
        let _ = client.kill();
        let _ = client.wait();
    }
    let out = reader.join().ok().filter(|_| finished);
    // It shuts its server down when done; make sure.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let text = out?;
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == len.to_string())
            .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
            .flatten()
    })
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    line.trim().to_string()
}

fn ask(s: &mut TcpStream, req: &Request) -> Response {
    proto::write_frame(s, req).unwrap();
    proto::read_frame(s).unwrap().expect("an answer")
}

/// The raw pull: the transport alone, reading exactly the payload of `key`.
struct RawPull {
    margo: Margo,
    peer: margo_connector::margo::Addr,
    remote: margo_connector::MargoRemote,
    pool: BufferPool<margo_connector::MargoAlloc>,
    at: u64,
    len: usize,
}

impl RawPull {
    fn new(cfg: &MargoConfig, server: &str, key: &MargoKey) -> RawPull {
        let mut s = TcpStream::connect(server).unwrap();
        let Response::Hello { address, .. } =
            object_server::testkit::access::greet(&mut s, "margo")
        else {
            panic!("hello refused");
        };
        let Response::Segment(Some(info)) = ask(
            &mut s,
            &Request::Segment {
                seg: key.seg,
                write: false,
            },
        ) else {
            panic!("no segment {}", key.seg);
        };
        let margo = Margo::new(cfg).unwrap();
        let peer = margo.connect(&address, false).unwrap();
        let remote = margo.unpack(&peer, &info.descriptor).unwrap();
        let pool = BufferPool::new(margo.allocator(), 4 << 30);
        RawPull {
            at: info.base + key.offset + layout::HEADER as u64,
            len: key.len as usize,
            margo,
            peer,
            remote,
            pool,
        }
    }

    fn once(&self) -> Duration {
        // At the page phase the payload has on the server (as the
        // connector's gets land), so that the copy is aligned alike.
        let buf = self
            .pool
            .acquire_at(self.len, (self.at % 4096) as usize)
            .unwrap();
        let t = Instant::now();
        let op = self
            .margo
            .get(&self.peer, &self.remote, self.at, buf)
            .unwrap();
        self.margo
            .wait(&[&op], "get", Duration::from_secs(60))
            .unwrap();
        let d = t.elapsed();
        let b = op.take().unwrap().unwrap();
        assert_eq!(b.len(), self.len);
        d
    }
}

fn mib_s(len: usize, per: Duration) -> f64 {
    len as f64 / per.as_secs_f64() / (1 << 20) as f64
}

fn main() {
    let mut protocol = "na+sm".to_string();
    let mut sizes = "1K,64M".to_string();
    let mut rounds = 5usize;
    let mut per_round = 2usize << 30;
    let mut hg_bin = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("value");
        match a.as_str() {
            "--protocol" => protocol = v,
            "--sizes" => sizes = v,
            "--rounds" => rounds = v.parse().expect("rounds"),
            "--bytes-per-round" => per_round = parse_size(&v),
            "--hg-bin" => hg_bin = Some(PathBuf::from(v)),
            other => panic!("unknown option {other}"),
        }
    }
    let sizes: Vec<usize> = sizes.split(',').map(parse_size).collect();
    let max = *sizes.iter().max().expect("a size");
    let hg = find_hg_bin(hg_bin);

    let bin = object_server::locate_server(&ServerBinary {
        name: "proxystore-margo-server",
        env: "PROXYSTORE_MARGO_SERVER",
        build: "cargo build --release -p margo-connector --bins",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let limit = format!("{}M", (max * 4 + (64 << 20)) >> 20);
    let mut server = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--margo-protocol", &protocol])
        .args(["--memory-limit", &limit, "--exit-with-parent"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start proxystore-margo-server");
    let addr = first_line(&mut server)
        .strip_prefix("LISTEN ")
        .expect("LISTEN line")
        .to_string();
    let cfg = MargoConfig::new(&addr)
        .with_protocol(&protocol)
        .with_data_path(DataPath::Rma)
        // The bulk pull itself, not a same-node mapping of the segment.
        .with_zero_copy(false)
        .with_timeout(Duration::from_secs(60));
    let conn = MargoConnector::new(cfg.clone()).expect("connector");

    let (hg_ver, margo_ver) = match margo_sys::api() {
        Ok(a) => {
            let (x, y, z) = a.mercury_version();
            (format!("{x}.{y}.{z}"), a.path().display().to_string())
        }
        Err(e) => panic!("{e}"),
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "protocol {protocol}; Mercury {hg_ver}; Margo from {margo_ver}; {rounds} interleaved rounds, \
         ~{} MiB per series and round; load average at start: {}",
        per_round >> 20,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    match &hg {
        Some(d) => println!("hg_bw_read: {}", d.join("hg_bw_read").display()),
        None => println!("hg_bw_read: not found (--hg-bin DIR); its column is empty"),
    }
    println!();
    println!(
        "| size | hg_bw_read -w 1 (1 in flight) | hg_bw_read -w 64 (64 in flight) | raw bulk pull \
         | connector get | connector / hg_bw_read -w 1 | connector / hg_bw_read -w 64 | connector / raw |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &len in &sizes {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let key = conn.put(Payload::from(data)).expect("put");
        let k: MargoKey = key.decode("margo").unwrap();
        let raw = RawPull::new(&cfg, &addr, &k);
        // Transfers per series and round (hg_bw_read: -w per loop).
        let n = (per_round / len.max(1)).clamp(5, 20_000);
        let (mut th1, mut th64, mut tr, mut tc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Warm-up: buffers mapped and registered, peer looked up.
        for _ in 0..3 {
            raw.once();
            conn.get(&key).unwrap().expect("object");
        }
        for _ in 0..rounds {
            if let Some(d) = &hg {
                for (window, t) in [(1, &mut th1), (64, &mut th64)] {
                    let loops = n.div_ceil(window).max(1);
                    if let Some((_, us)) = hg_bw_read(d, &protocol, len, loops, window) {
                        t.push(us);
                    }
                }
            }
            let t = Instant::now();
            for _ in 0..n {
                raw.once();
            }
            tr.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
            let t = Instant::now();
            for _ in 0..n {
                let b = conn.get(&key).unwrap().expect("object");
                assert_eq!(b.len(), len);
            }
            tc.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        conn.evict(&key).unwrap();
        let cell = |us: f64| {
            let per = Duration::from_secs_f64(us / 1e6);
            if len >= 1 << 20 {
                format!("{:.0} MiB/s", mib_s(len, per))
            } else {
                format!("{us:.1} µs")
            }
        };
        let (r, c) = (median(tr), median(tc));
        // The tool's cell and the connector's speed relative to it.
        let tool = |th: Vec<f64>| {
            if th.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                let h = median(th);
                (cell(h), format!("{:.0}%", 100.0 * h / c))
            }
        };
        let ((h1, ratio1), (h64, ratio64)) = (tool(th1), tool(th64));
        println!(
            "| {len} | {h1} | {h64} | {} | {} | {ratio1} | {ratio64} | {:.0}% |",
            cell(r),
            cell(c),
            100.0 * r / c
        );
    }
    drop(conn);
    let _ = server.kill();
    let _ = server.wait();
}
