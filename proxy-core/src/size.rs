//! Sizes written by people: one rule for every command line, option and
//! benchmark of proxystore-rs.
//!
//! A number of bytes, optionally followed by a unit (case-insensitive):
//! `B`; `K`, `M`, `G`, `T` and `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024
//! (as `--memory-limit 16G` means on every server); `KB`, `MB`, `GB`, `TB`
//! are powers of 1000 (as the Python ProxyStore's benchmark sizes are
//! written). `4096`, `64K`, `64KiB`, `100MB`, `1GiB`.

/// Parse a size (see the module docs); an error names what was wrong.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("not a size: {s:?} (a number of bytes, e.g. 4096, 64K, 100MB, 1GiB)")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "bad size unit in {s:?} (K, M, G, KiB, MiB, GiB: powers of 1024; KB, MB, GB: of 1000)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} overflows"))
}

/// [`parse_size`] as a `usize` (for lengths in memory).
pub fn parse_len(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    usize::try_from(n).map_err(|_| format!("size {s:?} does not fit in memory here"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("7B"), Ok(7));
        assert_eq!(parse_size("3k"), Ok(3072));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size(" 5 gb "), Ok(5_000_000_000));
        assert!(parse_size("x").unwrap_err().contains("not a size"));
        assert!(
            parse_size("3 parsecs")
                .unwrap_err()
                .contains("bad size unit")
        );
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("overflows")
        );
        assert_eq!(parse_len("1MiB"), Ok(1 << 20));
    }
}
