//! Pointing game on the shipped demo models: for a question or caption about
//! one shape, does the image patch with the largest SII with the shape's (or
//! colour's) word lie on that shape (>= 10% of the patch's pixels)?
//!
//! ```text
//! cargo bench --bench pointing
//! POINTING_SAMPLES=20 POINTING_BUDGETS=512,2048 \
//!   POINTING_ESTIMATORS=shared-stratified,regression-mc,permutation cargo bench --bench pointing
//! ```
//! `POINTING_MODELS=DIR` takes the demo folders from DIR instead of `models/`
//! (to score a candidate before shipping it), `POINTING_ONLY=vilt|clip` one model,
//! `POINTING_ENGINE='scorer.vqa = "probability"'` an engine config (TOML, as in a
//! run config's engine sections) for both models instead of the defaults (ViLT's
//! answer target stays the ground truth), `POINTING_DEBUG=1` one line per miss
//! on stderr (top value, its coverage, the best on-shape value, the column's rms),
//! `POINTING_SPLIT=validation` a second set of held-out scenes, disjoint from the
//! reported one, to choose between candidate models (e.g. training seeds).
//! Held-out scenes (a seed the trainer never used). ViLT: "what color is the
//! {shape}?" (word = shape) and "what shape is {colour}?" (word = colour),
//! scored on the ground-truth answer's logit. CLIP, scored by cosine
//! similarity, two caption modes (`POINTING_CLIP_CAPTIONS=shape,scene`, the
//! default, or one of them): "shape" = the caption "a {colour} {shape}" of the
//! scene's first shape, words = its shape and colour words (a partial caption:
//! the demo CLIP was trained on captions naming every shape); "scene" = the
//! scene's own caption ("a red circle and a blue triangle"), words = every
//! shape's shape and colour words, each scored against its own shape (a word
//! another shape shares is left out). Prints one markdown row per model x
//! caption mode x estimator x budget.

use multishap::core::{
    dual_estimator_by_name, estimator_by_name, Approximator, DualApproximator, InteractionEstimate,
};
use multishap::engine::demo_queries::{demo_vqa_query, pointing_boxes};
use multishap::engine::{ClipRetrievalGame, EngineConfig};
use multishap::models::demo::pointing::{hit_rate, pointing_game, PatchBox, PointingOutcome};
use multishap::models::demo::questions::shape_caption;
use multishap::models::demo::scene::{Scene, ShapeMask};
use multishap::models::demo::train::{caption_example, vqa_example, EVAL_SEED};
use multishap::models::demo::SceneConfig;
use multishap::models::loading::{load, ModelSource};
use std::path::PathBuf;
use std::time::Instant;

/// Scene stream of the reported (test) split; `POINTING_SPLIT=validation`
/// draws from `VALIDATION_STREAM` instead, disjoint from it and from
/// training, for choosing between candidate models without touching the
/// scenes the reported figures come from.
const STREAM: u64 = 0x9017;
const VALIDATION_STREAM: u64 = 0x7A11_D000;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

struct Row {
    model: &'static str,
    estimator: String,
    budget: usize,
    outcomes: Vec<PointingOutcome>,
    /// Per query, the hit probability of a uniformly random patch (the share
    /// of patches with >= 10% shape pixels; a random patch ignores the SII sign).
    random: Vec<f64>,
    /// Per query: shapes in the scene, and whether the top patch lies on a
    /// shape other than the target (>= 10% of its pixels).
    shapes: Vec<usize>,
    on_other_shape: Vec<bool>,
    /// Per query: whether the top patch, grown by one patch on every side,
    /// touches the target's pixels.
    near_target: Vec<bool>,
    seconds: f64,
}

