//! One object, many nodes: node-level dedup and the relay among node
//! servers (the crate README, "One object, many nodes", has the design).
//!
//! - A reader whose node has its own server sends it [`Request::Fetch`] for
//!   an object of another node's server: the node server fetches it once
//!   into a replica (concurrent fetches wait for that one transfer), and
//!   the reader reads the replica as any object of its node (mapped, no copy).
//! - Before it fetches, a node server asks the owner whom to read from
//!   ([`Request::Source`]): the owner chains the node servers that ask for
//!   one object, in the order they ask, each reading from the one before it
//!   ([`Request::RelayRead`]) while that one is still receiving: the owner
//!   sends the object once, every node receives it once, and the transfers
//!   overlap (a pipelined chain).
//! - A replica answers a fetch only after the owner says the object still
//!   exists ([`Request::Exists`]), so an evicted object is `None` everywhere;
//!   keys are never reused (ids are unique per instance, instances random),
//!   so a replica can only ever hold its own object's bytes.
//! - A source that fails a node server (gone, stalled for the timeout, no
//!   longer holding the object) is reported to the owner, which drops it from
//!   the chain and names the one before it (in the end the owner itself); the
//!   node server resumes from the bytes it has.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Shared;
use super::replica::{Filler, Phase, Replica, Replicas, Waited};
use super::upstream::Upstream;
use crate::arena::{ReserveError, Reserved};
use crate::memory::FillSlot;
use crate::proto::{self, Fetched, Loc, Remote, Request, Response, Source};
use crate::stream::Conn;

/// What one locked attempt to start a replica came to.
enum Start {
    /// The replica (and its filler when this call started it), or why not.
    Done(Result<(Arc<Replica>, Option<Filler>), String>),
    /// Only slots still cooling would fit: try again after this long.
    Wait(Duration),
}

/// A chain nobody joined for this long starts over (its members may have
/// dropped their replicas since).
const CHAIN_IDLE: Duration = Duration::from_secs(60);

/// How a server relays.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Bytes of replicas kept (least recently used out first; default, as
    /// `u64::MAX`: half the memory limit).
    pub replica_limit: u64,
    /// Chain node servers that ask an object of this server (the owner)
    /// through each other (`false`: every node server reads from the owner).
    pub chain: bool,
    /// Replicate objects of servers on this node too (tests and benchmarks
    /// on one machine; otherwise a reader reads those in place itself).
    pub same_host: bool,
    /// A source that sends no byte for this long has failed.
    pub timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            replica_limit: u64::MAX,
            chain: true,
            same_host: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The node servers that asked the owner for one object, in order.
struct Chain {
    members: Vec<String>,
    joined: Instant,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    hits: AtomicU64,
}

pub(crate) struct Relay {
    opts: RelayOptions,
    /// This server's `host:port` as other servers reach it.
    pub(crate) advertise: String,
    replicas: Mutex<Replicas>,
    chains: Mutex<HashMap<u64, Chain>>,
    upstream: Upstream,
    counters: Counters,
}

/// How reading from one source ended.
enum ReadEnd {
    /// The source does not hold the object.
    NotThere,
    Failed(io::Error),
}

impl Relay {
    pub(crate) fn new(
        opts: RelayOptions,
        advertise: String,
        secret: Option<crate::auth::Secret>,
    ) -> Relay {
        let upstream = Upstream::new(secret, opts.timeout);
        Relay {
            opts,
            advertise,
            replicas: Mutex::new(Replicas::default()),
            chains: Mutex::new(HashMap::new()),
            upstream,
            counters: Counters::default(),
        }
    }

    /// Fill the relay's figures into `s`.
    pub(crate) fn stats(&self, s: &mut proto::Stats) {
        let (n, b) = self.replicas.lock().totals();
        s.replicas = n;
        s.replica_bytes = b;
        s.relay_fetches = self.counters.fetches.load(Ordering::Relaxed);
        s.relay_bytes_in = self.counters.bytes_in.load(Ordering::Relaxed);
        s.relay_bytes_out = self.counters.bytes_out.load(Ordering::Relaxed);
        s.replica_hits = self.counters.hits.load(Ordering::Relaxed);
    }

