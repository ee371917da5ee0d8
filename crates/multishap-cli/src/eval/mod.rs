//! `multishap eval <measure>`: faithfulness measures of the explanations over
//! the same configuration and manifest as `run` / `bench-k`.
//!
//! The game-generic measures live in `multishap_core::faithfulness` (where
//! their definitions are documented); this module builds the model games,
//! computes the SII / first-order explanations they need, adds the measures
//! that need the model itself (stability under image noise, masking
//! baselines, several grids) and writes `eval-<measure>.json` and
//! `eval-<measure>.html` into `--out`.
//!
//! Every sample yields named numbers (`metrics`) plus a detailed JSON
//! (`detail`: curves, maps, tables); the summary is the mean of every metric
//! over the samples that define it.
pub mod measures;
pub mod noise;
pub mod pointing;

use crate::cli::CommonArgs;
use crate::config::Settings;
use crate::datasets::load_manifest;
use crate::errors::{user, UserContext};
use crate::explainer::{sample_seed, Explainer, SampleInput};
use anyhow::Result;
use clap::{Args, ValueEnum};
use multishap_report::eval::{
    accumulate_curve, eval_page, finish_mean_curves, summarise, EvalReport, MeanCurve, SampleEval,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which measure `eval` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Remove the top-k (patch, token) pairs by SII and by redundancy gap versus k random pairs.
    PairMasking,
    /// Deletion / insertion curves of first-order attributions (all players, patches, tokens).
    Deletion,
    /// Keep only / remove the explanation's players (top pairs by SII, top first-order players).
    Sufficiency,
    /// Ablate the whole image or text: output change and how the other modality's explanation moves.
    Modality,
    /// Redundancy gap of every pair next to its SII.
    Redundancy,
    /// Small image noise: explanation change over input change (empirical Lipschitz ratio).
    Stability,
    /// Zero / mean / noise / blur baselines on the same samples: agreement of the SII rankings.
    MaskingAblation,
    /// Explanations on several grids combined into one map; agreement with each single grid.
    MultiScale,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::PairMasking => "pair-masking",
            Measure::Deletion => "deletion",
            Measure::Sufficiency => "sufficiency",
            Measure::Modality => "modality",
            Measure::Redundancy => "redundancy",
            Measure::Stability => "stability",
            Measure::MaskingAblation => "masking-ablation",
            Measure::MultiScale => "multi-scale",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The measure to compute.
    #[arg(value_enum)]
    pub measure: Measure,
    #[command(flatten)]
    pub common: CommonArgs,
    /// JSONL manifest of the samples ({"id", "image", "text", "answer"?} per line).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output folder (eval-<measure>.json, eval-<measure>.html).
    #[arg(long, value_name = "DIR", default_value = "multishap-eval")]
    pub out: PathBuf,
    /// pair-masking: largest number of pairs removed.
    #[arg(long, default_value_t = 20)]
    pub max_pairs: usize,
    /// pair-masking: random pair orders averaged for the baseline.
    #[arg(long, default_value_t = 8)]
    pub random_repeats: usize,
    /// deletion: fractions of the players removed / inserted (increasing, in [0, 1]).
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,0.2,0.3,0.5,0.7,1")]
    pub fractions: Vec<f64>,
    /// Permutations for first-order Shapley values when the estimator gives none.
    #[arg(long, default_value_t = 8)]
    pub permutations: usize,
    /// sufficiency: explanation = the players of the top pairs by SII.
    #[arg(long, default_value_t = 5)]
    pub explanation_pairs: usize,
    /// sufficiency: explanation = this fraction of the players by first-order value.
    #[arg(long, default_value_t = 0.2)]
    pub explanation_fraction: f64,
    /// stability: noise std in [0, 1] pixel units.
    #[arg(long, default_value_t = 0.02)]
    pub noise_std: f64,
    /// stability: noisy copies per sample.
    #[arg(long, default_value_t = 3)]
    pub noise_repeats: usize,
    /// stability: a perturbation preserves the output when |v'(N) - v(N)| <= this x |v(N)|
    /// (VQA: also the same predicted answer).
    #[arg(long, default_value_t = 0.1)]
    pub output_tolerance: f64,
    /// results.jsonl files (or shards) of a `run` with the same configuration: pair-masking,
    /// sufficiency and redundancy take each sample's SII from them instead of estimating it.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub results: Vec<PathBuf>,
    /// multi-scale: square grids g x g (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "4,7,12")]
    pub grids: Vec<usize>,
}

