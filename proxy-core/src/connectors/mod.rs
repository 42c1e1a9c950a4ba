//! Built-in connectors: in-process, shared file system, and policy-routed multi.

pub mod file;
pub mod local;
pub mod multi;

/// A fresh random 128-bit object id (UUID v4 bytes).
pub(crate) fn new_id() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Map `f` over `items` on up to `available_parallelism` scoped threads,
/// preserving order; runs inline for small inputs. Stops at the first error.
pub(crate) fn par_map<I: Sync, O: Send>(
    items: &[I],
    f: impl Fn(&I) -> crate::Result<O> + Sync,
) -> crate::Result<Vec<O>> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    if items.len() < 4 || threads < 2 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<crate::Result<Vec<O>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(r) => out.extend(r?),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(out)
    })
}
