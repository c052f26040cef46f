//! Held-out evaluation: how close the model's frame times come to the truth, beside the
//! stacked schablon and the best any predictor seeing only needs and context could do.
//!
//! Inputs are the files `ramtid simulate` writes for its held-out recipients (or the same
//! shapes from elsewhere):
//! - `needs.jsonl`: one needs object per line (data contract, section 4);
//! - `truth.csv`: `recipient_id,true_weekly_min` and, where known, `best_weekly_min`,
//!   `true_weekly_staff_min`, `best_weekly_staff_min`, `schablon_weekly_min`,
//!   `visits_per_week`;
//! - optionally a visit file with the `visits.csv` columns plus `efficient_min` (the
//!   target; `duration_min` when it is absent) and `best_min`.
//!
//! [`evaluate`] computes every figure into an [`Evaluation`]; [`write_report`] writes
//! `evaluation.json`, `report.html` and `recipients.csv`. A needs line that fails
//! validation is counted and reported, never fatal; a bad row in the truth or visit file
//! stops the run with the file, line and column.

pub mod metrics;
pub mod report;

use metrics::{group_of, quantile_cuts, summarize, Metrics};
use ramtid_core::catalog::{Catalog, ContextKind};
use ramtid_core::estimate::{estimate, predict_visit, Estimate, Scratch};
use ramtid_core::model::Model;
use ramtid_core::needs::NeedsSet;
use ramtid_core::slot::Slot;
use ramtid_core::visits::time::parse_check_in;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const FORMAT: &str = "ramtid-evaluation/1";
/// Needs-line problems kept in the evaluation (all are counted).
pub const FIRST_PROBLEMS_KEPT: usize = 20;
/// Groups of numeric context variables and of need size.
pub const QUANTILE_GROUPS: usize = 5;

#[derive(Debug, Error)]
pub enum EvaluateError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line} (header): {message}")]
    Header {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}, line {line}, column '{column}': {message}")]
    Row {
        path: String,
        line: u64,
        column: String,
        message: String,
    },
    #[error("{0}")]
    Nothing(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The files to evaluate on.
#[derive(Debug, Clone)]
pub struct EvaluateInputs {
    pub needs: PathBuf,
    pub truth: PathBuf,
    pub visits: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub dir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputFiles {
    pub needs: String,
    pub truth: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visits: Option<String>,
}

/// One needs line that could not be estimated.
#[derive(Debug, Clone, Serialize)]
pub struct LineProblem {
    pub line: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub recipient_id: String,
    pub message: String,
}

/// What was read and matched.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataCounts {
    /// Non-empty lines in the needs file.
    pub needs_lines: usize,
    pub needs_estimated: usize,
    pub needs_failed: usize,
    /// The first failing lines; all are counted in `needs_failed`.
    pub needs_problems: Vec<LineProblem>,
    pub truth_rows: usize,
    /// Recipients with both an estimate and a truth row: the ones evaluated.
    pub recipients_evaluated: usize,
    /// Estimated recipients that have no truth row.
    pub needs_without_truth: usize,
    /// Truth rows of recipients whose needs line failed.
    pub truth_of_failed_needs: usize,
    /// Truth rows whose recipient is not in the needs file; only tolerated when some needs
    /// lines were not readable at all (their ids are unknown).
    pub truth_unmatched: usize,
    /// Recipients whose truth file schablon differs from ours by more than 0.5 min/week
    /// (a different catalog; the schablon figures use ours).
    pub schablon_mismatches: usize,
}

/// Person-week figures: ours, the stacked schablon and the best achievable, each against
/// `true_weekly_min`.
#[derive(Debug, Clone, Serialize)]
pub struct WeeklyEvaluation {
    pub n: usize,
    pub ours: Metrics,
    pub schablon: Metrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best: Option<Metrics>,
    /// Our MAPE over the best achievable MAPE (1.0 = as good as possible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mape_ratio_ours_over_best: Option<f64>,
    /// Staff minutes (both staff counted) against `true_weekly_staff_min`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ours_staff: Option<Metrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_staff: Option<Metrics>,
    /// The planner's visits per week against the true number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visits_per_week: Option<Metrics>,
    /// The model's weekly P10/P90 multipliers.
    pub weekly_interval: [f64; 2],
}

/// Per-visit figures against the realized efficient minutes.
#[derive(Debug, Clone, Serialize)]
pub struct VisitEvaluation {
    pub file: String,
    /// The column predicted: `efficient_min`, or `duration_min` when there is none.
    pub target_column: String,
    pub n: usize,
    pub ours: Metrics,
    /// The schablon sum of each visit's tasks.
    pub schablon: Metrics,
    /// `best_min`: the true mean without the recipient's own variation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best: Option<Metrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mape_ratio_ours_over_best: Option<f64>,
    pub visit_interval: [f64; 2],
    pub by_slot: Vec<GroupFigures>,
}

/// Error of one group of recipients (or visits).
#[derive(Debug, Clone, Serialize)]
pub struct GroupFigures {
    /// A context variable, `need_size` (quintiles of the schablon week) or `slot`.
    pub variable: String,
    pub value: String,
    pub n: usize,
    pub ours_mape: f64,
    pub ours_bias: f64,
    pub schablon_mape: f64,
    pub schablon_bias: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_mape: Option<f64>,
}

/// One evaluated recipient, for plots and `recipients.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientRow {
    pub recipient_id: String,
    pub true_weekly_min: f64,
    pub weekly_min: f64,
    pub p10_weekly_min: f64,
    pub p90_weekly_min: f64,
    pub schablon_weekly_min: f64,
    pub best_weekly_min: Option<f64>,
    pub visits_per_week: f64,
    pub true_visits_per_week: Option<f64>,
}

