//! `proxystore-bench patterns`: the proxy patterns at this machine's scale,
//! side by side in one run.
//!
//! 1. **chain**: 5 dependent tasks of `T` ms each. A task spends 80 % of `T`
//!    on work that does not need its input (setup), then takes its input and
//!    spends the last 20 % producing its output (`--chain-output` bytes) for
//!    the next task. Modes: sequential passing values (serialized, as a task
//!    system ships them), sequential passing proxies, pipelined with proxy
//!    futures (every task starts at once; task i waits on task i-1's future),
//!    and the ideal pipeline `0.8 T + 5 x 0.2 T`. Then the wake-up latency of
//!    a future (set -> waiter running) per connector, next to polling as
//!    ProxyStore does (`exists` every 1 s).
//! 2. **stream**: one producer, N consumer processes, items of 1 MB .. 100 MB:
//!    bulk through Redis pub/sub vs keys through Redis pub/sub and bulk
//!    through a store (the file connector on /dev/shm, or UCX with
//!    `--ucx-server`). Aggregate delivered GB/s = items x size x N / time.
//! 3. **memory**: a three-stage task graph (M pipelines: S1 -> S2 -> S3 bytes,
//!    2 worker threads) storing intermediates in a private redis-server;
//!    peak extra memory is the server's `VmHWM - VmRSS at start` from
//!    `/proc` (measured by the kernel, not estimated), with plain proxies
//!    (nothing evicted), manual eviction, and owned proxies.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proxy_core::{Bytes, Connector, Error, FileConnector, LocalConnector, Proxy, Result, Store};
use proxy_patterns::lifetime::{ContextLifetime, StoreLifetimeExt};
use proxy_patterns::ownership::{OwnedProxy, StoreOwnershipExt};
use proxy_patterns::stream::redis::{RedisPublisher, RedisSubscriber};
use proxy_patterns::stream::{Publisher, StreamConsumer, StreamProducer, Subscriber};
use proxy_patterns::{ProxyFuture, StoreFutureExt};

use crate::connectors::{ConnectorOpts, default_file_dir};
use crate::csv::fmt_size;

/// Options of the `patterns` subcommand.
#[derive(Debug, Clone)]
pub struct PatternsOpts {
    pub benches: Vec<String>,
    pub task_ms: u64,
    pub chain_output: usize,
    pub consumers: usize,
    pub sizes: Vec<usize>,
    pub memory_pipelines: usize,
    pub memory_stage1: usize,
    pub conn: ConnectorOpts,
}

pub(crate) fn bench_err(reason: impl std::fmt::Display) -> Error {
    Error::InvalidConfig {
        connector: None,
        reason: reason.to_string(),
    }
}

// ---- a private redis-server ---------------------------------------------------------

pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl PrivateRedis {
    pub(crate) fn start() -> Result<PrivateRedis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("finding a free port", e))?
            .port();
        let dir = std::env::temp_dir().join(format!("proxystore-bench-redis-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("redis directory", e))?;
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            // Pub/sub subscribers receive 100 MB messages: no output limit.
            .args(["--client-output-buffer-limit", "pubsub 0 0 0"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(format!("running {bin} (install redis-server)"), e))?;
        let r = PrivateRedis { port, child, dir };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(bench_err("redis-server did not start within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }

    fn status(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
            * 1024
    }

    /// Delete `key` (best effort).
    pub(crate) fn del(&self, key: &str) {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            && let Ok(mut conn) = c.get_connection()
        {
            let _ = redis::cmd("DEL").arg(key).query::<i64>(&mut conn);
        }
    }

    pub(crate) fn numsub(&self, topic: &str) -> usize {
        let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)) else {
            return 0;
        };
        let Ok(mut conn) = c.get_connection() else {
            return 0;
        };
        redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(topic)
            .query::<Vec<(String, usize)>>(&mut conn)
            .ok()
            .and_then(|mut v| v.pop())
            .map_or(0, |(_, n)| n)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn file_store(tag: &str, metrics: bool) -> Result<Store> {
    Store::builder(
        format!("patterns-{tag}"),
        FileConnector::with_clear(default_file_dir(tag), true)?,
    )
    .cache_bytes(0)
    .metrics(metrics)
    .build()
}

// ---- 1. chain ------------------------------------------------------------------------

fn sleep_ms(ms: f64) {
    std::thread::sleep(Duration::from_secs_f64(ms / 1e3));
}

fn output(i: usize, n: usize) -> Bytes {
    Bytes::from(vec![i as u8; n])
}

fn chain_sequential_values(t: f64, n: usize) -> Result<f64> {
    let t0 = Instant::now();
    let mut input: Option<proxy_core::Payload> = None;
    for i in 0..5 {
        sleep_ms(0.8 * t);
        if let Some(p) = input.take() {
            // The task system delivers the serialized value.
            let v: Bytes = proxy_core::codec::decode(p.to_bytes())?;
            assert_eq!(v.len(), n);
        }
        sleep_ms(0.2 * t);
        input = Some(proxy_core::codec::encode(&output(i, n))?);
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

fn chain_sequential_proxies(store: &Store, t: f64, n: usize) -> Result<f64> {
    let t0 = Instant::now();
    let mut input: Option<Proxy<Bytes>> = None;
    let lt = ContextLifetime::new("chain");
    for i in 0..5 {
        sleep_ms(0.8 * t);
        if let Some(p) = input.take() {
            let wire = p.to_bytes()?;
            let q: Proxy<Bytes> = Proxy::from_bytes(&wire)?;
            assert_eq!(q.resolve()?.len(), n);
        }
        sleep_ms(0.2 * t);
        input = Some(store.proxy_in(output(i, n), &lt)?);
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

fn chain_pipelined(store: &Store, t: f64, n: usize) -> Result<f64> {
    let futures: Vec<ProxyFuture<Bytes>> = (0..5)
        .map(|_| store.future::<Bytes>())
        .collect::<Result<_>>()?;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..5)
        .map(|i| {
            // What a task receives: its input's proxy (a future's) and its own future.
            let input = (i > 0).then(|| futures[i - 1].proxy(Duration::from_secs(60)).to_bytes());
            let mine = futures[i].to_bytes();
            std::thread::spawn(move || -> Result<()> {
                sleep_ms(0.8 * t);
                if let Some(wire) = input {
                    let p: Proxy<Bytes> = Proxy::from_bytes(&wire?)?;
                    assert_eq!(p.resolve()?.len(), n);
                }
                sleep_ms(0.2 * t);
                ProxyFuture::<Bytes>::from_bytes(&mine?)?.set_result(&output(i, n))
            })
        })
        .collect();
    futures[4].result(Duration::from_secs(60))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    for h in handles {
        h.join().map_err(|_| bench_err("a chain task panicked"))??;
    }
    for f in &futures {
        store.evict(f.key())?;
    }
    Ok(ms)
}

/// Set -> waiter running, for one future at a time.
fn wake_latency(store: &Store, samples: usize, poll: Option<Duration>) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for s in 0..samples {
        let fut = store.future::<u64>()?;
        let setter = fut.clone();
        // Set at a time unrelated to any polling phase.
        let delay = Duration::from_millis(20 + (s as u64 * 137) % 300);
        let h = std::thread::spawn(move || -> Result<Instant> {
            std::thread::sleep(delay);
            let at = Instant::now();
            setter.set_result(&1)?;
            Ok(at)
        });
        match poll {
            None => {
                fut.wait(Duration::from_secs(30))?;
            }
            Some(every) => {
                // ProxyStore's Future.result(): exists(), else sleep `every`.
                while !store.connector().exists(fut.key())? {
                    std::thread::sleep(every);
                }
            }
        }
        let woke = Instant::now();
        let at = h.join().map_err(|_| bench_err("setter panicked"))??;
        out.push(woke.saturating_duration_since(at).as_secs_f64() * 1e6);
        store.evict(fut.key())?;
    }
    Ok(out)
}

fn fmt_lat(us: f64) -> String {
    if us >= 1e3 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

fn run_chain(o: &PatternsOpts, redis: &PrivateRedis, out: &mut String) -> Result<()> {
    let t = o.task_ms as f64;
    let n = o.chain_output;
    let store = file_store("chain", true)?;
    // Stream objects are removed with the directory when the store closes.
    let ideal = 0.8 * t + 5.0 * 0.2 * t;
    let reps = 3;
    let mut rows: Vec<(&str, f64)> = Vec::new();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| chain_sequential_values(t, n))
        .collect::<Result<_>>()?;
    rows.push(("sequential, values (no proxies)", median(&mut v)));
    let mut v: Vec<f64> = (0..reps)
        .map(|_| chain_sequential_proxies(&store, t, n))
        .collect::<Result<_>>()?;
    rows.push(("sequential, proxies", median(&mut v)));
    let mut v: Vec<f64> = (0..reps)
        .map(|_| chain_pipelined(&store, t, n))
        .collect::<Result<_>>()?;
    rows.push(("pipelined, proxy futures", median(&mut v)));
    rows.push(("ideal pipeline (0.8 T + 5 x 0.2 T)", ideal));
    out.push_str(&format!(
        "### 1. Chain of 5 dependent tasks (T = {} ms, output {}, file connector on /dev/shm; median of {reps})\n\n",
        o.task_ms,
        fmt_size(n)
    ));
    out.push_str("| mode | makespan | vs ideal |\n|---|---:|---:|\n");
    for (name, ms) in &rows {
        out.push_str(&format!(
            "| {name} | {ms:.1} ms | {:+.1} % |\n",
            (ms / ideal - 1.0) * 100.0
        ));
    }
    if let Some(m) = store.metrics() {
        out.push_str("\nStore metrics of the proxy modes (`Store::metrics`):\n\n```\n");
        out.push_str(&m.snapshot().table());
        out.push_str("```\n");
    }

    // Wake-up latency.
    redis_connector::register();
    let rstore = Store::builder(
        "patterns-wake-redis",
        redis_connector::RedisConnector::new("127.0.0.1", redis.port)?,
    )
    .cache_bytes(0)
    .build()?;
    let lstore = Store::new("patterns-wake-local", LocalConnector::new())?;
    // The file connector without inotify: the default, polling wait_for.
    let polled = Store::builder(
        "patterns-wake-poll",
        PollingFile(FileConnector::new(default_file_dir("wake-poll"))?),
    )
    .cache_bytes(0)
    .build()?;
    let samples = 20;
    let mut lat: Vec<(String, Vec<f64>)> = vec![
        (
            "local (condition variable)".into(),
            wake_latency(&lstore, samples, None)?,
        ),
        (
            "file (inotify)".into(),
            wake_latency(&store, samples, None)?,
        ),
        (
            "redis (pub/sub message)".into(),
            wake_latency(&rstore, samples, None)?,
        ),
        (
            "file, polling fallback (50 µs .. 5 ms backoff)".into(),
            wake_latency(&polled, samples, None)?,
        ),
        (
            "file, polling every 1 s (ProxyStore's default)".into(),
            wake_latency(&store, 6, Some(Duration::from_secs(1)))?,
        ),
    ];
    out.push_str("\n### Future wake-up latency (set -> waiter running)\n\n");
    out.push_str("| how the waiter learns | samples | median | max |\n|---|---:|---:|---:|\n");
    for (name, v) in lat.iter_mut() {
        let max = v.iter().copied().fold(0.0, f64::max);
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            v.len(),
            fmt_lat(median(v)),
            fmt_lat(max)
        ));
    }
    polled.close()?;
    std::fs::remove_dir_all(default_file_dir("wake-poll")).ok();
    store.close()?;
    Ok(())
}

/// A file connector that does not override `wait_for` (default polling).
#[derive(Debug)]
struct PollingFile(FileConnector);

impl Connector for PollingFile {
    fn kind(&self) -> &'static str {
        "file"
    }
    fn capabilities(&self) -> proxy_core::Capabilities {
        proxy_core::Capabilities {
            notify: false,
            ..self.0.capabilities()
        }
    }
    fn put(&self, d: proxy_core::Payload) -> Result<proxy_core::Key> {
        self.0.put(d)
    }
    fn put_batch(&self, d: Vec<proxy_core::Payload>) -> Result<Vec<proxy_core::Key>> {
        self.0.put_batch(d)
    }
    fn get(&self, k: &proxy_core::Key) -> Result<Option<Bytes>> {
        self.0.get(k)
    }
    fn get_batch(&self, k: &[proxy_core::Key]) -> Result<Vec<Option<Bytes>>> {
        self.0.get_batch(k)
    }
    fn exists(&self, k: &proxy_core::Key) -> Result<bool> {
        self.0.exists(k)
    }
    fn evict(&self, k: &proxy_core::Key) -> Result<()> {
        self.0.evict(k)
    }
    fn close(&self) -> Result<()> {
        self.0.close()
    }
    fn config(&self) -> proxy_core::ConnectorConfig {
        self.0.config()
    }
    fn as_deferrable(&self) -> Option<&dyn proxy_core::Deferrable> {
        Some(self)
    }
}

impl proxy_core::Deferrable for PollingFile {
    fn new_key(&self) -> Result<proxy_core::Key> {
        self.0.new_key()
    }
    fn set(&self, k: &proxy_core::Key, d: proxy_core::Payload) -> Result<()> {
        self.0.set(k, d)
    }
}

// ---- 2. stream -------------------------------------------------------------------------

pub(crate) fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Touch one byte per page (what a consumer must at least read).
pub(crate) fn touch(b: &[u8]) -> u64 {
    b.iter().step_by(4096).map(|&x| u64::from(x)).sum::<u64>() + b.len() as u64
}

/// The consumer process: `patterns-consumer <bulk|proxy> <port> <topic> <items>`.
pub fn consumer_main(args: &[String]) -> Result<()> {
    crate::connectors::register_all();
    let get = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| bench_err("patterns-consumer: missing argument"))
    };
    let mode = get(0)?;
    let port: u16 = get(1)?.parse().map_err(bench_err)?;
    let topic = get(2)?;
    let items: usize = get(3)?.parse().map_err(bench_err)?;
    let mut check = 0u64;
    let timeout = Some(Duration::from_secs(120));
    if mode == "bulk" {
        let mut sub = RedisSubscriber::new("127.0.0.1", port, &[&topic])?;
        for _ in 0..items {
            let m = sub
                .next_message(timeout)?
                .ok_or_else(|| bench_err("no message within 120 s"))?;
            check += touch(&m);
        }
    } else {
        let sub = RedisSubscriber::new("127.0.0.1", port, &[&topic])?;
        let mut c = StreamConsumer::<Bytes>::new(sub).timeout(timeout);
        while let Some(p) = c.next_proxy()? {
            check += touch(p.resolve()?);
        }
    }
    println!("done {} {check}", now_ns());
    Ok(())
}

fn spawn_consumers(
    n: usize,
    mode: &str,
    port: u16,
    topic: &str,
    items: usize,
) -> Result<Vec<Child>> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating this program", e))?;
    (0..n)
        .map(|_| {
            Command::new(&exe)
                .args(["patterns-consumer", mode, &port.to_string(), topic])
                .arg(items.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| Error::io("spawning a consumer", e))
        })
        .collect()
}

