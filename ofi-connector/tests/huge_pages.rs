//! The server's segments from the system's huge-page pool (a `memfd` made
//! with `MFD_HUGETLB` when the pool has room), read in place by a same-node
//! reader. In its own test binary: it raises the pool (root), and no other
//! server of the run may take those pages.

mod common;

use common::OfiTests;
use object_server::testkit;

#[test]
fn huge_page_segments_shm() {
    testkit::huge_page_segments::<OfiTests>("shm", true);
}
