//! How Redis failures map to [`proxy_core::Error`].

use proxy_core::Error;
use redis::Value;

use crate::connector::RedisConnector;
use crate::{KIND, PASSWORD_ENV, raw};

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
}
