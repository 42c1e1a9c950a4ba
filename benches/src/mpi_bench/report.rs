//! The results: one measured series per pattern, connector and size, its
//! CSV rows (appended as soon as measured), and the Markdown table with its
//! legend.

use std::io::Write;
use std::path::PathBuf;

use proxy_core::{Error, Result};

use super::pattern::Pattern;
use crate::csv::{HEADER, Row, fmt_size, fmt_us};
use crate::stats::summarize;

/// One measured series (on rank 0).
#[derive(Debug, Clone)]
pub struct Series {
    pub pattern: Pattern,
    pub connector: String,
    pub size: usize,
    pub ranks: usize,
    pub put_us: Vec<f64>,
    /// Resolve + touch one byte per page, per consumer and repetition.
    pub resolve_us: Vec<f64>,
    /// The same resolves until every byte was read (checksum).
    pub read_us: Vec<f64>,
    pub e2e_us: Vec<f64>,
    /// Per repetition: bytes resolved / resolve+touch time of the slowest consumer.
    pub aggregate_mbps: Vec<f64>,
    /// Per repetition: bytes read / resolve+read-all time of the slowest consumer.
    pub read_aggregate_mbps: Vec<f64>,
    pub proxy_bytes: usize,
    /// The resolved bytes moved into the consumer (copy, receive, one-sided
    /// read); false for a mapping of memory already on its node (see
    /// [`data_moves`]).
    pub moved: bool,
}

/// Whether a resolve through a connector of this kind moves the data into
/// the consumer (a copy, a receive, a one-sided read into local memory), as
/// Redis, UCX and libfabric do; not so for a mapping of memory already on the
/// node: the file connector's `mmap` of the page cache, the local connector's
/// own memory, where touching one byte per page moves nothing. (The
/// capabilities cannot tell: a UCX connector on its stream data path is a
/// zero-copy get that is not one-sided, yet its data crossed the network.) A
/// file connector on a shared file system of another node does fault its pages
/// in over the network; it is still counted as mapped, so no touch bandwidth
/// is claimed for it: its read-all figure is the one to quote.
pub fn data_moves(kind: &str) -> bool {
    !matches!(kind, "file" | "local")
}

impl Series {
    /// `moved` or `mapped` (the `data` column of the table, `data=` in the CSV).
    pub fn data(&self) -> &'static str {
        if self.moved { "moved" } else { "mapped" }
    }
}

impl Series {
    pub fn rows(&self) -> Vec<Row> {
        let section = format!("mpi-{}", self.pattern.name());
        let agg = summarize(&self.aggregate_mbps).median;
        let read_agg = summarize(&self.read_aggregate_mbps).median;
        let mut extra = vec![
            ("ranks".to_string(), self.ranks.to_string()),
            ("proxy_bytes".to_string(), self.proxy_bytes.to_string()),
            ("data".to_string(), self.data().to_string()),
        ];
        if self.moved {
            extra.push(("aggregate_mb_per_s".to_string(), format!("{agg:.1}")));
        }
        extra.push((
            "aggregate_read_mb_per_s".to_string(),
            format!("{read_agg:.1}"),
        ));
        let mut out = Vec::new();
        for (op, s, bandwidth) in [
            ("put", &self.put_us, true),
            ("resolve", &self.resolve_us, self.moved),
            ("resolve_read_all", &self.read_us, true),
            ("e2e", &self.e2e_us, true),
        ] {
            if !s.is_empty() {
                out.push(Row {
                    section: section.clone(),
                    connector: self.connector.clone(),
                    payload: "bytes".into(),
                    size: self.size,
                    op: op.into(),
                    summary: summarize(s),
                    extra: extra.clone(),
                    bandwidth,
                });
            }
        }
        out
    }
}

pub(super) struct Sink {
    pub(super) file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Sink {
    pub(super) fn new(path: Option<&PathBuf>) -> Result<Sink> {
        let file = match path {
            None => None,
            Some(p) => {
                if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d)
                        .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
                }
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .map_err(|e| Error::io(format!("creating {}", p.display()), e))?,
                );
                writeln!(f, "{HEADER}")
                    .and_then(|_| f.flush())
                    .map_err(|e| Error::io("writing CSV", e))?;
                Some(f)
            }
        };
        Ok(Sink { file })
    }

    pub(super) fn push(&mut self, s: &Series) {
        if let Some(f) = &mut self.file {
            for r in s.rows() {
                let _ = writeln!(f, "{}", r.to_csv());
            }
            let _ = f.flush();
        }
    }
}

