//! The true mechanisms: how needs become visits (the 4-week cycle) and how long a visit
//! takes when done efficiently.

use super::profile::{category_index, Profile, OVERHEAD};
use ramtid_core::slot::Slot;

/// The schedule repeats every 28 days (four weeks).
pub const CYCLE_DAYS: usize = 28;

/// No visit's efficient mean is below this many minutes.
pub const MIN_VISIT_MEAN: f64 = 2.0;

/// A need as the planner sees it: code (profile index), frequency, optional slot, staff.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanNeed {
    pub code: usize,
    pub per_week: f64,
    pub slot: Option<Slot>,
    pub staff: u8,
}

/// One visit of the 4-week cycle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedVisit {
    /// Day of the cycle, 0..28 (day 0 is a Monday).
    pub day: u8,
    pub slot: Slot,
    /// Code indices, in the order of the needs.
    pub tasks: Vec<usize>,
    pub staff: u8,
}

/// Occasions per 4-week cycle of a need: round(4 · per_week), at least 1.
pub(crate) fn cycle_occasions(per_week: f64) -> usize {
    ((4.0 * per_week).round() as usize).max(1)
}

/// The distinct slots of a need done `m` times a day: the need's own slot first, then the
/// code's preferred slots in order (then, should a need ask for more, the remaining slots
/// of the day in order). At most five.
pub(crate) fn daily_slots(own: Option<Slot>, preferred: &[Slot], m: usize) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::with_capacity(5);
    for s in own
        .into_iter()
        .chain(preferred.iter().copied())
        .chain(Slot::ALL)
    {
        if out.len() == m {
            break;
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The (day, slot) occasions of one need in the cycle.
pub(crate) fn occasions(need: &PlanNeed, preferred: &[Slot]) -> Vec<(u8, Slot)> {
    let n = cycle_occasions(need.per_week);
    if n <= CYCLE_DAYS {
        let slot = need.slot.unwrap_or(preferred[0]);
        // floor((k + 0.5) · 28 / n), exactly, in integers.
        (0..n)
            .map(|k| (((2 * k + 1) * CYCLE_DAYS / (2 * n)) as u8, slot))
            .collect()
    } else {
        let m = ((n as f64 / CYCLE_DAYS as f64).round() as usize).clamp(1, 5);
        let slots = daily_slots(need.slot, preferred, m);
        (0..CYCLE_DAYS as u8)
            .flat_map(|d| slots.iter().map(move |&s| (d, s)))
            .collect()
    }
}

/// The visits of a 4-week cycle, sorted by day, slot, the joined visit before the visits
/// of their own, and need order. For each day and slot all occasions of joining codes form
/// one visit; every occasion of a non-joining code is a visit of its own. A visit's staff
/// is the largest staff of its needs.
pub(crate) fn plan_cycle(profile: &Profile, needs: &[PlanNeed]) -> Vec<PlannedVisit> {
    // (day, slot, 0 = joined | 1 = own, need index) → visit
    let mut keyed: Vec<((u8, Slot, u8, usize), PlannedVisit)> = Vec::new();
    let mut joined: std::collections::BTreeMap<(u8, Slot), PlannedVisit> = Default::default();
    for (i, need) in needs.iter().enumerate() {
        let spec = &profile.codes[need.code];
        for (day, slot) in occasions(need, spec.slots) {
            if spec.joins {
                let v = joined.entry((day, slot)).or_insert_with(|| PlannedVisit {
                    day,
                    slot,
                    tasks: Vec::new(),
                    staff: 1,
                });
                v.tasks.push(need.code);
                v.staff = v.staff.max(need.staff);
            } else {
                keyed.push((
                    (day, slot, 1, i),
                    PlannedVisit {
                        day,
                        slot,
                        tasks: vec![need.code],
                        staff: need.staff.max(1),
                    },
                ));
            }
        }
    }
    keyed.extend(
        joined
            .into_iter()
            .map(|((day, slot), v)| ((day, slot, 0, 0), v)),
    );
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, v)| v).collect()
}

/// Pair savings resolved to code indices.
pub(crate) fn resolved_savings(profile: &Profile) -> Vec<(usize, usize, f64)> {
    profile
        .savings
        .iter()
        .map(|(a, b, s)| (profile.code_index(a), profile.code_index(b), *s))
        .collect()
}

/// Efficient mean minutes of a visit, without the recipient effect:
/// overhead[slot]·(1 + β_overhead·z) + Σ base_t·(1 + β_cat(t)·z) − Σ savings of pairs
/// present + (staff 2 ? extra : 0), and never below [`MIN_VISIT_MEAN`].
pub(crate) fn visit_mean(
    profile: &Profile,
    savings: &[(usize, usize, f64)],
    factors: &[f64; 5],
    slot: Slot,
    tasks: &[usize],
    staff: u8,
) -> f64 {
    raw_visit_mean(profile, savings, factors, slot, tasks, staff).max(MIN_VISIT_MEAN)
}

