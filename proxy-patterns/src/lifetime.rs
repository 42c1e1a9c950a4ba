//! Object lifetimes: evict a group of objects together.
//!
//! | lifetime | its objects are evicted |
//! |---|---|
//! | [`ContextLifetime`] | by [`Lifetime::close`] or when the value is dropped (RAII scope) |
//! | [`LeaseLifetime`] | at a deadline that [`LeaseLifetime::extend`] pushes back; one timer thread serves every lease of the process |
//! | [`StaticLifetime`] | when the process exits normally (an `atexit` hook) |
//!
//! Objects join a lifetime through [`StoreLifetimeExt`] (`put_in`,
//! `proxy_in`, `proxy_batch_in`, `proxy_from_key_in`) or
//! [`Lifetime::add_key`]. Using a closed lifetime is
//! [`Error::LifetimeClosed`]; nothing is stored then.
//!
//! ```
//! use proxy_core::{LocalConnector, Store};
//! use proxy_patterns::lifetime::{ContextLifetime, Lifetime, StoreLifetimeExt};
//! let store = Store::new("lt-doc", LocalConnector::new())?;
//! let key = {
//!     let scope = ContextLifetime::new("step-1");
//!     let p = store.proxy_in(vec![1u8, 2, 3], &scope)?;
//!     assert!(store.exists(p.key())?);
//!     p.key().clone()
//! }; // dropped: evicted
//! assert!(!store.exists(&key)?);
//! # Ok::<(), proxy_core::Error>(())
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};
use proxy_core::{Error, Key, Object, Proxy, ProxyOptions, Result, Store};

/// A group of objects evicted together.
pub trait Lifetime: Send + Sync + fmt::Debug {
    /// A name for messages.
    fn name(&self) -> &str;

    /// Attach an object; [`Error::LifetimeClosed`] if the lifetime is closed.
    fn add_key(&self, store: &Store, key: Key) -> Result<()>;

    /// Evict every attached object and refuse new ones. Idempotent; the
    /// first eviction error is returned after trying them all.
    fn close(&self) -> Result<()>;

    /// Whether the lifetime is closed (or expired).
    fn done(&self) -> bool;

    /// Attach the object of a proxy.
    fn add_proxy<T: Object>(&self, proxy: &Proxy<T>) -> Result<()>
    where
        Self: Sized,
    {
        self.add_key(proxy.factory().store()?, proxy.key().clone())
    }
}

/// The object set behind every lifetime: `None` once closed.
#[derive(Default)]
struct Tracked {
    keys: Mutex<Option<Vec<(Store, Key)>>>,
}

impl Tracked {
    fn open() -> Self {
        Tracked {
            keys: Mutex::new(Some(Vec::new())),
        }
    }

    fn add(&self, name: &str, store: &Store, key: Key) -> Result<()> {
        match self.keys.lock().as_mut() {
            Some(v) => {
                v.push((store.clone(), key));
                Ok(())
            }
            None => Err(closed(name)),
        }
    }

    fn close(&self) -> Result<()> {
        let Some(keys) = self.keys.lock().take() else {
            return Ok(());
        };
        let mut first = None;
        for (store, key) in keys {
            if store.is_closed() {
                continue;
            }
            if let Err(e) = store.evict(&key) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn done(&self) -> bool {
        self.keys.lock().is_none()
    }

    fn len(&self) -> usize {
        self.keys.lock().as_ref().map_or(0, Vec::len)
    }
}

fn closed(name: &str) -> Error {
    Error::LifetimeClosed {
        name: name.to_string(),
    }
}

/// A lifetime closed explicitly or when dropped (ProxyStore's `ContextLifetime`).
pub struct ContextLifetime {
    name: String,
    tracked: Tracked,
}

impl ContextLifetime {
    /// An open lifetime.
    pub fn new(name: impl Into<String>) -> Self {
        ContextLifetime {
            name: name.into(),
            tracked: Tracked::open(),
        }
    }

    /// Objects attached (0 once closed).
    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    /// Whether no object is attached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for ContextLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContextLifetime({}, {} objects)", self.name, self.len())
    }
}

impl Lifetime for ContextLifetime {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_key(&self, store: &Store, key: Key) -> Result<()> {
        self.tracked.add(&self.name, store, key)
    }
    fn close(&self) -> Result<()> {
        self.tracked.close()
    }
    fn done(&self) -> bool {
        self.tracked.done()
    }
}

impl Drop for ContextLifetime {
    fn drop(&mut self) {
        let _ = self.tracked.close();
    }
}

// ---- leases -------------------------------------------------------------------

struct LeaseInner {
    name: String,
    tracked: Tracked,
    deadline: Mutex<Instant>,
}

/// A lifetime that closes itself at a deadline (ProxyStore's
/// `LeaseLifetime`, without its timer thread per lease: one process-wide
/// timer thread sleeps until the earliest deadline of all leases).
///
/// Dropping the handle does not end the lease: its objects live until the
/// deadline (or [`Lifetime::close`]).
#[derive(Clone)]
pub struct LeaseLifetime {
    inner: Arc<LeaseInner>,
}

impl fmt::Debug for LeaseLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LeaseLifetime({}, {} objects, expires in {:?})",
            self.inner.name,
            self.inner.tracked.len(),
            self.remaining()
        )
    }
}

