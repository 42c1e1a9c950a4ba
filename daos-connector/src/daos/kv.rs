//! Flat key-value objects (`daos_kv_*`): open handles, the operations
//! ([`KvOp`]) and a batch runner that keeps many in flight on one event
//! queue, and the container property that names a container's root objects.

use std::ffi::CString;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use daos_sys::{daos_handle_t, daos_obj_id_t, daos_prop_co_roots};

use super::exec::{NOT_DONE, execute};
use super::handles::Cont;
use super::runtime::{Eq, Runtime};
use super::sgl::dest_iov;
use crate::buffer::Dest;
use crate::error::{DaosError, Result};

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

    pub(crate) fn open(cont: &Arc<Cont>, oid: daos_obj_id_t) -> Result<Kv> {
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
pub(crate) fn container_roots(cont: &Arc<Cont>, deadline: Instant) -> Result<(u64, daos_obj_id_t)> {
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
                    .and_then(dest_iov)
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

fn ops_rt(ops: &[Box<KvOp>]) -> &Arc<Runtime> {
    ops[0].kv.cont.rt()
}
