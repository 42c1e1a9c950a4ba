//! `proxystore-server`: the object server (one per node) with every
//! transport this workspace has; `--transports ucx,ofi,margo` serves the
//! same objects over UCX, libfabric and Margo at once (a key names an
//! object, not a transport). Margo is loaded at run time, only when
//! `margo` is asked for. See `object_server::cli` for the command line.
//!
//! ```text
//! proxystore-server [--listen ADDR] [--transports ucx,ofi,margo] [--tls UCX_TLS]
//!                   [--provider NAME] [--domain NAME] [--margo-protocol P]
//!                   [--segment-size N] [--memory-limit N]
//!                   [--retain N] [--no-prefault] [--secret-file PATH] [--idle-exit SECS]
//!                   [--exit-with-parent]
//! ```

fn main() {
    object_server::cli::main(
        "proxystore-server",
        &[
            ucx_connector::UcxServer::FACTORY,
            ofi_connector::OfiServer::FACTORY,
            margo_connector::MargoServer::FACTORY,
        ],
    );
}
