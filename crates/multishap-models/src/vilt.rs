//! ViLT (`ViltModel`, `ViltForQuestionAnswering`, `ViltForImageAndTextRetrieval`)
//! with Hugging Face parameter names and HF's `visual_embed` logic made deterministic.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};

use crate::activation::Activation;
use crate::layers::{
    additive_padding_mask_if_any, first_token, layer_norm, linear, patchify_matmul,
    FusedSelfAttention,
};

fn d_hidden() -> usize {
    768
}
fn d_layers() -> usize {
    12
}
fn d_heads() -> usize {
    12
}
fn d_inter() -> usize {
    3072
}
fn d_act() -> Activation {
    Activation::Gelu
}
fn d_eps() -> f64 {
    1e-12
}
fn d_image_size() -> usize {
    384
}
fn d_patch() -> usize {
    32
}
fn d_channels() -> usize {
    3
}
fn d_vocab() -> usize {
    30522
}
fn d_type_vocab() -> usize {
    2
}
fn d_modality() -> usize {
    2
}
fn d_max_pos() -> usize {
    40
}
fn d_max_image_length() -> i64 {
    -1
}
fn d_num_images() -> i64 {
    -1
}
fn d_true() -> bool {
    true
}

/// HF `ViltConfig` (defaults = HF's).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ViltConfig {
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    #[serde(default = "d_act")]
    pub hidden_act: Activation,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_image_size")]
    pub image_size: usize,
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    #[serde(default = "d_channels")]
    pub num_channels: usize,
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "d_modality")]
    pub modality_type_vocab_size: usize,
    #[serde(default = "d_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_max_image_length")]
    pub max_image_length: i64,
    #[serde(default = "d_num_images")]
    pub num_images: i64,
    #[serde(default = "d_true")]
    pub qkv_bias: bool,
    #[serde(default)]
    pub id2label: Option<HashMap<String, String>>,
    #[serde(default)]
    pub label2id: Option<HashMap<String, usize>>,
}

impl ViltConfig {
    /// Number of answer labels (from `id2label`).
    pub fn num_labels(&self) -> usize {
        self.id2label.as_ref().map(|m| m.len()).unwrap_or(0)
    }
}

/// Batched ViLT inputs; B = batch, L = text length, H,W = padded image size.
#[derive(Debug, Clone, Copy)]
pub struct ViltInputs<'a> {
    /// [B,L] u32
    pub input_ids: &'a Tensor,
    /// [B,L] u32 0/1
    pub attention_mask: &'a Tensor,
    /// [B,L] u32
    pub token_type_ids: &'a Tensor,
    /// [B,3,H,W] f32
    pub pixel_values: &'a Tensor,
    /// [B,H,W] u32 0/1
    pub pixel_mask: &'a Tensor,
}

/// Word + position + token-type embeddings and LayerNorm (`embeddings.text_embeddings`).
#[derive(Debug, Clone)]
struct TextEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Tensor, // [max_pos, H]
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

