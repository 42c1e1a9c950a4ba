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

use common::MargoTests;
use object_server::testkit::access::write_through_reader_descriptor;

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
    let w = write_through_reader_descriptor::<MargoTests>(protocol, |d| {
        if forge {
            forged(d, protocol)
        } else {
            d.to_vec()
        }
    });
    let (refused, outcome) = (w.refused, &w.outcome);
    eprintln!("{protocol} (forged flags: {forge}): a push through the reader's handle: {outcome}");
    if forge {
        // Only the target's own check stops a forged handle.
        let addr = std::str::from_utf8(&w.address).unwrap();
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
