//! Games given by sparse Moebius coefficients: v(S) = sum_{T ⊆ S} m(T).
//! Their SII and Shapley values have closed forms, which gives ground truth
//! at any number of players:
//! SII_ij = sum_{T ⊇ {i,j}} m(T) / (|T| - 1), phi_i = sum_{T ∋ i} m(T) / |T|.
use crate::sampling::{random_subset, rng_from_seed};
use crate::{Coalition, CoalitionBatch, Error, Game, InteractionEstimate, Players, Result};
use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

#[derive(Debug, Clone)]
pub struct MoebiusGame {
    players: Players,
    terms: Vec<(Coalition, f64)>,
    device: Device,
}

impl MoebiusGame {
    /// A game from `(T, m(T))` terms (repeated T add up).
    pub fn new(players: Players, terms: Vec<(Coalition, f64)>) -> Result<Self> {
        let d = players.total();
        if let Some((t, _)) = terms.iter().find(|(t, _)| t.num_players() != d) {
            return Err(Error::InvalidInput(format!(
                "Moebius term over {} players in a game over {d}",
                t.num_players()
            )));
        }
        Ok(Self {
            players,
            terms,
            device: Device::Cpu,
        })
    }

    /// Evaluate on `device` (values are computed on the host, then moved).
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// A random sparse game: every player gets a singleton term, plus
    /// `num_pairs` random pairs (half of them cross-modal) and `num_higher`
    /// terms of order 3..=`max_order`; coefficients are standard normal,
    /// scaled down with the order.
    pub fn random(
        players: Players,
        num_pairs: usize,
        num_higher: usize,
        max_order: usize,
        seed: u64,
    ) -> Self {
        let d = players.total();
        let mut rng = rng_from_seed(seed);
        let mut terms = Vec::new();
        let normal = |rng: &mut rand_chacha::ChaCha8Rng| -> f64 { StandardNormal.sample(rng) };
        for p in 0..d {
            terms.push((Coalition::from_members(d, [p]), normal(&mut rng)));
        }
        let mut pool: Vec<usize> = (0..d).collect();
        for k in 0..num_pairs {
            let t = if k % 2 == 0 && players.image > 0 && players.text > 0 {
                let i = rng.random_range(0..players.image);
                let j = players.image + rng.random_range(0..players.text);
                Coalition::from_members(d, [i, j])
            } else {
                random_subset(&mut rng, d, &mut pool, 2)
            };
            terms.push((t, normal(&mut rng)));
        }
        for _ in 0..num_higher {
            let order = rng.random_range(3..=max_order.max(3)).min(d);
            let t = random_subset(&mut rng, d, &mut pool, order);
            let scale = 1.0 / (order as f64 - 1.0);
            terms.push((t, scale * normal(&mut rng) * 2.0));
        }
        Self {
            players,
            terms,
            device: Device::Cpu,
        }
    }

    pub fn terms(&self) -> &[(Coalition, f64)] {
        &self.terms
    }

    pub fn value(&self, s: &Coalition) -> f64 {
        value_of_words(&self.terms, s.words())
    }

    /// Closed-form SII of players a != b (global indices).
    pub fn sii(&self, a: usize, b: usize) -> f64 {
        self.terms
            .iter()
            .filter(|(t, _)| t.contains(a) && t.contains(b))
            .map(|(t, c)| c / (t.len() as f64 - 1.0))
            .sum()
    }

    /// Closed-form cross-modal SII grid, row-major `[m][n]`.
    pub fn sii_cross(&self) -> Vec<f64> {
        let Players { image: m, text: n } = self.players;
        let mut out = vec![0.0; m * n];
        for (t, c) in &self.terms {
            let members: Vec<usize> = t.members().collect();
            if members.len() < 2 {
                continue;
            }
            let share = c / (members.len() as f64 - 1.0);
            for &i in members.iter().filter(|&&p| p < m) {
                for &j in members.iter().filter(|&&p| p >= m) {
                    out[i * n + (j - m)] += share;
                }
            }
        }
        out
    }

    /// Closed-form Shapley values.
    pub fn shapley(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.players.total()];
        for (t, c) in &self.terms {
            let k = t.len();
            if k == 0 {
                continue;
            }
            for p in t.members() {
                out[p] += c / k as f64;
            }
        }
        out
    }

    /// The closed-form result as an estimate (0 evaluations, stderr 0).
    pub fn exact_estimate(&self) -> InteractionEstimate {
        let Players { image: m, text: n } = self.players;
        InteractionEstimate {
            estimator: "moebius-closed-form".into(),
            image_players: m,
            text_players: n,
            sii: self.sii_cross(),
            stderr: vec![0.0; m * n],
            shapley: Some(self.shapley()),
            evaluations: 0,
            seconds: 0.0,
        }
    }
}

fn value_of_words(terms: &[(Coalition, f64)], words: &[u64]) -> f64 {
    terms
        .iter()
        .filter(|(t, _)| t.words().iter().zip(words).all(|(tw, sw)| tw & !sw == 0))
        .map(|(_, c)| c)
        .sum()
}

impl Game for MoebiusGame {
    fn players(&self) -> Players {
        self.players
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        if batch.num_players() != self.players.total() {
            return Err(Error::InvalidInput(
                "batch over a different player set".into(),
            ));
        }
        let values: Vec<f64> = (0..batch.len())
            .map(|i| value_of_words(&self.terms, batch.words(i)))
            .collect();
        Ok(Tensor::from_vec(values, batch.len(), &Device::Cpu)?.to_device(&self.device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::ExactGame;

    #[test]
    fn closed_form_matches_enumeration() {
        let players = Players::new(5, 3);
        let mut g = MoebiusGame::random(players, 10, 8, 5, 7);
        let exact = ExactGame::from_game(&mut g).unwrap();
        for (a, b) in exact.sii_cross().iter().zip(g.sii_cross()) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        for (a, b) in exact.shapley().iter().zip(g.shapley()) {
            assert!((a - b).abs() < 1e-10);
        }
        assert!((exact.sii(0, 1) - g.sii(0, 1)).abs() < 1e-10);
    }
}
