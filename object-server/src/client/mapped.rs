//! Same-node gets without a copy: a reader on the server's node maps each
//! segment's shared memory once (read-only; the chunks an object spans are
//! populated when a get first hands it out), pins the objects it
//! reads, and hands out `Bytes` that point straight into the mapping;
//! dropping the last of them unpins. A pin is a word of the pin page of the
//! reader's pin connection (no request), or, when the page is full or the
//! server has none, a `Pin` request on that connection. Objects under
//! [`MAPPED_COPY_BELOW`] are copied out of the mapping instead (no pin),
//! checked as a one-sided get is.
//!
//! Guarantees (see the crate README, "Same-node reads without a copy"):
//! - A pinned object's slot is not reused: an evict hides the object at once
//!   (new gets: `None`) and frees the slot after the last unpin.
//! - Pins belong to the pin connection; the server forgets them when it
//!   closes, so a reader that dies leaks nothing. The connection stays open
//!   while any `Bytes` pinned on it lives (each holds it), so a live `Bytes`
//!   is never unprotected.
//! - The mapping outlives the server: bytes a reader holds stay readable and
//!   unchanged after the server dies; the next get is an error (or `None`
//!   for a restarted server's old keys), never other bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use crate::stream::Conn;
use bytes::Bytes;
use parking_lot::Mutex;
use proxy_core::mem::Mmap;

use super::key::ObjectKey;
use crate::layout;
use crate::memory::{PIN_SLOTS, PinWords, SysvAttach, copy_shared};
use crate::proto::{self, Loc, Request, Response, SegmentInfo, ShmSegment};

/// This process's [`proto::host_id`] (boot id, PID and IPC namespaces), read once.
pub(crate) static HOST_ID: LazyLock<String> = LazyLock::new(proto::host_id);

/// Locations per pin request (keeps frames well under `proto::MAX_FRAME`).
pub(crate) const PIN_CHUNK: usize = 4096;

/// Objects smaller than this are copied out of the mapping (checked as a
/// one-sided get is: header and trailer, then the header again) instead of
/// pinned: copying 64 KiB costs less than the pin's round trip, and needs no
/// server at all.
pub const MAPPED_COPY_BELOW: u64 = 64 << 10;

/// Zero-copy state of a peer on this node.
#[derive(Default)]
pub(crate) struct MappedPeer {
    /// Cleared when a segment cannot be mapped here (another PID namespace,
    /// no permission, a server with private segments): gets copy from then on.
    usable: AtomicBoolTrue,
    /// Mapped segments (`None`: the segment is gone).
    pub(super) maps: Mutex<HashMap<u32, Option<Arc<Mapping>>>>,
    /// The connection pins are taken on.
    pub(super) pins: Mutex<Option<Arc<PinConn>>>,
    /// Segments mapped writable for puts (see `write_map.rs`, `mapped_put.rs`).
    pub(super) writes: super::write_map::WriteMaps,
}

/// An `AtomicBool` that starts `true`.
pub(crate) struct AtomicBoolTrue(AtomicBool);

impl Default for AtomicBoolTrue {
    fn default() -> Self {
        AtomicBoolTrue(AtomicBool::new(true))
    }
}

impl MappedPeer {
    /// Whether gets from this peer still take the mapped path.
    pub(crate) fn usable(&self) -> bool {
        self.usable.0.load(Ordering::Relaxed)
    }

    pub(super) fn disable(&self) {
        self.usable.0.store(false, Ordering::Relaxed);
    }
}

/// A control connection holding pins, shared by every `Bytes` pinned on it
/// (it closes, releasing them all on the server, when the last is dropped).
pub(crate) struct PinConn {
    /// The connection's pin page (`None`: pins are requests).
    pub(super) page: Option<ClientPage>,
    conn: Mutex<SessionConn>,
    /// Unpins not sent yet (a drop found the connection busy).
    deferred: Mutex<Vec<Loc>>,
    /// An exchange failed: the connection's framing is unknown, so nothing
    /// more is sent on it (its pins are released when it closes).
    broken: AtomicBool,
}

struct SessionConn {
    s: Conn,
    /// Encoded frames not sent yet (unpins written without blocking).
    out: Vec<u8>,
}

