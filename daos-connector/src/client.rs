//! [`DaosConnector`]: the handles a connector holds (the shared container,
//! the pydaos layout's dictionary), how it is built, and the helpers every
//! operation uses.

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proxy_core::{ConnectorConfig, Error, FromConfig, Result};

use crate::KIND;
use crate::config::{DaosLayout, DaosOptions};
use crate::daos::kv::Kv;
use crate::daos::{self, Cont};
use crate::dict;
use crate::error::DaosError;

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
    pub(crate) opts: DaosOptions,
    /// The pydaos layout: the namespace's dictionary, open.
    pub(crate) dict: Option<Arc<Kv>>,
    /// Resolved object class id (0: DAOS chooses).
    pub(crate) cid: u32,
    pub(crate) ns_hash: u64,
    /// The shared container handle; `None` once closed.
    pub(crate) cont: Mutex<Option<Arc<Cont>>>,
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

impl DaosConnector {
    /// Connect (once per process) to the pool and open the container.
    pub fn new(opts: DaosOptions) -> Result<Self> {
        opts.validate()?;
        let timeout = Duration::from_millis(opts.timeout_ms);
        let deadline = Instant::now() + timeout;
        let api = daos::api().map_err(|e| e.into_error("connect", timeout))?;
        let cid = match &opts.oclass {
            None => daos::OC_UNKNOWN,
            Some(name) => {
                let c = CString::new(name.as_str())
                    .map_err(|_| Error::config(KIND, format!("bad object class {name:?}")))?;
                let id = daos::oclass_name2id(api, &c);
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

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.opts.timeout_ms)
    }

    pub(crate) fn err(&self, op: &'static str) -> impl Fn(DaosError) -> Error + '_ {
        move |e| e.into_error(op, self.timeout())
    }

    pub(crate) fn cont(&self) -> std::result::Result<Arc<Cont>, DaosError> {
        self.cont.lock().clone().ok_or(DaosError::Closed)
    }

    /// The dictionary of the pydaos layout, while the connector is open.
    pub(crate) fn open_dict(&self) -> std::result::Result<Option<Arc<Kv>>, DaosError> {
        match &self.dict {
            None => Ok(None),
            Some(d) => {
                self.cont()?;
                Ok(Some(d.clone()))
            }
        }
    }
}

impl FromConfig for DaosConnector {
    const KIND: &'static str = KIND;

    fn from_config(config: &ConnectorConfig) -> Result<Self> {
        config.expect_kind(KIND)?;
        DaosConnector::new(config.options()?)
    }
}
