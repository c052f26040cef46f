//! The features of one visit: per-visit overhead, each task, pairs of tasks done in the same
//! visit, task × context interactions, double staffing and the time-of-day slot, and pairs of
//! context conditions that act together (cognition ≥ 2 *and* living alone; mobility ≥ 1 *in*
//! the archipelago), per visit and per schablon minute of its tasks.
//!
//! Context is encoded once per visit into centred columns `z` (centred on the training log's
//! mean, so that a task's main effect is its time for an average recipient and the
//! interactions only say how context moves it). Categorical variables become one indicator
//! per non-baseline label.

use crate::catalog::{Catalog, ContextKind};
use crate::slot::Slot;
use serde::{Deserialize, Serialize};

/// One encoded context column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextColumn {
    /// Index of the catalog context variable it comes from.
    pub var: usize,
    /// Readable name: `cognition`, or `area=rural` for a categorical label.
    pub name: String,
    /// For a categorical: the label index this column indicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<usize>,
    /// For an ordinal level: the column indicates a level at least this one (a step per
    /// level, so uneven steps and thresholds are learned, not one slope). Absent in models
    /// trained before steps were kept: the level itself, one slope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    pub center: f64,
    pub scale: f64,
}

impl ContextColumn {
    fn raw(&self, value: f64) -> f64 {
        match (self.label, self.at_least) {
            (Some(l), _) => f64::from(u8::from(value as usize == l)),
            (None, Some(level)) => f64::from(u8::from(value >= level - 1e-6)),
            (None, None) => value,
        }
    }

    pub fn encode(&self, value: f64) -> f64 {
        (self.raw(value) - self.center) / self.scale
    }
}

/// Where each kind of feature starts in the coefficient vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub slots: usize,
    pub staff2: usize,
    pub context: usize,
    pub tasks: usize,
    pub interactions: usize,
    pub pairs: usize,
    /// Per code, what a second staff member changes in its minutes, for every task of a
    /// visit with two staff (an empty block in models trained before they were learned).
    pub staff2_tasks: usize,
    /// Context pairs: two columns each, per visit (minutes) and per ten schablon minutes of
    /// the visit's tasks.
    pub context_pairs: usize,
    pub len: usize,
}

/// The group a coefficient belongs to (penalties and explanations differ by group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Overhead,
    Slot,
    Staff2,
    OverheadContext,
    Task,
    TaskContext,
    Pair,
    Staff2Task,
    ContextPair,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpace {
    pub n_tasks: usize,
    pub context: Vec<ContextColumn>,
    /// Task pairs seen together often enough to be given their own coefficient.
    pub pairs: Vec<(u16, u16)>,
    /// The pairs' coefficients by pair, `(a << 16 | b, index)` sorted: every visit of every
    /// estimate looks its task pairs up here (a binary search over a few dozen numbers costs
    /// less than hashing each pair).
    #[serde(skip)]
    pair_index: Vec<(u32, usize)>,
    /// Pairs of indicator context columns (indices into `context`, of different variables)
    /// that get coefficients of their own: where two conditions together change a visit by
    /// more than each does alone. Absent in models trained before they were learned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_pairs: Vec<(u16, u16)>,
    /// Per code, its schablon minutes: the scale of the per-task part of a context pair.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_schablon: Vec<f64>,
    /// Whether each code has a column for what a second staff member changes in its own
    /// time (a transfer with two is quicker, or slower, than with one), beside the visit's
    /// staff column. Absent in models trained before: the visit's column alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staff2_tasks: bool,
}

fn pair_key((a, b): (u16, u16)) -> u32 {
    (u32::from(a) << 16) | u32::from(b)
}

/// The non-baseline slots, in coefficient order (morning is the baseline).
const SLOT_COLUMNS: [Slot; 4] = [Slot::Midday, Slot::Afternoon, Slot::Evening, Slot::Night];

