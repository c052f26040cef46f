//! Fitting what efficient visits take.
//!
//! The model: a logged duration is `θ_team × x'β + noise`, where `x` are the visit's
//! features ([`crate::features`]) and `θ_team` is how much slower or faster than the
//! reference the team works. Teams and coefficients are estimated together by alternating
//! (β given θ is a ridge regression on `y/θ`; θ given β is each team's ratio of logged to
//! predicted time). The *efficient* prediction is `θ_ref × x'β`, with `θ_ref` the level of
//! the fastest teams that together performed `quantile` of the visits: what visits take
//! when performed as the efficient part of the municipality performs them, not the mean of
//! all logged time (which carries slow teams' time).
//!
//! Everything after one pass over the visits works on sufficient statistics: a Gram matrix
//! per cross-validation fold and a few vectors per (fold, team). Folds are grouped by
//! recipient, so no recipient is in both the training and the validation part. The penalty
//! λ is chosen by that cross-validation; a second pass collects out-of-fold residual ratios
//! for the conformal prediction intervals (per visit and per recipient).

use crate::catalog::Catalog;
use crate::features::FeatureSpace;
use crate::frontier::{CellEvidence, Cells, Choice, FrontierRules, Role};
use crate::linalg::{quad_form, Factor, NotPositiveDefinite};
use crate::params::CheckedFitParams;
use crate::progress::Progress;
use crate::visits::{VisitRow, VisitTable};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Efficiency {
    /// Best practice ([`crate::frontier`]): the pace of the fastest comparable teams, with
    /// teams that are implausibly fast set aside. Teams slower than that level by more
    /// than `tolerance` are reported as inefficient.
    Frontier {
        tolerance: f64,
        /// The lead over the next team beyond which the fastest team is not copied.
        implausible_gap: f64,
    },
    /// Team effects estimated; predictions at the level of the fastest teams that performed
    /// `quantile` of the visits. Teams slower than that level by more than `tolerance` are
    /// reported as inefficient.
    TeamReference { quantile: f64, tolerance: f64 },
    /// No team adjustment: the mean of all (cleaned) logged visits.
    Pooled,
}

impl Default for Efficiency {
    fn default() -> Self {
        Efficiency::Frontier {
            tolerance: 0.10,
            implausible_gap: 0.06,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    pub efficiency: Efficiency,
    /// Cross-validation folds, grouped by recipient.
    pub folds: usize,
    /// Ridge penalties tried, in pseudo-visits.
    pub lambdas: Vec<f64>,
    /// A task pair gets its own coefficient when seen together in at least this many visits.
    pub min_pair_visits: u64,
    /// Teams with fewer visits keep the reference level (too few to judge).
    pub min_team_visits: u64,
    pub team_iterations: usize,
    /// Prediction interval quantiles (P10–P90 by default).
    pub interval: [f64; 2],
    /// Recipients with fewer visits do not enter the weekly interval calibration.
    pub min_recipient_visits: u64,
    pub seed: u64,
    pub threads: usize,
    /// Weekend visits get a pace of their own per team, apart from weekdays, and the
    /// efficient level is that of weekdays (weekend and substitute staffing is how a visit
    /// is performed, not what the person needs). Off: one pace per team.
    #[serde(default = "yes")]
    pub weekend_apart: bool,
    /// The frontier teams' time is their own line through the common model's prediction,
    /// minutes per visit beside the pace (a team that adds the same few minutes to every
    /// visit, a long walk from the car, is slower on short visits than on long ones).
    /// Off: the pace alone, one ratio.
    #[serde(default = "yes")]
    pub team_slack: bool,
    /// Each code gets minutes of its own for when a second staff member is there for it,
    /// beside the visit's staff column. Off: the visit's column alone.
    #[serde(default = "yes")]
    pub staff2_tasks: bool,
    /// A unit alone in its slots (a night patrol that performs every night visit) is taken
    /// at the frontier's pace: the log cannot tell its pace from those slots' own time, so
    /// left free the split is made by the penalty alone. Off: its pace is fitted like any
    /// team's.
    #[serde(default = "yes")]
    pub lone_units_at_frontier: bool,
}

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            efficiency: Efficiency::default(),
            folds: 5,
            lambdas: vec![0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0],
            min_pair_visits: 30,
            min_team_visits: 50,
            team_iterations: 50,
            interval: [0.1, 0.9],
            min_recipient_visits: 10,
            seed: 20_250_303,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(8),
            weekend_apart: true,
            team_slack: true,
            staff2_tasks: true,
            lone_units_at_frontier: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("too little data to fit: {0}")]
    TooLittleData(String),
    #[error(transparent)]
    Singular(#[from] NotPositiveDefinite),
}

/// The fitted visit-time model: efficient minutes of one visit, and its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitModel {
    pub space: FeatureSpace,
    /// Efficient-level coefficients, minutes.
    pub coef: Vec<f64>,
    /// Multipliers on a visit's prediction for its P-low and P-high.
    pub visit_interval: [f64; 2],
    /// Multipliers on a week's prediction for its P-low and P-high.
    pub weekly_interval: [f64; 2],
}

