//! The [`Connector`] operations of [`RedisClusterConnector`]: key names,
//! chunked writes and reads, batches.

use bytes::Bytes;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Error, FromConfig, Key, Payload, Result,
};

use super::KIND;
use super::RedisClusterConnector;
use super::cmd::{Answer, Cmd};
use super::route::Outcome;
use crate::buf::RecvBuf;
use crate::error::unexpected_raw;
use crate::key::{RedisKey, glob_escape};
use crate::raw::Reply;

/// Chunk bytes of one object read in one pipeline at most (bounds what a
/// node holds in its output buffer for us): 4 chunks of the default size.
const WINDOW_BYTES: u64 = 256 << 20;
/// A get that finds a chunk gone re-reads the object this many times.
const CHUNK_RETRIES: usize = 4;

/// `prefix{uuid}`: the UUID is the hash tag.
fn name_of(prefix: &str, k: &RedisKey) -> Vec<u8> {
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::from_bytes(k.id)
        .hyphenated()
        .encode_lower(&mut buf);
    let mut v = Vec::with_capacity(prefix.len() + 38);
    v.extend_from_slice(prefix.as_bytes());
    v.push(b'{');
    v.extend_from_slice(id.as_bytes());
    v.push(b'}');
    v
}

/// The name of chunk `i` of the object named `name` (same hash tag).
fn chunk_name(name: &[u8], i: usize) -> Vec<u8> {
    let mut v = name.to_vec();
    v.push(b':');
    v.extend_from_slice(i.to_string().as_bytes());
    v
}

/// The payload's bytes `start..end` as slices of its own buffers.
fn slice_parts(data: &Payload, start: usize, end: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut off = 0;
    for p in data.parts() {
        let (ps, pe) = (off, off + p.len());
        off = pe;
        let (s, e) = (start.max(ps), end.min(pe));
        if s < e {
            out.push(p.slice(s - ps..e - ps));
        }
    }
    out
}

fn is_wrongtype(r: &Outcome) -> bool {
    matches!(r, Err(e) if e.code() == Some("WRONGTYPE"))
}

