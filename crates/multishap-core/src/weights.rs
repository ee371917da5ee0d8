//! Combinatorial weights of the Shapley value and the Shapley interaction
//! index (SII), computed through log-factorials so they stay finite at d = 152.

/// `ln(k!)` for k = 0..=n.
fn ln_factorials(n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n + 1);
    let mut acc = 0.0f64;
    out.push(0.0);
    for k in 1..=n {
        acc += (k as f64).ln();
        out.push(acc);
    }
    out
}

/// Binomial coefficients and SII / Shapley weights for `d` players.
#[derive(Debug, Clone)]
pub struct Weights {
    d: usize,
    lnf: Vec<f64>,
}

impl Weights {
    pub fn new(d: usize) -> Self {
        Self {
            d,
            lnf: ln_factorials(d.max(2)),
        }
    }

    pub fn num_players(&self) -> usize {
        self.d
    }

    /// `C(n, k)` as f64 (0 when k > n).
    pub fn binom(&self, n: usize, k: usize) -> f64 {
        if k > n {
            return 0.0;
        }
        (self.lnf[n] - self.lnf[k] - self.lnf[n - k]).exp()
    }

    /// Pairwise SII weight of a context of size `k` (a subset of the d - 2
    /// other players): `k! (d-k-2)! / (d-1)!`, i.e. the probability of that
    /// exact context under the SII law. Zero outside `0..=d-2`.
    pub fn sii(&self, k: usize) -> f64 {
        let d = self.d;
        if d < 2 || k > d - 2 {
            return 0.0;
        }
        (self.lnf[k] + self.lnf[d - k - 2] - self.lnf[d - 1]).exp()
    }

    /// Same as [`Weights::sii`] but for a signed size (negative = 0).
    pub fn sii_i(&self, k: i64) -> f64 {
        if k < 0 {
            0.0
        } else {
            self.sii(k as usize)
        }
    }

    /// Shapley weight of a context of size `k`: `k! (d-k-1)! / d!`.
    pub fn shapley(&self, k: usize) -> f64 {
        let d = self.d;
        if d < 1 || k > d - 1 {
            return 0.0;
        }
        (self.lnf[k] + self.lnf[d - k - 1] - self.lnf[d]).exp()
    }

    pub fn shapley_i(&self, k: i64) -> f64 {
        if k < 0 {
            0.0
        } else {
            self.shapley(k as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sii_weights_sum_to_one_over_contexts() {
        for d in [2usize, 5, 20, 152] {
            let w = Weights::new(d);
            let total: f64 = (0..=d - 2).map(|k| w.binom(d - 2, k) * w.sii(k)).sum();
            assert!((total - 1.0).abs() < 1e-9, "d={d} total={total}");
            let total: f64 = (0..d).map(|k| w.binom(d - 1, k) * w.shapley(k)).sum();
            assert!((total - 1.0).abs() < 1e-9);
        }
        assert_eq!(Weights::new(10).binom(10, 3).round(), 120.0);
    }
}
