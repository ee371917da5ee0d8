//! Differentiable training twins of [`crate::vilt::ViltForQuestionAnswering`]
//! and [`crate::clip::ClipModel`].
//!
//! The inference models use candle's fused `softmax_last_dim` and fused
//! `LayerNorm`, which have no backward pass, and concatenate the Q/K/V weights
//! into a copy at load time (an optimiser step would not reach the copy). These
//! twins compute the same functions from the same configs and the same Hugging
//! Face parameter names with differentiable primitive ops and read the `Var`s
//! directly, so a `VarMap` trained here saves to a `model.safetensors` that the
//! inference models load. `tests/demo_models.rs` checks that the shipped
//! weights give the same outputs through both (parity) and through
//! [`crate::loading::load`].
//!
//! Only what the demo models need is supported: a full pixel mask and an image
//! whose patch grid equals the config's (`image_size / patch_size`), so ViLT's
//! position-embedding interpolation is the identity.

use crate::activation::Activation;
use crate::clip::ClipConfig;
use crate::vilt::ViltConfig;
use candle_core::{DType, IndexOp, Result, Tensor, D};
use candle_nn::VarBuilder;

/// LayerNorm from primitive (differentiable) ops.
#[derive(Debug, Clone)]
pub struct TwinLayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl TwinLayerNorm {
    pub fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            w: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            b: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        xn.broadcast_mul(&self.w)?.broadcast_add(&self.b)
    }
}

/// Linear layer reading HF `weight` [out,in] and optional `bias` [out].
#[derive(Debug, Clone)]
pub struct TwinLinear {
    w: Tensor,
    b: Option<Tensor>,
}

