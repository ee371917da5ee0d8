//! Engine configuration (TOML via serde). Every field has a documented
//! default, so an empty `[engine]` table is a valid configuration.
//!
//! ```toml
//! [masking.image]
//! grid = { rows = 6, cols = 6 }         # default: the model's own patch grid
//! baseline = { kind = "blur", sigma = 8.0 }
//! [masking.text]
//! mode = "delete"                       # or "mask" (default)
//! [scorer]
//! vqa = "log_odds"                      # logit (default) | probability | log_odds
//! target = "ground_truth"               # predicted (default) | ground_truth | given
//! [batch]
//! max_batch = 128
//! memory_budget_mib = 2048
//! cpu_memory_budget_mib = 384           # tighter cap when running on the CPU
//! ```
use serde::{Deserialize, Serialize};

/// Everything the engine needs besides the model and the sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub masking: MaskingConfig,
    pub scorer: ScorerConfig,
    pub batch: BatchConfig,
}

impl EngineConfig {
    /// Parse from TOML text (missing fields take their defaults).
    pub fn from_toml(text: &str) -> crate::Result<Self> {
        toml::from_str(text).map_err(|e| crate::EngineError::Config(e.to_string()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskingConfig {
    pub image: ImageMasking,
    pub text: TextMasking,
}

/// Image players: a `rows x cols` grid of boxes over the preprocessed image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageMasking {
    /// Player grid. Default (`None`): the model's own patch grid (7x7 for
    /// CLIP-B/32 at 224, 12x12 for ViLT-B/32 at 384x384). A coarser grid
    /// groups patches; any `rows x cols` with rows <= H and cols <= W works
    /// (box edges at floor(r * H / rows)).
    pub grid: Option<GridSize>,
    /// What a masked patch becomes. Default: zero in normalised space.
    pub baseline: Baseline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSize {
    pub rows: usize,
    pub cols: usize,
}

/// Replacement value of masked pixels (all in the model's normalised space).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Baseline {
    /// 0 after normalisation: the dataset mean colour; for ViLT (mean = std
    /// = 0.5) this is the reference code's 0.5 gray.
    #[default]
    Zero,
    /// The image's own per-channel mean.
    Mean,
    /// Gaussian noise N(0, std^2) in normalised space from a seeded ChaCha8 stream
    /// (same noise for every coalition of a sample).
    Noise {
        #[serde(default = "default_noise_std")]
        std: f32,
        #[serde(default)]
        seed: u64,
    },
    /// The image blurred with a Gaussian of `sigma` pixels (separable, edge-clamped).
    Blur {
        #[serde(default = "default_blur_sigma")]
        sigma: f32,
    },
}

fn default_noise_std() -> f32 {
    1.0
}
fn default_blur_sigma() -> f32 {
    8.0
}

/// Text players: the word pieces of the question / caption (never special tokens).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextMasking {
    pub mode: TextMaskMode,
    /// Replacement id in `mask` mode. Default (`None`): the tokenizer's
    /// `[MASK]` (103 for BERT uncased) for ViLT, and id 0 (`!`, below
    /// `<|endoftext|>`) for CLIP, whose vocabulary has no mask token.
    pub replace_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMaskMode {
    /// Replace each masked word piece by `replace_id` (the paper's [MASK]).
    /// Sequence length and positions stay fixed.
    #[default]
    Mask,
    /// Delete masked word pieces and re-pack the kept ids to the left
    /// (the reference code's behaviour). For WordPiece this equals
    /// re-tokenising the kept pieces joined back (a piece's id does not depend
    /// on its neighbours once pieces are fixed); it differs from re-tokenising
    /// the kept *words* only when part of a word is masked and the rest is
    /// kept, where the reference would re-split the remaining text. CLIP's
    /// end-of-text position moves: it is computed per row.
    Delete,
}

/// Which number the model's output becomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorerConfig {
    pub vqa: VqaScore,
    pub target: AnswerTarget,
    /// The answer string when `target = "given"`.
    pub answer: Option<String>,
    pub retrieval: RetrievalScore,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VqaScore {
    /// Raw logit of the target answer (the reference code).
    #[default]
    Logit,
    /// Softmax probability of the target answer over all answers.
    Probability,
    /// log p - log(1 - p), computed stably as logit_t - logsumexp(other logits).
    LogOdds,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerTarget {
    /// The answer the model predicts on the unmasked input.
    #[default]
    Predicted,
    /// The dataset's ground-truth answer (the reference code), given per sample.
    GroundTruth,
    /// `scorer.answer` from the configuration.
    Given,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalScore {
    /// CLIP: cosine similarity of the projected embeddings. ViLT: ITM logit.
    #[default]
    Cosine,
    /// CLIP: exp(logit_scale) * cosine (the model's logits). ViLT: ITM logit.
    ScaledLogit,
}

/// The batch scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Upper bound on coalitions per forward pass. Default 256.
    pub max_batch: usize,
    /// Activation memory one forward pass may use, in MiB; the batch size is
    /// `min(max_batch, budget / estimated bytes per evaluation)`. Default 4096.
    pub memory_budget_mib: usize,
    /// On the CPU, the activation budget is `min(memory_budget_mib, this)`:
    /// there the limit is the caches, not the memory, and throughput drops
    /// for large batches (quiet 2-core VM: ViLT-B/32 through the engine 4.5
    /// evaluations/s at batch 32, 3.1 at 96; CLIP-B/32 image tower 14.1 at
    /// batch 64, 10.2 at 128; benches/RESULTS.md). The default 384 gives
    /// batch ~19 for ViLT-B/32, 64 for CLIP's image tower, 256 for its text
    /// tower and for the demo models.
    pub cpu_memory_budget_mib: usize,
    /// Coalition values kept per sample across calls (0 disables the cache).
    /// Default 1,000,000.
    pub cache_capacity: usize,
    /// Samples that `multishap run` explains together (ViLT models): each
    /// sample's estimator runs on its own thread and their coalitions share
    /// forward passes ([`crate::packing`]). Pays off only where one sample's
    /// requests do not fill a batch (very small budgets). 0 = auto = 1: no
    /// gain was measured on the CPU nor on an H100 (benches/RESULTS.md), where
    /// one sample's thousands of coalitions already fill the batches.
    /// Default 0.
    pub samples_in_flight: usize,
    /// Memory that proved too much (shared by every clone of this config; not configuration).
    #[serde(skip)]
    pub learned_budget: crate::scheduler::LearnedBudget,
}

impl BatchConfig {
    /// The configuration the scheduler uses on `device`: on the CPU the
    /// memory budget is capped by `cpu_memory_budget_mib`.
    pub fn for_device(&self, device: &candle_core::Device) -> Self {
        let mut c = self.clone();
        if device.is_cpu() {
            c.memory_budget_mib = c.memory_budget_mib.min(c.cpu_memory_budget_mib);
        }
        c
    }

    /// [`Self::samples_in_flight`] with auto (0) resolved: never 0.
    pub fn samples_in_flight_resolved(&self) -> usize {
        self.samples_in_flight.max(1)
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            memory_budget_mib: 4096,
            cpu_memory_budget_mib: 384,
            cache_capacity: 1_000_000,
            samples_in_flight: 0,
            learned_budget: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_cpu_the_memory_budget_is_capped_by_cpu_memory_budget() {
        let cfg = BatchConfig {
            memory_budget_mib: 4096,
            cpu_memory_budget_mib: 768,
            ..BatchConfig::default()
        };
        assert_eq!(
            cfg.for_device(&candle_core::Device::Cpu).memory_budget_mib,
            768
        );
        let small = BatchConfig {
            memory_budget_mib: 100,
            ..cfg.clone()
        };
        assert_eq!(
            small
                .for_device(&candle_core::Device::Cpu)
                .memory_budget_mib,
            100
        );
    }

    #[test]
    fn empty_toml_gives_defaults_and_fields_parse() {
        assert_eq!(
            EngineConfig::from_toml("").unwrap(),
            EngineConfig::default()
        );
        let cfg = EngineConfig::from_toml(
            r#"
            [masking.image]
            grid = { rows = 6, cols = 4 }
            baseline = { kind = "noise", seed = 7 }
            [masking.text]
            mode = "delete"
            [scorer]
            vqa = "log_odds"
            target = "given"
            answer = "2"
            [batch]
            max_batch = 8
            "#,
        )
        .unwrap();
        assert_eq!(cfg.masking.image.grid, Some(GridSize { rows: 6, cols: 4 }));
        assert_eq!(
            cfg.masking.image.baseline,
            Baseline::Noise { std: 1.0, seed: 7 }
        );
        assert_eq!(cfg.masking.text.mode, TextMaskMode::Delete);
        assert_eq!(cfg.scorer.vqa, VqaScore::LogOdds);
        assert_eq!(cfg.scorer.answer.as_deref(), Some("2"));
        assert_eq!(cfg.batch.max_batch, 8);
        assert_eq!(cfg.batch.memory_budget_mib, 4096);
        assert!(EngineConfig::from_toml("[batch]\nmax_bach = 3").is_err());
    }
}