/// One evaluated visit, for the plot.
#[derive(Debug, Clone, Copy)]
pub struct VisitPoint {
    pub truth: f64,
    pub ours: f64,
    pub schablon: f64,
}

/// Everything an evaluation found. Serialized (without the per-recipient and per-visit
/// rows) as `evaluation.json` and, with `--record`, into the model's manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub format: String,
    pub created: String,
    pub model: ModelInfo,
    pub inputs: InputFiles,
    pub data: DataCounts,
    pub weekly: WeeklyEvaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visits: Option<VisitEvaluation>,
    /// Person-week error by context variable and value, and by need size.
    pub groups: Vec<GroupFigures>,
    #[serde(skip)]
    pub recipients: Vec<RecipientRow>,
    #[serde(skip)]
    pub visit_points: Vec<VisitPoint>,
}

// ---------------------------------------------------------------------------------------
// Orchestration

/// Evaluates `model` on the held-out files.
pub fn evaluate(model: &Model, inputs: &EvaluateInputs) -> Result<Evaluation, EvaluateError> {
    let needs = read_needs(model, &inputs.needs)?;
    let truth = read_truth(&inputs.truth)?;
    let mut data = DataCounts {
        needs_lines: needs.lines,
        needs_estimated: needs.estimated.len(),
        needs_failed: needs.failed,
        needs_problems: needs.problems,
        truth_rows: truth.rows.len(),
        ..DataCounts::default()
    };

    // Pair truth rows with estimates.
    let by_id: HashMap<&str, usize> = needs
        .estimated
        .iter()
        .enumerate()
        .map(|(i, e)| (e.estimate.recipient_id.as_str(), i))
        .collect();
    let mut pairs: Vec<(usize, &TruthRow)> = Vec::with_capacity(truth.rows.len());
    let mut has_truth = vec![false; needs.estimated.len()];
    for row in &truth.rows {
        if let Some(&i) = by_id.get(row.recipient_id.as_str()) {
            has_truth[i] = true;
            pairs.push((i, row));
        } else if needs.failed_ids.contains_key(row.recipient_id.as_str()) {
            data.truth_of_failed_needs += 1;
        } else if needs.unreadable > 0 {
            data.truth_unmatched += 1;
        } else {
            return Err(EvaluateError::Row {
                path: truth.path.clone(),
                line: row.line,
                column: "recipient_id".into(),
                message: format!(
                    "recipient '{}' is not in {} (is this the truth of another needs file?)",
                    row.recipient_id,
                    inputs.needs.display()
                ),
            });
        }
    }
    data.needs_without_truth = has_truth.iter().filter(|h| !**h).count();
    if pairs.is_empty() {
        return Err(EvaluateError::Nothing(format!(
            "no recipient has both an estimate from {} and a row in {} ({} needs lines estimated, {} failed; {} truth rows)",
            inputs.needs.display(),
            truth.path,
            data.needs_estimated,
            data.needs_failed,
            data.truth_rows
        )));
    }
    data.recipients_evaluated = pairs.len();

    let recipients: Vec<RecipientRow> = pairs
        .iter()
        .map(|&(i, t)| {
            let e = &needs.estimated[i].estimate;
            RecipientRow {
                recipient_id: e.recipient_id.clone(),
                true_weekly_min: t.true_weekly_min,
                weekly_min: e.weekly_min,
                p10_weekly_min: e.p10_weekly_min,
                p90_weekly_min: e.p90_weekly_min,
                schablon_weekly_min: e.schablon_weekly_min,
                best_weekly_min: t.best_weekly_min,
                visits_per_week: e.visits_per_week,
                true_visits_per_week: t.visits_per_week,
            }
        })
        .collect();
    data.schablon_mismatches = pairs
        .iter()
        .filter(|(i, t)| {
            t.schablon_weekly_min
                .is_some_and(|s| (s - needs.estimated[*i].estimate.schablon_weekly_min).abs() > 0.5)
        })
        .count();

    let weekly = weekly_figures(model, &needs.estimated, &pairs, &truth.columns);
    let groups = group_figures(&model.catalog, &needs.estimated, &pairs);

    let (visits, visit_points) = match &inputs.visits {
        Some(path) => {
            let (v, points) = evaluate_visits(model, path)?;
            (Some(v), points)
        }
        None => (None, Vec::new()),
    };

    Ok(Evaluation {
        format: FORMAT.to_string(),
        created: ramtid_core::model::now_rfc3339(),
        model: ModelInfo {
            name: model.name().to_string(),
            version: model.version().to_string(),
            dir: model.dir.display().to_string(),
        },
        inputs: InputFiles {
            needs: inputs.needs.display().to_string(),
            truth: inputs.truth.display().to_string(),
            visits: inputs.visits.as_ref().map(|p| p.display().to_string()),
        },
        data,
        weekly,
        visits,
        groups,
        recipients,
        visit_points,
    })
}

