//! The object server's arena: registered, pre-faulted segments that grow up
//! to a memory limit, with a first-fit allocator per segment. Every segment
//! is registered with every transport of the server, so an object put over
//! one transport is read over any other.
//!
//! Segments that become empty stay mapped (and registered, and faulted in, in
//! this process and in every reader that mapped them) for the next objects, up
//! to `retain` bytes of empty segments: mapping, pre-faulting and registering a
//! segment costs about as much as writing it twice, and readers would have to
//! fault in a new segment's pages again. Empty segments are unmapped only when
//! a new segment would not fit under the memory limit otherwise (largest first,
//! and only if that makes the new one fit), or beyond `retain`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::cooling::Cooling;
use crate::layout;
use crate::memory::{Memory, PinWords, PinnedSlice, SlotWriter};
use crate::proto::{Loc, SegmentInfo, Stats};
use crate::transport::{Access, Registration, ServerTransport};

/// Segment mapping granularity (2 MiB: huge-page friendly).
const GRANULE: u64 = 2 << 20;

struct Segment {
    /// One registration per transport of the server, in the server's order
    /// (declared first: dropped, so deregistered, before the memory).
    regs: Vec<Box<dyn Registration>>,
    mem: Arc<Memory>,
    /// Free ranges: offset -> length (coalesced).
    free: BTreeMap<u64, u64>,
    used: u64,
    /// Where readers on this node map it from (`None`: private).
    shm: Option<crate::proto::ShmSegment>,
}

impl Segment {
    fn alloc(&mut self, size: u64) -> Option<u64> {
        let (&off, &len) = self.free.iter().find(|&(_, &l)| l >= size)?;
        self.free.remove(&off);
        if len > size {
            self.free.insert(off + size, len - size);
        }
        self.used += size;
        Some(off)
    }

    fn release(&mut self, off: u64, size: u64) {
        self.used -= size;
        let (mut start, mut len) = (off, size);
        if let Some((&p, &pl)) = self.free.range(..off).next_back() {
            if p + pl == off {
                self.free.remove(&p);
                start = p;
                len += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(off + size)) {
            self.free.remove(&(off + size));
            len += nl;
        }
        self.free.insert(start, len);
    }
}

struct Obj {
    loc: Loc,
    /// The allocated range (it holds the slot, which may start later in it).
    start: u64,
    slot: u64,
    /// Stream-path reads in progress.
    readers: u32,
    /// Evicted while being read: freed when the last reader finishes.
    evicted: bool,
}

/// A reserved slot: where the object will be, and exclusive write access to
/// its payload until [`Arena::commit`] or [`Arena::abort`].
#[derive(Debug)]
pub struct Reservation {
    /// The object's location (its key material).
    pub loc: Loc,
    /// The payload (after the header), writable by the holder alone.
    pub writer: SlotWriter,
}

/// Why a reservation was refused.
#[derive(Debug)]
pub enum ReserveError {
    /// The object does not fit (alone, or with what is stored): nothing stored.
    Full {
        /// Slot size asked for.
        size: u64,
        /// Bytes in use.
        used: u64,
        /// Limit.
        limit: u64,
    },
    /// Mapping or registering a new segment failed.
    Map(proxy_core::Error),
}

/// What [`Arena::try_reserve`] got.
pub(crate) enum Reserved {
    /// The slot.
    Now(Reservation),
    /// Only slots still cooling would fit: try again after this long.
    After(Duration),
}

/// `Arena::reserve` on the arena behind `arena`, waiting for cooling slots
/// with the lock released: other connections' gets, commits and puts that fit
/// go on meanwhile instead of stalling up to `REUSE_GRACE` behind this one.
pub(crate) fn reserve_unlocked(
    arena: &Mutex<Arena>,
    len: u64,
    phase: Option<u64>,
) -> Result<Reservation, ReserveError> {
    loop {
        let got = arena.lock().try_reserve(len, phase)?;
        match got {
            Reserved::Now(r) => return Ok(r),
            Reserved::After(wait) => std::thread::sleep(wait),
        }
    }
}

impl std::fmt::Display for ReserveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReserveError::Full { size, used, limit } => write!(
                f,
                "full: {used} of {limit} bytes in use, the object needs {size} more"
            ),
            ReserveError::Map(e) => write!(f, "cannot map a segment: {e}"),
        }
    }
}

