//! Running one case with its end-of-case checks.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::finish::{finish, panic_message};
use super::{Case, Ctx, case};

/// Run one case on `ctx`, then the end-of-case checks (`close` twice, every
/// operation after `close`, no leftovers). `Err` says what failed. When the
/// case itself fails, the connector is still closed (to tear the namespace
/// down) but the later checks are skipped.
pub fn run_case(case: &Case, ctx: Ctx) -> std::result::Result<(), String> {
    let run = catch_unwind(AssertUnwindSafe(|| (case.run)(&ctx)));
    match run {
        Err(p) => {
            let _ = ctx.connector.close();
            let _ = ctx.connector.close();
            Err(format!("case {}: {}", case.name, panic_message(&*p)))
        }
        Ok(()) => catch_unwind(AssertUnwindSafe(|| finish(&ctx)))
            .unwrap_or_else(|p| Err(panic_message(&*p)))
            .map_err(|m| format!("case {} (end-of-case checks): {m}", case.name)),
    }
}

/// [`run_case`] for a `#[test]`: panics with the failure.
pub fn run_test(name: &str, make_ctx: impl FnOnce() -> Ctx) {
    let case = case(name).unwrap_or_else(|| panic!("no conformance case named {name}"));
    if let Err(m) = run_case(case, make_ctx()) {
        panic!("{m}");
    }
}
