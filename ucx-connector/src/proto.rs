//! Wire formats shared by the object server and the connector.
//!
//! **Control plane** (TCP, one connection per client thread, reused): frames of
//! `u32` little-endian length + a postcard-encoded [`Request`] / [`Response`].
//! Bulk bytes of a put (and of a stream-path read) follow their frame raw, so
//! they go straight from the socket into registered memory.
//!
//! **Object layout** in the server's registered arena:
//! `[header 32 B | payload | trailer 16 B]`, 64-byte aligned slots. The header
//! is `magic, id, len, id ^ len ^ CHECK`, the trailer `id, !id`. Object ids are
//! never reused within a server instance, and keys also carry the instance.
//! The server zeroes header and trailer when it evicts (before the slot can be
//! reused); a reader checks both after its one-sided get, then reads the
//! header again: if it still names the object, no eviction started before the
//! payload read finished, so the bytes are that object's and are complete.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Protocol version, checked at hello.
pub const VERSION: u32 = 3;
/// Header magic ("PSUCXOBJ").
pub const MAGIC: u64 = u64::from_le_bytes(*b"PSUCXOBJ");
const CHECK: u64 = 0x9e37_79b9_7f4a_7c15;
/// Header bytes before the payload.
pub const HEADER: usize = 32;
/// Trailer bytes after the payload.
pub const TRAILER: usize = 16;
/// Slot alignment in the arena.
pub const ALIGN: usize = 64;
/// Page size for address phases (see [`PHASED`]).
pub const PAGE: u64 = 4096;
/// Objects of at least this many bytes are placed at a chosen address
/// phase: the server puts the payload of a one-sided put at the same offset
/// within a page as the writer's source buffer, and readers land it at that
/// offset too. glibc's copy of hundreds of MiB (non-temporal stores, pages
/// interleaved) runs 3x slower when the destination is a little ahead of the
/// source modulo 4 KiB (4K aliasing); equal phases avoid that in both copies.
pub const PHASED: u64 = 16 << 20;
/// Largest control frame accepted (bulk bytes are not framed).
pub const MAX_FRAME: usize = 1 << 20;

/// Bytes a get reads for an object of `len` bytes (header + payload + trailer).
pub fn wire_len(len: u64) -> Option<u64> {
    len.checked_add((HEADER + TRAILER) as u64)
}

/// Arena bytes an object of `len` bytes occupies.
pub fn slot_len(len: u64) -> Option<u64> {
    let w = wire_len(len)?;
    w.checked_add(ALIGN as u64 - 1)
        .map(|v| v & !(ALIGN as u64 - 1))
}

/// The page phase at which `data`'s payload should start so that its
/// largest part keeps its own source address's phase (see [`PHASED`]).
pub fn payload_phase(data: &proxy_core::Payload) -> u64 {
    let mut at = 0u64;
    let mut best = (0usize, 0u64);
    for part in data.parts() {
        if part.len() > best.0 {
            let src = part.as_ptr() as u64 % PAGE;
            best = (part.len(), (src + PAGE - at % PAGE) % PAGE);
        }
        at += part.len() as u64;
    }
    best.1
}

/// The header for object `id` of `len` bytes.
pub fn header(id: u64, len: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    for (i, w) in [MAGIC, id, len, id ^ len ^ CHECK].into_iter().enumerate() {
        h[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    h
}

/// The trailer for object `id`.
pub fn trailer(id: u64) -> [u8; TRAILER] {
    let mut t = [0u8; TRAILER];
    t[..8].copy_from_slice(&id.to_le_bytes());
    t[8..].copy_from_slice(&(!id).to_le_bytes());
    t
}

/// Whether `h` is the header of object `id` of `len` bytes.
pub fn header_matches(h: &[u8], id: u64, len: u64) -> bool {
    h.len() >= HEADER && h[..HEADER] == header(id, len)
}

/// Whether `t` is the trailer of object `id`.
pub fn trailer_matches(t: &[u8], id: u64) -> bool {
    t.len() >= TRAILER && t[..TRAILER] == trailer(id)
}

/// Where an object lives on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Loc {
    /// Segment id (never reused by a server instance).
    pub seg: u32,
    /// Offset of the slot (header) in the segment.
    pub offset: u64,
    /// Payload length.
    pub len: u64,
    /// Object id (never reused by a server instance).
    pub id: u64,
}

/// Client to server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// First message of every connection.
    Hello {
        /// [`VERSION`].
        version: u32,
    },
    /// Store an object: `len` raw bytes follow the frame.
    Put {
        /// Payload length.
        len: u64,
    },
    /// Reserve a slot for a put whose payload the client writes itself with
    /// one-sided puts, then makes visible with [`Request::Commit`] on the same
    /// connection (reservations not committed when it closes are released).
    Reserve {
        /// Payload length.
        len: u64,
        /// For large objects: where the writer wants the payload to start
        /// within a page (`payload address % PAGE`), see [`PHASED`].
        phase: u16,
    },
    /// Make a reserved object visible (its payload is written and flushed).
    Commit(Loc),
    /// Whether the object is stored.
    Exists(Loc),
    /// Remove the object (no error if missing).
    Evict(Loc),
    /// Address, length and packed rkey of a segment (RMA data path).
    Segment(u32),
    /// Send the object's bytes over this connection (stream data path).
    Read(Loc),
    /// Arena statistics.
    Stats,
}

