//! `proxystore`: put, get, exists and evict objects in a proxystore-rs store
//! from the shell, and print keys/proxies that other processes (Rust, or the
//! Python ProxyStore for the file and Redis connectors) can use.
//!
//! Exit status: 0 success; 1 the key is not stored (`get`, `exists`,
//! `resolve`); 2 any error (bad arguments, unreachable store, corrupt
//! object); 3 `watch` saw other bytes than expected.

mod spec;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use proxy_core::{Bytes, Store, codec};

#[derive(Parser)]
#[command(
    name = "proxystore",
    version,
    about = "Put, get, check and evict objects in a proxystore-rs store",
    after_help = "STORE: a URL (file:///dev/shm/store, redis://127.0.0.1:6379/0) or a TOML store \
configuration (--config), also from $PROXYSTORE_STORE.\n\
Exit status: 0 ok; 1 not stored (get, exists); 2 error; 3 wrong bytes (watch)."
)]
struct Cli {
    /// Store URL: `file:///DIR`, `ucx://HOST:PORT`, `ofi://HOST:PORT`, `margo://HOST:PORT`, `daos://POOL/CONTAINER[/NAMESPACE]`, `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, `redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]` (a Redis Cluster), or `endpoint://UUID[,UUID...]` (a ProxyStore endpoint on this host), each optionally followed by `?KEY=VALUE&...` options (each connector's README lists its keys; e.g. `ucx://HOST:PORT?zero_copy=false&timeout_ms=30000`).
    #[arg(long, short, env = "PROXYSTORE_STORE", global = true)]
    store: Option<String>,
    /// TOML store configuration file (as written by `proxystore config`).
    #[arg(long, short = 'c', global = true, conflicts_with = "store")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Print {
    /// The connector's own key text (the UUID for file and Redis: usable from Python).
    Key,
    /// The encoded key in hex (for `proxy_core::Key::from_hex`).
    Hex,
    /// A serialized proxy in hex (for `Proxy::from_bytes` in another Rust process).
    Proxy,
    /// All of the above and the store configuration, as JSON.
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Store an object read from a file (or stdin) and print its key.
    Put {
        /// Input file; `-` or nothing reads stdin.
        input: Option<PathBuf>,
        /// Store as a string (`US`, Python `str`; must be UTF-8) instead of bytes (`BS`).
        #[arg(long)]
        str: bool,
        /// What to print.
        #[arg(long, value_enum, default_value = "key")]
        print: Print,
    },
    /// Write an object to a file (or stdout).
    Get {
        /// The key (connector text form, or hex).
        key: String,
        /// Output file; stdout by default.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write the encoded object (with its format header) instead of its content.
        #[arg(long)]
        raw: bool,
    },
    /// Print whether a key is stored (exit 0 if it is, 1 if not).
    Exists {
        /// The key (connector text form, or hex).
        key: String,
    },
    /// Remove an object (no error if it is missing).
    Evict {
        /// The key (connector text form, or hex).
        key: String,
    },
    /// Print the store configuration as TOML (usable with --config).
    Config,
    /// Resolve a serialized proxy (`put --print proxy`) and write its object
    /// to a file (or stdout): the proxy names its store, so no --store is
    /// needed (one given is ignored).
    Resolve {
        /// The proxy in hex; `-` reads it from stdin.
        proxy: String,
        /// Output file; stdout by default.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write the encoded object (with its format header) instead of its content.
        #[arg(long)]
        raw: bool,
        /// Print `resolve_us MICROSECONDS bytes LEN` on stderr: the time from
        /// reading the proxy to holding its object (deserialize, open the
        /// store, get), without process start-up and the output's write.
        #[arg(long)]
        timing: bool,
    },
    /// Resolve proxies again and again in this one process and print one
    /// line per get, `START LABEL ok|none|error|WRONG GET_MS [DETAIL]` (START:
    /// when the get began, in ms since the Unix epoch): a check of what
    /// readers see while a node, a link or a server fails. Exit status 3 if any get returned other bytes than
    /// expected, else 0.
    Watch {
        /// Lines `LABEL PROXY_HEX [EXPECTED_FILE]` (the object's content is
        /// compared with the file's when one is given).
        list: PathBuf,
        /// Milliseconds from the start of one round of gets to the next.
        #[arg(long, default_value_t = 200)]
        every_ms: u64,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        for_s: f64,
    },
}

enum Failure {
    NotFound(String),
    Error(String),
    /// `watch`: a get returned other bytes than expected (reported already).
    Wrong,
}

