//! The PyDAOS dictionary layout (`layout: pydaos`): objects are values of a
//! PyDAOS dictionary, so the Python ProxyStore's `DAOSConnector`
//! (`proxystore_ex.connectors.daos`) and this connector read each other's
//! objects.
//!
//! What PyDAOS (`pydaos.DCont`, `DDict`) keeps in a container, and so what
//! this module reads and writes:
//! - the container's first root object (`DAOS_PROP_CO_ROOTS`, opened as a
//!   flat key-value object, `DAOS_OT_KV_HASHED`) maps each dictionary's name
//!   to a 64-byte entry: the dictionary's object id (16 bytes), its type
//!   (`u32`, 0 = dictionary), then reserved bytes;
//! - a dictionary is a flat key-value object (`daos_kv_*`): ProxyStore's
//!   keys are `str(uuid.uuid4())`, its values the serialized objects.
//!
//! The connector's namespace is the dictionary's name (created, as
//! ProxyStore does, when missing). New dictionaries get object ids from the
//! container's allocator (`daos_cont_alloc_oids`) with `hi = 1`, so they
//! never meet PyDAOS's own (it uses `hi` counters under its own allocated
//! `lo` values) nor the root object (`lo = 0, hi = 0`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::daos::kv::{Kv, KvOp, container_roots, run, stored_len};
use crate::daos::{self, Cont, ObjectId, der};
use crate::error::{DaosError, Result};

/// Size of PyDAOS's root entry (`struct pydaos_df`).
const ROOT_ENTRY: usize = 64;
/// `enum pydaos_otype`: a dictionary.
const PYDAOS_DICT: u32 = 0;
/// `hi` of the object ids of the dictionaries this connector creates.
const DICT_OID_HI: u64 = 1;
/// Rounds of reads retried when a value grew between its size probe and
/// its read (`-DER_REC2BIG`; values are written once, so this is rare).
const GROW_RETRIES: usize = 3;

/// The dictionary `name` of the container (created if missing), open.
pub(crate) fn open_dict(cont: &Arc<Cont>, name: &str, cid: u32, deadline: Instant) -> Result<Kv> {
    let api = cont.api();
    let (layout, root) = container_roots(cont, deadline)?;
    if layout != daos::DAOS_PROP_CO_LAYOUT_UNKNOWN && layout != daos::DAOS_PROP_CO_LAYOUT_PYTHON {
        return Err(DaosError::Layout(format!(
            "the container's layout type is {layout} ({}), not PYTHON: the pydaos layout keeps its \
             dictionaries in the container's root object, which other layouts use for themselves; \
             use a container made with `daos container create POOL LABEL --type PYTHON`",
            if layout == daos::DAOS_PROP_CO_LAYOUT_POSIX {
                "POSIX"
            } else {
                "not PyDAOS"
            }
        )));
    }
    if root == ObjectId::default() {
        return Err(DaosError::Layout(
            "the container has no root object; use a container made with \
             `daos container create POOL LABEL --type PYTHON`"
                .into(),
        ));
    }
    let root = daos::with_type(root, daos::DAOS_OT_KV_HASHED);
    let root = Arc::new(Kv::open(cont, root)?);
    for _ in 0..2 {
        if let Some(oid) = lookup(&root, name, deadline)? {
            return Kv::open(cont, oid);
        }
        // Missing: create it, unless another process does first.
        let lo = cont.next_oids(1, deadline)?[0];
        let mut oid = ObjectId {
            lo,
            hi: DICT_OID_HI,
        };
        cont.generate_oid(&mut oid, daos::DAOS_OT_KV_HASHED, cid)?;
        let mut entry = [0u8; ROOT_ENTRY];
        entry[0..8].copy_from_slice(&oid.lo.to_le_bytes());
        entry[8..16].copy_from_slice(&oid.hi.to_le_bytes());
        entry[16..20].copy_from_slice(&PYDAOS_DICT.to_le_bytes());
        let ops = vec![KvOp::put(&root, name, Bytes::copy_from_slice(&entry))?];
        let ops = run(ops, 1, deadline, daos::DAOS_COND_KEY_INSERT)?;
        match ops[0].rc {
            0 => return Kv::open(cont, oid),
            rc if rc == -der::DER_EXIST => continue,
            rc => return Err(DaosError::call(api, "daos_kv_put (root)", rc)),
        }
    }
    Err(DaosError::Layout(format!(
        "the dictionary {name:?} was created and removed while this connector opened it"
    )))
}

