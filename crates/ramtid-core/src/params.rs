//! Fit and training settings as checked parameters, in linfa's style: a [`FitParams`] is
//! built with setters, [`ParamGuard::check`] applies every rule in one place and gives a
//! [`CheckedFitParams`], and only checked parameters reach [`crate::train::train`] and
//! [`crate::fit::fit`]. The command line, the service's `TrainModel` and the service
//! configuration all go through the same check, before a visit log is opened, so a bad
//! setting fails at once and names the setting:
//!
//! ```
//! use ramtid_core::params::{FitParams, ParamGuard};
//!
//! let e = FitParams::new().reference_quantile(1.5).check().unwrap_err();
//! assert_eq!(e.to_string(), "reference_quantile: 1.5 is outside 0 < q <= 1");
//! assert_eq!(e.param, "reference_quantile");
//!
//! let checked = FitParams::new().folds(3).seed(7).check()?;
//! assert_eq!(checked.settings().folds, 3);
//! # Ok::<(), ramtid_core::params::ParamError>(())
//! ```
//!
//! The parameters also (de)serialize as one flat table, which is the `[training]` section
//! of the service configuration; deserializing a [`CheckedFitParams`] runs the check.

use crate::fit::{Efficiency, FitSettings};
use crate::visits::CleaningRules;
use serde::{Deserialize, Serialize};

pub use linfa::ParamGuard;

/// Most cross-validation folds: each costs a solve per penalty, and more than 20 folds adds
/// nothing to the choice of λ.
pub const MAX_FOLDS: usize = 20;
/// Most ridge penalties tried: each costs one solve per fold.
pub const MAX_LAMBDAS: usize = 32;
/// Most team iterations of the alternating fit (it converges in tens).
pub const MAX_TEAM_ITERATIONS: usize = 1000;
/// Most fitting threads.
pub const MAX_THREADS: usize = 256;
/// Longest visit a cleaning rule may allow: a day.
pub const MAX_VISIT_MIN: f64 = 24.0 * 60.0;

/// A setting that breaks a rule: which one and why. `param` is the setting's name as the
/// configuration's `[training]` table and `TrainModel`'s `settings` spell it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct ParamError {
    pub param: &'static str,
    pub message: String,
}

impl ParamError {
    fn new(param: &'static str, message: impl Into<String>) -> ParamError {
        ParamError {
            param,
            message: message.into(),
        }
    }
}

impl From<ParamError> for linfa::Error {
    fn from(e: ParamError) -> linfa::Error {
        linfa::Error::Parameters(e.to_string())
    }
}

/// Settings that have passed [`ParamGuard::check`]: the only way to obtain one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Flat", try_from = "Flat")]
pub struct CheckedFitParams {
    settings: FitSettings,
    cleaning: CleaningRules,
}

impl CheckedFitParams {
    /// The fit's settings.
    pub fn settings(&self) -> &FitSettings {
        &self.settings
    }

    /// The visit log's cleaning rules.
    pub fn cleaning(&self) -> &CleaningRules {
        &self.cleaning
    }

    /// Back to unchecked parameters, to change a setting (and check again).
    pub fn unchecked(self) -> FitParams {
        FitParams(self)
    }
}

/// Unchecked fit and training settings, built with setters from the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "Flat", from = "Flat")]
pub struct FitParams(pub(crate) CheckedFitParams);

impl Default for FitParams {
    fn default() -> Self {
        FitParams::from_parts(FitSettings::default(), CleaningRules::default())
    }
}

impl FitParams {
    /// The defaults.
    pub fn new() -> FitParams {
        FitParams::default()
    }

    /// Settings given whole, e.g. a model manifest's; they are checked like any others.
    pub fn from_parts(settings: FitSettings, cleaning: CleaningRules) -> FitParams {
        FitParams(CheckedFitParams { settings, cleaning })
    }

    /// The settings as they are, checked or not.
    pub fn settings(&self) -> &FitSettings {
        &self.0.settings
    }

