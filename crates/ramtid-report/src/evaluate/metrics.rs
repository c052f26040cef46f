//! Error figures of predictions against a truth: pure functions on slices, no I/O.
//!
//! Conventions, used throughout the evaluation:
//! - `pred[i]` is predicted for the case whose true value is `truth[i]`;
//! - relative errors divide by the truth, so cases whose truth is not above zero are left
//!   out of MAPE, median absolute % error and the ±10 % share (and counted in `n_relative`);
//! - bias is Σpred / Σtruth − 1 (positive: we predict too much in total);
//! - R² is 1 − Σ(pred − truth)² / Σ(truth − mean truth)²: it can be negative.

use serde::{Deserialize, Serialize};

/// The figures of one predictor against one truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Cases compared.
    pub n: usize,
    /// Cases entering the relative figures (truth above zero).
    pub n_relative: usize,
    /// Mean absolute error, in the unit of the values (minutes per week, minutes per visit).
    pub mae: f64,
    /// Root mean squared error, same unit.
    pub rmse: f64,
    /// Mean absolute percentage error, as a fraction (0.12 = 12 %).
    pub mape: f64,
    /// Median absolute percentage error, as a fraction.
    pub median_ape: f64,
    /// Σpred / Σtruth − 1, as a fraction.
    pub bias: f64,
    pub r2: f64,
    /// Share of cases predicted within ±10 % of the truth.
    pub within_10pct: f64,
    /// Share of cases whose truth lies in the predictor's P10–P90 interval, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_coverage: Option<f64>,
    pub sum_pred: f64,
    pub sum_truth: f64,
}

fn check(pred: &[f64], truth: &[f64]) {
    assert_eq!(
        pred.len(),
        truth.len(),
        "predictions and truth must pair up"
    );
}

/// Mean absolute error. NaN for no cases.
pub fn mae(pred: &[f64], truth: &[f64]) -> f64 {
    check(pred, truth);
    mean(pred.iter().zip(truth).map(|(p, t)| (p - t).abs()))
}

/// Root mean squared error. NaN for no cases.
pub fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    check(pred, truth);
    mean(pred.iter().zip(truth).map(|(p, t)| (p - t) * (p - t))).sqrt()
}

/// Absolute percentage errors |pred − truth| / truth of the cases whose truth is above zero.
pub fn abs_pct_errors(pred: &[f64], truth: &[f64]) -> Vec<f64> {
    check(pred, truth);
    pred.iter()
        .zip(truth)
        .filter(|(_, &t)| t > 0.0)
        .map(|(p, t)| (p - t).abs() / t)
        .collect()
}

/// Mean absolute percentage error, as a fraction. NaN when no truth is above zero.
pub fn mape(pred: &[f64], truth: &[f64]) -> f64 {
    mean(abs_pct_errors(pred, truth).into_iter())
}

/// Median absolute percentage error, as a fraction.
pub fn median_ape(pred: &[f64], truth: &[f64]) -> f64 {
    median(&abs_pct_errors(pred, truth))
}

/// Σpred / Σtruth − 1. NaN when the truth sums to zero.
pub fn bias(pred: &[f64], truth: &[f64]) -> f64 {
    check(pred, truth);
    let st: f64 = truth.iter().sum();
    if st == 0.0 {
        return f64::NAN;
    }
    pred.iter().sum::<f64>() / st - 1.0
}

/// Coefficient of determination against the truth's own mean. NaN for fewer than two
/// cases or a constant truth.
pub fn r2(pred: &[f64], truth: &[f64]) -> f64 {
    check(pred, truth);
    if truth.len() < 2 {
        return f64::NAN;
    }
    let m = mean(truth.iter().copied());
    let ss_tot: f64 = truth.iter().map(|t| (t - m) * (t - m)).sum();
    if ss_tot == 0.0 {
        return f64::NAN;
    }
    let ss_res: f64 = pred.iter().zip(truth).map(|(p, t)| (p - t) * (p - t)).sum();
    1.0 - ss_res / ss_tot
}

/// Share of cases (truth above zero) with |pred − truth| ≤ `tolerance` × truth.
pub fn share_within(pred: &[f64], truth: &[f64], tolerance: f64) -> f64 {
    let ape = abs_pct_errors(pred, truth);
    if ape.is_empty() {
        return f64::NAN;
    }
    // A small allowance so that an error of exactly 10 % counts as within 10 %.
    ape.iter().filter(|&&e| e <= tolerance + 1e-12).count() as f64 / ape.len() as f64
}

