//! Regression-adjusted Monte Carlo ("regression-mc", the default estimator).
//!
//! 1. Coalitions: sizes follow a U-shaped design p0(s) chosen to minimise the
//!    variance of the Monte Carlo correction below; sizes whose full strata fit
//!    in their share of the budget are enumerated ("border trick"), the rest is
//!    sampled in complementary pairs (S, N \ S).
//! 2. Surrogate: a weighted least-squares fit of
//!    g(S) = b0 + sum_p a_p x_p + sum_{i img, j txt} b_ij x_i x_j
//!    (+ within-modality pairs when they are few), one Cholesky solve of a
//!    (1 + d + m n) system. For such a polynomial SII_ij(g) = b_ij and
//!    phi_p(g) = a_p + 1/2 sum_q b_pq exactly.
//! 3. Correction: SII(v) = SII(g) + SII(v - g), where the SII of the residual
//!    r = v - g is estimated from *every* evaluation for *every* pair through
//!    SII_ij(r) = sum_T r(T) c_ij(T), c_ij(T) = w(|T|-2), -w(|T|-1), w(|T|)
//!    when T holds both, one, none of i, j (importance-weighted sampling of T).
//!    With `folds` = 2 the surrogate used on one half of the sampled pairs is
//!    fitted on the other half (cross-fitting), so the estimate is unbiased
//!    and its standard error honest; enumerated strata contribute exactly.
//!
//! All aggregation (features, Gram matrix, residuals, correction sums) is
//! tensor arithmetic on the game's device; only the (p x p) solve is on the host.
use super::{begin, finish, masks, vec_tensor};
use crate::eval::evaluate_all;
use crate::linalg::solve_spd;
use crate::sampling::{random_subset, rng_from_seed, Discrete};
use crate::weights::Weights;
use crate::{
    Approximator, Coalition, CoalitionBatch, Error, Game, InteractionEstimate, Players, Result,
};
use candle_core::{DType, Device, Tensor};

/// Rows per chunk when building features and Gram matrices.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub struct RegressionMc {
    /// Add the Monte Carlo correction of the residual (false = the surrogate
    /// alone: lower variance but biased).
    pub correction: bool,
    /// 1 = fit and correct on the same samples, 2+ = cross-fitting.
    pub folds: usize,
    /// Include within-modality pairs in the surrogate when the number of
    /// features stays below this and below a quarter of the budget.
    pub max_all_pair_features: usize,
    /// Ridge, relative to the mean diagonal of the Gram matrix.
    pub ridge: f64,
}

impl Default for RegressionMc {
    fn default() -> Self {
        Self {
            correction: true,
            folds: 2,
            max_all_pair_features: 1200,
            ridge: 1e-4,
        }
    }
}

impl RegressionMc {
    /// The surrogate alone (registry name "regression").
    pub fn surrogate_only() -> Self {
        Self {
            correction: false,
            folds: 1,
            ..Self::default()
        }
    }
}

/// Sampling plan: enumerated sizes and the design over the sampled ones.
struct Plan {
    enumerated: Vec<usize>,
    /// Design over all sizes, normalised (q0(T) = p0[s] / C(d, s)).
    p0: Vec<f64>,
    /// Design renormalised over `sampled` sizes.
    p_sampled: Vec<f64>,
    units: usize,
}

