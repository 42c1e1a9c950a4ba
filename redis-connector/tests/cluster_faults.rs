//! Faults against Redis Clusters (3 masters + 3 replicas) started by the
//! tests: no cluster, a node that never answers, a dead seed, slots
//! resharded while 8 threads put/get/evict, a master killed (failover to
//! its replica), a 1 GiB object in chunks, damaged chunked objects, a batch
//! with one master stopped.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{NODE_TIMEOUT_MS, RedisCluster};
use common::free_port;
use proxy_core::{Connector, Deferrable, Error, Key, Payload};
use redis_connector::{RedisClusterConnector, RedisKey};

/// Bytes of object `seed` of length `len` (cheap to make and check).
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Store objects `0..n` with `len(i)` bytes each; their keys and bytes.
fn store_objects(
    c: &RedisClusterConnector,
    n: u64,
    len: impl Fn(u64) -> usize,
) -> Vec<(Key, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let d = data(i, len(i));
            (c.put(Payload::from(d.clone())).unwrap(), d)
        })
        .collect()
}

/// One object put and read back.
fn round_trip(c: &RedisClusterConnector, seed: u64, len: usize) {
    let k = c.put(Payload::from(data(seed, len))).unwrap();
    assert_eq!(c.get(&k).unwrap().unwrap(), data(seed, len));
}

/// No node listens: every operation fails fast with a temporary error
/// naming the seeds.
#[test]
fn cluster_not_running() {
    let seeds = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    let c = RedisClusterConnector::builder(seeds.clone())
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let key: Key = RedisKey::new_v4().into();
    let t = Instant::now();
    let errs = [
        c.put(Payload::from(vec![1u8; 3])).unwrap_err(),
        c.get(&key).unwrap_err(),
        c.exists(&key).unwrap_err(),
        c.evict(&key).unwrap_err(),
    ];
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    for e in &errs {
        assert!(e.is_temporary(), "{e}");
        for s in &seeds {
            assert!(e.to_string().contains(s.as_str()), "{e}");
        }
    }
    eprintln!("not running: {}", errs[1]);
}

/// A node that accepts connections but never answers: the operation
/// timeout fires (no hang), as `Error::Timeout`.
#[test]
fn node_never_answers() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let c = RedisClusterConnector::builder([format!("127.0.0.1:{port}")])
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let t = Instant::now();
    let e = c.get(&RedisKey::new_v4().into()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    drop(l);
}

/// A dead seed first in the list: the next one answers.
#[test]
fn dead_seed_is_skipped() {
    let cluster = RedisCluster::start();
    let mut seeds = vec![format!("127.0.0.1:{}", free_port())];
    seeds.extend(cluster.seeds().into_iter().take(1));
    let c = RedisClusterConnector::new(seeds).unwrap();
    c.ping().unwrap();
    assert_eq!(c.masters().unwrap().len(), 3);
    round_trip(&c, 1, 1000);
}

