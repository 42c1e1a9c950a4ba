//! Pool, container and array handles: pools and containers opened once per
//! process and shared by every connector on them; object ids reserved from
//! the container.

use std::collections::HashMap;
use std::ffi::{CString, c_uint};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use daos_sys::{Api, daos_handle_t};
use parking_lot::Mutex;

use super::exec::execute;
use super::runtime::{Eq, Runtime, runtime};
use crate::error::{DaosError, Result};

/// A pool connection, shared by every connector of the process on that pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) poh: daos_handle_t,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: every container of the pool is closed (they hold this pool).
        unsafe { (self.rt.api.daos_pool_disconnect)(self.poh, std::ptr::null_mut()) };
    }
}

/// An open container, shared by every connector of the process on it.
#[derive(Debug)]
pub(crate) struct Cont {
    pub(crate) pool: Arc<Pool>,
    pub(crate) coh: daos_handle_t,
    /// Object ids reserved by `daos_cont_alloc_oids`, not yet used: `next..end`.
    oids: Mutex<(u64, u64)>,
}

impl Cont {
    pub(crate) fn api(&self) -> &'static Api {
        self.pool.rt.api
    }

    pub(crate) fn rt(&self) -> &Arc<Runtime> {
        &self.pool.rt
    }

    /// `n` object ids (low 64 bits) unique in the container across every
    /// process: reserved from the container `OID_BATCH` at a time.
    pub(crate) fn next_oids(&self, n: u64, deadline: Instant) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(n as usize);
        let mut g = self.oids.lock();
        while (out.len() as u64) < n {
            if g.0 == g.1 {
                let want = OID_BATCH.max(n - out.len() as u64);
                let start = self.alloc_oids(want, deadline)?;
                // Id 0 (with hi 0) is the container's root object's: never used.
                *g = (start.max(1), start + want);
                continue;
            }
            let take = (g.1 - g.0).min(n - out.len() as u64);
            out.extend(g.0..g.0 + take);
            g.0 += take;
        }
        Ok(out)
    }

    /// Fill in the type and class bits of `oid` (its low 64 bits chosen by
    /// the caller): `daos_obj_generate_oid`, a local computation.
    pub(crate) fn generate_oid(
        &self,
        oid: &mut daos_sys::daos_obj_id_t,
        otype: c_uint,
        cid: u32,
    ) -> Result<()> {
        let api = self.api();
        // SAFETY: valid out pointer; a local computation.
        let rc = unsafe { (api.daos_obj_generate_oid)(self.coh, oid, otype, cid, 0, 0) };
        if rc != 0 {
            return Err(DaosError::call(api, "daos_obj_generate_oid", rc));
        }
        Ok(())
    }

    fn alloc_oids(&self, n: u64, deadline: Instant) -> Result<u64> {
        let mut eq = Eq::take(self.rt())?;
        let mut start = Box::new(0u64);
        let ptr: *mut u64 = &mut *start;
        let coh = self.coh;
        let api = self.api();
        let exec = execute(&mut eq, 1, 1, deadline, |_, ev| {
            // SAFETY: `start` outlives the operation (leaked below if stuck).
            unsafe { (api.daos_cont_alloc_oids)(coh, n, ptr, ev) }
        });
        if exec.stuck {
            std::mem::forget(start);
            return Err(DaosError::Timeout);
        }
        exec.check(api, "daos_cont_alloc_oids", 0)?;
        Ok(*start)
    }
}

impl Drop for Cont {
    fn drop(&mut self) {
        // SAFETY: no operation on the container is in flight: every one holds
        // an `Arc<Cont>` until it completes (or is leaked with it).
        unsafe { (self.api().daos_cont_close)(self.coh, std::ptr::null_mut()) };
    }
}

/// Object ids reserved per `daos_cont_alloc_oids` call.
const OID_BATCH: u64 = 4096;

type PoolKey = (String, String);
type ContKey = (String, String, String);

fn pools() -> &'static Mutex<HashMap<PoolKey, Weak<Pool>>> {
    static P: OnceLock<Mutex<HashMap<PoolKey, Weak<Pool>>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

fn conts() -> &'static Mutex<HashMap<ContKey, Weak<Cont>>> {
    static C: OnceLock<Mutex<HashMap<ContKey, Weak<Cont>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| DaosError::BadLabel(format!("{what} {s:?} contains a NUL byte")))
}

