//! What was ordered per recipient: a CSV `recipient_id,weekly_min[,valid_from]` (several
//! rows per recipient for orders that change; the latest begun is in force), a
//! `needs.jsonl` whose needs the model estimates (in force throughout), as `ramtid estimate`
//! does, or the calculation history (`sqlite://…`, `postgres://…`): each case's latest
//! calculation, its case id taken as the log's `recipient_id`, in force throughout. A needs line that cannot be estimated is counted, reported and left out; a bad CSV
//! row stops the run with file, row and column.

use super::month::{parse_date, Period};
use super::FollowUpError;
use ramtid_core::estimate::estimate;
use ramtid_core::model::Model;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// One needs line that could not be estimated.
#[derive(Debug, Clone, Serialize)]
pub struct OrderProblem {
    pub line: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub recipient_id: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Orders {
    pub file: String,
    /// `csv` or `needs`.
    pub kind: String,
    pub rows: usize,
    pub failed: usize,
    /// The first failing needs lines (all are counted in `failed`).
    pub problems: Vec<OrderProblem>,
    #[serde(skip)]
    pub by_recipient: BTreeMap<String, Vec<Period>>,
    /// Per recipient, the needs behind its order, when the orders carry them (a needs.jsonl
    /// or the history): for the check that the same needs get the same time.
    #[serde(skip)]
    pub profiles: HashMap<String, OrderedProfile>,
    /// (recipient_id, goal_id) of the goals the orders in force serve (the needs' `goal_id`s):
    /// written as `goals.csv`, so that the payment pays a goal premium only for goals ordered.
    #[serde(skip)]
    pub goals: BTreeSet<(String, String)>,
}

/// What an order was calculated from.
#[derive(Debug, Clone)]
pub struct OrderedProfile {
    /// The needs set without its recipient id, needs sorted: equal keys are equal needs
    /// and context.
    pub key: String,
    /// The unit the order went to, when the history says it.
    pub unit_id: Option<String>,
    /// `name/version` of the model that calculated it.
    pub model: String,
}

/// The needs set as a key: recipient id left out, needs sorted, context in key order (a
/// JSON object's keys are sorted), so that the same needs written in another order match.
/// Goal ids are left out too: they name a person's goals, not what the needs take.
pub fn profile_key(set: &ramtid_core::needs::NeedsSet) -> String {
    let mut needs: Vec<String> = set
        .needs
        .iter()
        .map(|n| {
            let mut n = n.clone();
            n.goal_id = None;
            serde_json::to_string(&n).unwrap_or_default()
        })
        .collect();
    needs.sort();
    let context = serde_json::to_string(&set.context).unwrap_or_default();
    format!(r#"{{"context":{context},"needs":[{}]}}"#, needs.join(","))
}

/// The goal ids of a needs set, with the recipient they belong to.
fn goals_of(recipient: &str, set: &ramtid_core::needs::NeedsSet) -> Vec<(String, String)> {
    set.needs
        .iter()
        .filter_map(|n| n.goal_id.as_deref().map(str::trim))
        .filter(|g| !g.is_empty())
        .map(|g| (recipient.to_string(), g.to_string()))
        .collect()
}

const PROBLEMS_KEPT: usize = 20;

/// Reads ORDERS: a history URL, `.jsonl` / `.json` as needs, anything else as the CSV.
pub fn read_orders(model: &Model, path: &Path) -> Result<Orders, FollowUpError> {
    if let Some(url) = path
        .to_str()
        .filter(|s| s.starts_with("sqlite://") || s.starts_with("postgres://"))
    {
        return read_history(url);
    }
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| FollowUpError::Io {
        path: name.clone(),
        source,
    })?;
    read_orders_from(model, file, &name)
}

/// Reads an orders file already opened (the service opens it inside its data directory);
/// `name` is how it is shown, and its extension decides the format.
pub fn read_orders_from(
    model: &Model,
    file: std::fs::File,
    name: &str,
) -> Result<Orders, FollowUpError> {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "jsonl" || ext == "json" {
        read_needs(model, file, name)
    } else {
        read_csv(file, name)
    }
}

/// The latest calculation per case in the history, read only (a server may have it open).
fn read_history(url: &str) -> Result<Orders, FollowUpError> {
    let shown = without_credentials(url);
    let err =
        |e: ramtid_history::HistoryError| FollowUpError::Nothing(format!("history {shown}: {e}"));
    let store = ramtid_history::HistoryStore::open_read_only(url).map_err(err)?;
    orders_from_history(&store, &shown)
}

/// The latest calculation per case in an open history (blocking: call it off an async
/// runtime's threads); `shown` names the history in messages.
pub fn orders_from_history(
    store: &ramtid_history::HistoryStore,
    shown: &str,
) -> Result<Orders, FollowUpError> {
    let err =
        |e: ramtid_history::HistoryError| FollowUpError::Nothing(format!("history {shown}: {e}"));
    let mut out = Orders {
        file: shown.to_string(),
        kind: "history".into(),
        ..Orders::default()
    };
    let mut rx = store.latest_per_case(1000);
    while let Some(chunk) = rx.blocking_recv() {
        for stored in chunk.map_err(err)? {
            out.rows += 1;
            // The needs as stored with the calculation; one that cannot be read names no
            // goals and no profile (its minutes are still the order's).
            if let Ok(set) =
                serde_json::from_str::<ramtid_core::needs::NeedsSet>(&stored.calc.needs_json)
            {
                out.goals.extend(goals_of(&stored.calc.case_id, &set));
                out.profiles.insert(
                    stored.calc.case_id.clone(),
                    OrderedProfile {
                        key: profile_key(&set),
                        unit_id: Some(stored.calc.unit_id.clone()).filter(|u| !u.is_empty()),
                        model: format!("{}/{}", stored.calc.model_name, stored.calc.model_version),
                    },
                );
            }
            out.by_recipient.insert(
                stored.calc.case_id,
                vec![Period {
                    from: None,
                    weekly_min: stored.calc.weekly_min,
                }],
            );
        }
    }
    if out.rows == 0 {
        return Err(FollowUpError::Nothing(format!(
            "history {}: no calculations",
            out.file
        )));
    }
    Ok(out)
}

/// A history URL as it may be shown: a `user:password@` part is left out.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn read_needs(model: &Model, mut file: std::fs::File, name: &str) -> Result<Orders, FollowUpError> {
    let name = name.to_string();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| FollowUpError::Io {
        path: name.clone(),
        source,
    })?;
    let lines = ramtid_core::needs::parse_needs_file(&bytes)
        .map_err(|e| FollowUpError::Nothing(format!("{name}: {e}")))?;
    let mut out = Orders {
        file: name.clone(),
        kind: "needs".into(),
        ..Orders::default()
    };
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (line, set) in lines {
        out.rows += 1;
        let fail = |out: &mut Orders, id: String, message: String| {
            out.failed += 1;
            if out.problems.len() < PROBLEMS_KEPT {
                out.problems.push(OrderProblem {
                    line,
                    recipient_id: id,
                    message,
                });
            }
        };
        let set = match set {
            Ok(s) => s,
            Err(e) => {
                fail(&mut out, String::new(), e);
                continue;
            }
        };
        if let Some(first) = first_line.get(&set.recipient_id) {
            let m = format!("recipient_id appears again (first on line {first})");
            fail(&mut out, String::new(), m);
            continue;
        }
        match set.validate(&model.catalog) {
            Ok(valid) => {
                first_line.insert(set.recipient_id.clone(), line);
                out.goals.extend(goals_of(&set.recipient_id, &set));
                let e = estimate(model, &valid);
                out.profiles.insert(
                    set.recipient_id.clone(),
                    OrderedProfile {
                        key: profile_key(&set),
                        unit_id: None,
                        model: format!("{}/{}", model.name(), model.version()),
                    },
                );
                out.by_recipient.insert(
                    set.recipient_id,
                    vec![Period {
                        from: None,
                        weekly_min: e.weekly_min,
                    }],
                );
            }
            // An id refused as a personal identity number is not copied into the report.
            Err(e) if ramtid_core::personnummer::looks_like_personnummer(&set.recipient_id) => {
                fail(&mut out, String::new(), e.to_string())
            }
            Err(e) => fail(&mut out, set.recipient_id.clone(), e.to_string()),
        }
    }
    if out.by_recipient.is_empty() {
        return Err(FollowUpError::Nothing(format!(
            "{name}: no needs line could be estimated ({} lines, {} failed)",
            out.rows, out.failed
        )));
    }
    Ok(out)
}