impl VisitModel {
    /// Predicted efficient minutes of one visit, from its encoded features.
    pub fn predict_encoded(&self, x: &[(u32, f64)]) -> f64 {
        x.iter().map(|&(c, v)| self.coef[c as usize] * v).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamEffect {
    pub unit_id: String,
    pub visits: u64,
    /// Weekday logged time relative to the efficient reference (1.25 = 25% slower).
    pub multiplier: f64,
    pub inefficient: bool,
    /// 90 % interval of `multiplier` (its standard error, cluster-robust by recipient).
    #[serde(default)]
    pub multiplier_interval: [f64; 2],
    /// Weekend pace over the team's weekday pace (absent: weekends not apart or too few).
    #[serde(default)]
    pub weekend_factor: Option<f64>,
    /// Recipients the team's weekday visits served.
    #[serde(default)]
    pub recipients: u64,
    /// The team's part in the frontier.
    #[serde(default)]
    pub role: Option<crate::frontier::Role>,
    /// Weekday minutes per visit beside the pace, over the frontier teams' own: the
    /// intercept of the team's line through the common model (absent without slack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_min: Option<f64>,
}

/// How the efficient level was chosen, for the report and the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontierReport {
    /// `frontier`, `team_reference` or `pooled`.
    pub method: String,
    /// Why this level, in words.
    pub reason: String,
    /// The teams that set the level.
    pub members: Vec<String>,
    /// Teams set aside as implausibly fast (their lead weighed at least half against them).
    pub implausibly_fast: Vec<String>,
    /// Share of the level from the reading that keeps the fastest team: 1 when its lead is
    /// plausible, 0 when it is set aside wholly, between where the log cannot tell a real
    /// lead from cut corners (see [`crate::frontier::set_aside_weight`]).
    #[serde(default = "one")]
    pub fastest_share: f64,
    /// Units not comparable with the others (alone in their slots).
    pub not_comparable: Vec<String>,
    /// The chosen level over the visit-weighted mean pace of all visits, with a 90 %
    /// interval.
    pub level_over_mean: f64,
    pub level_interval: [f64; 2],
    /// Visit-weighted weekend pace over weekday pace (1 when weekends are not apart).
    pub weekend_factor: f64,
    /// The municipality's hours per week under each definition of efficient.
    pub what_if: Vec<crate::frontier::WhatIf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextPairsCv {
    /// Pairs of context conditions the log could inform.
    pub candidates: usize,
    /// Whether cross-validation kept them (an out-of-fold RMSE at least 0.2 % lower with them
    /// than without).
    pub kept: bool,
    /// Their penalty over the visits' λ, where kept.
    #[serde(default, deserialize_with = "nan_if_null")]
    pub penalty_over_lambda: f64,
    /// The best out-of-fold RMSE without the pairs, and with them where they were kept.
    pub rmse_without_min: f64,
    #[serde(default, deserialize_with = "nan_if_null")]
    pub rmse_with_min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvPoint {
    pub lambda: f64,
    /// Root mean squared error per visit on validation recipients, minutes (team-adjusted).
    pub rmse_min: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitReport {
    pub visits: u64,
    pub recipients: usize,
    pub features: usize,
    /// Coefficients estimated from the log: `features` less the columns of codes no visit
    /// uses (those are their prior, at no cost). 0 in models written before it was kept.
    #[serde(default)]
    pub fitted_features: usize,
    pub pairs: usize,
    /// Catalog codes no visit in the log shows: priced from their category's logged codes
    /// and flagged in every estimate that uses them.
    #[serde(default)]
    pub unlogged_codes: Vec<String>,
    pub lambda: f64,
    pub cv: Vec<CvPoint>,
    pub teams: Vec<TeamEffect>,
    /// Share of visits performed by teams judged inefficient.
    pub share_visits_inefficient: f64,
    /// Mean excess time of those teams' visits over the efficient level.
    pub mean_excess_inefficient: f64,
    /// Logged minutes (cleaned) over efficient minutes: what efficiency removes.
    pub logged_over_efficient: f64,
    /// Out-of-fold figures on held-out recipients, efficient scale.
    pub oof_visit_mae_min: f64,
    pub oof_visit_r2: f64,
    /// Share of visits inside their P10–P90 where the interval was calibrated on the other
    /// half of the recipients (out-of-fold predictions; the two halves averaged): coverage
    /// on data the interval was not fitted on.
    /// NaN when not measured (no recipients in one half); written as `null`.
    #[serde(default, deserialize_with = "nan_if_null")]
    pub heldout_visit_interval_coverage: f64,
    /// The same for a recipient's planned week against their logged efficient-level week
    /// (NaN, written as `null`, with fewer than 20 recipients in the planned-week figures).
    #[serde(default, deserialize_with = "nan_if_null")]
    pub heldout_week_interval_coverage: f64,
    /// Out-of-fold recipients: MAPE of the *planned* week (the needs the log shows for the
    /// recipient, planned as `estimate` plans them, each visit predicted by the model that
    /// did not see the recipient) against the recipient's logged week at the efficient
    /// level.
    #[serde(default)]
    pub oof_planned_week_mape: f64,
    /// Recipients in the planned-week figures.
    #[serde(default)]
    pub planned_week_recipients: usize,
    pub visit_interval: [f64; 2],
    pub weekly_interval: [f64; 2],
    pub calibration_recipients: usize,
    /// The frontier: which level was chosen, why, and what the other definitions cost.
    #[serde(default)]
    pub frontier: Option<FrontierReport>,
    /// Visits set aside as early check-outs: far shorter than the fit and their recipient's
    /// other visits say their tasks take.
    #[serde(default)]
    pub short_visits_set_aside: u64,
    /// Whether pairs of context conditions entered the model, by cross-validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_pairs: Option<ContextPairsCv>,
}

/// A figure that was not measured is NaN, which JSON writes as `null`: read back as NaN, so
/// that a model trained on few recipients loads.
fn one() -> f64 {
    1.0
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Statistics of one (fold, team) cell.
#[derive(Debug, Clone)]
struct Cell {
    xy: Array1<f64>,
    xs: Array1<f64>,
    y: f64,
    yy: f64,
    n: u64,
}

impl Cell {
    fn new(p: usize) -> Cell {
        Cell {
            xy: Array1::zeros(p),
            xs: Array1::zeros(p),
            y: 0.0,
            yy: 0.0,
            n: 0,
        }
    }

    fn add(&mut self, other: &Cell) {
        self.xy += &other.xy;
        self.xs += &other.xs;
        self.y += other.y;
        self.yy += other.yy;
        self.n += other.n;
    }
}

/// Sufficient statistics of one pass: per fold a Gram matrix, per (fold, team) a cell.
struct Stats {
    gram: Vec<Array2<f64>>,
    cells: Vec<Vec<Cell>>,
}

impl Stats {
    fn new(folds: usize, teams: usize, p: usize) -> Stats {
        Stats {
            gram: (0..folds).map(|_| Array2::zeros((p, p))).collect(),
            cells: (0..folds)
                .map(|_| (0..teams).map(|_| Cell::new(p)).collect())
                .collect(),
        }
    }

    /// The Gram matrix of all folds and each fold's, made symmetric (a pass fills only the
    /// upper triangle).
    fn grams(&self) -> (Array2<f64>, Vec<Array2<f64>>) {
        let p = self.gram.first().map_or(0, |g| g.nrows());
        let symmetrize = |g: &mut Array2<f64>| {
            for i in 0..p {
                for j in i + 1..p {
                    g[[j, i]] = g[[i, j]];
                }
            }
        };
        let mut total = Array2::zeros((p, p));
        for g in &self.gram {
            total += g;
        }
        symmetrize(&mut total);
        let mut folds = self.gram.clone();
        folds.iter_mut().for_each(symmetrize);
        (total, folds)
    }

    /// Takes another pass's visits out again (statistics are sums).
    fn subtract(&mut self, other: &Stats) {
        for (g, o) in self.gram.iter_mut().zip(&other.gram) {
            *g -= o;
        }
        for (cs, os) in self.cells.iter_mut().zip(&other.cells) {
            for (c, o) in cs.iter_mut().zip(os) {
                c.xy -= &o.xy;
                c.xs -= &o.xs;
                c.y -= o.y;
                c.yy -= o.yy;
                c.n -= o.n;
            }
        }
    }

    fn merge(&mut self, other: Stats) {
        for (g, o) in self.gram.iter_mut().zip(other.gram) {
            *g += &o;
        }
        for (cs, os) in self.cells.iter_mut().zip(other.cells) {
            for (c, o) in cs.iter_mut().zip(os) {
                c.add(&o);
            }
        }
    }
}

/// Fold of a recipient: a fixed pseudo-random function of its index and the seed.
pub fn fold_of(recipient: u32, seed: u64, folds: usize) -> usize {
    let mut z = u64::from(recipient) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % folds as u64) as usize
}

/// The feature space learned from the log: context centres and the pairs common enough.
pub fn learn_space(table: &VisitTable, catalog: &Catalog, min_pair_visits: u64) -> FeatureSpace {
    let nv = catalog.contexts.len();
    let mut sum = vec![0.0; nv];
    let mut sum2 = vec![0.0; nv];
    // Per label (categorical) or per level (ordinal): how many visits have it.
    let mut label_counts: Vec<Vec<f64>> = catalog
        .contexts
        .iter()
        .map(|c| match c.kind {
            crate::catalog::ContextKind::Ordinal => vec![0.0; c.ordinal_levels.len()],
            _ => vec![0.0; c.labels.len()],
        })
        .collect();
    let mut pairs: HashMap<(u16, u16), u64> = HashMap::new();
    for row in table.iter() {
        for (v, &x) in row.context.iter().enumerate() {
            let x = f64::from(x);
            sum[v] += x;
            sum2[v] += x * x;
            let var = &catalog.contexts[v];
            let index = if var.kind == crate::catalog::ContextKind::Ordinal {
                var.ordinal_levels
                    .iter()
                    .position(|&l| (l - x).abs() < 1e-6)
            } else {
                Some(x as usize)
            };
            if let Some(c) = index.and_then(|i| label_counts[v].get_mut(i)) {
                *c += 1.0;
            }
        }
        for (i, &a) in row.tasks.iter().enumerate() {
            for &b in &row.tasks[i + 1..] {
                *pairs.entry((a, b)).or_default() += 1;
            }
        }
    }
    let n = table.len().max(1) as f64;
    let stats: Vec<(f64, f64)> = (0..nv)
        .map(|v| {
            let mean = sum[v] / n;
            (mean, (sum2[v] / n - mean * mean).max(0.0).sqrt())
        })
        .collect();
    let shares: Vec<Vec<f64>> = label_counts
        .iter()
        .map(|c| c.iter().map(|x| x / n).collect())
        .collect();
    let mut kept: Vec<(u16, u16)> = pairs
        .into_iter()
        .filter(|&(_, count)| count >= min_pair_visits)
        .map(|(p, _)| p)
        .collect();
    kept.sort_unstable();
    let mut space = FeatureSpace::new(catalog, &stats, &shares, kept);
    space.context_pairs = learn_context_pairs(&space, catalog, table);
    space
}

/// The context pairs' penalties tried, over the visits' λ (see [`fit`]).
const PAIR_PENALTY: [f64; 2] = [100.0, 1000.0];

/// The pairs enter the model only where they lower the out-of-fold RMSE by at least this
/// share. Smaller gains are within the cross-validation's own noise, and did not carry
/// over to held-out person-weeks: on random worlds with seeds 101–140 the pairs, kept on
/// any gain, made the MAPE ratio worse in 8 worlds and better in 6 (worst 1.33× → 1.38×);
/// kept on gains of 0.2 % or more, in 3 worlds, none worse (seeds 1–20: 3 worlds, all
/// better).
const MIN_PAIR_GAIN: f64 = 0.002;

/// A pair of context conditions gets coefficients only where this many recipients have both
/// (context belongs to the person, so a pair seen in one person's visits is that person's
/// own effect, not the pair's) ...
const MIN_CONTEXT_PAIR_RECIPIENTS: u64 = 30;
/// ... and where this many recipients have each without the other, so the pair is not the
/// same column as either condition alone.
const MIN_CONTEXT_PAIR_CONTRAST: u64 = 30;

/// The pairs of indicator context columns (of different variables) the log can inform:
/// conditions that may act together (cognition and living alone, mobility and the area's
/// housing), beside their effects one by one. Whether they enter the model at all is then
/// decided by cross-validation ([`fit`]).
fn learn_context_pairs(
    space: &FeatureSpace,
    catalog: &Catalog,
    table: &VisitTable,
) -> Vec<(u16, u16)> {
    use crate::catalog::ContextKind;
    let indicator: Vec<usize> = space
        .context
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.label.is_some()
                || c.at_least.is_some()
                || catalog.contexts[c.var].kind == ContextKind::Boolean
        })
        .map(|(j, _)| j)
        .collect();
    let m = indicator.len();
    if m < 2 {
        return Vec::new();
    }
    // Per recipient once (its first visit): which indicators are on, and how often each pair
    // is on together.
    let mut seen = std::collections::HashSet::new();
    let mut single = vec![0u64; m];
    let mut both = vec![0u64; m * m];
    let mut z = Vec::new();
    let mut on = Vec::with_capacity(m);
    for row in table.iter() {
        if !seen.insert(row.recipient) {
            continue;
        }
        space.encode_context(row.context, &mut z);
        on.clear();
        for (i, &j) in indicator.iter().enumerate() {
            let c = &space.context[j];
            if (z[j] * c.scale + c.center).abs() > 0.5 {
                on.push(i);
                single[i] += 1;
            }
        }
        for (a, &i) in on.iter().enumerate() {
            for &k in &on[a + 1..] {
                both[i * m + k] += 1;
            }
        }
    }
    let mut pairs = Vec::new();
    for i in 0..m {
        for k in i + 1..m {
            let (ci, ck) = (&space.context[indicator[i]], &space.context[indicator[k]]);
            if ci.var == ck.var {
                continue;
            }
            let n = both[i * m + k];
            if n >= MIN_CONTEXT_PAIR_RECIPIENTS
                && single[i] - n >= MIN_CONTEXT_PAIR_CONTRAST
                && single[k] - n >= MIN_CONTEXT_PAIR_CONTRAST
            {
                pairs.push((indicator[i] as u16, indicator[k] as u16));
            }
        }
    }
    pairs
}

#[allow(clippy::too_many_arguments)]
fn accumulate(
    table: &VisitTable,
    space: &FeatureSpace,
    cols: &FittedColumns,
    rows: impl ExactSizeIterator<Item = usize>,
    folds: usize,
    cells: &Cells,
    seed: u64,
    progress: &dyn Progress,
) -> Stats {
    let p = cols.len();
    let mut stats = Stats::new(folds, cells.count(), p);
    let mut z = Vec::new();
    let mut x = Vec::new();
    let rows_len = rows.len() as u64;
    for (done, i) in rows.enumerate() {
        let row = table.row(i);
        space.encode_context(row.context, &mut z);
        space.encode(row.tasks, row.slot, row.staff, &z, &mut x);
        cols.map(&mut x);
        x.sort_unstable_by_key(|e| e.0);
        let f = fold_of(row.recipient, seed, folds);
        let g = stats.gram[f].as_slice_mut().expect("standard layout");
        for (a, &(ca, va)) in x.iter().enumerate() {
            let base = ca as usize * p;
            for &(cb, vb) in &x[a..] {
                g[base + cb as usize] += va * vb;
            }
        }
        let cell = &mut stats.cells[f][cells.of(row.unit, row.day)];
        let y = row.duration;
        for &(c, v) in &x {
            cell.xy[c as usize] += v * y;
            cell.xs[c as usize] += v;
        }
        cell.y += y;
        cell.yy += y * y;
        cell.n += 1;
        if done % 65_536 == 65_535 {
            progress.advance(65_536);
        }
    }
    progress.advance(rows_len % 65_536);
    stats
}

/// The coefficient columns the log can inform, numbered densely for the statistics.
///
/// A code no visit uses has a task column and one interaction column per context column
/// that are zero in every visit: their rows of the Gram matrix are empty and the ridge
/// solution for them is their prior alone. Leaving them out of the statistics gives the
/// same coefficients while the Gram matrices (p² per fold) grow with the codes the log
/// uses, not with the catalog.
pub struct FittedColumns {
    /// Full column → dense column, `u32::MAX` where nothing is fitted.
    dense: Vec<u32>,
    /// Dense column → full column.
    full: Vec<usize>,
}

impl FittedColumns {
    pub fn new(space: &FeatureSpace, table: &VisitTable) -> FittedColumns {
        let l = space.layout();
        let k = space.context.len();
        let mut used = vec![false; space.n_tasks];
        // Codes seen in a visit with two staff: only they inform a two-staff column.
        let mut with_two = vec![false; space.n_tasks];
        for row in table.iter() {
            for &t in row.tasks {
                if let Some(u) = used.get_mut(t as usize) {
                    *u = true;
                    with_two[t as usize] |= row.staff >= 2;
                }
            }
        }
        let mut keep = vec![true; l.len];
        for (t, _) in used.iter().enumerate().filter(|(_, u)| !**u) {
            keep[l.tasks + t] = false;
            keep[l.interactions + t * k..l.interactions + (t + 1) * k].fill(false);
        }
        if space.staff2_tasks {
            for (t, _) in with_two.iter().enumerate().filter(|(_, w)| !**w) {
                keep[l.staff2_tasks + t] = false;
            }
        }
        let mut dense = vec![u32::MAX; l.len];
        let mut full = Vec::new();
        for (c, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            dense[c] = full.len() as u32;
            full.push(c);
        }
        FittedColumns { dense, full }
    }

    pub fn len(&self) -> usize {
        self.full.len()
    }

    /// The codes (task numbers) whose task column nothing in the log informs.
    pub fn unlogged_tasks(&self, space: &FeatureSpace) -> Vec<usize> {
        let l = space.layout();
        (0..space.n_tasks)
            .filter(|&t| self.dense[l.tasks + t] == u32::MAX)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }

    fn compact(&self, v: &[f64]) -> Vec<f64> {
        self.full.iter().map(|&c| v[c]).collect()
    }

    /// Renumbers a visit's encoded features (all of them belong to used codes).
    fn map(&self, x: &mut [(u32, f64)]) {
        for e in x {
            e.0 = self.dense[e.0 as usize];
        }
    }

    /// Full coefficients: fitted ones from `beta`; the others are what `solve` gives a
    /// column with no data (its prior, shrunk by the same 1e-9 jitter), times `reference`.
    fn expand(
        &self,
        beta: &Array1<f64>,
        weight: &[f64],
        prior: &[f64],
        lambda: f64,
        reference: f64,
    ) -> Vec<f64> {
        (0..self.dense.len())
            .map(|c| match self.dense[c] {
                u32::MAX => {
                    let w = lambda * weight[c];
                    w * prior[c] / (w + 1e-9) * reference
                }
                d => beta[d as usize] * reference,
            })
            .collect()
    }
}

/// A code the log never shows gets the time the log gives the codes of its category:
/// its schablon × the median ratio of learned time to schablon over the logged codes of
/// the same category (of all logged codes when its category has none). Without it, such a
/// code would keep its ridge prior, a global share of its schablon, whatever its category.
fn price_unlogged_by_category(
    coef: &mut [f64],
    space: &FeatureSpace,
    catalog: &Catalog,
    unlogged: &[usize],
) {
    if unlogged.is_empty() {
        return;
    }
    let l = space.layout();
    let ratio = |same_category: Option<crate::catalog::Category>| {
        let mut r: Vec<f64> = (0..space.n_tasks)
            .filter(|t| !unlogged.contains(t))
            .filter(|&t| same_category.is_none_or(|c| catalog.insatser[t].category == c))
            .filter(|&t| catalog.insatser[t].schablon_min > 0.0)
            .map(|t| coef[l.tasks + t] / catalog.insatser[t].schablon_min)
            .filter(|r| r.is_finite() && *r > 0.0)
            .collect();
        if r.is_empty() {
            return None;
        }
        r.sort_by(f64::total_cmp);
        Some(r[r.len() / 2])
    };
    let overall = ratio(None);
    let priced: Vec<(usize, f64)> = unlogged
        .iter()
        .filter_map(|&t| {
            let insats = &catalog.insatser[t];
            ratio(Some(insats.category))
                .or(overall)
                .map(|r| (t, r * insats.schablon_min))
        })
        .collect();
    for (t, minutes) in priced {
        coef[l.tasks + t] = minutes;
    }
}

/// What a fit will need, known before any statistics are gathered.
#[derive(Debug, Clone, Copy)]
pub struct FitPlan {
    /// Coefficients in the model (every catalog code).
    pub features: usize,
    /// Coefficients estimated (codes the log uses).
    pub fitted_features: usize,
    /// A bound on the statistics' memory: the Gram matrices (one per fold and thread, the
    /// merged ones, the CV and the factor copies) and the per-team vectors.
    pub memory_bytes: u64,
}

pub fn plan(
    table: &VisitTable,
    units: usize,
    catalog: &Catalog,
    settings: &FitSettings,
) -> FitPlan {
    let mut space = learn_space(table, catalog, settings.min_pair_visits);
    space.staff2_tasks = settings.staff2_tasks;
    let p = FittedColumns::new(&space, table).len() as u64;
    let folds = settings.folds.max(1) as u64;
    let threads = settings.threads.max(1).min(table.len() / 10_000 + 1) as u64;
    // A weekday and a weekend cell per team.
    let teams = 2 * units.max(1) as u64;
    let grams = folds * threads + 2 * folds + 4;
    let vectors = 2 * folds * teams * (threads + 2);
    FitPlan {
        features: space.len(),
        fitted_features: p as usize,
        memory_bytes: 8 * (grams * p * p + vectors * p),
    }
}

/// The penalty weight of each coefficient and the value it is shrunk towards.
fn penalty(space: &FeatureSpace, catalog: &Catalog, table: &VisitTable) -> (Vec<f64>, Vec<f64>) {
    let p = space.len();
    // Tasks shrink towards their schablon scaled to the log's level, so that a rare task
    // gets a sensible time rather than zero; everything else shrinks towards zero.
    let (mut logged, mut schablon) = (0.0, 0.0);
    for row in table.iter() {
        logged += row.duration;
        schablon += row
            .tasks
            .iter()
            .map(|&t| catalog.insatser[t as usize].schablon_min)
            .sum::<f64>();
    }
    let kappa = if schablon > 0.0 {
        (logged / schablon).clamp(0.2, 2.0) * 0.8
    } else {
        0.0
    };
    let layout = space.layout();
    let mut weight = vec![1.0; p];
    let mut prior = vec![0.0; p];
    weight[0] = 0.0;
    for (t, insats) in catalog.insatser.iter().enumerate() {
        prior[layout.tasks + t] = kappa * insats.schablon_min;
    }
    (weight, prior)
}

struct Solution {
    beta: Array1<f64>,
    theta: Vec<f64>,
}

/// A cell whose pace is not estimated but held at other cells' weighted pace.
#[derive(Debug, Clone)]
struct Pin {
    cell: usize,
    to: Vec<(usize, f64)>,
}

/// The weekday cells of the units the frontier found alone in their slots, each held at
/// the frontier members' pace. Their weekend cells stay free: against the same unit's
/// weekdays, in the same slots, the weekend factor is identified.
fn lone_unit_pins(cells: &Cells, choice: &crate::frontier::Choice) -> Vec<Pin> {
    choice
        .roles
        .iter()
        .enumerate()
        .filter(|(_, &r)| r == Role::NotComparable)
        .map(|(u, _)| Pin {
            cell: cells.weekday(u),
            to: choice.members.clone(),
        })
        .filter(|p| !p.to.iter().any(|m| m.0 == p.cell))
        .collect()
}

/// Alternates β (ridge on y/θ) and θ (team ratio) on pooled statistics.
#[allow(clippy::too_many_arguments)]
fn solve(
    gram: &Array2<f64>,
    cells: &[Cell],
    lambda: f64,
    weight: &[f64],
    prior: &[f64],
    adjust_teams: bool,
    pins: &[Pin],
    settings: &FitSettings,
) -> Result<Solution, FitError> {
    let p = gram.nrows();
    let mut a = gram.clone();
    let mut shrink = Array1::zeros(p);
    for c in 0..p {
        a[[c, c]] += lambda * weight[c] + 1e-9;
        shrink[c] = lambda * weight[c] * prior[c];
    }
    let factor = Factor::new(&a)?;
    let mut theta = vec![1.0; cells.len()];
    let total: u64 = cells.iter().map(|c| c.n).sum();
    let mut beta = Array1::zeros(p);
    for _ in 0..settings.team_iterations.max(1) {
        let mut rhs = shrink.clone();
        for (cell, &t) in cells.iter().zip(&theta) {
            if cell.n > 0 {
                rhs.scaled_add(1.0 / t, &cell.xy);
            }
        }
        beta = factor.solve(&rhs);
        if !adjust_teams {
            break;
        }
        let mut next: Vec<f64> = cells
            .iter()
            .zip(&theta)
            .map(|(cell, &old)| {
                let predicted = beta.dot(&cell.xs);
                if cell.n >= settings.min_team_visits && predicted > 0.0 {
                    (cell.y / predicted).clamp(0.25, 4.0)
                } else {
                    old
                }
            })
            .collect();
        // θ is identified only up to a common factor (β absorbs it): fix the visit-weighted
        // mean at 1 while iterating; the efficient reference is chosen afterwards.
        let mean: f64 = cells
            .iter()
            .zip(&next)
            .map(|(c, t)| c.n as f64 * t)
            .sum::<f64>()
            / total.max(1) as f64;
        next.iter_mut().for_each(|t| *t /= mean);
        for pin in pins {
            let w: f64 = pin.to.iter().map(|m| m.1).sum();
            if w > 0.0 {
                next[pin.cell] = pin.to.iter().map(|&(c, m)| next[c] * m).sum::<f64>() / w;
            }
        }
        let change = next
            .iter()
            .zip(&theta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        theta = next;
        if change < 1e-7 {
            break;
        }
    }
    Ok(Solution { beta, theta })
}

/// Sum of squared validation errors of y/θ against x'β, from statistics alone.
fn validation_sse(gram: &Array2<f64>, cells: &[Cell], s: &Solution) -> f64 {
    let mut sse = quad_form(gram, &s.beta);
    for (cell, &t) in cells.iter().zip(&s.theta) {
        if cell.n > 0 {
            sse += cell.yy / (t * t) - 2.0 * s.beta.dot(&cell.xy) / t;
        }
    }
    sse.max(0.0)
}

fn sum_cells(stats: &Stats, skip: Option<usize>, teams: usize, p: usize) -> Vec<Cell> {
    let mut out: Vec<Cell> = (0..teams).map(|_| Cell::new(p)).collect();
    for (f, cells) in stats.cells.iter().enumerate() {
        if Some(f) == skip {
            continue;
        }
        for (o, c) in out.iter_mut().zip(cells) {
            o.add(c);
        }
    }
    out
}

/// Level of the efficient reference, as a multiple of the visit-weighted mean team level,
/// for the methods other than the frontier (which [`crate::frontier::choose`] sets).
fn reference_level(efficiency: &Efficiency, theta: &[f64], visits: &[u64]) -> f64 {
    match efficiency {
        Efficiency::Pooled | Efficiency::Frontier { .. } => 1.0,
        Efficiency::TeamReference { quantile, .. } => {
            let total: u64 = visits.iter().sum();
            let mut order: Vec<usize> = (0..theta.len()).filter(|&k| visits[k] > 0).collect();
            order.sort_by(|&a, &b| theta[a].total_cmp(&theta[b]));
            let (mut covered, mut weighted, mut count) = (0u64, 0.0, 0u64);
            for k in order {
                if covered as f64 >= quantile * total as f64 && count > 0 {
                    break;
                }
                covered += visits[k];
                weighted += theta[k] * visits[k] as f64;
                count += visits[k];
            }
            if count == 0 {
                1.0
            } else {
                weighted / count as f64
            }
        }
    }
}

/// Per performance cell: its pace, the pace's standard error (cluster-robust by recipient:
/// the residuals of one person's visits are summed before squaring), its recipients, and
/// the share of its visits in slots other units serve too. One pass with the full fit.
/// How far below its recipient's usual ratio to the model a visit must fall (in robust
/// standard deviations of those ratios' logs) to be taken for an early check-out.
const SHORT_VISIT_SD: f64 = 3.0;

/// Visits far shorter than the model and their recipient's other visits say their tasks
/// take: check-outs made before the care was done (on leaving a first room, an app that
/// timed out). They look plausible one by one, minutes not seconds, so the reader cannot
/// see them; against the fit they stand out. Only the short side is set aside: a visit
/// far longer than usual can be real time (a fall, a wait for the ambulance), and the
/// forgotten check-outs are already flagged by the reader. On the log scale, after each
/// recipient's own level is taken out, with the spread measured robustly (MAD).
fn short_visits(
    table: &VisitTable,
    space: &FeatureSpace,
    cols: &FittedColumns,
    cells: &Cells,
    sol: &Solution,
) -> Vec<bool> {
    let (mut z, mut x) = (Vec::new(), Vec::new());
    let mut log_ratio: Vec<f32> = Vec::with_capacity(table.len());
    let mut by_recipient: HashMap<u32, (f64, u32)> = HashMap::new();
    for row in table.iter() {
        space.encode_context(row.context, &mut z);
        space.encode(row.tasks, row.slot, row.staff, &z, &mut x);
        cols.map(&mut x);
        let pred = sol.theta[cells.of(row.unit, row.day)]
            * x.iter()
                .map(|&(j, v)| sol.beta[j as usize] * v)
                .sum::<f64>();
        let l = if pred > 0.0 && row.duration > 0.0 {
            (row.duration / pred).ln()
        } else {
            f64::NAN
        };
        if l.is_finite() {
            let e = by_recipient.entry(row.recipient).or_default();
            e.0 += l;
            e.1 += 1;
        }
        log_ratio.push(l as f32);
    }
    let mut centred: Vec<f32> = Vec::with_capacity(table.len());
    for (row, l) in table.iter().zip(log_ratio.iter_mut()) {
        if l.is_finite() {
            let (sum, n) = by_recipient[&row.recipient];
            *l -= (sum / f64::from(n)) as f32;
            centred.push(*l);
        }
    }
    if centred.len() < 100 {
        return vec![false; table.len()];
    }
    let mid = quantile_f32(&mut centred, 0.5);
    for d in centred.iter_mut() {
        *d = (*d - mid).abs();
    }
    let sd = 1.4826 * f64::from(quantile_f32(&mut centred, 0.5));
    let floor = mid - (SHORT_VISIT_SD * sd) as f32;
    log_ratio
        .iter()
        .map(|&l| l.is_finite() && sd > 0.0 && l < floor)
        .collect()
}

fn quantile_f32(v: &mut [f32], q: f64) -> f32 {
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// A cell's time as a line through the common model's prediction `p` (at pace 1):
/// `slope × p + slack_min`. The pace θ is one ratio over the cell's visits; the line also
/// sees whether the cell is slower on short visits than on long ones: minutes added to
/// every visit (a walk from the car, a habit of writing notes on site) beside the pace.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CellLine {
    slope: f64,
    slack_min: f64,
    /// Whether the line was fitted (not the ratio through the origin for want of data).
    fitted: bool,
}

/// Least squares of logged on predicted minutes, within a cell: `(n, Σp, Σp², Σy, Σyp)`.
/// Where the cell's visits barely vary in predicted length, or the line would not rise,
/// the line is the ratio through the origin (`theta`).
fn cell_line([n, sp, spp, sy, syp]: [f64; 5], theta: f64, min_visits: u64) -> CellLine {
    let ratio = CellLine {
        slope: theta,
        slack_min: 0.0,
        fitted: false,
    };
    if n < min_visits as f64 || n < 2.0 {
        return ratio;
    }
    let (mp, my) = (sp / n, sy / n);
    let var_p = spp / n - mp * mp;
    // Visits of one length (a cell that only ever does one task) cannot tell minutes per
    // visit from pace: a spread of predicted lengths under 10 % of their mean is too little.
    if var_p.is_nan() || var_p <= (0.1 * mp).powi(2) {
        return ratio;
    }
    let slope = (syp / n - mp * my) / var_p;
    if !(slope.is_finite() && slope > 0.25 * theta && slope < 4.0 * theta) {
        return ratio;
    }
    CellLine {
        slope,
        slack_min: my - slope * mp,
        fitted: true,
    }
}

fn cell_evidence(
    table: &VisitTable,
    space: &FeatureSpace,
    cols: &FittedColumns,
    cells: &Cells,
    sol: &Solution,
    set_aside: &[bool],
    min_visits: u64,
) -> (Vec<CellEvidence>, Vec<CellLine>) {
    let n = cells.count();
    let mut predicted = vec![0.0; n];
    // Per cell (n, Σp, Σp², Σy, Σyp) for the cell's line.
    let mut moments = vec![[0.0f64; 5]; n];
    // Ordered, so that the squares below are summed in the same order on every run: a
    // model trained twice on the same log is the same to the last bit.
    let mut resid: std::collections::BTreeMap<(u32, u32), f64> = Default::default();
    let mut n_visits = vec![0u64; n];
    let mut unit_slots = vec![[0u64; 5]; cells.units.max(1)];
    let mut slot_total = [0u64; 5];
    let (mut z, mut x) = (Vec::new(), Vec::new());
    for (i, row) in table.iter().enumerate() {
        if set_aside.get(i).copied().unwrap_or(false) {
            continue;
        }
        let c = cells.of(row.unit, row.day);
        space.encode_context(row.context, &mut z);
        space.encode(row.tasks, row.slot, row.staff, &z, &mut x);
        cols.map(&mut x);
        let pred: f64 = x.iter().map(|&(j, v)| sol.beta[j as usize] * v).sum();
        predicted[c] += pred;
        n_visits[c] += 1;
        let m = &mut moments[c];
        m[0] += 1.0;
        m[1] += pred;
        m[2] += pred * pred;
        m[3] += row.duration;
        m[4] += row.duration * pred;
        *resid.entry((c as u32, row.recipient)).or_default() += row.duration - sol.theta[c] * pred;
        unit_slots[row.unit as usize][row.slot.index()] += 1;
        slot_total[row.slot.index()] += 1;
    }
    let mut sq = vec![0.0; n];
    let mut recipients = vec![0u64; n];
    for (&(c, _), &r) in &resid {
        sq[c as usize] += r * r;
        recipients[c as usize] += 1;
    }
    let overlap: Vec<f64> = unit_slots
        .iter()
        .map(|own| {
            let total: u64 = own.iter().sum();
            let shared: u64 = (0..5)
                .filter(|&s| {
                    slot_total[s] > 0
                        && (slot_total[s] - own[s]) as f64 / slot_total[s] as f64 >= 0.3
                })
                .map(|s| own[s])
                .sum();
            shared as f64 / total.max(1) as f64
        })
        .collect();
    let evidence = (0..n)
        .map(|c| {
            let unit = if cells.weekend_apart { c / 2 } else { c };
            CellEvidence {
                theta: sol.theta[c],
                se: if predicted[c] > 0.0 {
                    sq[c].sqrt() / predicted[c]
                } else {
                    f64::INFINITY
                },
                visits: n_visits[c],
                recipients: recipients[c],
                overlap: overlap.get(unit).copied().unwrap_or(0.0),
            }
        })
        .collect();
    let lines = (0..n)
        .map(|c| cell_line(moments[c], sol.theta[c], min_visits))
        .collect();
    (evidence, lines)
}

/// Weeks the log covers (first to last visit day).
fn logged_weeks(table: &VisitTable) -> f64 {
    let (mut lo, mut hi) = (i32::MAX, i32::MIN);
    for row in table.iter() {
        lo = lo.min(row.day);
        hi = hi.max(row.day);
    }
    if lo > hi {
        1.0
    } else {
        f64::from(hi - lo + 1) / 7.0
    }
}

struct ModelTotals {
    /// The log's visits predicted at θ = 1.
    model_minutes: f64,
    logged_minutes: f64,
    weeks: f64,
}

fn frontier_report(
    efficiency: &Efficiency,
    cells: &Cells,
    units: &[String],
    choice: &Choice,
    evidence: &[CellEvidence],
    reference: f64,
    totals: ModelTotals,
) -> FrontierReport {
    let named = |role: Role| -> Vec<String> {
        choice
            .roles
            .iter()
            .enumerate()
            .filter(|(_, r)| **r == role)
            .filter_map(|(u, _)| units.get(u).cloned())
            .collect()
    };
    let members = match efficiency {
        Efficiency::Frontier { .. } => named(Role::Frontier),
        _ => Vec::new(),
    };
    let (method, reason) = match efficiency {
        Efficiency::Frontier {
            implausible_gap, ..
        } => {
            // Named also when it kept the larger share (its role is then `frontier`).
            let fastest = choice
                .judged
                .and_then(|u| units.get(u).cloned())
                .unwrap_or_default();
            let mut reason = format!(
                "best practice: the weekday pace of the fastest comparable team and of the \
                 teams within noise of it ({}); a fastest team leading the next by more than \
                 {:.0} % (and by more than twice the usual spacing) is implausibly fast",
                members.join(", "),
                implausible_gap * 100.0
            );
            let share = choice.fastest_share;
            if share > 0.0 && share < 1.0 {
                reason.push_str(&format!(
                    "; the fastest team's lead is ambiguous (cut corners or a real lead look \
                     the same in the log), so the level weighs the reading with it at {:.0} % \
                     and without it at {:.0} %{}",
                    share * 100.0,
                    (1.0 - share) * 100.0,
                    if fastest.is_empty() {
                        String::new()
                    } else {
                        format!(": check {fastest}'s visits against what was ordered")
                    }
                ));
            } else if share == 0.0 {
                reason.push_str(": it is set aside, not copied");
            }
            ("frontier", reason)
        }
        Efficiency::TeamReference { quantile, .. } => (
            "team_reference",
            format!(
                "the fastest teams that together performed {:.0} % of the visits",
                quantile * 100.0
            ),
        ),
        Efficiency::Pooled => ("pooled", "the plain mean of the cleaned log".to_string()),
    };
    let (mut wd, mut we) = ((0.0, 0.0), (0.0, 0.0));
    for u in 0..cells.units {
        if let Some(c) = cells.weekend(u) {
            let (a, b) = (&evidence[cells.weekday(u)], &evidence[c]);
            if a.visits > 0 && b.visits > 0 {
                wd.0 += a.theta * b.visits as f64;
                we.0 += b.theta * b.visits as f64;
                wd.1 += b.visits as f64;
                we.1 += b.visits as f64;
            }
        }
    }
    let weekend_factor = if wd.0 > 0.0 { we.0 / wd.0 } else { 1.0 };
    let half = if choice.level_se.is_finite() {
        1.645 * choice.level_se
    } else {
        0.0
    };
    let mut what_if = crate::frontier::what_if(
        cells,
        choice,
        evidence,
        totals.model_minutes,
        totals.logged_minutes,
        totals.weeks,
    );
    // Relative to the level in force (the frontier unless another method was chosen).
    let scale = choice.level / reference;
    for w in &mut what_if {
        w.relative *= scale;
    }
    FrontierReport {
        method: method.into(),
        reason,
        members,
        implausibly_fast: named(Role::ImplausiblyFast),
        fastest_share: choice.fastest_share,
        not_comparable: named(Role::NotComparable),
        level_over_mean: reference,
        level_interval: [reference - half, reference + half],
        weekend_factor,
        what_if,
    }
}

/// What one out-of-fold recipient's log shows: the occasions per (code, slot) with how
/// many had two staff, the days covered, and the logged minutes at the efficient level.
#[derive(Debug, Default)]
struct RecipientLog {
    fold: usize,
    half: u8,
    context: Vec<f64>,
    first_day: i32,
    last_day: i32,
    observed: f64,
    visits: u64,
    occasions: Vec<(u16, crate::slot::Slot, u32, u32)>,
}

/// The half of the recipients a recipient's out-of-fold ratios calibrate (0 or 1),
/// independent of its cross-validation fold.
fn calibration_half(recipient: u32, seed: u64) -> u8 {
    fold_of(recipient, seed ^ 0x005E_EDCA_11B4_A7E5_u64, 2) as u8
}

/// Coverage of a P-low–P-high interval on data it was not calibrated on: quantiles from
/// one half of the recipients, share of the other half's ratios inside them, both ways,
/// averaged (weighted by the halves' sizes).
fn split_coverage(ratios: &[(f64, u8)], [lo_q, hi_q]: [f64; 2]) -> f64 {
    let mut inside = 0usize;
    let mut total = 0usize;
    for cal in 0..2u8 {
        let mut c: Vec<f64> = ratios.iter().filter(|r| r.1 == cal).map(|r| r.0).collect();
        if c.is_empty() {
            continue;
        }
        let (lo, hi) = (quantile(&mut c, lo_q), quantile(&mut c, hi_q));
        for r in ratios.iter().filter(|r| r.1 != cal) {
            total += 1;
            if r.0 >= lo && r.0 <= hi {
                inside += 1;
            }
        }
    }
    if total == 0 {
        f64::NAN
    } else {
        inside as f64 / total as f64
    }
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let k = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *v
}

/// Fits the visit-time model. `units` names the teams by their index in the table. The
/// parameters are checked ([`crate::params`]); `progress` is advanced by the visits of the
/// pass over the table.
pub fn fit(
    table: &VisitTable,
    units: &[String],
    catalog: &Catalog,
    params: &CheckedFitParams,
    progress: &dyn Progress,
) -> Result<(VisitModel, FitReport), FitError> {
    let settings = params.settings();
    if table.len() < 50 {
        return Err(FitError::TooLittleData(format!(
            "{} usable visits; at least 50 are needed",
            table.len()
        )));
    }
    let adjust_teams = !matches!(settings.efficiency, Efficiency::Pooled);
    let cells = Cells {
        units: units.len().max(1),
        weekend_apart: adjust_teams && settings.weekend_apart,
    };
    let teams = cells.count();
    let k = settings.folds;

    let mut space = learn_space(table, catalog, settings.min_pair_visits);
    space.staff2_tasks = settings.staff2_tasks;
    // The statistics cover only the columns some visit can touch (see `FittedColumns`).
    let cols = FittedColumns::new(&space, table);
    let p = cols.len();
    let (weight_full, prior_full) = penalty(&space, catalog, table);
    let weight = cols.compact(&weight_full);
    let prior = cols.compact(&prior_full);

    // One pass, split over threads: each accumulates its own statistics.
    let threads = settings.threads.max(1).min(table.len() / 10_000 + 1);
    let chunk = table.len().div_ceil(threads);
    let mut stats = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * chunk..((t + 1) * chunk).min(table.len());
                let (space, cols, cells) = (&space, &cols, &cells);
                s.spawn(move || {
                    accumulate(table, space, cols, range, k, cells, settings.seed, progress)
                })
            })
            .collect();
        let mut it = handles.into_iter().map(|h| h.join().expect("fit thread"));
        let mut first = it.next().expect("at least one thread");
        for other in it {
            first.merge(other);
        }
        first
    });
    let (mut gram_total, fold_grams) = stats.grams();

    // Cross-validation over λ and over the structure (with or without the context pairs),
    // grouped by recipient. Without them is the same fit with their columns held at zero
    // (a penalty no data outweighs), so both are solved from the one pass's statistics.
    let pair_columns: Vec<usize> = {
        let l = space.layout();
        (l.context_pairs..l.len)
            .map(|c| cols.dense[c])
            .filter(|&d| d != u32::MAX)
            .map(|d| d as usize)
            .collect()
    };
    let mut weight_without = weight.clone();
    for &c in &pair_columns {
        weight_without[c] = 1e12;
    }
    // A pair is a property of people, not of visits: its evidence is the few dozen
    // recipients who have both conditions, each with a hundred visits that share that
    // person's own effect. So its penalty is in pseudo-recipients rather than pseudo-visits
    // (×100 or ×1000 the visits' λ, whichever cross-validates better); at the visits' λ the
    // pairs fitted the persons and lost in cross-validation in 19 of 20 random worlds.
    let with_weights: Vec<(f64, Vec<f64>)> = PAIR_PENALTY
        .iter()
        .map(|&m| {
            let mut w = weight.clone();
            for &c in &pair_columns {
                w[c] = m;
            }
            (m, w)
        })
        .collect();
    let mut structures: Vec<(Option<f64>, &[f64])> = vec![(None, &weight_without)];
    if !pair_columns.is_empty() {
        structures.extend(with_weights.iter().map(|(m, w)| (Some(*m), w.as_slice())));
    }
    let mut cv = Vec::new();
    // The best (λ, RMSE, penalty, fold solutions) without the pairs, and with them.
    let mut best_without: Option<(f64, f64, Option<f64>, Vec<Solution>)> = None;
    let mut best_with: Option<(f64, f64, Option<f64>, Vec<Solution>)> = None;
    let n_total = table.len() as f64;
    for &(pair_penalty, weight) in &structures {
        let with_pairs = pair_penalty.is_some();
        for &lambda in &settings.lambdas {
            // The folds' solves are independent: spread over the threads, summed in fold
            // order (so the result does not depend on the number of threads).
            let solve_fold = |f: usize| -> Result<(f64, Solution), FitError> {
                let fold_gram = &fold_grams[f];
                let train_gram = &gram_total - fold_gram;
                let train_cells = sum_cells(&stats, Some(f), teams, p);
                let sol = solve(
                    &train_gram,
                    &train_cells,
                    lambda,
                    weight,
                    &prior,
                    adjust_teams,
                    &[],
                    settings,
                )?;
                Ok((validation_sse(fold_gram, &stats.cells[f], &sol), sol))
            };
            let workers = settings.threads.clamp(1, k.max(1));
            let results: Vec<Result<(f64, Solution), FitError>> = if workers == 1 {
                (0..k).map(solve_fold).collect()
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..workers)
                        .map(|w| {
                            let solve_fold = &solve_fold;
                            s.spawn(move || {
                                (w..k)
                                    .step_by(workers)
                                    .map(|f| (f, solve_fold(f)))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    let mut all: Vec<_> = handles
                        .into_iter()
                        .flat_map(|h| h.join().expect("cross-validation thread"))
                        .collect();
                    all.sort_by_key(|r| r.0);
                    all.into_iter().map(|r| r.1).collect()
                })
            };
            let mut sse = 0.0;
            let mut sols = Vec::with_capacity(k);
            for r in results {
                let (e, sol) = r?;
                sse += e;
                sols.push(sol);
            }
            let rmse = (sse / n_total).sqrt();
            if !with_pairs {
                cv.push(CvPoint {
                    lambda,
                    rmse_min: rmse,
                });
            }
            tracing::debug!(lambda, rmse, with_pairs, "cross-validation");
            let best = if with_pairs {
                &mut best_with
            } else {
                &mut best_without
            };
            if best.as_ref().is_none_or(|b| rmse < b.1) {
                *best = Some((lambda, rmse, pair_penalty, sols));
            }
        }
    }
    let without = best_without.expect("at least one λ");
    let rmse_without = without.1;
    let rmse_with = best_with.as_ref().map_or(f64::NAN, |b| b.1);
    let (lambda, _, pair_penalty, fold_solutions) = match best_with {
        Some(with) if with.1 < (1.0 - MIN_PAIR_GAIN) * rmse_without => with,
        _ => without,
    };
    let with_pairs = pair_penalty.is_some();
    let context_pairs_cv = (!pair_columns.is_empty()).then(|| ContextPairsCv {
        candidates: space.context_pairs.len(),
        kept: with_pairs,
        penalty_over_lambda: pair_penalty.unwrap_or(f64::NAN),
        rmse_without_min: rmse_without,
        rmse_with_min: rmse_with,
    });
    let weight = match pair_penalty {
        Some(m) => {
            with_weights
                .into_iter()
                .find(|w| w.0 == m)
                .expect("a penalty tried")
                .1
        }
        None => weight_without,
    };

    let solve_at_choice = |gram: &Array2<f64>, cells: &[Cell], pins: &[Pin]| {
        solve(
            gram,
            cells,
            lambda,
            &weight,
            &prior,
            adjust_teams,
            pins,
            settings,
        )
    };
    let mut all_cells = sum_cells(&stats, None, teams, p);
    let mut full = solve_at_choice(&gram_total, &all_cells, &[])?;
    // Early check-outs, found against this fit, are taken out of the statistics and the
    // model solved again at the λ and structure chosen (the choice does not hinge on them).
    let set_aside = short_visits(table, &space, &cols, &cells, &full);
    let short_rows: Vec<usize> = (0..set_aside.len()).filter(|&i| set_aside[i]).collect();
    let mut fold_solutions = fold_solutions;
    if !short_rows.is_empty() {
        let short = accumulate(
            table,
            &space,
            &cols,
            short_rows.iter().copied(),
            k,
            &cells,
            settings.seed,
            &crate::progress::NoProgress,
        );
        stats.subtract(&short);
        let fold_grams;
        (gram_total, fold_grams) = stats.grams();
        fold_solutions = (0..k)
            .map(|f| {
                solve_at_choice(
                    &(&gram_total - &fold_grams[f]),
                    &sum_cells(&stats, Some(f), teams, p),
                    &[],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        all_cells = sum_cells(&stats, None, teams, p);
        full = solve_at_choice(&gram_total, &all_cells, &[])?;
    }
    let visits: Vec<u64> = all_cells.iter().map(|c| c.n).collect();
    let evidence_of = |sol: &Solution| {
        cell_evidence(
            table,
            &space,
            &cols,
            &cells,
            sol,
            &set_aside,
            settings.min_team_visits,
        )
    };
    let (mut evidence, mut lines) = evidence_of(&full);
    let rules = FrontierRules {
        min_team_visits: settings.min_team_visits,
        implausible_gap: match settings.efficiency {
            Efficiency::Frontier {
                implausible_gap, ..
            } => implausible_gap,
            _ => 0.06,
        },
        min_overlap: 0.5,
    };
    let choice = crate::frontier::choose(&cells, &evidence, &rules);
    // A unit alone in its slots: its pace and those slots' own time solve the same
    // equation, so the penalty alone would split them (in random worlds a night patrol at
    // the best teams' pace came out 4–29 % slower, and its visits' efficient time as
    // much too short). Held at the frontier's pace, its visits are taken as it performs
    // them, and the model is solved again.
    let pins = if settings.lone_units_at_frontier
        && matches!(settings.efficiency, Efficiency::Frontier { .. })
    {
        lone_unit_pins(&cells, &choice)
    } else {
        Vec::new()
    };
    if !pins.is_empty() {
        let (_, fold_grams) = stats.grams();
        fold_solutions = (0..k)
            .map(|f| {
                solve_at_choice(
                    &(&gram_total - &fold_grams[f]),
                    &sum_cells(&stats, Some(f), teams, p),
                    &pins,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        full = solve_at_choice(&gram_total, &all_cells, &pins)?;
        (evidence, lines) = evidence_of(&full);
        // The choice stands: holding a unit that is not a candidate moves the candidates'
        // paces by little, and choosing again could weigh an ambiguous lead anew on that
        // little (and leave the held unit off the level it was held at).
    }
    let level_of = |theta: &[f64]| match settings.efficiency {
        Efficiency::Frontier { .. } => choice.level_of(theta),
        _ => reference_level(&settings.efficiency, theta, &visits),
    };
    let reference = level_of(&full.theta);
    // The efficient visit: `scale × x'β + add`. With slack, the frontier members' own lines
    // (weighted as in their level); over their own visits they give the same minutes as
    // their pace, but short and long visits each get what those teams take for them.
    let with_slack =
        matches!(settings.efficiency, Efficiency::Frontier { .. }) && settings.team_slack;
    let (scale, add) = if with_slack {
        let w: f64 = choice.members.iter().map(|m| m.1).sum();
        let (s, a) = choice.members.iter().fold((0.0, 0.0), |(s, a), &(c, m)| {
            (s + m * lines[c].slope, a + m * lines[c].slack_min)
        });
        (s / w, a / w)
    } else {
        (reference, 0.0)
    };

    let mut coef = cols.expand(&full.beta, &weight_full, &prior_full, lambda, scale);
    // The members' slack is minutes per visit, like the overhead.
    coef[0] += add;
    let unlogged = cols.unlogged_tasks(&space);
    price_unlogged_by_category(&mut coef, &space, catalog, &unlogged);

    // Out-of-fold pass: residual ratios on held-out recipients calibrate the intervals.
    // A fold's efficient visit is the full fit's line at the fold's level.
    let fold_refs: Vec<f64> = fold_solutions.iter().map(|s| level_of(&s.theta)).collect();
    let fold_terms: Vec<(f64, f64)> = fold_refs
        .iter()
        .map(|&r| (scale * r / reference, add * r / reference))
        .collect();
    // (ratio, calibration half of the recipient) per visit.
    let mut ratios: Vec<(f64, u8)> = Vec::with_capacity(table.len());
    let mut per_recipient: HashMap<u32, RecipientLog> = HashMap::new();
    let (mut abs_err, mut sq_err, mut sum_y, mut sum_y2) = (0.0, 0.0, 0.0, 0.0);
    let mut z = Vec::new();
    let mut x = Vec::new();
    for row in table.iter() {
        let f = fold_of(row.recipient, settings.seed, k);
        let sol = &fold_solutions[f];
        let VisitRow {
            tasks,
            slot,
            staff,
            context,
            unit,
            duration,
            recipient,
            day,
        } = row;
        space.encode_context(context, &mut z);
        space.encode(tasks, slot, staff, &z, &mut x);
        cols.map(&mut x);
        let pred: f64 = x.iter().map(|&(c, v)| sol.beta[c as usize] * v).sum();
        let (fold_scale, fold_add) = fold_terms[f];
        let efficient_pred = fold_scale * pred + fold_add;
        // The visit's time at the efficient level: its log time with its team's excess taken
        // out (the ratio of the efficient visit to the team's own).
        let theta = sol.theta[cells.of(unit, day)];
        let own_pred = theta * pred;
        let efficient_obs = if own_pred > 0.0 && efficient_pred > 0.0 {
            duration * efficient_pred / own_pred
        } else {
            duration * fold_refs[f] / theta
        };
        let half = calibration_half(recipient, settings.seed);
        if efficient_pred > 0.0 {
            ratios.push((efficient_obs / efficient_pred, half));
        }
        abs_err += (efficient_obs - efficient_pred).abs();
        sq_err += (efficient_obs - efficient_pred).powi(2);
        sum_y += efficient_obs;
        sum_y2 += efficient_obs * efficient_obs;
        let e = per_recipient
            .entry(recipient)
            .or_insert_with(|| RecipientLog {
                fold: f,
                half,
                context: context.iter().map(|&c| f64::from(c)).collect(),
                first_day: day,
                last_day: day,
                ..RecipientLog::default()
            });
        e.first_day = e.first_day.min(day);
        e.last_day = e.last_day.max(day);
        e.observed += efficient_obs;
        e.visits += 1;
        for &t in tasks {
            let occ = match e.occasions.iter_mut().find(|o| o.0 == t && o.1 == slot) {
                Some(o) => o,
                None => {
                    e.occasions.push((t, slot, 0, 0));
                    e.occasions.last_mut().expect("just pushed")
                }
            };
            occ.2 += 1;
            if staff >= 2 {
                occ.3 += 1;
            }
        }
    }
    let [lo_q, hi_q] = settings.interval;
    let mut all: Vec<f64> = ratios.iter().map(|r| r.0).collect();
    let visit_interval = [quantile(&mut all, lo_q), quantile(&mut all, hi_q)];
    let heldout_visit_coverage = split_coverage(&ratios, settings.interval);

    // Planned weeks: each out-of-fold recipient's needs as the log shows them, planned the
    // way `estimate` plans needs and predicted by the fold's model, against the logged week.
    let planner = crate::plan::Planner::learn(table, catalog);
    let mut weekly: Vec<(f64, u8)> = Vec::new();
    let mut planned_ape = Vec::new();
    for e in per_recipient.values() {
        if e.visits < settings.min_recipient_visits {
            continue;
        }
        let weeks = f64::from(e.last_day - e.first_day + 1).max(7.0) / 7.0;
        let needs = crate::needs::ValidNeeds {
            recipient_id: String::new(),
            context: e.context.clone(),
            needs: e
                .occasions
                .iter()
                .map(|&(t, slot, n, two)| crate::needs::ValidNeed {
                    insats: t as usize,
                    per_week: f64::from(n) / weeks,
                    slot: Some(slot),
                    staff: if 2 * two > n { 2 } else { 1 },
                    words: None,
                })
                .collect(),
        };
        let sol = &fold_solutions[e.fold];
        space.encode_context(&e.context, &mut z);
        let planned: f64 = planner
            .plan(&needs)
            .iter()
            .map(|v| {
                space.encode(&v.tasks, v.slot, v.staff, &z, &mut x);
                // The fold's solution is over the fitted (dense) columns; the log's own
                // needs touch only those.
                let m = x
                    .iter()
                    .filter_map(|&(c, val)| {
                        let d = cols.dense[c as usize];
                        (d != u32::MAX).then(|| sol.beta[d as usize] * val)
                    })
                    .sum::<f64>();
                let (fold_scale, fold_add) = fold_terms[e.fold];
                let m = fold_scale * m + fold_add;
                v.per_week * m.max(crate::estimate::MIN_VISIT_MIN)
            })
            .sum();
        let observed = e.observed / weeks;
        if planned > 0.0 && observed > 0.0 {
            weekly.push((observed / planned, e.half));
            planned_ape.push((planned - observed).abs() / observed);
        }
    }
    let planned_week_mape = planned_ape.iter().sum::<f64>() / planned_ape.len().max(1) as f64;
    let calibration_recipients = weekly.len();
    let (weekly_interval, heldout_week_coverage) = if weekly.len() >= 20 {
        let mut w: Vec<f64> = weekly.iter().map(|r| r.0).collect();
        (
            [quantile(&mut w, lo_q), quantile(&mut w, hi_q)],
            split_coverage(&weekly, settings.interval),
        )
    } else {
        (visit_interval, f64::NAN)
    };

    let tolerance = match settings.efficiency {
        Efficiency::Frontier { tolerance, .. } | Efficiency::TeamReference { tolerance, .. } => {
            tolerance
        }
        Efficiency::Pooled => f64::INFINITY,
    };
    let team_effects: Vec<TeamEffect> = (0..units.len())
        .map(|t| {
            let wd = cells.weekday(t);
            let m = full.theta[wd] / reference;
            let half = 1.645 * evidence[wd].se / reference;
            let weekend_factor = cells.weekend(t).and_then(|we| {
                (visits[we] >= settings.min_team_visits && visits[wd] > 0)
                    .then(|| full.theta[we] / full.theta[wd])
            });
            TeamEffect {
                unit_id: units[t].clone(),
                visits: visits[wd] + cells.weekend(t).map_or(0, |we| visits[we]),
                multiplier: m,
                inefficient: m > 1.0 + tolerance,
                multiplier_interval: [m - half, m + half],
                weekend_factor,
                recipients: evidence[wd].recipients,
                role: adjust_teams.then_some(choice.roles[t]),
                slack_min: (with_slack && lines[wd].fitted).then(|| lines[wd].slack_min - add),
            }
        })
        .collect();
    let ineff_visits: u64 = team_effects
        .iter()
        .filter(|t| t.inefficient)
        .map(|t| t.visits)
        .sum();
    let ineff_excess = team_effects
        .iter()
        .filter(|t| t.inefficient)
        .map(|t| (t.multiplier - 1.0) * t.visits as f64)
        .sum::<f64>()
        / ineff_visits.max(1) as f64;
    let logged: f64 = all_cells.iter().map(|c| c.y).sum();
    let efficient_total: f64 = all_cells
        .iter()
        .map(|c| full.beta.dot(&c.xs) * scale + add * c.n as f64)
        .sum();
    let n = table.len() as f64;
    let var_y = sum_y2 / n - (sum_y / n).powi(2);
    let held: Vec<String> = (0..cells.units)
        .filter(|&u| pins.iter().any(|p| p.cell == cells.weekday(u)))
        .filter_map(|u| units.get(u).cloned())
        .collect();
    let mut frontier = adjust_teams.then(|| {
        frontier_report(
            &settings.efficiency,
            &cells,
            units,
            &choice,
            &evidence,
            reference,
            ModelTotals {
                model_minutes: efficient_total / reference,
                logged_minutes: logged,
                weeks: logged_weeks(table),
            },
        )
    });
    if let Some(fr) = frontier.as_mut().filter(|_| !held.is_empty()) {
        fr.reason.push_str(&format!(
            "; {} alone in their slots: held at this level (their pace cannot be told from \
             those slots' own time), so their visits count as they perform them",
            held.join(", ")
        ));
    }
    let report = FitReport {
        visits: table.len() as u64,
        recipients: per_recipient.len(),
        features: if with_pairs {
            space.len()
        } else {
            space.layout().context_pairs
        },
        fitted_features: p - if with_pairs { 0 } else { pair_columns.len() },
        pairs: space.pairs.len(),
        lambda,
        cv,
        teams: team_effects,
        share_visits_inefficient: ineff_visits as f64 / n,
        mean_excess_inefficient: ineff_excess,
        logged_over_efficient: logged / efficient_total,
        oof_visit_mae_min: abs_err / n,
        oof_visit_r2: 1.0 - (sq_err / n) / var_y,
        heldout_visit_interval_coverage: heldout_visit_coverage,
        heldout_week_interval_coverage: heldout_week_coverage,
        oof_planned_week_mape: planned_week_mape,
        planned_week_recipients: planned_ape.len(),
        visit_interval,
        weekly_interval,
        calibration_recipients,
        frontier,
        unlogged_codes: unlogged
            .iter()
            .map(|&t| catalog.insatser[t].code.clone())
            .collect(),
        context_pairs: context_pairs_cv,
        short_visits_set_aside: short_rows.len() as u64,
    };
    let (mut space, mut coef) = (space, coef);
    if !with_pairs && !space.context_pairs.is_empty() {
        // Cross-validation left them out: their columns (the last ones) go, so that the
        // model neither computes nor shows coefficients it holds at zero.
        coef.truncate(space.layout().context_pairs);
        space.context_pairs.clear();
    }
    Ok((
        VisitModel {
            space,
            coef,
            visit_interval,
            weekly_interval,
        },
        report,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{FitParams, ParamGuard};
    use crate::progress::NoProgress;
    use crate::slot::Slot;

    fn catalog() -> Catalog {
        Catalog::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/nordstad/1/catalog.toml"),
        )
        .unwrap()
    }

    const PACES: [f64; 8] = [1.0, 1.06, 1.1, 1.2, 1.3, 1.15, 1.25, 1.4];
    const WEEKEND: f64 = 1.1;
    const OVERHEAD: f64 = 4.0;

    /// Efficient minutes of a task: half its schablon (known, so it can be checked).
    fn base(catalog: &Catalog, t: u16) -> f64 {
        0.5 * catalog.insatser[t as usize].schablon_min
    }

    /// Visits whose efficient time is `OVERHEAD + Σ base`, performed by eight teams at
    /// known paces, slower again by `WEEKEND` on Saturdays and Sundays, with ±10 % noise.
    fn known_world(catalog: &Catalog) -> (VisitTable, Vec<String>) {
        known_world_by(catalog, base)
    }

    /// [`known_world`] with the efficient minutes of each task given by `task_min`.
    fn known_world_by(
        catalog: &Catalog,
        task_min: impl Fn(&Catalog, u16) -> f64,
    ) -> (VisitTable, Vec<String>) {
        known_world_with(catalog, task_min, &[0.0; PACES.len()], |_| None)
    }

    /// [`known_world_by`], each team adding `slack[team]` minutes to every visit beside
    /// its pace, and each recipient for whom `two_staff` names a (code, factor) having that
    /// code in every visit, with two staff, who make it take `factor` times its time.
    fn known_world_with(
        catalog: &Catalog,
        task_min: impl Fn(&Catalog, u16) -> f64,
        slack: &[f64],
        two_staff: impl Fn(u32) -> Option<(u16, f64)>,
    ) -> (VisitTable, Vec<String>) {
        let mut table = VisitTable::new(catalog.contexts.len());
        let context = vec![0.0; catalog.contexts.len()];
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15u64);
        let monday = crate::visits::time::days_from_civil(2025, 3, 3);
        let codes = catalog.insatser.len() as u64;
        for recipient in 0..800u32 {
            let unit = recipient % PACES.len() as u32;
            let two = two_staff(recipient);
            let minutes = |t: u16| match two {
                Some((c, factor)) if c == t => factor * task_min(catalog, t),
                _ => task_min(catalog, t),
            };
            for v in 0..40 {
                let day = monday + v % 56;
                let mut tasks: Vec<u16> = (0..1 + next(3)).map(|_| next(codes) as u16).collect();
                tasks.extend(two.map(|t| t.0));
                tasks.sort_unstable();
                tasks.dedup();
                let efficient = OVERHEAD + tasks.iter().map(|&t| minutes(t)).sum::<f64>();
                let weekend = if crate::frontier::is_weekend(day) {
                    WEEKEND
                } else {
                    1.0
                };
                let noise = 0.9 + 0.2 * next(10_001) as f64 / 10_000.0;
                table.push(
                    recipient,
                    unit,
                    day,
                    Slot::Morning,
                    if two.is_some() { 2 } else { 1 },
                    efficient * PACES[unit as usize] * weekend * noise + slack[unit as usize],
                    &tasks,
                    &context,
                );
            }
        }
        let units = (0..PACES.len()).map(|u| format!("T{u}")).collect();
        (table, units)
    }

    #[test]
    fn recovers_known_times_paces_and_weekend_factor_at_the_frontier() {
        let catalog = catalog();
        let (table, units) = known_world(&catalog);
        let params = FitParams::new().folds(3).threads(1).check().unwrap();
        let (model, report) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();

        // The efficient level is the fastest team's (1.0), not the median team's.
        let fr = report.frontier.as_ref().unwrap();
        assert_eq!(fr.members, vec!["T0".to_string()], "{fr:?}");
        for (t, team) in report.teams.iter().enumerate() {
            assert!(
                (team.multiplier - PACES[t]).abs() < 0.02,
                "{}: pace {} ≠ {}",
                team.unit_id,
                team.multiplier,
                PACES[t]
            );
            let w = team.weekend_factor.unwrap();
            assert!((w - WEEKEND).abs() < 0.02, "{}: weekend {w}", team.unit_id);
            assert!(team.multiplier_interval[0] < team.multiplier);
            assert!(team.multiplier_interval[1] > team.multiplier);
        }
        assert!((fr.weekend_factor - WEEKEND).abs() < 0.02);

        // A visit's efficient minutes: the known time of its tasks, to 3 %.
        let mut z = Vec::new();
        let mut x = Vec::new();
        let context = vec![0.0; catalog.contexts.len()];
        model.space.encode_context(&context, &mut z);
        for t in [0u16, 3, 12, 21] {
            model.space.encode(&[t], Slot::Morning, 1, &z, &mut x);
            let got = model.predict_encoded(&x);
            let want = OVERHEAD + base(&catalog, t);
            assert!(
                (got / want - 1.0).abs() < 0.03,
                "{}: {got} ≠ {want}",
                catalog.insatser[t as usize].code
            );
        }

        // What-if: the plain mean costs what the paces say (about 1.2× with weekends).
        let mean = fr.what_if.iter().find(|w| w.definition == "mean").unwrap();
        let weekday_mean = PACES.iter().sum::<f64>() / PACES.len() as f64;
        let expected = weekday_mean * (5.0 + 2.0 * WEEKEND) / 7.0;
        assert!(
            (mean.relative / expected - 1.0).abs() < 0.03,
            "{} ≠ {expected}",
            mean.relative
        );
    }

    /// A visit's efficient minutes for each code alone, against the known ones: the worst
    /// relative error and the total's.
    fn single_task_errors(model: &VisitModel, catalog: &Catalog) -> (f64, f64) {
        let (mut z, mut x) = (Vec::new(), Vec::new());
        model
            .space
            .encode_context(&vec![0.0; catalog.contexts.len()], &mut z);
        let (mut worst, mut got_sum, mut want_sum) = (0.0f64, 0.0, 0.0);
        for t in 0..catalog.insatser.len() as u16 {
            model.space.encode(&[t], Slot::Morning, 1, &z, &mut x);
            let got = model.predict_encoded(&x);
            let want = OVERHEAD + base(catalog, t);
            worst = worst.max((got / want - 1.0).abs());
            got_sum += got;
            want_sum += want;
        }
        (worst, got_sum / want_sum - 1.0)
    }

    #[test]
    fn teams_that_add_minutes_to_every_visit_are_told_apart_from_their_pace() {
        // Three of the slower teams add 5 minutes to every visit beside their pace (the
        // walk from a far car park); the frontier team T0 and the next one add none. With
        // the pace alone, those teams' short visits look slow and their long ones fast,
        // which pulls the overhead up and the tasks' minutes down for everyone.
        let catalog = catalog();
        let slack = [0.0, 0.0, 0.0, 5.0, 0.0, 5.0, 0.0, 5.0];
        let (table, units) = known_world_with(&catalog, base, &slack, |_| None);
        let params = FitParams::new().folds(3).threads(1).check().unwrap();
        let (model, report) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
        let (worst, total) = single_task_errors(&model, &catalog);
        assert!(
            worst < 0.03 && total.abs() < 0.01,
            "worst {worst}, total {total}"
        );
        let fr = report.frontier.as_ref().unwrap();
        assert_eq!(fr.members, vec!["T0".to_string()], "{fr:?}");
        // Each team's minutes per visit beside its pace, against the frontier's, to a
        // minute.
        for (t, team) in report.teams.iter().enumerate() {
            let got = team.slack_min.unwrap();
            assert!(
                (got - slack[t]).abs() < 1.0,
                "{}: slack {got}",
                team.unit_id
            );
        }

        // The same log with the pace alone misses by more (the check above can fail).
        let params = FitParams::new()
            .folds(3)
            .threads(1)
            .team_slack(false)
            .check()
            .unwrap();
        let (model, _) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
        let (worst_pace_only, _) = single_task_errors(&model, &catalog);
        assert!(
            worst_pace_only > 2.0 * worst,
            "{worst_pace_only} against {worst}"
        );
    }

    #[test]
    fn a_night_patrol_alone_in_its_slot_is_taken_as_it_performs() {
        // Four day teams (paces 1.0–1.3) in the morning with personal-care codes; a night
        // patrol at the best team's pace performs every night visit, with codes no day
        // visit has. Its pace and the night codes' minutes solve the same equation.
        let catalog = catalog();
        let code = |c: &str| catalog.insatser.iter().position(|i| i.code == c).unwrap() as u16;
        let night_codes = [code("NIGHT_CHECK"), code("TILLSYN"), code("INCONTINENCE")];
        let day_codes: Vec<u16> = ["MORNING_CARE", "DRESSING", "TOILET", "SHOWER", "MEDICATION"]
            .iter()
            .map(|c| code(c))
            .collect();
        let night_min = |t: u16| 0.3 * catalog.insatser[t as usize].schablon_min;
        let paces = [1.0, 1.1, 1.2, 1.3];
        let mut table = VisitTable::new(catalog.contexts.len());
        let context = vec![0.0; catalog.contexts.len()];
        let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1du64);
        let monday = crate::visits::time::days_from_civil(2025, 3, 3);
        for recipient in 0..400u32 {
            let unit = recipient % 4;
            for v in 0..40 {
                let day = monday + v % 20;
                let noise = |n: &mut dyn FnMut(u64) -> u64| 0.9 + 0.2 * n(10_001) as f64 / 1e4;
                let mut tasks: Vec<u16> = (0..1 + next(3))
                    .map(|_| day_codes[next(day_codes.len() as u64) as usize])
                    .collect();
                tasks.sort_unstable();
                tasks.dedup();
                let efficient = OVERHEAD + tasks.iter().map(|&t| base(&catalog, t)).sum::<f64>();
                let d = efficient * paces[unit as usize] * noise(&mut next);
                table.push(recipient, unit, day, Slot::Morning, 1, d, &tasks, &context);
                if recipient % 2 == 0 && v % 2 == 0 {
                    let mut tasks: Vec<u16> = (0..1 + next(2))
                        .map(|_| night_codes[next(3) as usize])
                        .collect();
                    tasks.sort_unstable();
                    tasks.dedup();
                    let efficient = 3.0 + tasks.iter().map(|&t| night_min(t)).sum::<f64>();
                    let d = efficient * noise(&mut next);
                    table.push(recipient, 4, day, Slot::Night, 1, d, &tasks, &context);
                }
            }
        }
        let units: Vec<String> = ["T0", "T1", "T2", "T3", "NATT"].map(String::from).into();
        let night_error = |at_frontier: bool| {
            let params = FitParams::new()
                .folds(3)
                .threads(1)
                .lone_units_at_frontier(at_frontier)
                .check()
                .unwrap();
            let (model, report) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
            let fr = report.frontier.as_ref().unwrap();
            assert_eq!(fr.members, vec!["T0"]);
            assert_eq!(
                fr.reason.contains("NATT alone in their slots"),
                at_frontier,
                "{}",
                fr.reason
            );
            let natt = &report.teams[4];
            assert_eq!(natt.role, Some(Role::NotComparable));
            let (mut z, mut x) = (Vec::new(), Vec::new());
            model.space.encode_context(&context, &mut z);
            // Each night code's visit alone, and their total, against the known minutes.
            let (mut worst, mut got, mut want) = (0.0f64, 0.0, 0.0);
            for &t in &night_codes {
                model.space.encode(&[t], Slot::Night, 1, &z, &mut x);
                let (g, w) = (model.predict_encoded(&x), 3.0 + night_min(t));
                worst = worst.max((g / w - 1.0).abs());
                got += g;
                want += w;
            }
            (worst, got / want - 1.0, natt.multiplier)
        };
        let (worst, total, pace) = night_error(true);
        assert!(
            worst < 0.06 && total.abs() < 0.03,
            "night visits off by {worst} at worst, {total} in total"
        );
        assert!((pace - 1.0).abs() < 0.01, "the patrol's pace {pace}");
        // Left free, the split is the penalty's and the start's: the check above can fail.
        let (_, total_free, pace_free) = night_error(false);
        assert!(
            total_free.abs() > 2.0 * total.abs().max(0.01),
            "free: night visits off by {total_free} in total (pace {pace_free}), held: {total}"
        );
    }

    #[test]
    fn two_staff_change_the_time_of_the_tasks_that_need_them_only() {
        // A quarter of the recipients need TRANSFER with two staff (then 40 % quicker), a
        // quarter SHOWER with two (then 40 % slower); their other tasks take what they
        // take with one. One column for the visit's second staff member cannot say both.
        let catalog = catalog();
        let code = |c: &str| catalog.insatser.iter().position(|i| i.code == c).unwrap() as u16;
        let (transfer, shower) = (code("TRANSFER"), code("SHOWER"));
        // Not by team: the teams' paces must not stand in for the second staff member.
        let (table, units) =
            known_world_with(&catalog, base, &[0.0; PACES.len()], |r| match (r / 8) % 4 {
                1 => Some((transfer, 0.6)),
                2 => Some((shower, 1.4)),
                _ => None,
            });
        let context = vec![0.0; catalog.contexts.len()];
        let dressing = code("DRESSING");
        let worst = |staff2_tasks: bool| {
            let params = FitParams::new()
                .folds(3)
                .threads(1)
                .staff2_tasks(staff2_tasks)
                .check()
                .unwrap();
            let (model, _) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
            let (mut z, mut x) = (Vec::new(), Vec::new());
            model.space.encode_context(&context, &mut z);
            let mut worst = 0.0f64;
            // A two-staff visit of the task that needs two and DRESSING: the second staff
            // member changes the first only, and DRESSING's own column has learned that.
            for (task, factor) in [(transfer, 0.6), (shower, 1.4)] {
                let mut tasks = vec![task, dressing];
                tasks.sort_unstable();
                model.space.encode(&tasks, Slot::Morning, 2, &z, &mut x);
                let got = model.predict_encoded(&x);
                let want = OVERHEAD + factor * base(&catalog, task) + base(&catalog, dressing);
                worst = worst.max((got / want - 1.0).abs());
            }
            worst
        };
        let with = worst(true);
        assert!(with < 0.03, "worst {with}");
        // With the visit's column alone (the check above can fail).
        let without = worst(false);
        assert!(without > 2.0 * with, "{without} against {with}");
    }

    #[test]
    fn early_check_outs_are_set_aside_and_do_not_pull_the_level_down() {
        // The known world, with every 16th visit checked out at half its time (6 % of the
        // visits: about 3 % of the minutes). Those visits look plausible alone (minutes,
        // not seconds), but not against the fit.
        let catalog = catalog();
        let (clean, units) = known_world(&catalog);
        let mut table = VisitTable::new(catalog.contexts.len());
        let mut injected = 0u64;
        for (i, row) in clean.iter().enumerate() {
            let early = i % 16 == 7;
            injected += u64::from(early);
            let context: Vec<f64> = row.context.iter().map(|&c| f64::from(c)).collect();
            table.push(
                row.recipient,
                row.unit,
                row.day,
                row.slot,
                row.staff,
                row.duration * if early { 0.5 } else { 1.0 },
                row.tasks,
                &context,
            );
        }
        let params = FitParams::new().folds(3).threads(1).check().unwrap();
        let (model, report) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
        let set_aside = report.short_visits_set_aside;
        assert!(
            set_aside as f64 > 0.9 * injected as f64 && (set_aside as f64) < 1.1 * injected as f64,
            "{set_aside} set aside, {injected} early"
        );
        // The level: a visit's efficient minutes against the known ones, over every code,
        // to 1 % (taking the early check-outs as visits would put it about 3 % low).
        let (mut z, mut x) = (Vec::new(), Vec::new());
        model
            .space
            .encode_context(&vec![0.0; catalog.contexts.len()], &mut z);
        let (mut got, mut want) = (0.0, 0.0);
        for t in 0..catalog.insatser.len() as u16 {
            model.space.encode(&[t], Slot::Morning, 1, &z, &mut x);
            got += model.predict_encoded(&x);
            want += OVERHEAD + base(&catalog, t);
        }
        assert!((got / want - 1.0).abs() < 0.01, "{got} against {want}");
    }

    #[test]
    fn a_pair_of_conditions_acting_together_is_learned_and_one_that_does_not_is_left_out() {
        // Each recipient lives alone or not and has cognition 0-3. Living alone with
        // cognition >= 2 adds 6 minutes to every visit beyond what each adds alone (nothing
        // here); with `effect` 0 the log holds no pair at all.
        let catalog = catalog();
        let alone = catalog.context_index("lives_alone").unwrap();
        let cognition = catalog.context_index("cognition").unwrap();
        let world = |effect: f64| {
            let mut table = VisitTable::new(catalog.contexts.len());
            let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1du64);
            let monday = crate::visits::time::days_from_civil(2025, 3, 3);
            for recipient in 0..600u32 {
                let mut context = vec![0.0f64; catalog.contexts.len()];
                context[alone] = next(2) as f64;
                context[cognition] = next(4) as f64;
                let both = context[alone] == 1.0 && context[cognition] >= 2.0;
                let person = 0.9 + 0.2 * next(1001) as f64 / 1000.0;
                for v in 0..40 {
                    let t = next(4) as u16;
                    let efficient = OVERHEAD + base(&catalog, t) + if both { effect } else { 0.0 };
                    let noise = 0.9 + 0.2 * next(10_001) as f64 / 10_000.0;
                    table.push(
                        recipient,
                        0,
                        monday + v % 28,
                        Slot::Morning,
                        1,
                        efficient * person * noise,
                        &[t],
                        &context,
                    );
                }
            }
            table
        };
        let units = vec!["T0".to_string()];
        let params = FitParams::new().folds(3).threads(1).check().unwrap();

        let (model, report) = fit(&world(6.0), &units, &catalog, &params, &NoProgress).unwrap();
        let cv = report
            .context_pairs
            .as_ref()
            .expect("pairs were candidates");
        assert!(cv.kept, "{cv:?}");
        // The interaction contrast (both, less each alone, plus neither) is the pair's own
        // minutes however the penalty splits them between the pair's and the conditions'
        // columns; the person's factor (0.9-1.1) averages out over 600 recipients.
        let predict = |lives_alone: f64, cog: f64| {
            let mut raw = vec![0.0; catalog.contexts.len()];
            raw[alone] = lives_alone;
            raw[cognition] = cog;
            let (mut z, mut x) = (Vec::new(), Vec::new());
            model.space.encode_context(&raw, &mut z);
            model.space.encode(&[1], Slot::Morning, 1, &z, &mut x);
            model.predict_encoded(&x)
        };
        let contrast = |cog: f64| {
            predict(1.0, cog) - predict(1.0, 0.0) - predict(0.0, cog) + predict(0.0, 0.0)
        };
        assert!(
            (contrast(2.0) - 6.0).abs() < 1.2,
            "cognition 2: {}",
            contrast(2.0)
        );
        assert!(
            (contrast(3.0) - 6.0).abs() < 1.2,
            "cognition 3: {}",
            contrast(3.0)
        );
        assert!(contrast(1.0).abs() < 1.2, "cognition 1: {}", contrast(1.0));

        let (model, report) = fit(&world(0.0), &units, &catalog, &params, &NoProgress).unwrap();
        let cv = report
            .context_pairs
            .as_ref()
            .expect("pairs were candidates");
        assert!(!cv.kept, "{cv:?}");
        assert!(model.space.context_pairs.is_empty());
        assert_eq!(model.coef.len(), model.space.len());
    }

    #[test]
    fn a_code_the_log_never_shows_is_priced_from_its_category_and_named() {
        let catalog = catalog();
        // Personal care takes 0.8 of its schablon, everything else 0.3: a code's category
        // tells its time, a global share of the schablon does not.
        let share = |c: &Catalog, t: u16| match c.insatser[t as usize].category {
            crate::catalog::Category::PersonalCare => 0.8,
            _ => 0.3,
        };
        let (full, units) = known_world_by(&catalog, |c, t| {
            share(c, t) * c.insatser[t as usize].schablon_min
        });
        // That world without any visit of the first personal-care code.
        let gone = catalog
            .insatser
            .iter()
            .position(|i| i.category == crate::catalog::Category::PersonalCare)
            .unwrap() as u16;
        let mut table = VisitTable::new(catalog.contexts.len());
        for r in full.iter().filter(|r| !r.tasks.contains(&gone)) {
            let context: Vec<f64> = r.context.iter().map(|&c| f64::from(c)).collect();
            table.push(
                r.recipient,
                r.unit,
                r.day,
                r.slot,
                r.staff,
                r.duration,
                r.tasks,
                &context,
            );
        }
        let params = FitParams::new().folds(3).threads(1).check().unwrap();
        let (model, report) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
        assert_eq!(
            report.unlogged_codes,
            vec![catalog.insatser[gone as usize].code.clone()]
        );
        // The unlogged code's visit: the overhead and 0.8 of its schablon, to 3 % (its
        // ridge prior alone, a global share of the schablon, is far from that).
        let mut z = Vec::new();
        let mut x = Vec::new();
        let context = vec![0.0; catalog.contexts.len()];
        model.space.encode_context(&context, &mut z);
        model.space.encode(&[gone], Slot::Morning, 1, &z, &mut x);
        let got = model.predict_encoded(&x);
        let want = OVERHEAD + 0.8 * catalog.insatser[gone as usize].schablon_min;
        assert!((got / want - 1.0).abs() < 0.03, "{got} ≠ {want}");
    }

    #[test]
    fn the_team_reference_method_still_takes_the_fastest_share_of_visits() {
        let catalog = catalog();
        let (table, units) = known_world(&catalog);
        let params = FitParams::new()
            .folds(3)
            .threads(1)
            .reference_quantile(0.5)
            .check()
            .unwrap();
        let (_, report) = fit(&table, &units, &catalog, &params, &NoProgress).unwrap();
        // Against the fastest half of the visits, the fastest team is below 1.
        let t0 = &report.teams[0];
        assert!(t0.multiplier < 0.95, "{}", t0.multiplier);
        assert_eq!(report.frontier.as_ref().unwrap().method, "team_reference");
    }
}
