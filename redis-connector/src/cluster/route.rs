//! Running commands on the cluster: each command goes to the master of its
//! key's slot; the commands of one call are pipelined per node (sent
//! together, then their replies read in order), every node's sent before
//! any node's replies are read. `MOVED` updates the slot
//! map and triggers a topology refresh; `ASK` sends that command once to
//! the named node after `ASKING`; `TRYAGAIN`, `CLUSTERDOWN` and a master
//! that cannot be reached (a failover under way) are retried, with a
//! growing pause and refreshes, until the failover timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_core::{Error, Result};
use redis::RedisError;

use super::RedisClusterConnector;
use super::cmd::{Answer, Cmd, Target, Want};
use super::slots::{SlotMap, split_addr};
use crate::error::{Failure, classify};
use crate::raw::RawConn;

/// Idle connections kept per node at most.
const MAX_IDLE: usize = 16;
/// Values at most this large are copied into the pipeline's send buffer;
/// larger ones are written from their own buffers.
const PACK_LIMIT: usize = 64 << 10;
/// A refresh asked for within this long of the last one is skipped.
const REFRESH_GAP: Duration = Duration::from_millis(100);
/// `ASKING` as RESP.
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// The idle connections of one node.
#[derive(Default)]
pub(crate) struct Node {
    idle: parking_lot::Mutex<Vec<RawConn>>,
}

/// Why a node could not run a pipeline.
enum NodeFailure {
    /// Unreachable or the connection broke: a failover may be under way.
    Down(RedisError),
    /// Anything else (timeout, authentication, protocol): the operation fails.
    Fatal(Error),
}

/// A pipeline sent to one node, its replies not read yet.
struct Started {
    node: Arc<Node>,
    conn: RawConn,
    /// The connection came from the node's pool (it may have gone stale).
    reused: bool,
    /// How the send went.
    sent: redis::RedisResult<()>,
}

/// The result of one command: its answer or the server's error.
pub(crate) type Outcome = std::result::Result<Answer, RedisError>;

fn is_code(e: &RedisError, codes: &[&str]) -> bool {
    e.code().is_some_and(|c| codes.contains(&c))
}

impl RedisClusterConnector {
    fn node(&self, addr: &Arc<str>) -> Arc<Node> {
        self.nodes.lock().entry(addr.clone()).or_default().clone()
    }

    fn connect_node(
        &self,
        op: &'static str,
        addr: &str,
    ) -> std::result::Result<RawConn, NodeFailure> {
        let (host, port) = split_addr(addr).ok_or_else(|| {
            NodeFailure::Fatal(Error::permanent(
                super::KIND,
                op,
                format!("the cluster announced a node address {addr:?} that is not host:port"),
            ))
        })?;
        let auth = self
            .password
            .as_deref()
            .map(|p| (self.opts.username.as_deref(), p));
        RawConn::connect(
            host,
            port,
            self.connect_timeout(),
            self.op_timeout(),
            auth,
            0,
            self.recv_pool.clone(),
        )
        .map_err(|e| match classify(&e) {
            Failure::Dropped | Failure::Timeout => NodeFailure::Down(e),
            _ => NodeFailure::Fatal(self.map_err(op, addr, e)),
        })
    }

