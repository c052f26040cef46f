//! Per recipient and calendar month: ordered against performed minutes, the band, and runs
//! of months outside it.

use super::band::Band;
use super::month::{ordered_minutes, Month};
use super::orders::Orders;
use super::FollowUpOptions;
use ramtid_core::visits::VisitLog;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One row of `recipients.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientMonth {
    pub recipient_id: String,
    pub month: Month,
    pub ordered_min: f64,
    /// Days of the month with an order in force that the log covers.
    pub days_in_force: i32,
    pub performed_min: f64,
    pub performed_staff_min: f64,
    pub visits: u32,
    /// performed ÷ ordered; None without an order in force (or an order of 0 minutes).
    pub ratio: Option<f64>,
    pub band: Band,
    /// Months in a row, up to and including this one, outside the band (0 when inside).
    pub months_outside: u32,
}

/// A recipient whose deviation persists: the Kalmar loop's input to re-budgeting.
#[derive(Debug, Clone, Serialize)]
pub struct Reassess {
    pub recipient_id: String,
    pub month: String,
    pub band: Band,
    pub months_outside: u32,
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub recipients: usize,
    pub recipient_months: usize,
    /// Rows per band (`no_order` included).
    pub bands: BTreeMap<String, usize>,
    pub ordered_min: f64,
    pub performed_min: f64,
    pub performed_staff_min: f64,
    pub visits: u64,
    /// Σ performed ÷ Σ ordered over the rows with an order.
    pub ratio: Option<f64>,
    /// Recipients in the order file that the log never visits.
    pub ordered_not_visited: usize,
    /// Recipients in the log without any order.
    pub visited_not_ordered: usize,
    pub reassess: usize,
}

/// What [`follow_recipients`] returns: the rows and what the provider comparison needs.
pub struct Table {
    pub rows: Vec<RecipientMonth>,
    pub summary: Summary,
    pub reassess: Vec<Reassess>,
    /// Every month the log touches, in order.
    pub months: Vec<Month>,
    pub first_day: i32,
    pub last_day: i32,
    /// Band of a reported recipient-month, by (log recipient index, month).
    pub band_of: HashMap<(u32, Month), Band>,
}

#[derive(Default, Clone, Copy)]
struct Agg {
    performed: f64,
    staff: f64,
    visits: u32,
}

/// Whether a month is reported under `opts`.
pub fn reported(opts: &FollowUpOptions, m: Month) -> bool {
    opts.month.is_none_or(|only| only == m)
}

pub fn follow_recipients(log: &VisitLog, orders: &Orders, opts: &FollowUpOptions) -> Table {
    let mut agg: HashMap<(u32, Month), Agg> = HashMap::new();
    let (mut first_day, mut last_day) = (i32::MAX, i32::MIN);
    for v in log.table.iter() {
        first_day = first_day.min(v.day);
        last_day = last_day.max(v.day);
        let a = agg.entry((v.recipient, Month::of_day(v.day))).or_default();
        a.performed += v.duration;
        a.staff += v.duration * f64::from(v.staff);
        a.visits += 1;
    }
    let months: Vec<Month> = (Month::of_day(first_day).0..=Month::of_day(last_day).0)
        .map(Month)
        .collect();
    let log_index: HashMap<&str, u32> = log
        .recipients
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();
    let ids: BTreeSet<&str> = orders
        .by_recipient
        .keys()
        .map(String::as_str)
        .chain(log.recipients.iter().map(String::as_str))
        .collect();

    let mut summary = Summary::default();
    let mut rows = Vec::new();
    let mut reassess = Vec::new();
    let mut band_of = HashMap::new();
    for id in ids {
        let periods = orders.by_recipient.get(id);
        let ridx = log_index.get(id).copied();
        match (periods.is_some(), ridx.is_some()) {
            (true, false) => summary.ordered_not_visited += 1,
            (false, true) => summary.visited_not_ordered += 1,
            _ => {}
        }
        let mut run = 0u32;
        let mut last: Option<usize> = None;
        for &m in &months {
            let (a, b) = (m.first_day().max(first_day), m.last_day().min(last_day));
            let (ordered, days) = periods.map_or((0.0, 0), |p| ordered_minutes(p, a, b));
            let got = ridx.and_then(|r| agg.get(&(r, m)).copied());
            if days == 0 && got.is_none() {
                run = 0;
                continue;
            }
            let got = got.unwrap_or_default();
            let ratio = (ordered > 0.0).then(|| got.performed / ordered);
            let band = Band::of(ratio, opts.tolerance);
            run = if band.is_outside() { run + 1 } else { 0 };
            if !reported(opts, m) {
                continue;
            }
            if let Some(r) = ridx {
                band_of.insert((r, m), band);
            }
            last = Some(rows.len());
            rows.push(RecipientMonth {
                recipient_id: id.to_string(),
                month: m,
                ordered_min: ordered,
                days_in_force: days,
                performed_min: got.performed,
                performed_staff_min: got.staff,
                visits: got.visits,
                ratio,
                band,
                months_outside: run,
            });
        }
        if let Some(k) = last {
            let r = &rows[k];
            if r.months_outside >= opts.reassess_after {
                reassess.push(Reassess {
                    recipient_id: r.recipient_id.clone(),
                    month: r.month.label(),
                    band: r.band,
                    months_outside: r.months_outside,
                    ratio: r.ratio,
                });
            }
            summary.recipients += 1;
        }
    }
    summary.recipient_months = rows.len();
    let (mut ord_with, mut perf_with) = (0.0, 0.0);
    for r in &rows {
        *summary
            .bands
            .entry(r.band.as_str().to_string())
            .or_default() += 1;
        summary.ordered_min += r.ordered_min;
        summary.performed_min += r.performed_min;
        summary.performed_staff_min += r.performed_staff_min;
        summary.visits += u64::from(r.visits);
        if r.ratio.is_some() {
            ord_with += r.ordered_min;
            perf_with += r.performed_min;
        }
    }
    summary.ratio = (ord_with > 0.0).then(|| perf_with / ord_with);
    summary.reassess = reassess.len();
    Table {
        rows,
        summary,
        reassess,
        months,
        first_day,
        last_day,
        band_of,
    }
}
