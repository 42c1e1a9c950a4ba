//! `proxystore-ofi-server`: the object server (one per node) with the
//! libfabric transport; see `object_server::cli` for the command line.
//!
//! ```text
//! proxystore-ofi-server [--listen ADDR] [--provider NAME] [--domain NAME] [--segment-size N]
//!                       [--memory-limit N] [--retain N] [--no-prefault] [--secret-file PATH]
//!                       [--idle-exit SECS] [--exit-with-parent]
//! ```
//! The provider is `--provider` or `FI_PROVIDER` (`shm`, `tcp;ofi_rxm`,
//! `cxi`, `efa`, `verbs;ofi_rxm`); every other `FI_*` variable applies as
//! for any libfabric program.

fn main() {
    object_server::cli::main(
        "proxystore-ofi-server",
        &[ofi_connector::OfiServer::FACTORY],
    );
}