impl LeaseLifetime {
    /// A lease that expires `expiry` from now.
    pub fn new(name: impl Into<String>, expiry: Duration) -> Self {
        let inner = Arc::new(LeaseInner {
            name: name.into(),
            tracked: Tracked::open(),
            deadline: Mutex::new(Instant::now() + expiry),
        });
        TIMER.schedule(&inner);
        LeaseLifetime { inner }
    }

    /// Push the deadline back by `by` (from the current deadline).
    /// [`Error::LifetimeClosed`] if the lease already expired.
    pub fn extend(&self, by: Duration) -> Result<()> {
        {
            let mut d = self.inner.deadline.lock();
            if self.inner.tracked.done() {
                return Err(closed(&self.inner.name));
            }
            *d += by;
        }
        TIMER.schedule(&self.inner);
        Ok(())
    }

    /// Time left until expiry (zero when expired).
    pub fn remaining(&self) -> Duration {
        self.inner
            .deadline
            .lock()
            .saturating_duration_since(Instant::now())
    }
}

impl Lifetime for LeaseLifetime {
    fn name(&self) -> &str {
        &self.inner.name
    }
    fn add_key(&self, store: &Store, key: Key) -> Result<()> {
        self.inner.tracked.add(&self.inner.name, store, key)
    }
    fn close(&self) -> Result<()> {
        self.inner.tracked.close()
    }
    fn done(&self) -> bool {
        self.inner.tracked.done()
    }
}

/// The one timer thread: a heap of (deadline, lease) entries; an entry whose
/// lease was extended since is re-queued at the new deadline.
struct Timer {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    wake: Condvar,
    started: std::sync::Once,
}

struct Entry(Instant, Arc<LeaseInner>);

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

static TIMER: Lazy<Timer> = Lazy::new(|| Timer {
    heap: Mutex::new(BinaryHeap::new()),
    wake: Condvar::new(),
    started: std::sync::Once::new(),
});

impl Timer {
    fn schedule(&'static self, lease: &Arc<LeaseInner>) {
        self.started.call_once(|| {
            std::thread::Builder::new()
                .name("proxystore-lease-timer".into())
                .spawn(move || self.run())
                .expect("spawn the lease timer thread");
        });
        let at = *lease.deadline.lock();
        self.heap.lock().push(Reverse(Entry(at, lease.clone())));
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut heap = self.heap.lock();
        loop {
            let now = Instant::now();
            match heap.peek() {
                None => {
                    self.wake.wait(&mut heap);
                }
                Some(Reverse(Entry(at, _))) if *at > now => {
                    let at = *at;
                    self.wake.wait_until(&mut heap, at);
                }
                Some(_) => {
                    let Some(Reverse(Entry(_, lease))) = heap.pop() else {
                        continue;
                    };
                    let deadline = *lease.deadline.lock();
                    if deadline <= now {
                        // Evict outside the heap lock (I/O).
                        drop(heap);
                        let _ = lease.tracked.close();
                        heap = self.heap.lock();
                    }
                    // Else: extended; its newer entry is in the heap.
                }
            }
        }
    }
}

// ---- static -------------------------------------------------------------------

