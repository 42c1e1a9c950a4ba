//! Arguments from C: the only dereferences of caller pointers (each checked
//! for NULL and size first), and keys between their text and the connector's form.

use std::ffi::{CStr, c_char};

use proxy_core::{Key, Store};

use crate::{PS_KEY_MAX, Res, fail, ps_key, ps_status::*};

/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text_arg<'a>(p: *const c_char, what: &str) -> Res<&'a str> {
    if p.is_null() {
        return Err(fail(PS_ERR_NULL_ARGUMENT, format!("{what} is NULL")));
    }
    // SAFETY: non-null and NUL-terminated per this function's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|e| fail(PS_ERR_INVALID_ARGUMENT, format!("{what} is not UTF-8: {e}")))
}

/// # Safety
/// `p` is NULL or points to `len` readable bytes valid for the call.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Res<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(fail(
            PS_ERR_NULL_ARGUMENT,
            format!("{what} is NULL with length {len}"),
        ));
    }
    if len > isize::MAX as usize {
        return Err(fail(
            PS_ERR_INVALID_ARGUMENT,
            format!("{what}: length {len} is not a valid size"),
        ));
    }
    // SAFETY: non-null, `len` readable bytes per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Whether an array argument of `n` `T`s has elements to read (`false` for
/// `n == 0`, whatever the pointer); an error for NULL with a count, or a
/// count no allocation can have.
fn array_has_elements<T>(is_null: bool, n: usize, what: &str) -> Res<bool> {
    if n == 0 {
        return Ok(false);
    }
    if is_null {
        return Err(fail(
            PS_ERR_NULL_ARGUMENT,
            format!("{what} is NULL with count {n}"),
        ));
    }
    if n > (isize::MAX as usize) / size_of::<T>().max(1) {
        return Err(fail(
            PS_ERR_INVALID_ARGUMENT,
            format!("{what}: count {n} is not a valid size"),
        ));
    }
    Ok(true)
}

/// # Safety
/// `p` is NULL or points to `n` readable `T`s valid for the call.
pub(crate) unsafe fn array_arg<'a, T>(p: *const T, n: usize, what: &str) -> Res<&'a [T]> {
    if !array_has_elements::<T>(p.is_null(), n, what)? {
        return Ok(&[]);
    }
    // SAFETY: non-null, `n` readable elements per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// # Safety
/// `p` is NULL or points to a writable `T` valid for the call.
pub(crate) unsafe fn out_arg<'a, T>(p: *mut T, what: &str) -> Res<&'a mut T> {
    // SAFETY: NULL or writable and exclusive for the call per this function's contract.
    unsafe { p.as_mut() }.ok_or_else(|| fail(PS_ERR_NULL_ARGUMENT, format!("{what} is NULL")))
}

/// The key output of a call, cleared (an empty key if the call fails).
///
/// # Safety
/// `p` is NULL or points to a writable `ps_key` valid for the call.
pub(crate) unsafe fn key_out_arg<'a>(p: *mut ps_key) -> Res<&'a mut ps_key> {
    // SAFETY: this function's contract is out_arg's.
    let k = unsafe { out_arg(p, "key_out") }?;
    k.text[0] = 0;
    Ok(k)
}

/// # Safety
/// `p` is NULL or points to `n` writable `T`s valid for the call.
pub(crate) unsafe fn out_array<'a, T>(p: *mut T, n: usize, what: &str) -> Res<&'a mut [T]> {
    if !array_has_elements::<T>(p.is_null(), n, what)? {
        return Ok(&mut []);
    }
    // SAFETY: non-null, `n` writable elements, exclusive for the call (contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

pub(crate) fn parse_key(store: &Store, text: &str) -> Res<Key> {
    store.connector().parse_key(text).map_err(|e| {
        fail(
            PS_ERR_INVALID_ARGUMENT,
            format!("bad key {text:?} for store '{}': {e}", store.name()),
        )
    })
}

pub(crate) fn write_key(store: &Store, key: &Key, out: &mut ps_key) -> Res<()> {
    let text = store.connector().key_to_string(key)?;
    if text.len() >= PS_KEY_MAX || text.contains('\0') {
        return Err(fail(
            PS_ERR_OTHER,
            format!(
                "key of {} bytes does not fit PS_KEY_MAX ({PS_KEY_MAX})",
                text.len()
            ),
        ));
    }
    for (d, s) in out.text.iter_mut().zip(text.bytes()) {
        *d = s as c_char;
    }
    out.text[text.len()] = 0;
    Ok(())
}
