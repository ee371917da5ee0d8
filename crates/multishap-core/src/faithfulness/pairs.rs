//! Pair-level masking (FL-I2MoE style): remove the top-k cross-modal pairs of
//! a ranking (by SII, by redundancy gap, ...) and compare the score drop with
//! k random pairs under the same budget k.
//!
//! Removing a pair (i, j) masks both patch i and token j; removing a set of
//! pairs masks the union of their players (see the module docs of
//! [`super`]). For k = 0..=K the curve is
//! drop(k) = v(N) - v(N \ players(P_k)), where P_k are the first k pairs; the
//! x axis is k / K and the area is the trapezoid rule over it. The random
//! baseline averages `random_repeats` uniformly shuffled pair orders (seeded
//! ChaCha8), so it removes exactly k pairs too.
use super::curve::Curve;
use super::evaluate_coalitions;
use crate::sampling::rng_from_seed;
use crate::{Coalition, Error, Game, Players, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairMaskingConfig {
    /// Largest number of pairs removed (capped at m n).
    pub max_pairs: usize,
    /// Random pair orders averaged for the baseline.
    pub random_repeats: usize,
    pub seed: u64,
}

impl Default for PairMaskingConfig {
    fn default() -> Self {
        Self {
            max_pairs: 20,
            random_repeats: 8,
            seed: 0,
        }
    }
}

/// One ranking's curve (or the random baseline's mean curve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCurve {
    pub ranking: String,
    /// v(N \ players(P_k)) for k = 0..=K (random: the mean over repeats).
    pub values: Vec<f64>,
    /// drop(k) = v(N) - values[k], on x = k / K.
    pub drop: Curve,
    /// Area under the drop curve (mean drop over k / K in [0, 1]).
    pub drop_area: f64,
    /// Players actually masked at each k (random: the mean).
    pub players_masked: Vec<f64>,
    /// Random baseline only: standard deviation of the drop over repeats, per k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_std: Option<Vec<f64>>,
    /// Rankings only: drop_area minus the random baseline's drop_area
    /// (positive = the ranking finds pairs that matter more than random ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_over_random: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairMaskingResult {
    pub full_value: f64,
    /// k = 0..=K.
    pub ks: Vec<usize>,
    pub rankings: Vec<RankedCurve>,
    pub random: RankedCurve,
    pub evaluations: usize,
}

/// All m n pairs sorted by `values` (row-major `[m][n]`, as
/// `InteractionEstimate::sii`) in decreasing order; ties keep row-major order.
pub fn rank_pairs_desc(values: &[f64], m: usize, n: usize) -> Result<Vec<(usize, usize)>> {
    if values.len() != m * n {
        return Err(Error::InvalidInput(format!(
            "pair values have length {}, expected {m} x {n}",
            values.len()
        )));
    }
    let mut idx: Vec<usize> = (0..m * n).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    Ok(idx.into_iter().map(|k| (k / n, k % n)).collect())
}

/// N minus both players of every pair (patch i, token j) in `pairs`.
pub fn pair_removal_coalition(players: Players, pairs: &[(usize, usize)]) -> Coalition {
    let mut c = Coalition::full(players.total());
    for &(i, j) in pairs {
        c.remove(i);
        c.remove(players.text_index(j));
    }
    c
}

fn check_pairs(players: Players, pairs: &[(usize, usize)]) -> Result<()> {
    if let Some(&(i, j)) = pairs
        .iter()
        .find(|&&(i, j)| i >= players.image || j >= players.text)
    {
        return Err(Error::InvalidInput(format!(
            "pair ({i}, {j}) outside {} patches x {} tokens",
            players.image, players.text
        )));
    }
    Ok(())
}

