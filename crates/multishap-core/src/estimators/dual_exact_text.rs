//! Dual-encoder estimator with the text side summed exactly, for games
//! v(S) = f(A(S_img), B(S_txt)) with few text players (CLIP captions).
//!
//! A caption has n <= ~12 word pieces, so all 2^n text coalitions cost fewer
//! text-encoder passes than the draws [`super::dual::DualEncoder`] spends on
//! them, and the text tower is the cheap one. With every text coalition in
//! the grid, the SII's sum over text contexts is computed exactly for every
//! image context; only the image side is sampled:
//!
//! SII_ij = sum_{R ⊆ I \ i} sum_{Q ⊆ T \ j} w(|R| + |Q|) D_ij(R ∪ Q)
//!        = sum_R sum_{B ⊆ T} c_{j,|R|}(B) [v(R + i, B) - v(R, B)]
//!
//! with c_{j,r}(B) = w(r + |B| - 1) if j ∈ B, -w(r + |B|) otherwise. K image
//! base coalitions (sizes cycling through permutations of 0..=m, then uniform
//! subsets) are toggled at every patch as in the dual-encoder estimator; base
//! a gives patch i the context R = A_a \ i, weighted by 1 / q(R). Bases come
//! in antithetic pairs (A, I \ A) by default; each keeps the marginal law, so
//! the estimate stays unbiased, and the standard error is that of the mean of
//! the K / 2 independent pair averages.
//!
//! Budget and `evaluations` count encoder passes: K (m+1) image + 2^n text
//! (K rounded down to even with antithetic pairs).
use super::dual::{q_modal, toggled_bases};
use super::{begin, finish, mean_and_stderr};
use crate::sampling::rng_from_seed;
use crate::weights::Weights;
use crate::{
    CoalitionBatch, DualApproximator, DualEncoderGame, Error, InteractionEstimate, Result,
};
use candle_core::{DType, Device, Tensor};

/// Largest number of text players whose 2^n coalitions are enumerated: the
/// grid holds K (m+1) x 2^n values (4,096 text columns at n = 12: ~100 MB in
/// f64 at K = 64, m = 49).
pub const MAX_EXHAUSTIVE_TEXT_PLAYERS: usize = 12;

/// Largest `[chunk, m + 2n, 2^n]`-sized block materialised at once (elements).
const BLOCK: usize = 1 << 22;

#[derive(Debug, Clone, Copy)]
pub struct DualExactText {
    /// Image bases in complementary pairs (A, I \ A), standard errors over
    /// pairs (default; measured 1.1-2.5x lower MSE at the same K on the demo
    /// CLIP, benches/RESULTS.md). `false` draws every base independently.
    pub antithetic: bool,
}

impl Default for DualExactText {
    fn default() -> Self {
        Self { antithetic: true }
    }
}

impl DualExactText {
    /// Text-encoder passes spent on the text side: 2^n.
    pub fn text_passes(text_players: usize) -> Result<usize> {
        if text_players > MAX_EXHAUSTIVE_TEXT_PLAYERS {
            return Err(Error::InvalidInput(format!(
                "dual-exact-text enumerates all 2^n text coalitions and supports n <= \
                 {MAX_EXHAUSTIVE_TEXT_PLAYERS} text players; this sample has n = {text_players} \
                 (use dual-encoder)"
            )));
        }
        Ok(1usize << text_players)
    }
}

/// All 2^n coalitions of n players, row b = bitmask b.
fn all_text_coalitions(n: usize) -> CoalitionBatch {
    let mut all = CoalitionBatch::with_capacity(n, 1 << n);
    for mask in 0..(1u64 << n) {
        all.push_mask(mask);
    }
    all
}

/// Coefficients `c_{j,r}(B) / q(r)` as a `[2^n, n]` row-major table for one
/// image context size r (zero for r outside 0..m).
fn text_coefficients(w: &Weights, m: usize, n: usize, r: usize) -> Vec<f64> {
    let rows = 1usize << n;
    let mut c = vec![0.0; rows * n];
    if r >= m {
        return c;
    }
    let inv_q = 1.0 / q_modal(w, m, r);
    for b in 0..rows {
        let size = (b as u64).count_ones() as usize;
        for j in 0..n {
            c[b * n + j] = if b >> j & 1 == 1 {
                w.sii(r + size - 1)
            } else {
                -w.sii(r + size)
            } * inv_q;
        }
    }
    c
}