/// A chunked object: evict removes its chunks; a missing chunk or a value
/// of another type is a clear permanent error, never other bytes.
#[test]
fn chunked_objects_damaged_and_evicted() {
    let cluster = RedisCluster::start();
    let prefix = format!("dmg-{}:", uuid::Uuid::new_v4());
    let c = cluster
        .builder()
        .prefix(prefix.clone())
        .chunk_size(64 << 10)
        .build()
        .unwrap();
    let d = data(7, 300_000);
    let k = c.put(Payload::from(d.clone())).unwrap();
    let uuid = RedisKey::from_key(&k).unwrap().redis_key();
    assert_eq!(
        cluster.keys(&format!("{prefix}*")).len(),
        1 + 5,
        "manifest + 5 chunks"
    );
    let got = c
        .get_batch(&[k.clone(), RedisKey::new_v4().into(), k.clone()])
        .unwrap();
    assert_eq!(got[0].as_deref(), Some(&d[..]));
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_deref(), Some(&d[..]));
    c.evict(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    assert!(
        cluster.keys(&format!("{prefix}*")).is_empty(),
        "chunks left"
    );

    // A chunk deleted behind the connector's back.
    let k = c.put(Payload::from(d.clone())).unwrap();
    let uuid2 = RedisKey::from_key(&k).unwrap().redis_key();
    let chunk = cluster
        .keys(&format!("{prefix}{{{uuid2}}}:*:2"))
        .pop()
        .expect("chunk 2");
    let port = cluster
        .masters()
        .iter()
        .map(|m| m.1)
        .find(|&p| cluster.cli(p, &["exists", &chunk]).trim() == "1");
    cluster.cli(port.expect("the chunk's master"), &["del", &chunk]);
    let e = c.get(&k).unwrap_err();
    assert!(
        !e.is_temporary() && e.to_string().contains("chunks missing"),
        "{e}"
    );

    // A list under an object's key.
    let lk = RedisKey::new_v4();
    let name = format!("{prefix}{{{}}}", lk.redis_key());
    let port = cluster
        .masters()
        .iter()
        .map(|m| m.1)
        .find(|&p| cluster.cli(p, &["rpush", &name, "a"]).trim() == "1")
        .expect("the list's master");
    let _ = (port, uuid);
    let e = c.get(&lk.into()).unwrap_err();
    assert!(
        !e.is_temporary() && e.to_string().contains("WRONGTYPE"),
        "{e}"
    );
}

/// `redis-cli --cluster reshard` moves 4000 slots from one master to
/// another and back while 8 threads put, get (single and batched), replace
/// (`set`) and evict objects of 100 B to 300 KB (chunks of 64 KiB above that): no operation
/// fails and no byte is wrong; objects stored before are all read back.
#[test]
fn reshard_under_load() {
    let cluster = RedisCluster::start();
    let c = cluster.builder().chunk_size(64 << 10).build().unwrap();
    let before = store_objects(&c, 300, |i| 100 + (i as usize * 997) % 200_000);
    let masters = cluster.masters();
    let (from, to) = (&masters[0], &masters[1]);
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let failures: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let reshard = |from: &str, to: &str| {
        let args = [
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", masters[2].1),
            "--cluster-from",
            from,
            "--cluster-to",
            to,
            "--cluster-slots",
            "4000",
            "--cluster-yes",
        ]
        .map(String::from);
        // A reshard refuses to start ("Nodes don't agree about
        // configuration") until every node has heard of the last one's slot
        // moves by gossip: wait for `--cluster check` to be clean first.
        let check =
            ["--cluster", "check", &format!("127.0.0.1:{}", masters[2].1)].map(String::from);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = cluster.cli_out(&check);
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && !text.contains("[ERR]") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the cluster did not agree within 60 s: {text}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = cluster.cli_out(&args);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "reshard {from} -> {to}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let t = Instant::now();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (c, stop, ops, failures) = (&c, &stop, &ops, &failures);
            s.spawn(move || {
                let mut i = 0u64;
                let fail = |what: String| failures.lock().unwrap().push(what);
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let seed = t << 32 | i;
                    let d = data(seed, 100 + (seed as usize * 7919) % 300_000);
                    let k = match c.put(Payload::from(d.clone())) {
                        Ok(k) => k,
                        Err(e) => {
                            fail(format!("put: {e}"));
                            continue;
                        }
                    };
                    match c.get(&k) {
                        Ok(Some(b)) if b == d => {}
                        Ok(Some(_)) => fail("get: wrong bytes".into()),
                        Ok(None) => fail("get: lost".into()),
                        Err(e) => fail(format!("get: {e}")),
                    }
                    match c.get_batch(&[k.clone(), k.clone()]) {
                        Ok(v) if v.iter().all(|b| b.as_deref() == Some(&d[..])) => {}
                        Ok(_) => fail("get_batch: wrong or lost".into()),
                        Err(e) => fail(format!("get_batch: {e}")),
                    }
                    // Replace it (deferrable `set`: chunks, then a manifest
                    // renamed over the name) and read the new bytes.
                    let d2 = data(!seed, 100 + (seed as usize * 104_729) % 300_000);
                    match c
                        .set(&k, Payload::from(d2.clone()))
                        .and_then(|()| c.get(&k))
                    {
                        Ok(Some(b)) if b == d2 => {}
                        Ok(_) => fail("get after set: wrong or lost".into()),
                        Err(e) => fail(format!("set: {e}")),
                    }
                    if let Err(e) = c.evict(&k) {
                        fail(format!("evict: {e}"));
                    }
                    match c.get(&k) {
                        Ok(None) => {}
                        Ok(Some(_)) => fail("get after evict: still there".into()),
                        Err(e) => fail(format!("get after evict: {e}")),
                    }
                    ops.fetch_add(7, Ordering::Relaxed);
                }
            });
        }
        s.spawn(|| {
            // The workers stop whatever happens here (a failed reshard is a
            // failure of the test, never a hang).
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = StopOnDrop(&stop);
            if let Err(e) = reshard(&from.0, &to.0).and_then(|()| reshard(&to.0, &from.0)) {
                failures.lock().unwrap().push(e);
            }
        });
    });
    let failures = failures.into_inner().unwrap();
    let n = ops.load(Ordering::Relaxed);
    eprintln!(
        "reshard (8000 slots moved) took {:?}; {n} operations, {} failed",
        t.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(n > 1000, "only {n} operations ran during the reshard");
    for (k, d) in &before {
        assert_eq!(
            c.get(k).unwrap().as_deref(),
            Some(&d[..]),
            "object stored before the reshard"
        );
    }
}

