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
use std::collections::BTreeMap;

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
    pub fn slots_by_share(&self) -> Vec<Slot> {
        let mut slots = Slot::ALL.to_vec();
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
        // (day, slot) → tasks that join, their staff; plus visits of their own.
        #[derive(Default)]
        struct Cell {
            tasks: Vec<u16>,
            staff: u8,
            weight: f64,
            needs: usize,
        }
        let mut cells: BTreeMap<(usize, Slot), Cell> = BTreeMap::new();
        let mut own: BTreeMap<(Vec<u16>, Slot, u8), f64> = BTreeMap::new();
        for need in &needs.needs {
            let habit = &self.habits[need.insats];
            let wanted = need.per_week * CYCLE_WEEKS;
            let n = wanted.round().max(1.0) as usize;
            // Weight corrects the rounding to whole occasions (0.1 a week is not 0.25).
            let mut weight = wanted / n as f64;
            let mut occasions: Vec<(usize, Slot)> = Vec::with_capacity(n);
            if n <= CYCLE_DAYS {
                let slot = need.slot.unwrap_or_else(|| habit.slots_by_share()[0]);
                for k in 0..n {
                    occasions.push((
                        (((k as f64) + 0.5) * CYCLE_DAYS as f64 / n as f64) as usize,
                        slot,
                    ));
                }
            } else {
                let per_day = ((n as f64 / CYCLE_DAYS as f64).round() as usize).clamp(1, 5);
                let mut slots: Vec<Slot> = need.slot.into_iter().collect();
                for s in habit.slots_by_share() {
                    if !slots.contains(&s) {
                        slots.push(s);
                    }
                }
                weight = wanted / (per_day * CYCLE_DAYS) as f64;
                for day in 0..CYCLE_DAYS {
                    for &slot in &slots[..per_day] {
                        occasions.push((day, slot));
                    }
                }
            }
            let code = need.insats as u16;
            for (day, slot) in occasions {
                if habit.joins() {
                    let cell = cells.entry((day, slot)).or_default();
                    if !cell.tasks.contains(&code) {
                        cell.tasks.push(code);
                    }
                    cell.staff = cell.staff.max(need.staff);
                    cell.weight = if cell.needs == 0 { weight } else { 1.0 };
                    cell.needs += 1;
                } else {
                    *own.entry((vec![code], slot, need.staff)).or_default() += weight;
                }
            }
        }
        for ((_, slot), mut cell) in cells {
            cell.tasks.sort_unstable();
            *own.entry((cell.tasks, slot, cell.staff.max(1)))
                .or_default() += cell.weight;
        }
        own.into_iter()
            .map(|((tasks, slot, staff), count)| PlannedVisit {
                tasks,
                slot,
                staff,
                per_week: count / CYCLE_WEEKS,
            })
            .collect()
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
