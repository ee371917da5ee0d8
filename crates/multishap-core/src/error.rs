use thiserror::Error;

/// Errors of the game-theory core.
#[derive(Debug, Error)]
pub enum Error {
    #[error("exact enumeration supports at most {max} players, got {got}")]
    TooManyPlayers { got: usize, max: usize },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("game evaluation failed: {0}")]
    Game(String),
    #[error("invalid .npy file {path}: {reason}")]
    Npy { path: String, reason: String },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
