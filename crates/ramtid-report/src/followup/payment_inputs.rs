//! Payment inputs built from a follow-up: one [`PaymentInput`] per recipient, month, unit
//! and insats category, so that `ramtid follow-up --payment` pays from the same cleaned
//! visits and orders it follows up (and writes them as `payment_inputs.csv`, which
//! `ramtid payment --inputs` reads, for trying other payment models).
//!
//! - **Performed minutes** per category: each visit's minutes shared over its tasks'
//!   categories in proportion to their schablon minutes (a visit of one category is wholly
//!   that category's), and counted for the unit that made the visit.
//! - **Granted ramtid** per category: the recipient-month's ordered minutes, split over the
//!   categories as the order's estimate shares them (orders that carry their needs), or
//!   else as the month's performed minutes do (all to `personal_care` in a month without
//!   visits); and over units as the month's performed minutes are.
//! - **Granted schablon**: the order's stacked schablon per category × the days in force ÷ 7,
//!   when the orders carry their needs; 0 otherwise (a minutes-only CSV has no schablon).
//! - Declined visits and absence days are not in a visit log: 0 (give them in an inputs file
//!   to `ramtid payment`).

use super::orders::Orders;
use super::recipients::{reported, Table};
use super::{FollowUpOptions, Month};
use crate::payment::{Month as PayMonth, PaymentInput};
use ramtid_core::catalog::Catalog;
use ramtid_core::visits::VisitLog;
use std::collections::{BTreeMap, HashMap};

/// The category given a month's ordered minutes when nothing else tells.
const FALLBACK_CATEGORY: &str = "personal_care";

/// Per (log recipient, month): performed minutes per (unit, category).
type Performed = HashMap<(u32, Month), BTreeMap<(u32, String), f64>>;

fn performed_by_category(log: &VisitLog, catalog: &Catalog, opts: &FollowUpOptions) -> Performed {
    let mut out: Performed = HashMap::new();
    for v in log.table.iter() {
        let m = Month::of_day(v.day);
        if !reported(opts, m) {
            continue;
        }
        let cell = out.entry((v.recipient, m)).or_default();
        let weights: Vec<(&str, f64)> = v
            .tasks
            .iter()
            .map(|&t| {
                let i = &catalog.insatser[t as usize];
                (i.category.as_str(), i.schablon_min.max(0.0))
            })
            .collect();
        let total: f64 = weights.iter().map(|w| w.1).sum();
        for (c, w) in &weights {
            let share = if total > 0.0 {
                w / total
            } else {
                1.0 / weights.len() as f64
            };
            *cell.entry((v.unit, (*c).to_string())).or_default() += v.duration * share;
        }
    }
    out
}

