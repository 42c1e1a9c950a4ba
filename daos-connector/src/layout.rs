//! Where an object's bytes sit in its byte array (the array layout).
//!
//! The array is cut into chunks of the store's chunk size (one DAOS dkey
//! each, read and written by one RPC each, at one epoch each). Every chunk
//! starts with a stamp: chunk 0 with the 32-byte header, chunk `k >= 1`
//! with 16 bytes (the object id's low 64 bits and `k`, little endian). The
//! object's bytes fill the rest of each chunk, in order.
//!
//! Why stamps: a get reads all chunks in one `daos_array_read`, each chunk
//! at its own epoch, so an evict (a punch, one epoch for the whole object)
//! racing with the read can leave some chunks read before it and some after
//! (holes, which DAOS does not write into the buffer). A chunk's stamp is
//! read in the same fetch as its data, into a zeroed buffer: every stamp in
//! place means every chunk was read before the punch, so the object is whole
//! (object ids are never reused, so no other object's stamp can match); a
//! missing one means `None`. No second round trip is needed.

use std::ops::Range;

/// The first bytes of every object's header.
pub(crate) const MAGIC: &[u8; 8] = b"PSRSDAOS";
/// Bytes of chunk 0's stamp, the object header.
pub(crate) const HEADER: usize = 32;
/// Bytes of the stamp at the start of every other chunk.
pub(crate) const STAMP: usize = 16;
/// The smallest chunk size: room for a stamp and some data.
pub(crate) const MIN_CHUNK: u64 = 4096;

/// The layout of an object of `len` bytes in chunks of `chunk` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) chunk: u64,
    pub(crate) len: u64,
}

impl Layout {
    pub(crate) fn new(chunk: u64, len: u64) -> Layout {
        debug_assert!(chunk >= MIN_CHUNK);
        Layout { chunk, len }
    }

    /// Number of chunks (at least one: the header's).
    pub(crate) fn chunks(&self) -> u64 {
        let first = self.chunk - HEADER as u64;
        if self.len <= first {
            1
        } else {
            1 + (self.len - first).div_ceil(self.chunk - STAMP as u64)
        }
    }

    /// Bytes of the array the object occupies: data and stamps.
    pub(crate) fn array_len(&self) -> u64 {
        HEADER as u64 + self.len + STAMP as u64 * (self.chunks() - 1)
    }

    /// The object's bytes that chunk `k` holds (after its stamp).
    pub(crate) fn data(&self, k: u64) -> Range<u64> {
        let first = self.chunk - HEADER as u64;
        let (start, cap) = if k == 0 {
            (0, first)
        } else {
            (
                first + (k - 1) * (self.chunk - STAMP as u64),
                self.chunk - STAMP as u64,
            )
        };
        start.min(self.len)..(start + cap).min(self.len)
    }

    /// Bytes of the stamps of chunks `1..chunks()`.
    pub(crate) fn stamps_len(&self) -> usize {
        STAMP * (self.chunks() as usize - 1)
    }

    /// The stamps of chunks `1..chunks()` of object `oid_lo`, concatenated.
    pub(crate) fn stamps(&self, oid_lo: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.stamps_len());
        for k in 1..self.chunks() {
            v.extend_from_slice(&oid_lo.to_le_bytes());
            v.extend_from_slice(&k.to_le_bytes());
        }
        v
    }

    /// Whether `read` holds exactly the stamps of object `oid_lo` (no
    /// allocation: checked after every get).
    pub(crate) fn stamps_match(&self, oid_lo: u64, read: &[u8]) -> bool {
        read.len() == self.stamps_len()
            && read
                .chunks_exact(STAMP)
                .zip(1u64..)
                .all(|(s, k)| s[..8] == oid_lo.to_le_bytes() && s[8..] == k.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_object_once_in_order() {
        for chunk in [MIN_CHUNK, 4097, 1 << 20] {
            for len in [
                0,
                1,
                chunk - 32,
                chunk - 31,
                2 * chunk - 48,
                2 * chunk - 47,
                10 * chunk + 5,
            ] {
                let l = Layout::new(chunk, len);
                let mut next = 0;
                for k in 0..l.chunks() {
                    let r = l.data(k);
                    assert_eq!(r.start, next, "chunk {chunk} len {len} k {k}");
                    assert!(k == 0 || !r.is_empty(), "empty chunk {k} (len {len})");
                    next = r.end;
                }
                assert_eq!(next, len);
                // The array ends where the last chunk's data ends.
                let last = l.chunks() - 1;
                let stamp = if last == 0 { HEADER } else { STAMP } as u64;
                assert_eq!(
                    l.array_len(),
                    last * chunk + stamp + (l.data(last).end - l.data(last).start)
                );
                assert_eq!(l.stamps(7).len(), l.stamps_len());
                assert!(l.stamps_match(7, &l.stamps(7)));
                assert!(l.chunks() == 1 || !l.stamps_match(8, &l.stamps(7)));
            }
        }
    }
}
