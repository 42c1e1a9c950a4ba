//! Store URLs of an object-server transport: `SCHEME://HOST:PORT`, the
//! control address of a running server (its `LISTEN` line).

use proxy_core::url::StoreUrl;
use proxy_core::{ConnectorConfig, Result};

use super::options::TransportConfig;
use crate::transport::ClientTransport;

/// The connector configuration of a `T::NAME://HOST:PORT` URL: `T`'s
/// configuration with that server and default options. Register it with
/// `proxy_core::registry::register_scheme(T::NAME, config_from_url::<T>)`.
pub fn config_from_url<T: ClientTransport>(url: &StoreUrl<'_>) -> Result<ConnectorConfig> {
    let kind = T::NAME;
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
