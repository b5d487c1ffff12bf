//! dmfilemapd: keep a dm-stats filemap group in sync with the extents of a file.
//!
//! The daemon is a loop of four steps, each in its own module:
//! Scan ([`fiemap`] + [`extent`], through [`source`]) -> Diff ([`diff`]) ->
//! Apply ([`engine`]) -> Sleep ([`watch`]), run by [`daemon`] after the
//! checks of [`start`]. The engine reads the group with [`group`], keeps
//! its [`ledger`] of regions it made, and talks to a [`device::Device`]:
//! [`dm`] carries the messages of [`stats`] to the kernel.
//!
//! Dependencies point down: `device` < `dm`, `stats`, `extent` < `group` <
//! `ledger` < `engine` < `daemon`, `source`, `start` < `main`.
//!
//! With the `testkit` feature (the crate's own tests and fuzz/ only),
//! `fake` is an in-memory dm-stats and `testing` the checks they share.
//!
//! Unchecked code is denied crate-wide (Cargo.toml `[lints]`) and allowed
//! only in [`dm`] and [`fiemap`] (the two ioctl ABIs) and in [`sys`] (adopting
//! inherited fds and blocking signals), each block with a SAFETY comment.

pub mod bounds;
pub mod cli;
pub mod daemon;
pub mod device;
pub mod diff;
pub mod dm;
pub mod engine;
pub mod error;
pub mod extent;
#[cfg(feature = "testkit")]
pub mod fake;
pub mod fiemap;
pub mod group;
pub mod ledger;
pub mod log;
pub mod map;
pub mod mapcmd;
pub mod source;
pub mod start;
pub mod stats;
pub mod sys;
#[cfg(feature = "testkit")]
pub mod testing;
pub mod watch;

pub use error::Error;
