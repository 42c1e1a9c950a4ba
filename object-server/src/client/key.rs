//! The key of an object on an object server.

use serde::{Deserialize, Serialize};

use crate::proto::Loc;

/// The typed key of an object (encoded into a [`proxy_core::Key`] with
/// postcard, ~40 bytes). It names the object, not a transport: a reader may
/// use any transport the server offers. It grants nothing by itself: the
/// server checks the secret of every connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// `host:port` of the owning server's control plane.
    pub server: String,
    /// The server instance that stored it (a restarted server has another).
    pub instance: u64,
    /// Segment id.
    pub seg: u32,
    /// Slot offset in the segment.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
    /// Object id.
    pub id: u64,
}

impl ObjectKey {
    pub(crate) fn new(server: &str, instance: u64, loc: Loc) -> ObjectKey {
        ObjectKey {
            server: server.to_string(),
            instance,
            seg: loc.seg,
            offset: loc.offset,
            len: loc.len,
            id: loc.id,
        }
    }

    pub(crate) fn loc(&self) -> Loc {
        Loc {
            seg: self.seg,
            offset: self.offset,
            len: self.len,
            id: self.id,
        }
    }
}
