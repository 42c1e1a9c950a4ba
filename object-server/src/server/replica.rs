//! Replicas: objects of other servers kept in this server's arena for the
//! readers of its node (node-level dedup), and passed on to other node
//! servers while they are still arriving (the relay).
//!
//! A replica is a slot of the arena, reserved when its transfer starts,
//! filled front to back by the one thread that fetches it (its [`Filler`]),
//! and committed (made visible under its own location, which readers of
//! this node read as any object here) when complete. While it fills,
//! [`Replica::copy_to`] hands what has arrived to other node servers. The
//! replica holds its slot (the reservation, then a pin) for as long as
//! anyone holds it: a relay in progress never reads a freed or reused slot.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Shared;
use crate::arena::Arena;
use crate::memory::{FillSlot, PinnedSlice};
use crate::proto::{Loc, Remote};

/// Bytes read from the upstream socket per step (the relay's chunk: what
/// arrives is passed on at most this much later).
const STEP: usize = 1 << 20;

/// Where a replica's transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Filling,
    Done,
    Failed,
}

struct State {
    filled: u64,
    phase: Phase,
    /// The replica's own pin on its committed slot.
    pinned: Option<PinnedSlice>,
}

/// An object of another server, here.
pub(crate) struct Replica {
    pub(crate) remote: Remote,
    /// Where it is in this server's arena.
    pub(crate) loc: Loc,
    slot: FillSlot,
    state: Mutex<State>,
    cond: Condvar,
    shared: Weak<Shared>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let committed = st.pinned.take().is_some();
        let Some(sh) = self.shared.upgrade() else {
            return; // the server (and its arena) is gone
        };
        let mut arena = sh.arena.lock();
        if committed {
            arena.end_read(&self.loc);
        } else {
            arena.abort(&self.loc);
        }
    }
}

/// The one writer of a replica (not `Clone`): whoever holds it fills the
/// slot, then finishes or fails it.
pub(crate) struct Filler(Arc<Replica>);

/// Why [`Replica::wait`] returned.
pub(crate) enum Waited {
    Done,
    Failed,
    /// No byte arrived for the timeout.
    Stalled,
}

impl Replica {
    /// A replica of `remote` in the reserved slot `loc` (written through
    /// `slot`), and its filler.
    pub(crate) fn new(
        sh: &Arc<Shared>,
        remote: Remote,
        loc: Loc,
        slot: FillSlot,
    ) -> (Arc<Replica>, Filler) {
        let r = Arc::new(Replica {
            remote,
            loc,
            slot,
            state: Mutex::new(State {
                filled: 0,
                phase: Phase::Filling,
                pinned: None,
            }),
            cond: Condvar::new(),
            shared: Arc::downgrade(sh),
        });
        (r.clone(), Filler(r))
    }

    pub(crate) fn len(&self) -> u64 {
        self.slot.len() as u64
    }

    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase
    }

    pub(crate) fn filled(&self) -> u64 {
        self.state.lock().filled
    }

    /// Wait until the transfer ends; `progress` is told the bytes received
    /// about twice a second meanwhile.
    pub(crate) fn wait(&self, timeout: Duration, progress: &mut dyn FnMut(u64)) -> Waited {
        let mut st = self.state.lock();
        let mut last = (st.filled, Instant::now());
        loop {
            match st.phase {
                Phase::Done => return Waited::Done,
                Phase::Failed => return Waited::Failed,
                Phase::Filling => {}
            }
            self.cond.wait_for(&mut st, Duration::from_millis(500));
            if st.filled != last.0 {
                last = (st.filled, Instant::now());
            } else if last.1.elapsed() >= timeout {
                return Waited::Stalled;
            }
            let f = st.filled;
            drop(st);
            progress(f);
            st = self.state.lock();
        }
    }

    /// Write bytes `[from, len)` to `w` as they arrive, adding what was
    /// written to `sent_total`. Fails if the transfer fails, or if no byte
    /// arrives for `timeout`.
    pub(crate) fn copy_to(
        &self,
        w: &mut impl Write,
        from: u64,
        timeout: Duration,
        sent_total: &AtomicU64,
    ) -> io::Result<()> {
        let len = self.len();
        let mut sent = from.min(len);
        while sent < len {
            let avail = {
                let mut st = self.state.lock();
                let t0 = Instant::now();
                while st.filled <= sent && st.phase == Phase::Filling {
                    if self.cond.wait_for(&mut st, timeout).timed_out() || t0.elapsed() >= timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("relay: no byte arrived for {timeout:?}"),
                        ));
                    }
                }
                if st.filled <= sent {
                    return Err(io::Error::other("relay: the transfer upstream failed"));
                }
                st.filled
            };
            // SAFETY: [sent, avail) is below the filled mark: written once by
            // the filler, never written again; the slot lives as long as `self`.
            let bytes = unsafe { self.slot.filled(sent as usize, avail as usize) };
            w.write_all(bytes)?;
            sent_total.fetch_add(avail - sent, Ordering::Relaxed);
            sent = avail;
        }
        Ok(())
    }
}

