//! `proxystore-bench`: benchmarks of proxystore-rs.
//!
//! - `proxystore-bench store`: store-level put/get/proxy/consumer-resolve per
//!   connector, payload and size, in the CSV schema of the Python reference
//!   harness (`benches/python/`), so its `compare.py` shows it next to the
//!   Python ProxyStore.
//! - `proxystore-bench patterns`: the proxy patterns (task chain with proxy
//!   futures, streaming through Redis, peak memory with owned proxies).
//! - `mpiexec -n N proxystore-bench mpi`: proxies sent between MPI ranks and
//!   resolved there (pair, fan-out, all-to-all), next to MPI point-to-point.
//! - `proxystore-bench relay-sim`: a model and simulation of one object
//!   delivered to N nodes by shape (no MPI, no connector).

mod chart;
mod cold_bench;
mod connectors;
mod csv;
mod mpi_bench;
mod patterns_bench;
mod progress;
mod relay_sim;
mod rma;
mod small_bench;
mod stats;
mod store_bench;
mod streams_bench;

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
    /// Store-level benchmark (put, get, proxy resolved in another process), as benches/python/bench_store.py.
    Store(StoreArgs),
    /// MPI-launched benchmark (run under mpiexec/srun with >= 2 ranks).
    Mpi(MpiArgs),
    /// Redraw the chart of an MPI run from its CSV (e.g. after gathering runs).
    Chart {
        /// `mpi.csv` of a run.
        mpi_csv: PathBuf,
        /// A CSV of benches/python/bench_store.py (the Python ProxyStore) to draw next to it.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Output SVG file.
        #[arg(long, short, default_value = "mpi.svg")]
        output: PathBuf,
    },
    /// Proxy patterns side by side: a task chain with proxy futures, streaming
    /// through Redis, peak memory with plain / manually evicted / owned proxies.
    Patterns(PatternsArgs),
    /// Proxy futures across MPI ranks (run under mpiexec with >= 2 ranks).
    PatternsMpi,
    /// Internal: a consumer process of `patterns stream`.
    #[command(hide = true)]
    PatternsConsumer { args: Vec<String> },
    /// Streams: one producer, one consumer process, items of each size
    /// through each shim (Redis pub/sub, list, Streams; ZeroMQ), with
    /// proxies (UCX store) and inline: items/s, GB/s, p50/p99 latency.
    Streams(StreamsArgs),
    /// Internal: the consumer process of `streams`.
    #[command(hide = true)]
    StreamsConsumer { args: Vec<String> },
    /// Internal: a producer process (Python interop tests).
    #[command(hide = true)]
    StreamsProducer { args: Vec<String> },
    /// A fresh process resolving its first proxy: N processes of the
    /// command-line tool per connector and size, whole process and resolve alone.
    Cold(ColdArgs),
    /// Small objects from one client: gets and get_batch per second per connector.
    Small(SmallArgs),
    /// Model and simulation of one object delivered to N nodes (star, chain,
    /// trees, pipelines): table, CSV, chart.
    RelaySim(relay_sim::Args),
    /// Internal: the consumer process of `store`.
    #[command(hide = true)]
    Consumer,
}

#[derive(clap::Args)]
struct StoreArgs {
    /// Comma-separated connectors: local, file, redis, redis-cluster, ucx, ofi,
    /// margo, daos, or store URLs (file:///DIR, redis://HOST:PORT/DB,
    /// redis+cluster://HOST:PORT (one seed node), ucx://HOST:PORT,
    /// ofi://HOST:PORT, margo://HOST:PORT, daos://POOL/CONTAINER).
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
    #[command(flatten)]
    conn: connectors::ConnectorOpts,
    /// Write the long-form CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SmallArgs {
    /// Comma-separated connectors (as `store`).
    #[arg(long, default_value = "local,file", value_delimiter = ',')]
    connectors: Vec<String>,
    /// Object size.
    #[arg(long, default_value = "1KB", value_parser = parse_size)]
    size: usize,
    /// Objects per `get_batch`.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Seconds per series.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    #[command(flatten)]
    conn: connectors::ConnectorOpts,
}

