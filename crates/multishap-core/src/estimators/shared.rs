//! Shared coalitions: one coalition S per draw (size uniform in 0..=d, then a
//! uniform subset), evaluated toggled at every patch i and every token j:
//! (m+1)(n+1) evaluations give one discrete derivative D_ij for all m n pairs
//! at the context S \ {i, j}. Each D_ij is importance-weighted by
//! p_SII(context) / q(context), so each pair's context follows the SII law
//! exactly (unbiased). The single toggles also give one Shapley marginal
//! contribution per player and draw. With `antithetic`, draws come in pairs
//! (S, N \ S); with `stratified`, base sizes cycle through permutations of
//! 0..=d.
use super::{begin, finish, masks, mean_and_stderr, vec_tensor};
use crate::eval::evaluate_all;
use crate::sampling::{random_subset, rng_from_seed};
use crate::weights::Weights;
use crate::{Approximator, Coalition, CoalitionBatch, Error, Game, InteractionEstimate, Result};
use candle_core::{Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::Rng;

#[derive(Debug, Clone, Copy, Default)]
pub struct Shared {
    /// Cycle the base sizes through random permutations of 0..=d instead of
    /// drawing them independently (each draw's size stays uniform, so the
    /// estimate stays unbiased; the size-driven part of the variance drops).
    pub stratified: bool,
    /// Every second draw is the complement N \ S of the previous one
    /// (antithetic pairs; each draw keeps the same marginal law, so the
    /// estimate stays unbiased; standard errors are computed over pairs).
    pub antithetic: bool,
}

/// Probability that S \ T equals one fixed set of size r, where |T| = `drop`
/// and S has a size uniform on 0..=d and is uniform given its size.
fn q_context(w: &Weights, r: usize, drop: usize) -> f64 {
    let d = w.num_players();
    let p = 1.0 / (d + 1) as f64;
    (0..=drop)
        .map(|t| w.binom(drop, t) * p / w.binom(d, r + t))
        .sum()
}

impl Approximator for Shared {
    fn name(&self) -> &str {
        if self.stratified {
            "shared-stratified"
        } else {
            "shared"
        }
    }

    fn approximate(
        &self,
        game: &mut dyn Game,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        let (start, players, m, n, d) = begin(game.players())?;
        let per_draw = (m + 1) * (n + 1);
        let draws = budget / per_draw;
        if draws == 0 {
            return Err(Error::InvalidInput(format!(
                "{}: budget {budget} is below one draw ((m+1)(n+1) = {per_draw} evaluations)",
                self.name()
            )));
        }
        let w = Weights::new(d);
        let mut rng = rng_from_seed(seed);
        let mut pool: Vec<usize> = (0..d).collect();
        let mut bases = CoalitionBatch::with_capacity(d, draws);
        let mut batch = CoalitionBatch::with_capacity(d, draws * per_draw);
        // importance weights per draw: pair weights by t = x_i + x_j, Shapley by x_p
        let mut wp = [
            Vec::with_capacity(draws),
            Vec::with_capacity(draws),
            Vec::with_capacity(draws),
        ];
        let mut ws = [Vec::with_capacity(draws), Vec::with_capacity(draws)];
        let mut sizes: Vec<usize> = Vec::with_capacity(draws + d + 1);
        if self.stratified {
            while sizes.len() < draws {
                let mut round: Vec<usize> = (0..=d).collect();
                round.shuffle(&mut rng);
                sizes.extend(round);
            }
        } else {
            sizes.extend((0..draws).map(|_| rng.random_range(0..=d)));
        }
        let mut previous: Option<crate::Coalition> = None;
        for (k, &s0) in sizes[..draws].iter().enumerate() {
            let (s, base) = match (&previous, self.antithetic && k % 2 == 1) {
                (Some(prev), true) => {
                    let comp = Coalition::from_members(d, (0..d).filter(|&p| !prev.contains(p)));
                    (d - prev.len(), comp)
                }
                _ => (s0, random_subset(&mut rng, d, &mut pool, s0)),
            };
            previous = Some(base.clone());
            for (t, slot) in wp.iter_mut().enumerate() {
                slot.push(if t <= s && s - t <= d - 2 {
                    w.sii(s - t) / q_context(&w, s - t, 2)
                } else {
                    0.0
                });
            }
            for (t, slot) in ws.iter_mut().enumerate() {
                slot.push(if t <= s && s - t < d {
                    w.shapley(s - t) / q_context(&w, s - t, 1)
                } else {
                    0.0
                });
            }
            push_toggle_grid(&mut batch, &base, m, n);
            bases.push(&base);
        }
        let dev = game.device().clone();
        let values = evaluate_all(game, &batch)?.reshape((draws, m + 1, n + 1))?;
        let x = masks(&bases, &dev)?; // [K, d]
        let sigma = x.affine(-2.0, 1.0)?; // +1 absent, -1 present
        let v00 = values.narrow(1, 0, 1)?.narrow(2, 0, 1)?; // [K,1,1]
        let vi0 = values.narrow(1, 1, m)?.narrow(2, 0, 1)?; // [K,m,1]
        let v0j = values.narrow(1, 0, 1)?.narrow(2, 1, n)?; // [K,1,n]
        let vij = values.narrow(1, 1, m)?.narrow(2, 1, n)?; // [K,m,n]
        let sig_i = sigma.narrow(1, 0, m)?.unsqueeze(2)?; // [K,m,1]
        let sig_j = sigma.narrow(1, m, n)?.unsqueeze(1)?; // [K,1,n]
        let raw = vij
            .broadcast_sub(&vi0)?
            .broadcast_sub(&v0j)?
            .broadcast_add(&v00)?;
        let delta = raw.broadcast_mul(&sig_i)?.broadcast_mul(&sig_j)?;
        let weight = pair_weights(&x, m, n, &wp, &dev)?;
        let z = (delta * weight)?;
        let (mean, se) = if self.antithetic && draws >= 4 && draws.is_multiple_of(2) {
            // independent units are the antithetic pairs
            mean_and_stderr(&z.reshape((draws / 2, 2, m, n))?.mean(1)?)?
        } else {
            mean_and_stderr(&z)?
        };

        // Shapley: marginal contribution of each toggled player.
        let toggled = Tensor::cat(&[vi0.squeeze(D::Minus1)?, v0j.squeeze(1)?], 1)?; // [K, d]
        let marg = toggled
            .broadcast_sub(&v00.squeeze(D::Minus1)?)?
            .mul(&sigma)?;
        let w0 = vec_tensor(ws[0].clone(), &dev)?.unsqueeze(1)?;
        let w1 = vec_tensor(ws[1].clone(), &dev)?.unsqueeze(1)?;
        let sw = x
            .broadcast_mul(&w1.broadcast_sub(&w0)?)?
            .broadcast_add(&w0)?;
        let shapley = (marg * sw)?.mean(0)?.to_vec1::<f64>()?;
        finish(
            self.name(),
            players,
            &mean,
            &se,
            Some(shapley),
            batch.len(),
            start,
        )
    }
}

/// Appends the (m+1)(n+1) coalitions of one draw: `base` toggled at patch
/// a-1 (row a; row 0 none) and at token b-1 (column b; column 0 none),
/// row-major. Image players are 0..m, text players m..m+n.
pub fn push_toggle_grid(batch: &mut CoalitionBatch, base: &Coalition, m: usize, n: usize) {
    for a in 0..=m {
        let row = if a == 0 {
            base.clone()
        } else {
            base.with(a - 1, !base.contains(a - 1))
        };
        batch.push(&row);
        for p in m..m + n {
            batch.push(&row.with(p, !base.contains(p)));
        }
    }
}

/// `[K, m, n]` weights W_k[x_i + x_j] from per-draw tables `wp[t][k]`:
/// W0 + (W1 - W0)(x_i + x_j) + (W2 - 2 W1 + W0) x_i x_j.
fn pair_weights(
    x: &Tensor,
    m: usize,
    n: usize,
    wp: &[Vec<f64>; 3],
    dev: &Device,
) -> Result<Tensor> {
    let col = |v: &Vec<f64>| -> Result<Tensor> {
        vec_tensor(v.clone(), dev)?
            .reshape((v.len(), 1, 1))
            .map_err(Into::into)
    };
    let (w0, w1, w2) = (col(&wp[0])?, col(&wp[1])?, col(&wp[2])?);
    let xi = x.narrow(1, 0, m)?.unsqueeze(2)?;
    let xj = x.narrow(1, m, n)?.unsqueeze(1)?;
    let lin = w1.broadcast_sub(&w0)?;
    let quad = (w2.broadcast_sub(&w1)? - w1.broadcast_sub(&w0)?)?;
    let sum = xi.broadcast_add(&xj)?;
    let prod = xi.broadcast_mul(&xj)?;
    Ok(sum
        .broadcast_mul(&lin)?
        .broadcast_add(&prod.broadcast_mul(&quad)?)?
        .broadcast_add(&w0)?)
}