impl TwinLinear {
    pub fn new(inp: usize, out: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let w = vb.get_with_hints(
            (out, inp),
            "weight",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        )?;
        let b = if bias {
            Some(vb.get_with_hints(out, "bias", candle_nn::Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Self { w, b })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.broadcast_matmul(&self.w.t()?)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Softmax over the last dimension from primitive ops (max-shifted, the
/// shift detached: it cancels in the result).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

#[derive(Debug, Clone)]
struct Attention {
    q: TwinLinear,
    k: TwinLinear,
    v: TwinLinear,
    o: TwinLinear,
    heads: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let d = h / self.heads;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = (split(self.q.forward(x)?)? * (d as f64).powf(-0.5))?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let mut s = q.matmul(&k.t()?.contiguous()?)?;
        if let Some(m) = mask {
            s = s.broadcast_add(m)?;
        }
        let ctx = softmax_last(&s)?
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, h))?;
        self.o.forward(&ctx)
    }
}

/// Pre-LayerNorm transformer layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug, Clone)]
struct PreLnLayer {
    ln1: TwinLayerNorm,
    attn: Attention,
    ln2: TwinLayerNorm,
    fc1: TwinLinear,
    fc2: TwinLinear,
    act: Activation,
}

impl PreLnLayer {
    /// ViLT / ViT names (`layer.{i}.attention.attention.query`, ...).
    fn vilt(cfg: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let a = vb.pp("attention");
        Ok(Self {
            ln1: TwinLayerNorm::new(h, cfg.layer_norm_eps, vb.pp("layernorm_before"))?,
            attn: Attention {
                q: TwinLinear::new(h, h, cfg.qkv_bias, a.pp("attention.query"))?,
                k: TwinLinear::new(h, h, cfg.qkv_bias, a.pp("attention.key"))?,
                v: TwinLinear::new(h, h, cfg.qkv_bias, a.pp("attention.value"))?,
                o: TwinLinear::new(h, h, true, a.pp("output.dense"))?,
                heads: cfg.num_attention_heads,
            },
            ln2: TwinLayerNorm::new(h, cfg.layer_norm_eps, vb.pp("layernorm_after"))?,
            fc1: TwinLinear::new(h, cfg.intermediate_size, true, vb.pp("intermediate.dense"))?,
            fc2: TwinLinear::new(cfg.intermediate_size, h, true, vb.pp("output.dense"))?,
            act: cfg.hidden_act,
        })
    }

    /// CLIP names (`layers.{i}.self_attn.q_proj`, ...).
    fn clip(
        h: usize,
        inter: usize,
        heads: usize,
        eps: f64,
        act: Activation,
        vb: VarBuilder,
    ) -> Result<Self> {
        let a = vb.pp("self_attn");
        Ok(Self {
            ln1: TwinLayerNorm::new(h, eps, vb.pp("layer_norm1"))?,
            attn: Attention {
                q: TwinLinear::new(h, h, true, a.pp("q_proj"))?,
                k: TwinLinear::new(h, h, true, a.pp("k_proj"))?,
                v: TwinLinear::new(h, h, true, a.pp("v_proj"))?,
                o: TwinLinear::new(h, h, true, a.pp("out_proj"))?,
                heads,
            },
            ln2: TwinLayerNorm::new(h, eps, vb.pp("layer_norm2"))?,
            fc1: TwinLinear::new(h, inter, true, vb.pp("mlp.fc1"))?,
            fc2: TwinLinear::new(inter, h, true, vb.pp("mlp.fc2"))?,
            act,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln1.forward(x)?, mask)?)?;
        let y = self
            .fc2
            .forward(&self.act.apply(&self.fc1.forward(&self.ln2.forward(&x)?)?)?)?;
        x + y
    }
}

fn randn(vb: &VarBuilder, shape: impl Into<candle_core::Shape>, name: &str) -> Result<Tensor> {
    vb.get_with_hints(
        shape,
        name,
        candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
    )
}

/// `[B,C,S,S]` -> `[B, (S/p)^2, C*p*p]` in raster order (= Conv2d with kernel = stride = p).
fn patches(pixel_values: &Tensor, p: usize) -> Result<Tensor> {
    let (b, c, hh, ww) = pixel_values.dims4()?;
    let (gh, gw) = (hh / p, ww / p);
    pixel_values
        .reshape((b, c, gh, p, gw, p))?
        .permute((0, 2, 4, 1, 3, 5))?
        .contiguous()?
        .reshape((b, gh * gw, c * p * p))
}

/// Additive attention mask [B,1,1,T] from a 0/1 mask [B,T].
fn additive(mask: &Tensor) -> Result<Tensor> {
    let (b, t) = mask.dims2()?;
    ((1.0 - mask.to_dtype(DType::F32)?)? * -1e9)?.reshape((b, 1, 1, t))
}

/// Training twin of `ViltForQuestionAnswering` (names under `vilt.` and `classifier.`).
#[derive(Debug, Clone)]
pub struct ViltVqaTwin {
    word: Tensor,
    text_pos: Tensor,
    text_type: Tensor,
    text_ln: TwinLayerNorm,
    cls: Tensor,
    pos: Tensor,
    patch_w: Tensor,
    patch_b: Tensor,
    modality: Tensor,
    layers: Vec<PreLnLayer>,
    final_ln: TwinLayerNorm,
    pooler: TwinLinear,
    cls0: TwinLinear,
    cls1: TwinLayerNorm,
    cls3: TwinLinear,
    patch: usize,
    grid: usize,
}

impl ViltVqaTwin {
    pub fn new(cfg: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let e = vb.pp("vilt.embeddings");
        let t = e.pp("text_embeddings");
        let grid = cfg.image_size / cfg.patch_size;
        let p = cfg.patch_size;
        let labels = cfg.num_labels();
        if labels == 0 {
            candle_core::bail!("ViLT VQA config has no id2label");
        }
        Ok(Self {
            word: randn(&t, (cfg.vocab_size, h), "word_embeddings.weight")?,
            text_pos: randn(
                &t,
                (cfg.max_position_embeddings, h),
                "position_embeddings.weight",
            )?,
            text_type: randn(&t, (cfg.type_vocab_size, h), "token_type_embeddings.weight")?,
            text_ln: TwinLayerNorm::new(h, cfg.layer_norm_eps, t.pp("LayerNorm"))?,
            cls: randn(&e, (1, 1, h), "cls_token")?,
            pos: randn(&e, (1, grid * grid + 1, h), "position_embeddings")?,
            patch_w: randn(
                &e,
                (h, cfg.num_channels, p, p),
                "patch_embeddings.projection.weight",
            )?,
            patch_b: e.get_with_hints(
                h,
                "patch_embeddings.projection.bias",
                candle_nn::Init::Const(0.0),
            )?,
            modality: randn(
                &e,
                (cfg.modality_type_vocab_size, h),
                "token_type_embeddings.weight",
            )?,
            layers: (0..cfg.num_hidden_layers)
                .map(|i| PreLnLayer::vilt(cfg, vb.pp(format!("vilt.encoder.layer.{i}"))))
                .collect::<Result<_>>()?,
            final_ln: TwinLayerNorm::new(h, cfg.layer_norm_eps, vb.pp("vilt.layernorm"))?,
            pooler: TwinLinear::new(h, h, true, vb.pp("vilt.pooler.dense"))?,
            cls0: TwinLinear::new(h, 2 * h, true, vb.pp("classifier.0"))?,
            cls1: TwinLayerNorm::new(2 * h, 1e-5, vb.pp("classifier.1"))?,
            cls3: TwinLinear::new(2 * h, labels, true, vb.pp("classifier.3"))?,
            patch: p,
            grid,
        })
    }

    /// input_ids / attention_mask / token_type_ids [B,L] u32, pixel_values
    /// [B,3,S,S] (normalised, S = image_size) -> logits [B, num_labels].
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        pixel_values: &Tensor,
    ) -> Result<Tensor> {
        Ok(self
            .forward_with_patches(input_ids, attention_mask, token_type_ids, pixel_values)?
            .0)
    }

    /// [`Self::forward`] plus the final-layer (layer-normed) hidden states of
    /// the image tokens, `[B, 1 + grid^2, hidden]`: the image CLS token, then
    /// the patches in raster order (for training-only auxiliary heads).
    pub fn forward_with_patches(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        pixel_values: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (logits, mut states) =
            self.forward_with_layers(input_ids, attention_mask, token_type_ids, pixel_values)?;
        let last = states
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("no layers".into()))?;
        Ok((logits, last))
    }

