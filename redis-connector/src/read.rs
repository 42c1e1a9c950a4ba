//! The read path: `GET`/`MGET` on the raw connections (see `raw`), each
//! value received straight into its final buffer.

use bytes::Bytes;
use proxy_core::Result;

use crate::connector::RedisConnector;
use crate::error::unexpected_raw;
use crate::raw;

impl RedisConnector {
    pub(crate) fn get_names(
        &self,
        op: &'static str,
        names: &[Vec<u8>],
    ) -> Result<Vec<Option<Bytes>>> {
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
