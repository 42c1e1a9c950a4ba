//! `proxystore-bench cold`: what a fresh process pays to resolve its first
//! proxy. For each connector and size, one object is stored and its proxy
//! serialized here; then `--procs` fresh processes each resolve it with the
//! command-line tool (`proxystore resolve PROXY --output /dev/null
//! --timing`), one after the other. Two series per cell: the whole process
//! (spawn to exit, timed here) and the resolve alone (deserialize the proxy,
//! open its store, get the object: the tool's own `--timing` line), median
//! and p99.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use bytes::Bytes;
use proxy_core::{Error, ProxyOptions, Result, Store};

use crate::connectors::{self, ConnectorOpts};
use crate::csv::{Row, fmt_size, fmt_us};
use crate::progress::Progress;
use crate::stats::summarize;

/// What `cold` runs.
#[derive(Debug)]
pub struct ColdOpts {
    pub connectors: Vec<String>,
    pub sizes: Vec<usize>,
    pub procs: usize,
    /// The command-line tool; `None`: `proxystore` next to this binary.
    pub cli: Option<PathBuf>,
    pub conn: ConnectorOpts,
}

/// The command-line tool next to this binary (cargo puts both in one directory).
fn sibling_cli() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating this program", e))?;
    let cli = exe.with_file_name("proxystore");
    if !cli.is_file() {
        return Err(Error::config(
            "bench",
            format!(
                "{} not found: build it (cargo build --release -p proxystore-cli) or pass --cli PATH",
                cli.display()
            ),
        ));
    }
    Ok(cli)
}

/// One fresh process resolving `hex`: (whole process µs, resolve µs).
fn one(cli: &Path, hex: &str, size: usize) -> Result<(f64, f64)> {
    let t = Instant::now();
    let out = Command::new(cli)
        .args(["resolve", hex, "--output", "/dev/null", "--timing"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io(format!("running {}", cli.display()), e))?;
    let whole = t.elapsed().as_secs_f64() * 1e6;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Error::permanent(
            "bench",
            "cold resolve",
            format!("{} resolve: {}: {}", cli.display(), out.status, err.trim()),
        ));
    }
    // `resolve_us R bytes N`
    let mut w = err
        .lines()
        .find_map(|l| l.strip_prefix("resolve_us "))
        .ok_or_else(|| {
            Error::permanent(
                "bench",
                "cold resolve",
                format!("no timing line in {err:?}"),
            )
        })?
        .split_whitespace();
    let us: f64 = w.next().and_then(|v| v.parse().ok()).ok_or_else(|| {
        Error::permanent(
            "bench",
            "cold resolve",
            format!("bad timing line in {err:?}"),
        )
    })?;
    let n: usize = match (w.next(), w.next()) {
        (Some("bytes"), Some(n)) => n.parse().unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    if n != size {
        return Err(Error::permanent(
            "bench",
            "cold resolve",
            format!("the fresh process got {n} bytes, expected {size}"),
        ));
    }
    Ok((whole, us))
}

fn p99(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let i = ((s.len() as f64 * 0.99).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

/// Run the series; rows in the benchmarks' CSV schema (section `cold`,
/// ops `process` and `resolve`, p99 in `extra`) and a Markdown table.
pub fn run(opts: &ColdOpts, progress: &Progress) -> Result<(Vec<Row>, String)> {
    let cli = match &opts.cli {
        Some(p) => p.clone(),
        None => sibling_cli()?,
    };
    let mut rows = Vec::new();
    let mut table = String::from(
        "| connector | size | process p50 | process p99 | resolve p50 | resolve p99 |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for cname in &opts.connectors {
        let conn = connectors::make(cname, &opts.conn)?;
        let store = Store::builder(format!("cold-{cname}"), conn.clone())
            .cache_bytes(0)
            .build()?;
        for &size in &opts.sizes {
            progress.say(&format!("cold {cname} {}", fmt_size(size)));
            let data = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            let p = store.proxy_with(data, ProxyOptions::default().populate_target(false))?;
            let hex: String = p.to_bytes()?.iter().map(|b| format!("{b:02x}")).collect();
            // One unrecorded run: the page cache holds the tool's binary.
            one(&cli, &hex, size)?;
            let (mut whole, mut resolve) = (Vec::new(), Vec::new());
            for _ in 0..opts.procs.max(1) {
                let (w, r) = one(&cli, &hex, size)?;
                whole.push(w);
                resolve.push(r);
            }
            store.evict(p.key())?;
            for (op, s) in [("process", &whole), ("resolve", &resolve)] {
                rows.push(Row {
                    section: "cold".into(),
                    connector: cname.clone(),
                    payload: "bytes".into(),
                    size,
                    op: op.into(),
                    summary: summarize(s),
                    extra: vec![("p99_us".into(), format!("{:.1}", p99(s)))],
                    bandwidth: false,
                });
            }
            table.push_str(&format!(
                "| {cname} | {} | {} | {} | {} | {} |\n",
                fmt_size(size),
                fmt_us(summarize(&whole).median),
                fmt_us(p99(&whole)),
                fmt_us(summarize(&resolve).median),
                fmt_us(p99(&resolve)),
            ));
        }
        connectors::cleanup(&conn);
    }
    Ok((rows, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_the_high_tail() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(p99(&v), 198.0);
        assert_eq!(p99(&[5.0]), 5.0);
        assert_eq!(p99(&[1.0, 9.0]), 9.0);
    }
}
