//! `multishap bench-k`: how the estimate's cost and stability grow with K.
//!
//! K is the number of *draws*: the budget of a sample is K x
//! [`crate::config::evaluations_per_draw`] of the estimator, plus its
//! [`crate::config::fixed_evaluations`] (for `per-pair`, K coalitions per
//! pair as in the paper; for `shared` / `regression-mc`, K coalitions toggled at
//! every patch and token; see that function's table). For every K and sample the
//! estimate is computed with two seeds on a fresh game (no value cache shared
//! between runs) and compared:
//! - `spearman_seeds`, `p10_seeds`: Spearman rho and Precision@10 (top pairs by
//!   |SII|) between the two seeds at this K;
//! - `spearman_vs_max`, `p10_vs_max`: seed A at this K against seed B at the
//!   largest K (the best available reference; at the largest K it equals the
//!   two-seed figure).
//!
//! Writes `bench-k.json` (per K and per sample) and `bench-k.svg`.
use crate::cli::BenchKArgs;
use crate::config::{budget_for, BudgetSpec, Draws, Settings};
use crate::datasets::load_manifest;
use crate::errors::{user, UserContext};
use crate::explainer::{load_image, sample_seed, Explainer, SampleInput};
use anyhow::Result;
use multishap_core::ranking::{mean_defined, precision_at_k, spearman};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// One K, averaged over samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KRow {
    pub k: usize,
    pub mean_budget: f64,
    pub mean_evaluations: f64,
    /// Wall seconds per sample and seed: game set-up (preprocessing, the
    /// prediction) plus the estimate.
    pub seconds_per_sample: f64,
    /// The estimator's own seconds per sample and seed.
    pub estimator_seconds_per_sample: f64,
    pub spearman_seeds: Option<f64>,
    pub p10_seeds: Option<f64>,
    pub spearman_vs_max: Option<f64>,
    pub p10_vs_max: Option<f64>,
}

/// One sample at one K.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleRow {
    pub id: String,
    pub k: usize,
    pub image_players: usize,
    pub text_players: usize,
    pub budget: usize,
    pub evaluations: [usize; 2],
    /// Wall seconds (game set-up + estimate) per seed.
    pub seconds: [f64; 2],
    /// The estimator's own seconds per seed.
    pub estimator_seconds: [f64; 2],
    pub spearman_seeds: Option<f64>,
    pub p10_seeds: Option<f64>,
    pub spearman_vs_max: Option<f64>,
    pub p10_vs_max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchK {
    pub model: String,
    pub estimator: String,
    pub device: String,
    /// What one draw costs for this estimator.
    pub draw_definition: String,
    pub seeds: [u64; 2],
    pub samples: usize,
    pub rows: Vec<KRow>,
    pub per_sample: Vec<SampleRow>,
    /// Samples that could not be explained (id, error).
    pub failed: Vec<(String, String)>,
}

fn draw_definition(estimator: &str) -> String {
    match estimator {
        "per-pair" | "per-pair-stratified" => {
            "4 m n evaluations (one 4-evaluation coalition per pair)".into()
        }
        "permutation" => "d + 1 + ceil(2 m n / d) evaluations (one permutation)".into(),
        "dual-encoder" => {
            "m + n + 2 encoder passes (one image and one text base coalition, toggled)".into()
        }
        "dual-exact-text" => {
            "m + 1 image passes (one image base coalition, toggled), plus all 2^n text coalitions once".into()
        }
        "exact" => "exact: no notion of draws".into(),
        _ => "(m+1)(n+1) evaluations (one coalition toggled at every patch and token)".into(),
    }
}

