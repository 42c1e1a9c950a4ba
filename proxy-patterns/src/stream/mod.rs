//! Streaming: objects go through a store, only their keys through a broker.
//!
//! A [`StreamProducer`] buffers objects per topic; every `batch_size` objects
//! it stores them in one [`Store::put_batch`] and publishes one small event
//! batch (keys, metadata) through a [`Publisher`]. A [`StreamConsumer`]
//! reads event batches from a [`Subscriber`] and yields a [`Proxy`] per
//! object, so bulk data moves store-to-consumer, only where it is used.
//!
//! Brokers: [`redis::RedisPublisher`]/[`redis::RedisSubscriber`] (Redis
//! pub/sub: fan-out to every subscriber, lossy without subscribers),
//! [`redis::RedisQueuePublisher`]/[`redis::RedisQueueSubscriber`] (a Redis
//! list: `RPUSH`/`BLPOP`, each event to one consumer, kept until read), and
//! [`redis_streams::RedisStreamPublisher`]/[`redis_streams::RedisStreamSubscriber`]
//! (Redis Streams with consumer groups and acknowledgements: a consumer
//! killed mid-stream loses nothing),
//! [`zmq::ZmqPublisher`]/[`zmq::ZmqSubscriber`] (ZeroMQ PUB/SUB, brokerless,
//! as ProxyStore's ZeroMQ shim), [`kafka::KafkaPublisher`]/[`kafka::KafkaSubscriber`]
//! (Kafka, one record per message, as ProxyStore's Kafka shim) and [`channel::ChannelBroker`] (in-process
//! `crossbeam` channels).
//!
//! ## Event format
//!
//! Each broker message is one event batch in the Python ProxyStore's format
//! (`proxystore.stream.events`, ProxyStore 1.1), so a Rust producer feeds a
//! Python `StreamConsumer` and a Python `StreamProducer` feeds a
//! [`StreamConsumer`]: the identifier `PK` and a newline, then a pickled
//! dict (`proxystore.serialize` of the event dict):
//!
//! ```text
//! {"event_type": "EVENT_BATCH", "topic": "sim", "events": [
//!   {"event_type": "NEW_OBJECT_KEY", "topic": "sim",
//!    "key_type": "proxystore.connectors.file.FileKey", "raw_key": ["<uuid>"],
//!    "evict": True, "metadata": {"step": 3},
//!    "store_config": StoreConfig(name=..., connector=ConnectorConfig(kind=..., options={...}), ...)},
//!   {"event_type": "NEW_OBJECT", "topic": "sim", "obj": b"...", "metadata": {}},
//!   {"event_type": "END_OF_STREAM", "topic": "sim"}]}
//! ```
//!
//! `store_config` is the pydantic `StoreConfig` a consumer rebuilds the
//! store from (connector and key names below);
//! `evict` tells the consumer's proxy to evict the object when it resolves
//! (set it only when each object has one consumer). A `NEW_OBJECT` carries
//! the object itself ([`StreamProducer::without_store`]): `bytes` and `str`
//! as themselves, anything else as its encoding.
//!
//! Pickles are read by a small reader of the opcodes such data uses, which
//! never runs code (a class is a name; only `proxystore.store.config`'s two
//! models and `proxystore.serialize.deserialize` mean anything here).
//! Metadata must be JSON-like (dicts with str keys, lists, tuples, str,
//! int, float, bool, None): another value is a decode error naming its type.
//!
//! The former JSON format of this crate (version 1, `{"version": 1, ...}`)
//! is still read, and written by [`EventBatch::encode_v1`], for one release.
//!
//! ## Connectors and keys in Python
//!
//! | our connector | Python connector (`store_config.connector.kind`) | key (`key_type`, `raw_key`) |
//! |---|---|---|
//! | `file` | `proxystore.connectors.file.FileConnector` (`store_dir`) | `proxystore.connectors.file.FileKey`, `[filename]` |
//! | `redis` (database 0, no prefix, no user) | `proxystore.connectors.redis.RedisConnector` (`hostname`, `port`) | `proxystore.connectors.redis.RedisKey`, `[redis_key]` |
//! | any other (`ucx`, `ofi`, a `redis` with a prefix, ...) | `proxystore_rs.RustConnector` (`kind` and our options) | `proxystore_rs.RustKey`, `[kind, encoded key]` |
//!
//! A Python consumer reads file and Redis streams with the Python ProxyStore
//! alone, the others with `proxystore_rs` (this repository's `python/`)
//! installed. Read back, `proxystore_rs.UcxConnector` and its siblings name
//! their kind, and Python's short names (`file`, `RedisConnector`) are
//! accepted. `clear` is written and read as false: a consumer never clears
//! the producer's directory or database. Python's `cache_size` (objects)
//! maps to our default cache, or none when it is 0; its custom
//! serializers are ignored (objects are read with our codec).
//!
//! ## What a broker sees
//!
//! Event batches: topics, keys, metadata and store configs, never a secret
//! (store configs serialize without the object server's job secret). Whoever
//! reads a topic can resolve its objects only where the store lets them: an
//! object server answers only clients that prove the job's secret; a Redis
//! or file store is open to whoever reaches it, as in the Python ProxyStore.
//! Objects sent inline ([`StreamProducer::without_store`]) are in the
//! events themselves.
//!
//! ## Failures
//!
//! - Broker down: [`StreamProducer::send`]/[`StreamProducer::flush`] return
//!   the broker's error (temporary [`Error::Connector`]); the event batch
//!   whose publication failed stays queued ([`StreamProducer::unsent`]) and
//!   is published first by the next flush, so nothing acknowledged is lost
//!   and nothing is published twice by the producer.
//! - An event whose object was evicted before it was read: resolving its
//!   proxy (or [`StreamConsumer::next_object`]) is [`Error::MissingKey`].
//! - No event within the consumer's timeout: [`Error::Timeout`].
//!
//! ```
//! use proxy_core::{LocalConnector, Store};
//! use proxy_patterns::stream::{channel::ChannelBroker, StreamConsumer, StreamProducer};
//! let store = Store::new("stream-doc", LocalConnector::new())?;
//! let broker = ChannelBroker::new();
//! let sub = broker.subscribe(&["t"]);
//! let mut producer = StreamProducer::new(broker.publisher(), store).batch_size(2);
//! for i in 0..3u32 {
//!     producer.send("t", vec![i; 4], Default::default())?;
//! }
//! producer.close_topic("t")?;
//! let mut consumer = StreamConsumer::<Vec<u32>>::new(sub);
//! let mut got = Vec::new();
//! while let Some(v) = consumer.next_object()? {
//!     got.push(v[0]);
//! }
//! assert_eq!(got, [0, 1, 2]);
//! # Ok::<(), proxy_core::Error>(())
//! ```