fn bulk_u64(r: &Reply) -> Option<u64> {
    match r {
        Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// A manifest read with `HMGET name size chunk`: `(size, chunk)`, `None`
/// when the key is gone.
enum Manifest {
    Gone,
    Plain,
    Chunked(u64, u64),
}

impl RedisClusterConnector {
    pub(crate) fn name(&self, key: &Key) -> Result<Vec<u8>> {
        Ok(name_of(&self.opts.prefix, &RedisKey::from_key(key)?))
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

    /// A server error or an unexpected reply of one command, as an [`Error`].
    fn failed(&self, op: &'static str, what: &str, r: Outcome) -> Error {
        match r {
            Err(e) => self.map_err(op, "", e),
            Ok(Answer::Reply(r)) => self.map_err(op, "", unexpected_raw(what, &r)),
            Ok(_) => self.map_err(op, "", unexpected_raw(what, &Reply::Nil)),
        }
    }

    /// Store each `(name, value)`: one `SET` each, or chunks and then their
    /// manifest; pipelined per node.
    fn write_objects(&self, op: &'static str, items: &[(Vec<u8>, &Payload)]) -> Result<()> {
        let chunk = self.opts.chunk_size as usize;
        let mut cmds = Vec::with_capacity(items.len());
        let mut manifests = Vec::new();
        for (name, data) in items {
            if data.len() <= chunk {
                cmds.push(Cmd::keyed_value(&[b"SET", name], data.parts().to_vec()));
                continue;
            }
            for (i, start) in (0..data.len()).step_by(chunk).enumerate() {
                let end = (start + chunk).min(data.len());
                let cname = chunk_name(name, i);
                cmds.push(Cmd::keyed_value(
                    &[b"SET", &cname],
                    slice_parts(data, start, end),
                ));
            }
            let size = data.len().to_string();
            let chunk = chunk.to_string();
            manifests.push(Cmd::keyed(&[
                b"HSET",
                name,
                b"size",
                size.as_bytes(),
                b"chunk",
                chunk.as_bytes(),
            ]));
        }
        for r in self.exec(op, &mut cmds)? {
            if !matches!(&r, Ok(Answer::Reply(Reply::Status(s))) if s == "OK") {
                return Err(self.failed(op, "SET", r));
            }
        }
        if !manifests.is_empty() {
            for r in self.exec(op, &mut manifests)? {
                if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                    return Err(self.failed(op, "HSET", r));
                }
            }
        }
        Ok(())
    }

    /// `HMGET name size chunk` (and, for `evict`, `DEL name` in the same
    /// pipeline).
    fn manifest(&self, op: &'static str, name: &[u8], delete: bool) -> Result<Manifest> {
        let mut cmds = vec![Cmd::keyed(&[b"HMGET", name, b"size", b"chunk"])];
        if delete {
            cmds.push(Cmd::keyed(&[b"DEL", name]));
        }
        let mut res = self.exec(op, &mut cmds)?.into_iter();
        let m = match res.next() {
            Some(r) if is_wrongtype(&r) => Manifest::Plain,
            Some(Ok(Answer::Reply(Reply::Array(f)))) => match f.as_slice() {
                [Reply::Nil, Reply::Nil] => Manifest::Gone,
                [s, c] => match (bulk_u64(s), bulk_u64(c)) {
                    (Some(s), Some(c)) if c > 0 => Manifest::Chunked(s, c),
                    _ => {
                        return Err(Error::permanent(
                            KIND,
                            op,
                            format!(
                                "{}: not an object of this connector (a hash without size and chunk)",
                                String::from_utf8_lossy(name)
                            ),
                        ));
                    }
                },
                _ => return Err(self.failed(op, "HMGET", Ok(Answer::Reply(Reply::Array(f))))),
            },
            Some(r) => return Err(self.failed(op, "HMGET", r)),
            None => return Err(self.failed(op, "HMGET", Ok(Answer::Nil))),
        };
        for r in res {
            if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                return Err(self.failed(op, "DEL", r));
            }
        }
        Ok(m)
    }

    /// Read a chunked object into one (pooled) buffer of its size.
    fn read_chunked(&self, op: &'static str, name: &[u8]) -> Result<Option<Bytes>> {
        for _ in 0..CHUNK_RETRIES {
            let (size, chunk) = match self.manifest(op, name, false)? {
                Manifest::Gone => return Ok(None),
                // Neither a string (GET said so) nor a hash (a list, a set).
                Manifest::Plain => {
                    return Err(Error::permanent(
                        KIND,
                        op,
                        format!(
                            "{}: WRONGTYPE: holds neither a value nor a chunk manifest",
                            String::from_utf8_lossy(name)
                        ),
                    ));
                }
                Manifest::Chunked(s, c) => (s, c),
            };
            if size > self.opts.max_object_size || chunk > crate::REDIS_MAX_STRING {
                return Err(Error::permanent(
                    KIND,
                    op,
                    format!(
                        "{}: an object of {size} bytes in chunks of {chunk}, over this connector's max_object_size of {}",
                        String::from_utf8_lossy(name),
                        self.opts.max_object_size
                    ),
                ));
            }
            let mut buf = RecvBuf::new(size as usize, &self.recv_pool);
            let mut slices: Vec<&mut [u8]> =
                buf.as_mut_slice().chunks_mut(chunk as usize).collect();
            let per = (WINDOW_BYTES / chunk).max(1) as usize;
            let mut missing = false;
            for (w, window) in slices.chunks_mut(per).enumerate() {
                let mut cmds: Vec<Cmd<'_>> = window
                    .iter_mut()
                    .enumerate()
                    .map(|(j, dst)| {
                        let cname = chunk_name(name, w * per + j);
                        Cmd::keyed(&[b"GET", &cname]).into_slice(dst)
                    })
                    .collect();
                for r in self.exec(op, &mut cmds)? {
                    match r {
                        Ok(Answer::Filled) => {}
                        Ok(Answer::Nil) => missing = true,
                        r => return Err(self.failed(op, "GET", r)),
                    }
                }
                if missing {
                    break;
                }
            }
            if !missing {
                return Ok(Some(buf.into_bytes()));
            }
            // A chunk is gone: the object was evicted meanwhile (or is
            // being): look at its manifest again.
        }
        Err(Error::permanent(
            KIND,
            op,
            format!(
                "{}: chunks missing under a manifest that stays (a damaged object)",
                String::from_utf8_lossy(name)
            ),
        ))
    }

    pub(crate) fn get_names(
        &self,
        op: &'static str,
        names: &[Vec<u8>],
    ) -> Result<Vec<Option<Bytes>>> {
        let mut cmds: Vec<Cmd<'_>> = names.iter().map(|n| Cmd::keyed(&[b"GET", n])).collect();
        let res = self.exec(op, &mut cmds)?;
        names
            .iter()
            .zip(res)
            .map(|(name, r)| match r {
                Ok(Answer::Reply(Reply::Bulk(b))) => Ok(Some(b)),
                Ok(Answer::Reply(Reply::Nil)) => Ok(None),
                r if is_wrongtype(&r) => self.read_chunked(op, name),
                r => Err(self.failed(op, "GET", r)),
            })
            .collect()
    }
}

impl Connector for RedisClusterConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::MINIMAL;
        caps.cross_process = true;
        caps.cross_node = true;
        caps.outlives_process = true;
        caps.max_object_size = Some(self.opts.max_object_size);
        caps
    }

    fn put(&self, data: Payload) -> Result<Key> {
        self.check_size(data.len())?;
        let k = RedisKey::new_v4();
        self.write_objects("put", &[(name_of(&self.opts.prefix, &k), &data)])?;
        Ok(k.into())
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        for d in &data {
            self.check_size(d.len())?;
        }
        let keys: Vec<RedisKey> = data.iter().map(|_| RedisKey::new_v4()).collect();
        let items: Vec<(Vec<u8>, &Payload)> = keys
            .iter()
            .map(|k| name_of(&self.opts.prefix, k))
            .zip(data.iter())
            .collect();
        self.write_objects("put_batch", &items)?;
        Ok(keys.into_iter().map(Key::from).collect())
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let name = self.name(key)?;
        Ok(self.get_names("get", &[name])?.pop().flatten())
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
        match self
            .exec("exists", &mut [Cmd::keyed(&[b"EXISTS", &name])])?
            .pop()
        {
            Some(Ok(Answer::Reply(Reply::Int(n)))) => Ok(n > 0),
            Some(r) => Err(self.failed("exists", "EXISTS", r)),
            None => Err(self.failed("exists", "EXISTS", Ok(Answer::Nil))),
        }
    }

    /// Deletes the key (readers see the object gone at once), then, for a
    /// chunked object, its chunks.
    fn evict(&self, key: &Key) -> Result<()> {
        let name = self.name(key)?;
        if let Manifest::Chunked(size, chunk) = self.manifest("evict", &name, true)? {
            let n = size.div_ceil(chunk) as usize;
            let names: Vec<Vec<u8>> = (0..n).map(|i| chunk_name(&name, i)).collect();
            let mut cmds: Vec<Cmd<'_>> =
                names.iter().map(|c| Cmd::keyed(&[b"UNLINK", c])).collect();
            for r in self.exec("evict", &mut cmds)? {
                if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                    return Err(self.failed("evict", "UNLINK", r));
                }
            }
        }
        Ok(())
    }

    fn close(&self) -> Result<()> {
        if self.opts.clear {
            self.clear_all()?;
        }
        self.drop_connections();
        self.recv_pool.clear();
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        let mut o = self.opts.clone();
        o.password = None;
        ConnectorConfig::new(KIND, o)
    }

    /// The key's UUID (the Redis key name is `prefix{uuid}`).
    fn key_to_string(&self, key: &Key) -> Result<String> {
        Ok(RedisKey::from_key(key)?.redis_key())
    }

    fn parse_key(&self, s: &str) -> Result<Key> {
        RedisKey::parse_any(s)
    }
}

