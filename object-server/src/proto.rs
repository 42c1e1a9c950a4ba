//! The control protocol between clients and the object server.
//!
//! TCP, one connection per client thread, reused. Frames are a `u32`
//! little-endian length + a postcard-encoded [`Request`] / [`Response`].
//! Bulk bytes of a put (and of a stream-path read) follow their frame raw, so
//! they go straight from the socket into registered memory.
//!
//! Every connection starts with [`Request::Hello`], which names the transport
//! the client reads with. A server that requires the job's secret answers
//! with [`Response::Challenge`], and the client proves it holds the secret
//! with [`Request::Prove`], without sending it (see [`crate::handshake`]);
//! until a hello is accepted, every other request is answered with
//! [`Response::Unauthorized`].
//!
//! Same-node readers may map the server's segments and read objects in place
//! (see the crate README, "Same-node reads without a copy"): they pin the
//! objects first, in their connection's pin page ([`Request::PinPage`]) or
//! with [`Request::Pin`], and unpin them when done; pins belong to the
//! connection that took them and are released when it closes.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Protocol version, checked at hello. 7 (6 was never released on its own):
/// slots have a 64-byte header (`layout::HEADER`, aligned payloads), which
/// readers of version 5 would misread as evicted objects; a server reuses a
/// freed slot no sooner than [`crate::REUSE_GRACE`] after it hid the object
/// in it, so that clients may skip the header re-read of a fast get;
/// node-level dedup and the relay ([`Request::Fetch`], [`Request::Source`],
/// [`Request::RelayRead`], [`Request::Dropped`], [`CONTROL_ONLY`]).
/// 8: the secret never travels; a challenge-response proves it both ways,
/// bound to the address the client dialed ([`Response::Challenge`],
/// [`Request::Prove`], the proof in [`Response::Hello`]).
pub const VERSION: u32 = 8;
/// Largest control frame accepted (bulk bytes are not framed).
pub const MAX_FRAME: usize = 1 << 20;

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

/// The transport a hello names for a connection that only uses the control
/// plane (a node server talking to an object's owner or to another node
/// server, see [`Request::Fetch`]): it gets no fabric address and no
/// descriptor.
pub const CONTROL_ONLY: &str = "control";

/// An object of some server, named by what its key carries: the owner's
/// `host:port`, its instance and the location there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Remote {
    /// `host:port` of the owner's control plane.
    pub server: String,
    /// The owner's instance that stored it.
    pub instance: u64,
    /// Where it is on the owner.
    pub loc: Loc,
}

/// Answer to [`Request::Fetch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fetched {
    /// A replica in this server's arena, read like any of its objects.
    Replica(Loc),
    /// Read it from its owner yourself, this time (why: no room for a
    /// replica, the relay failed, the owner did not answer).
    Direct(String),
    /// Read it from its owner yourself, always: the owner is this server or
    /// another server on this node (read in place).
    SameNode,
    /// The owner does not have it (evicted, or another instance's).
    Missing,
}

/// Answer to [`Request::Source`]: where a node server reads an object from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// From the owner itself.
    Owner,
    /// From this node server (`host:port`), which holds or is receiving it.
    Node(String),
    /// The owner does not have it.
    Missing,
}

