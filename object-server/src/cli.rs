//! The object server program's `main`, shared by every server binary: the
//! binary lists the transports it was built with.
//!
//! ```text
//! SERVER [--listen ADDR] [--transports LIST] [--segment-size N] [--memory-limit N]
//!        [--retain N] [--no-prefault] [--no-zero-copy] [--secret-file PATH]
//!        [--no-auth] [--socket-dir DIR] [--no-unix-socket] [--idle-exit SECS]
//!        [--exit-with-parent] [--advertise HOST:PORT] [--reachable-at HOST:PORT]... [--replica-memory N]
//!        [--no-relay-chain] [--relay-same-host] [--relay-timeout MS] [transport options]
//! SERVER --stats HOST:PORT     (print a running server's statistics)
//! ```
//! Sizes accept K/M/G suffixes (powers of 1024). `--transports` names the
//! fabrics to serve the same memory over (default: the first the binary
//! has). Clients need the secret: from `--secret-file`, else
//! `PROXYSTORE_SERVER_SECRET` or the file named by
//! `PROXYSTORE_SERVER_SECRET_FILE`, else the user's secret file (created if
//! missing; see [`crate::Secret`]). Only `--no-auth` (or
//! `PROXYSTORE_SERVER_AUTH=none`) lets anyone who reaches the port use the
//! server. Clients on the server's node may also connect to its Unix-domain
//! socket (in `--socket-dir`, by default this user's private directory: see
//! [`crate::stream`]), where a process of the server's own user needs no
//! secret; `--no-unix-socket` turns that off. A client proves the secret for
//! the address it dialed: a server reached through an SSH tunnel or a
//! forwarded port names that address with `--reachable-at` (repeatable). Prints `LISTEN <addr>` on stdout once ready;
//! SIGTERM or SIGINT shut it down cleanly (exit status 0), and so does the
//! idle exit. `--exit-with-parent` (Linux) delivers SIGTERM when the thread
//! that started the server exits: test harnesses use it so that no server
//! outlives them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::auth::Secret;
use crate::server::{Server, ServerOptions};
use crate::transport::ServerTransport;

/// Starts a transport with the command line's options (flag -> value).
pub type StartFn = fn(&BTreeMap<String, String>) -> proxy_core::Result<Box<dyn ServerTransport>>;

/// A transport a server binary can serve.
#[derive(Debug, Clone, Copy)]
pub struct TransportFactory {
    /// Its name (`--transports` and hello).
    pub name: &'static str,
    /// The options it takes (`--flag VALUE`), with a line of help each.
    pub options: &'static [(&'static str, &'static str)],
    /// Start it with the options given (flag -> value).
    pub start: StartFn,
}

static STOP: AtomicBool = AtomicBool::new(false);

// A signal handler, not a fabric callback: it only performs an atomic store,
// which cannot panic (and catch_unwind is not async-signal-safe).
extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub use proxy_core::size::parse_size;

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    opts: ServerOptions,
    transports: Vec<String>,
    secret_file: Option<String>,
    no_auth: bool,
    exit_with_parent: bool,
    extra: BTreeMap<String, String>,
}

fn parse(
    args: impl IntoIterator<Item = String>,
    known: &[TransportFactory],
) -> Result<Option<Args>, String> {
    let mut a = Args {
        opts: ServerOptions::default(),
        transports: Vec::new(),
        secret_file: None,
        no_auth: false,
        exit_with_parent: false,
        extra: BTreeMap::new(),
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                a.opts.listen = val()?.parse().map_err(|e| format!("--listen: {e}"))?;
            }
            "--segment-size" => a.opts.segment_size = parse_size(&val()?)?,
            "--memory-limit" => a.opts.memory_limit = parse_size(&val()?)?,
            "--retain" => a.opts.retain = parse_size(&val()?)?,
            "--no-prefault" => a.opts.prefault = false,
            "--no-zero-copy" => a.opts.zero_copy = false,
            "--exit-with-parent" => a.exit_with_parent = true,
            "--secret-file" => a.secret_file = Some(val()?),
            "--no-auth" => a.no_auth = true,
            "--socket-dir" => a.opts.socket_dir = Some(val()?.into()),
            "--no-unix-socket" => a.opts.unix_socket = false,
            "--advertise" => a.opts.advertise = Some(val()?),
            "--reachable-at" => a.opts.reachable_at.push(val()?),
            "--replica-memory" => a.opts.relay.replica_limit = parse_size(&val()?)?,
            "--no-relay-chain" => a.opts.relay.chain = false,
            "--relay-same-host" => a.opts.relay.same_host = true,
            "--relay-timeout" => {
                let v = val()?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--relay-timeout: not milliseconds: {v:?}"))?;
                a.opts.relay.timeout = Duration::from_millis(ms.max(1));
            }
            "--idle-exit" => {
                let v = val()?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--idle-exit: not seconds: {v:?}"))?;
                a.opts.idle_exit = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "--transports" => {
                a.transports = val()?
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
            }
            "-h" | "--help" => return Ok(None),
            f if known.iter().any(|t| t.options.iter().any(|(o, _)| *o == f)) => {
                let v = val()?;
                a.extra.insert(flag, v);
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    if a.transports.is_empty() {
        a.transports.push(known[0].name.to_string());
    }
    for t in &a.transports {
        if !known.iter().any(|k| k.name == t) {
            let names: Vec<&str> = known.iter().map(|k| k.name).collect();
            return Err(format!(
                "transport {t:?} is not built into this server (it has {})",
                names.join(", ")
            ));
        }
    }
    Ok(Some(a))
}

fn usage(program: &str, known: &[TransportFactory]) -> String {
    let mut u = format!(
        "usage: {program} [--listen ADDR] [--transports {}] [--segment-size N[K|M|G]] \
         [--memory-limit N[K|M|G]] [--retain N[K|M|G]] [--no-prefault] [--no-zero-copy] [--secret-file PATH] \
         [--no-auth] [--socket-dir DIR] [--no-unix-socket] [--idle-exit SECS] [--exit-with-parent] \
         [--advertise HOST:PORT] [--reachable-at HOST:PORT]... [--replica-memory N[K|M|G]] [--no-relay-chain] [--relay-same-host] \
         [--relay-timeout MS]",
        known.iter().map(|k| k.name).collect::<Vec<_>>().join(",")
    );
    for k in known {
        for (o, help) in k.options {
            u.push_str(&format!("\n  {o} VALUE   ({}) {help}", k.name));
        }
    }
    u
}

/// Run a server binary with the transports it was built with (the first is
/// the default). Exits the process: 0 after a clean stop, 1 if the server
/// cannot start, 2 on a bad command line.
pub fn main(program: &str, known: &[TransportFactory]) -> ! {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--stats") {
        std::process::exit(print_stats(program, &argv[1..]));
    }
    let args = match parse(std::env::args().skip(1), known) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{}", usage(program, known));
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{program}: {e}\n{}", usage(program, known));
            std::process::exit(2)
        }
    };
    std::process::exit(run(program, known, args))
}