/// [`visit_mean`] before the floor (the floor never binds in the two profiles; a test
/// checks that).
pub(crate) fn raw_visit_mean(
    profile: &Profile,
    savings: &[(usize, usize, f64)],
    factors: &[f64; 5],
    slot: Slot,
    tasks: &[usize],
    staff: u8,
) -> f64 {
    let mut m = profile.overhead_min[slot.index()] * factors[OVERHEAD];
    for &t in tasks {
        let c = &profile.codes[t];
        m += c.base_min * factors[category_index(c.category)];
    }
    for &(a, b, s) in savings {
        if tasks.contains(&a) && tasks.contains(&b) {
            m -= s;
        }
    }
    if staff >= 2 {
        m += profile.staff2_extra_min;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::profile::profile;
    use super::super::Municipality;
    use super::*;

    fn need(code: usize, per_week: f64, slot: Option<Slot>) -> PlanNeed {
        PlanNeed {
            code,
            per_week,
            slot,
            staff: 1,
        }
    }

    #[test]
    fn occasions_follow_the_cycle_rules() {
        let pref = [Slot::Morning, Slot::Evening, Slot::Midday];
        let days = |n: &PlanNeed| occasions(n, &pref).iter().map(|o| o.0).collect::<Vec<_>>();
        assert_eq!(days(&need(0, 0.5, None)), vec![7, 21]);
        assert_eq!(days(&need(0, 0.25, None)), vec![14]);
        assert_eq!(days(&need(0, 0.1, None)), vec![14]); // at least once
        assert_eq!(days(&need(0, 1.0, None)), vec![3, 10, 17, 24]);
        assert_eq!(days(&need(0, 2.0, None)), vec![1, 5, 8, 12, 15, 19, 22, 26]);
        assert_eq!(days(&need(0, 7.0, None)), (0..28).collect::<Vec<u8>>());
        assert!(occasions(&need(0, 7.0, None), &pref)
            .iter()
            .all(|o| o.1 == Slot::Morning));
        assert!(occasions(&need(0, 3.0, Some(Slot::Night)), &pref)
            .iter()
            .all(|o| o.1 == Slot::Night));
        let twice = occasions(&need(0, 14.0, None), &pref);
        assert_eq!(twice.len(), 56);
        assert_eq!(&twice[..2], &[(0, Slot::Morning), (0, Slot::Evening)]);
        let own_first = occasions(&need(0, 14.0, Some(Slot::Night)), &pref);
        assert_eq!(&own_first[..2], &[(0, Slot::Night), (0, Slot::Morning)]);
        let thrice = occasions(&need(0, 21.0, Some(Slot::Evening)), &pref);
        assert_eq!(
            &thrice[..3],
            &[(0, Slot::Evening), (0, Slot::Morning), (0, Slot::Midday)]
        );
        // 10.5 a week → 42 occasions → round(1.5) = 2 slots a day
        assert_eq!(occasions(&need(0, 10.5, None), &pref).len(), 56);
        assert_eq!(
            daily_slots(None, &[Slot::Night], 2),
            vec![Slot::Night, Slot::Morning]
        );
    }

    #[test]
    fn joining_codes_share_a_visit_and_others_do_not() {
        let p = profile(Municipality::Nordstad);
        let morning = p.code_index("MORNING_CARE");
        let shower = p.code_index("SHOWER");
        let transfer = p.code_index("TRANSFER");
        let cleaning = p.code_index("CLEANING");
        let needs = vec![
            need(morning, 7.0, None),
            need(shower, 1.0, None),
            PlanNeed {
                code: transfer,
                per_week: 14.0,
                slot: None,
                staff: 2,
            },
            need(cleaning, 0.5, None),
        ];
        let visits = plan_cycle(&p, &needs);
        // 28 morning visits, 28 evening transfer visits, 2 cleaning visits
        assert_eq!(visits.len(), 58);
        let day3: Vec<_> = visits.iter().filter(|v| v.day == 3).collect();
        assert_eq!(day3.len(), 2);
        assert_eq!(day3[0].slot, Slot::Morning);
        assert_eq!(day3[0].tasks, vec![morning, shower, transfer]);
        assert_eq!(day3[0].staff, 2);
        assert_eq!(day3[1].slot, Slot::Evening);
        assert_eq!(day3[1].tasks, vec![transfer]);
        let day7: Vec<_> = visits.iter().filter(|v| v.day == 7).collect();
        assert_eq!(day7.len(), 3);
        assert_eq!(day7[1].tasks, vec![cleaning]);
        assert_eq!(day7[1].slot, Slot::Midday);
        assert_eq!(day7[1].staff, 1);
        assert!(visits
            .windows(2)
            .all(|w| (w[0].day, w[0].slot) <= (w[1].day, w[1].slot)));
    }

    #[test]
    fn visit_mean_adds_overhead_tasks_savings_and_staff() {
        let p = profile(Municipality::Nordstad);
        let s = resolved_savings(&p);
        let f = [1.0; 5];
        let morning = p.code_index("MORNING_CARE");
        let shower = p.code_index("SHOWER");
        let (o, bm, bs) = (
            p.overhead_min[Slot::Morning.index()],
            p.codes[morning].base_min,
            p.codes[shower].base_min,
        );
        let m = visit_mean(&p, &s, &f, Slot::Morning, &[morning, shower], 1);
        assert!((m - (o + bm + bs - 5.0)).abs() < 1e-9);
        let m2 = visit_mean(&p, &s, &f, Slot::Morning, &[morning, shower], 2);
        assert!((m2 - m - p.staff2_extra_min).abs() < 1e-9);
        // personal care ×1.5, overhead ×2
        let f = [1.5, 1.0, 1.0, 1.0, 2.0];
        let m = visit_mean(&p, &s, &f, Slot::Morning, &[morning], 1);
        assert!((m - (2.0 * o + 1.5 * bm)).abs() < 1e-9);
    }
}
