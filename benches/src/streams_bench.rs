//! `proxystore-bench streams`: one producer (this process) and one consumer
//! process per run, items of each size through each stream shim, with
//! proxies (objects in a UCX object server, zero copy on this node, evicted
//! by the consumer) and without (the bytes inline in the events, as the
//! Python ProxyStore's `StreamProducer` without a store sends them).
//!
//! Shims: Redis pub/sub, Redis list (queue), Redis Streams (consumer group,
//! one acknowledgement per item), ZeroMQ PUB/SUB (no high-water mark, so
//! nothing is dropped), Kafka (one record per event batch, acknowledged;
//! a private `tansu` broker with in-memory storage, `$TANSU` or `tansu` on
//! the `PATH`: `scripts/tansu.sh`). A private redis-server
//! (no pub/sub output limit) and, without `--ucx-server`, a private
//! `proxystore-ucx-server` (next to this program) are started and stopped.
//!
//! Per run: items/s and GB/s = items / (consumer's last item - producer's
//! first send), and the latency of each item from its send to the end of
//! its resolve in the consumer, p50 and p99. The producer sends as fast as
//! it can (one event batch per item), so latency includes the time an item
//! waits behind the ones before it; a second table sends 1 KB items one per
//! millisecond, whose latency is the transport's.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxy_core::{Bytes, Error, Result, Store};
use proxy_patterns::stream::kafka::{KafkaPublisher, KafkaStart, KafkaSubscriber};
use proxy_patterns::stream::redis::{
    RedisPublisher, RedisQueuePublisher, RedisQueueSubscriber, RedisSubscriber,
};
use proxy_patterns::stream::redis_streams::{RedisStreamPublisher, RedisStreamSubscriber};
use proxy_patterns::stream::zmq::{ZmqPublisher, ZmqSubscriber};
use proxy_patterns::stream::{Metadata, Publisher, StreamConsumer, StreamProducer, Subscriber};

use crate::connectors::ConnectorOpts;
use crate::csv::fmt_size;
use crate::patterns_bench::{PrivateRedis, bench_err, now_ns, touch};

/// Items and their spacing of the latency runs.
const PACED: usize = 500;
const PACE_MS: u64 = 1;

/// Shims by name.
pub const SHIMS: &[&str] = &["redis", "redis-queue", "redis-streams", "zmq", "kafka"];

/// The Kafka subscriber's fetch wait.
const KAFKA_FETCH_WAIT_MS: u64 = 2;

/// The largest item sent inline through Kafka (the shim's record limit).
const KAFKA_INLINE_MAX: usize = 64 << 20;

/// Options of the `streams` subcommand.
#[derive(Debug, Clone)]
pub struct StreamsOpts {
    pub shims: Vec<String>,
    pub sizes: Vec<usize>,
    /// Bytes streamed per run (items = this / size, at least 5, at most 2000).
    pub budget: usize,
    /// A Python with ProxyStore 1.1: also run its stream (Redis pub/sub
    /// shim, Redis store) per size.
    pub python: Option<std::path::PathBuf>,
    pub conn: ConnectorOpts,
}

fn items_for(size: usize, budget: usize) -> usize {
    (budget / size.max(1)).clamp(5, 2000)
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port", e))
}

/// A server process of this run on a loopback port, killed on drop.
struct Private {
    port: u16,
    child: Child,
}

