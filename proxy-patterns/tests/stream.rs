//! Streaming: in-process channels, Redis pub/sub and Redis lists (a real
//! redis-server), consumers in other OS processes, and failures.

#[path = "../../redis-connector/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use proxy_core::{Error, FileConnector, LocalConnector, Store};
use proxy_patterns::stream::channel::ChannelBroker;
use proxy_patterns::stream::redis::{
    RedisPublisher, RedisQueuePublisher, RedisQueueSubscriber, RedisSubscriber,
};
use proxy_patterns::stream::zmq::{ZmqPublisher, ZmqSubscriber};
use proxy_patterns::stream::{
    EVENT_VERSION, Event, EventBatch, Metadata, Publisher, StreamConsumer, StreamProducer,
    Subscriber,
};

fn meta(i: u64) -> Metadata {
    let mut m = Metadata::new();
    m.insert("i".into(), i.into());
    m
}

fn file_store(tag: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("ps-stream-{tag}-{}", uuid::Uuid::new_v4()));
    let store = Store::new(format!("stream-{tag}"), FileConnector::new(&dir).unwrap()).unwrap();
    (store, dir)
}

#[test]
fn channel_stream_batches_metadata_filters_and_end_of_stream() {
    let store = Store::new("stream-chan", LocalConnector::new()).unwrap();
    let broker = ChannelBroker::new();
    let sub_all = broker.subscribe(&["t"]);
    let sub_even = broker.subscribe(&["t"]);
    let mut p = StreamProducer::new(broker.publisher(), store.clone())
        .batch_size(3)
        // The producer drops i == 9 (never stored).
        .filter(|m| m["i"] == 9);
    for i in 0..10u64 {
        p.send("t", vec![i; 8], meta(i)).unwrap();
    }
    // 9 sent after the filter: three full batches went out already.
    p.close_topic("t").unwrap();
    let mut all = StreamConsumer::<Vec<u64>>::new(sub_all).timeout(Some(Duration::from_secs(5)));
    let mut seen = Vec::new();
    while let Some((proxy, m)) = all.next_with_metadata().unwrap() {
        assert_eq!(proxy.resolve().unwrap()[0], m["i"].as_u64().unwrap());
        seen.push(m["i"].as_u64().unwrap());
    }
    assert_eq!(seen, (0..9).collect::<Vec<_>>());
    assert!(all.next_proxy().unwrap().is_none(), "stays ended");
    // A consumer-side filter skips objects.
    let even = StreamConsumer::<Vec<u64>>::new(sub_even)
        .timeout(Some(Duration::from_secs(5)))
        .filter(|m| m["i"].as_u64().unwrap() % 2 == 1);
    let got: Vec<u64> = even.map(|p| p.unwrap().resolve().unwrap()[0]).collect();
    assert_eq!(got, [0, 2, 4, 6, 8]);
}

#[test]
fn an_event_whose_object_was_evicted_is_a_missing_key_error() {
    let store = Store::builder("stream-evicted", LocalConnector::new())
        .cache_bytes(0)
        .build()
        .unwrap();
    let broker = ChannelBroker::new();
    let sub = broker.subscribe(&["t"]);
    let mut p = StreamProducer::new(broker.publisher(), store.clone());
    p.send("t", "gone".to_string(), Metadata::new()).unwrap();
    p.send("t", "kept".to_string(), Metadata::new()).unwrap();
    let mut c = StreamConsumer::<String>::new(sub).timeout(Some(Duration::from_secs(5)));
    let first = c.next_proxy().unwrap().unwrap();
    store.evict(first.key()).unwrap();
    let err = first.resolve().unwrap_err();
    assert!(matches!(err, Error::MissingKey { .. }), "{err}");
    assert_eq!(c.next_object().unwrap().as_deref(), Some("kept"));
    // No end of stream yet and nothing more: a timeout, not a hang.
    let mut c = c.timeout(Some(Duration::from_millis(50)));
    assert!(matches!(c.next_proxy(), Err(Error::Timeout { .. })));
    // Fan-out with evict-on-resolve: the first reader evicts, the second
    // gets MissingKey from next_object.
    let broker = ChannelBroker::new();
    let (s1, s2) = (broker.subscribe(&["u"]), broker.subscribe(&["u"]));
    let mut p = StreamProducer::new(broker.publisher(), store).evict(true);
    p.send("u", "once".to_string(), Metadata::new()).unwrap();
    let mut c1 = StreamConsumer::<String>::new(s1);
    let mut c2 = StreamConsumer::<String>::new(s2);
    assert_eq!(c1.next_object().unwrap().as_deref(), Some("once"));
    assert!(matches!(c2.next_object(), Err(Error::MissingKey { .. })));
}