impl FeatureSpace {
    /// `means` holds, per catalog variable, the training mean (categorical: per label share).
    pub fn new(
        catalog: &Catalog,
        numeric_stats: &[(f64, f64)],
        label_shares: &[Vec<f64>],
        pairs: Vec<(u16, u16)>,
    ) -> Self {
        let mut context = Vec::new();
        for (v, var) in catalog.contexts.iter().enumerate() {
            match var.kind {
                ContextKind::Categorical => {
                    for (l, label) in var.labels.iter().enumerate().skip(1) {
                        context.push(ContextColumn {
                            var: v,
                            name: format!("{}={}", var.name, label),
                            label: Some(l),
                            at_least: None,
                            center: label_shares[v].get(l).copied().unwrap_or(0.0),
                            scale: 1.0,
                        });
                    }
                }
                ContextKind::Numeric => {
                    let (mean, sd) = numeric_stats[v];
                    context.push(ContextColumn {
                        var: v,
                        name: var.name.clone(),
                        label: None,
                        at_least: None,
                        center: mean,
                        // Numeric variables (age) are put in units of ten so that their
                        // coefficients are on the scale of an ordinal level.
                        scale: if sd > 0.0 { 10.0 } else { 1.0 },
                    });
                }
                ContextKind::Ordinal => {
                    // One step per level above the lowest, centred on the share at or
                    // above it.
                    let shares = label_shares.get(v).map(Vec::as_slice).unwrap_or(&[]);
                    let mut levels: Vec<(usize, f64)> =
                        var.ordinal_levels.iter().copied().enumerate().collect();
                    levels.sort_by(|a, b| a.1.total_cmp(&b.1));
                    for (k, &(_, level)) in levels.iter().enumerate().skip(1) {
                        context.push(ContextColumn {
                            var: v,
                            name: format!("{}>={}", var.name, level),
                            label: None,
                            at_least: Some(level),
                            center: levels[k..]
                                .iter()
                                .map(|&(i, _)| shares.get(i).copied().unwrap_or(0.0))
                                .sum(),
                            scale: 1.0,
                        });
                    }
                }
                ContextKind::Boolean => context.push(ContextColumn {
                    var: v,
                    name: var.name.clone(),
                    label: None,
                    at_least: None,
                    center: numeric_stats[v].0,
                    scale: 1.0,
                }),
            }
        }
        let mut space = FeatureSpace {
            n_tasks: catalog.insatser.len(),
            context,
            pairs,
            pair_index: Vec::new(),
            context_pairs: Vec::new(),
            task_schablon: catalog.insatser.iter().map(|i| i.schablon_min).collect(),
            staff2_tasks: true,
        };
        space.rebuild_index();
        space
    }

