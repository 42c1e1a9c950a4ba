//! `proxystore_rs._native`: proxystore-rs connectors for Python (PyO3).
//!
//! The Python package `proxystore_rs` wraps [`Connector`] in classes that
//! implement the Python ProxyStore 1.1 connector protocol. Here:
//! - every connector call releases the GIL around its I/O;
//! - `get` returns a [`Buffer`]: the connector's own bytes (registered memory
//!   of the UCX connector, a file mapping) exposed through Python's buffer
//!   protocol, read-only, without a copy;
//! - `put` of a `bytes` object hands the object's memory to the connector
//!   without a copy (other bytes-like objects are copied once); the Python
//!   ProxyStore's `BS\n` and `NP\n` headers are stored padded to 64 bytes
//!   (`proxy_core::codec::align_header`, which Python reads unchanged), so
//!   the payload a later `get` hands out is 64-byte aligned.

use std::ffi::{c_int, c_void};

use bytes::Bytes;
use proxy_core::{ConnectorConfig, DynConnector, Key, codec, registry};
use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _native,
    ProxyStoreRsError,
    PyException,
    "A proxystore-rs connector failed (the message says how)."
);

fn py_err(e: proxy_core::Error) -> PyErr {
    ProxyStoreRsError::new_err(e.to_string())
}

/// The memory of an immutable Python `bytes` object, kept alive by a reference
/// to it: a `Bytes` owner, so a put hands the object to the connector without a copy.
struct PyBytesOwner {
    _obj: Py<PyBytes>,
    addr: usize,
    len: usize,
}

impl AsRef<[u8]> for PyBytesOwner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `addr`/`len` are the data of the `bytes` object held by
        // `_obj`; `bytes` objects are immutable and their data never moves
        // while a reference to them is held.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }
}

/// A bytes-like Python object as `Bytes`: `bytes` without a copy, any other
/// buffer (bytearray, memoryview, numpy array) copied once.
fn to_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let data = b.as_bytes();
        let owner = PyBytesOwner {
            addr: data.as_ptr() as usize,
            len: data.len(),
            _obj: b.clone().unbind(),
        };
        return Ok(Bytes::from_owner(owner));
    }
    let buf = PyBuffer::<u8>::get(obj).map_err(|e| {
        PyValueError::new_err(format!(
            "expected a bytes-like object, got {}: {e}",
            obj.get_type()
        ))
    })?;
    Ok(Bytes::from(buf.to_vec(obj.py())?))
}

/// Bytes owned by proxystore-rs, readable from Python through the buffer
/// protocol (`memoryview(buf)`), read-only and without a copy.
#[pyclass(frozen, module = "proxystore_rs._native")]
pub struct Buffer {
    bytes: Bytes,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({} bytes)", self.bytes.len())
    }
}

#[pymethods]
impl Buffer {
    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    /// Address of the first byte (to check that a view shares this memory).
    #[getter]
    fn address(&self) -> usize {
        self.bytes.as_ptr() as usize
    }

    /// # Safety
    /// Called by CPython with a valid `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let (ptr, len) = {
            let b = &slf.get().bytes;
            (b.as_ptr(), b.len())
        };
        let len = ffi::Py_ssize_t::try_from(len)
            .map_err(|_| PyValueError::new_err("buffer too large for Py_ssize_t"))?;
        // SAFETY: `view` is CPython's to fill; `ptr..ptr+len` is owned by
        // `slf`'s immutable `Bytes`, which lives at least as long as the view
        // holds its reference to `slf` (PyBuffer_FillInfo takes it). readonly=1
        // makes a request for a writable buffer fail (with BufferError).
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(view, slf.as_ptr(), ptr as *mut c_void, len, 1, flags)
        };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// # Safety
    /// Called by CPython; nothing to release (the memory is owned by `self`).
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// A proxystore-rs connector of any registered kind (`file`, `redis`, `ucx`,
/// `ofi`, `margo`, `daos`, `local`, `multi`), built from its options or a
/// store URL.
#[pyclass(frozen, module = "proxystore_rs._native")]
#[derive(Debug)]
pub struct Connector {
    inner: DynConnector,
}

#[pymethods]
impl Connector {
    /// Build a connector of `kind` from its options (a JSON object).
    #[new]
    fn new(py: Python<'_>, kind: String, options_json: &str) -> PyResult<Self> {
        let options: serde_json::Value = serde_json::from_str(options_json)
            .map_err(|e| PyValueError::new_err(format!("options are not JSON: {e}")))?;
        let config = ConnectorConfig { kind, options };
        let inner = py
            .detach(|| registry::connector_from_config(&config))
            .map_err(py_err)?;
        Ok(Connector { inner })
    }

    /// Build the connector a store URL names (`file:///DIR`,
    /// `redis://HOST:PORT/DB`, `ucx://HOST:PORT`, `ofi://HOST:PORT`,
    /// `margo://HOST:PORT`, `daos://POOL/CONTAINER`: every scheme of
    /// [`schemes`], parsed as the command-line tool and the C ABI do).
    #[staticmethod]
    fn from_url(py: Python<'_>, url: &str) -> PyResult<Self> {
        let inner = py
            .detach(|| registry::connector_from_url(url))
            .map_err(py_err)?;
        Ok(Connector { inner })
    }

