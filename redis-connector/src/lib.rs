//! # redis-connector
//!
//! A [`Connector`] for proxystore-rs that keeps objects in a Redis server,
//! compatible with the Python ProxyStore's `RedisConnector`
//! (`proxystore.connectors.redis`): an object one side stores is read by the
//! other from its key.
//!
//! ```no_run
//! use proxy_core::{Proxy, Store};
//! use redis_connector::RedisConnector;
//!
//! redis_connector::register(); // so proxies of kind "redis" resolve in this process
//! let store = Store::new("shared", RedisConnector::new("127.0.0.1", 6379)?)?;
//! let p: Proxy<Vec<f64>> = store.proxy(vec![1.0, 2.0, 3.0])?;
//! let wire = p.to_bytes()?; // send to another process, which calls register() too
//! # Ok::<(), proxy_core::Error>(())
//! ```
//!
//! ## Keys
//!
//! Every object is stored under a UUID v4 string (hyphenated, lower case),
//! exactly as ProxyStore's `RedisKey.redis_key`, preceded by the optional
//! [`prefix`](RedisConnectorBuilder::prefix) (leave it empty to share objects
//! with Python). The proxy-core [`Key`] holds the 16 UUID bytes ([`RedisKey`]);
//! convert with [`RedisKey::from_redis_key`] / [`RedisKey::redis_key`].
//!
//! ## Guarantees
//!
//! - Connections are reused: an idle pool of connections (no connect per
//!   operation, no lock held across I/O: each thread takes its own connection
//!   out of the pool for the duration of one operation).
//! - Batches are one round trip: `put_batch` is `MSET` (split in groups of at
//!   most 64 MiB), `get_batch` is `MGET`.
//! - A value is written with one `SET`, so a reader sees all of it or nothing.
//! - Objects larger than Redis' string limit (512 MiB, or the configured
//!   `max_object_size`) are refused with [`Error::TooLarge`] before anything is
//!   sent; nothing is stored.
//! - A broken connection (server restarted, killed, network reset) is dropped,
//!   and the operation is retried once on a fresh connection (all operations
//!   are idempotent: puts write fresh keys). Failures are
//!   [`Error::Connector`] with `temporary = true`, or [`Error::Timeout`].
//! - The password (option `password`, or the environment variable
//!   `PROXYSTORE_REDIS_PASSWORD`) is never printed by `Debug`, never part of
//!   error messages and never written into [`Connector::config`] (which proxies
//!   carry): a process that rebuilds the connector from a proxy takes the
//!   password from its own environment.
//!
//! ## Data path
//!
//! Writes, `EXISTS`, `DEL`, `FLUSHDB`/`SCAN` go through the `redis` crate's
//! synchronous connections; a `SET` of a large value writes the command
//! header and then the payload's own buffers to the socket (no concatenation
//! copy). Reads (`GET`/`MGET`) use a second small pool of plain TCP
//! connections with a minimal RESP reader (`AUTH`/`SELECT` as configured),
//! because the `redis` crate's parser reads 8 KiB at a time and copies each
//! value once more (a 100 MB get took ~290 ms that way, ~140 ms this way).
//! A value is received straight from the socket into its final buffer and
//! handed out as [`Bytes`] without another copy; for values of 256 KiB and more
//! that buffer is an anonymous mapping recycled through a per-connector pool
//! once every `Bytes` of it is dropped (at most
//! [`recv_pool_bytes`](RedisConnectorBuilder::recv_pool_bytes) kept idle), so
//! a stream of large gets does not pay page faults for every value.

#![warn(missing_docs)]

mod buf;
mod raw;

use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload, Result,
};
use redis::{ConnectionAddr, ConnectionLike, IntoConnectionInfo, RedisConnectionInfo, Value};
use serde::{Deserialize, Serialize};

/// The connector kind, as used in configurations.
pub const KIND: &str = "redis";

/// Redis' largest string value (`proto-max-bulk-len` default): 512 MiB.
pub const REDIS_MAX_STRING: u64 = 512 << 20;

/// Environment variable read for the password when none is configured.
pub const PASSWORD_ENV: &str = "PROXYSTORE_REDIS_PASSWORD";

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default operation timeout: the longest wait for the server in one read or
/// write on a connection (a large transfer may take longer in total).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default of [`RedisOptions::recv_pool_bytes`]: 256 MiB.
pub const DEFAULT_RECV_POOL_BYTES: u64 = 256 << 20;

