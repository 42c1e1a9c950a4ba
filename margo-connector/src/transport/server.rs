//! The server side: two bulk handles per segment, their serialized forms.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use object_server::cli::TransportFactory;
use object_server::{Access, Memory, Registration, ServerTransport};
use proxy_core::Result;

use super::pack;
use crate::margo::{Bulk, BulkAccess, Instance};

/// Margo serving an object server's segments: a server-mode instance with
/// its own progress thread.
#[derive(Debug)]
pub struct MargoServer {
    inst: Arc<Instance>,
    address: Vec<u8>,
}

impl MargoServer {
    /// A server instance listening at `address`: a protocol (`"na+sm"`,
    /// `"ofi+tcp"`), or a protocol with a host (and port):
    /// `"ofi+tcp://127.0.0.1"`.
    pub fn new(address: &str) -> Result<MargoServer> {
        let inst = Instance::server(address)?;
        Ok(MargoServer {
            address: inst.self_address().as_bytes().to_vec(),
            inst,
        })
    }

    /// The address clients look up (`na+sm://PID-0`, `ofi+tcp;ofi_rxm://127.0.0.1:PORT`).
    pub fn self_address(&self) -> &str {
        self.inst.self_address()
    }

    /// The factory for server binaries (`--margo-protocol P`).
    pub const FACTORY: TransportFactory = TransportFactory {
        name: "margo",
        options: &[(
            "--margo-protocol",
            "Mercury protocol, optionally with the address to listen at (na+sm, ofi+tcp://127.0.0.1, ofi+cxi, ofi+verbs, ucx+all; default: PROXYSTORE_MARGO_PROTOCOL, else na+sm)",
        )],
        start: start_factory,
    };
}

fn start_factory(opts: &BTreeMap<String, String>) -> Result<Box<dyn ServerTransport>> {
    let protocol = opts
        .get("--margo-protocol")
        .cloned()
        .unwrap_or_else(crate::config::default_protocol);
    Ok(Box::new(MargoServer::new(&protocol)?))
}

/// A segment's two handles and their descriptors.
struct MargoRegistration {
    _read: Bulk,
    _write: Bulk,
    read: Vec<u8>,
    write: Vec<u8>,
}

impl Registration for MargoRegistration {
    fn descriptor(&self, access: Access) -> &[u8] {
        match access {
            Access::Read => &self.read,
            Access::ReadWrite => &self.write,
        }
    }
}

impl ServerTransport for MargoServer {
    fn name(&self) -> &'static str {
        "margo"
    }

    fn address(&self) -> &[u8] {
        &self.address
    }

    fn register(&self, mem: &Memory) -> Result<Box<dyn Registration>> {
        let (ptr, len) = (mem.as_ptr(), mem.len());
        // SAFETY: the server keeps the segment's memory mapped (and, unless
        // --no-prefault, faulted in) for as long as its registrations live
        // (they are dropped with the segment, first).
        let read = unsafe { Bulk::create(&self.inst, ptr, len, BulkAccess::ReadOnly)? };
        // SAFETY: as above.
        let write = unsafe { Bulk::create(&self.inst, ptr, len, BulkAccess::ReadWrite)? };
        let base = ptr as u64;
        Ok(Box::new(MargoRegistration {
            read: pack(base, len as u64, &read.serialize()?),
            write: pack(base, len as u64, &write.serialize()?),
            _read: read,
            _write: write,
        }))
    }

    fn enforces_read_only(&self) -> bool {
        crate::enforces_read_only(self.inst.self_address())
    }

    fn progress(&self, stop: &AtomicBool) {
        // Margo's own progress thread drives Mercury (and, for providers
        // with manual progress such as tcp;ofi_rxm, serves the clients'
        // transfers); this thread only waits for the server to stop.
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
