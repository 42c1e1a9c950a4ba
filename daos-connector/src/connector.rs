//! [`DaosConnector`]: options, keys and the `Connector` operations.

use std::ffi::CString;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use daos_sys::{d_iov_t, d_sg_list_t, daos_array_iod_t, daos_obj_id_t, daos_range_t};
use parking_lot::Mutex;
use proxy_core::mem::{AnonAllocator, BufferPool, PoolBuf};
use proxy_core::{
    Capabilities, Connector, ConnectorConfig, Error, FromConfig, Key, Payload, Result,
};
use serde::{Deserialize, Serialize};

use crate::KIND;
use crate::daos::{self, Array, Cont, Eq, NOT_DONE, execute};
use crate::dict::{self, Kv, KvOp};
use crate::error::DaosError;
use crate::layout::{Layout, MIN_CHUNK, contiguous, iov, pieces};

/// Default array chunk size: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;
/// Default deadline of one operation (a whole batch): 30 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default number of operations in flight on the event queue in a batch.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;

pub(crate) use crate::layout::HEADER;
const MAGIC: &[u8; 8] = b"PSRSDAOS";
/// Objects from this size on are read into receive-pool buffers.
const POOL_THRESHOLD: usize = 64 << 10;
/// Objects over this size are probed (header read) before a buffer is taken.
const PROBE_THRESHOLD: u64 = 16 << 20;
/// Idle bytes the process's receive pool keeps.
const RECV_POOL_IDLE: usize = 512 << 20;
/// Rounds of reads retried on `-DER_TX_RESTART` (not expected outside
/// transactions; bounded so that it can never loop).
const TX_RETRIES: usize = 5;

/// What a configuration carries (and a store URL sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaosOptions {
    /// Pool label (or UUID).
    pub pool: String,
    /// Container label (or UUID) in the pool.
    pub container: String,
    /// Namespace inside the container: objects of other namespaces read as
    /// missing, keys of other namespaces are invalid.
    #[serde(default)]
    pub namespace: String,
    /// DAOS system name (default: the agent's, `daos_server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Object class name (`S1`, `SX`, `RP_2GX`, ...); default: chosen by DAOS
    /// from the container's properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oclass: Option<String>,
    /// Array chunk size in bytes (the unit DAOS distributes over targets).
    #[serde(default = "default_chunk")]
    pub chunk_size: u64,
    /// Deadline of one operation or batch, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Operations in flight at once in a batch.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// How objects are laid out in the container (see the crate docs).
    #[serde(default, skip_serializing_if = "DaosLayout::is_array")]
    pub layout: DaosLayout,
}

/// How a DAOS store lays out its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DaosLayout {
    /// One byte-array object per stored object, read straight into the
    /// receive pool (the fast path).
    #[default]
    Array,
    /// Values of the PyDAOS dictionary named by the namespace, as the Python
    /// ProxyStore's `DAOSConnector` keeps them: each side reads the other's
    /// objects. Needs a container of type `PYTHON` (or one with no type).
    Pydaos,
}

impl DaosLayout {
    fn is_array(&self) -> bool {
        *self == DaosLayout::Array
    }
}

fn default_chunk() -> u64 {
    DEFAULT_CHUNK_SIZE
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

impl DaosOptions {
    /// Options for `pool` and `container`, everything else default.
    pub fn new(pool: impl Into<String>, container: impl Into<String>) -> Self {
        DaosOptions {
            pool: pool.into(),
            container: container.into(),
            namespace: String::new(),
            system: None,
            oclass: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            layout: DaosLayout::Array,
        }
    }

    /// Builder: the layout.
    pub fn layout(mut self, layout: DaosLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Builder: the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Builder: the object class.
    pub fn oclass(mut self, oclass: impl Into<String>) -> Self {
        self.oclass = Some(oclass.into());
        self
    }

    /// Builder: the deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout_ms = t.as_millis().max(1) as u64;
        self
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(KIND, m));
        if self.pool.is_empty() || self.container.is_empty() {
            return bad("a DAOS store needs a pool and a container label".into());
        }
        for (what, s) in [
            ("pool", &self.pool),
            ("container", &self.container),
            ("namespace", &self.namespace),
        ] {
            if s.contains('\0') {
                return bad(format!("the {what} label {s:?} contains a NUL byte"));
            }
        }
        if self.chunk_size < MIN_CHUNK || self.chunk_size > (1 << 30) {
            return bad(format!(
                "chunk_size {} is outside 4 KiB ..= 1 GiB",
                self.chunk_size
            ));
        }
        if self.timeout_ms == 0 || self.max_in_flight == 0 {
            return bad("timeout_ms and max_in_flight must be positive".into());
        }
        if self.layout == DaosLayout::Pydaos && self.namespace.is_empty() {
            return bad(
                "the pydaos layout keeps objects in the PyDAOS dictionary the namespace names: give a namespace".into(),
            );
        }
        Ok(())
    }
}

