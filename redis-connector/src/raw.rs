//! The read path: a minimal RESP2 reader over a plain `TcpStream`.
//!
//! The `redis` crate's synchronous parser (combine) reads replies 8 KiB at a
//! time into a growing buffer, re-enters the parser after every read and then
//! copies the value out (`to_vec`): about 350-750 MB/s here for large values
//! (a 1 MB get no faster than Python's redis-py). `GET`/`MGET` run on these
//! connections instead, which read a bulk string's body straight from the
//! socket into its final buffer in large reads (one copy, by the kernel),
//! a recycled one for large values (see `buf`).
//! Everything else (writes, `EXISTS`, `DEL`, `FLUSHDB`, ...) goes through the
//! `redis` crate.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use redis::{ErrorKind, RedisError, RedisResult};

/// Size of the buffer for reply headers and small values.
const BUF: usize = 64 << 10;

/// A reply of the commands used on this path.
#[derive(Debug)]
pub(crate) enum Reply {
    Nil,
    Bulk(bytes::Bytes),
    Int(i64),
    Status(String),
    Array(Vec<Reply>),
}

impl Reply {
    pub(crate) fn describe(&self) -> String {
        match self {
            Reply::Nil => "nil".into(),
            Reply::Bulk(b) => format!("a string of {} bytes", b.len()),
            Reply::Int(i) => format!("integer {i}"),
            Reply::Status(s) => format!("status {s:?}"),
            Reply::Array(a) => format!("an array of {} items", a.len()),
        }
    }
}

/// One connection (authenticated, database selected).
pub(crate) struct RawConn {
    s: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    open: bool,
    pool: std::sync::Arc<crate::buf::Pool>,
}

fn protocol(detail: String) -> RedisError {
    RedisError::from((ErrorKind::Parse, "invalid reply from server", detail))
}

