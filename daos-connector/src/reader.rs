//! Gets and `exists`: the array layout's reads (the stamps and the object
//! in one `daos_array_read` each, many in flight, every stamp checked) and
//! the pydaos layout's (`daos_kv_get`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::client::DaosConnector;
use crate::daos::array::{self, ArrayIo};
use crate::daos::kv::{self, Kv, KvOp};
use crate::daos::{Cont, NOT_DONE, der};
use crate::dict;
use crate::error::DaosError;
use crate::key::{DaosKey, UNKNOWN_LEN};
use crate::layout::{Layout, MAGIC};

/// Objects over this size are probed (header read) before a buffer is taken.
const PROBE_THRESHOLD: u64 = 16 << 20;
/// Rounds of reads retried on `-DER_TX_RESTART` (not expected outside
/// transactions; bounded so that it can never loop).
const TX_RETRIES: usize = 5;

impl DaosConnector {
    /// The pydaos layout's reads: `None` for a missing entry or a value of
    /// another length than the key's.
    pub(crate) fn dict_get(
        &self,
        d: &Arc<Kv>,
        keys: &[DaosKey],
    ) -> std::result::Result<Vec<Option<Bytes>>, DaosError> {
        let deadline = Instant::now() + self.timeout();
        let want: Vec<(&str, Option<u64>)> = keys
            .iter()
            .map(|k| {
                (
                    k.entry.as_deref().unwrap_or_default(),
                    (k.len != UNKNOWN_LEN).then_some(k.len),
                )
            })
            .collect();
        dict::get_many(d, &want, self.opts.max_in_flight, deadline, PROBE_THRESHOLD)
    }

    /// The pydaos layout's `exists`: the entry is there (with the key's
    /// length, when the key has one).
    pub(crate) fn dict_exists(
        &self,
        d: &Arc<Kv>,
        k: &DaosKey,
    ) -> std::result::Result<bool, DaosError> {
        let deadline = Instant::now() + self.timeout();
        let ops = vec![KvOp::get(d, k.entry.as_deref().unwrap_or_default(), None)?];
        let ops = kv::run(ops, 1, deadline, 0)?;
        if ops[0].rc != 0 {
            return Err(DaosError::call(d.api(), "daos_kv_get", ops[0].rc));
        }
        let size = ops[0].size();
        Ok(size != 0 && (k.len == UNKNOWN_LEN || size == kv::stored_len(k.len)))
    }

    /// Read the header (and, with `with_data`, the object) of each key.
    /// `None`: the object is not stored (punched, never written, another
    /// namespace or length).
    pub(crate) fn read_many(
        &self,
        keys: &[DaosKey],
        with_data: bool,
    ) -> std::result::Result<Vec<Option<Bytes>>, DaosError> {
        let cont = self.cont()?;
        let api = cont.api();
        let deadline = Instant::now() + self.timeout();
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        // Large objects are probed first: a forged length allocates nothing.
        let mut todo: Vec<usize> = (0..keys.len()).collect();
        if with_data {
            let big: Vec<usize> = todo
                .iter()
                .copied()
                .filter(|&i| keys[i].len > PROBE_THRESHOLD)
                .collect();
            if !big.is_empty() {
                let probe_keys: Vec<DaosKey> = big.iter().map(|&i| keys[i].clone()).collect();
                let present = self.read_round(&cont, &probe_keys, false, deadline)?;
                let absent: Vec<usize> = big
                    .iter()
                    .zip(present)
                    .filter(|(_, p)| p.as_ref().is_none_or(|r| r.is_none()))
                    .map(|(&i, _)| i)
                    .collect();
                todo.retain(|i| !absent.contains(i));
            }
        }
        for _ in 0..TX_RETRIES {
            if todo.is_empty() {
                break;
            }
            let round_keys: Vec<DaosKey> = todo.iter().map(|&i| keys[i].clone()).collect();
            let got = self.read_round(&cont, &round_keys, with_data, deadline)?;
            let mut again = Vec::new();
            for (&i, r) in todo.iter().zip(got) {
                match r {
                    Some(v) => out[i] = v,
                    None => again.push(i),
                }
            }
            todo = again;
        }
        if !todo.is_empty() {
            return Err(DaosError::call(
                api,
                "daos_array_read",
                -der::DER_TX_RESTART,
            ));
        }
        Ok(out)
    }

    /// One round of reads; `None` in the result: restart (`-DER_TX_RESTART`).
    #[allow(clippy::type_complexity)]
    pub(crate) fn read_round(
        &self,
        cont: &Arc<Cont>,
        keys: &[DaosKey],
        with_data: bool,
        deadline: Instant,
    ) -> std::result::Result<Vec<Option<Option<Bytes>>>, DaosError> {
        let api = cont.api();
        let mut states = Vec::with_capacity(keys.len());
        for k in keys {
            let data_len = if with_data { k.len as usize } else { 0 };
            let layout = Layout::new(self.opts.chunk_size, data_len as u64);
            states.push(ArrayIo::read(cont, k.oid(), layout)?);
        }
        let (exec, states) = array::run_all(cont, states, self.opts.max_in_flight, deadline)?;
        let mut out = Vec::with_capacity(keys.len());
        for (i, (st, k)) in states.into_iter().zip(keys).enumerate() {
            let rc = exec.rcs[i];
            if rc == -der::DER_TX_RESTART {
                out.push(None);
                continue;
            }
            if rc != 0 || (exec.timed_out && rc == NOT_DONE) {
                exec.check(api, "daos_array_read", i)?;
            }
            let st = *st;
            // Every chunk's stamp in place: every chunk was read before any
            // punch (see `layout`), so the object is whole.
            let ok = st.header[0..8] == *MAGIC
                && st.header[8..16] == self.ns_hash.to_le_bytes()
                && st.header[16..24] == k.len.to_le_bytes()
                && st.header[24..32] == k.oid_lo.to_le_bytes()
                && (!with_data
                    || Layout::new(self.opts.chunk_size, k.len).stamps_match(k.oid_lo, &st.stamps));
            out.push(Some(if ok { Some(st.dest.into_bytes()) } else { None }));
        }
        Ok(out)
    }
}