/// Client to server.
#[derive(Clone, Serialize, Deserialize)]
pub enum Request {
    /// First message of every connection.
    Hello {
        /// [`VERSION`].
        version: u32,
        /// The transport this client reads with (`"ucx"`, `"ofi"`, ...).
        transport: String,
        /// Versions before 8 carried the job's secret here. Since 8 it is
        /// always `None` (kept so that a server of another version decodes
        /// the hello and answers with its version error); a server refuses a
        /// hello that carries one.
        secret: Option<Vec<u8>>,
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
        /// within a page (`payload address % PAGE`), see [`crate::layout::PHASED`].
        phase: u16,
    },
    /// Make a reserved object visible (its payload is written and flushed).
    Commit(Loc),
    /// Whether the object is stored.
    Exists(Loc),
    /// Remove the object (no error if missing).
    Evict(Loc),
    /// Address, length and remote-access descriptor of a segment for the
    /// hello's transport. `write` asks for write access, which is granted
    /// only to a connection holding a reservation in that segment.
    Segment {
        /// Segment id.
        seg: u32,
        /// Write access (one-sided puts into a reservation).
        write: bool,
    },
    /// Send the object's bytes over this connection (stream data path).
    Read(Loc),
    /// Arena statistics.
    Stats,
    /// Pin objects for reading in place (same-node readers that mapped the
    /// segment): while pinned, an object's slot is not reused (an evicted
    /// object is hidden at once, its slot freed after the last unpin).
    /// Answered with [`Response::Pinned`].
    Pin(Vec<Loc>),
    /// Release pins this connection took (one per location; no answer).
    /// Locations this connection has not pinned are ignored.
    Unpin(Vec<Loc>),
    /// The connection's pin page: a shared-memory page of
    /// 8192 words the reader writes the ids of the
    /// objects it holds into (0: free), with no request per get; the server
    /// reads it before it frees an evicted object, and forgets it when the
    /// connection closes. Answered with [`Response::PinPage`].
    PinPage,
    // Version 6: node-level dedup and relay (see the crate README, "One
    // object, many nodes").
    /// To this node's server, from a reader on its node: the object of
    /// another server, through a replica here (fetched once, whoever asks,
    /// and checked with its owner on every fetch). Answered with zero or more
    /// [`Response::Progress`] frames, then [`Response::Fetched`].
    Fetch(Remote),
    /// To an object's owner, from a node server about to fetch it: whom to
    /// read it from (`me`: the asker's `host:port`; `failed`: sources that
    /// failed it). Answered with [`Response::Source`].
    Source {
        /// The object, on the owner.
        loc: Loc,
        /// The asking node server's advertised `host:port`.
        me: String,
        /// Node servers that failed the asker (dropped from the relay).
        failed: Vec<String>,
    },
    /// Send the object's bytes from `offset` on as they arrive: the owner
    /// its object, a node server its replica (complete or being received).
    /// Answered like [`Request::Read`] (`Some(len - offset)` then the bytes;
    /// `None`: not here); a relay that fails midway closes the connection.
    RelayRead {
        /// The object.
        remote: Remote,
        /// First byte wanted.
        offset: u64,
    },
    /// From an object's owner to the node servers that received it: it was
    /// evicted, drop the replica (no answer; memory hygiene only: a replica
    /// answers no fetch without the owner's word that the object exists).
    Dropped(Remote),
    // Version 8.
    /// The answer to [`Response::Challenge`]: the client's nonce, the
    /// address it dialed, and its proof of the job's secret over both nonces,
    /// the transport and that address ([`crate::handshake`]). Answered with
    /// [`Response::Hello`] (with the server's proof) or
    /// [`Response::Unauthorized`].
    Prove {
        /// 32 random bytes of the client's.
        nonce: [u8; 32],
        /// The address the client connected to, `ip:port`.
        dialed: String,
        /// HMAC-SHA-256 of the client's side, keyed with the secret.
        mac: [u8; 32],
    },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Hello {
                version,
                transport,
                secret,
            } => f
                .debug_struct("Hello")
                .field("version", version)
                .field("transport", transport)
                .field("secret", &secret.as_ref().map(|_| "<redacted>"))
                .finish(),
            Request::Put { len } => f.debug_struct("Put").field("len", len).finish(),
            Request::Reserve { len, phase } => f
                .debug_struct("Reserve")
                .field("len", len)
                .field("phase", phase)
                .finish(),
            Request::Commit(l) => f.debug_tuple("Commit").field(l).finish(),
            Request::Exists(l) => f.debug_tuple("Exists").field(l).finish(),
            Request::Evict(l) => f.debug_tuple("Evict").field(l).finish(),
            Request::Segment { seg, write } => f
                .debug_struct("Segment")
                .field("seg", seg)
                .field("write", write)
                .finish(),
            Request::Read(l) => f.debug_tuple("Read").field(l).finish(),
            Request::Stats => f.write_str("Stats"),
            Request::Pin(l) => f.debug_tuple("Pin").field(&l.len()).finish(),
            Request::Unpin(l) => f.debug_tuple("Unpin").field(&l.len()).finish(),
            Request::PinPage => f.write_str("PinPage"),
            Request::Fetch(r) => f.debug_tuple("Fetch").field(r).finish(),
            Request::Source { loc, me, failed } => f
                .debug_struct("Source")
                .field("loc", loc)
                .field("me", me)
                .field("failed", failed)
                .finish(),
            Request::Dropped(r) => f.debug_tuple("Dropped").field(r).finish(),
            Request::RelayRead { remote, offset } => f
                .debug_struct("RelayRead")
                .field("remote", remote)
                .field("offset", offset)
                .finish(),
            Request::Prove { dialed, .. } => f
                .debug_struct("Prove")
                .field("dialed", dialed)
                .finish_non_exhaustive(),
        }
    }
}

/// Which data path a get takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPath {
    /// One-sided reads unless the transport says they are slow where it runs
    /// (e.g. UCX 1.13 emulates RMA over TCP in software, ~1 ms per small get).
    #[default]
    Auto,
    /// One-sided reads from the server's registered memory.
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
    /// Control connections open now.
    pub clients: u64,
    /// Pins held by same-node readers (counted once per pin).
    pub pins: u64,
    /// Replicas of other servers' objects held (complete or being received).
    pub replicas: u64,
    /// Bytes of those replicas.
    pub replica_bytes: u64,
    /// Objects of other servers this server received for its node (each
    /// once, however many readers asked: [`Request::Fetch`]).
    pub relay_fetches: u64,
    /// Bytes received for them.
    pub relay_bytes_in: u64,
    /// Bytes this server sent to other servers ([`Request::RelayRead`]).
    pub relay_bytes_out: u64,
    /// Fetches answered from a replica already here.
    pub replica_hits: u64,
}

