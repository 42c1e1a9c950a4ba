//! The server's segments from the system's huge-page pool (a `memfd` made
//! with `MFD_HUGETLB` when the pool has room), read in place by a same-node
//! reader. In its own test binary: it raises the pool (root), and no other
//! server of the run may take those pages.

mod common;

use common::MargoTests;
use object_server::testkit;

#[test]
#[cfg_attr(
    not(has_margo),
    ignore = "needs Margo: install Mochi Margo >= 0.20 (`spack install mochi-margo`) and build with MARGO_DIR or PKG_CONFIG_PATH naming it"
)]
fn huge_page_segments_na_sm() {
    testkit::huge_page_segments::<MargoTests>("na+sm", true);
}
