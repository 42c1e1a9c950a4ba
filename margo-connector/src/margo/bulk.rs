//! [`Bulk`]: a Mercury bulk handle (`hg_bulk_t`).

use std::sync::Arc;

use margo_sys::{HG_BULK_READ_ONLY, HG_BULK_READWRITE, HG_BULK_WRITE_ONLY, hg_bulk_t};
use proxy_core::{Error, Result};

use super::instance::Instance;
use super::{KIND, check};

/// What a bulk handle lets a peer do with the memory it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAccess {
    /// `HG_BULK_READ_ONLY`: peers may pull from it (what readers get).
    ReadOnly,
    /// `HG_BULK_WRITE_ONLY`: peers may push into it.
    WriteOnly,
    /// `HG_BULK_READWRITE`.
    ReadWrite,
}

impl BulkAccess {
    fn flags(self) -> u8 {
        match self {
            BulkAccess::ReadOnly => HG_BULK_READ_ONLY,
            BulkAccess::WriteOnly => HG_BULK_WRITE_ONLY,
            BulkAccess::ReadWrite => HG_BULK_READWRITE,
        }
    }
}

/// A bulk handle: created over local memory (registered with the NA plugin
/// once, for as long as the handle lives) or deserialized from a peer's.
pub struct Bulk {
    inst: Arc<Instance>,
    handle: hg_bulk_t,
    len: u64,
}

// SAFETY: a bulk handle may be used from any thread (Mercury reference-counts
// it); it is freed once, on drop.
unsafe impl Send for Bulk {}
// SAFETY: as above; Mercury only reads the handle when a transfer uses it.
unsafe impl Sync for Bulk {}

impl std::fmt::Debug for Bulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bulk({} B)", self.len)
    }
}

impl Bulk {
    /// Expose `len` bytes at `ptr` (`margo_bulk_create`).
    ///
    /// # Safety
    /// The memory must stay mapped (and, for [`BulkAccess::ReadOnly`],
    /// readable; otherwise writable) until the handle and every transfer
    /// using it are gone.
    pub unsafe fn create(
        inst: &Arc<Instance>,
        ptr: *const u8,
        len: usize,
        access: BulkAccess,
    ) -> Result<Bulk> {
        if len == 0 {
            return Err(Error::permanent(
                KIND,
                "margo_bulk_create",
                "cannot expose zero bytes",
            ));
        }
        let mut ptrs = [ptr as *mut std::ffi::c_void];
        let sizes = [len as u64];
        let mut handle: hg_bulk_t = std::ptr::null_mut();
        // SAFETY: one segment of `len` bytes the caller keeps valid; arrays
        // of one element; out-pointer. A read-only handle is never written
        // through (Mercury refuses pushes into it).
        let r = unsafe {
            (inst.api().margo_bulk_create)(
                inst.mid(),
                1,
                ptrs.as_mut_ptr(),
                sizes.as_ptr(),
                access.flags(),
                &mut handle,
            )
        };
        check("margo_bulk_create", r)?;
        Ok(Bulk {
            inst: inst.clone(),
            handle,
            len: len as u64,
        })
    }

    /// A peer's handle from its serialized form (`margo_bulk_deserialize`),
    /// said to cover `len` bytes.
    pub fn deserialize(inst: &Arc<Instance>, bytes: &[u8], len: u64) -> Result<Bulk> {
        let mut handle: hg_bulk_t = std::ptr::null_mut();
        // SAFETY: Mercury reads `bytes.len()` bytes and checks what it reads
        // (a truncated or foreign buffer fails with an error).
        let r = unsafe {
            (inst.api().margo_bulk_deserialize)(
                inst.mid(),
                &mut handle,
                bytes.as_ptr().cast(),
                bytes.len() as u64,
            )
        };
        check("margo_bulk_deserialize", r)?;
        Ok(Bulk {
            inst: inst.clone(),
            handle,
            len,
        })
    }

    /// The serialized handle (`HG_Bulk_serialize`, no eager data): what a
    /// peer deserializes to transfer from or to it.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let api = self.inst.api();
        // SAFETY: a live handle.
        let n = unsafe { (api.HG_Bulk_get_serialize_size)(self.handle, 0) };
        let mut buf = vec![0u8; n as usize];
        // SAFETY: `buf` holds the `n` bytes Mercury asked for.
        let r = unsafe { (api.HG_Bulk_serialize)(buf.as_mut_ptr().cast(), n, 0, self.handle) };
        check("margo_bulk_serialize", r)?;
        Ok(buf)
    }

    /// Bytes covered (as created, or as the peer said).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it covers no bytes (never: creation refuses that).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The instance it belongs to.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.inst
    }

    pub(crate) fn raw(&self) -> hg_bulk_t {
        self.handle
    }
}

impl Drop for Bulk {
    fn drop(&mut self) {
        // SAFETY: the handle is freed exactly once; transfers that use it
        // hold the `Bulk` until Margo completed them.
        unsafe { (self.inst.api().margo_bulk_free)(self.handle) };
    }
}
