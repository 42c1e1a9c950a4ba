//! The `Connector` operations of [`DaosConnector`]: each picks the layout's
//! path (the pydaos dictionary or the byte arrays) and reports failures as
//! `proxy_core::Error`.

use bytes::Bytes;
use proxy_core::{Capabilities, Connector, ConnectorConfig, Key, Payload, Result};

use crate::KIND;
use crate::client::DaosConnector;

impl Connector for DaosConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            cross_process: true,
            cross_node: true,
            outlives_process: true,
            ..Capabilities::MINIMAL
        }
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let mut keys = self.put_batch(vec![data])?;
        Ok(keys.remove(0))
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        match self.open_dict().map_err(self.err("put"))? {
            Some(d) => self.dict_put(&d, data),
            None => self.put_many(data),
        }
        .map_err(self.err("put"))
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let mut v = self.get_batch(std::slice::from_ref(key))?;
        Ok(v.remove(0))
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let ks = keys
            .iter()
            .map(|k| self.decode(k))
            .collect::<Result<Vec<_>>>()?;
        if ks.is_empty() {
            return Ok(Vec::new());
        }
        match self.open_dict().map_err(self.err("get"))? {
            Some(d) => self.dict_get(&d, &ks),
            None => self.read_many(&ks, true),
        }
        .map_err(self.err("get"))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let k = self.decode(key)?;
        if let Some(d) = self.open_dict().map_err(self.err("exists"))? {
            return self.dict_exists(&d, &k).map_err(self.err("exists"));
        }
        let v = self
            .read_many(std::slice::from_ref(&k), false)
            .map_err(self.err("exists"))?;
        Ok(v[0].is_some())
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let k = self.decode(key)?;
        self.evict_key(&k)
    }

    fn close(&self) -> Result<()> {
        // Objects stay (they outlive the connector); the shared handles
        // close with the last connector of the process that uses them.
        self.cont.lock().take();
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(KIND, &self.opts)
    }

    fn key_to_string(&self, key: &Key) -> Result<String> {
        self.key_text(key)
    }

    fn parse_key(&self, s: &str) -> Result<Key> {
        self.parse_text(s)
    }
}
