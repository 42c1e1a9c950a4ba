//! Node-level dedup and the relay among node servers, on one machine: an
//! owner server and "node servers" started with `--relay-same-host` (so that
//! they replicate an owner that runs on their host, as they would one on
//! another node). The same on separate nodes of the virtual cluster:
//! `scripts/cluster/test-cross-node.sh`, step e.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use object_server::testkit::pattern;
use object_server::{Stats, proto};
use proxy_core::{Connector, Key, Payload};
use ucx_connector::{TransportConfig, UcxConfig, UcxConnector};

mod common;
use common::Server;

trait Relaying {
    fn start(extra: &[&str]) -> Server;
    fn node(extra: &[&str]) -> Server;
    fn stats(&self) -> Stats;
}

impl Relaying for Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_with("64M", "1G", extra)
    }

    /// A node server: replicates objects of servers on this host too.
    fn node(extra: &[&str]) -> Server {
        let mut args = vec!["--relay-same-host", "--relay-timeout", "1500"];
        args.extend_from_slice(extra);
        Server::start_with("64M", "1G", &args)
    }

    fn stats(&self) -> Stats {
        client(&self.addr, None).server_stats().unwrap()
    }
}

/// A reader of `server`'s objects (puts go there), through `node`'s replicas.
fn client(server: &str, node: Option<&str>) -> UcxConnector {
    let mut cfg = UcxConfig::new(server).with_timeout(Duration::from_secs(20));
    if let Some(n) = node {
        cfg = cfg.with_node_server(n);
    }
    UcxConnector::new(cfg).unwrap()
}

