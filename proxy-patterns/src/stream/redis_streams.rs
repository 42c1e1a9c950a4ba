//! Redis Streams with consumer groups and acknowledgements (beyond the
//! Python ProxyStore's shims): a consumer that dies loses nothing.
//!
//! - [`RedisStreamPublisher`] appends each event batch to the stream named
//!   after the topic (`XADD topic * m <batch>`); entries stay until trimmed.
//! - [`RedisStreamSubscriber`] reads as one consumer of a group
//!   (`XREADGROUP`, the group made with `MKSTREAM` if missing): each entry
//!   goes to one consumer of the group. An entry stays pending until the
//!   consumer acknowledges it ([`StreamConsumer::ack`](super::StreamConsumer::ack),
//!   `XACK`). Before reading new entries, a subscriber takes over (`XAUTOCLAIM`)
//!   the entries other consumers of its group left pending for longer than
//!   its `claim_after` (a consumer that was killed, or one that hangs), and
//!   re-reads its own pending entries when it starts again under the same
//!   name.
//!
//! Delivery is at least once: an entry is read again after a consumer died
//! before acknowledging it (or took longer than `claim_after`). A
//! [`StreamConsumer`](super::StreamConsumer) over this subscriber defers the
//! eviction of `evict` objects to the acknowledgement: an object is evicted
//! only after its event is acknowledged, so a consumer killed before that
//! leaves it for the consumer that claims the event (one killed between the
//! acknowledgement and the eviction leaves the object in the store).
//!
//! The end of stream is one event: in a group, one consumer receives it;
//! the others end on their timeout.
//!
//! A server that goes away is a temporary [`Error::Connector`](proxy_core::Error::Connector)
//! (the publisher keeps the batch for its next flush); when it comes back
//! without the stream (no persistence), a subscriber makes the group again
//! and reads what is published from then on.

use std::collections::VecDeque;
use std::time::Duration;

use proxy_core::Result;
use redis::Value;

use super::redis::Link;
use super::{Publisher, Subscriber};

const FIELD: &str = "m";
/// Entries taken over per `XAUTOCLAIM`.
const CLAIM_COUNT: usize = 100;

/// Appends event batches to a Redis stream per topic (`XADD`).
#[derive(Debug)]
pub struct RedisStreamPublisher {
    link: Link,
}

impl RedisStreamPublisher {
    /// A publisher to the server at `host:port` (connects on first send).
    pub fn new(host: &str, port: u16) -> Result<Self> {
        Ok(RedisStreamPublisher {
            link: Link::new(host, port)?,
        })
    }
}

impl Publisher for RedisStreamPublisher {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        self.link.run("xadd", |c| {
            redis::cmd("XADD")
                .arg(topic)
                .arg("*")
                .arg(FIELD)
                .arg(message)
                .query::<Value>(c)
                .map(drop)
        })
    }
}

/// One consumer of a consumer group of a Redis stream.
#[derive(Debug)]
pub struct RedisStreamSubscriber {
    link: Link,
    topic: String,
    group: String,
    consumer: String,
    claim_after: Duration,
    /// Entries read but not handed out yet.
    ready: VecDeque<(String, Vec<u8>)>,
    /// Entries handed out and not acknowledged, oldest first.
    delivered: Vec<String>,
    /// Still re-reading this consumer's own pending entries (from `last`).
    recovering: Option<String>,
}

/// `[[id, [field, value, ...]], ...]` -> `(id, value of FIELD)`; entries
/// without the field (deleted) are skipped.
fn entries(v: &Value, out: &mut VecDeque<(String, Vec<u8>)>) {
    let Value::Array(list) = v else { return };
    for e in list {
        let Value::Array(pair) = e else { continue };
        let [Value::BulkString(id), Value::Array(fields)] = pair.as_slice() else {
            continue;
        };
        let id = String::from_utf8_lossy(id).into_owned();
        for kv in fields.chunks(2) {
            if let [Value::BulkString(k), Value::BulkString(m)] = kv
                && k == FIELD.as_bytes()
            {
                out.push_back((id.clone(), m.clone()));
            }
        }
    }
}

/// The entries of `XREADGROUP`'s reply (`[[stream, entries]]` or nil).
fn read_reply(v: &Value, out: &mut VecDeque<(String, Vec<u8>)>) {
    let list = match v {
        Value::Array(l) => l,
        Value::Map(m) => {
            for (_, e) in m {
                entries(e, out);
            }
            return;
        }
        _ => return,
    };
    for s in list {
        if let Value::Array(pair) = s
            && let [_, e] = pair.as_slice()
        {
            entries(e, out);
        }
    }
}

/// `XGROUP CREATE topic group 0 MKSTREAM`; an existing group is fine.
fn create_group(link: &mut Link, topic: &str, group: &str) -> Result<()> {
    link.run("xgroup", |c| {
        match redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(topic)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query::<Value>(c)
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    })
}

