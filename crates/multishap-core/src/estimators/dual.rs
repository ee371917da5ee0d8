//! Dual-encoder estimator for games v(S) = f(A(S_img), B(S_txt)) (CLIP).
//!
//! K image base coalitions and K text base coalitions are drawn independently
//! (size-stratified: sizes cycle through permutations, each uniform; then
//! uniform subsets) and each is toggled at every one of
//! its players: K (m+1) image and K (n+1) text coalitions, whose product grid
//! (one `evaluate_grid` call) holds K^2 (m+1)(n+1) game values. Every pair of
//! bases (a, b) gives one discrete derivative D_ij for every (patch i, token j)
//! at the context (S_a \ i) ∪ (S_b \ j). The SII law does not factorise across
//! modalities, so each product sample is weighted by p_SII(context) /
//! (q_img(S_a \ i) q_txt(S_b \ j)), which keeps the estimate unbiased. The
//! standard error is that of a two-sample U-statistic
//! (var of row means / K + var of column means / K).
//!
//! Budget and `evaluations` count *encoder passes*: K (m+1) + K (n+1).
use super::{begin, finish};
use crate::sampling::{random_subset, rng_from_seed};
use crate::weights::Weights;
use crate::{
    CoalitionBatch, DualApproximator, DualEncoderGame, Error, InteractionEstimate, Result,
};
use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;

#[derive(Debug, Clone, Copy, Default)]
pub struct DualEncoder;

/// Largest `[chunk, m, K, n]` block materialised at once (elements).
const BLOCK: usize = 1 << 22;

/// P(S \ {i} = R) for |R| = r when |S| is uniform on 0..=players.
pub(super) fn q_modal(w: &Weights, players: usize, r: usize) -> f64 {
    let p = 1.0 / (players + 1) as f64;
    let mut q = p / w.binom(players, r);
    if r < players {
        q += p / w.binom(players, r + 1);
    }
    q
}

/// Base coalitions over `players` players and their toggles: `k (players+1)` rows.
pub(super) fn toggled_bases<R: Rng>(
    rng: &mut R,
    players: usize,
    k: usize,
    antithetic: bool,
) -> (CoalitionBatch, CoalitionBatch, Vec<usize>) {
    let mut pool: Vec<usize> = (0..players).collect();
    let mut bases = CoalitionBatch::with_capacity(players, k);
    let mut all = CoalitionBatch::with_capacity(players, k * (players + 1));
    let mut sizes = Vec::with_capacity(k);
    // sizes cycle through random permutations of 0..=players (each draw's
    // size stays uniform, so the weights below remain exact)
    let mut schedule: Vec<usize> = Vec::with_capacity(k + players + 1);
    while schedule.len() < k {
        let mut round: Vec<usize> = (0..=players).collect();
        round.shuffle(rng);
        schedule.extend(round);
    }
    for (a, &s) in schedule[..k].iter().enumerate() {
        let base = if antithetic && a % 2 == 1 {
            // the complement of the previous base: same marginal law
            let prev = bases.get(a - 1);
            crate::Coalition::from_members(players, (0..players).filter(|&p| !prev.contains(p)))
        } else {
            random_subset(rng, players, &mut pool, s)
        };
        all.push(&base);
        for p in 0..players {
            all.push(&base.with(p, !base.contains(p)));
        }
        sizes.push(base.len());
        bases.push(&base);
    }
    (bases, all, sizes)
}

impl DualApproximator for DualEncoder {
    fn name(&self) -> &str {
        "dual-encoder"
    }

