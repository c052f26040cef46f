//! From needs to a week of visits, the way the log shows that tasks are grouped.
//!
//! What is learned from the log, per insats code: in which slots it is performed, and
//! whether it is done *within* another visit when the recipient has one in the same slot
//! that day (a shower inside the morning care) or as a visit of its own (cleaning,
//! shopping). Nothing about particular codes is hard-coded.
//!
//! Planning works on a 4-week cycle so that every-other-week needs fall on whole days:
//! a need's occasions are spread evenly over the 28 days in its slot; needs more often than
//! daily take the code's most common slots. On each day and slot, the needs that join
//! visits form one visit; each other occasion is a visit of its own.

use crate::catalog::Catalog;
use crate::needs::ValidNeeds;
use crate::slot::Slot;
use crate::visits::VisitTable;
use serde::{Deserialize, Serialize};

pub const CYCLE_DAYS: usize = 28;
pub const CYCLE_WEEKS: f64 = 4.0;

/// How one code is performed, learned from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskHabit {
    pub code: String,
    /// Share of the code's occurrences in each slot (morning … night).
    pub slot_share: [f64; 5],
    /// Of its occurrences on a day and slot where the recipient had other tasks too, the
    /// share done in the same visit as another task.
    pub joins_share: f64,
    /// Occurrences the figures rest on (0: nothing seen; defaults apply).
    pub occurrences: u64,
}

impl TaskHabit {
    pub fn joins(&self) -> bool {
        self.joins_share >= 0.5
    }

    /// Slots by how often the code is performed in them, most common first.
    pub fn slots_by_share(&self) -> [Slot; 5] {
        let mut slots = Slot::ALL;
        slots.sort_by(|a, b| {
            self.slot_share[b.index()]
                .total_cmp(&self.slot_share[a.index()])
                .then(a.cmp(b))
        });
        slots
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planner {
    pub habits: Vec<TaskHabit>,
}

/// One kind of visit in the plan, with how often it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVisit {
    /// Catalog indices, sorted.
    pub tasks: Vec<u16>,
    pub slot: Slot,
    pub staff: u8,
    /// Visits of this kind per week (may be fractional: every other week is 0.5).
    pub per_week: f64,
}

impl Planner {
    /// Learns the habits from accepted visits.
    pub fn learn(table: &VisitTable, catalog: &Catalog) -> Planner {
        let n = catalog.insatser.len();
        let mut slot_counts = vec![[0u64; 5]; n];
        let mut contexts = vec![0u64; n];
        let mut joined = vec![0u64; n];
        let mut shared_visits = vec![0u64; n];
        let mut occurrences = vec![0u64; n];
        // Group visits by recipient, day and slot.
        let mut order: Vec<(u64, u32)> = (0..table.len())
            .map(|i| {
                let r = table.row(i);
                let key = (u64::from(r.recipient) << 32)
                    | (((r.day as i64 + (1 << 28)) as u64 & 0x0FFF_FFFF) << 3)
                    | r.slot.index() as u64;
                (key, i as u32)
            })
            .collect();
        order.sort_unstable();
        let mut start = 0;
        let mut group_tasks: Vec<u16> = Vec::new();
        while start < order.len() {
            let key = order[start].0;
            let mut end = start;
            while end < order.len() && order[end].0 == key {
                end += 1;
            }
            group_tasks.clear();
            for &(_, i) in &order[start..end] {
                group_tasks.extend_from_slice(table.row(i as usize).tasks);
            }
            group_tasks.sort_unstable();
            group_tasks.dedup();
            for &(_, i) in &order[start..end] {
                let row = table.row(i as usize);
                for &t in row.tasks {
                    let t_us = t as usize;
                    slot_counts[t_us][row.slot.index()] += 1;
                    occurrences[t_us] += 1;
                    if row.tasks.len() > 1 {
                        shared_visits[t_us] += 1;
                    }
                    if group_tasks.len() > 1 {
                        contexts[t_us] += 1;
                        if row.tasks.len() > 1 {
                            joined[t_us] += 1;
                        }
                    }
                }
            }
            start = end;
        }
        let habits = catalog
            .insatser
            .iter()
            .enumerate()
            .map(|(t, insats)| {
                let total = occurrences[t].max(1) as f64;
                let mut slot_share = [0.0; 5];
                for s in 0..5 {
                    slot_share[s] = slot_counts[t][s] as f64 / total;
                }
                if occurrences[t] == 0 {
                    slot_share[Slot::Morning.index()] = 1.0;
                }
                // Too few chances to join: fall back on how often it shares a visit at all.
                let joins_share = if contexts[t] >= 20 {
                    joined[t] as f64 / contexts[t] as f64
                } else {
                    shared_visits[t] as f64 / total
                };
                TaskHabit {
                    code: insats.code.clone(),
                    slot_share,
                    joins_share,
                    occurrences: occurrences[t],
                }
            })
            .collect();
        Planner { habits }
    }

