//! Kafka, as the Python ProxyStore's `proxystore.stream.shims.kafka`: each
//! stream message is one record (no key, the event batch as its value) in
//! the Kafka topic of the stream's name, produced and acknowledged one at a
//! time (ProxyStore's `KafkaPublisher` calls `produce` then `flush`). Over
//! [`rskafka`], a pure-Rust client, so it needs no librdkafka; it speaks to
//! `confluent-kafka` (librdkafka) producers and consumers both ways.
//!
//! **One partition.** A stream is ordered (its end comes after its last
//! object), and Kafka orders records only within a partition, so a topic
//! this shim creates has one partition, and it reads and writes partition
//! 0. Both sides create the topic when it is missing (one partition,
//! replication factor 1); create a topic for more replicas yourself, with
//! one partition.
//!
//! **Offsets, no consumer group.** A [`KafkaSubscriber`] reads partition 0
//! from where [`KafkaStart`] says and keeps its position in memory; every
//! subscriber sees every record (like pub/sub, but nothing is lost for a
//! subscriber that starts late from [`KafkaStart::Earliest`]). Python's
//! `KafkaSubscriber` reads through a consumer group; the records are the
//! same.
//!
//! **Failures.** Every call is bounded by the shim's timeout (default 30 s,
//! [`KafkaPublisher::with_timeout`]): a broker that is down is a temporary
//! [`Error::Connector`] naming it, never a hang, and the next call
//! connects again. A broker that came back without its records (an
//! in-memory broker that restarted) is told apart: the subscriber's offset
//! is then past the partition's end, and it goes on from the new end,
//! having lost what the old broker held (an error would never clear).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::{Error, Result};
use rskafka::BackoffConfig;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use super::{Publisher, Subscriber};

const KIND: &str = "kafka-broker";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fetch may wait at the broker for a first record.
const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(100);
/// Largest record this shim fetches (an event batch, or an object sent
/// inline): the client's frame limit and the fetch size.
const MAX_RECORD: usize = 64 << 20;

/// Where a new [`KafkaSubscriber`] starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaStart {
    /// At the oldest record the broker keeps (Kafka's
    /// `auto.offset.reset=earliest`): nothing published before the
    /// subscriber started is missed.
    Earliest,
    /// After the last record: only what is published from now on.
    Latest,
    /// At this offset.
    Offset(i64),
}

/// A lazily (re)connected client on its own single-threaded runtime.
struct Link {
    bootstrap: Vec<String>,
    rt: tokio::runtime::Runtime,
    client: Option<Arc<Client>>,
    timeout: Duration,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.bootstrap.join(","))
    }
}

fn temporary(e: &KafkaError) -> bool {
    match e {
        KafkaError::Connection(_)
        | KafkaError::Request(_)
        | KafkaError::RetryFailed(_)
        | KafkaError::Timeout => true,
        KafkaError::ServerError { protocol_error, .. } => matches!(
            protocol_error,
            ProtocolError::UnknownTopicOrPartition
                | ProtocolError::LeaderNotAvailable
                | ProtocolError::NotLeaderOrFollower
                | ProtocolError::RequestTimedOut
                | ProtocolError::NetworkException
                | ProtocolError::CoordinatorNotAvailable
                | ProtocolError::NotEnoughReplicas
        ),
        _ => false,
    }
}

fn protocol_error(e: &KafkaError) -> Option<ProtocolError> {
    match e {
        KafkaError::ServerError { protocol_error, .. } => Some(*protocol_error),
        _ => None,
    }
}

impl Link {
    fn new(bootstrap: &str, timeout: Duration) -> Result<Link> {
        let brokers: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if brokers.is_empty() || brokers.iter().any(|b| !b.contains(':')) {
            return Err(Error::config(
                KIND,
                format!("bootstrap servers {bootstrap:?}: expected HOST:PORT[,HOST:PORT...]"),
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::config(KIND, format!("tokio runtime: {e}")))?;
        Ok(Link {
            bootstrap: brokers,
            rt,
            client: None,
            timeout,
        })
    }

    fn fail(&mut self, op: &'static str, e: KafkaError) -> Error {
        let temp = temporary(&e);
        if temp {
            // Reconnect (and look the leader up again) on the next call.
            self.client = None;
        }
        Error::connector(
            KIND,
            op,
            temp,
            format!("Kafka broker {}: {e}", self.bootstrap.join(",")),
        )
    }

    fn timed_out(&mut self, op: &'static str) -> Error {
        self.client = None;
        Error::connector(
            KIND,
            op,
            true,
            format!(
                "Kafka broker {}: no answer in {:?}",
                self.bootstrap.join(","),
                self.timeout
            ),
        )
    }

    /// Run `fut` on the runtime for at most `after`; `None` when it did
    /// not finish in time.
    fn run<T>(
        &self,
        after: Duration,
        fut: impl Future<Output = std::result::Result<T, KafkaError>>,
    ) -> Option<std::result::Result<T, KafkaError>> {
        self.rt
            .block_on(async move { tokio::time::timeout(after, fut).await })
            .ok()
    }

    /// Run `fut` on the runtime, bounded by the timeout.
    fn block<T>(
        &mut self,
        op: &'static str,
        fut: impl Future<Output = std::result::Result<T, KafkaError>>,
    ) -> Result<T> {
        match self.run(self.timeout, fut) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(self.fail(op, e)),
            None => Err(self.timed_out(op)),
        }
    }

    fn client(&mut self) -> Result<Arc<Client>> {
        if self.client.is_none() {
            let builder = ClientBuilder::new(self.bootstrap.clone())
                .client_id("proxystore-rs")
                .max_message_size(MAX_RECORD + (1 << 20))
                .backoff_config(BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                    deadline: Some(self.timeout),
                });
            let c = self.block("connect", builder.build())?;
            self.client = Some(Arc::new(c));
        }
        Ok(Arc::clone(self.client.as_ref().expect("connected above")))
    }