pub mod channel;
mod events;
pub mod kafka;
mod pickle;
mod pyconfig;
pub mod redis;
pub mod redis_streams;
pub mod zmq;

pub use events::{EVENT_VERSION, Event, EventBatch};

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use proxy_core::{Error, Key, Object, Proxy, Result, Store};

/// Free-form metadata of an object in a stream.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// Sends broker messages (one per event batch) to a topic.
pub trait Publisher: Send {
    /// Publish one message; returns once the broker acknowledged it.
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()>;
    /// Release the broker connection.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Receives broker messages.
pub trait Subscriber: Send {
    /// The next message, waiting up to `timeout` (`None`: no limit);
    /// `Ok(None)` when none arrived in time.
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>>;

    /// Acknowledge the messages returned so far, all but the last one when
    /// `keep_last` (its events are not all handled yet). A broker with
    /// acknowledgements hands unacknowledged messages of a consumer that
    /// died to another one. Default: nothing to do.
    fn ack(&mut self, keep_last: bool) -> Result<()> {
        let _ = keep_last;
        Ok(())
    }

    /// Whether [`Subscriber::ack`] means something here (then a
    /// [`StreamConsumer`] evicts objects only after their acknowledgement).
    fn acknowledges(&self) -> bool {
        false
    }
}

impl<P: Publisher + ?Sized> Publisher for Box<P> {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        (**self).send(topic, message)
    }
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
}