impl Stats {
    /// `name value` lines, one per figure (what `SERVER --stats ADDR` prints).
    pub fn lines(&self) -> String {
        let f = [
            ("objects", self.objects),
            ("used", self.used),
            ("registered", self.registered),
            ("limit", self.limit),
            ("segments", self.segments),
            ("clients", self.clients),
            ("pins", self.pins),
            ("replicas", self.replicas),
            ("replica_bytes", self.replica_bytes),
            ("relay_fetches", self.relay_fetches),
            ("relay_bytes_in", self.relay_bytes_in),
            ("relay_bytes_out", self.relay_bytes_out),
            ("replica_hits", self.replica_hits),
        ];
        f.iter().map(|(n, v)| format!("{n} {v}\n")).collect()
    }
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
        /// The server's address on the hello's transport (e.g. a UCX worker address).
        address: Vec<u8>,
        /// `Stream` if the server's transport prefers it (see [`DataPath::Auto`]), else `Auto`.
        data_path: DataPath,
        /// Process id of the server (to stop a server that was spawned on
        /// demand, and to open its segments' files on the same node).
        pid: u32,
        /// The server's [`host_id`] (kernel boot id, PID and IPC namespaces;
        /// empty if unknown): a client with the same one runs on the same
        /// node, sees the server's pid and System V segments, and may map the
        /// segments.
        host_id: String,
        /// The server's proof of the job's secret, answering a
        /// [`Request::Prove`] (`None`: the server required no secret of this
        /// connection).
        proof: Option<[u8; 32]>,
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
    /// No accepted hello on this connection, or a wrong or missing secret:
    /// nothing was done and no descriptor is handed out.
    Unauthorized(String),
    /// A request the server refused (malformed, out of range, ...).
    Error(String),
    // Variants added in version 5 come last: the tags of the ones above
    // (Hello, Unauthorized and Error above all) stay those of version 4, so
    // that a client and a server of different versions still understand the
    // version error of the hello.
    /// Answer to `Pin`: whether each object was pinned (`false`: not stored).
    Pinned(Vec<bool>),
    /// Answer to `PinPage`: where the page is (`None`: no page, pin with
    /// `Pin` requests).
    PinPage(Option<ShmSegment>),
    /// Bytes of a [`Request::Fetch`] received so far (sent while it runs, so
    /// that the reader bounds the time without progress, not the transfer).
    Progress(u64),
    /// Answer to `Fetch`.
    Fetched(Fetched),
    /// Answer to `Source`.
    Source(Source),
    // Version 8.
    /// Answer to a hello when the server requires the job's secret: prove it
    /// with [`Request::Prove`] over this nonce.
    Challenge {
        /// 32 random bytes of the server's, new for each connection.
        nonce: [u8; 32],
    },
}

/// Where a registered segment is, and the descriptor to access it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Remote virtual address of byte 0.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// The transport's remote-access descriptor (a packed UCX remote key, a
    /// libfabric key, a serialized Mercury bulk handle).
    pub descriptor: Vec<u8>,
    /// Ids of all segments mapped now: a reader drops its cached remote keys
    /// (and so its mappings, on shared-memory transports) of any other.
    pub live: Vec<u32>,
    /// The segment's shared-memory file, for readers on the server's node
    /// (`None`: the server keeps it private).
    pub shm: Option<ShmSegment>,
}

/// Where a segment's shared memory is, for a reader on the server's node:
/// the segment's bytes start `offset` bytes into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShmSegment {
    /// A shared-memory file (a `memfd` of the server's, or a fabric's file
    /// under `/dev/shm`) open as `/proc/PID/fd/FD` in the server process,
    /// checked by its inode and device before it is mapped.
    File {
        /// File descriptor in the server process.
        fd: i32,
        /// Inode number of the file.
        ino: u64,
        /// Device of the file.
        dev: u64,
        /// Offset of the segment in the file.
        offset: u64,
    },
    /// A System V shared-memory segment (UCX allocates these), attached
    /// read-only by id, checked by its creator (the server process) and size.
    SysV {
        /// The segment's id.
        shmid: i32,
        /// Offset of the segment in it.
        offset: u64,
    },
}

