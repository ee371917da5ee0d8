//! The per-sample measures of `multishap eval`.
use super::noise::gaussian_noise;
use super::pointing::{self, PointingTarget};
use super::{EvalArgs, Measure};
use crate::errors::user;
use crate::explainer::{load_image, AnyGame, Explainer, SampleInput};
use crate::geometry::Geometry;
use anyhow::Result;
use image::DynamicImage;
use multishap_core::faithfulness as fm;
use multishap_core::ranking::{precision_at_k, spearman};
use multishap_core::sampling::{random_subset, rng_from_seed};
use multishap_core::{Game, InteractionEstimate};
use multishap_engine::{Baseline, GridSize};
use multishap_report::ExplanationRecord;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub type Metrics = BTreeMap<String, f64>;

/// The baselines `masking-ablation` compares (in this order).
pub const ABLATION_BASELINES: [&str; 4] = ["zero", "mean", "noise", "blur"];

/// Sub-games with at most this many players get exact Shapley values
/// (modality measure); larger ones permutation sampling.
const EXACT_SHAPLEY_MAX: usize = 12;

/// What each measure computes; written into the JSON and the HTML.
pub fn definition(m: Measure) -> &'static str {
    match m {
        Measure::PairMasking => "Removing a (patch i, token j) pair masks both players; removing k pairs masks the union of their players. \
            For k = 0..K the drop is v(N) - v(N minus the players of the first k pairs of a ranking); x = k/K and the area is the trapezoid rule (the mean drop). \
            Rankings: SII (largest first) and redundancy gap (largest first); baseline: the mean over random pair orders with the same k. \
            drop_area_* are the areas; *_over_random = area minus the random area (positive: the ranking finds pairs that matter more than random ones).",
        Measure::Deletion => "First-order Shapley values (permutation sampling, --permutations) rank the players of a scope (all, image, text). \
            Deletion: v(N minus the top c players); insertion: v(players outside the scope plus the top c); c = round(fraction x scope size). \
            Areas by the trapezoid rule over the fractions; *_norm = (area - v_masked_scope) / (v(N) - v_masked_scope). Good explanations: small deletion, large insertion area.",
        Measure::Sufficiency => "Explanation E = both players of the top --explanation-pairs pairs by SII (pairs_*), or the top --explanation-fraction of players by first-order value (first_order_*), \
            or a random set of the size of the pair explanation (random_*). sufficiency_gap = v(N) - v(E) (keep only E; 0 = sufficient); necessity = v(N) - v(N minus E) (remove E). \
            *_normalised: divided by v(N) - v(empty).",
        Measure::Modality => "Granger-style: image_ablation_change = v(N) - v(text only), text_ablation_change = v(N) - v(image only). \
            The text players' Shapley values with the whole image present versus masked (and the image players' with the text present versus masked): \
            relative L2 change and cosine. Exact Shapley up to 12 free players, permutation sampling above.",
        Measure::Redundancy => "Redundancy gap R_ij = D_ij - D_i - D_j with removal effects D_S = v(N) - v(N minus S); equivalently -(v(N) - v(N-i) - v(N-j) + v(N-i-j)). \
            R > 0: the two players substitute for each other (removing both costs more than the sum of removing each); R < 0: complements. \
            Reported next to the SII of every pair; spearman_sii_gap compares the two rankings.",
        Measure::Stability => "Gaussian noise of std --noise-std (in [0, 1] pixel units, rounded to 8 bits) is added to the image; a perturbation preserves the output when |v'(N) - v(N)| <= tol |v(N)| \
            (VQA: and the same predicted answer). The SII is re-estimated with the same seed. lipschitz = ||SII' - SII||_2 / ||x' - x||_2 (over output-preserving perturbations); \
            relative_lipschitz = (||dSII|| / ||SII||) / (||dx|| / ||x||); spearman = rank agreement of SII and SII'.",
        Measure::MaskingAblation => "The SII grid is estimated with the same seed under the image baselines zero (0 after normalisation), mean (the image mean), noise (N(0,1) in normalised space) and blur (Gaussian, sigma 8 px); \
            text masking is unchanged. spearman_a_vs_b and p10_a_vs_b (Precision@10 of the top pairs by |SII|) compare every two baselines.",
        Measure::MultiScale => "The SII is estimated on each g x g grid; the token-average map of each grid is resampled (nearest cell) to the finest grid, divided by its max |value|, and averaged into one map. \
            spearman_gxg_vs_aggregate and argmax_agree_gxg compare each single grid with the aggregate on the finest grid. \
            Pointing game (samples whose manifest line has pointing_mask, optionally pointing_word, whose SII column then replaces the token average): \
            pointing_hit_gxg and pointing_hit_aggregate are 1 when the patch with the largest positive value has >= 10% of its pixels in the region; their means are hit rates.",
    }
}