    /// Partition 0 of `topic`, creating the topic (one partition) when the
    /// broker does not know it.
    fn partition(&mut self, topic: &str) -> Result<PartitionClient> {
        if topic.is_empty() {
            return Err(Error::config(KIND, "a Kafka topic cannot be empty"));
        }
        let client = self.client()?;
        let exists = self
            .block("list topics", client.list_topics())?
            .iter()
            .any(|t| t.name == topic);
        if !exists {
            let controller = client
                .controller_client()
                .map_err(|e| Error::connector(KIND, "create topic", false, e.to_string()))?;
            let ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
            match self.run(self.timeout, controller.create_topic(topic, 1, 1, ms)) {
                Some(Ok(())) => {}
                Some(Err(e)) if protocol_error(&e) == Some(ProtocolError::TopicAlreadyExists) => {}
                Some(Err(e)) => return Err(self.fail("create topic", e)),
                None => return Err(self.timed_out("create topic")),
            }
        }
        let fut = client.partition_client(topic.to_string(), 0, UnknownTopicHandling::Retry);
        self.block("partition leader", fut)
    }
}

/// The time now as a record's timestamp (milliseconds).
fn now() -> rskafka::chrono::DateTime<rskafka::chrono::Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    rskafka::chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Publishes each message as one Kafka record and waits for the broker's
/// acknowledgement.
#[derive(Debug)]
pub struct KafkaPublisher {
    link: Link,
    partitions: Vec<(String, PartitionClient)>,
}

impl KafkaPublisher {
    /// A publisher to the brokers `bootstrap` (`HOST:PORT[,HOST:PORT...]`,
    /// Kafka's `bootstrap.servers`); connects on the first message.
    pub fn new(bootstrap: &str) -> Result<Self> {
        Self::with_timeout(bootstrap, DEFAULT_TIMEOUT)
    }

    /// [`KafkaPublisher::new`] with every broker call bounded by `timeout`.
    pub fn with_timeout(bootstrap: &str, timeout: Duration) -> Result<Self> {
        Ok(KafkaPublisher {
            link: Link::new(bootstrap, timeout)?,
            partitions: Vec::new(),
        })
    }

    /// Connect and make sure `topic` exists (creating it with one
    /// partition), before a consumer that cannot create it subscribes
    /// (librdkafka's consumer reports a missing topic as an error).
    pub fn create_topic(&mut self, topic: &str) -> Result<()> {
        self.partition(topic).map(drop)
    }

    fn partition(&mut self, topic: &str) -> Result<usize> {
        if let Some(i) = self.partitions.iter().position(|(t, _)| t == topic) {
            return Ok(i);
        }
        let p = self.link.partition(topic)?;
        self.partitions.push((topic.to_string(), p));
        Ok(self.partitions.len() - 1)
    }
}

impl Publisher for KafkaPublisher {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        if message.len() > MAX_RECORD {
            return Err(Error::connector(
                KIND,
                "produce",
                false,
                format!(
                    "a message of {} bytes is over this shim's record limit of {MAX_RECORD} bytes (send objects through a store)",
                    message.len()
                ),
            ));
        }
        let i = self.partition(topic)?;
        let record = Record {
            key: None,
            value: Some(message.to_vec()),
            headers: Default::default(),
            timestamp: now(),
        };
        let fut = self.partitions[i]
            .1
            .produce(vec![record], Compression::NoCompression);
        let r = self.link.block("produce", fut);
        if let Err(e) = &r
            && e.is_temporary()
        {
            // The broker may have come back without the topic: look it up
            // (and create it) again on the next message.
            self.partitions.swap_remove(i);
        }
        r.map(drop)
    }
}

