//! Store URLs of an object-server transport: `SCHEME://HOST:PORT`, the
//! control address of a running server (its `LISTEN` line), optionally
//! followed by `?zero_copy=false` (copy even from a server on this node).

use proxy_core::url::StoreUrl;
use proxy_core::{ConnectorConfig, Result};

use crate::config::TransportConfig;
use crate::transport::ClientTransport;

/// The connector configuration of a `T::NAME://HOST:PORT` URL: `T`'s
/// configuration with that server and default options. Register it with
/// `proxy_core::registry::register_scheme(T::NAME, config_from_url::<T>)`.
pub fn config_from_url<T: ClientTransport>(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let kind = T::NAME;
    if let Some((rest, query)) = url.rest().split_once('?') {
        let base = format!("{}://{rest}", url.scheme());
        let mut cfg: T::Config = config_from_url::<T>(&StoreUrl::parse(&base)?)?.options()?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let zero_copy = match pair.split_once('=') {
                Some(("zero_copy", "true" | "1")) => true,
                Some(("zero_copy", "false" | "0")) => false,
                _ => {
                    return Err(url.error(
                        Some(kind),
                        format!("unknown query {pair:?} (a {kind} URL takes zero_copy=true|false)"),
                    ));
                }
            };
            cfg.client_mut().zero_copy = zero_copy;
        }
        return Ok(ConnectorConfig::new(kind, cfg));
    }
    let server = url.authority();
    let path = url.path().trim_end_matches('/');
    if url.host().is_empty() || url.port_text().is_none() || !path.is_empty() {
        return Err(url.error(
            Some(kind),
            format!("a {kind} URL names the object server's control address: {kind}://HOST:PORT"),
        ));
    }
    url.port_or(0, "object server")?;
    if url.user().is_some() || url.password().is_some() {
        return Err(url.error(
            Some(kind),
            format!("a {kind} URL takes no user or password"),
        ));
    }
    let cfg = T::Config::default().with_server(server);
    Ok(ConnectorConfig::new(kind, cfg))
}
