//! Training of the demo models on generated data (used by
//! `examples/train_demo.rs` and `scripts/train-demo.sh`), and evaluation of
//! the training twins on held-out generated data.
//!
//! Masking noise: like the explainer, which greys out image patches (0.5 in
//! [0,1] pixel space), training greys out patches that contain no shape pixel
//! (each with probability `bg_patch_prob`, in a share `bg_mask_prob` of the
//! samples). The answer / caption stays correct, so the models learn that a
//! grey patch means "nothing here", and masked coalitions stay in distribution.
//! Patches with shape pixels are never masked in training. Words: CLIP masks
//! caption words as the explainer does (`clip_word_mask_prob`, the shipped
//! setting; a caption with a masked word is a less specific, still true
//! caption); ViLT masks template words (`word_mask_prob`) and the key word
//! (`key_word_mask_prob`, with `key_word_mask_uniform`: the masked question is
//! unanswerable), both on in the shipped model (examples/train_demo.rs).
//!
//! Auxiliary losses (training only): a linear head on the patch tokens' final
//! states predicts each patch's shape kind and colour ([`patch_targets`],
//! `aux_weight`); for ViLT optionally a multi-label head on the image CLS token
//! predicts which colour / kind pairs the scene holds (`content_weight`), and
//! a per-patch head predicts whether the patch lies on a shape the question
//! refers to ([`grounding_targets`], `ground_weight`). The
//! heads live in a separate `VarMap`, so `model.safetensors` holds exactly the
//! Hugging Face parameters. The per-patch loss is what made the shipped ViLT
//! learn shapes (same 4500 steps without it: shape-of at chance), the grounding
//! loss what lifted colour-of and the pointing game (see benches/RESULTS.md,
//! demo section).

use super::hf_files::{
    bert_tokenizer_json, clip_config_json, clip_tokenizer_json, vilt_config_json, write_clip_files,
    write_vilt_files, ClipDemoSpec, ViltDemoSpec,
};
use super::questions::{
    answer_labels, caption, content_key, generate_question, generate_question_weighted, Question,
    QuestionKind,
};
use super::rng::DemoRng;
use super::scene::{Colour, RenderedScene, Scene, SceneConfig, ShapeKind, ShapeMask};
use super::twin::{ClipTwin, ViltVqaTwin};
use crate::clip::ClipConfig;
use crate::vilt::ViltConfig;
use candle_core::{DType, Device, IndexOp, Shape, Tensor, D};
use candle_nn::{Init, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// ViLT's pixel normalisation (mean = std = 0.5).
pub const VILT_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
pub const VILT_STD: [f32; 3] = [0.5, 0.5, 0.5];
/// CLIP's pixel normalisation.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_5, 0.261_302_6, 0.275_777_1];
/// Seed of the held-out evaluation data (training uses the user's seed).
pub const EVAL_SEED: u64 = 0x5EED_E7A1_0000_0001;

/// Errors of demo training and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("config: {0}")]
    Config(#[from] serde_json::Error),
}

pub type DemoResult<T> = std::result::Result<T, DemoError>;

/// A `VarMap` whose random initialisation is a deterministic function of a
/// seed and the parameter name (candle's CPU generator cannot be seeded).
struct SeededVarMap {
    map: VarMap,
    seed: u64,
}

fn name_hash(name: &str) -> u64 {
    // FNV-1a
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl candle_nn::var_builder::SimpleBackend for SeededVarMap {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut data = self
            .map
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned VarMap".into()))?;
        if let Some(v) = data.get(name) {
            if v.shape() != &s {
                candle_core::bail!("shape mismatch for {name}: {:?} vs {s:?}", v.shape());
            }
            return Ok(v.as_tensor().clone());
        }
        let var = match h {
            Init::Randn { mean, stdev } => {
                let mut rng = DemoRng::for_stream(self.seed, name_hash(name));
                let vals: Vec<f32> = (0..s.elem_count())
                    .map(|_| (mean + stdev * rng.normal()) as f32)
                    .collect();
                candle_core::Var::from_tensor(&Tensor::from_vec(vals, s, dev)?.to_dtype(dtype)?)?
            }
            Init::Const(c) => candle_core::Var::from_tensor(&(Tensor::ones(s, dtype, dev)? * c)?)?,
            other => other.var(s, dtype, dev)?,
        };
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("no tensor {name} in a training VarMap without a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}

/// VarBuilder over `map` whose random inits are deterministic in `seed`.
pub fn seeded_var_builder(map: &VarMap, seed: u64, dev: &Device) -> VarBuilder<'static> {
    let backend: Box<dyn candle_nn::var_builder::SimpleBackend> = Box::new(SeededVarMap {
        map: map.clone(),
        seed,
    });
    VarBuilder::from_backend(backend, DType::F32, dev.clone())
}

/// RGB image -> CHW floats in [0,1].
pub fn image_unit_chw(img: &image::RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = p.0[c] as f32 / 255.0;
        }
    }
    out
}

/// Grey out (0.5) every `patch x patch` cell without shape pixels with
/// probability `p`. Returns the number of patches greyed.
pub fn grey_out_background_patches(
    chw: &mut [f32],
    size: u32,
    patch: u32,
    rendered: &RenderedScene,
    rng: &mut DemoRng,
    p: f64,
) -> usize {
    let g = size / patch;
    let n = (size * size) as usize;
    let mut count = 0;
    for r in 0..g {
        for c in 0..g {
            let (x0, y0) = (c * patch, r * patch);
            let empty = rendered
                .masks
                .iter()
                .all(|m| m.area_in_box(x0, y0, x0 + patch, y0 + patch) == 0);
            if empty && rng.bernoulli(p) {
                count += 1;
                for y in y0..y0 + patch {
                    for x in x0..x0 + patch {
                        for ch in 0..3 {
                            chw[ch * n + (y * size + x) as usize] = 0.5;
                        }
                    }
                }
            }
        }
    }
    count
}

/// Keep mask `[B, 1, S, S]` (1 keep, 0 grey) for
/// [`TrainConfig::distractor_mask_prob`]: in a share `prob` of the colour-of /
/// shape-of examples with more than one shape, each patch holding pixels of a
/// non-target shape and none of the target is greyed with probability 0.5.
fn distractor_keep_mask(
    examples: &[VqaExample],
    size: u32,
    patch: u32,
    rng: &mut DemoRng,
    prob: f64,
    dev: &Device,
) -> DemoResult<Tensor> {
    let g = size / patch;
    let n = (size * size) as usize;
    let mut keep = vec![1f32; examples.len() * n];
    for (e, ex) in examples.iter().enumerate() {
        let masks = &ex.rendered.masks;
        let about_one = ex.question.kind.is_about_one_shape();
        let Some(target) = ex.question.target.filter(|_| about_one && masks.len() > 1) else {
            continue;
        };
        if !rng.bernoulli(prob) {
            continue;
        }
        let row = &mut keep[e * n..(e + 1) * n];
        for r in 0..g {
            for c in 0..g {
                let (x0, y0) = (c * patch, r * patch);
                let area = |m: &ShapeMask| m.area_in_box(x0, y0, x0 + patch, y0 + patch);
                let on_target = area(&masks[target]) > 0;
                let on_other = masks
                    .iter()
                    .enumerate()
                    .any(|(k, m)| k != target && area(m) > 0);
                if on_other && !on_target && rng.bernoulli(0.5) {
                    for y in y0..y0 + patch {
                        for x in x0..x0 + patch {
                            row[(y * size + x) as usize] = 0.0;
                        }
                    }
                }
            }
        }
    }
    Ok(Tensor::from_vec(
        keep,
        (examples.len(), 1, size as usize, size as usize),
        dev,
    )?)
}

/// Normalise CHW [0,1] values in place: (x - mean) / std per channel.
pub fn normalise(chw: &mut [f32], mean: [f32; 3], std: [f32; 3]) {
    let n = chw.len() / 3;
    for c in 0..3 {
        for v in &mut chw[c * n..(c + 1) * n] {
            *v = (*v - mean[c]) / std[c];
        }
    }
}

/// One generated VQA example.
#[derive(Debug, Clone)]
pub struct VqaExample {
    pub scene: Scene,
    pub rendered: RenderedScene,
    pub question: Question,
}

/// Example `index` of the VQA data drawn with `seed` (independent of other indices).
pub fn vqa_example(seed: u64, index: u64, cfg: &SceneConfig) -> VqaExample {
    let mut rng = DemoRng::for_stream(seed, index);
    let scene = Scene::generate(&mut rng, cfg);
    let question = generate_question(&mut rng, &scene);
    let rendered = scene.render();
    VqaExample {
        scene,
        rendered,
        question,
    }
}

/// Training example `index`: like [`vqa_example`] but the question family is
/// drawn with relative `weights` (colour-of, shape-of, exists, count).
pub fn vqa_train_example(
    seed: u64,
    index: u64,
    cfg: &SceneConfig,
    weights: [f64; 4],
) -> VqaExample {
    let mut rng = DemoRng::for_stream(seed, index);
    let scene = Scene::generate(&mut rng, cfg);
    let question = generate_question_weighted(&mut rng, &scene, weights);
    let rendered = scene.render();
    VqaExample {
        scene,
        rendered,
        question,
    }
}

/// Number of per-patch shape-kind classes (none + kinds) of the auxiliary head.
pub const AUX_KINDS: usize = 1 + ShapeKind::ALL.len();
/// Number of per-patch colour classes (none + colours) of the auxiliary head.
pub const AUX_COLOURS: usize = 1 + Colour::ALL.len();
/// Prefix of the training-only auxiliary head's parameters (never saved).
pub const AUX_PREFIX: &str = "aux_patch_head";

/// Per patch, raster order: the index into `Scene::shapes` of the shape
/// covering most of the patch, when it covers at least 10% of it (the pointing
/// game's hit threshold); `None` for background patches.
pub fn patch_owners(scene: &Scene, rendered: &RenderedScene, patch: u32) -> Vec<Option<usize>> {
    let g = scene.image_size / patch;
    let min_area = ((patch * patch) as usize / 10).max(1);
    let mut owners = Vec::with_capacity((g * g) as usize);
    for r in 0..g {
        for c in 0..g {
            let (x0, y0) = (c * patch, r * patch);
            let best = rendered
                .masks
                .iter()
                .enumerate()
                .map(|(i, m)| (m.area_in_box(x0, y0, x0 + patch, y0 + patch), i))
                .max();
            owners.push(match best {
                Some((a, i)) if a >= min_area => Some(i),
                _ => None,
            });
        }
    }
    owners
}

/// Per-patch targets of the auxiliary head, raster order: the kind (0 = none,
/// 1 + index in `ShapeKind::ALL`) and colour (0 = none, 1 + index in
/// `Colour::ALL`) of the patch's owner ([`patch_owners`]).
pub fn patch_targets(scene: &Scene, rendered: &RenderedScene, patch: u32) -> (Vec<u32>, Vec<u32>) {
    patch_owners(scene, rendered, patch)
        .into_iter()
        .map(|owner| match owner {
            Some(i) => {
                let s = &scene.shapes[i];
                let kind = ShapeKind::ALL.iter().position(|k| *k == s.kind);
                let colour = Colour::ALL.iter().position(|k| *k == s.colour);
                (1 + kind.unwrap_or(0) as u32, 1 + colour.unwrap_or(0) as u32)
            }
            None => (0, 0),
        })
        .unzip()
}

/// The shapes a question refers to: the one shape of a colour-of / shape-of
/// question, every shape matching an "is there" question (none for "no"),
/// every shape for "how many".
pub fn referenced_shapes(scene: &Scene, question: &Question) -> Vec<usize> {
    let refers = |s: &super::scene::Shape| match question.kind {
        QuestionKind::ColourOf(k) => s.kind == k,
        QuestionKind::ShapeOf(c) => s.colour == c,
        QuestionKind::Exists(c, k) => s.colour == c && s.kind == k,
        QuestionKind::Count => true,
    };
    (0..scene.shapes.len())
        .filter(|&i| refers(&scene.shapes[i]))
        .collect()
}

/// Per-patch grounding targets, raster order: 1 where the patch's owner
/// ([`patch_owners`]) is a shape the question refers to ([`referenced_shapes`]).
pub fn grounding_targets(
    scene: &Scene,
    rendered: &RenderedScene,
    question: &Question,
    patch: u32,
) -> Vec<f32> {
    let referenced = referenced_shapes(scene, question);
    patch_owners(scene, rendered, patch)
        .into_iter()
        .map(|o| f32::from(u8::from(o.is_some_and(|i| referenced.contains(&i)))))
        .collect()
}

/// Training-only linear head on patch-token states predicting the per-patch
/// kind and colour ([`patch_targets`]); returns the summed cross-entropies.
struct AuxPatchHead {
    lin: super::twin::TwinLinear,
}

impl AuxPatchHead {
    fn new(hidden: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            lin: super::twin::TwinLinear::new(hidden, AUX_KINDS + AUX_COLOURS, true, vb)?,
        })
    }

    /// (kind cross-entropy, colour cross-entropy), means over patches.
    fn loss(
        &self,
        states: &Tensor,
        kinds: &[u32],
        colours: &[u32],
    ) -> DemoResult<(Tensor, Tensor)> {
        let (b, n, h) = states.dims3()?;
        let y = self.lin.forward(&states.reshape((b * n, h))?)?;
        let k = cross_entropy(&y.narrow(1, 0, AUX_KINDS)?, kinds)?;
        let c = cross_entropy(&y.narrow(1, AUX_KINDS, AUX_COLOURS)?, colours)?;
        Ok((k, c))
    }
}

