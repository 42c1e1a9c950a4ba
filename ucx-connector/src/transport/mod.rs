//! UCX as a transport of the shared object server: [`UcxServer`] registers
//! segments and hands out packed remote keys; [`Ucx`] reads (and writes
//! reservations) with `ucp_get_nbx` / `ucp_put_nbx` into the shared pool's
//! buffers, which UCX allocated and registered (`ucp_mem_map`).
//!
//! Read-only access: UCX 1.13 registers memory with full remote access and
//! has no read-only remote key, so the key a reader gets would also accept
//! one-sided writes. The server gives readers and writers the same key; what
//! guards the objects is the control plane (the job's secret, and write
//! descriptors only for connections holding a reservation).
//! [`object_server::ServerTransport::enforces_read_only`] is false.

mod client;
mod server;

pub use client::{Ucx, UcxAlloc};
pub use server::UcxServer;
