//! [`DaosKey`]: what a key carries, how a store checks that a key is one of
//! its own, and the keys' text form.

use proxy_core::{Error, Key, Result};
use serde::{Deserialize, Serialize};

use crate::KIND;
use crate::client::DaosConnector;
use crate::daos::{self, ObjectId};
use crate::layout::HEADER;

/// The key of one object: everything another process needs to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaosKey {
    /// Pool label.
    pub pool: String,
    /// Container label.
    pub container: String,
    /// Namespace.
    pub namespace: String,
    /// Object id, high 64 bits (type and class bits included).
    pub oid_hi: u64,
    /// Object id, low 64 bits.
    pub oid_lo: u64,
    /// Object length in bytes ([`UNKNOWN_LEN`] for a key of the pydaos
    /// layout made from the Python ProxyStore's `DAOSKey`).
    pub len: u64,
    /// The pydaos layout: the object's key in the dictionary (the oid is the
    /// dictionary's). `None` in the array layout.
    #[serde(default)]
    pub entry: Option<String>,
}

/// [`DaosKey::len`] of a pydaos-layout key whose length is not known (made
/// from a Python ProxyStore key): a get asks DAOS for the value's size first.
pub const UNKNOWN_LEN: u64 = u64::MAX;

impl DaosKey {
    pub(crate) fn oid(&self) -> ObjectId {
        ObjectId {
            lo: self.oid_lo,
            hi: self.oid_hi,
        }
    }
}

impl DaosConnector {
    pub(crate) fn decode(&self, key: &Key) -> Result<DaosKey> {
        let k: DaosKey = key.decode(KIND)?;
        if k.pool != self.opts.pool
            || k.container != self.opts.container
            || k.namespace != self.opts.namespace
        {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: format!(
                    "the key is of pool '{}' container '{}' namespace '{}', this store is pool '{}' container '{}' namespace '{}'",
                    k.pool,
                    k.container,
                    k.namespace,
                    self.opts.pool,
                    self.opts.container,
                    self.opts.namespace
                ),
            });
        }
        let otype = daos::object_type(k.oid_hi);
        if let Some(d) = &self.dict {
            let bad = |reason: String| {
                Err(Error::InvalidKey {
                    connector: KIND.into(),
                    reason,
                })
            };
            let Some(entry) = &k.entry else {
                return bad("a key of the array layout; this store uses the pydaos layout".into());
            };
            if k.oid() != d.oid {
                return bad(format!(
                    "the key's dictionary {:#x}.{:#x} is not this store's ({:#x}.{:#x})",
                    k.oid_hi, k.oid_lo, d.oid.hi, d.oid.lo
                ));
            }
            if entry.is_empty() || entry.contains('\0') {
                return bad(format!("{entry:?} is not a dictionary key"));
            }
            return Ok(k);
        }
        if k.entry.is_some() {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: "a key of the pydaos layout; this store uses the array layout".into(),
            });
        }
        if otype != u64::from(daos::DAOS_OT_ARRAY_BYTE) {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: format!(
                    "object id {:#x}.{:#x} is not a DAOS byte array (type {otype}): not a key of this connector",
                    k.oid_hi, k.oid_lo
                ),
            });
        }
        if k.len > isize::MAX as u64 - HEADER as u64 {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: format!("object length {} is impossible", k.len),
            });
        }
        Ok(k)
    }

    /// `Connector::key_to_string`.
    pub(crate) fn key_text(&self, key: &Key) -> Result<String> {
        let k = self.decode(key)?;
        if let Some(entry) = &k.entry {
            let len = if k.len == UNKNOWN_LEN {
                String::new()
            } else {
                format!(":{}", k.len)
            };
            return Ok(format!(
                "daos:{}/{}/{}/{entry}{len}",
                k.pool, k.container, k.namespace
            ));
        }
        Ok(format!(
            "daos:{}/{}/{}/{:016x}.{:016x}/{}",
            k.pool, k.container, k.namespace, k.oid_hi, k.oid_lo, k.len
        ))
    }

    /// `Connector::parse_key`.
    pub(crate) fn parse_text(&self, s: &str) -> Result<Key> {
        let bad = |why: &str| Error::InvalidKey {
            connector: KIND.into(),
            reason: format!(
                "{why}: {s:?} (expected daos:POOL/CONTAINER/NAMESPACE/HI.LO/LEN, in the pydaos layout daos:POOL/CONTAINER/NAMESPACE/ENTRY[:LEN], or hex)"
            ),
        };
        let Some(rest) = s.strip_prefix("daos:") else {
            let key = Key::from_hex(s)?;
            self.decode(&key)?;
            return Ok(key);
        };
        if let Some(d) = &self.dict {
            // POOL/CONTAINER/NAMESPACE/ENTRY[:LEN]: the Python ProxyStore's
            // DAOSKey(pool, container, namespace, dict_key), with our length.
            let (head, last) = rest.rsplit_once('/').ok_or_else(|| bad("too few parts"))?;
            let (entry, len) = match last.rsplit_once(':') {
                Some((e, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    (e, n.parse().map_err(|_| bad("length is not a number"))?)
                }
                _ => (last, UNKNOWN_LEN),
            };
            let mut h = head.splitn(3, '/');
            let (Some(pool), Some(container), Some(namespace)) = (h.next(), h.next(), h.next())
            else {
                return Err(bad("missing pool, container or namespace"));
            };
            let key = Key::encode(&DaosKey {
                pool: pool.into(),
                container: container.into(),
                namespace: namespace.into(),
                oid_hi: d.oid.hi,
                oid_lo: d.oid.lo,
                len,
                entry: Some(entry.into()),
            });
            self.decode(&key)?;
            return Ok(key);
        }
        let parts: Vec<&str> = rest.rsplitn(3, '/').collect();
        let [len, oid, head] = parts[..] else {
            return Err(bad("too few parts"));
        };
        let mut h = head.splitn(3, '/');
        let (Some(pool), Some(container), Some(namespace)) = (h.next(), h.next(), h.next()) else {
            return Err(bad("missing pool, container or namespace"));
        };
        let (hi, lo) = oid
            .split_once('.')
            .ok_or_else(|| bad("object id is not HI.LO"))?;
        let hex = |x: &str| u64::from_str_radix(x, 16).map_err(|_| bad("object id is not hex"));
        let key = Key::encode(&DaosKey {
            pool: pool.into(),
            container: container.into(),
            namespace: namespace.into(),
            oid_hi: hex(hi)?,
            oid_lo: hex(lo)?,
            len: len.parse().map_err(|_| bad("length is not a number"))?,
            entry: None,
        });
        self.decode(&key)?;
        Ok(key)
    }
}