    /// The cleaning rules as they are, checked or not.
    pub fn cleaning(&self) -> &CleaningRules {
        &self.0.cleaning
    }

    /// How efficient time is defined.
    pub fn efficiency(mut self, efficiency: Efficiency) -> Self {
        self.0.settings.efficiency = efficiency;
        self
    }

    /// No team adjustment: the mean of all cleaned logged time.
    pub fn pooled(self) -> Self {
        self.efficiency(Efficiency::Pooled)
    }

    /// The fastest teams that together performed this share of the visits set the efficient
    /// level (`0 < q <= 1`). Switches to the team-reference method.
    pub fn reference_quantile(mut self, q: f64) -> Self {
        let tolerance = self.team_reference().1;
        self.0.settings.efficiency = Efficiency::TeamReference {
            quantile: q,
            tolerance,
        };
        self
    }

    /// Teams slower than the reference by more than this share are reported (`>= 0`).
    /// Keeps the frontier or team-reference method in force (from pooled: the frontier).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.0.settings.efficiency = match self.0.settings.efficiency {
            Efficiency::TeamReference { quantile, .. } => Efficiency::TeamReference {
                quantile,
                tolerance,
            },
            _ => Efficiency::Frontier {
                tolerance,
                implausible_gap: self.implausible_gap_in_force(),
            },
        };
        self
    }

    /// Best practice as the efficient level ([`crate::frontier`], the default).
    pub fn frontier(mut self) -> Self {
        self.0.settings.efficiency = Efficiency::Frontier {
            tolerance: self.team_reference().1,
            implausible_gap: self.implausible_gap_in_force(),
        };
        self
    }

    /// The least lead over the next team (`0 < gap <= 1`) at which the fastest team is
    /// implausibly fast (weighed out of the level from 0.75 to 1.5 times the threshold,
    /// [`crate::frontier::set_aside_weight`]). Switches to the frontier method.
    pub fn implausible_gap(mut self, gap: f64) -> Self {
        self.0.settings.efficiency = Efficiency::Frontier {
            tolerance: self.team_reference().1,
            implausible_gap: gap,
        };
        self
    }

    /// Weekend visits get a pace of their own per team (the default), and the efficient
    /// level is that of weekdays.
    pub fn weekend_apart(mut self, apart: bool) -> Self {
        self.0.settings.weekend_apart = apart;
        self
    }

    /// Each team gets minutes per visit of its own beside its pace (the default, with the
    /// frontier); off, the pace alone.
    pub fn team_slack(mut self, slack: bool) -> Self {
        self.0.settings.team_slack = slack;
        self
    }

    /// Each code gets minutes of its own for a second staff member (the default); off, the
    /// visit's staff column alone.
    pub fn staff2_tasks(mut self, per_task: bool) -> Self {
        self.0.settings.staff2_tasks = per_task;
        self
    }

    /// A unit alone in its slots (a night patrol) is taken at the frontier's pace (the
    /// default); off, its pace is fitted like any team's.
    pub fn lone_units_at_frontier(mut self, at_frontier: bool) -> Self {
        self.0.settings.lone_units_at_frontier = at_frontier;
        self
    }

    fn implausible_gap_in_force(&self) -> f64 {
        match self.0.settings.efficiency {
            Efficiency::Frontier {
                implausible_gap, ..
            } => implausible_gap,
            _ => DEFAULT_IMPLAUSIBLE_GAP,
        }
    }

    /// The team-reference quantile and the tolerance in force, or the defaults.
    fn team_reference(&self) -> (f64, f64) {
        match self.0.settings.efficiency {
            Efficiency::TeamReference {
                quantile,
                tolerance,
            } => (quantile, tolerance),
            Efficiency::Frontier { tolerance, .. } => (DEFAULT_QUANTILE, tolerance),
            Efficiency::Pooled => (DEFAULT_QUANTILE, DEFAULT_TOLERANCE),
        }
    }

    /// Cross-validation folds, grouped by recipient (2 to [`MAX_FOLDS`]).
    pub fn folds(mut self, folds: usize) -> Self {
        self.0.settings.folds = folds;
        self
    }

    /// Ridge penalties tried, in pseudo-visits (1 to [`MAX_LAMBDAS`] values, each > 0).
    pub fn lambdas(mut self, lambdas: Vec<f64>) -> Self {
        self.0.settings.lambdas = lambdas;
        self
    }

    /// A task pair gets its own coefficient when seen together in at least this many visits.
    pub fn min_pair_visits(mut self, n: u64) -> Self {
        self.0.settings.min_pair_visits = n;
        self
    }

    /// Teams with fewer visits keep the reference level.
    pub fn min_team_visits(mut self, n: u64) -> Self {
        self.0.settings.min_team_visits = n;
        self
    }

    /// Most rounds of the alternating team/coefficient fit.
    pub fn team_iterations(mut self, n: usize) -> Self {
        self.0.settings.team_iterations = n;
        self
    }

    /// Prediction interval quantiles `[low, high]`, `0 < low < high < 1`.
    pub fn interval(mut self, interval: [f64; 2]) -> Self {
        self.0.settings.interval = interval;
        self
    }

    /// Recipients with fewer visits do not enter the weekly interval calibration.
    pub fn min_recipient_visits(mut self, n: u64) -> Self {
        self.0.settings.min_recipient_visits = n;
        self
    }

    /// Seed of the recipients' fold assignment (any value).
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.settings.seed = seed;
        self
    }

    /// Threads for the pass over the visits (1 to [`MAX_THREADS`]).
    pub fn threads(mut self, threads: usize) -> Self {
        self.0.settings.threads = threads;
        self
    }

    /// Shorter visits are check-in errors (minutes, `>= 0`).
    pub fn min_visit_min(mut self, minutes: f64) -> Self {
        self.0.cleaning.min_duration_min = minutes;
        self
    }

    /// Longer visits are forgotten check-outs unless their schablon says otherwise
    /// (minutes, above `min_visit_min`, at most a day).
    pub fn max_visit_min(mut self, minutes: f64) -> Self {
        self.0.cleaning.max_duration_min = minutes;
        self
    }

    /// A visit longer than `max_visit_min` is still trusted when shorter than its tasks'
    /// schablon sum times this (`>= 0`).
    pub fn long_schablon_multiple(mut self, multiple: f64) -> Self {
        self.0.cleaning.long_schablon_multiple = multiple;
        self
    }
}

