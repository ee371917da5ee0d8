//! Sampling estimators: unbiasedness against exact values, calibrated
//! standard errors, determinism, budget accounting.
use candle_core::{Device, Tensor};
use multishap_core::estimators::dual::DualEncoder;
use multishap_core::estimators::dual_exact_text::DualExactText;
use multishap_core::estimators::regression::RegressionMc;
use multishap_core::synthetic::RandomMlpGame;
use multishap_core::{
    estimator_by_name, exact_estimate, Approximator, CoalitionBatch, DualApproximator, DualAsGame,
    DualEncoderGame, Game, MoebiusGame, Players, Result,
};

/// Check that the mean over `seeds` runs is within `z` standard errors of
/// the truth for every pair, and that the reported standard errors match the
/// spread over seeds within a factor of two.
fn check_unbiased(name: &str, truth: &[f64], runs: &[Vec<f64>], reported_se: &[Vec<f64>], z: f64) {
    let k = runs.len() as f64;
    let mut worst: f64 = 0.0;
    let (mut spread_sum, mut se_sum) = (0.0, 0.0);
    for p in 0..truth.len() {
        let mean = runs.iter().map(|r| r[p]).sum::<f64>() / k;
        let var = runs.iter().map(|r| (r[p] - mean).powi(2)).sum::<f64>() / (k - 1.0);
        let se_mean = (var / k).sqrt().max(1e-12);
        worst = worst.max((mean - truth[p]).abs() / se_mean);
        spread_sum += var.sqrt();
        se_sum += reported_se
            .iter()
            .map(|s| s[p])
            .filter(|s| s.is_finite())
            .sum::<f64>()
            / k;
    }
    assert!(
        worst < z,
        "{name}: mean is {worst:.2} standard errors from the truth"
    );
    if !reported_se.is_empty() {
        let ratio = se_sum / spread_sum;
        assert!(
            (0.5..2.0).contains(&ratio),
            "{name}: reported/empirical stderr ratio {ratio:.2}"
        );
    }
}

/// One vector per seed.
type Runs = Vec<Vec<f64>>;

fn run_many(name: &str, game: &mut dyn Game, budget: usize, seeds: u64) -> (Runs, Runs, Runs) {
    let est = estimator_by_name(name).unwrap();
    let (mut sii, mut se, mut shap) = (vec![], vec![], vec![]);
    for seed in 0..seeds {
        let r = est.approximate(game, budget, seed).unwrap();
        assert!(
            r.evaluations <= budget,
            "{name} spent {} > {budget}",
            r.evaluations
        );
        sii.push(r.sii.clone());
        se.push(r.stderr.clone());
        if let Some(s) = r.shapley {
            shap.push(s);
        }
    }
    (sii, se, shap)
}

#[test]
fn sampled_estimators_are_unbiased() {
    let players = Players::new(5, 3);
    let mut game = RandomMlpGame::new(players, 9, 3);
    let truth = exact_estimate(&mut game).unwrap();
    let phi = truth.shapley.clone().unwrap();
    for (name, budget, check_se) in [
        ("per-pair", 240, true),
        ("per-pair-stratified", 240, true),
        ("shared", 240, true),
        ("shared-stratified", 240, true),
        ("regression-mc", 120, true),
        ("permutation", 160, false),
    ] {
        let (sii, se, shap) = run_many(name, &mut game, budget, 300);
        check_unbiased(
            name,
            &truth.sii,
            &sii,
            if check_se { &se } else { &[] },
            4.5,
        );
        if !shap.is_empty() {
            check_unbiased(&format!("{name} shapley"), &phi, &shap, &[], 4.5);
        }
    }
}

#[test]
fn regression_mc_is_exact_with_full_budget_and_deterministic() {
    let players = Players::new(4, 3);
    let mut game = RandomMlpGame::new(players, 6, 11);
    let truth = exact_estimate(&mut game).unwrap();
    let est = estimator_by_name("regression-mc").unwrap();
    let full = est.approximate(&mut game, 1 << 7, 0).unwrap();
    for (a, b) in full.sii.iter().zip(&truth.sii) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
    for name in [
        "regression-mc",
        "shared",
        "shared-stratified",
        "per-pair",
        "permutation",
    ] {
        let e = estimator_by_name(name).unwrap();
        let a = e.approximate(&mut game, 100, 42).unwrap();
        let b = e.approximate(&mut game, 100, 42).unwrap();
        let c = e.approximate(&mut game, 100, 43).unwrap();
        assert_eq!(a.sii, b.sii, "{name}: same seed, different result");
        assert_ne!(a.sii, c.sii, "{name}: different seeds, same result");
    }
}

