//! Streams between Rust and the real Python ProxyStore 1.1.0, both ways, in
//! ProxyStore's event format: a Rust `StreamProducer` feeds a Python
//! `StreamConsumer` and a Python `StreamProducer` feeds a Rust
//! `StreamConsumer`, over Redis pub/sub, Redis lists (a private
//! redis-server), ZeroMQ PUB/SUB and Kafka (a private `tansu` broker,
//! Python's side through `confluent-kafka`), with objects in a file store, a Redis store or the events
//! themselves. Every object is checked byte for byte on the other side, the
//! end of stream is seen, and `evict` is honoured (the store is empty after).
//!
//! The Python scripts are in `tests/python/`; the venv is the one of the
//! Redis connector's interop tests (`redis-connector/tests/common/python.rs`).

#[path = "../../redis-connector/tests/common/mod.rs"]
mod common;
#[path = "support/tansu.rs"]
mod tansu;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::RedisServer;
use common::python::python;
use proxy_core::{Bytes, FileConnector, Store};
use proxy_patterns::stream::kafka::{KafkaPublisher, KafkaStart, KafkaSubscriber};
use proxy_patterns::stream::redis::{
    RedisPublisher, RedisQueuePublisher, RedisQueueSubscriber, RedisSubscriber,
};
use proxy_patterns::stream::zmq::{ZmqPublisher, ZmqSubscriber};
use proxy_patterns::stream::{
    Metadata, Publisher, StreamConsumer, StreamItem, StreamProducer, Subscriber,
};
use tansu::Tansu;

const N: u64 = 7;

