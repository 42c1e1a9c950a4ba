//! The Fortran module `capi/fortran/proxystore.f90` declares every function
//! of the header `include/proxystore.h` (by its C name) and the same status
//! codes and version as the header.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `NAME = VALUE` pairs of `PS_*` constants: the header's enum variants and
/// `#define`s, or the module's `parameter`s.
fn constants(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim().trim_end_matches(',');
        let line = line.strip_prefix("#define ").unwrap_or(line);
        let decl = line.rsplit("::").next().unwrap_or(line);
        for part in decl.split(',') {
            let mut it = part
                .split(|c: char| c == '=' || c.is_whitespace())
                .filter(|s| !s.is_empty());
            if let (Some(name), Some(value), None) = (it.next(), it.next(), it.next())
                && name.starts_with("PS_")
                && name != "PS_KEY_MAX"
                && value.chars().all(|c| c.is_ascii_digit())
            {
                out.insert((name.to_string(), value.to_string()));
            }
        }
    }
    out
}

#[test]
fn fortran_module_matches_the_header() {
    let header = read("include/proxystore.h");
    let module = read("fortran/proxystore.f90");
    let c_functions: BTreeSet<String> = header
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' ') && l.contains('('))
        .filter_map(|l| {
            let before = l.split('(').next()?;
            let name = before.rsplit([' ', '*']).next()?;
            name.starts_with("ps_").then(|| name.to_string())
        })
        .collect();
    let f_functions: BTreeSet<String> = module
        .split("bind(c, name=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_string))
        .collect();
    assert!(c_functions.len() >= 23, "{c_functions:?}");
    assert_eq!(
        c_functions, f_functions,
        "functions of the header vs the module"
    );
    let (c_consts, f_consts) = (constants(&header), constants(&module));
    assert!(c_consts.len() >= 18, "{c_consts:?}");
    assert_eq!(c_consts, f_consts, "status codes and versions");
    assert!(module.contains("PS_KEY_MAX = 1024") && header.contains("#define PS_KEY_MAX 1024"));
}