    fn approximate_dual(
        &self,
        game: &mut dyn DualEncoderGame,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        let (start, players, m, n, d) = begin(game.players())?;
        let k = budget / (m + n + 2);
        if k < 2 {
            return Err(Error::InvalidInput(format!(
                "dual-encoder: budget {budget} is below two draws (2 (m + n + 2) = {} encoder passes)",
                2 * (m + n + 2)
            )));
        }
        let w = Weights::new(d);
        let mut rng = rng_from_seed(seed);
        let (img_bases, img_all, img_sizes) = toggled_bases(&mut rng, m, k, false);
        let (txt_bases, txt_all, txt_sizes) = toggled_bases(&mut rng, n, k, false);
        let dev: Device = game.device().clone();
        let grid = game
            .evaluate_grid(&img_all, &txt_all)?
            .to_dtype(DType::F64)?;
        if grid.dims() != [k * (m + 1), k * (n + 1)] {
            return Err(Error::Game(format!(
                "evaluate_grid returned shape {:?}, expected [{}, {}]",
                grid.dims(),
                k * (m + 1),
                k * (n + 1)
            )));
        }
        let v = grid.reshape((k, m + 1, k, n + 1))?;
        // weights table W[ta][tb][a][b]
        let mut tables: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(k * k)).collect();
        for &sa in &img_sizes {
            for &sb in &txt_sizes {
                for ta in 0..2 {
                    for tb in 0..2 {
                        let val = if ta <= sa && tb <= sb {
                            let (ra, rb) = (sa - ta, sb - tb);
                            w.sii(ra + rb) / (q_modal(&w, m, ra) * q_modal(&w, n, rb))
                        } else {
                            0.0
                        };
                        tables[ta * 2 + tb].push(val);
                    }
                }
            }
        }
        let tables: Vec<Tensor> = tables
            .into_iter()
            .map(|t| Ok(Tensor::from_vec(t, (k, 1, k, 1), &Device::Cpu)?.to_device(&dev)?))
            .collect::<Result<_>>()?;
        let xa = img_bases.to_mask_tensor(&dev, DType::F64)?; // [K, m]
        let xb = txt_bases.to_mask_tensor(&dev, DType::F64)?; // [K, n]
        let ind_b1 = xb.unsqueeze(0)?.unsqueeze(0)?; // [1,1,K,n]
        let ind_b0 = ind_b1.affine(-1.0, 1.0)?;
        let sig_b = ind_b1.affine(-2.0, 1.0)?;
        let chunk = (BLOCK / (m * k * n).max(1)).clamp(1, k);
        let mut row_means = Vec::new();
        let mut col_sums = Tensor::zeros((m, k, n), DType::F64, &dev)?;
        let mut a0 = 0;
        while a0 < k {
            let ca = chunk.min(k - a0);
            let vc = v.narrow(0, a0, ca)?;
            let v00 = vc.narrow(1, 0, 1)?.narrow(3, 0, 1)?;
            let vi0 = vc.narrow(1, 1, m)?.narrow(3, 0, 1)?;
            let v0j = vc.narrow(1, 0, 1)?.narrow(3, 1, n)?;
            let vij = vc.narrow(1, 1, m)?.narrow(3, 1, n)?;
            let raw = vij
                .broadcast_sub(&vi0)?
                .broadcast_sub(&v0j)?
                .broadcast_add(&v00)?;
            let ind_a1 = xa.narrow(0, a0, ca)?.unsqueeze(2)?.unsqueeze(3)?; // [ca,m,1,1]
            let ind_a0 = ind_a1.affine(-1.0, 1.0)?;
            let sig_a = ind_a1.affine(-2.0, 1.0)?;
            let delta = raw.broadcast_mul(&sig_a)?.broadcast_mul(&sig_b)?;
            let mut weight: Option<Tensor> = None;
            for (idx, (ia, ib)) in [
                (&ind_a0, &ind_b0),
                (&ind_a0, &ind_b1),
                (&ind_a1, &ind_b0),
                (&ind_a1, &ind_b1),
            ]
            .into_iter()
            .enumerate()
            {
                let t = tables[idx].narrow(0, a0, ca)?;
                let term = ia.broadcast_mul(ib)?.broadcast_mul(&t)?;
                weight = Some(match weight {
                    None => term,
                    Some(acc) => (acc + term)?,
                });
            }
            let h = (delta * weight.expect("four terms"))?; // [ca, m, K, n]
            row_means.push(h.mean(2)?); // [ca, m, n]
            col_sums = (col_sums + h.sum(0)?)?;
            a0 += ca;
        }
        let rows = Tensor::cat(&row_means, 0)?; // [K, m, n]
        let cols = (col_sums / k as f64)?.transpose(0, 1)?.contiguous()?; // [K, m, n]
        let mean = rows.mean(0)?;
        let kf = k as f64;
        let var_rows = rows.broadcast_sub(&mean.unsqueeze(0)?)?.sqr()?.sum(0)? / (kf - 1.0);
        let var_cols = cols.broadcast_sub(&mean.unsqueeze(0)?)?.sqr()?.sum(0)? / (kf - 1.0);
        let se = ((var_rows? + var_cols?)? / kf)?.sqrt()?;
        finish(
            self.name(),
            players,
            &mean,
            &se,
            None,
            img_all.len() + txt_all.len(),
            start,
        )
    }
}
