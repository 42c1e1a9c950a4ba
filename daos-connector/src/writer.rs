//! Puts: the array layout's (`daos_array_write` of the stamps and the
//! payload's own parts, many in flight) and the pydaos layout's
//! (`daos_kv_put` under fresh `uuid4` names). Nothing of a failed batch
//! stays.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use proxy_core::{Key, Payload};

use crate::client::DaosConnector;
use crate::daos::array::{self, ArrayIo};
use crate::daos::kv::{self, Kv, KvOp};
use crate::daos::{self, ObjectId};
use crate::error::DaosError;
use crate::key::DaosKey;
use crate::layout::{HEADER, Layout, MAGIC};

impl DaosConnector {
    pub(crate) fn header_for(&self, oid_lo: u64, len: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(MAGIC);
        h[8..16].copy_from_slice(&self.ns_hash.to_le_bytes());
        h[16..24].copy_from_slice(&len.to_le_bytes());
        h[24..32].copy_from_slice(&oid_lo.to_le_bytes());
        h
    }

    /// The pydaos layout's put: each object a value under a fresh
    /// `uuid4` string, as the Python ProxyStore names its keys.
    pub(crate) fn dict_put(
        &self,
        d: &Arc<Kv>,
        data: Vec<Payload>,
    ) -> std::result::Result<Vec<Key>, DaosError> {
        let deadline = Instant::now() + self.timeout();
        let mut ops = Vec::with_capacity(data.len());
        let mut keys = Vec::with_capacity(data.len());
        for payload in data {
            let entry = uuid::Uuid::new_v4().to_string();
            // One contiguous value (a copy only for payloads of several parts).
            ops.push(KvOp::put(d, &entry, payload.to_bytes())?);
            keys.push(DaosKey {
                pool: self.opts.pool.clone(),
                container: self.opts.container.clone(),
                namespace: self.opts.namespace.clone(),
                oid_hi: d.oid.hi,
                oid_lo: d.oid.lo,
                len: payload.len() as u64,
                entry: Some(entry),
            });
        }
        let ops = kv::run(ops, self.opts.max_in_flight, deadline, 0)?;
        if let Some(op) = ops.iter().find(|o| o.rc != 0) {
            let rc = op.rc;
            // Nothing of a failed batch stays.
            let _ = self.dict_remove(d, &keys);
            return Err(DaosError::call(d.api(), "daos_kv_put", rc));
        }
        Ok(keys.iter().map(Key::encode).collect())
    }

    pub(crate) fn put_many(&self, data: Vec<Payload>) -> std::result::Result<Vec<Key>, DaosError> {
        let cont = self.cont()?;
        let api = cont.api();
        let deadline = Instant::now() + self.timeout();
        let los = cont.next_oids(data.len() as u64, deadline)?;
        let mut states = Vec::with_capacity(data.len());
        let mut keys = Vec::with_capacity(data.len());
        for (payload, lo) in data.into_iter().zip(los) {
            let mut oid = ObjectId { lo, hi: 0 };
            cont.generate_oid(&mut oid, daos::DAOS_OT_ARRAY_BYTE, self.cid)?;
            let len = payload.len() as u64;
            let parts: Vec<Bytes> = payload.parts().to_vec();
            let layout = Layout::new(self.opts.chunk_size, len);
            let header = self.header_for(oid.lo, len);
            let st = ArrayIo::write(&cont, oid, layout, header, parts)?;
            keys.push(DaosKey {
                pool: self.opts.pool.clone(),
                container: self.opts.container.clone(),
                namespace: self.opts.namespace.clone(),
                oid_hi: oid.hi,
                oid_lo: oid.lo,
                len,
                entry: None,
            });
            states.push(st);
        }
        let (exec, states) = array::run_all(&cont, states, self.opts.max_in_flight, deadline)?;
        let failed = (0..keys.len()).find(|&i| exec.rcs[i] != 0);
        drop(states);
        if let Some(i) = failed {
            // Nothing of a failed batch stays: punch what may have been written.
            let _ = self.punch_many(&cont, &keys);
            return Err(exec
                .check(api, "daos_array_write", i)
                .expect_err("a failed write"));
        }
        Ok(keys.iter().map(Key::encode).collect())
    }
}
