//! Objects larger than the chunk size: chunks `name:GEN:0`, `name:GEN:1`,
//! ... (`GEN` random per write, so a replacing `set` never overwrites chunks
//! a reader may still be reading) and a manifest hash under `name` with
//! fields `size`, `chunk` and `gen`, written last. All share the hash tag of
//! `name`, so they live in one slot.

use bytes::Bytes;
use proxy_core::{Error, Payload, Result};

use super::KIND;
use super::RedisClusterConnector;
use super::cmd::{Answer, Cmd};
use super::route::Outcome;
use crate::buf::RecvBuf;
use crate::raw::Reply;

/// Chunk bytes of one object read in one pipeline at most (bounds what a
/// node holds in its output buffer for us): 4 chunks of the default size.
const WINDOW_BYTES: u64 = 256 << 20;

/// The name of chunk `i` of generation `generation` (the manifest's `gen`) of the object named `name`.
pub(crate) fn chunk_name(name: &[u8], generation: &str, i: usize) -> Vec<u8> {
    let mut v = name.to_vec();
    v.push(b':');
    v.extend_from_slice(generation.as_bytes());
    v.push(b':');
    v.extend_from_slice(i.to_string().as_bytes());
    v
}

/// The payload's bytes `start..end` as slices of its own buffers.
pub(crate) fn slice_parts(data: &Payload, start: usize, end: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut off = 0;
    for p in data.parts() {
        let (ps, pe) = (off, off + p.len());
        off = pe;
        let (s, e) = (start.max(ps), end.min(pe));
        if s < e {
            out.push(p.slice(s - ps..e - ps));
        }
    }
    out
}

pub(crate) fn is_wrongtype(r: &Outcome) -> bool {
    matches!(r, Err(e) if e.code() == Some("WRONGTYPE"))
}

