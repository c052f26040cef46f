//! Caseload re-budgeting: before a candidate model is activated, recompute every case's
//! latest calculation under it and summarize the change (per week and month, by context
//! group, by the model version that made the stored calculation, and the cases that move
//! most).
//!
//! [`summarize`] is pure computation over an iterator of calculations (testable without a
//! database); [`rebudget`] feeds it from a [`HistoryStore`] scan.

use crate::estimate::{estimate_with, Detail, WEEKS_PER_MONTH};
use crate::history::{Calculation, HistoryError, HistoryStore};
use crate::model::Model;
use crate::needs::NeedsSet;
use serde::Serialize;
use std::collections::BTreeMap;

/// How many of the cases that move most the summary lists.
pub const TOP_MOVERS: usize = 20;
/// How many refused cases the summary lists by name (all are counted).
pub const MAX_LISTED_INVALID: usize = 1000;

/// Before and after over a set of cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub cases: usize,
    pub before_weekly_min: f64,
    pub after_weekly_min: f64,
    pub before_monthly_min: f64,
    pub after_monthly_min: f64,
    /// `after / before − 1` in percent; 0 when there is nothing before.
    pub change_pct: f64,
}

impl Totals {
    fn add(&mut self, before: f64, after: f64) {
        self.cases += 1;
        self.before_weekly_min += before;
        self.after_weekly_min += after;
    }

    fn finish(&mut self) {
        self.before_monthly_min = self.before_weekly_min * WEEKS_PER_MONTH;
        self.after_monthly_min = self.after_weekly_min * WEEKS_PER_MONTH;
        self.change_pct = pct(self.before_weekly_min, self.after_weekly_min);
    }
}

fn pct(before: f64, after: f64) -> f64 {
    if before > 0.0 {
        100.0 * (after / before - 1.0)
    } else {
        0.0
    }
}

/// One group: a context variable and one of its values, or `model_version` and the stored
/// calculation's `name/version`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupChange {
    pub variable: String,
    pub value: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// A case that moves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mover {
    pub case_id: String,
    pub before_weekly_min: f64,
    pub after_weekly_min: f64,
    pub change_min: f64,
    pub change_pct: f64,
}

/// A case whose latest calculation cannot be recomputed under the candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refused {
    pub case_id: String,
    pub reason: String,
}

/// What re-budgeting found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub candidate_name: String,
    pub candidate_version: String,
    /// Cases seen (recalculated + refused).
    pub cases_seen: usize,
    /// Over the recalculated cases only.
    #[serde(flatten)]
    pub total: Totals,
    /// Cases that no longer parse or validate under the candidate's catalog.
    pub refused_count: usize,
    /// The first [`MAX_LISTED_INVALID`] of them, with the reason.
    pub refused: Vec<Refused>,
    /// Each context variable and value (sorted); a variable's groups add up to the total
    /// when every case carries it.
    pub by_group: Vec<GroupChange>,
    /// By the model (name/version) that made the stored calculation.
    pub by_model_version: Vec<GroupChange>,
    /// The [`TOP_MOVERS`] cases with the largest absolute change in minutes per week.
    pub top_movers: Vec<Mover>,
}

/// Accumulates calculations one at a time.
pub struct Rebudget<'m> {
    model: &'m Model,
    cases_seen: usize,
    total: Totals,
    refused_count: usize,
    refused: Vec<Refused>,
    groups: BTreeMap<(String, String), Totals>,
    versions: BTreeMap<String, Totals>,
    movers: Vec<Mover>,
}

fn context_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<'m> Rebudget<'m> {
    pub fn new(candidate: &'m Model) -> Self {
        Rebudget {
            model: candidate,
            cases_seen: 0,
            total: Totals::default(),
            refused_count: 0,
            refused: Vec::new(),
            groups: BTreeMap::new(),
            versions: BTreeMap::new(),
            movers: Vec::new(),
        }
    }

    fn refuse(&mut self, case_id: &str, reason: String) {
        self.refused_count += 1;
        if self.refused.len() < MAX_LISTED_INVALID {
            self.refused.push(Refused {
                case_id: case_id.to_string(),
                reason,
            });
        }
    }

    /// Recomputes one case's latest calculation under the candidate.
    pub fn add(&mut self, calc: &Calculation) {
        self.cases_seen += 1;
        let needs: NeedsSet = match serde_json::from_str(&calc.needs_json) {
            Ok(n) => n,
            Err(e) => return self.refuse(&calc.case_id, format!("stored needs unreadable: {e}")),
        };
        let valid = match needs.validate(&self.model.catalog) {
            Ok(v) => v,
            Err(e) => return self.refuse(&calc.case_id, e.to_string()),
        };
        let after = estimate_with(self.model, &valid, Detail::Totals).weekly_min;
        let before = calc.weekly_min;
        self.total.add(before, after);
        for (variable, value) in &needs.context {
            self.groups
                .entry((variable.clone(), context_value(value)))
                .or_default()
                .add(before, after);
        }
        self.versions
            .entry(format!("{}/{}", calc.model_name, calc.model_version))
            .or_default()
            .add(before, after);
        self.movers.push(Mover {
            case_id: calc.case_id.clone(),
            before_weekly_min: before,
            after_weekly_min: after,
            change_min: after - before,
            change_pct: pct(before, after),
        });
        if self.movers.len() >= 64 * TOP_MOVERS {
            self.keep_top();
        }
    }

    fn keep_top(&mut self) {
        let by = |a: &Mover, b: &Mover| b.change_min.abs().total_cmp(&a.change_min.abs());
        if self.movers.len() > TOP_MOVERS {
            self.movers.select_nth_unstable_by(TOP_MOVERS, by);
            self.movers.truncate(TOP_MOVERS);
        }
        self.movers
            .sort_by(|a, b| by(a, b).then(a.case_id.cmp(&b.case_id)));
    }

    pub fn finish(mut self) -> Summary {
        self.keep_top();
        self.total.finish();
        let finish = |variable: String, value: String, mut totals: Totals| {
            totals.finish();
            GroupChange {
                variable,
                value,
                totals,
            }
        };
        Summary {
            candidate_name: self.model.name().to_string(),
            candidate_version: self.model.version().to_string(),
            cases_seen: self.cases_seen,
            total: self.total,
            refused_count: self.refused_count,
            refused: self.refused,
            by_group: self
                .groups
                .into_iter()
                .map(|((var, val), t)| finish(var, val, t))
                .collect(),
            by_model_version: self
                .versions
                .into_iter()
                .map(|(v, t)| finish("model_version".into(), v, t))
                .collect(),
            top_movers: self.movers,
        }
    }
}

/// Re-budgets the given latest calculations (one per case) under `candidate`.
pub fn summarize<'a>(
    calcs: impl IntoIterator<Item = &'a Calculation>,
    candidate: &Model,
) -> Summary {
    let mut r = Rebudget::new(candidate);
    for c in calcs {
        r.add(c);
    }
    r.finish()
}

/// Re-budgets every case's latest calculation in `store` under `candidate`, streaming (the
/// caseload is never held in memory). Blocking: call from a plain thread, not a runtime one.
pub fn rebudget(store: &HistoryStore, candidate: &Model) -> Result<Summary, HistoryError> {
    let mut rx = store.latest_per_case(1000);
    let mut r = Rebudget::new(candidate);
    while let Some(chunk) = rx.blocking_recv() {
        for stored in chunk? {
            r.add(&stored.calc);
        }
    }
    Ok(r.finish())
}
