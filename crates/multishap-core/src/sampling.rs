//! Random coalitions: seeded generators, uniform subsets of a given size.
use crate::Coalition;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every estimator uses: same seed, same coalitions.
pub fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A coalition over `d` players made of `size` members drawn uniformly
/// without replacement from `pool` (partial Fisher-Yates on a scratch copy).
pub fn random_subset<R: Rng>(rng: &mut R, d: usize, pool: &mut [usize], size: usize) -> Coalition {
    debug_assert!(size <= pool.len());
    let len = pool.len();
    for t in 0..size {
        let pick = rng.random_range(t..len);
        pool.swap(t, pick);
    }
    Coalition::from_members(d, pool[..size].iter().copied())
}

/// Draw an index from unnormalised non-negative weights (linear scan of a
/// precomputed cumulative table).
#[derive(Debug, Clone)]
pub struct Discrete {
    cumulative: Vec<f64>,
}

impl Discrete {
    pub fn new(weights: &[f64]) -> Self {
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w.max(0.0);
                acc
            })
            .collect();
        Self { cumulative }
    }

    pub fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let u = rng.random::<f64>() * self.total();
        let idx = self.cumulative.partition_point(|&c| c <= u);
        idx.min(self.cumulative.len() - 1)
    }
}
