//! An evict racing with gets of an object over many chunks: every get
//! returns the whole object or `None`, never a mix of its chunks and
//! whatever the receive buffer held before (the per-chunk stamps, see the
//! crate README's "Data layout").

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daos_connector::DaosConnector;
use proxy_core::conformance::pattern;
use proxy_core::{Connector, Payload};

#[test]
#[cfg_attr(
    not(has_daos),
    ignore = "needs DAOS: no DAOS headers at build time (set DAOS_DIR) and a running pool + container (PROXYSTORE_DAOS_POOL, PROXYSTORE_DAOS_CONT)"
)]
fn gets_racing_an_evict_see_the_whole_object_or_none() {
    // Small chunks: an 8 MB object is 123 chunks, read by as many fetches.
    let mut o = common::options("race");
    o.chunk_size = 64 << 10;
    let c = Arc::new(DaosConnector::new(o).unwrap());
    const LEN: usize = 8_000_000;
    let (mut whole, mut none, mut torn) = (0usize, 0usize, Vec::new());
    // How long one get takes here: the evicts land within 0..3 gets' time.
    let probe = c.put(Payload::from(pattern(LEN, 99))).unwrap();
    let t = Instant::now();
    assert!(c.get(&probe).unwrap().is_some());
    let get_time = t.elapsed();
    c.evict(&probe).unwrap();
    let t0 = Instant::now();
    for round in 0..40u8 {
        // Each round's object differs, so a buffer of the receive pool
        // holds another object's bytes when it is reused.
        let data = pattern(LEN, round);
        let key = c.put(Payload::from(data.clone())).unwrap();
        let gone = Arc::new(AtomicBool::new(false));
        let reader = {
            let (c, key, gone, data) = (c.clone(), key.clone(), gone.clone(), data.clone());
            std::thread::spawn(move || {
                let (mut w, mut n, mut t) = (0, 0, Vec::new());
                loop {
                    let evicted_before = gone.load(Ordering::SeqCst);
                    match c.get(&key).unwrap() {
                        Some(b) if b[..] == data[..] => w += 1,
                        Some(b) => {
                            let first_bad = b.iter().zip(data.iter()).position(|(x, y)| x != y);
                            t.push(format!("round {round}: bytes differ from {first_bad:?}"));
                        }
                        None => {
                            n += 1;
                            if evicted_before {
                                break;
                            }
                        }
                    }
                }
                (w, n, t)
            })
        };
        std::thread::sleep(get_time * u32::from(round % 8) * 3 / 8 + Duration::from_micros(200));
        c.evict(&key).unwrap();
        gone.store(true, Ordering::SeqCst);
        let (w, n, t) = reader.join().unwrap();
        whole += w;
        none += n;
        torn.extend(t);
    }
    assert!(torn.is_empty(), "torn reads: {torn:#?}");
    // The race was run: gets before the evict saw the object, gets after it did not.
    assert!(whole > 0 && none >= 40, "whole {whole}, none {none}");
    eprintln!(
        "{whole} whole, {none} None, 0 torn in {:?} (one get: {get_time:?})",
        t0.elapsed()
    );
}
