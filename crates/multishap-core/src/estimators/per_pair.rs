//! The paper's estimator: independent coalitions for every (patch, token)
//! pair, 4 evaluations per draw. `uniform`: a size uniform in 0..=d-2 then a
//! uniform context of that size; `stratified`: the sizes of each pair cycle
//! through random permutations of 0..=d-2, so that with K a multiple of d-1
//! every size gets the same number of draws (the reference code's default,
//! which takes one coalition per size).
use super::{begin, finish, mean_and_stderr};
use crate::eval::evaluate_all;
use crate::sampling::{random_subset, rng_from_seed};
use crate::{Approximator, CoalitionBatch, Error, Game, InteractionEstimate, Result};
use candle_core::Tensor;
use rand::seq::SliceRandom;
use rand::Rng;

#[derive(Debug, Clone, Copy, Default)]
pub struct PerPair {
    pub stratified: bool,
}

impl Approximator for PerPair {
    fn name(&self) -> &str {
        if self.stratified {
            "per-pair-stratified"
        } else {
            "per-pair"
        }
    }

    fn approximate(
        &self,
        game: &mut dyn Game,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        let (start, players, m, n, d) = begin(game.players())?;
        let pairs = m * n;
        let draws = budget / (4 * pairs);
        if draws == 0 {
            return Err(Error::InvalidInput(format!(
                "{}: budget {budget} is below one draw per pair (4 x {pairs} = {} evaluations)",
                self.name(),
                4 * pairs
            )));
        }
        let mut rng = rng_from_seed(seed);
        let mut batch = CoalitionBatch::with_capacity(d, 4 * pairs * draws);
        let mut pool: Vec<usize> = Vec::with_capacity(d);
        let mut sizes: Vec<usize> = Vec::with_capacity(draws);
        for i in 0..m {
            for j in 0..n {
                let jg = m + j;
                pool.clear();
                pool.extend((0..d).filter(|&p| p != i && p != jg));
                sizes.clear();
                if self.stratified {
                    while sizes.len() < draws {
                        let mut round: Vec<usize> = (0..=d - 2).collect();
                        round.shuffle(&mut rng);
                        sizes.extend(round);
                    }
                    sizes.truncate(draws);
                } else {
                    sizes.extend((0..draws).map(|_| rng.random_range(0..=d - 2)));
                }
                for &s in &sizes {
                    let ctx = random_subset(&mut rng, d, &mut pool, s);
                    batch.push(&ctx);
                    batch.push(&ctx.with(i, true));
                    batch.push(&ctx.with(jg, true));
                    let mut both = ctx.with(i, true);
                    both.insert(jg);
                    batch.push(&both);
                }
            }
        }
        let values = evaluate_all(game, &batch)?;
        // [pairs, draws, 4] . [+1, -1, -1, +1] -> D [pairs, draws]
        let signs = Tensor::new(&[[1.0f64], [-1.0], [-1.0], [1.0]], values.device())?;
        let deltas = values
            .reshape((pairs * draws, 4))?
            .matmul(&signs)?
            .reshape((pairs, draws))?
            .t()?
            .contiguous()?;
        let (mean, se) = mean_and_stderr(&deltas)?;
        finish(self.name(), players, &mean, &se, None, batch.len(), start)
    }
}