fn weekly_figures(
    model: &Model,
    estimated: &[Estimated],
    pairs: &[(usize, &TruthRow)],
    columns: &TruthColumns,
) -> WeeklyEvaluation {
    let est = |i: usize| &estimated[i].estimate;
    let truth: Vec<f64> = pairs.iter().map(|(_, t)| t.true_weekly_min).collect();
    let ours: Vec<f64> = pairs.iter().map(|&(i, _)| est(i).weekly_min).collect();
    let lo: Vec<f64> = pairs.iter().map(|&(i, _)| est(i).p10_weekly_min).collect();
    let hi: Vec<f64> = pairs.iter().map(|&(i, _)| est(i).p90_weekly_min).collect();
    let schablon: Vec<f64> = pairs
        .iter()
        .map(|&(i, _)| est(i).schablon_weekly_min)
        .collect();
    let ours_m = summarize(&ours, &truth, Some((&lo, &hi)));
    let best = columns.best.then(|| {
        let best: Vec<f64> = pairs
            .iter()
            .map(|(_, t)| t.best_weekly_min.unwrap_or(f64::NAN))
            .collect();
        summarize(&best, &truth, None)
    });
    let staff = columns.true_staff.then(|| {
        let truth: Vec<f64> = pairs
            .iter()
            .map(|(_, t)| t.true_weekly_staff_min.unwrap_or(f64::NAN))
            .collect();
        let ours: Vec<f64> = pairs
            .iter()
            .map(|&(i, _)| est(i).weekly_staff_min)
            .collect();
        let best = columns.best_staff.then(|| {
            let best: Vec<f64> = pairs
                .iter()
                .map(|(_, t)| t.best_weekly_staff_min.unwrap_or(f64::NAN))
                .collect();
            summarize(&best, &truth, None)
        });
        (summarize(&ours, &truth, None), best)
    });
    let visits_per_week = columns.visits_per_week.then(|| {
        let truth: Vec<f64> = pairs
            .iter()
            .map(|(_, t)| t.visits_per_week.unwrap_or(f64::NAN))
            .collect();
        let ours: Vec<f64> = pairs.iter().map(|&(i, _)| est(i).visits_per_week).collect();
        summarize(&ours, &truth, None)
    });
    let (ours_staff, best_staff) = match staff {
        Some((o, b)) => (Some(o), b),
        None => (None, None),
    };
    WeeklyEvaluation {
        n: pairs.len(),
        mape_ratio_ours_over_best: best.as_ref().map(|b| ours_m.mape / b.mape),
        schablon: summarize(&schablon, &truth, None),
        ours: ours_m,
        best,
        ours_staff,
        best_staff,
        visits_per_week,
        weekly_interval: model.visit.weekly_interval,
    }
}