/// Markdown table of the series, with a legend saying which figures are
/// bandwidths.
pub fn table(series: &[Series]) -> String {
    let mut t = String::from(
        "| pattern | ranks | connector | size | data | put | proxy B | resolve+touch p50 (p10-p90) | resolve+read all p50 (p10-p90) | e2e p50 | touch MB/s | read-all MB/s | aggregate read-all MB/s |\n|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in series {
        let r = summarize(&s.resolve_us);
        let rd = summarize(&s.read_us);
        let put = if s.put_us.is_empty() {
            "-".into()
        } else {
            fmt_us(summarize(&s.put_us).median)
        };
        let pb = if s.connector == "mpi" || s.connector == "mpi-get" {
            "-".into()
        } else {
            s.proxy_bytes.to_string()
        };
        let touch_mbps = if s.moved {
            format!("{:.0}", s.size as f64 / r.median)
        } else {
            "–".into()
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}-{}) | {} ({}-{}) | {} | {} | {:.0} | {:.0} |\n",
            s.pattern.name(),
            s.ranks,
            s.connector,
            fmt_size(s.size),
            s.data(),
            put,
            pb,
            fmt_us(r.median),
            fmt_us(r.p10),
            fmt_us(r.p90),
            fmt_us(rd.median),
            fmt_us(rd.p10),
            fmt_us(rd.p90),
            fmt_us(summarize(&s.e2e_us).median),
            touch_mbps,
            s.size as f64 / rd.median,
            summarize(&s.read_aggregate_mbps).median,
        ));
    }
    t.push_str(LEGEND);
    t
}

/// What the table's columns mean (printed under it).
const LEGEND: &str = "
resolve+touch: the consumer resolves the proxy and reads one byte per 4 KiB page (for mpi: \
receives the payload and touches it). resolve+read all: the same resolve, timed on until a \
checksum of every byte is done. MB/s = 10^6 B/s = size / median. touch MB/s only where the \
data moved into the consumer (data=moved: a copy, a receive, a one-sided read into local \
memory); where the consumer's bytes are a mapping of memory already on its node \
(data=mapped: the file connector's mmap of the page cache) the touch moves nothing and gives \
no bandwidth (–). aggregate: all bytes the consumers read / resolve+read-all time of the \
slowest consumer.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn series(connector: &str, moved: bool) -> Series {
        Series {
            pattern: Pattern::Pair,
            connector: connector.into(),
            size: 1 << 20,
            ranks: 2,
            put_us: if connector == "mpi" {
                vec![]
            } else {
                vec![100.0]
            },
            resolve_us: vec![10.0, 10.0],
            read_us: vec![200.0, 200.0],
            e2e_us: vec![400.0],
            aggregate_mbps: vec![104857.6],
            read_aggregate_mbps: vec![5242.88],
            proxy_bytes: 120,
            moved,
        }
    }

    #[test]
    fn mapped_resolve_has_no_touch_bandwidth() {
        let file = series("file", false);
        let redis = series("redis", true);
        let t = table(&[file.clone(), redis.clone()]);
        // file: no touch MB/s, read-all MB/s = 1048576 B / 200 µs.
        assert!(
            t.contains("| pair | 2 | file | 1MiB | mapped | 100 µs | 120 | 10 µs (10 µs-10 µs) | 200 µs (200 µs-200 µs) | 400 µs | – | 5243 | 5243 |"),
            "{t}"
        );
        assert!(t.contains("| redis | 1MiB | moved |"), "{t}");
        assert!(t.contains("| 104858 | 5243 | 5243 |"), "{t}");
        let rows = file.rows();
        let resolve = rows.iter().find(|r| r.op == "resolve").unwrap().to_csv();
        let read = rows
            .iter()
            .find(|r| r.op == "resolve_read_all")
            .unwrap()
            .to_csv();
        // The mb_per_s column (12th) is empty for the mapped touch only.
        assert_eq!(resolve.split(',').nth(11), Some(""), "{resolve}");
        assert_eq!(read.split(',').nth(11), Some("5242.9"), "{read}");
        assert!(resolve.contains("data=mapped") && !resolve.contains("aggregate_mb_per_s="));
        let rows = redis.rows();
        let resolve = rows.iter().find(|r| r.op == "resolve").unwrap().to_csv();
        assert_eq!(resolve.split(',').nth(11), Some("104857.6"), "{resolve}");
        assert!(resolve.contains("data=moved;aggregate_mb_per_s=104857.6"));
    }

    #[test]
    fn file_maps_ucx_and_redis_move() {
        assert!(!data_moves("file") && !data_moves("local"));
        assert!(data_moves("ucx") && data_moves("ofi") && data_moves("redis"));
    }
}