fn size_design(w: &Weights) -> Vec<f64> {
    let d = w.num_players() as f64;
    let dn = w.num_players();
    let raw: Vec<f64> = (0..=dn)
        .map(|s| {
            let sf = s as f64;
            let mut v = 0.0;
            if s >= 2 {
                v += 1.0 / (sf * (sf - 1.0));
            }
            if s >= 1 && s < dn {
                v += 2.0 / (sf * (d - sf));
            }
            if s + 2 <= dn {
                v += 1.0 / ((d - sf) * (d - sf - 1.0));
            }
            v.sqrt()
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / total).collect()
}

fn make_plan(w: &Weights, budget: usize) -> Plan {
    let d = w.num_players();
    let p0 = size_design(w);
    let mut enumerated = Vec::new();
    let mut remaining: Vec<usize> = (0..=d).collect();
    let mut left = budget as f64;
    loop {
        let mass: f64 = remaining.iter().map(|&s| p0[s]).sum();
        let mut pick = None;
        for &s in remaining.iter().filter(|&&s| s <= d - s) {
            let cost = if s == d - s {
                w.binom(d, s)
            } else {
                2.0 * w.binom(d, s)
            };
            let share = if s == d - s { p0[s] } else { 2.0 * p0[s] };
            if cost <= left * share / mass * (1.0 + 1e-9) + 1e-9 && cost <= left + 1e-9 {
                pick = Some((s, cost));
                break;
            }
        }
        match pick {
            Some((s, cost)) => {
                left -= cost;
                remaining.retain(|&r| r != s && r != d - s);
                enumerated.push(s);
                if s != d - s {
                    enumerated.push(d - s);
                }
            }
            None => break,
        }
    }
    let mass: f64 = remaining.iter().map(|&s| p0[s]).sum();
    let mut p_sampled = vec![0.0; d + 1];
    for &s in &remaining {
        p_sampled[s] = p0[s] / mass;
    }
    let units = if remaining.is_empty() {
        0
    } else {
        (left.max(0.0) as usize) / 2
    };
    Plan {
        enumerated,
        p0,
        p_sampled,
        units,
    }
}

/// All subsets of `0..d` of size `s`, in lexicographic order.
fn push_all_subsets(batch: &mut CoalitionBatch, d: usize, s: usize) {
    let mut idx: Vec<usize> = (0..s).collect();
    loop {
        batch.push(&Coalition::from_members(d, idx.iter().copied()));
        let mut k = s;
        while k > 0 && idx[k - 1] == k - 1 + d - s {
            k -= 1;
        }
        if k == 0 {
            return;
        }
        idx[k - 1] += 1;
        for t in k..s {
            idx[t] = idx[t - 1] + 1;
        }
    }
}

/// SII coefficient of a coalition of size `s` holding `t` of the pair.
fn c_pair(w: &Weights, s: usize, t: usize) -> f64 {
    let k = s as i64 - t as i64;
    match t {
        2 | 0 => w.sii_i(k),
        _ => -w.sii_i(k),
    }
}

/// Shapley coefficient of a coalition of size `s` that holds (`t` = 1) or
/// lacks (`t` = 0) the player.
fn c_single(w: &Weights, s: usize, t: usize) -> f64 {
    let k = s as i64 - t as i64;
    if t == 1 {
        w.shapley_i(k)
    } else {
        -w.shapley_i(k)
    }
}

/// Pair features of the surrogate beyond the cross-modal ones.
fn within_pairs(players: Players) -> Vec<(usize, usize)> {
    let Players { image: m, text: n } = players;
    let mut out = Vec::new();
    for a in 0..m {
        for b in a + 1..m {
            out.push((a, b));
        }
    }
    for a in m..m + n {
        for b in a + 1..m + n {
            out.push((a, b));
        }
    }
    out
}

/// Features `[c, p]` = [1, x, cross x_i x_j, within x_a x_b] of masks `[c, d]`.
fn features(x: &Tensor, m: usize, n: usize, within: Option<&Tensor>) -> Result<Tensor> {
    let c = x.dim(0)?;
    let d = m + n;
    let ones = Tensor::ones((c, 1), DType::F64, x.device())?;
    let xi = x.narrow(1, 0, m)?.unsqueeze(2)?;
    let xj = x.narrow(1, m, n)?.unsqueeze(1)?;
    let cross = xi.broadcast_mul(&xj)?.reshape((c, m * n))?;
    let mut parts = vec![ones, x.clone(), cross];
    if let Some(idx) = within {
        let outer = x
            .unsqueeze(2)?
            .broadcast_mul(&x.unsqueeze(1)?)?
            .reshape((c, d * d))?;
        parts.push(outer.index_select(idx, 1)?);
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// Sums over rows k of z_k(i, j), where z_k takes the value v11[k], v10[k],
/// v00[k] when mask row k holds both, one, none of (image i, text j).
fn pair_sums(xi: &Tensor, xj: &Tensor, v11: &Tensor, v10: &Tensor, v00: &Tensor) -> Result<Tensor> {
    let alpha = ((v11 - (v10 * 2.0)?)? + v00)?;
    let beta = (v10 - v00)?;
    let a = xi.t()?.matmul(&xj.broadcast_mul(&alpha.unsqueeze(1)?)?)?; // [m, n]
    let bi = xi.t()?.matmul(&beta.unsqueeze(1)?)?; // [m, 1]
    let bj = beta.unsqueeze(0)?.matmul(xj)?; // [1, n]
    let g = v00.sum_all()?;
    Ok(a.broadcast_add(&bi)?
        .broadcast_add(&bj)?
        .broadcast_add(&g)?)
}

/// Sums over rows of u_k(p) = u1[k] if x_kp else u0[k], for all players.
fn single_sums(x: &Tensor, u1: &Tensor, u0: &Tensor) -> Result<Tensor> {
    let diff = (u1 - u0)?;
    let a = x.t()?.matmul(&diff.unsqueeze(1)?)?.squeeze(1)?;
    Ok(a.broadcast_add(&u0.sum_all()?)?)
}

struct Fit {
    gram: Vec<f64>,
    rhs: Vec<f64>,
}

impl RegressionMc {
    #[allow(clippy::too_many_arguments)]
    fn fit_parts(
        &self,
        x: &Tensor,
        values: &Tensor,
        lambda: &Tensor,
        m: usize,
        n: usize,
        within: Option<&Tensor>,
        p: usize,
    ) -> Result<Fit> {
        let rows = x.dim(0)?;
        let dev = x.device();
        let mut gram = Tensor::zeros((p, p), DType::F64, dev)?;
        let mut rhs = Tensor::zeros((p, 1), DType::F64, dev)?;
        let mut start = 0;
        while start < rows {
            let len = CHUNK.min(rows - start);
            let f = features(&x.narrow(0, start, len)?, m, n, within)?;
            let sl = lambda.narrow(0, start, len)?.sqrt()?.unsqueeze(1)?;
            let fw = f.broadcast_mul(&sl)?;
            let vw = values.narrow(0, start, len)?.unsqueeze(1)?.mul(&sl)?;
            let ft = fw.t()?;
            gram = (gram + ft.matmul(&fw)?)?;
            rhs = (rhs + ft.matmul(&vw)?)?;
            start += len;
        }
        Ok(Fit {
            gram: gram.flatten_all()?.to_vec1::<f64>()?,
            rhs: rhs.flatten_all()?.to_vec1::<f64>()?,
        })
    }

    fn residuals(
        &self,
        x: &Tensor,
        values: &Tensor,
        beta: &Tensor,
        m: usize,
        n: usize,
        within: Option<&Tensor>,
    ) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let mut parts = Vec::new();
        let mut start = 0;
        while start < rows {
            let len = CHUNK.min(rows - start);
            let f = features(&x.narrow(0, start, len)?, m, n, within)?;
            parts.push(f.matmul(beta)?.squeeze(1)?);
            start += len;
        }
        if parts.is_empty() {
            return Ok(Tensor::zeros(0, DType::F64, x.device())?);
        }
        Ok((values - Tensor::cat(&parts, 0)?)?)
    }
}

impl Approximator for RegressionMc {
    fn name(&self) -> &str {
        if self.correction {
            "regression-mc"
        } else {
            "regression"
        }
    }

    fn approximate(
        &self,
        game: &mut dyn Game,
        budget: usize,
        seed: u64,
    ) -> Result<InteractionEstimate> {
        let (start, players, m, n, d) = begin(game.players())?;
        let w = Weights::new(d);
        let plan = make_plan(&w, budget);
        if plan.enumerated.is_empty() && plan.units == 0 {
            return Err(Error::InvalidInput(format!(
                "{}: budget {budget} is too small",
                self.name()
            )));
        }
        let folds = if self.correction {
            self.folds.max(1)
        } else {
            1
        };
        let folds = if plan.units < 2 * folds { 1 } else { folds };

        // ---- coalitions: enumerated strata, then complementary pairs ----
        let mut batch = CoalitionBatch::new(d);
        for &s in &plan.enumerated {
            push_all_subsets(&mut batch, d, s);
        }
        let n_enum = batch.len();
        let mut rng = rng_from_seed(seed);
        let sampler = Discrete::new(&plan.p_sampled);
        let mut pool: Vec<usize> = (0..d).collect();
        let all = Coalition::full(d);
        for _ in 0..plan.units {
            let s = sampler.sample(&mut rng);
            let t = random_subset(&mut rng, d, &mut pool, s);
            let words: Vec<u64> = t
                .words()
                .iter()
                .zip(all.words())
                .map(|(a, f)| f & !a)
                .collect();
            batch.push(&t);
            batch.push_words(&words);
        }
        let total_rows = batch.len();

        // ---- per-coalition scalars (host, O(rows)) ----
        let mut sizes = Vec::with_capacity(total_rows);
        let mut gamma = Vec::with_capacity(total_rows);
        for r in 0..total_rows {
            let a = (0..m).filter(|&p| batch.contains(r, p)).count();
            let b = (m..d).filter(|&p| batch.contains(r, p)).count();
            let s = a + b;
            sizes.push(s);
            let (ca, cb, cc) = (c_pair(&w, s, 2), c_pair(&w, s, 1), c_pair(&w, s, 0));
            let one = (a * (n - b) + (m - a) * b) as f64;
            gamma.push(
                (a * b) as f64 * ca * ca + one * cb * cb + ((m - a) * (n - b)) as f64 * cc * cc,
            );
        }
        let units_per_fold: Vec<usize> = (0..folds)
            .map(|f| plan.units / folds + usize::from(f < plan.units % folds))
            .collect();
        // omega: inclusion weight in the correction sums; depends on fold size.
        let omega = |r: usize, k_units: usize| -> f64 {
            if r < n_enum {
                1.0
            } else {
                let s = sizes[r];
                let q = plan.p_sampled[s] / w.binom(d, s);
                1.0 / (2.0 * k_units as f64 * q)
            }
        };
        let lambda: Vec<f64> = (0..total_rows)
            .map(|r| {
                let s = sizes[r];
                let q0 = plan.p0[s] / w.binom(d, s);
                let om = omega(r, plan.units.max(1));
                (om * gamma[r] / q0).max(1e-300)
            })
            .collect();

        // ---- evaluate, move everything to the device ----
        let dev: Device = game.device().clone();
        let values = evaluate_all(game, &batch)?;
        let x = masks(&batch, &dev)?;
        let lambda_t = vec_tensor(lambda, &dev)?;
        let within_list = within_pairs(players);
        let base_p = 1 + d + m * n;
        let use_within = !within_list.is_empty()
            && base_p + within_list.len() <= self.max_all_pair_features
            && 4 * (base_p + within_list.len()) <= budget;
        let within_idx = if use_within {
            let idx: Vec<u32> = within_list
                .iter()
                .map(|&(a, b)| (a * d + b) as u32)
                .collect();
            Some(Tensor::new(idx.as_slice(), &dev)?)
        } else {
            None
        };
        let p = base_p + if use_within { within_list.len() } else { 0 };

        // ---- Gram matrices per group: enumerated, fold 0, fold 1, ... ----
        let mut ranges = vec![(0usize, n_enum)];
        let mut at = n_enum;
        for &u in &units_per_fold {
            ranges.push((at, 2 * u));
            at += 2 * u;
        }
        let mut fits = Vec::new();
        for &(s0, len) in &ranges {
            fits.push(self.fit_parts(
                &x.narrow(0, s0, len)?,
                &values.narrow(0, s0, len)?,
                &lambda_t.narrow(0, s0, len)?,
                m,
                n,
                within_idx.as_ref(),
                p,
            )?);
        }

        let mut sii_sum = Tensor::zeros((m, n), DType::F64, &dev)?;
        let mut var_sum = Tensor::zeros((m, n), DType::F64, &dev)?;
        let mut shap_sum = Tensor::zeros(d, DType::F64, &dev)?;
        for f in 0..folds {
            // fit on enumerated + all folds except f (or everything when folds = 1)
            let mut gram = fits[0].gram.clone();
            let mut rhs = fits[0].rhs.clone();
            for (g, fit) in fits.iter().enumerate().skip(1) {
                if folds > 1 && g - 1 == f {
                    continue;
                }
                gram.iter_mut().zip(&fit.gram).for_each(|(a, b)| *a += b);
                rhs.iter_mut().zip(&fit.rhs).for_each(|(a, b)| *a += b);
            }
            let mean_diag = (1..p).map(|k| gram[k * p + k]).sum::<f64>() / (p - 1) as f64;
            for k in 1..p {
                gram[k * p + k] += self.ridge * mean_diag.max(1e-300);
            }
            let beta = solve_spd(&gram, &rhs, p)?;
            // surrogate SII and Shapley
            let sur_sii: Vec<f64> = beta[1 + d..1 + d + m * n].to_vec();
            let mut sur_shap: Vec<f64> = beta[1..1 + d].to_vec();
            for i in 0..m {
                for j in 0..n {
                    let b = beta[1 + d + i * n + j];
                    sur_shap[i] += 0.5 * b;
                    sur_shap[m + j] += 0.5 * b;
                }
            }
            if use_within {
                for (k, &(a, b)) in within_list.iter().enumerate() {
                    let c = beta[base_p + k];
                    sur_shap[a] += 0.5 * c;
                    sur_shap[b] += 0.5 * c;
                }
            }
            let mut sii_f = Tensor::from_vec(sur_sii, (m, n), &Device::Cpu)?.to_device(&dev)?;
            let mut shap_f = vec_tensor(sur_shap, &dev)?;
            if self.correction {
                let beta_t = Tensor::from_vec(beta, (p, 1), &Device::Cpu)?.to_device(&dev)?;
                // exact part: enumerated strata
                if n_enum > 0 {
                    let xe = x.narrow(0, 0, n_enum)?;
                    let re = self.residuals(
                        &xe,
                        &values.narrow(0, 0, n_enum)?,
                        &beta_t,
                        m,
                        n,
                        within_idx.as_ref(),
                    )?;
                    let (v11, v10, v00, u1, u0) = coefficients(&w, &sizes[..n_enum], None, &dev)?;
                    let (xi, xj) = (xe.narrow(1, 0, m)?, xe.narrow(1, m, n)?);
                    sii_f = (sii_f
                        + pair_sums(&xi, &xj, &v11.mul(&re)?, &v10.mul(&re)?, &v00.mul(&re)?)?)?;
                    shap_f = (shap_f + single_sums(&xe, &u1.mul(&re)?, &u0.mul(&re)?)?)?;
                }
                // sampled part: the fold's complementary pairs
                let (s0, len) = if folds > 1 {
                    ranges[f + 1]
                } else {
                    (n_enum, total_rows - n_enum)
                };
                let k_units = len / 2;
                if k_units > 0 {
                    let xs = x.narrow(0, s0, len)?;
                    let rs = self.residuals(
                        &xs,
                        &values.narrow(0, s0, len)?,
                        &beta_t,
                        m,
                        n,
                        within_idx.as_ref(),
                    )?;
                    let om: Vec<f64> = (s0..s0 + len).map(|r| omega(r, k_units)).collect();
                    let rho = rs.mul(&vec_tensor(om, &dev)?)?.reshape((k_units, 2))?;
                    let rho_t = rho.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
                    let rho_c = rho.narrow(1, 1, 1)?.squeeze(1)?.contiguous()?;
                    let unit_sizes: Vec<usize> = (0..k_units).map(|u| sizes[s0 + 2 * u]).collect();
                    let (a11, a10, a00, u1, u0) = coefficients(&w, &unit_sizes, None, &dev)?;
                    let (b11, b10, b00, c1, c0) = coefficients(&w, &unit_sizes, Some(d), &dev)?;
                    // unit values in the coordinates of T (the first member)
                    let z11 = (a11.mul(&rho_t)? + b11.mul(&rho_c)?)?;
                    let z10 = (a10.mul(&rho_t)? + b10.mul(&rho_c)?)?;
                    let z00 = (a00.mul(&rho_t)? + b00.mul(&rho_c)?)?;
                    let xt = xs
                        .reshape((k_units, 2, d))?
                        .narrow(1, 0, 1)?
                        .squeeze(1)?
                        .contiguous()?;
                    let (xi, xj) = (xt.narrow(1, 0, m)?, xt.narrow(1, m, n)?);
                    let sum = pair_sums(&xi, &xj, &z11, &z10, &z00)?;
                    let sq = pair_sums(&xi, &xj, &z11.sqr()?, &z10.sqr()?, &z00.sqr()?)?;
                    let kf = k_units as f64;
                    if k_units > 1 {
                        let centred = (sq - (sum.sqr()? / kf)?)?.relu()?;
                        var_sum = (var_sum + (centred * (kf / (kf - 1.0)))?)?;
                    } else {
                        var_sum = (var_sum + f64::NAN)?;
                    }
                    sii_f = (sii_f + sum)?;
                    let y1 = (u1.mul(&rho_t)? + c1.mul(&rho_c)?)?;
                    let y0 = (u0.mul(&rho_t)? + c0.mul(&rho_c)?)?;
                    shap_f = (shap_f + single_sums(&xt, &y1, &y0)?)?;
                }
            }
            sii_sum = (sii_sum + sii_f)?;
            shap_sum = (shap_sum + shap_f)?;
        }
        let ff = folds as f64;
        let sii = (sii_sum / ff)?;
        let stderr = if self.correction {
            (var_sum / (ff * ff))?.sqrt()?
        } else {
            (sii.zeros_like()? + f64::NAN)?
        };
        let shapley = (shap_sum / ff)?.to_vec1::<f64>()?;
        finish(
            self.name(),
            players,
            &sii,
            &stderr,
            Some(shapley),
            total_rows,
            start,
        )
    }
}

/// Per-row coefficient tensors (v11, v10, v00, u1, u0) for rows of the given
/// sizes. With `complement_of = Some(d)` the coefficients are those of the
/// complement N \ T, expressed in the membership coordinates of T.
fn coefficients(
    w: &Weights,
    sizes: &[usize],
    complement_of: Option<usize>,
    dev: &Device,
) -> Result<(Tensor, Tensor, Tensor, Tensor, Tensor)> {
    let k = sizes.len();
    let (mut v11, mut v10, mut v00, mut u1, mut u0) = (
        Vec::with_capacity(k),
        Vec::with_capacity(k),
        Vec::with_capacity(k),
        Vec::with_capacity(k),
        Vec::with_capacity(k),
    );
    for &s in sizes {
        match complement_of {
            None => {
                v11.push(c_pair(w, s, 2));
                v10.push(c_pair(w, s, 1));
                v00.push(c_pair(w, s, 0));
                u1.push(c_single(w, s, 1));
                u0.push(c_single(w, s, 0));
            }
            Some(d) => {
                let sc = d - s;
                v11.push(c_pair(w, sc, 0));
                v10.push(c_pair(w, sc, 1));
                v00.push(c_pair(w, sc, 2));
                u1.push(c_single(w, sc, 0));
                u0.push(c_single(w, sc, 1));
            }
        }
    }
    Ok((
        vec_tensor(v11, dev)?,
        vec_tensor(v10, dev)?,
        vec_tensor(v00, dev)?,
        vec_tensor(u1, dev)?,
        vec_tensor(u0, dev)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_enumeration_counts() {
        for (d, s, want) in [(5usize, 0usize, 1usize), (5, 2, 10), (6, 3, 20), (4, 4, 1)] {
            let mut b = CoalitionBatch::new(d);
            push_all_subsets(&mut b, d, s);
            assert_eq!(b.len(), want, "d={d} s={s}");
            assert!(b.iter().all(|c| c.len() == s));
        }
    }

    #[test]
    fn plan_enumerates_borders_and_everything_with_full_budget() {
        let w = Weights::new(10);
        let plan = make_plan(&w, 1 << 10);
        assert_eq!(plan.units, 0, "{:?}", plan.enumerated);
        let plan = make_plan(&Weights::new(20), 4000);
        assert!(plan.enumerated.contains(&0) && plan.enumerated.contains(&20));
        assert!(plan.units > 0);
    }
}
