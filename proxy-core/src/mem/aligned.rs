//! Heap buffers whose first byte sits on an [`ALIGN`]-byte boundary.
//!
//! The codec pads the header of byte strings and arrays to [`ALIGN`] bytes
//! (`proxy_core::codec`), so a payload starts on that boundary whenever the
//! connector's copy of the object does. Mappings and pooled buffers start on
//! a page; small objects received into the heap use an [`AlignedBuf`].

use bytes::Bytes;

/// Alignment of every buffer a connector hands out (and, after the codec's
/// padded header, of the payloads in them): a cache line, and enough for any
/// SIMD load or `double`/`real(8)` array.
pub const ALIGN: usize = 64;

/// `len` zeroed, writable bytes starting on an [`ALIGN`]-byte boundary;
/// [`AlignedBuf::into_bytes`] hands them out without a copy.
#[derive(Debug)]
pub struct AlignedBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        let v = vec![0u8; len + ALIGN - 1];
        let off = v.as_ptr().align_offset(ALIGN);
        AlignedBuf { v, off, len }
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }

    /// The bytes as `Bytes` (same memory: still aligned).
    pub fn into_bytes(self) -> Bytes {
        // `Bytes::from(Vec)` keeps the vector's allocation (no reallocation
        // happens for a vector whose length is its capacity or not).
        Bytes::from(self.v).slice(self.off..self.off + self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_is_aligned_and_keeps_its_bytes() {
        for len in [0usize, 1, 3, 63, 64, 65, 1000, 4096, 100_003] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_mut_slice().len(), len);
            for (i, x) in b.as_mut_slice().iter_mut().enumerate() {
                *x = i as u8;
            }
            let bytes = b.into_bytes();
            assert_eq!(bytes.len(), len);
            assert_eq!(bytes.as_ptr() as usize % ALIGN, 0, "len {len}");
            assert!(bytes.iter().enumerate().all(|(i, &x)| x == i as u8));
        }
    }
}
