//! Objects past 2 GiB over libfabric: 2^31 - 1, 2^31 and 2^32 + 7 bytes
//! round-trip byte for byte through one-sided reads (zero copy off) and
//! through the same node's mapped segments.

mod common;

use common::OfiTests;

#[test]
fn objects_past_2_gib() {
    object_server::testkit::objects_past_2_gib::<OfiTests>("shm", false);
    object_server::testkit::objects_past_2_gib::<OfiTests>("shm", true);
}
