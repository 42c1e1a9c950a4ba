//! The Kafka stream shim against a real Kafka-compatible broker (a private
//! `tansu` with in-memory storage, `tests/support/tansu.rs`): objects
//! through a file store byte for byte, in order, to the end of stream; where
//! a subscriber starts; bad events; and a broker that goes away and comes
//! back. Python's `confluent-kafka` on the other side: `stream_python.rs`.

#[path = "support/tansu.rs"]
mod tansu;

use std::time::{Duration, Instant};

use proxy_core::{Bytes, Error, FileConnector, Store};
use proxy_patterns::stream::kafka::{KafkaPublisher, KafkaStart, KafkaSubscriber};
use proxy_patterns::stream::{Metadata, Publisher, StreamConsumer, StreamProducer, Subscriber};
use tansu::{Gate, Tansu};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn obj(i: u64) -> Bytes {
    let n = if i == 3 {
        5 << 20
    } else {
        1 + 4093 * i as usize
    };
    (0..n)
        .map(|j| ((i as usize * 31 + j * 7) % 251) as u8)
        .collect()
}

fn meta(i: u64) -> Metadata {
    let mut m = Metadata::new();
    m.insert("i".into(), i.into());
    m
}

fn file_store(tag: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("ps-kafka-{tag}-{}", uuid::Uuid::new_v4()));
    let store = Store::builder(format!("kafka-{tag}"), FileConnector::new(&dir).unwrap())
        .cache_bytes(0)
        .build()
        .unwrap();
    (store, dir)
}