    /// The owner evicted `loc`: its chain is over.
    /// The owner evicted `loc`: its chain is over, and the node servers in
    /// it are told to drop their replicas (in the background, best effort).
    pub(crate) fn evicted(self: &Arc<Self>, sh: &Shared, loc: &Loc) {
        let Some(chain) = self.chains.lock().remove(&loc.id) else {
            return;
        };
        let remote = Remote {
            server: self.advertise.clone(),
            instance: sh.instance,
            loc: *loc,
        };
        let relay = self.clone();
        std::thread::spawn(move || {
            for m in &chain.members {
                let _ = relay.upstream.send(m, &Request::Dropped(remote.clone()));
            }
        });
    }

    /// [`Request::Dropped`]: the owner evicted the object of this replica.
    pub(crate) fn dropped(&self, sh: &Shared, remote: &Remote) {
        let rep = self.replicas.lock().get(remote);
        if let Some(r) = rep.filter(|r| r.phase() != Phase::Filling) {
            self.forget(sh, &r);
        }
    }

    /// The owner's answer to [`Request::Source`].
    pub(crate) fn source(&self, sh: &Shared, loc: &Loc, me: &str, failed: &[String]) -> Source {
        if !sh.arena.lock().exists(loc) {
            self.chains.lock().remove(&loc.id);
            return Source::Missing;
        }
        let mut chains = self.chains.lock();
        chains.retain(|_, c| c.joined.elapsed() < CHAIN_IDLE);
        let c = chains.entry(loc.id).or_insert_with(|| Chain {
            members: Vec::new(),
            joined: Instant::now(),
        });
        c.members.retain(|m| !failed.contains(m));
        c.joined = Instant::now();
        // One that asks again (its source failed) keeps its place: it reads
        // from the one before it, never from one after it (no cycle).
        let pos = match c.members.iter().position(|m| m == me) {
            Some(p) => p,
            None => {
                c.members.push(me.to_string());
                c.members.len() - 1
            }
        };
        // (Without chaining, members are still recorded: they are told when
        // the object is evicted.)
        match pos.checked_sub(1).filter(|_| self.opts.chain) {
            None => Source::Owner,
            Some(p) => Source::Node(c.members[p].clone()),
        }
    }

    /// The answer to [`Request::Fetch`] (see the module docs); `progress`
    /// is told the bytes received meanwhile.
    pub(crate) fn fetch(
        &self,
        sh: &Arc<Shared>,
        remote: &Remote,
        progress: &mut dyn FnMut(u64),
    ) -> Fetched {
        if remote.instance == sh.instance || remote.server == self.advertise {
            return Fetched::SameNode;
        }
        let greeting = match self.upstream.greeting(&remote.server, false) {
            Ok(g) if g.instance == remote.instance => Ok(g),
            // Maybe a restart since the cached hello: ask once more.
            Ok(_) => self.upstream.greeting(&remote.server, true),
            Err(e) => Err(e),
        };
        let g = match greeting {
            Ok(g) => g,
            Err(e) => return Fetched::Direct(format!("owner {}: {e}", remote.server)),
        };
        if g.instance != remote.instance {
            return Fetched::Missing; // another instance's key: its objects are gone
        }
        if !self.opts.same_host && !g.host_id.is_empty() && g.host_id == sh.host_id {
            return Fetched::SameNode;
        }
        for _ in 0..2 {
            let (rep, filler) = match self.lookup_or_start(sh, remote) {
                Ok(x) => x,
                Err(why) => return Fetched::Direct(why),
            };
            if let Some(f) = filler {
                return self.run(sh, remote, f, progress);
            }
            match rep.wait(self.opts.timeout * 2, progress) {
                Waited::Done => return self.validate(sh, &rep),
                // Its filler drops it (and may start over on the next fetch).
                Waited::Failed => {}
                // Its filler is still at it (its sources have their own
                // timeouts): this reader does not wait longer.
                Waited::Stalled => {
                    return Fetched::Direct("the relay of this object stalled".into());
                }
            }
        }
        Fetched::Direct("the relay failed twice".into())
    }