    /// The visits a set of needs implies, in a typical week.
    pub fn plan(&self, needs: &ValidNeeds) -> Vec<PlannedVisit> {
        // The cycle's (day, slot) cells hold the joining tasks as a bitset; this runs for
        // every estimate, so it allocates once rather than per cell.
        const CELLS: usize = CYCLE_DAYS * 5;
        let words = self.habits.len().div_ceil(64).max(1);
        let mut bits = vec![0u64; CELLS * words];
        let mut staff = [0u8; CELLS];
        let mut weight = [0.0f64; CELLS];
        let mut joined = [0u16; CELLS];
        // Visits of their own: (code, slot, staff) → occasions in the cycle.
        let mut own: Vec<(u16, Slot, u8, f64)> = Vec::new();
        for need in &needs.needs {
            let habit = &self.habits[need.insats];
            let by_share = habit.slots_by_share();
            let wanted = need.per_week * CYCLE_WEEKS;
            let n = wanted.round().max(1.0) as usize;
            // (days, slots per day, weight per occasion): the weight corrects the rounding to
            // whole occasions (0.1 a week is not 0.25).
            let mut slots = [Slot::Morning; 5];
            let (per_day, occasion_weight) = if n <= CYCLE_DAYS {
                slots[0] = need.slot.unwrap_or(by_share[0]);
                (1, wanted / n as f64)
            } else {
                let per_day = ((n as f64 / CYCLE_DAYS as f64).round() as usize).clamp(1, 5);
                let mut k = 0;
                for s in need.slot.into_iter().chain(by_share) {
                    if !slots[..k].contains(&s) {
                        slots[k] = s;
                        k += 1;
                    }
                }
                (per_day, wanted / (per_day * CYCLE_DAYS) as f64)
            };
            let days = n.min(CYCLE_DAYS);
            let code = need.insats as u16;
            for k in 0..days {
                let day = if n <= CYCLE_DAYS {
                    ((k as f64 + 0.5) * CYCLE_DAYS as f64 / n as f64) as usize
                } else {
                    k
                };
                for &slot in &slots[..per_day] {
                    if habit.joins() {
                        let c = day * 5 + slot.index();
                        bits[c * words + code as usize / 64] |= 1 << (code % 64);
                        staff[c] = staff[c].max(need.staff);
                        weight[c] = if joined[c] == 0 { occasion_weight } else { 1.0 };
                        joined[c] += 1;
                    } else {
                        match own
                            .iter_mut()
                            .find(|o| o.0 == code && o.1 == slot && o.2 == need.staff)
                        {
                            Some(o) => o.3 += occasion_weight,
                            None => own.push((code, slot, need.staff, occasion_weight)),
                        }
                    }
                }
            }
        }
        // Identical cells make one kind of visit.
        let mut kinds: Vec<(usize, f64)> = Vec::new();
        for c in (0..CELLS).filter(|&c| joined[c] > 0) {
            let same = |&(k, _): &(usize, f64)| {
                k % 5 == c % 5
                    && staff[k] == staff[c]
                    && bits[k * words..(k + 1) * words] == bits[c * words..(c + 1) * words]
            };
            match kinds.iter_mut().find(|kind| same(kind)) {
                Some(kind) => kind.1 += weight[c],
                None => kinds.push((c, weight[c])),
            }
        }
        let mut plan: Vec<PlannedVisit> = kinds
            .into_iter()
            .map(|(c, w)| {
                let tasks = (0..self.habits.len() as u16)
                    .filter(|&t| bits[c * words + t as usize / 64] & (1 << (t % 64)) != 0)
                    .collect();
                PlannedVisit {
                    tasks,
                    slot: Slot::ALL[c % 5],
                    staff: staff[c].max(1),
                    per_week: w / CYCLE_WEEKS,
                }
            })
            .chain(own.into_iter().map(|(code, slot, staff, w)| PlannedVisit {
                tasks: vec![code],
                slot,
                staff,
                per_week: w / CYCLE_WEEKS,
            }))
            .collect();
        plan.sort_by(|a, b| (a.slot, &a.tasks, a.staff).cmp(&(b.slot, &b.tasks, b.staff)));
        // A joining task alone in its cell is the same visit as one of its own.
        plan.dedup_by(|later, kept| {
            let same =
                (later.slot, &later.tasks, later.staff) == (kept.slot, &kept.tasks, kept.staff);
            if same {
                kept.per_week += later.per_week;
            }
            same
        });
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::needs::{ValidNeed, ValidNeeds};

    fn habit(code: &str, slot: Slot, joins: bool) -> TaskHabit {
        let mut slot_share = [0.0; 5];
        slot_share[slot.index()] = 1.0;
        TaskHabit {
            code: code.into(),
            slot_share,
            joins_share: if joins { 0.95 } else { 0.02 },
            occurrences: 100,
        }
    }

    fn need(insats: usize, per_week: f64) -> ValidNeed {
        ValidNeed {
            insats,
            per_week,
            slot: None,
            staff: 1,
        }
    }

    #[test]
    fn joining_tasks_share_the_visit_and_others_get_their_own() {
        let planner = Planner {
            habits: vec![
                habit("MORNING", Slot::Morning, true),
                habit("SHOWER", Slot::Morning, true),
                habit("CLEANING", Slot::Afternoon, false),
            ],
        };
        let needs = ValidNeeds {
            recipient_id: "r".into(),
            context: vec![],
            needs: vec![need(0, 7.0), need(1, 1.0), need(2, 0.5)],
        };
        let plan = planner.plan(&needs);
        let total: f64 = plan.iter().map(|v| v.per_week).sum();
        assert!((total - 7.5).abs() < 1e-9, "{plan:?}");
        let with_shower = plan.iter().find(|v| v.tasks == vec![0, 1]).unwrap();
        assert!((with_shower.per_week - 1.0).abs() < 1e-9);
        let cleaning = plan.iter().find(|v| v.tasks == vec![2]).unwrap();
        assert_eq!(cleaning.slot, Slot::Afternoon);
        assert!((cleaning.per_week - 0.5).abs() < 1e-9);
    }

    #[test]
    fn twice_daily_needs_take_two_slots_and_odd_frequencies_keep_their_weight() {
        let mut h = habit("TRANSFER", Slot::Morning, true);
        h.slot_share = [0.5, 0.0, 0.0, 0.4, 0.1];
        let planner = Planner { habits: vec![h] };
        let needs = ValidNeeds {
            recipient_id: "r".into(),
            context: vec![],
            needs: vec![ValidNeed {
                insats: 0,
                per_week: 14.0,
                slot: None,
                staff: 2,
            }],
        };
        let plan = planner.plan(&needs);
        assert_eq!(plan.len(), 2);
        assert!(plan
            .iter()
            .all(|v| v.staff == 2 && (v.per_week - 7.0).abs() < 1e-9));
        assert!(plan.iter().any(|v| v.slot == Slot::Evening));
        let rare = ValidNeeds {
            recipient_id: "r".into(),
            context: vec![],
            needs: vec![need(0, 0.1)],
        };
        let plan = planner.plan(&rare);
        assert!((plan.iter().map(|v| v.per_week).sum::<f64>() - 0.1).abs() < 1e-9);
    }
}
