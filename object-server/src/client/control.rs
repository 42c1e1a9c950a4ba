//! The client side of the control plane, as data: a peer (a server this
//! client talks to, its control connections, its endpoint on the client's
//! transport, its segments' descriptors), what a server says at hello, and
//! the errors of control exchanges. How a client finds, opens and talks to
//! its peers is in `peer.rs`.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::stream::Conn;
use parking_lot::Mutex;
use proxy_core::{Error, Payload};

use super::mapped::MappedPeer;
use crate::proto::{self, DataPath, Request, Response};
use crate::transport::ClientTransport;

/// A segment's descriptor, unpacked for this client's endpoint.
pub(crate) struct SegHandle<T: ClientTransport> {
    pub(crate) base: u64,
    pub(crate) len: u64,
    pub(crate) remote: T::Remote,
    /// The packed descriptor (a write handle with the same bytes as a read
    /// handle is the same handle: one unpacked key, one mapping).
    pub(crate) descriptor: Vec<u8>,
}

pub(crate) struct Peer<T: ClientTransport> {
    pub(crate) addr: String,
    pub(crate) instance: u64,
    pub(crate) pid: u32,
    pub(crate) path: DataPath,
    /// The server's fabric address (from hello), for [`Peer::ep`].
    pub(crate) address: Vec<u8>,
    /// The server runs on this node's kernel, in this process's PID and IPC
    /// namespaces (its host id is ours).
    pub(crate) same_host: bool,
    /// The fabric endpoint of an `Rma` peer, connected when a get or put
    /// first needs it ([`crate::client::ObjectClient::endpoint`]): a peer
    /// whose gets all read its mapped segments never connects.
    pub(crate) ep: std::sync::OnceLock<T::Endpoint>,
    /// Serializes the connect of `ep`.
    pub(crate) ep_init: Mutex<()>,
    /// The hello connection, never used for requests: the kernel closes it
    /// when the server process dies, which a one-byte `MSG_PEEK` sees. This
    /// is how a get notices a dead server whose memory is still mapped here
    /// (shared-memory transports keep the mapping alive).
    pub(crate) watch: Conn,
    pub(crate) idle: Mutex<Vec<Conn>>,
    /// Connections holding reservations whose one-sided puts failed or timed
    /// out: the fabric may still write into those slots, so they must not be
    /// released (closing the connection would) while this process lives.
    pub(crate) quarantine: Mutex<Vec<Conn>>,
    /// Read-only descriptors (`None`: the segment is gone).
    pub(crate) segments: Mutex<HashMap<u32, Option<Arc<SegHandle<T>>>>>,
    /// Read-write descriptors, granted for reservations of this client.
    pub(crate) write_segments: Mutex<HashMap<u32, Arc<SegHandle<T>>>>,
    /// Same-node reads in place (`None`: the server is elsewhere, or zero
    /// copy is off).
    pub(crate) mapped: Option<MappedPeer>,
}

impl<T: ClientTransport> Peer<T> {
    /// Whether the server process still holds its end of the watch connection.
    pub(crate) fn alive(&self) -> bool {
        let mut b = 0u8;
        // SAFETY: a non-blocking one-byte peek into a local on a socket we own.
        let n = unsafe {
            libc::recv(
                self.watch.as_raw_fd(),
                (&raw mut b).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        // 0: orderly close (server gone); -1/EAGAIN: alive and quiet.
        n != 0 && !(n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock)
    }
}

/// What a server said at hello.
pub(crate) struct Hello {
    pub(crate) instance: u64,
    pub(crate) address: Vec<u8>,
    pub(crate) data_path: DataPath,
    pub(crate) pid: u32,
    pub(crate) host_id: String,
}

/// Outcome of a control exchange on a connection.
pub(crate) enum Ctl<T> {
    Done(T),
    /// The server answered hello with another instance: our peer is stale.
    Stale,
}

/// A control-plane failure: which server, and the I/O error as the source.
#[derive(Debug)]
pub struct ControlError {
    /// `host:port` of the server.
    pub server: String,
    /// What failed.
    pub source: io::Error,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object server {}: {}", self.server, self.source)
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A control-plane I/O failure of `op` on server `addr`: a read or write
/// that ran into the connection's timeout (`after`) is [`Error::Timeout`],
/// anything else a temporary connector error naming the server.
pub(crate) fn ctl_err(
    kind: &str,
    op: &'static str,
    addr: &str,
    after: std::time::Duration,
    e: io::Error,
) -> Error {
    if is_timeout(&e) {
        return Error::Timeout {
            connector: kind.into(),
            operation: op,
            after,
        };
    }
    let source = ControlError {
        server: addr.to_string(),
        source: e,
    };
    Error::temporary(kind, op, source)
}

/// Whether `e` is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` report
/// `EAGAIN`).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub(crate) fn unexpected(kind: &str, op: &'static str, r: Response) -> Error {
    match r {
        Response::Unauthorized(m) => Error::permanent(kind, op, m),
        r => Error::permanent(
            kind,
            op,
            format!("unexpected answer from the object server: {r:?}"),
        ),
    }
}

pub(crate) fn send_request(s: &mut Conn, req: &Request, body: Option<&Payload>) -> io::Result<()> {
    proto::write_frame(s, req)?;
    if let Some(p) = body {
        p.write_all_to(s)?;
    }
    Ok(())
}