const DEFAULT_QUANTILE: f64 = 0.5;
const DEFAULT_TOLERANCE: f64 = 0.10;
const DEFAULT_IMPLAUSIBLE_GAP: f64 = 0.06;

/// Every rule on the fit and training settings.
pub(crate) fn validate(p: &CheckedFitParams) -> Result<(), ParamError> {
    let s = &p.settings;
    if let Efficiency::Frontier {
        tolerance,
        implausible_gap,
    } = s.efficiency
    {
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(ParamError::new(
                "tolerance",
                format!("{tolerance} is not a share >= 0"),
            ));
        }
        if !(implausible_gap > 0.0 && implausible_gap <= 1.0) {
            return Err(ParamError::new(
                "implausible_gap",
                format!("{implausible_gap} is outside 0 < gap <= 1"),
            ));
        }
    }
    if let Efficiency::TeamReference {
        quantile,
        tolerance,
    } = s.efficiency
    {
        // NaN fails both comparisons, so it is refused too.
        if !(quantile > 0.0 && quantile <= 1.0) {
            return Err(ParamError::new(
                "reference_quantile",
                format!("{quantile} is outside 0 < q <= 1"),
            ));
        }
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(ParamError::new(
                "tolerance",
                format!("{tolerance} is not a share >= 0"),
            ));
        }
    }
    if !(2..=MAX_FOLDS).contains(&s.folds) {
        return Err(ParamError::new(
            "folds",
            format!("{} folds; expected 2 to {MAX_FOLDS}", s.folds),
        ));
    }
    if s.lambdas.is_empty() || s.lambdas.len() > MAX_LAMBDAS {
        return Err(ParamError::new(
            "lambdas",
            format!("{} penalties; expected 1 to {MAX_LAMBDAS}", s.lambdas.len()),
        ));
    }
    if let Some(l) = s.lambdas.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
        return Err(ParamError::new(
            "lambdas",
            format!("{l} is not a penalty > 0"),
        ));
    }
    for (param, n) in [
        ("min_pair_visits", s.min_pair_visits),
        ("min_team_visits", s.min_team_visits),
        ("min_recipient_visits", s.min_recipient_visits),
    ] {
        if n == 0 {
            return Err(ParamError::new(param, "0 visits; expected at least 1"));
        }
    }
    if !(1..=MAX_TEAM_ITERATIONS).contains(&s.team_iterations) {
        return Err(ParamError::new(
            "team_iterations",
            format!(
                "{} iterations; expected 1 to {MAX_TEAM_ITERATIONS}",
                s.team_iterations
            ),
        ));
    }
    let [lo, hi] = s.interval;
    if !(lo > 0.0 && lo < hi && hi < 1.0) {
        return Err(ParamError::new(
            "interval",
            format!("[{lo}, {hi}] is outside 0 < low < high < 1"),
        ));
    }
    if !(1..=MAX_THREADS).contains(&s.threads) {
        return Err(ParamError::new(
            "threads",
            format!("{} threads; expected 1 to {MAX_THREADS}", s.threads),
        ));
    }
    let c = &p.cleaning;
    if !(c.min_duration_min.is_finite() && c.min_duration_min >= 0.0) {
        return Err(ParamError::new(
            "min_visit_min",
            format!("{} is not a number of minutes >= 0", c.min_duration_min),
        ));
    }
    if !(c.max_duration_min > c.min_duration_min && c.max_duration_min <= MAX_VISIT_MIN) {
        return Err(ParamError::new(
            "max_visit_min",
            format!(
                "{} is outside min_visit_min ({}) < max <= {MAX_VISIT_MIN}",
                c.max_duration_min, c.min_duration_min
            ),
        ));
    }
    if !(c.long_schablon_multiple.is_finite() && c.long_schablon_multiple >= 0.0) {
        return Err(ParamError::new(
            "long_schablon_multiple",
            format!("{} is not a multiple >= 0", c.long_schablon_multiple),
        ));
    }
    Ok(())
}