impl RedisClusterConnector {
    /// `FLUSHDB` on every master, or, with a prefix, `SCAN` each master for
    /// the prefix's keys and `UNLINK` them.
    fn clear_all(&self) -> Result<()> {
        self.refresh("close", true)?;
        for addr in self.slot_map("close")?.masters() {
            if self.opts.prefix.is_empty() {
                let r = self.exec("close", &mut [Cmd::node(addr.clone(), &[b"FLUSHDB"])])?;
                for r in r {
                    if !matches!(&r, Ok(Answer::Reply(Reply::Status(_)))) {
                        return Err(self.failed("close", "FLUSHDB", r));
                    }
                }
                continue;
            }
            let pattern = format!("{}*", glob_escape(&self.opts.prefix));
            let mut cursor = b"0".to_vec();
            loop {
                let mut scan = [Cmd::node(
                    addr.clone(),
                    &[
                        b"SCAN",
                        &cursor,
                        b"MATCH",
                        pattern.as_bytes(),
                        b"COUNT",
                        b"1000",
                    ],
                )];
                let (next, names) = match self.exec("close", &mut scan)?.pop() {
                    Some(Ok(Answer::Reply(Reply::Array(v)))) => match <[Reply; 2]>::try_from(v) {
                        Ok([Reply::Bulk(next), Reply::Array(names)]) => (next, names),
                        _ => return Err(self.failed("close", "SCAN", Ok(Answer::Nil))),
                    },
                    Some(r) => return Err(self.failed("close", "SCAN", r)),
                    None => return Err(self.failed("close", "SCAN", Ok(Answer::Nil))),
                };
                let mut del: Vec<Cmd<'_>> = names
                    .iter()
                    .filter_map(|n| match n {
                        Reply::Bulk(b) => Some(Cmd::keyed(&[b"UNLINK", b])),
                        _ => None,
                    })
                    .collect();
                for r in self.exec("close", &mut del)? {
                    if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                        return Err(self.failed("close", "UNLINK", r));
                    }
                }
                if &next[..] == b"0" {
                    break;
                }
                cursor = next.to_vec();
            }
        }
        Ok(())
    }
}

