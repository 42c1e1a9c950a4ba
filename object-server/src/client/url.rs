//! Store URLs of an object-server transport: `SCHEME://HOST:PORT`, the
//! control address of a running server (its `LISTEN` line), optionally
//! followed by `?KEY=VALUE&...` query pairs setting options: the shared
//! ones ([`client_query_keys`]) and the transport's own
//! ([`TransportConfig::QUERY_KEYS`]).

use proxy_core::url::{QueryKey, StoreUrl, value};
use proxy_core::{ConnectorConfig, Result};

use crate::config::TransportConfig;
use crate::proto::DataPath;
use crate::transport::ClientTransport;

/// The query keys of [`ClientOptions`](crate::ClientOptions) fields that
/// every object-server URL accepts. `server` is the URL's address, and
/// `secret` is never taken from a URL (it would show in messages and shell
/// histories); `spawn_args` is a list, set in a configuration file.
pub fn client_query_keys<C: TransportConfig>() -> Vec<QueryKey<C>> {
    proxy_core::query_keys![C, client_mut();
        data_path: data_path,
        timeout_ms: value::number,
        max_idle_bytes: value::size,
        max_in_flight: value::number,
        rma_put_threshold: value::size,
        spawn: value::flag,
        spawn_idle_exit_s: value::number,
        zero_copy: value::flag,
    ]
    .to_vec()
}

fn data_path(v: &str) -> std::result::Result<DataPath, String> {
    value::one_of(
        v,
        &[
            ("auto", DataPath::Auto),
            ("rma", DataPath::Rma),
            ("stream", DataPath::Stream),
        ],
    )
}

/// The connector configuration of a `T::NAME://HOST:PORT[?KEY=VALUE&...]`
/// URL: `T`'s configuration with that server, the query's options and
/// defaults otherwise. Register it with
/// `proxy_core::registry::register_scheme(T::NAME, config_from_url::<T>)`.
pub fn config_from_url<T: ClientTransport>(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let kind = T::NAME;
    let path = url.path().trim_end_matches('/');
    if url.host().is_empty() || url.port_text().is_none() || !path.is_empty() {
        return Err(url.error(
            Some(kind),
            format!(
                "a {kind} URL names the object server's control address: {kind}://HOST:PORT[?KEY=VALUE&...]"
            ),
        ));
    }
    url.port_or(0, "object server")?;
    if url.user().is_some() || url.password().is_some() {
        return Err(url.error(
            Some(kind),
            format!("a {kind} URL takes no user or password"),
        ));
    }
    let mut cfg = T::Config::default().with_server(url.authority());
    let mut keys = client_query_keys::<T::Config>();
    keys.extend_from_slice(<T::Config as TransportConfig>::QUERY_KEYS);
    url.apply_query(kind, &mut cfg, &keys)?;
    Ok(ConnectorConfig::new(kind, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientOptions, ServerBinary};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct Cfg {
        #[serde(flatten)]
        client: ClientOptions,
    }

    impl TransportConfig for Cfg {
        const SERVER: ServerBinary = ServerBinary {
            name: "none",
            env: "NONE",
            build: "none",
        };
        fn client(&self) -> &ClientOptions {
            &self.client
        }
        fn client_mut(&mut self) -> &mut ClientOptions {
            &mut self.client
        }
    }

    fn apply(url: &str) -> Result<ClientOptions> {
        let mut c = Cfg::default();
        StoreUrl::parse(url)?.apply_query("t", &mut c, &client_query_keys::<Cfg>())?;
        Ok(c.client)
    }

    #[test]
    fn every_shared_key_sets_its_field() {
        let c = apply(
            "t://h:1?data_path=stream&timeout_ms=250&max_idle_bytes=1G&max_in_flight=8\
             &rma_put_threshold=1MiB&spawn=true&spawn_idle_exit_s=0&zero_copy=false",
        )
        .unwrap();
        assert_eq!(c.data_path, DataPath::Stream);
        assert_eq!(c.timeout_ms, 250);
        assert_eq!(c.max_idle_bytes, 1 << 30);
        assert_eq!(c.max_in_flight, 8);
        assert_eq!(c.rma_put_threshold, 1 << 20);
        assert!(c.spawn && !c.zero_copy);
        assert_eq!(c.spawn_idle_exit_s, 0);
        assert_eq!(
            apply("t://h:1?data_path=rma").unwrap().data_path,
            DataPath::Rma
        );
        assert_eq!(apply("t://h:1").unwrap(), ClientOptions::default());
        for (bad, why) in [
            (
                "t://h:1?data_path=fast",
                "expected one of auto, rma, stream",
            ),
            ("t://h:1?timeout_ms=soon", "expected a whole number"),
            ("t://h:1?max_idle_bytes=lots", "not a size"),
            ("t://h:1?spawn=maybe", "expected true or false"),
            ("t://h:1?secret=pw", "unknown query key \"secret\""),
            ("t://h:1?server=h:2", "unknown query key \"server\""),
        ] {
            let e = apply(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = apply("t://h:1?nope=1").unwrap_err().to_string();
        assert!(
            e.contains(
                "accepts data_path, timeout_ms, max_idle_bytes, max_in_flight, \
                 rma_put_threshold, spawn, spawn_idle_exit_s, zero_copy"
            ),
            "{e}"
        );
    }
}
