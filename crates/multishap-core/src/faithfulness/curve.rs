//! A sampled curve y(x), x in [0, 1], and its area.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Increasing abscissae in [0, 1] (fraction of the budget).
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

impl Curve {
    pub fn new(x: Vec<f64>, y: Vec<f64>) -> Self {
        debug_assert_eq!(x.len(), y.len());
        Self { x, y }
    }

    /// Trapezoid-rule area under the curve over its x range; 0 for fewer than
    /// two points. With x covering [0, 1] this is the curve's mean height.
    pub fn area(&self) -> f64 {
        trapezoid(&self.x, &self.y)
    }
}

/// Trapezoid rule.
pub fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_by_hand() {
        // (0,0) (0.5,1) (1,0): a triangle of area 0.5
        let c = Curve::new(vec![0.0, 0.5, 1.0], vec![0.0, 1.0, 0.0]);
        assert!((c.area() - 0.5).abs() < 1e-15);
        assert_eq!(Curve::new(vec![0.0], vec![3.0]).area(), 0.0);
        // constant 2 over [0, 1]
        assert!((trapezoid(&[0.0, 0.25, 1.0], &[2.0, 2.0, 2.0]) - 2.0).abs() < 1e-15);
    }
}
