//! dmfilemapd: keep a dm-stats filemap group in sync with the extents of a file.
//!
//! The daemon is a loop of four steps, each in its own module:
//! Scan ([`fiemap`] + [`extent`]) -> Diff ([`diff`]) -> Apply ([`engine`]) -> Sleep ([`watch`]).
//! [`stats`] speaks the dm-stats message protocol, [`dm`] carries the messages
//! to the kernel, and [`fake`] is an in-memory dm-stats used by the tests.
//!
//! Unchecked code is denied crate-wide (Cargo.toml `[lints]`) and allowed
//! only in [`dm`] and [`fiemap`] (the two ioctl ABIs) and in [`sys`] (adopting
//! inherited fds and blocking signals), each block with a SAFETY comment.

pub mod cli;
pub mod daemon;
pub mod diff;
pub mod dm;
pub mod engine;
pub mod error;
pub mod extent;
pub mod fake;
pub mod fiemap;
pub mod fold;
pub mod log;
pub mod stats;
pub mod sys;
#[doc(hidden)]
pub mod testing;
pub mod watch;

pub use error::Error;
