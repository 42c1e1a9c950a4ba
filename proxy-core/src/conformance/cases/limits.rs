//! Limits: objects over `max_object_size` refused whole.

use bytes::Bytes;

use crate::conformance::Ctx;
use crate::conformance::data::{pattern, repeated};
use crate::conformance::finish::files_under;
use crate::connector::Payload;
use crate::error::{Error, Result};

/// Objects over `max_object_size` are refused with `TooLarge` and nothing is
/// written (`put`, `put_batch` with a small object first, `Deferrable::set`).
/// For a namespace in the file system (an absolute path among the options),
/// no new file appears there after the refused `put_batch`; elsewhere the
/// suite's `leftovers` hook finds what a partial batch left.
/// The payload repeats one 1 MiB buffer: nothing that large is allocated.
pub fn too_large(ctx: &Ctx) {
    let c = &ctx.connector;
    let Some(limit) = ctx.caps.max_object_size else {
        return;
    };
    assert!(
        limit < usize::MAX as u64,
        "a limit of {limit} bytes is no limit"
    );
    let chunk = Bytes::from(vec![0x5a; 1 << 20]);
    let over = repeated(&chunk, limit + 1);
    let is_too_large = |r: Result<()>, op: &str| match r {
        // The size may include the connector's own framing.
        Err(Error::TooLarge { size, .. }) => assert!(
            size > limit,
            "{op}: TooLarge names {size} bytes, not over the limit of {limit}"
        ),
        Err(e) => panic!("{op} of {} bytes over a limit of {limit}: {e}", limit + 1),
        Ok(()) => panic!(
            "{op} of {} bytes accepted over the declared limit of {limit}",
            limit + 1
        ),
    };
    let r = c.put(over.clone()).map(|k| {
        let _ = c.evict(&k);
    });
    is_too_large(r, "put");
    let before = files_under(&ctx.config);
    let r = c
        .put_batch(vec![Payload::from(pattern(10, 41)), over.clone()])
        .map(|ks| {
            for k in &ks {
                let _ = c.evict(k);
            }
        });
    is_too_large(r, "put_batch");
    let new: Vec<String> = files_under(&ctx.config)
        .difference(&before)
        .cloned()
        .collect();
    assert!(
        new.is_empty(),
        "put_batch refused with TooLarge wrote the objects before the oversized one: new \
         files in the namespace {new:?}"
    );
    if let Some(d) = c.as_deferrable() {
        let k = d.new_key().unwrap();
        is_too_large(d.set(&k, over), "set");
        assert!(!c.exists(&k).unwrap(), "a refused set left an object");
        assert_eq!(c.get(&k).unwrap(), None, "a refused set left an object");
    }
}