impl ParamGuard for FitParams {
    type Checked = CheckedFitParams;
    type Error = ParamError;

    fn check_ref(&self) -> Result<&CheckedFitParams, ParamError> {
        validate(&self.0)?;
        Ok(&self.0)
    }

    fn check(self) -> Result<CheckedFitParams, ParamError> {
        validate(&self.0)?;
        Ok(self.0)
    }
}

/// The efficiency method's name in the flat form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Frontier,
    TeamReference,
    Pooled,
}

impl std::str::FromStr for Method {
    type Err = ParamError;
    fn from_str(s: &str) -> Result<Method, ParamError> {
        match s {
            "frontier" => Ok(Method::Frontier),
            "team_reference" | "team-reference" => Ok(Method::TeamReference),
            "pooled" => Ok(Method::Pooled),
            other => Err(ParamError::new(
                "efficiency",
                format!("'{other}' is not a method; expected frontier, team_reference or pooled"),
            )),
        }
    }
}

/// The flat table of settings (configuration `[training]`, JSON): one key per setting,
/// the names [`ParamError::param`] uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Flat {
    efficiency: Method,
    reference_quantile: f64,
    tolerance: f64,
    implausible_gap: f64,
    weekend_apart: bool,
    team_slack: bool,
    staff2_tasks: bool,
    lone_units_at_frontier: bool,
    folds: usize,
    lambdas: Vec<f64>,
    min_pair_visits: u64,
    min_team_visits: u64,
    team_iterations: usize,
    interval: [f64; 2],
    min_recipient_visits: u64,
    seed: u64,
    threads: usize,
    min_visit_min: f64,
    max_visit_min: f64,
    long_schablon_multiple: f64,
}