/// Score-drop curves of every ranking and of random pairs; see the module docs.
pub fn pair_masking(
    game: &mut dyn Game,
    rankings: &[(String, Vec<(usize, usize)>)],
    cfg: &PairMaskingConfig,
) -> Result<PairMaskingResult> {
    let players = game.players();
    let (m, n) = (players.image, players.text);
    if m == 0 || n == 0 {
        return Err(Error::InvalidInput(
            "pair masking needs image and text players".into(),
        ));
    }
    let kmax = cfg.max_pairs.min(m * n);
    for (_, r) in rankings {
        check_pairs(players, r)?;
    }
    let ks: Vec<usize> = (0..=kmax).collect();
    let x: Vec<f64> = ks
        .iter()
        .map(|&k| {
            if kmax == 0 {
                0.0
            } else {
                k as f64 / kmax as f64
            }
        })
        .collect();
    // one batch: N, then every (ordering, k >= 1)
    let all_pairs: Vec<(usize, usize)> = (0..m).flat_map(|i| (0..n).map(move |j| (i, j))).collect();
    let mut rng = rng_from_seed(cfg.seed);
    let mut orders: Vec<Vec<(usize, usize)>> = rankings.iter().map(|(_, r)| r.clone()).collect();
    for _ in 0..cfg.random_repeats {
        let mut o = all_pairs.clone();
        o.shuffle(&mut rng);
        orders.push(o);
    }
    let mut cs = vec![Coalition::full(players.total())];
    let mut masked: Vec<Vec<f64>> = Vec::with_capacity(orders.len());
    for o in &orders {
        let mut row = vec![0.0];
        for k in 1..=kmax {
            let c = pair_removal_coalition(players, &o[..k.min(o.len())]);
            row.push((players.total() - c.len()) as f64);
            cs.push(c);
        }
        masked.push(row);
    }
    let v = evaluate_coalitions(game, &cs)?;
    let full = v[0];
    let series = |o: usize| -> Vec<f64> {
        let mut s = vec![full];
        s.extend_from_slice(&v[1 + o * kmax..1 + (o + 1) * kmax]);
        s
    };
    let make = |name: &str, values: Vec<f64>, masked: Vec<f64>| {
        let drop = Curve::new(x.clone(), values.iter().map(|y| full - y).collect());
        RankedCurve {
            ranking: name.to_string(),
            drop_area: drop.area(),
            values,
            drop,
            players_masked: masked,
            drop_std: None,
            area_over_random: None,
        }
    };
    let r = cfg.random_repeats;
    let random = if r == 0 {
        let mut c = make("random", vec![full; kmax + 1], vec![0.0; kmax + 1]);
        c.drop_std = Some(vec![0.0; kmax + 1]);
        c
    } else {
        let runs: Vec<Vec<f64>> = (0..r).map(|q| series(rankings.len() + q)).collect();
        let mean = |k: usize, rows: &[Vec<f64>]| rows.iter().map(|s| s[k]).sum::<f64>() / r as f64;
        let values: Vec<f64> = (0..=kmax).map(|k| mean(k, &runs)).collect();
        let mm: Vec<f64> = (0..=kmax)
            .map(|k| mean(k, &masked[rankings.len()..]))
            .collect();
        let std: Vec<f64> = (0..=kmax)
            .map(|k| {
                let mu = values[k];
                (runs.iter().map(|s| (s[k] - mu).powi(2)).sum::<f64>() / r as f64).sqrt()
            })
            .collect();
        let mut c = make("random", values, mm);
        c.drop_std = Some(std);
        c
    };
    let ranked = rankings
        .iter()
        .enumerate()
        .map(|(o, (name, _))| {
            let mut c = make(name, series(o), masked[o].clone());
            c.area_over_random = Some(c.drop_area - random.drop_area);
            c
        })
        .collect();
    Ok(PairMaskingResult {
        full_value: full,
        ks,
        rankings: ranked,
        random,
        evaluations: cs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_games::FnGame;
    use super::*;

    /// 2 patches (0, 1) x 2 tokens (2, 3):
    /// v(S) = 4 [0,2 in S] + 1 [1 in S] + 2 [3 in S].
    fn game() -> FnGame<impl Fn(&Coalition) -> f64> {
        FnGame::new(Players::new(2, 2), |c: &Coalition| {
            let has = |p| c.contains(p) as u8 as f64;
            4.0 * has(0) * has(2) + has(1) + 2.0 * has(3)
        })
    }

    #[test]
    fn ranking_and_removal() {
        let r = rank_pairs_desc(&[0.5, -1.0, 2.0, 0.5], 2, 2).unwrap();
        assert_eq!(r, vec![(1, 0), (0, 0), (1, 1), (0, 1)]);
        let c = pair_removal_coalition(Players::new(2, 2), &[(1, 0), (1, 1)]);
        assert_eq!(c.members().collect::<Vec<_>>(), vec![0]);
        assert!(rank_pairs_desc(&[1.0], 2, 2).is_err());
    }

    #[test]
    fn curves_by_hand() {
        let mut g = game();
        // SII of this game: pair (0,0) = 4, others 0. Ranking (0,0), (1,1), (0,1), (1,0).
        let ranking = vec![(0, 0), (1, 1), (0, 1), (1, 0)];
        let cfg = PairMaskingConfig {
            max_pairs: 2,
            random_repeats: 0,
            seed: 1,
        };
        let r = pair_masking(&mut g, &[("sii".into(), ranking)], &cfg).unwrap();
        assert_eq!(r.full_value, 7.0);
        // k=1: remove {0, 2} -> v = 1 + 2 = 3, drop 4; k=2: also {1, 3} -> v = 0, drop 7
        let c = &r.rankings[0];
        assert_eq!(c.values, vec![7.0, 3.0, 0.0]);
        assert_eq!(c.drop.y, vec![0.0, 4.0, 7.0]);
        assert_eq!(c.drop.x, vec![0.0, 0.5, 1.0]);
        // area = 0.5 * (0 + 4) / 2 + 0.5 * (4 + 7) / 2 = 1 + 2.75
        assert!((c.drop_area - 3.75).abs() < 1e-12);
        assert_eq!(c.players_masked, vec![0.0, 2.0, 4.0]);
        assert_eq!(r.evaluations, 3);
    }

    #[test]
    fn random_baseline_by_hand_expectation() {
        // With k = 1 and many repeats the random drop approaches the mean
        // drop over the 4 single pairs: (0,0): 4+0.. computed exactly below.
        let mut g = game();
        let drops_single: Vec<f64> = [(0, 0), (0, 1), (1, 0), (1, 1)]
            .iter()
            .map(|&(i, j)| {
                let c = pair_removal_coalition(Players::new(2, 2), &[(i, j)]);
                7.0 - (g.f)(&c)
            })
            .collect();
        // by hand: (0,0) removes 0,2 -> 4; (0,1) removes 0,3 -> 6; (1,0) removes 1,2 -> 5; (1,1) removes 1,3 -> 3
        assert_eq!(drops_single, vec![4.0, 6.0, 5.0, 3.0]);
        let cfg = PairMaskingConfig {
            max_pairs: 1,
            random_repeats: 4000,
            seed: 3,
        };
        let r = pair_masking(&mut g, &[], &cfg).unwrap();
        let mean_drop = r.random.drop.y[1];
        assert!((mean_drop - 4.5).abs() < 0.1, "{mean_drop}");
        assert!(r.random.drop_std.as_ref().unwrap()[1] > 0.5);
        // k = 4 of 4 pairs removes every player whatever the order
        let cfg = PairMaskingConfig {
            max_pairs: 10,
            random_repeats: 5,
            seed: 3,
        };
        let r = pair_masking(&mut g, &[], &cfg).unwrap();
        assert_eq!(r.ks, vec![0, 1, 2, 3, 4]);
        assert_eq!(r.random.values[4], 0.0);
        assert_eq!(r.random.players_masked[4], 4.0);
    }
}