/// `readers` clients, one thread each, resolve `key` at once: their results.
fn at_once(readers: Vec<UcxConnector>, key: &Key) -> Vec<Option<bytes::Bytes>> {
    let barrier = Arc::new(Barrier::new(readers.len()));
    let threads: Vec<_> = readers
        .into_iter()
        .map(|c| {
            let (b, k) = (barrier.clone(), key.clone());
            std::thread::spawn(move || {
                b.wait();
                c.get(&k).unwrap()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn readers_of_a_node_share_one_transfer() {
    let owner = Server::start(&[]);
    let node = Server::node(&[]);
    let data = pattern(8 << 20, 7);
    let key = client(&owner.addr, None)
        .put(Payload::from(data.clone()))
        .unwrap();
    let readers = (0..6)
        .map(|_| client(&owner.addr, Some(&node.addr)))
        .collect();
    for got in at_once(readers, &key) {
        assert_eq!(got.as_deref(), Some(&data[..]));
    }
    let n = node.stats();
    assert_eq!(n.relay_fetches, 1, "one transfer for 6 readers: {n:?}");
    assert_eq!(n.relay_bytes_in, data.len() as u64, "{n:?}");
    assert_eq!((n.replicas, n.replica_bytes), (1, data.len() as u64));
    assert_eq!(n.replica_hits, 5, "the others read the replica: {n:?}");
    let o = owner.stats();
    assert_eq!(o.relay_bytes_out, data.len() as u64, "{o:?}");
    // A later reader: a replica hit, nothing crosses again.
    let c = client(&owner.addr, Some(&node.addr));
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
    assert_eq!(node.stats().relay_fetches, 1);
    assert_eq!(owner.stats().relay_bytes_out, data.len() as u64);
    // Batches go through the node too, with keys of the node's own server
    // and missing keys among them.
    let own = client(&node.addr, None)
        .put(Payload::from(b"mine".to_vec()))
        .unwrap();
    let got = c.get_batch(&[key.clone(), own, key.clone()]).unwrap();
    assert_eq!(got[0].as_deref(), Some(&data[..]));
    assert_eq!(got[1].as_deref(), Some(&b"mine"[..]));
    assert_eq!(got[2].as_deref(), Some(&data[..]));
}

#[test]
fn node_servers_relay_in_a_chain_and_the_owner_sends_once() {
    let owner = Server::start(&[]);
    let nodes: Vec<Server> = (0..3).map(|_| Server::node(&[])).collect();
    let data = pattern(48 << 20, 3);
    let key = client(&owner.addr, None)
        .put(Payload::from(data.clone()))
        .unwrap();
    // Two readers per node, all at once.
    let readers = nodes
        .iter()
        .flat_map(|n| [0, 1].map(|_| client(&owner.addr, Some(&n.addr))))
        .collect();
    for got in at_once(readers, &key) {
        assert_eq!(got.as_deref(), Some(&data[..]), "every byte");
    }
    let len = data.len() as u64;
    let o = owner.stats();
    assert_eq!(
        o.relay_bytes_out, len,
        "the owner sent the object once: {o:?}"
    );
    let stats: Vec<Stats> = nodes.iter().map(Server::stats).collect();
    for s in &stats {
        assert_eq!((s.relay_fetches, s.relay_bytes_in), (1, len), "{s:?}");
    }
    // The chain: two of the three node servers passed it on, once each.
    let passed: u64 = stats.iter().map(|s| s.relay_bytes_out).sum();
    assert_eq!(passed, 2 * len, "{stats:?}");
}

#[test]
fn evicted_objects_are_none_through_replicas() {
    // The owner advertises another spelling of its address than the keys
    // carry (a name, not the IP readers were configured with): replicas are
    // matched by the object, not by how its owner is spelled.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (listen, advertise) = (format!("127.0.0.1:{port}"), format!("localhost:{port}"));
    let owner = Server::start(&["--listen", &listen, "--advertise", &advertise]);
    assert_eq!(owner.addr, listen);
    let node = Server::node(&[]);
    let producer = client(&owner.addr, None);
    let reader = client(&owner.addr, Some(&node.addr));
    let a = pattern(1 << 20, 1);
    let ka = producer.put(Payload::from(a.clone())).unwrap();
    assert_eq!(reader.get(&ka).unwrap().as_deref(), Some(&a[..]));
    assert_eq!(node.stats().replicas, 1);
    producer.evict(&ka).unwrap();
    // The owner tells the node servers it relayed to: the replica goes
    // without waiting for a reader.
    let t = Instant::now();
    while node.stats().replicas != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the replica outlived the evict"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(reader.get(&ka).unwrap(), None, "evicted at the owner");
    assert_eq!(node.stats().replicas, 0);
    // The owner reuses the slot for another object of the same size: the
    // old key still gives nothing, the new one its own bytes.
    let b = pattern(1 << 20, 2);
    let kb = producer.put(Payload::from(b.clone())).unwrap();
    assert_eq!(reader.get(&ka).unwrap(), None);
    assert_eq!(reader.get(&kb).unwrap().as_deref(), Some(&b[..]));
    // Evicts racing the relay: whole objects or None, never other bytes.
    let nodes: Vec<Server> = (0..2).map(|_| Server::node(&[])).collect();
    for round in 0..12u8 {
        let d = pattern(16 << 20, round);
        let k = producer.put(Payload::from(d.clone())).unwrap();
        let readers: Vec<UcxConnector> = [&node, &nodes[0], &nodes[1]]
            .iter()
            .map(|n| client(&owner.addr, Some(&n.addr)))
            .collect();
        let evictor = {
            let (p, k) = (producer.clone(), k.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(u64::from(round) * 3));
                p.evict(&k).unwrap();
            })
        };
        for g in at_once(readers, &k).into_iter().flatten() {
            assert!(g[..] == d[..], "round {round}: other bytes");
        }
        evictor.join().unwrap();
        assert_eq!(
            reader.get(&k).unwrap(),
            None,
            "round {round}: after the evict"
        );
    }
}

#[test]
fn a_failed_relay_source_is_skipped() {
    let owner = Server::start(&[]);
    let first = Server::node(&[]);
    let data = pattern(24 << 20, 9);
    let key = client(&owner.addr, None)
        .put(Payload::from(data.clone()))
        .unwrap();
    let via_first = client(&owner.addr, Some(&first.addr));
    assert_eq!(via_first.get(&key).unwrap().as_deref(), Some(&data[..]));
    // The first node server stops answering (frozen): the next one's
    // source would be it; it gives up on it within its relay timeout
    // (1.5 s) and reads from the owner.
    first.signal(libc::SIGSTOP);
    let second = Server::node(&[]);
    let t = Instant::now();
    let got = client(&owner.addr, Some(&second.addr)).get(&key).unwrap();
    assert_eq!(got.as_deref(), Some(&data[..]));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(second.stats().relay_bytes_in, data.len() as u64);
    // Killed: the next one recovers at once (connection refused).
    let third = Server::node(&[]);
    drop(first);
    let got = client(&owner.addr, Some(&third.addr)).get(&key).unwrap();
    assert_eq!(got.as_deref(), Some(&data[..]));
    // The owner's chain: the first node server dropped, the second passed
    // the object to the third (or the owner did, if the third asked after
    // the second had given up its place).
    let o = owner.stats();
    assert!(o.relay_bytes_out <= 3 * data.len() as u64, "{o:?}");
}

#[test]
fn a_dead_node_server_means_direct_reads() {
    let owner = Server::start(&[]);
    let node = Server::node(&[]);
    let gone = node.addr.clone();
    drop(node);
    let data = pattern(100_000, 4);
    let key = client(&owner.addr, None)
        .put(Payload::from(data.clone()))
        .unwrap();
    let got = client(&owner.addr, Some(&gone)).get(&key).unwrap();
    assert_eq!(got.as_deref(), Some(&data[..]));
}

/// Relay requests need an accepted hello like every other: without the
/// server's secret nothing is fetched, chained or streamed.
#[test]
fn relay_requests_without_hello_are_refused() {
    let owner = Server::start(&["--no-unix-socket"]);
    let data = pattern(4096, 1);
    let key = client(&owner.addr, None).put(Payload::from(data)).unwrap();
    let k: object_server::ObjectKey = key.decode("ucx").unwrap();
    let remote = proto::Remote {
        server: k.server.clone(),
        instance: k.instance,
        loc: proto::Loc {
            seg: k.seg,
            offset: k.offset,
            len: k.len,
            id: k.id,
        },
    };
    let reqs = [
        proto::Request::RelayRead {
            remote: remote.clone(),
            offset: 0,
        },
        proto::Request::Source {
            loc: remote.loc,
            me: "attacker:1".into(),
            failed: vec![],
        },
        proto::Request::Fetch(remote.clone()),
    ];
    for req in reqs {
        let mut s = std::net::TcpStream::connect(&owner.addr).unwrap();
        // A hello without a proof of the secret (it is challenged), then the
        // request.
        let hello = proto::Request::Hello {
            version: proto::VERSION,
            transport: proto::CONTROL_ONLY.into(),
            secret: None,
        };
        proto::write_frame(&mut s, &hello).unwrap();
        let r: proto::Response = proto::read_frame(&mut s).unwrap().unwrap();
        assert!(matches!(r, proto::Response::Challenge { .. }), "{r:?}");
        proto::write_frame(&mut s, &req).unwrap();
        let r: proto::Response = proto::read_frame(&mut s).unwrap().unwrap();
        assert!(
            matches!(r, proto::Response::Unauthorized(_)),
            "{req:?}: {r:?}"
        );
    }
    assert_eq!(owner.stats().relay_bytes_out, 0);
}

/// A producer pushes an object to the node servers before anyone reads it:
/// they fetch it at once (chained: the owner sends it once), and readers
/// then find it on their node.
#[test]
fn a_broadcast_puts_replicas_on_the_nodes_first() {
    let owner = Server::start(&[]);
    let nodes: Vec<Server> = (0..3).map(|_| Server::node(&[])).collect();
    let data = pattern(20 << 20, 5);
    let producer = client(&owner.addr, None);
    let key = producer.put(Payload::from(data.clone())).unwrap();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let answers = producer.broadcast(&key, &addrs).unwrap();
    assert_eq!(answers.len(), 3);
    assert!(answers.iter().all(|a| matches!(a, Ok(true))), "{answers:?}");
    let o = owner.stats();
    assert_eq!(o.relay_bytes_out, data.len() as u64, "sent once: {o:?}");
    for n in &nodes {
        let got = client(&owner.addr, Some(&n.addr)).get(&key).unwrap();
        assert_eq!(got.as_deref(), Some(&data[..]));
        let s = n.stats();
        assert_eq!((s.relay_fetches, s.replica_hits), (1, 1), "{s:?}");
    }
    // A server that is not there: its answer is the error, the others' true.
    let gone = Server::node(&[]);
    let addr = gone.addr.clone();
    drop(gone);
    let answers = producer.broadcast(&key, &[addrs[0].clone(), addr]).unwrap();
    assert!(matches!(answers[0], Ok(true)), "{answers:?}");
    assert!(answers[1].is_err(), "{answers:?}");
}
