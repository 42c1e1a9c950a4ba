//! Redis Streams with consumer groups (a real redis-server): a consumer
//! process killed (SIGKILL) after it received events it had not
//! acknowledged loses nothing, objects are evicted only after the
//! acknowledgement, a consumer restarted under its name reads its pending
//! events again.

#[path = "../../redis-connector/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::RedisServer;
use proxy_core::Store;
use proxy_patterns::stream::redis_streams::{RedisStreamPublisher, RedisStreamSubscriber};
use proxy_patterns::stream::{Metadata, Publisher, StreamConsumer, StreamProducer, Subscriber};

fn meta(i: u64) -> Metadata {
    let mut m = Metadata::new();
    m.insert("i".into(), i.into());
    m
}

fn redis_store(server: &RedisServer, name: &str) -> Store {
    Store::builder(name, server.builder().build().unwrap())
        .cache_bytes(0)
        .build()
        .unwrap()
}

fn query<T: redis::FromRedisValue>(server: &RedisServer, cmd: &mut redis::Cmd) -> T {
    let c = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    cmd.query(&mut c.get_connection().unwrap()).unwrap()
}

/// Entries pending in `group` of `topic` (XPENDING's count).
fn pending(server: &RedisServer, topic: &str, group: &str) -> u64 {
    let v: redis::Value = query(server, redis::cmd("XPENDING").arg(topic).arg(group));
    match v {
        redis::Value::Array(a) => match a.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            other => panic!("XPENDING: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    }
}

fn worker(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patterns-worker"));
    c.arg("stream-group").args(args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[test]
fn a_killed_consumer_loses_nothing_and_leaks_nothing() {
    redis_connector::register();
    let server = RedisServer::start();
    let (topic, group) = ("sim", "analysis");
    const N: u64 = 100_000;
    const ACKED: u64 = 2_000;
    const HELD: u64 = 500;
    let mut p = StreamProducer::new(
        RedisStreamPublisher::new("127.0.0.1", server.port).unwrap(),
        redis_store(&server, "groups-kill"),
    )
    .batch_size(10)
    .evict(true);
    // The group exists before the first event (it reads from the start).
    drop(RedisStreamSubscriber::new("127.0.0.1", server.port, topic, group, "setup").unwrap());
    for i in 0..N {
        p.send(topic, i, meta(i)).unwrap();
    }
    p.close_topic(topic).unwrap();
    let objects: u64 = query(&server, &mut redis::cmd("DBSIZE"));
    assert_eq!(objects, N + 1, "N objects and the stream");

    let addr = format!("127.0.0.1:{}", server.port);
    let args = |me: &str, ack_first: u64, hold: u64| -> Vec<String> {
        [&addr, topic, group, me]
            .iter()
            .map(|s| s.to_string())
            .chain([ack_first, hold, 300].iter().map(u64::to_string))
            .collect()
    };
    // A acknowledges ACKED events, receives HELD more, and is killed.
    let mut a = worker(&args("A", ACKED, HELD)).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(a.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("held {ACKED} {HELD}"));
    assert!(
        pending(&server, topic, group) >= HELD / 10,
        "A's unacknowledged batches are pending"
    );
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    // Nothing of A's unacknowledged events was evicted.
    let objects: u64 = query(&server, &mut redis::cmd("DBSIZE"));
    assert_eq!(objects, N - ACKED + 1, "only acknowledged objects evicted");
    std::thread::sleep(Duration::from_millis(400)); // > claim-ms
    // B takes A's pending events over and reads the rest.
    let out = worker(&args("B", 0, 0)).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want_sum: u64 = (ACKED..N).sum();
    assert_eq!(
        so.trim(),
        format!("ok {} 0 {want_sum}", N - ACKED),
        "every event A did not acknowledge, once"
    );
    assert_eq!(pending(&server, topic, group), 0, "all acknowledged");
    let objects: u64 = query(&server, &mut redis::cmd("DBSIZE"));
    assert_eq!(objects, 1, "every object evicted; only the stream is left");
}

#[test]
fn eviction_waits_for_the_ack_and_a_restarted_consumer_rereads_its_pending() {
    redis_connector::register();
    let server = RedisServer::start();
    let store = redis_store(&server, "groups-ack");
    let sub = || {
        RedisStreamSubscriber::new("127.0.0.1", server.port, "t", "g", "me")
            .unwrap()
            .claim_after(Duration::from_secs(60))
    };
    let first = sub();
    let mut p = StreamProducer::new(
        RedisStreamPublisher::new("127.0.0.1", server.port).unwrap(),
        store.clone(),
    )
    .batch_size(2)
    .evict(true);
    for i in 0..4u64 {
        p.send("t", i, meta(i)).unwrap();
    }
    p.close_topic("t").unwrap();
    let mut c = StreamConsumer::<u64>::new(first).timeout(Some(Duration::from_secs(5)));
    let item = c.next_item().unwrap().unwrap();
    assert_eq!(*item.resolve().unwrap(), 0);
    let key = item.proxy().unwrap().key().clone();
    // Resolved, not acknowledged: still stored.
    assert!(store.exists(&key).unwrap());
    // Half of the first batch handed out: acknowledging keeps it pending.
    c.ack().unwrap();
    assert!(store.exists(&key).unwrap());
    assert_eq!(pending(&server, "t", "g"), 3, "two batches and the end");
    assert_eq!(*c.next_item().unwrap().unwrap().resolve().unwrap(), 1);
    c.ack().unwrap();
    assert!(!store.exists(&key).unwrap(), "evicted after the ack");
    assert_eq!(pending(&server, "t", "g"), 2);
    assert_eq!(*c.next_item().unwrap().unwrap().resolve().unwrap(), 2);
    // The consumer goes away without acknowledging; started again under its
    // name, it reads its pending events first (2 is read again).
    drop(c);
    let mut c = StreamConsumer::<u64>::new(sub()).timeout(Some(Duration::from_secs(5)));
    let mut got = Vec::new();
    while let Some(v) = c.next_object().unwrap() {
        got.push(v);
        c.ack().unwrap();
    }
    assert_eq!(got, [2, 3]);
    c.ack().unwrap();
    assert_eq!(pending(&server, "t", "g"), 0);
    let objects: u64 = query(&server, &mut redis::cmd("DBSIZE"));
    assert_eq!(objects, 1, "only the stream is left");
}

#[test]
fn a_dead_broker_is_a_clear_temporary_error_and_a_restarted_one_is_used_again() {
    let mut server = RedisServer::start();
    let mut sub = RedisStreamSubscriber::new("127.0.0.1", server.port, "t", "g", "c").unwrap();
    assert!(
        sub.next_message(Some(Duration::from_millis(50)))
            .unwrap()
            .is_none()
    );
    server.kill();
    let err = sub
        .next_message(Some(Duration::from_millis(50)))
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains(&server.port.to_string()), "{err}");
    let err = RedisStreamSubscriber::new("127.0.0.1", server.port, "t", "g", "c").unwrap_err();
    assert!(err.is_temporary(), "{err}");
    // Back, empty: the subscriber reconnects and makes its group again.
    server.restart();
    assert!(
        sub.next_message(Some(Duration::from_millis(50)))
            .unwrap()
            .is_none()
    );
    let mut p = RedisStreamPublisher::new("127.0.0.1", server.port).unwrap();
    p.send("t", b"after").unwrap();
    assert_eq!(
        sub.next_message(Some(Duration::from_secs(5)))
            .unwrap()
            .as_deref(),
        Some(&b"after"[..])
    );
}