/// The key of one object: everything another process needs to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaosKey {
    /// Pool label.
    pub pool: String,
    /// Container label.
    pub container: String,
    /// Namespace.
    pub namespace: String,
    /// Object id, high 64 bits (type and class bits included).
    pub oid_hi: u64,
    /// Object id, low 64 bits.
    pub oid_lo: u64,
    /// Object length in bytes ([`UNKNOWN_LEN`] for a key of the pydaos
    /// layout made from the Python ProxyStore's `DAOSKey`).
    pub len: u64,
    /// The pydaos layout: the object's key in the dictionary (the oid is the
    /// dictionary's). `None` in the array layout.
    #[serde(default)]
    pub entry: Option<String>,
}

/// [`DaosKey::len`] of a pydaos-layout key whose length is not known (made
/// from a Python ProxyStore key): a get asks DAOS for the value's size first.
pub const UNKNOWN_LEN: u64 = u64::MAX;

impl DaosKey {
    pub(crate) fn oid(&self) -> daos_obj_id_t {
        daos_obj_id_t {
            lo: self.oid_lo,
            hi: self.oid_hi,
        }
    }
}

/// The process's receive pool (shared by every DAOS connector).
fn recv_pool() -> &'static BufferPool<AnonAllocator> {
    static POOL: OnceLock<BufferPool<AnonAllocator>> = OnceLock::new();
    POOL.get_or_init(|| BufferPool::new(AnonAllocator, RECV_POOL_IDLE))
}

/// Bytes the process's DAOS receive pool holds (in use and idle): the
/// memory `get` reads into.
pub fn recv_pool_allocated_bytes() -> usize {
    recv_pool().allocated_bytes()
}

/// FNV-1a 64 of the namespace name.
fn ns_hash(ns: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A connector over one DAOS pool + container + namespace.
pub struct DaosConnector {
    opts: DaosOptions,
    /// The pydaos layout: the namespace's dictionary, open.
    dict: Option<Arc<Kv>>,
    /// Resolved object class id (0: DAOS chooses).
    cid: u32,
    ns_hash: u64,
    /// The shared container handle; `None` once closed.
    cont: Mutex<Option<Arc<Cont>>>,
}

impl std::fmt::Debug for DaosConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaosConnector")
            .field("pool", &self.opts.pool)
            .field("container", &self.opts.container)
            .field("namespace", &self.opts.namespace)
            .field("oclass", &self.opts.oclass)
            .finish()
    }
}

/// A buffer an object is read into.
pub(crate) enum Dest {
    None,
    Heap(Vec<u8>),
    Pooled(PoolBuf<AnonAllocator>),
}

impl Dest {
    pub(crate) fn new(len: usize) -> Result<Dest> {
        Ok(if len == 0 {
            Dest::None
        } else if len >= POOL_THRESHOLD {
            Dest::Pooled(recv_pool().acquire(len)?)
        } else {
            Dest::Heap(vec![0u8; len])
        })
    }

    pub(crate) fn iov(&mut self) -> Option<d_iov_t> {
        let (ptr, len) = match self {
            Dest::None => return None,
            Dest::Heap(v) => (v.as_mut_ptr(), v.len()),
            Dest::Pooled(b) => {
                let s = b.as_mut_slice();
                (s.as_mut_ptr(), s.len())
            }
        };
        Some(d_iov_t {
            iov_buf: ptr.cast(),
            iov_buf_len: len,
            iov_len: len,
        })
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Dest::None => Bytes::new(),
            Dest::Heap(v) => Bytes::from(v),
            Dest::Pooled(b) => {
                let len = b.len();
                b.into_bytes(0..len)
            }
        }
    }
}

