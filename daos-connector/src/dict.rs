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

use std::ffi::CString;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use daos_sys::{daos_handle_t, daos_obj_id_t, daos_prop_co_roots};

use crate::connector::Dest;
use crate::daos::{Cont, Eq, NOT_DONE, execute};
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

/// An open flat key-value object, closed on drop (a local operation).
#[derive(Debug)]
pub(crate) struct Kv {
    cont: Arc<Cont>,
    pub(crate) oh: daos_handle_t,
    pub(crate) oid: daos_obj_id_t,
}

impl Kv {
    pub(crate) fn api(&self) -> &'static daos_sys::Api {
        self.cont.api()
    }

    fn open(cont: &Arc<Cont>, oid: daos_obj_id_t) -> Result<Kv> {
        let api = cont.api();
        let mut oh = daos_handle_t::default();
        // SAFETY: `oh` is a valid out pointer; a null event makes the call
        // blocking, and opening an object does no network I/O.
        let rc = unsafe {
            (api.daos_kv_open)(
                cont.coh,
                oid,
                daos_sys::DAOS_OO_RW,
                &mut oh,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(DaosError::call(api, "daos_kv_open", rc));
        }
        Ok(Kv {
            cont: cont.clone(),
            oh,
            oid,
        })
    }
}

impl Drop for Kv {
    fn drop(&mut self) {
        // SAFETY: no operation on the handle is in flight: operations hold
        // an `Arc` of the dictionary (so of this handle) until they complete,
        // and leak it when they never do.
        unsafe { (self.cont.api().daos_kv_close)(self.oh, std::ptr::null_mut()) };
    }
}

/// The layout type and first root object id of a container.
fn container_roots(cont: &Arc<Cont>, deadline: Instant) -> Result<(u64, daos_obj_id_t)> {
    let api = cont.api();
    // SAFETY: allocates an empty list of two entries (freed below).
    let prop = unsafe { (api.daos_prop_alloc)(2) };
    if prop.is_null() {
        return Err(DaosError::call(
            api,
            "daos_prop_alloc",
            -daos_sys::der::DER_NOMEM,
        ));
    }
    // SAFETY: `prop` has two entries; setting their types asks
    // daos_cont_query for exactly these two properties.
    unsafe {
        (*(*prop).dpp_entries).dpe_type = daos_sys::DAOS_PROP_CO_LAYOUT_TYPE;
        (*(*prop).dpp_entries.add(1)).dpe_type = daos_sys::DAOS_PROP_CO_ROOTS;
    }
    let mut eq = Eq::take(cont.rt())?;
    let coh = cont.coh;
    let exec = execute(&mut eq, 1, 1, deadline, |_, ev| {
        // SAFETY: `prop` lives until the operation completes (leaked if stuck).
        unsafe { (api.daos_cont_query)(coh, std::ptr::null_mut(), prop, ev) }
    });
    if exec.stuck {
        return Err(DaosError::Timeout);
    }
    let result = exec.check(api, "daos_cont_query", 0).map(|()| {
        // SAFETY: the query completed: entry 0 holds a number, entry 1 a
        // pointer to a `daos_prop_co_roots` (or null) owned by `prop`.
        unsafe {
            let layout = (*(*prop).dpp_entries).dpe_val.dpe_val;
            let roots =
                (*(*prop).dpp_entries.add(1)).dpe_val.dpe_val_ptr as *const daos_prop_co_roots;
            let root = if roots.is_null() {
                daos_obj_id_t::default()
            } else {
                (*roots).cr_oids[0]
            };
            (layout, root)
        }
    });
    // SAFETY: allocated by daos_prop_alloc, no operation uses it any more.
    unsafe { (api.daos_prop_free)(prop) };
    result
}

