//! The raw `fi_read` tool's engine (fabtests are not packaged on Debian):
//! one process registers a buffer for remote reads ([`RawTarget`]), another
//! reads it with plain `fi_read`s into a registered local buffer
//! ([`RawReader`]): no object server, no control plane, no object layout,
//! one read per transfer. It is the ceiling of the connector's gets on the
//! same machine and provider (`examples/fi_read_bench.rs`).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use object_server::{ClientTransport, Memory, ServerTransport};
use proxy_core::Result;
use proxy_core::mem::BufferPool;

use crate::OfiConfig;
use crate::ofi::{InfoQuery, PeerAddr};
use crate::transport::{Ofi, OfiAlloc, OfiRemote, OfiServer};

/// A registered buffer that peers read with `fi_read` (the target side).
pub struct RawTarget {
    server: OfiServer,
    _reg: Box<dyn object_server::Registration>,
    descriptor: Vec<u8>,
    base: u64,
    _mem: Memory,
}

impl std::fmt::Debug for RawTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawTarget({})", self.server.provider())
    }
}

impl RawTarget {
    /// Register `len` bytes (filled with a pattern) on `provider`.
    pub fn new(provider: Option<&str>, len: usize) -> Result<RawTarget> {
        let server = OfiServer::new(&InfoQuery {
            provider: provider.map(str::to_string),
            domain: None,
        })?;
        let mut map = proxy_core::mem::Mmap::anonymous(len, true)
            .map_err(|e| proxy_core::Error::io("map the raw target", e))?;
        for (i, b) in map.as_mut_slice().expect("writable").iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let mem = Memory::new(map);
        let reg = server.register(&mem)?;
        let descriptor = reg.descriptor(object_server::Access::Read).to_vec();
        Ok(RawTarget {
            base: mem.as_ptr() as u64,
            server,
            _reg: reg,
            descriptor,
            _mem: mem,
        })
    }

    /// One line a reader parses with [`RawReader::connect`]: `RAW <address
    /// hex> <descriptor hex> <base>`.
    pub fn line(&self) -> String {
        format!(
            "RAW {} {} {}",
            hex(self.server.address()),
            hex(&self.descriptor),
            self.base
        )
    }

    /// Drive the provider's progress until `stop` (needed by providers whose
    /// target side progresses manually, e.g. `tcp;ofi_rxm`).
    pub fn progress(&self, stop: &AtomicBool) {
        self.server.progress(stop)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Reads a [`RawTarget`] with plain `fi_read`s.
pub struct RawReader {
    ofi: Ofi,
    peer: PeerAddr,
    remote: OfiRemote,
    base: u64,
    pool: BufferPool<OfiAlloc>,
}

impl std::fmt::Debug for RawReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawReader({})", self.ofi.provider())
    }
}

impl RawReader {
    /// Connect to the target that printed `line` ([`RawTarget::line`]).
    pub fn connect(provider: Option<&str>, line: &str) -> Result<RawReader> {
        let bad = || proxy_core::Error::decode(format!("not a RAW line: {line:?}"));
        let mut it = line.split_whitespace();
        if it.next() != Some("RAW") {
            return Err(bad());
        }
        let address = it.next().and_then(unhex).ok_or_else(bad)?;
        let descriptor = it.next().and_then(unhex).ok_or_else(bad)?;
        let base: u64 = it.next().and_then(|b| b.parse().ok()).ok_or_else(bad)?;
        let cfg = OfiConfig {
            provider: provider.map(str::to_string),
            ..OfiConfig::default()
        };
        let ofi = Ofi::new(&cfg)?;
        let peer = ofi.connect(&address, false)?;
        let remote = ofi.unpack(&peer, &descriptor)?;
        let pool = BufferPool::new(ofi.allocator(), 4 << 30);
        Ok(RawReader {
            ofi,
            peer,
            remote,
            base,
            pool,
        })
    }

    /// The provider in use.
    pub fn provider(&self) -> String {
        self.ofi.provider()
    }

    /// `n` reads of `len` bytes from the start of the target, `window` in
    /// flight at once; the time of each batch of `window` reads. The first
    /// read's bytes are checked against the target's pattern.
    pub fn run(&self, len: usize, window: usize, n: usize) -> Result<Vec<Duration>> {
        let bufs: Vec<_> = (0..window)
            .map(|_| self.pool.acquire(len))
            .collect::<Result<_>>()?;
        let mut bufs = Some(bufs);
        let mut times = Vec::with_capacity(n);
        let mut checked = false;
        for _ in 0..n.div_ceil(window) {
            let t = Instant::now();
            let ops: Vec<_> = bufs
                .take()
                .expect("buffers back")
                .into_iter()
                .map(|b| self.ofi.get(&self.peer, &self.remote, self.base, b))
                .collect::<Result<_>>()?;
            let refs: Vec<_> = ops.iter().collect();
            self.ofi.wait(&refs, "fi_read", Duration::from_secs(30))?;
            let back: Vec<_> = ops
                .iter()
                .map(|o| o.take().expect("done"))
                .collect::<Result<_>>()?;
            times.push(t.elapsed());
            if !checked {
                let s = back[0].as_slice();
                if s.iter().enumerate().any(|(i, &x)| x != (i % 251) as u8) {
                    return Err(proxy_core::Error::decode("raw read returned wrong bytes"));
                }
                checked = true;
            }
            bufs = Some(back);
        }
        Ok(times)
    }
}