#[derive(clap::Args)]
struct ColdArgs {
    /// Comma-separated connectors (as `store`): local is refused (one process only).
    #[arg(long, default_value = "file", value_delimiter = ',')]
    connectors: Vec<String>,
    /// Comma-separated sizes.
    #[arg(long, default_value = "1KB,1MB,100MB", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Fresh processes per connector and size.
    #[arg(long, default_value_t = 20)]
    procs: usize,
    /// The command-line tool the fresh processes run (default: `proxystore`
    /// next to this binary).
    #[arg(long)]
    cli: Option<PathBuf>,
    #[command(flatten)]
    conn: connectors::ConnectorOpts,
    /// Write the long-form CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

#[derive(clap::Args)]
struct StreamsArgs {
    /// Comma-separated shims: redis, redis-queue, redis-streams, zmq, kafka
    /// (kafka needs a `tansu` broker: `$TANSU` or on the PATH).
    #[arg(
        long,
        default_value = "redis,redis-queue,redis-streams,zmq",
        value_delimiter = ','
    )]
    shims: Vec<String>,
    /// Comma-separated item sizes.
    #[arg(long, default_value = "1KB,1MB,100MB", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Bytes per run: items = this / size, at least 5, at most 2000.
    #[arg(long, default_value = "1GB", value_parser = parse_size)]
    budget: usize,
    /// A Python with ProxyStore 1.1 (e.g. the venv of benches/python/run.sh):
    /// also run its stream, Redis pub/sub shim and Redis store, per size.
    #[arg(long)]
    python: Option<PathBuf>,
    #[command(flatten)]
    conn: connectors::ConnectorOpts,
}

#[derive(clap::Args)]
struct PatternsArgs {
    /// Comma-separated: chain, stream, memory, or all.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    benches: Vec<String>,
    /// Duration of each chain task in ms.
    #[arg(long, default_value_t = 200)]
    task_ms: u64,
    /// Output size of each chain task.
    #[arg(long, default_value = "1MB", value_parser = parse_size)]
    chain_output: usize,
    /// Consumer processes of the stream benchmark.
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// Comma-separated item sizes of the stream benchmark.
    #[arg(long, default_value = "1MB,10MB,100MB", value_delimiter = ',', value_parser = parse_size)]
    stream_sizes: Vec<usize>,
    /// Pipelines of the memory benchmark.
    #[arg(long, default_value_t = 8)]
    memory_pipelines: usize,
    /// First-stage object size of the memory benchmark (then /10, /100).
    #[arg(long, default_value = "50MB", value_parser = parse_size)]
    memory_stage1: usize,
    #[command(flatten)]
    conn: connectors::ConnectorOpts,
}

#[derive(clap::Args)]
struct MpiArgs {
    /// Patterns: pair, fanout, alltoall, or all.
    #[arg(long, default_value = "all", value_parser = mpi_bench::Pattern::parse)]
    pattern: std::vec::Vec<mpi_bench::Pattern>,
    /// Comma-separated connectors: file, redis, ucx, ofi, margo, or store URLs (the MPI
    /// point-to-point reference always runs).
    #[arg(long, default_value = "file", value_delimiter = ',')]
    connectors: Vec<String>,
    /// Comma-separated sizes.
    #[arg(long, default_value = "1KiB,64KiB,1MiB,16MiB,256MiB,1GiB", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Timed repetitions per series.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Warm-up repetitions per series.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Largest size run in the all-to-all pattern (each rank holds N objects).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    alltoall_max: usize,
    #[command(flatten)]
    conn: connectors::ConnectorOpts,
    /// Output directory (CSV, markdown, SVG chart).
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// A CSV of benches/python/bench_store.py (the Python ProxyStore) to draw next to ours.
    #[arg(long)]
    compare: Option<PathBuf>,
}

