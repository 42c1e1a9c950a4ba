//! Scatter-gather lists: where an array I/O's bytes are in memory (each
//! chunk's stamp, then its part of the object, as [`Layout`] places them).
//! The pointers are only stored here; the operation that uses them keeps
//! what they point to alive.

use std::ops::Range;

use daos_sys::d_iov_t;

use crate::buffer::Dest;
use crate::layout::{HEADER, Layout, STAMP};

/// The scatter-gather list of the object's whole array range: for each
/// chunk its stamp (chunk 0: the `HEADER` bytes at `header`; chunk `k`:
/// the `STAMP` bytes at `stamps + (k-1) * STAMP`), then the buffers
/// `data` pushes for the object bytes the chunk holds.
///
/// The pointers are only stored: the caller keeps what they point to
/// alive (and, for a read, writable) until the I/O completes.
pub(crate) fn layout_iovs(
    layout: &Layout,
    header: *mut u8,
    stamps: *mut u8,
    mut data: impl FnMut(Range<u64>, &mut Vec<d_iov_t>),
) -> Vec<d_iov_t> {
    let mut v = Vec::with_capacity(2 * layout.chunks() as usize);
    for k in 0..layout.chunks() {
        let (p, n) = if k == 0 {
            (header, HEADER)
        } else {
            (stamps.wrapping_add((k as usize - 1) * STAMP), STAMP)
        };
        v.push(iov(p, n));
        let r = layout.data(k);
        if !r.is_empty() {
            data(r, &mut v);
        }
    }
    v
}

/// One buffer of `n` bytes at `p`.
pub(crate) fn iov(p: *mut u8, n: usize) -> d_iov_t {
    d_iov_t {
        iov_buf: p.cast(),
        iov_buf_len: n,
        iov_len: n,
    }
}

/// `data` for [`layout_iovs`] when the object's bytes go to (or come
/// from) one contiguous buffer at `dest`.
pub(crate) fn contiguous(dest: *mut u8) -> impl FnMut(Range<u64>, &mut Vec<d_iov_t>) {
    move |r, v| {
        v.push(iov(
            dest.wrapping_add(r.start as usize),
            (r.end - r.start) as usize,
        ))
    }
}

/// The pieces of `parts` (one object's bytes, in order) that cover
/// `range` of the object, as (pointer, length).
pub(crate) fn pieces(parts: &[bytes::Bytes], range: Range<u64>) -> Vec<(*const u8, usize)> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for p in parts {
        let (s, e) = (at, at + p.len() as u64);
        at = e;
        let (lo, hi) = (range.start.max(s), range.end.min(e));
        if lo < hi {
            out.push((p[(lo - s) as usize..].as_ptr(), (hi - lo) as usize));
        }
    }
    out
}

/// The buffer of `dest`, if it has one.
pub(crate) fn dest_iov(dest: &mut Dest) -> Option<d_iov_t> {
    let (ptr, len) = match dest {
        Dest::None => return None,
        Dest::Heap(v) => (v.as_mut_ptr(), v.len()),
        Dest::Pooled(b) => {
            let s = b.as_mut_slice();
            (s.as_mut_ptr(), s.len())
        }
    };
    Some(d_iov_t {
        iov_buf: ptr.cast(),
        iov_buf_len: len,
        iov_len: len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MIN_CHUNK;

    #[test]
    fn the_list_covers_the_array_range() {
        for chunk in [MIN_CHUNK, 4097, 1 << 20] {
            for len in [0, 1, chunk - 32, chunk - 31, 2 * chunk - 47, 10 * chunk + 5] {
                let l = Layout::new(chunk, len);
                // One stamp iov per chunk, one data iov per non-empty chunk.
                let mut buf = vec![0u8; len as usize];
                let v = layout_iovs(
                    &l,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    contiguous(buf.as_mut_ptr()),
                );
                let data: usize = v.iter().map(|i| i.iov_len).sum();
                assert_eq!(data as u64, l.array_len());
                assert_eq!(v.len() as u64, l.chunks() + u64::from(len > 0) * l.chunks());
            }
        }
    }

    #[test]
    fn pieces_span_parts() {
        let parts = [
            bytes::Bytes::from_static(b"abc"),
            bytes::Bytes::from_static(b""),
            bytes::Bytes::from_static(b"defg"),
        ];
        let text = |r: Range<u64>| {
            let mut s = Vec::new();
            for (p, n) in pieces(&parts, r) {
                // SAFETY: the pieces point into `parts`, alive here.
                s.extend_from_slice(unsafe { std::slice::from_raw_parts(p, n) });
            }
            String::from_utf8(s).unwrap()
        };
        assert_eq!(text(0..7), "abcdefg");
        assert_eq!(text(2..5), "cde");
        assert_eq!(text(3..3), "");
        assert_eq!(text(6..7), "g");
    }
}
