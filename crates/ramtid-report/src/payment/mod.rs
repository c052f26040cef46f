//! Payment under the municipality's model: what each provider (`unit_id`) is paid per month
//! under the chosen basis and, side by side, under each other basis, so an economist sees
//! what a change of model would pay.
//!
//! Pure computation: a [`PaymentConfig`] read from TOML becomes [`PaymentParams`], whose
//! [`ParamGuard::check`] applies every rule in one place and gives a [`CheckedPayment`];
//! [`compute`] takes those, one [`PaymentInput`] per recipient, month and category, and the
//! [`Goal`]s read by [`read_goals`], and gives a [`Payment`] that
//! [`Payment::write_payment_csv`] writes and [`Payment::html_section`] shows as a section of
//! an HTML report (what each basis would pay in all, against the chosen one, and a table per
//! unit and month); [`Payment`] also serializes to JSON.
//!
//! The inputs can also be read from a CSV by [`read_payment_inputs`]:
//! `recipient_id,unit_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min`
//! and optionally `declined_visits_planned_min,absence_days` (0 when absent), a bad row named
//! by file, row and column.
//!
//! # The configuration
//!
//! ```toml
//! basis = "performed_capped"   # granted_schablon | granted_ramtid | performed | performed_capped
//! tolerance = 0.10             # performed_capped pays at most ramtid × (1 + tolerance)
//! goal_premium_kr = 297        # per fulfilled goal (Lund)
//!
//! [rates]                      # kr per hour, per category (Solna 2024)
//! personal_care = 464
//! service = 382
//!
//! [declined]
//! short_notice_share = 1.0     # share paid of a short-notice declined visit's planned minutes
//! absence_share = 0.0          # share paid of the granted time of absence days
//! ```
//!
//! Every key is checked: an unknown key, a basis that is not one of the four, a rate or
//! share out of range fails with the key's name (`rates.service: -1 is not a rate >= 0 kr/h`).
//!
//! # The arithmetic, per recipient, month and category
//!
//! With `a = 1 − (1 − absence_share) × absence_days / days_in_month` (the share of the month's
//! granted time that is paid), `d` the planned minutes of visits declined with short notice
//! and `x = short_notice_share`, the paid minutes are
//!
//! | basis              | paid minutes                                           |
//! |--------------------|--------------------------------------------------------|
//! | `granted_schablon` | `max(0, schablon × a − (1 − x) × d)`                   |
//! | `granted_ramtid`   | `max(0, ramtid × a − (1 − x) × d)`                     |
//! | `performed`        | `performed + x × d`                                    |
//! | `performed_capped` | `min(performed + x × d, ramtid × a × (1 + tolerance))` |
//!
//! so a declined visit is paid at `x` of its planned minutes whatever the basis (the granted
//! time already holds the visit; performed time does not), and absence days are paid at
//! `absence_share` of their granted time (performed time has none on those days). The amount
//! is paid minutes ÷ 60 × the category's rate, summed per `unit_id` and month. A row without ramtid is paid
//! nothing under `performed_capped` (its cap is 0).
//!
//! # Goals
//!
//! The goals file is a CSV `recipient_id,goal_id,assessed,fulfilled`: `assessed` is the date
//! the goal was followed up (`YYYY-MM-DD`), `fulfilled` one of `true/false`, `1/0`,
//! `yes/no`, `ja/nej`. Each fulfilled goal pays `goal_premium_kr` to the unit that served the
//! recipient in the month of `assessed` (the one with most performed minutes if several);
//! a fulfilled goal whose recipient has no input row that month is counted as unattributed in
//! [`Payment::goals`], not dropped silently. A bad row fails with the file, row (the header is
//! row 1) and column.
//!
//! # `payment.csv`
//!
//! `unit_id,month,basis,hours,amount_kr,goal_premium_kr,total_kr,amount_granted_schablon_kr,amount_granted_ramtid_kr,amount_performed_kr,amount_performed_capped_kr`:
//! `hours` and `amount_kr` are under the chosen basis, `total_kr = amount_kr + goal_premium_kr`
//! (of the rounded amounts, so the columns add up), and the last four columns are the amount
//! under each basis; amounts are rounded to öre.
//!
//! [`ParamGuard::check`]: ramtid_core::params::ParamGuard::check

mod compute;
mod config;
mod goals;
mod inputs;
mod month;

pub use compute::{
    compute, GoalSummary, InputError, Payment, PaymentInput, UnitMonthPayment, PAYMENT_CSV_HEADER,
};
pub use config::{
    Basis, CheckedPayment, ConfigError, DeclinedConfig, PaymentConfig, PaymentError, PaymentParams,
};
pub use goals::{keep_ordered, read_goals, read_ordered_goals, Goal, GoalsError};
pub use inputs::{read_payment_inputs, InputsError, INPUT_COLUMNS};
pub use month::Month;
pub use ramtid_core::params::ParamGuard;

#[cfg(test)]
mod tests;