/// Objects in registered memory.
pub struct Arena {
    transports: Arc<[Box<dyn ServerTransport>]>,
    segment_size: u64,
    limit: u64,
    /// Bytes of empty segments kept mapped for reuse.
    retain: u64,
    prefault: bool,
    /// Segments are shared-memory files that readers on this node may map.
    shared: bool,
    /// Segments are allocated by the first transport (until one of its
    /// allocations turns out private while `shared` is asked for).
    fabric_alloc: bool,
    segments: BTreeMap<u32, Segment>,
    next_seg: u32,
    objects: HashMap<u64, Obj>,
    /// Objects reserved so far; an object's id is this count enciphered.
    next_id: u64,
    ids: ObjectIds,
    registered: u64,
    /// Pins of same-node readers held now (requested on their connections).
    pins: u64,
    /// Pin pages of same-node readers (one per pin connection).
    pin_pages: Vec<Arc<PinWords>>,
    /// Evicted objects whose slots a pin page still holds.
    deferred: Vec<u64>,
    /// Freed slots not yet reusable (see `cooling.rs`).
    cooling: Cooling,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({:?})", self.stats())
    }
}

/// Object ids that cannot be guessed: the n-th object's id is n
/// enciphered with a 64-bit keyed permutation (a 4-round Feistel network
/// whose round function is SipHash-2-4 under a random key of this server
/// instance). A permutation, so ids are never reused within an instance; a
/// key's id is what lets a request (exists, evict, a stream read, a pin)
/// name its object, so a key forged without it names nothing.
#[derive(Debug)]
pub(crate) struct ObjectIds {
    keys: [(u64, u64); 4],
}

impl ObjectIds {
    pub(crate) fn new() -> ObjectIds {
        let mut keys = [(0, 0); 4];
        for k in &mut keys {
            *k = (crate::auth::random_u64(), crate::auth::random_u64());
        }
        ObjectIds { keys }
    }

    fn round(&self, r: usize, half: u32) -> u32 {
        use std::hash::Hasher;
        #[allow(deprecated)] // SipHash-2-4 itself, with keys of our own
        let mut h = std::hash::SipHasher::new_with_keys(self.keys[r].0, self.keys[r].1);
        h.write_u32(half);
        h.finish() as u32
    }

    /// The id of the `n`-th object.
    pub(crate) fn id(&self, n: u64) -> u64 {
        let (mut l, mut r) = ((n >> 32) as u32, n as u32);
        for i in 0..self.keys.len() {
            (l, r) = (r, l ^ self.round(i, r));
        }
        (u64::from(l) << 32) | u64::from(r)
    }
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

impl Arena {
    /// An arena that maps `segment_size`-byte segments (at least one at once)
    /// up to `limit` bytes in total, keeping up to `retain` bytes of empty
    /// segments mapped for reuse (besides one default-sized segment), each
    /// registered with every one of `transports` (at least one). With
    /// `shared`, segments are shared-memory files that readers on this node
    /// may map (the transports register them as they are).
    pub fn new(
        transports: Arc<[Box<dyn ServerTransport>]>,
        segment_size: u64,
        limit: u64,
        retain: u64,
        prefault: bool,
        shared: bool,
    ) -> proxy_core::Result<Arena> {
        assert!(!transports.is_empty(), "an arena needs a transport");
        let segment_size = round_up(segment_size.max(GRANULE), GRANULE);
        let mut a = Arena {
            transports,
            segment_size,
            limit: limit.max(segment_size),
            retain,
            prefault,
            shared,
            fabric_alloc: true,
            segments: BTreeMap::new(),
            next_seg: 0,
            objects: HashMap::new(),
            next_id: 1,
            ids: ObjectIds::new(),
            registered: 0,
            pins: 0,
            pin_pages: Vec::new(),
            deferred: Vec::new(),
            cooling: Cooling::default(),
        };
        a.add_segment(segment_size)?;
        Ok(a)
    }

