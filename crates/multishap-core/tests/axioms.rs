//! Axioms of the exact SII / Shapley values and agreement with an
//! independent brute-force implementation of the definition.
use multishap_core::exact::ExactGame;
use multishap_core::Players;
use proptest::prelude::*;

fn factorial(k: usize) -> f64 {
    (1..=k).map(|x| x as f64).product()
}

/// Brute force straight from the definition, iterating over all subsets of
/// the other players via explicit member lists.
fn brute_sii(values: &[f64], d: usize, i: usize, j: usize) -> f64 {
    let others: Vec<usize> = (0..d).filter(|&p| p != i && p != j).collect();
    let mut total = 0.0;
    for sel in 0..(1usize << others.len()) {
        let members: Vec<usize> = others
            .iter()
            .enumerate()
            .filter(|(k, _)| sel >> k & 1 == 1)
            .map(|(_, &p)| p)
            .collect();
        let s: usize = members.iter().map(|&p| 1usize << p).sum();
        let k = members.len();
        let weight = factorial(k) * factorial(d - k - 2) / factorial(d - 1);
        let delta =
            values[s | 1 << i | 1 << j] - values[s | 1 << i] - values[s | 1 << j] + values[s];
        total += weight * delta;
    }
    total
}

fn table(d: usize, seed_values: &[f64]) -> Vec<f64> {
    (0..1usize << d)
        .map(|s| seed_values[s % seed_values.len()] * (1.0 + (s as f64 * 0.37).sin()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn exact_sii_equals_brute_force(m in 1usize..4, n in 1usize..4, vals in prop::collection::vec(-5.0f64..5.0, 8..20)) {
        let d = m + n;
        let values = table(d, &vals);
        let g = ExactGame::from_values(Players::new(m, n), values.clone()).unwrap();
        let grid = g.sii_cross();
        for i in 0..m {
            for j in 0..n {
                let want = brute_sii(&values, d, i, m + j);
                prop_assert!((grid[i * n + j] - want).abs() < 1e-9);
            }
        }
        let all = g.sii_all_pairs();
        if m >= 2 {
            prop_assert!((all[1] - brute_sii(&values, d, 0, 1)).abs() < 1e-9);
        }
        // Shapley efficiency
        let phi: f64 = g.shapley().iter().sum();
        prop_assert!((phi - (values[(1 << d) - 1] - values[0])).abs() < 1e-9);
    }

    #[test]
    fn dummy_player_gets_zero(m in 1usize..4, n in 1usize..4, vals in prop::collection::vec(-5.0f64..5.0, 8..20), dummy_seed in 0usize..100) {
        let d = m + n;
        let dummy = dummy_seed % d;
        let base = table(d, &vals);
        // v(S) ignores the dummy player: v(S) = base(S without dummy) + 0.7 * [dummy in S] (a null player is 0, an additive one is a dummy)
        let bit = 1usize << dummy;
        let values: Vec<f64> = (0..1usize << d).map(|s| base[s & !bit]).collect();
        let g = ExactGame::from_values(Players::new(m, n), values).unwrap();
        for other in (0..d).filter(|&p| p != dummy) {
            prop_assert!(g.sii(dummy, other).abs() < 1e-10);
            prop_assert!(g.banzhaf_interaction(dummy, other).abs() < 1e-10);
        }
        prop_assert!(g.shapley()[dummy].abs() < 1e-10);
    }

    #[test]
    fn additive_games_have_no_interaction(m in 1usize..4, n in 1usize..4, w in prop::collection::vec(-3.0f64..3.0, 6), c in -2.0f64..2.0) {
        let d = m + n;
        let values: Vec<f64> = (0..1usize << d).map(|s| c + (0..d).filter(|p| s >> p & 1 == 1).map(|p| w[p]).sum::<f64>()).collect();
        let g = ExactGame::from_values(Players::new(m, n), values).unwrap();
        prop_assert!(g.sii_cross().iter().all(|x| x.abs() < 1e-10));
        for (p, phi) in g.shapley().iter().enumerate() {
            prop_assert!((phi - w[p]).abs() < 1e-10);
        }
    }

    #[test]
    fn symmetric_players_get_equal_values(m in 2usize..4, n in 1usize..4, vals in prop::collection::vec(-5.0f64..5.0, 8..20)) {
        // symmetrise a random table in players 0 and 1 (both image players)
        let d = m + n;
        let base = table(d, &vals);
        let swap = |s: usize| { let (a, b) = (s & 1, s >> 1 & 1); (s & !3) | (a << 1) | b };
        let values: Vec<f64> = (0..1usize << d).map(|s| base[s] + base[swap(s)]).collect();
        let g = ExactGame::from_values(Players::new(m, n), values).unwrap();
        for j in 0..n {
            prop_assert!((g.sii(0, m + j) - g.sii(1, m + j)).abs() < 1e-9);
        }
        let phi = g.shapley();
        prop_assert!((phi[0] - phi[1]).abs() < 1e-9);
    }

    #[test]
    fn product_of_two_players(m in 1usize..4, n in 1usize..4, c in -3.0f64..3.0, pick in 0usize..100) {
        // v(S) = c * x_i * x_j: SII_ij = c, every other pair 0, phi_i = phi_j = c / 2
        let d = m + n;
        let i = pick % m;
        let j = m + (pick / 7) % n;
        let values: Vec<f64> = (0..1usize << d).map(|s| if s >> i & 1 == 1 && s >> j & 1 == 1 { c } else { 0.0 }).collect();
        let g = ExactGame::from_values(Players::new(m, n), values).unwrap();
        let grid = g.sii_cross();
        for a in 0..m {
            for b in 0..n {
                let want = if a == i && m + b == j { c } else { 0.0 };
                prop_assert!((grid[a * n + b] - want).abs() < 1e-10);
            }
        }
        let phi = g.shapley();
        prop_assert!((phi[i] - c / 2.0).abs() < 1e-10 && (phi[j] - c / 2.0).abs() < 1e-10);
        prop_assert!((g.banzhaf_interaction(i, j) - c).abs() < 1e-10);
    }
}

#[test]
fn exact_refuses_more_than_22_players() {
    let mut g = multishap_core::MoebiusGame::random(Players::new(20, 3), 5, 5, 4, 1);
    let err = multishap_core::exact_estimate(&mut g).unwrap_err();
    assert!(
        matches!(
            err,
            multishap_core::Error::TooManyPlayers { got: 23, max: 22 }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("at most 22"));
    assert!(multishap_core::estimator_by_name("exact")
        .unwrap()
        .approximate(&mut g, 100, 0)
        .is_err());
}