fn estimate(ex: &Explainer, game: &mut AnyGame, seed: u64) -> Result<InteractionEstimate> {
    let budget = ex.settings.budget_for(game.players())?;
    ex.estimate(game, &ex.settings.estimator, budget, seed)
}

/// The SII of a sample: from `--results` when given (its grid and tokens must
/// match the game's), else estimated with the configured estimator and budget.
fn sii_of(
    ex: &Explainer,
    game: &mut AnyGame,
    seed: u64,
    record: Option<&ExplanationRecord>,
) -> Result<InteractionEstimate> {
    let Some(r) = record else {
        return estimate(ex, game, seed);
    };
    let players = game.players();
    let tokens = game.tokens();
    let m = r.sii.len();
    if m != players.image || r.tokens != tokens || r.sii.iter().any(|row| row.len() != players.text)
    {
        return Err(user(format!(
            "results record {}: {} patches x tokens {:?}, but the game under this configuration has {} patches x tokens {:?} \
             (use the configuration of the run that wrote the results)",
            r.id, m, r.tokens, players.image, tokens
        )));
    }
    Ok(InteractionEstimate {
        estimator: format!("{} (from results)", r.estimator),
        image_players: players.image,
        text_players: players.text,
        sii: r.sii.concat(),
        stderr: r.sii_stderr.concat(),
        shapley: r.shapley.clone(),
        evaluations: r.evaluations,
        seconds: r.seconds,
    })
}

fn put(m: &mut Metrics, k: impl Into<String>, v: Option<f64>) {
    if let Some(v) = v.filter(|v| v.is_finite()) {
        m.insert(k.into(), v);
    }
}

/// Computes `a.measure` on one sample.
pub fn evaluate_sample(
    ex: &mut Explainer,
    a: &EvalArgs,
    input: &SampleInput,
    seed: u64,
    target: Option<&PointingTarget>,
    record: Option<&ExplanationRecord>,
) -> Result<(Metrics, Value)> {
    let image = load_image(input.image)?;
    match a.measure {
        Measure::MaskingAblation => return masking_ablation(ex, &image, input, seed),
        Measure::MultiScale => return multi_scale(ex, a, &image, input, seed, target),
        _ => {}
    }
    let ex: &Explainer = ex;
    let mut game = ex.game(&image, input)?;
    match a.measure {
        Measure::PairMasking => pair_masking(ex, a, &mut game, seed, record),
        Measure::Deletion => deletion(a, &mut game, seed),
        Measure::Sufficiency => sufficiency(ex, a, &mut game, seed, record),
        Measure::Modality => modality(a, &mut game, seed),
        Measure::Redundancy => redundancy(ex, &mut game, seed, record),
        Measure::Stability => stability(ex, a, game, &image, input, seed),
        Measure::MaskingAblation | Measure::MultiScale => unreachable!("handled above"),
    }
}