impl From<proxy_core::Error> for Failure {
    fn from(e: proxy_core::Error) -> Self {
        Failure::Error(e.to_string())
    }
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure::Error(format!("{what}: {e}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The hex text `s` as bytes.
fn unhex(s: &str) -> Result<Vec<u8>, Failure> {
    let s = s.trim();
    let bad = || Failure::Error(format!("not a hex proxy: {:.40}...", s));
    if s.len() % 2 != 0 {
        return Err(bad());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)
}

/// What `get` and `resolve` write: the object's content (or, `raw`, the
/// encoded object with its format header).
fn content(what: &str, enc: Bytes, raw: bool) -> Result<Bytes, Failure> {
    if raw {
        return Ok(enc);
    }
    match codec::split(&enc)? {
        (codec::BYTES | codec::STR | codec::NUMPY, body) => Ok(body),
        (id, _) => Err(Failure::Error(format!(
            "{what}: object format {:?} has no plain content; use --raw to write the encoded object",
            String::from_utf8_lossy(&id)
        ))),
    }
}

fn write_out(output: Option<PathBuf>, body: &[u8]) -> Result<(), Failure> {
    match output {
        Some(p) => std::fs::write(&p, body).map_err(io_err(format!("writing {}", p.display()))),
        None => std::io::stdout()
            .lock()
            .write_all(body)
            .map_err(io_err("stdout")),
    }
}

/// `resolve`: the proxy's own store, from the proxy alone.
fn resolve(proxy: &str, output: Option<PathBuf>, raw: bool, timing: bool) -> Result<(), Failure> {
    let text = if proxy == "-" {
        let mut t = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut t)
            .map_err(io_err("reading stdin"))?;
        t
    } else {
        proxy.to_string()
    };
    let t = std::time::Instant::now();
    let p = proxy_core::Proxy::<Bytes>::from_bytes(&unhex(&text)?)?;
    let f = p.factory();
    let Some(enc) = f.store()?.get_encoded(f.key())? else {
        return Err(Failure::NotFound(format!("{}: not stored", f.key())));
    };
    let object = content("the proxy's object", enc, raw)?;
    if timing {
        eprintln!(
            "resolve_us {:.1} bytes {}",
            t.elapsed().as_secs_f64() * 1e6,
            object.len()
        );
    }
    write_out(output, &object)
}

/// `watch`: every proxy of `list` resolved every `every_ms` for `for_s`
/// seconds, each get a fresh one from its store (no cache, no resolved
/// target kept), in this one process. `Ok(true)`: some get returned wrong bytes.
fn watch(list: &std::path::Path, every_ms: u64, for_s: f64) -> Result<bool, Failure> {
    use std::time::{Duration, Instant};
    let text =
        std::fs::read_to_string(list).map_err(io_err(format!("reading {}", list.display())))?;
    let mut items = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut w = line.split_whitespace();
        let (Some(label), Some(hex)) = (w.next(), w.next()) else {
            return Err(Failure::Error(format!(
                "{}: not `LABEL PROXY [FILE]`: {line}",
                list.display()
            )));
        };
        let want = match w.next() {
            Some(f) => Some(std::fs::read(f).map_err(io_err(format!("reading {f}")))?),
            None => None,
        };
        let p = proxy_core::Proxy::<Bytes>::from_bytes(&unhex(hex)?)?;
        items.push((label.to_string(), p, want));
    }
    let end = Instant::now() + Duration::from_secs_f64(for_s);
    let out = std::sync::Mutex::new(std::io::stdout());
    // One thread per proxy: a get that waits on a failed node holds up no
    // other object's gets.
    let wrong = std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .iter()
            .map(|(label, p, want)| {
                let out = &out;
                scope.spawn(move || -> Result<bool, Failure> {
                    let mut wrong = false;
                    while Instant::now() < end {
                        let round = Instant::now();
                        let (status, ms, detail, began) = watch_get(p, want.as_deref());
                        wrong |= status == "WRONG";
                        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                        writeln!(o, "{began} {label} {status} {ms:.1} {detail}")
                            .and_then(|()| o.flush())
                            .map_err(io_err("stdout"))?;
                        drop(o);
                        std::thread::sleep(
                            Duration::from_millis(every_ms).saturating_sub(round.elapsed()),
                        );
                    }
                    Ok(wrong)
                })
            })
            .collect();
        threads.into_iter().try_fold(false, |w, t| {
            Ok::<bool, Failure>(w | t.join().unwrap_or(Ok(true))?)
        })
    })?;
    Ok(wrong)
}

