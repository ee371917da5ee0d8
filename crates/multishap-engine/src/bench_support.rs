//! Random-weight models at their real sizes, for benchmarks and speed tests
//! (throughput does not depend on weight values). Weights are N(0, 0.02^2)
//! from a seeded stream, except one-dimensional tensors named `weight` (the
//! LayerNorm scales), which are 1 + N(0, 0.02^2) as in a trained network, so
//! activations keep their usual scale and device parity checks are meaningful.
//! Values are drawn in f32 on the host, whatever the device and dtype, so one
//! seed gives the same model on every device.
use crate::Result;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use multishap_models::clip::{ClipConfig, ClipModel};
use multishap_models::vilt::{ViltConfig, ViltForImageAndTextRetrieval, ViltForQuestionAnswering};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use std::sync::Mutex;

/// A VarBuilder backend that answers every request with seeded random values.
pub struct RandomBackend {
    rng: Mutex<rand_chacha::ChaCha8Rng>,
}

impl RandomBackend {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
        }
    }
}

impl SimpleBackend for RandomBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let normal = Normal::new(0f32, 0.02).map_err(candle_core::Error::wrap)?;
        let mut rng = self
            .rng
            .lock()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let offset = if s.rank() == 1 && name == "weight" {
            1.0
        } else {
            0.0
        };
        let v: Vec<f32> = (0..s.elem_count())
            .map(|_| offset + normal.sample(&mut *rng))
            .collect();
        Tensor::from_vec(v, s, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)
    }
    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("random backend cannot invent a tensor of unknown shape: {name}")
    }
    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// A host tensor of `shape` with values uniform in [-1, 1) from a seeded stream
/// (random pixel values and such for benchmarks).
pub fn uniform_host(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

pub fn random_var_builder(seed: u64, device: &Device, dtype: DType) -> VarBuilder<'static> {
    VarBuilder::from_backend(Box::new(RandomBackend::new(seed)), dtype, device.clone())
}

/// openai/clip-vit-base-patch32's configuration.
pub fn clip_b32_config() -> Result<ClipConfig> {
    let json = r#"{"projection_dim": 512, "logit_scale_init_value": 2.6592,
      "text_config": {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048,
        "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 1},
      "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
        "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 32,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}}"#;
    serde_json::from_str(json).map_err(|e| crate::EngineError::Config(e.to_string()))
}

/// dandelin/vilt-b32-finetuned-vqa's configuration (3129 answers, labels "0".."3128").
pub fn vilt_b32_vqa_config() -> Result<ViltConfig> {
    let labels: Vec<String> = (0..3129).map(|i| format!("\"{i}\": \"{i}\"")).collect();
    let json = format!(
        r#"{{"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
        "hidden_act": "gelu", "layer_norm_eps": 1e-12, "image_size": 384, "patch_size": 32, "num_channels": 3,
        "vocab_size": 30522, "type_vocab_size": 2, "modality_type_vocab_size": 2, "max_position_embeddings": 40,
        "max_image_length": -1, "num_images": -1, "id2label": {{{}}}}}"#,
        labels.join(",")
    );
    serde_json::from_str(&json).map_err(|e| crate::EngineError::Config(e.to_string()))
}

pub fn random_clip_b32(seed: u64, device: &Device, dtype: DType) -> Result<ClipModel> {
    Ok(ClipModel::new(
        &clip_b32_config()?,
        random_var_builder(seed, device, dtype),
    )?)
}

pub fn random_vilt_b32_vqa(
    seed: u64,
    device: &Device,
    dtype: DType,
) -> Result<ViltForQuestionAnswering> {
    Ok(ViltForQuestionAnswering::new(
        &vilt_b32_vqa_config()?,
        random_var_builder(seed, device, dtype),
    )?)
}

pub fn random_vilt_b32_itm(
    seed: u64,
    device: &Device,
    dtype: DType,
) -> Result<ViltForImageAndTextRetrieval> {
    let mut cfg = vilt_b32_vqa_config()?;
    cfg.id2label = None;
    Ok(ViltForImageAndTextRetrieval::new(
        &cfg,
        random_var_builder(seed, device, dtype),
    )?)
}
