//! ZeroMQ PUB/SUB, as the Python ProxyStore's
//! `proxystore.stream.shims.zmq`: brokerless, the publisher binds
//! `tcp://{address}:{port}`, subscribers connect to it; each message is two
//! frames, the topic (UTF-8) and the event batch. Over the system's libzmq
//! (Debian `libzmq3-dev`), so it speaks to pyzmq's sockets both ways.
//!
//! Like every PUB/SUB, it is lossy: a subscriber receives only what is
//! published after its subscription reached the publisher (ZeroMQ's "slow
//! joiner"), and a publisher drops messages for a subscriber that is more
//! than the high-water mark (1000 messages) behind.
//! [`ZmqPublisher::wait_for_subscribers`] waits until subscriptions have
//! arrived (the publisher is an `XPUB` socket, which sees them; on the wire
//! it is a `PUB` to its peers).
//!
//! ZeroMQ filters by topic prefix; [`ZmqSubscriber`] also drops messages
//! whose topic frame is not exactly its topic (ProxyStore's subscriber
//! passes them on), so a consumer of `sim` never reads `sim2`'s events.

use std::time::{Duration, Instant};

use proxy_core::{Error, Result};

use super::{Publisher, Subscriber};

const KIND: &str = "zmq-broker";

fn err(op: &'static str, endpoint: &str, e: ::zmq::Error) -> Error {
    // Interrupted calls and full queues are worth a retry; the rest are not.
    let temporary = matches!(e, ::zmq::Error::EINTR | ::zmq::Error::EAGAIN);
    Error::connector(KIND, op, temporary, format!("{endpoint}: {e}"))
}

/// Publishes with a ZeroMQ `XPUB` socket (a `PUB` to its peers).
pub struct ZmqPublisher {
    endpoint: String,
    socket: ::zmq::Socket,
    subscriptions: Vec<Vec<u8>>,
    _ctx: ::zmq::Context,
}

impl std::fmt::Debug for ZmqPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZmqPublisher({})", self.endpoint)
    }
}

impl ZmqPublisher {
    /// Bind `tcp://{address}:{port}` (port 0: a free port, see
    /// [`ZmqPublisher::endpoint`]).
    pub fn bind(address: &str, port: u16) -> Result<Self> {
        Self::bind_with_hwm(address, port, 1000)
    }

    /// [`ZmqPublisher::bind`] with a high-water mark of `messages` per
    /// subscriber (0: no limit, nothing dropped, memory grows with a slow
    /// subscriber; ZeroMQ's default is 1000).
    pub fn bind_with_hwm(address: &str, port: u16, messages: i32) -> Result<Self> {
        let want = format!("tcp://{address}:{port}");
        let ctx = ::zmq::Context::new();
        let socket = ctx
            .socket(::zmq::XPUB)
            .map_err(|e| err("socket", &want, e))?;
        socket
            .set_sndhwm(messages)
            .map_err(|e| err("setsockopt", &want, e))?;
        // Every subscribe message, also repeated ones (one per subscriber).
        socket
            .set_xpub_verbose(true)
            .map_err(|e| err("setsockopt", &want, e))?;
        socket
            .set_linger(1000)
            .map_err(|e| err("setsockopt", &want, e))?;
        socket.bind(&want).map_err(|e| err("bind", &want, e))?;
        let endpoint = socket
            .get_last_endpoint()
            .map_err(|e| err("bind", &want, e))?
            .unwrap_or(want);
        Ok(ZmqPublisher {
            endpoint,
            socket,
            subscriptions: Vec::new(),
            _ctx: ctx,
        })
    }

