//! `proxystore-ucx-server`: the UCX object server (one per node).
//!
//! ```text
//! proxystore-ucx-server [--listen ADDR] [--segment-size N] [--memory-limit N] [--tls LIST] [--retain N] [--no-prefault]
//! ```
//! Sizes accept K/M/G suffixes (powers of 1024). The UCX transports are chosen
//! by `--tls` (same syntax as `UCX_TLS`) or by the environment as for any UCX
//! program (`UCX_TLS=shm,cma,self`, `UCX_TLS=tcp`, `UCX_NET_DEVICES`, ...). Prints `LISTEN <addr>` on stdout once
//! ready; SIGTERM or SIGINT shut it down cleanly (exit status 0).
//! `--exit-with-parent` (Linux) delivers SIGTERM when the thread that started
//! the server exits: test harnesses use it so that no server outlives them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ucx_connector::server::{Server, ServerOptions};

static STOP: AtomicBool = AtomicBool::new(false);

// A signal handler, not a UCX callback: it only performs an atomic store,
// which cannot panic (and catch_unwind is not async-signal-safe).
extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a size: {s:?}"))
}

fn usage() -> ! {
    eprintln!(
        "usage: proxystore-ucx-server [--listen ADDR] [--segment-size N[K|M|G]] [--memory-limit N[K|M|G]] [--tls UCX_TLS] [--retain N[K|M|G]] [--no-prefault] [--exit-with-parent]"
    );
    std::process::exit(2)
}

fn main() {
    let mut opts = ServerOptions::default();
    let mut exit_with_parent = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let r = match a.as_str() {
            "--listen" => val()
                .parse()
                .map(|v| opts.listen = v)
                .map_err(|e| format!("{e}")),
            "--segment-size" => parse_size(&val()).map(|v| opts.segment_size = v),
            "--memory-limit" => parse_size(&val()).map(|v| opts.memory_limit = v),
            "--retain" => parse_size(&val()).map(|v| opts.retain = v),
            "--tls" => {
                opts.ucx_tls = Some(val());
                Ok(())
            }
            "--exit-with-parent" => {
                exit_with_parent = true;
                Ok(())
            }
            "--no-prefault" => {
                opts.prefault = false;
                Ok(())
            }
            "-h" | "--help" => usage(),
            _ => Err(format!("unknown argument {a:?}")),
        };
        if let Err(e) = r {
            eprintln!("proxystore-ucx-server: {e}");
            usage();
        }
    }
    if exit_with_parent {
        // SAFETY: plain prctl call; SIGTERM then runs the clean shutdown below.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installing a handler that only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let server = match Server::start(opts.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("proxystore-ucx-server: cannot start: {e}");
            std::process::exit(1);
        }
    };
    println!("LISTEN {}", server.addr());
    let _ = std::io::stdout().flush();
    eprintln!(
        "proxystore-ucx-server: listening on {} (segments of {} B, limit {} B, UCX_TLS={})",
        server.addr(),
        opts.segment_size,
        opts.memory_limit,
        opts.ucx_tls
            .clone()
            .or_else(|| std::env::var("UCX_TLS").ok())
            .unwrap_or_else(|| "<default>".into())
    );
    while !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown();
    eprintln!("proxystore-ucx-server: stopped");
}
