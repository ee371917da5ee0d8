//! Exact values by enumerating all 2^d coalitions (d <= [`MAX_EXACT_PLAYERS`]):
//! pairwise SII, Shapley values and Banzhaf interactions.
use crate::eval::evaluate_to_host;
use crate::weights::Weights;
use crate::{CoalitionBatch, Error, Game, InteractionEstimate, Players, Result};
use std::time::Instant;

/// Largest d for which exact enumeration is allowed (2^22 = 4.2M evaluations).
pub const MAX_EXACT_PLAYERS: usize = 22;

/// Fail with [`Error::TooManyPlayers`] when `d` is too large to enumerate.
pub fn check_exact_size(d: usize) -> Result<()> {
    if d > MAX_EXACT_PLAYERS {
        return Err(Error::TooManyPlayers {
            got: d,
            max: MAX_EXACT_PLAYERS,
        });
    }
    Ok(())
}

/// A fully tabulated game: `values[mask]` = v(S), player p at bit p.
#[derive(Debug, Clone)]
pub struct ExactGame {
    players: Players,
    values: Vec<f64>,
}

impl ExactGame {
    /// Enumerate all coalitions of `game` (in batches of 2^16).
    pub fn from_game(game: &mut dyn Game) -> Result<Self> {
        let players = game.players();
        let d = players.total();
        check_exact_size(d)?;
        let total = 1usize << d;
        let mut batch = CoalitionBatch::with_capacity(d, total);
        for mask in 0..total as u64 {
            batch.push_mask(mask);
        }
        let values = evaluate_to_host(game, &batch)?;
        Ok(Self { players, values })
    }

    /// From a table of 2^d values (index = bitmask).
    pub fn from_values(players: Players, values: Vec<f64>) -> Result<Self> {
        let d = players.total();
        check_exact_size(d)?;
        if values.len() != 1usize << d {
            return Err(Error::InvalidInput(format!(
                "a game over {d} players needs 2^{d} = {} values, got {}",
                1usize << d,
                values.len()
            )));
        }
        Ok(Self { players, values })
    }

    pub fn players(&self) -> Players {
        self.players
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn value(&self, mask: usize) -> f64 {
        self.values[mask]
    }

    /// SII of the pair (a, b) (global player indices), from the definition
    /// sum_S |S|!(d-|S|-2)!/(d-1)! * D_ab(S).
    pub fn sii(&self, a: usize, b: usize) -> f64 {
        let d = self.players.total();
        let w = Weights::new(d);
        let table: Vec<f64> = (0..=d.saturating_sub(2)).map(|k| w.sii(k)).collect();
        self.pair_sum(a, b, |s| table[s])
    }

    /// Banzhaf interaction of (a, b): the mean of D_ab(S) over all 2^(d-2) contexts.
    pub fn banzhaf_interaction(&self, a: usize, b: usize) -> f64 {
        let d = self.players.total();
        let c = 1.0 / (1u64 << (d - 2)) as f64;
        self.pair_sum(a, b, |_| c)
    }

    fn pair_sum(&self, a: usize, b: usize, weight: impl Fn(usize) -> f64) -> f64 {
        assert!(a != b, "an interaction needs two distinct players");
        let d = self.players.total();
        let (ba, bb) = (1usize << a, 1usize << b);
        let v = &self.values;
        let mut total = 0.0;
        for s in 0..(1usize << d) {
            if s & (ba | bb) != 0 {
                continue;
            }
            let delta = v[s | ba | bb] - v[s | ba] - v[s | bb] + v[s];
            total += weight(s.count_ones() as usize) * delta;
        }
        total
    }

    /// Cross-modal SII grid, row-major `[m][n]`.
    pub fn sii_cross(&self) -> Vec<f64> {
        self.cross_grid(|g, a, b| g.sii(a, b))
    }

    /// Cross-modal Banzhaf interaction grid, row-major `[m][n]`.
    pub fn banzhaf_cross(&self) -> Vec<f64> {
        self.cross_grid(|g, a, b| g.banzhaf_interaction(a, b))
    }

    fn cross_grid(&self, f: impl Fn(&Self, usize, usize) -> f64) -> Vec<f64> {
        let Players { image: m, text: n } = self.players;
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                out.push(f(self, i, m + j));
            }
        }
        out
    }

    /// SII of every pair of players (image-image and text-text included):
    /// a symmetric `d x d` matrix (row-major) with zero diagonal.
    pub fn sii_all_pairs(&self) -> Vec<f64> {
        let d = self.players.total();
        let mut out = vec![0.0; d * d];
        for a in 0..d {
            for b in a + 1..d {
                let x = self.sii(a, b);
                out[a * d + b] = x;
                out[b * d + a] = x;
            }
        }
        out
    }

    /// Shapley values of all d players.
    pub fn shapley(&self) -> Vec<f64> {
        let d = self.players.total();
        let w = Weights::new(d);
        let table: Vec<f64> = (0..d).map(|k| w.shapley(k)).collect();
        let v = &self.values;
        (0..d)
            .map(|p| {
                let bp = 1usize << p;
                let mut total = 0.0;
                for s in 0..(1usize << d) {
                    if s & bp == 0 {
                        total += table[s.count_ones() as usize] * (v[s | bp] - v[s]);
                    }
                }
                total
            })
            .collect()
    }

    /// The exact result in the common estimate format (stderr 0).
    pub fn estimate(&self, evaluations: usize, seconds: f64) -> InteractionEstimate {
        let Players { image: m, text: n } = self.players;
        InteractionEstimate {
            estimator: "exact".into(),
            image_players: m,
            text_players: n,
            sii: self.sii_cross(),
            stderr: vec![0.0; m * n],
            shapley: Some(self.shapley()),
            evaluations,
            seconds,
        }
    }
}

/// Exact cross-modal SII and Shapley values of `game` by enumeration.
pub fn exact_estimate(game: &mut dyn Game) -> Result<InteractionEstimate> {
    let start = Instant::now();
    let exact = ExactGame::from_game(game)?;
    let evaluations = exact.values.len();
    let mut est = exact.estimate(evaluations, 0.0);
    est.seconds = start.elapsed().as_secs_f64();
    Ok(est)
}