#[test]
fn events_are_in_proxystores_format_and_version_1_json_is_still_read() {
    let store = Store::new("stream-ver", LocalConnector::new()).unwrap();
    let broker = ChannelBroker::new();
    let mut sub = broker.subscribe(&["t"]);
    let mut p = StreamProducer::new(broker.publisher(), store.clone()).evict(true);
    p.send("t", 1u8, meta(1)).unwrap();
    let msg = sub
        .next_message(Some(Duration::from_secs(1)))
        .unwrap()
        .unwrap();
    // proxystore.serialize's pickle identifier, then a pickle (protocol 4).
    assert_eq!(&msg[..5], b"PK\n\x80\x04", "{msg:?}");
    let text = String::from_utf8_lossy(&msg);
    for needle in [
        "EVENT_BATCH",
        "NEW_OBJECT_KEY",
        "proxystore.store.config",
        "StoreConfig",
        "proxystore_rs.RustKey",
        "proxystore_rs.RustConnector",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let b = EventBatch::decode(&msg).unwrap();
    assert_eq!(b.topic, "t");
    let [
        Event::ObjectKey {
            store: cfg,
            key,
            evict,
            metadata,
        },
    ] = &b.events[..]
    else {
        panic!("{:?}", b.events)
    };
    assert!(evict);
    assert_eq!(metadata["i"], 1);
    assert_eq!(cfg.name, "stream-ver");
    assert_eq!(cfg.connector.kind, "local");
    assert_eq!(store.get::<u8>(key).unwrap(), Some(1));

    // Version-1 JSON (this crate's former format) is still read.
    let v1 = EventBatch::new("t", b.events.clone()).encode_v1().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&v1).unwrap();
    assert_eq!(v["version"], EVENT_VERSION);
    assert_eq!(v["events"][0]["type"], "object_key");
    let b2 = broker.clone();
    let s2 = b2.subscribe(&["t"]);
    b2.publisher().send("t", &v1).unwrap();
    let mut c = StreamConsumer::<u8>::new(s2).timeout(Some(Duration::from_secs(1)));
    assert_eq!(c.next_object().unwrap(), Some(1));

    // Another JSON version, or neither format: a clear decode error.
    let bad = br#"{"version": 2, "topic": "t", "events": []}"#;
    let err = EventBatch::decode(bad).unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
    let err = EventBatch::decode(b"not json").unwrap_err();
    assert!(
        err.to_string().contains("not a stream event batch"),
        "{err}"
    );
}

/// A pickled event batch written the way Python writes it, with `event`
/// (pickle opcodes of one event dict) in its list.
fn py_batch(event: &[u8]) -> Vec<u8> {
    let mut m = b"PK\n\x80\x04}(\x8c\x06events](".to_vec();
    m.extend_from_slice(event);
    m.extend_from_slice(
        b"e\x8c\x05topic\x8c\x01t\x8c\nevent_type\x8c\x0bEVENT_BATCH\x8c\x00\x8c\x00u.",
    );
    m
}

