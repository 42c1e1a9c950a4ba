//! The thin safe layer over `daos-sys`: the process's libdaos runtime, pool
//! and container handles (opened once per process and shared), event queues,
//! and an executor that keeps many array operations in flight on one event
//! queue with a deadline.
//!
//! Every native handle has an owner that releases it on drop, and children
//! keep their parents alive (a container holds its pool, a pool the runtime).
//! Memory that an operation in flight may still touch is never freed: when an
//! operation neither completes nor aborts in time, its buffers and event are
//! leaked on purpose (see [`Exec::stuck`]).

use std::collections::HashMap;
use std::ffi::{CString, c_int};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use daos_sys::{Api, daos_event_t, daos_handle_t};
use parking_lot::{Condvar, Mutex};

use crate::error::{DaosError, Result};

/// libdaos, initialised once per process (`daos_init`). It stays initialised
/// for the life of the process: DAOS clients call `daos_init` once, and a
/// `daos_fini`/`daos_init` cycle would tear down every handle of every
/// connector in the process.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) api: &'static Api,
    /// Idle event queues (each has its own network context in libdaos).
    idle_eqs: Mutex<Vec<EqHandle>>,
}

/// Where the process's `daos_init` is.
#[derive(Debug)]
enum Init {
    Idle,
    Running,
    Ready(Arc<Runtime>),
    Failed(c_int),
}

/// The process's runtime, initialising libdaos on first use.
///
/// `daos_init` has no timeout of its own (with the engine down it retries
/// its first RPC forever), so it runs on a thread of its own and callers
/// wait for it until their deadline: past it they get a temporary error,
/// and a later call finds the runtime ready once `daos_init` returns.
pub(crate) fn runtime(deadline: Instant) -> Result<Arc<Runtime>> {
    static STATE: OnceLock<(Mutex<Init>, Condvar)> = OnceLock::new();
    let api = daos_sys::api().map_err(DaosError::NotInstalled)?;
    let (lock, cv) = STATE.get_or_init(|| (Mutex::new(Init::Idle), Condvar::new()));
    let mut g = lock.lock();
    loop {
        match &*g {
            Init::Ready(rt) => return Ok(rt.clone()),
            Init::Failed(rc) => {
                let rc = *rc;
                // Reported once; the next call tries again (the agent may
                // come up later).
                *g = Init::Idle;
                return Err(DaosError::call(
                    api,
                    "daos_init (is daos_agent running?)",
                    rc,
                ));
            }
            Init::Idle => {
                *g = Init::Running;
                std::thread::Builder::new()
                    .name("daos-init".into())
                    .spawn(move || {
                        // SAFETY: daos_init has no preconditions (reference counted by libdaos).
                        let rc = unsafe { (api.daos_init)() };
                        let (lock, cv) = STATE.get().expect("initialised before the thread");
                        *lock.lock() = if rc == 0 {
                            Init::Ready(Arc::new(Runtime {
                                api,
                                idle_eqs: Mutex::new(Vec::new()),
                            }))
                        } else {
                            Init::Failed(rc)
                        };
                        cv.notify_all();
                    })
                    .map_err(|e| DaosError::InitThread(e.to_string()))?;
            }
            Init::Running => {
                if cv.wait_until(&mut g, deadline).timed_out() && matches!(*g, Init::Running) {
                    return Err(DaosError::InitTimeout);
                }
            }
        }
    }
}

/// An event queue handle (no owner logic: see [`Eq`]).
#[derive(Debug)]
struct EqHandle(daos_handle_t);

/// An event queue taken from the runtime's idle list; goes back on drop
/// unless an operation on it is stuck, in which case it is leaked with it.
#[derive(Debug)]
pub(crate) struct Eq {
    rt: Arc<Runtime>,
    h: Option<EqHandle>,
}

impl Eq {
    pub(crate) fn take(rt: &Arc<Runtime>) -> Result<Eq> {
        if let Some(h) = rt.idle_eqs.lock().pop() {
            return Ok(Eq {
                rt: rt.clone(),
                h: Some(h),
            });
        }
        let mut h = daos_handle_t::default();
        // SAFETY: `h` is a valid out pointer; the runtime is initialised.
        let rc = unsafe { (rt.api.daos_eq_create)(&mut h) };
        if rc != 0 {
            return Err(DaosError::call(rt.api, "daos_eq_create", rc));
        }
        Ok(Eq {
            rt: rt.clone(),
            h: Some(EqHandle(h)),
        })
    }

    pub(crate) fn handle(&self) -> daos_handle_t {
        self.h.as_ref().expect("event queue present until drop").0
    }

    /// Never destroy or reuse this queue: an event on it may still complete.
    fn poison(&mut self) {
        // Dropping the handle value (a plain u64) without destroying the
        // queue leaks it, as intended.
        self.h = None;
    }
}

impl Drop for Eq {
    fn drop(&mut self) {
        if let Some(h) = self.h.take() {
            let mut idle = self.rt.idle_eqs.lock();
            if idle.len() < 16 {
                idle.push(h);
            } else {
                drop(idle);
                // SAFETY: no event of ours is in flight on it (a stuck one poisons it).
                unsafe { (self.rt.api.daos_eq_destroy)(h.0, 1) };
            }
        }
    }
}

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
    api: &'static Api,
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

/// What [`execute`] did.
#[derive(Debug)]
pub(crate) struct Exec {
    /// Result code of each operation (0, or a negative `-DER_*`).
    pub(crate) rcs: Vec<c_int>,
    /// The deadline passed before every operation completed.
    pub(crate) timed_out: bool,
    /// Some operation neither completed nor aborted: the caller must leak
    /// whatever memory the operations use, and the queue is already leaked.
    pub(crate) stuck: bool,
}

