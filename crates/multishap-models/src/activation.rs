//! Hidden activations named as in Hugging Face configs (`hidden_act`).

use candle_core::{Result, Tensor};

/// The activations CLIP and ViLT checkpoints use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI CLIP).
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact GELU with erf (PyTorch `nn.GELU()`, HF "gelu").
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh approximation of GELU (HF "gelu_new", "gelu_pytorch_tanh", "gelu_fast").
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    #[serde(rename = "gelu_tanh")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    pub fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702f64)?)?,
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Relu => xs.relu(),
        }
    }

    /// The in-place CPU kernel of [`crate::cpu_fast`] for this activation, if any.
    pub fn fused_cpu(&self) -> Option<crate::cpu_fast::FusedAct> {
        match self {
            Activation::QuickGelu => Some(crate::cpu_fast::FusedAct::QuickGelu),
            Activation::Gelu => Some(crate::cpu_fast::FusedAct::GeluErf),
            Activation::GeluTanh | Activation::Relu => None,
        }
    }
}
