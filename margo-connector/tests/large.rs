//! Objects past 2 GiB over Margo: 2^31 - 1, 2^31 and 2^32 + 7 bytes
//! round-trip byte for byte through bulk pulls over `na+sm` (zero copy off)
//! and through the same node's mapped segments
//! (`object_server::testkit::objects_past_2_gib`). About 5 GiB of server
//! memory and as much in the client at the peak.

mod common;

use common::MargoTests;

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn objects_past_2_gib() {
    object_server::testkit::objects_past_2_gib::<MargoTests>("na+sm", false);
    object_server::testkit::objects_past_2_gib::<MargoTests>("na+sm", true);
}
