//! Training of the demo models on generated data (used by
//! `examples/train_demo.rs` and `scripts/train-demo.sh`), and evaluation of
//! the training twins on held-out generated data.
//!
//! Masking noise: like the explainer, which greys out image patches (0.5 in
//! [0,1] pixel space), training greys out patches that contain no shape pixel
//! (each with probability `bg_patch_prob`, in a share `bg_mask_prob` of the
//! samples). The answer / caption stays correct, so the models learn that a
//! grey patch means "nothing here", and masked coalitions stay in distribution.
//! Patches with shape pixels and words are never masked in training.

use super::hf_files::{
    bert_tokenizer_json, clip_config_json, clip_tokenizer_json, vilt_config_json, write_clip_files,
    write_vilt_files, ClipDemoSpec, ViltDemoSpec,
};
use super::questions::{answer_labels, caption, content_key, generate_question, Question};
use super::rng::DemoRng;
use super::scene::{RenderedScene, Scene, SceneConfig};
use super::twin::{ClipTwin, ViltVqaTwin};
use crate::clip::ClipConfig;
use crate::vilt::ViltConfig;
use candle_core::{DType, Device, Shape, Tensor, D};
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

/// AdamW over every variable of `map` with the trainer's learning rate and weight decay.
fn adamw(map: &VarMap, tc: &TrainConfig) -> candle_core::Result<candle_nn::AdamW> {
    candle_nn::AdamW::new(
        map.all_vars(),
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
    if let Some(dir) = init_from_clip {
        let n = init_vilt_from_clip(&map, dir)?;
        eprintln!("vilt: {n} tensors initialised from {}", dir.display());
    }
    let params: usize = map.all_vars().iter().map(|v| v.elem_count()).sum();
    let mut opt = adamw(&map, tc)?;
    let mut tok = CachedTokenizer::from_json(&bert_tokenizer_json())?;
    let scfg = scene_cfg(spec.image_size);
    let mut noise_rng = DemoRng::for_stream(tc.seed, u64::MAX);
    let start = Instant::now();
    let mut running = 0.0;
    let mut last = 0.0;
    for step in 0..tc.steps {
        let base = (step * tc.batch_size) as u64;
        let ex: Vec<VqaExample> = (0..tc.batch_size as u64)
            .map(|k| vqa_example(tc.seed, base + k, &scfg))
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
        let logits = model.forward(&ids, &mask, &types, &pix)?;
        let loss = cross_entropy(&logits, &targets)?;
        opt.set_learning_rate(tc.lr_at(step));
        opt.backward_step(&loss)?;
        let l = loss.to_scalar::<f32>()? as f64;
        running += l;
        last = l;
        if tc.log_every > 0 && (step + 1) % tc.log_every == 0 {
            let (acc, fam) = eval_vilt_twin_by_family(&model, spec, 256, &dev)?;
            eprintln!(
                "vilt step {:5} loss {:.4} lr {:.2e} heldout-acc(256) {:.3} colour/shape/exists/count {:.2?} {:.0}s",
                step + 1,
                running / tc.log_every as f64,
                tc.lr_at(step),
                acc,
                fam,
                start.elapsed().as_secs_f64()
            );
            running = 0.0;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let acc = eval_vilt_twin(&model, spec, tc.eval_samples, &dev)?;
    write_vilt_files(out, spec)?;
    map.save(out.join("model.safetensors"))?;
    Ok(TrainReport {
        seconds,
        steps: tc.steps,
        final_loss: last,
        heldout_metric: acc,
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
    let mut opt = adamw(&map, tc)?;
    let mut tok = CachedTokenizer::from_json(&clip_tokenizer_json())?;
    let scfg = scene_cfg(spec.image_size);
    let mut noise_rng = DemoRng::for_stream(tc.seed ^ 0xC119, u64::MAX);
    let start = Instant::now();
    let mut running = 0.0;
    let mut last = 0.0;
    let max_log_scale = 100f64.ln();
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
        let img = l2n(&model.image_features(&pix)?)?;
        let txt = l2n(&model.text_features(&ids, &eos)?)?;
        let logits = img
            .matmul(&txt.t()?)?
            .broadcast_mul(&model.log_logit_scale().exp()?)?;
        let ce = |lg: &Tensor| -> candle_core::Result<Tensor> {
            let lsm = candle_nn::ops::log_softmax(lg, D::Minus1)?;
            (lsm * &target)?.sum_all()?.neg()? / b as f64
        };
        // target is symmetric, so the text->image loss uses the same matrix.
        let loss = ((ce(&logits)? + ce(&logits.t()?)?)? * 0.5)?;
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
                "clip step {:5} loss {:.4} lr {:.2e} scale {:.1} heldout-R@1(200) {:.3} {:.0}s",
                step + 1,
                running / tc.log_every as f64,
                tc.lr_at(step),
                model.log_logit_scale().to_scalar::<f32>()?.exp(),
                r1,
                start.elapsed().as_secs_f64()
            );
            running = 0.0;
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