/// The object id the root entry `name` names; `None`: no such entry.
fn lookup(root: &Arc<Kv>, name: &str, deadline: Instant) -> Result<Option<ObjectId>> {
    let ops = vec![KvOp::get(root, name, Some(ROOT_ENTRY as u64))?];
    let mut ops = run(ops, 1, deadline, 0)?;
    let op = ops.remove(0);
    match op.rc {
        0 => {}
        rc if rc == -der::DER_REC2BIG => {
            return Err(DaosError::Layout(format!(
                "the root entry {name:?} is not a PyDAOS object entry (over {ROOT_ENTRY} bytes)"
            )));
        }
        rc => return Err(DaosError::call(root.api(), "daos_kv_get (root)", rc)),
    }
    match op.size() {
        0 => return Ok(None),
        n if n != ROOT_ENTRY as u64 => {
            return Err(DaosError::Layout(format!(
                "the root entry {name:?} is not a PyDAOS object entry ({n} bytes, not {ROOT_ENTRY})"
            )));
        }
        _ => {}
    }
    let Some(entry) = op.value() else {
        return Ok(None);
    };
    let word =
        |r: std::ops::Range<usize>| u64::from_le_bytes(entry[r].try_into().expect("8 bytes"));
    let otype = u32::from_le_bytes(entry[16..20].try_into().expect("4 bytes"));
    if otype != PYDAOS_DICT {
        return Err(DaosError::Layout(format!(
            "{name:?} names a PyDAOS array (type {otype}), not a dictionary"
        )));
    }
    Ok(Some(ObjectId {
        lo: word(0..8),
        hi: word(8..16),
    }))
}
/// Read the values of `keys` (with their lengths, when known) from `kv`:
/// `None` for a missing key or a value of another length. Keys without a
/// length are probed for their size first.
pub(crate) fn get_many(
    kv: &Arc<Kv>,
    keys: &[(&str, Option<u64>)],
    window: usize,
    deadline: Instant,
    probe_above: u64,
) -> Result<Vec<Option<Bytes>>> {
    let api = kv.api();
    let mut lens: Vec<Option<u64>> = keys.iter().map(|(_, l)| *l).collect();
    let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
    // Unknown lengths, and large claimed ones (a forged length must not
    // allocate), are probed first.
    let mut todo: Vec<usize> = (0..keys.len()).collect();
    let probe: Vec<usize> = (0..keys.len())
        .filter(|&i| lens[i].is_none_or(|n| n > probe_above))
        .collect();
    if !probe.is_empty() {
        let ops = probe
            .iter()
            .map(|&i| KvOp::get(kv, keys[i].0, None))
            .collect::<Result<Vec<_>>>()?;
        let ops = run(ops, window, deadline, 0)?;
        for (&i, op) in probe.iter().zip(&ops) {
            if op.rc != 0 {
                return Err(DaosError::call(api, "daos_kv_get", op.rc));
            }
            let size = op.size();
            match lens[i] {
                _ if size == 0 => todo.retain(|&j| j != i),
                Some(n) if stored_len(n) != size => todo.retain(|&j| j != i),
                Some(_) => {}
                None => lens[i] = Some(size),
            }
        }
    }
    for _ in 0..GROW_RETRIES {
        if todo.is_empty() {
            break;
        }
        let ops = todo
            .iter()
            .map(|&i| KvOp::get(kv, keys[i].0, lens[i]))
            .collect::<Result<Vec<_>>>()?;
        let ops = run(ops, window, deadline, 0)?;
        let mut again = Vec::new();
        for (&i, op) in todo.iter().zip(ops) {
            match op.rc {
                0 => out[i] = op.value(),
                // Bigger than asked: a key without a length was rewritten
                // since its probe (read again at its new size); with a
                // length, the value is not the key's.
                rc if rc == -der::DER_REC2BIG => {
                    if keys[i].1.is_none() {
                        lens[i] = None;
                        again.push(i);
                    }
                }
                rc => return Err(DaosError::call(api, "daos_kv_get", rc)),
            }
        }
        // Re-probe what grew.
        if !again.is_empty() {
            let ops = again
                .iter()
                .map(|&i| KvOp::get(kv, keys[i].0, None))
                .collect::<Result<Vec<_>>>()?;
            let ops = run(ops, window, deadline, 0)?;
            for (&i, op) in again.iter().zip(&ops) {
                lens[i] = Some(op.size());
            }
            again.retain(|&i| lens[i] != Some(0));
        }
        todo = again;
    }
    if !todo.is_empty() {
        return Err(DaosError::call(api, "daos_kv_get", -der::DER_REC2BIG));
    }
    Ok(out)
}