fn bulk_text(r: &Reply) -> Option<&str> {
    match r {
        Reply::Bulk(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// What is under an object's name, as `HMGET name size chunk gen` tells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Manifest {
    /// Nothing.
    Gone,
    /// Not a hash: a plain value (or another Redis type).
    Plain,
    /// A chunked object.
    Chunked {
        size: u64,
        chunk: u64,
        generation: String,
    },
}

impl Manifest {
    fn chunks(&self) -> usize {
        match self {
            Manifest::Chunked { size, chunk, .. } => size.div_ceil(*chunk) as usize,
            _ => 0,
        }
    }
}

fn is_ok(r: &Outcome) -> bool {
    matches!(r, Ok(Answer::Reply(Reply::Status(s))) if s == "OK")
}

impl RedisClusterConnector {
    /// Store each `(name, value)`: one `SET` each, or chunks and then their
    /// manifest; pipelined per node. With `replace`, a manifest is written
    /// under a temporary name and renamed over `name` (an atomic swap for
    /// readers, whatever `name` held).
    pub(crate) fn write_objects(
        &self,
        op: &'static str,
        items: &[(Vec<u8>, &Payload)],
        replace: bool,
    ) -> Result<()> {
        let chunk = self.opts.chunk_size as usize;
        let mut cmds = Vec::with_capacity(items.len());
        let mut manifests = Vec::new();
        let mut renames = Vec::new();
        for (name, data) in items {
            if data.len() <= chunk {
                cmds.push(Cmd::keyed_value(&[b"SET", name], data.parts().to_vec()));
                continue;
            }
            let generation = format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0);
            for (i, start) in (0..data.len()).step_by(chunk).enumerate() {
                let end = (start + chunk).min(data.len());
                let cname = chunk_name(name, &generation, i);
                cmds.push(Cmd::keyed_value(
                    &[b"SET", &cname],
                    slice_parts(data, start, end),
                ));
            }
            let (size, chunk) = (data.len().to_string(), chunk.to_string());
            let target = if replace {
                let mut tmp = name.clone();
                tmp.extend_from_slice(format!(":m{generation}").as_bytes());
                renames.push(Cmd::keyed(&[b"RENAME", &tmp, name]));
                tmp
            } else {
                name.clone()
            };
            manifests.push(Cmd::keyed(&[
                b"HSET",
                &target,
                b"size",
                size.as_bytes(),
                b"chunk",
                chunk.as_bytes(),
                b"gen",
                generation.as_bytes(),
            ]));
        }
        for r in self.exec(op, &mut cmds)? {
            if !is_ok(&r) {
                return Err(self.failed(op, "SET", r));
            }
        }
        for r in self.exec(op, &mut manifests)? {
            if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                return Err(self.failed(op, "HSET", r));
            }
        }
        for r in self.exec(op, &mut renames)? {
            if !is_ok(&r) {
                return Err(self.failed(op, "RENAME", r));
            }
        }
        Ok(())
    }

    /// Replace (or create) the object named `name`, atomically for readers,
    /// then delete the chunks of what it replaced.
    pub(crate) fn set_object(&self, op: &'static str, name: &[u8], data: &Payload) -> Result<()> {
        let old = self.manifest(op, name, false)?;
        self.write_objects(op, &[(name.to_vec(), data)], true)?;
        self.unlink_chunks(op, name, &old)
    }

    /// `HMGET name size chunk gen` (and, for `evict`, `DEL name` in the same
    /// pipeline).
    pub(crate) fn manifest(&self, op: &'static str, name: &[u8], delete: bool) -> Result<Manifest> {
        let mut cmds = vec![Cmd::keyed(&[b"HMGET", name, b"size", b"chunk", b"gen"])];
        if delete {
            cmds.push(Cmd::keyed(&[b"DEL", name]));
        }
        let mut res = self.exec(op, &mut cmds)?.into_iter();
        let m = match res.next() {
            Some(r) if is_wrongtype(&r) => Manifest::Plain,
            Some(Ok(Answer::Reply(Reply::Array(f)))) => match f.as_slice() {
                [Reply::Nil, Reply::Nil, Reply::Nil] => Manifest::Gone,
                [s, c, g] => match (
                    bulk_text(s).and_then(|s| s.parse().ok()),
                    bulk_text(c).and_then(|c| c.parse().ok()),
                    bulk_text(g),
                ) {
                    (Some(size), Some(chunk), Some(generation)) if chunk > 0 => Manifest::Chunked {
                        size,
                        chunk,
                        generation: generation.to_string(),
                    },
                    _ => {
                        return Err(Error::permanent(
                            KIND,
                            op,
                            format!(
                                "{}: not an object of this connector (a hash without size, chunk and gen)",
                                String::from_utf8_lossy(name)
                            ),
                        ));
                    }
                },
                _ => return Err(self.failed(op, "HMGET", Ok(Answer::Reply(Reply::Array(f))))),
            },
            Some(r) => return Err(self.failed(op, "HMGET", r)),
            None => return Err(self.failed(op, "HMGET", Ok(Answer::Nil))),
        };
        for r in res {
            if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                return Err(self.failed(op, "DEL", r));
            }
        }
        Ok(m)
    }

    /// Delete the chunks a manifest names (nothing for other manifests).
    pub(crate) fn unlink_chunks(&self, op: &'static str, name: &[u8], m: &Manifest) -> Result<()> {
        let Manifest::Chunked { generation, .. } = m else {
            return Ok(());
        };
        let names: Vec<Vec<u8>> = (0..m.chunks())
            .map(|i| chunk_name(name, generation, i))
            .collect();
        let mut cmds: Vec<Cmd<'_>> = names.iter().map(|c| Cmd::keyed(&[b"UNLINK", c])).collect();
        for r in self.exec(op, &mut cmds)? {
            if !matches!(r, Ok(Answer::Reply(Reply::Int(_)))) {
                return Err(self.failed(op, "UNLINK", r));
            }
        }
        Ok(())
    }

    /// Read a chunked object into one (pooled) buffer of its size. A chunk
    /// gone means the object was evicted or replaced meanwhile: its manifest
    /// is read again (a replaced object is read anew, until the failover
    /// timeout); missing chunks under an unchanged manifest are damage.
    pub(crate) fn read_chunked(&self, op: &'static str, name: &[u8]) -> Result<Option<Bytes>> {
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_millis(self.opts.failover_timeout_ms);
        let mut last: Option<Manifest> = None;
        loop {
            let m = self.manifest(op, name, false)?;
            let (size, chunk, generation) = match &m {
                Manifest::Gone => return Ok(None),
                // Neither a string (GET said so) nor a hash (a list, a set).
                Manifest::Plain if last.is_none() => {
                    return Err(Error::permanent(
                        KIND,
                        op,
                        format!(
                            "{}: WRONGTYPE: holds neither a value nor a chunk manifest",
                            String::from_utf8_lossy(name)
                        ),
                    ));
                }
                // Replaced by a plain value while read: read that.
                Manifest::Plain => {
                    return self
                        .get_names(op, &[name.to_vec()])
                        .map(|mut v| v.remove(0));
                }
                Manifest::Chunked {
                    size,
                    chunk,
                    generation,
                } => (*size, *chunk, generation.clone()),
            };
            if last.as_ref() == Some(&m) || std::time::Instant::now() >= deadline {
                return Err(Error::permanent(
                    KIND,
                    op,
                    format!(
                        "{}: chunks missing under a manifest that stays (a damaged object)",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            if size > self.opts.max_object_size || chunk > crate::REDIS_MAX_STRING {
                return Err(Error::permanent(
                    KIND,
                    op,
                    format!(
                        "{}: an object of {size} bytes in chunks of {chunk}, over this connector's max_object_size of {}",
                        String::from_utf8_lossy(name),
                        self.opts.max_object_size
                    ),
                ));
            }
            let mut buf = RecvBuf::new(size as usize, &self.recv_pool);
            let mut slices: Vec<&mut [u8]> =
                buf.as_mut_slice().chunks_mut(chunk as usize).collect();
            let per = (WINDOW_BYTES / chunk).max(1) as usize;
            let mut missing = false;
            for (w, window) in slices.chunks_mut(per).enumerate() {
                let mut cmds: Vec<Cmd<'_>> = window
                    .iter_mut()
                    .enumerate()
                    .map(|(j, dst)| {
                        Cmd::keyed(&[b"GET", &chunk_name(name, &generation, w * per + j)])
                            .into_slice(dst)
                    })
                    .collect();
                for r in self.exec(op, &mut cmds)? {
                    match r {
                        Ok(Answer::Filled) => {}
                        Ok(Answer::Nil) => missing = true,
                        r => return Err(self.failed(op, "GET", r)),
                    }
                }
                if missing {
                    break;
                }
            }
            if !missing {
                return Ok(Some(buf.into_bytes()));
            }
            last = Some(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::slots::slot_of;

    #[test]
    fn chunks_share_the_slot() {
        let n = b"job:{0b4e4b1e-6f0a-4d0c-9d3e-2a7c1f0e9b11}";
        for i in [0, 1, 17, 4095] {
            let c = chunk_name(n, "00ff00ff00ff00ff", i);
            assert_eq!(slot_of(&c), slot_of(n));
            assert!(c.ends_with(format!(":00ff00ff00ff00ff:{i}").as_bytes()));
        }
    }

    #[test]
    fn slices_of_parts() {
        let p = Payload::new()
            .with(Bytes::from_static(b"abc"))
            .with(Bytes::from_static(b"defgh"));
        let cat = |v: Vec<Bytes>| v.concat();
        assert_eq!(cat(slice_parts(&p, 0, 8)), b"abcdefgh");
        assert_eq!(cat(slice_parts(&p, 2, 5)), b"cde");
        assert_eq!(cat(slice_parts(&p, 3, 8)), b"defgh");
        assert!(slice_parts(&p, 4, 4).is_empty());
    }
}
