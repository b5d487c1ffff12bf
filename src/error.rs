//! The daemon's error, with enough context to be one clear log line.

use crate::{dm, engine, fiemap};

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
    /// A check before starting failed: `<what>: <why>`.
    #[error("{what}: {why}")]
    Refused { what: String, why: String },
    /// An update failed in a way a retry cannot mend (device gone).
    #[error("group {group}: {source}")]
    Fatal {
        group: u64,
        #[source]
        source: engine::EngineError,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn refused(what: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Refused {
            what: what.into(),
            why: why.into(),
        }
    }
}
