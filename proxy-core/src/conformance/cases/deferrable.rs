//! `Deferrable::set`: replacing objects, atomic to readers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conformance::Ctx;
use crate::conformance::data::pattern;
use crate::connector::Payload;

/// Deferrable: `set` replaces the object under a key minted by `put` (as
/// `RefMutProxy::set` and `RemoteMut::set` of proxy-patterns do) and under a
/// key already `set`, through the instance that minted it and through another
/// one; every instance then reads the new object whole.
pub fn set_replaces(ctx: &Ctx) {
    let c = &ctx.connector;
    let Some(d) = c.as_deferrable() else {
        return;
    };
    let other = ctx.rebuild();
    let od = other
        .as_deferrable()
        .expect("rebuilt instance is deferrable");
    let put_key = c.put(Payload::from(pattern(3000, 91))).unwrap();
    let new_key = d.new_key().unwrap();
    d.set(&new_key, Payload::from(pattern(3000, 92))).unwrap();
    for (what, k) in [("put", &put_key), ("new_key", &new_key)] {
        for (i, (who, setter)) in [("minting", d), ("another", od)].into_iter().enumerate() {
            let v = pattern(5000 + 1000 * i, 93 + i as u8);
            setter.set(k, Payload::from(v.clone())).unwrap_or_else(|e| {
                panic!("set through the {who} instance of a key minted by {what}: {e}")
            });
            for (reader, conn) in [("original", c), ("rebuilt", &other)] {
                let got = conn.get(k).unwrap();
                assert!(
                    got.as_ref() == Some(&v),
                    "after set through the {who} instance of a key minted by {what}, get \
                     through the {reader} instance: {:?} bytes, not the {} set",
                    got.map(|g| g.len()),
                    v.len()
                );
            }
            assert_eq!(
                c.get_batch(std::slice::from_ref(k)).unwrap(),
                vec![Some(v)],
                "get_batch after set"
            );
        }
    }
    c.evict(&put_key).unwrap();
    c.evict(&new_key).unwrap();
}

/// `Deferrable::set` of 32 MiB while two threads poll `exists` and `get` on
/// the key: they see nothing, then the whole object, never part of it; once
/// `exists` is true, `get` returns it. At least two rounds, and more (up to 40
/// rounds or 3 s) until at least 8 polls in all fell wholly inside the last
/// quarter of a `set` (began after three quarters of its time, ended before
/// it returned: a setter held up before it started writing is writing by
/// then): a reader that never ran during a `set` proves nothing. Connectors
/// whose `set` is too quick to be caught inside end at the bound.
pub fn deferrable_set_atomic(ctx: &Ctx) {
    const SIZE: usize = 32 << 20;
    const PART: usize = 1 << 20;
    const INSIDE: usize = 8;
    const MIN_ROUNDS: usize = 2;
    const MAX_ROUNDS: usize = 40;
    const BUDGET: Duration = Duration::from_secs(3);
    let c = &ctx.connector;
    let Some(d) = c.as_deferrable() else {
        return;
    };
    let data = pattern(SIZE, 13);
    // In 1 MiB parts, as an encoder hands them over.
    let payload = (0..SIZE / PART).fold(Payload::new(), |p, i| {
        p.with(data.slice(i * PART..(i + 1) * PART))
    });
    let started = Instant::now();
    let mut inside = 0usize;
    let mut round = 0usize;
    loop {
        let key = d.new_key().unwrap();
        let stop = AtomicBool::new(false);
        let polls = AtomicUsize::new(0);
        let t0 = Instant::now();
        // When each poll began and ended.
        let (times, set_start, set_end) = std::thread::scope(|s| {
            let pollers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut times = Vec::new();
                        loop {
                            let set_done = stop.load(Ordering::Acquire);
                            let begin = Instant::now();
                            let exists = c.exists(&key).unwrap();
                            let got = c.get(&key).unwrap();
                            times.push((begin, Instant::now()));
                            polls.fetch_add(1, Ordering::AcqRel);
                            match got {
                                None => {
                                    assert!(
                                        !exists,
                                        "exists was true, then get found nothing (round {round})"
                                    );
                                    assert!(!set_done, "set returned, get finds nothing");
                                }
                                Some(b) => {
                                    assert_eq!(
                                        b.len(),
                                        SIZE,
                                        "a reader saw part of an object being set (round {round})"
                                    );
                                    assert!(
                                        b == data,
                                        "a reader saw wrong bytes of an object being set"
                                    );
                                }
                            }
                            if set_done {
                                break times;
                            }
                        }
                    })
                })
                .collect();
            while polls.load(Ordering::Acquire) < 2 && !pollers.iter().any(|p| p.is_finished()) {
                std::thread::yield_now();
            }
            let set_start = Instant::now();
            let set = d.set(&key, payload.clone());
            let set_end = Instant::now();
            stop.store(true, Ordering::Release);
            let mut times = Vec::new();
            for p in pollers {
                match p.join() {
                    Ok(t) => times.extend(t),
                    Err(panic) => std::panic::resume_unwind(panic), // the poller's own message
                }
            }
            set.unwrap();
            (times, set_start, set_end)
        });
        // Polls in the last quarter of the set: a setter that was not
        // scheduled at first has started writing by then.
        let last_quarter = set_end - (set_end - set_start) / 4;
        let during = times
            .iter()
            .filter(|&&(b, e)| b >= last_quarter && e <= set_end)
            .count();
        inside += during;
        eprintln!(
            "round {round}: {} polls, {during} inside the last quarter of the set of {SIZE} \
             bytes ({:?}), in {:?}",
            times.len(),
            set_end - set_start,
            t0.elapsed()
        );
        assert_eq!(c.get(&key).unwrap().map(|b| b.len()), Some(SIZE));
        c.evict(&key).unwrap();
        round += 1;
        if round >= MIN_ROUNDS
            && (inside >= INSIDE || round >= MAX_ROUNDS || started.elapsed() > BUDGET)
        {
            break;
        }
    }
    eprintln!("{round} rounds, {inside} polls inside the last quarter of a set");
}
