//! Lifetimes, ownership and proxy futures: in a process, across OS processes
//! (the `patterns-worker` binary) and against a real redis-server; bad use.

#[path = "../../redis-connector/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use proxy_core::{Error, FileConnector, LocalConnector, Store};
use proxy_patterns::lifetime::{
    ContextLifetime, LeaseLifetime, Lifetime, StaticLifetime, StoreLifetimeExt,
};
use proxy_patterns::ownership::{OwnedProxy, StoreOwnershipExt};
use proxy_patterns::{ProxyFuture, StoreFutureExt};

fn tmpdir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ps-patterns-{tag}-{}", uuid::Uuid::new_v4()))
}

fn file_store(tag: &str) -> (Store, std::path::PathBuf) {
    let dir = tmpdir(tag);
    let store = Store::builder(format!("pat-{tag}"), FileConnector::new(&dir).unwrap())
        .cache_bytes(0)
        .build()
        .unwrap();
    (store, dir)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Run the worker; its `ok ...` answer, or the failure text.
fn worker(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_patterns-worker"))
        .args(args)
        .output()
        .expect("run patterns-worker");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(stdout.strip_prefix("ok ").unwrap_or(&stdout).to_string())
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn threads() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

// ---- lifetimes -------------------------------------------------------------------

#[test]
fn context_lifetime_evicts_on_close_and_refuses_use_after() {
    let store = Store::new("lt-ctx", LocalConnector::new()).unwrap();
    let lt = ContextLifetime::new("ctx");
    let k = store.put_in(&1u64, &lt).unwrap();
    let p = store.proxy_in(vec![2u8; 10], &lt).unwrap();
    let ps = store.proxy_batch_in(vec![3u32, 4], &lt).unwrap();
    let other = store.put(&5u8).unwrap();
    let q = store.proxy_from_key_in::<u8>(other.clone(), &lt).unwrap();
    assert_eq!(lt.len(), 5);
    assert_eq!(*q.resolve().unwrap(), 5);
    let all = [
        k,
        p.key().clone(),
        ps[0].key().clone(),
        ps[1].key().clone(),
        other,
    ];
    for key in &all {
        assert!(store.exists(key).unwrap());
    }
    lt.close().unwrap();
    assert!(lt.done());
    for key in &all {
        assert!(!store.exists(key).unwrap(), "evicted with the lifetime");
    }
    // Bad use: a closed lifetime refuses, and nothing is stored.
    let err = store.put_in(&9u64, &lt).unwrap_err();
    assert!(
        matches!(err, Error::LifetimeClosed { ref name } if name == "ctx"),
        "{err}"
    );
    assert!(matches!(
        store.proxy_in(1u8, &lt),
        Err(Error::LifetimeClosed { .. })
    ));
    assert!(matches!(
        store.proxy_batch_in(vec![1u8], &lt),
        Err(Error::LifetimeClosed { .. })
    ));
    assert!(matches!(
        lt.add_key(&store, store.put(&1u8).unwrap()),
        Err(Error::LifetimeClosed { .. })
    ));
    lt.close().unwrap(); // idempotent
}

#[test]
fn context_lifetime_evicts_when_dropped() {
    let (store, dir) = file_store("ctx-drop");
    let key = {
        let lt = ContextLifetime::new("scope");
        store.put_in(&vec![1u8; 1000], &lt).unwrap()
    };
    assert!(!store.exists(&key).unwrap());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn lease_expires_extends_and_shares_one_timer_thread() {
    let store = Store::new("lt-lease", LocalConnector::new()).unwrap();
    // Warm up: the timer thread exists from the first lease on.
    let _warm = LeaseLifetime::new("warm", Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(20));
    let before = threads();
    let leases: Vec<LeaseLifetime> = (0..200)
        .map(|i| LeaseLifetime::new(format!("l{i}"), Duration::from_secs(60)))
        .collect();
    assert!(
        threads() <= before + 1,
        "200 leases must not start threads ({before} -> {})",
        threads()
    );
    drop(leases);

    let short = LeaseLifetime::new("short", Duration::from_millis(150));
    let k1 = store.put_in(&1u32, &short).unwrap();
    let long = LeaseLifetime::new("extended", Duration::from_millis(150));
    let k2 = store.put_in(&2u32, &long).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    long.extend(Duration::from_millis(400)).unwrap();
    assert!(long.remaining() > Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(300));
    assert!(short.done(), "expired at its deadline");
    assert!(!store.exists(&k1).unwrap());
    assert!(!long.done(), "extended");
    assert!(store.exists(&k2).unwrap());
    let t0 = Instant::now();
    while !long.done() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(long.done());
    assert!(!store.exists(&k2).unwrap());
    assert!(matches!(
        long.extend(Duration::from_secs(1)),
        Err(Error::LifetimeClosed { .. })
    ));
    assert!(matches!(
        store.put_in(&1u8, &long),
        Err(Error::LifetimeClosed { .. })
    ));
}

#[test]
fn static_lifetime_evicts_at_process_exit() {
    let dir = tmpdir("static");
    let name = worker(&["static-lifetime", dir.to_str().unwrap()]).unwrap();
    let c = FileConnector::new(&dir).unwrap();
    use proxy_core::Connector;
    let key = c.parse_key(&name).unwrap();
    assert!(!c.exists(&key).unwrap(), "the child's exit evicted {name}");
    assert!(!dir.join(&name).exists());
    // In this process: objects stay while the process runs.
    let store = Store::new("lt-static", LocalConnector::new()).unwrap();
    let k = store.put_in(&1u8, StaticLifetime::get()).unwrap();
    assert!(store.exists(&k).unwrap());
    std::fs::remove_dir_all(dir).ok();
}

// ---- ownership -------------------------------------------------------------------

#[test]
fn owned_proxy_evicts_on_drop_and_borrows_read_and_update() {
    let store = Store::new("own-local", LocalConnector::new()).unwrap();
    let mut owned = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = owned.key().clone();
    {
        let a = owned.borrow().unwrap();
        let b = owned.borrow().unwrap();
        assert_eq!(a.len() + b.len(), 6);
    }
    {
        let mut m = owned.borrow_mut().unwrap();
        m.set(vec![10]).unwrap();
        assert_eq!(*m, vec![10]);
    }
    assert_eq!(*owned, vec![10]);
    assert_eq!(store.get::<Vec<u64>>(&key).unwrap(), Some(vec![10]));
    let copy = owned.clone_owned().unwrap();
    assert_ne!(copy.key(), &key);
    drop(owned);
    assert!(!store.exists(&key).unwrap(), "dropping the owner evicts");
    assert_eq!(*copy, vec![10], "the clone is independent");
    // A plain proxy becomes owned (its object is then evicted by the owner).
    let p = store.proxy(5u32).unwrap();
    let k = p.key().clone();
    let o = OwnedProxy::from_proxy(p).unwrap();
    assert_eq!(*o, 5);
    drop(o);
    assert!(!store.exists(&k).unwrap());
    // Giving up ownership keeps the object.
    let o = store.owned_proxy(6u32).unwrap();
    let p = o.into_proxy();
    assert!(store.exists(p.key()).unwrap());
}

#[test]
fn serializing_an_owner_moves_ownership_to_another_process() {
    let (store, dir) = file_store("own-move");
    let owned = store.owned_proxy(vec![1u64, 2, 3, 4]).unwrap();
    let key = owned.key().clone();
    // serde: this copy becomes moved and refuses use.
    let wire = postcard::to_allocvec(&owned).unwrap();
    assert!(owned.is_moved());
    let err = owned.resolve().unwrap_err();
    assert!(matches!(err, Error::Ownership { .. }), "{err}");
    assert!(owned.borrow().is_err());
    assert!(postcard::to_allocvec(&owned).is_err(), "moved twice");
    drop(owned);
    assert!(store.exists(&key).unwrap(), "a moved owner does not evict");
    // The other process owns it now: it reads and evicts at its drop.
    assert_eq!(worker(&["own", &hex(&wire)]).unwrap(), "10");
    assert!(!store.exists(&key).unwrap(), "the new owner evicted it");

    // into_bytes moves too (and the compiler forbids using the value after).
    let owned = store.owned_proxy(vec![5u64]).unwrap();
    let key = owned.key().clone();
    let wire = owned.into_bytes().unwrap();
    assert!(store.exists(&key).unwrap());
    let back: OwnedProxy<Vec<u64>> = OwnedProxy::from_bytes(&wire).unwrap();
    assert_eq!(*back, vec![5]);
    drop(back);
    assert!(!store.exists(&key).unwrap());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_mutable_borrow_sent_to_another_process_updates_the_owner() {
    let dir = tmpdir("own-mut");
    // With a cache, to check that the owner forgets stale bytes.
    let store = Store::new("own-mut", FileConnector::new(&dir).unwrap()).unwrap();
    let mut owned = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = owned.key().clone();
    assert_eq!(store.get::<Vec<u64>>(&key).unwrap(), Some(vec![1, 2])); // cached now
    {
        let m = owned.borrow_mut().unwrap();
        let remote = postcard::to_allocvec(&m.remote()).unwrap();
        // The task in the other process reads the old value and replaces it.
        assert_eq!(worker(&["update", &hex(&remote), "42"]).unwrap(), "3");
        // It reported back: the borrow is released here.
    }
    assert_eq!(*owned.resolve().unwrap(), vec![42]);
    assert_eq!(store.get::<Vec<u64>>(&key).unwrap(), Some(vec![42]));
    {
        let r = owned.borrow().unwrap();
        let remote = postcard::to_allocvec(&r.remote()).unwrap();
        // A shared borrow cannot write: its type has no `set`; reading works.
        let back: proxy_patterns::RemoteRef<Vec<u64>> = postcard::from_bytes(&remote).unwrap();
        assert_eq!(back.resolve().unwrap(), &vec![42]);
    }
    drop(owned);
    assert!(!store.exists(&key).unwrap());
    std::fs::remove_dir_all(dir).ok();
}

// ---- futures -----------------------------------------------------------------------

#[test]
fn future_in_process_set_once_and_times_out() {
    let store = Store::new("fut-local", LocalConnector::new()).unwrap();
    assert!(store.connector().capabilities().notify);
    let fut = store.future::<String>().unwrap();
    assert!(!fut.done().unwrap());
    // Never set: a timeout error, not a hang.
    let t0 = Instant::now();
    let err = fut.result(Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(t0.elapsed() >= Duration::from_millis(100) && t0.elapsed() < Duration::from_secs(2));
    let p = fut.proxy(Duration::from_millis(50));
    assert!(matches!(p.resolve(), Err(Error::Timeout { .. })));

    let waiter = {
        let p = fut.proxy(Duration::from_secs(20));
        std::thread::spawn(move || p.into_inner())
    };
    std::thread::sleep(Duration::from_millis(30));
    fut.set_result(&"done".to_string()).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), "done");
    assert!(fut.done().unwrap());
    assert_eq!(fut.result(Duration::ZERO).unwrap(), "done");
    // Set twice: an error, the first result stays.
    let err = fut.set_result(&"again".to_string()).unwrap_err();
    assert!(matches!(err, Error::AlreadySet { .. }), "{err}");
    assert_eq!(fut.result(Duration::ZERO).unwrap(), "done");
}

#[test]
fn futures_need_a_deferrable_connector() {
    let child = |n: &str| {
        let c: proxy_core::DynConnector = std::sync::Arc::new(LocalConnector::new());
        (n.to_string(), proxy_core::Policy::default(), c)
    };
    let multi = proxy_core::MultiConnector::new(vec![child("a"), child("b")]).unwrap();
    let store = Store::new("fut-multi", multi).unwrap();
    assert!(matches!(
        store.future::<u8>(),
        Err(Error::Unsupported { .. })
    ));
}

/// Set in another OS process after 200 ms; the waiter here wakes on the
/// store's notification (inotify / Redis message) well before a 1 s poll would.
fn future_across_processes(store: &Store) {
    let fut = store.future::<Vec<u64>>().unwrap();
    let wire = hex(&fut.to_bytes().unwrap());
    // Taken before the child exists: it sets the result 200 ms after it starts.
    let t0 = Instant::now();
    let child = std::thread::spawn(move || worker(&["set-future", &wire, "100", "200"]));
    let got = fut.result(Duration::from_secs(30)).unwrap();
    let waited = t0.elapsed();
    assert_eq!(got, (0..100).collect::<Vec<u64>>());
    assert_eq!(child.join().unwrap().unwrap(), "set");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    // Set twice from another process: refused there.
    let err = worker(&["set-future", &hex(&fut.to_bytes().unwrap()), "1"]).unwrap_err();
    assert!(err.contains("already has a result"), "{err}");
    // The other direction: a process waits for a result set here.
    let fut2 = store.future::<Vec<u64>>().unwrap();
    let wire2 = hex(&fut2.to_bytes().unwrap());
    let child = std::thread::spawn(move || worker(&["wait-future", &wire2, "30000"]));
    std::thread::sleep(Duration::from_millis(100));
    fut2.set_result(&vec![5, 6]).unwrap();
    assert_eq!(child.join().unwrap().unwrap(), "11");
    // A child waiting for a result nobody sets times out with a clear error.
    let fut3 = store.future::<Vec<u64>>().unwrap();
    let err = worker(&["wait-future", &hex(&fut3.to_bytes().unwrap()), "100"]).unwrap_err();
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn future_across_processes_file_inotify() {
    let (store, dir) = file_store("fut-file");
    assert!(store.connector().capabilities().notify);
    future_across_processes(&store);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn future_across_processes_redis() {
    redis_connector::register();
    let server = common::RedisServer::start();
    let store = Store::builder("fut-redis", server.connector())
        .cache_bytes(0)
        .build()
        .unwrap();
    assert!(store.connector().capabilities().notify);
    future_across_processes(&store);
}

#[test]
fn future_wake_up_is_prompt() {
    // Push-notified connectors wake a waiter within milliseconds of the set.
    let (fstore, dir) = file_store("fut-wake");
    let lstore = Store::new("fut-wake-local", LocalConnector::new()).unwrap();
    for store in [&fstore, &lstore] {
        let mut lat = Vec::new();
        for _ in 0..7 {
            let fut = store.future::<u64>().unwrap();
            let setter = fut.clone();
            let h = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let t = Instant::now();
                setter.set_result(&7).unwrap();
                t
            });
            assert_eq!(fut.result(Duration::from_secs(10)).unwrap(), 7);
            let woke = Instant::now();
            let set_at = h.join().unwrap();
            lat.push(woke.saturating_duration_since(set_at));
        }
        lat.sort();
        // The file connector's safety-net re-check runs every 50 ms: a median
        // far below that shows the wake-up came from inotify.
        assert!(
            lat[3] < Duration::from_millis(15),
            "{}: woke {lat:?} after the set",
            store.connector().kind()
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn redis_future_over_a_stopped_server_is_a_clear_error() {
    let mut server = common::RedisServer::start();
    let store = Store::builder("fut-redis-down", server.connector())
        .cache_bytes(0)
        .build()
        .unwrap();
    let fut: ProxyFuture<u8> = store.future().unwrap();
    server.kill();
    let err = fut.result(Duration::from_millis(500)).unwrap_err();
    assert!(err.is_temporary(), "{err}");
}

// ---- task pool -----------------------------------------------------------------

mod pool {
    use super::*;
    use proxy_patterns::pool::{ProxyAlways, ProxyLargerThan, ProxyNever, ProxyType, TaskPool};

    #[test]
    fn large_arguments_are_proxied_and_evicted_when_the_task_completes() {
        let store = Store::new("pool-size", LocalConnector::new()).unwrap();
        let pool = TaskPool::new(store.clone(), 2).policy(ProxyLargerThan(4096));
        let st = store.clone();
        let big = pool
            .submit(vec![1u8; 1 << 20], move |a| {
                let key = match a {
                    proxy_patterns::pool::Arg::Proxied(p) => p.key().clone(),
                    proxy_patterns::pool::Arg::Value(_) => panic!("1 MiB must be proxied"),
                };
                assert!(st.exists(&key).unwrap(), "stored while the task runs");
                (a.len(), key)
            })
            .unwrap();
        let small = pool
            .submit(vec![1u8; 10], |a| (a.is_proxied(), a.len()))
            .unwrap();
        let (len, key) = big.wait().unwrap();
        assert_eq!(len, 1 << 20);
        assert!(
            !store.exists(&key).unwrap(),
            "evicted when the task completed"
        );
        assert_eq!(small.wait().unwrap(), (false, 10));
    }

    #[test]
    fn policies_by_type_always_and_never() {
        let store = Store::new("pool-type", LocalConnector::new()).unwrap();
        let by_type = TaskPool::new(store.clone(), 1).policy(ProxyType::new().with::<Vec<u8>>());
        assert!(
            by_type
                .submit(vec![1u8], |a| a.is_proxied())
                .unwrap()
                .wait()
                .unwrap()
        );
        assert!(
            !by_type
                .submit("s".to_string(), |a| a.is_proxied())
                .unwrap()
                .wait()
                .unwrap()
        );
        let always = TaskPool::new(store.clone(), 1).policy(ProxyAlways);
        assert!(
            always
                .submit(1u8, |a| a.is_proxied())
                .unwrap()
                .wait()
                .unwrap()
        );
        let never = TaskPool::new(store, 1).policy(ProxyNever);
        assert!(
            !never
                .submit(vec![0u8; 1 << 20], |a| a.is_proxied())
                .unwrap()
                .wait()
                .unwrap()
        );
    }

    #[test]
    fn results_come_back_as_owned_proxies() {
        let store = Store::new("pool-result", LocalConnector::new()).unwrap();
        let pool = TaskPool::new(store.clone(), 2).policy(ProxyAlways);
        let h = pool
            .submit_proxied(vec![2u64; 1000], |a| a.iter().sum::<u64>())
            .unwrap();
        let owned = h.wait().unwrap();
        let key = owned.key().clone();
        assert!(store.exists(&key).unwrap());
        assert_eq!(*owned, 2000);
        drop(owned);
        assert!(
            !store.exists(&key).unwrap(),
            "the result is evicted with its owner"
        );
    }

    #[test]
    fn a_panicking_task_still_evicts_its_argument() {
        let store = Store::new("pool-panic", LocalConnector::new()).unwrap();
        let pool = TaskPool::new(store.clone(), 1).policy(ProxyAlways);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let h = pool
            .submit(vec![1u8; 100], move |a| {
                if let proxy_patterns::pool::Arg::Proxied(p) = a {
                    tx.send(p.key().clone()).unwrap();
                }
                panic!("task failed on purpose");
            })
            .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.wait()));
        assert!(r.is_err(), "the panic reaches the caller");
        let key = rx.recv().unwrap();
        assert!(!store.exists(&key).unwrap());
        // The pool keeps working.
        assert_eq!(pool.submit(3u8, |a| **a).unwrap().wait().unwrap(), 3);
    }

    #[test]
    fn prepared_arguments_travel_to_another_process() {
        let (store, dir) = file_store("pool-farm");
        let pool = TaskPool::new(store.clone(), 1).policy(ProxyLargerThan(1024));
        let (arg, done) = pool.prepare((0..100_000u64).collect::<Vec<_>>()).unwrap();
        let wire = postcard::to_allocvec(&arg).unwrap();
        assert!(
            wire.len() < 512,
            "a proxy, not 800 kB: {} bytes",
            wire.len()
        );
        let want: u64 = (0..100_000u64).sum();
        assert_eq!(
            worker(&["arg-sum", &hex(&wire)]).unwrap(),
            format!("proxied {want}")
        );
        let key = match &arg {
            proxy_patterns::pool::Arg::Proxied(p) => p.key().clone(),
            _ => unreachable!("checked by the worker's answer"),
        };
        assert!(store.exists(&key).unwrap());
        done.complete().unwrap();
        assert!(!store.exists(&key).unwrap());
        // Small arguments travel by value.
        let (arg, _done) = pool.prepare(vec![1u64, 2]).unwrap();
        let wire = postcard::to_allocvec(&arg).unwrap();
        assert_eq!(worker(&["arg-sum", &hex(&wire)]).unwrap(), "value 3");
        std::fs::remove_dir_all(dir).ok();
    }
}