/// The process-wide lifetime whose objects are evicted when the process
/// exits normally (returns from `main` or calls `std::process::exit`), via
/// an `atexit` hook registered on first use (ProxyStore's `StaticLifetime`).
/// A killed process cannot run it.
pub struct StaticLifetime {
    tracked: Tracked,
}

static STATIC: Lazy<StaticLifetime> = Lazy::new(|| {
    extern "C" fn at_exit() {
        let _ = STATIC.tracked.close();
    }
    // SAFETY: registers a plain `extern "C" fn()` that touches only a
    // `static` (alive until the process ends); atexit has no other
    // preconditions. A failure to register (returns non-zero) only means the
    // objects are not evicted at exit.
    unsafe {
        libc::atexit(at_exit);
    }
    StaticLifetime {
        tracked: Tracked::open(),
    }
});

impl StaticLifetime {
    /// The process's static lifetime.
    pub fn get() -> &'static StaticLifetime {
        &STATIC
    }
}

impl fmt::Debug for StaticLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaticLifetime({} objects)", self.tracked.len())
    }
}

impl Lifetime for StaticLifetime {
    fn name(&self) -> &str {
        "static"
    }
    fn add_key(&self, store: &Store, key: Key) -> Result<()> {
        self.tracked.add("static", store, key)
    }
    fn close(&self) -> Result<()> {
        self.tracked.close()
    }
    fn done(&self) -> bool {
        self.tracked.done()
    }
}

// ---- store integration -----------------------------------------------------------

/// Store operations that attach their objects to a lifetime.
pub trait StoreLifetimeExt {
    /// [`Store::put`] attached to `lifetime`.
    fn put_in<T: Object>(&self, obj: &T, lifetime: &impl Lifetime) -> Result<Key>;
    /// [`Store::proxy`] attached to `lifetime`.
    fn proxy_in<T: Object>(&self, obj: T, lifetime: &impl Lifetime) -> Result<Proxy<T>>;
    /// [`Store::proxy_batch`] attached to `lifetime`.
    fn proxy_batch_in<T: Object>(
        &self,
        objs: Vec<T>,
        lifetime: &impl Lifetime,
    ) -> Result<Vec<Proxy<T>>>;
    /// [`Store::proxy_from_key`] attached to `lifetime` (the object already
    /// stored under `key` is evicted with the lifetime).
    fn proxy_from_key_in<T: Object>(&self, key: Key, lifetime: &impl Lifetime) -> Result<Proxy<T>>;
}

fn attach(store: &Store, lifetime: &impl Lifetime, keys: &[Key]) -> Result<()> {
    for (i, k) in keys.iter().enumerate() {
        if let Err(e) = lifetime.add_key(store, k.clone()) {
            // Closed in between: nothing may outlive it.
            for k in &keys[i..] {
                let _ = store.evict(k);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn check(lifetime: &impl Lifetime) -> Result<()> {
    if lifetime.done() {
        Err(closed(lifetime.name()))
    } else {
        Ok(())
    }
}

impl StoreLifetimeExt for Store {
    fn put_in<T: Object>(&self, obj: &T, lifetime: &impl Lifetime) -> Result<Key> {
        check(lifetime)?;
        let key = self.put(obj)?;
        attach(self, lifetime, std::slice::from_ref(&key))?;
        Ok(key)
    }

    fn proxy_in<T: Object>(&self, obj: T, lifetime: &impl Lifetime) -> Result<Proxy<T>> {
        check(lifetime)?;
        let p = self.proxy(obj)?;
        attach(self, lifetime, std::slice::from_ref(p.key()))?;
        Ok(p)
    }

    fn proxy_batch_in<T: Object>(
        &self,
        objs: Vec<T>,
        lifetime: &impl Lifetime,
    ) -> Result<Vec<Proxy<T>>> {
        check(lifetime)?;
        let ps = self.proxy_batch(objs, ProxyOptions::default())?;
        let keys: Vec<Key> = ps.iter().map(|p| p.key().clone()).collect();
        attach(self, lifetime, &keys)?;
        Ok(ps)
    }

    fn proxy_from_key_in<T: Object>(&self, key: Key, lifetime: &impl Lifetime) -> Result<Proxy<T>> {
        lifetime.add_key(self, key.clone())?;
        Ok(self.proxy_from_key(key, false))
    }
}