    /// [`Self::forward`] plus the image tokens' states `[B, 1 + grid^2, hidden]`
    /// after every layer: entry `i < layers - 1` is the residual stream after
    /// layer `i`, the last entry the final-layer, layer-normed states of
    /// [`Self::forward_with_patches`].
    pub fn forward_with_layers(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        pixel_values: &Tensor,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (b, l) = input_ids.dims2()?;
        let h = self.word.dim(1)?;
        let (_, _, hh, ww) = pixel_values.dims4()?;
        if hh != self.grid * self.patch || ww != self.grid * self.patch {
            candle_core::bail!(
                "twin expects {0}x{0} images, got {hh}x{ww}",
                self.grid * self.patch
            );
        }
        let flat = |ids: &Tensor, table: &Tensor| -> Result<Tensor> {
            table
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, l, h))
        };
        let text = flat(input_ids, &self.word)?
            .broadcast_add(&self.text_pos.narrow(0, 0, l)?.unsqueeze(0)?)?
            .add(&flat(token_type_ids, &self.text_type)?)?;
        let text = self
            .text_ln
            .forward(&text)?
            .broadcast_add(&self.modality.i(0)?)?;
        let w2 = self.patch_w.reshape((h, ()))?;
        let x = patches(pixel_values, self.patch)?
            .broadcast_matmul(&w2.t()?)?
            .broadcast_add(&self.patch_b)?;
        let x = x.broadcast_add(&self.pos.narrow(1, 1, self.grid * self.grid)?)?;
        let cls = (self.cls.squeeze(0)?.squeeze(0)? + self.pos.i((0, 0))?)?
            .reshape((1, 1, h))?
            .repeat((b, 1, 1))?;
        let img = Tensor::cat(&[cls, x], 1)?.broadcast_add(&self.modality.i(1)?)?;
        let mut xs = Tensor::cat(&[text, img], 1)?;
        let n_img = 1 + self.grid * self.grid;
        let ones = Tensor::ones((b, n_img), DType::F32, input_ids.device())?;
        let mask = additive(&Tensor::cat(
            &[attention_mask.to_dtype(DType::F32)?, ones],
            1,
        )?)?;
        let mut per_layer = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            xs = layer.forward(&xs, Some(&mask))?;
            if i + 1 < self.layers.len() {
                per_layer.push(xs.narrow(1, l, n_img)?);
            }
        }
        let xs = self.final_ln.forward(&xs)?;
        let pooled = self.pooler.forward(&xs.i((.., 0))?)?.tanh()?;
        let y = self
            .cls1
            .forward(&self.cls0.forward(&pooled)?)?
            .gelu_erf()?;
        per_layer.push(xs.narrow(1, l, n_img)?);
        Ok((self.cls3.forward(&y)?, per_layer))
    }
}

/// Training twin of `ClipModel` (names `text_model.*`, `vision_model.*`,
/// `visual_projection`, `text_projection`, `logit_scale`).
#[derive(Debug, Clone)]
pub struct ClipTwin {
    tok: Tensor,
    tpos: Tensor,
    tlayers: Vec<PreLnLayer>,
    tfinal: TwinLayerNorm,
    class_emb: Tensor,
    patch_w: Tensor,
    vpos: Tensor,
    pre_ln: TwinLayerNorm,
    vlayers: Vec<PreLnLayer>,
    post_ln: TwinLayerNorm,
    vproj: TwinLinear,
    tproj: TwinLinear,
    logit_scale: Tensor,
    patch: usize,
}

