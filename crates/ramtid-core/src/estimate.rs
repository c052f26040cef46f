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
    /// The need as the assessor wrote it, when given as an IBIC row: its ICF code, level and
    /// support (`code` is then the code the catalog mapped it to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<String>,
    /// The goal the need serves, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_id: Option<String>,
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

/// What each context variable adds to the week against its reference, from the plan's
/// visits encoded once: `raw` holds each visit's unclamped prediction under `z` (the
/// recipient's encoded context) and `weekly` the week's minutes. A variable only moves its
/// own context columns (their overhead and task interactions), so each visit's prediction
/// with the variable at its reference is its raw prediction less those columns' change,
/// clamped as [`predict_visit`] clamps. Returns `weekly − week at the reference` per
/// catalog variable, in catalog order.
fn context_deltas(
    visit: &VisitModel,
    catalog: &Catalog,
    plan: &[PlannedVisit],
    raw: &[f64],
    z: &[f64],
    weekly: f64,
) -> Vec<(f64, String)> {
    let space = &visit.space;
    let l = space.layout();
    let k = z.len();
    let n_vars = catalog.contexts.len();
    // The (column, change of z) each variable's columns take at its reference, one
    // variable after another; per variable, where its changes are and its reference.
    let mut changes: Vec<(usize, f64)> = Vec::with_capacity(k);
    let mut vars: Vec<(std::ops::Range<usize>, String)> = Vec::with_capacity(n_vars);
    for var in 0..n_vars {
        let (reference, label) = reference_value(space, catalog, var);
        let from = changes.len();
        for (j, col) in space.context.iter().enumerate() {
            if col.var == var {
                let dz = col.encode(reference) - z[j];
                if dz != 0.0 {
                    changes.push((j, dz));
                }
            }
        }
        vars.push((from..changes.len(), label));
    }
    // Context pairs move with either of their variables: per variable, each pair's change
    // of value when that variable is at its reference.
    let pair_changes: Vec<Vec<(usize, f64)>> = vars
        .iter()
        .map(|(range, _)| {
            if space.context_pairs.is_empty() || range.is_empty() {
                return Vec::new();
            }
            let mut at_ref = z.to_vec();
            for &(j, dz) in &changes[range.clone()] {
                at_ref[j] += dz;
            }
            (0..space.context_pairs.len())
                .map(|i| {
                    (
                        i,
                        space.context_pair_value(i, &at_ref) - space.context_pair_value(i, z),
                    )
                })
                .filter(|&(_, d)| d != 0.0)
                .collect()
        })
        .collect();
    let mut without = vec![0.0; n_vars];
    if !changes.is_empty() {
        // Per visit: what one unit of each context column adds (overhead and its tasks).
        let mut slope = vec![0.0; k];
        for (v, &r) in plan.iter().zip(raw) {
            slope.copy_from_slice(&visit.coef[l.context..l.context + k]);
            for &t in &v.tasks {
                let base = l.interactions + t as usize * k;
                for (s, c) in slope.iter_mut().zip(&visit.coef[base..base + k]) {
                    *s += c;
                }
            }
            let task_scale = space.task_scale(&v.tasks);
            for (((range, _), without), pairs) in vars.iter().zip(&mut without).zip(&pair_changes) {
                if range.is_empty() {
                    continue;
                }
                let pair_delta: f64 = pairs
                    .iter()
                    .map(|&(i, d)| {
                        let c = l.context_pairs + 2 * i;
                        d * (visit.coef[c] + visit.coef[c + 1] * task_scale)
                    })
                    .sum();
                let delta: f64 = changes[range.clone()]
                    .iter()
                    .map(|&(j, dz)| dz * slope[j])
                    .sum::<f64>()
                    + pair_delta;
                *without += v.per_week * (r + delta).max(MIN_VISIT_MIN);
            }
        }
    }
    vars.into_iter()
        .zip(without)
        .map(|((range, label), without)| {
            // A variable at its reference changes nothing: no effect, exactly.
            let effect = if range.is_empty() {
                0.0
            } else {
                weekly - without
            };
            (effect, label)
        })
        .collect()
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
    // Each visit's prediction before the clamp, for the context effects.
    let mut raw = Vec::with_capacity(if full { plan.len() } else { 0 });
    let space = &model.visit.space;
    space.encode_context(&needs.context, &mut scratch.z);
    let (mut weekly, mut weekly_staff, mut per_week) = (0.0, 0.0, 0.0);
    for v in &plan {
        // As predict_visit, with the context encoded once for the whole plan.
        space.encode(&v.tasks, v.slot, v.staff, &scratch.z, &mut scratch.x);
        let unclamped = model.visit.predict_encoded(&scratch.x);
        let minutes = unclamped.max(MIN_VISIT_MIN);
        weekly += minutes * v.per_week;
        weekly_staff += minutes * v.per_week * f64::from(v.staff);
        per_week += v.per_week;
        if !full {
            continue;
        }
        raw.push(unclamped);
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
    let (context_effects, per_need) = if full {
        let deltas = context_deltas(&model.visit, catalog, &plan, &raw, &scratch.z, weekly);
        let effects = catalog
            .contexts
            .iter()
            .zip(deltas)
            .enumerate()
            .map(|(var, (c, (weekly_min, reference)))| ContextEffect {
                variable: c.name.clone(),
                value: c.display_value(needs.context[var]),
                reference,
                weekly_min,
            })
            .collect();
        (
            effects,
            share_over_needs(model, needs, &plan, &visits, &scratch.z),
        )
    } else {
        (Vec::new(), Vec::new())
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

/// `visits` holds each planned visit's prediction and `z` the recipient's encoded context.
fn share_over_needs(
    model: &Model,
    needs: &ValidNeeds,
    plan: &[PlannedVisit],
    visits: &[VisitEstimate],
    z: &[f64],
) -> Vec<NeedEstimate> {
    let catalog = &model.catalog;
    let mut by_code = vec![0.0; catalog.insatser.len()];
    let mut weights: Vec<f64> = Vec::new();
    for (v, e) in plan.iter().zip(visits) {
        let minutes = e.minutes;
        weights.clear();
        weights.extend(v.tasks.iter().map(|&t| task_weight(&model.visit, t, z)));
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
            let words = n.words.as_deref().cloned().unwrap_or_default();
            NeedEstimate {
                code: insats.code.clone(),
                per_week: n.per_week,
                weekly_min: by_code[n.insats] * n.per_week / per_week_by_code[n.insats],
                schablon_weekly_min: n.per_week * insats.schablon_min,
                icf: words.icf,
                level: words.level,
                support: words.support,
                goal_id: words.goal_id,
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
    use crate::needs::{NeedsSet, ValidNeed};

    fn nordstad() -> Model {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/nordstad/1");
        Model::load(&dir).unwrap()
    }

    /// The context effects and shares as they were computed before the plan was encoded
    /// once: the whole week predicted again with each variable at its reference, every
    /// visit predicted again for the shares. The reference the incremental ones must equal.
    fn brute_force(model: &Model, needs: &ValidNeeds) -> (f64, Vec<(f64, String)>, Vec<f64>) {
        let mut scratch = Scratch::default();
        let plan = model.planner.plan(needs);
        let weekly_total = |context: &[f64], scratch: &mut Scratch| -> f64 {
            plan.iter()
                .map(|v| {
                    v.per_week
                        * predict_visit(&model.visit, &v.tasks, v.slot, v.staff, context, scratch)
                })
                .sum()
        };
        let weekly = weekly_total(&needs.context, &mut scratch);
        let mut shifted = needs.context.clone();
        let mut effects = Vec::new();
        for var in 0..model.catalog.contexts.len() {
            let (reference, label) = reference_value(&model.visit.space, &model.catalog, var);
            shifted[var] = reference;
            let without = weekly_total(&shifted, &mut scratch);
            shifted[var] = needs.context[var];
            effects.push((weekly - without, label));
        }
        let mut z = Vec::new();
        model.visit.space.encode_context(&needs.context, &mut z);
        let mut by_code = vec![0.0; model.catalog.insatser.len()];
        for v in &plan {
            let minutes = predict_visit(
                &model.visit,
                &v.tasks,
                v.slot,
                v.staff,
                &needs.context,
                &mut scratch,
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
        let mut per_week_by_code = vec![0.0; model.catalog.insatser.len()];
        for n in &needs.needs {
            per_week_by_code[n.insats] += n.per_week;
        }
        let per_need = needs
            .needs
            .iter()
            .map(|n| by_code[n.insats] * n.per_week / per_week_by_code[n.insats])
            .collect();
        (weekly, effects, per_need)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Where the incremental estimate and the brute-force one differ, if they do.
    fn differences(model: &Model, needs: &ValidNeeds) -> Vec<String> {
        let e = estimate(model, needs);
        let (weekly, effects, per_need) = brute_force(model, needs);
        let mut out = Vec::new();
        if !close(e.weekly_min, weekly) {
            out.push(format!("weekly {} against {weekly}", e.weekly_min));
        }
        if e.context_effects.len() != effects.len() {
            out.push(format!(
                "{} effects against {}",
                e.context_effects.len(),
                effects.len()
            ));
        }
        for (got, (want, label)) in e.context_effects.iter().zip(&effects) {
            if !close(got.weekly_min, *want) || &got.reference != label {
                out.push(format!(
                    "{}: {} against {} ({} / {label})",
                    got.variable, got.weekly_min, want, got.reference
                ));
            }
        }
        for (got, want) in e.per_need.iter().zip(&per_need) {
            if !close(got.weekly_min, *want) {
                out.push(format!("{}: {} against {want}", got.code, got.weekly_min));
            }
        }
        if e.per_need.len() != per_need.len() {
            out.push(format!(
                "{} needs against {}",
                e.per_need.len(),
                per_need.len()
            ));
        }
        out
    }

    fn needs_of(
        model: &Model,
        context: Vec<f64>,
        needs: &[(&str, f64, Option<Slot>, u8)],
    ) -> ValidNeeds {
        ValidNeeds {
            recipient_id: "H-1".into(),
            context,
            needs: needs
                .iter()
                .map(|&(code, per_week, slot, staff)| ValidNeed {
                    insats: model
                        .catalog
                        .insatser
                        .iter()
                        .position(|i| i.code == code)
                        .unwrap(),
                    per_week,
                    slot,
                    staff,
                    words: None,
                })
                .collect(),
        }
    }

    const WEEK: [(&str, f64, Option<Slot>, u8); 6] = [
        ("MORNING_CARE", 7.0, None, 1),
        ("SHOWER", 1.0, None, 2),
        ("CLEANING", 0.5, None, 1),
        ("MEDICATION", 14.0, None, 1),
        ("MORNING_CARE", 2.0, Some(Slot::Evening), 1),
        ("SHOPPING", 1.0, None, 1),
    ];

    #[test]
    fn context_effects_from_one_encoding_equal_the_week_predicted_again() {
        let model = nordstad();
        // age 91, lives alone, cognition 2, mobility 3, interpreter, rural
        let needs = needs_of(&model, vec![91.0, 1.0, 2.0, 3.0, 1.0, 2.0], &WEEK);
        assert_eq!(differences(&model, &needs), Vec::<String>::new());
        // Not a vacuous comparison: the context moves this week.
        let e = estimate(&model, &needs);
        assert!(
            e.context_effects
                .iter()
                .filter(|c| c.weekly_min.abs() > 1.0)
                .count()
                >= 3
        );
        // At the references every effect is exactly nothing, as the brute force finds.
        let mean = reference_value(&model.visit.space, &model.catalog, 0).0;
        let at_reference = needs_of(&model, vec![mean, 0.0, 0.0, 0.0, 0.0, 0.0], &WEEK);
        let e = estimate(&model, &at_reference);
        assert!(e.context_effects.iter().all(|c| c.weekly_min == 0.0));
        assert_eq!(differences(&model, &at_reference), Vec::<String>::new());
    }

    #[test]
    fn context_effects_count_a_context_pair_with_either_of_its_variables() {
        // The shipped model with two pairs of conditions given minutes of their own (per
        // visit and per schablon minute): what each variable adds must still equal the
        // week predicted again with that variable at its reference.
        let mut model = nordstad();
        let column = |name: &str| {
            model
                .visit
                .space
                .context
                .iter()
                .position(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name}")) as u16
        };
        let pairs = vec![
            (column("lives_alone"), column("interpreter")),
            (column("interpreter"), column("area=rural")),
        ];
        let needs = needs_of(&model, vec![91.0, 1.0, 2.0, 3.0, 1.0, 2.0], &WEEK);
        let before = estimate(&model, &needs);
        model.visit.space.context_pairs = pairs;
        model.visit.coef.extend([4.0, 0.6, -1.5, 0.9]);
        assert_eq!(model.visit.coef.len(), model.visit.space.len());
        let after = estimate(&model, &needs);
        // The pairs are on for this person, and they move the week.
        assert!(
            after.weekly_min > before.weekly_min + 10.0,
            "{} {}",
            after.weekly_min,
            before.weekly_min
        );
        assert_eq!(differences(&model, &needs), Vec::<String>::new());
        // Not living alone: the first pair is off, the second still on.
        let needs = needs_of(&model, vec![91.0, 0.0, 2.0, 3.0, 1.0, 2.0], &WEEK);
        assert_eq!(differences(&model, &needs), Vec::<String>::new());
    }

    #[test]
    fn each_code_s_two_staff_minutes_count_in_its_two_staff_visits_only() {
        // The shipped model given a two-staff column per code: TRANSFER with two is 3
        // minutes quicker, MORNING_CARE in a visit with two 6 minutes slower.
        let mut model = nordstad();
        let code = |c: &str| {
            model
                .catalog
                .insatser
                .iter()
                .position(|i| i.code == c)
                .unwrap()
        };
        let (transfer, morning) = (code("TRANSFER"), code("MORNING_CARE"));
        let needs = needs_of(
            &model,
            vec![85.0, 1.0, 1.0, 2.0, 0.0, 0.0],
            &[
                ("MORNING_CARE", 7.0, Some(Slot::Morning), 1),
                ("TRANSFER", 7.0, Some(Slot::Morning), 2),
                ("MORNING_CARE", 2.0, Some(Slot::Evening), 1),
            ],
        );
        let before = estimate(&model, &needs);
        let l = model.visit.space.layout();
        assert_eq!(
            l.staff2_tasks,
            model.visit.coef.len(),
            "no context pairs shipped"
        );
        model.visit.space.staff2_tasks = true;
        let n = model.visit.space.n_tasks;
        model.visit.coef.extend(std::iter::repeat_n(0.0, n));
        model.visit.coef[l.staff2_tasks + transfer] = -3.0;
        model.visit.coef[l.staff2_tasks + morning] = 6.0;
        let after = estimate(&model, &needs);
        // Morning care is planned into the transfer's two-staff visits, and in the evening
        // with one.
        let has = |v: &VisitEstimate, c: &str| v.tasks.iter().any(|t| t == c);
        let morning_with_two: f64 = after
            .visits
            .iter()
            .filter(|v| v.staff == 2 && has(v, "MORNING_CARE"))
            .map(|v| v.per_week)
            .sum();
        let morning_with_one: f64 = after
            .visits
            .iter()
            .filter(|v| v.staff == 1 && has(v, "MORNING_CARE"))
            .map(|v| v.per_week)
            .sum();
        assert!(
            morning_with_two > 0.5 && morning_with_one > 0.5,
            "{:?}",
            after.visits
        );
        // The week changes by each code's minutes in its two-staff visits: the transfer's
        // seven occasions, and morning care only where it shares their visit (not in the
        // evening).
        let change = after.weekly_min - before.weekly_min;
        let want = -3.0 * 7.0 + 6.0 * morning_with_two;
        assert!((change - want).abs() < 1e-6, "{change} against {want}");
    }

    #[test]
    fn context_effects_clamp_each_visit_as_the_prediction_does() {
        let mut model = nordstad();
        let needs = needs_of(&model, vec![91.0, 1.0, 2.0, 3.0, 1.0, 2.0], &WEEK);
        // An overhead so low that some visits (here or at a reference) fall to the floor.
        let e = estimate(&model, &needs);
        let shortest = e
            .visits
            .iter()
            .map(|v| v.minutes)
            .fold(f64::INFINITY, f64::min);
        model.visit.coef[0] -= shortest + 2.0;
        let e = estimate(&model, &needs);
        assert!(e.visits.iter().any(|v| v.minutes == MIN_VISIT_MIN));
        assert!(e.visits.iter().any(|v| v.minutes > MIN_VISIT_MIN + 1.0));
        assert_eq!(differences(&model, &needs), Vec::<String>::new());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn context_effects_equal_the_brute_force_for_any_needs_and_context(
            raw_needs in proptest::collection::vec(
                (0usize..64, proptest::prop_oneof![
                    proptest::prelude::Just(0.25), proptest::prelude::Just(0.5),
                    proptest::prelude::Just(1.0), proptest::prelude::Just(7.0),
                    proptest::prelude::Just(14.0), 0.1f64..30.0],
                 proptest::option::of(0usize..5), 1u8..=2),
                1..9),
            age in 60.0f64..110.0,
            flags in (0u8..2, 0u8..4, 0u8..4, 0u8..2, 0u8..3),
            overhead in -40.0f64..5.0,
        ) {
            let mut model = nordstad_once().clone();
            model.visit.coef[0] += overhead;
            let n = model.catalog.insatser.len();
            let needs = ValidNeeds {
                recipient_id: "H-1".into(),
                context: vec![
                    age,
                    f64::from(flags.0),
                    f64::from(flags.1),
                    f64::from(flags.2),
                    f64::from(flags.3),
                    f64::from(flags.4),
                ],
                needs: raw_needs
                    .iter()
                    .map(|&(code, per_week, slot, staff)| ValidNeed {
                        insats: code % n,
                        per_week,
                        slot: slot.map(|s| Slot::ALL[s]),
                        staff,
                        words: None,
                    })
                    .collect(),
            };
            let diff = differences(&model, &needs);
            proptest::prop_assert!(diff.is_empty(), "{:?}", diff);
        }
    }

    fn nordstad_once() -> &'static Model {
        static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
        MODEL.get_or_init(nordstad)
    }

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

    #[test]
    fn an_ibic_row_estimates_exactly_as_the_code_it_maps_to() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/nordstad/1");
        let mut model = Model::load(&dir).unwrap();
        let mapping = r#"
[[ibic]]
icf = "d510"
levels = [2, 3, 4]
code = "SHOWER"
[[ibic]]
icf = "d510"
levels = [1]
code = "MORNING_CARE"
[[ibic]]
icf = "d6402"
levels = [1, 2, 3, 4]
code = "CLEANING"
"#;
        let text = format!("{}{mapping}", model.catalog.to_toml());
        model.catalog.ibic = crate::catalog::Catalog::from_toml(&text, "t").unwrap().ibic;
        let ctx = r#""context": {"age": 84, "lives_alone": true, "cognition": 1, "mobility": 2,
                "interpreter": false, "area": "urban"}"#;
        let by_code: NeedsSet = serde_json::from_str(&format!(
            r#"{{"recipient_id": "H-1", {ctx}, "needs": [{{"code": "MORNING_CARE", "per_week": 7}},
                {{"code": "SHOWER", "per_week": 2, "slot": "evening"}}, {{"code": "CLEANING", "per_week": 0.5}}]}}"#
        ))
        .unwrap();
        let by_ibic: NeedsSet = serde_json::from_str(&format!(
            r#"{{"recipient_id": "H-1", {ctx}, "needs": [{{"code": "MORNING_CARE", "per_week": 7}},
                {{"icf": "d510", "level": 3, "per_week": 2, "slot": "evening", "goal_id": "G1"}},
                {{"icf": "d6402", "level": 2, "support": "partial", "per_week": 0.5}}]}}"#
        ))
        .unwrap();
        let a = estimate(&model, &by_code.validate(&model.catalog).unwrap());
        let b = estimate(&model, &by_ibic.validate(&model.catalog).unwrap());
        assert_eq!(a.weekly_min, b.weekly_min);
        assert_eq!(a.p90_weekly_min, b.p90_weekly_min);
        assert_eq!(a.visits, b.visits);
        assert_eq!(a.context_effects, b.context_effects);
        assert_eq!(a.per_need.len(), 3);
        for (x, y) in a.per_need.iter().zip(&b.per_need) {
            assert_eq!((&x.code, x.weekly_min), (&y.code, y.weekly_min));
        }
        // The answer names the assessor's words beside the code each row became.
        assert_eq!(b.per_need[1].code, "SHOWER");
        assert_eq!(b.per_need[1].icf.as_deref(), Some("d510"));
        assert_eq!(b.per_need[1].level, Some(3));
        assert_eq!(b.per_need[1].goal_id.as_deref(), Some("G1"));
        assert_eq!(b.per_need[2].support.as_deref(), Some("partial"));
        assert!(a.per_need.iter().all(|n| n.icf.is_none()));
    }
}
