//! Model-forward throughput and device parity: the measurements behind
//! `multishap speed` and `benches/engine_speed.rs`.
//!
//! A [`SpeedModel`] is either a random-weight model at a real size
//! ([`crate::bench_support`]; speed does not depend on weight values) or a
//! loaded checkpoint. Its [`Tower`]s are the forwards the engine runs: the
//! CLIP image and text towers (each to its projected embedding) and the ViLT
//! VQA / ITM heads. Inputs are random, of the shapes the engine feeds
//! (the model's own image size, `text_len` tokens with the special tokens at
//! both ends); FLOPs per evaluation come from the configuration.
use crate::bench_support::{random_clip_b32, random_vilt_b32_vqa, uniform_host};
use crate::{EngineError, Result};
use candle_core::{DType, Device, Tensor};
use multishap_models::clip::{ClipConfig, ClipModel};
use multishap_models::vilt::{
    ViltConfig, ViltForImageAndTextRetrieval, ViltForQuestionAnswering, ViltInputs,
};
use multishap_models::AnyModel;
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// One forward the engine runs many times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tower {
    /// CLIP image tower + visual projection.
    ClipImage,
    /// CLIP text tower + text projection.
    ClipText,
    /// ViLT encoder + VQA head (answer logits).
    ViltVqa,
    /// ViLT encoder + ITM head (match logit).
    ViltItm,
}

impl Tower {
    pub fn name(self) -> &'static str {
        match self {
            Tower::ClipImage => "clip_image",
            Tower::ClipText => "clip_text",
            Tower::ViltVqa => "vilt_vqa",
            Tower::ViltItm => "vilt_itm",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "clip_image" => Ok(Tower::ClipImage),
            "clip_text" => Ok(Tower::ClipText),
            "vilt_vqa" => Ok(Tower::ViltVqa),
            "vilt_itm" => Ok(Tower::ViltItm),
            other => Err(EngineError::Config(format!(
                "unknown tower {other:?}: expected clip_image, clip_text, vilt_vqa or vilt_itm"
            ))),
        }
    }
}

/// A model whose forwards are measured.
#[derive(Clone, Debug)]
pub enum SpeedModel {
    Clip(ClipModel),
    ViltVqa(ViltForQuestionAnswering),
    ViltItm(ViltForImageAndTextRetrieval),
}

/// Host-side inputs of one tower at one batch size (move them with [`TowerInputs::to_device`]).
#[derive(Clone, Debug)]
pub enum TowerInputs {
    ClipImage { pixels: Tensor },
    ClipText { ids: Tensor, eos: Tensor },
    Vilt(ViltTensors),
}

/// Owned ViLT inputs (see [`ViltInputs`]).
#[derive(Clone, Debug)]
pub struct ViltTensors {
    pub ids: Tensor,
    pub attention: Tensor,
    pub token_types: Tensor,
    pub pixels: Tensor,
    pub pixel_mask: Tensor,
}

impl ViltTensors {
    pub fn inputs(&self) -> ViltInputs<'_> {
        ViltInputs {
            input_ids: &self.ids,
            attention_mask: &self.attention,
            token_type_ids: &self.token_types,
            pixel_values: &self.pixels,
            pixel_mask: &self.pixel_mask,
        }
    }
}

impl TowerInputs {
    /// The same inputs with every tensor passed through `f`.
    fn map(&self, f: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Result<Self> {
        Ok(match self {
            TowerInputs::ClipImage { pixels } => TowerInputs::ClipImage { pixels: f(pixels)? },
            TowerInputs::ClipText { ids, eos } => TowerInputs::ClipText {
                ids: f(ids)?,
                eos: f(eos)?,
            },
            TowerInputs::Vilt(v) => TowerInputs::Vilt(ViltTensors {
                ids: f(&v.ids)?,
                attention: f(&v.attention)?,
                token_types: f(&v.token_types)?,
                pixels: f(&v.pixels)?,
                pixel_mask: f(&v.pixel_mask)?,
            }),
        })
    }

    pub fn to_device(&self, dev: &Device) -> Result<Self> {
        self.map(|t| t.to_device(dev))
    }
}

impl SpeedModel {
    /// CLIP ViT-B/32 (openai/clip-vit-base-patch32's config), random weights.
    pub fn random_clip_b32(seed: u64, dev: &Device, dtype: DType) -> Result<Self> {
        Ok(SpeedModel::Clip(random_clip_b32(seed, dev, dtype)?))
    }

