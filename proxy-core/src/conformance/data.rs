//! The data the cases write: position-dependent patterns, repeated chunks for
//! objects larger than memory should hold, a checksum to compare across
//! processes.

use bytes::Bytes;

use crate::connector::Payload;

/// `len` bytes that depend on `seed` and on the position: 4 KiB blocks of a
/// byte pattern, each starting with its own block number (so no two blocks
/// are equal), made with block copies (fast in unoptimised test builds).
pub fn pattern(len: usize, seed: u8) -> Bytes {
    const BLOCK: usize = 4096;
    let base: Vec<u8> = (0..BLOCK)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let mut v = Vec::with_capacity(len);
    let mut block = 0u64;
    while v.len() < len {
        let start = v.len();
        let n = BLOCK.min(len - start);
        v.extend_from_slice(&base[..n]);
        let tag = (block ^ (u64::from(seed) << 56)).to_le_bytes();
        let t = n.min(8);
        v[start..start + t].copy_from_slice(&tag[..t]);
        block += 1;
    }
    v.into()
}

/// FNV-1a over 8-byte words (to compare objects across processes).
pub(super) fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x100_0000_01b3);
    }
    for &x in chunks.remainder() {
        h = (h ^ x as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A payload of `total` bytes made of `chunk` repeated (no allocation of its
/// own): with a chunk length that does not divide 2^31 or 2^32, bytes
/// wrapped at those lengths differ from the right ones.
pub fn repeated(chunk: &Bytes, total: u64) -> Payload {
    let mut p = Payload::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64);
        p.push(chunk.slice(..n as usize));
        left -= n;
    }
    p
}

/// Panics unless `got` is `total` bytes of `chunk` repeated (see
/// [`repeated`]), naming the first chunk that differs.
pub fn assert_repeated(got: &[u8], chunk: &[u8], total: u64, what: &str) {
    assert_eq!(got.len() as u64, total, "{what}: length");
    for (i, part) in got.chunks(chunk.len()).enumerate() {
        assert!(
            part == &chunk[..part.len()],
            "{what}: bytes differ in chunk {i} (from byte {})",
            i * chunk.len()
        );
    }
}
