//! Object layout in the server's registered segments.
//!
//! `[header 64 B | payload | trailer 16 B]`, 64-byte aligned slots, so the
//! payload (an encoded object) starts on a 64-byte boundary, and so does the
//! data after the codec's padded header (`proxy_core::codec::PAYLOAD_ALIGN`):
//! in the server's segments, in a same-node reader's mapping and in a remote
//! reader's receive buffer. The header is `magic, id, len, id ^ len ^ CHECK`
//! and 32 zero bytes, the trailer `id, !id`.
//! Object ids are never reused within a server instance, and keys also carry
//! the instance.
//!
//! The trailer is written when a slot is reserved, the header only when the
//! object is committed (after its payload is complete), so a one-sided reader
//! never takes a slot that is still being written for an object. The server
//! zeroes header and trailer when it evicts (before the slot can be reused);
//! a reader checks both after its one-sided get, then reads the header again:
//! if it still names the object, no eviction started before the payload read
//! finished, so the bytes are that object's and are complete.

/// Header magic ("PSOBJSRV").
pub const MAGIC: u64 = u64::from_le_bytes(*b"PSOBJSRV");
const CHECK: u64 = 0x9e37_79b9_7f4a_7c15;
/// Header bytes before the payload (one [`ALIGN`] unit: payloads are aligned).
pub const HEADER: usize = ALIGN;
/// Trailer bytes after the payload.
pub const TRAILER: usize = 16;
/// Slot alignment in a segment.
pub const ALIGN: usize = 64;
/// Page size for address phases (see [`PHASED`]).
pub const PAGE: u64 = 4096;
/// Objects of at least this many bytes are placed at a chosen address
/// phase: the server puts the payload of a one-sided put at the same offset
/// within a page as the writer's source buffer, and readers land it at that
/// offset too. glibc's copy of hundreds of MiB (non-temporal stores, pages
/// interleaved) runs 3x slower when the destination is a little ahead of the
/// source modulo 4 KiB (4K aliasing); equal phases avoid that in both copies.
pub const PHASED: u64 = 16 << 20;

/// Bytes a get reads for an object of `len` bytes (header + payload + trailer).
pub fn wire_len(len: u64) -> Option<u64> {
    len.checked_add((HEADER + TRAILER) as u64)
}

/// Segment bytes an object of `len` bytes occupies.
pub fn slot_len(len: u64) -> Option<u64> {
    let w = wire_len(len)?;
    w.checked_add(ALIGN as u64 - 1)
        .map(|v| v & !(ALIGN as u64 - 1))
}

/// The page phase at which `data`'s payload should start so that its
/// largest part keeps its own source address's phase (see [`PHASED`]),
/// rounded down to [`ALIGN`]: payloads stay aligned, and a destination a
/// little behind its source modulo a page is not the slow case.
pub fn payload_phase(data: &proxy_core::Payload) -> u64 {
    let mut at = 0u64;
    let mut best = (0usize, 0u64);
    for part in data.parts() {
        if part.len() > best.0 {
            let src = part.as_ptr() as u64 % PAGE;
            best = (part.len(), (src + PAGE - at % PAGE) % PAGE);
        }
        at += part.len() as u64;
    }
    best.1 & !(ALIGN as u64 - 1)
}

/// The header for object `id` of `len` bytes.
pub fn header(id: u64, len: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    for (i, w) in [MAGIC, id, len, id ^ len ^ CHECK].into_iter().enumerate() {
        h[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    h
}

/// The trailer for object `id`.
pub fn trailer(id: u64) -> [u8; TRAILER] {
    let mut t = [0u8; TRAILER];
    t[..8].copy_from_slice(&id.to_le_bytes());
    t[8..].copy_from_slice(&(!id).to_le_bytes());
    t
}

/// Whether `h` is the header of object `id` of `len` bytes.
pub fn header_matches(h: &[u8], id: u64, len: u64) -> bool {
    h.len() >= HEADER && h[..HEADER] == header(id, len)
}

/// Whether `t` is the trailer of object `id`.
pub fn trailer_matches(t: &[u8], id: u64) -> bool {
    t.len() >= TRAILER && t[..TRAILER] == trailer(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(slot_len(0), Some(128));
        assert_eq!(slot_len(48), Some(128));
        assert_eq!(slot_len(49), Some(192));
        assert_eq!(slot_len(u64::MAX), None);
        let h = header(7, 100);
        assert!(header_matches(&h, 7, 100));
        assert!(!header_matches(&h, 8, 100));
        assert!(!header_matches(&h, 7, 101));
        assert!(!header_matches(&[0u8; HEADER], 0, 0));
        assert!(trailer_matches(&trailer(9), 9));
        assert!(!trailer_matches(&[0u8; TRAILER], 0));
    }

    #[test]
    fn phase_follows_the_largest_part() {
        let small = bytes::Bytes::from(vec![0u8; 10]);
        let big = bytes::Bytes::from(vec![0u8; 1 << 20]);
        let p = proxy_core::Payload::new().with(small).with(big.clone());
        let want = (big.as_ptr() as u64 % PAGE + PAGE - 10) % PAGE;
        assert_eq!(payload_phase(&p), want & !63);
        assert_eq!(payload_phase(&p) % ALIGN as u64, 0);
    }
}
