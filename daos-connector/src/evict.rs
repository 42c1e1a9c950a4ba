//! Evicts: an object is punched only when its header says it is the key's
//! (a forged key never punches another key's object); the pydaos layout
//! removes the dictionary entry.

use std::sync::Arc;
use std::time::Instant;

use proxy_core::Result;

use crate::client::DaosConnector;
use crate::daos::array;
use crate::daos::kv::{self, Kv, KvOp};
use crate::daos::{Array, Cont};
use crate::error::DaosError;
use crate::key::DaosKey;

impl DaosConnector {
    /// `Connector::evict` of a checked key.
    pub(crate) fn evict_key(&self, k: &DaosKey) -> Result<()> {
        if let Some(d) = self.open_dict().map_err(self.err("evict"))? {
            // As for arrays, a key whose length is not the value's (a forged
            // one) removes nothing; a Python ProxyStore key (no length)
            // removes the entry, as its own connector does.
            if !self.dict_exists(&d, k).map_err(self.err("evict"))? {
                return Ok(());
            }
            return self
                .dict_remove(&d, std::slice::from_ref(k))
                .map_err(self.err("evict"));
        }
        // Only the object the key names: a forged key with this object id but
        // another length or namespace must not punch it (objects are write
        // once, so checking the header first is not racy).
        let present = self
            .read_many(std::slice::from_ref(k), false)
            .map_err(self.err("evict"))?;
        if present[0].is_none() {
            return Ok(());
        }
        let cont = self.cont().map_err(self.err("evict"))?;
        self.punch_many(&cont, std::slice::from_ref(k))
            .map_err(self.err("evict"))
    }

    pub(crate) fn dict_remove(
        &self,
        d: &Arc<Kv>,
        keys: &[DaosKey],
    ) -> std::result::Result<(), DaosError> {
        let deadline = Instant::now() + self.timeout();
        let ops = keys
            .iter()
            .map(|k| KvOp::remove(d, k.entry.as_deref().unwrap_or_default()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let ops = kv::run(ops, self.opts.max_in_flight, deadline, 0)?;
        match ops.iter().find(|o| o.rc != 0) {
            Some(op) => Err(DaosError::call(d.api(), "daos_kv_remove", op.rc)),
            None => Ok(()),
        }
    }

    pub(crate) fn punch_many(
        &self,
        cont: &Arc<Cont>,
        keys: &[DaosKey],
    ) -> std::result::Result<(), DaosError> {
        let api = cont.api();
        let deadline = Instant::now() + self.timeout();
        let mut arrays = Vec::with_capacity(keys.len());
        for k in keys {
            arrays.push(Array::open(cont, k.oid(), self.opts.chunk_size)?);
        }
        let exec = array::destroy_all(cont, arrays, self.opts.max_in_flight, deadline)?;
        for i in 0..keys.len() {
            exec.check(api, "daos_array_destroy", i)?;
        }
        Ok(())
    }
}
