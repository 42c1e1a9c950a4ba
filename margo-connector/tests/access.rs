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

/// A reader's descriptor with its access flags rewritten to read-write, as a
/// process that forges handles would: Mercury 2.4's serialization after this
/// crate's 18-byte header is the `hg_bulk_desc_info` (`len` u64,
/// `segment_count` u32, `flags` u32), one segment (16 bytes), the NA
/// handle's size (8 bytes), then the NA descriptor: `na_sm_mem_desc_info`
/// (`iovcnt`, `len`, `flags` u8) or `na_ofi_mem_desc_info` (`fi_mr_key`,
/// `len`, `iovcnt`, `flags` u8). Both flags must read "read-only" first, so
/// another layout fails here, not silently.
fn forged(d: &[u8], protocol: &str) -> Vec<u8> {
    let mut f = d.to_vec();
    let hg = 18 + 12;
    let na = 18 + 16 + 16 + 8 + if protocol.starts_with("na+") { 16 } else { 24 };
    assert_eq!(
        f[hg] & 3,
        1,
        "{protocol}: HG flags {:#x} at {hg}: not Mercury 2.4's layout",
        f[hg]
    );
    assert_eq!(
        f[na], 1,
        "{protocol}: NA flags {:#x} at {na}: not Mercury 2.4's layout",
        f[na]
    );
    f[hg] |= 3;
    f[na] = 3;
    f
}

fn read_handle_refuses_pushes(protocol: &str, forge: bool) {
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
    let pushed = if forge {
        forged(&read.descriptor, protocol)
    } else {
        read.descriptor.clone()
    };
    let rhandle = margo.unpack(&peer, &pushed).unwrap();
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

    // The reader's handle (forged or not): refused (at post, or by the
    // transfer failing), or not.
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
    eprintln!("{protocol} (forged flags: {forge}): a push through the reader's handle: {outcome}");

    // What is in the slot now, read through the reader's handle by a fresh
    // client instance (the provider may have dropped the connection of the
    // first: `tcp;ofi_rxm` does on a forged key): every handle of the first
    // is dropped, so that it is finalized.
    drop((rhandle, whandle, ok, peer, margo));
    let margo = Margo::new(&cfg).unwrap();
    let peer = margo.connect(&address).unwrap();
    let rhandle = margo.unpack(&peer, &read.descriptor).unwrap();
    let pool = BufferPool::new(margo.allocator(), 1 << 20);
    let buf = pool.acquire(4096).unwrap();
    let op = margo.get(&peer, &rhandle, at, buf).unwrap();
    margo.wait(&[&op], "get", t).unwrap();
    let buf = op.take().unwrap().unwrap();
    let refused = buf.as_slice().iter().all(|&b| b == 0xA5);
    assert!(
        refused || buf.as_slice().iter().all(|&b| b == 0x5A),
        "{protocol}: slot holds neither pattern"
    );
    assert_eq!(
        refused,
        outcome != "completed",
        "{protocol}: the push {outcome}, but the slot says refused = {refused}"
    );
    if forge {
        // Only the target's own check stops a forged handle.
        let addr = std::str::from_utf8(&address).unwrap();
        assert_eq!(
            refused,
            margo_connector::enforces_read_only(addr),
            "{protocol}: enforces_read_only({addr}) disagrees with what a forged handle does ({outcome})"
        );
    } else {
        assert!(
            refused,
            "{protocol}: Mercury let a push through a read-only handle"
        );
    }
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn read_handle_refuses_pushes_na_sm() {
    read_handle_refuses_pushes("na+sm", false);
}

/// Over `na+sm` nothing at the target checks: a forged handle writes.
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn forged_read_handle_na_sm() {
    read_handle_refuses_pushes("na+sm", true);
}

/// Over `ofi+tcp` the provider checks the MR's access: a forged handle
/// does not write.
#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn forged_read_handle_ofi_tcp() {
    read_handle_refuses_pushes("ofi+tcp://127.0.0.1", true);
}

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn read_handle_refuses_pushes_ofi_tcp() {
    read_handle_refuses_pushes("ofi+tcp://127.0.0.1", false);
}
