//! `proxystore-margo-server`: the object server (one per node) with the
//! Margo (Mercury) transport; see `object_server::cli` for the command line.
//!
//! ```text
//! proxystore-margo-server [--listen ADDR] [--margo-protocol P] [--segment-size N]
//!                         [--memory-limit N] [--retain N] [--no-prefault] [--secret-file PATH]
//!                         [--idle-exit SECS] [--exit-with-parent]
//! ```
//! The protocol is `--margo-protocol` or `PROXYSTORE_MARGO_PROTOCOL`, else
//! `na+sm` (`ofi+tcp://127.0.0.1`, `ofi+cxi`, `ofi+verbs`, `ucx+all`); Margo
//! is loaded at run time (`MARGO_DIR` or `LD_LIBRARY_PATH`).

fn main() {
    object_server::cli::main(
        "proxystore-margo-server",
        &[margo_connector::MargoServer::FACTORY],
    );
}