fn read_csv(file: std::fs::File, name: &str) -> Result<Orders, FollowUpError> {
    let name = name.to_string();
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let header: Vec<String> = csv
        .headers()
        .map_err(|e| FollowUpError::csv(&name, e))?
        .iter()
        .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let find = |c: &str| header.iter().position(|n| n == c);
    let missing = |c: &str| {
        FollowUpError::Row {
        path: name.clone(),
        row: 1,
        column: c.to_string(),
        message: format!(
            "required column is missing (header: {}; expected recipient_id,weekly_min[,valid_from])",
            header.join(",")
        ),
    }
    };
    let id = find("recipient_id").ok_or_else(|| missing("recipient_id"))?;
    let weekly = find("weekly_min").ok_or_else(|| missing("weekly_min"))?;
    let from = find("valid_from");
    let mut out = Orders {
        file: name.clone(),
        kind: "csv".into(),
        ..Orders::default()
    };
    // (recipient, valid_from) → row, to name a repeat.
    let mut seen: HashMap<(String, Option<i32>), u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while csv
        .read_record(&mut record)
        .map_err(|e| FollowUpError::csv(&name, e))?
    {
        let row = record.position().map(|p| p.line()).unwrap_or(0);
        let bad = |col: usize, message: String| FollowUpError::Row {
            path: name.clone(),
            row,
            column: header[col].clone(),
            message,
        };
        if record.len() != header.len() {
            return Err(FollowUpError::Row {
                path: name.clone(),
                row,
                column: "(row)".into(),
                message: format!(
                    "has {} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            });
        }
        let rid = record.get(id).unwrap_or("").trim();
        if rid.is_empty() {
            return Err(bad(id, "is empty".into()));
        }
        if ramtid_core::personnummer::looks_like_personnummer(rid) {
            return Err(bad(
                id,
                "looks like a personnummer or samordningsnummer; ids must be pseudonymous (value not shown)".into(),
            ));
        }
        let w = record.get(weekly).unwrap_or("").trim();
        let weekly_min = match w.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => x,
            _ => {
                return Err(bad(
                    weekly,
                    format!(
                        "'{}' is not a number of minutes ≥ 0 (use '.' as decimal sign)",
                        ramtid_core::echo::echo(w)
                    ),
                ))
            }
        };
        let valid_from = match from.map(|p| record.get(p).unwrap_or("").trim()) {
            None | Some("") => None,
            Some(s) => Some(parse_date(s).map_err(|e| bad(from.unwrap(), e))?),
        };
        if let Some(first) = seen.insert((rid.to_string(), valid_from), row) {
            let col = from.unwrap_or(id);
            return Err(bad(
                col,
                format!(
                    "a second order for this recipient from the same day (first on row {first})"
                ),
            ));
        }
        out.rows += 1;
        out.by_recipient
            .entry(rid.to_string())
            .or_default()
            .push(Period {
                from: valid_from,
                weekly_min,
            });
    }
    if out.rows == 0 {
        return Err(FollowUpError::Nothing(format!("{name} has no orders")));
    }
    for periods in out.by_recipient.values_mut() {
        periods.sort_by_key(|p| p.from.unwrap_or(i32::MIN));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn history_urls_are_shown_without_credentials() {
        assert_eq!(
            without_credentials("postgres://anna:hemligt@db.kommun.se/ramtid"),
            "postgres://…@db.kommun.se/ramtid"
        );
        assert_eq!(
            without_credentials("sqlite://data/h.db"),
            "sqlite://data/h.db"
        );
    }
}
