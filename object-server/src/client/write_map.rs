//! Writable mappings of a same-node server's segments, for puts that copy
//! into their reserved slots themselves (see `mapped_put.rs`): what a peer
//! holds, and how a segment is mapped writable.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::Mutex;
use proxy_core::mem::Mmap;

use crate::memory::SysvAttach;
use crate::proto::{SegmentInfo, ShmSegment};

/// A segment mapped writable: the mapping, and where the segment starts in it.
pub(super) struct WriteMap {
    view: View,
    pub(super) delta: usize,
    pub(super) len: usize,
}

enum View {
    File(Mmap),
    SysV(SysvAttach),
}

impl WriteMap {
    pub(super) fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        match &mut self.view {
            View::File(m) => m.as_mut_slice(),
            View::SysV(a) => a.as_mut_slice(),
        }
    }
}

/// The writable mappings of one same-node peer.
#[derive(Default)]
pub(crate) struct WriteMaps {
    /// Set when a segment could not be mapped writable: puts use the fabric.
    pub(super) off: AtomicBool,
    pub(super) maps: Mutex<HashMap<u32, Arc<Mutex<WriteMap>>>>,
}

/// Map segment `info` of server process `pid` writable, after checking it is
/// the file the server named.
pub(super) fn map_writable(pid: u32, info: &SegmentInfo) -> io::Result<WriteMap> {
    let len = usize::try_from(info.len).map_err(io::Error::other)?;
    match info.shm {
        Some(ShmSegment::File {
            fd,
            ino,
            dev,
            offset,
        }) => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/{pid}/fd/{fd}"))?;
            let meta = f.metadata()?;
            if meta.ino() != ino || meta.dev() != dev || meta.len() < offset + info.len {
                return Err(io::Error::other(
                    "the server's segment file is not the one it named",
                ));
            }
            let delta = usize::try_from(offset).map_err(io::Error::other)?;
            Ok(WriteMap {
                view: View::File(Mmap::shared(&f, delta + len, false)?),
                delta,
                len,
            })
        }
        Some(ShmSegment::SysV { shmid, offset }) => {
            let delta = usize::try_from(offset).map_err(io::Error::other)?;
            Ok(WriteMap {
                view: View::SysV(SysvAttach::attach_writable(shmid, pid, offset + info.len)?),
                delta,
                len,
            })
        }
        None => Err(io::Error::other("the segment is not in shared memory")),
    }
}
