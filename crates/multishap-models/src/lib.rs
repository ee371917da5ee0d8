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

/// Whether the on/off switch `name` is set in the environment (any value but
/// empty or `0`), as for `MULTISHAP_DEFAULT_MALLOC` and `MULTISHAP_PLAIN_CPU_OPS`.
pub(crate) fn env_switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Helpers shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// max |a - b| over all elements (f32 tensors of one shape).
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }
}