/// Share of cases with `lo ≤ truth ≤ hi`.
pub fn coverage(lo: &[f64], hi: &[f64], truth: &[f64]) -> f64 {
    check(lo, truth);
    check(hi, truth);
    if truth.is_empty() {
        return f64::NAN;
    }
    let inside = truth
        .iter()
        .zip(lo.iter().zip(hi))
        .filter(|(t, (l, h))| *l <= *t && *t <= *h)
        .count();
    inside as f64 / truth.len() as f64
}

/// All figures at once; `interval` is (P10, P90) per case where the predictor has one.
pub fn summarize(pred: &[f64], truth: &[f64], interval: Option<(&[f64], &[f64])>) -> Metrics {
    check(pred, truth);
    Metrics {
        n: truth.len(),
        n_relative: truth.iter().filter(|&&t| t > 0.0).count(),
        mae: mae(pred, truth),
        rmse: rmse(pred, truth),
        mape: mape(pred, truth),
        median_ape: median_ape(pred, truth),
        bias: bias(pred, truth),
        r2: r2(pred, truth),
        within_10pct: share_within(pred, truth, 0.10),
        interval_coverage: interval.map(|(lo, hi)| coverage(lo, hi, truth)),
        sum_pred: pred.iter().sum(),
        sum_truth: truth.iter().sum(),
    }
}

/// Arithmetic mean; NaN for no values.
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for v in values {
        s += v;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Median (mean of the two middle values for an even count); NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Quantile `q` (0..=1) with linear interpolation between order statistics (type 7, the
/// default of R and NumPy). NaN for no values; NaN values are ignored.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

/// Cut points that split `values` into `k` groups of about equal size: the k − 1 inner
/// quantiles, deduplicated (ties can merge groups).
pub fn quantile_cuts(values: &[f64], k: usize) -> Vec<f64> {
    let mut cuts: Vec<f64> = (1..k)
        .map(|i| quantile(values, i as f64 / k as f64))
        .collect();
    cuts.dedup_by(|a, b| a == b);
    cuts.retain(|c| !c.is_nan());
    cuts
}

/// Group (0-based) of `x` given ascending cut points: group g holds `cuts[g-1] < x ≤ cuts[g]`.
pub fn group_of(x: f64, cuts: &[f64]) -> usize {
    cuts.iter().take_while(|&&c| x > c).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: [f64; 4] = [110.0, 90.0, 200.0, 50.0];
    const T: [f64; 4] = [100.0, 100.0, 160.0, 40.0];

    #[test]
    fn hand_computed_figures() {
        // errors: +10, −10, +40, +10; relative: 0.10, 0.10, 0.25, 0.25
        assert!((mae(&P, &T) - 17.5).abs() < 1e-12);
        assert!((rmse(&P, &T) - (1900.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((mape(&P, &T) - 0.175).abs() < 1e-12);
        assert!((median_ape(&P, &T) - 0.175).abs() < 1e-12);
        // Σpred 450, Σtruth 400
        assert!((bias(&P, &T) - 0.125).abs() < 1e-12);
        // mean truth 100; ss_tot 0 + 0 + 3600 + 3600 = 7200; ss_res 1900
        assert!((r2(&P, &T) - (1.0 - 1900.0 / 7200.0)).abs() < 1e-12);
        assert!((share_within(&P, &T, 0.10) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn coverage_counts_the_edges_as_inside() {
        let lo = [90.0, 101.0, 100.0, 0.0];
        let hi = [100.0, 120.0, 160.0, 39.0];
        assert!((coverage(&lo, &hi, &T) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn zero_truth_is_left_out_of_relative_figures() {
        let m = summarize(&[5.0, 110.0], &[0.0, 100.0], None);
        assert_eq!((m.n, m.n_relative), (2, 1));
        assert!((m.mape - 0.1).abs() < 1e-12);
        assert!(m.interval_coverage.is_none());
    }

    #[test]
    fn quantiles_and_groups() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let cuts = quantile_cuts(&v, 5);
        assert_eq!(cuts.len(), 4);
        assert_eq!(group_of(1.0, &cuts), 0);
        assert_eq!(group_of(10.0, &cuts), 4);
        let sizes = (0..5)
            .map(|g| v.iter().filter(|&&x| group_of(x, &cuts) == g).count())
            .collect::<Vec<_>>();
        assert_eq!(sizes, vec![2, 2, 2, 2, 2]);
    }

    #[test]
    fn perfect_predictions() {
        let m = summarize(&T, &T, Some((&T, &T)));
        assert_eq!(m.mae, 0.0);
        assert_eq!(m.r2, 1.0);
        assert_eq!(m.bias, 0.0);
        assert_eq!(m.within_10pct, 1.0);
        assert_eq!(m.interval_coverage, Some(1.0));
    }
}
