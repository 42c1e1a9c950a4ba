//! The [`Connector`] operations of [`RedisClusterConnector`]: key names,
//! chunked writes and reads, batches.

use bytes::Bytes;
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Deferrable, Error, FromConfig, Key, Payload, Result,
};

use super::KIND;
use super::RedisClusterConnector;
use super::chunks::is_wrongtype;
use super::cmd::{Answer, Cmd};
use super::route::Outcome;
use crate::error::unexpected_raw;
use crate::key::{RedisKey, glob_escape};
use crate::raw::Reply;

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
    pub(crate) fn failed(&self, op: &'static str, what: &str, r: Outcome) -> Error {
        match r {
            Err(e) => self.map_err(op, "", e),
            Ok(Answer::Reply(r)) => self.map_err(op, "", unexpected_raw(what, &r)),
            Ok(_) => self.map_err(op, "", unexpected_raw(what, &Reply::Nil)),
        }
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
        self.write_objects("put", &[(name_of(&self.opts.prefix, &k), &data)], false)?;
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
        self.write_objects("put_batch", &items, false)?;
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
        let m = self.manifest("evict", &name, true)?;
        self.unlink_chunks("evict", &name, &m)
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

    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        Some(self)
    }
}

/// Keys minted before their objects (proxy futures). `set` replaces an
/// object atomically for readers (`SET`, or chunks and a manifest renamed
/// over the name), then deletes the chunks of what it replaced. `wait_for`
/// polls (the trait's default).
impl Deferrable for RedisClusterConnector {
    fn new_key(&self) -> Result<Key> {
        Ok(RedisKey::new_v4().into())
    }

    fn set(&self, key: &Key, data: Payload) -> Result<()> {
        let name = self.name(key)?;
        self.check_size(data.len())?;
        self.set_object("set", &name, &data)
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
    fn names_carry_the_uuid_as_hash_tag() {
        let k = RedisKey::new_v4();
        let n = name_of("job:", &k);
        assert_eq!(n, format!("job:{{{}}}", k.redis_key()).into_bytes());
        assert_eq!(slot_of(&n), slot_of(k.redis_key().as_bytes()));
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
