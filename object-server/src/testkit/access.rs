//! Read-only access against a real server process: a reader's descriptor
//! and a writer's (granted for a reservation) are different registrations,
//! and what a one-sided write through the reader's descriptor does.

use std::net::TcpStream;
use std::time::Duration;

use proxy_core::Bytes;
use proxy_core::mem::BufferPool;

use super::{Fabric, ServerProcess};
use crate::proto::{self, Request, Response, SegmentInfo};
use crate::{ClientTransport, Operation, layout};

/// Say hello on a raw control connection over `transport`, proving the
/// secret this process's clients bring (the environment's, else the user's):
/// the server's answer ([`Response::Hello`] if accepted).
pub fn greet(s: &mut TcpStream, transport: &str) -> Response {
    let secret = crate::Secret::for_client(None).expect("the environment's secret");
    greet_with(s, transport, secret.as_ref())
}

/// Say hello on a raw control connection over `transport` with `secret`.
pub fn greet_with(s: &mut TcpStream, transport: &str, secret: Option<&crate::Secret>) -> Response {
    let dialed = s.peer_addr().expect("a connected stream");
    crate::handshake::greet(s, transport, secret, dialed)
        .expect("the hello's exchange")
        .expect("an answer")
}

/// One request/response on a raw control connection.
pub fn ask(s: &mut TcpStream, req: &Request) -> Response {
    proto::write_frame(s, req).unwrap();
    proto::read_frame(s).unwrap().expect("an answer")
}

/// The descriptor of segment `seg` for reading or (`write`) writing.
pub fn segment(s: &mut TcpStream, seg: u32, write: bool) -> SegmentInfo {
    match ask(s, &Request::Segment { seg, write }) {
        Response::Segment(Some(info)) => info,
        other => panic!("segment {seg} (write {write}): {other:?}"),
    }
}

/// What a write through a reader's descriptor did.
#[derive(Debug)]
pub struct ReaderWrite {
    /// How the write ended: `"completed"`, or how it was refused.
    pub outcome: String,
    /// Whether the slot kept what the writer's descriptor wrote.
    pub refused: bool,
    /// The server's fabric address (from its hello).
    pub address: Vec<u8>,
}

/// Reserve a slot on a fresh server over `fabric`, write it through the
/// writer's descriptor (control: the write path works), then through the
/// reader's descriptor as `forge` rewrites it (identity: as handed out),
/// and read the slot back with a fresh client. Asserts that readers and
/// writers get different descriptors, that the slot holds one of the two
/// writes whole, and that it kept the first exactly when the second did not
/// complete; returns what happened, for the caller to check against what
/// its fabric promises (`enforces_read_only`).
pub fn write_through_reader_descriptor<F: Fabric>(
    fabric: &str,
    forge: impl Fn(&[u8]) -> Vec<u8>,
) -> ReaderWrite {
    let server = ServerProcess::<F>::start(fabric, &[]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let Response::Hello { address, .. } = greet(&mut s, F::Transport::NAME) else {
        panic!("hello refused");
    };
    let Response::Put(loc) = ask(
        &mut s,
        &Request::Reserve {
            len: 4096,
            phase: 0,
        },
    ) else {
        panic!("reserve refused");
    };
    let read = segment(&mut s, loc.seg, false);
    let write = segment(&mut s, loc.seg, true);
    assert_ne!(
        read.descriptor, write.descriptor,
        "readers and writers must get different registrations"
    );

    let cfg = F::config(&server.addr, fabric);
    let fab = F::Transport::new(&cfg).unwrap();
    let peer = fab.connect(&address, false).unwrap();
    let rkey = fab.unpack(&peer, &forge(&read.descriptor)).unwrap();
    let wkey = fab.unpack(&peer, &write.descriptor).unwrap();
    let at = read.base + loc.offset + layout::HEADER as u64;
    let t = Duration::from_secs(10);

    // The writer's descriptor writes (control: the write path itself works).
    let ok = fab
        .put(&peer, &wkey, at, Bytes::from(vec![0xA5u8; 4096]))
        .unwrap();
    fab.wait(&[&ok], "put", t).unwrap();
    ok.take()
        .unwrap()
        .expect("a write through the writer's descriptor");

    // The reader's descriptor: refused (at post, by the operation failing,
    // or, as libfabric 1.17's shm does, by a write that never completes), or
    // not.
    let outcome = match fab.put(&peer, &rkey, at, Bytes::from(vec![0x5Au8; 4096])) {
        Err(e) => format!("refused at post: {e}"),
        Ok(op) => match fab.wait(&[&op], "put", Duration::from_secs(3)) {
            Err(e) => format!("never completed: {e}"),
            Ok(()) => match op.take().unwrap() {
                Err(e) => format!("failed: {e}"),
                Ok(_) => "completed".to_string(),
            },
        },
    };
    eprintln!("{fabric}: a write through the reader's descriptor: {outcome}");

    // What is in the slot now, read through the reader's descriptor by a
    // fresh client (the provider may have dropped the connection of the
    // first: `tcp;ofi_rxm` does on a forged key): every handle of the first
    // is dropped first, so that it is finalized.
    drop((rkey, wkey, ok, peer, fab));
    let fab = F::Transport::new(&cfg).unwrap();
    let peer = fab.connect(&address, false).unwrap();
    let rkey = fab.unpack(&peer, &read.descriptor).unwrap();
    let pool = BufferPool::new(fab.allocator(), 1 << 20);
    let buf = pool.acquire(4096).unwrap();
    let op = fab.get(&peer, &rkey, at, buf).unwrap();
    fab.wait(&[&op], "get", t).unwrap();
    let buf = op.take().unwrap().unwrap();
    let refused = buf.as_slice().iter().all(|&b| b == 0xA5);
    assert!(
        refused || buf.as_slice().iter().all(|&b| b == 0x5A),
        "{fabric}: slot holds neither pattern"
    );
    assert_eq!(
        refused,
        outcome != "completed",
        "{fabric}: the write {outcome}, but the slot says refused = {refused}"
    );
    ReaderWrite {
        outcome,
        refused,
        address,
    }
}