#[test]
fn objects_go_through_a_file_store_in_order_and_are_evicted_when_read() {
    let broker = Tansu::start();
    let (store, dir) = file_store("order");
    // The consumer starts before anything is sent, at the topic's end.
    let sub = KafkaSubscriber::new(&broker.bootstrap(), "sim", KafkaStart::Latest).unwrap();
    let mut p = StreamProducer::new(KafkaPublisher::new(&broker.bootstrap()).unwrap(), store)
        .batch_size(2)
        .evict(true);
    let n = 9;
    for i in 0..n {
        p.send("sim", obj(i), meta(i)).unwrap();
    }
    p.close_topic("sim").unwrap();
    assert_eq!(p.unsent(), 0);
    let mut c = StreamConsumer::<Bytes>::new(sub).timeout(Some(Duration::from_secs(30)));
    let mut i = 0;
    while let Some((item, m)) = c.next_with_metadata().unwrap() {
        assert_eq!(m["i"], i, "in order");
        assert!(
            item.resolve().unwrap() == &obj(i),
            "object {i} byte for byte"
        );
        i += 1;
    }
    assert_eq!(i, n, "end of stream after every object");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|f| !f.to_string_lossy().ends_with(".ready"))
        .collect();
    assert!(left.is_empty(), "evicted when read: {left:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn earliest_sees_what_was_sent_before_it_started_latest_does_not() {
    let broker = Tansu::start();
    let mut publ = KafkaPublisher::new(&broker.bootstrap()).unwrap();
    for i in 0..5u8 {
        publ.send("t", &[i; 3]).unwrap();
    }
    let mut early = KafkaSubscriber::new(&broker.bootstrap(), "t", KafkaStart::Earliest).unwrap();
    let mut late = KafkaSubscriber::new(&broker.bootstrap(), "t", KafkaStart::Latest).unwrap();
    let mut at = KafkaSubscriber::new(&broker.bootstrap(), "t", KafkaStart::Offset(3)).unwrap();
    publ.send("t", &[9; 3]).unwrap();
    let short = Some(Duration::from_secs(10));
    for i in [0u8, 1, 2, 3, 4, 9] {
        assert_eq!(early.next_message(short).unwrap(), Some(vec![i; 3]));
    }
    for i in [3u8, 4, 9] {
        assert_eq!(at.next_message(short).unwrap(), Some(vec![i; 3]));
    }
    assert_eq!(late.next_message(short).unwrap(), Some(vec![9; 3]));
    // Nothing more: a bounded wait answers None, promptly.
    let t0 = Instant::now();
    assert_eq!(
        late.next_message(Some(Duration::from_millis(300))).unwrap(),
        None
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(late.position(), Some(6));
    // Another topic's records are not this one's.
    publ.send("t2", b"other").unwrap();
    assert_eq!(
        early
            .next_message(Some(Duration::from_millis(300)))
            .unwrap(),
        None
    );
}

#[test]
fn bad_events_are_clear_errors_and_the_stream_goes_on() {
    let broker = Tansu::start();
    let (store, dir) = file_store("bad");
    let sub = KafkaSubscriber::new(&broker.bootstrap(), "t", KafkaStart::Earliest).unwrap();
    let mut publ = KafkaPublisher::new(&broker.bootstrap()).unwrap();
    publ.send("t", b"\x00\x01garbage").unwrap();
    publ.send("t", b"PK\n\x80\x04}(\x8c\x06events](").unwrap();
    // An event for an object evicted before it is read.
    let mut p = StreamProducer::new(KafkaPublisher::new(&broker.bootstrap()).unwrap(), store);
    p.send("t", obj(1), meta(1)).unwrap();
    p.flush().unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    p.send("t", obj(2), meta(2)).unwrap();
    p.close_topic("t").unwrap();
    let mut c = StreamConsumer::<Bytes>::new(sub).timeout(Some(Duration::from_secs(30)));
    let e = c.next_object().unwrap_err();
    assert!(e.to_string().contains("not a stream event batch"), "{e}");
    let e = c.next_object().unwrap_err();
    assert!(e.to_string().contains("malformed pickle"), "{e}");
    let e = c.next_object().unwrap_err();
    assert!(matches!(e, Error::MissingKey { .. }), "{e}");
    assert!(c.next_object().unwrap().unwrap() == obj(2));
    assert!(c.next_object().unwrap().is_none());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_addresses_and_topics_are_clear_errors() {
    for bad in ["", " , ", "no-port", "a:1,no-port"] {
        let e = KafkaPublisher::new(bad).unwrap_err();
        assert!(matches!(e, Error::InvalidConfig { .. }), "{bad:?}: {e}");
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
        let e = KafkaSubscriber::new(bad, "t", KafkaStart::Earliest).unwrap_err();
        assert!(matches!(e, Error::InvalidConfig { .. }), "{bad:?}: {e}");
    }
    let broker = Tansu::start();
    let mut publ = KafkaPublisher::new(&broker.bootstrap()).unwrap();
    let e = publ.send("", b"x").unwrap_err();
    assert!(e.to_string().contains("topic cannot be empty"), "{e}");
}

#[test]
fn a_broker_that_goes_away_is_an_error_not_a_hang_and_streams_go_on_when_it_is_back() {
    // Clients reach the broker through a gate the test closes and opens:
    // the broker goes away and comes back with its records.
    let kafka_port = free_port();
    let gate = Gate::new(kafka_port);
    let broker = Tansu::start_advertising(kafka_port, gate.port);
    let timeout = Duration::from_secs(3);
    let (store, dir) = file_store("away");
    let mut sub =
        KafkaSubscriber::with_timeout(&broker.bootstrap(), "t", KafkaStart::Earliest, timeout)
            .unwrap();
    let publ = KafkaPublisher::with_timeout(&broker.bootstrap(), timeout).unwrap();
    let mut p = StreamProducer::new(publ, store).batch_size(1);
    p.send("t", obj(0), meta(0)).unwrap();
    let first = sub.next_message(Some(Duration::from_secs(10))).unwrap();
    assert!(first.is_some());

    gate.down();
    let t0 = Instant::now();
    let e = p.send("t", obj(1), meta(1)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(
        matches!(e, Error::Connector { .. }) && e.is_temporary(),
        "{e}"
    );
    assert!(e.to_string().contains(&gate.port.to_string()), "{e}");
    assert_eq!(p.unsent(), 1, "the event batch is kept");
    let t0 = Instant::now();
    let e = sub.next_message(Some(Duration::from_secs(1))).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(e.is_temporary(), "{e}");

    // Back: the kept batch goes first, then the rest; the subscriber goes
    // on from where it was. Nothing lost, nothing twice.
    gate.up();
    p.send("t", obj(2), meta(2)).unwrap();
    p.close_topic("t").unwrap();
    assert_eq!(p.unsent(), 0);
    let first = proxy_patterns::stream::EventBatch::decode(&first.unwrap()).unwrap();
    assert_eq!(first.events.len(), 1);
    let mut c = StreamConsumer::<Bytes>::new(sub).timeout(Some(Duration::from_secs(30)));
    let mut seen = Vec::new();
    while let Some((item, m)) = c.next_with_metadata().unwrap() {
        let i = m["i"].as_u64().unwrap();
        assert!(
            item.resolve().unwrap() == &obj(i),
            "object {i} byte for byte"
        );
        seen.push(i);
    }
    assert_eq!(seen, [1, 2]);
    drop(broker);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_broker_that_comes_back_empty_does_not_stall_a_subscriber() {
    // An in-memory broker restarted: the subscriber's offset is past the
    // new partition's end. It goes on from the new end (what the old
    // broker held is gone), neither failing forever nor hanging.
    let mut broker = Tansu::start();
    let timeout = Duration::from_secs(3);
    let mut publ = KafkaPublisher::with_timeout(&broker.bootstrap(), timeout).unwrap();
    let mut sub =
        KafkaSubscriber::with_timeout(&broker.bootstrap(), "t", KafkaStart::Earliest, timeout)
            .unwrap();
    for i in 0..3u8 {
        publ.send("t", &[i]).unwrap();
        assert_eq!(
            sub.next_message(Some(Duration::from_secs(10))).unwrap(),
            Some(vec![i])
        );
    }
    assert_eq!(sub.position(), Some(3));
    broker.restart();
    let t0 = Instant::now();
    loop {
        match sub.next_message(Some(Duration::from_millis(500))) {
            Ok(None) if sub.position() == Some(0) => break,
            Ok(None) | Err(_) => {}
            Ok(Some(m)) => panic!("nothing was sent to the new broker: {m:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "stalled at {:?}",
            sub.position()
        );
    }
    // The publisher reconnects (its first try may meet the dead connection).
    let t0 = Instant::now();
    while let Err(e) = publ.send("t", b"new") {
        assert!(
            e.is_temporary() && t0.elapsed() < Duration::from_secs(30),
            "{e}"
        );
    }
    assert_eq!(
        sub.next_message(Some(Duration::from_secs(10))).unwrap(),
        Some(b"new".to_vec())
    );
}