/// The process's connection to pool `label` of DAOS system `sys`.
fn pool(sys: &str, label: &str, deadline: Instant) -> Result<Arc<Pool>> {
    let key = (sys.to_string(), label.to_string());
    // Held across the connect: two threads never connect the same pool twice.
    let mut map = pools().lock();
    if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(p);
    }
    let rt = runtime(deadline)?;
    let c_label = c_string("pool label", label)?;
    let c_sys = if sys.is_empty() {
        None
    } else {
        Some(c_string("DAOS system name", sys)?)
    };
    let mut poh = Box::new(daos_handle_t::default());
    let poh_ptr: *mut daos_handle_t = &mut *poh;
    let mut eq = Eq::take(&rt)?;
    let api = rt.api;
    let exec = execute(&mut eq, 1, 1, deadline, |_, ev| {
        // SAFETY: the strings and `poh` outlive the operation (leaked if stuck).
        unsafe {
            (api.daos_pool_connect)(
                c_label.as_ptr(),
                c_sys.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                daos_sys::DAOS_PC_RW,
                poh_ptr,
                std::ptr::null_mut(),
                ev,
            )
        }
    });
    if exec.stuck {
        std::mem::forget((poh, c_label, c_sys));
        return Err(DaosError::Timeout);
    }
    exec.check(api, "daos_pool_connect", 0)
        .map_err(|e| match e {
            DaosError::Der { rc, .. } if rc == -daos_sys::der::DER_NONEXIST => {
                DaosError::NoSuchPool(label.to_string())
            }
            e => e,
        })?;
    let p = Arc::new(Pool {
        rt: rt.clone(),
        poh: *poh,
    });
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&p));
    Ok(p)
}

/// The process's open handle on container `cont` of pool `pool_label`.
pub(crate) fn container(
    sys: &str,
    pool_label: &str,
    cont: &str,
    deadline: Instant,
) -> Result<Arc<Cont>> {
    let key = (sys.to_string(), pool_label.to_string(), cont.to_string());
    let mut map = conts().lock();
    if let Some(c) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(c);
    }
    let pool = pool(sys, pool_label, deadline)?;
    let c_cont = c_string("container label", cont)?;
    let mut coh = Box::new(daos_handle_t::default());
    let coh_ptr: *mut daos_handle_t = &mut *coh;
    let mut eq = Eq::take(&pool.rt)?;
    let api = pool.rt.api;
    let poh = pool.poh;
    let exec = execute(&mut eq, 1, 1, deadline, |_, ev| {
        // SAFETY: the label and `coh` outlive the operation (leaked if stuck).
        unsafe {
            (api.daos_cont_open)(
                poh,
                c_cont.as_ptr(),
                daos_sys::DAOS_COO_RW,
                coh_ptr,
                std::ptr::null_mut(),
                ev,
            )
        }
    });
    if exec.stuck {
        std::mem::forget((coh, c_cont));
        return Err(DaosError::Timeout);
    }
    exec.check(api, "daos_cont_open", 0).map_err(|e| match e {
        DaosError::Der { rc, .. }
            if rc == -daos_sys::der::DER_NONEXIST || rc == -daos_sys::der::DER_CONT_NONEXIST =>
        {
            DaosError::NoSuchContainer {
                pool: pool_label.to_string(),
                cont: cont.to_string(),
            }
        }
        e => e,
    })?;
    let c = Arc::new(Cont {
        pool,
        coh: *coh,
        oids: Mutex::new((0, 0)),
    });
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&c));
    Ok(c)
}

/// An array object handle, closed on drop (a local operation).
#[derive(Debug)]
pub(crate) struct Array {
    pub(super) api: &'static Api,
    pub(crate) oh: daos_handle_t,
}

impl Array {
    /// Open byte array `oid` (no I/O: cell size 1, the given chunk size).
    pub(crate) fn open(cont: &Cont, oid: daos_sys::daos_obj_id_t, chunk: u64) -> Result<Array> {
        let api = cont.api();
        let mut oh = daos_handle_t::default();
        // SAFETY: `oh` is a valid out pointer; a null event makes the call
        // blocking, and for DAOS_OT_ARRAY_BYTE it does no network I/O.
        let rc = unsafe {
            (api.daos_array_open_with_attr)(
                cont.coh,
                oid,
                daos_sys::DAOS_TX_NONE,
                daos_sys::DAOS_OO_RW,
                1,
                chunk,
                &mut oh,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(DaosError::call(api, "daos_array_open_with_attr", rc));
        }
        Ok(Array { api, oh })
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        // SAFETY: no operation on the handle is in flight (operations own
        // their `Array` and leak it when stuck).
        unsafe { (self.api.daos_array_close)(self.oh, std::ptr::null_mut()) };
    }
}
