//! One model, many samples: image + text -> game -> estimate -> [`ExplanationRecord`].
//! Shared by `explain`, `run` and `bench-k`.
use crate::config::{is_dual_estimator, Settings};
use crate::errors::{user, UserContext};
use crate::geometry::Geometry;
use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use image::DynamicImage;
use multishap_core::{
    dual_estimator_by_name, estimator_by_name, Coalition, CoalitionBatch, Game,
    InteractionEstimate, Players,
};
use multishap_engine::{
    AnswerTarget, ClipRetrievalGame, Engine, EngineConfig, EngineError, Packer, PackingStats,
    PatchGrid, RetrievalScore, Seat, ViltEngine, ViltItmGame, ViltRows, ViltSample, ViltVqaGame,
    VqaScore,
};
use multishap_models::{AnyImageProcessor, AnyModel, LoadedModel};
use multishap_report::{
    ExplanationRecord, ModelInfo, ModelRows, PatchGrid as ReportGrid, Prediction, RecordMeta,
};
use serde_json::json;
use std::path::Path;

/// One thing to explain.
#[derive(Debug, Clone)]
pub struct SampleInput<'a> {
    pub id: &'a str,
    pub image: &'a Path,
    pub text: &'a str,
    /// Ground-truth answers (VQA), most frequent first is not required.
    pub answers: &'a [String],
    pub answer_type: Option<&'a str>,
    pub question_type: Option<&'a str>,
}

impl<'a> From<&'a crate::datasets::Sample> for SampleInput<'a> {
    fn from(s: &'a crate::datasets::Sample) -> Self {
        Self {
            id: &s.id,
            image: &s.image,
            text: &s.text,
            answers: &s.answers,
            answer_type: s.answer_type.as_deref(),
            question_type: s.question_type.as_deref(),
        }
    }
}

/// A loaded model plus the merged settings.
pub struct Explainer {
    pub model: LoadedModel,
    pub settings: Settings,
}

/// The game of one sample, whatever the model.
#[allow(clippy::large_enum_variant)] // one per sample, never in collections
pub enum AnyGame<'m> {
    Vqa(ViltVqaGame<'m>),
    Itm(ViltItmGame<'m>),
    Clip(ClipRetrievalGame<'m>),
}

impl AnyGame<'_> {
    pub fn tokens(&self) -> Vec<String> {
        match self {
            AnyGame::Vqa(g) => g.tokens(),
            AnyGame::Itm(g) => g.tokens(),
            AnyGame::Clip(g) => g.tokens(),
        }
    }

    pub fn grid(&self) -> PatchGrid {
        match self {
            AnyGame::Vqa(g) => g.grid(),
            AnyGame::Itm(g) => g.grid(),
            AnyGame::Clip(g) => g.grid(),
        }
    }

    pub fn as_game(&mut self) -> &mut dyn Game {
        match self {
            AnyGame::Vqa(g) => g,
            AnyGame::Itm(g) => g,
            AnyGame::Clip(g) => g,
        }
    }

    pub fn players(&mut self) -> Players {
        self.as_game().players()
    }

    /// Values of the full and the empty coalition.
    pub fn full_and_empty(&mut self) -> Result<(f64, f64)> {
        full_and_empty(self.as_game())
    }
}

/// What a record needs to know about a sample's game besides the estimate.
#[derive(Debug, Clone)]
pub struct GameFacts {
    pub tokens: Vec<String>,
    pub grid: PatchGrid,
    pub kind: GameKind,
    /// What the model ran for the sample so far (`None` when samples shared forwards).
    pub model_rows: Option<ModelRows>,
}

#[derive(Debug, Clone)]
pub enum GameKind {
    /// ViLT VQA: the unmasked (answer, probability) and the scored answer.
    Vqa {
        prediction: (String, f32),
        target_label: Option<String>,
    },
    Itm,
    Clip,
}

impl GameFacts {
    /// `engine`: the sample's own engine, whose counters are then the sample's
    /// model rows (`None` when samples shared forwards).
    fn of_vilt_sample(s: &ViltSample, vqa: bool, engine: Option<&ViltEngine>) -> Self {
        let kind = if vqa {
            GameKind::Vqa {
                prediction: s
                    .prediction
                    .as_ref()
                    .map(|p| (p.label.clone(), p.probability))
                    .unwrap_or_default(),
                target_label: s.target_label.clone(),
            }
        } else {
            GameKind::Itm
        };
        Self {
            tokens: s.tokens(),
            grid: *s.image.grid(),
            kind,
            model_rows: engine.map(|e| ModelRows::Joint {
                rows: e.stats().evaluated,
            }),
        }
    }
}

impl AnyGame<'_> {
    pub fn facts(&self) -> GameFacts {
        match self {
            AnyGame::Vqa(g) => GameFacts::of_vilt_sample(g.sample(), true, Some(g.engine())),
            AnyGame::Itm(g) => GameFacts::of_vilt_sample(g.sample(), false, Some(g.engine())),
            AnyGame::Clip(g) => GameFacts {
                tokens: g.tokens(),
                grid: g.grid(),
                kind: GameKind::Clip,
                model_rows: Some(ModelRows::Dual {
                    image: g.stats.image_rows_encoded,
                    text: g.stats.text_rows_encoded,
                }),
            },
        }
    }
}