impl TextEmbeddings {
    fn new(c: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            word_embeddings: Embedding::new(
                vb.get((c.vocab_size, h), "word_embeddings.weight")?,
                h,
            ),
            position_embeddings: vb
                .get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            token_type_embeddings: Embedding::new(
                vb.get((c.type_vocab_size, h), "token_type_embeddings.weight")?,
                h,
            ),
            layer_norm: layer_norm(h, c.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> Result<Tensor> {
        let (_b, l) = input_ids.dims2()?;
        let max = self.position_embeddings.dim(0)?;
        if l > max {
            candle_core::bail!("text of {l} tokens is longer than the model's {max} positions")
        }
        let x = (self.word_embeddings.forward(input_ids)?
            + self.token_type_embeddings.forward(token_type_ids)?)?;
        let x = x.broadcast_add(&self.position_embeddings.narrow(0, 0, l)?)?;
        self.layer_norm.forward(&x)
    }
}

/// Bilinear interpolation matrix [out, inp] as torch's `align_corners=True`.
fn align_corners_matrix(out: usize, inp: usize) -> Vec<f32> {
    let mut a = vec![0f32; out * inp];
    let scale = if out > 1 {
        (inp as f32 - 1.0) / (out as f32 - 1.0)
    } else {
        0.0
    };
    for o in 0..out {
        let src = scale * o as f32;
        let i0 = (src.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let l1 = src - i0 as f32;
        a[o * inp + i0] += 1.0 - l1;
        a[o * inp + i1] += l1;
    }
    a
}

/// How the patches of each image are selected (host-side bookkeeping of HF's
/// `visual_embed`, made deterministic).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchSelection {
    /// patch grid of the padded batch
    pub grid: (usize, usize),
    /// valid patch rows/cols (x_h, x_w) per image
    pub valid_hw: Vec<(usize, usize)>,
    /// selected flat patch index (raster order in `grid`) per image, each of length `len`
    pub selected: Vec<Vec<u32>>,
    /// 1 for a real patch, 0 for padding, per image
    pub mask: Vec<Vec<u32>>,
    pub len: usize,
}

/// Computes HF's patch selection from a pixel mask [B,H,W] on the host.
///
/// HF nearest-downsamples the pixel mask to the patch grid, keeps all valid patches
/// (with `max_image_length = -1`) and pads each image to the batch maximum with
/// patches drawn at random among the non-valid ones. Attention masks those padding
/// patches out, so which ones are drawn changes nothing; we take them in raster
/// order. The order of valid patches (HF permutes them at random with
/// `torch.multinomial`) does not change any output either (position embeddings
/// travel with their patch). When a positive `max_image_length` is smaller than the
/// number of valid patches, HF drops patches at random; we keep them all (with a
/// warning) so that results are deterministic.
pub fn select_patches(
    pixel_mask: &[u32],
    b: usize,
    mh: usize,
    mw: usize,
    gh: usize,
    gw: usize,
    max_image_length: i64,
) -> PatchSelection {
    let sh = mh as f32 / gh as f32;
    let sw = mw as f32 / gw as f32;
    let mut valid_hw = Vec::with_capacity(b);
    let mut valid = Vec::with_capacity(b);
    let mut invalid = Vec::with_capacity(b);
    for bi in 0..b {
        let m = &pixel_mask[bi * mh * mw..(bi + 1) * mh * mw];
        let pm: Vec<bool> = (0..gh * gw)
            .map(|k| {
                let (i, j) = (k / gw, k % gw);
                let si = ((i as f32 * sh).floor() as usize).min(mh - 1);
                let sj = ((j as f32 * sw).floor() as usize).min(mw - 1);
                m[si * mw + sj] != 0
            })
            .collect();
        let xh = (0..gh).filter(|&i| pm[i * gw]).count();
        let xw = (0..gw).filter(|&j| pm[j]).count();
        valid_hw.push((xh, xw));
        valid.push(
            (0..gh * gw)
                .filter(|&k| pm[k])
                .map(|k| k as u32)
                .collect::<Vec<_>>(),
        );
        invalid.push(
            (0..gh * gw)
                .filter(|&k| !pm[k])
                .map(|k| k as u32)
                .collect::<Vec<_>>(),
        );
    }
    let max_eff = valid_hw.iter().map(|(h, w)| h * w).max().unwrap_or(0);
    let max_valid = valid.iter().map(|v| v.len()).max().unwrap_or(0);
    if max_image_length > 0 && (max_image_length as usize) < max_valid {
        log::warn!(
            "max_image_length={max_image_length} < {max_valid} valid patches: HF would drop \
             patches at random; keeping all of them for deterministic results"
        );
    }
    let len = max_eff.max(max_valid);
    let mut selected = Vec::with_capacity(b);
    let mut mask = Vec::with_capacity(b);
    for bi in 0..b {
        let mut s = valid[bi].clone();
        let mut m = vec![1u32; s.len()];
        let mut k = 0;
        while s.len() < len {
            let inv = &invalid[bi];
            s.push(inv[k % inv.len()]);
            m.push(0);
            k += 1;
        }
        selected.push(s);
        mask.push(m);
    }
    PatchSelection {
        grid: (gh, gw),
        valid_hw,
        selected,
        mask,
        len,
    }
}

/// `vilt.embeddings`
#[derive(Debug, Clone)]
struct ViltEmbeddings {
    text_embeddings: TextEmbeddings,
    cls_token: Tensor,           // [1,1,H]
    position_embeddings: Tensor, // [1, 1+pd*pd, H]
    patch_weight: Tensor,        // [H, C*p*p]
    patch_bias: Tensor,          // [H]
    token_type_embeddings: Embedding,
    patch_size: usize,
    patch_dim: usize,
    max_image_length: i64,
}

impl ViltEmbeddings {
    fn new(c: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = c.hidden_size;
        let p = c.patch_size;
        let pd = c.image_size / p;
        Ok(Self {
            text_embeddings: TextEmbeddings::new(c, vb.pp("text_embeddings"))?,
            cls_token: vb.get((1, 1, h), "cls_token")?,
            position_embeddings: vb.get((1, pd * pd + 1, h), "position_embeddings")?,
            patch_weight: vb
                .get(
                    (h, c.num_channels, p, p),
                    "patch_embeddings.projection.weight",
                )?
                .reshape((h, c.num_channels * p * p))?,
            patch_bias: vb.get(h, "patch_embeddings.projection.bias")?,
            token_type_embeddings: Embedding::new(
                vb.get(
                    (c.modality_type_vocab_size, h),
                    "token_type_embeddings.weight",
                )?,
                h,
            ),
            patch_size: p,
            patch_dim: pd,
            max_image_length: c.max_image_length,
        })
    }

    /// Interpolated spatial position embeddings for a valid area of (h, w)
    /// patches, zero-padded to the grid (gh, gw): [gh*gw, H].
    fn interpolated_pos(&self, h: usize, w: usize, gh: usize, gw: usize) -> Result<Tensor> {
        let pd = self.patch_dim;
        let hid = self.position_embeddings.dim(2)?;
        let dev = self.position_embeddings.device();
        let dtype = self.position_embeddings.dtype();
        let spatial = self
            .position_embeddings
            .narrow(1, 1, pd * pd)?
            .reshape((pd, pd * hid))?;
        let ah = Tensor::from_vec(align_corners_matrix(h, pd), (h, pd), dev)?.to_dtype(dtype)?;
        let aw = Tensor::from_vec(align_corners_matrix(w, pd), (w, pd), dev)?.to_dtype(dtype)?;
        let t1 = ah.matmul(&spatial)?.reshape((h, pd, hid))?; // rows interpolated
        let grid = aw.broadcast_left(h)?.matmul(&t1)?; // [h, w, H]
        let grid = if h < gh || w < gw {
            grid.pad_with_zeros(0, 0, gh - h)?
                .pad_with_zeros(1, 0, gw - w)?
        } else {
            grid
        };
        grid.reshape((gh * gw, hid))
    }

    /// -> (image embeddings [B,1+N,H] incl. cls and position, mask [B,1+N] u32)
    fn visual_embed(&self, pixel_values: &Tensor, pixel_mask: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, _c, hh, ww) = pixel_values.dims4()?;
        let (mb, mh, mw) = pixel_mask.dims3()?;
        if mb != b || mh != hh || mw != ww {
            candle_core::bail!(
                "pixel_mask {:?} does not fit pixel_values {:?}",
                pixel_mask.dims(),
                pixel_values.dims()
            )
        }
        let (patches, gh, gw) = patchify_matmul(
            pixel_values,
            &self.patch_weight,
            Some(&self.patch_bias),
            self.patch_size,
        )?;
        let hid = patches.dim(2)?;
        let dev = patches.device().clone();
        // `select_patches` reads the mask at one pixel per patch: pick those pixels on the
        // device and copy only [B, gh, gw] to the host (not [B, H, W]: 1024x less at 384 px).
        let pick = |n: usize, g: usize| -> Vec<u32> {
            let scale = n as f32 / g as f32;
            (0..g)
                .map(|i| ((i as f32 * scale).floor() as usize).min(n - 1) as u32)
                .collect()
        };
        let rows = Tensor::new(pick(mh, gh), pixel_mask.device())?;
        let cols = Tensor::new(pick(mw, gw), pixel_mask.device())?;
        let host_mask: Vec<u32> = pixel_mask
            .to_dtype(DType::U32)?
            .index_select(&rows, 1)?
            .index_select(&cols, 2)?
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_vec1()?;
        let sel = select_patches(&host_mask, b, gh, gw, gh, gw, self.max_image_length);
        if sel.len == 0 {
            candle_core::bail!("pixel_mask has no valid patch")
        }
        // Patch tokens.
        let idx: Vec<u32> = sel
            .selected
            .iter()
            .enumerate()
            .flat_map(|(bi, s)| s.iter().map(move |&k| (bi * gh * gw) as u32 + k))
            .collect();
        let idx = Tensor::from_vec(idx, b * sel.len, &dev)?;
        let x = patches
            .reshape((b * gh * gw, hid))?
            .index_select(&idx, 0)?
            .reshape((b, sel.len, hid))?;
        // Position embeddings: one interpolated grid per distinct valid size.
        let mut uniq: Vec<(usize, usize)> = Vec::new();
        let mut which = Vec::with_capacity(b);
        for hw in &sel.valid_hw {
            let u = match uniq.iter().position(|x| x == hw) {
                Some(u) => u,
                None => {
                    uniq.push(*hw);
                    uniq.len() - 1
                }
            };
            which.push(u);
        }
        let grids = uniq
            .iter()
            .map(|&(h, w)| self.interpolated_pos(h.max(1), w.max(1), gh, gw))
            .collect::<Result<Vec<_>>>()?;
        let grids = Tensor::cat(&grids, 0)?;
        let pidx: Vec<u32> = sel
            .selected
            .iter()
            .enumerate()
            .flat_map(|(bi, s)| {
                let off = (which[bi] * gh * gw) as u32;
                s.iter().map(move |&k| off + k)
            })
            .collect();
        let pidx = Tensor::from_vec(pidx, b * sel.len, &dev)?;
        let pos = grids.index_select(&pidx, 0)?.reshape((b, sel.len, hid))?;
        let cls = self.cls_token.broadcast_as((b, 1, hid))?;
        let pos0 = self
            .position_embeddings
            .narrow(1, 0, 1)?
            .broadcast_as((b, 1, hid))?;
        let x = (Tensor::cat(&[&cls, &x], 1)? + Tensor::cat(&[&pos0, &pos], 1)?)?;
        let mut m = Vec::with_capacity(b * (1 + sel.len));
        for mm in &sel.mask {
            m.push(1u32);
            m.extend_from_slice(mm);
        }
        let m = Tensor::from_vec(m, (b, 1 + sel.len), &dev)?;
        Ok((x, m))
    }

    /// -> (embeddings [B, L+1+N, H], mask [B, L+1+N] u32)
    fn forward(&self, inputs: &ViltInputs, dtype: DType) -> Result<(Tensor, Tensor)> {
        let dev = self.cls_token.device();
        let ids = inputs.input_ids.to_device(dev)?;
        let tt = inputs.token_type_ids.to_device(dev)?;
        let (b, l) = ids.dims2()?;
        let text = self.text_embeddings.forward(&ids, &tt)?;
        let pv = inputs.pixel_values.to_device(dev)?.to_dtype(dtype)?;
        let pm = inputs.pixel_mask.to_device(dev)?;
        let (img, img_mask) = self.visual_embed(&pv, &pm)?;
        let hid = text.dim(2)?;
        let modality = self.token_type_embeddings.embeddings();
        let text = text.broadcast_add(&modality.narrow(0, 0, 1)?.reshape((1, 1, hid))?)?;
        let img = img.broadcast_add(&modality.narrow(0, 1, 1)?.reshape((1, 1, hid))?)?;
        let emb = Tensor::cat(&[&text, &img], 1)?;
        let am = inputs.attention_mask.to_device(dev)?.to_dtype(DType::U32)?;
        if am.dims2()? != (b, l) {
            candle_core::bail!(
                "attention_mask {:?} does not fit input_ids [{b}, {l}]",
                am.dims()
            )
        }
        let mask = Tensor::cat(&[&am, &img_mask], 1)?;
        Ok((emb, mask))
    }
}

/// `encoder.layer.{i}` (ViT-style pre-LayerNorm block).
#[derive(Debug, Clone)]
struct ViltLayer {
    layernorm_before: LayerNorm,
    attention: FusedSelfAttention,
    layernorm_after: LayerNorm,
    intermediate: Linear,
    output: Linear,
    act: Activation,
}

impl ViltLayer {
    fn new(c: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = c.hidden_size;
        let a = vb.pp("attention");
        let out = linear(h, h, true, a.pp("output").pp("dense"))?;
        let sa = a.pp("attention");
        Ok(Self {
            layernorm_before: layer_norm(h, c.layer_norm_eps, vb.pp("layernorm_before"))?,
            attention: FusedSelfAttention::new(
                h,
                c.num_attention_heads,
                c.qkv_bias,
                sa.pp("query"),
                sa.pp("key"),
                sa.pp("value"),
                out,
            )?,
            layernorm_after: layer_norm(h, c.layer_norm_eps, vb.pp("layernorm_after"))?,
            intermediate: linear(
                h,
                c.intermediate_size,
                true,
                vb.pp("intermediate").pp("dense"),
            )?,
            output: linear(c.intermediate_size, h, true, vb.pp("output").pp("dense"))?,
            act: c.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let a = self
            .attention
            .forward(&self.layernorm_before.forward(xs)?, mask)?;
        let xs = (a + xs)?;
        let h = crate::cpu_fast::linear_act(
            &self.layernorm_after.forward(&xs)?,
            &self.intermediate,
            Some(self.act),
        )?;
        let h = crate::cpu_fast::linear_act(&h, &self.output, None)?;
        h + xs
    }
}

/// HF `ViltModel` (with pooler).
#[derive(Debug, Clone)]
pub struct ViltModel {
    embeddings: ViltEmbeddings,
    layers: Vec<ViltLayer>,
    layernorm: LayerNorm,
    pooler: Linear,
    cfg: ViltConfig,
    dtype: DType,
}

impl ViltModel {
    pub fn new(cfg: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let lv = vb.pp("encoder").pp("layer");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| ViltLayer::new(cfg, lv.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: ViltEmbeddings::new(cfg, vb.pp("embeddings"))?,
            layers,
            layernorm: layer_norm(h, cfg.layer_norm_eps, vb.pp("layernorm"))?,
            // pooler and heads run in f32 whatever the model dtype: their cost is negligible and
            // the scores the estimators difference are not rounded to bf16 / f16 steps
            pooler: linear(
                h,
                h,
                true,
                vb.pp("pooler").pp("dense").set_dtype(DType::F32),
            )?,
            cfg: cfg.clone(),
            dtype: vb.dtype(),
        })
    }

    pub fn config(&self) -> &ViltConfig {
        &self.cfg
    }

    /// Runs the encoder in the model dtype: (last_hidden_state, pooled).
    fn forward_native(&self, inputs: &ViltInputs) -> Result<(Tensor, Tensor)> {
        let (mut xs, mask) = self.embeddings.forward(inputs, self.dtype)?;
        let add = additive_padding_mask_if_any(&mask, self.dtype)?;
        for l in &self.layers {
            xs = l.forward(&xs, add.as_ref())?;
        }
        let xs = self.layernorm.forward(&xs)?;
        let pooled = self
            .pooler
            .forward(&first_token(&xs)?.to_dtype(DType::F32)?)?
            .tanh()?;
        Ok((xs, pooled))
    }

    /// -> (last_hidden_state [B,T,H], pooled [B,H]), f32. T = L + 1 + N image patches.
    pub fn forward(&self, inputs: &ViltInputs) -> Result<(Tensor, Tensor)> {
        let (h, p) = self.forward_native(inputs)?;
        Ok((h.to_dtype(DType::F32)?, p.to_dtype(DType::F32)?))
    }

    /// Pooled output only [B,H], f32 (the pooler runs in f32 whatever the model dtype).
    pub fn pooled(&self, inputs: &ViltInputs) -> Result<Tensor> {
        Ok(self.forward_native(inputs)?.1)
    }
}

/// HF `ViltForQuestionAnswering`.
#[derive(Debug, Clone)]
pub struct ViltForQuestionAnswering {
    vilt: ViltModel,
    fc1: Linear,
    norm: LayerNorm,
    fc2: Linear,
    id2label: Vec<String>,
    label2id: HashMap<String, usize>,
}

/// Labels in id order from `id2label` (HF default `LABEL_i` x2 when absent).
fn labels_of(cfg: &ViltConfig) -> Result<Vec<String>> {
    match &cfg.id2label {
        None => Ok(vec!["LABEL_0".into(), "LABEL_1".into()]),
        Some(m) => {
            let mut v = vec![None; m.len()];
            for (k, lab) in m {
                let i: usize = k.parse().map_err(|_| {
                    candle_core::Error::Msg(format!("id2label key {k:?} is not an integer"))
                })?;
                if i >= v.len() {
                    candle_core::bail!("id2label ids are not 0..{}", m.len())
                }
                v[i] = Some(lab.clone());
            }
            Ok(v.into_iter().map(|x| x.unwrap_or_default()).collect())
        }
    }
}

impl ViltForQuestionAnswering {
    pub fn new(cfg: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let id2label = labels_of(cfg)?;
        let n = id2label.len();
        let label2id = id2label
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect();
        // the head runs in f32 whatever the model dtype (see ViltModel::new)
        let c = vb.pp("classifier").set_dtype(DType::F32);
        Ok(Self {
            vilt: ViltModel::new(cfg, vb.pp("vilt"))?,
            fc1: linear(h, 2 * h, true, c.pp(0))?,
            norm: layer_norm(2 * h, 1e-5, c.pp(1))?,
            fc2: linear(2 * h, n, true, c.pp(3))?,
            id2label,
            label2id,
        })
    }

