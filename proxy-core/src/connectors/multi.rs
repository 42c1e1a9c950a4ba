//! [`MultiConnector`]: routes each object to one of several connectors by policy.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::connector::{
    Capabilities, Connector, ConnectorConfig, Deferrable, DynConnector, FromConfig, Payload,
};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::registry;

const KIND: &str = "multi";

/// Which objects a child connector takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Higher wins when several children accept an object.
    pub priority: i32,
    /// Smallest encoded size accepted (bytes).
    pub min_size: u64,
    /// Largest encoded size accepted (bytes); `None` = unbounded.
    pub max_size: Option<u64>,
}

impl Policy {
    fn accepts(&self, size: u64) -> bool {
        size >= self.min_size && self.max_size.is_none_or(|m| size <= m)
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    policy: Policy,
    connector: ConnectorConfig,
}

#[derive(Serialize, Deserialize)]
struct MultiOptions {
    connectors: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct MultiKey {
    connector: String,
    key: Key,
}

struct Child {
    name: String,
    policy: Policy,
    connector: DynConnector,
}

/// Routes each object by size to one of several named child connectors (e.g.
/// small objects to Redis, large ones to UCX), as ProxyStore's `MultiConnector`.
/// Its key records which child holds the object.
///
/// Unlike ProxyStore's, its configuration nests its children's configurations
/// and rebuilds them through the registry, so its proxies resolve in any process.
pub struct MultiConnector {
    children: Vec<Child>,
}

impl fmt::Debug for MultiConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_map();
        for c in &self.children {
            l.entry(&c.name, &c.connector);
        }
        l.finish()
    }
}

impl MultiConnector {
    /// Route over `(name, policy, connector)` children (names unique).
    pub fn new(children: Vec<(String, Policy, DynConnector)>) -> Result<Self> {
        if children.is_empty() {
            return Err(Error::config(KIND, "needs at least one child connector"));
        }
        let mut names: Vec<&str> = children.iter().map(|c| c.0.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::config(
                KIND,
                format!("duplicate child name '{}'", w[0]),
            ));
        }
        Ok(MultiConnector {
            children: children
                .into_iter()
                .map(|(name, policy, connector)| Child {
                    name,
                    policy,
                    connector,
                })
                .collect(),
        })
    }

    /// The largest object some child accepts (by policy and by its own limit),
    /// `None` if unbounded.
    fn max_object_size(&self) -> Option<u64> {
        let mut max = 0;
        for c in &self.children {
            let limit = match (
                c.policy.max_size,
                c.connector.capabilities().max_object_size,
            ) {
                (None, None) => return None,
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
            };
            max = max.max(limit);
        }
        Some(max)
    }

    fn route(&self, size: u64) -> Result<&Child> {
        if let Some(limit) = self.max_object_size().filter(|&l| size > l) {
            return Err(Error::TooLarge {
                connector: KIND.into(),
                size,
                limit,
            });
        }
        self.children
            .iter()
            .filter(|c| c.policy.accepts(size))
            .max_by_key(|c| c.policy.priority)
            .ok_or_else(|| Error::Unsupported {
                connector: KIND.into(),
                operation: "put of an object no child policy accepts",
            })
    }

    fn child_for(&self, key: &Key) -> Result<(&Child, Key)> {
        let mk: MultiKey = key.decode(KIND)?;
        let child = self
            .children
            .iter()
            .find(|c| c.name == mk.connector)
            .ok_or_else(|| Error::InvalidKey {
                connector: KIND.into(),
                reason: format!(
                    "key names child connector '{}', which this connector does not have",
                    mk.connector
                ),
            })?;
        Ok((child, mk.key))
    }

    fn index_of(&self, child: &Child) -> usize {
        self.children
            .iter()
            .position(|x| std::ptr::eq(x, child))
            .expect("child of this connector")
    }

    /// Run one batch per child over the items routed to it (`(child index,
    /// item)`), and return the results in the items' order.
    fn per_child<T, R>(
        &self,
        routed: Vec<(usize, T)>,
        batch: impl Fn(&Child, Vec<T>) -> Result<Vec<R>>,
    ) -> Result<Vec<R>> {
        let n = routed.len();
        let mut groups: Vec<(Vec<usize>, Vec<T>)> =
            (0..self.children.len()).map(|_| (vec![], vec![])).collect();
        for (i, (ci, item)) in routed.into_iter().enumerate() {
            groups[ci].0.push(i);
            groups[ci].1.push(item);
        }
        let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
        for (ci, (idx, items)) in groups.into_iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let results = batch(&self.children[ci], items)?;
            if results.len() != idx.len() {
                return Err(Error::permanent(
                    KIND,
                    "batch",
                    format!(
                        "child '{}' returned {} results for {} items",
                        self.children[ci].name,
                        results.len(),
                        idx.len()
                    ),
                ));
            }
            for (i, r) in idx.into_iter().zip(results) {
                out[i] = Some(r);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every index filled"))
            .collect())
    }

    fn wrap(child: &Child, key: Key) -> Key {
        Key::encode(&MultiKey {
            connector: child.name.clone(),
            key,
        })
    }
}