/// Multi-label content targets [B, colours x kinds]: 1 where the scene has a
/// shape of that colour and kind.
fn content_targets<'a>(
    scenes: impl Iterator<Item = &'a Scene>,
    dev: &Device,
) -> DemoResult<Tensor> {
    let nk = ShapeKind::ALL.len();
    let mut v = Vec::new();
    let mut b = 0;
    for scene in scenes {
        b += 1;
        let mut row = vec![0f32; Colour::ALL.len() * nk];
        for s in &scene.shapes {
            let c = Colour::ALL.iter().position(|x| *x == s.colour).unwrap_or(0);
            let k = ShapeKind::ALL
                .iter()
                .position(|x| *x == s.kind)
                .unwrap_or(0);
            row[c * nk + k] = 1.0;
        }
        v.extend(row);
    }
    Ok(Tensor::from_vec(v, (b, Colour::ALL.len() * nk), dev)?)
}

/// Mean binary cross-entropy with logits (numerically stable form).
fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> DemoResult<Tensor> {
    // max(x,0) - x*t + log(1 + exp(-|x|))
    let relu = logits.relu()?;
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok(((relu - (logits * targets)?)? + softplus)?.mean_all()?)
}

/// Per-patch targets of a batch, concatenated.
fn batch_patch_targets<'a>(
    items: impl Iterator<Item = (&'a Scene, &'a RenderedScene)>,
    patch: usize,
) -> (Vec<u32>, Vec<u32>) {
    let mut kinds = Vec::new();
    let mut colours = Vec::new();
    for (scene, rendered) in items {
        let (k, c) = patch_targets(scene, rendered, patch as u32);
        kinds.extend(k);
        colours.extend(c);
    }
    (kinds, colours)
}

/// One generated captioned image.
#[derive(Debug, Clone)]
pub struct CaptionExample {
    pub scene: Scene,
    pub rendered: RenderedScene,
    pub caption: String,
}

/// Example `index` of the caption data drawn with `seed`.
pub fn caption_example(seed: u64, index: u64, cfg: &SceneConfig) -> CaptionExample {
    let mut rng = DemoRng::for_stream(seed ^ 0xC1A9, index);
    let scene = Scene::generate(&mut rng, cfg);
    let caption = caption(&mut rng, &scene);
    let rendered = scene.render();
    CaptionExample {
        scene,
        rendered,
        caption,
    }
}