/// The records of [`Explainer::explain_group`], one per input, and the
/// packer's counters when the group was packed.
pub struct GroupOutcome {
    pub results: Vec<Result<ExplanationRecord>>,
    pub packing: Option<PackingStats>,
}

/// Values of the full and the empty coalition of any game.
fn full_and_empty(game: &mut dyn Game) -> Result<(f64, f64)> {
    let d = game.players().total();
    let batch = CoalitionBatch::from_iter([Coalition::full(d), Coalition::empty(d)]);
    let v: Tensor = game.evaluate(&batch)?;
    let v = v.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok((v[0], v[1]))
}

/// The most frequent answer (first on ties): VQAv2's ten human answers -> one target.
pub fn majority_answer(answers: &[String]) -> Option<&str> {
    let mut best: Option<(&str, usize)> = None;
    for a in answers {
        let c = answers.iter().filter(|b| *b == a).count();
        if best.is_none_or(|(_, bc)| c > bc) {
            best = Some((a.as_str(), c));
        }
    }
    best.map(|(a, _)| a)
}

/// A stable per-sample seed: FNV-1a of the id mixed into the run seed, so
/// samples get independent coalitions and a rerun (or a shard) reproduces them.
pub fn sample_seed(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finaliser of seed ^ hash
    let mut z = seed ^ h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Engine errors caused by the input (bad configuration, text without
/// players, images the model cannot take, answers outside the vocabulary)
/// become user errors; tensor failures stay internal.
fn engine_err(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::Config(_) | EngineError::InvalidInput(_) | EngineError::Model(_) => {
            user(e.to_string())
        }
        other => other.into(),
    }
}

/// Estimator errors caused by the request (budget below one draw, too many
/// players for exact enumeration) become user errors.
fn core_err(e: multishap_core::Error) -> anyhow::Error {
    match e {
        multishap_core::Error::InvalidInput(_) | multishap_core::Error::TooManyPlayers { .. } => {
            user(e.to_string())
        }
        other => other.into(),
    }
}

/// Whether some standard error is undefined (NaN: one draw, or a pair the
/// permutation estimator never sampled); JSON stores it as `null`.
pub fn has_undefined_stderr(r: &ExplanationRecord) -> bool {
    r.sii_stderr.iter().flatten().any(|v| !v.is_finite())
}

pub const UNDEFINED_STDERR_WARNING: &str =
    "warning: some standard errors are undefined (written as null; \
use at least 2 draws): `multishap report` cannot read such records yet";

/// Loads an image with a one-line user error.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    if !path.exists() {
        return Err(user(format!("image {} does not exist", path.display())));
    }
    multishap_models::preprocess::load_image(path)
        .user_ctx(|| format!("cannot load image {}", path.display()))
}

fn vqa_scorer_name(s: VqaScore) -> &'static str {
    match s {
        VqaScore::Logit => "vqa-logit",
        VqaScore::Probability => "vqa-probability",
        VqaScore::LogOdds => "vqa-log-odds",
    }
}

impl Explainer {
    /// Opens the device and loads the model (errors are user errors: wrong
    /// id, missing folder, missing weights).
    pub fn load(settings: Settings) -> Result<Self> {
        let device = settings.device()?;
        let dtype = settings.dtype(&device)?;
        let model = multishap_models::load(&settings.model, &device, dtype)
            .user_ctx(|| format!("cannot load model {}", settings.model_label))?;
        if is_dual_estimator(&settings.estimator) && !matches!(model.model, AnyModel::Clip(_)) {
            return Err(user(format!(
                "estimator {} needs a dual encoder (CLIP); {} is not one",
                settings.estimator, settings.model_label
            )));
        }
        Ok(Self { model, settings })
    }

    pub fn engine_config(&self) -> &EngineConfig {
        &self.settings.engine
    }

    pub fn is_vqa(&self) -> bool {
        matches!(self.model.model, AnyModel::ViltVqa(_))
    }

