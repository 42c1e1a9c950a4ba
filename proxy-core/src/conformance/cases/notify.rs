//! `wait_for`: its timeout, and wakes by writes of any instance.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::conformance::Ctx;
use crate::conformance::data::pattern;
use crate::connector::Payload;

/// `wait_for` of a key with no object (an evicted one) returns `Ok(false)`
/// once its timeout has passed: not before, and not long after (no answer 20 s
/// past the timeout fails the case); of a stored key, `Ok(true)` at once
/// (well within a long timeout).
pub fn wait_for_timeout(ctx: &Ctx) {
    const TIMEOUT: Duration = Duration::from_millis(300);
    const LATE: Duration = Duration::from_secs(20);
    let c = &ctx.connector;
    let data = pattern(500, 81);
    let k = c.put(Payload::from(data)).unwrap();
    let t0 = Instant::now();
    assert!(
        c.wait_for(&k, Duration::from_secs(60)).unwrap(),
        "wait_for of a stored key"
    );
    assert!(
        t0.elapsed() < LATE,
        "wait_for of a stored key took {:?}",
        t0.elapsed()
    );
    c.evict(&k).unwrap();
    // On its own thread: a wait_for that ignores its timeout never returns.
    let (tx, rx) = mpsc::channel();
    let waiter = c.clone();
    let key = k.clone();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = waiter.wait_for(&key, TIMEOUT);
        let _ = tx.send((r, t0.elapsed()));
    });
    match rx.recv_timeout(TIMEOUT + LATE) {
        Err(_) => panic!(
            "wait_for with a timeout of {TIMEOUT:?} on a key with no object did not return \
             within {:?}: it ignores its timeout",
            TIMEOUT + LATE
        ),
        Ok((r, took)) => {
            assert!(
                !r.unwrap(),
                "wait_for of an evicted key returned true (after {took:?})"
            );
            // A server may round its own deadline to milliseconds.
            assert!(
                took + Duration::from_millis(20) >= TIMEOUT,
                "wait_for returned false after {took:?}, before its timeout of {TIMEOUT:?}"
            );
            eprintln!("wait_for of an evicted key: false after {took:?} (timeout {TIMEOUT:?})");
        }
    }
}

/// Deferrable: `wait_for` (with a long timeout) returns `Ok(true)` soon after
/// the key is set, by the waiting instance and by another instance on the
/// namespace (a notifying connector must be woken by writes it did not make;
/// a polling one wakes within its poll interval).
pub fn wait_for_wakes(ctx: &Ctx) {
    const TIMEOUT: Duration = Duration::from_secs(10);
    const PROMPT: Duration = Duration::from_secs(3);
    let c = &ctx.connector;
    let Some(_) = c.as_deferrable() else {
        return;
    };
    let other = ctx.rebuild();
    for (who, setter) in [("the waiting", c), ("another", &other)] {
        let d = setter
            .as_deferrable()
            .expect("rebuilt instance is deferrable");
        let k = ctx.connector.as_deferrable().unwrap().new_key().unwrap();
        let data = pattern(700, 82);
        let (tx, rx) = mpsc::channel();
        let waiter = c.clone();
        let key = k.clone();
        std::thread::spawn(move || {
            let r = waiter.wait_for(&key, TIMEOUT);
            let _ = tx.send((r, Instant::now()));
        });
        // Let the waiter start waiting.
        std::thread::sleep(Duration::from_millis(200));
        d.set(&k, Payload::from(data.clone())).unwrap();
        let set_at = Instant::now();
        let (r, woke) = rx
            .recv_timeout(TIMEOUT + Duration::from_secs(20))
            .expect("wait_for returned at all");
        assert!(
            r.unwrap(),
            "wait_for returned false although {who} instance set the key"
        );
        let late = woke.saturating_duration_since(set_at);
        assert!(
            late < PROMPT,
            "wait_for woke {late:?} after {who} instance set the key (notify declared: {}): \
             not woken by that write",
            ctx.caps.notify
        );
        eprintln!("set by {who} instance: wait_for woke {late:?} later");
        assert_eq!(c.get(&k).unwrap(), Some(data));
        c.evict(&k).unwrap();
    }
}
