//! The safe UCX layer in one process: two workers, a registered region, a
//! packed/unpacked rkey, one-sided gets, and a get whose caller gives up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ucx_connector::ucx::{Context, Features, MemRegion, Worker};

fn features() -> Features {
    Features {
        rma: true,
        am: false,
        wakeup: false,
    }
}

#[test]
fn get_from_registered_region() {
    let ctx = Context::new(features(), &[]).unwrap();
    let server = Worker::new(&ctx).unwrap();
    let client = Worker::new(&ctx).unwrap();
    let region = Arc::new(MemRegion::allocate(&ctx, 1 << 20, true).unwrap());
    // SAFETY: nobody else accesses the fresh region yet.
    let src = unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), region.len()) };
    for (i, b) in src.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let rkey_buf = region.pack_rkey().unwrap();
    let addr = server.lock().address().unwrap();

    // Progress the "server" worker (needed by emulated transports such as tcp).
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = server.clone();
    let st = stop.clone();
    let progress = std::thread::spawn(move || {
        while !st.load(Ordering::Relaxed) {
            s2.lock().progress();
        }
    });

    let g = client.lock();
    let ep = g
        .connect(
            &addr,
            std::env::var("UCX_TLS").is_ok_and(|t| t.contains("tcp")),
        )
        .unwrap();
    let rkey = ep.unpack_rkey(&g, &rkey_buf).unwrap();
    for (off, len) in [(0usize, 1usize), (17, 1000), (4096, 65536), (0, 1 << 20)] {
        let dst = vec![0u8; len].into_boxed_slice();
        let req = ep
            .get(&g, &rkey, region.as_ptr() as u64 + off as u64, dst)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let out = loop {
            if let Some(r) = req.take() {
                break r.unwrap();
            }
            assert!(Instant::now() < deadline, "get timed out");
            g.progress();
        };
        assert_eq!(&out[..], &src[off..off + len]);
    }
    // Give up on a request: the buffer stays owned by UCX until completion.
    let req = ep
        .get(
            &g,
            &rkey,
            region.as_ptr() as u64,
            vec![0u8; 4096].into_boxed_slice(),
        )
        .unwrap();
    drop(req);
    for _ in 0..1000 {
        g.progress();
    }
    drop(g);
    drop(rkey);
    drop(ep);
    stop.store(true, Ordering::Relaxed);
    progress.join().unwrap();
    assert_eq!(ucx_connector::ucx::callback_panics(), 0);
}

/// A destination that records when it is dropped.
struct Tracked {
    buf: Box<[u8]>,
    dropped: Arc<AtomicBool>,
}

// SAFETY: the boxed slice never moves or changes while the value lives.
unsafe impl ucx_connector::ucx::RmaTarget for Tracked {
    fn target(&mut self) -> (*mut u8, usize) {
        (self.buf.as_mut_ptr(), self.buf.len())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Cancel safety, deterministically: over TCP the get needs the (in-process)
/// server worker to progress. While it does not, the request cannot finish;
/// dropping the `Request` must not drop (free or reuse) its buffer. Only
/// after the server progresses and UCX completes the request is it dropped.
#[test]
fn abandoned_request_keeps_buffer_until_completion() {
    let ctx = Context::new(features(), &[("TLS", "tcp")]).unwrap();
    let server = Worker::new(&ctx).unwrap();
    let client = Worker::new(&ctx).unwrap();
    let region = MemRegion::allocate(&ctx, 1 << 20, true).unwrap();
    let rkey_buf = region.pack_rkey().unwrap();
    let addr = server.lock().address().unwrap();
    let g = client.lock();
    let ep = g.connect(&addr, true).unwrap();
    let rkey = ep.unpack_rkey(&g, &rkey_buf).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let target = Tracked {
        buf: vec![0u8; 1 << 20].into_boxed_slice(),
        dropped: dropped.clone(),
    };
    let req = ep.get(&g, &rkey, region.as_ptr() as u64, target).unwrap();
    for _ in 0..1000 {
        g.progress(); // the server worker is not progressed: no completion
    }
    assert!(
        !req.is_done(),
        "a TCP get cannot complete without the server's progress"
    );
    drop(req); // the caller gives up
    for _ in 0..1000 {
        g.progress();
    }
    assert!(
        !dropped.load(Ordering::SeqCst),
        "buffer released while UCX may still write into it"
    );
    // Let the server answer: the request completes and only then the buffer goes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dropped.load(Ordering::SeqCst) {
        server.lock().progress();
        g.progress();
        assert!(
            Instant::now() < deadline,
            "abandoned request never completed"
        );
    }
    drop(g);
    drop(rkey);
    drop(ep);
}
