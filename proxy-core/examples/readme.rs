//! ProxyStore's README example, in Rust: a function written for `&MyData` is
//! called with a proxy, unchanged.
//!
//! ```sh
//! cargo run -p proxy-core --example readme
//! ```

use proxy_core::{FileConnector, Proxy, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct MyData {
    name: String,
    values: Vec<f64>,
}

/// Knows nothing about proxies.
fn my_function(x: &MyData) -> f64 {
    x.values.iter().sum::<f64>() / x.values.len() as f64
}

fn main() -> proxy_core::Result<()> {
    let dir = std::env::temp_dir().join(format!("proxystore-readme-{}", std::process::id()));
    let store = Store::new("my-store", FileConnector::new(&dir)?)?;

    let data = MyData {
        name: "temperatures".into(),
        values: vec![20.5, 21.0, 19.5, 22.0],
    };
    // Store the object; get a proxy that already holds it (the producer side).
    let p: Proxy<MyData> = store.proxy(data)?;
    println!("producer: mean = {}", my_function(&p));

    // What travels to a consumer: the factory only.
    let wire = p.to_bytes()?;
    println!("serialized proxy: {} bytes", wire.len());

    // The consumer (here the same process; see the two_process example).
    let q: Proxy<MyData> = Proxy::from_bytes(&wire)?;
    println!("consumer: resolved before use? {}", q.is_resolved());
    println!("consumer: {} mean = {}", q.name, my_function(&q));
    println!("consumer: resolved after use? {}", q.is_resolved());

    store.evict(p.key())?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