/// Idle connections kept in the pool at most (more may be open at once).
const MAX_IDLE: usize = 16;
/// Values up to this size are packed with their command into one write.
const PACK_LIMIT: usize = 64 << 10;
/// Largest total value size of one `MSET` in a `put_batch`.
const MSET_GROUP_BYTES: usize = 64 << 20;

/// Register the `redis` connector kind in this process, so that stores and
/// proxies whose configuration names it can be rebuilt. Idempotent.
pub fn register() {
    proxy_core::registry::register_connector::<RedisConnector>();
}

/// The key of one Redis object: a UUID, whose string form (hyphenated lower
/// case) is the Redis key name, as ProxyStore's `RedisKey.redis_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RedisKey {
    /// UUID bytes.
    pub id: [u8; 16],
}

impl RedisKey {
    /// A fresh random key (UUID v4).
    pub fn new_v4() -> Self {
        RedisKey {
            id: *uuid::Uuid::new_v4().as_bytes(),
        }
    }

    /// The Redis key name without prefix (ProxyStore's `RedisKey.redis_key`).
    pub fn redis_key(&self) -> String {
        uuid::Uuid::from_bytes(self.id).hyphenated().to_string()
    }

    /// Parse ProxyStore's `RedisKey.redis_key` (a UUID string).
    pub fn from_redis_key(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s.trim())
            .map(|u| RedisKey { id: *u.as_bytes() })
            .map_err(|e| Error::InvalidKey {
                connector: KIND.into(),
                reason: format!("redis key {s:?} is not a UUID: {e}"),
            })
    }

    /// Decode a proxy-core [`Key`] minted by this connector.
    pub fn from_key(key: &Key) -> Result<Self> {
        key.decode(KIND)
    }
}

impl From<RedisKey> for Key {
    fn from(k: RedisKey) -> Key {
        Key::encode(&k)
    }
}

impl fmt::Display for RedisKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redis_key())
    }
}

/// The serializable options of a [`RedisConnector`] (its [`ConnectorConfig`]).
///
/// `password` is accepted when reading a configuration but never written.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisOptions {
    /// Server host name or address (`hostname`, as in ProxyStore's
    /// `RedisConnector.config()`, is accepted too).
    #[serde(default = "default_host", alias = "hostname")]
    pub host: String,
    /// Server port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database number (`SELECT`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub db: i64,
    /// ACL user name (Redis 6+); `None` is the default user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password; when absent, `PROXYSTORE_REDIS_PASSWORD` is read. Never serialized.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// Prepended to every key name (empty for ProxyStore compatibility).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Connect timeout in milliseconds.
    #[serde(
        default = "default_connect_ms",
        skip_serializing_if = "is_default_connect_ms"
    )]
    pub connect_timeout_ms: u64,
    /// Operation timeout in milliseconds: the longest wait for the server in
    /// one socket read or write (0 = none).
    #[serde(
        default = "default_timeout_ms",
        skip_serializing_if = "is_default_timeout_ms"
    )]
    pub timeout_ms: u64,
    /// Delete the data on `close`: `FLUSHDB` (or, with a prefix, only the
    /// prefix's keys). Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear: bool,
    /// Largest object accepted, in bytes (default 512 MiB, Redis' limit;
    /// raise it only with the server's `proto-max-bulk-len`).
    #[serde(default = "default_max", skip_serializing_if = "is_default_max")]
    pub max_object_size: u64,
    /// Bytes of receive buffers (for values of 256 KiB and more) kept for reuse
    /// after the values read into them are dropped (default 256 MiB; 0 = none).
    #[serde(default = "default_pool", skip_serializing_if = "is_default_pool")]
    pub recv_pool_bytes: u64,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    6379
}
fn default_connect_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT.as_millis() as u64
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT.as_millis() as u64
}
fn default_max() -> u64 {
    REDIS_MAX_STRING
}
fn default_pool() -> u64 {
    DEFAULT_RECV_POOL_BYTES
}
// Options at their defaults are not written, keeping proxies small.
fn is_zero(v: &i64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn is_default_connect_ms(v: &u64) -> bool {
    *v == default_connect_ms()
}
fn is_default_timeout_ms(v: &u64) -> bool {
    *v == default_timeout_ms()
}
fn is_default_max(v: &u64) -> bool {
    *v == default_max()
}
fn is_default_pool(v: &u64) -> bool {
    *v == default_pool()
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            host: default_host(),
            port: default_port(),
            db: 0,
            username: None,
            password: None,
            prefix: String::new(),
            connect_timeout_ms: default_connect_ms(),
            timeout_ms: default_timeout_ms(),
            clear: false,
            max_object_size: default_max(),
            recv_pool_bytes: default_pool(),
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("clear", &self.clear)
            .field("max_object_size", &self.max_object_size)
            .field("recv_pool_bytes", &self.recv_pool_bytes)
            .finish()
    }
}