/// Object `i` of a test stream (as `streamlib.obj` in Python).
fn obj(i: u64) -> Bytes {
    let n = if i == 5 { 3 << 20 } else { 1 + 997 * i };
    (0..n).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// A Python script under `timeout`, so a stuck one fails the test.
fn py(name: &str, args: &[String]) -> Command {
    let mut c = Command::new("timeout");
    c.arg("120").arg(python()).arg(script(name)).args(args);
    c.env("PYTHONPATH", script(""));
    c
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().expect("wait for python");
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{so}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

#[derive(Clone, Copy, Debug)]
enum Shim {
    PubSub,
    Queue,
    Zmq,
    Kafka,
}

impl Shim {
    fn name(self) -> &'static str {
        match self {
            Shim::PubSub => "redis",
            Shim::Queue => "redis-queue",
            Shim::Zmq => "zmq",
            Shim::Kafka => "kafka",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    File,
    Redis,
    Inline,
}

/// A store of `kind` (its Python name and argument), and a check that it
/// is empty.
struct TestStore {
    store: Option<Store>,
    py_kind: &'static str,
    py_arg: String,
    dir: Option<PathBuf>,
    redis_port: u16,
}

impl TestStore {
    fn new(kind: Kind, name: &str, server: &RedisServer) -> TestStore {
        match kind {
            Kind::File => {
                let dir =
                    std::env::temp_dir().join(format!("ps-pystream-{}", uuid::Uuid::new_v4()));
                let store = Store::builder(name, FileConnector::new(&dir).unwrap())
                    .cache_bytes(0)
                    .build()
                    .unwrap();
                TestStore {
                    store: Some(store),
                    py_kind: "file",
                    py_arg: dir.to_str().unwrap().to_string(),
                    dir: Some(dir),
                    redis_port: server.port,
                }
            }
            Kind::Redis => {
                let store = Store::builder(name, server.builder().build().unwrap())
                    .cache_bytes(0)
                    .build()
                    .unwrap();
                TestStore {
                    store: Some(store),
                    py_kind: "redis",
                    py_arg: server.port.to_string(),
                    dir: None,
                    redis_port: server.port,
                }
            }
            Kind::Inline => TestStore {
                store: None,
                py_kind: "none",
                py_arg: "-".into(),
                dir: None,
                redis_port: server.port,
            },
        }
    }

    /// Objects left in the store (data files, or Redis keys that are not
    /// lists).
    fn objects_left(&self) -> usize {
        if let Some(d) = &self.dir {
            let names = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name());
            return names
                .filter(|n| !n.to_string_lossy().ends_with(".ready"))
                .count();
        }
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.redis_port)).unwrap();
        let mut conn = c.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        keys.iter()
            .filter(|k| {
                let t: String = redis::cmd("TYPE").arg(k).query(&mut conn).unwrap();
                t == "string"
            })
            .count()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn numsub(port: u16, topic: &str) -> usize {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = c.get_connection().unwrap();
    let v: Vec<(String, usize)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(topic)
        .query(&mut conn)
        .unwrap();
    v.first().map_or(0, |x| x.1)
}

fn meta(i: u64) -> Metadata {
    let mut m = Metadata::new();
    m.insert("i".into(), i.into());
    m.insert("tag".into(), "rust".into());
    m.insert(
        "nested".into(),
        serde_json::json!({"a": [1, 2.5, null, true]}),
    );
    m
}

/// Rust produces, Python consumes.
fn rust_to_python(shim: Shim, kind: Kind, evict: bool) {
    redis_connector::register();
    let server = RedisServer::start();
    let topic = format!("r2p-{}-{kind:?}", shim.name());
    let ts = TestStore::new(kind, &format!("r2p-{}-{kind:?}", shim.name()), &server);
    let mut zmq_pub = match shim {
        Shim::Zmq => Some(ZmqPublisher::bind("127.0.0.1", 0).unwrap()),
        _ => None,
    };
    let kafka = matches!(shim, Shim::Kafka).then(Tansu::start);
    let mut kafka_pub = kafka.as_ref().map(|k| {
        // The topic exists before Python's consumer subscribes to it.
        let mut p = KafkaPublisher::new(&k.bootstrap()).unwrap();
        p.create_topic(&topic).unwrap();
        p
    });
    let broker_port = match (&zmq_pub, &kafka) {
        (Some(z), _) => z.port(),
        (_, Some(k)) => k.port,
        _ => server.port,
    };
    let mut child = py(
        "stream_consume.py",
        &[shim.name().into(), broker_port.to_string(), topic.clone()],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    let mut so = BufReader::new(child.stdout.take().unwrap());
    so.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "python consumer did not start");
    if let Shim::PubSub = shim {
        let t0 = Instant::now();
        while numsub(server.port, &topic) < 1 {
            assert!(t0.elapsed() < Duration::from_secs(20), "no subscriber");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let publisher: Box<dyn Publisher> = match shim {
        Shim::PubSub => Box::new(RedisPublisher::new("127.0.0.1", server.port).unwrap()),
        Shim::Queue => Box::new(RedisQueuePublisher::new("127.0.0.1", server.port).unwrap()),
        Shim::Zmq => {
            let mut z = zmq_pub.take().unwrap();
            z.wait_for_subscribers(&topic, 1, Duration::from_secs(20))
                .unwrap();
            Box::new(z)
        }
        Shim::Kafka => Box::new(kafka_pub.take().unwrap()),
    };
    let mut p = match &ts.store {
        Some(s) => StreamProducer::new(publisher, s.clone()),
        None => StreamProducer::without_store(publisher),
    }
    .batch_size(3)
    .evict(evict);
    for i in 0..N {
        p.send(&topic, obj(i), meta(i)).unwrap();
    }
    p.close_topic(&topic).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut so, &mut rest).unwrap();
    finish(child, "python consumer");
    let got: Vec<serde_json::Value> = serde_json::from_str(rest.trim())
        .unwrap_or_else(|e| panic!("python consumer printed {rest:?}: {e}"));
    assert_eq!(got.len() as u64, N, "{got:?}");
    for (i, item) in got.iter().enumerate() {
        assert_eq!(item["meta"]["i"], i as u64, "in order: {item}");
        assert_eq!(item["meta"]["tag"], "rust");
        assert_eq!(item["meta"]["nested"]["a"][1], 2.5);
        assert_eq!(item["ok"], true, "object {i} byte for byte: {item}");
        assert_eq!(item["proxy"], !matches!(kind, Kind::Inline), "{item}");
    }
    if ts.store.is_some() {
        let left = ts.objects_left();
        assert_eq!(left, if evict { 0 } else { N as usize }, "evict = {evict}");
    }
}

/// Python produces, Rust consumes.
fn python_to_rust(shim: Shim, kind: Kind, evict: bool) {
    redis_connector::register();
    let server = RedisServer::start();
    let topic = format!("p2r-{}-{kind:?}", shim.name());
    let name = format!("p2r-{}-{kind:?}-{}", shim.name(), uuid::Uuid::new_v4());
    let dir = std::env::temp_dir().join(format!("ps-pystream-{}", uuid::Uuid::new_v4()));
    let (py_kind, py_arg, dir) = match kind {
        Kind::File => ("file", dir.to_str().unwrap().to_string(), Some(dir)),
        Kind::Redis => ("redis", server.port.to_string(), None),
        Kind::Inline => ("none", "-".to_string(), None),
    };
    let ts = TestStore {
        store: None,
        py_kind,
        py_arg,
        dir,
        redis_port: server.port,
    };
    // Subscribe first: pub/sub drops what nobody hears. The ZeroMQ
    // subscriber connects to the Python publisher once it binds, and the
    // publisher waits a second for it (it cannot see subscriptions).
    let zmq_port = common::free_port();
    let kafka = matches!(shim, Shim::Kafka).then(Tansu::start);
    let sub: Box<dyn Subscriber> = match shim {
        Shim::PubSub => {
            Box::new(RedisSubscriber::new("127.0.0.1", server.port, &[&topic]).unwrap())
        }
        Shim::Queue => {
            Box::new(RedisQueueSubscriber::new("127.0.0.1", server.port, &topic).unwrap())
        }
        Shim::Zmq => Box::new(ZmqSubscriber::connect("127.0.0.1", zmq_port, &topic).unwrap()),
        // Creates the topic (one partition) before Python produces to it.
        Shim::Kafka => Box::new(
            KafkaSubscriber::new(
                &kafka.as_ref().unwrap().bootstrap(),
                &topic,
                KafkaStart::Earliest,
            )
            .unwrap(),
        ),
    };
    let (broker_port, delay) = match shim {
        Shim::Zmq => (zmq_port, "1.0"),
        Shim::Kafka => (kafka.as_ref().unwrap().port, "0"),
        _ => (server.port, "0"),
    };
    let producer = py(
        "stream_produce.py",
        &[
            shim.name().into(),
            broker_port.to_string(),
            topic.clone(),
            ts.py_kind.into(),
            ts.py_arg.clone(),
            name,
            N.to_string(),
            if evict { "1" } else { "0" }.into(),
            delay.into(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = finish(producer, "python producer");
    assert_eq!(out.trim(), format!("sent {N}"));
    let mut c = StreamConsumer::<Bytes>::new(sub).timeout(Some(Duration::from_secs(30)));
    let mut i = 0;
    while let Some((item, m)) = c.next_with_metadata().unwrap() {
        assert_eq!(m["i"], i, "in order");
        assert_eq!(m["tag"], "py");
        assert_eq!(m["f"], 0.5);
        assert_eq!(m["l"], serde_json::json!([1, "a", null]));
        assert_eq!(m["big"], 1u64 << 40);
        assert_eq!(
            matches!(item, StreamItem::Object(_)),
            matches!(kind, Kind::Inline)
        );
        assert!(
            item.resolve().unwrap() == &obj(i),
            "object {i} byte for byte"
        );
        drop(item);
        i += 1;
    }
    assert_eq!(i, N, "end of stream after every object");
    if !matches!(kind, Kind::Inline) {
        let left = ts.objects_left();
        assert_eq!(left, if evict { 0 } else { N as usize }, "evict = {evict}");
    }
}

#[test]
fn rust_to_python_pubsub_file_store() {
    rust_to_python(Shim::PubSub, Kind::File, true);
}

#[test]
fn rust_to_python_pubsub_redis_store() {
    rust_to_python(Shim::PubSub, Kind::Redis, false);
}

#[test]
fn rust_to_python_queue_file_store() {
    rust_to_python(Shim::Queue, Kind::File, false);
}

#[test]
fn rust_to_python_queue_redis_store() {
    rust_to_python(Shim::Queue, Kind::Redis, true);
}

#[test]
fn rust_to_python_queue_inline_objects() {
    rust_to_python(Shim::Queue, Kind::Inline, false);
}

#[test]
fn python_to_rust_pubsub_file_store() {
    python_to_rust(Shim::PubSub, Kind::File, true);
}

#[test]
fn python_to_rust_pubsub_redis_store() {
    python_to_rust(Shim::PubSub, Kind::Redis, false);
}

#[test]
fn python_to_rust_queue_file_store() {
    python_to_rust(Shim::Queue, Kind::File, false);
}

#[test]
fn python_to_rust_queue_redis_store() {
    python_to_rust(Shim::Queue, Kind::Redis, true);
}

#[test]
fn python_to_rust_pubsub_inline_objects() {
    python_to_rust(Shim::PubSub, Kind::Inline, false);
}

#[test]
fn rust_to_python_zmq_file_store() {
    rust_to_python(Shim::Zmq, Kind::File, true);
}

#[test]
fn rust_to_python_zmq_inline_objects() {
    rust_to_python(Shim::Zmq, Kind::Inline, false);
}

#[test]
fn python_to_rust_zmq_redis_store() {
    python_to_rust(Shim::Zmq, Kind::Redis, true);
}

#[test]
fn python_to_rust_zmq_file_store() {
    python_to_rust(Shim::Zmq, Kind::File, false);
}

#[test]
fn rust_to_python_kafka_file_store() {
    rust_to_python(Shim::Kafka, Kind::File, true);
}

#[test]
fn rust_to_python_kafka_redis_store() {
    rust_to_python(Shim::Kafka, Kind::Redis, false);
}

#[test]
fn python_to_rust_kafka_redis_store() {
    python_to_rust(Shim::Kafka, Kind::Redis, true);
}

#[test]
fn python_to_rust_kafka_file_store() {
    python_to_rust(Shim::Kafka, Kind::File, false);
}