/// Who can map this process's shared memory: the kernel's boot id and this
/// process's PID and IPC namespaces (`<boot id> pid:<inode> ipc:<inode>`;
/// empty if any is unknown). Equal for two processes only if each can open
/// the other's `/proc/<pid>/fd/<fd>` by that pid and attach its System V
/// segments by id. The boot id alone is not enough: namespaces (containers,
/// the nodes of `scripts/cluster/`) share the kernel, and there the server's
/// pid and shmid may name another process's and another segment's there.
pub fn host_id() -> String {
    let ns = |n: &str| {
        std::fs::metadata(format!("/proc/self/ns/{n}"))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    };
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    match (boot.is_empty(), ns("pid"), ns("ipc")) {
        (false, Some(pid), Some(ipc)) => format!("{boot} pid:{pid} ipc:{ipc}"),
        _ => String::new(),
    }
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
/// A frame over [`MAX_FRAME`] or one that does not decode is an
/// `InvalidData` error; nothing is allocated before the length is checked.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<T>> {
    // End of stream before a frame starts is a clean end; inside the
    // length prefix (or the body) it is a truncated frame.
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended {got} bytes into a frame's 4-byte length"),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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
    match postcard::take_from_bytes(&body) {
        Ok((v, [])) => Ok(Some(v)),
        Ok((_, rest)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} trailing bytes in a frame", rest.len()),
        )),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    /// The host id names the boot id and this process's PID and IPC
    /// namespaces: two processes of one kernel in other namespaces (the
    /// nodes of `scripts/cluster/`) get other ids, so neither maps the
    /// other's memory by a pid or shmid that means something else there.
    #[test]
    fn host_id_names_boot_and_namespaces() {
        let id = super::host_id();
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let ino = |n: &str| {
            std::fs::metadata(format!("/proc/self/ns/{n}"))
                .unwrap()
                .ino()
        };
        assert_eq!(
            id,
            format!("{} pid:{} ipc:{}", boot.trim(), ino("pid"), ino("ipc"))
        );
    }

    use super::*;

    #[test]
    fn frames() {
        let mut v = Vec::new();
        write_frame(&mut v, &Request::Put { len: 5 }).unwrap();
        let r: Request = read_frame(&mut &v[..]).unwrap().unwrap();
        assert!(matches!(r, Request::Put { len: 5 }));
        assert!(read_frame::<Request>(&mut &[][..]).unwrap().is_none());
        let bad = [0xff, 0xff, 0xff, 0x7f];
        assert!(read_frame::<Request>(&mut &bad[..]).is_err());
        // A frame with trailing bytes is refused.
        let mut t = Vec::new();
        write_frame(&mut t, &Request::Stats).unwrap();
        t[0] += 1;
        t.push(0);
        assert!(read_frame::<Request>(&mut &t[..]).is_err());
    }

    /// The tags (postcard variant indices) that a client and a server of
    /// different protocol versions must agree on to exchange the hello and
    /// its version error: Hello is request 0 and answer 0, Unauthorized and
    /// Error keep their version-4 tags (8 and 9); new variants go last.
    #[test]
    fn hello_and_error_tags_are_stable_across_versions() {
        let tag = |r: &Response| postcard::to_allocvec(r).unwrap()[0];
        assert_eq!(tag(&Response::Unauthorized("x".into())), 8);
        assert_eq!(tag(&Response::Error("x".into())), 9);
        let hello = Request::Hello {
            version: 4,
            transport: "ucx".into(),
            secret: None,
        };
        assert_eq!(postcard::to_allocvec(&hello).unwrap()[0], 0);
        // A version-4 server's answer to a newer client's hello, byte for
        // byte: tag 9, then the message.
        let mut v4_error = vec![9u8];
        let msg = "protocol version 5 (server speaks 4)";
        v4_error.push(msg.len() as u8);
        v4_error.extend_from_slice(msg.as_bytes());
        let mut frame = (v4_error.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&v4_error);
        let r: Response = read_frame(&mut &frame[..]).unwrap().unwrap();
        assert!(matches!(r, Response::Error(m) if m == msg));
    }

    #[test]
    fn truncated_frames_are_errors_not_a_clean_end() {
        let mut v = Vec::new();
        write_frame(&mut v, &Request::Put { len: 5 }).unwrap();
        for cut in 1..v.len() {
            let e = read_frame::<Request>(&mut &v[..cut]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
        // A reader that hands out one byte at a time still gets the frame.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let r: Request = read_frame(&mut OneByte(&v)).unwrap().unwrap();
        assert!(matches!(r, Request::Put { len: 5 }));
        assert!(read_frame::<Request>(&mut OneByte(&[])).unwrap().is_none());
    }

    #[test]
    fn secret_is_not_printed() {
        let r = Request::Hello {
            version: VERSION,
            transport: "ucx".into(),
            secret: Some(b"hunter2".to_vec()),
        };
        let s = format!("{r:?}");
        assert!(!s.contains("hunter2") && s.contains("redacted"), "{s}");
    }
}