impl ClipTwin {
    pub fn new(cfg: &ClipConfig, vb: VarBuilder) -> Result<Self> {
        let t = &cfg.text_config;
        let v = &cfg.vision_config;
        let tm = vb.pp("text_model");
        let vm = vb.pp("vision_model");
        let n = (v.image_size / v.patch_size).pow(2);
        let p = v.patch_size;
        Ok(Self {
            tok: randn(
                &tm,
                (t.vocab_size, t.hidden_size),
                "embeddings.token_embedding.weight",
            )?,
            tpos: randn(
                &tm,
                (t.max_position_embeddings, t.hidden_size),
                "embeddings.position_embedding.weight",
            )?,
            tlayers: (0..t.num_hidden_layers)
                .map(|i| {
                    PreLnLayer::clip(
                        t.hidden_size,
                        t.intermediate_size,
                        t.num_attention_heads,
                        t.layer_norm_eps,
                        t.hidden_act,
                        tm.pp(format!("encoder.layers.{i}")),
                    )
                })
                .collect::<Result<_>>()?,
            tfinal: TwinLayerNorm::new(t.hidden_size, t.layer_norm_eps, tm.pp("final_layer_norm"))?,
            class_emb: randn(&vm, v.hidden_size, "embeddings.class_embedding")?,
            patch_w: randn(
                &vm,
                (v.hidden_size, v.num_channels, p, p),
                "embeddings.patch_embedding.weight",
            )?,
            vpos: randn(
                &vm,
                (n + 1, v.hidden_size),
                "embeddings.position_embedding.weight",
            )?,
            pre_ln: TwinLayerNorm::new(v.hidden_size, v.layer_norm_eps, vm.pp("pre_layrnorm"))?,
            vlayers: (0..v.num_hidden_layers)
                .map(|i| {
                    PreLnLayer::clip(
                        v.hidden_size,
                        v.intermediate_size,
                        v.num_attention_heads,
                        v.layer_norm_eps,
                        v.hidden_act,
                        vm.pp(format!("encoder.layers.{i}")),
                    )
                })
                .collect::<Result<_>>()?,
            post_ln: TwinLayerNorm::new(v.hidden_size, v.layer_norm_eps, vm.pp("post_layernorm"))?,
            vproj: TwinLinear::new(
                v.hidden_size,
                cfg.projection_dim,
                false,
                vb.pp("visual_projection"),
            )?,
            tproj: TwinLinear::new(
                t.hidden_size,
                cfg.projection_dim,
                false,
                vb.pp("text_projection"),
            )?,
            logit_scale: vb.get_with_hints(
                (),
                "logit_scale",
                candle_nn::Init::Const(cfg.logit_scale_init_value),
            )?,
            patch: p,
        })
    }

    /// pixel_values [B,3,S,S] -> projected image embeddings [B,P] (not normalised).
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self.image_features_with_patches(pixel_values)?.0)
    }

    /// [`Self::image_features`] plus the last encoder layer's patch-token
    /// states `[B, grid^2, hidden]` (raster order; training-only auxiliary heads).
    pub fn image_features_with_patches(&self, pixel_values: &Tensor) -> Result<(Tensor, Tensor)> {
        let b = pixel_values.dim(0)?;
        let h = self.class_emb.dim(0)?;
        let w2 = self.patch_w.reshape((h, ()))?;
        let x = patches(pixel_values, self.patch)?.broadcast_matmul(&w2.t()?)?;
        let cls = self.class_emb.reshape((1, 1, h))?.repeat((b, 1, 1))?;
        let mut xs = self
            .pre_ln
            .forward(&Tensor::cat(&[cls, x], 1)?.broadcast_add(&self.vpos)?)?;
        for layer in &self.vlayers {
            xs = layer.forward(&xs, None)?;
        }
        let n = xs.dim(1)? - 1;
        let proj = self
            .vproj
            .forward(&self.post_ln.forward(&xs.i((.., 0))?)?)?;
        Ok((proj, xs.narrow(1, 1, n)?))
    }

    /// input_ids [B,L] u32, eos_positions [B] u32 -> text embeddings [B,P].
    pub fn text_features(&self, input_ids: &Tensor, eos_positions: &Tensor) -> Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        let h = self.tok.dim(1)?;
        let x = self
            .tok
            .index_select(&input_ids.flatten_all()?, 0)?
            .reshape((b, l, h))?;
        let mut xs = x.broadcast_add(&self.tpos.narrow(0, 0, l)?)?;
        let causal: Vec<f32> = (0..l)
            .flat_map(|i| (0..l).map(move |j| if j > i { -1e9 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(causal, (1, 1, l, l), input_ids.device())?;
        for layer in &self.tlayers {
            xs = layer.forward(&xs, Some(&mask))?;
        }
        let xs = self.tfinal.forward(&xs)?;
        let idx = eos_positions
            .to_dtype(DType::U32)?
            .reshape((b, 1, 1))?
            .repeat((1, 1, h))?;
        self.tproj
            .forward(&xs.gather(&idx.contiguous()?, 1)?.squeeze(1)?)
    }

    /// The raw (log) logit scale parameter, a scalar tensor.
    pub fn log_logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }
}

