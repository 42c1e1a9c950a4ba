//! `proxystore-ucx-server`: the object server (one per node) with the UCX
//! transport; see `object_server::cli` for the command line.
//!
//! ```text
//! proxystore-ucx-server [--listen ADDR] [--tls UCX_TLS] [--segment-size N] [--memory-limit N]
//!                       [--retain N] [--no-prefault] [--secret-file PATH] [--idle-exit SECS]
//!                       [--exit-with-parent]
//! ```
//! The UCX transports are chosen by `--tls` (same syntax as `UCX_TLS`) or by
//! the environment as for any UCX program (`UCX_TLS=shm,cma,self`,
//! `UCX_TLS=tcp`, `UCX_NET_DEVICES`, ...).

fn main() {
    object_server::cli::main(
        "proxystore-ucx-server",
        &[ucx_connector::UcxServer::FACTORY],
    );
}