impl Default for Flat {
    fn default() -> Self {
        FitParams::default().into()
    }
}

impl From<FitParams> for Flat {
    fn from(p: FitParams) -> Flat {
        let (reference_quantile, tolerance) = p.team_reference();
        let implausible_gap = p.implausible_gap_in_force();
        let CheckedFitParams { settings, cleaning } = p.0;
        Flat {
            efficiency: match settings.efficiency {
                Efficiency::Frontier { .. } => Method::Frontier,
                Efficiency::TeamReference { .. } => Method::TeamReference,
                Efficiency::Pooled => Method::Pooled,
            },
            reference_quantile,
            tolerance,
            implausible_gap,
            weekend_apart: settings.weekend_apart,
            team_slack: settings.team_slack,
            staff2_tasks: settings.staff2_tasks,
            lone_units_at_frontier: settings.lone_units_at_frontier,
            folds: settings.folds,
            lambdas: settings.lambdas,
            min_pair_visits: settings.min_pair_visits,
            min_team_visits: settings.min_team_visits,
            team_iterations: settings.team_iterations,
            interval: settings.interval,
            min_recipient_visits: settings.min_recipient_visits,
            seed: settings.seed,
            threads: settings.threads,
            min_visit_min: cleaning.min_duration_min,
            max_visit_min: cleaning.max_duration_min,
            long_schablon_multiple: cleaning.long_schablon_multiple,
        }
    }
}

impl From<CheckedFitParams> for Flat {
    fn from(p: CheckedFitParams) -> Flat {
        FitParams(p).into()
    }
}

impl From<Flat> for FitParams {
    fn from(f: Flat) -> FitParams {
        FitParams::from_parts(
            FitSettings {
                efficiency: match f.efficiency {
                    // A quantile other than its default chooses the team-reference method,
                    // as its setter and `--reference-quantile` do: the flat table cannot
                    // tell a default `efficiency` from one written, and a quantile that is
                    // set must be checked, not dropped (1.5 would otherwise start a server).
                    Method::Frontier
                        if f.reference_quantile.to_bits() != DEFAULT_QUANTILE.to_bits() =>
                    {
                        Efficiency::TeamReference {
                            quantile: f.reference_quantile,
                            tolerance: f.tolerance,
                        }
                    }
                    Method::Frontier => Efficiency::Frontier {
                        tolerance: f.tolerance,
                        implausible_gap: f.implausible_gap,
                    },
                    Method::TeamReference => Efficiency::TeamReference {
                        quantile: f.reference_quantile,
                        tolerance: f.tolerance,
                    },
                    Method::Pooled => Efficiency::Pooled,
                },
                folds: f.folds,
                lambdas: f.lambdas,
                min_pair_visits: f.min_pair_visits,
                min_team_visits: f.min_team_visits,
                team_iterations: f.team_iterations,
                interval: f.interval,
                min_recipient_visits: f.min_recipient_visits,
                seed: f.seed,
                threads: f.threads,
                weekend_apart: f.weekend_apart,
                team_slack: f.team_slack,
                staff2_tasks: f.staff2_tasks,
                lone_units_at_frontier: f.lone_units_at_frontier,
            },
            CleaningRules {
                min_duration_min: f.min_visit_min,
                max_duration_min: f.max_visit_min,
                long_schablon_multiple: f.long_schablon_multiple,
            },
        )
    }
}

impl TryFrom<Flat> for CheckedFitParams {
    type Error = ParamError;
    fn try_from(f: Flat) -> Result<CheckedFitParams, ParamError> {
        FitParams::from(f).check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: FitParams) -> ParamError {
        p.check().expect_err("refused")
    }

    fn accepted(p: FitParams) {
        if let Err(e) = p.check() {
            panic!("accepted, but: {e}");
        }
    }