#[cfg(test)]
mod tests {
    use super::super::hf_files::{clip_config_json, vilt_config_json, ClipDemoSpec, ViltDemoSpec};
    use super::super::train::seeded_var_builder;
    use super::*;
    use crate::clip::ClipModel;
    use crate::test_util::max_diff;
    use crate::vilt::{ViltForQuestionAnswering, ViltInputs};
    use candle_core::Device;
    use candle_nn::VarMap;

    fn pixels(b: usize, s: usize, seed: u64) -> Tensor {
        let mut rng = super::super::rng::DemoRng::new(seed);
        let v: Vec<f32> = (0..b * 3 * s * s)
            .map(|_| rng.uniform_range(-1.0, 1.0) as f32)
            .collect();
        Tensor::from_vec(v, (b, 3, s, s), &Device::Cpu).unwrap()
    }

    #[test]
    fn vilt_twin_matches_inference_model_and_has_gradients() {
        let dev = Device::Cpu;
        let spec = ViltDemoSpec::default();
        let cfg: ViltConfig = serde_json::from_value(vilt_config_json(&spec)).unwrap();
        let map = VarMap::new();
        let twin = ViltVqaTwin::new(&cfg, seeded_var_builder(&map, 3, &dev)).unwrap();
        let model =
            ViltForQuestionAnswering::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))
                .unwrap();
        let ids = Tensor::new(&[[2u32, 5, 6, 7, 3], [2, 8, 3, 0, 0]], &dev).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &dev).unwrap();
        let types = ids.zeros_like().unwrap();
        let pix = pixels(2, spec.image_size, 1);
        let pmask = Tensor::ones((2, spec.image_size, spec.image_size), DType::U32, &dev).unwrap();
        let a = twin.forward(&ids, &mask, &types, &pix).unwrap();
        let inputs = ViltInputs {
            input_ids: &ids,
            attention_mask: &mask,
            token_type_ids: &types,
            pixel_values: &pix,
            pixel_mask: &pmask,
        };
        let b = model.forward(&inputs).unwrap();
        assert!(
            max_diff(&a, &b) < 1e-4,
            "twin vs ViltForQuestionAnswering: {}",
            max_diff(&a, &b)
        );
        let grads = a.sum_all().unwrap().backward().unwrap();
        let with_grad = map
            .all_vars()
            .iter()
            .filter(|v| grads.get(v.as_tensor()).is_some())
            .count();
        assert_eq!(
            with_grad,
            map.all_vars().len(),
            "every parameter gets a gradient"
        );
    }

    #[test]
    fn clip_twin_matches_inference_model() {
        let dev = Device::Cpu;
        let spec = ClipDemoSpec::default();
        let cfg: ClipConfig = serde_json::from_value(clip_config_json(&spec)).unwrap();
        let map = VarMap::new();
        let twin = ClipTwin::new(&cfg, seeded_var_builder(&map, 4, &dev)).unwrap();
        let model = ClipModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev)).unwrap();
        let pix = pixels(2, spec.image_size, 2);
        let a = twin.image_features(&pix).unwrap();
        let b = model.get_image_features(&pix).unwrap();
        assert!(
            max_diff(&a, &b) < 1e-4,
            "image features differ by {}",
            max_diff(&a, &b)
        );
        let ids = Tensor::new(&[[20u32, 1, 2, 3, 21], [20, 4, 21, 21, 21]], &dev).unwrap();
        let eos = Tensor::new(&[4u32, 2], &dev).unwrap();
        let a = twin.text_features(&ids, &eos).unwrap();
        let b = model.get_text_features(&ids, &eos).unwrap();
        assert!(
            max_diff(&a, &b) < 1e-4,
            "text features differ by {}",
            max_diff(&a, &b)
        );
    }
}