/// The dictionary `name` of the container (created if missing), open.
pub(crate) fn open_dict(cont: &Arc<Cont>, name: &str, cid: u32, deadline: Instant) -> Result<Kv> {
    let api = cont.api();
    let (layout, mut root) = container_roots(cont, deadline)?;
    if layout != daos_sys::DAOS_PROP_CO_LAYOUT_UNKNOWN
        && layout != daos_sys::DAOS_PROP_CO_LAYOUT_PYTHON
    {
        return Err(DaosError::Layout(format!(
            "the container's layout type is {layout} ({}), not PYTHON: the pydaos layout keeps its \
             dictionaries in the container's root object, which other layouts use for themselves; \
             use a container made with `daos container create POOL LABEL --type PYTHON`",
            if layout == daos_sys::DAOS_PROP_CO_LAYOUT_POSIX {
                "POSIX"
            } else {
                "not PyDAOS"
            }
        )));
    }
    if root == daos_obj_id_t::default() {
        return Err(DaosError::Layout(
            "the container has no root object; use a container made with \
             `daos container create POOL LABEL --type PYTHON`"
                .into(),
        ));
    }
    root.hi |= u64::from(daos_sys::DAOS_OT_KV_HASHED) << daos_sys::OID_FMT_TYPE_SHIFT;
    let root = Arc::new(Kv::open(cont, root)?);
    for _ in 0..2 {
        if let Some(oid) = lookup(&root, name, deadline)? {
            return Kv::open(cont, oid);
        }
        // Missing: create it, unless another process does first.
        let lo = cont.next_oids(1, deadline)?[0];
        let mut oid = daos_obj_id_t {
            lo,
            hi: DICT_OID_HI,
        };
        // SAFETY: valid out pointer; a local computation.
        let rc = unsafe {
            (api.daos_obj_generate_oid)(cont.coh, &mut oid, daos_sys::DAOS_OT_KV_HASHED, cid, 0, 0)
        };
        if rc != 0 {
            return Err(DaosError::call(api, "daos_obj_generate_oid", rc));
        }
        let mut entry = [0u8; ROOT_ENTRY];
        entry[0..8].copy_from_slice(&oid.lo.to_le_bytes());
        entry[8..16].copy_from_slice(&oid.hi.to_le_bytes());
        entry[16..20].copy_from_slice(&PYDAOS_DICT.to_le_bytes());
        let ops = vec![KvOp::put(&root, name, Bytes::copy_from_slice(&entry))?];
        let ops = run(ops, 1, deadline, daos_sys::DAOS_COND_KEY_INSERT)?;
        match ops[0].rc {
            0 => return Kv::open(cont, oid),
            rc if rc == -daos_sys::der::DER_EXIST => continue,
            rc => return Err(DaosError::call(api, "daos_kv_put (root)", rc)),
        }
    }
    Err(DaosError::Layout(format!(
        "the dictionary {name:?} was created and removed while this connector opened it"
    )))
}