fn encode(out: &mut Vec<u8>, req: &Request) {
    // Infallible for these requests (postcard into a Vec).
    if let Ok(body) = postcard::to_allocvec(req) {
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
}

/// A pin page mapped here: the words, and which are free.
pub(crate) struct ClientPage {
    words: PinWords,
    free: Mutex<Vec<u32>>,
}

impl ClientPage {
    /// Ask for the connection's pin page on `s` and map it (server `pid`).
    pub(crate) fn open(s: &mut Conn, pid: u32) -> io::Result<ClientPage> {
        proto::write_frame(s, &Request::PinPage)?;
        let shm = match proto::read_frame::<Response>(s)? {
            Some(Response::PinPage(Some(shm))) => shm,
            other => {
                return Err(io::Error::other(format!("no pin page: {other:?}")));
            }
        };
        let ShmSegment::File { fd, ino, dev, .. } = shm else {
            return Err(io::Error::other("a pin page is a file"));
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/fd/{fd}"))?;
        let meta = f.metadata()?;
        if meta.ino() != ino || meta.dev() != dev || meta.len() < (PIN_SLOTS * 8) as u64 {
            return Err(io::Error::other(
                "the pin page is not the one the server named",
            ));
        }
        Ok(ClientPage {
            words: PinWords::open(&f)?,
            free: Mutex::new((0..PIN_SLOTS as u32).rev().collect()),
        })
    }

    /// Hold object `id`: a free word, written (`None`: the page is full).
    pub(super) fn hold(&self, id: u64) -> Option<u32> {
        let slot = self.free.lock().pop()?;
        self.words.words()[slot as usize].store(id, Ordering::SeqCst);
        // The server zeroes a header, then reads the pages; we write the
        // page, then read the header: one of us sees the other's write.
        std::sync::atomic::fence(Ordering::SeqCst);
        Some(slot)
    }

    /// Let go (every read of the object happens before).
    pub(super) fn release(&self, slot: u32) {
        self.words.words()[slot as usize].store(0, Ordering::Release);
        self.free.lock().push(slot);
    }
}

impl PinConn {
    pub(super) fn new(s: Conn, page: Option<ClientPage>) -> PinConn {
        PinConn {
            page,
            conn: Mutex::new(SessionConn { s, out: Vec::new() }),
            deferred: Mutex::new(Vec::new()),
            broken: AtomicBool::new(false),
        }
    }

    pub(super) fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    fn take_deferred(&self, c: &mut SessionConn) {
        let d = std::mem::take(&mut *self.deferred.lock());
        for chunk in d.chunks(PIN_CHUNK) {
            encode(&mut c.out, &Request::Unpin(chunk.to_vec()));
        }
    }

    /// Pin `locs`: whether each is stored (and now pinned through this connection).
    pub(super) fn pin(&self, locs: &[Loc]) -> io::Result<Vec<bool>> {
        let r = {
            let mut c = self.conn.lock();
            self.exchange(&mut c, locs)
        };
        if r.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
        self.flush_deferred();
        r
    }

    fn exchange(&self, c: &mut SessionConn, locs: &[Loc]) -> io::Result<Vec<bool>> {
        if self.broken() {
            return Err(io::Error::other("pin connection failed earlier"));
        }
        self.take_deferred(c);
        encode(&mut c.out, &Request::Pin(locs.to_vec()));
        let out = std::mem::take(&mut c.out);
        c.s.write_all(&out)?;
        match proto::read_frame::<Response>(&mut c.s)? {
            Some(Response::Pinned(v)) if v.len() == locs.len() => Ok(v),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected answer to a pin: {other:?}"),
            )),
        }
    }

    /// Release one pin (from a `Bytes`' drop: never blocks on the network).
    pub(super) fn unpin(&self, loc: Loc) {
        self.deferred.lock().push(loc);
        self.flush_deferred();
    }

    /// Send deferred unpins without blocking, if nobody else is using the
    /// connection (who is sends them with its next exchange, or after it).
    fn flush_deferred(&self) {
        if self.broken() || self.deferred.lock().is_empty() {
            return;
        }
        let Some(mut c) = self.conn.try_lock() else {
            return;
        };
        self.take_deferred(&mut c);
        if c.s.set_nonblocking(true).is_err() {
            return;
        }
        let mut sent = 0;
        let c = &mut *c;
        let failed = loop {
            if sent == c.out.len() {
                break false;
            }
            match c.s.write(&c.out[sent..]) {
                Ok(0) => break true,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        c.out.drain(..sent);
        if c.s.set_nonblocking(false).is_err() || failed {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// Pages are faulted in by chunks of this many bytes of a segment, the first
/// time a get hands out an object in them.
const POPULATE_CHUNK: usize = 2 << 20;

/// A segment of the server mapped here, read-only. Mapping it faults no page
/// in (a fresh reader's first get of a small object costs one page, not the
/// segment's 256 MiB); a get that hands out an object populates the chunks it
/// spans once ([`Mapping::populate`]), so readers of it do not fault page by
/// page.
pub(crate) struct Mapping {
    view: View,
    /// Where the segment starts in the view.
    delta: usize,
    len: usize,
    /// One bit per [`POPULATE_CHUNK`] of the segment: populated already.
    populated: Box<[AtomicU64]>,
}

enum View {
    File(Mmap),
    SysV(SysvAttach),
}

impl Mapping {
    pub(super) fn as_slice(&self) -> &[u8] {
        let all = match &self.view {
            View::File(m) => m.as_slice(),
            View::SysV(a) => a.as_slice(),
        };
        &all[self.delta..self.delta + self.len]
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn new(view: View, delta: usize, len: usize) -> Mapping {
        // Map the server's huge pages as such, where the system has them.
        let all = match &view {
            View::File(m) => m.as_slice(),
            View::SysV(a) => a.as_slice(),
        };
        crate::hugepages::advise(
            all.as_ptr().cast_mut(),
            all.len(),
            crate::hugepages::Backing::Shmem,
        );
        let chunks = len.div_ceil(POPULATE_CHUNK);
        Mapping {
            view,
            delta,
            len,
            populated: (0..chunks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Fault in the pages of `[start, start + len)` of the segment that no
    /// earlier get populated, a run of chunks per call.
    pub(super) fn populate(&self, start: usize, len: usize) {
        if len == 0 || start >= self.len {
            return;
        }
        let first = start / POPULATE_CHUNK;
        let last = (start + len - 1).min(self.len - 1) / POPULATE_CHUNK;
        let mut run: Option<usize> = None; // first chunk of a run to populate
        for c in first..=last + 1 {
            let todo = c <= last && {
                let (w, b) = (c / 64, 1u64 << (c % 64));
                self.populated[w].load(Ordering::Relaxed) & b == 0
            };
            match (todo, run) {
                (true, None) => run = Some(c),
                (false, Some(r)) => {
                    let (off, end) = (r * POPULATE_CHUNK, (c * POPULATE_CHUNK).min(self.len));
                    match &self.view {
                        View::File(m) => m.populate_read(self.delta + off, end - off),
                        View::SysV(a) => a.populate_read(self.delta + off, end - off),
                    }
                    for d in r..c {
                        self.populated[d / 64].fetch_or(1 << (d % 64), Ordering::Relaxed);
                    }
                    run = None;
                }
                _ => {}
            }
        }
    }

    /// Chunks populated so far (tests).
    #[cfg(test)]
    fn populated_chunks(&self) -> u32 {
        self.populated
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum()
    }
}

/// The owner of a `Bytes` handed out by a mapped get: the mapping and the
/// pin, released on drop.
pub(crate) struct MappedObject {
    pub(crate) map: Arc<Mapping>,
    pub(crate) pins: Arc<PinConn>,
    /// The pin-page word holding it (`None`: pinned by a request).
    pub(crate) slot: Option<u32>,
    pub(crate) loc: Loc,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl AsRef<[u8]> for MappedObject {
    fn as_ref(&self) -> &[u8] {
        &self.map.as_slice()[self.start..self.start + self.len]
    }
}

impl Drop for MappedObject {
    fn drop(&mut self) {
        match (self.slot, &self.pins.page) {
            (Some(slot), Some(page)) => page.release(slot),
            _ => self.pins.unpin(self.loc),
        }
    }
}

/// Map segment `info` of the server process `pid` from its shared memory,
/// after checking it is what the server named.
pub(crate) fn map_segment(pid: u32, info: &SegmentInfo, shm: &ShmSegment) -> io::Result<Mapping> {
    let len = usize::try_from(info.len).map_err(io::Error::other)?;
    match *shm {
        ShmSegment::File {
            fd,
            ino,
            dev,
            offset,
        } => {
            let f = File::open(format!("/proc/{pid}/fd/{fd}"))?;
            let meta = f.metadata()?;
            if meta.ino() != ino || meta.dev() != dev || meta.len() < offset + info.len {
                return Err(io::Error::other(
                    "the server's segment file is not the one it named",
                ));
            }
            let delta = usize::try_from(offset).map_err(io::Error::other)?;
            Ok(Mapping::new(
                View::File(Mmap::file_lazy(&f, delta + len)?),
                delta,
                len,
            ))
        }
        ShmSegment::SysV { shmid, offset } => {
            let delta = usize::try_from(offset).map_err(io::Error::other)?;
            let a = SysvAttach::attach(shmid, pid, offset + info.len)?;
            Ok(Mapping::new(View::SysV(a), delta, len))
        }
    }
}

/// Whether the mapping holds object `k` now: its header and trailer.
pub(crate) fn holds_object(map: &Mapping, k: &ObjectKey) -> bool {
    let start = k.offset as usize;
    let len = k.len as usize;
    let s = map.as_slice();
    let mut h = [0u8; layout::HEADER];
    let mut t = [0u8; layout::TRAILER];
    copy_shared(&s[start..start + layout::HEADER], &mut h);
    let at = start + layout::HEADER + len;
    copy_shared(&s[at..at + layout::TRAILER], &mut t);
    layout::header_matches(&h, k.id, k.len) && layout::trailer_matches(&t, k.id)
}

/// A small object copied out of the mapping, checked as a one-sided get is
/// (`None`: not committed, evicted, or reused meanwhile).
pub(crate) fn copy_checked(map: &Mapping, k: &ObjectKey) -> Option<Bytes> {
    let start = k.offset as usize;
    let len = k.len as usize;
    let wire = &map.as_slice()[start..start + layout::HEADER + len + layout::TRAILER];
    let mut aligned = proxy_core::mem::AlignedBuf::zeroed(wire.len());
    let buf = aligned.as_mut_slice();
    copy_shared(wire, buf);
    if !layout::header_matches(buf, k.id, k.len)
        || !layout::trailer_matches(&buf[layout::HEADER + len..], k.id)
    {
        return None;
    }
    // The header still names the object after the payload was copied: no
    // evict started before the copy ended (see `layout`).
    std::sync::atomic::fence(Ordering::Acquire);
    let mut h = [0u8; layout::HEADER];
    copy_shared(&wire[..layout::HEADER], &mut h);
    if !layout::header_matches(&h, k.id, k.len) {
        return None;
    }
    Some(
        aligned
            .into_bytes()
            .slice(layout::HEADER..layout::HEADER + len),
    )
}

/// What a mapped get of one key came to.
pub(crate) enum Mapped {
    /// The object (or `None`: not stored).
    Done(Option<Bytes>),
    /// Not on the mapped path: copy it.
    Copy,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of the mapping that starts at `addr` (`/proc/self/smaps`).
    fn rss_of(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut in_it = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, _)) = range.split_once('-')
                && let Ok(lo) = usize::from_str_radix(lo, 16)
                && range.contains('-')
                && !line.starts_with(|c: char| c.is_ascii_uppercase())
            {
                in_it = lo == addr;
                continue;
            }
            if in_it && let Some(kb) = line.strip_prefix("Rss:") {
                return kb
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<usize>()
                    .unwrap()
                    * 1024;
            }
        }
        panic!("no mapping at {addr:#x}");
    }

    #[test]
    fn mapping_populates_only_what_gets_hand_out() {
        const MIB: usize = 1 << 20;
        let path = std::env::temp_dir().join(format!("ps-populate-{}", std::process::id()));
        let mut f = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.write_all(&vec![1u8; 32 * MIB]).unwrap();
        let map = Mapping::new(
            View::File(Mmap::file_lazy(&f, 32 * MIB).unwrap()),
            0,
            32 * MIB,
        );
        std::fs::remove_file(&path).unwrap();
        let addr = map.as_slice().as_ptr() as usize;
        assert_eq!(rss_of(addr), 0, "mapping the segment faulted pages in");
        // An object at 3 MiB of 1 MiB: its chunk (2..4 MiB) only.
        map.populate(3 * MIB, MIB);
        assert_eq!(map.populated_chunks(), 1);
        assert_eq!(rss_of(addr), 2 * MIB);
        // Across a chunk boundary and to the end.
        map.populate(3 * MIB, 2 * MIB);
        assert_eq!(map.populated_chunks(), 2);
        assert_eq!(rss_of(addr), 4 * MIB);
        map.populate(30 * MIB + 5, 10 * MIB); // clipped to the segment
        assert_eq!(map.populated_chunks(), 3);
        assert_eq!(rss_of(addr), 6 * MIB);
        map.populate(0, 32 * MIB);
        assert_eq!(map.populated_chunks(), 16);
        assert_eq!(rss_of(addr), 32 * MIB);
        map.populate(0, 0);
        map.populate(64 * MIB, 1);
        assert_eq!(map.populated_chunks(), 16);
    }
}