    /// Restores the lookup table after deserialization.
    pub fn rebuild_index(&mut self) {
        // A pair listed twice is found at its last place (as a map built in order would).
        let mut index: Vec<(u32, usize)> = self
            .pairs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, &p)| (pair_key(p), i))
            .collect();
        index.sort_by_key(|e| e.0);
        index.dedup_by_key(|e| e.0);
        self.pair_index = index;
    }

    /// The coefficient of a task pair, if it has one.
    fn pair(&self, a: u16, b: u16) -> Option<usize> {
        let key = pair_key((a, b));
        self.pair_index
            .binary_search_by_key(&key, |e| e.0)
            .ok()
            .map(|i| self.pair_index[i].1)
    }

    pub fn layout(&self) -> Layout {
        let k = self.context.len();
        let slots = 1;
        let staff2 = slots + SLOT_COLUMNS.len();
        let context = staff2 + 1;
        let tasks = context + k;
        let interactions = tasks + self.n_tasks;
        let pairs = interactions + self.n_tasks * k;
        let staff2_tasks = pairs + self.pairs.len();
        let context_pairs = staff2_tasks + if self.staff2_tasks { self.n_tasks } else { 0 };
        Layout {
            slots,
            staff2,
            context,
            tasks,
            interactions,
            pairs,
            staff2_tasks,
            context_pairs,
            len: context_pairs + 2 * self.context_pairs.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.layout().len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encodes raw context values (one per catalog variable) into centred columns.
    pub fn encode_context<T: Copy + Into<f64>>(&self, raw: &[T], z: &mut Vec<f64>) {
        z.clear();
        z.extend(self.context.iter().map(|c| c.encode(raw[c.var].into())));
    }

    /// The non-zero features of one visit, as (column, value). `tasks` must be sorted and
    /// free of repeats. With two staff, every task carries its code's two-staff column: a
    /// logged visit does not say which task needed them, so each code's column says what a
    /// second person changes in its time, where one is there (nothing, for a breakfast
    /// that only shares a transfer's visit, where the second person does not help with it).
    pub fn encode(
        &self,
        tasks: &[u16],
        slot: Slot,
        staff: u8,
        z: &[f64],
        out: &mut Vec<(u32, f64)>,
    ) {
        let l = self.layout();
        let k = self.context.len();
        out.clear();
        out.push((0, 1.0));
        if let Some(s) = SLOT_COLUMNS.iter().position(|&c| c == slot) {
            out.push(((l.slots + s) as u32, 1.0));
        }
        if staff >= 2 {
            out.push((l.staff2 as u32, 1.0));
        }
        for (j, &zj) in z.iter().enumerate() {
            if zj != 0.0 {
                out.push(((l.context + j) as u32, zj));
            }
        }
        for &t in tasks {
            out.push(((l.tasks + t as usize) as u32, 1.0));
            let base = l.interactions + t as usize * k;
            for (j, &zj) in z.iter().enumerate() {
                if zj != 0.0 {
                    out.push(((base + j) as u32, zj));
                }
            }
        }
        for (a_i, &a) in tasks.iter().enumerate() {
            for &b in &tasks[a_i + 1..] {
                if let Some(p) = self.pair(a, b) {
                    out.push(((l.pairs + p) as u32, 1.0));
                }
            }
        }
        if self.staff2_tasks && staff >= 2 {
            for &t in tasks {
                out.push(((l.staff2_tasks + t as usize) as u32, 1.0));
            }
        }
        if !self.context_pairs.is_empty() {
            let scale = self.task_scale(tasks);
            for (i, &(a, b)) in self.context_pairs.iter().enumerate() {
                let v = self.both(a, z) * self.both(b, z);
                if v != 0.0 {
                    let c = (l.context_pairs + 2 * i) as u32;
                    out.push((c, v));
                    if scale > 0.0 {
                        out.push((c + 1, v * scale));
                    }
                }
            }
        }
    }

    /// A context column's raw indicator (0 or 1) from its centred value.
    fn both(&self, column: u16, z: &[f64]) -> f64 {
        let c = &self.context[column as usize];
        let raw = z[column as usize] * c.scale + c.center;
        // Undo the centring exactly: an indicator is 0 or 1, and a product of two must be 0
        // wherever either condition is absent, or every visit would carry the pair.
        if raw.abs() < 1e-9 {
            0.0
        } else {
            raw
        }
    }

    /// The visit's tasks in units of ten schablon minutes: the scale on which a context
    /// pair that slows the tasks (rather than the visit's overhead) acts.
    pub fn task_scale(&self, tasks: &[u16]) -> f64 {
        tasks
            .iter()
            .map(|&t| self.task_schablon.get(t as usize).copied().unwrap_or(0.0))
            .sum::<f64>()
            / 10.0
    }

    /// The value of context pair `i` for a visit with centred context `z`.
    pub fn context_pair_value(&self, i: usize, z: &[f64]) -> f64 {
        let (a, b) = self.context_pairs[i];
        self.both(a, z) * self.both(b, z)
    }

    /// Which group a coefficient belongs to.
    pub fn group(&self, column: usize) -> Group {
        let l = self.layout();
        match column {
            0 => Group::Overhead,
            c if c < l.staff2 => Group::Slot,
            c if c < l.context => Group::Staff2,
            c if c < l.tasks => Group::OverheadContext,
            c if c < l.interactions => Group::Task,
            c if c < l.pairs => Group::TaskContext,
            c if c < l.staff2_tasks => Group::Pair,
            c if c < l.context_pairs => Group::Staff2Task,
            _ => Group::ContextPair,
        }
    }

    /// The catalog context variable a coefficient depends on, if any.
    pub fn context_var_of(&self, column: usize) -> Option<usize> {
        let l = self.layout();
        let k = self.context.len();
        match self.group(column) {
            Group::OverheadContext => Some(self.context[column - l.context].var),
            Group::TaskContext if k > 0 => Some(self.context[(column - l.interactions) % k].var),
            _ => None,
        }
    }

    /// A readable name for every coefficient, used in the model file.
    pub fn names(&self, catalog: &Catalog) -> Vec<String> {
        let l = self.layout();
        let mut names = Vec::with_capacity(l.len);
        names.push("overhead".to_string());
        for s in SLOT_COLUMNS {
            names.push(format!("slot:{s}"));
        }
        names.push("staff:2".to_string());
        for c in &self.context {
            names.push(format!("overhead×{}", c.name));
        }
        for i in &catalog.insatser {
            names.push(format!("task:{}", i.code));
        }
        for i in &catalog.insatser {
            for c in &self.context {
                names.push(format!("task:{}×{}", i.code, c.name));
            }
        }
        for &(a, b) in &self.pairs {
            names.push(format!(
                "pair:{}+{}",
                catalog.insatser[a as usize].code, catalog.insatser[b as usize].code
            ));
        }
        if self.staff2_tasks {
            for i in &catalog.insatser {
                names.push(format!("task:{}×staff:2", i.code));
            }
        }
        for &(a, b) in &self.context_pairs {
            let (a, b) = (
                &self.context[a as usize].name,
                &self.context[b as usize].name,
            );
            names.push(format!("overhead×{a}×{b}"));
            names.push(format!("tasks×{a}×{b}"));
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_toml(
            r#"
[[insats]]
code = "A"
category = "personal_care"
schablon_min = 10
[[insats]]
code = "B"
category = "service"
schablon_min = 20
[[context]]
name = "cognition"
kind = "ordinal"
levels = [0, 1, 2, 3]
[[context]]
name = "area"
kind = "categorical"
levels = ["urban", "suburban", "rural"]
"#,
            "t",
        )
        .unwrap()
    }

    #[test]
    fn a_visit_encodes_to_its_columns() {
        let c = catalog();
        let space = FeatureSpace::new(
            &c,
            &[(1.0, 1.0), (0.0, 0.0)],
            &[vec![], vec![0.5, 0.3, 0.2]],
            vec![(0, 1)],
        );
        let l = space.layout();
        // cognition>=1, >=2, >=3 (one step per level above the lowest), area=suburban,
        // area=rural
        assert_eq!(space.context.len(), 5);
        // ... and one two-staff column per code.
        assert_eq!(l.len, 1 + 4 + 1 + 5 + 2 + 2 * 5 + 1 + 2);
        assert_eq!(space.names(&c).len(), l.len);
        let mut z = Vec::new();
        space.encode_context(&[2.0f64, 2.0], &mut z);
        // Level 2 is at or above 1 and 2, not 3 (no shares given: centred on 0).
        assert_eq!(z, vec![1.0, 1.0, 0.0, -0.3, 0.8]);
        let mut x = Vec::new();
        space.encode(&[0, 1], Slot::Evening, 2, &z, &mut x);
        let cols: Vec<u32> = x.iter().map(|(c, _)| *c).collect();
        assert!(cols.contains(&0));
        assert!(cols.contains(&((l.slots + 2) as u32)));
        assert!(cols.contains(&(l.staff2 as u32)));
        assert!(cols.contains(&(l.tasks as u32)));
        assert!(cols.contains(&((l.tasks + 1) as u32)));
        assert!(cols.contains(&(l.pairs as u32)));
        assert_eq!(space.group(l.pairs), Group::Pair);
        // With two staff, each task's two-staff column.
        assert!(cols.contains(&(l.staff2_tasks as u32)));
        assert!(cols.contains(&((l.staff2_tasks + 1) as u32)));
        assert_eq!(space.group(l.staff2_tasks + 1), Group::Staff2Task);
        assert_eq!(space.context_var_of(l.interactions + 5 + 3), Some(1));
        assert_eq!(space.context_var_of(l.interactions + 5 + 2), Some(0));
        // morning, one staff, one task: no slot, staff or pair column
        space.encode(&[1], Slot::Morning, 1, &z, &mut x);
        // intercept, the four non-zero context values, the task and its four interactions
        assert_eq!(x.len(), 1 + 4 + 1 + 4);
    }

    #[test]
    fn pairs_are_found_as_a_map_built_in_order_finds_them() {
        let c = catalog();
        let pairs = vec![(3, 9), (0, 1), (1, 300), (0, 1), (2, 2), (300, 1), (7, 8)];
        let space = FeatureSpace::new(
            &c,
            &[(1.0, 1.0), (0.0, 0.0)],
            &[vec![], vec![0.5, 0.3, 0.2]],
            pairs.clone(),
        );
        let map: std::collections::HashMap<(u16, u16), usize> =
            pairs.iter().enumerate().map(|(i, &p)| (p, i)).collect();
        for a in [0u16, 1, 2, 3, 7, 8, 9, 300] {
            for b in [0u16, 1, 2, 3, 7, 8, 9, 300] {
                assert_eq!(space.pair(a, b), map.get(&(a, b)).copied(), "({a}, {b})");
            }
        }
        assert_eq!(space.pair(0, 1), Some(3));
    }
}