#[test]
fn bad_events_are_clear_errors_and_the_stream_goes_on() {
    let broker = ChannelBroker::new();
    let sub = broker.subscribe(&["t"]);
    let mut publ = broker.publisher();
    let store = Store::new("stream-bad", LocalConnector::new()).unwrap();
    // 1. Not an event batch at all; 2. a pickle cut short; 3. an unknown
    // key_type; 4. an unknown event type; 5. an inline object Rust cannot
    // read (a Python set); 6. a connector this build cannot open.
    let key_event = |key_type: &str, kind: &str| {
        let mut e = b"}(\x8c\nevent_type\x8c\x0eNEW_OBJECT_KEY\x8c\x08key_type".to_vec();
        e.push(0x8c);
        e.push(key_type.len() as u8);
        e.extend_from_slice(key_type.as_bytes());
        e.extend_from_slice(b"\x8c\x07raw_key](\x8c\x01ae\x8c\x05evict\x89\x8c\x0cstore_config}(\x8c\x04name\x8c\x01s\x8c\tconnector}(\x8c\x04kind");
        e.push(0x8c);
        e.push(kind.len() as u8);
        e.extend_from_slice(kind.as_bytes());
        e.extend_from_slice(b"uuu");
        e
    };
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"\x00\x01garbage".to_vec(), "not a stream event batch"),
        (py_batch(b"}(")[..20].to_vec(), "malformed pickle"),
        (
            py_batch(&key_event("some.module.Key", "file")),
            "unknown key_type \"some.module.Key\"",
        ),
        (
            py_batch(b"}(\x8c\nevent_type\x8c\x05OTHERu"),
            "unknown stream event type \"OTHER\"",
        ),
        (
            py_batch(b"}(\x8c\nevent_type\x8c\nNEW_OBJECT\x8c\x03obj\x8f(K\x01\x90u"),
            "inline stream object of Python type set",
        ),
        (
            py_batch(&key_event(
                "proxystore.connectors.file.FileKey",
                "proxystore.connectors.globus.GlobusConnector",
            )),
            "GlobusConnector",
        ),
    ];
    for (m, _) in &bad {
        publ.send("t", m).unwrap();
    }
    let mut p = StreamProducer::new(broker.publisher(), store);
    p.send("t", "after".to_string(), Metadata::new()).unwrap();
    p.close_topic("t").unwrap();
    let mut c = StreamConsumer::<String>::new(sub).timeout(Some(Duration::from_secs(1)));
    for (_, want) in &bad {
        let err = c.next_object().unwrap_err();
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
    // Each bad message was dropped; the good one after them arrives.
    assert_eq!(c.next_object().unwrap().as_deref(), Some("after"));
    assert_eq!(c.next_object().unwrap(), None);
}