impl Row {
    fn new(model: &'static str, estimator: &str, budget: usize) -> Self {
        Self {
            model,
            estimator: estimator.to_string(),
            budget,
            outcomes: Vec::new(),
            random: Vec::new(),
            shapes: Vec::new(),
            on_other_shape: Vec::new(),
            near_target: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Scores one query: where the top patch of `word`'s SII column lies, and
    /// the random-patch baseline of the same shape.
    fn score(
        &mut self,
        masks: &[ShapeMask],
        target: usize,
        boxes: &[PatchBox],
        e: &InteractionEstimate,
        word: usize,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mask = &masks[target];
        self.random.push(random_patch_hit_share(mask, boxes, 0.1));
        let outcome = pointing_game(mask, boxes, &e.sii, e.text_players, word, 0.1)?;
        let b = boxes[outcome.best_patch];
        self.on_other_shape.push(
            masks
                .iter()
                .enumerate()
                .any(|(i, m)| i != target && b.coverage(m) >= 0.1),
        );
        let (w, h) = (b.x1 - b.x0, b.y1 - b.y0);
        let grown = PatchBox {
            x0: b.x0.saturating_sub(w),
            y0: b.y0.saturating_sub(h),
            x1: b.x1 + w,
            y1: b.y1 + h,
        };
        self.near_target.push(grown.coverage(mask) > 0.0);
        if std::env::var_os("POINTING_DEBUG").is_some() && !outcome.hit {
            let n = e.text_players;
            let col: Vec<f64> = (0..boxes.len()).map(|i| e.sii[i * n + word]).collect();
            let on: Vec<f64> = (0..boxes.len())
                .filter(|&i| boxes[i].coverage(mask) >= 0.1)
                .map(|i| col[i])
                .collect();
            let best_on = on.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sd = (col.iter().map(|v| v * v).sum::<f64>() / col.len() as f64).sqrt();
            eprintln!(
                "miss: shapes {} word {} best {:.4} (cov {:.2}, patch {}) best-on-shape {:.4} over {} patches, rms {:.4}",
                masks.len(), word, outcome.best_value, outcome.patch_coverage, outcome.best_patch, best_on, on.len(), sd
            );
        }
        self.shapes.push(masks.len());
        self.outcomes.push(outcome);
        Ok(())
    }

    /// Hit rate (and count) of the queries whose scene's shape count passes `keep`.
    fn hit_rate_with(&self, keep: impl Fn(usize) -> bool) -> (f64, usize) {
        let kept: Vec<PointingOutcome> = self
            .outcomes
            .iter()
            .zip(&self.shapes)
            .filter(|(_, &n)| keep(n))
            .map(|(o, _)| *o)
            .collect();
        (hit_rate(&kept), kept.len())
    }

    /// Share of the misses for which `flag` (one entry per query) is set.
    fn share_of_misses(&self, flag: &[bool]) -> f64 {
        let misses: Vec<bool> = self
            .outcomes
            .iter()
            .zip(flag)
            .filter(|(o, _)| !o.hit)
            .map(|(_, &f)| f)
            .collect();
        misses.iter().filter(|&&x| x).count() as f64 / misses.len().max(1) as f64
    }

    /// Records the wall time since `start`, logs the hit rate and appends the row.
    fn finish(mut self, start: Instant, rows: &mut Vec<Row>) {
        self.seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "{:?}",
            (
                self.model,
                &self.estimator,
                self.budget,
                hit_rate(&self.outcomes)
            )
        );
        rows.push(self);
    }
}

/// Player positions of shape `target`'s colour and shape words in `tokens`
/// (the "{colour} {shape}" pair that names it), leaving out a word another
/// shape of the scene shares: its synergy is rightly split between both.
fn shape_words(scene: &Scene, target: usize, tokens: &[String]) -> Vec<usize> {
    let s = &scene.shapes[target];
    let (colour, kind) = (s.colour.name(), s.kind.name());
    let Some(j) = tokens
        .windows(2)
        .position(|w| w[0] == colour && w[1] == kind)
    else {
        return Vec::new();
    };
    let others = || {
        scene
            .shapes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != target)
    };
    let mut words = Vec::new();
    if !others().any(|(_, o)| o.kind == s.kind) {
        words.push(j + 1);
    }
    if !others().any(|(_, o)| o.colour == s.colour) {
        words.push(j);
    }
    words
}

