//! [`Instance`]: one Margo instance (`margo_instance_id`) with its progress
//! thread; client instances are shared per protocol within a process.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use margo_sys::{Api, MARGO_CLIENT_MODE, MARGO_SERVER_MODE, hg_addr_t, margo_instance_id};
use parking_lot::{Condvar, Mutex};
use proxy_core::{Error, Result};

use super::addr::{Addr, AddrInner};
use super::{KIND, api, check};

/// Margo's configuration for every instance of this crate: a progress thread
/// of its own (Mercury's progress and the completion callbacks run there),
/// and the RPC handler pool on that thread too, so that nothing ever needs
/// the Argobots primary stream (the service thread below, idle otherwise).
/// Margo's timers (the transfer timeouts) run from the progress loop.
const JSON_CONFIG: &str = r#"{"use_progress_thread": true, "rpc_thread_count": -1}"#;

/// Client or server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `MARGO_CLIENT_MODE`: initiates transfers, listens for nothing.
    Client,
    /// `MARGO_SERVER_MODE`: listens at an address that clients look up.
    Server,
}

/// A `margo_instance_id` that may cross threads (Margo is thread-safe).
#[derive(Clone, Copy)]
struct Mid(margo_instance_id);
// SAFETY: a Margo instance may be used from any thread; the pointer is only
// passed to Margo.
unsafe impl Send for Mid {}
// SAFETY: as above.
unsafe impl Sync for Mid {}

enum Cmd {
    Init {
        address: CString,
        mode: Mode,
        reply: Sender<Option<Mid>>,
    },
    Finalize {
        mid: Mid,
        reply: Option<Sender<()>>,
    },
}

/// The service thread on which every `margo_init_ext` and `margo_finalize`
/// of this process runs: Argobots' primary execution stream once the first
/// instance has initialised Argobots.
fn service() -> &'static Mutex<Sender<Cmd>> {
    static SERVICE: OnceLock<Mutex<Sender<Cmd>>> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let (tx, rx) = channel::<Cmd>();
        std::thread::Builder::new()
            .name("margo-primary".into())
            .spawn(move || {
                let json = CString::new(JSON_CONFIG).expect("no NUL in the config");
                for cmd in rx {
                    match cmd {
                        Cmd::Init {
                            address,
                            mode,
                            reply,
                        } => {
                            let mid = api().ok().and_then(|api| {
                                let info = margo_sys::margo_init_info {
                                    json_config: json.as_ptr(),
                                    ..Default::default()
                                };
                                let m = match mode {
                                    Mode::Client => MARGO_CLIENT_MODE,
                                    Mode::Server => MARGO_SERVER_MODE,
                                };
                                // SAFETY: NUL-terminated strings and an init
                                // info struct that live across the call.
                                let mid =
                                    unsafe { (api.margo_init_ext)(address.as_ptr(), m, &info) };
                                (!mid.is_null()).then_some(Mid(mid))
                            });
                            let _ = reply.send(mid);
                        }
                        Cmd::Finalize { mid, reply } => {
                            if let Ok(api) = api() {
                                // SAFETY: the instance's last handle is gone;
                                // nothing uses `mid` after this.
                                unsafe { (api.margo_finalize)(mid.0) };
                            }
                            if let Some(r) = reply {
                                let _ = r.send(());
                            }
                        }
                    }
                }
            })
            .expect("spawn the margo-primary thread");
        Mutex::new(tx)
    })
}

thread_local! {
    /// Set while a completion callback runs on Margo's progress thread: an
    /// instance whose last handle is dropped there is finalized without
    /// waiting (its progress thread cannot be joined from itself).
    pub(super) static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Completion notification: a counter bumped by every completion callback,
/// and a condition variable the waiters sleep on.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    seq: Mutex<u64>,
    cv: Condvar,
}

impl Notify {
    pub(crate) fn notify(&self) {
        *self.seq.lock() += 1;
        self.cv.notify_all();
    }

    /// Sleep until the next completion after `seen`, or `until`; the new count.
    pub(crate) fn wait_after(&self, seen: u64, until: Instant) -> u64 {
        let mut s = self.seq.lock();
        while *s == seen {
            if self.cv.wait_until(&mut s, until).timed_out() {
                break;
            }
        }
        *s
    }

    pub(crate) fn current(&self) -> u64 {
        *self.seq.lock()
    }
}

/// A Margo instance: `margo_init_ext` with a progress thread, finalized when
/// the last handle (connector, address, bulk handle, in-flight transfer) is
/// dropped.
pub struct Instance {
    api: &'static Api,
    mid: Mid,
    protocol: String,
    mode: Mode,
    self_addr: String,
    addrs: Mutex<HashMap<String, Weak<AddrInner>>>,
    pub(crate) notify: Arc<Notify>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("protocol", &self.protocol)
            .field("mode", &self.mode)
            .field("address", &self.self_addr)
            .finish()
    }
}

/// Client instances of this process, one per protocol.
fn clients() -> &'static Mutex<HashMap<String, Weak<Instance>>> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Weak<Instance>>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