/// Retrieval groups for evaluation: `groups` groups of `size` captioned images
/// whose contents (colour/shape multisets) differ, so exactly one caption of a
/// group is correct for each image.
pub fn retrieval_groups(
    seed: u64,
    groups: usize,
    size: usize,
    cfg: &SceneConfig,
) -> Vec<Vec<CaptionExample>> {
    let mut out = Vec::with_capacity(groups);
    let mut index = 0u64;
    for _ in 0..groups {
        let mut group: Vec<CaptionExample> = Vec::with_capacity(size);
        while group.len() < size {
            let ex = caption_example(seed, index, cfg);
            index += 1;
            let key = content_key(&ex.scene);
            if group.iter().all(|g| content_key(&g.scene) != key) {
                group.push(ex);
            }
        }
        out.push(group);
    }
    out
}

/// Cached word-level encoder over a `tokenizer.json` value (questions and
/// captions come from a small set of templates).
pub struct CachedTokenizer {
    tok: tokenizers::Tokenizer,
    cache: HashMap<String, Vec<u32>>,
}

impl CachedTokenizer {
    pub fn from_json(v: &serde_json::Value) -> DemoResult<Self> {
        let s = serde_json::to_string(v)?;
        let tok = s
            .parse::<tokenizers::Tokenizer>()
            .map_err(|e| DemoError::Tokenizer(e.to_string()))?;
        Ok(Self {
            tok,
            cache: HashMap::new(),
        })
    }

    /// Ids with special tokens.
    pub fn encode(&mut self, text: &str) -> DemoResult<Vec<u32>> {
        if let Some(v) = self.cache.get(text) {
            return Ok(v.clone());
        }
        let enc = self
            .tok
            .encode(text, true)
            .map_err(|e| DemoError::Tokenizer(e.to_string()))?;
        let ids = enc.get_ids().to_vec();
        self.cache.insert(text.to_string(), ids.clone());
        Ok(ids)
    }
}

/// Pad id sequences to the longest: ids [B,L] and a 0/1 mask [B,L] (u32).
pub fn pad_batch(seqs: &[Vec<u32>], pad: u32, dev: &Device) -> DemoResult<(Tensor, Tensor)> {
    let l = seqs.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
    let mut ids = Vec::with_capacity(seqs.len() * l);
    let mut mask = Vec::with_capacity(seqs.len() * l);
    for s in seqs {
        for k in 0..l {
            ids.push(*s.get(k).unwrap_or(&pad));
            mask.push(u32::from(k < s.len()));
        }
    }
    Ok((
        Tensor::from_vec(ids, (seqs.len(), l), dev)?,
        Tensor::from_vec(mask, (seqs.len(), l), dev)?,
    ))
}

/// Optimisation settings shared by both models.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub seed: u64,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Share of the steps with linear warm-up; cosine decay to 10% afterwards.
    pub warmup_frac: f64,
    /// Share of samples with background patches greyed out, and the per-patch probability.
    pub bg_mask_prob: f64,
    pub bg_patch_prob: f64,
    pub log_every: usize,
    pub eval_samples: usize,
    /// Weight of the training-only per-patch kind / colour loss (0 = off).
    pub aux_weight: f64,
    /// Relative weights of the question families in training (colour-of,
    /// shape-of, exists, count); held-out evaluation stays uniform.
    pub question_weights: [f64; 4],
    /// Share of training questions whose template words (not colour / shape
    /// words, which carry the answer) are each replaced by `[MASK]` with
    /// probability 0.3, as the explainer masks words.
    pub word_mask_prob: f64,
    /// ViLT: share of colour-of / shape-of training questions whose key word
    /// (the shape or colour word naming the target) is replaced by `[MASK]`,
    /// as the explainer masks it; the answer target is then spread evenly over
    /// the answers of the scene's shapes (the question now asks about any
    /// shape), and the grounding target marks every shape.
    pub key_word_mask_prob: f64,
    /// With key-word masking: `true` = the masked question is unanswerable,
    /// its target is uniform over the family's answers (every colour / every
    /// kind) whatever the image shows, and no patch is grounded; `false` = the
    /// target is spread over the scene's shapes' answers, every shape grounded.
    pub key_word_mask_uniform: bool,
    /// ViLT: share of colour-of / shape-of training questions on scenes with
    /// several shapes in which each patch showing another shape (and none of
    /// the target) is greyed out with probability 0.5, as the explainer greys
    /// patches; the answer stays the same (it is about the target shape), so
    /// the model learns not to find the target by elimination of the others.
    pub distractor_mask_prob: f64,
    /// CLIP: share of training captions whose words (any word, colour and
    /// shape words included) are each replaced by id 0 with probability 0.3,
    /// as the explainer masks caption words; the image stays the positive.
    pub clip_word_mask_prob: f64,
    /// Weight of the training-only multi-label "which colour/kind pairs are in
    /// the scene" loss on ViLT's image CLS token (0 = off).
    pub content_weight: f64,
    /// Scale of a 2-D sine-cosine initialisation of ViLT's image position
    /// embeddings (0 = the usual random init); still trained afterwards.
    pub sincos_pos_scale: f64,
    /// Weight of the training-only per-patch grounding loss on ViLT's patch
    /// tokens: "is this patch on a shape the question refers to?"
    /// ([`grounding_targets`], binary cross-entropy; 0 = off).
    pub ground_weight: f64,
    /// ViLT: the layer (0-based) whose image-token states feed the per-patch
    /// kind / colour head and the grounding head; `None` = the final,
    /// layer-normed states (the shipped setting for the kind / colour head).
    pub aux_layer: Option<usize>,
    pub ground_layer: Option<usize>,
}

impl TrainConfig {
    fn lr_at(&self, step: usize) -> f64 {
        let warm = ((self.steps as f64) * self.warmup_frac).max(1.0);
        let s = step as f64;
        if s < warm {
            self.lr * (s + 1.0) / warm
        } else {
            let t = (s - warm) / ((self.steps as f64 - warm).max(1.0));
            self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
        }
    }
}

/// What a training run measured.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub seconds: f64,
    pub steps: usize,
    pub final_loss: f64,
    /// VQA accuracy or retrieval R@1 among 10 on held-out data (training twin).
    pub heldout_metric: f64,
    /// ViLT only: held-out accuracy per question family (colour-of,
    /// shape-of, exists, count) on the same examples; empty for CLIP.
    pub heldout_by_family: Vec<f64>,
    pub parameters: usize,
}

fn scene_cfg(image_size: usize) -> SceneConfig {
    SceneConfig {
        image_size: image_size as u32,
        ..SceneConfig::default()
    }
}

/// Pixel tensor [B,3,S,S] of rendered scenes, optionally with background masking noise.
fn pixel_batch(
    rendered: &[&RenderedScene],
    size: usize,
    patch: usize,
    noise: Option<(&mut DemoRng, f64, f64)>,
    mean: [f32; 3],
    std: [f32; 3],
    dev: &Device,
) -> DemoResult<Tensor> {
    let mut all = Vec::with_capacity(rendered.len() * 3 * size * size);
    let mut noise = noise;
    for r in rendered {
        let mut chw = image_unit_chw(&r.image);
        if let Some((rng, p_sample, p_patch)) = noise.as_mut() {
            if rng.bernoulli(*p_sample) {
                grey_out_background_patches(&mut chw, size as u32, patch as u32, r, rng, *p_patch);
            }
        }
        normalise(&mut chw, mean, std);
        all.extend_from_slice(&chw);
    }
    Ok(Tensor::from_vec(all, (rendered.len(), 3, size, size), dev)?)
}

fn vilt_batch(
    examples: &[VqaExample],
    tok: &mut CachedTokenizer,
    spec: &ViltDemoSpec,
    noise: Option<(&mut DemoRng, f64, f64)>,
    dev: &Device,
) -> DemoResult<(Tensor, Tensor, Tensor, Tensor)> {
    let seqs = examples
        .iter()
        .map(|e| tok.encode(&e.question.text))
        .collect::<DemoResult<Vec<_>>>()?;
    let (ids, mask) = pad_batch(&seqs, 0, dev)?;
    let types = ids.zeros_like()?;
    let rendered: Vec<&RenderedScene> = examples.iter().map(|e| &e.rendered).collect();
    let pix = pixel_batch(
        &rendered,
        spec.image_size,
        spec.patch_size,
        noise,
        VILT_MEAN,
        VILT_STD,
        dev,
    )?;
    Ok((ids, mask, types, pix))
}

