//! A proxying task pool (ProxyStore's `StoreExecutor`): a thread pool whose
//! [`TaskPool::submit`] proxies the argument when a [`ProxyPolicy`] says so
//! (e.g. above a size threshold), evicts it when the task completes, and on
//! request ([`TaskPool::submit_proxied`]) stores the result and returns an
//! [`OwnedProxy`] to it (evicted when the caller drops it).
//!
//! For task farms over MPI or sockets, [`TaskPool::prepare`] does the
//! proxying without running anything: send the [`Arg`] (a value or a
//! ~100-byte proxy: it serializes either way), and call
//! [`Completion::complete`] when the remote task reports back.
//!
//! ```
//! use proxy_core::{LocalConnector, Store};
//! use proxy_patterns::pool::{ProxyLargerThan, TaskPool};
//! let store = Store::new("pool-doc", LocalConnector::new())?;
//! let pool = TaskPool::new(store.clone(), 2).policy(ProxyLargerThan(1 << 10));
//! let small = pool.submit(vec![1u8; 10], |a| a.len())?;      // passed by value
//! let large = pool.submit(vec![1u8; 1 << 20], |a| a.len())?; // passed by proxy
//! assert_eq!((small.wait()?, large.wait()?), (10, 1 << 20));
//! # Ok::<(), proxy_core::Error>(())
//! ```

use std::any::TypeId;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use proxy_core::{Error, Key, Object, Proxy, Result, Store, codec};
use serde::{Deserialize, Serialize};

use crate::ownership::{OwnedProxy, StoreOwnershipExt};

/// What a policy sees of an argument.
#[derive(Debug, Clone, Copy)]
pub struct ArgInfo {
    /// Its type.
    pub type_id: TypeId,
    /// Its type's name (for messages).
    pub type_name: &'static str,
    /// Its encoded size in bytes.
    pub size: usize,
}

/// Decides which arguments are proxied.
pub trait ProxyPolicy: Send + Sync {
    /// Whether to proxy this argument.
    fn should_proxy(&self, arg: &ArgInfo) -> bool;
}

/// Proxy every argument.
#[derive(Debug, Clone, Copy)]
pub struct ProxyAlways;
/// Proxy nothing (the default).
#[derive(Debug, Clone, Copy)]
pub struct ProxyNever;
/// Proxy arguments whose encoded size is larger than this many bytes.
#[derive(Debug, Clone, Copy)]
pub struct ProxyLargerThan(pub usize);
/// Proxy arguments of the listed types.
#[derive(Debug, Clone, Default)]
pub struct ProxyType(Vec<TypeId>);

impl ProxyPolicy for ProxyAlways {
    fn should_proxy(&self, _: &ArgInfo) -> bool {
        true
    }
}
impl ProxyPolicy for ProxyNever {
    fn should_proxy(&self, _: &ArgInfo) -> bool {
        false
    }
}
impl ProxyPolicy for ProxyLargerThan {
    fn should_proxy(&self, a: &ArgInfo) -> bool {
        a.size > self.0
    }
}
impl ProxyType {
    /// No type yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Also proxy arguments of type `T`.
    pub fn with<T: 'static>(mut self) -> Self {
        self.0.push(TypeId::of::<T>());
        self
    }
}
impl ProxyPolicy for ProxyType {
    fn should_proxy(&self, a: &ArgInfo) -> bool {
        self.0.contains(&a.type_id)
    }
}

/// A task's argument: the value itself, or a proxy to it.
#[derive(Serialize, Deserialize)]
pub enum Arg<T> {
    /// Passed by value.
    Value(T),
    /// Passed by proxy (resolved on first use).
    Proxied(Proxy<T>),
}

impl<T: Object> Arg<T> {
    /// The value (resolving the proxy if needed).
    pub fn resolve(&self) -> Result<&T> {
        match self {
            Arg::Value(v) => Ok(v),
            Arg::Proxied(p) => p.resolve(),
        }
    }

    /// Whether the argument travels as a proxy.
    pub fn is_proxied(&self) -> bool {
        matches!(self, Arg::Proxied(_))
    }
}

impl<T: Object> Deref for Arg<T> {
    type Target = T;
    /// **Panics** if a proxied argument cannot be resolved (see [`Arg::resolve`]).
    fn deref(&self) -> &T {
        match self.resolve() {
            Ok(v) => v,
            Err(e) => panic!("task argument failed to resolve: {e}"),
        }
    }
}