impl<S: Subscriber + ?Sized> Subscriber for Box<S> {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        (**self).next_message(timeout)
    }
    fn ack(&mut self, keep_last: bool) -> Result<()> {
        (**self).ack(keep_last)
    }
    fn acknowledges(&self) -> bool {
        (**self).acknowledges()
    }
}

/// A filter over metadata: `true` drops the object.
pub type Filter = Box<dyn Fn(&Metadata) -> bool + Send>;

/// Puts objects through a store and publishes their keys (not thread-safe:
/// one producer per thread).
pub struct StreamProducer<T> {
    publisher: Box<dyn Publisher>,
    store: Option<Store>,
    batch_size: usize,
    evict: bool,
    filter: Option<Filter>,
    buffers: HashMap<String, Vec<(T, Metadata)>>,
    unsent: VecDeque<(String, Vec<u8>)>,
}

impl<T> fmt::Debug for StreamProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamProducer")
            .field("store", &self.store.as_ref().map(|s| s.name().to_string()))
            .field("batch_size", &self.batch_size)
            .field("unsent", &self.unsent.len())
            .finish()
    }
}

impl<T: Object> StreamProducer<T> {
    /// A producer over `publisher` storing objects in `store` (batch size 1,
    /// no eviction by consumers, no filter).
    pub fn new(publisher: impl Publisher + 'static, store: Store) -> Self {
        let mut p = Self::without_store(publisher);
        p.store = Some(store);
        p
    }

    /// A producer that sends the objects themselves in the events
    /// (ProxyStore's `NEW_OBJECT`; no store, every byte through the broker).
    pub fn without_store(publisher: impl Publisher + 'static) -> Self {
        StreamProducer {
            publisher: Box::new(publisher),
            store: None,
            batch_size: 1,
            evict: false,
            filter: None,
            buffers: HashMap::new(),
            unsent: VecDeque::new(),
        }
    }

    /// Objects per event batch (at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Whether consumers' proxies evict objects when they resolve (use with
    /// one consumer per object: a queue, not a fan-out).
    pub fn evict(mut self, yes: bool) -> Self {
        self.evict = yes;
        self
    }

    /// Drop objects whose metadata `filter` returns `true` for (never stored).
    pub fn filter(mut self, filter: impl Fn(&Metadata) -> bool + Send + 'static) -> Self {
        self.filter = Some(Box::new(filter));
        self
    }

    /// The store objects go to (`None`: objects go in the events).
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Event batches stored but not yet acknowledged by the broker.
    pub fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Queue `obj` on `topic`; a full batch is stored and published now.
    pub fn send(&mut self, topic: &str, obj: T, metadata: Metadata) -> Result<()> {
        if self.filter.as_ref().is_some_and(|f| f(&metadata)) {
            return Ok(());
        }
        let buf = self.buffers.entry(topic.to_string()).or_default();
        buf.push((obj, metadata));
        if buf.len() >= self.batch_size {
            self.flush_topic(topic)?;
        }
        Ok(())
    }

    /// Store and publish what is buffered for `topic` (and any unsent batch).
    pub fn flush_topic(&mut self, topic: &str) -> Result<()> {
        if let Some(buf) = self.buffers.remove(topic)
            && !buf.is_empty()
        {
            let (objs, metas): (Vec<T>, Vec<Metadata>) = buf.into_iter().unzip();
            let events = match &self.store {
                Some(store) => {
                    let keys = store.put_batch(&objs)?;
                    keys.into_iter()
                        .zip(metas)
                        .map(|(key, metadata)| Event::ObjectKey {
                            store: store.config().clone(),
                            key,
                            evict: self.evict,
                            metadata,
                        })
                        .collect()
                }
                None => objs
                    .iter()
                    .zip(metas)
                    .map(|(o, metadata)| {
                        Ok(Event::Object {
                            data: proxy_core::codec::encode(o)?.to_bytes(),
                            metadata,
                        })
                    })
                    .collect::<Result<_>>()?,
            };
            self.queue(topic, events)?;
        }
        self.drain()
    }

