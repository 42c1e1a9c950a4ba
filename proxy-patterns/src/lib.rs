//! # proxy-patterns
//!
//! What applications build on proxies (after ProxyStore's "object proxy
//! patterns"), on top of [`proxy_core`]:
//!
//! | module | pattern |
//! |---|---|
//! | [`lifetime`] | evict groups of objects together: a scope, a lease (one timer thread for all), the process |
//! | [`ownership`] | an owned proxy evicts on drop; shared / mutable borrows checked by the compiler in a process and carried across processes |
//! | [`future`] | proxy futures woken by the store (no polling where the connector can notify) |
//! | [`stream`] | objects through a store, keys through a broker (Redis pub/sub, Redis lists, Redis Streams, ZeroMQ, in-process channels), in the Python ProxyStore's event format |
//! | [`pool`] | a task pool that proxies large arguments and (on request) results and evicts them when the task completes |
//!
//! Metrics live in [`proxy_core::metrics`] because the store records them.
//!
//! ## Why a separate crate
//!
//! `proxy-core` stays the small contract that every connector crate builds
//! on (proxy, store, connector trait, codecs). The patterns are optional
//! policy on top: they need a thread pool, a broker client and timers that
//! a connector crate should not compile. The crate graph stays one-way:
//! `proxy-patterns` depends on `proxy-core` (and the `redis` and `zmq` clients for its
//! brokers); `proxy-core` knows nothing of it and gives it three small hooks:
//! [`Connector::wait_for`](proxy_core::Connector::wait_for) with
//! [`Capabilities::notify`](proxy_core::Capabilities::notify),
//! [`StoreFactory::waiting`](proxy_core::StoreFactory::waiting) and
//! [`Store::uncache`](proxy_core::Store::uncache).

#![warn(missing_docs)]

pub mod future;
pub mod lifetime;
pub mod ownership;
pub mod pool;
pub mod stream;

pub use future::{ProxyFuture, StoreFutureExt};
pub use lifetime::{ContextLifetime, LeaseLifetime, Lifetime, StaticLifetime, StoreLifetimeExt};
pub use ownership::{OwnedProxy, RefMutProxy, RefProxy, RemoteMut, RemoteRef, StoreOwnershipExt};
