//! Store-level benchmark in the shape of `benches/python/bench_store.py`:
//! put, get (no cache), and a proxy created here and resolved in a separate,
//! already running consumer process, per connector, payload and size.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use bytes::Bytes;
use proxy_core::{Error, NdArray, Proxy, ProxyOptions, Result, Store};

use crate::connectors::{self, ConnectorOpts};
use crate::csv::{Row, fmt_size};
use crate::progress::Progress;
use crate::stats::{Plan, summarize};

/// The payload kinds of the reference: raw bytes and float64 NumPy arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    Bytes,
    Numpy,
}

impl PayloadKind {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bytes" => Ok(PayloadKind::Bytes),
            "numpy" => Ok(PayloadKind::Numpy),
            o => Err(format!("unknown payload {o:?} (bytes, numpy)")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::Bytes => "bytes",
            PayloadKind::Numpy => "numpy",
        }
    }
}

fn bytes_payload(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(1))
        .collect::<Vec<u8>>()
        .into()
}

fn numpy_payload(size: usize) -> NdArray {
    let n = size / 8;
    let mut v = Vec::with_capacity(n * 8);
    for i in 0..n {
        v.extend_from_slice(&(i as f64).to_le_bytes());
    }
    NdArray {
        descr: "<f8".into(),
        shape: vec![n],
        fortran_order: false,
        data: v.into(),
    }
}

/// Sum of one byte per 4 KiB page: makes the consumer touch all the data, as
/// the reference does.
fn touch(b: &[u8]) -> u64 {
    b.iter().step_by(4096).map(|&x| x as u64).sum()
}

/// The consumer process: reads `kind len` lines followed by `len` proxy bytes,
/// resolves, touches, and answers `micros nbytes`.
pub fn child_main() -> Result<()> {
    connectors::register_all();
    let io = |e| Error::io("consumer pipe", e);
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line).map_err(io)? == 0 {
            return Ok(());
        }
        let mut it = line.split_whitespace();
        let kind = it.next().unwrap_or("");
        let len: usize = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut wire = vec![0u8; len];
        input.read_exact(&mut wire).map_err(io)?;
        let t = Instant::now();
        let res: Result<usize> = match kind {
            "bytes" => Proxy::<Bytes>::from_bytes(&wire).and_then(|p| {
                let b = p.resolve()?;
                std::hint::black_box(touch(b));
                Ok(b.len())
            }),
            _ => Proxy::<NdArray>::from_bytes(&wire).and_then(|p| {
                let a = p.resolve()?;
                std::hint::black_box(touch(&a.data));
                Ok(a.data.len())
            }),
        };
        let us = t.elapsed().as_secs_f64() * 1e6;
        match res {
            Ok(n) => writeln!(out, "{us} {n}"),
            Err(e) => writeln!(out, "ERR {e}"),
        }
        .and_then(|_| out.flush())
        .map_err(io)?;
    }
}

struct Consumer {
    child: Child,
    tx: BufWriter<ChildStdin>,
    rx: BufReader<ChildStdout>,
}