/// Builder for a [`RedisConnector`] (see [`RedisConnector::builder`]).
#[derive(Debug, Clone)]
pub struct RedisConnectorBuilder {
    opts: RedisOptions,
}

impl RedisConnectorBuilder {
    /// Database number (default 0).
    pub fn db(mut self, db: i64) -> Self {
        self.opts.db = db;
        self
    }

    /// ACL user name.
    pub fn username(mut self, user: impl Into<String>) -> Self {
        self.opts.username = Some(user.into());
        self
    }

    /// Password (otherwise `PROXYSTORE_REDIS_PASSWORD` is read, if set).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.opts.password = Some(password.into());
        self
    }

    /// Key prefix (default empty: the ProxyStore-compatible layout).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.opts.prefix = prefix.into();
        self
    }

    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.opts.connect_timeout_ms = t.as_millis().max(1) as u64;
        self
    }

    /// Operation timeout (default 60 s): the longest wait for the server in
    /// one socket read or write; `Duration::ZERO` disables it.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.opts.timeout_ms = t.as_millis() as u64;
        self
    }

    /// Delete the data on `close` (default false).
    pub fn clear(mut self, clear: bool) -> Self {
        self.opts.clear = clear;
        self
    }

    /// Largest object accepted (default 512 MiB).
    pub fn max_object_size(mut self, bytes: u64) -> Self {
        self.opts.max_object_size = bytes;
        self
    }

    /// Receive-buffer bytes kept for reuse (default 256 MiB; 0 disables).
    pub fn recv_pool_bytes(mut self, bytes: u64) -> Self {
        self.opts.recv_pool_bytes = bytes;
        self
    }

    /// Build the connector. No connection is made yet: the first operation
    /// connects (use [`RedisConnector::ping`] to check the server now).
    pub fn build(self) -> Result<RedisConnector> {
        RedisConnector::from_options(self.opts)
    }
}

/// Objects in a Redis server, in the Python ProxyStore's `RedisConnector`
/// layout (see the [crate docs](crate) for keys and guarantees).
pub struct RedisConnector {
    opts: RedisOptions,
    /// Resolved password (config or environment); never printed.
    password: Option<String>,
    client: redis::Client,
    /// Idle `redis` crate connections (writes and small commands).
    idle: Mutex<Vec<redis::Connection>>,
    /// Idle read-path connections (`GET`/`MGET`, see `raw`).
    raw_idle: Mutex<Vec<raw::RawConn>>,
    /// Recycled receive buffers of large values.
    recv_pool: std::sync::Arc<buf::Pool>,
}

/// A pooled connection.
trait Pooled {
    fn usable(&self) -> bool;
}

impl Pooled for redis::Connection {
    fn usable(&self) -> bool {
        self.is_open()
    }
}

impl Pooled for raw::RawConn {
    fn usable(&self) -> bool {
        self.is_open()
    }
}

impl fmt::Debug for RedisConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisConnector({})", self.addr())
    }
}

/// Which kind of failure a Redis error is, for mapping and retrying.
enum Failure {
    /// The connection is unusable (reset, closed, refused); a fresh one may work.
    Dropped,
    /// No answer in time.
    Timeout,
    /// The server answered with an error; the connection is fine.
    Server,
    /// Wrong credentials.
    Auth,
    /// Anything else (protocol error, bad configuration).
    Other,
}

fn classify(e: &redis::RedisError) -> Failure {
    if e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
    {
        Failure::Auth
    } else if e.is_timeout() {
        Failure::Timeout
    } else if e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error() {
        Failure::Dropped
    } else if e.code().is_some() {
        Failure::Server
    } else {
        Failure::Other
    }
}

