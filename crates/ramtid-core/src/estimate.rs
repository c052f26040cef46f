//! From a validated set of needs to a frame time: plan the week, predict each visit, add up,
//! and explain. Pure computation on a loaded [`Model`]; no I/O.

use crate::catalog::{Catalog, ContextKind};
use crate::features::FeatureSpace;
use crate::fit::VisitModel;
use crate::model::Model;
use crate::needs::ValidNeeds;
use crate::plan::PlannedVisit;
use crate::slot::Slot;
use serde::{Deserialize, Serialize};

/// A month is 52/12 weeks (data contract).
pub const WEEKS_PER_MONTH: f64 = 52.0 / 12.0;
/// No visit is predicted shorter than this: a check-in and a check-out take time.
pub const MIN_VISIT_MIN: f64 = 1.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitEstimate {
    pub tasks: Vec<String>,
    pub slot: Slot,
    pub staff: u8,
    pub per_week: f64,
    /// Wall-clock minutes of one such visit.
    pub minutes: f64,
    pub p10_minutes: f64,
    pub p90_minutes: f64,
    /// Wall-clock minutes of these visits in a week.
    pub weekly_min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextEffect {
    pub variable: String,
    pub value: String,
    /// What the value is compared with: the lowest level, false, the first label, or the
    /// average of the training log for numbers.
    pub reference: String,
    /// Minutes per week it adds (positive) or saves (negative) against the reference.
    pub weekly_min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub recipient_id: String,
    pub weekly_min: f64,
    pub weekly_staff_min: f64,
    pub monthly_min: f64,
    pub monthly_staff_min: f64,
    pub p10_weekly_min: f64,
    pub p90_weekly_min: f64,
    pub schablon_weekly_min: f64,
    pub schablon_weekly_staff_min: f64,
    pub visits_per_week: f64,
    pub visits: Vec<VisitEstimate>,
    pub context_effects: Vec<ContextEffect>,
    /// The week's minutes shared out over the needs, in request order.
    #[serde(default)]
    pub per_need: Vec<NeedEstimate>,
    /// Codes of these needs that the training log never showed: their time comes from
    /// their category's logged codes, not from visits of their own (see the model's
    /// `unlogged_codes`).
    #[serde(default)]
    pub unlogged_codes: Vec<String>,
    /// Needs for broad codes (catalog clusters): which members each became and with what
    /// shares (see [`crate::cluster::estimate_needs`]). Empty for detailed needs only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_mix: Vec<crate::cluster::ClusterMixEstimate>,
    pub model_name: String,
    pub model_version: String,
}

/// What one need takes of the week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedEstimate {
    pub code: String,
    pub per_week: f64,
    /// Wall-clock minutes per week attributed to this need: each visit's minutes (overhead
    /// included) are shared over its tasks in proportion to each task's own predicted time,
    /// and a code's share over the needs that ask for it by their frequency.
    pub weekly_min: f64,
    pub schablon_weekly_min: f64,
}

/// One visit's prediction with its parts, for explanations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitExplanation {
    pub minutes: f64,
    pub p10_minutes: f64,
    pub p90_minutes: f64,
    /// (feature, minutes) for every feature that contributes.
    pub parts: Vec<(String, f64)>,
}

/// Efficient minutes of one visit.
pub fn predict_visit(
    visit: &VisitModel,
    tasks: &[u16],
    slot: Slot,
    staff: u8,
    context: &[f64],
    scratch: &mut Scratch,
) -> f64 {
    visit.space.encode_context(context, &mut scratch.z);
    visit
        .space
        .encode(tasks, slot, staff, &scratch.z, &mut scratch.x);
    visit.predict_encoded(&scratch.x).max(MIN_VISIT_MIN)
}

/// Reusable buffers, so that estimating allocates little.
#[derive(Debug, Default)]
pub struct Scratch {
    z: Vec<f64>,
    x: Vec<(u32, f64)>,
}

/// The value a context variable is compared with in explanations.
fn reference_value(space: &FeatureSpace, catalog: &Catalog, var: usize) -> (f64, String) {
    let c = &catalog.contexts[var];
    match c.kind {
        ContextKind::Ordinal => (c.ordinal_levels[0], c.ordinal_levels[0].to_string()),
        ContextKind::Boolean => (0.0, "false".into()),
        ContextKind::Categorical => (0.0, c.labels[0].clone()),
        ContextKind::Numeric => {
            let mean = space
                .context
                .iter()
                .find(|col| col.var == var)
                .map(|col| col.center)
                .unwrap_or(0.0);
            (mean, format!("{mean:.0} (average)"))
        }
    }
}