    fn add_segment(&mut self, size: u64) -> proxy_core::Result<u32> {
        // The fabric's own allocation when it has one (e.g. UCX's shared
        // memory, which its peers on the node read fastest), else a shared
        // file (zero copy) or private memory.
        let fabric = if self.fabric_alloc {
            self.transports[0].allocate(size as usize, self.prefault)?
        } else {
            None
        };
        // Where same-node readers map it from (found once). A fabric's
        // allocation that is private (e.g. UCX over TCP only) is not used
        // for zero copy servers (from the first segment on).
        let mut shm = fabric.as_ref().and_then(|m| m.shm());
        let fabric = match fabric {
            Some(_) if self.shared && shm.is_none() => {
                self.fabric_alloc = false;
                None
            }
            f => f,
        };
        let mem = match fabric {
            Some(mut m) => {
                m.advise_huge_pages(shm.is_some());
                m
            }
            None if self.shared => {
                let name = format!("proxystore-segment-{}", self.next_seg);
                let m = Memory::shared(size as usize, self.prefault, &name)
                    .map_err(|e| proxy_core::Error::io("map a shared segment", e))?;
                shm = m.shm();
                m
            }
            None => Memory::anonymous(size as usize, self.prefault)
                .map_err(|e| proxy_core::Error::io("map a segment", e))?,
        };
        if !self.shared {
            shm = None;
        }
        let regs = self
            .transports
            .iter()
            .map(|t| t.register(&mem))
            .collect::<proxy_core::Result<Vec<_>>>()?;
        let len = mem.len() as u64;
        let id = self.next_seg;
        self.next_seg += 1;
        self.registered += len;
        let mut free = BTreeMap::new();
        free.insert(0, len);
        self.segments.insert(
            id,
            Segment {
                mem: Arc::new(mem),
                regs,
                free,
                used: 0,
                shm,
            },
        );
        Ok(id)
    }

    /// Reserve a slot for `len` payload bytes and write its trailer. The
    /// object becomes visible only at [`Arena::commit`], which writes its
    /// header. With `phase`, an object of at least [`layout::PHASED`] bytes
    /// gets its payload at that offset within a page (see there).
    ///
    /// When only slots still cooling (see `cooling.rs`) would fit it, this
    /// sleeps until they cool (at most `REUSE_GRACE`); an arena shared
    /// behind a lock reserves with [`reserve_unlocked`] instead (the
    /// server never sleeps holding it: this is for tests).
    #[cfg(test)]
    pub fn reserve(&mut self, len: u64, phase: Option<u64>) -> Result<Reservation, ReserveError> {
        loop {
            match self.try_reserve(len, phase)? {
                Reserved::Now(r) => return Ok(r),
                Reserved::After(wait) => std::thread::sleep(wait),
            }
        }
    }