/// `SERVER --stats HOST:PORT`: print the statistics of a running server
/// (`name value` lines), with the job's secret from the environment or the
/// user's file, as clients find it.
fn print_stats(program: &str, rest: &[String]) -> i32 {
    let [addr] = rest else {
        eprintln!("usage: {program} --stats HOST:PORT");
        return 2;
    };
    let secret = match Secret::for_client(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{program}: {e}");
            return 1;
        }
    };
    match crate::server::remote_stats(addr, secret, Duration::from_secs(10)) {
        Ok(s) => {
            print!("{}", s.lines());
            0
        }
        Err(e) => {
            eprintln!("{program}: statistics of {addr}: {e}");
            1
        }
    }
}

fn run(program: &str, known: &[TransportFactory], mut args: Args) -> i32 {
    if args.no_auth && args.secret_file.is_some() {
        eprintln!("{program}: --no-auth and --secret-file contradict each other");
        return 2;
    }
    let secret = Secret::for_server(
        args.secret_file.as_deref().map(std::path::Path::new),
        args.no_auth,
    );
    args.opts.secret = match secret {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{program}: {e}");
            return 1;
        }
    };
    if args.exit_with_parent {
        // SAFETY: plain prctl call; SIGTERM then runs the clean shutdown below.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installing a handler that only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let mut transports = Vec::new();
    for name in &args.transports {
        let f = known
            .iter()
            .find(|k| k.name == name)
            .expect("checked by parse");
        match (f.start)(&args.extra) {
            Ok(t) => transports.push(t),
            Err(e) => {
                eprintln!("{program}: cannot start transport {name}: {e}");
                return 1;
            }
        }
    }
    let server = match Server::start(args.opts.clone(), transports) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{program}: cannot start: {e}");
            return 1;
        }
    };
    println!("LISTEN {}", server.addr());
    let _ = std::io::stdout().flush();
    eprintln!(
        "{program}: listening on {} over {} (segments of {} B, limit {} B, secret {})",
        server.addr(),
        args.transports.join(","),
        args.opts.segment_size,
        args.opts.memory_limit,
        if args.opts.secret.is_some() {
            "required"
        } else {
            "none: authentication is off, anyone who reaches the port may use this server"
        },
    );
    while !STOP.load(Ordering::Relaxed) && !server.stopped() {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown();
    eprintln!("{program}: stopped");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &BTreeMap<String, String>) -> proxy_core::Result<Box<dyn ServerTransport>> {
        Err(proxy_core::Error::config("test", "not startable"))
    }

    const KNOWN: &[TransportFactory] = &[
        TransportFactory {
            name: "a",
            options: &[("--a-opt", "an option of a")],
            start: none,
        },
        TransportFactory {
            name: "b",
            options: &[],
            start: none,
        },
    ];

    fn p(args: &[&str]) -> Result<Option<Args>, String> {
        parse(args.iter().map(|s| s.to_string()), KNOWN)
    }

    #[test]
    fn command_lines() {
        let a = p(&["--memory-limit", "2G", "--idle-exit", "5", "--a-opt", "x"])
            .unwrap()
            .unwrap();
        assert_eq!(a.opts.memory_limit, 2 << 30);
        assert_eq!(a.opts.idle_exit, Some(Duration::from_secs(5)));
        assert_eq!(a.transports, ["a"]);
        assert_eq!(a.extra.get("--a-opt").map(String::as_str), Some("x"));
        let a = p(&["--transports", "b,a"]).unwrap().unwrap();
        assert_eq!(a.transports, ["b", "a"]);
        assert!(p(&["--help"]).unwrap().is_none());
        let e = p(&["--transports", "ucx,zz"]).unwrap_err();
        assert!(e.contains("\"ucx\"") && e.contains("it has a, b"), "{e}");
        assert!(p(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(
            p(&["--segment-size"])
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(p(&["--idle-exit", "soon"]).is_err());
        assert_eq!(parse_size("3k"), Ok(3072));
        assert!(parse_size("x").is_err());
    }
}