impl FromConfig for RedisClusterConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        Self::from_options(config.options()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::slots::slot_of;

    #[test]
    fn names_share_the_slot() {
        let k = RedisKey::new_v4();
        let n = name_of("job:", &k);
        assert!(n.starts_with(b"job:{") && n.ends_with(b"}"));
        for i in [0, 1, 17, 4095] {
            assert_eq!(slot_of(&chunk_name(&n, i)), slot_of(&n));
        }
    }

    #[test]
    fn slices_of_parts() {
        let p = Payload::new()
            .with(Bytes::from_static(b"abc"))
            .with(Bytes::from_static(b"defgh"));
        let cat = |v: Vec<Bytes>| v.concat();
        assert_eq!(cat(slice_parts(&p, 0, 8)), b"abcdefgh");
        assert_eq!(cat(slice_parts(&p, 2, 5)), b"cde");
        assert_eq!(cat(slice_parts(&p, 3, 8)), b"defgh");
        assert!(slice_parts(&p, 4, 4).is_empty());
    }

    #[test]
    fn bad_options() {
        for (json, why) in [
            (r#"{"nodes": []}"#, "empty"),
            (r#"{"nodes": ["h"]}"#, "host:port"),
            (r#"{"nodes": ["h:1"], "prefix": "a{b}"}"#, "hash tag"),
            (r#"{"nodes": ["h:1"], "chunk_size": 0}"#, "chunk_size"),
            (
                r#"{"nodes": ["h:1"], "chunk_size": 1073741824}"#,
                "chunk_size",
            ),
            (
                r#"{"nodes": ["h:1"], "connect_timeout_ms": 0}"#,
                "connect_timeout_ms",
            ),
            (r#"{"nodes": ["h:1"], "hots": 1}"#, "hots"),
        ] {
            let cfg = ConnectorConfig::new(
                KIND,
                serde_json::from_str::<serde_json::Value>(json).unwrap(),
            );
            match RedisClusterConnector::from_config(&cfg) {
                Err(e @ Error::InvalidConfig { .. }) => {
                    assert!(e.to_string().contains(why), "{json}: {e}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn password_never_shown() {
        let c = RedisClusterConnector::builder(["127.0.0.1:7000", "127.0.0.1:7001"])
            .password("s3cr3t-pw")
            .build()
            .unwrap();
        let cfg = c.config();
        assert!(!format!("{c:?} {:?} {cfg:?}", c.options()).contains("s3cr3t"));
        assert!(!serde_json::to_string(&cfg).unwrap().contains("s3cr3t"));
        assert_eq!(
            RedisClusterConnector::from_config(&cfg).unwrap().config(),
            cfg
        );
        assert_eq!(
            cfg.options,
            serde_json::json!({"nodes": ["127.0.0.1:7000", "127.0.0.1:7001"]})
        );
    }
}
