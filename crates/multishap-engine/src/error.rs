//! Typed errors of the engine.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("out of memory even at batch size 1: {0}")]
    OutOfMemory(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] multishap_models::error::ModelError),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    /// Whether this is an out-of-memory condition ([`is_oom`] for candle's errors).
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            EngineError::OutOfMemory(_) => true,
            EngineError::Candle(e) => is_oom(e),
            _ => false,
        }
    }
}

impl From<EngineError> for multishap_core::Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Candle(c) => multishap_core::Error::Candle(c),
            other => multishap_core::Error::Game(other.to_string()),
        }
    }
}

/// Whether a candle error is an out-of-memory condition (CUDA / Metal
/// allocation failures; matched on the error text, which is all candle gives).
pub fn is_oom(e: &candle_core::Error) -> bool {
    let s = e.to_string().to_ascii_lowercase();
    s.contains("out_of_memory")
        || s.contains("out of memory")
        || s.contains("failed to allocate")
        || s.contains("alloc failed")
}
