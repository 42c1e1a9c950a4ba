//! Gets through this node's server (node-level dedup): an object of a
//! server on another node is fetched once into a replica on this node's
//! server, whoever asks, and read from there like any object of this node
//! (mapped, no copy). See the crate README, "One object, many nodes".

use std::io;

use bytes::Bytes;
use proxy_core::{Key, Result};

use super::ObjectClient;
use super::control::Ctl;
use super::key::ObjectKey;
use crate::proto::{self, Fetched, Remote, Request, Response};
use crate::transport::ClientTransport;

impl<T: ClientTransport> ObjectClient<T> {
    /// Gets with `node` as this node's server: objects of other nodes'
    /// servers through replicas there; the others (and any the node server
    /// cannot help with, or whose replica is gone by the time it is read)
    /// directly from their servers.
    pub(super) fn get_via_node(&self, node: &str, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        let mut direct = Vec::new();
        let mut via = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let k = self.decode(key)?;
            let near = k.server == node
                || self.local_for(&k).is_some()
                || self.inner.same_node.lock().contains(&k.server);
            if near {
                direct.push(i);
                continue;
            }
            match self.fetch_via(node, &k) {
                Some((instance, Fetched::Replica(loc))) => {
                    via.push((i, Key::encode(&ObjectKey::new(node, instance, loc))));
                }
                Some((_, Fetched::Missing)) => {}
                Some((_, Fetched::SameNode)) => {
                    self.inner.same_node.lock().insert(k.server.clone());
                    direct.push(i);
                }
                // No node server, or it cannot help this time: read directly.
                Some((_, Fetched::Direct(_))) | None => direct.push(i),
            }
        }
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        if !via.is_empty() {
            let rkeys: Vec<Key> = via.iter().map(|(_, k)| k.clone()).collect();
            for ((i, _), got) in via.into_iter().zip(self.get_direct(&rkeys)?) {
                match got {
                    Some(b) => out[i] = Some(b),
                    // The replica went (its node server dropped it, or the
                    // object was evicted meanwhile): its owner decides.
                    None => direct.push(i),
                }
            }
        }
        if !direct.is_empty() {
            let dkeys: Vec<Key> = direct.iter().map(|&i| keys[i].clone()).collect();
            for (i, got) in direct.into_iter().zip(self.get_direct(&dkeys)?) {
                out[i] = got;
            }
        }
        Ok(out)
    }

    /// Ask `node` for a replica of `k`: its instance and answer, `None` if
    /// it cannot be asked (not reachable, refused us).
    fn fetch_via(&self, node: &str, k: &ObjectKey) -> Option<(u64, Fetched)> {
        self.fetch(node, k, "fetch").ok().flatten()
    }

    /// One fetch of `k` by `node`: its request, progress frames, then the
    /// node server's instance and answer (`None`: it restarted meanwhile).
    /// The socket's timeout bounds the wait for each frame: the node server
    /// sends progress while the object arrives.
    fn fetch(&self, node: &str, k: &ObjectKey, op: &'static str) -> Result<Option<(u64, Fetched)>> {
        let peer = self.peer(node)?;
        let req = Request::Fetch(Remote {
            server: k.server.clone(),
            instance: k.instance,
            loc: k.loc(),
        });
        let r = self.with_conn(&peer, op, |s| {
            proto::write_frame(s, &req)?;
            loop {
                match proto::read_frame::<Response>(s)? {
                    Some(Response::Progress(_)) => {}
                    Some(Response::Fetched(f)) => return Ok(f),
                    other => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("unexpected answer to a fetch: {other:?}"),
                        ));
                    }
                }
            }
        })?;
        Ok(match r {
            Ctl::Done(f) => Some((peer.instance, f)),
            Ctl::Stale => None,
        })
    }
}

impl<T: ClientTransport> ObjectClient<T> {
    /// Push the object of `key` to the servers `node_servers` (one per node)
    /// before its readers ask: each fetches it into a replica as a reader's
    /// fetch would, all at once, so they form the owner's relay chain. Returns
    /// when every one of them holds it, with each server's answer (`Ok(true)`:
    /// a replica is there; `Ok(false)`: the server reads it directly, or the
    /// object is gone) or error. Readers with `PROXYSTORE_NODE_SERVER`
    /// naming one of them then read it on their node.
    pub fn broadcast(&self, key: &Key, node_servers: &[String]) -> Result<Vec<Result<bool>>> {
        self.check_open("broadcast")?;
        let k = self.decode(key)?;
        let answers = std::thread::scope(|s| {
            let threads: Vec<_> = node_servers
                .iter()
                .map(|n| {
                    let k = &k;
                    s.spawn(move || {
                        self.fetch(n, k, "broadcast")
                            .map(|r| matches!(r, Some((_, Fetched::Replica(_)))))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a broadcast thread panicked"))
                .collect()
        });
        Ok(answers)
    }
}
