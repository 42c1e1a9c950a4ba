//! The server side: registration, remote keys and progress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use object_server::cli::TransportFactory;
use object_server::transport::owner_as;
use object_server::{Access, DataPath, Memory, Registration, ServerTransport};
use proxy_core::Result;

use crate::config::tls_is_tcp_only;
use crate::ucx::{Context, MemRegion, Worker};

/// UCX serving an object server's segments.
#[derive(Debug)]
pub struct UcxServer {
    ctx: Arc<Context>,
    worker: Worker,
    address: Vec<u8>,
    efd: i32,
    hint: DataPath,
}

impl UcxServer {
    /// Initialise UCX (reading `UCX_*` variables) with transports `tls`
    /// (`UCX_TLS` syntax; `None`: the environment's choice).
    pub fn new(tls: Option<&str>) -> Result<UcxServer> {
        let ctx = Context::rma(tls, true)?;
        let worker = Worker::new(&ctx)?;
        let (address, efd) = {
            let g = worker.lock();
            (g.address()?, g.event_fd()?)
        };
        let tcp_only = tls
            .map(str::to_string)
            .or_else(|| std::env::var("UCX_TLS").ok())
            .is_some_and(|t| tls_is_tcp_only(&t));
        Ok(UcxServer {
            ctx,
            worker,
            address,
            efd,
            hint: if tcp_only {
                DataPath::Stream
            } else {
                DataPath::Auto
            },
        })
    }

    /// The factory for server binaries (`--tls LIST`).
    pub const FACTORY: TransportFactory = TransportFactory {
        name: "ucx",
        options: &[(
            "--tls",
            "UCX transports (UCX_TLS syntax, e.g. shm,cma,self or tcp; default: UCX_TLS)",
        )],
        start: start_factory,
    };
}

fn start_factory(opts: &BTreeMap<String, String>) -> Result<Box<dyn ServerTransport>> {
    Ok(Box::new(UcxServer::new(
        opts.get("--tls").map(String::as_str),
    )?))
}

/// A segment's UCX registration: its own (memory registered here) or the
/// allocation's (memory UCX allocated on this context), and the packed key.
struct UcxRegistration {
    _own: Option<MemRegion>,
    rkey: Vec<u8>,
}

impl Registration for UcxRegistration {
    fn descriptor(&self, _access: Access) -> &[u8] {
        // One key for both: see the module docs (not enforced by UCX).
        &self.rkey
    }
}

impl ServerTransport for UcxServer {
    fn name(&self) -> &'static str {
        "ucx"
    }

    fn address(&self) -> &[u8] {
        &self.address
    }

    fn data_path_hint(&self) -> DataPath {
        self.hint
    }

    fn allocate(&self, len: usize, prefault: bool) -> Result<Option<Memory>> {
        MemRegion::allocate(&self.ctx, len, prefault).map(|r| Some(Memory::new(r)))
    }

    fn register(&self, mem: &Memory) -> Result<Box<dyn Registration>> {
        if let Some(r) = owner_as::<MemRegion>(mem).filter(|r| r.is_on(&self.ctx)) {
            return Ok(Box::new(UcxRegistration {
                _own: None,
                rkey: r.pack_rkey()?,
            }));
        }
        // SAFETY: the server keeps the segment's memory mapped for as long as
        // its registrations live (they are dropped with the segment, first).
        let own = unsafe { MemRegion::register(&self.ctx, mem.as_ptr(), mem.len())? };
        Ok(Box::new(UcxRegistration {
            rkey: own.pack_rkey()?,
            _own: Some(own),
        }))
    }

    fn enforces_read_only(&self) -> bool {
        false
    }

    fn progress(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let g = self.worker.lock();
            while g.progress() {}
            match g.arm() {
                Ok(true) => {
                    drop(g);
                    poll_fd(self.efd, 100);
                }
                Ok(false) => {}
                Err(e) => {
                    eprintln!("ucx progress: {e}");
                    drop(g);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

fn poll_fd(fd: i32, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
}
