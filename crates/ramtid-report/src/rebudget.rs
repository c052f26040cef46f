//! Caseload re-budgeting: before a candidate model is activated, recompute every case's
//! latest calculation under it and summarize the change (per week and month, by team, by
//! context group with numeric variables such as age in bands, by the model version that made
//! the stored calculation, and the cases that move most).
//!
//! [`summarize`] is pure computation over an iterator of calculations (testable without a
//! database); [`rebudget`] feeds it from a [`HistoryStore`] scan.

use ramtid_core::catalog::{ContextKind, ContextVar};
use ramtid_core::estimate::{estimate_with, Detail, WEEKS_PER_MONTH};
use ramtid_core::model::Model;
use ramtid_core::needs::NeedsSet;
use ramtid_history::{Calculation, HistoryError, HistoryStore};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many of the cases that move most the summary lists by default.
pub const TOP_MOVERS: usize = 20;
/// What a team is called in the summary when the calculation named none.
pub const NO_UNIT: &str = "(not given)";
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
    pub unit_id: String,
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
    /// By the team or provider named in the calculation (`unit_id`; [`NO_UNIT`] when none);
    /// adds up to the total.
    pub by_unit: Vec<GroupChange>,
    /// Each context variable and value; numeric variables in bands (see [`band`]). A
    /// variable's groups add up to the total when every case carries it.
    pub by_group: Vec<GroupChange>,
    /// By the model (name/version) that made the stored calculation.
    pub by_model_version: Vec<GroupChange>,
    /// The cases with the largest absolute change in minutes per week, largest first.
    pub top_movers: Vec<Mover>,
}

/// The band a numeric context value falls in, and where the band starts (to sort by).
/// Bands are a round width (1, 2 or 5 × 10^k) that cuts the catalog's range into about five
/// (age 60–110: ten years: `80–89`), or ten wide when the catalog gives no range.
pub fn band(var: &ContextVar, x: f64) -> (f64, String) {
    let width = match (var.min, var.max) {
        (Some(lo), Some(hi)) if hi > lo => nice_width((hi - lo) / 5.0),
        _ => 10.0,
    };
    let start = (x / width).floor() * width;
    let label = if width.fract() == 0.0 && width >= 2.0 {
        format!("{}–{}", start, start + width - 1.0)
    } else {
        format!("[{}, {})", start, start + width)
    };
    (start, label)
}

fn nice_width(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let step = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * p
}

/// Accumulates calculations one at a time.
pub struct Rebudget<'m> {
    model: &'m Model,
    top: usize,
    cases_seen: usize,
    total: Totals,
    refused_count: usize,
    refused: Vec<Refused>,
    units: BTreeMap<String, Totals>,
    /// (variable, band start or 0, value): numeric bands sort by where they start.
    groups: BTreeMap<(String, OrderedStart, String), Totals>,
    versions: BTreeMap<String, Totals>,
    movers: Vec<Mover>,
}

/// A band's start as a sortable key (`f64` is not `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OrderedStart(i64);