    #[test]
    fn the_defaults_pass() {
        let c = FitParams::default().check().unwrap();
        assert_eq!(c.settings(), &FitSettings::default());
        assert_eq!(c.cleaning().max_duration_min, 180.0);
    }

    #[test]
    fn reference_quantile_is_in_the_half_open_unit_interval() {
        for q in [1.0, 1e-9, 0.5] {
            accepted(FitParams::new().reference_quantile(q));
        }
        for q in [0.0, -0.1, 1.000_001, 1.5, f64::NAN, f64::INFINITY] {
            let e = refused(FitParams::new().reference_quantile(q));
            assert_eq!(e.param, "reference_quantile");
            assert_eq!(e.message, format!("{q} is outside 0 < q <= 1"));
        }
        assert_eq!(
            refused(FitParams::new().reference_quantile(1.5)).to_string(),
            "reference_quantile: 1.5 is outside 0 < q <= 1"
        );
        // The pooled method has no reference: its quantile is not looked at.
        accepted(FitParams::new().reference_quantile(7.0).pooled());
    }

    #[test]
    fn tolerance_is_a_finite_share() {
        for t in [0.0, 0.1, 3.0] {
            accepted(FitParams::new().tolerance(t));
        }
        for t in [-1e-9, f64::NAN, f64::INFINITY] {
            assert_eq!(refused(FitParams::new().tolerance(t)).param, "tolerance");
        }
    }

    #[test]
    fn setting_one_team_reference_value_keeps_the_other() {
        let p = FitParams::new().tolerance(0.3).reference_quantile(0.8);
        assert_eq!(
            p.settings().efficiency,
            Efficiency::TeamReference {
                quantile: 0.8,
                tolerance: 0.3
            }
        );
        // From pooled, a tolerance brings back the default method, the frontier.
        let p = FitParams::new().pooled().tolerance(0.2);
        assert_eq!(
            p.settings().efficiency,
            Efficiency::Frontier {
                tolerance: 0.2,
                implausible_gap: DEFAULT_IMPLAUSIBLE_GAP
            }
        );
    }

    #[test]
    fn folds_are_two_to_twenty() {
        accepted(FitParams::new().folds(2));
        accepted(FitParams::new().folds(MAX_FOLDS));
        for k in [0, 1, MAX_FOLDS + 1] {
            let e = refused(FitParams::new().folds(k));
            assert_eq!(e.to_string(), format!("folds: {k} folds; expected 2 to 20"));
        }
    }

    #[test]
    fn lambdas_are_positive_and_not_too_many() {
        accepted(FitParams::new().lambdas(vec![1e-12]));
        accepted(FitParams::new().lambdas(vec![1.0; MAX_LAMBDAS]));
        for bad in [
            vec![],
            vec![1.0; MAX_LAMBDAS + 1],
            vec![1.0, 0.0],
            vec![-3.0],
            vec![f64::NAN],
            vec![f64::INFINITY],
        ] {
            assert_eq!(refused(FitParams::new().lambdas(bad)).param, "lambdas");
        }
    }

    #[test]
    fn visit_counts_are_at_least_one() {
        accepted(
            FitParams::new()
                .min_pair_visits(1)
                .min_team_visits(1)
                .min_recipient_visits(1),
        );
        assert_eq!(
            refused(FitParams::new().min_pair_visits(0)).param,
            "min_pair_visits"
        );
        assert_eq!(
            refused(FitParams::new().min_team_visits(0)).param,
            "min_team_visits"
        );
        assert_eq!(
            refused(FitParams::new().min_recipient_visits(0)).param,
            "min_recipient_visits"
        );
    }

    #[test]
    fn team_iterations_and_threads_are_bounded() {
        accepted(FitParams::new().team_iterations(1));
        accepted(FitParams::new().team_iterations(MAX_TEAM_ITERATIONS));
        for n in [0, MAX_TEAM_ITERATIONS + 1] {
            assert_eq!(
                refused(FitParams::new().team_iterations(n)).param,
                "team_iterations"
            );
        }
        accepted(FitParams::new().threads(1));
        accepted(FitParams::new().threads(MAX_THREADS));
        for n in [0, MAX_THREADS + 1] {
            assert_eq!(refused(FitParams::new().threads(n)).param, "threads");
        }
    }