/// Figures of the cases in `members` (indices into the slices).
fn group(
    variable: &str,
    value: String,
    members: &[usize],
    truth: &[f64],
    ours: &[f64],
    schablon: &[f64],
    best: Option<&[f64]>,
) -> GroupFigures {
    let pick = |v: &[f64]| members.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let t = pick(truth);
    let o = pick(ours);
    let s = pick(schablon);
    GroupFigures {
        variable: variable.to_string(),
        value,
        n: members.len(),
        ours_mape: metrics::mape(&o, &t),
        ours_bias: metrics::bias(&o, &t),
        schablon_mape: metrics::mape(&s, &t),
        schablon_bias: metrics::bias(&s, &t),
        best_mape: best.map(|b| metrics::mape(&pick(b), &t)),
    }
}

/// Short label of a range of values.
fn range_label(lo: f64, hi: f64) -> String {
    let f = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 1e9 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    if lo == hi {
        f(lo)
    } else {
        format!("{}–{}", f(lo), f(hi))
    }
}

/// Groups by quantiles of `values`; labels give each group's observed range.
fn quantile_groups(values: &[f64]) -> Vec<(String, Vec<usize>)> {
    let cuts = quantile_cuts(values, QUANTILE_GROUPS);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); cuts.len() + 1];
    for (i, &x) in values.iter().enumerate() {
        groups[group_of(x, &cuts)].push(i);
    }
    groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            let lo = g.iter().map(|&i| values[i]).fold(f64::INFINITY, f64::min);
            let hi = g
                .iter()
                .map(|&i| values[i])
                .fold(f64::NEG_INFINITY, f64::max);
            (range_label(lo, hi), g)
        })
        .collect()
}