impl Exec {
    /// The first failure as an error (a timeout first).
    pub(crate) fn check(&self, api: &'static Api, what: &'static str, i: usize) -> Result<()> {
        let rc = self.rcs[i];
        let aborted = rc == -daos_sys::der::DER_CANCELED || rc == -daos_sys::der::DER_OP_CANCELED;
        if self.timed_out && (rc == NOT_DONE || aborted) {
            return Err(DaosError::Timeout);
        }
        match self.rcs[i] {
            0 => Ok(()),
            rc => Err(DaosError::call(api, what, rc)),
        }
    }
}

/// Result code of an operation that did not complete before the deadline.
pub(crate) const NOT_DONE: c_int = i32::MIN;

/// The share of the time left that aborted operations get to complete:
/// in-flight operations are aborted a tenth (at most [`MAX_ABORT_GRACE`])
/// before the deadline, so that the call returns by the deadline.
const MAX_ABORT_GRACE: Duration = Duration::from_secs(1);

/// Run `n` operations on `eq`, at most `window` in flight: `launch(i, ev)`
/// starts operation `i` with completion event `ev` and returns the
/// immediate result code. Returns when all have completed or the deadline
/// is near (in-flight operations are then aborted, and abandoned if they
/// have not completed by the deadline).
pub(crate) fn execute(
    eq: &mut Eq,
    n: usize,
    window: usize,
    deadline: Instant,
    mut launch: impl FnMut(usize, *mut daos_event_t) -> c_int,
) -> Exec {
    let api = eq.rt.api;
    let eqh = eq.handle();
    let window = window.clamp(1, n.max(1));
    let mut rcs = vec![NOT_DONE; n];
    // Events live in boxes: their addresses must not change while in flight.
    let mut events: Vec<Box<daos_event_t>> = (0..window)
        .map(|_| Box::new(daos_event_t::zeroed()))
        .collect();
    // Which operation each event slot runs.
    let mut running: Vec<Option<usize>> = vec![None; window];
    let mut free: Vec<usize> = (0..window).rev().collect();
    let mut next = 0;
    let mut in_flight = 0usize;
    let mut timed_out = false;
    let mut leaked_events = false;
    let mut polled: Vec<*mut daos_event_t> = vec![std::ptr::null_mut(); window];
    let grace = (deadline.saturating_duration_since(Instant::now()) / 10).min(MAX_ABORT_GRACE);
    let abort_at = deadline - grace;

    loop {
        // Launch while there is room.
        while !timed_out && next < n {
            let Some(slot) = free.pop() else { break };
            let ev: *mut daos_event_t = &mut *events[slot];
            // SAFETY: the event is unused (fresh or finalised).
            let rc = unsafe { (api.daos_event_init)(ev, eqh, std::ptr::null_mut()) };
            if rc != 0 {
                rcs[next] = rc;
                next += 1;
                free.push(slot);
                continue;
            }
            let i = next;
            next += 1;
            let rc = launch(i, ev);
            if rc != 0 {
                // Refused before launch: the event never entered the queue.
                let mut done = false;
                // SAFETY: `ev` is initialised; a test does not block.
                unsafe { (api.daos_event_test)(ev, daos_sys::DAOS_EQ_NOWAIT, &mut done) };
                // SAFETY: as above; fini fails (and we leak) if it is running.
                if unsafe { (api.daos_event_fini)(ev) } != 0 {
                    std::mem::forget(std::mem::replace(
                        &mut events[slot],
                        Box::new(daos_event_t::zeroed()),
                    ));
                    leaked_events = true;
                }
                rcs[i] = rc;
                free.push(slot);
                continue;
            }
            running[slot] = Some(i);
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        let now = Instant::now();
        if !timed_out && now >= abort_at {
            timed_out = true;
            for (slot, r) in running.iter().enumerate() {
                if r.is_some() {
                    // SAFETY: the event is in flight on this queue.
                    unsafe { (api.daos_event_abort)(&mut *events[slot]) };
                }
            }
        }
        let limit = if timed_out { deadline } else { abort_at };
        if timed_out && now >= limit {
            // Neither completed nor aborted: leak every event still in
            // flight, and the queue (the library may still write to them).
            for (slot, r) in running.iter().enumerate() {
                if r.is_some() {
                    std::mem::forget(std::mem::replace(
                        &mut events[slot],
                        Box::new(daos_event_t::zeroed()),
                    ));
                }
            }
            eq.poison();
            return Exec {
                rcs,
                timed_out: true,
                stuck: true,
            };
        }
        let wait_us = limit
            .saturating_duration_since(now)
            .min(Duration::from_millis(100))
            .as_micros()
            .max(1) as i64;
        // SAFETY: `polled` has room for `window` pointers.
        let got =
            unsafe { (api.daos_eq_poll)(eqh, 1, wait_us, window as u32, polled.as_mut_ptr()) };
        if got < 0 {
            // The queue itself failed: treat like a timeout (abort, then leak).
            timed_out = true;
            continue;
        }
        for &ev in &polled[..got as usize] {
            let Some(slot) = events
                .iter_mut()
                .position(|e| std::ptr::eq(&**e as *const daos_event_t, ev))
            else {
                continue;
            };
            let Some(i) = running[slot].take() else {
                continue;
            };
            // SAFETY: the event has completed and left the queue.
            let err = unsafe { (*ev).ev_error };
            // SAFETY: completed events may be finalised.
            unsafe { (api.daos_event_fini)(ev) };
            rcs[i] = err;
            in_flight -= 1;
            free.push(slot);
        }
    }
    if leaked_events {
        // A refused launch left an event we could not finalise on the queue.
        eq.poison();
    }
    Exec {
        rcs,
        timed_out,
        stuck: false,
    }
}
