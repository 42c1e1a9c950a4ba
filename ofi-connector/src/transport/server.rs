//! The server side: two registrations per segment, keys, progress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libfabric_sys::{FI_REMOTE_READ, FI_REMOTE_WRITE};
use object_server::cli::TransportFactory;
use object_server::{Access, Memory, Registration, ServerTransport};
use proxy_core::Result;

use super::OfiRemote;
use crate::ofi::{Domain, Endpoint, InfoQuery, Mr};

/// libfabric serving an object server's segments.
#[derive(Debug)]
pub struct OfiServer {
    ep: Arc<Endpoint>,
    address: Vec<u8>,
    provider: String,
}

impl OfiServer {
    /// Open the provider named by `q` (`None`: `FI_PROVIDER`, else
    /// libfabric's first choice) and an endpoint on it.
    pub fn new(q: &InfoQuery) -> Result<OfiServer> {
        let domain = Arc::new(Domain::open(q)?);
        let ep = Endpoint::open_waitable(&domain)?;
        let address = ep.name()?;
        Ok(OfiServer {
            provider: domain.info().describe(),
            ep,
            address,
        })
    }

    /// The provider and domain in use (`"shm on shm"`, `"tcp;ofi_rxm on lo"`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The factory for server binaries (`--provider NAME`, `--domain NAME`).
    pub const FACTORY: TransportFactory = TransportFactory {
        name: "ofi",
        options: &[
            (
                "--provider",
                "libfabric provider (shm, tcp;ofi_rxm, cxi, efa, verbs;ofi_rxm; default: FI_PROVIDER)",
            ),
            (
                "--domain",
                "libfabric domain / NIC name (default: the provider's first)",
            ),
        ],
        start: start_factory,
    };
}

fn start_factory(opts: &BTreeMap<String, String>) -> Result<Box<dyn ServerTransport>> {
    let q = InfoQuery {
        provider: opts
            .get("--provider")
            .cloned()
            .or_else(|| std::env::var("FI_PROVIDER").ok().filter(|p| !p.is_empty())),
        domain: opts.get("--domain").cloned(),
    };
    Ok(Box::new(OfiServer::new(&q)?))
}

/// A segment's two registrations and their descriptors.
struct OfiRegistration {
    _read: Mr,
    _write: Mr,
    read: Vec<u8>,
    write: Vec<u8>,
}

impl Registration for OfiRegistration {
    fn descriptor(&self, access: Access) -> &[u8] {
        match access {
            Access::Read => &self.read,
            Access::ReadWrite => &self.write,
        }
    }
}

impl ServerTransport for OfiServer {
    fn name(&self) -> &'static str {
        "ofi"
    }

    fn address(&self) -> &[u8] {
        &self.address
    }

    fn register(&self, mem: &Memory) -> Result<Box<dyn Registration>> {
        let domain = self.ep.domain();
        let g = domain.lock();
        let (ptr, len) = (mem.as_ptr(), mem.len());
        // SAFETY: the server keeps the segment's memory mapped (and, unless
        // --no-prefault, faulted in) for as long as its registrations live
        // (they are dropped with the segment, first).
        let read =
            unsafe { Mr::register(&g, domain, Some(&self.ep), ptr, len, FI_REMOTE_READ as u64)? };
        // SAFETY: as above.
        let write = unsafe {
            Mr::register(
                &g,
                domain,
                Some(&self.ep),
                ptr,
                len,
                (FI_REMOTE_READ | FI_REMOTE_WRITE) as u64,
            )?
        };
        let virt = domain.mr_mode().virt_addr();
        let base = ptr as u64;
        Ok(Box::new(OfiRegistration {
            read: OfiRemote::pack(read.key(), base, virt),
            write: OfiRemote::pack(write.key(), base, virt),
            _read: read,
            _write: write,
        }))
    }

    fn enforces_read_only(&self) -> bool {
        crate::enforces_read_only(&self.provider)
    }

    fn progress(&self, stop: &AtomicBool) {
        // Providers with FI_PROGRESS_MANUAL data progress (tcp;ofi_rxm, and
        // shm when it cannot use cross-memory attach) serve one-sided reads
        // only while the target reads its CQ.
        while !stop.load(Ordering::Relaxed) {
            let n = {
                let g = self.ep.domain().lock();
                self.ep.progress(&g)
            };
            if n == 0 {
                if self.ep.can_wait() {
                    // Sleep until the provider has work (fi_trywait +
                    // poll on the CQ's wait fd); wake at least every 50 ms
                    // to see `stop`.
                    self.ep.wait(Duration::from_millis(50));
                } else {
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
        }
    }
}