/// Reads the records of one topic's partition 0 in order.
#[derive(Debug)]
pub struct KafkaSubscriber {
    link: Link,
    topic: String,
    partition: Option<PartitionClient>,
    start: KafkaStart,
    /// The offset of the next record to read (known once connected).
    next: Option<i64>,
    ready: VecDeque<Vec<u8>>,
    fetch_wait: Duration,
    /// The last fetch returned records: the next one does not wait.
    flowing: bool,
}

impl KafkaSubscriber {
    /// A subscriber to `topic` at the brokers `bootstrap`
    /// (`HOST:PORT[,HOST:PORT...]`), starting at `start`. Connects now, so
    /// [`KafkaStart::Latest`] means "after what is there now"; the topic
    /// is created when missing.
    pub fn new(bootstrap: &str, topic: &str, start: KafkaStart) -> Result<Self> {
        Self::with_timeout(bootstrap, topic, start, DEFAULT_TIMEOUT)
    }

    /// [`KafkaSubscriber::new`] with every broker call bounded by `timeout`.
    pub fn with_timeout(
        bootstrap: &str,
        topic: &str,
        start: KafkaStart,
        timeout: Duration,
    ) -> Result<Self> {
        let mut s = KafkaSubscriber {
            link: Link::new(bootstrap, timeout)?,
            topic: topic.to_string(),
            partition: None,
            start,
            next: None,
            ready: VecDeque::new(),
            fetch_wait: DEFAULT_FETCH_WAIT,
            flowing: false,
        };
        s.connect()?;
        Ok(s)
    }

    /// How long one fetch may wait at the broker for a first record when
    /// none is there (Kafka's `fetch.max.wait.ms`; default 100 ms). After a
    /// fetch that returned records the next one does not wait, so a busy
    /// stream is read back to back. Kafka answers a waiting fetch when the
    /// first record arrives; some brokers (tansu 0.6) sleep at least half
    /// of this wait even when records are ready, and a shorter wait then
    /// lowers the latency of a sparse stream at the cost of more requests
    /// while it is idle.
    pub fn fetch_wait(mut self, wait: Duration) -> Self {
        self.fetch_wait = wait;
        self
    }

    /// The offset of the next record this subscriber reads.
    pub fn position(&self) -> Option<i64> {
        self.next
    }

    fn connect(&mut self) -> Result<()> {
        if self.partition.is_some() {
            return Ok(());
        }
        let p = self.link.partition(&self.topic)?;
        if self.next.is_none() {
            self.next = Some(match self.start {
                KafkaStart::Offset(o) => o,
                KafkaStart::Earliest => self
                    .link
                    .block("offset", p.get_offset(OffsetAt::Earliest))?,
                KafkaStart::Latest => self.link.block("offset", p.get_offset(OffsetAt::Latest))?,
            });
        }
        self.partition = Some(p);
        Ok(())
    }

    /// One fetch of up to `wait`; fills `ready`.
    fn fetch(&mut self, wait: Duration) -> Result<()> {
        self.connect()?;
        let offset = self.next.expect("set by connect");
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        let p = self.partition.as_ref().expect("connected above");
        let fut = p.fetch_records(offset, 1..MAX_RECORD as i32, ms);
        let (records, high) = match self.link.run(self.link.timeout + wait, fut) {
            Some(Ok(v)) => v,
            Some(Err(e)) if protocol_error(&e) == Some(ProtocolError::OffsetOutOfRange) => {
                // The broker lost records (an in-memory broker restarted):
                // go on from its end rather than fail forever.
                let end = self.link.block("offset", p.get_offset(OffsetAt::Latest))?;
                if end < offset {
                    self.next = Some(end);
                    return Ok(());
                }
                return Err(self.link.fail("fetch", e));
            }
            Some(Err(e)) => {
                let e = self.link.fail("fetch", e);
                if e.is_temporary() {
                    self.partition = None;
                }
                return Err(e);
            }
            None => {
                self.partition = None;
                return Err(self.link.timed_out("fetch"));
            }
        };
        if records.is_empty() && high < offset {
            // Same as above, seen through the high watermark.
            self.next = Some(high);
        }
        self.flowing = !records.is_empty();
        for r in records {
            if r.offset < offset {
                continue;
            }
            self.next = Some(r.offset + 1);
            // A record without a value (a tombstone) is no stream message.
            if let Some(v) = r.record.value {
                self.ready.push_back(v);
            }
        }
        Ok(())
    }
}

impl Subscriber for KafkaSubscriber {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(Some(m));
            }
            let wait = match deadline {
                None => self.fetch_wait,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.min(self.fetch_wait)
                }
            };
            self.fetch(if self.flowing { Duration::ZERO } else { wait })?;
        }
    }
}