fn pair_masking(
    ex: &Explainer,
    a: &EvalArgs,
    game: &mut AnyGame,
    seed: u64,
    record: Option<&ExplanationRecord>,
) -> Result<(Metrics, Value)> {
    let est = sii_of(ex, game, seed, record)?;
    let (m, n) = (est.image_players, est.text_players);
    let gaps = fm::redundancy_gaps(game.as_game())?;
    let rankings = vec![
        ("sii".to_string(), fm::rank_pairs_desc(&est.sii, m, n)?),
        (
            "redundancy_gap".to_string(),
            fm::rank_pairs_desc(&gaps.gap, m, n)?,
        ),
    ];
    let cfg = fm::PairMaskingConfig {
        max_pairs: a.max_pairs,
        random_repeats: a.random_repeats,
        seed,
    };
    let r = fm::pair_masking(game.as_game(), &rankings, &cfg)?;
    let mut mt = Metrics::new();
    mt.insert("full_value".into(), r.full_value);
    for c in &r.rankings {
        mt.insert(format!("drop_area_{}", c.ranking), c.drop_area);
        put(
            &mut mt,
            format!("{}_over_random", c.ranking),
            c.area_over_random,
        );
    }
    mt.insert("drop_area_random".into(), r.random.drop_area);
    Ok((
        mt,
        json!({ "tokens": game.tokens(), "sii_estimator": est.estimator, "pair_masking": r }),
    ))
}

fn deletion(a: &EvalArgs, game: &mut AnyGame, seed: u64) -> Result<(Metrics, Value)> {
    let attr = fm::permutation_shapley(game.as_game(), a.permutations, seed)?;
    let mut mt = Metrics::new();
    let mut curves = Vec::new();
    for (scope, name) in [
        (fm::Scope::All, "all"),
        (fm::Scope::Image, "image"),
        (fm::Scope::Text, "text"),
    ] {
        let r = fm::deletion_insertion(game.as_game(), &attr, scope, &a.fractions)?;
        mt.insert(format!("deletion_area_{name}"), r.deletion_area);
        mt.insert(format!("insertion_area_{name}"), r.insertion_area);
        put(
            &mut mt,
            format!("deletion_area_norm_{name}"),
            r.deletion_area_normalised,
        );
        put(
            &mut mt,
            format!("insertion_area_norm_{name}"),
            r.insertion_area_normalised,
        );
        curves.push(r);
    }
    Ok((
        mt,
        json!({ "tokens": game.tokens(), "shapley": attr, "curves": curves }),
    ))
}

fn add_suff(mt: &mut Metrics, prefix: &str, r: &fm::SufficiencyNecessity) {
    mt.insert(format!("{prefix}_sufficiency_gap"), r.sufficiency_gap);
    mt.insert(format!("{prefix}_necessity"), r.necessity);
    put(
        mt,
        format!("{prefix}_sufficiency_gap_normalised"),
        r.sufficiency_gap_normalised,
    );
    put(
        mt,
        format!("{prefix}_necessity_normalised"),
        r.necessity_normalised,
    );
}

fn sufficiency(
    ex: &Explainer,
    a: &EvalArgs,
    game: &mut AnyGame,
    seed: u64,
    record: Option<&ExplanationRecord>,
) -> Result<(Metrics, Value)> {
    let players = game.players();
    let d = players.total();
    let est = sii_of(ex, game, seed, record)?;
    let ranked = fm::rank_pairs_desc(&est.sii, players.image, players.text)?;
    let top: Vec<(usize, usize)> = ranked.into_iter().take(a.explanation_pairs).collect();
    let e_pairs = fm::players_of_pairs(players, &top);
    let pairs = fm::sufficiency_necessity(game.as_game(), &e_pairs)?;
    let attr = fm::permutation_shapley(game.as_game(), a.permutations, seed)?;
    let k = ((a.explanation_fraction * d as f64).round() as usize).min(d);
    let first = fm::sufficiency_necessity(game.as_game(), &fm::top_players(&attr, k))?;
    let mut rng = rng_from_seed(seed ^ 0x5eed);
    let mut pool: Vec<usize> = (0..d).collect();
    let rand_e = random_subset(&mut rng, d, &mut pool, e_pairs.len());
    let random = fm::sufficiency_necessity(game.as_game(), &rand_e)?;
    let mut mt = Metrics::new();
    add_suff(&mut mt, "pairs", &pairs);
    add_suff(&mut mt, "first_order", &first);
    add_suff(&mut mt, "random", &random);
    mt.insert(
        "explanation_size_pairs".into(),
        pairs.explanation_size as f64,
    );
    mt.insert(
        "explanation_size_first_order".into(),
        first.explanation_size as f64,
    );
    Ok((
        mt,
        json!({ "tokens": game.tokens(), "sii_estimator": est.estimator, "top_pairs": top, "pairs": pairs, "first_order": first,
                "random": random, "random_members": rand_e.members().collect::<Vec<_>>() }),
    ))
}

