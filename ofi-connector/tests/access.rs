//! Read-only access, against a real server process: a reader's key
//! (`FI_REMOTE_READ` only) and a writer's key (granted for a reservation)
//! are different registrations; a one-sided write through the reader's key
//! fails wherever the provider checks MR access, and this test finds out
//! for `shm` and `tcp;ofi_rxm` that it does (`enforces_read_only`).

mod common;

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::ServerProcess;
use object_server::ClientTransport;
use object_server::layout;
use object_server::proto::{self, Request, Response, SegmentInfo};
use ofi_connector::{Ofi, OfiConfig};
use proxy_core::mem::BufferPool;

fn ask(s: &mut TcpStream, req: &Request) -> Response {
    proto::write_frame(s, req).unwrap();
    proto::read_frame(s).unwrap().expect("an answer")
}

fn segment(s: &mut TcpStream, seg: u32, write: bool) -> SegmentInfo {
    match ask(s, &Request::Segment { seg, write }) {
        Response::Segment(Some(info)) => info,
        other => panic!("segment {seg} (write {write}): {other:?}"),
    }
}

fn read_key_refuses_writes(provider: &str) {
    let server = ServerProcess::start(provider, &[]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let Response::Hello { address, .. } = ask(
        &mut s,
        &Request::Hello {
            version: proto::VERSION,
            transport: "ofi".into(),
            secret: None,
        },
    ) else {
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

    let cfg = OfiConfig::new(&server.addr).with_provider(provider);
    let ofi = Ofi::new(&cfg).unwrap();
    let peer = ofi.connect(&address).unwrap();
    let rkey = ofi.unpack(&peer, &read.descriptor).unwrap();
    let wkey = ofi.unpack(&peer, &write.descriptor).unwrap();
    let at = read.base + loc.offset + layout::HEADER as u64;
    let t = Duration::from_secs(10);

    // The writer's key writes (control: the write path itself works).
    let ok = ofi
        .put(&peer, &wkey, at, Bytes::from(vec![0xA5u8; 4096]))
        .unwrap();
    ofi.wait(&[&ok], "put", t).unwrap();
    ok.take()
        .unwrap()
        .expect("a write through the writer's key");

    // The reader's key: refused by the provider (an error, or, as shm in
    // libfabric 1.17 does, a write that never completes), or not.
    let outcome = match ofi.put(&peer, &rkey, at, Bytes::from(vec![0x5Au8; 4096])) {
        Err(e) => format!("refused at post: {e}"),
        Ok(op) => match ofi.wait(&[&op], "put", Duration::from_secs(3)) {
            Err(e) => format!("never completed: {e}"),
            Ok(()) => match op.take().unwrap() {
                Err(e) => format!("failed: {e}"),
                Ok(_) => "completed".to_string(),
            },
        },
    };
    eprintln!("{provider}: a write with the reader's key: {outcome}");

    // What is in the slot now, read through the reader's key by a fresh
    // client (the provider may have dropped the connection of the first).
    let ofi = Ofi::new(&cfg).unwrap();
    let peer = ofi.connect(&address).unwrap();
    let rkey = ofi.unpack(&peer, &read.descriptor).unwrap();
    let pool = BufferPool::new(ofi.allocator(), 1 << 20);
    let buf = pool.acquire(4096).unwrap();
    let op = ofi.get(&peer, &rkey, at, buf).unwrap();
    ofi.wait(&[&op], "get", t).unwrap();
    let buf = op.take().unwrap().unwrap();
    let refused = buf.as_slice().iter().all(|&b| b == 0xA5);
    assert!(
        refused || buf.as_slice().iter().all(|&b| b == 0x5A),
        "{provider}: slot holds neither pattern"
    );
    assert_eq!(
        refused,
        outcome != "completed",
        "{provider}: the write {outcome}, but the slot says refused = {refused}"
    );
    assert_eq!(
        refused,
        ofi_connector::enforces_read_only(provider),
        "{provider}: enforces_read_only() disagrees with what the provider does ({outcome})"
    );
}

#[test]
fn read_key_refuses_writes_shm() {
    read_key_refuses_writes("shm");
}

#[test]
fn read_key_refuses_writes_tcp() {
    read_key_refuses_writes("tcp;ofi_rxm");
}
