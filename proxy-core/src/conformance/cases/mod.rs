//! The cases, by area. Each is a public function of a [`Ctx`](super::Ctx)
//! that panics on failure (listed in [`CASES`](super::CASES)).

mod basic;
mod batches;
mod deferrable;
mod keys;
mod limits;
mod notify;
mod processes;
mod store;

pub use basic::*;
pub use batches::*;
pub use deferrable::*;
pub use keys::*;
pub use limits::*;
pub use notify::*;
pub use processes::*;
pub use store::*;
