//! Registered memory regions (`ucp_mem_map` .. `ucp_mem_unmap`).

use std::ptr;
use std::sync::Arc;

use proxy_core::Result;
use ucx_sys::*;

use super::{Context, check, status_error};

/// A region of memory registered with UCX: allocated by UCX
/// ([`MemRegion::allocate`], `UCP_MEM_MAP_ALLOCATE`, so UCX picks the best
/// allocator for the transports, e.g. shared memory that a peer on the node
/// can map), or memory of someone else's ([`MemRegion::register`]).
/// Unmapped (and, if UCX allocated it, freed) on drop.
///
/// The region hands out raw pointers only: who may write where is decided by
/// its owner (the server's arena allocator, the client's buffer pool).
#[derive(Debug)]
pub struct MemRegion {
    memh: ucp_mem_h,
    addr: *mut u8,
    len: usize,
    ctx: Arc<Context>,
}

// SAFETY: the memory handle is a context-level object and the context is
// created with `mt_workers_shared`, so unmapping or packing it from any thread
// is allowed; the raw pointer is only dereferenced by owners that synchronise
// their own accesses (see the type's documentation).
unsafe impl Send for MemRegion {}
// SAFETY: see `Send`: `&MemRegion` exposes no Rust-visible mutable state.
unsafe impl Sync for MemRegion {}

impl MemRegion {
    /// Register `len` bytes at `addr`, memory that the caller owns.
    ///
    /// # Safety
    /// `[addr, addr + len)` must stay mapped until the region is dropped.
    pub unsafe fn register(ctx: &Arc<Context>, addr: *mut u8, len: usize) -> Result<MemRegion> {
        let params = ucp_mem_map_params_t {
            field_mask: (ucp_mem_map_params_field::UCP_MEM_MAP_PARAM_FIELD_ADDRESS
                | ucp_mem_map_params_field::UCP_MEM_MAP_PARAM_FIELD_LENGTH)
                .0 as u64,
            address: addr.cast(),
            length: len,
            ..Default::default()
        };
        let mut memh: ucp_mem_h = ptr::null_mut();
        // SAFETY: the context is alive; params and out-pointer are valid; the
        // caller keeps the memory mapped while the registration lives.
        check("ucp_mem_map", unsafe {
            ucp_mem_map(ctx.raw(), &params, &mut memh)
        })?;
        Ok(MemRegion {
            memh,
            addr,
            len,
            ctx: ctx.clone(),
        })
    }

    /// Whether this region was registered on `ctx`.
    pub fn is_on(&self, ctx: &Arc<Context>) -> bool {
        Arc::ptr_eq(&self.ctx, ctx)
    }

    /// Allocate and register `len` bytes (`len > 0`). With `prefault`, every
    /// page is written once now, so that later accesses (and RMA) never fault.
    pub fn allocate(ctx: &Arc<Context>, len: usize, prefault: bool) -> Result<MemRegion> {
        let len = len.max(1);
        let params = ucp_mem_map_params_t {
            field_mask: (ucp_mem_map_params_field::UCP_MEM_MAP_PARAM_FIELD_ADDRESS
                | ucp_mem_map_params_field::UCP_MEM_MAP_PARAM_FIELD_LENGTH
                | ucp_mem_map_params_field::UCP_MEM_MAP_PARAM_FIELD_FLAGS)
                .0 as u64,
            address: ptr::null_mut(),
            length: len,
            flags: UCP_MEM_MAP_ALLOCATE.0,
            ..Default::default()
        };
        let mut memh: ucp_mem_h = ptr::null_mut();
        // SAFETY: the context is alive (we hold an Arc); params and out-pointer are valid.
        check("ucp_mem_map", unsafe {
            ucp_mem_map(ctx.raw(), &params, &mut memh)
        })?;
        let mut attr = ucp_mem_attr_t {
            field_mask: (ucp_mem_attr_field::UCP_MEM_ATTR_FIELD_ADDRESS
                | ucp_mem_attr_field::UCP_MEM_ATTR_FIELD_LENGTH)
                .0 as u64,
            ..Default::default()
        };
        // SAFETY: `memh` was just mapped; `attr` is a valid out-parameter.
        let status = unsafe { ucp_mem_query(memh, &mut attr) };
        let region = MemRegion {
            memh,
            addr: attr.address.cast(),
            len: attr.length,
            ctx: ctx.clone(),
        };
        check("ucp_mem_query", status)?;
        if region.addr.is_null() || region.len < len {
            return Err(status_error("ucp_mem_map", ucs_status_t::UCS_ERR_NO_MEMORY));
        }
        if prefault {
            region.prefault();
        }
        Ok(region)
    }

    /// Fault every page in now, writable. `MADV_POPULATE_WRITE` (Linux 5.14+)
    /// has the kernel do it without a fault per page (several times faster
    /// for shared memory); elsewhere every page is written once.
    fn prefault(&self) {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let start = self.addr as usize;
        let aligned = start & !(page - 1);
        let len = (start + self.len).div_ceil(page) * page - aligned;
        // SAFETY: [aligned, aligned + len) covers only pages of this mapping
        // (UCX maps whole pages); populating pages does not change their
        // contents.
        let r =
            unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) };
        if r != 0 {
            // SAFETY: [addr, addr+len) is memory UCX just allocated for us
            // and nobody else knows about yet.
            unsafe { ptr::write_bytes(self.addr, 0, self.len) };
        }
    }

    /// Start of the region.
    pub fn as_ptr(&self) -> *mut u8 {
        self.addr
    }

    /// Length in bytes (at least what was asked for).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw memory handle (valid while `self` lives).
    pub fn memh(&self) -> ucp_mem_h {
        self.memh
    }

    /// Pack a remote key that lets peers read (and write: UCX registers with
    /// full remote access) this region.
    pub fn pack_rkey(&self) -> Result<Vec<u8>> {
        let mut buf: *mut std::ffi::c_void = ptr::null_mut();
        let mut size = 0usize;
        // SAFETY: context and memh are alive; out-pointers are valid.
        check("ucp_rkey_pack", unsafe {
            ucp_rkey_pack(self.ctx.raw(), self.memh, &mut buf, &mut size)
        })?;
        // SAFETY: UCX returned a buffer of `size` bytes that stays valid until released.
        let out = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), size) }.to_vec();
        // SAFETY: the buffer came from ucp_rkey_pack and is released exactly once.
        unsafe { ucp_rkey_buffer_release(buf) };
        Ok(out)
    }
}

impl Drop for MemRegion {
    fn drop(&mut self) {
        // SAFETY: the handle was mapped on this (still alive) context and is
        // unmapped once. Owners guarantee no RMA targets it any more: receive
        // buffers are only dropped after their request completed.
        let status = unsafe { ucp_mem_unmap(self.ctx.raw(), self.memh) };
        if status != ucs_status_t::UCS_OK {
            eprintln!(
                "proxystore-ucx: ucp_mem_unmap failed: {}",
                super::UcsError(status)
            );
        }
    }
}
