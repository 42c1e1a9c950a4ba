//! Freed slots wait [`REUSE_GRACE`] before the arena hands them out again.
//!
//! This is what lets a one-sided get skip its header re-read (the client's
//! `get_rma`): a reader whose read of `[header | payload |
//! trailer]` completed within `REUSE_GRACE / 2` of being posted, and whose
//! header and trailer name the object, read bytes that no other object had
//! written yet. Its header read saw no eviction, so the object was freed
//! after the read began; the slot is reused at least `REUSE_GRACE` after the
//! free, so after every byte of the read was taken. Slower reads still
//! re-read the header.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a freed slot stays out of use (protocol version 6 on): servers
/// never reuse a slot sooner after the object in it was hidden.
pub const REUSE_GRACE: Duration = Duration::from_millis(2);

/// Freed ranges in the order they were freed: (segment, start, size, when).
#[derive(Debug, Default)]
pub(crate) struct Cooling {
    slots: VecDeque<(u32, u64, u64, Instant)>,
    bytes: u64,
}

impl Cooling {
    /// `size` bytes at `start` of segment `seg` were freed now.
    pub(crate) fn push(&mut self, seg: u32, start: u64, size: u64) {
        self.slots.push_back((seg, start, size, Instant::now()));
        self.bytes += size;
    }

    /// Bytes waiting.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The ranges freed at least [`REUSE_GRACE`] ago (taken out), oldest first.
    pub(crate) fn ready(&mut self) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        while let Some(&(seg, start, size, at)) = self.slots.front() {
            if at.elapsed() < REUSE_GRACE {
                break;
            }
            self.slots.pop_front();
            self.bytes -= size;
            out.push((seg, start, size));
        }
        out
    }

    /// How long until the oldest waiting range is ready (at most
    /// `REUSE_GRACE`; zero when it is, or when nothing waits). The caller
    /// sleeps it with no lock held.
    pub(crate) fn until_oldest(&self) -> Duration {
        self.slots.front().map_or(Duration::ZERO, |&(_, _, _, at)| {
            REUSE_GRACE.saturating_sub(at.elapsed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_come_back_only_after_the_grace() {
        let mut c = Cooling::default();
        c.push(0, 64, 128);
        c.push(1, 0, 32);
        assert_eq!(c.bytes(), 160);
        assert!(c.ready().is_empty(), "freed just now: not ready");
        let wait = c.until_oldest();
        assert!(wait > Duration::ZERO && wait <= REUSE_GRACE, "{wait:?}");
        std::thread::sleep(wait);
        assert_eq!(c.until_oldest(), Duration::ZERO);
        assert_eq!(c.ready(), vec![(0, 64, 128), (1, 0, 32)]);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }
}
