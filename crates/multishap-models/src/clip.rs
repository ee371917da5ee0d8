//! CLIP (vision + text towers, projections, logit scale) with Hugging Face
//! parameter names, a serde config read from `config.json`, and text pooling by
//! gather at caller-given end-of-text positions.

use candle_core::{DType, IndexOp, Module, Result, Tensor, D};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};

use crate::activation::Activation;
use crate::layers::{causal_mask, layer_norm, linear, patchify_matmul, FusedSelfAttention};

fn d_text_vocab() -> usize {
    49408
}
fn d_text_hidden() -> usize {
    512
}
fn d_text_inter() -> usize {
    2048
}
fn d_text_heads() -> usize {
    8
}
fn d_layers() -> usize {
    12
}
fn d_text_pos() -> usize {
    77
}
fn d_act() -> Activation {
    Activation::QuickGelu
}
fn d_eps() -> f64 {
    1e-5
}
fn d_pad() -> u32 {
    1
}
fn d_bos() -> u32 {
    49406
}
fn d_eos() -> u32 {
    49407
}
fn d_vis_hidden() -> usize {
    768
}
fn d_vis_inter() -> usize {
    3072
}
fn d_vis_heads() -> usize {
    12
}
fn d_channels() -> usize {
    3
}
fn d_image_size() -> usize {
    224
}
fn d_patch() -> usize {
    32
}
fn d_proj() -> usize {
    512
}
fn d_logit_scale() -> f64 {
    2.6592
}

/// `text_config` of a HF CLIP `config.json` (defaults = HF `CLIPTextConfig`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ClipTextConfig {
    #[serde(default = "d_text_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_text_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_text_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_text_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_text_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_act")]
    pub hidden_act: Activation,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_pad")]
    pub pad_token_id: u32,
    #[serde(default = "d_bos")]
    pub bos_token_id: u32,
    /// Note: legacy configs (openai/clip-vit-*) say 2 here; the tokenizer's
    /// `<|endoftext|>` id is the one to look for in the input ids.
    #[serde(default = "d_eos")]
    pub eos_token_id: u32,
}

/// `vision_config` of a HF CLIP `config.json` (defaults = HF `CLIPVisionConfig`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ClipVisionConfig {
    #[serde(default = "d_vis_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_vis_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_vis_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_channels")]
    pub num_channels: usize,
    #[serde(default = "d_image_size")]
    pub image_size: usize,
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: Activation,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
}

/// HF `CLIPConfig`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ClipConfig {
    pub text_config: ClipTextConfig,
    pub vision_config: ClipVisionConfig,
    #[serde(default = "d_proj")]
    pub projection_dim: usize,
    #[serde(default = "d_logit_scale")]
    pub logit_scale_init_value: f64,
}

#[derive(Debug, Clone)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl Mlp {
    fn new(hidden: usize, inter: usize, act: Activation, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(hidden, inter, true, vb.pp("fc1"))?,
            fc2: linear(inter, hidden, true, vb.pp("fc2"))?,
            act,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let h = crate::cpu_fast::linear_act(xs, &self.fc1, Some(self.act))?;
        crate::cpu_fast::linear_act(&h, &self.fc2, None)
    }
}

/// One pre-LayerNorm CLIP encoder layer (`encoder.layers.{i}`).
#[derive(Debug, Clone)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: FusedSelfAttention,
    layer_norm2: LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn new(
        hidden: usize,
        inter: usize,
        heads: usize,
        act: Activation,
        eps: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let a = vb.pp("self_attn");
        let out = linear(hidden, hidden, true, a.pp("out_proj"))?;
        Ok(Self {
            layer_norm1: layer_norm(hidden, eps, vb.pp("layer_norm1"))?,
            self_attn: FusedSelfAttention::new(
                hidden,
                heads,
                true,
                a.pp("q_proj"),
                a.pp("k_proj"),
                a.pp("v_proj"),
                out,
            )?,
            layer_norm2: layer_norm(hidden, eps, vb.pp("layer_norm2"))?,
            mlp: Mlp::new(hidden, inter, act, vb.pp("mlp"))?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, mask)?;
        let xs = (xs + h)?;
        let h = self.mlp.forward(&self.layer_norm2.forward(&xs)?)?;
        xs + h
    }
}

#[derive(Debug, Clone)]
struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    #[allow(clippy::too_many_arguments)]
    fn new(
        n: usize,
        hidden: usize,
        inter: usize,
        heads: usize,
        act: Activation,
        eps: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..n)
            .map(|i| EncoderLayer::new(hidden, inter, heads, act, eps, vb.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut xs = xs.clone();
        for l in &self.layers {
            xs = l.forward(&xs, mask)?;
        }
        Ok(xs)
    }
}