    pub fn vilt(&self) -> &ViltModel {
        &self.vilt
    }

    /// -> logits [B, num_labels] f32.
    pub fn forward(&self, inputs: &ViltInputs) -> Result<Tensor> {
        let pooled = self.vilt.pooled(inputs)?;
        let x = self.norm.forward(&self.fc1.forward(&pooled)?)?.gelu_erf()?;
        self.fc2.forward(&x)?.to_dtype(DType::F32)
    }

    pub fn id2label(&self, i: usize) -> Option<&str> {
        self.id2label.get(i).map(|s| s.as_str())
    }

    pub fn label2id(&self, s: &str) -> Option<usize> {
        self.label2id.get(s).copied()
    }

    pub fn num_labels(&self) -> usize {
        self.id2label.len()
    }
}

/// HF `ViltForImageAndTextRetrieval`.
#[derive(Debug, Clone)]
pub struct ViltForImageAndTextRetrieval {
    vilt: ViltModel,
    rank_output: Linear,
}

impl ViltForImageAndTextRetrieval {
    pub fn new(cfg: &ViltConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            vilt: ViltModel::new(cfg, vb.pp("vilt"))?,
            rank_output: linear(
                cfg.hidden_size,
                1,
                true,
                vb.pp("rank_output").set_dtype(DType::F32),
            )?,
        })
    }

