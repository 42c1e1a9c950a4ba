//! The serialized size of a proxy of a UCX object (key + store configuration),
//! and the compact configuration behind it (only non-default options).

mod common;

use std::time::Duration;
use ucx_connector::TransportConfig;

use common::ServerProcess;
use proxy_core::{Connector, ConnectorConfig, FromConfig, Store};
use ucx_connector::{DataPath, UcxConfig, UcxConnector};

#[test]
fn proxy_is_small() {
    let server = ServerProcess::start("shm,cma,self", &[]);
    let c = UcxConnector::new(UcxConfig::new(&server.addr)).unwrap();
    let store = Store::new("ucx-store", c).unwrap();
    let p = store.proxy(vec![1u8; 1 << 20]).unwrap();
    let wire = p.to_bytes().unwrap();
    let key = p.key().as_bytes().len();
    let cfg = store.connector().config().options;
    eprintln!(
        "serialized proxy: {} bytes (key {key} bytes; server {}; connector options {cfg})",
        wire.len(),
        server.addr
    );
    assert_eq!(
        cfg.to_string(),
        format!("{{\"server\":\"{}\"}}", server.addr)
    );
    assert!(wire.len() < 120, "proxy of {} bytes", wire.len());

    // With a non-default option and a long host name it stays well under 256.
    let long = UcxConnector::new(
        UcxConfig::new("compute-node-0042.cluster.example.org:7700")
            .with_ucx_tls("shm,cma,self")
            .with_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let store2 = Store::new("ucx-store-2", long).unwrap();
    let factory_cfg = store2.config().clone();
    let cfg_bytes = postcard::to_allocvec(&factory_cfg).unwrap().len();
    let worst = cfg_bytes + key + 32; // + a longer host name in the key
    eprintln!(
        "store config with options {}: {cfg_bytes} bytes; proxy about {worst} bytes",
        factory_cfg.connector.options
    );
    assert!(worst < 200, "{worst}");
}

#[test]
fn config_round_trips_and_omits_defaults() {
    let dflt = UcxConnector::new(UcxConfig::new("127.0.0.1:7700")).unwrap();
    assert_eq!(
        dflt.config().options.to_string(),
        r#"{"server":"127.0.0.1:7700"}"#
    );
    let mut opts = UcxConfig::new("127.0.0.1:7700")
        .with_data_path(DataPath::Stream)
        .with_ucx_tls("tcp")
        .with_timeout(Duration::from_millis(1234))
        .with_spawn(["--memory-limit", "1G"]);
    opts.client.max_in_flight = 7;
    opts.client.max_idle_bytes = 1 << 20;
    opts.client.rma_put_threshold = u64::MAX;
    let c = UcxConnector::new(opts.clone()).unwrap();
    let cfg = c.config();
    let back = UcxConnector::from_config(&cfg).unwrap();
    assert_eq!(back.options(), &opts);
    assert_eq!(back.config(), cfg);
    // Absent options are defaults; an empty server is an error.
    let empty = ConnectorConfig::new("ucx", std::collections::HashMap::<String, u32>::new());
    assert!(UcxConnector::from_config(&empty).is_err());
}