fn modality(a: &EvalArgs, game: &mut AnyGame, seed: u64) -> Result<(Metrics, Value)> {
    let perms = a.permutations;
    let mut attribute = |g: &mut dyn Game| -> multishap_core::Result<Vec<f64>> {
        if g.players().total() <= EXACT_SHAPLEY_MAX {
            fm::exact_shapley(g)
        } else {
            fm::permutation_shapley(g, perms, seed)
        }
    };
    let r = fm::modality_influence(game.as_game(), &mut attribute)?;
    let mut mt = Metrics::new();
    mt.insert("full_value".into(), r.full_value);
    mt.insert("image_ablation_change".into(), r.image_ablation_change);
    mt.insert("text_ablation_change".into(), r.text_ablation_change);
    for (name, s) in [
        ("text", &r.text_explanation),
        ("image", &r.image_explanation),
    ] {
        if let Some(s) = s {
            put(
                &mut mt,
                format!("{name}_explanation_relative_l2"),
                s.relative_l2,
            );
            put(&mut mt, format!("{name}_explanation_cosine"), s.cosine);
        }
    }
    Ok((mt, json!({ "tokens": game.tokens(), "modality": r })))
}

fn redundancy(
    ex: &Explainer,
    game: &mut AnyGame,
    seed: u64,
    record: Option<&ExplanationRecord>,
) -> Result<(Metrics, Value)> {
    let est = sii_of(ex, game, seed, record)?;
    let gaps = fm::redundancy_gaps(game.as_game())?;
    let tokens = game.tokens();
    let n = est.text_players;
    let mut order: Vec<usize> = (0..est.sii.len()).collect();
    order.sort_by(|&x, &y| gaps.gap[y].total_cmp(&gaps.gap[x]).then(x.cmp(&y)));
    let rows: Vec<Value> = order
        .into_iter()
        .map(|k| {
            json!({ "patch": k / n, "token": k % n, "token_text": tokens.get(k % n),
                    "sii": est.sii[k], "redundancy_gap": gaps.gap[k] })
        })
        .collect();
    let len = gaps.gap.len().max(1) as f64;
    let mut mt = Metrics::new();
    put(&mut mt, "spearman_sii_gap", spearman(&est.sii, &gaps.gap));
    mt.insert(
        "share_redundant".into(),
        gaps.gap.iter().filter(|g| **g > 0.0).count() as f64 / len,
    );
    mt.insert(
        "mean_abs_gap".into(),
        gaps.gap.iter().map(|g| g.abs()).sum::<f64>() / len,
    );
    mt.insert(
        "mean_abs_sii".into(),
        est.sii.iter().map(|g| g.abs()).sum::<f64>() / len,
    );
    mt.insert(
        "max_gap".into(),
        gaps.gap.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    Ok((
        mt,
        json!({ "tokens": tokens, "sii_estimator": est.estimator, "pairs_by_gap": rows, "gaps": gaps }),
    ))
}

fn stability(
    ex: &Explainer,
    a: &EvalArgs,
    mut game: AnyGame,
    image: &DynamicImage,
    input: &SampleInput,
    seed: u64,
) -> Result<(Metrics, Value)> {
    let label = |g: &AnyGame| match g {
        AnyGame::Vqa(v) => Some(v.prediction().0),
        _ => None,
    };
    let (v0, _) = game.full_and_empty()?;
    let label0 = label(&game);
    let est0 = estimate(ex, &mut game, seed)?;
    drop(game);
    let norm0 = est0.sii.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut runs = Vec::new();
    for r in 0..a.noise_repeats {
        let p = gaussian_noise(image, a.noise_std, seed.wrapping_add(1 + r as u64));
        let mut g = ex.game(&p.image, input)?;
        let (v1, _) = g.full_and_empty()?;
        let preserved = (v1 - v0).abs() <= a.output_tolerance * v0.abs() && label(&g) == label0;
        let est1 = estimate(ex, &mut g, seed)?;
        let dl2 = est0
            .sii
            .iter()
            .zip(&est1.sii)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let lip = (p.input_l2 > 0.0).then(|| dl2 / p.input_l2);
        let rel =
            (p.input_l2 > 0.0 && norm0 > 0.0).then(|| (dl2 / norm0) / (p.input_l2 / p.input_norm));
        runs.push(json!({ "preserved": preserved, "output": v1, "output_change": v1 - v0,
            "input_l2": p.input_l2, "sii_l2_change": dl2, "lipschitz": lip, "relative_lipschitz": rel,
            "spearman": spearman(&est0.sii, &est1.sii) }));
    }
    let kept: Vec<&Value> = runs
        .iter()
        .filter(|r| r["preserved"] == json!(true))
        .collect();
    let mean = |k: &str, rs: &[&Value]| -> Option<f64> {
        let v: Vec<f64> = rs.iter().filter_map(|r| r[k].as_f64()).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let all: Vec<&Value> = runs.iter().collect();
    let mut mt = Metrics::new();
    mt.insert(
        "preserved_share".into(),
        kept.len() as f64 / runs.len() as f64,
    );
    put(&mut mt, "lipschitz_mean", mean("lipschitz", &kept));
    put(
        &mut mt,
        "lipschitz_max",
        kept.iter()
            .filter_map(|r| r["lipschitz"].as_f64())
            .reduce(f64::max),
    );
    put(
        &mut mt,
        "relative_lipschitz_mean",
        mean("relative_lipschitz", &kept),
    );
    put(&mut mt, "spearman_mean", mean("spearman", &kept));
    put(
        &mut mt,
        "abs_output_change_mean",
        Some(
            all.iter()
                .filter_map(|r| r["output_change"].as_f64())
                .map(f64::abs)
                .sum::<f64>()
                / all.len() as f64,
        ),
    );
    Ok((mt, json!({ "output": v0, "runs": runs })))
}

fn baseline(name: &str) -> Baseline {
    match name {
        "mean" => Baseline::Mean,
        "noise" => Baseline::Noise { std: 1.0, seed: 0 },
        "blur" => Baseline::Blur { sigma: 8.0 },
        _ => Baseline::Zero,
    }
}

fn masking_ablation(
    ex: &mut Explainer,
    image: &DynamicImage,
    input: &SampleInput,
    seed: u64,
) -> Result<(Metrics, Value)> {
    let mut siis = Vec::new();
    let mut detail = serde_json::Map::new();
    let mut mt = Metrics::new();
    for b in ABLATION_BASELINES {
        ex.settings.engine.masking.image.baseline = baseline(b);
        let exr: &Explainer = ex;
        let mut g = exr.game(image, input)?;
        let (full, empty) = g.full_and_empty()?;
        let est = estimate(exr, &mut g, seed)?;
        mt.insert(format!("empty_value_{b}"), empty);
        detail.insert(
            b.to_string(),
            json!({ "full": full, "empty": empty, "sii": est.sii_rows() }),
        );
        siis.push(est.sii);
    }
    for x in 0..siis.len() {
        for y in x + 1..siis.len() {
            let (bx, by) = (ABLATION_BASELINES[x], ABLATION_BASELINES[y]);
            put(
                &mut mt,
                format!("spearman_{bx}_vs_{by}"),
                spearman(&siis[x], &siis[y]),
            );
            put(
                &mut mt,
                format!("p10_{bx}_vs_{by}"),
                precision_at_k(&siis[x], &siis[y], 10),
            );
        }
    }
    Ok((mt, Value::Object(detail)))
}

fn multi_scale(
    ex: &mut Explainer,
    a: &EvalArgs,
    image: &DynamicImage,
    input: &SampleInput,
    seed: u64,
    target: Option<&PointingTarget>,
) -> Result<(Metrics, Value)> {
    let mask = target.map(|t| pointing::load_mask(&t.mask)).transpose()?;
    let mut maps = Vec::new();
    let mut boxes = Vec::new();
    let mut word_index = None;
    for &g in &a.grids {
        ex.settings.engine.masking.image.grid = Some(GridSize { rows: g, cols: g });
        let exr: &Explainer = ex;
        let mut game = exr.game(image, input)?;
        let grid = game.grid();
        if let Some(w) = target.and_then(|t| t.word.as_deref()) {
            let tokens = game.tokens();
            word_index = Some(pointing::find_word(&tokens, w).ok_or_else(|| {
                user(format!(
                    "sample {}: pointing_word {w:?} is not among the tokens {tokens:?}",
                    input.id
                ))
            })?);
        }
        let est = estimate(exr, &mut game, seed)?;
        let n = est.text_players.max(1);
        let values: Vec<f64> = match word_index {
            Some(j) => est.sii.chunks(n).map(|r| r[j]).collect(),
            None => est
                .sii
                .chunks(n)
                .map(|r| r.iter().sum::<f64>() / n as f64)
                .collect(),
        };
        let geometry = Geometry::for_processor(
            &exr.model.image_processor,
            (image.width(), image.height()),
            (grid.width, grid.height),
        );
        boxes.push(
            grid.boxes()
                .iter()
                .map(|b| geometry.to_original(b))
                .collect::<Vec<_>>(),
        );
        maps.push(fm::GridMap::new(grid.rows, grid.cols, values)?);
    }
    let finest = (0..maps.len())
        .max_by_key(|&k| maps[k].rows * maps[k].cols)
        .unwrap_or(0);
    let (rows, cols) = (maps[finest].rows, maps[finest].cols);
    let agg = fm::aggregate_multiscale(&maps, rows, cols, true)?;
    let amax = agg.argmax();
    let mut mt = Metrics::new();
    let mut outcomes = serde_json::Map::new();
    for (m, b) in maps.iter().zip(&boxes) {
        let r = m.resample(rows, cols);
        let tag = format!("{}x{}", m.rows, m.cols);
        put(
            &mut mt,
            format!("spearman_{tag}_vs_aggregate"),
            spearman(&r.values, &agg.values),
        );
        mt.insert(
            format!("argmax_agree_{tag}"),
            (r.argmax() == amax) as u8 as f64,
        );
        if let Some(mask) = &mask {
            let o = pointing::point(mask, b, &m.values)?;
            mt.insert(format!("pointing_hit_{tag}"), o.hit as u8 as f64);
            outcomes.insert(
                tag,
                json!({ "best_patch": o.best_patch, "coverage": o.patch_coverage, "hit": o.hit }),
            );
        }
    }
    if let Some(mask) = &mask {
        let o = pointing::point(mask, &boxes[finest], &agg.values)?;
        mt.insert("pointing_hit_aggregate".into(), o.hit as u8 as f64);
        outcomes.insert(
            "aggregate".into(),
            json!({ "best_patch": o.best_patch, "coverage": o.patch_coverage, "hit": o.hit }),
        );
    }
    Ok((
        mt,
        json!({ "word_index": word_index, "maps": maps, "aggregate": agg, "pointing": outcomes }),
    ))
}
