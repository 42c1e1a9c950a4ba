//! Read-only access, against a real server process: a reader's bulk handle
//! (`HG_BULK_READ_ONLY`) and a writer's (`HG_BULK_READWRITE`, granted for a
//! reservation) are different handles; a push through the reader's handle
//! is refused and its bytes never land, over `na+sm` and `ofi+tcp`.
//!
//! Who refuses: Mercury, in the pushing process (its check of the handle's
//! flags), before anything moves. Over `ofi+tcp` the provider would refuse it
//! too (the handle's MR has `FI_REMOTE_READ` only); over `na+sm` nothing at
//! the target would (see `margo_connector::enforces_read_only`).

mod common;

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::ServerProcess;
use margo_connector::{Margo, MargoConfig};
use object_server::ClientTransport;
use object_server::layout;
use object_server::proto::{self, Request, Response, SegmentInfo};
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

fn read_handle_refuses_pushes(protocol: &str) {
    let server = ServerProcess::start(protocol, &[]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let Response::Hello { address, .. } = ask(
        &mut s,
        &Request::Hello {
            version: proto::VERSION,
            transport: "margo".into(),
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
        "readers and writers must get different handles"
    );

    let cfg = MargoConfig::new(&server.addr).with_protocol(protocol);
    let margo = Margo::new(&cfg).unwrap();
    let peer = margo.connect(&address).unwrap();
    let rhandle = margo.unpack(&peer, &read.descriptor).unwrap();
    let whandle = margo.unpack(&peer, &write.descriptor).unwrap();
    let at = read.base + loc.offset + layout::HEADER as u64;
    let t = Duration::from_secs(10);

    // The writer's handle pushes (control: the write path itself works).
    let ok = margo
        .put(&peer, &whandle, at, Bytes::from(vec![0xA5u8; 4096]))
        .unwrap();
    margo.wait(&[&ok], "put", t).unwrap();
    ok.take()
        .unwrap()
        .expect("a push through the writer's handle");

    // The reader's handle: refused (at post, or by the transfer failing).
    let outcome = match margo.put(&peer, &rhandle, at, Bytes::from(vec![0x5Au8; 4096])) {
        Err(e) => format!("refused at post: {e}"),
        Ok(op) => match margo.wait(&[&op], "put", Duration::from_secs(3)) {
            Err(e) => format!("never completed: {e}"),
            Ok(()) => match op.take().unwrap() {
                Err(e) => format!("failed: {e}"),
                Ok(_) => "completed".to_string(),
            },
        },
    };
    eprintln!("{protocol}: a push through the reader's handle: {outcome}");
    assert_ne!(outcome, "completed", "{protocol}: the push went through");

    // What is in the slot now, read through the reader's handle.
    let margo = Margo::new(&cfg).unwrap();
    let peer = margo.connect(&address).unwrap();
    let rhandle = margo.unpack(&peer, &read.descriptor).unwrap();
    let pool = BufferPool::new(margo.allocator(), 1 << 20);
    let buf = pool.acquire(4096).unwrap();
    let op = margo.get(&peer, &rhandle, at, buf).unwrap();
    margo.wait(&[&op], "get", t).unwrap();
    let buf = op.take().unwrap().unwrap();
    assert!(
        buf.as_slice().iter().all(|&b| b == 0xA5),
        "{protocol}: the refused push changed the slot"
    );
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn read_handle_refuses_pushes_na_sm() {
    read_handle_refuses_pushes("na+sm");
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn read_handle_refuses_pushes_ofi_tcp() {
    read_handle_refuses_pushes("ofi+tcp://127.0.0.1");
}