    /// Flush every topic.
    pub fn flush(&mut self) -> Result<()> {
        let topics: Vec<String> = self.buffers.keys().cloned().collect();
        for t in topics {
            self.flush_topic(&t)?;
        }
        self.drain()
    }

    /// Flush `topic` and publish its end of stream.
    pub fn close_topic(&mut self, topic: &str) -> Result<()> {
        // On failure nothing of the end of stream is queued: call again.
        self.flush_topic(topic)?;
        self.queue(topic, vec![Event::EndOfStream])?;
        self.drain()
    }

    /// Flush everything and close the publisher.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        self.publisher.close()
    }

    fn queue(&mut self, topic: &str, events: Vec<Event>) -> Result<()> {
        let msg = EventBatch::new(topic, events).encode()?;
        self.unsent.push_back((topic.to_string(), msg));
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        while let Some((topic, msg)) = self.unsent.front() {
            self.publisher.send(topic, msg)?;
            self.unsent.pop_front();
        }
        Ok(())
    }
}

/// One object of a stream: a proxy (the object is in a store) or the object
/// itself (it came in the event, as ProxyStore's `ProxyOr`).
#[derive(Debug)]
pub enum StreamItem<T> {
    /// The object is in a store; resolving fetches it.
    Proxy(Proxy<T>),
    /// The object came in the event.
    Object(T),
}

impl<T: Object> StreamItem<T> {
    /// The object (resolving a proxy now).
    pub fn resolve(&self) -> Result<&T> {
        match self {
            StreamItem::Proxy(p) => p.resolve(),
            StreamItem::Object(o) => Ok(o),
        }
    }

    /// The object, owned ([`Error::MissingKey`] if it was evicted before it
    /// was read).
    pub fn into_inner(self) -> Result<T> {
        match self {
            StreamItem::Proxy(p) => p.into_inner(),
            StreamItem::Object(o) => Ok(o),
        }
    }

    /// The proxy, if the object is in a store.
    pub fn proxy(&self) -> Option<&Proxy<T>> {
        match self {
            StreamItem::Proxy(p) => Some(p),
            StreamItem::Object(_) => None,
        }
    }
}