    #[test]
    fn interval_is_ordered_inside_the_unit_interval() {
        accepted(FitParams::new().interval([0.05, 0.95]));
        accepted(FitParams::new().interval([1e-9, 1.0 - 1e-9]));
        for bad in [
            [0.0, 0.9],
            [0.1, 1.0],
            [0.5, 0.5],
            [0.9, 0.1],
            [f64::NAN, 0.9],
        ] {
            assert_eq!(refused(FitParams::new().interval(bad)).param, "interval");
        }
    }

    #[test]
    fn seed_takes_any_value() {
        for s in [0, 1, u64::MAX] {
            accepted(FitParams::new().seed(s));
        }
    }

    #[test]
    fn cleaning_rules_are_ordered_minutes() {
        accepted(FitParams::new().min_visit_min(0.0));
        accepted(FitParams::new().max_visit_min(MAX_VISIT_MIN));
        accepted(FitParams::new().min_visit_min(10.0).max_visit_min(10.5));
        accepted(FitParams::new().long_schablon_multiple(0.0));
        for m in [-0.5, f64::NAN, f64::INFINITY] {
            assert_eq!(
                refused(FitParams::new().min_visit_min(m)).param,
                "min_visit_min"
            );
        }
        for m in [2.0, 1.0, MAX_VISIT_MIN + 1.0, f64::NAN] {
            assert_eq!(
                refused(FitParams::new().max_visit_min(m)).param,
                "max_visit_min"
            );
        }
        assert_eq!(
            refused(FitParams::new().max_visit_min(2.0)).to_string(),
            "max_visit_min: 2 is outside min_visit_min (2) < max <= 1440"
        );
        for m in [-1.0, f64::NAN] {
            assert_eq!(
                refused(FitParams::new().long_schablon_multiple(m)).param,
                "long_schablon_multiple"
            );
        }
    }

    #[test]
    fn check_ref_and_check_agree() {
        let good = FitParams::new().folds(3);
        assert_eq!(good.check_ref().unwrap(), &good.clone().check().unwrap());
        let bad = FitParams::new().folds(1);
        assert_eq!(bad.check_ref().unwrap_err(), bad.check().unwrap_err());
    }

    #[test]
    fn the_flat_table_round_trips_and_deserializing_checked_params_checks() {
        let p = FitParams::new().folds(4).pooled().min_visit_min(1.0);
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("\"efficiency\":\"pooled\""), "{text}");
        let back: FitParams = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        let partial: FitParams = toml::from_str("folds = 7\nreference_quantile = 0.4").unwrap();
        assert_eq!(partial, FitParams::new().folds(7).reference_quantile(0.4));
        assert!(toml::from_str::<FitParams>("fold = 7").is_err());
        // A quantile written with the default method is checked, not dropped.
        let e = toml::from_str::<CheckedFitParams>("reference_quantile = 1.5").unwrap_err();
        assert!(
            e.to_string().contains("reference_quantile: 1.5 is outside"),
            "{e}"
        );
        let frontier: FitParams = toml::from_str("efficiency = \"frontier\"").unwrap();
        assert_eq!(frontier, FitParams::new());
        let e = serde_json::from_str::<CheckedFitParams>(r#"{"folds": 1}"#).unwrap_err();
        assert!(e.to_string().contains("folds: 1 folds"), "{e}");
        let ok: CheckedFitParams = serde_json::from_str(r#"{"folds": 3}"#).unwrap();
        assert_eq!(ok.settings().folds, 3);
    }

    #[test]
    fn method_names_parse() {
        assert_eq!("pooled".parse::<Method>().unwrap(), Method::Pooled);
        assert_eq!(
            "team_reference".parse::<Method>().unwrap(),
            Method::TeamReference
        );
        assert_eq!("x".parse::<Method>().unwrap_err().param, "efficiency");
    }
}