/// Ids never masked by [`mask_template_words`]: special tokens and every
/// colour / shape word (they carry the answer).
fn protected_word_ids(tok: &mut CachedTokenizer) -> DemoResult<Vec<u32>> {
    let mut ids: Vec<u32> = (0..super::hf_files::BERT_SPECIALS.len() as u32).collect();
    let words = Colour::ALL
        .iter()
        .map(|c| c.name())
        .chain(ShapeKind::ALL.iter().map(|k| k.name()));
    for w in words {
        ids.extend(tok.encode(w)?);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Id of `[MASK]` in the demo BERT vocabulary.
fn bert_mask_id() -> u32 {
    super::hf_files::BERT_SPECIALS
        .iter()
        .position(|t| *t == "[MASK]")
        .unwrap_or(4) as u32
}

/// In a share `p_sample` of the rows, replace each unprotected token by
/// `[MASK]` with probability 0.3.
fn mask_template_words(
    ids: &Tensor,
    protected: &[u32],
    rng: &mut DemoRng,
    p_sample: f64,
) -> DemoResult<Tensor> {
    let mask_id = bert_mask_id();
    let mut rows = ids.to_vec2::<u32>()?;
    for row in &mut rows {
        if rng.bernoulli(p_sample) {
            for id in row.iter_mut() {
                if protected.binary_search(id).is_err() && rng.bernoulli(0.3) {
                    *id = mask_id;
                }
            }
        }
    }
    Ok(Tensor::new(rows, ids.device())?)
}

/// Replace the key word of a share `p` of the colour-of / shape-of questions
/// by `[MASK]` ([`TrainConfig::key_word_mask_prob`]); returns the ids and
/// which rows were masked.
fn mask_key_words(
    ids: &Tensor,
    examples: &[VqaExample],
    tok: &mut CachedTokenizer,
    rng: &mut DemoRng,
    p: f64,
) -> DemoResult<(Tensor, Vec<bool>)> {
    let mask_id = bert_mask_id();
    let mut rows = ids.to_vec2::<u32>()?;
    let mut masked = vec![false; rows.len()];
    for ((row, ex), m) in rows.iter_mut().zip(examples).zip(&mut masked) {
        let about_one = ex.question.kind.is_about_one_shape();
        let Some(word) = ex.question.key_word.as_deref() else {
            continue;
        };
        if !about_one || !rng.bernoulli(p) {
            continue;
        }
        // The word's id: its encoding without [CLS] / [SEP].
        let enc = tok.encode(word)?;
        if let [_, id, _] = enc[..] {
            if let Some(slot) = row.iter_mut().find(|x| **x == id) {
                *slot = mask_id;
                *m = true;
            }
        }
    }
    Ok((Tensor::new(rows, ids.device())?, masked))
}

/// Answer targets [B, L]: one-hot on the answer, or for a row whose key word
/// was masked, evenly spread over the answers of the scene's shapes (colours
/// for colour-of, kinds for shape-of; a shape counts once per occurrence), or
/// with `uniform` over all answers of the family.
fn answer_targets(
    examples: &[VqaExample],
    masked: &[bool],
    uniform: bool,
    labels: &[String],
    dev: &Device,
) -> DemoResult<Tensor> {
    let l = labels.len();
    let mut t = vec![0f32; examples.len() * l];
    let index = |a: &str| labels.iter().position(|x| x == a).unwrap_or(0);
    for (i, (ex, &m)) in examples.iter().zip(masked).enumerate() {
        let row = &mut t[i * l..(i + 1) * l];
        if !m {
            row[index(&ex.question.answer)] = 1.0;
            continue;
        }
        if uniform {
            let family: Vec<&str> = match ex.question.kind {
                QuestionKind::ShapeOf(_) => ShapeKind::ALL.iter().map(|k| k.name()).collect(),
                _ => Colour::ALL.iter().map(|c| c.name()).collect(),
            };
            for a in &family {
                row[index(a)] += 1.0 / family.len() as f32;
            }
            continue;
        }
        let n = ex.scene.shapes.len().max(1) as f32;
        for s in &ex.scene.shapes {
            let answer = match ex.question.kind {
                QuestionKind::ShapeOf(_) => s.kind.name(),
                _ => s.colour.name(),
            };
            row[index(answer)] += 1.0 / n;
        }
    }
    Ok(Tensor::from_vec(t, (examples.len(), l), dev)?)
}

/// Cross-entropy against target distributions: logits and targets [B, C],
/// mean over the rows of -sum_c target * log_softmax(logits).
fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let lsm = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    (lsm * targets)?.sum_all()?.neg()? / logits.dim(0)? as f64
}

/// Softmax cross-entropy over the answer labels. (ViLT's own VQA loss is a
/// binary cross-entropy over soft VQAv2 scores; with one correct answer per
/// question, softmax cross-entropy trains the small model several times faster.)
fn cross_entropy(logits: &Tensor, labels: &[u32]) -> DemoResult<Tensor> {
    let t = Tensor::from_vec(labels.to_vec(), labels.len(), logits.device())?;
    Ok(candle_nn::loss::cross_entropy(logits, &t)?)
}

/// Accuracy of a ViLT twin on `n` held-out examples.
pub fn eval_vilt_twin(
    model: &ViltVqaTwin,
    spec: &ViltDemoSpec,
    n: usize,
    dev: &Device,
) -> DemoResult<f64> {
    Ok(eval_vilt_twin_by_family(model, spec, n, dev)?.0)
}

/// Accuracy overall and per question family (colour-of, shape-of, exists, count).
pub fn eval_vilt_twin_by_family(
    model: &ViltVqaTwin,
    spec: &ViltDemoSpec,
    n: usize,
    dev: &Device,
) -> DemoResult<(f64, [f64; 4])> {
    use super::questions::QuestionKind;
    let mut fam_total = [0usize; 4];
    let mut fam_correct = [0usize; 4];
    let labels = answer_labels();
    let mut tok = CachedTokenizer::from_json(&bert_tokenizer_json())?;
    let cfg = scene_cfg(spec.image_size);
    let mut correct = 0usize;
    for chunk_start in (0..n).step_by(64) {
        let ex: Vec<VqaExample> = (chunk_start..(chunk_start + 64).min(n))
            .map(|k| vqa_example(EVAL_SEED, k as u64, &cfg))
            .collect();
        let (ids, mask, types, pix) = vilt_batch(&ex, &mut tok, spec, None, dev)?;
        let pred = model
            .forward(&ids, &mask, &types, &pix)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        for (e, p) in ex.iter().zip(pred) {
            let ok = usize::from(labels[p as usize] == e.question.answer);
            correct += ok;
            let f = match e.question.kind {
                QuestionKind::ColourOf(_) => 0,
                QuestionKind::ShapeOf(_) => 1,
                QuestionKind::Exists(..) => 2,
                QuestionKind::Count => 3,
            };
            fam_total[f] += 1;
            fam_correct[f] += ok;
        }
    }
    let fam = std::array::from_fn(|i| fam_correct[i] as f64 / fam_total[i].max(1) as f64);
    Ok((correct as f64 / n.max(1) as f64, fam))
}

/// Initialise ViLT's image embeddings and first encoder layers from a trained
/// CLIP vision tower of the same width (as ViLT itself starts from a ViT).
/// Returns the number of tensors copied.
pub fn init_vilt_from_clip(map: &VarMap, clip_dir: &Path) -> DemoResult<usize> {
    let clip = candle_core::safetensors::load(clip_dir.join("model.safetensors"), &Device::Cpu)?;
    let mut pairs: Vec<(String, String)> = vec![
        (
            "embeddings.patch_embedding.weight".into(),
            "embeddings.patch_embeddings.projection.weight".into(),
        ),
        (
            "embeddings.position_embedding.weight".into(),
            "embeddings.position_embeddings".into(),
        ),
        (
            "embeddings.class_embedding".into(),
            "embeddings.cls_token".into(),
        ),
    ];
    for i in 0..64 {
        let c = format!("encoder.layers.{i}");
        let v = format!("encoder.layer.{i}");
        for (a, b) in [
            ("self_attn.q_proj", "attention.attention.query"),
            ("self_attn.k_proj", "attention.attention.key"),
            ("self_attn.v_proj", "attention.attention.value"),
            ("self_attn.out_proj", "attention.output.dense"),
            ("layer_norm1", "layernorm_before"),
            ("layer_norm2", "layernorm_after"),
            ("mlp.fc1", "intermediate.dense"),
            ("mlp.fc2", "output.dense"),
        ] {
            for p in ["weight", "bias"] {
                pairs.push((format!("{c}.{a}.{p}"), format!("{v}.{b}.{p}")));
            }
        }
    }
    let data = map
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned VarMap".into()))?;
    let mut copied = 0;
    for (c, v) in pairs {
        let (Some(src), Some(dst)) = (
            clip.get(&format!("vision_model.{c}")),
            data.get(&format!("vilt.{v}")),
        ) else {
            continue;
        };
        if src.elem_count() == dst.elem_count() {
            dst.set(&src.reshape(dst.shape())?)?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Set ViLT's image position embeddings [1, 1 + g^2, h] to a 2-D sine-cosine
/// table (MAE style: half the channels encode the row, half the column) times
/// `scale`; the CLS position stays zero.
pub fn init_sincos_positions(map: &VarMap, spec: &ViltDemoSpec, scale: f64) -> DemoResult<()> {
    let g = spec.image_size / spec.patch_size;
    let h = spec.hidden_size;
    let quarter = h / 4;
    let mut v = vec![0f32; (1 + g * g) * h];
    for r in 0..g {
        for c in 0..g {
            let row = &mut v[(1 + r * g + c) * h..(2 + r * g + c) * h];
            for (half, pos) in [(0usize, r as f64), (1, c as f64)] {
                for i in 0..quarter {
                    let w = 1.0 / 10000f64.powf(i as f64 / quarter as f64);
                    row[half * 2 * quarter + i] = (scale * (pos * w).sin()) as f32;
                    row[half * 2 * quarter + quarter + i] = (scale * (pos * w).cos()) as f32;
                }
            }
        }
    }
    let data = map
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("poisoned VarMap".into()))?;
    if let Some(var) = data.get("vilt.embeddings.position_embeddings") {
        var.set(&Tensor::from_vec(v, (1, 1 + g * g, h), &Device::Cpu)?)?;
    }
    Ok(())
}

/// AdamW over every variable of `maps` with the trainer's learning rate and weight decay.
fn adamw(maps: &[&VarMap], tc: &TrainConfig) -> candle_core::Result<candle_nn::AdamW> {
    candle_nn::AdamW::new(
        maps.iter().flat_map(|m| m.all_vars()).collect(),
        ParamsAdamW {
            lr: tc.lr,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: tc.weight_decay,
        },
    )
}

/// Train the ViLT VQA demo model and write its Hugging Face folder to `out`.
/// With `init_from_clip`, the image side starts from that CLIP folder's vision tower.
pub fn train_vilt(spec: &ViltDemoSpec, tc: &TrainConfig, out: &Path) -> DemoResult<TrainReport> {
    train_vilt_from(spec, tc, out, None)
}

/// [`train_vilt`] with an optional CLIP folder to initialise the image side from.
pub fn train_vilt_from(
    spec: &ViltDemoSpec,
    tc: &TrainConfig,
    out: &Path,
    init_from_clip: Option<&Path>,
) -> DemoResult<TrainReport> {
    let dev = Device::Cpu;
    let cfg: ViltConfig = serde_json::from_value(vilt_config_json(spec))?;
    let labels = answer_labels();
    let map = VarMap::new();
    let model = ViltVqaTwin::new(&cfg, seeded_var_builder(&map, tc.seed, &dev))?;
    if tc.sincos_pos_scale > 0.0 {
        init_sincos_positions(&map, spec, tc.sincos_pos_scale)?;
    }
    if let Some(dir) = init_from_clip {
        let n = init_vilt_from_clip(&map, dir)?;
        eprintln!("vilt: {n} tensors initialised from {}", dir.display());
    }
    let params: usize = map.all_vars().iter().map(|v| v.elem_count()).sum();
    // The auxiliary head lives in its own VarMap: it is trained, never saved.
    let aux_map = VarMap::new();
    let aux = AuxPatchHead::new(
        spec.hidden_size,
        seeded_var_builder(&aux_map, tc.seed ^ 0xA0C5, &dev).pp(AUX_PREFIX),
    )?;
    let content_head = super::twin::TwinLinear::new(
        spec.hidden_size,
        Colour::ALL.len() * ShapeKind::ALL.len(),
        true,
        seeded_var_builder(&aux_map, tc.seed ^ 0xA0C6, &dev).pp("aux_content_head"),
    )?;
    let ground_head = super::twin::TwinLinear::new(
        spec.hidden_size,
        1,
        true,
        seeded_var_builder(&aux_map, tc.seed ^ 0xA0C7, &dev).pp("aux_ground_head"),
    )?;
    let mut opt = adamw(&[&map, &aux_map], tc)?;
    let mut tok = CachedTokenizer::from_json(&bert_tokenizer_json())?;
    let protected = protected_word_ids(&mut tok)?;
    let mut word_rng = DemoRng::for_stream(tc.seed ^ 0x3A5C, u64::MAX);
    let mut key_rng = DemoRng::for_stream(tc.seed ^ 0x3A5D, u64::MAX);
    let mut distractor_rng = DemoRng::for_stream(tc.seed ^ 0x3A5E, u64::MAX);
    let scfg = scene_cfg(spec.image_size);
    let mut noise_rng = DemoRng::for_stream(tc.seed, u64::MAX);
    let start = Instant::now();
    let mut running = 0.0;
    let mut running_aux = 0.0;
    let mut running_ground = 0.0;
    let mut last = 0.0;
    for step in 0..tc.steps {
        let base = (step * tc.batch_size) as u64;
        let ex: Vec<VqaExample> = (0..tc.batch_size as u64)
            .map(|k| vqa_train_example(tc.seed, base + k, &scfg, tc.question_weights))
            .collect();
        let targets: Vec<u32> = ex
            .iter()
            .map(|e| {
                labels
                    .iter()
                    .position(|l| *l == e.question.answer)
                    .unwrap_or(0) as u32
            })
            .collect();
        let (ids, mask, types, pix) = vilt_batch(
            &ex,
            &mut tok,
            spec,
            Some((&mut noise_rng, tc.bg_mask_prob, tc.bg_patch_prob)),
            &dev,
        )?;
        let pix = if tc.distractor_mask_prob > 0.0 {
            // grey is 0 after ViLT's normalisation (mean 0.5, std 0.5)
            let keep = distractor_keep_mask(
                &ex,
                spec.image_size as u32,
                spec.patch_size as u32,
                &mut distractor_rng,
                tc.distractor_mask_prob,
                &dev,
            )?;
            pix.broadcast_mul(&keep)?
        } else {
            pix
        };
        let ids = if tc.word_mask_prob > 0.0 {
            mask_template_words(&ids, &protected, &mut word_rng, tc.word_mask_prob)?
        } else {
            ids
        };
        let (ids, key_masked) = if tc.key_word_mask_prob > 0.0 {
            mask_key_words(&ids, &ex, &mut tok, &mut key_rng, tc.key_word_mask_prob)?
        } else {
            (ids, vec![false; ex.len()])
        };
        let (logits, layer_states) = model.forward_with_layers(&ids, &mask, &types, &pix)?;
        let image_states = layer_states
            .last()
            .ok_or_else(|| candle_core::Error::Msg("model without layers".into()))?;
        let patches_of = |layer: Option<usize>| -> DemoResult<Tensor> {
            let states = match layer {
                Some(i) => layer_states.get(i).ok_or_else(|| {
                    candle_core::Error::Msg(format!("no layer {i} (0-based) to supervise"))
                })?,
                None => image_states,
            };
            Ok(states.narrow(1, 1, states.dim(1)? - 1)?)
        };
        let mut loss = if key_masked.iter().any(|&m| m) {
            let t = answer_targets(&ex, &key_masked, tc.key_word_mask_uniform, &labels, &dev)?;
            soft_cross_entropy(&logits, &t)?
        } else {
            cross_entropy(&logits, &targets)?
        };
        if tc.content_weight > 0.0 {
            let t = content_targets(ex.iter().map(|e| &e.scene), &dev)?;
            let y = content_head.forward(&image_states.i((.., 0))?)?;
            let l = bce_with_logits(&y, &t)?;
            loss = (loss + (l * tc.content_weight)?)?;
        }
        if tc.aux_weight > 0.0 {
            let (kinds, colours) =
                batch_patch_targets(ex.iter().map(|e| (&e.scene, &e.rendered)), spec.patch_size);
            let (kind_loss, colour_loss) =
                aux.loss(&patches_of(tc.aux_layer)?, &kinds, &colours)?;
            running_aux += kind_loss.to_scalar::<f32>()? as f64;
            loss = (loss + ((kind_loss + colour_loss)? * tc.aux_weight)?)?;
        }
        if tc.ground_weight > 0.0 {
            let patch_states = patches_of(tc.ground_layer)?;
            let t: Vec<f32> = ex
                .iter()
                .zip(&key_masked)
                .flat_map(|(e, &m)| {
                    if m {
                        // The masked question asks about any shape (spread
                        // targets) or about none (uniform targets).
                        patch_owners(&e.scene, &e.rendered, spec.patch_size as u32)
                            .into_iter()
                            .map(|o| f32::from(u8::from(o.is_some() && !tc.key_word_mask_uniform)))
                            .collect()
                    } else {
                        grounding_targets(
                            &e.scene,
                            &e.rendered,
                            &e.question,
                            spec.patch_size as u32,
                        )
                    }
                })
                .collect();
            let (b, n, h) = patch_states.dims3()?;
            let t = Tensor::from_vec(t, (b * n, 1), &dev)?;
            let y = ground_head.forward(&patch_states.reshape((b * n, h))?)?;
            let l = bce_with_logits(&y, &t)?;
            running_ground += l.to_scalar::<f32>()? as f64;
            loss = (loss + (l * tc.ground_weight)?)?;
        }
        opt.set_learning_rate(tc.lr_at(step));
        opt.backward_step(&loss)?;
        let l = loss.to_scalar::<f32>()? as f64;
        running += l;
        last = l;
        if tc.log_every > 0 && (step + 1) % tc.log_every == 0 {
            let (acc, fam) = eval_vilt_twin_by_family(&model, spec, 256, &dev)?;
            eprintln!(
                "vilt step {:5} loss {:.4} aux-kind {:.4} ground {:.4} lr {:.2e} heldout-acc(256) {:.3} colour/shape/exists/count {:.2?} {:.0}s",
                step + 1,
                running / tc.log_every as f64,
                running_aux / tc.log_every as f64,
                running_ground / tc.log_every as f64,
                tc.lr_at(step),
                acc,
                fam,
                start.elapsed().as_secs_f64()
            );
            running = 0.0;
            running_aux = 0.0;
            running_ground = 0.0;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (acc, fam) = eval_vilt_twin_by_family(&model, spec, tc.eval_samples, &dev)?;
    write_vilt_files(out, spec)?;
    map.save(out.join("model.safetensors"))?;
    Ok(TrainReport {
        seconds,
        steps: tc.steps,
        final_loss: last,
        heldout_metric: acc,
        heldout_by_family: fam.to_vec(),
        parameters: params,
    })
}

fn clip_text_batch(
    captions: &[&str],
    tok: &mut CachedTokenizer,
    dev: &Device,
) -> DemoResult<(Tensor, Tensor)> {
    let seqs = captions
        .iter()
        .map(|c| tok.encode(c))
        .collect::<DemoResult<Vec<_>>>()?;
    let eos: Vec<u32> = seqs
        .iter()
        .map(|s| s.len().saturating_sub(1) as u32)
        .collect();
    let (ids, _) = pad_batch(&seqs, super::hf_files::clip_bos_eos().1 as u32, dev)?;
    Ok((ids, Tensor::from_vec(eos, captions.len(), dev)?))
}

/// In a share `p_sample` of the rows, replace each word (not BOS / EOS /
/// padding) by id 0 with probability 0.3: the explainer's CLIP word masking.
fn mask_caption_words(ids: &Tensor, rng: &mut DemoRng, p_sample: f64) -> DemoResult<Tensor> {
    let (bos, eos) = super::hf_files::clip_bos_eos();
    let mut rows = ids.to_vec2::<u32>()?;
    for row in &mut rows {
        if rng.bernoulli(p_sample) {
            for id in row.iter_mut() {
                let special = *id as usize == bos || *id as usize == eos;
                if !special && rng.bernoulli(0.3) {
                    *id = 0;
                }
            }
        }
    }
    Ok(Tensor::new(rows, ids.device())?)
}

fn l2n(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// Image -> caption R@1 of a CLIP twin over `groups` held-out groups of 10.
pub fn eval_clip_twin(
    model: &ClipTwin,
    spec: &ClipDemoSpec,
    groups: usize,
    dev: &Device,
) -> DemoResult<f64> {
    let mut tok = CachedTokenizer::from_json(&clip_tokenizer_json())?;
    let cfg = scene_cfg(spec.image_size);
    let mut hits = 0usize;
    let mut total = 0usize;
    for group in retrieval_groups(EVAL_SEED, groups, 10, &cfg) {
        let rendered: Vec<&RenderedScene> = group.iter().map(|g| &g.rendered).collect();
        let pix = pixel_batch(
            &rendered,
            spec.image_size,
            spec.patch_size,
            None,
            CLIP_MEAN,
            CLIP_STD,
            dev,
        )?;
        let caps: Vec<&str> = group.iter().map(|g| g.caption.as_str()).collect();
        let (ids, eos) = clip_text_batch(&caps, &mut tok, dev)?;
        let sim = l2n(&model.image_features(&pix)?)?
            .matmul(&l2n(&model.text_features(&ids, &eos)?)?.t()?)?;
        let best = sim.argmax(D::Minus1)?.to_vec1::<u32>()?;
        for (i, b) in best.iter().enumerate() {
            hits += usize::from(*b as usize == i);
            total += 1;
        }
    }
    Ok(hits as f64 / total.max(1) as f64)
}

/// Train the CLIP demo model and write its Hugging Face folder to `out`.
/// Symmetric InfoNCE; images whose content equals another's in the batch
/// count as positives of each other's captions.
pub fn train_clip(spec: &ClipDemoSpec, tc: &TrainConfig, out: &Path) -> DemoResult<TrainReport> {
    let dev = Device::Cpu;
    let cfg: ClipConfig = serde_json::from_value(clip_config_json(spec))?;
    let map = VarMap::new();
    let model = ClipTwin::new(&cfg, seeded_var_builder(&map, tc.seed ^ 0xC119, &dev))?;
    let params: usize = map.all_vars().iter().map(|v| v.elem_count()).sum();
    let aux_map = VarMap::new();
    let aux = AuxPatchHead::new(
        spec.vision_hidden_size,
        seeded_var_builder(&aux_map, tc.seed ^ 0xA0C1, &dev).pp(AUX_PREFIX),
    )?;
    let mut opt = adamw(&[&map, &aux_map], tc)?;
    let mut tok = CachedTokenizer::from_json(&clip_tokenizer_json())?;
    let scfg = scene_cfg(spec.image_size);
    let mut noise_rng = DemoRng::for_stream(tc.seed ^ 0xC119, u64::MAX);
    let mut word_rng = DemoRng::for_stream(tc.seed ^ 0xC119, u64::MAX - 1);
    let start = Instant::now();
    let mut running = 0.0;
    let mut last = 0.0;
    let max_log_scale = 100f64.ln();
    let mut running_aux = 0.0;
    for step in 0..tc.steps {
        let base = (step * tc.batch_size) as u64;
        let ex: Vec<CaptionExample> = (0..tc.batch_size as u64)
            .map(|k| caption_example(tc.seed, base + k, &scfg))
            .collect();
        let b = ex.len();
        let keys: Vec<_> = ex.iter().map(|e| content_key(&e.scene)).collect();
        let mut target = vec![0f32; b * b];
        for i in 0..b {
            let same: Vec<usize> = (0..b).filter(|&j| keys[j] == keys[i]).collect();
            for &j in &same {
                target[i * b + j] = 1.0 / same.len() as f32;
            }
        }
        let target = Tensor::from_vec(target, (b, b), &dev)?;
        let rendered: Vec<&RenderedScene> = ex.iter().map(|e| &e.rendered).collect();
        let pix = pixel_batch(
            &rendered,
            spec.image_size,
            spec.patch_size,
            Some((&mut noise_rng, tc.bg_mask_prob, tc.bg_patch_prob)),
            CLIP_MEAN,
            CLIP_STD,
            &dev,
        )?;
        let caps: Vec<&str> = ex.iter().map(|e| e.caption.as_str()).collect();
        let (ids, eos) = clip_text_batch(&caps, &mut tok, &dev)?;
        let ids = if tc.clip_word_mask_prob > 0.0 {
            mask_caption_words(&ids, &mut word_rng, tc.clip_word_mask_prob)?
        } else {
            ids
        };
        let (img, patch_states) = model.image_features_with_patches(&pix)?;
        let img = l2n(&img)?;
        let txt = l2n(&model.text_features(&ids, &eos)?)?;
        let logits = img
            .matmul(&txt.t()?)?
            .broadcast_mul(&model.log_logit_scale().exp()?)?;
        // target is symmetric, so the text->image loss uses the same matrix.
        let mut loss = ((soft_cross_entropy(&logits, &target)?
            + soft_cross_entropy(&logits.t()?, &target)?)?
            * 0.5)?;
        if tc.aux_weight > 0.0 {
            let (kinds, colours) =
                batch_patch_targets(ex.iter().map(|e| (&e.scene, &e.rendered)), spec.patch_size);
            let (kind_loss, colour_loss) = aux.loss(&patch_states, &kinds, &colours)?;
            running_aux += kind_loss.to_scalar::<f32>()? as f64;
            loss = (loss + ((kind_loss + colour_loss)? * tc.aux_weight)?)?;
        }
        opt.set_learning_rate(tc.lr_at(step));
        opt.backward_step(&loss)?;
        let ls = model.log_logit_scale();
        if ls.to_scalar::<f32>()? as f64 > max_log_scale {
            if let Some(v) = map
                .all_vars()
                .iter()
                .find(|v| v.as_tensor().id() == ls.id())
            {
                v.set(&Tensor::new(max_log_scale as f32, &dev)?)?;
            }
        }
        let l = loss.to_scalar::<f32>()? as f64;
        running += l;
        last = l;
        if tc.log_every > 0 && (step + 1) % tc.log_every == 0 {
            let r1 = eval_clip_twin(&model, spec, 20, &dev)?;
            eprintln!(
                "clip step {:5} loss {:.4} aux-kind {:.4} lr {:.2e} scale {:.1} heldout-R@1(200) {:.3} {:.0}s",
                step + 1,
                running / tc.log_every as f64,
                running_aux / tc.log_every as f64,
                tc.lr_at(step),
                model.log_logit_scale().to_scalar::<f32>()?.exp(),
                r1,
                start.elapsed().as_secs_f64()
            );
            running = 0.0;
            running_aux = 0.0;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let r1 = eval_clip_twin(&model, spec, tc.eval_samples / 10, &dev)?;
    write_clip_files(out, spec)?;
    map.save(out.join("model.safetensors"))?;
    Ok(TrainReport {
        seconds,
        steps: tc.steps,
        final_loss: last,
        heldout_metric: r1,
        heldout_by_family: Vec::new(),
        parameters: params,
    })
}

/// The training twin of a saved ViLT VQA folder (parity checks).
pub fn load_vilt_twin(dir: &Path) -> DemoResult<ViltVqaTwin> {
    let cfg: ViltConfig = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let data = std::fs::read(dir.join("model.safetensors"))?;
    let vb = VarBuilder::from_buffered_safetensors(data, DType::F32, &Device::Cpu)?;
    Ok(ViltVqaTwin::new(&cfg, vb)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loading::{load, AnyModel, ModelSource};

    #[test]
    fn patch_targets_label_covered_patches_only() {
        let cfg = scene_cfg(96);
        for index in 0..20 {
            let ex = vqa_example(7, index, &cfg);
            let (kinds, colours) = patch_targets(&ex.scene, &ex.rendered, 16);
            assert_eq!(kinds.len(), 36);
            for (p, (&k, &c)) in kinds.iter().zip(&colours).enumerate() {
                assert_eq!(k == 0, c == 0, "kind and colour agree on 'none'");
                let (x0, y0) = ((p as u32 % 6) * 16, (p as u32 / 6) * 16);
                let areas: Vec<usize> = ex
                    .rendered
                    .masks
                    .iter()
                    .map(|m| m.area_in_box(x0, y0, x0 + 16, y0 + 16))
                    .collect();
                let best = areas.iter().enumerate().max_by_key(|(_, a)| **a);
                match best {
                    Some((i, &a)) if a >= 25 => {
                        let s = &ex.scene.shapes[i];
                        assert_eq!(ShapeKind::ALL[k as usize - 1], s.kind);
                        assert_eq!(Colour::ALL[c as usize - 1], s.colour);
                    }
                    _ => assert_eq!(k, 0),
                }
            }
        }
    }

    #[test]
    fn grounding_targets_mark_the_referenced_shapes_patches() {
        let cfg = scene_cfg(96);
        let mut seen_positive = 0;
        for index in 0..40 {
            let ex = vqa_example(11, index, &cfg);
            let owners = patch_owners(&ex.scene, &ex.rendered, 16);
            let t = grounding_targets(&ex.scene, &ex.rendered, &ex.question, 16);
            assert_eq!(t.len(), 36);
            let referenced = referenced_shapes(&ex.scene, &ex.question);
            match ex.question.kind {
                QuestionKind::Count => assert_eq!(referenced.len(), ex.scene.shapes.len()),
                QuestionKind::Exists(..) if ex.question.answer == "no" => {
                    assert!(referenced.is_empty())
                }
                _ => assert!(!referenced.is_empty()),
            }
            if let Some(target) = ex.question.target {
                assert!(referenced.contains(&target));
            }
            for (p, (&v, o)) in t.iter().zip(&owners).enumerate() {
                let on_referenced = o.is_some_and(|i| referenced.contains(&i));
                assert_eq!(v == 1.0, on_referenced, "patch {p}");
                seen_positive += usize::from(v == 1.0);
            }
        }
        assert!(seen_positive > 0);
    }

    #[test]
    fn weighted_questions_follow_the_weights() {
        let cfg = scene_cfg(96);
        let mut count = 0;
        for index in 0..200 {
            let mut rng = DemoRng::for_stream(3, index);
            let scene = Scene::generate(&mut rng, &cfg);
            let q = generate_question_weighted(&mut rng, &scene, [0.0, 0.0, 0.0, 1.0]);
            count += usize::from(q.kind == super::super::questions::QuestionKind::Count);
        }
        assert_eq!(count, 200);
    }

    #[test]
    fn template_word_masking_keeps_colour_and_shape_words() {
        let mut tok = CachedTokenizer::from_json(&bert_tokenizer_json()).unwrap();
        let protected = protected_word_ids(&mut tok).unwrap();
        let q = tok.encode("is there a red circle?").unwrap();
        let ids = Tensor::new(vec![q.clone(); 16], &Device::Cpu).unwrap();
        let mut rng = DemoRng::new(1);
        let masked = mask_template_words(&ids, &protected, &mut rng, 1.0)
            .unwrap()
            .to_vec2::<u32>()
            .unwrap();
        let mut kept = |w: &str| tok.encode(w).unwrap()[1];
        let (red, circle) = (kept("red"), kept("circle"));
        let mut any_masked = false;
        for row in masked {
            assert_eq!(row.len(), q.len());
            assert!(row.contains(&red) && row.contains(&circle));
            assert_eq!((row[0], row[row.len() - 1]), (q[0], q[q.len() - 1]));
            any_masked |= row.contains(&4);
        }
        assert!(any_masked);
    }

    #[test]
    fn caption_word_masking_keeps_bos_eos_and_padding() {
        let mut tok = CachedTokenizer::from_json(&clip_tokenizer_json()).unwrap();
        let caps = ["a red circle and a blue triangle", "a green rectangle"];
        let (ids, eos) = clip_text_batch(&caps, &mut tok, &Device::Cpu).unwrap();
        let before = ids.to_vec2::<u32>().unwrap();
        let (bos_id, eos_id) = super::super::hf_files::clip_bos_eos();
        let mut rng = DemoRng::new(3);
        let mut masked_words = 0;
        for _ in 0..8 {
            let after = mask_caption_words(&ids, &mut rng, 1.0)
                .unwrap()
                .to_vec2::<u32>()
                .unwrap();
            for (b, a) in before.iter().zip(&after) {
                assert_eq!(a.len(), b.len());
                for (&x, &y) in b.iter().zip(a) {
                    if x as usize == bos_id || x as usize == eos_id {
                        assert_eq!(y, x, "specials and padding stay");
                    } else {
                        assert!(y == x || y == 0);
                        masked_words += usize::from(y == 0);
                    }
                }
            }
        }
        assert!(masked_words > 0);
        // The end-of-text positions do not move.
        assert_eq!(
            eos.to_vec1::<u32>().unwrap()[1] as usize,
            tok.encode(caps[1]).unwrap().len() - 1
        );
        let untouched = mask_caption_words(&ids, &mut rng, 0.0).unwrap();
        assert_eq!(untouched.to_vec2::<u32>().unwrap(), before);
    }

    #[test]
    fn distractor_masking_greys_only_other_shapes_patches() {
        let cfg = scene_cfg(96);
        let ex: Vec<VqaExample> = (0..64).map(|k| vqa_example(13, k, &cfg)).collect();
        let mut rng = DemoRng::new(3);
        let keep = distractor_keep_mask(&ex, 96, 16, &mut rng, 1.0, &Device::Cpu)
            .unwrap()
            .flatten_from(1)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let mut greyed_examples = 0;
        for (e, row) in ex.iter().zip(&keep) {
            let masks = &e.rendered.masks;
            let eligible = masks.len() > 1 && e.question.kind.is_about_one_shape();
            let grey: Vec<usize> = (0..36)
                .filter(|&p| row[(p / 6) * 16 * 96 + (p % 6) * 16] == 0.0)
                .collect();
            if !eligible {
                assert!(row.iter().all(|&v| v == 1.0), "{}", e.question.text);
                continue;
            }
            greyed_examples += usize::from(!grey.is_empty());
            let target = e.question.target.unwrap();
            for p in grey {
                let (x0, y0) = ((p as u32 % 6) * 16, (p as u32 / 6) * 16);
                let area = |m: &ShapeMask| m.area_in_box(x0, y0, x0 + 16, y0 + 16);
                assert_eq!(area(&masks[target]), 0, "a target patch was greyed");
                assert!(
                    masks.iter().any(|m| area(m) > 0),
                    "a background patch was greyed"
                );
                // whole patches
                let (x, y) = (x0 as usize + 15, y0 as usize + 15);
                assert_eq!(row[y * 96 + x], 0.0);
            }
        }
        assert!(greyed_examples > 5, "{greyed_examples}");
    }

    #[test]
    fn key_word_masking_spreads_the_answer_over_the_scene() {
        let mut tok = CachedTokenizer::from_json(&bert_tokenizer_json()).unwrap();
        let labels = answer_labels();
        let cfg = scene_cfg(96);
        let ex: Vec<VqaExample> = (0..64).map(|k| vqa_example(11, k, &cfg)).collect();
        let seqs: Vec<Vec<u32>> = ex
            .iter()
            .map(|e| tok.encode(&e.question.text).unwrap())
            .collect();
        let (ids, _) = pad_batch(&seqs, 0, &Device::Cpu).unwrap();
        let mut rng = DemoRng::new(2);
        let (masked_ids, masked) = mask_key_words(&ids, &ex, &mut tok, &mut rng, 1.0).unwrap();
        let (before, after) = (
            ids.to_vec2::<u32>().unwrap(),
            masked_ids.to_vec2::<u32>().unwrap(),
        );
        let t = answer_targets(&ex, &masked, false, &labels, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let mut n_masked = 0;
        for (i, e) in ex.iter().enumerate() {
            let about_one = e.question.kind.is_about_one_shape();
            assert_eq!(masked[i], about_one, "{}", e.question.text);
            let changed = before[i]
                .iter()
                .zip(&after[i])
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                changed,
                usize::from(about_one),
                "one word masked: {}",
                e.question.text
            );
            assert!((t[i].iter().sum::<f32>() - 1.0).abs() < 1e-6);
            let answer = labels.iter().position(|l| *l == e.question.answer).unwrap();
            if about_one {
                n_masked += 1;
                // Each shape of the scene gets 1/n of the target mass.
                let share = e.scene.shapes.len() as f32;
                assert!(t[i][answer] * share >= 1.0 - 1e-6, "{}", e.question.text);
            } else {
                assert_eq!(t[i][answer], 1.0);
            }
        }
        assert!(n_masked > 0);
        // Uniform targets: every answer of the family, whatever the image shows.
        let u = answer_targets(&ex, &masked, true, &labels, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (i, e) in ex.iter().enumerate().filter(|(i, _)| masked[*i]) {
            let family = match e.question.kind {
                QuestionKind::ShapeOf(_) => ShapeKind::ALL.len(),
                _ => Colour::ALL.len(),
            };
            let nonzero: Vec<f32> = u[i].iter().copied().filter(|&x| x > 0.0).collect();
            assert_eq!(nonzero.len(), family, "{}", e.question.text);
            assert!(nonzero
                .iter()
                .all(|&x| (x - 1.0 / family as f32).abs() < 1e-6));
        }
    }

    #[test]
    fn auxiliary_heads_train_but_are_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ViltDemoSpec {
            num_hidden_layers: 1,
            ..ViltDemoSpec::default()
        };
        let tc = TrainConfig {
            seed: 5,
            steps: 2,
            batch_size: 4,
            lr: 1e-3,
            weight_decay: 0.01,
            warmup_frac: 0.0,
            bg_mask_prob: 0.5,
            bg_patch_prob: 0.3,
            log_every: 0,
            eval_samples: 8,
            aux_weight: 1.0,
            question_weights: [1.0, 2.0, 1.0, 1.0],
            word_mask_prob: 0.5,
            clip_word_mask_prob: 0.0,
            key_word_mask_prob: 0.0,
            distractor_mask_prob: 0.0,
            key_word_mask_uniform: false,
            content_weight: 1.0,
            sincos_pos_scale: 0.5,
            ground_weight: 1.0,
            aux_layer: Some(0),
            ground_layer: None,
        };
        let r = train_vilt(&spec, &tc, dir.path()).unwrap();
        assert!(r.final_loss.is_finite());
        assert_eq!(r.heldout_by_family.len(), 4);
        // The strict loader rejects unexpected tensors: aux heads must not be there.
        let m = load(
            &ModelSource::Local(dir.path().to_path_buf()),
            &Device::Cpu,
            DType::F32,
        )
        .unwrap();
        assert!(matches!(m.model, AnyModel::ViltVqa(_)));
        let saved =
            candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
                .unwrap();
        assert!(
            saved.keys().all(|k| !k.starts_with("aux")),
            "{:?}",
            saved.keys()
        );
    }
}
