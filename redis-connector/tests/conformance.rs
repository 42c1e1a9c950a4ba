//! The proxy-core conformance suite, unchanged, against a real `redis-server`
//! started on a free loopback port (one server for the whole test binary;
//! each case gets a fresh key prefix, deleted by `close`: checked by
//! `leftovers`).

mod common;

use std::sync::{Mutex, OnceLock};

use common::RedisServer;
use proxy_core::ConnectorConfig;
use redis_connector::RedisConnector;

static SERVER: Mutex<Option<RedisServer>> = Mutex::new(None);

/// Kill (and reap) the shared server when the test binary exits: statics are
/// never dropped. (Should this not run, the watchdog still kills it.)
extern "C" fn stop_server() {
    if let Ok(mut s) = SERVER.lock() {
        s.take();
    }
}

fn port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let server = RedisServer::start();
        let port = server.port;
        *SERVER.lock().unwrap() = Some(server);
        // SAFETY: registers a plain `extern "C" fn()` with no captured state.
        unsafe {
            libc::atexit(stop_server);
        }
        port
    })
}

fn setup() -> RedisConnector {
    RedisConnector::builder("127.0.0.1", port())
        .prefix(format!("test-{}:", uuid::Uuid::new_v4()))
        .clear(true)
        .build()
        .unwrap()
}

/// The server's keys under the configuration's prefix.
fn keys_left(cfg: &ConnectorConfig) -> Vec<String> {
    let prefix = cfg.options["prefix"].as_str().expect("a prefix");
    assert!(!prefix.contains(['*', '?', '[', ']', '\\']), "{prefix}");
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", port()))
        .and_then(|c| c.get_connection())
        .expect("connect to the test redis-server");
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut c)
        .expect("KEYS");
    keys.iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

proxy_core::conformance_suite!(
    setup = setup,
    register = redis_connector::register,
    leftovers = keys_left
);