fn weekly_total(
    visit: &VisitModel,
    plan: &[PlannedVisit],
    context: &[f64],
    scratch: &mut Scratch,
) -> f64 {
    plan.iter()
        .map(|v| v.per_week * predict_visit(visit, &v.tasks, v.slot, v.staff, context, scratch))
        .sum()
}

/// How much of the answer to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Totals, interval and schablon only: what bulk re-budgeting and evaluation need.
    Totals,
    /// Also the assumed visits and what each context variable added or saved.
    Full,
}

/// Estimates the frame time for one recipient's validated needs, with every detail.
pub fn estimate(model: &Model, needs: &ValidNeeds) -> Estimate {
    estimate_with(model, needs, Detail::Full)
}

/// Estimates the frame time; `detail` decides whether visits and context effects are filled.
pub fn estimate_with(model: &Model, needs: &ValidNeeds, detail: Detail) -> Estimate {
    let full = detail == Detail::Full;
    let mut scratch = Scratch::default();
    let plan = model.planner.plan(needs);
    let catalog = &model.catalog;
    let [lo, hi] = model.visit.visit_interval;
    let mut visits = Vec::with_capacity(if full { plan.len() } else { 0 });
    let (mut weekly, mut weekly_staff, mut per_week) = (0.0, 0.0, 0.0);
    for v in &plan {
        let minutes = predict_visit(
            &model.visit,
            &v.tasks,
            v.slot,
            v.staff,
            &needs.context,
            &mut scratch,
        );
        weekly += minutes * v.per_week;
        weekly_staff += minutes * v.per_week * f64::from(v.staff);
        per_week += v.per_week;
        if !full {
            continue;
        }
        visits.push(VisitEstimate {
            tasks: v
                .tasks
                .iter()
                .map(|&t| catalog.insatser[t as usize].code.clone())
                .collect(),
            slot: v.slot,
            staff: v.staff,
            per_week: v.per_week,
            minutes,
            p10_minutes: minutes * lo,
            p90_minutes: minutes * hi,
            weekly_min: minutes * v.per_week,
        });
    }
    let mut context_effects = Vec::new();
    let mut shifted = needs.context.clone();
    for (var, c) in catalog.contexts.iter().enumerate().filter(|_| full) {
        let (reference, reference_label) = reference_value(&model.visit.space, catalog, var);
        shifted[var] = reference;
        let without = weekly_total(&model.visit, &plan, &shifted, &mut scratch);
        shifted[var] = needs.context[var];
        context_effects.push(ContextEffect {
            variable: c.name.clone(),
            value: c.display_value(needs.context[var]),
            reference: reference_label,
            weekly_min: weekly - without,
        });
    }
    let per_need = if full {
        share_over_needs(model, needs, &plan, &mut scratch)
    } else {
        Vec::new()
    };
    let schablon_weekly_min: f64 = needs
        .needs
        .iter()
        .map(|n| n.per_week * catalog.insatser[n.insats].schablon_min)
        .sum();
    let schablon_weekly_staff_min: f64 = needs
        .needs
        .iter()
        .map(|n| n.per_week * catalog.insatser[n.insats].schablon_min * f64::from(n.staff))
        .sum();
    let [wlo, whi] = model.visit.weekly_interval;
    let unlogged = &model.manifest.fit.unlogged_codes;
    let mut unlogged_codes: Vec<String> = Vec::new();
    for n in &needs.needs {
        let code = &catalog.insatser[n.insats].code;
        if unlogged.contains(code) && !unlogged_codes.contains(code) {
            unlogged_codes.push(code.clone());
        }
    }
    Estimate {
        recipient_id: needs.recipient_id.clone(),
        weekly_min: weekly,
        weekly_staff_min: weekly_staff,
        monthly_min: weekly * WEEKS_PER_MONTH,
        monthly_staff_min: weekly_staff * WEEKS_PER_MONTH,
        p10_weekly_min: weekly * wlo,
        p90_weekly_min: weekly * whi,
        schablon_weekly_min,
        schablon_weekly_staff_min,
        visits_per_week: per_week,
        visits,
        context_effects,
        per_need,
        unlogged_codes,
        cluster_mix: Vec::new(),
        model_name: model.name().to_string(),
        model_version: model.version().to_string(),
    }
}