/// Chart lines from a CSV in the benchmarks' schema: one line per (impl,
/// connector), MB/s = size / median, for the rows of `section` and `op`.
fn csv_lines(path: &std::path::Path, section: &str, op: &str) -> Vec<chart::Line> {
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("proxystore-bench: cannot read {}", path.display());
        return vec![];
    };
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(ii), Some(ci), Some(pi), Some(si), Some(oi), Some(mi), Some(seci)) = (
        col("impl"),
        col("connector"),
        col("payload"),
        col("size_bytes"),
        col("op"),
        col("median_us"),
        col("section"),
    ) else {
        eprintln!(
            "proxystore-bench: {} is not in the benchmarks' CSV schema",
            path.display()
        );
        return vec![];
    };
    let mut out: Vec<chart::Line> = Vec::new();
    for l in rows {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() <= mi || f[seci] != section || f[oi] != op || f[pi] != "bytes" {
            continue;
        }
        let (Ok(size), Ok(med)) = (f[si].parse::<f64>(), f[mi].parse::<f64>()) else {
            continue;
        };
        let label = match (f[ii], f[ci]) {
            ("proxystore-py", c) => format!("python {c} (child process)"),
            (_, "mpi") => "MPI send/recv".to_string(),
            (_, "mpi-get") => "MPI_Get (passive target)".to_string(),
            ("proxystore-rs", c) => format!("rs {c} (proxy)"),
            (i, c) => format!("{i} {c}"),
        };
        let point = (size, size / med);
        match out.iter_mut().find(|x| x.label == label) {
            Some(x) => x.points.push(point),
            None => out.push(chart::Line {
                label,
                points: vec![point],
            }),
        }
    }
    out
}

/// The chart of an MPI run: bandwidth of the pair pattern's resolves that
/// read every byte (`resolve_read_all`; a touch of one byte per page is no
/// bandwidth when nothing moved), with the Python reference's child-process
/// resolves when given (its file and Redis connectors read every byte into
/// memory before the touch).
fn mpi_chart(mpi_csv: &std::path::Path, compare: Option<&std::path::Path>) -> String {
    let mut lines = csv_lines(mpi_csv, "mpi-pair", "resolve_read_all");
    if let Some(p) = compare {
        lines.extend(csv_lines(p, "proxystore", "child_resolve"));
    }
    chart::svg(
        "Resolve + read every byte, MB/s per consumer, 2 ranks (pair)",
        &lines,
    )
}

