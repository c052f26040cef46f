//! The goals file: `recipient_id,goal_id,assessed,fulfilled`.

use super::Month;
use std::collections::HashSet;
use std::path::Path;

/// One goal as followed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    pub recipient_id: String,
    pub goal_id: String,
    /// The month of the `assessed` date.
    pub month: Month,
    pub fulfilled: bool,
}

/// The goals file could not be read, or a row is bad: named by file, row (the header is
/// row 1) and column.
#[derive(Debug, thiserror::Error)]
pub enum GoalsError {
    #[error("cannot read goals file {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}, row 1 (header): {message}")]
    Header { path: String, message: String },
    #[error("{path}, row {row}, column '{column}': {message}")]
    Row {
        path: String,
        row: u64,
        column: &'static str,
        message: String,
    },
}

const COLUMNS: [&str; 4] = ["recipient_id", "goal_id", "assessed", "fulfilled"];

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "ja" => Some(true),
        "false" | "0" | "no" | "nej" => Some(false),
        _ => None,
    }
}

/// Reads a goals file. The columns are found by name in the header (in any order, extra
/// columns ignored); a goal given twice for the same recipient and month is an error.
pub fn read_goals(path: &Path) -> Result<Vec<Goal>, GoalsError> {
    let p = path.display().to_string();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| GoalsError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
    let header = r.headers().map_err(|e| GoalsError::Header {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let mut at = [0usize; 4];
    for (i, c) in COLUMNS.iter().enumerate() {
        at[i] = header
            .iter()
            .position(|h| h == *c)
            .ok_or_else(|| GoalsError::Header {
                path: p.clone(),
                message: format!(
                    "required column '{c}' is missing (the columns are {})",
                    COLUMNS.join(",")
                ),
            })?;
    }
    let mut goals = Vec::new();
    let mut seen = HashSet::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| GoalsError::Row {
            path: p.clone(),
            row: e.position().map_or(i as u64 + 2, |pos| pos.line()),
            column: "(record)",
            message: e.to_string(),
        })?;
        // The line the record starts on (the header is line 1).
        let row = rec.position().map_or(i as u64 + 2, |pos| pos.line());
        let bad = |column: &'static str, message: String| GoalsError::Row {
            path: p.clone(),
            row,
            column,
            message,
        };
        let field = |k: usize| rec.get(at[k]).unwrap_or("");
        let recipient_id = field(0);
        if recipient_id.is_empty() {
            return Err(bad("recipient_id", "empty".into()));
        }
        let goal_id = field(1);
        if goal_id.is_empty() {
            return Err(bad("goal_id", "empty".into()));
        }
        let month = Month::of_date(field(2)).map_err(|m| bad("assessed", m))?;
        let fulfilled = parse_bool(field(3)).ok_or_else(|| {
            bad(
                "fulfilled",
                format!("'{}' is not true/false, 1/0, yes/no or ja/nej", field(3)),
            )
        })?;
        if !seen.insert((recipient_id.to_string(), goal_id.to_string(), month)) {
            return Err(bad(
                "goal_id",
                format!(
                    "goal '{goal_id}' of recipient '{recipient_id}' is assessed twice in {month}"
                ),
            ));
        }
        goals.push(Goal {
            recipient_id: recipient_id.to_string(),
            goal_id: goal_id.to_string(),
            month,
            fulfilled,
        });
    }
    Ok(goals)
}

/// Reads the goals that were ordered: the follow-up's `goals.csv` (`recipient_id,goal_id`,
/// columns found by name, extra columns ignored), as (recipient_id, goal_id).
pub fn read_ordered_goals(path: &Path) -> Result<HashSet<(String, String)>, GoalsError> {
    let p = path.display().to_string();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| GoalsError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
    let header = r.headers().map_err(|e| GoalsError::Header {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let mut at = [0usize; 2];
    for (i, c) in COLUMNS[..2].iter().enumerate() {
        at[i] = header
            .iter()
            .position(|h| h == *c)
            .ok_or_else(|| GoalsError::Header {
                path: p.clone(),
                message: format!(
                    "required column '{c}' is missing (the columns are recipient_id,goal_id)"
                ),
            })?;
    }
    let mut ordered = HashSet::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| GoalsError::Row {
            path: p.clone(),
            row: e.position().map_or(i as u64 + 2, |pos| pos.line()),
            column: "(record)",
            message: e.to_string(),
        })?;
        let row = rec.position().map_or(i as u64 + 2, |pos| pos.line());
        let field = |k: usize| rec.get(at[k]).unwrap_or("");
        for (k, column) in [(0, "recipient_id"), (1, "goal_id")] {
            if field(k).is_empty() {
                return Err(GoalsError::Row {
                    path: p.clone(),
                    row,
                    column,
                    message: "empty".into(),
                });
            }
        }
        ordered.insert((field(0).to_string(), field(1).to_string()));
    }
    Ok(ordered)
}

/// The goals that were ordered, and how many followed-up goals were not (and so earn no
/// premium).
pub fn keep_ordered(goals: Vec<Goal>, ordered: &HashSet<(String, String)>) -> (Vec<Goal>, usize) {
    let before = goals.len();
    let kept: Vec<Goal> = goals
        .into_iter()
        .filter(|g| ordered.contains(&(g.recipient_id.clone(), g.goal_id.clone())))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}