    /// ViLT-B/32 with the VQA head (dandelin/vilt-b32-finetuned-vqa's config), random weights.
    pub fn random_vilt_b32_vqa(seed: u64, dev: &Device, dtype: DType) -> Result<Self> {
        Ok(SpeedModel::ViltVqa(random_vilt_b32_vqa(seed, dev, dtype)?))
    }

    pub fn from_loaded(model: AnyModel) -> Self {
        match model {
            AnyModel::Clip(m) => SpeedModel::Clip(m),
            AnyModel::ViltVqa(m) => SpeedModel::ViltVqa(m),
            AnyModel::ViltRetrieval(m) => SpeedModel::ViltItm(m),
        }
    }

    /// The towers this model has.
    pub fn towers(&self) -> Vec<Tower> {
        match self {
            SpeedModel::Clip(_) => vec![Tower::ClipImage, Tower::ClipText],
            SpeedModel::ViltVqa(_) => vec![Tower::ViltVqa],
            SpeedModel::ViltItm(_) => vec![Tower::ViltItm],
        }
    }

    fn vilt_config(&self) -> Option<&ViltConfig> {
        match self {
            SpeedModel::ViltVqa(m) => Some(m.vilt().config()),
            SpeedModel::ViltItm(m) => Some(m.vilt().config()),
            SpeedModel::Clip(_) => None,
        }
    }

    fn clip_config(&self) -> Option<&ClipConfig> {
        match self {
            SpeedModel::Clip(m) => Some(m.config()),
            _ => None,
        }
    }