impl Filler {
    pub(crate) fn replica(&self) -> &Arc<Replica> {
        &self.0
    }

    /// Read the rest of the object from `r` into the slot, telling waiters
    /// (and `progress`, twice a second) as bytes arrive. Returns the bytes
    /// read.
    pub(crate) fn fill_from(
        &self,
        r: &mut impl Read,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<u64> {
        let rep = &self.0;
        let len = rep.len() as usize;
        let start = rep.filled() as usize;
        let mut filled = start;
        let mut told = Instant::now();
        while filled < len {
            let to = len.min(filled + STEP);
            // SAFETY: this filler is the replica's one writer (not Clone,
            // made once per replica), and [filled, to) is above the mark,
            // which readers never pass.
            let buf = unsafe { rep.slot.unfilled(filled, to) };
            let n = match r.read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            filled += n;
            rep.state.lock().filled = filled as u64;
            rep.cond.notify_all();
            if told.elapsed() >= Duration::from_millis(500) {
                progress(filled as u64);
                told = Instant::now();
            }
        }
        Ok((filled - start) as u64)
    }

    /// The whole object arrived: make it visible here (commit) and keep a
    /// pin on it for as long as the replica lives.
    pub(crate) fn finish(self, sh: &Shared) {
        let rep = &self.0;
        let pinned = {
            let mut arena = sh.arena.lock();
            arena.commit(&rep.loc);
            arena.begin_read(&rep.loc)
        };
        let mut st = rep.state.lock();
        st.pinned = pinned;
        st.phase = if st.pinned.is_some() {
            Phase::Done
        } else {
            Phase::Failed
        };
        drop(st);
        rep.cond.notify_all();
    }

    /// The transfer failed: waiters and relays reading it stop.
    pub(crate) fn fail(self) {
        self.0.state.lock().phase = Phase::Failed;
        self.0.cond.notify_all();
    }
}

/// What names an object across servers: its owner's instance (random per
/// server start) and its location there (with its id, never reused by that
/// instance). Not the owner's address, which keys may spell differently (a
/// name, an address).
fn object_of(r: &Remote) -> (u64, Loc) {
    (r.instance, r.loc)
}

/// The replicas of this server, least recently used first out.
#[derive(Default)]
pub(crate) struct Replicas {
    map: HashMap<(u64, Loc), (Arc<Replica>, u64)>,
    tick: u64,
    bytes: u64,
}

impl Replicas {
    /// The replica of `remote`, if any (marked used).
    pub(crate) fn get(&mut self, remote: &Remote) -> Option<Arc<Replica>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&object_of(remote)).map(|(r, t)| {
            *t = tick;
            r.clone()
        })
    }

    pub(crate) fn insert(&mut self, r: Arc<Replica>) {
        self.tick += 1;
        self.bytes += r.len();
        if let Some((old, _)) = self.map.insert(object_of(&r.remote), (r, self.tick)) {
            self.bytes -= old.len();
        }
    }

    /// Forget `r` (if it is still the replica of its object) and evict it
    /// from the arena: readers of this node see it gone; its slot is freed
    /// when the last holder (a relay in progress, a pin) lets go. What was
    /// removed goes to `gone`, to be dropped after the arena's lock (a
    /// replica's drop takes it).
    pub(crate) fn remove(
        &mut self,
        r: &Arc<Replica>,
        arena: &mut Arena,
        gone: &mut Vec<Arc<Replica>>,
    ) {
        if self
            .map
            .get(&object_of(&r.remote))
            .is_some_and(|(x, _)| Arc::ptr_eq(x, r))
        {
            if let Some((x, _)) = self.map.remove(&object_of(&r.remote)) {
                self.bytes -= x.len();
                arena.evict(&x.loc);
                gone.push(x);
            }
        }
    }

    /// Remove the least recently used complete replica, if any.
    pub(crate) fn remove_oldest(
        &mut self,
        arena: &mut Arena,
        gone: &mut Vec<Arc<Replica>>,
    ) -> bool {
        let oldest = self
            .map
            .values()
            .filter(|(r, _)| r.phase() != Phase::Filling)
            .min_by_key(|(_, t)| *t)
            .map(|(r, _)| r.clone());
        match oldest {
            Some(r) => {
                self.remove(&r, arena, gone);
                gone.push(r);
                true
            }
            None => false,
        }
    }

    /// Make room for `need` more bytes under `limit` (least recently used
    /// complete replicas out first, into `gone`); `false` if the replicas
    /// being received alone leave no room.
    pub(crate) fn make_room(
        &mut self,
        need: u64,
        limit: u64,
        arena: &mut Arena,
        gone: &mut Vec<Arc<Replica>>,
    ) -> bool {
        while self.bytes + need > limit {
            if !self.remove_oldest(arena, gone) {
                return false;
            }
        }
        true
    }

    /// Replicas held, and their bytes.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.map.len() as u64, self.bytes)
    }
}