fn finish_consumers(children: Vec<Child>, start_ns: u128) -> Result<f64> {
    let mut last = start_ns;
    for mut c in children {
        let mut s = String::new();
        if let Some(o) = c.stdout.take() {
            BufReader::new(o)
                .read_to_string(&mut s)
                .map_err(|e| Error::io("reading a consumer", e))?;
        }
        let status = c
            .wait()
            .map_err(|e| Error::io("waiting for a consumer", e))?;
        let end: u128 = s
            .lines()
            .find_map(|l| l.strip_prefix("done "))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .ok_or_else(|| bench_err(format!("consumer failed ({status}): {s}")))?;
        last = last.max(end);
    }
    Ok((last - start_ns) as f64 / 1e9)
}

fn wait_subscribed(redis: &PrivateRedis, topic: &str, n: usize) -> Result<()> {
    let t0 = Instant::now();
    while redis.numsub(topic) < n {
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(bench_err("consumers did not subscribe within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn run_stream(o: &PatternsOpts, redis: &PrivateRedis, out: &mut String) -> Result<()> {
    let (store, store_name) = match &o.conn.ucx_server {
        Some(_) => (
            Store::builder("patterns-stream", crate::connectors::make("ucx", &o.conn)?)
                .cache_bytes(0)
                .build()?,
            "UCX object server",
        ),
        None => (file_store("stream", false)?, "file connector on /dev/shm"),
    };
    let n = o.consumers;
    out.push_str(&format!(
        "\n### 2. Stream: 1 producer -> {n} consumer processes (aggregate GB/s delivered; bulk store: {store_name})\n\n"
    ));
    out.push_str("| item size | items | bulk through Redis pub/sub | keys through Redis, bulk through the store | proxy / bulk |\n|---:|---:|---:|---:|---:|\n");
    for (si, &size) in o.sizes.iter().enumerate() {
        let items = (200_000_000 / size).clamp(3, 20);
        let item = Bytes::from(vec![7u8; size]);
        let delivered = (items * size * n) as f64;
        // Bulk through pub/sub.
        let topic = format!("bulk-{si}");
        let kids = spawn_consumers(n, "bulk", redis.port, &topic, items)?;
        wait_subscribed(redis, &topic, n)?;
        let mut publ = RedisPublisher::new("127.0.0.1", redis.port)?;
        let start = now_ns();
        for _ in 0..items {
            publ.send(&topic, &item)?;
        }
        let bulk_s = finish_consumers(kids, start)?;
        // Keys through pub/sub, bulk through the store.
        let topic = format!("proxy-{si}");
        let kids = spawn_consumers(n, "proxy", redis.port, &topic, items)?;
        wait_subscribed(redis, &topic, n)?;
        let mut producer =
            StreamProducer::new(RedisPublisher::new("127.0.0.1", redis.port)?, store.clone());
        let start = now_ns();
        for _ in 0..items {
            producer.send(&topic, item.clone(), Default::default())?;
        }
        producer.close_topic(&topic)?;
        let proxy_s = finish_consumers(kids, start)?;
        let (gb_bulk, gb_proxy) = (delivered / bulk_s / 1e9, delivered / proxy_s / 1e9);
        out.push_str(&format!(
            "| {} | {items} | {gb_bulk:.3} GB/s | {gb_proxy:.3} GB/s | {:.1}x |\n",
            fmt_size(size),
            gb_proxy / gb_bulk
        ));
        eprintln!(
            "stream {}: bulk {gb_bulk:.3} GB/s, proxy {gb_proxy:.3} GB/s",
            fmt_size(size)
        );
    }
    store.close()?;
    Ok(())
}

// ---- 3. memory -------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MemMode {
    Plain,
    Manual,
    Owned,
}

fn stage(i: usize, n: usize) -> Bytes {
    // Fresh, touched memory of n bytes.
    Bytes::from(vec![(i % 251) as u8; n])
}

fn memory_variant(o: &PatternsOpts, mode: MemMode) -> Result<(u64, f64)> {
    let redis = PrivateRedis::start()?;
    std::thread::sleep(Duration::from_millis(200));
    let base = redis.status("VmRSS:");
    let store = Store::builder(
        format!("patterns-mem-{mode:?}"),
        redis_connector::RedisConnector::new("127.0.0.1", redis.port)?,
    )
    .cache_bytes(0)
    .build()?;
    let (s1, s2, s3) = (o.memory_stage1, o.memory_stage1 / 10, o.memory_stage1 / 100);
    let hold = Duration::from_millis(50);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let results: Vec<Result<usize>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                let next = next.clone();
                s.spawn(move || -> Result<usize> {
                    let mut done = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= o.memory_pipelines {
                            return Ok(done);
                        }
                        match mode {
                            MemMode::Plain | MemMode::Manual => {
                                let p1 = store.proxy_with(
                                    stage(i, s1),
                                    proxy_core::ProxyOptions::default().populate_target(false),
                                )?;
                                std::thread::sleep(hold);
                                let a = p1.resolve()?.len();
                                let p2 = store.proxy_with(
                                    stage(a, s2),
                                    proxy_core::ProxyOptions::default().populate_target(false),
                                )?;
                                if mode == MemMode::Manual {
                                    store.evict(p1.key())?;
                                }
                                std::thread::sleep(hold);
                                let b = p2.resolve()?.len();
                                let p3 = store.put(&stage(b, s3))?;
                                if mode == MemMode::Manual {
                                    store.evict(p2.key())?;
                                }
                                std::thread::sleep(hold);
                                let _ = p3;
                            }
                            MemMode::Owned => {
                                // Each stage hands its owned output to the next
                                // (serialized: ownership moves), which resolves it.
                                let o1: OwnedProxy<Bytes> = store.owned_proxy(stage(i, s1))?;
                                let w1 = o1.into_bytes()?;
                                std::thread::sleep(hold);
                                let w2 = {
                                    let input = OwnedProxy::<Bytes>::from_bytes(&w1)?;
                                    let a = input.resolve()?.len();
                                    store.owned_proxy(stage(a, s2))?.into_bytes()?
                                }; // input dropped: evicted
                                std::thread::sleep(hold);
                                let o3 = {
                                    let input = OwnedProxy::<Bytes>::from_bytes(&w2)?;
                                    let b = input.resolve()?.len();
                                    store.owned_proxy(stage(b, s3))?
                                };
                                std::thread::sleep(hold);
                                // The final result is kept (as the other modes keep theirs).
                                let _ = o3.into_proxy();
                            }
                        }
                        done += 1;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(bench_err("worker panicked")))
            })
            .collect()
    });
    let secs = t0.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    let peak = redis.status("VmHWM:").saturating_sub(base);
    store.close()?;
    Ok((peak, secs))
}

