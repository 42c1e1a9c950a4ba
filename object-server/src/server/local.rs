//! The arena of an in-process server, used directly by its owner: puts copy
//! the payload parts straight into a reserved slot of registered memory, gets
//! hand out the slot itself (pinned) as `Bytes`.

use std::sync::Arc;

use bytes::Bytes;
use proxy_core::Payload;

use super::Shared;
use crate::arena::{ReserveError, reserve_unlocked};
use crate::layout;
use crate::memory::PinnedSlice;
use crate::proto::{Loc, Stats};

#[derive(Clone, Debug)]
pub(crate) struct Local(Arc<Shared>);

/// A pinned object of the local arena, handed out as `Bytes` without a copy.
struct Pinned {
    shared: Arc<Shared>,
    loc: Loc,
    slice: Option<PinnedSlice>,
}

impl AsRef<[u8]> for Pinned {
    fn as_ref(&self) -> &[u8] {
        self.slice.as_ref().map_or(&[], PinnedSlice::as_slice)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        drop(self.slice.take());
        self.shared.arena.lock().end_read(&self.loc);
    }
}

impl Local {
    pub(super) fn new(shared: Arc<Shared>) -> Local {
        Local(shared)
    }

    /// The server instance.
    pub(crate) fn instance(&self) -> u64 {
        self.0.instance
    }

    /// Store `data`: one copy, from the caller's parts into the reserved slot.
    pub(crate) fn put(&self, data: &Payload) -> Result<Loc, ReserveError> {
        let len = data.len() as u64;
        let phase = layout::payload_phase(data);
        let mut r = reserve_unlocked(&self.0.arena, len, Some(phase))?;
        r.writer.copy_parts(data.parts());
        self.0.arena.lock().commit(&r.loc);
        Ok(r.loc)
    }

    /// The object's bytes (the slot itself, pinned until the `Bytes` is dropped).
    pub(crate) fn get(&self, loc: &Loc) -> Option<Bytes> {
        let slice = self.0.arena.lock().begin_read(loc)?;
        Some(Bytes::from_owner(Pinned {
            shared: self.0.clone(),
            loc: *loc,
            slice: Some(slice),
        }))
    }

    /// Statistics.
    pub(crate) fn stats(&self) -> Stats {
        self.0.stats()
    }

    /// Whether the object is stored.
    pub(crate) fn exists(&self, loc: &Loc) -> bool {
        self.0.arena.lock().exists(loc)
    }

    /// Remove the object (freed when the last pinned `Bytes` is dropped).
    pub(crate) fn evict(&self, loc: &Loc) {
        self.0.arena.lock().evict(loc);
    }
}