impl Private {
    /// Run `cmd` (stdout discarded, stderr shown) and wait until it listens
    /// on `port`; `what` names it and says what to do when it cannot run.
    fn start(mut cmd: Command, port: u16, what: &str) -> Result<Private> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io(format!("running {what}"), e))?;
        let p = Private { port, child };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(bench_err(format!("{what} did not listen within 30 s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(p)
    }

    /// A Kafka-compatible broker: `tansu` (`$TANSU`, else on the `PATH`)
    /// with in-memory storage.
    fn kafka() -> Result<Private> {
        let bin = std::env::var_os("TANSU").unwrap_or_else(|| "tansu".into());
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(&bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", "warn");
        let what = format!(
            "{} (the Kafka shim's broker: `export TANSU=$(bash scripts/tansu.sh)`, or leave kafka out of --shims)",
            std::path::Path::new(&bin).display()
        );
        Private::start(cmd, port, &what)
    }

    /// A `proxystore-ucx-server` (next to this program).
    fn ucx_server() -> Result<Private> {
        let exe = std::env::current_exe().map_err(|e| Error::io("locating this program", e))?;
        let bin = exe.with_file_name("proxystore-ucx-server");
        let port = free_port()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]).args([
            "--memory-limit",
            "8G",
            "--exit-with-parent",
        ]);
        let what = format!("{} (build it, or pass --ucx-server)", bin.display());
        Private::start(cmd, port, &what)
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The brokers of a run.
struct Brokers {
    redis: PrivateRedis,
    kafka: Option<Private>,
}

impl Brokers {
    /// The port a shim's clients connect to (ZeroMQ binds its own).
    fn port(&self, shim: &str) -> u16 {
        match (shim, &self.kafka) {
            ("kafka", Some(k)) => k.port,
            _ => self.redis.port,
        }
    }
}

fn subscriber(shim: &str, port: u16, topic: &str) -> Result<Box<dyn Subscriber>> {
    Ok(match shim {
        "redis" => Box::new(RedisSubscriber::new("127.0.0.1", port, &[topic])?),
        "redis-queue" => Box::new(RedisQueueSubscriber::new("127.0.0.1", port, topic)?),
        "redis-streams" => Box::new(RedisStreamSubscriber::new(
            "127.0.0.1",
            port,
            topic,
            "bench",
            "consumer",
        )?),
        // No high-water mark: a benchmark counts every item.
        "zmq" => Box::new(ZmqSubscriber::connect_with_hwm(
            "127.0.0.1",
            port,
            topic,
            0,
        )?),
        // A short fetch wait: tansu sleeps at least half of it even when
        // records are ready (Kafka answers at the first record).
        "kafka" => Box::new(
            KafkaSubscriber::new(&format!("127.0.0.1:{port}"), topic, KafkaStart::Earliest)?
                .fetch_wait(Duration::from_millis(KAFKA_FETCH_WAIT_MS)),
        ),
        other => return Err(bench_err(format!("unknown shim {other:?} ({SHIMS:?})"))),
    })
}

/// Argument `i` of a subcommand.
fn arg(args: &[String], i: usize, who: &str) -> Result<String> {
    args.get(i)
        .cloned()
        .ok_or_else(|| bench_err(format!("{who}: missing argument {i}")))
}

/// Item `i` of a run: distinct items (a store or broker that dedups would
/// cheat otherwise), byte `i % 4 + 1` repeated.
fn item_data(size: usize, items: usize) -> Vec<Bytes> {
    (0..items.clamp(1, 4))
        .map(|i| Bytes::from(vec![(i % 251) as u8 + 1; size]))
        .collect()
}

fn publisher(shim: &str, port: u16) -> Result<Box<dyn Publisher>> {
    Ok(match shim {
        "redis" => Box::new(RedisPublisher::new("127.0.0.1", port)?),
        "redis-queue" => Box::new(RedisQueuePublisher::new("127.0.0.1", port)?),
        "redis-streams" => Box::new(RedisStreamPublisher::new("127.0.0.1", port)?),
        "zmq" => Box::new(ZmqPublisher::bind_with_hwm("127.0.0.1", port, 0)?),
        "kafka" => Box::new(KafkaPublisher::new(&format!("127.0.0.1:{port}"))?),
        other => return Err(bench_err(format!("unknown shim {other:?} ({SHIMS:?})"))),
    })
}

/// A producer process (the Python interop tests' Rust side):
/// `streams-producer <shim> <port> <topic> <store-url|inline> <items> <size>`
/// sends `items` items of `size` bytes (byte `i % 4 + 1`), `evict` set,
/// then the end of stream; prints `sent <items>`.
pub fn producer_main(args: &[String]) -> Result<()> {
    crate::connectors::register_all();
    let get = |i: usize| arg(args, i, "streams-producer");
    let (shim, topic, url) = (get(0)?, get(2)?, get(3)?);
    let port: u16 = get(1)?.parse().map_err(bench_err)?;
    let items: usize = get(4)?.parse().map_err(bench_err)?;
    let size: usize = get(5)?.parse().map_err(bench_err)?;
    let publ = publisher(&shim, port)?;
    let mut p = if url == "inline" {
        StreamProducer::without_store(publ)
    } else {
        let c = proxy_core::registry::connector_from_url(&url)?;
        // Named by topic: a consumer process keeps one store per name (the
        // Python ProxyStore's registry), so streams over different stores
        // must not share one.
        let store = Store::builder(format!("streams-producer-{topic}"), c).build()?;
        StreamProducer::new(publ, store).evict(true)
    };
    let data = item_data(size, items);
    for i in 0..items {
        let mut m = Metadata::new();
        m.insert("i".into(), i.into());
        p.send(&topic, data[i % data.len()].clone(), m)?;
    }
    p.close_topic(&topic)?;
    println!("sent {items}");
    Ok(())
}

/// The consumer process: `streams-consumer <shim> <port> <topic>`; prints
/// `ready`, then `done <end-ns> <items> <p50-ns> <p99-ns>`.
pub fn consumer_main(args: &[String]) -> Result<()> {
    crate::connectors::register_all();
    let get = |i: usize| arg(args, i, "streams-consumer");
    let (shim, topic) = (get(0)?, get(2)?);
    let port: u16 = get(1)?.parse().map_err(bench_err)?;
    let sub = subscriber(&shim, port, &topic)?;
    println!("ready");
    let mut c = StreamConsumer::<Bytes>::new(sub).timeout(Some(Duration::from_secs(300)));
    let mut lat = Vec::new();
    let mut check = 0u64;
    while let Some((item, meta)) = c.next_with_metadata()? {
        check += touch(item.resolve()?);
        drop(item); // a proxy evicts on resolve; an acknowledging broker on ack
        c.ack()?;
        let sent = meta.get("t").and_then(|t| t.as_u64()).unwrap_or(0);
        lat.push(now_ns().saturating_sub(u128::from(sent)) as u64);
    }
    c.ack()?;
    let end = now_ns();
    lat.sort_unstable();
    let q = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    println!(
        "done {end} {} {} {} {check}",
        lat.len(),
        q(0.5).copied().unwrap_or(0),
        q(0.99).copied().unwrap_or(0)
    );
    Ok(())
}

struct RunResult {
    items: usize,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
}

fn run_one(
    shim: &str,
    size: usize,
    items: usize,
    store: Option<&Store>,
    brokers: &Brokers,
    tag: &str,
    pace: Option<Duration>,
) -> Result<RunResult> {
    let redis = &brokers.redis;
    let topic = format!("{tag}-{shim}-{size}");
    let mut zmq_pub = if shim == "zmq" {
        Some(ZmqPublisher::bind_with_hwm("127.0.0.1", 0, 0)?)
    } else {
        None
    };
    let port = zmq_pub.as_ref().map_or(brokers.port(shim), |z| z.port());
    let exe = std::env::current_exe().map_err(|e| Error::io("locating this program", e))?;
    let mut child = Command::new(&exe)
        .args(["streams-consumer", shim, &port.to_string(), &topic])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io("spawning the consumer", e))?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line)
        .map_err(|e| Error::io("reading the consumer", e))?;
    if line.trim() != "ready" {
        let _ = child.wait();
        return Err(bench_err(format!("consumer did not start: {line:?}")));
    }
    let publisher: Box<dyn Publisher> = match shim {
        "redis" => {
            let t0 = Instant::now();
            while redis.numsub(&topic) < 1 {
                if t0.elapsed() > Duration::from_secs(30) {
                    return Err(bench_err("the consumer did not subscribe within 30 s"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            publisher(shim, redis.port)?
        }
        "zmq" => {
            let mut z = zmq_pub.take().expect("made above");
            z.wait_for_subscribers(&topic, 1, Duration::from_secs(30))?;
            Box::new(z)
        }
        _ => publisher(shim, port)?,
    };
    let mut producer = match store {
        Some(s) => StreamProducer::new(publisher, s.clone()).evict(true),
        None => StreamProducer::without_store(publisher),
    };
    let data = item_data(size, items);
    let start = now_ns();
    for i in 0..items {
        let mut m = Metadata::new();
        m.insert("t".into(), (now_ns() as u64).into());
        producer.send(&topic, data[i % data.len()].clone(), m)?;
        if let Some(p) = pace {
            std::thread::sleep(p);
        }
    }
    producer.close_topic(&topic)?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)
        .map_err(|e| Error::io("reading the consumer", e))?;
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the consumer", e))?;
    redis.del(&topic); // a list or a Redis stream keeps its entries
    finish(&rest, status, start, items)
}

/// The Python ProxyStore's stream (Redis pub/sub shim, objects in a Redis
/// store): `benches/python/stream_bench.py`, producer and consumer in two
/// Python processes.
fn run_python(
    python: &std::path::Path,
    size: usize,
    items: usize,
    redis: &PrivateRedis,
) -> Result<RunResult> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/stream_bench.py");
    let topic = format!("py-{size}");
    let port = redis.port.to_string();
    let mut child = Command::new(python)
        .arg(&script)
        .args(["consumer", &port, &topic])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io(format!("running {}", python.display()), e))?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line)
        .map_err(|e| Error::io("reading the Python consumer", e))?;
    if line.trim() != "ready" {
        let _ = child.wait();
        return Err(bench_err(format!(
            "Python consumer did not start: {line:?}"
        )));
    }
    let t0 = Instant::now();
    while redis.numsub(&topic) < 1 {
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(bench_err(
                "the Python consumer did not subscribe within 30 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let prod = Command::new(python)
        .arg(&script)
        .args([
            "producer",
            &port,
            &topic,
            &size.to_string(),
            &items.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::io("running the Python producer", e))?;
    let so = String::from_utf8_lossy(&prod.stdout);
    let start: u128 = so
        .lines()
        .find_map(|l| l.strip_prefix("start "))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| bench_err(format!("Python producer failed ({}): {so}", prod.status)))?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)
        .map_err(|e| Error::io("reading the Python consumer", e))?;
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the Python consumer", e))?;
    finish(&rest, status, start, items)
}

/// The result from a consumer's `done` line.
fn finish(
    rest: &str,
    status: std::process::ExitStatus,
    start: u128,
    items: usize,
) -> Result<RunResult> {
    let f: Vec<u128> = rest
        .lines()
        .find_map(|l| l.strip_prefix("done "))
        .map(|l| l.split(' ').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    let [end, got, p50, p99, ..] = f[..] else {
        return Err(bench_err(format!("consumer failed ({status}): {rest}")));
    };
    if got as usize != items {
        return Err(bench_err(format!("consumer got {got} of {items} items")));
    }
    Ok(RunResult {
        items,
        secs: (end.saturating_sub(start)) as f64 / 1e9,
        p50_us: p50 as f64 / 1e3,
        p99_us: p99 as f64 / 1e3,
    })
}

/// Run every shim x size x (proxies, inline); the Markdown table.
pub fn run(o: &StreamsOpts) -> Result<String> {
    let brokers = Brokers {
        redis: PrivateRedis::start()?,
        kafka: match o.shims.iter().any(|s| s == "kafka") {
            true => Some(Private::kafka()?),
            false => None,
        },
    };
    let redis = &brokers.redis;
    let _server;
    let addr = match &o.conn.ucx_server {
        Some(a) => a.clone(),
        None => {
            let s = Private::ucx_server()?;
            let a = format!("127.0.0.1:{}", s.port);
            _server = s;
            a
        }
    };
    let mut conn = o.conn.clone();
    conn.ucx_server = Some(addr.clone());
    let store = Store::builder("streams-bench", crate::connectors::make("ucx", &conn)?)
        .cache_bytes(0)
        .build()?;
    let mut table = format!(
        "| shim | item | items | with proxies (UCX store at {addr}): items/s | GB/s | p50 | p99 | inline: items/s | GB/s | p50 | p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let cell = |r: &RunResult, size: usize| {
        let per_s = r.items as f64 / r.secs;
        format!(
            "{per_s:.1} | {:.3} | {} | {}",
            per_s * size as f64 / 1e9,
            fmt_lat(r.p50_us),
            fmt_lat(r.p99_us)
        )
    };
    for shim in &o.shims {
        for &size in &o.sizes {
            let items = items_for(size, o.budget);
            let p = run_one(shim, size, items, Some(&store), &brokers, "proxy", None)?;
            let b = if shim == "kafka" && size > KAFKA_INLINE_MAX {
                None // a record of the shim's limit at most
            } else {
                Some(run_one(shim, size, items, None, &brokers, "inline", None)?)
            };
            eprintln!(
                "streams {shim} {}: proxies {:.1}/s, inline {}",
                fmt_size(size),
                p.items as f64 / p.secs,
                b.as_ref()
                    .map_or("-".into(), |b| format!("{:.1}/s", b.items as f64 / b.secs))
            );
            table.push_str(&format!(
                "| {shim} | {} | {items} | {} | {} |\n",
                fmt_size(size),
                cell(&p, size),
                b.as_ref().map_or(
                    format!(
                        "- | - | - | - (over the {} record limit)",
                        fmt_size(KAFKA_INLINE_MAX)
                    ),
                    |b| cell(b, size)
                )
            ));
        }
    }
    if let Some(py) = &o.python {
        for &size in &o.sizes {
            let items = items_for(size, o.budget);
            let r = run_python(py, size, items, redis)?;
            eprintln!(
                "streams python {}: {:.1}/s",
                fmt_size(size),
                r.items as f64 / r.secs
            );
            table.push_str(&format!(
                "| Python ProxyStore 1.1, Redis pub/sub shim, Redis store | {} | {items} | {} | | | | |\n",
                fmt_size(size),
                cell(&r, size)
            ));
        }
    }
    // Latency without queueing: 1 KB items, one every millisecond.
    table.push_str(&format!(
        "\nLatency of 1KB items sent one per {PACE_MS} ms ({PACED} items):\n\n| shim | with proxies: p50 | p99 | inline: p50 | p99 |\n|---|---:|---:|---:|---:|\n"
    ));
    let pace = Some(Duration::from_millis(PACE_MS));
    for shim in &o.shims {
        let p = run_one(
            shim,
            1000,
            PACED,
            Some(&store),
            &brokers,
            "paced-proxy",
            pace,
        )?;
        let b = run_one(shim, 1000, PACED, None, &brokers, "paced-inline", pace)?;
        table.push_str(&format!(
            "| {shim} | {} | {} | {} | {} |\n",
            fmt_lat(p.p50_us),
            fmt_lat(p.p99_us),
            fmt_lat(b.p50_us),
            fmt_lat(b.p99_us)
        ));
    }
    store.close()?;
    Ok(table)
}

fn fmt_lat(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}
