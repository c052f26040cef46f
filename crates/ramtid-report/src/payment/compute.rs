//! The payment per unit and month under every basis, and `payment.csv`.

use super::{Basis, CheckedPayment, Goal, Month};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What was granted and performed for one recipient in one month and one category, as the
/// caller has gathered it (granted minutes prorated for the days the decision was in force).
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentInput {
    pub recipient_id: String,
    /// The provider or team that served the recipient.
    pub unit_id: String,
    pub month: Month,
    /// A category with a rate in the configuration, e.g. `personal_care`.
    pub category: String,
    /// Granted minutes as the schablon (standard times) for the month.
    pub granted_schablon_min: f64,
    /// Granted frame time (ramtid) minutes for the month.
    pub granted_ramtid_min: f64,
    /// Performed (logged, wall-clock) minutes.
    pub performed_min: f64,
    /// Planned minutes of visits the recipient declined with short notice (on days that are
    /// not absence days).
    pub declined_visits_planned_min: f64,
    /// Days of the month the recipient was absent (hospital stay, travel): no visits planned.
    pub absence_days: u32,
}

/// An input row that cannot be paid: which row (0-based index into the inputs) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "payment input {index} (recipient '{recipient_id}', {month}, category '{category}'): {message}"
)]
pub struct InputError {
    pub index: usize,
    pub recipient_id: String,
    pub month: Month,
    pub category: String,
    pub message: String,
}

/// The payment of one unit in one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitMonthPayment {
    pub unit_id: String,
    pub month: Month,
    /// The chosen basis.
    pub basis: Basis,
    /// Paid hours under the chosen basis.
    pub hours: f64,
    /// The amount under the chosen basis, kr.
    pub amount_kr: f64,
    /// Fulfilled goals attributed to the unit this month.
    pub goals_fulfilled: u32,
    pub goal_premium_kr: f64,
    /// `amount_kr + goal_premium_kr`.
    pub total_kr: f64,
    /// Paid hours under each basis, in the order of [`Basis::ALL`].
    pub hours_by_basis: [f64; 4],
    /// The amount under each basis, in the order of [`Basis::ALL`].
    pub amount_by_basis_kr: [f64; 4],
}

/// How the goals file was used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GoalSummary {
    /// Goals read.
    pub goals: u64,
    pub fulfilled: u64,
    /// Fulfilled goals paid to a unit.
    pub paid: u64,
    /// Fulfilled goals whose recipient has no input row in the month assessed (not paid).
    pub unattributed: u64,
}

/// The payment per unit and month, ordered by unit and month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payment {
    pub basis: Basis,
    pub rows: Vec<UnitMonthPayment>,
    pub goals: GoalSummary,
}

/// Paid minutes of one input row under each basis (see the module docs for the formulas).
fn paid_minutes(p: &CheckedPayment, r: &PaymentInput) -> [f64; 4] {
    let days = f64::from(r.month.days());
    let a = 1.0 - (1.0 - p.absence_share()) * f64::from(r.absence_days) / days;
    let x = p.short_notice_share();
    let d = r.declined_visits_planned_min;
    let schablon = (r.granted_schablon_min * a - (1.0 - x) * d).max(0.0);
    let ramtid = (r.granted_ramtid_min * a - (1.0 - x) * d).max(0.0);
    let performed = r.performed_min + x * d;
    let cap = r.granted_ramtid_min * a * (1.0 + p.tolerance());
    [schablon, ramtid, performed, performed.min(cap)]
}

