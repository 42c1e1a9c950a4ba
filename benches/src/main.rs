//! `proxystore-bench`: benchmarks of proxystore-rs.
//!
//! - `proxystore-bench store`: store-level put/get/proxy/consumer-resolve per
//!   connector, payload and size, in the CSV schema of `shared/bench-ref`, so
//!   `compare.py` shows it next to the Python ProxyStore.

mod connectors;
mod csv;
mod progress;
mod stats;
mod store_bench;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::csv::{HEADER, Row, fmt_size, fmt_us, parse_size};

#[derive(Parser)]
#[command(
    name = "proxystore-bench",
    version,
    about = "Benchmarks of proxystore-rs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Store-level benchmark (put, get, proxy resolved in another process), as shared/bench-ref.
    Store(StoreArgs),
    /// Internal: the consumer process of `store`.
    #[command(hide = true)]
    Consumer,
}

#[derive(clap::Args)]
struct StoreArgs {
    /// Comma-separated connectors.
    #[arg(long, default_value = "local,file", value_delimiter = ',')]
    connectors: Vec<String>,
    /// Comma-separated payload kinds: bytes, numpy.
    #[arg(long, default_value = "bytes,numpy", value_delimiter = ',', value_parser = store_bench::PayloadKind::parse)]
    payloads: Vec<store_bench::PayloadKind>,
    /// Comma-separated sizes (decimal units as the reference: 1KB = 1000 B; or KiB/MiB/GiB).
    #[arg(long, default_value = "1KB,100KB,1MB,10MB,100MB", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Smoke test: 1 warm-up and 5 timed repetitions per series.
    #[arg(long)]
    quick: bool,
    /// Seconds after which a series stops (once it has 5 repetitions).
    #[arg(long, default_value_t = 3.0)]
    series_budget: f64,
    /// Directory of the file connector (default: a fresh one under /dev/shm).
    #[arg(long)]
    file_dir: Option<PathBuf>,
    /// Write the long-form CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

fn print_store_table(rows: &[Row]) {
    println!(
        "| connector | payload | size | put | get | get MB/s | proxy_create | child_resolve | proxy_e2e | proxy bytes |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut keys: Vec<(String, String, usize)> = Vec::new();
    for r in rows {
        let k = (r.connector.clone(), r.payload.clone(), r.size);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (c, p, s) in keys {
        let find = |op: &str| {
            rows.iter()
                .find(|r| r.connector == c && r.payload == p && r.size == s && r.op == op)
        };
        let cell = |op: &str| find(op).map_or("-".to_string(), |r| fmt_us(r.summary.median));
        let mbps = find("get").map_or("-".to_string(), |r| format!("{:.0}", r.mb_per_s()));
        let pbytes = find("proxy_create")
            .and_then(|r| {
                r.extra
                    .iter()
                    .find(|(k, _)| k == "proxy_bytes")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "| {c} | {p} | {} | {} | {} | {mbps} | {} | {} | {} | {pbytes} |",
            fmt_size(s),
            cell("put"),
            cell("get"),
            cell("proxy_create"),
            cell("child_resolve"),
            cell("proxy_e2e")
        );
    }
}

fn write_csv(path: &PathBuf, rows: &[Row]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "{HEADER}")?;
    for r in rows {
        writeln!(f, "{}", r.to_csv())?;
    }
    f.flush()
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Consumer => match store_bench::child_main() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("proxystore-bench consumer: {e}");
                1
            }
        },
        Cmd::Store(a) => {
            connectors::register_all();
            let opts = store_bench::StoreBenchOpts {
                connectors: a.connectors,
                payloads: a.payloads,
                sizes: a.sizes,
                quick: a.quick,
                budget_s: a.series_budget,
                conn: connectors::ConnectorOpts {
                    file_dir: a.file_dir,
                },
            };
            let progress = progress::Progress::new(true);
            let mut rows = Vec::new();
            let res = store_bench::run(&opts, &mut rows, &progress);
            progress.done();
            print_store_table(&rows);
            if let Some(p) = &a.csv {
                match write_csv(p, &rows) {
                    Ok(()) => eprintln!("CSV: {}", p.display()),
                    Err(e) => eprintln!("proxystore-bench: cannot write {}: {e}", p.display()),
                }
            }
            match res {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("proxystore-bench store: {e} (partial results above)");
                    1
                }
            }
        }
    };
    std::process::exit(code);
}
