//! Provider comparison adjusted for case mix: per unit, performed minutes against the
//! efficient minutes the model expects for exactly those visits (their tasks, slot, staff
//! and the recipient's context, through `ramtid_core::estimate::predict_visit`, as held-out
//! evaluation does). The index is Σ performed ÷ Σ expected. Its P10–P90 interval carries
//! two errors: the unit's caseload (a seeded bootstrap over its recipients, a recipient's
//! visits kept together) and the efficient level itself, which every unit's expected minutes
//! share ([`level_sd`]: the frontier's own standard error and a prior for how far a model's
//! level lands from a municipality's true efficient level). The level moves every index
//! alike, so it widens the intervals without changing the ranking.

use super::band::Band;
use super::recipients::{reported, Table};
use super::{FollowUpOptions, Month};
use ramtid_core::estimate::{predict_visit, Scratch};
use ramtid_core::model::Model;
use ramtid_core::visits::VisitLog;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One row of `providers.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderRow {
    /// 1 = the lowest index (least performed time per expected minute).
    pub rank: usize,
    pub unit_id: String,
    pub recipients: usize,
    pub visits: u64,
    pub performed_min: f64,
    pub expected_min: f64,
    pub index: f64,
    pub index_p10: f64,
    pub index_p90: f64,
    /// Of the recipient-months with an order in which the unit made visits, the share in
    /// the band `over` (above 1 + tolerance).
    pub share_over: f64,
}

#[derive(Default)]
struct Unit {
    /// (performed, expected) per recipient.
    by_recipient: HashMap<u32, (f64, f64)>,
    visits: u64,
    months: HashSet<(u32, Month)>,
}

/// How far, as a share, the efficient level of a model trained on one municipality's log
/// lands from that municipality's true efficient level: the root mean square of the held-out
/// weekly bias over 20 random worlds that no figure of the follow-up is measured on
/// (`ramtid validate --worlds 20 --seed 101`; README, "Following up ordered against
/// performed time"). A prior, not a fit to the worlds the coverage is reported on.
pub const LEVEL_PRIOR_SD: f64 = 0.037;

/// The log-scale standard deviation of the model's efficient level: the frontier's own
/// (sampling) standard error, when the model has one, and [`LEVEL_PRIOR_SD`], as
/// independent errors.
pub fn level_sd(model: &Model) -> f64 {
    let sampling = model
        .manifest
        .fit
        .frontier
        .as_ref()
        .map(|f| {
            let [lo, hi] = f.level_interval;
            // The interval is ± 1.645 standard errors around `level_over_mean`.
            (hi - lo) / (2.0 * 1.645) / f.level_over_mean
        })
        .filter(|x| x.is_finite() && *x >= 0.0)
        .unwrap_or(0.0);
    (sampling * sampling + LEVEL_PRIOR_SD * LEVEL_PRIOR_SD).sqrt()
}

/// Widens a bootstrap interval by the level's error: each side's log distance and the
/// level's P10/P90 distance (1.2816 standard deviations) added as independent errors.
pub fn with_level(index: f64, p10: f64, p90: f64, level_sd: f64) -> (f64, f64) {
    const Z90: f64 = 1.281_551_565_5;
    let level = Z90 * level_sd;
    let side = |bound: f64| {
        let d = (index / bound).ln().abs();
        (d * d + level * level).sqrt()
    };
    if !(index.is_finite() && index > 0.0 && p10 > 0.0 && p90 > 0.0) {
        return (p10, p90);
    }
    (index * (-side(p10)).exp(), index * side(p90).exp())
}

pub fn compare(
    model: &Model,
    log: &VisitLog,
    table: &Table,
    opts: &FollowUpOptions,
) -> Vec<ProviderRow> {
    let level = level_sd(model);
    let mut units: Vec<Unit> = (0..log.units.len()).map(|_| Unit::default()).collect();
    let mut scratch = Scratch::default();
    let mut context = vec![0.0f64; log.table.n_context()];
    for v in log.table.iter() {
        let m = Month::of_day(v.day);
        if !reported(opts, m) {
            continue;
        }
        for (c, &x) in context.iter_mut().zip(v.context) {
            *c = f64::from(x);
        }
        let expected = predict_visit(
            &model.visit,
            v.tasks,
            v.slot,
            v.staff,
            &context,
            &mut scratch,
        );
        let u = &mut units[v.unit as usize];
        let e = u.by_recipient.entry(v.recipient).or_default();
        e.0 += v.duration;
        e.1 += expected;
        u.visits += 1;
        u.months.insert((v.recipient, m));
    }
    let mut rows: Vec<ProviderRow> = units
        .into_iter()
        .enumerate()
        .filter(|(_, u)| u.visits > 0)
        .map(|(k, u)| {
            let unit_id = &log.units[k];
            // Recipients in index order: the bootstrap does not depend on hashing.
            let mut pairs: Vec<(u32, (f64, f64))> = u.by_recipient.into_iter().collect();
            pairs.sort_unstable_by_key(|p| p.0);
            let pairs: Vec<(f64, f64)> = pairs.into_iter().map(|p| p.1).collect();
            let performed: f64 = pairs.iter().map(|p| p.0).sum();
            let expected: f64 = pairs.iter().map(|p| p.1).sum();
            let seed = opts.seed ^ fnv(unit_id.as_bytes());
            let index = performed / expected;
            let (b10, b90) = bootstrap(&pairs, opts.bootstrap, seed);
            let (p10, p90) = with_level(index, b10, b90, level);
            let (mut with_order, mut over) = (0usize, 0usize);
            for key in &u.months {
                match table.band_of.get(key) {
                    Some(Band::NoOrder) | None => {}
                    Some(b) => {
                        with_order += 1;
                        over += usize::from(*b == Band::Over);
                    }
                }
            }
            ProviderRow {
                rank: 0,
                unit_id: unit_id.clone(),
                recipients: pairs.len(),
                visits: u.visits,
                performed_min: performed,
                expected_min: expected,
                index,
                index_p10: p10,
                index_p90: p90,
                share_over: if with_order > 0 {
                    over as f64 / with_order as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| a.index.total_cmp(&b.index).then(a.unit_id.cmp(&b.unit_id)));
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    rows
}

/// P10 and P90 of Σ performed ÷ Σ expected over `n` resamples of the recipients.
pub fn bootstrap(pairs: &[(f64, f64)], n: usize, seed: u64) -> (f64, f64) {
    if pairs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SplitMix(seed);
    let mut ratios: Vec<f64> = (0..n)
        .map(|_| {
            let (mut p, mut e) = (0.0, 0.0);
            for _ in 0..pairs.len() {
                let (a, b) = pairs[rng.below(pairs.len())];
                p += a;
                e += b;
            }
            p / e
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    (quantile(&ratios, 0.1), quantile(&ratios, 0.9))
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn fnv(bytes: &[u8]) -> u64 {
    ramtid_core::fingerprint::Fnv64::default()
        .update(bytes)
        .finish()
}

/// SplitMix64: small, seeded, good enough to resample.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_of_equal_recipients_is_their_ratio() {
        // Every recipient at 1.2: every resample is 1.2.
        let pairs = [(120.0, 100.0), (60.0, 50.0), (12.0, 10.0)];
        let (lo, hi) = bootstrap(&pairs, 50, 1);
        assert!((lo - 1.2).abs() < 1e-12 && (hi - 1.2).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_interval_brackets_the_index_and_is_seeded() {
        let pairs: Vec<(f64, f64)> = (0..40)
            .map(|i| (100.0 + f64::from(i) * 5.0, 120.0))
            .collect();
        let index = pairs.iter().map(|p| p.0).sum::<f64>() / pairs.iter().map(|p| p.1).sum::<f64>();
        let (lo, hi) = bootstrap(&pairs, 400, 7);
        assert!(lo < index && index < hi, "{lo} {index} {hi}");
        assert_eq!(bootstrap(&pairs, 400, 7), (lo, hi));
        assert_ne!(bootstrap(&pairs, 400, 8), (lo, hi));
    }

    #[test]
    fn the_level_widens_both_sides_as_an_independent_error() {
        // A bootstrap of ±1 % and a level of 2 %: each side √(ln-distance² + (1.28·0.02)²).
        let (lo, hi) = with_level(1.1, 1.1 / 1.01f64.exp(), 1.1 * 1.01f64.exp(), 0.0);
        assert!(
            (lo - 1.1 / 1.01f64.exp()).abs() < 1e-12 && (hi - 1.1 * 1.01f64.exp()).abs() < 1e-12
        );
        let (lo, hi) = with_level(1.1, 1.1 * (-0.01f64).exp(), 1.1 * 0.03f64.exp(), 0.02);
        let l = 1.281_551_565_5 * 0.02;
        assert!((lo - 1.1 * (-(0.0001f64 + l * l).sqrt()).exp()).abs() < 1e-12);
        assert!((hi - 1.1 * (0.0009f64 + l * l).sqrt().exp()).abs() < 1e-12);
        assert!(lo < 1.1 * (-0.01f64).exp() && hi > 1.1 * 0.03f64.exp());
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-12);
    }
}