fn run_memory(o: &PatternsOpts, out: &mut String) -> Result<()> {
    let m = o.memory_pipelines;
    let s1 = o.memory_stage1;
    out.push_str(&format!(
        "\n### 3. Peak extra memory of a three-stage task graph ({m} pipelines {} -> {} -> {}, 2 workers; redis-server VmHWM - VmRSS at start; median of 3 interleaved runs)\n\n",
        fmt_size(s1),
        fmt_size(s1 / 10),
        fmt_size(s1 / 100)
    ));
    out.push_str(
        "| intermediates | peak extra memory | makespan | vs manual |\n|---|---:|---:|---:|\n",
    );
    // The server's peak depends on how the two workers' stages overlap:
    // three runs per mode, interleaved, and the median peak of each.
    let modes = [MemMode::Plain, MemMode::Manual, MemMode::Owned];
    let mut runs: Vec<Vec<(u64, f64)>> = vec![Vec::new(); modes.len()];
    for _ in 0..3 {
        for (i, &mode) in modes.iter().enumerate() {
            runs[i].push(memory_variant(o, mode)?);
        }
    }
    let rows: Vec<(MemMode, (u64, f64))> = modes
        .iter()
        .zip(runs)
        .map(|(&mode, mut r)| {
            r.sort_by_key(|(peak, _)| *peak);
            (mode, r[1])
        })
        .collect();
    let manual = rows
        .iter()
        .find(|(m, _)| *m == MemMode::Manual)
        .map_or(1, |(_, (p, _))| *p)
        .max(1) as f64;
    for (mode, (peak, secs)) in rows {
        let name = match mode {
            MemMode::Plain => "plain proxies (never evicted)",
            MemMode::Manual => "manual eviction (store.evict after use)",
            MemMode::Owned => "owned proxies (evicted when the owner drops)",
        };
        out.push_str(&format!(
            "| {name} | {:.1} MB | {secs:.2} s | {:+.1} % |\n",
            peak as f64 / 1e6,
            (peak as f64 / manual - 1.0) * 100.0
        ));
    }
    Ok(())
}