pub fn run(a: &BenchKArgs) -> Result<BenchK> {
    let mut ks = a.k.clone();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() || ks[0] == 0 {
        return Err(user("--k needs positive draw counts, e.g. --k 8,16,32"));
    }
    let settings = Settings::resolve(&a.common.overrides())?;
    if settings.estimator == "exact" {
        return Err(user("bench-k compares sampling estimators; exact has no K"));
    }
    let seeds = match &a.seeds {
        Some(s) if s.len() == 2 && s[0] != s[1] => [s[0], s[1]],
        Some(_) => return Err(user("--seeds needs two different seeds, e.g. --seeds 0,1")),
        None => [settings.seed, settings.seed.wrapping_add(1)],
    };
    let mut samples = load_manifest(&a.manifest).user_err()?;
    if let Some(l) = a.limit {
        samples.truncate(l);
    }
    let explainer = Explainer::load(settings)?;
    let estimator = explainer.settings.estimator.clone();
    let kmax = *ks.last().unwrap_or(&1);
    let mut per_sample = Vec::new();
    let mut failed = Vec::new();
    for s in &samples {
        let input = SampleInput::from(s);
        match bench_sample(&explainer, &input, &estimator, &ks, kmax, seeds) {
            Ok(rows) => per_sample.extend(rows),
            Err(e) => {
                let msg = crate::errors::one_line(&e);
                eprintln!("bench-k: sample {} failed: {msg}", s.id);
                failed.push((s.id.clone(), msg));
            }
        }
    }
    if per_sample.is_empty() {
        return Err(user("bench-k: no sample could be explained"));
    }
    let rows: Vec<KRow> = ks
        .iter()
        .map(|&k| {
            let rs: Vec<&SampleRow> = per_sample.iter().filter(|r| r.k == k).collect();
            let n = rs.len().max(1) as f64;
            let mean = |f: &dyn Fn(&SampleRow) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / n;
            KRow {
                k,
                mean_budget: mean(&|r| r.budget as f64),
                mean_evaluations: mean(&|r| (r.evaluations[0] + r.evaluations[1]) as f64 / 2.0),
                seconds_per_sample: mean(&|r| (r.seconds[0] + r.seconds[1]) / 2.0),
                estimator_seconds_per_sample: mean(&|r| {
                    (r.estimator_seconds[0] + r.estimator_seconds[1]) / 2.0
                }),
                spearman_seeds: mean_defined(rs.iter().map(|r| r.spearman_seeds)),
                p10_seeds: mean_defined(rs.iter().map(|r| r.p10_seeds)),
                spearman_vs_max: mean_defined(rs.iter().map(|r| r.spearman_vs_max)),
                p10_vs_max: mean_defined(rs.iter().map(|r| r.p10_vs_max)),
            }
        })
        .collect();
    let out = BenchK {
        model: explainer.settings.model_label.clone(),
        estimator: estimator.clone(),
        device: explainer.settings.device_name.clone(),
        draw_definition: draw_definition(&estimator),
        seeds,
        samples: samples.len() - failed.len(),
        rows,
        per_sample,
        failed,
    };
    std::fs::create_dir_all(&a.out).user_ctx(|| format!("cannot create {}", a.out.display()))?;
    let json_path = a.out.join("bench-k.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&out)? + "\n")?;
    let svg_path: PathBuf = a.out.join("bench-k.svg");
    std::fs::write(&svg_path, plot_svg(&out))?;
    println!("K\tbudget\tevals\ts/sample\tspearman(seeds)\tP@10(seeds)\tspearman(vs K={kmax})\tP@10(vs K={kmax})");
    let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
    for r in &out.rows {
        println!(
            "{}\t{:.0}\t{:.0}\t{:.3}\t{}\t{}\t{}\t{}",
            r.k,
            r.mean_budget,
            r.mean_evaluations,
            r.seconds_per_sample,
            f(r.spearman_seeds),
            f(r.p10_seeds),
            f(r.spearman_vs_max),
            f(r.p10_vs_max)
        );
    }
    println!("wrote {} and {}", json_path.display(), svg_path.display());
    Ok(out)
}

/// Both seeds of one K on one sample.
struct Run {
    k: usize,
    sii: [Vec<f64>; 2],
    evals: [usize; 2],
    secs: [f64; 2],
    est_secs: [f64; 2],
    budget: usize,
    shape: (usize, usize),
}

fn bench_sample(
    ex: &Explainer,
    input: &SampleInput,
    estimator: &str,
    ks: &[usize],
    kmax: usize,
    seeds: [u64; 2],
) -> Result<Vec<SampleRow>> {
    let image = load_image(input.image)?;
    // (k, seed index) -> (sii, evaluations, seconds)
    let mut runs: Vec<Run> = Vec::new();
    for &k in ks {
        let mut sii: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut evals = [0; 2];
        let mut secs = [0.0; 2];
        let mut est_secs = [0.0; 2];
        let mut budget = 0;
        let mut shape = (0, 0);
        for (si, &seed) in seeds.iter().enumerate() {
            let start = Instant::now();
            let mut game = ex.game(&image, input)?;
            let players = game.players();
            // K draws cost what `draws = K` costs in a config (exact is refused above)
            budget = budget_for(estimator, BudgetSpec::Draws(Draws::Count(k)), players)?;
            let est = ex.estimate(&mut game, estimator, budget, sample_seed(seed, input.id))?;
            secs[si] = start.elapsed().as_secs_f64();
            est_secs[si] = est.seconds;
            evals[si] = est.evaluations;
            sii[si] = est.sii;
            shape = (players.image, players.text);
        }
        runs.push(Run {
            k,
            sii,
            evals,
            secs,
            est_secs,
            budget,
            shape,
        });
    }
    let reference = runs
        .iter()
        .find(|r| r.k == kmax)
        .map(|r| r.sii[1].clone())
        .unwrap_or_default();
    Ok(runs
        .into_iter()
        .map(
            |Run {
                 k,
                 sii,
                 evals,
                 secs,
                 est_secs,
                 budget,
                 shape: (m, n),
             }| SampleRow {
                id: input.id.to_string(),
                k,
                image_players: m,
                text_players: n,
                budget,
                evaluations: evals,
                seconds: secs,
                estimator_seconds: est_secs,
                spearman_seeds: spearman(&sii[0], &sii[1]),
                p10_seeds: precision_at_k(&sii[0], &sii[1], 10),
                spearman_vs_max: spearman(&sii[0], &reference),
                p10_vs_max: precision_at_k(&sii[0], &reference, 10),
            },
        )
        .collect())
}

/// Two panels over log2 K: stability (Spearman, P@10) and seconds per sample.
pub fn plot_svg(b: &BenchK) -> String {
    let (w, h) = (980.0, 380.0);
    let (pw, ph) = (380.0, 260.0);
    let panels = [(70.0, 50.0), (560.0, 50.0)];
    let ks: Vec<f64> = b.rows.iter().map(|r| (r.k as f64).log2()).collect();
    let (kmin, kmax) = (
        ks.first().copied().unwrap_or(0.0),
        ks.last().copied().unwrap_or(1.0),
    );
    let xspan = if kmax > kmin { kmax - kmin } else { 1.0 };
    let x_at = |x0: f64, lk: f64| x0 + 20.0 + (lk - kmin) / xspan * (pw - 40.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">bench-k: {} on {} ({} samples; K = draws, one draw = {})</text>",
        w / 2.0,
        crate::html_escape(&b.estimator),
        crate::html_escape(&b.model),
        b.samples,
        crate::html_escape(&b.draw_definition)
    );
    let smin = b
        .rows
        .iter()
        .flat_map(|r| {
            [
                r.spearman_seeds,
                r.spearman_vs_max,
                r.p10_seeds,
                r.p10_vs_max,
            ]
        })
        .flatten()
        .fold(0.0f64, f64::min);
    let tmax = b
        .rows
        .iter()
        .map(|r| r.seconds_per_sample)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let axes: [(f64, f64, &str); 2] = [(smin, 1.0, "agreement"), (0.0, tmax, "seconds per sample")];
    for (pi, &(x0, y0)) in panels.iter().enumerate() {
        let (lo, hi, label) = axes[pi];
        let y_at = |v: f64| y0 + ph - (v - lo) / (hi - lo).max(1e-12) * ph;
        let _ = write!(
            s,
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">K (draws, log scale)</text>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">{label}</text>",
            x0 + pw / 2.0,
            y0 + ph + 36.0,
            x0 - 45.0,
            y0 + ph / 2.0,
            x0 - 45.0,
            y0 + ph / 2.0
        );
        for t in 0..=4 {
            let v = lo + (hi - lo) * t as f64 / 4.0;
            let y = y_at(v);
            let _ = write!(
                s,
                "<line x1=\"{x0}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 + pw,
                x0 - 4.0,
                y + 4.0,
                if hi >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") }
            );
        }
        for (r, &lk) in b.rows.iter().zip(&ks) {
            let x = x_at(x0, lk);
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                y0 + ph + 16.0,
                r.k
            );
        }
        let series: Vec<(&str, &str, Vec<Option<f64>>)> = if pi == 0 {
            vec![
                (
                    "Spearman, two seeds",
                    "#1f77b4",
                    b.rows.iter().map(|r| r.spearman_seeds).collect(),
                ),
                (
                    "P@10, two seeds",
                    "#ff7f0e",
                    b.rows.iter().map(|r| r.p10_seeds).collect(),
                ),
                (
                    "Spearman vs largest K",
                    "#2ca02c",
                    b.rows.iter().map(|r| r.spearman_vs_max).collect(),
                ),
                (
                    "P@10 vs largest K",
                    "#d62728",
                    b.rows.iter().map(|r| r.p10_vs_max).collect(),
                ),
            ]
        } else {
            vec![(
                "seconds / sample",
                "#9467bd",
                b.rows.iter().map(|r| Some(r.seconds_per_sample)).collect(),
            )]
        };
        for (si, (name, colour, vals)) in series.iter().enumerate() {
            let pts: Vec<String> = vals
                .iter()
                .zip(&ks)
                .filter_map(|(v, &lk)| v.map(|v| format!("{:.1},{:.1}", x_at(x0, lk), y_at(v))))
                .collect();
            let _ = write!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                pts.join(" ")
            );
            for p in &pts {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    s,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
                );
            }
            let ly = y0 + ph + 52.0 + 0.0 * si as f64;
            let lx = x0 + (si as f64) * (pw / series.len() as f64);
            let _ = write!(
                s,
                "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{name}</text>",
                ly - 9.0,
                lx + 13.0,
                ly
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