    /// `Arena::reserve` without the sleep: when only cooling slots would
    /// fit, how long until the oldest has cooled.
    pub(crate) fn try_reserve(
        &mut self,
        len: u64,
        phase: Option<u64>,
    ) -> Result<Reserved, ReserveError> {
        self.reclaim();
        let phase = phase.filter(|_| len >= layout::PHASED);
        let pad = if phase.is_some() { layout::PAGE } else { 0 };
        let Some(size) = layout::slot_len(len).and_then(|s| s.checked_add(pad)) else {
            return Err(ReserveError::Full {
                size: u64::MAX,
                used: self.used(),
                limit: self.limit,
            });
        };
        let (seg, start) = loop {
            if let Some(x) = self.fit(size) {
                break x;
            }
            // Freed slots still cooling come back within REUSE_GRACE: wait
            // for them rather than grow (or refuse).
            if !self.cooling.is_empty() {
                let wait = self.cooling.until_oldest();
                if wait.is_zero() {
                    self.settle();
                    continue;
                }
                return Ok(Reserved::After(wait));
            }
            let new_size = round_up(size.max(self.segment_size), GRANULE);
            if self.registered + new_size > self.limit && !self.make_room(new_size) {
                return Err(ReserveError::Full {
                    size,
                    used: self.used(),
                    limit: self.limit,
                });
            }
            let s = self.add_segment(new_size).map_err(ReserveError::Map)?;
            let o = self
                .segments
                .get_mut(&s)
                .and_then(|g| g.alloc(size))
                .expect("fresh segment fits");
            break (s, o);
        };
        // The slot starts where its payload gets the asked-for page phase.
        let offset = match phase {
            Some(p) => {
                let want = (p + layout::PAGE - layout::HEADER as u64) % layout::PAGE;
                start + (want + layout::PAGE - start % layout::PAGE) % layout::PAGE
            }
            None => start,
        };
        let id = loop {
            let id = self.ids.id(self.next_id);
            self.next_id += 1;
            // 0 is never an object's (a zeroed header names none).
            if id != 0 {
                break id;
            }
        };
        let loc = Loc {
            seg,
            offset,
            len,
            id,
        };
        // [start, start + size) was just reserved: nobody else writes it, and
        // the slot [offset, offset + wire length) lies inside it (offset -
        // start < pad). The header is written at commit.
        let mem = self.segments[&seg].mem.clone();
        mem.write(offset + layout::HEADER as u64 + len, &layout::trailer(id));
        let writer = SlotWriter::new(mem, offset + layout::HEADER as u64, len as usize);
        self.objects.insert(
            id,
            Obj {
                loc,
                start,
                slot: size,
                readers: 0,
                evicted: true, // invisible until commit
            },
        );
        Ok(Reserved::Now(Reservation { loc, writer }))
    }

    /// A free range of `size` bytes in the segments mapped now: first fit
    /// over the segments in order, except that an object larger than a
    /// default segment takes the smallest segment that holds it (so a
    /// retained 1 GiB segment is not split by a 300 MiB object when a
    /// 400 MiB one is free).
    fn fit(&mut self, size: u64) -> Option<(u32, u64)> {
        if size > self.segment_size {
            let best = self
                .segments
                .iter()
                .filter(|(_, g)| g.free.values().any(|&l| l >= size))
                .min_by_key(|(_, g)| g.free.values().copied().filter(|&l| l >= size).min())
                .map(|(&s, _)| s);
            best.and_then(|s| {
                self.segments
                    .get_mut(&s)
                    .and_then(|g| g.alloc(size))
                    .map(|o| (s, o))
            })
        } else {
            self.segments
                .iter_mut()
                .find_map(|(&s, seg)| seg.alloc(size).map(|o| (s, o)))
        }
    }

    /// Make a reserved object visible (after its payload was written): write
    /// its header, after which one-sided readers take it.
    pub fn commit(&mut self, loc: &Loc) {
        let Some(o) = self.objects.get_mut(&loc.id).filter(|o| o.loc == *loc) else {
            return;
        };
        o.evicted = false;
        if let Some(seg) = self.segments.get(&loc.seg) {
            // The payload is complete before the header names the object.
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            seg.mem.write(loc.offset, &layout::header(loc.id, loc.len));
        }
    }

    /// Give up a reservation (the payload could not be received).
    pub fn abort(&mut self, loc: &Loc) {
        self.free(loc.id);
    }

    fn lookup(&self, loc: &Loc) -> Option<&Obj> {
        self.objects
            .get(&loc.id)
            .filter(|o| !o.evicted && o.loc == *loc)
    }

    /// Whether the object is stored.
    pub fn exists(&self, loc: &Loc) -> bool {
        self.lookup(loc).is_some()
    }

    /// Remove the object (deferred while stream reads are in progress).
    pub fn evict(&mut self, loc: &Loc) {
        if self.lookup(loc).is_none() {
            return;
        }
        let o = self.objects.get_mut(&loc.id).expect("looked up");
        o.evicted = true;
        if o.readers == 0 {
            self.release(loc);
        } else {
            // Pinned (stream read, owner's `Bytes`): one-sided readers must see
            // it gone now; the slot itself is released by the last `end_read`.
            self.hide(loc);
        }
    }

