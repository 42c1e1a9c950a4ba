//! A producer process proxies objects of growing size and sends only the
//! proxies (factory + key) through a pipe to a consumer process, which
//! resolves each just in time and reports what it got and how long it took.
//!
//! ```sh
//! cargo run --release -p proxy-core --example two_process [-- --dir /dev/shm/ps]
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use proxy_core::{Bytes, FileConnector, Proxy, Store};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn consumer() -> proxy_core::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| proxy_core::Error::io("reading a proxy from stdin", e))?;
        let t = Instant::now();
        let p: Proxy<Bytes> = Proxy::from_bytes(&unhex(line.trim()))?;
        let b = p.resolve()?;
        // Touch one byte per page, as the Python benchmark does.
        let touched: u64 = b.iter().step_by(4096).map(|&x| x as u64).sum();
        let us = t.elapsed().as_secs_f64() * 1e6;
        writeln!(out, "{} {us:.1} {touched}", b.len()).ok();
        out.flush().ok();
    }
    Ok(())
}

fn main() -> proxy_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--consumer") {
        return consumer();
    }
    let dir = match args.iter().position(|a| a == "--dir") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default().into(),
        None => std::path::Path::new(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .join(format!("proxystore-two-process-{}", std::process::id())),
    };
    let store = Store::new("two-process", FileConnector::new(&dir)?)?;
    let exe =
        std::env::current_exe().map_err(|e| proxy_core::Error::io("locating this program", e))?;
    let mut child = Command::new(exe)
        .arg("--consumer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| proxy_core::Error::io("starting the consumer process", e))?;
    let mut to_child = child.stdin.take().expect("piped stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("piped stdout"));

    println!(
        "file connector in {} ; consumer pid {}",
        dir.display(),
        child.id()
    );
    println!("| size | proxy bytes | put+proxy | consumer resolve |");
    println!("|---:|---:|---:|---:|");
    for size in [1_000usize, 1_000_000, 10_000_000, 100_000_000] {
        let obj = Bytes::from(vec![7u8; size]);
        let t = Instant::now();
        let p = store.proxy(obj)?;
        let put_us = t.elapsed().as_secs_f64() * 1e6;
        let wire = p.to_bytes()?;
        writeln!(to_child, "{}", hex(&wire))
            .and_then(|_| to_child.flush())
            .map_err(|e| proxy_core::Error::io("sending a proxy", e))?;
        let mut reply = String::new();
        from_child
            .read_line(&mut reply)
            .map_err(|e| proxy_core::Error::io("reading the reply", e))?;
        let mut it = reply.split_whitespace();
        let (len, us) = (it.next().unwrap_or("?"), it.next().unwrap_or("?"));
        assert_eq!(len, size.to_string(), "consumer got the wrong object");
        println!("| {size} B | {} | {put_us:.0} us | {us} us |", wire.len());
        store.evict(p.key())?;
    }
    drop(to_child);
    child
        .wait()
        .map_err(|e| proxy_core::Error::io("waiting for the consumer", e))?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