/// Everything one array I/O uses, at fixed addresses until it completes.
struct IoState {
    array: Array,
    range: daos_range_t,
    iod: daos_array_iod_t,
    iovs: Vec<d_iov_t>,
    sgl: d_sg_list_t,
    header: [u8; HEADER],
    /// The stamps of chunks 1.. (written, or read into zeroed memory).
    stamps: Vec<u8>,
    dest: Dest,
    /// Payload parts written (kept alive until the write completes).
    _parts: Vec<Bytes>,
    _cont: Arc<Cont>,
}

impl IoState {
    /// Point the iod and sgl at the state's own range and iovs (after boxing).
    fn wire(&mut self) {
        self.iod = daos_array_iod_t {
            arr_nr: 1,
            arr_rgs: &mut self.range,
            arr_nr_short_read: 0,
            arr_nr_read: 0,
        };
        self.sgl = d_sg_list_t {
            sg_nr: self.iovs.len() as u32,
            sg_nr_out: 0,
            sg_iovs: self.iovs.as_mut_ptr(),
        };
    }
}

fn empty_sgl() -> d_sg_list_t {
    d_sg_list_t {
        sg_nr: 0,
        sg_nr_out: 0,
        sg_iovs: std::ptr::null_mut(),
    }
}

fn empty_iod() -> daos_array_iod_t {
    daos_array_iod_t {
        arr_nr: 0,
        arr_rgs: std::ptr::null_mut(),
        arr_nr_short_read: 0,
        arr_nr_read: 0,
    }
}

impl DaosConnector {
    /// Connect (once per process) to the pool and open the container.
    pub fn new(opts: DaosOptions) -> Result<Self> {
        opts.validate()?;
        let timeout = Duration::from_millis(opts.timeout_ms);
        let deadline = Instant::now() + timeout;
        let api = daos_sys::api()
            .map_err(|e| DaosError::NotInstalled(e).into_error("connect", timeout))?;
        let cid = match &opts.oclass {
            None => daos_sys::OC_UNKNOWN,
            Some(name) => {
                let c = CString::new(name.as_str())
                    .map_err(|_| Error::config(KIND, format!("bad object class {name:?}")))?;
                // SAFETY: a NUL-terminated string; the call only reads it.
                let id = unsafe { (api.daos_oclass_name2id)(c.as_ptr()) };
                if id <= 0 {
                    return Err(Error::config(
                        KIND,
                        format!(
                            "unknown DAOS object class {name:?} (e.g. S1, S2, SX, RP_2G1, EC_2P1G1)"
                        ),
                    ));
                }
                id as u32
            }
        };
        let cont = daos::container(
            opts.system.as_deref().unwrap_or(""),
            &opts.pool,
            &opts.container,
            deadline,
        )
        .map_err(|e| e.into_error("connect", timeout))?;
        let dict = match opts.layout {
            DaosLayout::Array => None,
            DaosLayout::Pydaos => Some(Arc::new(
                dict::open_dict(&cont, &opts.namespace, cid, deadline)
                    .map_err(|e| e.into_error("connect", timeout))?,
            )),
        };
        Ok(DaosConnector {
            ns_hash: ns_hash(&opts.namespace),
            opts,
            dict,
            cid,
            cont: Mutex::new(Some(cont)),
        })
    }