    /// Free an evicted object's slot, unless a reader's pin page holds it:
    /// hide it first, then look (a reader writes its pin, then checks the
    /// header: one of the two sees the other's write), else free it later.
    fn release(&mut self, loc: &Loc) {
        self.hide(loc);
        if self.pin_pages.iter().any(|p| p.holds(loc.id)) {
            if !self.deferred.contains(&loc.id) {
                self.deferred.push(loc.id);
            }
        } else {
            self.free(loc.id);
        }
    }

    /// Free the evicted objects no pin page holds any more, and reuse the
    /// slots that have cooled.
    pub(crate) fn reclaim(&mut self) {
        self.settle();
        if self.deferred.is_empty() {
            return;
        }
        for id in std::mem::take(&mut self.deferred) {
            let Some(o) = self.objects.get(&id) else {
                continue;
            };
            if o.readers == 0 && o.evicted {
                let loc = o.loc;
                self.release(&loc);
            }
        }
    }

    /// A reader's pin page (its connection is open).
    pub(crate) fn add_pin_page(&mut self, p: Arc<PinWords>) {
        self.pin_pages.push(p);
    }

    /// A reader's connection closed: its pins are gone.
    pub(crate) fn remove_pin_page(&mut self, p: &Arc<PinWords>) {
        self.pin_pages.retain(|q| !Arc::ptr_eq(q, p));
        self.reclaim();
    }

    /// Zero the object's header and trailer, so that one-sided readers see
    /// it as gone from now on (its payload may still be pinned by a reader).
    fn hide(&mut self, loc: &Loc) {
        let Some(seg) = self.segments.get_mut(&loc.seg) else {
            return;
        };
        // The slot is this object's until `release`; one-sided readers may
        // read it concurrently, which is why these are volatile stores, and
        // why readers re-check the header after their get. Pinned readers
        // only read the payload, which is left alone.
        seg.mem.zero_volatile(loc.offset, layout::HEADER);
        seg.mem.zero_volatile(
            loc.offset + layout::HEADER as u64 + loc.len,
            layout::TRAILER,
        );
        // Header/trailer zeroes are globally visible before the slot can be reused.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    fn free(&mut self, id: u64) {
        let Some(o) = self.objects.remove(&id) else {
            return;
        };
        self.hide(&o.loc);
        // Reused only after REUSE_GRACE (`settle`): a one-sided read that
        // began before the hide is over by then, or re-reads the header.
        self.cooling.push(o.loc.seg, o.start, o.slot);
    }

    /// Hand the slots that have cooled for `REUSE_GRACE` back to their
    /// segments.
    fn settle(&mut self) {
        let ready = self.cooling.ready();
        if ready.is_empty() {
            return;
        }
        for (seg, start, size) in ready {
            if let Some(s) = self.segments.get_mut(&seg) {
                s.release(start, size);
            }
        }
        self.trim();
    }

    /// Empty segments, largest first: (id, length).
    fn empty_segments(&self) -> Vec<(u32, u64)> {
        let mut empty: Vec<(u32, u64)> = self
            .segments
            .iter()
            .filter(|(_, s)| s.used == 0)
            .map(|(&i, s)| (i, s.mem.len() as u64))
            .collect();
        empty.sort_by_key(|&(i, l)| (std::cmp::Reverse(l), i));
        empty
    }

    fn unmap(&mut self, id: u32) {
        if let Some(s) = self.segments.remove(&id) {
            self.registered -= s.mem.len() as u64;
        }
    }

    /// Keep empty segments for reuse: one default-sized segment always, and
    /// others up to `retain` bytes (the largest are unmapped first beyond it).
    fn trim(&mut self) {
        let mut empty = self.empty_segments();
        if let Some(pos) = empty.iter().position(|&(_, l)| l == self.segment_size) {
            empty.remove(pos);
        }
        let mut kept: u64 = empty.iter().map(|&(_, l)| l).sum();
        for (i, len) in empty {
            if kept <= self.retain {
                break;
            }
            self.unmap(i);
            kept -= len;
        }
    }

