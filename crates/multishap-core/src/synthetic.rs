//! Random non-linear test games (benchmarks, tests): a small random MLP on the
//! 0/1 mask plus products of random soft "concepts", so that the game has
//! interactions of every order, within and across modalities.
use crate::sampling::rng_from_seed;
use crate::{CoalitionBatch, Error, Game, Players, Result};
use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

#[derive(Debug, Clone)]
pub struct RandomMlpGame {
    players: Players,
    hidden: usize,
    /// `[hidden][d]` input weights, `[hidden]` biases and output weights.
    w1: Vec<f64>,
    b1: Vec<f64>,
    w2: Vec<f64>,
    /// Pairs of hidden units whose product is added to the output
    /// (multiplicative cross-modal effects).
    products: Vec<(usize, usize, f64)>,
    device: Device,
}

impl RandomMlpGame {
    /// Hidden units read sparse random subsets of players (each player with
    /// probability ~`density`); half of the units are image-only / text-only
    /// and their products create cross-modal interactions.
    pub fn new(players: Players, hidden: usize, seed: u64) -> Self {
        let d = players.total();
        let mut rng = rng_from_seed(seed);
        let normal = |rng: &mut rand_chacha::ChaCha8Rng| -> f64 { StandardNormal.sample(rng) };
        let mut w1 = vec![0.0; hidden * d];
        let mut b1 = vec![0.0; hidden];
        let mut w2 = vec![0.0; hidden];
        for h in 0..hidden {
            // unit kind: 0 = image only, 1 = text only, 2 = both
            let kind = h % 3;
            let density = 4.0 / d as f64 + 0.15;
            let mut active = 0.0f64;
            for p in 0..d {
                let allowed = match kind {
                    0 => players.is_image(p),
                    1 => !players.is_image(p),
                    _ => true,
                };
                if allowed && rng.random::<f64>() < density {
                    w1[h * d + p] = normal(&mut rng) + 1.0;
                    active += 1.0;
                }
            }
            b1[h] = -0.5 * active + 0.5 * normal(&mut rng);
            w2[h] = normal(&mut rng);
        }
        let mut products = Vec::new();
        for h in 0..hidden / 3 {
            let a = 3 * h; // image unit
            let b = 3 * h + 1; // text unit
            if b < hidden {
                products.push((a, b, 2.0 * normal(&mut rng)));
            }
        }
        Self {
            players,
            hidden,
            w1,
            b1,
            w2,
            products,
            device: Device::Cpu,
        }
    }

    fn value_of(&self, present: &[bool]) -> f64 {
        let d = self.players.total();
        let mut act = vec![0.0; self.hidden];
        for (h, slot) in act.iter_mut().enumerate() {
            let row = &self.w1[h * d..(h + 1) * d];
            let z: f64 = self.b1[h] + (0..d).filter(|&p| present[p]).map(|p| row[p]).sum::<f64>();
            *slot = 1.0 / (1.0 + (-z).exp());
        }
        let mut out: f64 = act.iter().zip(&self.w2).map(|(a, w)| a * w).sum();
        for &(a, b, c) in &self.products {
            out += c * act[a] * act[b];
        }
        out
    }
}

impl Game for RandomMlpGame {
    fn players(&self) -> Players {
        self.players
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn evaluate(&mut self, batch: &CoalitionBatch) -> Result<Tensor> {
        let d = self.players.total();
        if batch.num_players() != d {
            return Err(Error::InvalidInput(
                "batch over a different player set".into(),
            ));
        }
        let mut present = vec![false; d];
        let values: Vec<f64> = (0..batch.len())
            .map(|i| {
                for (p, slot) in present.iter_mut().enumerate() {
                    *slot = batch.contains(i, p);
                }
                self.value_of(&present)
            })
            .collect();
        Ok(Tensor::from_vec(values, batch.len(), &Device::Cpu)?.to_device(&self.device)?)
    }
}
