//! [`RedisConnector`]: construction, the [`Connector`] and [`Deferrable`]
//! operations, and rebuilding from a configuration.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload, Result,
};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};

use crate::error::{Failure, RedisFailure, classify, unexpected};
use crate::key::{RedisKey, glob_escape};
use crate::options::{RedisConnectorBuilder, RedisOptions};
use crate::{KIND, PASSWORD_ENV, buf, raw};

/// Objects in a Redis server, in the Python ProxyStore's `RedisConnector`
/// layout (see the [crate docs](crate) for keys and guarantees).
pub struct RedisConnector {
    pub(crate) opts: RedisOptions,
    /// Resolved password (config or environment); never printed.
    pub(crate) password: Option<String>,
    pub(crate) client: redis::Client,
    /// Idle `redis` crate connections (writes and small commands).
    pub(crate) idle: Mutex<Vec<redis::Connection>>,
    /// Idle read-path connections (`GET`/`MGET`, see `raw`).
    pub(crate) raw_idle: Mutex<Vec<raw::RawConn>>,
    /// Recycled receive buffers of large values.
    pub(crate) recv_pool: std::sync::Arc<buf::Pool>,
}

impl fmt::Debug for RedisConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisConnector({})", self.addr())
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
    pub(crate) fn addr(&self) -> String {
        format!(
            "redis://{}:{}/{}",
            self.opts.host, self.opts.port, self.opts.db
        )
    }

    pub(crate) fn op_timeout(&self) -> Option<Duration> {
        (self.opts.timeout_ms > 0).then(|| Duration::from_millis(self.opts.timeout_ms))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.opts.connect_timeout_ms)
    }

    pub(crate) fn check_size(&self, len: usize) -> Result<()> {
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
        // `wait_for` is woken by a pub/sub message that `set` publishes.
        caps.notify = true;
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
        self.write_grouped("put_batch", &items)?;
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
        RedisKey::parse_any(s)
    }

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }

    /// Subscribes to the key's notification channel (`<key name>:set`, to
    /// which [`Deferrable::set`] publishes), then checks `EXISTS`, then waits
    /// for the message: woken by the server, no polling. An object stored
    /// by `put` (or by another implementation) publishes nothing; a re-check
    /// every second covers it.
    fn wait_for(&self, key: &Key, timeout: Duration) -> Result<bool> {
        let name = self.name(key)?;
        let channel = notify_channel(&name);
        let deadline = std::time::Instant::now() + timeout;
        let subscribe = |conn: &mut redis::Connection| {
            let mut cmd = redis::cmd("SUBSCRIBE");
            cmd.arg(channel.as_slice());
            conn.send_packed_command(&cmd.get_packed_command())?;
            conn.recv_response().map(drop)
        };
        let mut conn = self.connect("wait_for")?;
        subscribe(&mut conn).map_err(|e| self.map_err("wait_for", false, e))?;
        loop {
            if self.exists(key)? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            conn.set_read_timeout(Some(left.min(Duration::from_secs(1))))
                .map_err(|e| self.map_err("wait_for", false, e))?;
            match conn.recv_response() {
                Ok(_) => {} // the message (or anything): re-check
                Err(e) if e.is_timeout() => {
                    // The connection may be mid-reply: take a fresh one.
                    conn = self.connect("wait_for")?;
                    subscribe(&mut conn).map_err(|e| self.map_err("wait_for", false, e))?;
                }
                Err(e) => return Err(self.map_err("wait_for", false, e)),
            }
        }
    }
}

/// The pub/sub channel `set` announces a key on.
fn notify_channel(name: &[u8]) -> Vec<u8> {
    let mut c = name.to_vec();
    c.extend_from_slice(b":set");
    c
}

impl Deferrable for RedisConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(RedisKey::new_v4().into())
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        let name = self.name(key)?;
        self.check_size(data.len())?;
        self.write("set", &[(name.clone(), &data)])?;
        // Wake `wait_for` callers (in any process).
        let channel = notify_channel(&name);
        self.with_conn("set", |c| {
            redis::cmd("PUBLISH")
                .arg(channel.as_slice())
                .arg(1)
                .query::<i64>(c)
                .map(drop)
        })
    }
}

impl FromConfig for RedisConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        Self::from_options(config.options()?)
    }
}

/// How Redis errors become [`Error`]s (see `error.rs` for the classes).
impl RedisConnector {
    pub(crate) fn map_err(
        &self,
        op: &'static str,
        connecting: bool,
        e: redis::RedisError,
    ) -> Error {
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
            Failure::Auth => Error::permanent(
                KIND,
                op,
                RedisFailure {
                    context: format!(
                        "{what}: authentication failed (check the username and password, or {PASSWORD_ENV})"
                    ),
                    error: e,
                },
            ),
            Failure::Dropped => Error::temporary(
                KIND,
                op,
                RedisFailure {
                    context: what,
                    error: e,
                },
            ),
            Failure::Server | Failure::Other => Error::permanent(
                KIND,
                op,
                RedisFailure {
                    context: what,
                    error: e,
                },
            ),
        }
    }
}

/// Key names (see `key.rs` for the layout).
impl RedisConnector {
    /// The Redis key name of a key.
    pub(crate) fn name(&self, key: &Key) -> Result<Vec<u8>> {
        let k = RedisKey::from_key(key)?;
        Ok(self.name_of(&k))
    }

    pub(crate) fn name_of(&self, k: &RedisKey) -> Vec<u8> {
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
}

impl RedisConnectorBuilder {
    /// Build the connector. No connection is made yet: the first operation
    /// connects (use [`RedisConnector::ping`] to check the server now).
    pub fn build(self) -> Result<RedisConnector> {
        RedisConnector::from_options(self.opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