/// A task's own predicted minutes in a visit (its main effect and its context
/// interactions), the weight by which the visit's minutes are shared. Never below a small
/// positive floor, so that every task carries some of the visit.
fn task_weight(visit: &VisitModel, task: u16, z: &[f64]) -> f64 {
    let l = visit.space.layout();
    let k = z.len();
    let base = l.interactions + task as usize * k;
    let own = visit.coef[l.tasks + task as usize]
        + z.iter()
            .enumerate()
            .map(|(j, zj)| visit.coef[base + j] * zj)
            .sum::<f64>();
    own.max(0.5)
}

fn share_over_needs(
    model: &Model,
    needs: &ValidNeeds,
    plan: &[PlannedVisit],
    scratch: &mut Scratch,
) -> Vec<NeedEstimate> {
    let catalog = &model.catalog;
    model
        .visit
        .space
        .encode_context(&needs.context, &mut scratch.z);
    let z = scratch.z.clone();
    let mut by_code = vec![0.0; catalog.insatser.len()];
    for v in plan {
        let minutes = predict_visit(
            &model.visit,
            &v.tasks,
            v.slot,
            v.staff,
            &needs.context,
            scratch,
        );
        let weights: Vec<f64> = v
            .tasks
            .iter()
            .map(|&t| task_weight(&model.visit, t, &z))
            .collect();
        let total: f64 = weights.iter().sum();
        for (&t, w) in v.tasks.iter().zip(&weights) {
            by_code[t as usize] += v.per_week * minutes * w / total;
        }
    }
    let mut per_week_by_code = vec![0.0; catalog.insatser.len()];
    for n in &needs.needs {
        per_week_by_code[n.insats] += n.per_week;
    }
    needs
        .needs
        .iter()
        .map(|n| {
            let insats = &catalog.insatser[n.insats];
            NeedEstimate {
                code: insats.code.clone(),
                per_week: n.per_week,
                weekly_min: by_code[n.insats] * n.per_week / per_week_by_code[n.insats],
                schablon_weekly_min: n.per_week * insats.schablon_min,
            }
        })
        .collect()
}

/// Predicts one visit with its per-feature breakdown.
pub fn explain_visit(
    model: &Model,
    tasks: &[u16],
    slot: Slot,
    staff: u8,
    context: &[f64],
) -> VisitExplanation {
    let mut sorted = tasks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut scratch = Scratch::default();
    let minutes = predict_visit(&model.visit, &sorted, slot, staff, context, &mut scratch);
    let names = model.visit.space.names(&model.catalog);
    let parts = scratch
        .x
        .iter()
        .map(|&(c, v)| (names[c as usize].clone(), model.visit.coef[c as usize] * v))
        .filter(|(_, m)| m.abs() > 1e-9)
        .collect();
    let [lo, hi] = model.visit.visit_interval;
    VisitExplanation {
        minutes,
        p10_minutes: minutes * lo,
        p90_minutes: minutes * hi,
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::needs::NeedsSet;

    #[test]
    fn an_estimate_names_the_codes_its_model_never_saw_in_the_log() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/nordstad/1");
        let mut model = Model::load(&dir).unwrap();
        let needs: NeedsSet = serde_json::from_str(
            r#"{"recipient_id": "H-1", "context": {"age": 84, "lives_alone": true,
                "cognition": 1, "mobility": 2, "interpreter": false, "area": "urban"},
                "needs": [{"code": "MORNING_CARE", "per_week": 7},
                          {"code": "SHOWER", "per_week": 1}]}"#,
        )
        .unwrap();
        let valid = needs.validate(&model.catalog).unwrap();
        assert!(estimate(&model, &valid).unlogged_codes.is_empty());
        // CLEANING is unlogged too, but not among these needs.
        model.manifest.fit.unlogged_codes = vec!["SHOWER".into(), "CLEANING".into()];
        let e = estimate(&model, &valid);
        assert_eq!(e.unlogged_codes, vec!["SHOWER".to_string()]);
        // Totals only still carry them (the wire sends them with every detail).
        let e = estimate_with(&model, &valid, Detail::Totals);
        assert_eq!(e.unlogged_codes, vec!["SHOWER".to_string()]);
    }
}