    /// Send the commands `idx` of `cmds` to one connection (their replies
    /// are read by [`Self::receive`]).
    fn send(c: &mut RawConn, cmds: &[Cmd<'_>], idx: &[usize]) -> redis::RedisResult<()> {
        let mut buf = Vec::with_capacity(4096);
        for &i in idx {
            let cmd = &cmds[i];
            if cmd.ask.is_some() {
                buf.extend_from_slice(ASKING);
            }
            buf.extend_from_slice(&cmd.head);
            if cmd.has_value {
                for part in &cmd.value {
                    if part.len() <= PACK_LIMIT {
                        buf.extend_from_slice(part);
                    } else {
                        c.send(&buf)?;
                        buf.clear();
                        c.send(part)?;
                    }
                }
                buf.extend_from_slice(b"\r\n");
            }
        }
        c.send(&buf)
    }

    /// Read the replies to the commands `idx` of `cmds`, sent by
    /// [`Self::send`], in order.
    fn receive(
        c: &mut RawConn,
        cmds: &mut [Cmd<'_>],
        idx: &[usize],
    ) -> redis::RedisResult<Vec<Outcome>> {
        let mut out = Vec::with_capacity(idx.len());
        for &i in idx {
            if cmds[i].ask.is_some() {
                match c.read_reply() {
                    Ok(_) => {}
                    Err(e) if e.code().is_some() => {}
                    Err(e) => return Err(e),
                }
            }
            let r = match &mut cmds[i].want {
                Want::Reply => c.read_reply().map(Answer::Reply),
                Want::Into(dst) => c
                    .read_bulk_into(dst)
                    .map(|f| if f { Answer::Filled } else { Answer::Nil }),
            };
            match r {
                Ok(a) => out.push(Ok(a)),
                Err(e) if e.code().is_some() => out.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Run a pipeline on `addr`: [`Self::start_on`], then
    /// [`Self::finish_on`].
    fn run_on(
        &self,
        op: &'static str,
        addr: &Arc<str>,
        cmds: &mut [Cmd<'_>],
        idx: &[usize],
    ) -> std::result::Result<Vec<Outcome>, NodeFailure> {
        let started = self.start_on(op, addr, cmds, idx)?;
        self.finish_on(op, addr, started, cmds, idx)
    }

    /// Send the commands `idx` of `cmds` to `addr` on a pooled connection
    /// or a new one. A send that fails is kept for [`Self::finish_on`],
    /// which retries a pooled connection's failure on a fresh one.
    fn start_on(
        &self,
        op: &'static str,
        addr: &Arc<str>,
        cmds: &[Cmd<'_>],
        idx: &[usize],
    ) -> std::result::Result<Started, NodeFailure> {
        let node = self.node(addr);
        let pooled = node.idle.lock().pop();
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect_node(op, addr)?,
        };
        let sent = Self::send(&mut conn, cmds, idx);
        Ok(Started {
            node,
            conn,
            reused,
            sent,
        })
    }

    /// Read the replies of a pipeline [`Self::start_on`] sent. If the
    /// connection was pooled and turns out broken (the node may have
    /// restarted), the pipeline runs once more on a fresh one. The
    /// connection goes back to the node's pool when it is still open.
    fn finish_on(
        &self,
        op: &'static str,
        addr: &Arc<str>,
        started: Started,
        cmds: &mut [Cmd<'_>],
        idx: &[usize],
    ) -> std::result::Result<Vec<Outcome>, NodeFailure> {
        let Started {
            node,
            mut conn,
            reused,
            sent,
        } = started;
        let mut r = sent.and_then(|()| Self::receive(&mut conn, cmds, idx));
        if reused
            && r.as_ref()
                .is_err_and(|e| matches!(classify(e), Failure::Dropped))
        {
            node.idle.lock().clear();
            conn = self.connect_node(op, addr)?;
            r = Self::send(&mut conn, cmds, idx).and_then(|()| Self::receive(&mut conn, cmds, idx));
        }
        match r {
            Ok(v) => {
                if conn.is_open() {
                    let mut idle = node.idle.lock();
                    if idle.len() < MAX_IDLE {
                        idle.push(conn);
                    }
                }
                Ok(v)
            }
            Err(e) => match classify(&e) {
                Failure::Dropped => Err(NodeFailure::Down(e)),
                _ => Err(NodeFailure::Fatal(self.map_err(op, addr, e))),
            },
        }
    }

    /// The current slot map (read from the cluster on first use).
    pub(crate) fn slot_map(&self, op: &'static str) -> Result<Arc<SlotMap>> {
        if let Some(m) = self.slots.read().clone() {
            return Ok(m);
        }
        self.refresh(op, true)?;
        self.slots
            .read()
            .clone()
            .ok_or_else(|| Error::temporary(super::KIND, op, "no slot map"))
    }

    /// Read `CLUSTER SLOTS` from the first node that answers (known
    /// masters, then the seeds). Skipped if another refresh ran just now,
    /// unless `force`. Fails (temporary) when no node answers at all.
    pub(crate) fn refresh(&self, op: &'static str, force: bool) -> Result<()> {
        let mut last = self.last_refresh.lock();
        if !force && last.0.is_some_and(|t| t.elapsed() < REFRESH_GAP) {
            return Ok(());
        }
        let mut candidates: Vec<Arc<str>> = last.1.iter().cloned().collect();
        for m in self
            .slots
            .read()
            .as_ref()
            .map(|m| m.masters())
            .unwrap_or_default()
        {
            if !candidates.contains(&m) {
                candidates.push(m);
            }
        }
        for s in &self.opts.nodes {
            if !candidates.iter().any(|c| c.as_ref() == s) {
                candidates.push(s.as_str().into());
            }
        }
        let mut errors = Vec::new();
        for addr in candidates {
            let mut cmds = [Cmd::node(addr.clone(), &[b"CLUSTER", b"SLOTS"])];
            match self.run_on(op, &addr, &mut cmds, &[0]) {
                Ok(mut v) => match v.pop() {
                    Some(Ok(Answer::Reply(reply))) => {
                        let host = split_addr(&addr).map_or("", |(h, _)| h);
                        match SlotMap::parse(&reply, host) {
                            Ok(m) => {
                                *self.slots.write() = Some(Arc::new(m));
                                *last = (Some(Instant::now()), Some(addr));
                                return Ok(());
                            }
                            Err(why) => errors.push(format!("{addr}: {why}")),
                        }
                    }
                    Some(Err(e)) => errors.push(format!("{addr}: {e}")),
                    _ => errors.push(format!("{addr}: no reply")),
                },
                Err(NodeFailure::Down(e)) => errors.push(format!("{addr}: {e}")),
                Err(NodeFailure::Fatal(e)) => return Err(e),
            }
        }
        Err(Error::temporary(
            super::KIND,
            op,
            format!(
                "no node of the Redis Cluster answered CLUSTER SLOTS ({})",
                errors.join("; ")
            ),
        ))
    }

    fn note_moved(&self, e: &RedisError) {
        if let Some((addr, slot)) = e.redirect_node() {
            let mut g = self.slots.write();
            if let Some(m) = g.as_mut() {
                Arc::make_mut(m).set(slot, addr.into());
            }
        }
    }

    /// Run `cmds`, each on the node that serves it, following redirects
    /// (see the module docs). The outer `Err` is a failure of the whole call
    /// (no node reachable, a timeout, the failover timeout passed); server
    /// errors of single commands are their `Outcome`s.
    pub(crate) fn exec(&self, op: &'static str, cmds: &mut [Cmd<'_>]) -> Result<Vec<Outcome>> {
        let mut out: Vec<Option<Outcome>> = (0..cmds.len()).map(|_| None).collect();
        let deadline = Instant::now() + Duration::from_millis(self.opts.failover_timeout_ms);
        let mut pause = Duration::from_millis(20);
        let mut redirects = 0u32;
        loop {
            let map = self.slot_map(op)?;
            let mut groups: Vec<(Arc<str>, Vec<usize>)> = Vec::new();
            let mut index: HashMap<Arc<str>, usize> = HashMap::new();
            let mut uncovered = None;
            for (i, c) in cmds.iter().enumerate() {
                if out[i].is_some() {
                    continue;
                }
                let addr = match (&c.ask, &c.target) {
                    (Some(a), _) | (None, Target::Node(a)) => a.clone(),
                    (None, Target::Slot(s)) => match map.owner(*s) {
                        Some(a) => a.clone(),
                        None => {
                            uncovered = Some(*s);
                            continue;
                        }
                    },
                };
                let g = *index.entry(addr.clone()).or_insert_with(|| {
                    groups.push((addr, Vec::new()));
                    groups.len() - 1
                });
                groups[g].1.push(i);
            }
            let mut wait: Option<String> = uncovered.map(|s| format!("slot {s} has no master"));
            let mut refresh = uncovered.is_some();
            // Every node's pipeline is sent before any reply is read, so
            // the nodes work on theirs at the same time.
            let mut started = Vec::with_capacity(groups.len());
            for (addr, idx) in &groups {
                started.push(self.start_on(op, addr, cmds, idx));
            }
            for ((addr, idx), s) in groups.iter().zip(started) {
                match s.and_then(|s| self.finish_on(op, addr, s, cmds, idx)) {
                    Ok(results) => {
                        for (&i, r) in idx.iter().zip(results) {
                            cmds[i].ask = None;
                            match r {
                                Err(e) if is_code(&e, &["MOVED"]) => {
                                    self.note_moved(&e);
                                    refresh = true;
                                    redirects += 1;
                                }
                                Err(e) if is_code(&e, &["ASK"]) => {
                                    cmds[i].ask = e.redirect_node().map(|(a, _)| a.into());
                                    redirects += 1;
                                }
                                Err(e)
                                    if is_code(
                                        &e,
                                        &["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"],
                                    ) =>
                                {
                                    wait = Some(format!("{addr}: {e}"));
                                }
                                r => out[i] = Some(r),
                            }
                        }
                    }
                    Err(NodeFailure::Down(e)) => {
                        for &i in idx {
                            cmds[i].ask = None;
                        }
                        wait = Some(format!("{addr}: {e}"));
                        refresh = true;
                    }
                    Err(NodeFailure::Fatal(e)) => return Err(e),
                }
            }
            if out.iter().all(Option::is_some) {
                return Ok(out.into_iter().flatten().collect());
            }
            if Instant::now() >= deadline {
                let why = wait.unwrap_or_else(|| format!("{redirects} redirects"));
                return Err(Error::temporary(
                    super::KIND,
                    op,
                    format!(
                        "Redis Cluster ({}): gave up after the failover timeout of {} ms: {why}",
                        self.opts.nodes.join(","),
                        self.opts.failover_timeout_ms
                    ),
                ));
            }
            if refresh {
                self.refresh(op, false)?;
            }
            if wait.is_some() || redirects > 8 {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }

    /// Drop every idle connection.
    pub(crate) fn drop_connections(&self) {
        for n in self.nodes.lock().values() {
            n.idle.lock().clear();
        }
    }
}