    /// The connector of a store URL and the store's cache budget from its
    /// `cache=SIZE` query key (`None` when the URL has none), the URL parsed
    /// as the `proxystore` tool and the C ABI parse it.
    #[staticmethod]
    fn from_store_url(py: Python<'_>, url: &str) -> PyResult<(Self, Option<u64>)> {
        let (inner, cache) = py
            .detach(|| {
                let (connector, cache) = registry::connector_config_from_store_url(url)?;
                Ok::<_, proxy_core::Error>((registry::connector_from_config(&connector)?, cache))
            })
            .map_err(py_err)?;
        Ok((Connector { inner }, cache))
    }

    /// Whether keys can be minted before their object is stored
    /// ([`Connector::new_key`], [`Connector::set`]).
    #[getter]
    fn deferrable(&self) -> bool {
        self.inner.as_deferrable().is_some()
    }

    /// A new key with no object yet (deferrable connectors).
    fn new_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let d = self.deferrable_or_err()?;
        let key = py.detach(|| d.new_key()).map_err(py_err)?;
        Ok(PyBytes::new(py, key.as_bytes()))
    }

    /// Store `obj` under `key` (from `new_key`, or replace the object of a
    /// key from `put`), deferrable connectors.
    fn set(&self, key: &[u8], obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = self.deferrable_or_err()?;
        let key = Key::from_bytes(Bytes::copy_from_slice(key));
        let data = codec::align_header(to_bytes(obj)?);
        obj.py().detach(|| d.set(&key, data)).map_err(py_err)
    }

    /// The connector kind.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    /// The connector's options as JSON (what rebuilds it in another process).
    fn config_json(&self) -> String {
        self.inner.config().options.to_string()
    }

    /// Store one bytes-like object; returns its key (bytes).
    fn put<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let py = obj.py();
        let data = codec::align_header(to_bytes(obj)?);
        let key = py.detach(|| self.inner.put(data)).map_err(py_err)?;
        Ok(PyBytes::new(py, key.as_bytes()))
    }

    /// Store many objects in one connector batch; keys in order.
    fn put_batch<'py>(
        &self,
        py: Python<'py>,
        objs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let data = objs
            .iter()
            .map(|o| to_bytes(o).map(codec::align_header))
            .collect::<PyResult<Vec<_>>>()?;
        let keys = py.detach(|| self.inner.put_batch(data)).map_err(py_err)?;
        Ok(keys
            .iter()
            .map(|k| PyBytes::new(py, k.as_bytes()))
            .collect())
    }

    /// The object's bytes (a zero-copy [`Buffer`]), or None if missing.
    fn get(&self, py: Python<'_>, key: &[u8]) -> PyResult<Option<Buffer>> {
        let key = Key::from_bytes(Bytes::copy_from_slice(key));
        let got = py.detach(|| self.inner.get(&key)).map_err(py_err)?;
        Ok(got.map(|bytes| Buffer { bytes }))
    }

    /// Many gets in one connector batch; results in order (None if missing).
    fn get_batch(&self, py: Python<'_>, keys: Vec<Vec<u8>>) -> PyResult<Vec<Option<Buffer>>> {
        let keys: Vec<Key> = keys.into_iter().map(Key::from_bytes).collect();
        let got = py.detach(|| self.inner.get_batch(&keys)).map_err(py_err)?;
        Ok(got
            .into_iter()
            .map(|b| b.map(|bytes| Buffer { bytes }))
            .collect())
    }

    /// Whether an object is stored under `key`.
    fn exists(&self, py: Python<'_>, key: &[u8]) -> PyResult<bool> {
        let key = Key::from_bytes(Bytes::copy_from_slice(key));
        py.detach(|| self.inner.exists(&key)).map_err(py_err)
    }

    /// Remove the object (no error if missing).
    fn evict(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let key = Key::from_bytes(Bytes::copy_from_slice(key));
        py.detach(|| self.inner.evict(&key)).map_err(py_err)
    }

    /// The key as the connector prints it.
    fn key_to_string(&self, key: &[u8]) -> PyResult<String> {
        self.inner
            .key_to_string(&Key::from_bytes(Bytes::copy_from_slice(key)))
            .map_err(py_err)
    }

    /// Close the connector (idempotent).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.close()).map_err(py_err)
    }

    fn __repr__(&self) -> String {
        format!("<proxystore_rs Connector {:?}>", self.inner)
    }
}

impl Connector {
    fn deferrable_or_err(&self) -> PyResult<&dyn proxy_core::Deferrable> {
        self.inner.as_deferrable().ok_or_else(|| {
            ProxyStoreRsError::new_err(format!(
                "a {} connector cannot mint keys (its keys are where the object was stored)",
                self.inner.kind()
            ))
        })
    }
}

/// The store URL schemes this build opens, sorted.
#[pyfunction]
fn schemes() -> Vec<&'static str> {
    registry::registered_schemes()
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    proxystore_connectors::register_all();
    m.add_class::<Connector>()?;
    m.add_function(wrap_pyfunction!(schemes, m)?)?;
    m.add_class::<Buffer>()?;
    m.add("ProxyStoreRsError", m.py().get_type::<ProxyStoreRsError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