#[test]
fn regression_mc_recovers_quadratic_moebius_game_at_d_40() {
    // first-order + cross pairs only: the surrogate is exact, the residual 0
    let players = Players::new(32, 8);
    let game0 = MoebiusGame::random(players, 30, 0, 3, 5);
    let terms: Vec<_> = game0
        .terms()
        .iter()
        .filter(|(t, _)| {
            t.len() == 1 || (t.len() == 2 && t.members().filter(|&p| p < 32).count() == 1)
        })
        .cloned()
        .collect();
    let mut game = MoebiusGame::new(players, terms).unwrap();
    let exact_fit = RegressionMc {
        ridge: 1e-12,
        ..RegressionMc::default()
    };
    let r = exact_fit.approximate(&mut game, 4000, 1).unwrap();
    for (a, b) in r.sii.iter().zip(game.sii_cross()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    for (a, b) in r.shapley.unwrap().iter().zip(game.shapley()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn small_budgets_are_clear_errors() {
    let mut game = RandomMlpGame::new(Players::new(5, 3), 6, 1);
    for name in ["per-pair", "shared", "permutation"] {
        let err = estimator_by_name(name)
            .unwrap()
            .approximate(&mut game, 3, 0)
            .unwrap_err();
        assert!(err.to_string().contains("budget"), "{name}: {err}");
    }
    assert!(estimator_by_name("nope").is_err());
}

/// A toy dual encoder: v = tanh(<A(S_img), B(S_txt)>) + bias terms with
/// A, B sums of random per-player embeddings passed through tanh.
struct ToyDual {
    players: Players,
    img: Vec<[f64; 3]>,
    txt: Vec<[f64; 3]>,
    device: Device,
}

impl ToyDual {
    fn new(players: Players) -> Self {
        let emb = |k: usize, o: f64| {
            (0..k)
                .map(|p| {
                    [
                        ((p as f64 + o) * 1.3).sin(),
                        ((p as f64 + o) * 0.7).cos(),
                        0.3,
                    ]
                })
                .collect()
        };
        Self {
            players,
            img: emb(players.image, 0.0),
            txt: emb(players.text, 5.0),
            device: Device::Cpu,
        }
    }

    fn encode(emb: &[[f64; 3]], batch: &CoalitionBatch) -> Vec<[f64; 3]> {
        (0..batch.len())
            .map(|r| {
                let mut acc = [0.1, -0.2, 0.0];
                for (p, e) in emb.iter().enumerate() {
                    if batch.contains(r, p) {
                        for k in 0..3 {
                            acc[k] += e[k];
                        }
                    }
                }
                acc.map(f64::tanh)
            })
            .collect()
    }
}

impl DualEncoderGame for ToyDual {
    fn players(&self) -> Players {
        self.players
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn evaluate_grid(&mut self, image: &CoalitionBatch, text: &CoalitionBatch) -> Result<Tensor> {
        let a = Self::encode(&self.img, image);
        let b = Self::encode(&self.txt, text);
        let mut out = Vec::with_capacity(a.len() * b.len());
        for x in &a {
            for y in &b {
                out.push((x[0] * y[0] + x[1] * y[1] + x[2] * y[2]) * 2.0 + x[0]);
            }
        }
        Ok(Tensor::from_vec(out, (a.len(), b.len()), &Device::Cpu)?)
    }
}

#[test]
fn dual_encoder_estimator_is_unbiased_and_adapter_matches() {
    let players = Players::new(4, 3);
    let mut joint = DualAsGame::new(ToyDual::new(players));
    let truth = exact_estimate(&mut joint).unwrap();
    // the adapter evaluates exactly like the grid
    let mut batch = CoalitionBatch::new(7);
    batch.push_mask(0b1010011);
    let v = joint.evaluate(&batch).unwrap().to_vec1::<f64>().unwrap()[0];
    let mut img = CoalitionBatch::new(4);
    img.push_mask(0b0011);
    let mut txt = CoalitionBatch::new(3);
    txt.push_mask(0b101);
    let g = joint
        .inner_mut()
        .evaluate_grid(&img, &txt)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap()[0][0];
    assert!((v - g).abs() < 1e-12);

    let mut dual = ToyDual::new(players);
    let (mut sii, mut se) = (vec![], vec![]);
    for seed in 0..300 {
        let r = DualEncoder.approximate_dual(&mut dual, 60, seed).unwrap();
        assert_eq!(r.evaluations, 6 * 5 + 6 * 4);
        sii.push(r.sii);
        se.push(r.stderr);
    }
    check_unbiased("dual-encoder", &truth.sii, &sii, &se, 4.5);
}

#[test]
fn dual_exact_text_estimator_is_unbiased_and_counts_passes() {
    let players = Players::new(4, 3);
    let mut joint = DualAsGame::new(ToyDual::new(players));
    let truth = exact_estimate(&mut joint).unwrap();
    let mut dual = ToyDual::new(players);
    // (60 - 2^3) / (4 + 1) = 10 image bases, toggled: 50 image + 8 text passes;
    // (55 - 8) / 5 = 9 bases, rounded down to 8 (4 antithetic pairs): 40 + 8
    for (antithetic, budget, passes) in [(false, 60, 10 * 5 + 8), (true, 55, 8 * 5 + 8)] {
        let est = DualExactText { antithetic };
        let (mut sii, mut se) = (vec![], vec![]);
        for seed in 0..300 {
            let r = est.approximate_dual(&mut dual, budget, seed).unwrap();
            assert_eq!(r.evaluations, passes);
            sii.push(r.sii);
            se.push(r.stderr);
        }
        check_unbiased(
            &format!("dual-exact-text, antithetic {antithetic}"),
            &truth.sii,
            &sii,
            &se,
            4.5,
        );
    }
    let err = DualExactText::default()
        .approximate_dual(&mut dual, 17, 0)
        .unwrap_err();
    assert!(err.to_string().contains("below two image draws"), "{err}");
}