/// `text_model.*`
#[derive(Debug, Clone)]
pub struct ClipTextTransformer {
    token_embedding: Embedding,
    position_embedding: Tensor, // [max_pos, H]
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    max_positions: usize,
}

impl ClipTextTransformer {
    pub fn new(c: &ClipTextConfig, vb: VarBuilder) -> Result<Self> {
        let e = vb.pp("embeddings");
        let token_embedding = Embedding::new(
            e.get((c.vocab_size, c.hidden_size), "token_embedding.weight")?,
            c.hidden_size,
        );
        let position_embedding = e.get(
            (c.max_position_embeddings, c.hidden_size),
            "position_embedding.weight",
        )?;
        Ok(Self {
            token_embedding,
            position_embedding,
            encoder: Encoder::new(
                c.num_hidden_layers,
                c.hidden_size,
                c.intermediate_size,
                c.num_attention_heads,
                c.hidden_act,
                c.layer_norm_eps,
                vb.pp("encoder"),
            )?,
            final_layer_norm: layer_norm(
                c.hidden_size,
                c.layer_norm_eps,
                vb.pp("final_layer_norm"),
            )?,
            max_positions: c.max_position_embeddings,
        })
    }

    /// input_ids [B,L] u32 -> last hidden state [B,L,H] (after final LayerNorm).
    pub fn last_hidden_state(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (_b, l) = input_ids.dims2()?;
        if l > self.max_positions {
            candle_core::bail!(
                "text of {l} tokens is longer than the model's {} positions",
                self.max_positions
            )
        }
        let tok = self.token_embedding.forward(input_ids)?;
        let pos = self.position_embedding.narrow(0, 0, l)?;
        let xs = tok.broadcast_add(&pos)?;
        let mask = causal_mask(l, xs.dtype(), xs.device())?;
        let xs = self.encoder.forward(&xs, Some(&mask))?;
        self.final_layer_norm.forward(&xs)
    }

    /// Pooled output [B,H]: hidden state at `eos_positions` [B] (u32) of each row.
    pub fn pooled(&self, input_ids: &Tensor, eos_positions: &Tensor) -> Result<Tensor> {
        let hs = self.last_hidden_state(input_ids)?;
        gather_rows(&hs, eos_positions)
    }
}

/// hs [B,L,H], pos [B] -> hs[b, pos[b], :] as [B,H].
pub fn gather_rows(hs: &Tensor, pos: &Tensor) -> Result<Tensor> {
    let (b, l, h) = hs.dims3()?;
    let pos = pos.to_dtype(DType::U32)?.to_device(hs.device())?;
    if pos.dims1()? != b {
        candle_core::bail!(
            "eos_positions has {} entries for a batch of {b}",
            pos.dims1()?
        )
    }
    let host: Vec<u32> = pos.to_vec1()?;
    if let Some(p) = host.iter().find(|&&p| p as usize >= l) {
        candle_core::bail!("eos position {p} outside a sequence of length {l}")
    }
    let offsets = Tensor::arange(0u32, b as u32, hs.device())?.affine(l as f64, 0.0)?;
    let idx = (offsets + pos)?;
    hs.reshape((b * l, h))?.index_select(&idx, 0)
}

/// `vision_model.*`
#[derive(Debug, Clone)]
pub struct ClipVisionTransformer {
    class_embedding: Tensor,    // [H]
    patch_weight: Tensor,       // [H, C*p*p]
    position_embedding: Tensor, // [1+n, H]
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    patch_size: usize,
    image_size: usize,
}

impl ClipVisionTransformer {
    pub fn new(c: &ClipVisionConfig, vb: VarBuilder) -> Result<Self> {
        let e = vb.pp("embeddings");
        let h = c.hidden_size;
        let p = c.patch_size;
        let n = (c.image_size / p) * (c.image_size / p);
        let class_embedding = e.get(h, "class_embedding")?;
        let patch_weight = e
            .get((h, c.num_channels, p, p), "patch_embedding.weight")?
            .reshape((h, c.num_channels * p * p))?;
        let position_embedding = e.get((n + 1, h), "position_embedding.weight")?;
        Ok(Self {
            class_embedding,
            patch_weight,
            position_embedding,
            pre_layrnorm: layer_norm(h, c.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            encoder: Encoder::new(
                c.num_hidden_layers,
                h,
                c.intermediate_size,
                c.num_attention_heads,
                c.hidden_act,
                c.layer_norm_eps,
                vb.pp("encoder"),
            )?,
            post_layernorm: layer_norm(h, c.layer_norm_eps, vb.pp("post_layernorm"))?,
            patch_size: p,
            image_size: c.image_size,
        })
    }

    /// pixel_values [B,3,S,S] -> last hidden state [B,1+n,H] (before post LayerNorm).
    pub fn last_hidden_state(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (b, _c, hh, ww) = pixel_values.dims4()?;
        if hh != self.image_size || ww != self.image_size {
            candle_core::bail!(
                "CLIP expects {s}x{s} pixel values, got {hh}x{ww}",
                s = self.image_size
            )
        }
        let (patches, _, _) =
            patchify_matmul(pixel_values, &self.patch_weight, None, self.patch_size)?;
        let h = self.class_embedding.dim(0)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, h))?
            .broadcast_as((b, 1, h))?;
        let xs = Tensor::cat(&[&cls, &patches], 1)?;
        let xs = xs.broadcast_add(&self.position_embedding)?;
        let xs = self.pre_layrnorm.forward(&xs)?;
        self.encoder.forward(&xs, None)
    }

    /// Pooled output [B,H]: post-LayerNorm of the class token.
    pub fn pooled(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let hs = self.last_hidden_state(pixel_values)?;
        self.post_layernorm
            .forward(&hs.i((.., 0, ..))?.contiguous()?)
    }
}

