//! [`StoreUrl`]: a store URL split into its parts, for the per-scheme
//! parsers registered with [`registry::register_scheme`](crate::registry::register_scheme).
//!
//! A store URL names a connector and where its objects are:
//! `scheme://[user[:password]@]host[:port][/path]` (`redis://`, `ucx://`), or
//! `file:///absolute/dir`. This module only splits the text; what the parts
//! mean is the connector's parser's business. Messages never show the
//! password ([`StoreUrl::redacted`]).

use std::fmt;

use crate::error::{Error, Result};

/// A store URL split into scheme, user information, host, port and path.
///
/// ```
/// use proxy_core::url::StoreUrl;
/// let u = StoreUrl::parse("redis://alice:s3cret@10.0.0.2:6380/3")?;
/// assert_eq!(u.scheme(), "redis");
/// assert_eq!((u.user(), u.password()), (Some("alice"), Some("s3cret")));
/// assert_eq!((u.host(), u.port_text(), u.path()), ("10.0.0.2", Some("6380"), "/3"));
/// assert_eq!(u.redacted(), "redis://alice:***@10.0.0.2:6380/3");
/// # Ok::<(), proxy_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StoreUrl<'a> {
    url: &'a str,
    scheme: &'a str,
    rest: &'a str,
    user: Option<&'a str>,
    password: Option<&'a str>,
    authority: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
}

impl<'a> StoreUrl<'a> {
    /// Split `url`; only a missing `scheme://` is an error here.
    pub fn parse(url: &'a str) -> Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            })
            .ok_or_else(|| Error::InvalidConfig {
                connector: None,
                reason: format!(
                    "{} is not a store URL (scheme://..., e.g. file:///DIR or redis://HOST:PORT/DB)",
                    redact(url)
                ),
            })?;
        let (auth_host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, authority) = match auth_host.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, auth_host),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(u), Some(p)),
                None => (Some(u), None),
            },
        };
        let non_empty = |s: Option<&'a str>| s.filter(|s| !s.is_empty());
        let (host, port) = split_host_port(authority);
        Ok(StoreUrl {
            url,
            scheme,
            rest,
            user: non_empty(user),
            password: non_empty(password),
            authority,
            host,
            port,
            path,
        })
    }

    /// The scheme (`"redis"`), as written.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// Everything after `scheme://`, as written (user information included).
    pub fn rest(&self) -> &'a str {
        self.rest
    }

    /// The user name, if any (empty counts as none).
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The password, if any (empty counts as none). Never put it in a message.
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// `host[:port]` without the user information (may be empty).
    pub fn authority(&self) -> &'a str {
        self.authority
    }

    /// The host (an IPv6 address without its brackets); may be empty.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The port as written, if any.
    pub fn port_text(&self) -> Option<&'a str> {
        self.port
    }

    /// The port, or `default` when none is written; `what` names the
    /// connector in the message of a malformed one ("bad Redis port ...").
    pub fn port_or(&self, default: u16, what: &str) -> Result<u16> {
        match self.port {
            None => Ok(default),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| self.error(None, format!("bad {what} port {p:?}"))),
        }
    }

    /// The path from its leading `/` (empty when there is none).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        redact(self.url)
    }

    /// An [`Error::InvalidConfig`] for this URL: `reason`, then the redacted URL.
    pub fn error(&self, connector: Option<&str>, reason: impl fmt::Display) -> Error {
        Error::InvalidConfig {
            connector: connector.map(str::to_string),
            reason: format!("{reason} in store URL {}", self.redacted()),
        }
    }
}

impl fmt::Debug for StoreUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({})", self.redacted())
    }
}

impl fmt::Display for StoreUrl<'_> {
    /// The redacted URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `host[:port]`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(inner) = authority.strip_prefix('[')
        && let Some((host, after)) = inner.split_once(']')
    {
        return (host, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

/// `url` with the password of its user information replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: it may still hold a password; show only its shape.
        return if url.contains('@') {
            "<a string with '@' that is no URL>".into()
        } else {
            format!("{url:?}")
        };
    };
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rsplit_once('@') {
        Some((userinfo, _)) => {
            let shown = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                // `secret@host`: Redis URLs read a lone user part as the password.
                None => "***".into(),
            };
            format!("{scheme}://{shown}@{}", &rest[userinfo.len() + 1..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u = StoreUrl::parse("file:///dev/shm/x").unwrap();
        assert_eq!((u.scheme(), u.host(), u.path()), ("file", "", "/dev/shm/x"));
        let u = StoreUrl::parse("ucx://[fe80::1]:7700/").unwrap();
        assert_eq!(
            (u.host(), u.port_text(), u.authority()),
            ("fe80::1", Some("7700"), "[fe80::1]:7700")
        );
        let u = StoreUrl::parse("redis://:pw@h").unwrap();
        assert_eq!((u.user(), u.password(), u.host()), (None, Some("pw"), "h"));
        assert_eq!(u.port_or(6379, "Redis").unwrap(), 6379);
        let e = StoreUrl::parse("redis://u:pw@h:99999")
            .unwrap()
            .port_or(6379, "Redis")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad Redis port \"99999\"") && !e.contains("pw"),
            "{e}"
        );
        for bad in ["nope", "://x", "a b://x", "user:pw@host"] {
            let e = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a store URL") && !e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("redis://a:b@h:1/2"), "redis://a:***@h:1/2");
        assert_eq!(redact("redis://:b@h"), "redis://:***@h");
        assert_eq!(redact("redis://bare@h"), "redis://***@h");
        assert_eq!(redact("redis://h:1/a@b"), "redis://h:1/a@b");
        assert_eq!(redact("file:///x"), "file:///x");
    }
}
