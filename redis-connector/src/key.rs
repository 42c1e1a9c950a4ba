//! Keys: ProxyStore's `RedisKey` (a UUID v4) and the Redis key names built
//! from it (the connector's prefix, then the hyphenated lower-case UUID).

use std::fmt;

use proxy_core::{Error, Key, Result};
use serde::{Deserialize, Serialize};

use crate::KIND;

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

    /// A key from its text: a UUID key name, or the hex form of an
    /// encoded key (what both connectors' `parse_key` accept).
    pub(crate) fn parse_any(s: &str) -> Result<Key> {
        RedisKey::from_redis_key(s)
            .map(Key::from)
            .or_else(|e| Key::from_hex(s).map_err(|_| e))
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

/// Escape Redis glob metacharacters (for `SCAN MATCH <prefix>*`).
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
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
    fn glob() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