fn worker_consume(kind: &str, port: u16, topic: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_patterns-worker"))
        .args([
            "consume",
            kind,
            &format!("127.0.0.1:{port}"),
            topic,
            "20000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: std::process::Child) -> String {
    let out = c.wait_with_output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so.trim().strip_prefix("ok ").unwrap().to_string()
}

fn numsub(server: &common::RedisServer, topic: &str) -> usize {
    // Inline reply: "*2" then the lines; read the count with a raw client.
    let c = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    let mut conn = c.get_connection().unwrap();
    let (_, n): (String, usize) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(topic)
        .query::<Vec<(String, usize)>>(&mut conn)
        .unwrap()
        .pop()
        .unwrap();
    n
}

#[test]
fn redis_pubsub_fans_out_to_consumer_processes() {
    redis_connector::register();
    let server = common::RedisServer::start();
    let (store, dir) = file_store("pubsub");
    let consumers: Vec<_> = (0..3)
        .map(|_| worker_consume("redis", server.port, "fan"))
        .collect();
    let t0 = Instant::now();
    while numsub(&server, "fan") < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "consumers did not subscribe"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut p = StreamProducer::new(
        RedisPublisher::new("127.0.0.1", server.port).unwrap(),
        store,
    )
    .batch_size(4);
    let mut want = 0u64;
    for i in 0..10u8 {
        p.send("fan", vec![i; 1000], meta(i.into())).unwrap();
        want += u64::from(i) * 1000;
    }
    p.close_topic("fan").unwrap();
    for c in consumers {
        assert_eq!(
            finish(c),
            format!("10 {want}"),
            "every consumer sees every object"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn redis_queue_delivers_each_object_once_and_survives_a_broker_restart() {
    redis_connector::register();
    // A durable broker: acknowledged RPUSHes survive a kill -9.
    let mut server =
        common::RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let (store, dir) = file_store("queue");
    let mut p = StreamProducer::new(
        RedisQueuePublisher::new("127.0.0.1", server.port).unwrap(),
        store.clone(),
    )
    .evict(true);
    let mut keys_sum = 0u64;
    for i in 0..3u8 {
        p.send("q", vec![i; 10], meta(i.into())).unwrap();
        keys_sum += u64::from(i) * 10;
    }
    assert_eq!(p.unsent(), 0);
    // The broker goes down: a clear, temporary error; the batch is kept.
    server.kill();
    let t0 = Instant::now();
    let err = p.send("q", vec![3u8; 10], meta(3)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(10), "no hang");
    assert!(
        matches!(err, Error::Connector { .. }) && err.is_temporary(),
        "{err}"
    );
    assert!(err.to_string().contains(&server.port.to_string()), "{err}");
    assert_eq!(p.unsent(), 1);
    // A consumer cannot connect either: a clear error.
    let err = RedisQueueSubscriber::new("127.0.0.1", server.port, "q").unwrap_err();
    assert!(err.is_temporary(), "{err}");
    // Back up: the kept batch goes first, nothing acknowledged was lost.
    server.restart();
    // Until its append-only file is loaded, the server answers -LOADING.
    let t0 = Instant::now();
    while !server.raw("PING").starts_with("+PONG") {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "redis-server stays LOADING"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p.close_topic("q").unwrap();
    assert_eq!(p.unsent(), 0);
    keys_sum += 30;
    let out = finish(worker_consume("redis-queue", server.port, "q"));
    assert_eq!(out, format!("4 {keys_sum}"));
    // Consumed once, and evicted on resolve.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(names.is_empty(), "evicted after reading: {names:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn redis_pubsub_subscriber_reports_a_dead_broker() {
    let mut server = common::RedisServer::start();
    let mut sub = RedisSubscriber::new("127.0.0.1", server.port, &["t"]).unwrap();
    assert_eq!(
        sub.next_message(Some(Duration::from_millis(50))).unwrap(),
        None
    );
    server.kill();
    let err = sub
        .next_message(Some(Duration::from_millis(500)))
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
    let mut c = StreamConsumer::<u8>::new(sub).timeout(Some(Duration::from_millis(200)));
    assert!(c.next_proxy().is_err());
    let err = RedisPublisher::new("127.0.0.1", server.port)
        .unwrap()
        .send("t", b"x")
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
}

#[test]
fn zmq_stream_filters_topics_and_survives_a_publisher_restart() {
    let store = Store::new("stream-zmq", LocalConnector::new()).unwrap();
    let mut publ = ZmqPublisher::bind("127.0.0.1", 0).unwrap();
    let port = publ.port();
    assert!(publ.endpoint().ends_with(&format!(":{port}")));
    // Nobody subscribed: a timeout, not a hang.
    let t0 = Instant::now();
    let err = publ
        .wait_for_subscribers("sim", 1, Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let sub = ZmqSubscriber::connect("127.0.0.1", port, "sim").unwrap();
    publ.wait_for_subscribers("sim", 1, Duration::from_secs(10))
        .unwrap();
    // "sim2" passes ZeroMQ's prefix filter; the subscriber drops it.
    let mut raw = publ;
    raw.send("sim2", b"PK\nnot for us").unwrap();
    let mut p = StreamProducer::new(raw, store.clone());
    p.send("sim", 1u32, meta(1)).unwrap();
    let mut c = StreamConsumer::<u32>::new(sub).timeout(Some(Duration::from_secs(5)));
    assert_eq!(c.next_object().unwrap(), Some(1));
    // Nothing more: a timeout.
    let mut c = c.timeout(Some(Duration::from_millis(100)));
    assert!(matches!(c.next_object(), Err(Error::Timeout { .. })));
    // The publisher goes away and comes back on the same port: the
    // subscriber reconnects by itself while it waits for a message (libzmq
    // completes a reconnection in the calls of the socket's thread).
    drop(p);
    let reader = std::thread::spawn(move || {
        let mut c = c.timeout(Some(Duration::from_secs(20)));
        (c.next_object(), c.next_object())
    });
    let mut publ = loop {
        match ZmqPublisher::bind("127.0.0.1", port) {
            Ok(p) => break p,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    publ.wait_for_subscribers("sim", 1, Duration::from_secs(15))
        .unwrap();
    let mut p = StreamProducer::new(publ, store);
    p.send("sim", 2u32, meta(2)).unwrap();
    p.close_topic("sim").unwrap();
    let (first, second) = reader.join().unwrap();
    assert_eq!(first.unwrap(), Some(2));
    assert_eq!(second.unwrap(), None, "end of stream");
}
