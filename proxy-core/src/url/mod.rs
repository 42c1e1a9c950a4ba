//! [`StoreUrl`]: a store URL split into its parts, for the per-scheme
//! parsers registered with [`registry::register_scheme`](crate::registry::register_scheme).
//!
//! A store URL names a connector and where its objects are:
//! `scheme://[user[:password]@]host[:port][/path][?key=value&...]`
//! (`redis://`, `ucx://`), or `file:///absolute/dir`. This module splits the
//! text and maps query pairs onto a configuration through a connector's table
//! of [`QueryKey`]s ([`StoreUrl::apply_query`]: an unknown key or a bad value
//! is an [`Error::InvalidConfig`] naming it and what is accepted); what the
//! other parts mean is the connector's parser's business. Messages never show
//! the password ([`StoreUrl::redacted`]).
//!
//! ```
//! use proxy_core::url::{QueryKey, StoreUrl, value};
//!
//! #[derive(Default)]
//! struct Opts { clear: bool, timeout_ms: u64 }
//! const KEYS: &[QueryKey<Opts>] = &[
//!     QueryKey { name: "clear", set: |o, v| value::flag(v).map(|x| o.clear = x) },
//!     QueryKey { name: "timeout_ms", set: |o, v| value::number(v).map(|x| o.timeout_ms = x) },
//! ];
//! let url = StoreUrl::parse("shm://scratch?clear=true&timeout_ms=500")?;
//! let mut o = Opts::default();
//! url.apply_query("shm", &mut o, KEYS)?;
//! assert!(o.clear && o.timeout_ms == 500);
//! let e = StoreUrl::parse("shm://scratch?colour=red")?
//!     .apply_query("shm", &mut o, KEYS)
//!     .unwrap_err()
//!     .to_string();
//! assert!(e.contains("unknown query key \"colour\"") && e.contains("clear, timeout_ms"), "{e}");
//! # Ok::<(), proxy_core::Error>(())
//! ```

mod query;

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, Result};
use query::percent_decode;
pub use query::{QueryKey, value};