/// An error message for a protocol-level surprise.
fn unexpected(what: &str, v: &Value) -> redis::RedisError {
    let shown = match v {
        Value::BulkString(b) => format!("a string of {} bytes", b.len()),
        Value::Array(a) => format!("an array of {} items", a.len()),
        other => format!("{other:?}"),
    };
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "unexpected reply",
        format!("{what}: got {shown}"),
    ))
}

fn server_error(v: Value) -> redis::RedisResult<Value> {
    match v {
        Value::ServerError(e) => Err(e.into()),
        v => Ok(v),
    }
}

impl RedisConnector {
    /// A connector to `host:port`, database 0, with default options.
    pub fn new(host: impl Into<String>, port: u16) -> Result<Self> {
        Self::builder(host, port).build()
    }

    /// A builder for a connector to `host:port`.
    pub fn builder(host: impl Into<String>, port: u16) -> RedisConnectorBuilder {
        RedisConnectorBuilder {
            opts: RedisOptions {
                host: host.into(),
                port,
                ..RedisOptions::default()
            },
        }
    }

    /// A connector from its options (checked; nothing is connected yet).
    pub fn from_options(opts: RedisOptions) -> Result<Self> {
        if opts.host.trim().is_empty() {
            return Err(Error::config(KIND, "option 'host' is empty"));
        }
        if opts.port == 0 {
            return Err(Error::config(KIND, "option 'port' is 0"));
        }
        if opts.db < 0 {
            return Err(Error::config(KIND, format!("option 'db' is {}", opts.db)));
        }
        if opts.connect_timeout_ms == 0 {
            return Err(Error::config(KIND, "option 'connect_timeout_ms' is 0"));
        }
        let password = opts
            .password
            .clone()
            .or_else(|| std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()));
        let mut redis = RedisConnectionInfo::default()
            .set_db(opts.db)
            .set_skip_set_lib_name();
        if let Some(p) = password.as_deref() {
            redis = redis.set_password(p);
        }
        if let Some(u) = &opts.username {
            redis = redis.set_username(u);
        }
        let info = ConnectionAddr::Tcp(opts.host.clone(), opts.port)
            .into_connection_info()
            .map_err(|e| Error::config(KIND, e))?
            .set_redis_settings(redis)
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let opts_pool = opts.recv_pool_bytes;
        let client = redis::Client::open(info).map_err(|e| Error::config(KIND, e))?;
        Ok(RedisConnector {
            opts,
            password,
            client,
            idle: Mutex::new(Vec::new()),
            raw_idle: Mutex::new(Vec::new()),
            recv_pool: buf::Pool::new(usize::try_from(opts_pool).unwrap_or(usize::MAX)),
        })
    }

    /// The options (the password, if any, is redacted in their `Debug`).
    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    /// `host:port/db`, for messages.
    fn addr(&self) -> String {
        format!(
            "redis://{}:{}/{}",
            self.opts.host, self.opts.port, self.opts.db
        )
    }

    fn op_timeout(&self) -> Option<Duration> {
        (self.opts.timeout_ms > 0).then(|| Duration::from_millis(self.opts.timeout_ms))
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.opts.connect_timeout_ms)
    }

    /// The Redis key name of a key.
    fn name(&self, key: &Key) -> Result<Vec<u8>> {
        let k = RedisKey::from_key(key)?;
        Ok(self.name_of(&k))
    }

    fn name_of(&self, k: &RedisKey) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.opts.prefix.len() + 36);
        v.extend_from_slice(self.opts.prefix.as_bytes());
        let mut buf = uuid::Uuid::encode_buffer();
        v.extend_from_slice(
            uuid::Uuid::from_bytes(k.id)
                .hyphenated()
                .encode_lower(&mut buf)
                .as_bytes(),
        );
        v
    }

    fn map_err(&self, op: &'static str, connecting: bool, e: redis::RedisError) -> Error {
        let what = if connecting {
            format!("connecting to {}", self.addr())
        } else {
            format!("talking to {}", self.addr())
        };
        match classify(&e) {
            Failure::Timeout => Error::Timeout {
                connector: KIND.into(),
                operation: op,
                after: if connecting {
                    self.connect_timeout()
                } else {
                    self.op_timeout().unwrap_or_default()
                },
            },
            Failure::Auth => Error::connector(
                KIND,
                op,
                false,
                format!(
                    "{what}: authentication failed (check the username and password, or {PASSWORD_ENV}): {e}"
                ),
            ),
            Failure::Dropped => Error::connector(KIND, op, true, format!("{what}: {e}")),
            Failure::Server | Failure::Other => {
                Error::connector(KIND, op, false, format!("{what}: {e}"))
            }
        }
    }

    fn connect(&self, op: &'static str) -> Result<redis::Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout())
            .map_err(|e| self.map_err(op, true, e))?;
        let t = self.op_timeout();
        conn.set_read_timeout(t)
            .and_then(|()| conn.set_write_timeout(t))
            .map_err(|e| self.map_err(op, true, e))?;
        Ok(conn)
    }

    fn connect_raw(&self, op: &'static str) -> Result<raw::RawConn> {
        let auth = self
            .password
            .as_deref()
            .map(|p| (self.opts.username.as_deref(), p));
        raw::RawConn::connect(
            &self.opts.host,
            self.opts.port,
            self.connect_timeout(),
            self.op_timeout(),
            auth,
            self.opts.db,
            self.recv_pool.clone(),
        )
        .map_err(|e| self.map_err(op, true, e))
    }

    /// Run `f` on a `redis` crate connection (see [`Self::with_pool`]).
    fn with_conn<T>(
        &self,
        op: &'static str,
        f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.with_pool(&self.idle, Self::connect, op, f)
    }

    /// Run `f` on a read-path connection (see [`Self::with_pool`]).
    fn with_raw<T>(
        &self,
        op: &'static str,
        f: impl FnMut(&mut raw::RawConn) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.with_pool(&self.raw_idle, Self::connect_raw, op, f)
    }

    /// Run `f` on a connection from `pool` (or a new one); the pool's lock is
    /// held only to take or return a connection, never during I/O. A
    /// connection that failed at the transport level is dropped; if it was a
    /// pooled one, `f` is retried once on a fresh connection (the server may
    /// have restarted since it was last used; every operation is idempotent).
    fn with_pool<C: Pooled, T>(
        &self,
        pool: &Mutex<Vec<C>>,
        connect: impl Fn(&Self, &'static str) -> Result<C>,
        op: &'static str,
        mut f: impl FnMut(&mut C) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let pooled = pool.lock().pop();
        let (mut conn, reused) = match pooled {
            Some(c) => (c, true),
            None => (connect(self, op)?, false),
        };
        let give_back = |conn: C| {
            if conn.usable() {
                let mut idle = pool.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
            }
        };
        match f(&mut conn) {
            Ok(v) => {
                give_back(conn);
                Ok(v)
            }
            Err(e) => match classify(&e) {
                Failure::Server => {
                    give_back(conn);
                    Err(self.map_err(op, false, e))
                }
                Failure::Dropped if reused => {
                    drop(conn);
                    // Every idle connection predates the failure: drop them too.
                    pool.lock().clear();
                    let mut fresh = connect(self, op)?;
                    match f(&mut fresh) {
                        Ok(v) => {
                            give_back(fresh);
                            Ok(v)
                        }
                        Err(e) => {
                            if matches!(classify(&e), Failure::Server) {
                                give_back(fresh);
                            }
                            Err(self.map_err(op, false, e))
                        }
                    }
                }
                _ => Err(self.map_err(op, false, e)),
            },
        }
    }

    fn check_size(&self, len: usize) -> Result<()> {
        if len as u64 > self.opts.max_object_size {
            return Err(Error::TooLarge {
                connector: KIND.into(),
                size: len as u64,
                limit: self.opts.max_object_size,
            });
        }
        Ok(())
    }

    /// Check the server answers (`PING`) within the configured timeouts.
    pub fn ping(&self) -> Result<()> {
        self.with_conn("ping", |c| {
            let v: String = redis::cmd("PING").query(c)?;
            if v == "PONG" {
                Ok(())
            } else {
                Err(unexpected("PING", &Value::SimpleString(v)))
            }
        })
    }

    /// `SET` one value under `name` (or `MSET` several), sent without copying
    /// large values: the command header, then each part of the payload.
    fn send_write(
        conn: &mut redis::Connection,
        items: &[(Vec<u8>, &Payload)],
    ) -> redis::RedisResult<()> {
        let total: usize = items.iter().map(|(_, p)| p.len()).sum();
        let mut buf: Vec<u8> = Vec::with_capacity(64 + items.len() * 64 + total.min(PACK_LIMIT));
        if items.len() == 1 {
            buf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
        } else {
            let _ = write!(buf, "*{}\r\n$4\r\nMSET\r\n", 1 + 2 * items.len());
        }
        for (name, data) in items {
            let _ = write!(buf, "${}\r\n", name.len());
            buf.extend_from_slice(name);
            let _ = write!(buf, "\r\n${}\r\n", data.len());
            if data.len() <= PACK_LIMIT {
                for p in data.parts() {
                    buf.extend_from_slice(p);
                }
            } else {
                conn.send_packed_command(&buf)?;
                buf.clear();
                for p in data.parts() {
                    conn.send_packed_command(p)?;
                }
            }
            buf.extend_from_slice(b"\r\n");
        }
        conn.send_packed_command(&buf)?;
        match server_error(conn.recv_response()?)? {
            Value::Okay => Ok(()),
            other => Err(unexpected("SET", &other)),
        }
    }

    fn write(&self, op: &'static str, items: &[(Vec<u8>, &Payload)]) -> Result<()> {
        self.with_conn(op, |c| Self::send_write(c, items))
    }

    fn get_names(&self, op: &'static str, names: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = Vec::with_capacity(16 + names.len() * 48);
        let mut args: Vec<&[u8]> = Vec::with_capacity(names.len() + 1);
        args.push(if names.len() == 1 { b"GET" } else { b"MGET" });
        args.extend(names.iter().map(|n| n.as_slice()));
        raw::pack(&mut cmd, &args);
        self.with_raw(op, |c| {
            c.send(&cmd)?;
            let one = |r: raw::Reply| match r {
                raw::Reply::Nil => Ok(None),
                raw::Reply::Bulk(b) => Ok(Some(b)),
                other => Err(unexpected_raw("GET", &other)),
            };
            match c.read_reply()? {
                raw::Reply::Array(items) if names.len() > 1 && items.len() == names.len() => {
                    items.into_iter().map(one).collect()
                }
                r if names.len() == 1 => Ok(vec![one(r)?]),
                other => Err(unexpected_raw("MGET", &other)),
            }
        })
    }
}