    /// The replica of `remote`, and its filler if this call made it.
    fn lookup_or_start(
        &self,
        sh: &Arc<Shared>,
        remote: &Remote,
    ) -> Result<(Arc<Replica>, Option<Filler>), String> {
        loop {
            let mut gone = Vec::new();
            let r = self.start_locked(sh, remote, &mut gone);
            drop(gone); // after both locks: a replica's drop takes the arena's
            match r {
                Start::Done(r) => return r,
                // Only cooling slots would fit: wait with neither lock held
                // (gets, puts and other relays go on), then look again.
                Start::Wait(wait) => std::thread::sleep(wait),
            }
        }
    }

    fn start_locked(
        &self,
        sh: &Arc<Shared>,
        remote: &Remote,
        gone: &mut Vec<Arc<Replica>>,
    ) -> Start {
        let mut reps = self.replicas.lock();
        let mut arena = sh.arena.lock();
        match reps.get(remote) {
            // A failed transfer whose filler has not dropped it yet: start over.
            Some(r) if r.phase() == Phase::Failed => reps.remove(&r, &mut arena, gone),
            Some(r) => return Start::Done(Ok((r, None))),
            None => {}
        }
        let len = remote.loc.len;
        if !reps.make_room(len, self.opts.replica_limit, &mut arena, gone) {
            return Start::Done(Err(format!(
                "no room for a replica of {len} bytes (replica limit {} bytes)",
                self.opts.replica_limit
            )));
        }
        let reserved = loop {
            match arena.try_reserve(len, None) {
                Ok(Reserved::Now(r)) => break r,
                Ok(Reserved::After(wait)) => return Start::Wait(wait),
                // Full: older replicas go first, then the reader reads the owner.
                Err(ReserveError::Full { .. }) if reps.remove_oldest(&mut arena, gone) => {}
                Err(e) => return Start::Done(Err(format!("no room for a replica: {e}"))),
            }
        };
        drop(arena);
        let (rep, filler) = Replica::new(
            sh,
            remote.clone(),
            reserved.loc,
            FillSlot::new(reserved.writer),
        );
        reps.insert(rep.clone());
        Start::Done(Ok((rep, Some(filler))))
    }

    /// Drop `rep` from the replicas (and the arena).
    fn forget(&self, sh: &Shared, rep: &Arc<Replica>) {
        let mut gone = Vec::new();
        {
            let mut reps = self.replicas.lock();
            let mut arena = sh.arena.lock();
            reps.remove(rep, &mut arena, &mut gone);
        }
        drop(gone);
    }