fn check_input(p: &CheckedPayment, i: usize, r: &PaymentInput) -> Result<f64, InputError> {
    let bad = |message: String| InputError {
        index: i,
        recipient_id: r.recipient_id.clone(),
        month: r.month,
        category: r.category.clone(),
        message,
    };
    let rate = p.rate(&r.category).ok_or_else(|| {
        bad(format!(
            "the category has no rate in the payment config (rates: {})",
            p.rates().keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    if r.unit_id.is_empty() {
        return Err(bad("unit_id is empty".into()));
    }
    for (name, v) in [
        ("granted_schablon_min", r.granted_schablon_min),
        ("granted_ramtid_min", r.granted_ramtid_min),
        ("performed_min", r.performed_min),
        ("declined_visits_planned_min", r.declined_visits_planned_min),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad(format!("{name}: {v} is not minutes >= 0")));
        }
    }
    if r.absence_days > r.month.days() {
        return Err(bad(format!(
            "absence_days: {} is more than the {} days of the month",
            r.absence_days,
            r.month.days()
        )));
    }
    Ok(rate)
}

/// The payment per unit and month under the checked configuration's basis and every other
/// basis, with the goal premium of the fulfilled goals.
pub fn compute(
    p: &CheckedPayment,
    inputs: &[PaymentInput],
    goals: &[Goal],
) -> Result<Payment, InputError> {
    #[derive(Default)]
    struct Acc {
        minutes: [f64; 4],
        kr: [f64; 4],
        goals: u32,
    }
    let mut acc: BTreeMap<(String, Month), Acc> = BTreeMap::new();
    // Performed minutes per recipient, month and unit: a goal goes to the unit with most.
    let mut served: HashMap<(&str, Month), BTreeMap<&str, f64>> = HashMap::new();
    for (i, r) in inputs.iter().enumerate() {
        let rate = check_input(p, i, r)?;
        let m = paid_minutes(p, r);
        let a = acc.entry((r.unit_id.clone(), r.month)).or_default();
        for (b, &min) in m.iter().enumerate() {
            a.minutes[b] += min;
            a.kr[b] += min / 60.0 * rate;
        }
        *served
            .entry((r.recipient_id.as_str(), r.month))
            .or_default()
            .entry(r.unit_id.as_str())
            .or_default() += r.performed_min;
    }
    let mut summary = GoalSummary::default();
    for g in goals {
        summary.goals += 1;
        if !g.fulfilled {
            continue;
        }
        summary.fulfilled += 1;
        let Some(units) = served.get(&(g.recipient_id.as_str(), g.month)) else {
            summary.unattributed += 1;
            continue;
        };
        // Most performed minutes; on a tie the first unit by id (the map is ordered).
        let unit = units
            .iter()
            .fold(None::<(&str, f64)>, |best, (&u, &m)| match best {
                Some((_, bm)) if bm >= m => best,
                _ => Some((u, m)),
            })
            .map(|(u, _)| u)
            .expect("a served recipient has a unit");
        acc.get_mut(&(unit.to_string(), g.month))
            .expect("a served unit has a row")
            .goals += 1;
        summary.paid += 1;
    }
    let basis = p.basis();
    let rows = acc
        .into_iter()
        .map(|((unit_id, month), a)| {
            let premium = f64::from(a.goals) * p.goal_premium_kr();
            let amount = a.kr[basis.index()];
            UnitMonthPayment {
                unit_id,
                month,
                basis,
                hours: a.minutes[basis.index()] / 60.0,
                amount_kr: amount,
                goals_fulfilled: a.goals,
                goal_premium_kr: premium,
                total_kr: amount + premium,
                hours_by_basis: a.minutes.map(|m| m / 60.0),
                amount_by_basis_kr: a.kr,
            }
        })
        .collect();
    Ok(Payment {
        basis,
        rows,
        goals: summary,
    })
}

/// `payment.csv`'s header.
pub const PAYMENT_CSV_HEADER: [&str; 11] = [
    "unit_id",
    "month",
    "basis",
    "hours",
    "amount_kr",
    "goal_premium_kr",
    "total_kr",
    "amount_granted_schablon_kr",
    "amount_granted_ramtid_kr",
    "amount_performed_kr",
    "amount_performed_capped_kr",
];

/// An amount rounded to öre.
fn ore(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn kr(v: f64) -> String {
    format!("{:.2}", ore(v))
}

impl Payment {
    /// Writes `payment.csv` (see the module docs for its columns).
    pub fn write_payment_csv(&self, path: &Path) -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_path(path)?;
        w.write_record(PAYMENT_CSV_HEADER)?;
        for r in &self.rows {
            let [s, g, pf, pc] = r.amount_by_basis_kr.map(kr);
            w.write_record([
                r.unit_id.clone(),
                r.month.to_string(),
                r.basis.to_string(),
                format!("{:.2}", r.hours),
                kr(r.amount_kr),
                kr(r.goal_premium_kr),
                // The sum of the two rounded amounts, so the columns add up to the öre.
                kr(ore(r.amount_kr) + ore(r.goal_premium_kr)),
                s,
                g,
                pf,
                pc,
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

/// Thousands separated by a thin space, to the öre: `12 345.60`.
fn kr_text(v: f64) -> String {
    let s = format!("{:.2}", ore(v));
    let (int, dec) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{dec}")
}

impl Payment {
    /// The amount of every unit and month under each basis, summed (in the order of
    /// [`Basis::ALL`]): what each model would pay in all.
    pub fn totals_by_basis_kr(&self) -> [f64; 4] {
        let mut t = [0.0; 4];
        for r in &self.rows {
            for (t, a) in t.iter_mut().zip(r.amount_by_basis_kr) {
                *t += a;
            }
        }
        t
    }

    /// The payment as a section of an HTML report: what each model would pay in all, against
    /// the chosen basis, and a table per unit and month (the chosen basis's column marked
    /// `class="chosen"`). Self-contained markup, every name escaped.
    pub fn html_section(&self) -> String {
        use crate::evaluate::report::esc;
        use std::fmt::Write as _;
        let chosen = self.basis.index();
        let totals = self.totals_by_basis_kr();
        let premium: f64 = self.rows.iter().map(|r| r.goal_premium_kr).sum();
        let mut s = String::new();
        let _ = write!(
            s,
            "<section id=\"payment\"><h2>Payment</h2><p>Basis <b>{}</b>: {} kr and {} kr goal \
             premium ({} of {} fulfilled goals paid, {} unattributed) over {} unit-months.</p>",
            self.basis,
            kr_text(totals[chosen]),
            kr_text(premium),
            self.goals.paid,
            self.goals.fulfilled,
            self.goals.unattributed,
            self.rows.len()
        );
        s.push_str("<table class=\"payment-bases\"><tr><th>basis</th><th>amount kr</th><th>against the chosen basis</th></tr>");
        for b in Basis::ALL {
            let diff = totals[b.index()] - totals[chosen];
            let rel = if totals[chosen] > 0.0 {
                format!(" ({:+.1} %)", 100.0 * diff / totals[chosen])
            } else {
                String::new()
            };
            let _ = write!(
                s,
                "<tr{}><td>{b}</td><td>{}</td><td>{}{}{rel}</td></tr>",
                if b == self.basis {
                    " class=\"chosen\""
                } else {
                    ""
                },
                kr_text(totals[b.index()]),
                if diff >= 0.0 { "+" } else { "" },
                kr_text(diff),
            );
        }
        s.push_str("</table><table class=\"payment\"><tr><th>unit</th><th>month</th><th>hours</th><th>goals</th><th>goal premium kr</th><th>total kr</th>");
        for b in Basis::ALL {
            let _ = write!(
                s,
                "<th{}>{b} kr</th>",
                if b == self.basis {
                    " class=\"chosen\""
                } else {
                    ""
                }
            );
        }
        s.push_str("</tr>");
        for r in &self.rows {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td>",
                esc(&r.unit_id),
                r.month,
                r.hours,
                r.goals_fulfilled,
                kr_text(r.goal_premium_kr),
                kr_text(ore(r.amount_kr) + ore(r.goal_premium_kr)),
            );
            for (i, a) in r.amount_by_basis_kr.iter().enumerate() {
                let _ = write!(
                    s,
                    "<td{}>{}</td>",
                    if i == chosen { " class=\"chosen\"" } else { "" },
                    kr_text(*a)
                );
            }
            s.push_str("</tr>");
        }
        s.push_str("</table></section>");
        s
    }
}