// A wrapper: forward every method, so a child's behaviour is never replaced
// by a default.
#[warn(clippy::missing_trait_methods)]
impl Connector for MultiConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// What every child can do.
    fn capabilities(&self) -> Capabilities {
        let caps: Vec<Capabilities> = self
            .children
            .iter()
            .map(|c| c.connector.capabilities())
            .collect();
        Capabilities {
            cross_process: caps.iter().all(|c| c.cross_process),
            cross_node: caps.iter().all(|c| c.cross_node),
            outlives_process: caps.iter().all(|c| c.outlives_process),
            one_sided_get: caps.iter().all(|c| c.one_sided_get),
            zero_copy_get: caps.iter().all(|c| c.zero_copy_get),
            mapped_get: caps.iter().all(|c| c.mapped_get),
            max_object_size: self.max_object_size(),
            notify: caps.iter().all(|c| c.notify),
            empty_objects: caps.iter().all(|c| c.empty_objects),
        }
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let child = self.route(data.len() as u64)?;
        Ok(Self::wrap(child, child.connector.put(data)?))
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        let routed = data
            .into_iter()
            .map(|d| Ok((self.index_of(self.route(d.len() as u64)?), d)))
            .collect::<Result<Vec<_>>>()?;
        self.per_child(routed, |child, payloads| {
            Ok(child
                .connector
                .put_batch(payloads)?
                .into_iter()
                .map(|k| Self::wrap(child, k))
                .collect())
        })
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let (c, k) = self.child_for(key)?;
        c.connector.get(&k)
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let routed = keys
            .iter()
            .map(|key| {
                let (c, k) = self.child_for(key)?;
                Ok((self.index_of(c), k))
            })
            .collect::<Result<Vec<_>>>()?;
        self.per_child(routed, |child, ks| child.connector.get_batch(&ks))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let (c, k) = self.child_for(key)?;
        c.connector.exists(&k)
    }

    /// The child's wait (notified where the child notifies).
    fn wait_for(&self, key: &Key, timeout: std::time::Duration) -> Result<bool> {
        let (c, k) = self.child_for(key)?;
        c.connector.wait_for(&k, timeout)
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let (c, k) = self.child_for(key)?;
        c.connector.evict(&k)
    }

    /// `<child name>:<child's text form of the key>`.
    fn key_to_string(&self, key: &Key) -> Result<String> {
        let (c, k) = self.child_for(key)?;
        Ok(format!("{}:{}", c.name, c.connector.key_to_string(&k)?))
    }

    fn parse_key(&self, s: &str) -> Result<Key> {
        let bad = || Error::InvalidKey {
            connector: KIND.into(),
            reason: format!("{s:?} is not <child name>:<key>"),
        };
        let (name, rest) = s.trim().split_once(':').ok_or_else(bad)?;
        let child = self
            .children
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(bad)?;
        Ok(Self::wrap(child, child.connector.parse_key(rest)?))
    }

    /// Closes every child (each as it documents), reporting the first error.
    fn close(&self) -> Result<()> {
        let mut first_err = None;
        for c in &self.children {
            if let Err(e) = c.connector.close() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Not deferrable: a key names its child, which is chosen by the object's
    /// size, unknown before `set`.
    fn as_deferrable(&self) -> Option<&dyn Deferrable> {
        None
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(
            KIND,
            MultiOptions {
                connectors: self
                    .children
                    .iter()
                    .map(|c| Entry {
                        name: c.name.clone(),
                        policy: c.policy.clone(),
                        connector: c.connector.config(),
                    })
                    .collect(),
            },
        )
    }
}

impl FromConfig for MultiConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        let o: MultiOptions = config.options()?;
        let children = o
            .connectors
            .into_iter()
            .map(|e| {
                Ok((
                    e.name,
                    e.policy,
                    registry::connector_from_config(&e.connector)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        MultiConnector::new(children)
    }
}
