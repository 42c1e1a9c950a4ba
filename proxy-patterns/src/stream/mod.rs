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
//! [`channel::ChannelBroker`] (in-process `crossbeam` channels).
//!
//! ## Event format (version 1)
//!
//! Each broker message is one JSON object (UTF-8):
//!
//! ```json
//! {"version": 1, "topic": "sim",
//!  "events": [
//!    {"type": "object_key", "store": {"name": "...", "connector": {"kind": "redis", "options": {}}, ...},
//!     "key": "<hex of the encoded key>", "evict": true, "metadata": {"step": 3}},
//!    {"type": "end_of_stream"}]}
//! ```
//!
//! `store` is the [`StoreConfig`] a consumer rebuilds the store from (as a
//! proxy does); `evict` tells the consumer's proxy to evict the object when
//! it resolves (set it only when each object has one consumer).
//! A consumer refuses any other `version` with a decode error naming it.
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
pub mod redis;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use proxy_core::{Error, Key, Object, Proxy, Result, Store, StoreConfig};
use serde::{Deserialize, Serialize};

/// The version of the event format this crate writes and reads.
pub const EVENT_VERSION: u32 = 1;

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
}

/// One event of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An object stored under `key` in the store `store`.
    ObjectKey {
        /// The store's configuration.
        store: StoreConfig,
        /// The object's key.
        key: Key,
        /// Whether the consumer's proxy evicts the object when it resolves.
        evict: bool,
        /// The producer's metadata.
        #[serde(default)]
        metadata: Metadata,
    },
    /// The producer closed the topic.
    EndOfStream,
}

/// One broker message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatch {
    /// [`EVENT_VERSION`].
    pub version: u32,
    /// The topic.
    pub topic: String,
    /// The events, in order.
    pub events: Vec<Event>,
}

impl EventBatch {
    /// Encode (JSON).
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Encode {
            reason: format!("stream event batch: {e}"),
        })
    }

    /// Decode and check the version.
    pub fn decode(bytes: &[u8]) -> Result<EventBatch> {
        #[derive(Deserialize)]
        struct V {
            version: u32,
        }
        let v: V = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("not a stream event batch: {e}")))?;
        if v.version != EVENT_VERSION {
            return Err(Error::decode(format!(
                "stream event batch of version {} (this consumer reads version {EVENT_VERSION})",
                v.version
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("malformed stream event batch: {e}")))
    }
}

/// A filter over metadata: `true` drops the object.
pub type Filter = Box<dyn Fn(&Metadata) -> bool + Send>;

/// Puts objects through a store and publishes their keys (not thread-safe:
/// one producer per thread).
pub struct StreamProducer<T> {
    publisher: Box<dyn Publisher>,
    store: Store,
    batch_size: usize,
    evict: bool,
    filter: Option<Filter>,
    buffers: HashMap<String, Vec<(T, Metadata)>>,
    unsent: VecDeque<(String, Vec<u8>)>,
}

impl<T> fmt::Debug for StreamProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamProducer")
            .field("store", &self.store.name())
            .field("batch_size", &self.batch_size)
            .field("unsent", &self.unsent.len())
            .finish()
    }
}

impl<T: Object> StreamProducer<T> {
    /// A producer over `publisher` storing objects in `store` (batch size 1,
    /// no eviction by consumers, no filter).
    pub fn new(publisher: impl Publisher + 'static, store: Store) -> Self {
        StreamProducer {
            publisher: Box::new(publisher),
            store,
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

    /// The store objects go to.
    pub fn store(&self) -> &Store {
        &self.store
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
            let keys = self.store.put_batch(&objs)?;
            let events = keys
                .into_iter()
                .zip(metas)
                .map(|(key, metadata)| Event::ObjectKey {
                    store: self.store.config().clone(),
                    key,
                    evict: self.evict,
                    metadata,
                })
                .collect();
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
        let msg = EventBatch {
            version: EVENT_VERSION,
            topic: topic.to_string(),
            events,
        }
        .encode()?;
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

/// Yields a proxy per object of a stream.
pub struct StreamConsumer<T> {
    subscriber: Box<dyn Subscriber>,
    timeout: Option<Duration>,
    filter: Option<Filter>,
    queue: VecDeque<Event>,
    ended: bool,
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

    /// The next proxy and its metadata; `None` after the end of stream.
    pub fn next_with_metadata(&mut self) -> Result<Option<(Proxy<T>, Metadata)>> {
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
                    if self.filter.as_ref().is_some_and(|f| f(&metadata)) {
                        if evict {
                            store.evict(&key)?;
                        }
                        continue;
                    }
                    return Ok(Some((store.proxy_from_key(key, evict), metadata)));
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
            self.queue.extend(EventBatch::decode(&msg)?.events);
        }
    }

    /// The next proxy; `None` after the end of stream.
    pub fn next_proxy(&mut self) -> Result<Option<Proxy<T>>> {
        Ok(self.next_with_metadata()?.map(|(p, _)| p))
    }

    /// The next object, resolved now ([`Error::MissingKey`] if it was
    /// evicted before it was read); `None` after the end of stream.
    pub fn next_object(&mut self) -> Result<Option<T>> {
        match self.next_proxy()? {
            None => Ok(None),
            Some(p) => p.into_inner().map(Some),
        }
    }
}

impl<T: Object> Iterator for StreamConsumer<T> {
    type Item = Result<Proxy<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_proxy().transpose()
    }
}
