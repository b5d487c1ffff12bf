//! The test kit, feature `testkit` only (the crate's own tests and fuzz/):
//! an in-memory dm-stats with the kernel's rules and a fault plan
//! ([`fake`]), models of libdm's descriptor code ([`libdm`]), and the
//! checks and generators the tests share.

mod checks;
pub mod fake;
pub mod libdm;

pub use checks::*;
