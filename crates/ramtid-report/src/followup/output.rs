//! The files: `recipients.csv`, `providers.csv`, `consumption.csv`, `followup.json` and
//! `report.html`, and `goals.csv` when the orders name goals.

use super::{html, FollowUp, FollowUpError};
use std::path::{Path, PathBuf};

pub const RECIPIENT_COLUMNS: [&str; 9] = [
    "recipient_id",
    "month",
    "ordered_min",
    "performed_min",
    "performed_staff_min",
    "visits",
    "ratio",
    "band",
    "months_outside",
];

pub const PROVIDER_COLUMNS: [&str; 9] = [
    "unit_id",
    "recipients",
    "visits",
    "performed_min",
    "expected_min",
    "index",
    "index_p10",
    "index_p90",
    "share_over",
];

pub const CONSUMPTION_COLUMNS: [&str; 11] = [
    "dimension",
    "group",
    "month",
    "recipients",
    "recipient_months",
    "performed_hours",
    "staff_hours",
    "hours_per_recipient_month",
    "staff_hours_per_recipient_month",
    "inhabitants",
    "staff_hours_per_inhabitant_year",
];

pub const GOAL_COLUMNS: [&str; 2] = ["recipient_id", "goal_id"];

fn write_err(p: &Path) -> impl Fn(std::io::Error) -> FollowUpError + '_ {
    move |source| FollowUpError::Write {
        path: p.display().to_string(),
        source,
    }
}

fn csv_err(p: &Path) -> impl Fn(csv::Error) -> FollowUpError + '_ {
    move |e| FollowUpError::Write {
        path: p.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// `recipients.csv`, in recipient then month order.
pub fn write_recipients(f: &FollowUp, path: &Path) -> Result<(), FollowUpError> {
    let mut w = csv::Writer::from_path(path).map_err(csv_err(path))?;
    w.write_record(RECIPIENT_COLUMNS).map_err(csv_err(path))?;
    for r in &f.rows {
        w.write_record([
            r.recipient_id.clone(),
            r.month.label(),
            format!("{:.1}", r.ordered_min),
            format!("{:.1}", r.performed_min),
            format!("{:.1}", r.performed_staff_min),
            r.visits.to_string(),
            r.ratio.map_or(String::new(), |x| format!("{x:.4}")),
            r.band.as_str().to_string(),
            r.months_outside.to_string(),
        ])
        .map_err(csv_err(path))?;
    }
    w.flush().map_err(write_err(path))
}

/// `providers.csv`, ranked by index (lowest first).
pub fn write_providers(f: &FollowUp, path: &Path) -> Result<(), FollowUpError> {
    let mut w = csv::Writer::from_path(path).map_err(csv_err(path))?;
    w.write_record(PROVIDER_COLUMNS).map_err(csv_err(path))?;
    for p in &f.providers {
        w.write_record([
            p.unit_id.clone(),
            p.recipients.to_string(),
            p.visits.to_string(),
            format!("{:.1}", p.performed_min),
            format!("{:.1}", p.expected_min),
            format!("{:.4}", p.index),
            format!("{:.4}", p.index_p10),
            format!("{:.4}", p.index_p90),
            format!("{:.4}", p.share_over),
        ])
        .map_err(csv_err(path))?;
    }
    w.flush().map_err(write_err(path))
}

/// `consumption.csv`: per dimension and group, each month and then the whole period (`all`).
pub fn write_consumption(f: &FollowUp, path: &Path) -> Result<(), FollowUpError> {
    let mut w = csv::Writer::from_path(path).map_err(csv_err(path))?;
    w.write_record(CONSUMPTION_COLUMNS).map_err(csv_err(path))?;
    for r in &f.consumption.rows {
        w.write_record([
            r.dimension.clone(),
            r.group.clone(),
            r.month.clone(),
            r.recipients.to_string(),
            r.recipient_months.to_string(),
            format!("{:.2}", r.performed_hours),
            format!("{:.2}", r.staff_hours),
            format!("{:.3}", r.hours_per_recipient_month),
            format!("{:.3}", r.staff_hours_per_recipient_month),
            r.inhabitants.map_or(String::new(), |n| n.to_string()),
            r.staff_hours_per_inhabitant_year
                .map_or(String::new(), |x| format!("{x:.3}")),
        ])
        .map_err(csv_err(path))?;
    }
    w.flush().map_err(write_err(path))
}

/// `goals.csv`: the goals of the orders in force, one row per recipient and goal, sorted.
pub fn write_goals(f: &FollowUp, path: &Path) -> Result<(), FollowUpError> {
    let mut w = csv::Writer::from_path(path).map_err(csv_err(path))?;
    w.write_record(GOAL_COLUMNS).map_err(csv_err(path))?;
    for (recipient, goal) in &f.orders.goals {
        w.write_record([recipient, goal]).map_err(csv_err(path))?;
    }
    w.flush().map_err(write_err(path))
}

pub fn write_all(f: &FollowUp, dir: &Path) -> Result<Vec<PathBuf>, FollowUpError> {
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let recipients = dir.join("recipients.csv");
    write_recipients(f, &recipients)?;
    let providers = dir.join("providers.csv");
    write_providers(f, &providers)?;
    let consumption = dir.join("consumption.csv");
    write_consumption(f, &consumption)?;
    let json = dir.join("followup.json");
    let mut text = serde_json::to_string_pretty(f).expect("follow-up serializes");
    text.push('\n');
    std::fs::write(&json, text).map_err(write_err(&json))?;
    let page = dir.join("report.html");
    std::fs::write(&page, html::page(f)).map_err(write_err(&page))?;
    let mut written = vec![recipients, providers, consumption, json, page];
    if !f.orders.goals.is_empty() {
        let goals = dir.join("goals.csv");
        write_goals(f, &goals)?;
        written.push(goals);
    }
    Ok(written)
}
