//! Small dense linear algebra on the host: Cholesky solve of the (d + m n)
//! normal equations of the regression estimators.
use crate::{Error, Result};

/// Solve `a x = b` for a symmetric positive (semi-)definite `a` (row-major
/// `p x p`). A growing diagonal jitter is added if the factorisation fails.
pub fn solve_spd(a: &[f64], b: &[f64], p: usize) -> Result<Vec<f64>> {
    let scale = (0..p)
        .map(|k| a[k * p + k].abs())
        .fold(0.0f64, f64::max)
        .max(1e-300);
    let mut jitter = 0.0;
    for _ in 0..8 {
        if let Some(l) = cholesky(a, p, jitter) {
            return Ok(cholesky_solve(&l, b, p));
        }
        jitter = if jitter == 0.0 {
            1e-10 * scale
        } else {
            jitter * 100.0
        };
    }
    Err(Error::InvalidInput(
        "regression system is not positive definite".into(),
    ))
}

fn cholesky(a: &[f64], p: usize, jitter: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let (ri, rj) = (&l[i * p..i * p + j], &l[j * p..j * p + j]);
            let dot: f64 = ri.iter().zip(rj).map(|(x, y)| x * y).sum();
            let mut s = a[i * p + j] - dot;
            if i == j {
                s += jitter;
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    Some(l)
}

fn cholesky_solve(l: &[f64], b: &[f64], p: usize) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..p {
        let dot: f64 = (0..i).map(|k| l[i * p + k] * y[k]).sum();
        y[i] = (y[i] - dot) / l[i * p + i];
    }
    for i in (0..p).rev() {
        let dot: f64 = (i + 1..p).map(|k| l[k * p + i] * y[k]).sum();
        y[i] = (y[i] - dot) / l[i * p + i];
    }
    y
}

#[cfg(test)]
mod tests {
    #[test]
    fn solves_small_system() {
        let a = [4.0, 1.0, 1.0, 3.0];
        let x = super::solve_spd(&a, &[1.0, 2.0], 2).unwrap();
        assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-12);
        assert!((x[0] + 3.0 * x[1] - 2.0).abs() < 1e-12);
    }
}