    /// Unmap empty segments (largest first) until a new segment of `size`
    /// bytes fits under the limit; unmaps nothing if it would not fit anyway.
    fn make_room(&mut self, size: u64) -> bool {
        let empty = self.empty_segments();
        let freeable: u64 = empty.iter().map(|&(_, l)| l).sum();
        if self.registered - freeable + size > self.limit {
            return false;
        }
        for (i, _) in empty {
            if self.registered + size <= self.limit {
                break;
            }
            self.unmap(i);
        }
        true
    }

    /// Pin the object (a stream read, an owner's `Bytes`): its payload.
    pub(crate) fn begin_read(&mut self, loc: &Loc) -> Option<PinnedSlice> {
        self.lookup(loc)?;
        let seg = self.segments.get(&loc.seg)?;
        let pinned = PinnedSlice::new(
            seg.mem.clone(),
            loc.offset + layout::HEADER as u64,
            loc.len as usize,
        );
        self.objects.get_mut(&loc.id).expect("looked up").readers += 1;
        Some(pinned)
    }

    /// Pin the object for a same-node reader that maps its segment (released
    /// with [`Arena::end_read`]): `false` if it is not stored.
    pub(crate) fn pin(&mut self, loc: &Loc) -> bool {
        if self.lookup(loc).is_none() || !self.segments.contains_key(&loc.seg) {
            return false;
        }
        self.objects.get_mut(&loc.id).expect("looked up").readers += 1;
        self.pins += 1;
        true
    }

    /// Release a pin taken with [`Arena::pin`].
    pub(crate) fn unpin(&mut self, loc: &Loc) {
        if self.objects.get(&loc.id).is_some_and(|o| o.readers > 0) {
            self.pins = self.pins.saturating_sub(1);
            self.end_read(loc);
        }
    }

    /// Unpin after [`Arena::begin_read`].
    pub(crate) fn end_read(&mut self, loc: &Loc) {
        if let Some(o) = self.objects.get_mut(&loc.id) {
            o.readers -= 1;
            if o.readers == 0 && o.evicted {
                self.release(loc);
            }
        }
    }

    /// Address, length and the descriptor of transport `transport` (an
    /// index into the server's transports) granting `access`.
    pub fn segment(&self, seg: u32, transport: usize, access: Access) -> Option<SegmentInfo> {
        self.segments.get(&seg).map(|s| SegmentInfo {
            base: s.mem.as_ptr() as u64,
            len: s.mem.len() as u64,
            descriptor: s.regs[transport].descriptor(access).to_vec(),
            live: self.segments.keys().copied().collect(),
            shm: s.shm,
        })
    }

    /// Bytes of stored (and reserved) objects; slots still cooling are
    /// free already for this count, though not yet for reuse.
    fn used(&self) -> u64 {
        self.segments.values().map(|s| s.used).sum::<u64>() - self.cooling.bytes()
    }

    /// Statistics.
    pub fn stats(&self) -> Stats {
        Stats {
            objects: self.objects.values().filter(|o| !o.evicted).count() as u64,
            used: self.used(),
            registered: self.registered,
            limit: self.limit,
            segments: self.segments.len() as u64,
            clients: 0,
            pins: self.pins + self.pin_pages.iter().map(|p| p.count()).sum::<u64>(),
            ..Stats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Arena, ObjectIds, Reserved, reserve_unlocked};
    use crate::REUSE_GRACE;
    use crate::memory::Memory;
    use crate::transport::{Access, Registration, ServerTransport};
    use parking_lot::Mutex;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;
    use std::time::Instant;

    /// A transport that registers nothing (the arena's own logic only).
    struct NoFabric;
    struct NoRegistration;
    impl Registration for NoRegistration {
        fn descriptor(&self, _: Access) -> &[u8] {
            &[]
        }
    }
    impl ServerTransport for NoFabric {
        fn name(&self) -> &'static str {
            "none"
        }
        fn address(&self) -> &[u8] {
            &[]
        }
        fn register(&self, _: &Memory) -> proxy_core::Result<Box<dyn Registration>> {
            Ok(Box::new(NoRegistration))
        }
        fn enforces_read_only(&self) -> bool {
            false
        }
        fn progress(&self, _: &AtomicBool) {}
    }