    /// A complete replica answers a fetch if the owner still has the object.
    fn validate(&self, sh: &Shared, rep: &Arc<Replica>) -> Fetched {
        let remote = &rep.remote;
        match self
            .upstream
            .call(&remote.server, &Request::Exists(remote.loc))
        {
            Ok(Response::Bool(true)) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                Fetched::Replica(rep.loc)
            }
            Ok(Response::Bool(false)) => {
                self.forget(sh, rep);
                Fetched::Missing
            }
            Ok(other) => Fetched::Direct(format!("owner {}: answered {other:?}", remote.server)),
            // The reader asks the owner itself, and gets its usual error.
            Err(e) => Fetched::Direct(format!("owner {}: {e}", remote.server)),
        }
    }

    /// Receive the replica: from the source the owner names, again from the
    /// next one when a source fails, resuming where the last one stopped.
    fn run(
        &self,
        sh: &Arc<Shared>,
        remote: &Remote,
        filler: Filler,
        progress: &mut dyn FnMut(u64),
    ) -> Fetched {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let rep = filler.replica().clone();
        let received = self.receive(remote, &filler, progress);
        match received {
            Ok(()) => {
                filler.finish(sh);
                if rep.phase() == Phase::Done {
                    return Fetched::Replica(rep.loc);
                }
                self.forget(sh, &rep);
                Fetched::Direct("the replica could not be committed".into())
            }
            Err(why) => {
                filler.fail();
                self.forget(sh, &rep);
                why
            }
        }
    }

    /// The transfer of [`Relay::run`]; `Err`: the answer instead of a replica.
    fn receive(
        &self,
        remote: &Remote,
        filler: &Filler,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), Fetched> {
        let mut failed: Vec<String> = Vec::new();
        let mut owner_failures = 0;
        loop {
            let req = Request::Source {
                loc: remote.loc,
                me: self.advertise.clone(),
                failed: failed.clone(),
            };
            let source = match self.upstream.call(&remote.server, &req) {
                Ok(Response::Source(s)) => s,
                Ok(_) | Err(_) => Source::Owner,
            };
            let addr = match source {
                Source::Missing => return Err(Fetched::Missing),
                Source::Owner => remote.server.clone(),
                Source::Node(a) => a,
            };
            let from_owner = addr == remote.server;
            match self.read_from(&addr, remote, filler, progress) {
                Ok(()) => return Ok(()),
                Err(ReadEnd::NotThere) if from_owner => return Err(Fetched::Missing),
                Err(ReadEnd::Failed(e)) if from_owner => {
                    owner_failures += 1;
                    if owner_failures >= 2 {
                        return Err(Fetched::Direct(format!(
                            "reading from the owner failed: {e}"
                        )));
                    }
                }
                Err(_) => {
                    failed.push(addr);
                    if failed.len() > 256 {
                        return Err(Fetched::Direct("too many relay sources failed".into()));
                    }
                }
            }
        }
    }

    /// Read the rest of `remote` from `addr` into the replica.
    fn read_from(
        &self,
        addr: &str,
        remote: &Remote,
        filler: &Filler,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ReadEnd> {
        let failed = ReadEnd::Failed;
        let (mut s, _) = self.upstream.open(addr).map_err(failed)?;
        let offset = filler.replica().filled();
        let req = Request::RelayRead {
            remote: remote.clone(),
            offset,
        };
        proto::write_frame(&mut s, &req).map_err(failed)?;
        match proto::read_frame::<Response>(&mut s).map_err(failed)? {
            Some(Response::Read(Some(n))) if n == remote.loc.len - offset => {}
            Some(Response::Read(None)) => return Err(ReadEnd::NotThere),
            other => {
                return Err(ReadEnd::Failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected answer to a relay read: {other:?}"),
                )));
            }
        }
        let got = filler.fill_from(&mut s, progress);
        let n = filler.replica().filled() - offset;
        self.counters.bytes_in.fetch_add(n, Ordering::Relaxed);
        got.map(|_| ()).map_err(failed)
    }

    /// Serve [`Request::RelayRead`] on `s`: this server's own object, or a
    /// replica (as it arrives). An error closes the connection (the reader
    /// then asks its owner for another source).
    pub(crate) fn serve_read(
        &self,
        sh: &Shared,
        s: &mut Conn,
        remote: &Remote,
        offset: u64,
    ) -> io::Result<()> {
        let len = remote.loc.len;
        if offset > len {
            return proto::write_frame(
                s,
                &Response::Error(format!("offset {offset} past length {len}")),
            );
        }
        if remote.instance == sh.instance {
            let out = &self.counters.bytes_out;
            return super::conn::send_object(sh, s, &remote.loc, offset, &mut |n| {
                out.fetch_add(n, Ordering::Relaxed);
            });
        }
        let rep = self.replicas.lock().get(remote);
        let Some(rep) = rep.filter(|r| r.phase() != Phase::Failed) else {
            return proto::write_frame(s, &Response::Read(None));
        };
        proto::write_frame(s, &Response::Read(Some(len - offset)))?;
        rep.copy_to(s, offset, self.opts.timeout, &self.counters.bytes_out)
    }
}