/// Share of `boxes` that the pointing game would count as on the shape.
fn random_patch_hit_share(mask: &ShapeMask, boxes: &[PatchBox], min_coverage: f64) -> f64 {
    let on = boxes
        .iter()
        .filter(|b| b.coverage(mask) >= min_coverage)
        .count();
    on as f64 / boxes.len().max(1) as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multishap::models::cpu_alloc::keep_freed_memory_for_reuse();
    let samples: usize = env_or("POINTING_SAMPLES", "20").parse()?;
    let budgets: Vec<usize> = env_or("POINTING_BUDGETS", "512,2048")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let estimators: Vec<String> = env_or(
        "POINTING_ESTIMATORS",
        "shared-stratified,regression-mc,permutation",
    )
    .split(',')
    .map(|s| s.trim().to_string())
    .collect();
    let dual = env_or("POINTING_DUAL", "dual-encoder");
    let root = std::env::var_os("POINTING_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    let only = env_or("POINTING_ONLY", "");
    let stream = match env_or("POINTING_SPLIT", "test").as_str() {
        "test" => STREAM,
        "validation" => VALIDATION_STREAM,
        other => {
            return Err(format!("POINTING_SPLIT must be test or validation, not {other}").into())
        }
    };
    let engine_cfg = EngineConfig::from_toml(&env_or("POINTING_ENGINE", ""))?;
    let dev = candle_core::Device::Cpu;
    let load_demo = |name: &str| {
        load(
            &ModelSource::Local(root.join(name)),
            &dev,
            candle_core::DType::F32,
        )
    };
    let scfg = SceneConfig {
        image_size: 96,
        ..SceneConfig::default()
    };
    let mut rows: Vec<Row> = Vec::new();

    // ViLT VQA.
    if only != "clip" {
        let vilt = load_demo("demo-vilt-vqa")?;
        let mut queries = Vec::new();
        let mut k = 0u64;
        while queries.len() < samples {
            let ex = vqa_example(EVAL_SEED ^ stream, k, &scfg);
            k += 1;
            if ex.question.kind.is_about_one_shape() {
                queries.push(ex);
            }
        }
        for name in &estimators {
            let est: Box<dyn Approximator> = estimator_by_name(name)?;
            for &budget in &budgets {
                let t = Instant::now();
                let mut row = Row::new("demo-vilt-vqa", name, budget);
                for (i, ex) in queries.iter().enumerate() {
                    let mut q = demo_vqa_query(&vilt, ex, &engine_cfg)?;
                    let (Some(word), Some(target)) = (q.key_word, ex.question.target) else {
                        continue;
                    };
                    let e = est.approximate(&mut q.game, budget, i as u64)?;
                    row.score(&ex.rendered.masks, target, &q.boxes, &e, word)?;
                }
                row.finish(t, &mut rows);
            }
        }
    }

    // CLIP retrieval (dual-encoder estimator plus the general ones).
    if only != "vilt" {
        let clip = load_demo("demo-clip")?;
        let ccfg = engine_cfg.clone();
        let cap: Vec<_> = (0..samples as u64)
            .map(|k| caption_example(EVAL_SEED ^ stream, k, &scfg))
            .collect();
        let mut names: Vec<String> = vec![dual.clone()];
        names.extend(estimators.iter().cloned());
        let caption_modes = env_or("POINTING_CLIP_CAPTIONS", "shape,scene");
        for mode in caption_modes.split(',').map(str::trim) {
            let scene_caption = match mode {
                "shape" => false,
                "scene" => true,
                other => return Err(format!("POINTING_CLIP_CAPTIONS: unknown mode {other}").into()),
            };
            let label = if scene_caption {
                "demo-clip, scene caption"
            } else {
                "demo-clip, one-shape caption"
            };
            for name in &names {
                for &budget in &budgets {
                    let t = Instant::now();
                    let mut row = Row::new(label, name, budget);
                    for (i, ex) in cap.iter().enumerate() {
                        let img = ex.rendered.image.clone().into();
                        let text = if scene_caption {
                            ex.caption.clone()
                        } else {
                            shape_caption(&ex.scene, 0)
                        };
                        let mut game = ClipRetrievalGame::new(&clip, &img, &text, &ccfg)?;
                        let tokens = game.tokens();
                        let b = pointing_boxes(&game.patch_boxes());
                        let e = if *name == dual {
                            let d: Box<dyn DualApproximator> = dual_estimator_by_name(name)?;
                            d.approximate_dual(&mut game, budget, i as u64)?
                        } else {
                            estimator_by_name(name)?.approximate(&mut game, budget, i as u64)?
                        };
                        let targets = if scene_caption {
                            0..ex.scene.shapes.len()
                        } else {
                            0..1
                        };
                        for target in targets {
                            for word in shape_words(&ex.scene, target, &tokens) {
                                row.score(&ex.rendered.masks, target, &b, &e, word)?;
                            }
                        }
                    }
                    row.finish(t, &mut rows);
                }
            }
        }
    }

    println!(
        "| Model | Estimator | Budget (evals/sample) | Queries | Hit rate | Random patch | Hit, 1-shape scenes | Hit, 2-3 shapes | Misses on another shape | Misses within one patch of the shape | Wall s |"
    );
    println!(
        "|-------|-----------|-----------------------|---------|----------|--------------|------|------|------|------|--------|"
    );
    for r in &rows {
        let (one, n_one) = r.hit_rate_with(|n| n == 1);
        let (many, n_many) = r.hit_rate_with(|n| n > 1);
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} ({}) | {:.3} ({}) | {:.2} | {:.2} | {:.1} |",
            r.model,
            r.estimator,
            r.budget,
            r.outcomes.len(),
            hit_rate(&r.outcomes),
            mean(&r.random),
            one,
            n_one,
            many,
            n_many,
            r.share_of_misses(&r.on_other_shape),
            r.share_of_misses(&r.near_target),
            r.seconds
        );
    }
    Ok(())
}
