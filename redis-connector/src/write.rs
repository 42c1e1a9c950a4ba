//! The write path: `SET`/`MSET` sent without copying large values.

use std::io::Write as _;

use proxy_core::{Payload, Result};
use redis::Value;

use crate::connector::RedisConnector;
use crate::error::{server_error, unexpected};

/// Values up to this size are packed with their command into one write.
const PACK_LIMIT: usize = 64 << 10;
/// Largest total value size of one `MSET` in a `put_batch`.
const MSET_GROUP_BYTES: usize = 64 << 20;

impl RedisConnector {
    /// `SET` one value under `name` (or `MSET` several), sent without copying
    /// large values: the command header, then each part of the payload.
    pub(crate) fn send_write(
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

    pub(crate) fn write(&self, op: &'static str, items: &[(Vec<u8>, &Payload)]) -> Result<()> {
        self.with_conn(op, |c| Self::send_write(c, items))
    }

    /// Write `items` in `MSET`s of at most [`MSET_GROUP_BYTES`] of values each
    /// (Redis' query buffer is limited); one item larger than that goes alone.
    pub(crate) fn write_grouped(
        &self,
        op: &'static str,
        items: &[(Vec<u8>, &Payload)],
    ) -> Result<()> {
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
            self.write(op, &items[start..end])?;
            start = end;
        }
        Ok(())
    }
}
