//! Several instances and processes on one namespace.

use bytes::Bytes;

use crate::conformance::Ctx;
use crate::conformance::data::{checksum, pattern};
use crate::connector::Payload;
use crate::error::Result;
use crate::key::Key;

/// A proxy made here is resolved in another OS process (this test binary run
/// again as a child). With `cross_process`, the child gets the same bytes;
/// without it, the child reports a clear error.
pub fn cross_process_resolve(ctx: &Ctx) {
    let store = ctx.store("xproc");
    let data = pattern(1 << 20, 6);
    let p = store.proxy(data.clone()).unwrap();
    let wire = p.to_bytes().unwrap();
    eprintln!(
        "serialized proxy ({} connector): {} bytes",
        store.connector().kind(),
        wire.len()
    );
    let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
    let (line, ok) = ctx.child(&format!("resolve:{hex}"));
    if ctx.caps.cross_process {
        assert_eq!(
            line,
            format!("OK len={} sum={}", data.len(), checksum(&data))
        );
        assert!(ok, "child failed");
    } else {
        assert!(line.starts_with("ERR "), "{line}");
        assert!(line.len() > 10, "error message is empty");
    }
    store.evict(p.key()).unwrap();
}

/// Two instances on one namespace (the original and one rebuilt from its
/// `config()`, as another process builds it), and, with `cross_process`, two
/// child processes one after the other (a per-process counter starts again in
/// each): interleaved puts (and deferrable keys minted by one instance or
/// process and set by it or another) mint distinct keys and all read back
/// intact through both instances; once evicted through either instance, no
/// instance finds them (`get`, `get_batch`, `exists`: no cache outlives an
/// evict on the namespace).
pub fn shared_namespace(ctx: &Ctx) {
    let c = &ctx.connector;
    let other = ctx.rebuild();
    // (key, bytes, who minted the key)
    let mut objects: Vec<(Key, Bytes, String)> = Vec::new();
    let mut n = 0usize;
    let mut next = || {
        n += 1;
        pattern(200 + n * 61, n as u8)
    };
    let deferrable = c.as_deferrable().is_some();
    for round in 0..4 {
        for (who, conn) in [("original", c), ("rebuilt", &other)] {
            let d = next();
            let k = conn.put(Payload::from(d.clone())).unwrap();
            objects.push((k, d, format!("put through the {who} instance")));
            let batch = [next(), next()];
            let keys = conn
                .put_batch(batch.iter().cloned().map(Payload::from).collect())
                .unwrap();
            objects.extend(
                keys.into_iter()
                    .zip(batch)
                    .map(|(k, d)| (k, d, format!("put_batch through the {who} instance"))),
            );
        }
        if (round == 1 || round == 2) && ctx.caps.cross_process {
            let seed = 200 + 10 * round as u8;
            let sets: &[(usize, u8)] = if deferrable {
                &[(3101, 0), (3102, 1)]
            } else {
                &[]
            };
            let sets: Vec<(usize, u8)> = sets.iter().map(|&(l, s)| (l, seed + 5 + s)).collect();
            let puts = [(3001, seed), (3002, seed + 1), (3003, seed + 2)];
            let theirs = ctx.child_store(&puts, &sets);
            objects.extend(theirs.into_iter().enumerate().map(|(i, (k, d))| {
                let how = if i < puts.len() { "put" } else { "new_key" };
                (k, d, format!("{how} in child process {round}"))
            }));
        }
    }
    if let (Some(d1), Some(d2)) = (c.as_deferrable(), other.as_deferrable()) {
        let (k1, k2) = (d1.new_key().unwrap(), d2.new_key().unwrap());
        let (v1, v2) = (next(), next());
        d2.set(&k1, Payload::from(v1.clone())).unwrap();
        d1.set(&k2, Payload::from(v2.clone())).unwrap();
        objects.push((k1, v1, "new_key of the original instance".into()));
        objects.push((k2, v2, "new_key of the rebuilt instance".into()));
    }
    for (i, (k, _, who)) in objects.iter().enumerate() {
        if let Some((_, _, first)) = objects[..i].iter().find(|o| o.0 == *k) {
            panic!(
                "instances on one namespace minted the same key twice: {first}, then {who} \
                 ({} keys minted)",
                objects.len()
            );
        }
    }
    let all: Vec<Key> = objects.iter().map(|(k, ..)| k.clone()).collect();
    for (who, conn) in [("original", c), ("rebuilt", &other)] {
        for (i, (k, d, _)) in objects.iter().enumerate() {
            let got = conn.get(k).unwrap();
            assert!(
                got.as_ref() == Some(d),
                "object {i} read through the {who} instance: {} (another instance on the \
                 namespace overwrote or lost it)",
                match &got {
                    None => "missing".to_string(),
                    Some(g) => format!("{} bytes, not the {} stored", g.len(), d.len()),
                }
            );
        }
        let got = conn.get_batch(&all).unwrap();
        for (i, (g, (_, d, _))) in got.iter().zip(&objects).enumerate() {
            assert_eq!(
                g.as_ref(),
                Some(d),
                "get_batch through the {who}: object {i}"
            );
        }
    }
    for (i, (k, ..)) in objects.iter().enumerate() {
        if i % 2 == 0 { c } else { &other }.evict(k).unwrap();
    }
    for (who, conn) in [("original", c), ("rebuilt", &other)] {
        for (i, (k, ..)) in objects.iter().enumerate() {
            let by = if i % 2 == 0 { "original" } else { "rebuilt" };
            let got = conn.get(k).unwrap();
            assert!(
                got.is_none(),
                "object {i}, evicted through the {by} instance, still read through the {who} \
                 instance ({} bytes): a cache outlived an evict on the namespace",
                got.map_or(0, |g| g.len())
            );
            assert!(
                !conn.exists(k).unwrap(),
                "evicted, exists through the {who}"
            );
        }
        assert!(
            conn.get_batch(&all).unwrap().iter().all(Option::is_none),
            "get_batch through the {who} instance found evicted objects: a cache outlived \
             an evict on the namespace"
        );
    }
}