    /// The options.
    pub fn options(&self) -> &DaosOptions {
        &self.opts
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.opts.timeout_ms)
    }

    fn err(&self, op: &'static str) -> impl Fn(DaosError) -> Error + '_ {
        move |e| e.into_error(op, self.timeout())
    }

    fn cont(&self) -> std::result::Result<Arc<Cont>, DaosError> {
        self.cont.lock().clone().ok_or(DaosError::Closed)
    }

    fn decode(&self, key: &Key) -> Result<DaosKey> {
        let k: DaosKey = key.decode(KIND)?;
        if k.pool != self.opts.pool
            || k.container != self.opts.container
            || k.namespace != self.opts.namespace
        {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: format!(
                    "the key is of pool '{}' container '{}' namespace '{}', this store is pool '{}' container '{}' namespace '{}'",
                    k.pool,
                    k.container,
                    k.namespace,
                    self.opts.pool,
                    self.opts.container,
                    self.opts.namespace
                ),
            });
        }
        let otype = k.oid_hi >> daos_sys::OID_FMT_TYPE_SHIFT;
        if let Some(d) = &self.dict {
            let bad = |reason: String| {
                Err(Error::InvalidKey {
                    connector: KIND.into(),
                    reason,
                })
            };
            let Some(entry) = &k.entry else {
                return bad("a key of the array layout; this store uses the pydaos layout".into());
            };
            if k.oid() != d.oid {
                return bad(format!(
                    "the key's dictionary {:#x}.{:#x} is not this store's ({:#x}.{:#x})",
                    k.oid_hi, k.oid_lo, d.oid.hi, d.oid.lo
                ));
            }
            if entry.is_empty() || entry.contains('\0') {
                return bad(format!("{entry:?} is not a dictionary key"));
            }
            return Ok(k);
        }
        if k.entry.is_some() {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: "a key of the pydaos layout; this store uses the array layout".into(),
            });
        }
        if otype != u64::from(daos_sys::DAOS_OT_ARRAY_BYTE) {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: format!(
                    "object id {:#x}.{:#x} is not a DAOS byte array (type {otype}): not a key of this connector",
                    k.oid_hi, k.oid_lo
                ),
            });
        }
        if k.len > isize::MAX as u64 - HEADER as u64 {
            return Err(Error::InvalidKey {
                connector: KIND.into(),
                reason: format!("object length {} is impossible", k.len),
            });
        }
        Ok(k)
    }

    fn header_for(&self, oid_lo: u64, len: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..8].copy_from_slice(MAGIC);
        h[8..16].copy_from_slice(&self.ns_hash.to_le_bytes());
        h[16..24].copy_from_slice(&len.to_le_bytes());
        h[24..32].copy_from_slice(&oid_lo.to_le_bytes());
        h
    }

    /// The dictionary of the pydaos layout, while the connector is open.
    fn open_dict(&self) -> std::result::Result<Option<Arc<Kv>>, DaosError> {
        match &self.dict {
            None => Ok(None),
            Some(d) => {
                self.cont()?;
                Ok(Some(d.clone()))
            }
        }
    }

    /// The pydaos layout's put: each object a value under a fresh
    /// `uuid4` string, as the Python ProxyStore names its keys.
    fn dict_put(
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
        let ops = dict::run(ops, self.opts.max_in_flight, deadline, 0)?;
        if let Some(op) = ops.iter().find(|o| o.rc != 0) {
            let rc = op.rc;
            // Nothing of a failed batch stays.
            let _ = self.dict_remove(d, &keys);
            return Err(DaosError::call(d.api(), "daos_kv_put", rc));
        }
        Ok(keys.iter().map(Key::encode).collect())
    }

    fn dict_remove(&self, d: &Arc<Kv>, keys: &[DaosKey]) -> std::result::Result<(), DaosError> {
        let deadline = Instant::now() + self.timeout();
        let ops = keys
            .iter()
            .map(|k| KvOp::remove(d, k.entry.as_deref().unwrap_or_default()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let ops = dict::run(ops, self.opts.max_in_flight, deadline, 0)?;
        match ops.iter().find(|o| o.rc != 0) {
            Some(op) => Err(DaosError::call(d.api(), "daos_kv_remove", op.rc)),
            None => Ok(()),
        }
    }

    /// The pydaos layout's reads: `None` for a missing entry or a value of
    /// another length than the key's.
    fn dict_get(
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
    fn dict_exists(&self, d: &Arc<Kv>, k: &DaosKey) -> std::result::Result<bool, DaosError> {
        let deadline = Instant::now() + self.timeout();
        let ops = vec![KvOp::get(d, k.entry.as_deref().unwrap_or_default(), None)?];
        let ops = dict::run(ops, 1, deadline, 0)?;
        if ops[0].rc != 0 {
            return Err(DaosError::call(d.api(), "daos_kv_get", ops[0].rc));
        }
        let size = ops[0].size();
        Ok(size != 0 && (k.len == UNKNOWN_LEN || size == dict::stored_len(k.len)))
    }

    fn put_many(&self, data: Vec<Payload>) -> std::result::Result<Vec<Key>, DaosError> {
        let cont = self.cont()?;
        let api = cont.api();
        let deadline = Instant::now() + self.timeout();
        let los = cont.next_oids(data.len() as u64, deadline)?;
        let mut states = Vec::with_capacity(data.len());
        let mut keys = Vec::with_capacity(data.len());
        for (payload, lo) in data.into_iter().zip(los) {
            let mut oid = daos_obj_id_t { lo, hi: 0 };
            // SAFETY: valid out pointer; a local computation.
            let rc = unsafe {
                (api.daos_obj_generate_oid)(
                    cont.coh,
                    &mut oid,
                    daos_sys::DAOS_OT_ARRAY_BYTE,
                    self.cid,
                    0,
                    0,
                )
            };
            if rc != 0 {
                return Err(DaosError::call(api, "daos_obj_generate_oid", rc));
            }
            let len = payload.len() as u64;
            let array = Array::open(&cont, oid, self.opts.chunk_size)?;
            let parts: Vec<Bytes> = payload.parts().to_vec();
            let layout = Layout::new(self.opts.chunk_size, len);
            let mut st = Box::new(IoState {
                array,
                range: daos_range_t {
                    rg_idx: 0,
                    rg_len: layout.array_len(),
                },
                iod: empty_iod(),
                iovs: Vec::new(),
                sgl: empty_sgl(),
                header: self.header_for(oid.lo, len),
                stamps: layout.stamps(oid.lo),
                dest: Dest::None,
                _parts: parts,
                _cont: cont.clone(),
            });
            let hp: *mut u8 = st.header.as_mut_ptr();
            let sp: *mut u8 = st.stamps.as_mut_ptr();
            // The payload's own parts, no concatenation (DAOS only reads
            // from the buffers of a write).
            let iovs = layout.iovs(hp, sp, |r, v| {
                for (ptr, n) in pieces(&st._parts, r) {
                    v.push(iov(ptr as *mut u8, n));
                }
            });
            st.iovs = iovs;
            st.wire();
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
        let mut eq = Eq::take(cont.rt())?;
        let exec = execute(
            &mut eq,
            states.len(),
            self.opts.max_in_flight,
            deadline,
            |i, ev| {
                let st = &mut states[i];
                // SAFETY: the state (iod, sgl, iovs, header, payload parts)
                // stays boxed and alive until the operation completes (leaked
                // below if it never does).
                unsafe {
                    (api.daos_array_write)(
                        st.array.oh,
                        daos_sys::DAOS_TX_NONE,
                        &mut st.iod,
                        &mut st.sgl,
                        ev,
                    )
                }
            },
        );
        if exec.stuck {
            std::mem::forget(states);
            return Err(DaosError::Timeout);
        }
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

    fn punch_many(&self, cont: &Arc<Cont>, keys: &[DaosKey]) -> std::result::Result<(), DaosError> {
        let api = cont.api();
        let deadline = Instant::now() + self.timeout();
        let mut arrays = Vec::with_capacity(keys.len());
        for k in keys {
            arrays.push(Array::open(cont, k.oid(), self.opts.chunk_size)?);
        }
        let mut eq = Eq::take(cont.rt())?;
        let exec = execute(
            &mut eq,
            arrays.len(),
            self.opts.max_in_flight,
            deadline,
            |i, ev| {
                // SAFETY: the handle stays open until the operation completes.
                unsafe { (api.daos_array_destroy)(arrays[i].oh, daos_sys::DAOS_TX_NONE, ev) }
            },
        );
        if exec.stuck {
            std::mem::forget(arrays);
            return Err(DaosError::Timeout);
        }
        for i in 0..keys.len() {
            exec.check(api, "daos_array_destroy", i)?;
        }
        Ok(())
    }

    /// Read the header (and, with `with_data`, the object) of each key.
    /// `None`: the object is not stored (punched, never written, another
    /// namespace or length).
    fn read_many(
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
                -daos_sys::der::DER_TX_RESTART,
            ));
        }
        Ok(out)
    }

    /// One round of reads; `None` in the result: restart (`-DER_TX_RESTART`).
    #[allow(clippy::type_complexity)]
    fn read_round(
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
            let mut st = Box::new(IoState {
                array: Array::open(cont, k.oid(), self.opts.chunk_size)?,
                range: daos_range_t {
                    rg_idx: 0,
                    rg_len: layout.array_len(),
                },
                iod: empty_iod(),
                iovs: Vec::new(),
                sgl: empty_sgl(),
                header: [0u8; HEADER],
                stamps: vec![0u8; layout.stamps_len()],
                dest: Dest::new(data_len).map_err(DaosError::Core)?,
                _parts: Vec::new(),
                _cont: cont.clone(),
            });
            let hp: *mut u8 = st.header.as_mut_ptr();
            let sp: *mut u8 = st.stamps.as_mut_ptr();
            st.iovs = match st.dest.iov() {
                // Each chunk's bytes at their place in the destination.
                Some(d) => layout.iovs(hp, sp, contiguous(d.iov_buf.cast())),
                None => layout.iovs(hp, sp, |_, _| {}),
            };
            st.wire();
            states.push(st);
        }
        let mut eq = Eq::take(cont.rt())?;
        let exec = execute(
            &mut eq,
            states.len(),
            self.opts.max_in_flight,
            deadline,
            |i, ev| {
                let st = &mut states[i];
                // SAFETY: the boxed state (iod, sgl, iovs, header and the
                // destination buffer) stays alive until the read completes
                // (leaked below if it never does).
                unsafe {
                    (api.daos_array_read)(
                        st.array.oh,
                        daos_sys::DAOS_TX_NONE,
                        &mut st.iod,
                        &mut st.sgl,
                        ev,
                    )
                }
            },
        );
        if exec.stuck {
            std::mem::forget(states);
            return Err(DaosError::Timeout);
        }
        let mut out = Vec::with_capacity(keys.len());
        for (i, (st, k)) in states.into_iter().zip(keys).enumerate() {
            let rc = exec.rcs[i];
            if rc == -daos_sys::der::DER_TX_RESTART {
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

impl Connector for DaosConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            cross_process: true,
            cross_node: true,
            outlives_process: true,
            ..Capabilities::MINIMAL
        }
    }

    fn put(&self, data: Payload) -> Result<Key> {
        let mut keys = self.put_batch(vec![data])?;
        Ok(keys.remove(0))
    }

    fn put_batch(&self, data: Vec<Payload>) -> Result<Vec<Key>> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        match self.open_dict().map_err(self.err("put"))? {
            Some(d) => self.dict_put(&d, data),
            None => self.put_many(data),
        }
        .map_err(self.err("put"))
    }

    fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let mut v = self.get_batch(std::slice::from_ref(key))?;
        Ok(v.remove(0))
    }

    fn get_batch(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let ks = keys
            .iter()
            .map(|k| self.decode(k))
            .collect::<Result<Vec<_>>>()?;
        if ks.is_empty() {
            return Ok(Vec::new());
        }
        match self.open_dict().map_err(self.err("get"))? {
            Some(d) => self.dict_get(&d, &ks),
            None => self.read_many(&ks, true),
        }
        .map_err(self.err("get"))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let k = self.decode(key)?;
        if let Some(d) = self.open_dict().map_err(self.err("exists"))? {
            return self.dict_exists(&d, &k).map_err(self.err("exists"));
        }
        let v = self
            .read_many(std::slice::from_ref(&k), false)
            .map_err(self.err("exists"))?;
        Ok(v[0].is_some())
    }

    fn evict(&self, key: &Key) -> Result<()> {
        let k = self.decode(key)?;
        if let Some(d) = self.open_dict().map_err(self.err("evict"))? {
            // As for arrays, a key whose length is not the value's (a forged
            // one) removes nothing; a Python ProxyStore key (no length)
            // removes the entry, as its own connector does.
            if !self.dict_exists(&d, &k).map_err(self.err("evict"))? {
                return Ok(());
            }
            return self
                .dict_remove(&d, std::slice::from_ref(&k))
                .map_err(self.err("evict"));
        }
        // Only the object the key names: a forged key with this object id but
        // another length or namespace must not punch it (objects are write
        // once, so checking the header first is not racy).
        let present = self
            .read_many(std::slice::from_ref(&k), false)
            .map_err(self.err("evict"))?;
        if present[0].is_none() {
            return Ok(());
        }
        let cont = self.cont().map_err(self.err("evict"))?;
        self.punch_many(&cont, std::slice::from_ref(&k))
            .map_err(self.err("evict"))
    }

    fn close(&self) -> Result<()> {
        // Objects stay (they outlive the connector); the shared handles
        // close with the last connector of the process that uses them.
        self.cont.lock().take();
        Ok(())
    }

    fn config(&self) -> ConnectorConfig {
        ConnectorConfig::new(KIND, &self.opts)
    }

    fn key_to_string(&self, key: &Key) -> Result<String> {
        let k = self.decode(key)?;
        if let Some(entry) = &k.entry {
            let len = if k.len == UNKNOWN_LEN {
                String::new()
            } else {
                format!(":{}", k.len)
            };
            return Ok(format!(
                "daos:{}/{}/{}/{entry}{len}",
                k.pool, k.container, k.namespace
            ));
        }
        Ok(format!(
            "daos:{}/{}/{}/{:016x}.{:016x}/{}",
            k.pool, k.container, k.namespace, k.oid_hi, k.oid_lo, k.len
        ))
    }

    fn parse_key(&self, s: &str) -> Result<Key> {
        let bad = |why: &str| Error::InvalidKey {
            connector: KIND.into(),
            reason: format!(
                "{why}: {s:?} (expected daos:POOL/CONTAINER/NAMESPACE/HI.LO/LEN, in the pydaos layout daos:POOL/CONTAINER/NAMESPACE/ENTRY[:LEN], or hex)"
            ),
        };
        let Some(rest) = s.strip_prefix("daos:") else {
            let key = Key::from_hex(s)?;
            self.decode(&key)?;
            return Ok(key);
        };
        if let Some(d) = &self.dict {
            // POOL/CONTAINER/NAMESPACE/ENTRY[:LEN]: the Python ProxyStore's
            // DAOSKey(pool, container, namespace, dict_key), with our length.
            let (head, last) = rest.rsplit_once('/').ok_or_else(|| bad("too few parts"))?;
            let (entry, len) = match last.rsplit_once(':') {
                Some((e, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    (e, n.parse().map_err(|_| bad("length is not a number"))?)
                }
                _ => (last, UNKNOWN_LEN),
            };
            let mut h = head.splitn(3, '/');
            let (Some(pool), Some(container), Some(namespace)) = (h.next(), h.next(), h.next())
            else {
                return Err(bad("missing pool, container or namespace"));
            };
            let key = Key::encode(&DaosKey {
                pool: pool.into(),
                container: container.into(),
                namespace: namespace.into(),
                oid_hi: d.oid.hi,
                oid_lo: d.oid.lo,
                len,
                entry: Some(entry.into()),
            });
            self.decode(&key)?;
            return Ok(key);
        }
        let parts: Vec<&str> = rest.rsplitn(3, '/').collect();
        let [len, oid, head] = parts[..] else {
            return Err(bad("too few parts"));
        };
        let mut h = head.splitn(3, '/');
        let (Some(pool), Some(container), Some(namespace)) = (h.next(), h.next(), h.next()) else {
            return Err(bad("missing pool, container or namespace"));
        };
        let (hi, lo) = oid
            .split_once('.')
            .ok_or_else(|| bad("object id is not HI.LO"))?;
        let hex = |x: &str| u64::from_str_radix(x, 16).map_err(|_| bad("object id is not hex"));
        let key = Key::encode(&DaosKey {
            pool: pool.into(),
            container: container.into(),
            namespace: namespace.into(),
            oid_hi: hex(hi)?,
            oid_lo: hex(lo)?,
            len: len.parse().map_err(|_| bad("length is not a number"))?,
            entry: None,
        });
        self.decode(&key)?;
        Ok(key)
    }
}

impl FromConfig for DaosConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        DaosConnector::new(config.options()?)
    }
}