/// The curves of one sample's detail, as (name, x, y).
fn sample_curves(
    measure: Measure,
    detail: &serde_json::Value,
) -> Vec<(String, Vec<f64>, Vec<f64>)> {
    let nums = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    match measure {
        Measure::PairMasking => {
            let pm = &detail["pair_masking"];
            let mut series: Vec<&serde_json::Value> = pm["rankings"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            series.push(&pm["random"]);
            for c in series {
                let name = c["ranking"].as_str().unwrap_or("?");
                out.push((
                    format!("score drop vs pairs removed (k / K): {name}"),
                    nums(&c["drop"]["x"]),
                    nums(&c["drop"]["y"]),
                ));
            }
        }
        Measure::Deletion => {
            for c in detail["curves"].as_array().into_iter().flatten() {
                let scope = c["scope"].as_str().unwrap_or("?");
                for kind in ["deletion", "insertion"] {
                    out.push((
                        format!("{scope} players, score vs fraction: {kind}"),
                        nums(&c[kind]["x"]),
                        nums(&c[kind]["y"]),
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

fn mean_curves(measure: Measure, samples: &[SampleEval]) -> Vec<MeanCurve> {
    let mut acc: Vec<MeanCurve> = Vec::new();
    for s in samples {
        for (name, x, y) in sample_curves(measure, &s.detail) {
            accumulate_curve(&mut acc, name, x, y);
        }
    }
    finish_mean_curves(&mut acc);
    acc
}

/// What `run_eval` wrote.
#[derive(Debug, Clone)]
pub struct EvalOutput {
    pub report: EvalReport,
    pub json: PathBuf,
    pub html: PathBuf,
}

fn check_args(a: &EvalArgs) -> Result<()> {
    let f = &a.fractions;
    if f.is_empty()
        || f.iter().any(|x| !(0.0..=1.0).contains(x))
        || f.windows(2).any(|w| w[1] < w[0])
    {
        return Err(user(
            "--fractions must be increasing values in [0, 1], e.g. 0,0.1,0.5,1",
        ));
    }
    if a.permutations == 0 {
        return Err(user("--permutations must be positive"));
    }
    if !(0.0..=1.0).contains(&a.explanation_fraction) {
        return Err(user("--explanation-fraction must be in [0, 1]"));
    }
    if a.measure == Measure::Stability && (a.noise_std <= 0.0 || a.noise_repeats == 0) {
        return Err(user(
            "stability needs --noise-std > 0 and --noise-repeats > 0",
        ));
    }
    if a.measure == Measure::MultiScale && (a.grids.is_empty() || a.grids.contains(&0)) {
        return Err(user("--grids needs positive grid sizes, e.g. 4,7,12"));
    }
    Ok(())
}

/// Runs one measure over the manifest and writes its JSON and HTML.
pub fn run_eval(a: &EvalArgs) -> Result<EvalOutput> {
    check_args(a)?;
    let settings = Settings::resolve(&a.common.overrides())?;
    let mut samples = load_manifest(&a.manifest).user_err()?;
    if let Some(l) = a.limit {
        samples.truncate(l);
    }
    let mut explainer = Explainer::load(settings)?;
    let base_engine = explainer.settings.engine.clone();
    let records: std::collections::HashMap<String, multishap_report::ExplanationRecord> =
        if a.results.is_empty() {
            Default::default()
        } else {
            let merged = multishap_report::read_shards(&a.results)
                .map_err(|e| user(format!("--results: {e}")))?;
            merged
                .records
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect()
        };
    let targets = if a.measure == Measure::MultiScale {
        pointing::read_targets(&a.manifest)?
    } else {
        Default::default()
    };
    let mut evals = Vec::new();
    let mut failed = Vec::new();
    for s in &samples {
        let input = SampleInput::from(s);
        let seed = sample_seed(explainer.settings.seed, &s.id);
        if !a.results.is_empty() && !records.contains_key(&s.id) {
            failed.push((s.id.clone(), "not in the --results files".to_string()));
            continue;
        }
        let r = measures::evaluate_sample(
            &mut explainer,
            a,
            &input,
            seed,
            targets.get(&s.id),
            records.get(&s.id),
        );
        explainer.settings.engine = base_engine.clone();
        match r {
            Ok((metrics, detail)) => evals.push(SampleEval {
                id: s.id.clone(),
                text: s.text.clone(),
                metrics,
                detail,
            }),
            Err(e) => {
                let msg = crate::errors::one_line(&e);
                eprintln!("eval: sample {} failed: {msg}", s.id);
                failed.push((s.id.clone(), msg));
            }
        }
    }
    if evals.is_empty() {
        return Err(user(format!(
            "eval {}: no sample could be evaluated",
            a.measure.name()
        )));
    }
    let report = EvalReport {
        measure: a.measure.name().to_string(),
        definition: measures::definition(a.measure).to_string(),
        // the id results records carry, so that `report` can match them
        model: explainer.model.id.clone(),
        estimator: explainer.settings.estimator.clone(),
        device: explainer.settings.device_name.clone(),
        seed: explainer.settings.seed,
        parameters: parameters(a),
        summary: summarise(&evals),
        mean_curves: mean_curves(a.measure, &evals),
        samples: evals,
        failed,
    };
    std::fs::create_dir_all(&a.out).user_ctx(|| format!("cannot create {}", a.out.display()))?;
    let json = a.out.join(format!("eval-{}.json", a.measure.name()));
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    let html_path = a.out.join(format!("eval-{}.html", a.measure.name()));
    std::fs::write(&html_path, eval_page(&report))?;
    println!("metric\tmean\tstd\tsamples");
    for (k, r) in &report.summary {
        println!("{k}\t{:.4}\t{:.4}\t{}", r.mean, r.std, r.samples);
    }
    println!("wrote {} and {}", json.display(), html_path.display());
    Ok(EvalOutput {
        report,
        json,
        html: html_path,
    })
}

fn parameters(a: &EvalArgs) -> serde_json::Value {
    use serde_json::json;
    match a.measure {
        Measure::PairMasking => {
            json!({"max_pairs": a.max_pairs, "random_repeats": a.random_repeats})
        }
        Measure::Deletion => json!({"fractions": a.fractions, "permutations": a.permutations}),
        Measure::Sufficiency => json!({"explanation_pairs": a.explanation_pairs,
            "explanation_fraction": a.explanation_fraction, "permutations": a.permutations}),
        Measure::Modality => json!({"permutations": a.permutations}),
        Measure::Redundancy => json!({}),
        Measure::Stability => json!({"noise_std": a.noise_std, "noise_repeats": a.noise_repeats,
            "output_tolerance": a.output_tolerance}),
        Measure::MaskingAblation => json!({"baselines": measures::ABLATION_BASELINES}),
        Measure::MultiScale => json!({"grids": a.grids}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explainer::{Explainer, SampleInput};
    use std::path::Path;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
    }

    /// Tiny ViLT VQA fixture, 3x3 grid, two samples.
    fn setup(dir: &Path, model: &str) -> (PathBuf, PathBuf) {
        let cfg = dir.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[model]\npath = {:?}\n[estimator]\nname = \"shared-stratified\"\ndraws = 2\nseed = 5\n[masking.image]\ngrid = {{ rows = 3, cols = 3 }}\n",
                fixtures().join("checkpoints").join(model).display().to_string()
            ),
        )
        .unwrap();
        let img = |n: &str| fixtures().join("images").join(n).display().to_string();
        // pointing region for sample "a": the left half of the image
        let (w, h) = image::image_dimensions(img("chelsea.png")).unwrap();
        image::GrayImage::from_fn(w, h, |x, _| image::Luma([if x < w / 2 { 255 } else { 0 }]))
            .save(dir.join("mask-a.png"))
            .unwrap();
        let m = dir.join("m.jsonl");
        std::fs::write(
            &m,
            format!(
                "{{\"id\": \"a\", \"image\": {:?}, \"text\": \"how many cats?\", \"answer\": \"2\", \"pointing_mask\": \"mask-a.png\", \"pointing_word\": \"how\"}}\n\
                 {{\"id\": \"b\", \"image\": {:?}, \"text\": \"what is in the cup?\"}}\n",
                img("chelsea.png"),
                img("coffee_portrait.png")
            ),
        )
        .unwrap();
        (cfg, m)
    }

    fn args(measure: Measure, cfg: &Path, manifest: &Path, out: &Path) -> EvalArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            a: EvalArgs,
        }
        let w = W::try_parse_from([
            "eval",
            measure.name(),
            "--config",
            cfg.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--max-pairs",
            "4",
            "--random-repeats",
            "3",
            "--permutations",
            "2",
            "--noise-repeats",
            "2",
            "--grids",
            "2,3",
            "--fractions",
            "0,0.5,1",
            "--limit",
            "1",
        ])
        .unwrap();
        w.a
    }

    #[test]
    fn every_measure_writes_json_and_html_on_the_tiny_model() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, m) = setup(dir.path(), "vilt-vqa-tiny");
        for measure in Measure::value_variants() {
            let out = dir.path().join(measure.name());
            let r = run_eval(&args(*measure, &cfg, &m, &out)).unwrap();
            assert!(r.report.failed.is_empty(), "{:?}", r.report.failed);
            assert_eq!(r.report.samples.len(), 1);
            assert!(!r.report.summary.is_empty(), "{}", measure.name());
            let back: EvalReport =
                serde_json::from_str(&std::fs::read_to_string(&r.json).unwrap()).unwrap();
            assert_eq!(back.measure, measure.name());
            let html = std::fs::read_to_string(&r.html).unwrap();
            assert!(html.contains("<h2>Summary</h2>"));
            // measure-specific invariants
            let s = &r.report.samples[0].metrics;
            match measure {
                Measure::Deletion => {
                    // 3 scopes x (deletion, insertion), one sample: the mean is the sample
                    assert_eq!(r.report.mean_curves.len(), 6);
                    let c = &r.report.mean_curves[0];
                    let d = &r.report.samples[0].detail["curves"][0]["deletion"]["y"];
                    assert_eq!(c.y[0], d[0].as_f64().unwrap());
                }
                Measure::PairMasking => {
                    let d = &r.report.samples[0].detail["pair_masking"];
                    let first = &d["rankings"][0]["drop"]["y"][0];
                    assert_eq!(first.as_f64(), Some(0.0));
                    assert!(s.contains_key("sii_over_random"));
                    assert_eq!(r.report.mean_curves.len(), 3);
                    assert!(html.contains("<svg"));
                }
                Measure::MaskingAblation => {
                    assert!(s.contains_key("spearman_zero_vs_blur"));
                    assert!(s.contains_key("p10_mean_vs_noise"));
                }
                Measure::MultiScale => {
                    assert!(s.contains_key("spearman_3x3_vs_aggregate"));
                    for k in [
                        "pointing_hit_2x2",
                        "pointing_hit_3x3",
                        "pointing_hit_aggregate",
                    ] {
                        assert!(s[k] == 0.0 || s[k] == 1.0, "{k}");
                    }
                    assert!(r.report.samples[0].detail["word_index"].is_u64());
                    let agg = &r.report.samples[0].detail["aggregate"];
                    assert_eq!(agg["rows"].as_u64(), Some(3));
                }
                Measure::Stability => {
                    assert!(s["preserved_share"] >= 0.0 && s["preserved_share"] <= 1.0);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn mean_curves_average_point_wise() {
        let e = |y: [f64; 2]| SampleEval {
            id: String::new(),
            text: String::new(),
            metrics: Default::default(),
            detail: serde_json::json!({ "pair_masking": {
                "rankings": [{ "ranking": "sii", "drop": { "x": [0.0, 1.0], "y": y } }],
                "random": { "ranking": "random", "drop": { "x": [0.0, 1.0], "y": [0.0, 1.0] } } } }),
        };
        let c = mean_curves(Measure::PairMasking, &[e([0.0, 2.0]), e([0.0, 4.0])]);
        assert_eq!(c.len(), 2);
        assert!(c[0].name.ends_with(": sii"));
        assert_eq!((c[0].y.clone(), c[0].samples), (vec![0.0, 3.0], 2));
        assert_eq!(c[1].y, vec![0.0, 1.0]);
    }

    #[test]
    fn results_files_supply_the_sii() {
        use crate::config::Settings;
        let dir = tempfile::tempdir().unwrap();
        let (cfg, m) = setup(dir.path(), "vilt-vqa-tiny");
        let mut a = args(Measure::Redundancy, &cfg, &m, &dir.path().join("out"));
        // a record written by the explainer with this configuration and another
        // seed (3) than eval's per-sample seed: equal values show it was used
        let ex = Explainer::load(Settings::resolve(&a.common.overrides()).unwrap()).unwrap();
        let s = &load_manifest(&m).unwrap()[0];
        let input = SampleInput {
            id: &s.id,
            image: &s.image,
            text: &s.text,
            answers: &s.answers,
            answer_type: None,
            question_type: None,
        };
        let (mut rec, _) = ex.explain(&input, 3).unwrap();
        let results = dir.path().join("results.jsonl");
        std::fs::write(&results, serde_json::to_string(&rec).unwrap() + "\n").unwrap();
        a.results = vec![results.clone()];
        let r = run_eval(&a).unwrap();
        let detail = &r.report.samples[0].detail;
        assert!(detail["sii_estimator"]
            .as_str()
            .unwrap()
            .ends_with("(from results)"));
        let rows = detail["pairs_by_gap"].as_array().unwrap().clone();
        let n = rec.tokens.len();
        for row in rows {
            let (i, j) = (
                row["patch"].as_u64().unwrap() as usize,
                row["token"].as_u64().unwrap() as usize,
            );
            let (got, want) = (row["sii"].as_f64().unwrap(), rec.sii[i][j]);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
                "pair ({i},{j}) of {n}: {got} vs {want}"
            );
        }
        // a record whose tokens differ does not fit this game
        rec.tokens[0] = "zzz".into();
        std::fs::write(&results, serde_json::to_string(&rec).unwrap() + "\n").unwrap();
        let e = run_eval(&a).unwrap_err();
        assert!(format!("{e:#}").contains("no sample"), "{e:#}");
    }

    #[test]
    fn bad_arguments_are_user_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, m) = setup(dir.path(), "vilt-vqa-tiny");
        let mut a = args(Measure::Deletion, &cfg, &m, dir.path());
        a.fractions = vec![0.5, 0.2];
        let e = run_eval(&a).unwrap_err();
        assert_eq!(crate::errors::exit_code(&e), crate::errors::EXIT_USER);
    }
}