/// One get of `watch`: status (ok, none, error, WRONG), milliseconds, detail,
/// and when it began (ms since the Unix epoch).
fn watch_get(
    p: &proxy_core::Proxy<Bytes>,
    want: Option<&[u8]>,
) -> (&'static str, f64, String, u128) {
    let f = p.factory();
    let began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let t = std::time::Instant::now();
    let got = f.store().and_then(|s| s.connector().get(f.key()));
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (status, detail) = match got {
        Ok(None) => ("none", String::new()),
        Err(e) => ("error", e.to_string().replace('\n', " ")),
        Ok(Some(enc)) => match (codec::split(&enc), want) {
            (Ok((_, body)), Some(w)) if body[..] != w[..] => (
                "WRONG",
                format!("{} bytes, not the {} expected", body.len(), w.len()),
            ),
            (Ok(_), _) => ("ok", String::new()),
            (Err(e), _) => ("WRONG", format!("not an encoded object: {e}")),
        },
    };
    (status, ms, detail, began)
}

fn run(cli: Cli) -> Result<(), Failure> {
    spec::register_all();
    match cli.cmd {
        Cmd::Resolve {
            proxy,
            output,
            raw,
            timing,
        } => return resolve(&proxy, output, raw, timing),
        Cmd::Watch {
            list,
            every_ms,
            for_s,
        } => {
            return match watch(&list, every_ms, for_s)? {
                true => Err(Failure::Wrong),
                false => Ok(()),
            };
        }
        _ => {}
    }
    let config =
        spec::store_config(cli.store.as_deref(), cli.config.as_deref()).map_err(Failure::Error)?;
    let store = Store::from_config(&config)?;
    let conn = store.connector().clone();
    let mut out = std::io::stdout().lock();
    match cli.cmd {
        Cmd::Config => {
            // The store's own configuration: never carries a password.
            let toml = store.config().to_toml_string()?;
            writeln!(out, "{}", toml.trim_end()).map_err(io_err("stdout"))?;
        }
        Cmd::Put { input, str, print } => {
            let mut data = Vec::new();
            match input.as_deref().filter(|p| p.as_os_str() != "-") {
                Some(p) => {
                    data = std::fs::read(p).map_err(io_err(format!("reading {}", p.display())))?;
                }
                None => {
                    std::io::stdin()
                        .lock()
                        .read_to_end(&mut data)
                        .map_err(io_err("reading stdin"))?;
                }
            }
            let (key, proxy_hex) = if str {
                let s = String::from_utf8(data)
                    .map_err(|e| Failure::Error(format!("--str input is not UTF-8: {e}")))?;
                let p = store.proxy(s)?;
                (p.key().clone(), hex(&p.to_bytes()?))
            } else {
                let p = store.proxy(Bytes::from(data))?;
                (p.key().clone(), hex(&p.to_bytes()?))
            };
            let line = match print {
                Print::Key => conn.key_to_string(&key)?,
                Print::Hex => key.to_string(),
                Print::Proxy => proxy_hex,
                Print::Json => serde_json::json!({
                    "key": conn.key_to_string(&key)?,
                    "key_hex": key.to_string(),
                    "proxy_hex": proxy_hex,
                    "connector": conn.kind(),
                    "store": store.config(),
                })
                .to_string(),
            };
            writeln!(out, "{line}").map_err(io_err("stdout"))?;
        }
        Cmd::Get { key, output, raw } => {
            let k = conn.parse_key(&key)?;
            let Some(enc) = store.get_encoded(&k)? else {
                return Err(Failure::NotFound(format!("{key}: not stored")));
            };
            drop(out);
            write_out(output, &content(&key, enc, raw)?)?;
        }
        Cmd::Exists { key } => {
            let k = conn.parse_key(&key)?;
            let yes = store.exists(&k)?;
            writeln!(out, "{yes}").map_err(io_err("stdout"))?;
            if !yes {
                return Err(Failure::NotFound(String::new()));
            }
        }
        Cmd::Evict { key } => {
            let k = conn.parse_key(&key)?;
            store.evict(&k)?;
        }
        Cmd::Resolve { .. } | Cmd::Watch { .. } => unreachable!("handled above"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::NotFound(msg)) => {
            if !msg.is_empty() {
                eprintln!("proxystore: {msg}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Error(msg)) => {
            eprintln!("proxystore: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Wrong) => {
            eprintln!("proxystore: a get returned other bytes than expected");
            ExitCode::from(3)
        }
    }
}