fn group_figures(
    catalog: &Catalog,
    estimated: &[Estimated],
    pairs: &[(usize, &TruthRow)],
) -> Vec<GroupFigures> {
    let truth: Vec<f64> = pairs.iter().map(|(_, t)| t.true_weekly_min).collect();
    let ours: Vec<f64> = pairs
        .iter()
        .map(|&(i, _)| estimated[i].estimate.weekly_min)
        .collect();
    let schablon: Vec<f64> = pairs
        .iter()
        .map(|&(i, _)| estimated[i].estimate.schablon_weekly_min)
        .collect();
    let best: Option<Vec<f64>> = pairs
        .iter()
        .map(|(_, t)| t.best_weekly_min)
        .collect::<Option<Vec<f64>>>();
    let best = best.as_deref();
    let mut out = Vec::new();
    for (var, c) in catalog.contexts.iter().enumerate() {
        let values: Vec<f64> = pairs
            .iter()
            .map(|&(i, _)| estimated[i].context[var])
            .collect();
        match c.kind {
            ContextKind::Numeric => {
                for (label, members) in quantile_groups(&values) {
                    out.push(group(
                        &c.name, label, &members, &truth, &ours, &schablon, best,
                    ));
                }
            }
            _ => {
                let mut levels: Vec<f64> = values.clone();
                levels.sort_by(f64::total_cmp);
                levels.dedup();
                for level in levels {
                    let members: Vec<usize> =
                        (0..values.len()).filter(|&i| values[i] == level).collect();
                    out.push(group(
                        &c.name,
                        c.display_value(level),
                        &members,
                        &truth,
                        &ours,
                        &schablon,
                        best,
                    ));
                }
            }
        }
    }
    for (label, members) in quantile_groups(&schablon) {
        out.push(group(
            "need_size",
            format!("{label} min/wk"),
            &members,
            &truth,
            &ours,
            &schablon,
            best,
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// needs.jsonl

struct Estimated {
    estimate: Estimate,
    /// The recipient's context, one value per catalog variable.
    context: Vec<f64>,
}

struct NeedsRead {
    lines: usize,
    estimated: Vec<Estimated>,
    failed: usize,
    /// Lines that were not a needs object at all (their recipient id is unknown).
    unreadable: usize,
    failed_ids: HashMap<String, u64>,
    problems: Vec<LineProblem>,
}

fn read_needs(model: &Model, path: &Path) -> Result<NeedsRead, EvaluateError> {
    let name = path.display().to_string();
    let io = |source| EvaluateError::Io {
        path: name.clone(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let lines = ramtid_core::needs::needs_lines(&bytes)
        .map_err(|e| EvaluateError::Nothing(format!("{name}: {e}")))?;
    let mut out = NeedsRead {
        lines: 0,
        estimated: Vec::new(),
        failed: 0,
        unreadable: 0,
        failed_ids: HashMap::new(),
        problems: Vec::new(),
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (n, line) in lines {
        let line_no = n as u64;
        out.lines += 1;
        let fail = |out: &mut NeedsRead, id: String, message: String| {
            out.failed += 1;
            tracing::debug!(file = %name, line = line_no, "{message}");
            if out.problems.len() < FIRST_PROBLEMS_KEPT {
                out.problems.push(LineProblem {
                    line: line_no,
                    recipient_id: id.clone(),
                    message,
                });
            }
            if !id.is_empty() {
                out.failed_ids.insert(id, line_no);
            }
        };
        let text = match line {
            Ok(t) => t,
            Err(e) => {
                out.unreadable += 1;
                fail(&mut out, String::new(), e);
                continue;
            }
        };
        let set: NeedsSet = match serde_json::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                // Keep the id if the line is JSON with a recipient_id, so its truth row
                // can still be matched to a failure rather than called unknown.
                let id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("recipient_id")?.as_str().map(str::to_string))
                    .unwrap_or_default();
                if id.is_empty() {
                    out.unreadable += 1;
                }
                let e = ramtid_core::echo::echo_n(&e.to_string(), 240);
                fail(&mut out, id, format!("not a needs object: {e}"));
                continue;
            }
        };
        if let Some(first) = seen.get(set.recipient_id.as_str()) {
            let message = format!(
                "recipient_id: '{}' appears again (first on line {first})",
                ramtid_core::echo::echo(&set.recipient_id)
            );
            fail(&mut out, String::new(), message);
            continue;
        }
        match set.validate(&model.catalog) {
            Ok(valid) => {
                seen.insert(set.recipient_id.clone(), line_no);
                out.estimated.push(Estimated {
                    estimate: estimate(model, &valid),
                    context: valid.context,
                });
            }
            Err(e) => {
                if !set.recipient_id.trim().is_empty() {
                    seen.insert(set.recipient_id.clone(), line_no);
                }
                fail(&mut out, set.recipient_id.clone(), e.to_string());
            }
        }
    }
    if out.lines == 0 {
        return Err(EvaluateError::Nothing(format!(
            "{name} holds no needs objects"
        )));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// truth.csv

struct TruthRow {
    line: u64,
    recipient_id: String,
    true_weekly_min: f64,
    best_weekly_min: Option<f64>,
    true_weekly_staff_min: Option<f64>,
    best_weekly_staff_min: Option<f64>,
    schablon_weekly_min: Option<f64>,
    visits_per_week: Option<f64>,
}

/// Which optional truth columns the file has.
#[derive(Default)]
struct TruthColumns {
    best: bool,
    true_staff: bool,
    best_staff: bool,
    visits_per_week: bool,
}

struct TruthRead {
    path: String,
    rows: Vec<TruthRow>,
    columns: TruthColumns,
}

/// Column positions by name, from a CSV header.
struct Header {
    path: String,
    names: Vec<String>,
}

impl Header {
    fn read<R: std::io::Read>(csv: &mut csv::Reader<R>, path: &str) -> Result<Self, EvaluateError> {
        let h = csv.headers().map_err(|e| csv_error(path, e))?;
        let names: Vec<String> = h
            .iter()
            .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
            .collect();
        Ok(Header {
            path: path.to_string(),
            names,
        })
    }

    fn optional(&self, column: &str) -> Option<usize> {
        self.names.iter().position(|n| n == column)
    }

    fn required(&self, column: &str) -> Result<usize, EvaluateError> {
        self.optional(column).ok_or_else(|| EvaluateError::Header {
            path: self.path.clone(),
            line: 1,
            message: format!(
                "required column '{column}' is missing (columns: {})",
                self.names.join(", ")
            ),
        })
    }
}

fn csv_error(path: &str, e: csv::Error) -> EvaluateError {
    match crate::csv_fault::CsvFault::from(e) {
        crate::csv_fault::CsvFault::Io(source) => EvaluateError::Io {
            path: path.to_string(),
            source,
        },
        crate::csv_fault::CsvFault::Row { line, message } => EvaluateError::Row {
            path: path.to_string(),
            line,
            column: "(row)".into(),
            message,
        },
    }
}

/// A parsed CSV record with what is needed to name a bad cell.
struct Cells<'a> {
    path: &'a str,
    line: u64,
    record: &'a csv::StringRecord,
    header: &'a Header,
}

impl Cells<'_> {
    fn bad(&self, pos: usize, message: String) -> EvaluateError {
        EvaluateError::Row {
            path: self.path.to_string(),
            line: self.line,
            column: self.header.names[pos].clone(),
            message,
        }
    }

    fn text(&self, pos: usize) -> Result<&str, EvaluateError> {
        let s = self.record.get(pos).unwrap_or("").trim();
        if s.is_empty() {
            Err(self.bad(pos, "is empty".into()))
        } else {
            Ok(s)
        }
    }

    /// A finite number of minutes ≥ 0.
    fn minutes(&self, pos: usize) -> Result<f64, EvaluateError> {
        let s = self.text(pos)?;
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            Ok(_) => Err(self.bad(pos, format!("{s} is not a number ≥ 0"))),
            Err(_) => Err(self.bad(
                pos,
                format!("'{s}' is not a number (use '.' as decimal sign)"),
            )),
        }
    }

    fn opt_minutes(&self, pos: Option<usize>) -> Result<Option<f64>, EvaluateError> {
        pos.map(|p| self.minutes(p)).transpose()
    }
}

fn open_csv(path: &Path) -> Result<(String, csv::Reader<std::fs::File>), EvaluateError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| EvaluateError::Io {
        path: name.clone(),
        source,
    })?;
    let csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(file);
    Ok((name, csv))
}

fn read_truth(path: &Path) -> Result<TruthRead, EvaluateError> {
    let (name, mut csv) = open_csv(path)?;
    let header = Header::read(&mut csv, &name)?;
    let id = header.required("recipient_id")?;
    let truth = header.required("true_weekly_min")?;
    let best = header.optional("best_weekly_min");
    let true_staff = header.optional("true_weekly_staff_min");
    let best_staff = header.optional("best_weekly_staff_min");
    let schablon = header.optional("schablon_weekly_min");
    let per_week = header.optional("visits_per_week");
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(&name, e))?
    {
        let c = Cells {
            path: &name,
            line: record.position().map(|p| p.line()).unwrap_or(0),
            record: &record,
            header: &header,
        };
        let rid = c.text(id)?.to_string();
        if let Some(first) = seen.insert(rid.clone(), c.line) {
            return Err(c.bad(
                id,
                format!("recipient '{rid}' appears again (first on line {first})"),
            ));
        }
        rows.push(TruthRow {
            line: c.line,
            true_weekly_min: c.minutes(truth)?,
            best_weekly_min: c.opt_minutes(best)?,
            true_weekly_staff_min: c.opt_minutes(true_staff)?,
            best_weekly_staff_min: c.opt_minutes(best_staff)?,
            schablon_weekly_min: c.opt_minutes(schablon)?,
            visits_per_week: c.opt_minutes(per_week)?,
            recipient_id: rid,
        });
    }
    if rows.is_empty() {
        return Err(EvaluateError::Nothing(format!("{name} has no data rows")));
    }
    Ok(TruthRead {
        path: name,
        rows,
        columns: TruthColumns {
            best: best.is_some(),
            true_staff: true_staff.is_some(),
            best_staff: best_staff.is_some(),
            visits_per_week: per_week.is_some(),
        },
    })
}

