//! Query keys: how a store URL's `?key=value` pairs set a configuration
//! ([`QueryKey`], the [`value`] parsers, and [`query_keys!`](crate::query_keys)
//! to write a table of them), and the percent-decoding of the pairs.

use std::borrow::Cow;
use std::fmt;

/// One query key of a store URL scheme and how its value sets the
/// configuration `C` (see [`StoreUrl::apply_query`](super::StoreUrl::apply_query)).
/// `set` returns what the value should have been when it refuses one; the
/// [`value`] parsers say so.
pub struct QueryKey<C> {
    /// The key as written in the URL (the configuration field's name).
    pub name: &'static str,
    /// Parse the value into `C`, or say what is expected.
    pub set: fn(&mut C, &str) -> std::result::Result<(), String>,
}

impl<C> Clone for QueryKey<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for QueryKey<C> {}

impl<C> fmt::Debug for QueryKey<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryKey({})", self.name)
    }
}

/// Parsers of query values for [`QueryKey::set`]: each error says what is
/// expected.
pub mod value {
    /// `true`/`false` (or `1`/`0`).
    pub fn flag(v: &str) -> Result<bool, String> {
        match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }

    /// A whole number from 0 to the largest the field holds.
    pub fn number<T: TryFrom<u64>>(v: &str) -> Result<T, String> {
        let expected = || format!("expected a whole number from 0 to {}", max::<T>());
        let n: u64 = v.parse().map_err(|_| expected())?;
        T::try_from(n).map_err(|_| expected())
    }

    /// The largest `2^k - 1` that `T` holds (its maximum, for integers).
    fn max<T: TryFrom<u64>>() -> u64 {
        (1..=64u32)
            .rev()
            .map(|k| u64::MAX >> (64 - k))
            .find(|&m| T::try_from(m).is_ok())
            .unwrap_or(0)
    }

    /// A size in bytes, with an optional unit (see [`crate::size`]).
    pub fn size(v: &str) -> Result<u64, String> {
        crate::size::parse_size(v)
    }

    /// Any non-empty text.
    pub fn text(v: &str) -> Result<String, String> {
        if v.is_empty() {
            Err("expected a non-empty value".into())
        } else {
            Ok(v.to_string())
        }
    }

    /// [`text`], for an optional field (`Some` of it).
    pub fn some_text(v: &str) -> Result<Option<String>, String> {
        text(v).map(Some)
    }

    /// One of `choices` (by name).
    pub fn one_of<T: Copy>(v: &str, choices: &[(&str, T)]) -> Result<T, String> {
        choices
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
}

/// `s` with `%XX` escapes decoded (borrowed when it has none).
pub(super) fn percent_decode(s: &str) -> std::result::Result<Cow<'_, str>, String> {
    if !s.contains('%') {
        return Ok(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad %-escape (write %XX with two hex digits)".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| "%-escapes that are not UTF-8".to_string())
}

/// A table (an array) of [`QueryKey`]s, one per configuration field:
/// `field: parser` sets `cfg.field` to `parser(value)`, where `parser` is a
/// [`value`] parser or any `fn(&str) -> Result<T, String>` saying what it
/// expects. The key is the field's name. After `Cfg, accessor();` the fields
/// are those of `cfg.accessor()` (options nested in a configuration).
///
/// ```
/// use proxy_core::url::{QueryKey, value};
///
/// #[derive(Default)]
/// struct Shared { timeout_ms: u64 }
/// #[derive(Default)]
/// struct Opts { clear: bool, name: Option<String>, shared: Shared }
/// impl Opts { fn shared_mut(&mut self) -> &mut Shared { &mut self.shared } }
///
/// const OWN: &[QueryKey<Opts>] = &proxy_core::query_keys![Opts;
///     clear: value::flag,
///     name: value::some_text,
/// ];
/// let shared = proxy_core::query_keys![Opts, shared_mut(); timeout_ms: value::number];
/// let mut o = Opts::default();
/// (OWN[1].set)(&mut o, "scratch").unwrap();
/// (shared[0].set)(&mut o, "500").unwrap();
/// assert_eq!((o.name.as_deref(), o.shared.timeout_ms), (Some("scratch"), 500));
/// assert_eq!((OWN[0].set)(&mut o, "yes").unwrap_err(), "expected true or false");
/// ```
#[macro_export]
macro_rules! query_keys {
    ($cfg:ty; $($field:ident: $parse:path),+ $(,)?) => {
        [$($crate::url::QueryKey::<$cfg> {
            name: stringify!($field),
            set: |c: &mut $cfg, v: &str| $parse(v).map(|x| c.$field = x),
        }),+]
    };
    ($cfg:ty, $get:ident(); $($field:ident: $parse:path),+ $(,)?) => {
        [$($crate::url::QueryKey::<$cfg> {
            name: stringify!($field),
            set: |c: &mut $cfg, v: &str| $parse(v).map(|x| c.$get().$field = x),
        }),+]
    };
}