impl Consumer {
    fn spawn() -> Result<Consumer> {
        let exe = std::env::current_exe().map_err(|e| Error::io("locating this program", e))?;
        let mut child = Command::new(exe)
            .arg("consumer")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("starting the consumer process", e))?;
        let tx = BufWriter::new(child.stdin.take().expect("piped"));
        let rx = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Consumer { child, tx, rx })
    }

    /// Send a proxy, wait for the consumer's (micros, nbytes).
    fn resolve(&mut self, kind: PayloadKind, wire: &[u8]) -> Result<(f64, usize)> {
        let io = |e| Error::io("talking to the consumer process", e);
        writeln!(self.tx, "{} {}", kind.name(), wire.len()).map_err(io)?;
        self.tx
            .write_all(wire)
            .and_then(|_| self.tx.flush())
            .map_err(io)?;
        let mut line = String::new();
        if self.rx.read_line(&mut line).map_err(io)? == 0 {
            return Err(Error::io(
                "consumer process",
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        if let Some(msg) = line.strip_prefix("ERR ") {
            return Err(Error::permanent(
                "bench",
                "consumer resolve",
                msg.trim().to_string(),
            ));
        }
        let mut it = line.split_whitespace();
        let us = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        let n = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((us, n))
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options of one store-level run.
pub struct StoreBenchOpts {
    pub connectors: Vec<String>,
    pub payloads: Vec<PayloadKind>,
    pub sizes: Vec<usize>,
    pub quick: bool,
    pub budget_s: f64,
    pub conn: ConnectorOpts,
}

fn row(
    connector: &str,
    kind: PayloadKind,
    size: usize,
    op: &str,
    s: &[f64],
    extra: &[(String, String)],
) -> Row {
    Row {
        section: "proxystore".into(),
        connector: connector.into(),
        payload: kind.name().into(),
        size,
        op: op.into(),
        summary: summarize(s),
        extra: extra.to_vec(),
        bandwidth: true,
    }
}

pub fn run(opts: &StoreBenchOpts, rows: &mut Vec<Row>, progress: &Progress) -> Result<()> {
    let mut consumer = Consumer::spawn()?;
    for cname in &opts.connectors {
        let conn = connectors::make(cname, &opts.conn)?;
        let cross = conn.capabilities().cross_process;
        let store = Store::builder(format!("bench-{cname}"), conn.clone())
            .cache_bytes(0)
            .populate_target(false)
            .build()?;
        for &kind in &opts.payloads {
            for &size in &opts.sizes {
                progress.say(&format!("store {cname} {} {}", kind.name(), fmt_size(size)));
                let plan = Plan::for_size(size, opts.quick, opts.budget_s);
                let bytes = (kind == PayloadKind::Bytes).then(|| bytes_payload(size));
                let nd = (kind == PayloadKind::Numpy).then(|| numpy_payload(size));
                let put = |store: &Store| -> Result<proxy_core::Key> {
                    match (&bytes, &nd) {
                        (Some(b), _) => store.put(b),
                        (_, Some(a)) => store.put(a),
                        _ => unreachable!(),
                    }
                };
                // put
                let s = plan.run(|| {
                    let t = Instant::now();
                    let k = put(&store)?;
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    store.evict(&k)?;
                    Ok::<f64, Error>(us)
                })?;
                rows.push(row(cname, kind, size, "put", &s, &[]));
                // get (cache disabled)
                let key = put(&store)?;
                let s = plan.run(|| {
                    let t = Instant::now();
                    let n = match kind {
                        PayloadKind::Bytes => store.get::<Bytes>(&key)?.map(|b| b.len()),
                        PayloadKind::Numpy => store.get::<NdArray>(&key)?.map(|a| a.data.len()),
                    };
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    if n.is_none() {
                        return Err(Error::MissingKey {
                            key: key.to_string(),
                            store: store.name().into(),
                            connector: cname.clone(),
                        });
                    }
                    Ok(us)
                })?;
                let mut get = row(cname, kind, size, "get", &s, &[]);
                // A get that maps the server's memory (same node, zero copy)
                // moves nothing: no bandwidth (asked after the first get).
                get.bandwidth = !conn.capabilities().mapped_get;
                rows.push(get);
                store.evict(&key)?;
                if !cross {
                    continue;
                }
                // proxy created here, resolved in the consumer process
                let (mut create, mut child, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
                let mut psize = 0;
                let expect = match kind {
                    PayloadKind::Bytes => size,
                    PayloadKind::Numpy => size / 8 * 8,
                };
                let mut once = |record: bool| -> Result<f64> {
                    let opts = ProxyOptions::default().populate_target(false);
                    let t0 = Instant::now();
                    let (k, wire) = match (&bytes, &nd) {
                        (Some(b), _) => {
                            let p = store.proxy_with(b.clone(), opts)?;
                            (p.key().clone(), p.to_bytes()?)
                        }
                        (_, Some(a)) => {
                            let p = store.proxy_with(a.clone(), opts)?;
                            (p.key().clone(), p.to_bytes()?)
                        }
                        _ => unreachable!(),
                    };
                    let t1 = t0.elapsed().as_secs_f64() * 1e6;
                    let (child_us, n) = consumer.resolve(kind, &wire)?;
                    let t2 = t0.elapsed().as_secs_f64() * 1e6;
                    if n != expect {
                        return Err(Error::permanent(
                            "bench",
                            "consumer resolve",
                            format!("got {n} bytes, expected {expect}"),
                        ));
                    }
                    store.evict(&k)?;
                    if record {
                        create.push(t1);
                        child.push(child_us);
                        e2e.push(t2);
                        psize = wire.len();
                    }
                    Ok(t2)
                };
                for _ in 0..plan.warm {
                    once(false)?;
                }
                Plan { warm: 0, ..plan }.run(|| once(true))?;
                let extra = vec![("proxy_bytes".to_string(), psize.to_string())];
                rows.push(row(cname, kind, size, "proxy_create", &create, &extra));
                rows.push(row(cname, kind, size, "child_resolve", &child, &extra));
                rows.push(row(cname, kind, size, "proxy_e2e", &e2e, &extra));
            }
        }
        store.close()?;
        connectors::cleanup(&conn);
    }
    Ok(())
}