// ---------------------------------------------------------------------------------------
// Held-out visits

fn evaluate_visits(
    model: &Model,
    path: &Path,
) -> Result<(VisitEvaluation, Vec<VisitPoint>), EvaluateError> {
    let catalog = &model.catalog;
    let (name, mut csv) = open_csv(path)?;
    let header = Header::read(&mut csv, &name)?;
    let start = header.required("start")?;
    let staff = header.required("staff")?;
    let tasks = header.required("tasks")?;
    let (target, target_column) = match header.optional("efficient_min") {
        Some(p) => (p, "efficient_min"),
        None => (header.required("duration_min")?, "duration_min"),
    };
    let best_col = header.optional("best_min");
    let ctx_cols: Vec<usize> = catalog
        .contexts
        .iter()
        .map(|c| header.required(&c.column()))
        .collect::<Result<_, _>>()?;
    let codes = catalog.code_index();
    let [lo, hi] = model.visit.visit_interval;
    let mut scratch = Scratch::default();
    let mut task_buf: Vec<u16> = Vec::new();
    let mut context = vec![0.0; catalog.contexts.len()];
    let (mut truth, mut ours, mut schablon, mut best, mut slots) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut record = csv::StringRecord::new();
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(&name, e))?
    {
        let c = Cells {
            path: &name,
            line: record.position().map(|p| p.line()).unwrap_or(0),
            record: &record,
            header: &header,
        };
        let check_in = parse_check_in(c.text(start)?).map_err(|e| c.bad(start, e))?;
        let slot = Slot::from_hour(check_in.hour);
        let n_staff = match c.text(staff)? {
            "1" => 1u8,
            "2" => 2u8,
            other => {
                return Err(c.bad(
                    staff,
                    format!("'{other}' is not a staff count; expected 1 or 2"),
                ))
            }
        };
        task_buf.clear();
        for code in c
            .text(tasks)?
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match codes.get(code) {
                Some(&k) => task_buf.push(k as u16),
                None => {
                    return Err(c.bad(
                        tasks,
                        format!("unknown insats code '{code}' (not in the model's catalog)"),
                    ))
                }
            }
        }
        if task_buf.is_empty() {
            return Err(c.bad(tasks, "lists no insats code".into()));
        }
        task_buf.sort_unstable();
        task_buf.dedup();
        for (k, &pos) in ctx_cols.iter().enumerate() {
            context[k] = catalog.contexts[k]
                .parse_str(c.record.get(pos).unwrap_or(""))
                .map_err(|e| c.bad(pos, e))?;
        }
        truth.push(c.minutes(target)?);
        if let Some(b) = c.opt_minutes(best_col)? {
            best.push(b);
        }
        ours.push(predict_visit(
            &model.visit,
            &task_buf,
            slot,
            n_staff,
            &context,
            &mut scratch,
        ));
        schablon.push(
            task_buf
                .iter()
                .map(|&t| catalog.insatser[t as usize].schablon_min)
                .sum(),
        );
        slots.push(slot);
    }
    if truth.is_empty() {
        return Err(EvaluateError::Nothing(format!("{name} has no data rows")));
    }
    let p10: Vec<f64> = ours.iter().map(|p| p * lo).collect();
    let p90: Vec<f64> = ours.iter().map(|p| p * hi).collect();
    let ours_m = summarize(&ours, &truth, Some((&p10, &p90)));
    let best_m = best_col.map(|_| summarize(&best, &truth, None));
    let best_ref = best_col.map(|_| best.as_slice());
    let by_slot = Slot::ALL
        .iter()
        .filter_map(|&s| {
            let members: Vec<usize> = (0..slots.len()).filter(|&i| slots[i] == s).collect();
            (!members.is_empty()).then(|| {
                group(
                    "slot",
                    s.as_str().to_string(),
                    &members,
                    &truth,
                    &ours,
                    &schablon,
                    best_ref,
                )
            })
        })
        .collect();
    let points = (0..truth.len())
        .map(|i| VisitPoint {
            truth: truth[i],
            ours: ours[i],
            schablon: schablon[i],
        })
        .collect();
    Ok((
        VisitEvaluation {
            file: name,
            target_column: target_column.to_string(),
            n: truth.len(),
            mape_ratio_ours_over_best: best_m.as_ref().map(|b| ours_m.mape / b.mape),
            schablon: summarize(&schablon, &truth, None),
            ours: ours_m,
            best: best_m,
            visit_interval: model.visit.visit_interval,
            by_slot,
        },
        points,
    ))
}

// ---------------------------------------------------------------------------------------
// Output

impl Evaluation {
    /// The evaluation as JSON (what `evaluation.json` holds and `--record` stores).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("evaluation serializes")
    }

    /// A short plain-text table for the terminal.
    pub fn summary_table(&self) -> String {
        report::summary_table(self)
    }
}

/// Writes `evaluation.json`, `report.html` and `recipients.csv` into `dir` (created if
/// needed); returns the paths written.
pub fn write_report(eval: &Evaluation, dir: &Path) -> Result<Vec<PathBuf>, EvaluateError> {
    let err = |p: &Path| {
        let path = p.display().to_string();
        move |source| EvaluateError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let json_path = dir.join("evaluation.json");
    let mut json = serde_json::to_string_pretty(eval).expect("evaluation serializes");
    json.push('\n');
    std::fs::write(&json_path, json).map_err(err(&json_path))?;
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, report::html(eval)).map_err(err(&html_path))?;
    let csv_path = dir.join("recipients.csv");
    std::fs::write(&csv_path, report::recipients_csv(eval)).map_err(err(&csv_path))?;
    Ok(vec![json_path, html_path, csv_path])
}
