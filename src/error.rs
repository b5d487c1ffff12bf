//! The daemon's error, with enough context to be one clear log line.

use crate::{cli, dm, engine, fiemap};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] cli::UsageError),
    #[error(transparent)]
    Dm(#[from] dm::DmError),
    #[error(transparent)]
    Fiemap(#[from] fiemap::FiemapError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}