/// HF `CLIPModel`.
#[derive(Debug, Clone)]
pub struct ClipModel {
    text_model: ClipTextTransformer,
    vision_model: ClipVisionTransformer,
    visual_projection: Linear,
    text_projection: Linear,
    logit_scale: Tensor,
    cfg: ClipConfig,
    dtype: DType,
}

impl ClipModel {
    pub fn new(cfg: &ClipConfig, vb: VarBuilder) -> Result<Self> {
        let text_model = ClipTextTransformer::new(&cfg.text_config, vb.pp("text_model"))?;
        let vision_model = ClipVisionTransformer::new(&cfg.vision_config, vb.pp("vision_model"))?;
        let visual_projection = linear(
            cfg.vision_config.hidden_size,
            cfg.projection_dim,
            false,
            vb.pp("visual_projection").set_dtype(DType::F32),
        )?;
        let text_projection = linear(
            cfg.text_config.hidden_size,
            cfg.projection_dim,
            false,
            vb.pp("text_projection").set_dtype(DType::F32),
        )?;
        let logit_scale = vb.get((), "logit_scale")?;
        Ok(Self {
            text_model,
            vision_model,
            visual_projection,
            text_projection,
            logit_scale,
            cfg: cfg.clone(),
            dtype: vb.dtype(),
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.cfg
    }

    pub fn text_model(&self) -> &ClipTextTransformer {
        &self.text_model
    }

    pub fn vision_model(&self) -> &ClipVisionTransformer {
        &self.vision_model
    }

    /// pixel_values [B,3,H,W] f32 (normalised) -> image embeds [B,P] f32 (not L2-normalised).
    pub fn get_image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let pv = pixel_values
            .to_device(self.logit_scale.device())?
            .to_dtype(self.dtype)?;
        let pooled = self.vision_model.pooled(&pv)?.to_dtype(DType::F32)?;
        self.visual_projection.forward(&pooled)
    }

    /// input_ids [B,L] u32, eos_positions [B] u32 -> text embeds [B,P] f32 (not normalised).
    pub fn get_text_features(&self, input_ids: &Tensor, eos_positions: &Tensor) -> Result<Tensor> {
        let ids = input_ids.to_device(self.logit_scale.device())?;
        let pooled = self.text_model.pooled(&ids, eos_positions)?;
        self.text_projection.forward(&pooled.to_dtype(DType::F32)?)
    }

    /// `exp(logit_scale)`.
    pub fn logit_scale(&self) -> Result<f32> {
        self.logit_scale
            .to_dtype(DType::F32)?
            .exp()?
            .to_scalar::<f32>()
    }

    /// logits_per_image [Bi,Bt] = exp(logit_scale) * cos(image_i, text_t), in f32.
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        input_ids: &Tensor,
        eos_positions: &Tensor,
    ) -> Result<Tensor> {
        let img = self.get_image_features(pixel_values)?;
        let txt = self.get_text_features(input_ids, eos_positions)?;
        logits_from_features(&img, &txt, self.logit_scale()?)
    }
}

/// L2-normalise the last dim.
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    xs.broadcast_div(&xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// logits_per_image [Bi,Bt] from unnormalised features.
pub fn logits_from_features(image: &Tensor, text: &Tensor, scale: f32) -> Result<Tensor> {
    let i = l2_normalize(image)?;
    let t = l2_normalize(text)?;
    i.matmul(&t.t()?)? * scale as f64
}

/// Position of the first `eos_id` in each row of `ids` (or the last position if absent).
pub fn eos_positions(ids: &[Vec<u32>], eos_id: u32) -> Vec<u32> {
    ids.iter()
        .map(|row| {
            row.iter()
                .position(|&t| t == eos_id)
                .unwrap_or(row.len().saturating_sub(1)) as u32
        })
        .collect()
}