fn unexpected_raw(what: &str, r: &raw::Reply) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "unexpected reply",
        format!("{what}: got {}", r.describe()),
    ))
}

impl Connector for RedisConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        // `Capabilities` is non-exhaustive: start from MINIMAL.
        let mut caps = Capabilities::MINIMAL;
        caps.cross_process = true;
        caps.cross_node = true;
        // Objects live in the server, not in this process (for as long as the
        // server keeps them: persistence is the server's configuration).
        caps.outlives_process = true;
        caps.max_object_size = Some(self.opts.max_object_size);
        caps
    }

    fn put(&self, data: Payload) -> Result<Key> {
        self.check_size(data.len())?;
        let k = RedisKey::new_v4();
        self.write("put", &[(self.name_of(&k), &data)])?;
        Ok(k.into())
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        for d in &data {
            self.check_size(d.len())?;
        }
        let keys: Vec<RedisKey> = data.iter().map(|_| RedisKey::new_v4()).collect();
        let items: Vec<(Vec<u8>, &Payload)> = keys
            .iter()
            .map(|k| self.name_of(k))
            .zip(data.iter())
            .collect();
        // Group into MSETs of bounded size (Redis' query buffer is limited).
        let mut start = 0;
        while start < items.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < items.len()
                && (end == start || bytes + items[end].1.len() <= MSET_GROUP_BYTES)
            {
                bytes += items[end].1.len();
                end += 1;
            }
            self.write("put_batch", &items[start..end])?;
            start = end;
        }
        Ok(keys.into_iter().map(Key::from).collect())
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let name = self.name(key)?;
        Ok(self
            .get_names("get", std::slice::from_ref(&name))?
            .pop()
            .flatten())
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let names = keys
            .iter()
            .map(|k| self.name(k))
            .collect::<Result<Vec<_>>>()?;
        self.get_names("get_batch", &names)
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let name = self.name(key)?;
        self.with_conn("exists", |c| {
            redis::cmd("EXISTS")
                .arg(name.as_slice())
                .query::<i64>(c)
                .map(|n| n > 0)
        })
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let name = self.name(key)?;
        self.with_conn("evict", |c| {
            redis::cmd("DEL")
                .arg(name.as_slice())
                .query::<i64>(c)
                .map(drop)
        })
    }

    fn close(&self) -> Result<()> {
        if self.opts.clear {
            if self.opts.prefix.is_empty() {
                self.with_conn("close", |c| redis::cmd("FLUSHDB").query::<()>(c))?;
            } else {
                let pattern = format!("{}*", glob_escape(&self.opts.prefix));
                self.with_conn("close", |c| {
                    let mut cursor: u64 = 0;
                    loop {
                        let (next, names): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(1000)
                            .query(c)?;
                        if !names.is_empty() {
                            let mut del = redis::cmd("UNLINK");
                            for n in &names {
                                del.arg(n.as_slice());
                            }
                            del.query::<i64>(c)?;
                        }
                        if next == 0 {
                            return Ok(());
                        }
                        cursor = next;
                    }
                })?;
            }
        }
        self.idle.lock().clear();
        self.raw_idle.lock().clear();
        self.recv_pool.clear();
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        let mut o = self.opts.clone();
        o.password = None;
        ConnectorConfig::new(KIND, o)
    }

    /// The Redis key name without prefix (a UUID, as ProxyStore's `RedisKey.redis_key`).
    fn key_to_string(&self, key: &Key) -> Result<String> {
        Ok(RedisKey::from_key(key)?.redis_key())
    }

    /// A UUID key name (or the hex form of an encoded key).
    fn parse_key(&self, s: &str) -> Result<Key> {
        RedisKey::from_redis_key(s)
            .map(Key::from)
            .or_else(|e| Key::from_hex(s).map_err(|_| e))
    }

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }
}