    fn arena(limit: u64) -> Arena {
        let t: Arc<[Box<dyn ServerTransport>]> = Arc::new([Box::new(NoFabric) as _]);
        Arena::new(t, 2 << 20, limit, 0, false, false).unwrap()
    }

    /// An evicted object's slot is not handed out again within
    /// REUSE_GRACE (what lets fast one-sided gets skip the header re-read),
    /// and is after it; the evicted bytes count as free at once.
    #[test]
    fn freed_slots_are_reused_only_after_the_grace() {
        let mut a = arena(64 << 20);
        let first = a.reserve(1000, None).unwrap().loc;
        a.commit(&first);
        a.evict(&first);
        assert_eq!(a.stats().used, 0, "evicted bytes are not in use");
        let second = a.reserve(1000, None).unwrap().loc;
        assert_ne!(second.offset, first.offset, "reused within the grace");
        std::thread::sleep(REUSE_GRACE);
        let third = a.reserve(1000, None).unwrap().loc;
        assert_eq!(third.offset, first.offset, "first fit after the grace");
    }

    /// With no other room under the limit, a reservation waits for a
    /// cooling slot (no more than the grace) instead of failing or growing.
    #[test]
    fn a_full_arena_waits_for_the_grace() {
        let mut a = arena(2 << 20);
        let big = a.reserve(1 << 20, None).unwrap().loc;
        a.commit(&big);
        let t = Instant::now();
        a.evict(&big);
        let again = a.reserve(1 << 20, None).unwrap().loc;
        let waited = t.elapsed();
        assert_eq!(again.offset, big.offset);
        assert!(waited >= REUSE_GRACE, "reused after {waited:?}");
        assert!(waited < REUSE_GRACE * 50, "waited {waited:?}");
        assert_eq!(a.stats().registered, 2 << 20, "no segment added");
    }

    /// A reservation waiting for a cooling slot does not hold the arena's
    /// lock meanwhile: others take it within a fraction of the grace
    /// throughout (holding it while sleeping kept it for the whole grace).
    #[test]
    fn a_waiting_reservation_leaves_the_lock_free() {
        let a = Arc::new(Mutex::new(arena(2 << 20)));
        let big = {
            let mut g = a.lock();
            let big = g.reserve(1 << 20, None).unwrap().loc;
            g.commit(&big);
            g.evict(&big);
            big
        };
        // Only the cooling slot would fit: say how long, without sleeping.
        let got = a.lock().try_reserve(1 << 20, None).unwrap();
        let Reserved::After(wait) = got else {
            panic!("a cooling slot was handed out");
        };
        assert!(wait > Duration::ZERO && wait <= REUSE_GRACE, "{wait:?}");
        let waiter = {
            let a = a.clone();
            std::thread::spawn(move || reserve_unlocked(&a, 1 << 20, None).map(|r| r.loc))
        };
        let mut takes = 0;
        while !waiter.is_finished() {
            let g = a.try_lock_for(REUSE_GRACE / 2);
            assert!(g.is_some(), "the lock was held while waiting");
            drop(g);
            takes += 1;
            std::thread::sleep(Duration::from_micros(50));
        }
        let again = waiter.join().unwrap().unwrap();
        assert_eq!(again.offset, big.offset, "the cooled slot");
        assert!(takes > 0);
    }

    #[test]
    fn object_ids_are_unique_and_unguessable() {
        let (a, b) = (ObjectIds::new(), ObjectIds::new());
        let ids: Vec<u64> = (1..=100_000).map(|n| a.id(n)).collect();
        let set: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "an id repeated");
        // Neither the count nor a neighbour's id tells an id: consecutive ids
        // differ in about half their bits, and another instance's differ.
        let mean_flips = ids
            .windows(2)
            .map(|w| (w[0] ^ w[1]).count_ones() as f64)
            .sum::<f64>()
            / (ids.len() - 1) as f64;
        assert!((28.0..36.0).contains(&mean_flips), "{mean_flips}");
        assert!(ids.iter().take(1000).all(|&id| id > 1_000_000));
        let same = (1..=1000).filter(|&n| a.id(n) == b.id(n)).count();
        assert_eq!(same, 0);
    }
}
