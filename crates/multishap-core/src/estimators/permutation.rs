//! Permutation sampling. Each random permutation pi is evaluated on its d + 1
//! prefixes P_0 .. P_d, which gives one Shapley marginal contribution per
//! player; for every *adjacent* cross-modal pair (pi_t, pi_t+1) one extra
//! evaluation v(P_t + pi_t+1) gives the discrete derivative
//! D(P_t) = v(P_t+2) - v(P_t + pi_t+1) - v(P_t+1) + v(P_t). Conditioned on a
//! pair being adjacent, P_t follows the SII law (the pair acts as one merged
//! player of a uniform permutation), so each pair's estimate is the mean of
//! its samples (pairs that were never adjacent get 0 with an unknown
//! standard error).
use super::{begin, finish, vec_tensor};
use crate::eval::evaluate_all;
use crate::sampling::rng_from_seed;
use crate::{Approximator, Coalition, CoalitionBatch, Error, Game, InteractionEstimate, Result};
use candle_core::{DType, Tensor};
use rand::seq::SliceRandom;

#[derive(Debug, Clone, Copy, Default)]
pub struct Permutation;

impl Approximator for Permutation {
    fn name(&self) -> &str {
        "permutation"
    }

    fn approximate(
        &self,
        game: &mut dyn Game,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        let (start, players, m, n, d) = begin(game.players())?;
        let mut rng = rng_from_seed(seed);
        let mut batch = CoalitionBatch::new(d);
        let (mut ia, mut ib, mut ic, mut id, mut pair) = (vec![], vec![], vec![], vec![], vec![]);
        let (mut hi, mut lo) = (vec![], vec![]);
        let mut perms = 0usize;
        let mut order: Vec<usize> = (0..d).collect();
        loop {
            order.shuffle(&mut rng);
            let adjacent: Vec<usize> = (0..d - 1)
                .filter(|&t| players.is_image(order[t]) != players.is_image(order[t + 1]))
                .collect();
            if batch.len() + d + 1 + adjacent.len() > budget {
                break;
            }
            let base = batch.len() as u32;
            let mut prefix = Coalition::empty(d);
            batch.push(&prefix);
            for &p in &order {
                prefix.insert(p);
                batch.push(&prefix);
            }
            let mut pos = vec![0usize; d];
            for (t, &p) in order.iter().enumerate() {
                pos[p] = t;
            }
            for &t in &pos {
                hi.push(base + t as u32 + 1);
                lo.push(base + t as u32);
            }
            for &t in &adjacent {
                let (a, b) = (order[t], order[t + 1]);
                let extra = Coalition::from_members(d, order[..t].iter().copied().chain([b]));
                ia.push(base + t as u32 + 2);
                ib.push(batch.len() as u32);
                ic.push(base + t as u32 + 1);
                id.push(base + t as u32);
                let (i, j) = if a < m { (a, b - m) } else { (b, a - m) };
                pair.push((i * n + j) as u32);
                batch.push(&extra);
            }
            perms += 1;
        }
        if perms == 0 {
            return Err(Error::InvalidInput(format!(
                "permutation: budget {budget} is below one permutation (about {} evaluations)",
                2 * d
            )));
        }
        let dev = game.device().clone();
        let values = evaluate_all(game, &batch)?;
        let gather = |idx: &Vec<u32>| -> Result<Tensor> {
            Ok(values.index_select(&Tensor::new(idx.as_slice(), &dev)?, 0)?)
        };
        let shapley_t = (gather(&hi)? - gather(&lo)?)?
            .reshape((perms, d))?
            .mean(0)?;
        let mut counts = vec![0.0f64; m * n];
        pair.iter().for_each(|&p| counts[p as usize] += 1.0);
        let zero = Tensor::zeros(m * n, DType::F64, &dev)?;
        let (sii, se) = if pair.is_empty() {
            (zero.clone(), (zero + f64::NAN)?)
        } else {
            let delta = (((gather(&ia)? - gather(&ib)?)? - gather(&ic)?)? + gather(&id)?)?;
            let pid = Tensor::new(pair.as_slice(), &dev)?;
            let sum = zero.index_add(&pid, &delta, 0)?;
            let sumsq = zero.index_add(&pid, &delta.sqr()?, 0)?;
            let c = vec_tensor(counts.iter().map(|&c| c.max(1.0)).collect(), &dev)?;
            let mean = sum.div(&c)?;
            let var = (sumsq - sum.sqr()?.div(&c)?)?.relu()?;
            let c1 = vec_tensor(
                counts
                    .iter()
                    .map(|&c| if c > 1.0 { c * (c - 1.0) } else { f64::NAN })
                    .collect(),
                &dev,
            )?;
            (mean, var.div(&c1)?.sqrt()?)
        };
        let shapley = shapley_t.to_vec1::<f64>()?;
        finish(
            self.name(),
            players,
            &sii,
            &se,
            Some(shapley),
            batch.len(),
            start,
        )
    }
}
