//! How Redis failures are classified and reported (the mapping to
//! [`proxy_core::Error`] is `RedisConnector::map_err`).

use std::fmt;

use redis::Value;

use crate::raw;

/// Which kind of failure a Redis error is, for mapping and retrying.
pub(crate) enum Failure {
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

pub(crate) fn classify(e: &redis::RedisError) -> Failure {
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
pub(crate) fn unexpected(what: &str, v: &Value) -> redis::RedisError {
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

pub(crate) fn server_error(v: Value) -> redis::RedisResult<Value> {
    match v {
        Value::ServerError(e) => Err(e.into()),
        v => Ok(v),
    }
}

pub(crate) fn unexpected_raw(what: &str, r: &raw::Reply) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "unexpected reply",
        format!("{what}: got {}", r.describe()),
    ))
}

/// The source of every [`Error::Connector`](proxy_core::Error::Connector) this crate returns: the
/// [`redis::RedisError`] (and, through its own source, the `io::Error` of a
/// broken connection) with the server and what was being done.
///
/// ```no_run
/// # let c = redis_connector::RedisConnector::new("127.0.0.1", 1)?;
/// use proxy_core::Connector;
/// let e = c.exists(&redis_connector::RedisKey::new_v4().into()).unwrap_err();
/// let failure = std::error::Error::source(&e)
///     .and_then(|s| s.downcast_ref::<redis_connector::RedisFailure>())
///     .expect("a Redis failure");
/// assert!(failure.redis_error().is_connection_refusal());
/// # Ok::<(), proxy_core::Error>(())
/// ```
#[derive(Debug)]
pub struct RedisFailure {
    pub(crate) context: String,
    pub(crate) error: redis::RedisError,
}

impl RedisFailure {
    /// What was being done, and with which server (never a password).
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The `redis` crate's error.
    pub fn redis_error(&self) -> &redis::RedisError {
        &self.error
    }
}

impl fmt::Display for RedisFailure {
    /// The context, then the Redis error's own message (so the message of
    /// the [`Error`](proxy_core::Error) holding it is complete on its own).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.error)
    }
}

impl std::error::Error for RedisFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
