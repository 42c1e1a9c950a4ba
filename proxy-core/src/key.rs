//! Type-erased, serializable object keys.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::error::{Error, Result};

/// The key of one stored object.
///
/// A `Key` is the connector's own key type (e.g. a UUID for the file and Redis
/// connectors; owner address + offset + length + generation for UCX) encoded
/// with [postcard](https://docs.rs/postcard). It is small, cheap to clone, and
/// serializes to its bytes (binary formats) or to a hex string (text formats),
/// so it can travel inside a proxy to another process.
///
/// Connectors build keys with [`Key::encode`] and read them back with
/// [`Key::decode`]; a key that does not decode as the connector's type is an
/// [`Error::InvalidKey`], never a panic.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Bytes);

impl Key {
    /// Encode a connector's typed key.
    pub fn encode<K: Serialize>(key: &K) -> Key {
        // postcard serialization into a Vec fails only for types serde cannot
        // represent (e.g. maps with non-string keys are fine; sequences of unknown
        // length are not): connector key types are plain structs.
        let v = postcard::to_allocvec(key).expect("connector key types are postcard-serializable");
        Key(Bytes::from(v))
    }

    /// Decode as the typed key of connector `connector`.
    pub fn decode<K: DeserializeOwned>(&self, connector: &str) -> Result<K> {
        match postcard::take_from_bytes::<K>(&self.0) {
            Ok((k, [])) => Ok(k),
            Ok((_, rest)) => Err(Error::InvalidKey {
                connector: connector.to_string(),
                reason: format!("{} trailing bytes after the key ({self})", rest.len()),
            }),
            Err(e) => Err(Error::InvalidKey {
                connector: connector.to_string(),
                reason: format!("{e} (key bytes {self})"),
            }),
        }
    }

    /// Wrap already-encoded key bytes (e.g. read from a file or a message).
    /// Validity is checked when a connector decodes it.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Key {
        Key(bytes.into())
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parse the hex form printed by `Display`.
    pub fn from_hex(s: &str) -> Result<Key> {
        let s = s.trim();
        let bad = |reason: String| Error::InvalidKey {
            connector: "?".into(),
            reason,
        };
        if s.len() % 2 != 0 {
            return Err(bad(format!("hex key has odd length {}", s.len())));
        }
        // Digit by digit: `u8::from_str_radix` would also take a sign ("+f").
        let digit = |c: u8| char::from(c).to_digit(16);
        let mut out = Vec::with_capacity(s.len() / 2);
        for pair in s.as_bytes().chunks_exact(2) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out.push(((hi << 4) | lo) as u8),
                _ => return Err(bad(format!("not a hex key: {s:?}"))),
            }
        }
        Ok(Key(out.into()))
    }
}

impl fmt::Display for Key {
    /// Lower-case hex of the encoded bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Key::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            let b: serde_bytes_compat::ByteBuf = Deserialize::deserialize(d)?;
            Ok(Key(Bytes::from(b.0)))
        }
    }
}

/// Minimal `deserialize_bytes` visitor (avoids a dependency on `serde_bytes`).
mod serde_bytes_compat {
    use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
    use std::fmt;

    pub(crate) struct ByteBuf(pub(crate) Vec<u8>);

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("key bytes")
                }
                fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                    let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                    while let Some(b) = seq.next_element()? {
                        v.push(b);
                    }
                    Ok(ByteBuf(v))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct K {
        id: [u8; 16],
        len: u64,
    }

    #[test]
    fn roundtrip_and_errors() {
        let k = Key::encode(&K {
            id: [7; 16],
            len: 42,
        });
        assert_eq!(
            k.decode::<K>("t").unwrap(),
            K {
                id: [7; 16],
                len: 42
            }
        );
        let hex = k.to_string();
        assert_eq!(Key::from_hex(&hex).unwrap(), k);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), k);
        let bin = postcard::to_allocvec(&k).unwrap();
        assert_eq!(postcard::from_bytes::<Key>(&bin).unwrap(), k);
        // Truncated and malformed keys are errors, not panics.
        let short = Key::from_bytes(k.as_bytes()[..5].to_vec());
        assert!(matches!(
            short.decode::<K>("t"),
            Err(Error::InvalidKey { .. })
        ));
        let mut long = k.as_bytes().to_vec();
        long.push(0);
        assert!(matches!(
            Key::from_bytes(long).decode::<K>("t"),
            Err(Error::InvalidKey { .. })
        ));
        assert!(Key::from_hex("zz").is_err());
        // Only hex digits: a sign is not one (integer parsing would accept it).
        assert!(Key::from_hex("+d").is_err());
        assert!(Key::from_hex("0a+f").is_err());
        assert!(Key::from_hex("é0").is_err());
        assert_eq!(Key::from_hex(" 0Aff\n").unwrap().as_bytes(), &[0x0a, 0xff]);
        assert!(Key::from_hex("abc").is_err());
    }
}
