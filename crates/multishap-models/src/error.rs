//! Typed errors of the models crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot parse {path}: {message}")]
    Json { path: PathBuf, message: String },

    #[error("cannot read image {path}: {message}")]
    Image { path: PathBuf, message: String },

    #[error("unsupported image: {0}")]
    UnsupportedImage(String),

    #[error("empty text: nothing to tokenize")]
    EmptyText,

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("unknown or unsupported model_type {model_type:?} (architectures {architectures:?}); supported: clip, vilt")]
    UnknownModelType {
        model_type: String,
        architectures: Vec<String>,
    },

    #[error("no weights in {0}: expected model.safetensors or pytorch_model.bin")]
    NoWeights(PathBuf),

    #[error("no tokenizer in {0}: expected tokenizer.json or vocab.txt")]
    NoTokenizer(PathBuf),

    #[error("model folder {0} does not exist or has no config.json")]
    NoConfig(PathBuf),

    #[error("weights in {path} do not fit the architecture:{report}")]
    WeightMismatch { path: PathBuf, report: String },

    #[error("hub download of {repo} failed: {message}")]
    Hub { repo: String, message: String },

    #[error("bad input: {0}")]
    BadInput(String),

    #[error("not implemented yet: {0}")]
    NotImplemented(&'static str),
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}