fn run_mpi(a: MpiArgs) -> i32 {
    let Some(universe) = mpi::initialize() else {
        eprintln!("proxystore-bench mpi: MPI could not be initialised");
        return 1;
    };
    let world = universe.world();
    let rank = mpi::traits::Communicator::rank(&world);
    // A panicking rank must take the job down (MPI_Abort), not wait forever in
    // MPI_Finalize while the other ranks wait for it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("proxystore-bench mpi: rank {rank} panicked; aborting the MPI job");
        mpi::traits::Communicator::abort(&mpi::topology::SimpleCommunicator::world(), 101);
    }));
    let csv_path = a.out.join("mpi.csv");
    let opts = mpi_bench::MpiOpts {
        patterns: a.pattern,
        connectors: a.connectors,
        sizes: a.sizes,
        reps: a.reps.max(1),
        warmup: a.warmup,
        alltoall_max: a.alltoall_max,
        csv: Some(csv_path.clone()),
        conn: a.conn,
    };
    let progress = progress::Progress::new(rank == 0);
    let (series, res) = mpi_bench::run(&world, &opts, &progress);
    progress.done();
    if rank != 0 {
        return i32::from(res.is_err());
    }
    if series.is_empty()
        && let Err(e) = &res
    {
        // Nothing measured (the run could not start): no empty table.
        eprintln!("proxystore-bench mpi: {e}");
        return 1;
    }
    let table = mpi_bench::table(&series);
    println!("{table}");
    let svg = mpi_chart(&csv_path, a.compare.as_deref());
    let md_path = a.out.join("mpi.md");
    let svg_path = a.out.join("mpi.svg");
    let written = std::fs::write(&md_path, &table).and_then(|_| std::fs::write(&svg_path, svg));
    match written {
        Ok(()) => eprintln!(
            "results: {} {} {}",
            csv_path.display(),
            md_path.display(),
            svg_path.display()
        ),
        Err(e) => eprintln!(
            "proxystore-bench: cannot write results in {}: {e}",
            a.out.display()
        ),
    }
    match res {
        Ok(_) => 0,
        Err(e) => {
            eprintln!(
                "proxystore-bench mpi: {e} (partial results in {})",
                csv_path.display()
            );
            1
        }
    }
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
        // "-" where nothing moved (a mapped get) or there was no get.
        let mbps = find("get")
            .filter(|r| r.bandwidth)
            .map_or("-".to_string(), |r| format!("{:.0}", r.mb_per_s()));
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
        Cmd::Mpi(a) => run_mpi(a),
        Cmd::Small(a) => {
            connectors::register_all();
            let opts = small_bench::SmallOpts {
                connectors: a.connectors,
                size: a.size,
                batch: a.batch.max(1),
                seconds: a.seconds.max(0.01),
                conn: a.conn,
            };
            let progress = progress::Progress::new(true);
            let res = small_bench::run(&opts, &progress);
            progress.done();
            match res {
                Ok(t) => {
                    println!("{t}");
                    0
                }
                Err(e) => {
                    eprintln!("proxystore-bench small: {e}");
                    1
                }
            }
        }
        Cmd::Cold(a) => {
            connectors::register_all();
            if a.connectors.iter().any(|c| c == "local") {
                eprintln!("proxystore-bench cold: the local connector lives in one process");
                std::process::exit(2);
            }
            let opts = cold_bench::ColdOpts {
                connectors: a.connectors,
                sizes: a.sizes,
                procs: a.procs,
                cli: a.cli,
                conn: a.conn,
            };
            let progress = progress::Progress::new(true);
            let res = cold_bench::run(&opts, &progress);
            progress.done();
            match res {
                Ok((rows, table)) => {
                    println!("{table}");
                    if let Some(p) = &a.csv {
                        match write_csv(p, &rows) {
                            Ok(()) => eprintln!("CSV: {}", p.display()),
                            Err(e) => {
                                eprintln!("proxystore-bench: cannot write {}: {e}", p.display())
                            }
                        }
                    }
                    0
                }
                Err(e) => {
                    eprintln!("proxystore-bench cold: {e}");
                    1
                }
            }
        }
        Cmd::RelaySim(a) => match relay_sim::run(a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("proxystore-bench relay-sim: {e}");
                2
            }
        },
        Cmd::PatternsMpi => patterns_bench::mpi_futures(),
        Cmd::StreamsConsumer { args } => match streams_bench::consumer_main(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("proxystore-bench streams-consumer: {e}");
                1
            }
        },
        Cmd::StreamsProducer { args } => match streams_bench::producer_main(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("proxystore-bench streams-producer: {e}");
                1
            }
        },
        Cmd::Streams(a) => {
            connectors::register_all();
            let opts = streams_bench::StreamsOpts {
                shims: a.shims,
                sizes: a.sizes,
                budget: a.budget.max(1),
                python: a.python,
                conn: a.conn,
            };
            match streams_bench::run(&opts) {
                Ok(table) => {
                    println!("{table}");
                    0
                }
                Err(e) => {
                    eprintln!("proxystore-bench streams: {e}");
                    1
                }
            }
        }
        Cmd::PatternsConsumer { args } => match patterns_bench::consumer_main(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("proxystore-bench patterns-consumer: {e}");
                1
            }
        },
        Cmd::Patterns(a) => {
            connectors::register_all();
            let opts = patterns_bench::PatternsOpts {
                benches: a.benches,
                task_ms: a.task_ms,
                chain_output: a.chain_output,
                consumers: a.consumers.max(1),
                sizes: a.stream_sizes,
                memory_pipelines: a.memory_pipelines.max(1),
                memory_stage1: a.memory_stage1.max(100),
                conn: a.conn,
            };
            match patterns_bench::run(&opts) {
                Ok(tables) => {
                    println!("{tables}");
                    0
                }
                Err(e) => {
                    eprintln!("proxystore-bench patterns: {e}");
                    1
                }
            }
        }
        Cmd::Chart {
            mpi_csv,
            compare,
            output,
        } => match std::fs::write(&output, mpi_chart(&mpi_csv, compare.as_deref())) {
            Ok(()) => {
                eprintln!("chart: {}", output.display());
                0
            }
            Err(e) => {
                eprintln!("proxystore-bench: cannot write {}: {e}", output.display());
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
                conn: a.conn,
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
