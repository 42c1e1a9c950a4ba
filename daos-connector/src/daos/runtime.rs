//! The process's libdaos runtime (`daos_init`, once) and its pooled event
//! queues.

use std::ffi::c_int;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use daos_sys::{Api, daos_handle_t};
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
    let api = daos_sys::api().map_err(|e| DaosError::NotInstalled(e.to_string()))?;
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

/// An event queue handle (no owner logic: see [`Eq`](struct@Eq)).
#[derive(Debug)]
struct EqHandle(daos_handle_t);

/// An event queue taken from the runtime's idle list; goes back on drop
/// unless an operation on it is stuck, in which case it is leaked with it.
#[derive(Debug)]
pub(crate) struct Eq {
    pub(super) rt: Arc<Runtime>,
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
    pub(super) fn poison(&mut self) {
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