/// Yields a proxy (or the object) per object of a stream.
pub struct StreamConsumer<T> {
    subscriber: Box<dyn Subscriber>,
    timeout: Option<Duration>,
    filter: Option<Filter>,
    queue: VecDeque<Event>,
    ended: bool,
    /// Messages received so far.
    received: u64,
    /// Objects to evict once the message (by number) is acknowledged.
    to_evict: Vec<(u64, Store, Key)>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for StreamConsumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConsumer")
            .field("timeout", &self.timeout)
            .field("queued", &self.queue.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl<T: Object> StreamConsumer<T> {
    /// A consumer of one topic's events from `subscriber` (no timeout).
    pub fn new(subscriber: impl Subscriber + 'static) -> Self {
        StreamConsumer {
            subscriber: Box::new(subscriber),
            timeout: None,
            filter: None,
            queue: VecDeque::new(),
            ended: false,
            received: 0,
            to_evict: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Fail with [`Error::Timeout`] when no event arrives within `timeout`.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Skip objects whose metadata `filter` returns `true` for (they are
    /// still evicted if their event says so).
    pub fn filter(mut self, filter: impl Fn(&Metadata) -> bool + Send + 'static) -> Self {
        self.filter = Some(Box::new(filter));
        self
    }

    /// The next item and its metadata; `None` after the end of stream.
    ///
    /// A message that is not an event batch, or an event this consumer
    /// cannot use (an unknown `key_type`, a connector this build cannot
    /// open, an inline Python object Rust cannot read), is a
    /// [`Error::Decode`]/[`Error::InvalidConfig`] error, and its whole
    /// message is dropped: the next call reads the next message.
    pub fn next_with_metadata(&mut self) -> Result<Option<(StreamItem<T>, Metadata)>> {
        loop {
            match self.queue.pop_front() {
                Some(Event::EndOfStream) => {
                    self.ended = true;
                    self.queue.clear();
                    return Ok(None);
                }
                Some(Event::ObjectKey {
                    store,
                    key,
                    evict,
                    metadata,
                }) => {
                    let store = proxy_core::stores::get_or_create(&store)?;
                    let skip = self.filter.as_ref().is_some_and(|f| f(&metadata));
                    if evict && self.subscriber.acknowledges() {
                        // Evicted after the acknowledgement (see `ack`).
                        self.to_evict
                            .push((self.received, store.clone(), key.clone()));
                        if skip {
                            continue;
                        }
                        let p = store.proxy_from_key(key, false);
                        return Ok(Some((StreamItem::Proxy(p), metadata)));
                    }
                    if skip {
                        if evict {
                            store.evict(&key)?;
                        }
                        continue;
                    }
                    let p = store.proxy_from_key(key, evict);
                    return Ok(Some((StreamItem::Proxy(p), metadata)));
                }
                Some(Event::Object { data, metadata }) => {
                    if self.filter.as_ref().is_some_and(|f| f(&metadata)) {
                        continue;
                    }
                    let obj = proxy_core::codec::decode(data)?;
                    return Ok(Some((StreamItem::Object(obj), metadata)));
                }
                None => {}
            }
            if self.ended {
                return Ok(None);
            }
            let Some(msg) = self.subscriber.next_message(self.timeout)? else {
                return Err(Error::Timeout {
                    connector: "stream".into(),
                    operation: "waiting for a stream event",
                    after: self.timeout.unwrap_or_default(),
                });
            };
            self.received += 1;
            self.queue
                .extend(EventBatch::decode_bytes(msg.into())?.events);
        }
    }

    /// Acknowledge the events handed out so far (their messages: a message
    /// whose events are not all handed out yet stays unacknowledged), then
    /// evict their objects whose events say `evict`. Only subscribers with
    /// acknowledgements ([`Subscriber::acknowledges`], Redis Streams) need
    /// it; with them, an `evict` object is evicted here, never when its
    /// proxy resolves, so a consumer that dies before acknowledging leaves
    /// it to the consumer that takes the event over.
    pub fn ack(&mut self) -> Result<()> {
        let keep_last = !self.queue.is_empty();
        self.subscriber.ack(keep_last)?;
        let done = self.received - u64::from(keep_last);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.to_evict)
            .into_iter()
            .partition(|(m, _, _)| *m <= done);
        self.to_evict = later;
        for (_, store, key) in now {
            store.evict(&key)?;
        }
        Ok(())
    }

    /// The next item; `None` after the end of stream.
    pub fn next_item(&mut self) -> Result<Option<StreamItem<T>>> {
        Ok(self.next_with_metadata()?.map(|(p, _)| p))
    }

    /// The next proxy; `None` after the end of stream. An object that came
    /// in its event has no proxy: a [`Error::Decode`] error saying so (use
    /// [`StreamConsumer::next_item`] on such streams).
    pub fn next_proxy(&mut self) -> Result<Option<Proxy<T>>> {
        match self.next_item()? {
            None => Ok(None),
            Some(StreamItem::Proxy(p)) => Ok(Some(p)),
            Some(StreamItem::Object(_)) => Err(Error::decode(
                "a stream object came in its event (no store): read it with next_item or next_object",
            )),
        }
    }

    /// The next object, resolved now ([`Error::MissingKey`] if it was
    /// evicted before it was read); `None` after the end of stream.
    pub fn next_object(&mut self) -> Result<Option<T>> {
        match self.next_item()? {
            None => Ok(None),
            Some(p) => p.into_inner().map(Some),
        }
    }
}

impl<T: Object> Iterator for StreamConsumer<T> {
    type Item = Result<StreamItem<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}