/// Run the selected benchmarks; returns the markdown tables.
pub fn run(o: &PatternsOpts) -> Result<String> {
    let mut out = String::new();
    let redis = PrivateRedis::start()?;
    let want = |b: &str| o.benches.iter().any(|x| x == b || x == "all");
    if want("chain") {
        eprintln!("patterns: chain");
        run_chain(o, &redis, &mut out)?;
    }
    if want("stream") {
        eprintln!("patterns: stream");
        run_stream(o, &redis, &mut out)?;
    }
    if want("memory") {
        eprintln!("patterns: memory");
        run_memory(o, &mut out)?;
    }
    let _ = std::io::stdout().flush();
    Ok(out)
}

// ---- proxy futures across MPI ranks ------------------------------------------------------

/// `mpiexec -n N proxystore-bench patterns-mpi`: rank 0 makes a future in a
/// file store on /dev/shm and sends it to every rank; rank 1 sets it after
/// 200 ms; every rank (rank 1 included) waits for it through the future's
/// proxy and checks the value. Prints `patterns-mpi rank R ok waited MS` per
/// rank; exits non-zero on any failure (a timeout included, never a hang).
pub fn mpi_futures() -> i32 {
    use mpi::traits::{Communicator, CommunicatorCollectives, Destination, Source};
    let Some(universe) = mpi::initialize() else {
        eprintln!("patterns-mpi: MPI could not be initialised");
        return 1;
    };
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    if size < 2 {
        eprintln!("patterns-mpi: run with at least 2 ranks");
        return 1;
    }
    let res = (|| -> Result<u128> {
        let (fut, store) = if rank == 0 {
            let store = file_store("mpi-futures", false)?;
            let fut = store.future::<Vec<u64>>()?;
            let wire = fut.to_bytes()?;
            for r in 1..size {
                world.process_at_rank(r).send(&wire[..]);
            }
            (fut, Some(store))
        } else {
            let (wire, _) = world.process_at_rank(0).receive_vec::<u8>();
            (ProxyFuture::<Vec<u64>>::from_bytes(&wire)?, None)
        };
        let t0 = Instant::now();
        let setter = (rank == 1).then(|| {
            let f = fut.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                f.set_result(&(0..1000).collect())
            })
        });
        let got: u64 = fut.proxy(Duration::from_secs(30)).resolve()?.iter().sum();
        let waited = t0.elapsed().as_millis();
        if let Some(h) = setter {
            h.join().map_err(|_| bench_err("setter panicked"))??;
        }
        if got != (0..1000u64).sum::<u64>() {
            return Err(bench_err(format!("rank {rank} read a wrong result: {got}")));
        }
        world.barrier();
        if let Some(store) = store {
            store.close()?;
        }
        Ok(waited)
    })();
    match res {
        Ok(ms) => {
            println!("patterns-mpi rank {rank} ok waited {ms} ms");
            0
        }
        Err(e) => {
            eprintln!("patterns-mpi rank {rank}: {e}");
            world.abort(1)
        }
    }
}
