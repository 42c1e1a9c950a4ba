//! # endpoint-connector
//!
//! [`EndpointConnector`]: objects in ProxyStore endpoints, through the local
//! endpoint's HTTP API, as the Python ProxyStore's `EndpointConnector`
//! (`proxystore.connectors.endpoint`, ProxyStore 1.1) does. A Rust process
//! and a Python process, each talking to its own endpoint, exchange objects
//! through the endpoints' peering (WebRTC through a relay server).
//!
//! | module | what |
//! |---|---|
//! | `connector` | [`EndpointConnector`], [`EndpointOptions`] |
//! | `key` | [`EndpointKey`] (Python's `EndpointKey(object_id, endpoint_id)`) |
//! | `discover` | endpoint configurations under ProxyStore's home directory |
//! | `http` | the minimal HTTP/1.1 client |
//! | `url` | `endpoint://UUID[,UUID...]` store URLs |

#![warn(missing_docs)]

mod connector;
mod discover;
mod http;
mod key;
mod url;

pub use connector::{EndpointConnector, EndpointOptions};
pub use key::EndpointKey;

/// The connector kind, as used in configurations.
pub const KIND: &str = "endpoint";

/// Register the `endpoint` connector kind and the
/// `endpoint://UUID[,UUID...]` store URL scheme in this process. Idempotent.
pub fn register() {
    proxy_core::registry::register_connector::<EndpointConnector>();
    proxy_core::registry::register_scheme(KIND, url::config_from_url);
}