/// Three instances on one namespace (the original and two rebuilt) put at
/// the same moment, round after round (a barrier before each put): every put
/// succeeds and every object reads back intact (no two writers share a
/// temporary name or slot).
pub fn concurrent_instances(ctx: &Ctx) {
    const ROUNDS: usize = 24;
    const SIZE: usize = 512 << 10;
    let instances = [ctx.connector.clone(), ctx.rebuild(), ctx.rebuild()];
    let barrier = std::sync::Barrier::new(instances.len());
    let seed = |i: usize, round: usize| (i * ROUNDS + round) as u8;
    let keys: Vec<Vec<Key>> = std::thread::scope(|s| {
        let threads: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(i, conn)| {
                let barrier = &barrier;
                // Every round reaches the barrier, whatever failed before.
                s.spawn(move || -> Vec<Result<Key>> {
                    (0..ROUNDS)
                        .map(|round| {
                            let data = pattern(SIZE + i, seed(i, round));
                            barrier.wait();
                            conn.put(Payload::from(data))
                        })
                        .collect()
                })
            })
            .collect();
        let results: Vec<Vec<Result<Key>>> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        let failed: Vec<String> = results
            .iter()
            .enumerate()
            .flat_map(|(i, rs)| {
                rs.iter().enumerate().filter_map(move |(round, r)| {
                    r.as_ref()
                        .err()
                        .map(|e| format!("instance {i}, round {round}: {e}"))
                })
            })
            .collect();
        if !failed.is_empty() {
            // Evict what was stored before failing.
            for k in results.iter().flatten().filter_map(|r| r.as_ref().ok()) {
                let _ = ctx.connector.evict(k);
            }
            panic!(
                "{} puts failed while the other instances put too: {failed:?}",
                failed.len()
            );
        }
        results
            .into_iter()
            .map(|rs| rs.into_iter().map(|r| r.unwrap()).collect())
            .collect()
    });
    let c = &ctx.connector;
    for (i, ks) in keys.iter().enumerate() {
        for (round, k) in ks.iter().enumerate() {
            let got = c.get(k).unwrap();
            assert!(
                got.as_ref() == Some(&pattern(SIZE + i, seed(i, round))),
                "object put through instance {i} in round {round}, while the other instances \
                 put too: {}",
                match &got {
                    None => "missing".to_string(),
                    Some(g) => format!("{} bytes, other than those stored", g.len()),
                }
            );
        }
    }
    for k in keys.iter().flatten() {
        c.evict(k).unwrap();
    }
}

/// With `outlives_process`: an object put through a rebuilt instance that is
/// then dropped, and objects put by a child process that then exits (with
/// `cross_process`), read back intact. Without it, nothing is promised.
pub fn outlives_process(ctx: &Ctx) {
    if !ctx.caps.outlives_process {
        return;
    }
    let c = &ctx.connector;
    let other = ctx.rebuild();
    let d = pattern(4321, 61);
    let mut objects = vec![(other.put(Payload::from(d.clone())).unwrap(), d)];
    if let Some(def) = other.as_deferrable() {
        let k = def.new_key().unwrap();
        let v = pattern(1234, 62);
        def.set(&k, Payload::from(v.clone())).unwrap();
        objects.push((k, v));
    }
    drop(other);
    for (k, d) in &objects {
        assert_eq!(
            c.get(k).unwrap().as_ref(),
            Some(d),
            "object gone once the instance that stored it was dropped"
        );
    }
    if ctx.caps.cross_process {
        let theirs = ctx.child_put(&[(5000, 71), (1 << 20, 72)]);
        for (k, d) in &theirs {
            let got = c.get(k).unwrap();
            assert!(
                got.as_ref() == Some(d),
                "object put by a child process that has exited: {:?} bytes, {} stored",
                got.map(|g| g.len()),
                d.len()
            );
        }
        objects.extend(theirs);
    }
    for (k, _) in &objects {
        c.evict(k).unwrap();
    }
}
