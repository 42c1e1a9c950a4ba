//! Connection pools: idle `redis` crate connections (writes and small
//! commands) and idle read-path connections (see `raw`), each taken out of
//! its pool for one operation, and the retry-once rule for broken ones.

use parking_lot::Mutex;
use proxy_core::Result;
use redis::ConnectionLike;

use crate::connector::RedisConnector;
use crate::error::{Failure, classify};
use crate::raw;

/// Idle connections kept in the pool at most (more may be open at once).
const MAX_IDLE: usize = 16;

/// A pooled connection.
pub(crate) trait Pooled {
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

impl RedisConnector {
    pub(crate) fn connect(&self, op: &'static str) -> Result<redis::Connection> {
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

    pub(crate) fn connect_raw(&self, op: &'static str) -> Result<raw::RawConn> {
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
    pub(crate) fn with_conn<T>(
        &self,
        op: &'static str,
        f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.with_pool(&self.idle, Self::connect, op, f)
    }

    /// Run `f` on a read-path connection (see [`Self::with_pool`]).
    pub(crate) fn with_raw<T>(
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
    pub(crate) fn with_pool<C: Pooled, T>(
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
}