    pub fn vilt(&self) -> &ViltModel {
        &self.vilt
    }

    /// -> ITM logit [B] f32.
    pub fn forward(&self, inputs: &ViltInputs) -> Result<Tensor> {
        let pooled = self.vilt.pooled(inputs)?;
        self.rank_output
            .forward(&pooled)?
            .squeeze(1)?
            .to_dtype(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_corners_matrix_matches_endpoints() {
        let a = align_corners_matrix(3, 2);
        assert_eq!(a, vec![1.0, 0.0, 0.5, 0.5, 0.0, 1.0]);
        let a = align_corners_matrix(1, 4);
        assert_eq!(a, vec![1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn patch_selection_pads_with_masked_patches() {
        // image 0 fully valid 2x2 grid; image 1 only its top-left patch is valid
        let (mh, mw) = (4, 4);
        let mut m = vec![1u32; 2 * mh * mw];
        for i in 0..mh {
            for j in 0..mw {
                if i >= 2 || j >= 2 {
                    m[mh * mw + i * mw + j] = 0;
                }
            }
        }
        let s = select_patches(&m, 2, mh, mw, 2, 2, -1);
        assert_eq!(s.len, 4);
        assert_eq!(s.valid_hw, vec![(2, 2), (1, 1)]);
        assert_eq!(s.selected[0], vec![0, 1, 2, 3]);
        assert_eq!(s.selected[1], vec![0, 1, 2, 3]);
        assert_eq!(s.mask[1], vec![1, 0, 0, 0]);
    }
}