impl DualApproximator for DualExactText {
    fn name(&self) -> &str {
        "dual-exact-text"
    }

    fn approximate_dual(
        &self,
        game: &mut dyn DualEncoderGame,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        self.approximate_in_blocks(game, budget, seed, BLOCK)
    }
}

impl DualExactText {
    /// [`DualApproximator::approximate_dual`] with at most about `block`
    /// elements per chunk of bases (tests use small blocks).
    fn approximate_in_blocks(
        &self,
        game: &mut dyn DualEncoderGame,
        budget: usize,
        seed: u64,
        block: usize,
    ) -> Result<InteractionEstimate> {
        let (start, players, m, n, d) = begin(game.players())?;
        let text_passes = Self::text_passes(n)?;
        let mut k = budget.saturating_sub(text_passes) / (m + 1);
        if self.antithetic {
            k -= k % 2;
        }
        if k < 2 {
            return Err(Error::InvalidInput(format!(
                "dual-exact-text: budget {budget} is below two image draws plus all text \
                 coalitions (2 (m + 1) + 2^n = {} encoder passes)",
                2 * (m + 1) + text_passes
            )));
        }
        let w = Weights::new(d);
        let mut rng = rng_from_seed(seed);
        let (img_bases, img_all, img_sizes) = toggled_bases(&mut rng, m, k, self.antithetic);
        let txt_all = all_text_coalitions(n);
        let dev: Device = game.device().clone();
        let grid = game
            .evaluate_grid(&img_all, &txt_all)?
            .to_dtype(DType::F64)?;
        if grid.dims() != [k * (m + 1), text_passes] {
            return Err(Error::Game(format!(
                "evaluate_grid returned shape {:?}, expected [{}, {text_passes}]",
                grid.dims(),
                k * (m + 1)
            )));
        }
        let v = grid.reshape((k, m + 1, text_passes))?;
        let base = v.narrow(1, 0, 1)?;
        let toggled = v.narrow(1, 1, m)?;
        // +1 where the toggle adds patch i (i not in the base), -1 where it removes it
        let ind = img_bases.to_mask_tensor(&dev, DType::F64)?; // [K, m]
        let sign = ind.affine(-2.0, 1.0)?.unsqueeze(2)?;
        let diff = toggled.broadcast_sub(&base)?.broadcast_mul(&sign)?; // [K, m, 2^n]
                                                                        // coefficient tables for every context size 0..=m (size m: zeros), [m+1, 2^n, n]
        let tables: Vec<f64> = (0..=m)
            .flat_map(|r| text_coefficients(&w, m, n, r))
            .collect();
        let tables =
            Tensor::from_vec(tables, (m + 1, text_passes, n), &Device::Cpu)?.to_device(&dev)?;
        // per base: the table of context size s (patch absent) and s - 1 (present;
        // an empty base has no present patch, so it takes the zero table)
        let absent_size: Vec<u32> = img_sizes.iter().map(|&s| s as u32).collect();
        let present_size: Vec<u32> = img_sizes
            .iter()
            .map(|&s| s.checked_sub(1).unwrap_or(m) as u32)
            .collect();
        let ind = ind.unsqueeze(2)?; // [K, m, 1]
        let chunk = (block / (text_passes * (m + 2 * n)).max(1)).clamp(1, k);
        let mut parts = Vec::with_capacity(k.div_ceil(chunk));
        let mut a0 = 0;
        while a0 < k {
            let ca = chunk.min(k - a0);
            let pick = |sizes: &[u32]| -> Result<Tensor> {
                let idx = Tensor::new(&sizes[a0..a0 + ca], &dev)?;
                Ok(tables.index_select(&idx, 0)?) // [ca, 2^n, n]
            };
            let dc = diff.narrow(0, a0, ca)?.contiguous()?;
            let absent = dc.matmul(&pick(&absent_size)?)?; // [ca, m, n]
            let present = dc.matmul(&pick(&present_size)?)?;
            let ic = ind.narrow(0, a0, ca)?;
            parts.push(
                (absent.broadcast_mul(&ic.affine(-1.0, 1.0)?)? + present.broadcast_mul(&ic)?)?,
            );
            a0 += ca;
        }
        let terms = Tensor::cat(&parts, 0)?; // [K, m, n]
        let terms = if self.antithetic {
            terms.reshape((k / 2, 2, m, n))?.mean(1)?
        } else {
            terms
        };
        let (mean, se) = mean_and_stderr(&terms)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_coefficients_sum_the_sii_law_over_text_contexts() {
        // sum over B of |c_{j,r}(B)| * q(r) = 2 * sum_{Q ⊆ T \ j} w(r + |Q|)
        let (m, n) = (5, 3);
        let w = Weights::new(m + n);
        for r in 0..m {
            let c = text_coefficients(&w, m, n, r);
            let q = q_modal(&w, m, r);
            for j in 0..n {
                let total: f64 = (0..1usize << n).map(|b| c[b * n + j].abs() * q).sum();
                let want: f64 = (0..n).map(|s| 2.0 * w.binom(n - 1, s) * w.sii(r + s)).sum();
                assert!(
                    (total - want).abs() < 1e-12,
                    "r {r} j {j}: {total} vs {want}"
                );
            }
        }
        assert!(text_coefficients(&w, m, n, m).iter().all(|&x| x == 0.0));
    }

    /// v = <A(S_img), B(S_txt)> + A_0^2 with fixed random linear-tanh encoders.
    struct TinyDual {
        players: crate::Players,
        device: Device,
    }

    impl TinyDual {
        fn encode(batch: &CoalitionBatch, salt: f64) -> Vec<[f64; 2]> {
            batch
                .iter()
                .map(|c| {
                    let mut e = [0.0; 2];
                    for p in c.members() {
                        e[0] += ((p as f64 + salt) * 1.7).sin();
                        e[1] += ((p as f64 + salt) * 0.9).cos();
                    }
                    e.map(f64::tanh)
                })
                .collect()
        }
    }

    impl DualEncoderGame for TinyDual {
        fn players(&self) -> crate::Players {
            self.players
        }

        fn device(&self) -> &Device {
            &self.device
        }

        fn evaluate_grid(
            &mut self,
            image: &CoalitionBatch,
            text: &CoalitionBatch,
        ) -> Result<Tensor> {
            let (a, b) = (Self::encode(image, 0.3), Self::encode(text, 5.1));
            let v: Vec<f64> = a
                .iter()
                .flat_map(|x| {
                    b.iter()
                        .map(move |y| x[0] * y[0] + x[1] * y[1] + x[0] * x[0])
                })
                .collect();
            Ok(Tensor::from_vec(v, (a.len(), b.len()), &Device::Cpu)?)
        }
    }

    #[test]
    fn chunked_bases_give_the_same_estimate() {
        let mut game = TinyDual {
            players: crate::Players::new(5, 4),
            device: Device::Cpu,
        };
        let est = DualExactText::default();
        let whole = est.approximate_in_blocks(&mut game, 600, 7, BLOCK).unwrap();
        // 16 text coalitions x (5 + 8) = 208 elements per base: one base per chunk
        let chunked = est.approximate_in_blocks(&mut game, 600, 7, 208).unwrap();
        assert_eq!(whole.evaluations, chunked.evaluations);
        for (a, b) in whole.sii.iter().zip(&chunked.sii) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(whole.sii.iter().any(|x| x.abs() > 1e-6));
    }

    #[test]
    fn too_many_text_players_is_a_clear_error() {
        let err = DualExactText::text_passes(MAX_EXHAUSTIVE_TEXT_PLAYERS + 1).unwrap_err();
        assert!(err.to_string().contains("use dual-encoder"), "{err}");
        assert_eq!(DualExactText::text_passes(3).unwrap(), 8);
    }
}