impl RedisStreamSubscriber {
    /// Consumer `consumer` of group `group` of the stream `topic` on the
    /// server at `host:port` (the group is created, reading from the
    /// stream's start, if missing). Connects now: an unreachable server is
    /// an error here. Entries pending for longer than 30 s at another
    /// consumer of the group are taken over (see
    /// [`RedisStreamSubscriber::claim_after`]).
    pub fn new(host: &str, port: u16, topic: &str, group: &str, consumer: &str) -> Result<Self> {
        let mut link = Link::new(host, port)?;
        create_group(&mut link, topic, group)?;
        Ok(RedisStreamSubscriber {
            link,
            topic: topic.into(),
            group: group.into(),
            consumer: consumer.into(),
            claim_after: Duration::from_secs(30),
            ready: VecDeque::new(),
            delivered: Vec::new(),
            recovering: Some("0".into()),
        })
    }

    /// Take over entries pending at another consumer for longer than
    /// `after` (default 30 s): longer than any consumer takes to handle
    /// and acknowledge an event, or entries are read twice.
    pub fn claim_after(mut self, after: Duration) -> Self {
        self.claim_after = after;
        self
    }

    /// Entries handed out and not acknowledged yet.
    pub fn unacknowledged(&self) -> usize {
        self.delivered.len()
    }

    /// `XREADGROUP ... STREAMS topic from`, blocking `(ms, timeout)` if given.
    fn xreadgroup(&mut self, from: &str, block: Option<(u64, Option<Duration>)>) -> Result<Value> {
        let (topic, group, me) = (&self.topic, &self.group, &self.consumer);
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(group).arg(me);
        cmd.arg("COUNT").arg(CLAIM_COUNT);
        if let Some((ms, _)) = block {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(topic).arg(from);
        // The socket waits a little longer than the server blocks.
        let sock = block
            .and_then(|(_, t)| t)
            .map(|t| t + Duration::from_secs(5));
        self.link.run("xreadgroup", |c| {
            if block.is_some() {
                c.set_read_timeout(sock)?;
            }
            cmd.query::<Value>(c)
        })
    }

    fn fill(&mut self, timeout: Option<Duration>) -> Result<()> {
        let (topic, group, me) = (
            self.topic.clone(),
            self.group.clone(),
            self.consumer.clone(),
        );
        // 1. This consumer's own pending entries (a restart under its name).
        while let Some(from) = self.recovering.clone() {
            let v = self.xreadgroup(&from, None)?;
            let before = self.ready.len();
            read_reply(&v, &mut self.ready);
            self.recovering = self.ready.back().map(|(id, _)| id.clone());
            if self.ready.len() == before {
                self.recovering = None;
            }
            if !self.ready.is_empty() {
                return Ok(());
            }
        }
        // 2. Entries a dead (or stuck) consumer left pending.
        let idle = self.claim_after.as_millis() as u64;
        let v = self.link.run("xautoclaim", |c| {
            redis::cmd("XAUTOCLAIM")
                .arg(&topic)
                .arg(&group)
                .arg(&me)
                .arg(idle)
                .arg("0-0")
                .arg("COUNT")
                .arg(CLAIM_COUNT)
                .query::<Value>(c)
        })?;
        if let Value::Array(parts) = &v
            && let Some(e) = parts.get(1)
        {
            entries(e, &mut self.ready);
        }
        if !self.ready.is_empty() {
            return Ok(());
        }
        // 3. New entries, waiting up to the timeout (0: forever).
        let block = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        let v = self.xreadgroup(">", Some((block, timeout)))?;
        read_reply(&v, &mut self.ready);
        Ok(())
    }
}

impl Subscriber for RedisStreamSubscriber {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        if self.ready.is_empty() {
            match self.fill(timeout) {
                // The server lost the stream and its group (a restart without
                // persistence, a FLUSHALL): make them again and read on.
                Err(e) if e.to_string().contains("NOGROUP") => {
                    create_group(&mut self.link, &self.topic, &self.group)?;
                    self.delivered.clear();
                    self.fill(timeout)?;
                }
                r => r?,
            }
        }
        Ok(self.ready.pop_front().map(|(id, m)| {
            self.delivered.push(id);
            m
        }))
    }

    fn ack(&mut self, keep_last: bool) -> Result<()> {
        let n = self.delivered.len() - usize::from(keep_last && !self.delivered.is_empty());
        if n == 0 {
            return Ok(());
        }
        let ids: Vec<String> = self.delivered[..n].to_vec();
        let (topic, group) = (self.topic.clone(), self.group.clone());
        self.link.run("xack", |c| {
            redis::cmd("XACK")
                .arg(&topic)
                .arg(&group)
                .arg(&ids)
                .query::<i64>(c)
                .map(drop)
        })?;
        self.delivered.drain(..n);
        Ok(())
    }

    fn acknowledges(&self) -> bool {
        true
    }
}