impl Instance {
    /// This process's client instance for `protocol` (`"na+sm"`,
    /// `"ofi+tcp"`, `"ofi+tcp://127.0.0.1"`, ...), shared by every connector
    /// of the process that uses the same protocol.
    pub fn client(protocol: &str) -> Result<Arc<Instance>> {
        let mut map = clients().lock();
        if let Some(i) = map.get(protocol).and_then(Weak::upgrade) {
            return Ok(i);
        }
        let i = Arc::new(Instance::init(protocol, Mode::Client)?);
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(protocol.to_string(), Arc::downgrade(&i));
        Ok(i)
    }

    /// A server instance listening at `address` (a protocol, or a protocol
    /// with host and port: `"ofi+tcp://127.0.0.1:0"`).
    pub fn server(address: &str) -> Result<Arc<Instance>> {
        Ok(Arc::new(Instance::init(address, Mode::Server)?))
    }

    fn init(address: &str, mode: Mode) -> Result<Instance> {
        let api = api()?;
        let c = CString::new(address)
            .map_err(|_| Error::permanent(KIND, "margo_init", "protocol contains a NUL byte"))?;
        let (tx, rx) = channel();
        service()
            .lock()
            .send(Cmd::Init {
                address: c,
                mode,
                reply: tx,
            })
            .map_err(|_| Error::permanent(KIND, "margo_init", "margo service thread gone"))?;
        let mid = rx.recv().ok().flatten().ok_or_else(|| {
            Error::permanent(
                KIND,
                "margo_init",
                format!(
                    "margo_init_ext({address:?}, {}) failed (Margo's message above says why; \
                     `margo-info` lists the protocols this Mercury supports)",
                    match mode {
                        Mode::Client => "client",
                        Mode::Server => "server",
                    }
                ),
            )
        })?;
        let mut inst = Instance {
            api,
            mid,
            protocol: address.to_string(),
            mode,
            self_addr: String::new(),
            addrs: Mutex::new(HashMap::new()),
            notify: Arc::new(Notify::default()),
        };
        inst.self_addr = inst.self_string()?;
        Ok(inst)
    }

    fn self_string(&self) -> Result<String> {
        let mut a: hg_addr_t = std::ptr::null_mut();
        // SAFETY: valid instance and out-pointer.
        check("margo_addr_self", unsafe {
            (self.api.margo_addr_self)(self.mid.0, &mut a)
        })?;
        let s = self.addr_to_string(a);
        // SAFETY: the address came from margo_addr_self and is freed once.
        unsafe { (self.api.margo_addr_free)(self.mid.0, a) };
        s
    }

    pub(super) fn addr_to_string(&self, a: hg_addr_t) -> Result<String> {
        let mut buf = vec![0 as c_char; 256];
        let mut len = buf.len() as u64;
        // SAFETY: `buf` holds `len` bytes; Margo writes at most that many,
        // NUL included, or says how many it needs.
        let mut r =
            unsafe { (self.api.margo_addr_to_string)(self.mid.0, buf.as_mut_ptr(), &mut len, a) };
        if r != margo_sys::hg::SUCCESS && len as usize > buf.len() {
            buf = vec![0 as c_char; len as usize];
            // SAFETY: as above, with the size Margo asked for.
            r = unsafe {
                (self.api.margo_addr_to_string)(self.mid.0, buf.as_mut_ptr(), &mut len, a)
            };
        }
        check("margo_addr_to_string", r)?;
        // SAFETY: Margo NUL-terminated the string within the buffer.
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
        Ok(s.to_string_lossy().into_owned())
    }

    /// The loaded library.
    pub fn api(&self) -> &'static Api {
        self.api
    }

    pub(super) fn mid(&self) -> margo_instance_id {
        self.mid.0
    }

    /// What the instance was initialised with.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Client or server.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// This instance's own address (`margo_addr_self` +
    /// `margo_addr_to_string`): `na+sm://PID-N`, `ofi+tcp;ofi_rxm://IP:PORT`.
    pub fn self_address(&self) -> &str {
        &self.self_addr
    }

    /// Look `name` up (`margo_addr_lookup`), or reuse the address an earlier
    /// lookup of the same name on this instance returned and someone still holds.
    pub fn lookup(self: &Arc<Self>, name: &str) -> Result<Addr> {
        let mut cache = self.addrs.lock();
        let live = cache.get(name).and_then(Weak::upgrade);
        if let Some(a) = live.filter(|a| !a.failed.load(std::sync::atomic::Ordering::Acquire)) {
            return Ok(Addr::from_inner(a));
        }
        let a = AddrInner::lookup(self, name)?;
        cache.retain(|_, w| w.strong_count() > 0);
        cache.insert(name.to_string(), Arc::downgrade(&a));
        Ok(Addr::from_inner(a))
    }

    /// Wait until `done()` or `until`, sleeping between completions.
    pub(crate) fn wait_until(&self, until: Instant, done: impl Fn() -> bool) -> bool {
        let mut seen = self.notify.current();
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            seen = self.notify.wait_after(seen, until);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let in_cb = IN_CALLBACK.with(Cell::get);
        let (tx, rx) = channel();
        let sent = service()
            .lock()
            .send(Cmd::Finalize {
                mid: self.mid,
                reply: (!in_cb).then_some(tx),
            })
            .is_ok();
        if sent && !in_cb {
            // Bounded: margo_finalize joins the progress thread, which
            // finishes its current round (at most the progress timeout).
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
    }
}
