//! Multi-scale aggregation (MSEA style): maps over several patch grids (e.g.
//! 4x4, 7x7, 12x12) combined into one map on an output grid.
//!
//! Each input map is resampled to the output grid by nearest cell (output cell
//! (r, c) takes the input cell containing its centre), optionally divided by
//! its largest |value| so that every scale weighs the same, and the resampled
//! maps are averaged.
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridMap {
    pub rows: usize,
    pub cols: usize,
    /// Row-major values.
    pub values: Vec<f64>,
}

impl GridMap {
    pub fn new(rows: usize, cols: usize, values: Vec<f64>) -> Result<Self> {
        if rows == 0 || cols == 0 || values.len() != rows * cols {
            return Err(Error::InvalidInput(format!(
                "a {rows}x{cols} map needs {} values, got {}",
                rows * cols,
                values.len()
            )));
        }
        Ok(Self { rows, cols, values })
    }

    /// Nearest-cell resampling to `rows x cols`.
    pub fn resample(&self, rows: usize, cols: usize) -> GridMap {
        let mut values = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            let sr = (((r as f64 + 0.5) / rows as f64) * self.rows as f64) as usize;
            for c in 0..cols {
                let sc = (((c as f64 + 0.5) / cols as f64) * self.cols as f64) as usize;
                values.push(self.values[sr.min(self.rows - 1) * self.cols + sc.min(self.cols - 1)]);
            }
        }
        GridMap { rows, cols, values }
    }

    /// Index of the largest value (first on ties).
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (k, v) in self.values.iter().enumerate() {
            if *v > self.values[best] {
                best = k;
            }
        }
        best
    }
}

/// See the module docs.
pub fn aggregate_multiscale(
    maps: &[GridMap],
    rows: usize,
    cols: usize,
    normalise: bool,
) -> Result<GridMap> {
    if maps.is_empty() || rows == 0 || cols == 0 {
        return Err(Error::InvalidInput(
            "multi-scale aggregation needs maps and a non-empty output grid".into(),
        ));
    }
    let mut acc = vec![0.0; rows * cols];
    for m in maps {
        let r = m.resample(rows, cols);
        let scale = if normalise {
            let mx = m.values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            if mx > 0.0 {
                mx
            } else {
                1.0
            }
        } else {
            1.0
        };
        for (a, v) in acc.iter_mut().zip(&r.values) {
            *a += v / scale;
        }
    }
    for a in &mut acc {
        *a /= maps.len() as f64;
    }
    GridMap::new(rows, cols, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let coarse = GridMap::new(1, 1, vec![2.0]).unwrap();
        let fine = GridMap::new(2, 2, vec![1.0, 0.0, 0.0, -1.0]).unwrap();
        let agg = aggregate_multiscale(&[coarse.clone(), fine.clone()], 2, 2, true).unwrap();
        assert_eq!(agg.values, vec![1.0, 0.5, 0.5, 0.0]);
        let raw = aggregate_multiscale(&[coarse, fine], 2, 2, false).unwrap();
        assert_eq!(raw.values, vec![1.5, 1.0, 1.0, 0.5]);
        // 3x3 -> 2x2: centres at 0.75 and 2.25 of 3 -> cells 0 and 2
        let m = GridMap::new(3, 3, (0..9).map(|x| x as f64).collect()).unwrap();
        assert_eq!(m.resample(2, 2).values, vec![0.0, 2.0, 6.0, 8.0]);
        assert_eq!(m.argmax(), 8);
        assert!(GridMap::new(2, 2, vec![1.0]).is_err());
    }
}
