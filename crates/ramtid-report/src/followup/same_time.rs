//! The Norrköping check: the same needs get the same ordered time whatever the provider.
//!
//! Applies when the orders carry their needs (a needs.jsonl or the calculation history).
//! Recipients are grouped by need profile (the needs set and its context, the recipient id
//! left out); a profile held by recipients of two or more providers is *shared*, and a
//! shared profile whose ordered weekly minutes differ between providers by more than
//! [`SAME_TIME_MIN`] minutes and [`SAME_TIME_SHARE`] of the smaller is listed, with the models
//! that calculated each (a history may hold orders from several model versions). A
//! recipient's provider is the unit the history names for its order, or else the unit that
//! performed most of its minutes in the log.

use super::orders::Orders;
use ramtid_core::visits::VisitLog;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Differences at or below both limits are rounding, not a different order.
pub const SAME_TIME_MIN: f64 = 0.5;
pub const SAME_TIME_SHARE: f64 = 0.005;
/// Most differing profiles listed in full.
const LISTED: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ProviderTime {
    pub unit_id: String,
    pub recipients: usize,
    pub weekly_min_low: f64,
    pub weekly_min_high: f64,
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileSpread {
    /// The need profile as JSON (needs and context; no recipient id).
    pub needs: String,
    pub providers: Vec<ProviderTime>,
    /// Highest ÷ lowest ordered weekly minutes across the providers, minus 1.
    pub spread: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SameTimeCheck {
    /// False when the orders are minutes only (a CSV): there are no needs to compare.
    pub applicable: bool,
    /// Ordered recipients with a profile and a provider.
    pub recipients: usize,
    pub profiles: usize,
    /// Profiles held by recipients of two or more providers.
    pub shared_profiles: usize,
    pub recipients_in_shared: usize,
    /// Shared profiles whose ordered time differs between providers.
    pub differing: usize,
    /// The differing profiles with the widest spread first (at most 20).
    pub worst: Vec<ProfileSpread>,
}

/// The unit with the most performed minutes per log recipient.
fn main_unit(log: &VisitLog) -> HashMap<u32, u32> {
    let mut minutes: HashMap<(u32, u32), f64> = HashMap::new();
    for v in log.table.iter() {
        *minutes.entry((v.recipient, v.unit)).or_default() += v.duration;
    }
    let mut best: HashMap<u32, (u32, f64)> = HashMap::new();
    for ((r, u), m) in minutes {
        let e = best.entry(r).or_insert((u, m));
        // Ties go to the lower unit index, so that the answer does not depend on hashing.
        if m > e.1 || (m == e.1 && u < e.0) {
            *e = (u, m);
        }
    }
    best.into_iter().map(|(r, (u, _))| (r, u)).collect()
}

pub fn check(orders: &Orders, log: &VisitLog) -> SameTimeCheck {
    if orders.profiles.is_empty() {
        return SameTimeCheck::default();
    }
    let unit_of = main_unit(log);
    let log_index: HashMap<&str, u32> = log
        .recipients
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();
    // profile key → unit → (weekly minutes of each recipient, models)
    type ByUnit = BTreeMap<String, (Vec<f64>, BTreeSet<String>)>;
    let mut by_profile: BTreeMap<&str, ByUnit> = BTreeMap::new();
    let mut recipients = 0;
    for (id, p) in &orders.profiles {
        let unit = p.unit_id.clone().or_else(|| {
            log_index
                .get(id.as_str())
                .and_then(|r| unit_of.get(r))
                .map(|&u| log.units[u as usize].clone())
        });
        let (Some(unit), Some(weekly)) = (
            unit,
            orders
                .by_recipient
                .get(id)
                .and_then(|ps| ps.last())
                .map(|p| p.weekly_min),
        ) else {
            continue;
        };
        recipients += 1;
        let e = by_profile
            .entry(p.key.as_str())
            .or_default()
            .entry(unit)
            .or_default();
        e.0.push(weekly);
        e.1.insert(p.model.clone());
    }
    let mut out = SameTimeCheck {
        applicable: true,
        recipients,
        profiles: by_profile.len(),
        ..SameTimeCheck::default()
    };
    let mut spreads = Vec::new();
    for (key, units) in by_profile {
        if units.len() < 2 {
            continue;
        }
        out.shared_profiles += 1;
        out.recipients_in_shared += units.values().map(|u| u.0.len()).sum::<usize>();
        let all = units.values().flat_map(|u| u.0.iter().copied());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        if hi - lo <= SAME_TIME_MIN.max(SAME_TIME_SHARE * lo) {
            continue;
        }
        out.differing += 1;
        spreads.push(ProfileSpread {
            needs: key.to_string(),
            spread: if lo > 0.0 {
                hi / lo - 1.0
            } else {
                f64::INFINITY
            },
            providers: units
                .into_iter()
                .map(|(unit_id, (w, models))| ProviderTime {
                    unit_id,
                    recipients: w.len(),
                    weekly_min_low: w.iter().copied().fold(f64::INFINITY, f64::min),
                    weekly_min_high: w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    models: models.into_iter().collect(),
                })
                .collect(),
        });
    }
    spreads.sort_by(|a, b| b.spread.total_cmp(&a.spread));
    spreads.truncate(LISTED);
    out.worst = spreads;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::followup::month::Period;
    use crate::followup::orders::{profile_key, OrderedProfile};
    use ramtid_core::needs::NeedsSet;
    use ramtid_core::slot::Slot;
    use ramtid_core::visits::{ReadReport, VisitTable};

    /// A log where recipient i is visited by unit `units[i]` (with a short visit by the
    /// other unit, so that "most minutes" decides).
    fn log(units: &[u32]) -> VisitLog {
        let mut table = VisitTable::new(0);
        for (r, &u) in units.iter().enumerate() {
            table.push(r as u32, u, 0, Slot::Morning, 1, 40.0, &[0], &[]);
            table.push(r as u32, 1 - u, 1, Slot::Morning, 1, 10.0, &[0], &[]);
        }
        VisitLog {
            table,
            units: vec!["TEAM-A".into(), "TEAM-B".into()],
            recipients: (0..units.len()).map(|i| format!("R{i}")).collect(),
            report: ReadReport::default(),
        }
    }

    fn set(json: &str) -> NeedsSet {
        serde_json::from_str(json).unwrap()
    }

    fn orders(rows: &[(&str, &NeedsSet, f64, &str)]) -> Orders {
        let mut o = Orders::default();
        for (id, s, weekly, model) in rows {
            o.by_recipient.insert(
                id.to_string(),
                vec![Period {
                    from: None,
                    weekly_min: *weekly,
                }],
            );
            o.profiles.insert(
                id.to_string(),
                OrderedProfile {
                    key: profile_key(s),
                    unit_id: None,
                    model: model.to_string(),
                },
            );
        }
        o
    }

    #[test]
    fn the_same_needs_in_another_order_are_one_profile() {
        let a = set(
            r#"{"recipient_id":"X","context":{"b":1,"a":true},"needs":[{"code":"S","per_week":1},{"code":"M","per_week":7}]}"#,
        );
        let b = set(
            r#"{"recipient_id":"Y","context":{"a":true,"b":1},"needs":[{"code":"M","per_week":7},{"code":"S","per_week":1}]}"#,
        );
        let c = set(
            r#"{"recipient_id":"Y","context":{"a":true,"b":2},"needs":[{"code":"M","per_week":7},{"code":"S","per_week":1}]}"#,
        );
        assert_eq!(profile_key(&a), profile_key(&b));
        assert_ne!(profile_key(&a), profile_key(&c));
        assert!(
            !profile_key(&a).contains("\"X\""),
            "no recipient id in the key"
        );
    }

    #[test]
    fn a_shared_profile_with_another_time_at_another_provider_is_listed() {
        let p = set(r#"{"recipient_id":"-","context":{},"needs":[{"code":"M","per_week":7}]}"#);
        let q = set(r#"{"recipient_id":"-","context":{},"needs":[{"code":"S","per_week":2}]}"#);
        // R0 (A) and R1 (B) share p at 100 and 100.3 min (rounding); R2 (A) and R3 (B)
        // share q at 60 and 66 min, the second from an older model; R4 holds p at A only.
        let o = orders(&[
            ("R0", &p, 100.0, "m/2"),
            ("R1", &p, 100.3, "m/2"),
            ("R2", &q, 60.0, "m/2"),
            ("R3", &q, 66.0, "m/1"),
            ("R4", &p, 100.0, "m/2"),
        ]);
        let c = check(&o, &log(&[0, 1, 0, 1, 0]));
        assert!(c.applicable);
        assert_eq!((c.recipients, c.profiles, c.shared_profiles), (5, 2, 2));
        assert_eq!((c.recipients_in_shared, c.differing), (5, 1));
        let w = &c.worst[0];
        assert!((w.spread - 0.1).abs() < 1e-12, "{}", w.spread);
        assert!(w.needs.contains("\"S\""));
        let b = w.providers.iter().find(|p| p.unit_id == "TEAM-B").unwrap();
        assert_eq!((b.recipients, b.weekly_min_high), (1, 66.0));
        assert_eq!(b.models, vec!["m/1".to_string()]);
    }

    #[test]
    fn minutes_only_orders_are_not_checked() {
        let c = check(&Orders::default(), &log(&[0]));
        assert!(!c.applicable);
    }
}
