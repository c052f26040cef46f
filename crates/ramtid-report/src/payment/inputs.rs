//! The payment inputs as a CSV file, one row per recipient, month and category:
//! `recipient_id,unit_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min[,declined_visits_planned_min][,absence_days]`.

use super::{Month, PaymentInput};
use std::path::Path;

/// The inputs file could not be read, or a row is bad: named by file, row (the header is
/// row 1) and column.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    #[error("cannot read payment inputs {path}: {message}")]
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

/// The required columns, then the optional ones (0 when the column is absent or empty).
pub const INPUT_COLUMNS: [&str; 9] = [
    "recipient_id",
    "unit_id",
    "month",
    "category",
    "granted_schablon_min",
    "granted_ramtid_min",
    "performed_min",
    "declined_visits_planned_min",
    "absence_days",
];
const REQUIRED: usize = 7;

/// Reads a payment inputs file. The columns are found by name in the header (any order,
/// extra columns ignored); minutes are numbers >= 0, `absence_days` a whole number of days
/// no more than the month has, `month` a `YYYY-MM`.
pub fn read_payment_inputs(path: &Path) -> Result<Vec<PaymentInput>, InputsError> {
    let p = path.display().to_string();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| InputsError::Read {
            path: p.clone(),
            message: e.to_string(),
        })?;
    let header = r.headers().map_err(|e| InputsError::Header {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let mut at = [None; 9];
    for (i, c) in INPUT_COLUMNS.iter().enumerate() {
        at[i] = header.iter().position(|h| h == *c);
        if i < REQUIRED && at[i].is_none() {
            return Err(InputsError::Header {
                path: p.clone(),
                message: format!(
                    "required column '{c}' is missing (the columns are {}, then optionally {})",
                    INPUT_COLUMNS[..REQUIRED].join(","),
                    INPUT_COLUMNS[REQUIRED..].join(",")
                ),
            });
        }
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| InputsError::Row {
            path: p.clone(),
            row: e.position().map_or(i as u64 + 2, |pos| pos.line()),
            column: "(record)",
            message: e.to_string(),
        })?;
        let row = rec.position().map_or(i as u64 + 2, |pos| pos.line());
        let bad = |k: usize, message: String| InputsError::Row {
            path: p.clone(),
            row,
            column: INPUT_COLUMNS[k],
            message,
        };
        let field = |k: usize| at[k].and_then(|j| rec.get(j)).unwrap_or("");
        let text = |k: usize| {
            let v = field(k);
            if v.is_empty() {
                Err(bad(k, "empty".into()))
            } else {
                Ok(v.to_string())
            }
        };
        let minutes = |k: usize| -> Result<f64, InputsError> {
            let v = field(k);
            if v.is_empty() && k >= REQUIRED {
                return Ok(0.0);
            }
            match v.parse::<f64>() {
                Ok(m) if m.is_finite() && m >= 0.0 => Ok(m),
                _ => Err(bad(k, format!("'{v}' is not minutes >= 0"))),
            }
        };
        let month: Month = field(2).parse().map_err(|m| bad(2, m))?;
        let absence = field(8);
        let absence_days = if absence.is_empty() {
            0
        } else {
            match absence.parse::<u32>() {
                Ok(d) if d <= month.days() => d,
                _ => {
                    return Err(bad(
                        8,
                        format!(
                            "'{absence}' is not a number of days 0 to {} ({month})",
                            month.days()
                        ),
                    ))
                }
            }
        };
        out.push(PaymentInput {
            recipient_id: text(0)?,
            unit_id: text(1)?,
            month,
            category: text(3)?,
            granted_schablon_min: minutes(4)?,
            granted_ramtid_min: minutes(5)?,
            performed_min: minutes(6)?,
            declined_visits_planned_min: minutes(7)?,
            absence_days,
        });
    }
    Ok(out)
}