/// A store URL split into scheme, user information, host, port, path and
/// query.
///
/// ```
/// use proxy_core::url::StoreUrl;
/// let u = StoreUrl::parse("redis://alice:s3cret@10.0.0.2:6380/3")?;
/// assert_eq!(u.scheme(), "redis");
/// assert_eq!((u.user(), u.password()), (Some("alice"), Some("s3cret")));
/// assert_eq!((u.host(), u.port_text(), u.path()), ("10.0.0.2", Some("6380"), "/3"));
/// assert_eq!(u.redacted(), "redis://alice:***@10.0.0.2:6380/3");
/// let u = StoreUrl::parse("ucx://10.0.0.2:7700?zero_copy=false&timeout_ms=500")?;
/// assert_eq!((u.authority(), u.path()), ("10.0.0.2:7700", ""));
/// let q: Vec<(String, String)> =
///     u.query()?.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
/// assert_eq!(q, [("zero_copy".into(), "false".into()), ("timeout_ms".into(), "500".into())]);
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
    query: Option<&'a str>,
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
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
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
            query,
        })
    }

    /// The scheme (`"redis"`), as written.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// Everything after `scheme://` up to the query, as written (user
    /// information included).
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

    /// The path from its leading `/` (empty when there is none), without
    /// the query.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The query after `?`, as written (`None` without a `?`).
    pub fn query_text(&self) -> Option<&'a str> {
        self.query
    }

    /// The query's `key=value` pairs, in order, percent-decoded (`%2C` is
    /// `,`; a `+` stays a `+`, as in Mercury's `ofi+tcp`). Empty pairs
    /// (`a=1&&b=2`) are skipped; a pair without `=`, an empty key or a bad
    /// escape is an [`Error::InvalidConfig`].
    pub fn query(&self) -> Result<Vec<(Cow<'a, str>, Cow<'a, str>)>> {
        let Some(q) = self.query else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(self.error(
                    None,
                    format!("query pair {pair:?} has no value (write KEY=VALUE)"),
                ));
            };
            if k.is_empty() {
                return Err(self.error(None, format!("query pair {pair:?} has no key")));
            }
            let decode = |s: &'a str| {
                percent_decode(s).map_err(|why| self.error(None, format!("{why} in {pair:?}")))
            };
            out.push((decode(k)?, decode(v)?));
        }
        Ok(out)
    }

    /// Set `cfg` from the query through `keys`, the table of the query keys
    /// a `connector` URL accepts. An unknown key, a key given twice, or a
    /// value its setter refuses is an [`Error::InvalidConfig`] for
    /// `connector` that names the key and the accepted keys (or what the
    /// value should be).
    pub fn apply_query<C>(&self, connector: &str, cfg: &mut C, keys: &[QueryKey<C>]) -> Result<()> {
        let pairs = self.query().map_err(|e| match e {
            Error::InvalidConfig {
                connector: None,
                reason,
            } => Error::InvalidConfig {
                connector: Some(connector.to_string()),
                reason,
            },
            e => e,
        })?;
        for (i, (k, v)) in pairs.iter().enumerate() {
            let Some(key) = keys.iter().find(|q| q.name == k) else {
                let accepted: Vec<&str> = keys.iter().map(|q| q.name).collect();
                return Err(self.error(
                    Some(connector),
                    format!(
                        "unknown query key {k:?} (a {connector} URL accepts {})",
                        if accepted.is_empty() {
                            "no query keys".to_string()
                        } else {
                            accepted.join(", ")
                        }
                    ),
                ));
            };
            if pairs[..i].iter().any(|(p, _)| p == k) {
                return Err(self.error(Some(connector), format!("query key {k} is given twice")));
            }
            (key.set)(cfg, v).map_err(|why| {
                self.error(
                    Some(connector),
                    format!("bad value {v:?} for query key {k}: {why}"),
                )
            })?;
        }
        Ok(())
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
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
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

    #[derive(Debug, Default, PartialEq)]
    struct Opts {
        on: bool,
        n: u16,
        name: String,
        size: u64,
    }

    const KEYS: &[QueryKey<Opts>] = &crate::query_keys![Opts;
        on: value::flag,
        n: value::number,
        name: value::text,
        size: value::size,
    ];

    fn apply(url: &str) -> Result<Opts> {
        let mut o = Opts::default();
        StoreUrl::parse(url)?.apply_query("t", &mut o, KEYS)?;
        Ok(o)
    }

    #[test]
    fn query_splits_off_before_host_and_path() {
        let u = StoreUrl::parse("t://u:pw@h:1/p/q?a=1&&b=x%2Cy+z").unwrap();
        assert_eq!(
            (u.host(), u.port_text(), u.path()),
            ("h", Some("1"), "/p/q")
        );
        assert_eq!(u.rest(), "u:pw@h:1/p/q");
        assert_eq!(u.query_text(), Some("a=1&&b=x%2Cy+z"));
        let q = u.query().unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!((&*q[0].0, &*q[0].1), ("a", "1"));
        assert_eq!((&*q[1].0, &*q[1].1), ("b", "x,y+z"));
        let u = StoreUrl::parse("t://h:7?x=1").unwrap();
        assert_eq!(
            (u.authority(), u.port_text(), u.path()),
            ("h:7", Some("7"), "")
        );
        assert!(
            StoreUrl::parse("t://h")
                .unwrap()
                .query()
                .unwrap()
                .is_empty()
        );
        assert_eq!(StoreUrl::parse("t://h?").unwrap().query_text(), Some(""));
        for (bad, why) in [
            ("t://h?flag", "has no value"),
            ("t://h?=1", "has no key"),
            ("t://h?a=%zz", "bad %-escape"),
            ("t://h?a=%4", "bad %-escape"),
            ("t://h?a=%ff", "not UTF-8"),
        ] {
            let e = StoreUrl::parse(bad).unwrap().query().unwrap_err();
            assert!(matches!(e, Error::InvalidConfig { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn query_keys_set_fields() {
        assert_eq!(
            apply("t://h?on=true&n=7&name=a%20b&size=64K").unwrap(),
            Opts {
                on: true,
                n: 7,
                name: "a b".into(),
                size: 64 << 10
            }
        );
        assert_eq!(apply("t://h").unwrap(), Opts::default());
        for (bad, why) in [
            (
                "t://h?colour=red",
                "unknown query key \"colour\" (a t URL accepts on, n, name, size)",
            ),
            (
                "t://h?on=yes",
                "bad value \"yes\" for query key on: expected true or false",
            ),
            (
                "t://h?n=70000",
                "query key n: expected a whole number from 0 to 65535",
            ),
            ("t://h?n=-1", "query key n: expected a whole number"),
            ("t://h?name=", "query key name: expected a non-empty value"),
            ("t://h?size=3X", "query key size: bad size unit"),
            ("t://h?n=1&n=2", "query key n is given twice"),
        ] {
            let e = apply(bad).unwrap_err();
            match &e {
                Error::InvalidConfig { connector, reason } => {
                    assert_eq!(connector.as_deref(), Some("t"), "{bad}");
                    assert!(reason.contains(why), "{bad}: {reason}");
                    assert!(reason.ends_with(&format!("in store URL {bad}")), "{reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let e = apply("t://h?flag").unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig { connector: Some(c), .. } if c == "t"),
            "{e:?}"
        );
        let none: &[QueryKey<Opts>] = &[];
        let e = StoreUrl::parse("t://h?a=1")
            .unwrap()
            .apply_query("t", &mut Opts::default(), none)
            .unwrap_err();
        assert!(e.to_string().contains("accepts no query keys"), "{e}");
        assert_eq!(value::number::<i64>("9223372036854775807"), Ok(i64::MAX));
        let e = value::number::<i64>("9223372036854775808").unwrap_err();
        assert_eq!(e, "expected a whole number from 0 to 9223372036854775807");
        let e = value::number::<u8>("256").unwrap_err();
        assert_eq!(e, "expected a whole number from 0 to 255");
        assert_eq!(value::number::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert!(value::number::<u32>("-1").is_err());
        assert_eq!(value::one_of("b", &[("a", 1), ("b", 2)]), Ok(2));
        let e = value::one_of("c", &[("a", 1), ("b", 2)]).unwrap_err();
        assert_eq!(e, "expected one of a, b");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("redis://a:b@h:1/2"), "redis://a:***@h:1/2");
        assert_eq!(redact("redis://:b@h"), "redis://:***@h");
        assert_eq!(redact("redis://bare@h"), "redis://***@h");
        assert_eq!(redact("redis://h:1/a@b"), "redis://h:1/a@b");
        assert_eq!(redact("file:///x"), "file:///x");
        assert_eq!(redact("ucx://h:1?a=b@c"), "ucx://h:1?a=b@c");
        assert_eq!(redact("redis://a:b@h?x=1"), "redis://a:***@h?x=1");
    }
}