impl<T: Object> fmt::Debug for Arg<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Value(_) => f.write_str("Arg::Value(..)"),
            Arg::Proxied(p) => write!(f, "Arg::Proxied({})", p.key()),
        }
    }
}

/// Evicts a proxied argument when its task completes (or when dropped).
#[derive(Debug)]
pub struct Completion {
    store: Store,
    key: Option<Key>,
}

impl Completion {
    /// The task reported back: evict the argument (if it was proxied).
    pub fn complete(mut self) -> Result<()> {
        self.evict()
    }

    fn evict(&mut self) -> Result<()> {
        match self.key.take() {
            Some(k) if !self.store.is_closed() => self.store.evict(&k),
            _ => Ok(()),
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let _ = self.evict();
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed-size thread pool that proxies arguments and results.
pub struct TaskPool {
    store: Store,
    policy: Arc<dyn ProxyPolicy>,
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for TaskPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TaskPool({} threads, store '{}')",
            self.workers.len(),
            self.store.name()
        )
    }
}

impl TaskPool {
    /// `threads` workers (at least 1) over `store`, proxying nothing until
    /// a [`TaskPool::policy`] is set.
    pub fn new(store: Store, threads: usize) -> Self {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = unbounded();
        let workers = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("proxystore-pool-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })
                    .expect("spawn a pool thread")
            })
            .collect();
        TaskPool {
            store,
            policy: Arc::new(ProxyNever),
            tx: Some(tx),
            workers,
        }
    }

    /// Which arguments to proxy.
    pub fn policy(mut self, policy: impl ProxyPolicy + 'static) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// The store arguments and results go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Proxy `arg` if the policy says so; the [`Completion`] evicts it.
    pub fn prepare<A: Object>(&self, arg: A) -> Result<(Arg<A>, Completion)> {
        let payload = codec::encode(&arg)?;
        let info = ArgInfo {
            type_id: TypeId::of::<A>(),
            type_name: std::any::type_name::<A>(),
            size: payload.len(),
        };
        if !self.policy.should_proxy(&info) {
            let done = Completion {
                store: self.store.clone(),
                key: None,
            };
            return Ok((Arg::Value(arg), done));
        }
        let key = self.store.put_encoded(payload)?;
        let proxy = self.store.proxy_from_key(key.clone(), false);
        let done = Completion {
            store: self.store.clone(),
            key: Some(key),
        };
        Ok((Arg::Proxied(proxy), done))
    }

    fn spawn<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> std::thread::Result<Result<R>> + Send + 'static,
    ) -> Result<TaskHandle<R>> {
        let (tx, rx) = bounded(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        self.tx
            .as_ref()
            .and_then(|t| t.send(job).ok())
            .ok_or_else(|| Error::StoreClosed(format!("task pool over '{}'", self.store.name())))?;
        Ok(TaskHandle { rx })
    }

    /// Run `f(&arg)` on a worker; the argument is proxied per the policy
    /// and evicted when `f` returns (or panics).
    pub fn submit<A: Object, R: Send + 'static>(
        &self,
        arg: A,
        f: impl FnOnce(&Arg<A>) -> R + Send + 'static,
    ) -> Result<TaskHandle<R>> {
        let (arg, done) = self.prepare(arg)?;
        self.spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&arg)));
            drop(arg);
            let evicted = done.complete();
            r.map(|v| evicted.map(|()| v))
        })
    }

    /// Like [`TaskPool::submit`], and the worker stores the result: the
    /// handle yields an [`OwnedProxy`] to it (the object is evicted when the
    /// caller drops the owner).
    pub fn submit_proxied<A: Object, R: Object>(
        &self,
        arg: A,
        f: impl FnOnce(&Arg<A>) -> R + Send + 'static,
    ) -> Result<TaskHandle<OwnedProxy<R>>> {
        let (arg, done) = self.prepare(arg)?;
        let store = self.store.clone();
        self.spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&arg)));
            drop(arg);
            let evicted = done.complete();
            r.map(|v| {
                evicted?;
                let owned = store.owned_proxy(v)?;
                Ok(owned)
            })
        })
    }
}

impl Drop for TaskPool {
    /// Waits for queued tasks to finish.
    fn drop(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The pending result of a task.
#[derive(Debug)]
pub struct TaskHandle<R> {
    rx: Receiver<std::thread::Result<Result<R>>>,
}

impl<R> TaskHandle<R> {
    /// Wait for the result. A panic in the task is resumed here.
    pub fn wait(self) -> Result<R> {
        match self.rx.recv() {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::StoreClosed("task pool".into())),
        }
    }
}
