//! [`EndpointKey`]: the Python `EndpointKey(object_id, endpoint_id)`.

use proxy_core::{Error, Key, Result};
use serde::{Deserialize, Serialize};

use crate::KIND;

/// The key of one object: its id and the endpoint that holds it, both
/// UUIDs (ProxyStore's `EndpointKey.object_id` and `.endpoint_id` are their
/// hyphenated strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointKey {
    /// The endpoint holding the object (UUID bytes); `None`: the local one.
    /// First in the key's bytes, as the owning server is in the object
    /// server's keys: where the object is, then which one it is.
    pub endpoint_id: Option<[u8; 16]>,
    /// Object id (UUID bytes).
    pub object_id: [u8; 16],
}

fn parse_uuid(what: &str, s: &str) -> Result<[u8; 16]> {
    uuid::Uuid::parse_str(s.trim())
        .map(|u| *u.as_bytes())
        .map_err(|e| Error::InvalidKey {
            connector: KIND.into(),
            reason: format!("{what} {s:?} is not a UUID: {e}"),
        })
}

impl EndpointKey {
    /// From the strings of a Python `EndpointKey`.
    pub fn from_strs(object_id: &str, endpoint_id: Option<&str>) -> Result<Self> {
        Ok(EndpointKey {
            object_id: parse_uuid("object id", object_id)?,
            endpoint_id: endpoint_id
                .map(|e| parse_uuid("endpoint id", e))
                .transpose()?,
        })
    }

    /// The object id as ProxyStore writes it.
    pub fn object_id_str(&self) -> String {
        uuid::Uuid::from_bytes(self.object_id)
            .hyphenated()
            .to_string()
    }

    /// The endpoint id as ProxyStore writes it.
    pub fn endpoint_id_str(&self) -> Option<String> {
        self.endpoint_id
            .map(|e| uuid::Uuid::from_bytes(e).hyphenated().to_string())
    }

    /// Decode a proxy-core [`Key`] minted by this connector.
    pub fn from_key(key: &Key) -> Result<Self> {
        key.decode(KIND)
    }

    /// `object_id@endpoint_id` (or the object id alone).
    pub fn to_text(&self) -> String {
        match self.endpoint_id_str() {
            Some(e) => format!("{}@{e}", self.object_id_str()),
            None => self.object_id_str(),
        }
    }

    /// Parse [`EndpointKey::to_text`].
    pub fn from_text(s: &str) -> Result<Self> {
        match s.split_once('@') {
            Some((o, e)) => Self::from_strs(o, Some(e)),
            None => Self::from_strs(s, None),
        }
    }
}

impl From<EndpointKey> for Key {
    fn from(k: EndpointKey) -> Key {
        Key::encode(&k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let k = EndpointKey::from_strs(
            "0b4e4b1e-6f0a-4d0c-9d3e-2a7c1f0e9b11",
            Some("774ebd02-b442-4dea-870b-843b74b67737"),
        )
        .unwrap();
        assert_eq!(EndpointKey::from_text(&k.to_text()).unwrap(), k);
        assert_eq!(EndpointKey::from_key(&k.into()).unwrap(), k);
        assert_eq!(k.object_id_str(), "0b4e4b1e-6f0a-4d0c-9d3e-2a7c1f0e9b11");
        assert!(matches!(
            EndpointKey::from_text("x@y"),
            Err(Error::InvalidKey { .. })
        ));
    }
}