/// Escape Redis glob metacharacters (for `SCAN MATCH <prefix>*`).
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl Deferrable for RedisConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(RedisKey::new_v4().into())
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        let name = self.name(key)?;
        self.check_size(data.len())?;
        self.write("set", &[(name, &data)])
    }
}

impl FromConfig for RedisConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        Self::from_options(config.options()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_roundtrip() {
        let k = RedisKey::new_v4();
        let s = k.redis_key();
        assert_eq!(s.len(), 36);
        assert_eq!(RedisKey::from_redis_key(&s).unwrap(), k);
        let key: Key = k.into();
        assert_eq!(key.as_bytes().len(), 16, "compact: the 16 UUID bytes");
        assert_eq!(RedisKey::from_key(&key).unwrap(), k);
        assert!(matches!(
            RedisKey::from_redis_key("not-a-uuid"),
            Err(Error::InvalidKey { .. })
        ));
    }

    #[test]
    fn password_never_shown() {
        let c = RedisConnector::builder("127.0.0.1", 6379)
            .password("s3cr3t-pw")
            .prefix("p:")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", c.options()).contains("s3cr3t"));
        let cfg = c.config();
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&cfg).unwrap().contains("s3cr3t"));
        assert_eq!(RedisConnector::from_config(&cfg).unwrap().config(), cfg);
    }

    #[test]
    fn bad_options() {
        for json in [
            r#"{"host": ""}"#,
            r#"{"port": 0}"#,
            r#"{"db": -1}"#,
            r#"{"connect_timeout_ms": 0}"#,
            r#"{"hots": "x"}"#,
        ] {
            let cfg = ConnectorConfig::new(
                KIND,
                serde_json::from_str::<serde_json::Value>(json).unwrap(),
            );
            assert!(
                matches!(
                    RedisConnector::from_config(&cfg),
                    Err(Error::InvalidConfig { .. })
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn config_writes_only_non_defaults() {
        let c = RedisConnector::new("10.0.0.1", 6379).unwrap();
        assert_eq!(
            c.config().options,
            serde_json::json!({"host": "10.0.0.1", "port": 6379})
        );
        let c = RedisConnector::builder("h", 1)
            .db(3)
            .clear(true)
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let cfg = c.config();
        assert_eq!(cfg.options["db"], 3);
        assert_eq!(cfg.options["timeout_ms"], 1000);
        assert_eq!(
            RedisConnector::from_config(&cfg).unwrap().options(),
            c.options()
        );
    }

    #[test]
    fn python_style_options() {
        // ProxyStore's RedisConnector.config(): {hostname, port, clear}.
        let cfg = ConnectorConfig::new(
            KIND,
            serde_json::json!({"hostname": "redis.example", "port": 6380, "clear": false}),
        );
        let c = RedisConnector::from_config(&cfg).unwrap();
        assert_eq!(
            (c.options().host.as_str(), c.options().port),
            ("redis.example", 6380)
        );
    }

    #[test]
    fn glob() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