/// A master crashed (`DEBUG SEGFAULT`): its replica is promoted after
/// the node timeout and every object is read back, within the connector's
/// failover timeout; objects of the other masters stay readable meanwhile.
#[test]
fn master_killed_failover() {
    let mut cluster = RedisCluster::start();
    let failover = Duration::from_secs(20);
    let c = cluster
        .builder()
        .failover_timeout(failover)
        .build()
        .unwrap();
    let objs = store_objects(&c, 300, |i| 1000 + i as usize);
    // Let the replicas catch up (replication is asynchronous: a write the
    // master acknowledged but had not yet sent to its replica is lost with it).
    cluster.wait_replicated();
    let victim = cluster.masters()[0].1;
    let before = c.masters().unwrap();
    eprintln!(
        "masters {:?}, connector's {before:?}, killing {victim}",
        cluster.masters()
    );
    let crash = ["-p", &victim.to_string(), "debug", "segfault"].map(String::from);
    let t = Instant::now();
    let _ = cluster.cli_out(&crash); // the connection dies with the server
    let gone = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", victim)).is_ok() {
        assert!(
            Instant::now() < gone,
            "DEBUG SEGFAULT did not stop {victim}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.server_mut(victim).kill(); // reap it
    for (i, (k, d)) in objs.iter().enumerate() {
        let got = c.get(k).unwrap();
        assert!(
            got.as_deref() == Some(&d[..]),
            "object {i}: {:?} bytes after {:?}",
            got.map(|b| b.len()),
            t.elapsed()
        );
    }
    let took = t.elapsed();
    eprintln!("all 300 objects read back {took:?} after the master was killed");
    assert!(took < failover, "{took:?}");
    assert!(
        took >= Duration::from_millis(NODE_TIMEOUT_MS / 2),
        "no failover seen: {took:?}"
    );
    let after = c.masters().unwrap();
    assert!(!after.contains(&format!("127.0.0.1:{victim}")), "{after:?}");
    assert_ne!(before, after);
    // Writes go to the new master too.
    round_trip(&c, 9, 500);
}

/// A 1 GiB object goes in 16 chunks of 64 MiB and comes back whole.
#[test]
fn one_gib_object() {
    let cluster = RedisCluster::start();
    let prefix = format!("big-{}:", uuid::Uuid::new_v4());
    let c = cluster.builder().prefix(prefix.clone()).build().unwrap();
    let mut d = vec![0u8; 1 << 30];
    for (i, w) in d.chunks_mut(8).enumerate() {
        w.copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    }
    let d = proxy_core::Bytes::from(d);
    let t = Instant::now();
    let k = c.put(Payload::from(d.clone())).unwrap();
    let put = t.elapsed();
    assert_eq!(cluster.keys(&format!("{prefix}*")).len(), 17);
    let t = Instant::now();
    let got = c.get(&k).unwrap().unwrap();
    let get = t.elapsed();
    assert!(got == d, "1 GiB object read back with other bytes");
    drop(got);
    eprintln!("1 GiB: put {put:?}, get {get:?}");
    c.evict(&k).unwrap();
    assert!(cluster.keys(&format!("{prefix}*")).is_empty());
}

/// A batch over keys on every master reaches every master before any reply
/// is read: with the master of the batch's first key stopped (SIGSTOP, for
/// less than the cluster's node timeout, so no failover starts), the other
/// two masters serve their share at once; when it runs again the batch
/// returns every object. (Run one node after the other, the other masters
/// would see nothing until the stopped one answers.)
#[test]
fn batch_reaches_every_master_before_any_reply() {
    let cluster = RedisCluster::start();
    let c = cluster.builder().build().unwrap();
    let masters: Vec<u16> = cluster.masters().iter().map(|&(_, p)| p).collect();
    assert_eq!(masters.len(), 3);
    let dbsize = |p: u16| -> u64 { cluster.cli(p, &["dbsize"]).trim().parse().unwrap() };
    // One object on each master, found by the master whose key count grew.
    let mut on: Vec<(u16, Key, Vec<u8>)> = Vec::new();
    for seed in 0..300 {
        let before: Vec<u64> = masters.iter().map(|&p| dbsize(p)).collect();
        let d = data(seed, 1000);
        let k = c.put(Payload::from(d.clone())).unwrap();
        let grew: Vec<u16> = masters
            .iter()
            .zip(before)
            .filter(|&(&p, n)| dbsize(p) > n)
            .map(|(&p, _)| p)
            .collect();
        assert_eq!(grew.len(), 1, "one put, one master: {grew:?}");
        if on.iter().all(|(p, _, _)| *p != grew[0]) {
            on.push((grew[0], k, d));
        }
        if on.len() == 3 {
            break;
        }
    }
    assert_eq!(on.len(), 3, "300 objects and not one on every master");
    let stalled = on[0].0;
    let others: Vec<u16> = on[1..].iter().map(|(p, _, _)| *p).collect();
    for &p in &others {
        cluster.cli(p, &["config", "resetstat"]);
    }
    let gets = |p: u16| -> u64 {
        cluster
            .cli(p, &["info", "commandstats"])
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
            .and_then(|v| v.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    let stalled = cluster.servers.iter().find(|s| s.port == stalled).unwrap();
    let keys: Vec<Key> = on.iter().map(|(_, k, _)| k.clone()).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let stop = stalled.freeze();
        let batch = s.spawn(|| {
            let got = c.get_batch(&keys);
            done.store(true, Ordering::SeqCst);
            got
        });
        let deadline = Instant::now() + Duration::from_millis(NODE_TIMEOUT_MS / 2);
        while others.iter().any(|&p| gets(p) == 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let served: Vec<u64> = others.iter().map(|&p| gets(p)).collect();
        let waiting = !done.load(Ordering::SeqCst);
        drop(stop);
        let got = batch.join().unwrap().unwrap();
        assert!(
            waiting,
            "the batch ended while the master of its first key was stopped"
        );
        assert_eq!(
            served,
            [1, 1],
            "GETs the other masters served while the master of the batch's first key was stopped"
        );
        for ((_, _, d), b) in on.iter().zip(got) {
            assert_eq!(b.as_deref(), Some(&d[..]));
        }
    });
}
