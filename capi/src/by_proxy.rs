//! Calls on the object behind a serialized proxy: its key, and evicting it
//! (a producer frees what it broadcast; Rust: `proxy.key()`,
//! `proxy.factory().evict_target()`; Python: `get_key(proxy)` and
//! `store.evict(get_key(proxy))` from `proxystore.store.utils`).

use bytes::Bytes;
use proxy_core::{Proxy, Store};

use crate::args::{bytes_arg, key_out_arg, write_key};
use crate::{Res, call, fail, ps_key, ps_status};

/// The proxy in `bytes`, and the store it resolves against (found in this
/// process by name and connector configuration, or opened from the proxy's).
fn proxy_and_store(bytes: &[u8]) -> Res<(Proxy<Bytes>, Store)> {
    if bytes.is_empty() {
        return Err(fail(
            ps_status::PS_ERR_DECODE,
            "not a serialized proxy: 0 bytes",
        ));
    }
    let p = Proxy::<Bytes>::from_bytes(bytes)?;
    let store = p.factory().store()?.clone();
    Ok((p, store))
}

/// The key of the object behind a serialized proxy (from [`ps_proxy`]), as
/// [`ps_put`] would have written it: usable with [`ps_get`], [`ps_exists`] and
/// [`ps_evict`] on a store handle of the same store.
///
/// # Safety
/// `proxy` is NULL or `len` readable bytes; `key_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ps_proxy_key(
    proxy: *const u8,
    len: usize,
    key_out: *mut ps_key,
) -> ps_status {
    call(|| {
        // SAFETY: caller contract of this function.
        let key_out = unsafe { key_out_arg(key_out) }?;
        // SAFETY: caller contract of this function.
        let bytes = unsafe { bytes_arg(proxy, len, "proxy") }?;
        let (p, store) = proxy_and_store(bytes)?;
        write_key(&store, p.key(), key_out)
    })
}

/// Evict the object behind a serialized proxy (from [`ps_proxy`], in any
/// process): what a producer calls when every consumer of a broadcast proxy
/// is done. No error if it is already gone. Every process then sees it gone:
/// [`ps_exists`] is false, and a [`ps_proxy_resolve`] not answered by that
/// process's cache (see "Cache" in the header) is `PS_ERR_NOT_FOUND`.
///
/// # Safety
/// `proxy` is NULL or `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ps_evict_proxy(proxy: *const u8, len: usize) -> ps_status {
    call(|| {
        // SAFETY: caller contract of this function.
        let bytes = unsafe { bytes_arg(proxy, len, "proxy") }?;
        let (p, _) = proxy_and_store(bytes)?;
        p.factory().evict_target()?;
        Ok(())
    })
}
