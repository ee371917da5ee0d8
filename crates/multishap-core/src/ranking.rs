//! Agreement between two rankings of the same items (two SII grids, two
//! estimators, two masking baselines): Spearman rank correlation and
//! Precision@k of the top items by |value|. Shared by `multishap eval`,
//! `bench-k` and the estimator benchmark.

/// Average ranks (1-based, ties share their mean rank).
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rho (Pearson correlation of average ranks); `None` when either
/// side is constant or the lengths differ / are below 2.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Indices of the `k` largest |values| (ties broken by index).
pub fn top_k(v: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Share of the top-k pairs by |SII| of `a` that are also in the top-k of `b`
/// (k capped at the number of pairs).
pub fn precision_at_k(a: &[f64], b: &[f64], k: usize) -> Option<f64> {
    let k = k.min(a.len()).min(b.len());
    if k == 0 {
        return None;
    }
    let tb = top_k(b, k);
    let hits = top_k(a, k).iter().filter(|i| tb.contains(i)).count();
    Some(hits as f64 / k as f64)
}

/// Mean of the defined values (`None` if there are none).
pub fn mean_defined(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_and_precision() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 30.0, 40.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&a, &[1.0; 4]), None);
        assert_eq!(top_k(&[0.1, -5.0, 2.0], 2), vec![1, 2]);
        assert_eq!(
            precision_at_k(&[0.1, -5.0, 2.0, 0.0], &[0.0, 1.0, 0.1, 3.0], 2),
            Some(0.5)
        );
        assert_eq!(precision_at_k(&[1.0], &[1.0], 10), Some(1.0));
        assert_eq!(mean_defined([Some(1.0), None, Some(3.0)]), Some(2.0));
    }
}
