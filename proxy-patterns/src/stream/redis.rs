//! Redis brokers: pub/sub (fan-out, lossy without subscribers) and lists
//! (`RPUSH`/`BLPOP`: each message to one consumer, kept until read).
//!
//! Connections are made lazily and again after a failure; every failure is
//! a [`Error::Connector`] naming the server (temporary when the server
//! could not be reached or the connection dropped).

use std::time::Duration;

use proxy_core::{Error, Result};
use redis::{Connection, Value};

use super::{Publisher, Subscriber};

const KIND: &str = "redis-broker";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily (re)connected connection to one server.
pub(super) struct Link {
    addr: String,
    client: redis::Client,
    conn: Option<Connection>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)
    }
}

impl Link {
    pub(super) fn new(host: &str, port: u16) -> Result<Link> {
        let addr = format!("{host}:{port}");
        let client = redis::Client::open(format!("redis://{addr}/"))
            .map_err(|e| Error::config(KIND, format!("address {addr}: {e}")))?;
        Ok(Link {
            addr,
            client,
            conn: None,
        })
    }

    pub(super) fn err(&self, op: &'static str, e: redis::RedisError) -> Error {
        let temporary = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout();
        Error::connector(KIND, op, temporary, format!("broker {}: {e}", self.addr))
    }

    pub(super) fn conn(&mut self, op: &'static str) -> Result<&mut Connection> {
        if self.conn.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(CONNECT_TIMEOUT)
                .map_err(|e| self.err(op, e))?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Run `f`; a failed connection is dropped (the next call reconnects).
    pub(super) fn run<T>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let r = f(self.conn(op)?);
        r.map_err(|e| {
            self.conn = None;
            self.err(op, e)
        })
    }
}

/// Publishes with `PUBLISH` (fan-out to the subscribers connected now).
#[derive(Debug)]
pub struct RedisPublisher {
    link: Link,
}

impl RedisPublisher {
    /// A publisher to the server at `host:port` (connects on first send).
    pub fn new(host: &str, port: u16) -> Result<Self> {
        Ok(RedisPublisher {
            link: Link::new(host, port)?,
        })
    }
}

impl Publisher for RedisPublisher {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        self.link.run("publish", |c| {
            redis::cmd("PUBLISH")
                .arg(topic)
                .arg(message)
                .query::<i64>(c)
                .map(drop)
        })
    }

    fn close(&mut self) -> Result<()> {
        self.link.conn = None;
        Ok(())
    }
}

/// Subscribes with `SUBSCRIBE` (connected and subscribed when made, so it
/// receives every message published after [`RedisSubscriber::new`] returns).
#[derive(Debug)]
pub struct RedisSubscriber {
    link: Link,
    topics: Vec<String>,
}

impl RedisSubscriber {
    /// Subscribe to `topics` on the server at `host:port`.
    pub fn new(host: &str, port: u16, topics: &[&str]) -> Result<Self> {
        let mut s = RedisSubscriber {
            link: Link::new(host, port)?,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        };
        s.subscribe()?;
        Ok(s)
    }

    fn subscribe(&mut self) -> Result<()> {
        let topics = self.topics.clone();
        self.link.run("subscribe", |c| {
            let mut cmd = redis::cmd("SUBSCRIBE");
            for t in &topics {
                cmd.arg(t);
            }
            c.send_packed_command(&cmd.get_packed_command())?;
            for _ in &topics {
                c.recv_response()?; // ["subscribe", topic, count]
            }
            Ok(())
        })
    }
}

impl Subscriber for RedisSubscriber {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        if self.link.conn.is_none() {
            // Lost earlier: messages published meanwhile are gone (pub/sub).
            self.subscribe()?;
        }
        let conn = self.link.conn("subscribe")?;
        if let Err(e) = conn.set_read_timeout(timeout) {
            return Err(self.link.err("subscribe", e));
        }
        loop {
            let conn = self.link.conn("subscribe")?;
            match conn.recv_response() {
                Ok(Value::Array(items)) | Ok(Value::Push { data: items, .. }) => {
                    let mut it = items.into_iter();
                    if let (
                        Some(Value::BulkString(kind)),
                        Some(_),
                        Some(Value::BulkString(payload)),
                    ) = (it.next(), it.next(), it.next())
                        && kind == b"message"
                    {
                        return Ok(Some(payload));
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {
                    // A timeout may split a message: start over on a new connection.
                    self.link.conn = None;
                    return Ok(None);
                }
                Err(e) => {
                    self.link.conn = None;
                    return Err(self.link.err("subscribe", e));
                }
            }
        }
    }
}

/// Publishes with `RPUSH` to a list named after the topic.
#[derive(Debug)]
pub struct RedisQueuePublisher {
    link: Link,
}

impl RedisQueuePublisher {
    /// A queue publisher to the server at `host:port`.
    pub fn new(host: &str, port: u16) -> Result<Self> {
        Ok(RedisQueuePublisher {
            link: Link::new(host, port)?,
        })
    }
}

impl Publisher for RedisQueuePublisher {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        self.link.run("rpush", |c| {
            redis::cmd("RPUSH")
                .arg(topic)
                .arg(message)
                .query::<i64>(c)
                .map(drop)
        })
    }

    fn close(&mut self) -> Result<()> {
        self.link.conn = None;
        Ok(())
    }
}

/// Pops messages with `BLPOP` from the list of one topic.
#[derive(Debug)]
pub struct RedisQueueSubscriber {
    link: Link,
    topic: String,
}

impl RedisQueueSubscriber {
    /// A consumer of the list `topic` on the server at `host:port`
    /// (connects now, so an unreachable server is an error here).
    pub fn new(host: &str, port: u16, topic: &str) -> Result<Self> {
        let mut link = Link::new(host, port)?;
        link.conn("blpop")?;
        Ok(RedisQueueSubscriber {
            link,
            topic: topic.to_string(),
        })
    }
}

impl Subscriber for RedisQueueSubscriber {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let topic = self.topic.clone();
        // BLPOP's timeout is in seconds (0 = forever); the socket waits a bit longer.
        let secs = timeout.map_or(0.0, |t| t.as_secs_f64().max(0.001));
        let sock = timeout.map(|t| t + Duration::from_secs(5));
        self.link.run("blpop", |c| {
            c.set_read_timeout(sock)?;
            let v: Option<(Vec<u8>, Vec<u8>)> =
                redis::cmd("BLPOP").arg(&topic).arg(secs).query(c)?;
            Ok(v.map(|(_, m)| m))
        })
    }
}