/// Builds the payment inputs of a follow-up's recipient-months.
pub fn payment_inputs(
    log: &VisitLog,
    catalog: &Catalog,
    orders: &Orders,
    table: &Table,
    opts: &FollowUpOptions,
) -> Vec<PaymentInput> {
    let performed = performed_by_category(log, catalog, opts);
    let log_index: HashMap<&str, u32> = log
        .recipients
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();
    // A recipient's unit in a month without visits: the unit with most minutes over the log.
    let mut main_unit: HashMap<u32, (u32, f64)> = HashMap::new();
    for ((r, _), cells) in &performed {
        let mut by_unit: BTreeMap<u32, f64> = BTreeMap::new();
        for ((u, _), min) in cells {
            *by_unit.entry(*u).or_default() += min;
        }
        for (u, min) in by_unit {
            let e = main_unit.entry(*r).or_insert((u, 0.0));
            if min > e.1 {
                *e = (u, min);
            }
        }
    }
    let mut out = Vec::new();
    for row in &table.rows {
        let ridx = log_index.get(row.recipient_id.as_str()).copied();
        let cells = ridx.and_then(|r| performed.get(&(r, row.month)));
        let month = PayMonth {
            year: row.month.year(),
            month: row.month.month(),
        };
        let mix = orders.mix.get(&row.recipient_id);
        // (unit, category) → performed minutes; the month's total per unit.
        let mut units: BTreeMap<u32, f64> = BTreeMap::new();
        let mut by_category: BTreeMap<String, f64> = BTreeMap::new();
        if let Some(c) = cells {
            for ((u, cat), min) in c {
                *units.entry(*u).or_default() += min;
                *by_category.entry(cat.clone()).or_default() += min;
            }
        }
        let performed_total: f64 = units.values().sum();
        // The categories the order is paid in: the estimate's, else the performed ones.
        let ramtid_share: BTreeMap<String, f64> = match mix {
            Some(m) if !m.ramtid_share.is_empty() => m.ramtid_share.clone(),
            _ if performed_total > 0.0 => by_category
                .iter()
                .map(|(c, m)| (c.clone(), m / performed_total))
                .collect(),
            _ => BTreeMap::from([(FALLBACK_CATEGORY.to_string(), 1.0)]),
        };
        let unit_share: Vec<(u32, f64)> = if performed_total > 0.0 {
            units
                .iter()
                .map(|(u, m)| (*u, m / performed_total))
                .collect()
        } else {
            match ridx.and_then(|r| main_unit.get(&r)) {
                Some(&(u, _)) => vec![(u, 1.0)],
                None => Vec::new(),
            }
        };
        let unit_name = |u: u32| log.units[u as usize].clone();
        let days = f64::from(row.days_in_force) / 7.0;
        let mut categories: Vec<&String> = ramtid_share.keys().collect();
        for c in by_category.keys() {
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
        if unit_share.is_empty() {
            // Ordered, never visited by any unit in the log: unpaid under the performed
            // bases, and paid to no one under the granted ones; listed for the economist.
            for c in categories {
                out.push(PaymentInput {
                    recipient_id: row.recipient_id.clone(),
                    unit_id: "(no unit)".into(),
                    month,
                    category: c.clone(),
                    granted_schablon_min: mix
                        .and_then(|m| m.schablon_weekly_min.get(c))
                        .map_or(0.0, |w| w * days),
                    granted_ramtid_min: row.ordered_min
                        * ramtid_share.get(c).copied().unwrap_or(0.0),
                    performed_min: 0.0,
                    declined_visits_planned_min: 0.0,
                    absence_days: 0,
                });
            }
            continue;
        }
        for &(u, share) in &unit_share {
            for c in &categories {
                let performed_min = cells
                    .and_then(|cells| cells.get(&(u, (*c).clone())))
                    .copied()
                    .unwrap_or(0.0);
                let ramtid = row.ordered_min * ramtid_share.get(*c).copied().unwrap_or(0.0) * share;
                let schablon = mix
                    .and_then(|m| m.schablon_weekly_min.get(*c))
                    .map_or(0.0, |w| w * days * share);
                if performed_min == 0.0 && ramtid == 0.0 && schablon == 0.0 {
                    continue;
                }
                out.push(PaymentInput {
                    recipient_id: row.recipient_id.clone(),
                    unit_id: unit_name(u),
                    month,
                    category: (*c).clone(),
                    granted_schablon_min: schablon,
                    granted_ramtid_min: ramtid,
                    performed_min,
                    declined_visits_planned_min: 0.0,
                    absence_days: 0,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramtid_core::slot::Slot;
    use ramtid_core::visits::{ReadReport, VisitTable};

    #[test]
    fn a_mixed_visit_is_shared_over_categories_by_schablon() {
        let catalog = Catalog::from_toml(
            "[[insats]]\ncode='CARE'\ncategory='personal_care'\nschablon_min=30\n\
             [[insats]]\ncode='CLEAN'\ncategory='service'\nschablon_min=10\n",
            "t",
        )
        .unwrap();
        let mut table = VisitTable::new(0);
        // One visit of 60 min with both tasks (30 : 10 → 45 and 15), one of 20 min cleaning.
        table.push(0, 0, 0, Slot::Morning, 1, 60.0, &[0, 1], &[]);
        table.push(0, 1, 1, Slot::Morning, 1, 20.0, &[1], &[]);
        let log = VisitLog {
            table,
            units: vec!["A".into(), "B".into()],
            recipients: vec!["R".into()],
            report: ReadReport::default(),
        };
        let p = performed_by_category(&log, &catalog, &FollowUpOptions::default());
        let cells = &p[&(0, Month::of_day(0))];
        assert!((cells[&(0, "personal_care".to_string())] - 45.0).abs() < 1e-9);
        assert!((cells[&(0, "service".to_string())] - 15.0).abs() < 1e-9);
        assert!((cells[&(1, "service".to_string())] - 20.0).abs() < 1e-9);
        assert_eq!(cells.len(), 3);
    }
}
