//! Cancel safety of a fabric's one-sided reads: a read that times out keeps
//! its receive buffer out of the pool until the fabric completes or cancels
//! it, and gives it back then.

use std::time::{Duration, Instant};

use proxy_core::mem::size_class;
use proxy_core::{Connector, Error, Payload};

use super::{Client, Fabric, ServerProcess, pattern};
use crate::transport::{ClientTransport, Operation};
use crate::{DataPath, ObjectClient, TransportConfig, layout};

/// How long the test waits for the read before giving up on it.
const WAIT: Duration = Duration::from_millis(300);
/// How long it then watches the abandoned read while the server is stopped.
const WATCH: Duration = Duration::from_millis(700);

/// Cancel safety, deterministic: a one-sided read of 1 MiB from a server
/// frozen with SIGSTOP (started over `fabric` with `server_env` added to
/// its environment, such that the read needs the server's CPU: e.g. `tcp`,
/// or shared memory without cross-memory attach) is still in flight when the
/// fabric's wait gives up on it. The test holds the operation and checks:
///
/// 1. the wait fails (`timeout_error` checks its error) and the operation is
///    not done: the read was in flight when the caller gave up;
/// 2. while the server stays stopped and the fabric has not completed (nor
///    confirmed the cancellation of) the read, its buffer counts as in use
///    in the pool, whole (checked every 20 ms for 0.7 s);
/// 3. the operation is dropped while still in flight (as a timed-out get
///    drops its operations): the buffer stays in use;
/// 4. once the server runs again, gets through the connector work and the
///    abandoned read's buffer comes back to the pool (no leak).
///
/// Then the same through the connector: a get from the stopped server fails
/// with a timeout, its buffer stays in use until the server runs again, and
/// is back after that.
///
/// The connector's own timeout (5 s, e.g. Margo's timer that cancels a
/// transfer) is longer than the test's wait and watch, so only the test's
/// wait gives up within the checks.
pub fn timed_out_get_keeps_its_buffer<F: Fabric>(
    fabric: &str,
    server_env: &[(&str, &str)],
    timeout_error: impl Fn(&Error),
) {
    let server = ServerProcess::<F>::start_with_env(fabric, &[], server_env);
    let c = Client::<F>::new(
        F::config(&server.addr, fabric)
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false) // the one-sided read itself, not a mapping
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let data = pattern(1 << 20, 4);
    let key = c.put(Payload::from(data.clone())).unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..])); // warm: peer, segment, buffer
    let pool = c.pool().expect("the fabric");
    let in_use = || pool.allocated_bytes() - pool.idle_bytes();
    assert_eq!(in_use(), 0, "nothing in use before the read");
    let wire = layout::wire_len(data.len() as u64).unwrap() as usize;
    let whole = size_class(wire);
    let peer = c.home_peer().unwrap();
    let seg = c
        .segment(&peer, 0)
        .unwrap()
        .expect("segment 0 of the server");
    let t = c.transport().expect("the fabric");

    server.freeze(true);
    let buf = pool.acquire(wire).unwrap();
    let op = t
        .get(c.endpoint(&peer).unwrap(), &seg.remote, seg.base, buf)
        .unwrap();
    let gave_up = Instant::now();
    match t.wait(&[&op], "get", WAIT) {
        Ok(()) => panic!(
            "a read from a server stopped with SIGSTOP completed over {fabric:?}: this fabric reads \
             without the server's CPU, so nothing holds the transfer (choose one that needs it)"
        ),
        Err(e) => timeout_error(&e),
    }
    // 1. In flight when the caller gave up (the fabric was asked to cancel).
    assert!(
        !op.is_done(),
        "the read was done (completed or cancelled) when the wait gave up on it: nothing was in \
         flight to check"
    );
    // 2. Its buffer stays in use until the fabric is done with the read.
    let mut checks = 0;
    while gave_up.elapsed() < WATCH && !op.is_done() {
        let used = in_use();
        assert!(
            used >= whole,
            "{used} B of receive buffers in use while a read of {wire} B (buffer of {whole} B) \
             is in flight: its buffer went back to the pool before the fabric completed or \
             cancelled the read"
        );
        checks += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let confirmed = op.is_done();
    eprintln!(
        "{checks} checks over {:?} while the server was stopped; fabric done with the read: \
         {confirmed}",
        gave_up.elapsed()
    );
    if confirmed {
        // The fabric cancelled the read: it hands the buffer back (or an error).
        drop(op.take().expect("a done operation has its result"));
    } else {
        // 3. Given up while in flight: the buffer stays with the fabric.
        drop(op);
        let used = in_use();
        assert!(
            used >= whole,
            "{used} B in use after dropping a read still in flight: its buffer went back to the \
             pool with the operation"
        );
    }
    server.freeze(false);
    // 4. The connector works again; the abandoned read completes (or its
    // cancellation does) with the next progress, giving its buffer back.
    returns_its_buffers(&c, &key, &data);

    // The same through the connector's get.
    let c = Client::<F>::new(
        F::config(&server.addr, fabric)
            .with_data_path(DataPath::Rma)
            .with_zero_copy(false)
            .with_timeout(WAIT),
    )
    .unwrap();
    assert_eq!(c.get(&key).unwrap().as_deref(), Some(&data[..]));
    let pool = c.pool().expect("the fabric");
    let in_use = || pool.allocated_bytes() - pool.idle_bytes();
    server.freeze(true);
    let t0 = Instant::now();
    let e = c.get(&key).unwrap_err();
    timeout_error(&e);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let used = in_use();
    // At most the one read in flight, whole (no buffer lost or shared); none
    // when the fabric's own timer has cancelled it (Margo, at the same timeout).
    assert!(
        used == 0 || used == whole,
        "after the timed-out get: {used} B of receive buffers in use"
    );
    server.freeze(false);
    returns_its_buffers(&c, &key, &data);
}

/// Gets of `key` through `c` return `data`; within 10 s every receive buffer
/// is back in the pool.
fn returns_its_buffers<T: ClientTransport>(
    c: &ObjectClient<T>,
    key: &proxy_core::Key,
    data: &[u8],
) {
    let pool = c.pool().expect("the fabric");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(c.get(key).unwrap().as_deref(), Some(data));
        if pool.allocated_bytes() == pool.idle_bytes() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "abandoned buffer never returned: {} B in use",
            pool.allocated_bytes() - pool.idle_bytes()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
