//! Provider comparison adjusted for case mix: per unit, performed minutes against the
//! efficient minutes the model expects for exactly those visits (their tasks, slot, staff
//! and the recipient's context, through `ramtid_core::estimate::predict_visit`, as held-out
//! evaluation does). The index is Σ performed ÷ Σ expected; its P10–P90 interval comes from
//! a seeded bootstrap over the unit's recipients (a recipient's visits stay together).

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

pub fn compare(
    model: &Model,
    log: &VisitLog,
    table: &Table,
    opts: &FollowUpOptions,
) -> Vec<ProviderRow> {
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
            let (p10, p90) = bootstrap(&pairs, opts.bootstrap, seed);
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
                index: performed / expected,
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
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-12);
    }
}