/// The object id the root entry `name` names; `None`: no such entry.
fn lookup(root: &Arc<Kv>, name: &str, deadline: Instant) -> Result<Option<daos_obj_id_t>> {
    let ops = vec![KvOp::get(root, name, Some(ROOT_ENTRY as u64))?];
    let mut ops = run(ops, 1, deadline, 0)?;
    let op = ops.remove(0);
    match op.rc {
        0 => {}
        rc if rc == -daos_sys::der::DER_REC2BIG => {
            return Err(DaosError::Layout(format!(
                "the root entry {name:?} is not a PyDAOS object entry (over {ROOT_ENTRY} bytes)"
            )));
        }
        rc => return Err(DaosError::call(root.cont.api(), "daos_kv_get (root)", rc)),
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
    Ok(Some(daos_obj_id_t {
        lo: word(0..8),
        hi: word(8..16),
    }))
}

/// The stored size of an object of `len` bytes: PyDAOS (and DAOS's KV API)
/// treats an empty value as a removal, so an empty object is stored as one
/// zero byte (a key of length 0 expects exactly that).
pub(crate) fn stored_len(len: u64) -> u64 {
    len.max(1)
}

/// One key-value operation and everything it uses, at fixed addresses until
/// it completes.
pub(crate) struct KvOp {
    kv: Arc<Kv>,
    key: CString,
    what: What,
    /// The object length a get expects (`None`: a size probe).
    expect: Option<u64>,
    /// In: the buffer's size (a put: the value's length); out (get): the
    /// value's size, 0 if there is no such key.
    size: u64,
    /// The buffer a get reads into.
    buf: Option<Dest>,
    /// The value a put writes.
    value: Bytes,
    /// The operation's result (0 or `-DER_*`).
    pub(crate) rc: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Get,
    Put,
    Remove,
}

impl KvOp {
    fn new(kv: &Arc<Kv>, key: &str, what: What) -> Result<KvOp> {
        Ok(KvOp {
            kv: kv.clone(),
            key: CString::new(key)
                .map_err(|_| DaosError::BadLabel(format!("key {key:?} contains a NUL byte")))?,
            what,
            expect: None,
            size: 0,
            buf: None,
            value: Bytes::new(),
            rc: NOT_DONE,
        })
    }

    /// Read `key`: with `expect`, its value (one of another size is `None`);
    /// without, only its size.
    pub(crate) fn get(kv: &Arc<Kv>, key: &str, expect: Option<u64>) -> Result<KvOp> {
        let mut op = KvOp::new(kv, key, What::Get)?;
        if let Some(n) = expect {
            let stored = stored_len(n);
            op.expect = Some(n);
            op.size = stored;
            op.buf = Some(Dest::new(stored as usize).map_err(DaosError::Core)?);
        }
        Ok(op)
    }

    /// Write `value` under `key` (an empty value as one zero byte).
    pub(crate) fn put(kv: &Arc<Kv>, key: &str, value: Bytes) -> Result<KvOp> {
        let mut op = KvOp::new(kv, key, What::Put)?;
        op.value = if value.is_empty() {
            Bytes::from_static(&[0])
        } else {
            value
        };
        op.size = op.value.len() as u64;
        Ok(op)
    }

    /// Remove `key` (its dkey is punched).
    pub(crate) fn remove(kv: &Arc<Kv>, key: &str) -> Result<KvOp> {
        KvOp::new(kv, key, What::Remove)
    }

    /// The value's size after a get (0: no such key).
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The object a get read: `None` if the key does not exist or its
    /// value does not have the expected size.
    pub(crate) fn value(self) -> Option<Bytes> {
        let n = self.expect?;
        if self.size != stored_len(n) {
            return None;
        }
        if n == 0 {
            return Some(Bytes::new());
        }
        self.buf.map(Dest::into_bytes)
    }
}

/// Run `ops` on one event queue, at most `window` in flight, with `flags`
/// for puts. Each op's `rc` is set; a deadline that passes is an error.
pub(crate) fn run(
    mut ops: Vec<KvOp>,
    window: usize,
    deadline: Instant,
    put_flags: u64,
) -> Result<Vec<KvOp>> {
    if ops.is_empty() {
        return Ok(ops);
    }
    let api = ops[0].kv.cont.api();
    let mut boxed: Vec<Box<KvOp>> = ops.drain(..).map(Box::new).collect();
    let mut eq = Eq::take(ops_rt(&boxed))?;
    let exec = execute(&mut eq, boxed.len(), window, deadline, |i, ev| {
        let op = &mut *boxed[i];
        let oh = op.kv.oh;
        let key = op.key.as_ptr();
        match op.what {
            What::Get => {
                let buf = op
                    .buf
                    .as_mut()
                    .and_then(|b| b.iov())
                    .map_or(std::ptr::null_mut(), |iov| iov.iov_buf);
                // A null buffer asks for the size only.
                if buf.is_null() {
                    op.size = 0;
                }
                // SAFETY: the boxed op (key, size, buffer) stays alive until
                // the operation completes (leaked below if it never does).
                unsafe {
                    (api.daos_kv_get)(oh, daos_sys::DAOS_TX_NONE, 0, key, &mut op.size, buf, ev)
                }
            }
            What::Put => {
                // SAFETY: as above; DAOS only reads the value.
                unsafe {
                    (api.daos_kv_put)(
                        oh,
                        daos_sys::DAOS_TX_NONE,
                        put_flags,
                        key,
                        op.size,
                        op.value.as_ptr().cast(),
                        ev,
                    )
                }
            }
            // SAFETY: as above.
            What::Remove => unsafe { (api.daos_kv_remove)(oh, daos_sys::DAOS_TX_NONE, 0, key, ev) },
        }
    });
    if exec.stuck {
        std::mem::forget(boxed);
        return Err(DaosError::Timeout);
    }
    if exec.timed_out && exec.rcs.contains(&NOT_DONE) {
        return Err(DaosError::Timeout);
    }
    let mut out = Vec::with_capacity(boxed.len());
    for (op, rc) in boxed.into_iter().zip(&exec.rcs) {
        let mut op = *op;
        op.rc = *rc;
        if exec.timed_out
            && (*rc == -daos_sys::der::DER_CANCELED || *rc == -daos_sys::der::DER_OP_CANCELED)
        {
            return Err(DaosError::Timeout);
        }
        out.push(op);
    }
    Ok(out)
}

fn ops_rt(ops: &[Box<KvOp>]) -> &Arc<crate::daos::Runtime> {
    ops[0].kv.cont.rt()
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
    let api = kv.cont.api();
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
                rc if rc == -daos_sys::der::DER_REC2BIG => {
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
        return Err(DaosError::call(
            api,
            "daos_kv_get",
            -daos_sys::der::DER_REC2BIG,
        ));
    }
    Ok(out)
}