    fn require(&self, tower: Tower) -> Result<()> {
        if self.towers().contains(&tower) {
            Ok(())
        } else {
            Err(EngineError::Config(format!(
                "this model has no {} tower (it has {})",
                tower.name(),
                self.towers()
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Text length (special tokens included) used for `tower`: `requested`,
    /// capped at the model's maximum.
    pub fn text_len(&self, tower: Tower, requested: usize) -> usize {
        let max = match (self.clip_config(), self.vilt_config()) {
            (Some(c), _) if tower == Tower::ClipText => c.text_config.max_position_embeddings,
            (_, Some(v)) => v.max_position_embeddings,
            _ => requested,
        };
        requested.clamp(2, max.max(2))
    }

    /// Random inputs of `tower` for `batch` rows, on the host; the text has
    /// `text_len` tokens, the first and last special.
    pub fn inputs(
        &self,
        tower: Tower,
        batch: usize,
        text_len: usize,
        seed: u64,
    ) -> Result<TowerInputs> {
        self.require(tower)?;
        let l = self.text_len(tower, text_len);
        let cpu = Device::Cpu;
        let uniform = |shape: &[usize]| uniform_host(shape, seed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5EED);
        let mut ids = |lo: u32, hi: u32, first: u32, last: u32| -> Result<Tensor> {
            let mut v = Vec::with_capacity(batch * l);
            for _ in 0..batch {
                for i in 0..l {
                    v.push(match i {
                        0 => first,
                        _ if i == l - 1 => last,
                        _ => rng.random_range(lo..hi.max(lo + 1)),
                    });
                }
            }
            Ok(Tensor::from_vec(v, (batch, l), &cpu)?)
        };
        Ok(match (tower, self) {
            (Tower::ClipImage, SpeedModel::Clip(m)) => {
                let s = m.config().vision_config.image_size;
                TowerInputs::ClipImage {
                    pixels: uniform(&[batch, 3, s, s])?,
                }
            }
            (Tower::ClipText, SpeedModel::Clip(m)) => {
                let t = &m.config().text_config;
                let (bos, eos) = (t.bos_token_id, t.eos_token_id);
                let hi = (t.vocab_size as u32).saturating_sub(2).max(1);
                TowerInputs::ClipText {
                    ids: ids(0, hi, bos, eos)?,
                    eos: Tensor::full((l - 1) as u32, batch, &cpu)?,
                }
            }
            (Tower::ViltVqa | Tower::ViltItm, _) => {
                let c = self.vilt_config().expect("checked by require");
                let s = c.image_size;
                let hi = c.vocab_size as u32;
                TowerInputs::Vilt(ViltTensors {
                    // [CLS] = 101 / [SEP] = 102 in BERT vocabularies; any id below
                    // the vocabulary size costs the same
                    ids: ids((hi / 30).min(1000), hi, 101.min(hi - 1), 102.min(hi - 1))?,
                    attention: Tensor::ones((batch, l), DType::U32, &cpu)?,
                    token_types: Tensor::zeros((batch, l), DType::U32, &cpu)?,
                    pixels: uniform(&[batch, 3, s, s])?,
                    pixel_mask: Tensor::ones((batch, s, s), DType::U32, &cpu)?,
                })
            }
            _ => unreachable!("checked by require"),
        })
    }

    /// One forward of `tower`: [B, out] f32 (embeddings, answer logits or ITM logits).
    pub fn forward(&self, tower: Tower, inputs: &TowerInputs) -> Result<Tensor> {
        self.require(tower)?;
        let mismatch = || {
            EngineError::InvalidInput(format!(
                "inputs do not belong to the {} tower",
                tower.name()
            ))
        };
        Ok(match (self, inputs) {
            (SpeedModel::Clip(m), TowerInputs::ClipImage { pixels })
                if tower == Tower::ClipImage =>
            {
                m.get_image_features(pixels)?
            }
            (SpeedModel::Clip(m), TowerInputs::ClipText { ids, eos })
                if tower == Tower::ClipText =>
            {
                m.get_text_features(ids, eos)?
            }
            (SpeedModel::ViltVqa(m), TowerInputs::Vilt(v)) => m.forward(&v.inputs())?,
            (SpeedModel::ViltItm(m), TowerInputs::Vilt(v)) => m.forward(&v.inputs())?,
            _ => return Err(mismatch()),
        })
    }

    /// Forward FLOPs of one evaluation of `tower` (multiply-add = 2), from
    /// the configuration: per layer `2 s (4 d^2 + 2 d f) + 4 s^2 d` (QKV,
    /// output and MLP projections; scores and weighted sum), plus the patch
    /// embedding and the projection / heads.
    pub fn flops_per_eval(&self, tower: Tower, text_len: usize) -> f64 {
        let l_txt = self.text_len(tower, text_len) as f64;
        let encoder = |layers: usize, d: usize, f: usize, s: f64| -> f64 {
            let (d, f) = (d as f64, f as f64);
            layers as f64 * (2.0 * s * (4.0 * d * d + 2.0 * d * f) + 4.0 * s * s * d)
        };
        let patches =
            |image: usize, patch: usize| -> f64 { ((image / patch) * (image / patch)) as f64 };
        match (self, tower) {
            (SpeedModel::Clip(m), Tower::ClipImage) => {
                let c = m.config();
                let v = &c.vision_config;
                let p = patches(v.image_size, v.patch_size);
                let d = v.hidden_size as f64;
                encoder(
                    v.num_hidden_layers,
                    v.hidden_size,
                    v.intermediate_size,
                    p + 1.0,
                ) + 2.0 * p * (3 * v.patch_size * v.patch_size) as f64 * d
                    + 2.0 * d * c.projection_dim as f64
            }
            (SpeedModel::Clip(m), Tower::ClipText) => {
                let c = m.config();
                let t = &c.text_config;
                encoder(
                    t.num_hidden_layers,
                    t.hidden_size,
                    t.intermediate_size,
                    l_txt,
                ) + 2.0 * t.hidden_size as f64 * c.projection_dim as f64
            }
            (SpeedModel::ViltVqa(_) | SpeedModel::ViltItm(_), _) => {
                let c = self.vilt_config().expect("a ViLT model");
                let p = patches(c.image_size, c.patch_size);
                let d = c.hidden_size as f64;
                let head = match self {
                    SpeedModel::ViltVqa(m) => 2.0 * (d * 2.0 * d + 2.0 * d * m.num_labels() as f64),
                    _ => 2.0 * d * 2.0,
                };
                encoder(c.num_hidden_layers, c.hidden_size, c.intermediate_size, l_txt + p + 1.0)
                    + 2.0 * p * (c.num_channels * c.patch_size * c.patch_size) as f64 * d
                    + 2.0 * d * d // pooler
                    + head
            }
            _ => 0.0,
        }
    }
}

/// Median seconds per call of `f` (device synchronised after each call)
/// after one warm-up; at least `min_runs` runs and `min_seconds`, at most 50 runs.
pub fn time_forward(
    dev: &Device,
    min_runs: usize,
    min_seconds: f64,
    mut f: impl FnMut() -> Result<Tensor>,
) -> Result<f64> {
    f()?;
    dev.synchronize()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_runs.max(1) || start.elapsed().as_secs_f64() < min_seconds {
        let t = Instant::now();
        let out = f()?;
        dev.synchronize()?;
        drop(out);
        times.push(t.elapsed().as_secs_f64());
        if times.len() >= 50 {
            break;
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// Differences between a device's output and a reference output of the same inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Parity {
    /// max |device - reference|
    pub max_abs_diff: f64,
    /// max |reference| (the scale the difference is read against)
    pub max_abs_reference: f64,
}

impl Parity {
    pub fn of(device_out: &Tensor, reference: &Tensor) -> Result<Self> {
        let a = device_out
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?;
        let b = reference
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?;
        if a.dims() != b.dims() {
            return Err(EngineError::InvalidInput(format!(
                "outputs differ in shape: {:?} vs {:?}",
                a.dims(),
                b.dims()
            )));
        }
        let max_abs_diff = (a - &b)?.abs()?.max(0)?.to_scalar::<f64>()?;
        let max_abs_reference = b.abs()?.max(0)?.to_scalar::<f64>()?;
        Ok(Self {
            max_abs_diff,
            max_abs_reference,
        })
    }

    /// `max_abs_diff / max_abs_reference` (0 when the reference is all zero).
    pub fn relative(&self) -> f64 {
        if self.max_abs_reference > 0.0 {
            self.max_abs_diff / self.max_abs_reference
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multishap_models::vilt::ViltConfig;

    fn tiny_vilt() -> SpeedModel {
        let cfg: ViltConfig = serde_json::from_str(
            r#"{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "image_size": 64, "patch_size": 16, "num_channels": 3,
            "vocab_size": 200, "type_vocab_size": 2, "modality_type_vocab_size": 2, "max_position_embeddings": 16,
            "max_image_length": -1, "num_images": -1, "id2label": {"0": "a", "1": "b", "2": "c"}}"#,
        )
        .unwrap();
        let vb = crate::bench_support::random_var_builder(3, &Device::Cpu, DType::F32);
        SpeedModel::ViltVqa(ViltForQuestionAnswering::new(&cfg, vb).unwrap())
    }

    #[test]
    fn flops_match_the_hand_count_for_vilt_b32() {
        let m = SpeedModel::random_vilt_b32_vqa(0, &Device::Cpu, DType::F32).unwrap();
        // RESULTS.md's table: 28.3 GFLOP at 12 text tokens (157 positions)
        let g = m.flops_per_eval(Tower::ViltVqa, 12) / 1e9;
        assert!((g - 28.27).abs() < 0.05, "{g}");
        // text longer than the model's 40 positions is capped
        assert_eq!(m.text_len(Tower::ViltVqa, 100), 40);
    }

    #[test]
    fn inputs_have_the_engine_shapes_and_forward_runs() {
        let m = tiny_vilt();
        let i = m.inputs(Tower::ViltVqa, 3, 7, 1).unwrap();
        let out = m.forward(Tower::ViltVqa, &i).unwrap();
        assert_eq!(out.dims(), &[3, 3]);
        match &i {
            TowerInputs::Vilt(v) => {
                assert_eq!(v.ids.dims(), &[3, 7]);
                assert_eq!(v.pixels.dims(), &[3, 3, 64, 64]);
                let v = v.ids.to_vec2::<u32>().unwrap();
                assert!(v.iter().flatten().all(|&x| x < 200));
            }
            other => panic!("wrong inputs {other:?}"),
        }
        // a tower the model lacks is a clear error, not a panic
        assert!(m.inputs(Tower::ClipImage, 1, 7, 1).is_err());
        assert!(Tower::parse("vilt").is_err());
        assert_eq!(Tower::parse("vilt_vqa").unwrap(), Tower::ViltVqa);
    }

    #[test]
    fn parity_measures_the_largest_difference() {
        let a = Tensor::new(&[[1.0f32, -2.0], [0.5, 4.0]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[1.0f32, -2.5], [0.5, 4.0]], &Device::Cpu).unwrap();
        let p = Parity::of(&a, &b).unwrap();
        assert!((p.max_abs_diff - 0.5).abs() < 1e-9);
        assert!((p.max_abs_reference - 4.0).abs() < 1e-9);
        assert!((p.relative() - 0.125).abs() < 1e-9);
        let c = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        assert!(Parity::of(&a, &c).is_err());
    }

    #[test]
    fn same_seed_same_model_on_the_same_device() {
        let (a, b) = (tiny_vilt(), tiny_vilt());
        let i = a.inputs(Tower::ViltVqa, 2, 6, 9).unwrap();
        let p = Parity::of(
            &a.forward(Tower::ViltVqa, &i).unwrap(),
            &b.forward(Tower::ViltVqa, &i).unwrap(),
        )
        .unwrap();
        assert_eq!(p.max_abs_diff, 0.0);
        assert!(p.max_abs_reference > 0.0);
    }
}