/// Pack a command in RESP (array of bulk strings).
pub(crate) fn pack(out: &mut Vec<u8>, args: &[&[u8]]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl RawConn {
    /// Connect, then `AUTH` and `SELECT` as configured.
    pub(crate) fn connect(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        op_timeout: Option<Duration>,
        auth: Option<(Option<&str>, &str)>,
        db: i64,
        pool: std::sync::Arc<crate::buf::Pool>,
    ) -> RedisResult<RawConn> {
        let mut last = None;
        let mut stream = None;
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let s = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(e.into()),
            (None, None) => {
                return Err(RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "host name resolves to no address",
                )));
            }
        };
        s.set_nodelay(true)?;
        // The handshake is bounded by the connect timeout.
        s.set_read_timeout(Some(connect_timeout))?;
        s.set_write_timeout(Some(connect_timeout))?;
        let mut c = RawConn {
            s,
            buf: vec![0u8; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            open: true,
            pool,
        };
        let mut hello = Vec::new();
        let mut n = 0;
        if let Some((user, pass)) = auth {
            match user {
                Some(u) => pack(&mut hello, &[b"AUTH", u.as_bytes(), pass.as_bytes()]),
                None => pack(&mut hello, &[b"AUTH", pass.as_bytes()]),
            }
            n += 1;
        }
        if db != 0 {
            pack(&mut hello, &[b"SELECT", db.to_string().as_bytes()]);
            n += 1;
        }
        if n > 0 {
            c.send(&hello)?;
            for _ in 0..n {
                c.read_reply()?;
            }
        }
        c.s.set_read_timeout(op_timeout)?;
        c.s.set_write_timeout(op_timeout)?;
        Ok(c)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) -> RedisResult<()> {
        self.s.write_all(bytes).map_err(|e| {
            self.open = false;
            e.into()
        })
    }

    fn fill(&mut self) -> RedisResult<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match self.s.read(&mut self.buf[self.end..]) {
            Ok(0) => {
                self.open = false;
                Err(
                    io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
                        .into(),
                )
            }
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) => {
                self.open = false;
                Err(e.into())
            }
        }
    }

    /// One line without its `\r\n`, as (start, end) in `buf`.
    fn line(&mut self) -> RedisResult<(usize, usize)> {
        // Offset (from `start`) up to which no `\r\n` was found.
        let mut from = 0;
        loop {
            let hay = &self.buf[self.start + from..self.end];
            if let Some(i) = hay.windows(2).position(|w| w == b"\r\n") {
                let l = (self.start, self.start + from + i);
                self.start = l.1 + 2;
                return Ok(l);
            }
            if self.end - self.start >= self.buf.len() {
                self.open = false;
                return Err(protocol("reply line longer than 64 KiB".into()));
            }
            from = (self.end - self.start).saturating_sub(1);
            self.fill()?;
        }
    }

    fn int(&mut self, s: usize, e: usize) -> RedisResult<i64> {
        std::str::from_utf8(&self.buf[s..e])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                self.open = false;
                protocol(format!(
                    "bad length {:?}",
                    String::from_utf8_lossy(&self.buf[s..e])
                ))
            })
    }

    /// Read exactly `dst.len()` bytes (buffered bytes first, then the socket).
    fn read_exact_into(&mut self, dst: &mut [u8]) -> RedisResult<()> {
        let have = (self.end - self.start).min(dst.len());
        dst[..have].copy_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        let mut off = have;
        while off < dst.len() {
            let rest = dst.len() - off;
            if rest < BUF / 2 {
                // Small remainder: go through the buffer (fewer syscalls).
                self.fill()?;
                let n = (self.end - self.start).min(rest);
                dst[off..off + n].copy_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                off += n;
                continue;
            }
            match self.s.read(&mut dst[off..]) {
                Ok(0) => {
                    self.open = false;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection mid-value",
                    )
                    .into());
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.open = false;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn bulk(&mut self, len: usize) -> RedisResult<bytes::Bytes> {
        let mut v = crate::buf::RecvBuf::new(len, &self.pool);
        self.read_exact_into(v.as_mut_slice())?;
        let mut crlf = [0u8; 2];
        self.read_exact_into(&mut crlf)?;
        if &crlf != b"\r\n" {
            self.open = false;
            return Err(protocol("bulk string not terminated by CRLF".into()));
        }
        Ok(v.into_bytes())
    }

    /// Read one reply that must be a bulk string of exactly `dst.len()`
    /// bytes (a chunk of a larger value) straight into `dst`: `Ok(true)`
    /// when filled, `Ok(false)` for nil. A server error is an `Err` with its
    /// code (the connection stays usable); any other reply is a protocol
    /// error and the connection is not reused.
    pub(crate) fn read_bulk_into(&mut self, dst: &mut [u8]) -> RedisResult<bool> {
        if self.start == self.end {
            self.fill()?;
        }
        if self.buf[self.start] != b'$' {
            return match self.read_reply()? {
                Reply::Nil => Ok(false),
                other => {
                    self.open = false;
                    Err(protocol(format!(
                        "expected a value of {} bytes, got {}",
                        dst.len(),
                        other.describe()
                    )))
                }
            };
        }
        let (s, e) = self.line()?;
        match self.int(s + 1, e)? {
            -1 => Ok(false),
            n if n >= 0 && n as u64 == dst.len() as u64 => {
                self.read_exact_into(dst)?;
                let mut crlf = [0u8; 2];
                self.read_exact_into(&mut crlf)?;
                if &crlf != b"\r\n" {
                    self.open = false;
                    return Err(protocol("bulk string not terminated by CRLF".into()));
                }
                Ok(true)
            }
            n => {
                self.open = false;
                Err(protocol(format!(
                    "expected a value of {} bytes, got one of {n}",
                    dst.len()
                )))
            }
        }
    }

    /// Read one reply; a server error reply is an `Err` with its code.
    pub(crate) fn read_reply(&mut self) -> RedisResult<Reply> {
        if self.start == self.end {
            self.fill()?;
        }
        let (s, e) = self.line()?;
        if s == e {
            self.open = false;
            return Err(protocol("empty reply line".into()));
        }
        match self.buf[s] {
            b'$' => match self.int(s + 1, e)? {
                -1 => Ok(Reply::Nil),
                n if n >= 0 => Ok(Reply::Bulk(self.bulk(n as usize)?)),
                n => Err(protocol(format!("bulk length {n}"))),
            },
            b'*' => match self.int(s + 1, e)? {
                -1 => Ok(Reply::Nil),
                n if n >= 0 => {
                    let mut items = Vec::with_capacity((n as usize).min(1 << 16));
                    for _ in 0..n {
                        match self.read_reply() {
                            Ok(r) => items.push(r),
                            Err(e) => {
                                // The rest of the array is unread: the
                                // connection cannot be reused.
                                self.open = false;
                                return Err(e);
                            }
                        }
                    }
                    Ok(Reply::Array(items))
                }
                n => Err(protocol(format!("array length {n}"))),
            },
            b':' => Ok(Reply::Int(self.int(s + 1, e)?)),
            b'+' => Ok(Reply::Status(
                String::from_utf8_lossy(&self.buf[s + 1..e]).into_owned(),
            )),
            b'-' => {
                // Let the redis crate turn the error line into a RedisError
                // with its code (WRONGTYPE, NOAUTH, ...).
                let mut line = self.buf[s..e].to_vec();
                line.extend_from_slice(b"\r\n");
                match redis::parse_redis_value(&line) {
                    Ok(redis::Value::ServerError(err)) => Err(err.into()),
                    _ => Err(protocol(String::from_utf8_lossy(&line).into_owned())),
                }
            }
            other => {
                self.open = false;
                Err(protocol(format!("unknown reply type byte 0x{other:02x}")))
            }
        }
    }
}
