//! The server's segments from the system's huge-page pool (UCX allocates
//! them as System V segments with `SHM_HUGETLB` when the pool has room,
//! where UCX is built with it: Debian's 1.13 is, the wheel's 1.22 not),
//! read in place by a same-node reader. In its own test binary: it raises
//! the pool (root), and no other server of the run may take those pages.

mod common;

use common::UcxTests;
use object_server::testkit;

#[test]
fn huge_page_segments_shm() {
    testkit::huge_page_segments::<UcxTests>("shm,cma,self", false);
}