    /// The game of one (image, text).
    pub fn game<'m>(&'m self, image: &DynamicImage, input: &SampleInput) -> Result<AnyGame<'m>> {
        let cfg = &self.settings.engine;
        let g = match &self.model.model {
            AnyModel::ViltVqa(_) => {
                let gt = self.ground_truth(input)?;
                AnyGame::Vqa(
                    ViltVqaGame::with_ground_truth(&self.model, image, input.text, gt, cfg)
                        .map_err(engine_err)?,
                )
            }
            AnyModel::ViltRetrieval(_) => AnyGame::Itm(
                ViltItmGame::new(&self.model, image, input.text, cfg).map_err(engine_err)?,
            ),
            AnyModel::Clip(_) => AnyGame::Clip(
                ClipRetrievalGame::new(&self.model, image, input.text, cfg).map_err(engine_err)?,
            ),
        };
        Ok(g)
    }

    /// Runs the configured estimator on a game.
    pub fn estimate(
        &self,
        game: &mut AnyGame,
        estimator: &str,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        let est = if is_dual_estimator(estimator) {
            let AnyGame::Clip(g) = game else {
                return Err(user(format!("estimator {estimator} needs a CLIP model")));
            };
            dual_estimator_by_name(estimator)
                .map_err(core_err)?
                .approximate_dual(g, budget, seed)
                .map_err(core_err)?
        } else {
            self.joint_estimate(game.as_game(), estimator, budget, seed)?
        };
        Ok(est)
    }

    /// Explains one sample with the settings' estimator and budget;
    /// `seed` is the sample's seed. Returns the record and the loaded image.
    pub fn explain(
        &self,
        input: &SampleInput,
        seed: u64,
    ) -> Result<(ExplanationRecord, DynamicImage)> {
        let image = load_image(input.image)?;
        let mut game = self.game(&image, input)?;
        let players = game.players();
        let budget = self.settings.budget_for(players)?;
        let (full, empty) = game
            .full_and_empty()
            .context("scoring the full and the empty input")?;
        let est = self.estimate(&mut game, &self.settings.estimator, budget, seed)?;
        let record = self.record(
            input,
            &image,
            &game.facts(),
            &est,
            budget,
            seed,
            full,
            empty,
        )?;
        Ok((record, image))
    }

    /// Explains several samples (each with its seed), one result per input,
    /// in order. On a ViLT model with more than one input, the samples'
    /// estimators run on threads of their own and their coalitions share
    /// forward passes ([`multishap_engine::packing`]); otherwise they run one
    /// after the other. A sample's failure is its own result; the outer error
    /// is for failures that concern every sample.
    pub fn explain_group(&self, inputs: &[(SampleInput, u64)]) -> Result<GroupOutcome> {
        let vilt = matches!(
            self.model.model,
            AnyModel::ViltVqa(_) | AnyModel::ViltRetrieval(_)
        );
        if inputs.len() < 2 || !vilt || is_dual_estimator(&self.settings.estimator) {
            return Ok(GroupOutcome {
                results: inputs
                    .iter()
                    .map(|(input, seed)| self.explain(input, *seed).map(|(r, _)| r))
                    .collect(),
                packing: None,
            });
        }
        let cfg = &self.settings.engine;
        let rows = ViltRows::for_model(&self.model, cfg).map_err(engine_err)?;
        let packer = Packer::new(Engine::new(rows.clone(), cfg.batch.clone()).map_err(engine_err)?);
        let seats = packer.seats(inputs.len());
        let rows = &rows;
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = seats
                .into_iter()
                .zip(inputs)
                .map(|(seat, (input, seed))| {
                    scope.spawn(move || self.explain_seated(rows, seat, input, *seed))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "internal error: the sample's thread panicked"
                        ))
                    })
                })
                .collect()
        });
        Ok(GroupOutcome {
            results,
            packing: Some(packer.stats()),
        })
    }

    /// One sample of [`Self::explain_group`], evaluated through its seat.
    /// `rows` prepare the sample (the same model and settings as the seat's engine).
    fn explain_seated(
        &self,
        rows: &ViltRows<'_>,
        mut seat: Seat<'_, ViltRows<'_>>,
        input: &SampleInput,
        seed: u64,
    ) -> Result<ExplanationRecord> {
        let image = load_image(input.image)?;
        let vqa = self.is_vqa();
        let gt = if vqa { self.ground_truth(input)? } else { None };
        let sample = rows
            .prepare_input(&self.model, &image, input.text, gt)
            .map_err(engine_err)?;
        let facts = GameFacts::of_vilt_sample(&sample, vqa, None);
        seat.enter(sample).map_err(engine_err)?;
        let budget = self.settings.budget_for(seat.players())?;
        let (full, empty) =
            full_and_empty(&mut seat).context("scoring the full and the empty input")?;
        let est = self.joint_estimate(&mut seat, &self.settings.estimator, budget, seed)?;
        // leave before the record is assembled: the other samples need not wait
        drop(seat);
        self.record(input, &image, &facts, &est, budget, seed, full, empty)
    }

    /// The answer a VQA sample is scored on when `scorer.target = ground_truth`.
    fn ground_truth<'i>(&self, input: &SampleInput<'i>) -> Result<Option<&'i str>> {
        let gt = majority_answer(input.answers);
        if self.settings.engine.scorer.target == AnswerTarget::GroundTruth && gt.is_none() {
            return Err(user(format!(
                "sample {}: scorer.target = ground_truth but the sample has no answer",
                input.id
            )));
        }
        Ok(gt)
    }

    fn joint_estimate(
        &self,
        game: &mut dyn Game,
        estimator: &str,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        estimator_by_name(estimator)
            .map_err(core_err)?
            .approximate(game, budget, seed)
            .map_err(core_err)
    }

    /// Assembles the record of an estimate.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        input: &SampleInput,
        image: &DynamicImage,
        game: &GameFacts,
        est: &InteractionEstimate,
        budget: usize,
        seed: u64,
        full: f64,
        empty: f64,
    ) -> Result<ExplanationRecord> {
        let cfg = &self.settings.engine;
        let grid = game.grid;
        let original = (image.width(), image.height());
        let geometry = Geometry::for_processor(
            &self.model.image_processor,
            original,
            (grid.width, grid.height),
        );
        let boxes = grid
            .boxes()
            .iter()
            .map(|b| geometry.to_original(b))
            .collect();
        let (scorer, target, prediction) = match &game.kind {
            GameKind::Vqa {
                prediction: (label, prob),
                target_label,
            } => {
                let target = match cfg.scorer.target {
                    AnswerTarget::Predicted => None,
                    _ => target_label.clone(),
                };
                (
                    vqa_scorer_name(cfg.scorer.vqa).to_string(),
                    target,
                    Prediction {
                        label: label.clone(),
                        score: *prob as f64,
                    },
                )
            }
            GameKind::Itm => (
                "vilt-itm-logit".to_string(),
                None,
                Prediction {
                    label: input.text.into(),
                    score: full,
                },
            ),
            GameKind::Clip => {
                let s = match cfg.scorer.retrieval {
                    RetrievalScore::Cosine => "clip-cosine",
                    RetrievalScore::ScaledLogit => "clip-scaled-logit",
                };
                (
                    s.to_string(),
                    None,
                    Prediction {
                        label: input.text.into(),
                        score: full,
                    },
                )
            }
        };
        let preprocessing = match &self.model.image_processor {
            AnyImageProcessor::Vilt(p) => json!({
                "processor": "vilt", "shortest_edge": p.shortest_edge, "size_divisor": p.size_divisor,
                "image_mean": p.image_mean, "image_std": p.image_std,
                "original_size": [original.0, original.1], "input_size": [grid.width, grid.height],
            }),
            AnyImageProcessor::Clip(p) => json!({
                "processor": "clip", "shortest_edge": p.shortest_edge, "crop_size": [p.crop_width, p.crop_height],
                "image_mean": p.image_mean, "image_std": p.image_std,
                "original_size": [original.0, original.1], "input_size": [grid.width, grid.height],
            }),
        };
        let mut masking = serde_json::to_value(&cfg.masking)?;
        masking["grid"] = json!({ "rows": grid.rows, "cols": grid.cols });
        let image_path =
            std::fs::canonicalize(input.image).unwrap_or_else(|_| input.image.to_path_buf());
        let meta = RecordMeta {
            id: input.id.to_string(),
            model: ModelInfo {
                id: self.model.id.clone(),
                revision: self.model.revision.clone(),
            },
            preprocessing,
            masking,
            scorer,
            target,
            budget,
            seed,
            prediction,
            full_score: full,
            empty_score: Some(empty),
            answers: (!input.answers.is_empty()).then(|| input.answers.to_vec()),
            answer_type: input.answer_type.map(str::to_string),
            question_type: input.question_type.map(str::to_string),
            text: input.text.to_string(),
            image: Some(image_path.display().to_string()),
            tokens: game.tokens.clone(),
            grid: ReportGrid {
                rows: grid.rows,
                cols: grid.cols,
                boxes,
                image_size: Some(original),
            },
            model_rows: game.model_rows,
        };
        Ok(ExplanationRecord::from_estimate(est, meta)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_and_seeds() {
        let a: Vec<String> = ["2", "3", "3", "2", "3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(majority_answer(&a), Some("3"));
        assert_eq!(majority_answer(&[]), None);
        assert_eq!(sample_seed(7, "a"), sample_seed(7, "a"));
        assert_ne!(sample_seed(7, "a"), sample_seed(7, "b"));
        assert_ne!(sample_seed(7, "a"), sample_seed(8, "a"));
    }
}
