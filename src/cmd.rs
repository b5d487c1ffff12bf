//! The top: the command line ([`cli`]), the start-up checks of the man
//! page ([`start`]), the `map` and `unmap` commands on the kernel ([`map`]),
//! and [`Error`], the one error a process role returns. Only this layer
//! builds an [`Error`]; the layers below own their errors and their words.

pub(crate) mod cli;
mod dialect;
mod error;
pub(crate) mod map;
mod role;
pub(crate) mod start;

pub use error::Error;
pub use role::run;
