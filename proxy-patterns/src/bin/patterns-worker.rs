//! `patterns-worker`: the other process of the proxy patterns (tests,
//! benchmarks, task farms). Each subcommand reads its inputs from the
//! command line (hex-encoded serialized futures/proxies), does one thing and
//! prints `ok <detail>` on success or an error on stderr with exit code 1.
//!
//! | subcommand | does |
//! |---|---|
//! | `set-future <hex> <u64> [delay-ms]` | after the delay, sets a `ProxyFuture<Vec<u64>>` to `[0, 1, .., n-1]` |
//! | `wait-future <hex> <timeout-ms>` | resolves the future's proxy and prints the sum |
//! | `static-lifetime <file-dir>` | puts an object in a file store under the static lifetime, prints its key, exits |
//! | `own <hex>` | becomes the owner of an `OwnedProxy<Vec<u64>>`, prints the sum, drops it (evicts) |
//! | `arg-sum <hex>` | resolves a task pool `Arg<Vec<u64>>`, prints how it came and its sum |
//! | `update <hex> <u64>` | replaces a mutably borrowed `Vec<u64>` with `[n]` |
//! | `consume <redis\|redis-queue> <host:port> <topic> [timeout-ms]` | iterates a stream of `Vec<u8>`, prints the count and the byte sum |
//! | `stream-group <host:port> <topic> <group> <consumer> <ack-first> <hold> <claim-ms>` | one consumer of a Redis Streams group (see `stream_group`) |

use std::process::ExitCode;
use std::time::Duration;

use proxy_core::{FileConnector, Proxy, Result, Store};
use proxy_patterns::ProxyFuture;
use proxy_patterns::lifetime::{StaticLifetime, StoreLifetimeExt};
use proxy_patterns::ownership::{OwnedProxy, RemoteMut};
use proxy_patterns::stream::{StreamConsumer, redis as rs, redis_streams as rst};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn arg(args: &[String], i: usize) -> Result<&str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| proxy_core::Error::InvalidConfig {
            connector: None,
            reason: format!("missing argument {i}; see the program's docs"),
        })
}

fn num(s: &str) -> Result<u64> {
    s.parse().map_err(|e| proxy_core::Error::InvalidConfig {
        connector: None,
        reason: format!("not a number {s:?}: {e}"),
    })
}

fn run(args: &[String]) -> Result<String> {
    redis_connector::register();
    match arg(args, 1)? {
        "set-future" => {
            let f = ProxyFuture::<Vec<u64>>::from_bytes(&unhex(arg(args, 2)?))?;
            let n = num(arg(args, 3)?)?;
            if let Some(d) = args.get(4) {
                std::thread::sleep(Duration::from_millis(num(d)?));
            }
            f.set_result(&(0..n).collect())?;
            Ok("set".into())
        }
        "wait-future" => {
            let f = ProxyFuture::<Vec<u64>>::from_bytes(&unhex(arg(args, 2)?))?;
            let t = Duration::from_millis(num(arg(args, 3)?)?);
            let p: Proxy<Vec<u64>> = f.proxy(t);
            Ok(p.resolve()?.iter().sum::<u64>().to_string())
        }
        "static-lifetime" => {
            let store = Store::new("worker-static", FileConnector::new(arg(args, 2)?)?)?;
            let key = store.put_in(&vec![7u8; 100], StaticLifetime::get())?;
            Ok(store.connector().key_to_string(&key)?)
        }
        "own" => {
            let o = OwnedProxy::<Vec<u64>>::from_bytes(&unhex(arg(args, 2)?))?;
            let sum: u64 = o.resolve()?.iter().sum();
            drop(o);
            Ok(sum.to_string())
        }
        "arg-sum" => {
            let a: proxy_patterns::pool::Arg<Vec<u64>> =
                postcard::from_bytes(&unhex(arg(args, 2)?))
                    .map_err(|e| proxy_core::Error::decode(e.to_string()))?;
            Ok(format!(
                "{} {}",
                if a.is_proxied() { "proxied" } else { "value" },
                a.resolve()?.iter().sum::<u64>()
            ))
        }
        "update" => {
            let m: RemoteMut<Vec<u64>> = postcard::from_bytes(&unhex(arg(args, 2)?))
                .map_err(|e| proxy_core::Error::decode(e.to_string()))?;
            let before: u64 = m.resolve()?.iter().sum();
            m.set(&vec![num(arg(args, 3)?)?])?;
            Ok(before.to_string())
        }
        "consume" => {
            let kind = arg(args, 2)?;
            let (host, port) = host_port(arg(args, 3)?)?;
            let topic = arg(args, 4)?;
            let timeout = args
                .get(5)
                .map(|t| num(t).map(Duration::from_millis))
                .transpose()?;
            let sub: Box<dyn proxy_patterns::stream::Subscriber> = match kind {
                "redis" => Box::new(rs::RedisSubscriber::new(host, port, &[topic])?),
                _ => Box::new(rs::RedisQueueSubscriber::new(host, port, topic)?),
            };
            let mut c = StreamConsumer::<Vec<u8>>::new(sub).timeout(timeout);
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(obj) = c.next_object()? {
                n += 1;
                sum += obj.iter().map(|&b| u64::from(b)).sum::<u64>();
            }
            Ok(format!("{n} {sum}"))
        }
        "stream-group" => stream_group(args),
        other => Err(proxy_core::Error::InvalidConfig {
            connector: None,
            reason: format!("unknown subcommand {other:?}"),
        }),
    }
}

/// `stream-group <host:port> <topic> <group> <consumer> <ack-first> <hold> <claim-ms>`:
/// one consumer of a Redis Streams group reading `u64` objects whose
/// metadata `i` is their value. It acknowledges each of the first
/// `ack-first` objects; with `hold` > 0 it then reads `hold` more without
/// acknowledging them, prints `held <acked> <held>` and waits to be killed;
/// otherwise it reads (and acknowledges) to the end of stream and prints
/// the count, the duplicates and the sum of the values.
fn stream_group(args: &[String]) -> Result<String> {
    let (host, port) = host_port(arg(args, 2)?)?;
    let (topic, group, me) = (arg(args, 3)?, arg(args, 4)?, arg(args, 5)?);
    let (ack_first, hold) = (num(arg(args, 6)?)?, num(arg(args, 7)?)?);
    let claim = Duration::from_millis(num(arg(args, 8)?)?);
    let sub = rst::RedisStreamSubscriber::new(host, port, topic, group, me)?.claim_after(claim);
    let mut c = StreamConsumer::<u64>::new(sub).timeout(Some(Duration::from_secs(30)));
    let (mut n, mut dups, mut sum) = (0u64, 0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    while let Some((item, meta)) = c.next_with_metadata()? {
        let v = *item.resolve()?;
        if meta.get("i").and_then(|i| i.as_u64()) != Some(v) {
            return Err(proxy_core::Error::decode(format!(
                "object {v} with metadata {meta:?}"
            )));
        }
        n += 1;
        sum += v;
        if !seen.insert(v) {
            dups += 1;
        }
        if hold == 0 || n <= ack_first {
            c.ack()?;
        }
        if hold > 0 && n == ack_first + hold {
            println!("held {ack_first} {hold}");
            std::io::Write::flush(&mut std::io::stdout()).ok();
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    c.ack()?; // the end of stream
    Ok(format!("{n} {dups} {sum}"))
}

fn host_port(s: &str) -> Result<(&str, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| proxy_core::Error::InvalidConfig {
            connector: None,
            reason: "expected host:port".into(),
        })?;
    Ok((host, num(port)? as u16))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(s) => {
            println!("ok {s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("patterns-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
