//! The daemon's error, with enough context to be one clear log line: each
//! variant keeps its typed cause as its source, and its text names the
//! cause's, so the line reads down the chain.
//!
//! Owns: [`Error`], the top of every chain. Touches: nothing; the modules
//! below it own their errors and their words.

use crate::cmd::start::Refusal;
use crate::daemon::source::SourceError;
use crate::daemon::DaemonError;
use crate::engine::map;
use crate::sys::{dm, fiemap};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Dm(#[from] dm::DmError),
    #[error(transparent)]
    Fiemap(#[from] fiemap::FiemapError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A check before starting failed: `<what>: <why>`. Only
    /// `cmd::start` refuses; later failures are not refusals.
    #[error("{what}: {why}")]
    Refused {
        what: String,
        #[source]
        why: Refusal,
    },
    /// The loop ended on an error it cannot mend.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The file could not be followed from the start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// `map` or `unmap` failed on the device, its checks passed.
    #[error("{what}: {source}")]
    Map {
        what: String,
        #[source]
        source: map::MapError,
    },
    /// `unmap FILE` found no single group for the file.
    #[error("{what}: {source}")]
    Find {
        what: String,
        #[source]
        source: map::FindError,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn refused(what: impl Into<String>, why: Refusal) -> Error {
        Error::Refused {
            what: what.into(),
            why,
        }
    }
}