    /// The bound endpoint (`tcp://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Wait until `n` subscriptions that match `topic` reached this
    /// publisher (subscribing to a prefix of `topic`, or to everything);
    /// [`Error::Timeout`] after `timeout`.
    pub fn wait_for_subscribers(&mut self, topic: &str, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let matching = self
                .subscriptions
                .iter()
                .filter(|s| topic.as_bytes().starts_with(s))
                .count();
            if matching >= n {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    connector: KIND.into(),
                    operation: "waiting for ZeroMQ subscribers",
                    after: timeout,
                });
            }
            let ready = self
                .socket
                .poll(::zmq::POLLIN, left.as_millis().max(1) as i64)
                .map_err(|e| err("poll", &self.endpoint, e))?;
            if ready > 0 {
                self.read_subscription()?;
            }
        }
    }

    fn read_subscription(&mut self) -> Result<()> {
        let m = self
            .socket
            .recv_bytes(::zmq::DONTWAIT)
            .map_err(|e| err("recv", &self.endpoint, e))?;
        match m.split_first() {
            Some((1, t)) => self.subscriptions.push(t.to_vec()),
            Some((0, t)) => {
                if let Some(i) = self.subscriptions.iter().position(|s| s == t) {
                    self.subscriptions.swap_remove(i);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Publisher for ZmqPublisher {
    fn send(&mut self, topic: &str, message: &[u8]) -> Result<()> {
        // Keep the subscription queue short (and the count current).
        while self.socket.poll(::zmq::POLLIN, 0).unwrap_or(0) > 0 {
            self.read_subscription()?;
        }
        self.socket
            .send_multipart([topic.as_bytes(), message], 0)
            .map_err(|e| err("send", &self.endpoint, e))
    }
}

/// Receives with a ZeroMQ `SUB` socket subscribed to one topic.
pub struct ZmqSubscriber {
    endpoint: String,
    topic: Vec<u8>,
    socket: ::zmq::Socket,
    _ctx: ::zmq::Context,
}

impl std::fmt::Debug for ZmqSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZmqSubscriber({})", self.endpoint)
    }
}

impl ZmqSubscriber {
    /// Connect to the publisher at `tcp://{address}:{port}` and subscribe
    /// to `topic` (`""`: every topic). ZeroMQ connects in the background:
    /// no error if the publisher is not up. After the publisher restarts,
    /// the subscriber reconnects and subscribes again while it waits in
    /// [`Subscriber::next_message`] (libzmq finishes a reconnection in the
    /// calls of the socket's thread); what was published meanwhile is lost.
    pub fn connect(address: &str, port: u16, topic: &str) -> Result<Self> {
        Self::connect_with_hwm(address, port, topic, 1000)
    }

    /// [`ZmqSubscriber::connect`] with a receive high-water mark of
    /// `messages` (0: no limit; ZeroMQ's default is 1000).
    pub fn connect_with_hwm(address: &str, port: u16, topic: &str, messages: i32) -> Result<Self> {
        let endpoint = format!("tcp://{address}:{port}");
        let ctx = ::zmq::Context::new();
        let socket = ctx
            .socket(::zmq::SUB)
            .map_err(|e| err("socket", &endpoint, e))?;
        socket
            .set_rcvhwm(messages)
            .map_err(|e| err("setsockopt", &endpoint, e))?;
        socket
            .set_linger(0)
            .map_err(|e| err("setsockopt", &endpoint, e))?;
        socket
            .connect(&endpoint)
            .map_err(|e| err("connect", &endpoint, e))?;
        socket
            .set_subscribe(topic.as_bytes())
            .map_err(|e| err("subscribe", &endpoint, e))?;
        Ok(ZmqSubscriber {
            endpoint,
            topic: topic.as_bytes().to_vec(),
            socket,
            _ctx: ctx,
        })
    }
}

impl Subscriber for ZmqSubscriber {
    fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let wait = match deadline {
                None => -1,
                Some(d) => d.saturating_duration_since(Instant::now()).as_millis() as i64,
            };
            let ready = self
                .socket
                .poll(::zmq::POLLIN, wait)
                .map_err(|e| err("poll", &self.endpoint, e))?;
            if ready == 0 {
                return Ok(None);
            }
            let mut frames = self
                .socket
                .recv_multipart(0)
                .map_err(|e| err("recv", &self.endpoint, e))?;
            if frames.len() != 2 {
                return Err(Error::decode(format!(
                    "ZeroMQ message of {} frames from {} (a stream message has two: topic, event batch)",
                    frames.len(),
                    self.endpoint
                )));
            }
            if self.topic.is_empty() || frames[0] == self.topic {
                return Ok(frames.pop());
            }
        }
    }
}