impl OrderedStart {
    fn new(x: f64) -> Self {
        // Monotone for finite values: sign-flip the bits of negatives.
        let b = x.to_bits() as i64;
        OrderedStart(if b < 0 { b ^ i64::MAX } else { b })
    }
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
            top: TOP_MOVERS,
            cases_seen: 0,
            total: Totals::default(),
            refused_count: 0,
            refused: Vec::new(),
            units: BTreeMap::new(),
            groups: BTreeMap::new(),
            versions: BTreeMap::new(),
            movers: Vec::new(),
        }
    }

    /// Lists the `n` cases that move most instead of [`TOP_MOVERS`].
    pub fn top_movers(mut self, n: usize) -> Self {
        self.top = n;
        self
    }

    /// The group key of one context value: numeric variables of the candidate's catalog
    /// in bands, everything else as sent.
    fn group_key(&self, variable: &str, value: &serde_json::Value) -> (OrderedStart, String) {
        let numeric = self
            .model
            .catalog
            .contexts
            .iter()
            .find(|c| c.name == variable && c.kind == ContextKind::Numeric);
        match (numeric, value.as_f64()) {
            (Some(var), Some(x)) => {
                let (start, label) = band(var, x);
                (OrderedStart::new(start), label)
            }
            _ => (OrderedStart::new(0.0), context_value(value)),
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
        let unit = if calc.unit_id.is_empty() {
            NO_UNIT
        } else {
            &calc.unit_id
        };
        self.units
            .entry(unit.to_string())
            .or_default()
            .add(before, after);
        for (variable, value) in &needs.context {
            let (start, label) = self.group_key(variable, value);
            self.groups
                .entry((variable.clone(), start, label))
                .or_default()
                .add(before, after);
        }
        self.versions
            .entry(format!("{}/{}", calc.model_name, calc.model_version))
            .or_default()
            .add(before, after);
        self.movers.push(Mover {
            case_id: calc.case_id.clone(),
            unit_id: calc.unit_id.clone(),
            before_weekly_min: before,
            after_weekly_min: after,
            change_min: after - before,
            change_pct: pct(before, after),
        });
        if self.movers.len() >= 2 * self.top.max(512) {
            self.keep_top();
        }
    }

    fn keep_top(&mut self) {
        let by = |a: &Mover, b: &Mover| b.change_min.abs().total_cmp(&a.change_min.abs());
        if self.movers.len() > self.top {
            self.movers.select_nth_unstable_by(self.top, by);
            self.movers.truncate(self.top);
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
            by_unit: self
                .units
                .into_iter()
                .map(|(unit, t)| finish("unit_id".into(), unit, t))
                .collect(),
            by_group: self
                .groups
                .into_iter()
                .map(|((var, _, val), t)| finish(var, val, t))
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

/// Re-budgets every case's latest calculation in `store` under `candidate`, listing the
/// `top` cases that move most, streaming (the caseload is never held in memory). Blocking:
/// call from a plain thread, not a runtime one.
pub fn rebudget(
    store: &HistoryStore,
    candidate: &Model,
    top: usize,
) -> Result<Summary, HistoryError> {
    let mut rx = store.latest_per_case(1000);
    let mut r = Rebudget::new(candidate).top_movers(top);
    while let Some(chunk) = rx.blocking_recv() {
        for stored in chunk? {
            r.add(&stored.calc);
        }
    }
    Ok(r.finish())
}

// ---------------------------------------------------------------------------------------
// Report

// HTML escaping as every report does it (quotes in attributes included).
use crate::evaluate::report::esc;

impl Summary {
    /// A few lines for the terminal.
    pub fn summary_text(&self) -> String {
        let t = &self.total;
        format!(
            "candidate {}/{}: {} cases ({} recalculated, {} refused)\n\
             per week:  {:.0} → {:.0} min ({:+.2} %)\n\
             per month: {:.0} → {:.0} min ({:.0} → {:.0} h)\n",
            self.candidate_name,
            self.candidate_version,
            self.cases_seen,
            t.cases,
            self.refused_count,
            t.before_weekly_min,
            t.after_weekly_min,
            t.change_pct,
            t.before_monthly_min,
            t.after_monthly_min,
            t.before_monthly_min / 60.0,
            t.after_monthly_min / 60.0,
        )
    }
}

/// Horizontal bars of the change in % per group, centred on zero; `title` is what a screen
/// reader announces for it.
pub fn change_bars_svg(title: &str, groups: &[GroupChange]) -> String {
    use std::fmt::Write;
    const W: f64 = 760.0;
    const LABEL: f64 = 220.0;
    const R: f64 = 70.0;
    const ROW: f64 = 18.0;
    const TOP: f64 = 40.0;
    let max = groups
        .iter()
        .map(|g| g.totals.change_pct.abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (max, _) = crate::evaluate::report::nice_ticks(max.max(0.1), 4);
    let pw = W - LABEL - R;
    let zero = LABEL + pw / 2.0;
    let sx = |p: f64| zero + (pw / 2.0) * p.clamp(-max, max) / max;
    let h = TOP + ROW * groups.len() as f64 + 30.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h:.0}" font-family="sans-serif" font-size="12" role="img"><title>Change in minutes per week (%), {}</title>"#,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="10" y="18" font-weight="bold">Change in minutes per week by group (%)</text>"#
    );
    for (i, g) in groups.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let p = g.totals.change_pct;
        let (x0, x1) = if p >= 0.0 {
            (zero, sx(p))
        } else {
            (sx(p), zero)
        };
        let color = if p >= 0.0 { "#c0504d" } else { "#4f81bd" };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{} = {} (n={})</text><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}">{p:+.2}</text>"#,
            LABEL - 6.0,
            y + 12.0,
            esc(&g.variable),
            esc(&g.value),
            g.totals.cases,
            y + 3.0,
            (x1 - x0).max(0.5),
            ROW - 6.0,
            W - R + 6.0,
            y + 12.0,
        );
    }
    let yb = TOP + ROW * groups.len() as f64;
    let _ = write!(
        s,
        r##"<line x1="{zero:.1}" y1="{:.1}" x2="{zero:.1}" y2="{yb:.1}" stroke="#333"/><text x="{LABEL}" y="{:.1}">−{max}</text><text x="{zero:.1}" y="{:.1}" text-anchor="middle">0</text><text x="{:.1}" y="{:.1}" text-anchor="end">+{max}</text></svg>"##,
        TOP - 4.0,
        yb + 16.0,
        yb + 16.0,
        W - R,
        yb + 16.0,
    );
    s
}

/// The report: totals, bar charts by group and by model version, movers, refused cases.
pub fn html(s: &Summary) -> String {
    use std::fmt::Write;
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ramtid re-budgeting</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>Re-budgeting under {}/{}</h1><pre>{}</pre>",
        esc(&s.candidate_name),
        esc(&s.candidate_version),
        esc(&s.summary_text())
    );
    h.push_str("<h2>By team or provider</h2>");
    h.push_str(&change_bars_svg("by team or provider", &s.by_unit));
    h.push_str("<h2>By context group</h2>");
    h.push_str(&change_bars_svg("by context group", &s.by_group));
    h.push_str("<h2>By model version of the stored calculation</h2>");
    h.push_str(&change_bars_svg(
        "by model version of the stored calculation",
        &s.by_model_version,
    ));
    h.push_str("<h2>Cases that move most</h2><table><tr><th>case</th><th>team</th><th>before min/wk</th><th>after min/wk</th><th>change min/wk</th><th>change %</th></tr>");
    for m in &s.top_movers {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:+.1}</td><td>{:+.2}</td></tr>",
            esc(&m.case_id),
            esc(&m.unit_id),
            m.before_weekly_min,
            m.after_weekly_min,
            m.change_min,
            m.change_pct
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2>Refused cases ({})</h2><table><tr><th>case</th><th>reason</th></tr>",
        s.refused_count
    );
    for r in &s.refused {
        let _ = write!(
            h,
            "<tr><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(&r.case_id),
            esc(&r.reason)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

/// Writes `rebudget.json` and `report.html` into `out` (created if needed).
pub fn write_report(
    s: &Summary,
    out: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(out)?;
    let json = out.join("rebudget.json");
    let report = out.join("report.html");
    std::fs::write(
        &json,
        serde_json::to_string_pretty(s).map_err(std::io::Error::other)?,
    )?;
    std::fs::write(&report, html(s))?;
    Ok(vec![json, report])
}
