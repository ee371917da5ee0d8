//! Typed errors of the reporting crate.
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid JSON record: {source}")]
    BadLine {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("record {id}: schema version {found} is newer than supported version {supported}")]
    UnsupportedSchema {
        id: String,
        found: u32,
        supported: u32,
    },
    #[error("invalid record {id}: {reason}")]
    InvalidRecord { id: String, reason: String },
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("image error on {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T> = std::result::Result<T, ReportError>;

/// Attach a path to an `io::Error`.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.into();
    move |source| ReportError::Io { path, source }
}
