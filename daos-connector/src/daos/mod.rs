//! The thin safe layer over `daos-sys`: the process's libdaos runtime, pool
//! and container handles (opened once per process and shared), event queues,
//! and an executor that keeps many array operations in flight on one event
//! queue with a deadline.
//!
//! Every native handle has an owner that releases it on drop, and children
//! keep their parents alive (a container holds its pool, a pool the runtime).
//! Memory that an operation in flight may still touch is never freed: when an
//! operation neither completes nor aborts in time, its buffers and event are
//! leaked on purpose (see [`Exec::stuck`](exec::Exec::stuck)).
//!
//! Nothing outside this module calls libdaos or touches a raw pointer: the
//! connector's rooms build operations from the safe types here
//! ([`array::ArrayIo`], [`kv::KvOp`]) and run them with the batch
//! functions, which keep the memory of every operation in flight alive.

use std::ffi::{CStr, c_int, c_uint};

use daos_sys::Api;

use crate::error::{DaosError, Result};

pub(crate) mod array;
mod error;
mod exec;
mod handles;
pub(crate) mod kv;
mod runtime;
mod sgl;

pub(crate) use exec::NOT_DONE;
pub(crate) use handles::{Array, Cont, container};
pub(crate) use runtime::Eq;

pub(crate) use daos_sys::daos_obj_id_t as ObjectId;
/// The numbers libdaos defines (no calls): result codes, object types,
/// container layouts, flags.
pub(crate) use daos_sys::der;
pub(crate) use daos_sys::{
    DAOS_COND_KEY_INSERT, DAOS_OT_ARRAY_BYTE, DAOS_OT_KV_HASHED, DAOS_PROP_CO_LAYOUT_POSIX,
    DAOS_PROP_CO_LAYOUT_PYTHON, DAOS_PROP_CO_LAYOUT_UNKNOWN, OC_UNKNOWN,
};

/// libdaos, loaded (no call into it).
pub(crate) fn api() -> Result<&'static Api> {
    daos_sys::api().map_err(|e| DaosError::NotInstalled(e.to_string()))
}

/// Whether libdaos can be loaded in this process (and if not, why).
pub(crate) fn available() -> std::result::Result<(), String> {
    daos_sys::api().map(|_| ()).map_err(|e| e.to_string())
}

/// The id of object class `name` (`daos_oclass_name2id`): 0 or less when
/// libdaos does not know it.
pub(crate) fn oclass_name2id(api: &Api, name: &CStr) -> c_int {
    // SAFETY: a NUL-terminated string; the call only reads it.
    unsafe { (api.daos_oclass_name2id)(name.as_ptr()) }
}

/// The object type of an object id's high 64 bits.
pub(crate) fn object_type(oid_hi: u64) -> u64 {
    oid_hi >> daos_sys::OID_FMT_TYPE_SHIFT
}

/// `oid` with its type bits set to `otype` (the other bits kept).
pub(crate) fn with_type(mut oid: ObjectId, otype: c_uint) -> ObjectId {
    oid.hi |= u64::from(otype) << daos_sys::OID_FMT_TYPE_SHIFT;
    oid
}
