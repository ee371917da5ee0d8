//! multishap-models: CLIP and ViLT inference in candle, faithful to Hugging Face
//! transformers (configs, parameter names, preprocessing, tokenisation).
//! Pure inference: nothing here knows about coalitions.

pub mod activation;
pub mod clip;
pub mod cpu_alloc;
pub mod cpu_fast;
pub mod demo;
pub mod error;
pub mod layers;
pub mod loading;
pub mod pil_resize;
pub mod preprocess;
pub mod tokenizer;
pub mod vilt;
pub mod weights;

pub use error::{ModelError, Result};
pub use loading::{
    load, load_with, AnyImageProcessor, AnyModel, LoadOptions, LoadedModel, ModelKind, ModelSource,
};