/// Which data path a get takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPath {
    /// RMA unless `UCX_TLS` (of the client or of the server) names only TCP
    /// (UCX 1.13 emulates RMA over TCP slowly, ~1 ms per small get).
    #[default]
    Auto,
    /// One-sided `ucp_get_nbx` from the server's registered memory.
    Rma,
    /// The server writes the bytes to the control connection.
    Stream,
}

/// Arena statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Objects stored.
    pub objects: u64,
    /// Bytes of slots in use.
    pub used: u64,
    /// Bytes registered (all segments).
    pub registered: u64,
    /// Memory limit.
    pub limit: u64,
    /// Segments mapped.
    pub segments: u64,
}

/// Server to client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Reply to [`Request::Hello`].
    Hello {
        /// Server's [`VERSION`].
        version: u32,
        /// Random per server start: keys of an earlier instance are stale.
        instance: u64,
        /// The server's UCX worker address.
        worker_address: Vec<u8>,
        /// `Stream` if the server's own `UCX_TLS` names only TCP, else `Auto`.
        data_path: DataPath,
        /// Process id of the server (to stop a server that was spawned on demand).
        pid: u32,
    },
    /// The new object's location (answer to `Put` and `Reserve`).
    Put(Loc),
    /// Answer to `Exists`.
    Bool(bool),
    /// Done.
    Ok,
    /// Segment information, `None` if the segment is gone.
    Segment(Option<SegmentInfo>),
    /// Answer to `Read`: `Some(len)` then `len` raw bytes, or `None` if missing.
    Read(Option<u64>),
    /// Answer to `Stats`.
    Stats(Stats),
    /// The object does not fit (alone or with what is stored): nothing stored.
    Full {
        /// Bytes asked for (slot).
        size: u64,
        /// Bytes in use.
        used: u64,
        /// Memory limit.
        limit: u64,
    },
    /// A request the server refused (malformed, out of range, ...).
    Error(String),
}

/// Where a registered segment is, and the key to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Remote virtual address of byte 0.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// Packed UCX remote key.
    pub rkey: Vec<u8>,
    /// Ids of all segments mapped now: a reader drops its cached remote keys
    /// (and so its mappings, on shared-memory transports) of any other.
    pub live: Vec<u32>,
}

/// Write one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = postcard::to_allocvec(msg).map_err(io::Error::other)?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)
}

/// Read one frame (`Ok(None)` on a clean end of stream before the frame).
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    postcard::from_bytes(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Whether a `UCX_TLS` value names only TCP (plus `self`), where UCX 1.13's
/// RMA is emulated in software.
pub fn tls_is_tcp_only(tls: &str) -> bool {
    let mut any = false;
    for t in tls.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if t == "self" {
            continue;
        }
        if t != "tcp" {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(slot_len(0), Some(64));
        assert_eq!(slot_len(16), Some(64));
        assert_eq!(slot_len(17), Some(128));
        assert_eq!(slot_len(u64::MAX), None);
        let h = header(7, 100);
        assert!(header_matches(&h, 7, 100));
        assert!(!header_matches(&h, 8, 100));
        assert!(!header_matches(&h, 7, 101));
        assert!(!header_matches(&[0u8; HEADER], 0, 0));
        assert!(trailer_matches(&trailer(9), 9));
        assert!(!trailer_matches(&[0u8; TRAILER], 0));
    }

    #[test]
    fn tls() {
        assert!(tls_is_tcp_only("tcp"));
        assert!(tls_is_tcp_only("tcp,self"));
        assert!(!tls_is_tcp_only("shm,cma,self"));
        assert!(!tls_is_tcp_only("self"));
        assert!(!tls_is_tcp_only("tcp,rc"));
    }

    #[test]
    fn frames() {
        let mut v = Vec::new();
        write_frame(&mut v, &Request::Put { len: 5 }).unwrap();
        let r: Request = read_frame(&mut &v[..]).unwrap().unwrap();
        assert!(matches!(r, Request::Put { len: 5 }));
        assert!(read_frame::<Request>(&mut &[][..]).unwrap().is_none());
        let bad = [0xff, 0xff, 0xff, 0x7f];
        assert!(read_frame::<Request>(&mut &bad[..]).is_err());
    }
}
