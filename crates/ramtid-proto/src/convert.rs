//! Between the wire (`pb`) and the library: requests into needs sets, library results into
//! messages. No decisions here beyond shapes and field paths.

use crate::pb;
use ramtid_core::catalog::{Catalog, ContextKind};
use ramtid_core::estimate::{Estimate, VisitExplanation};
use ramtid_core::fit::Efficiency;
use ramtid_core::model::{Manifest, Model};
use ramtid_core::needs::{FieldViolation, Need, NeedsSet};
use ramtid_core::params::{CheckedFitParams, FitParams, Method, ParamGuard};
use std::collections::HashMap;

/// A context value on the wire: `google.protobuf.Value`, whose proto3 JSON is the JSON value
/// itself, so that a request's JSON is the data contract's needs object as it is.
pub use prost_types::Value as ContextValue;

/// A context value as the library's JSON needs object carries it. An unset value (no kind,
/// or JSON `null`) is JSON `null`, which the needs validation reports as missing; a number
/// that JSON cannot hold (NaN, infinite) is `null` too, so it is reported rather than read.
pub fn context_to_json(v: &ContextValue) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::NumberValue(x)) => serde_json::Number::from_f64(*x)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        // No context variable takes a list or an object; carried as they are, so that the
        // validation names the field and what it expected.
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(context_to_json).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), context_to_json(v)))
                .collect(),
        ),
        Some(Kind::NullValue(_)) | None => serde_json::Value::Null,
    }
}

/// A JSON context value on the wire: the inverse of [`context_to_json`] (JSON `null` is
/// `NullValue`).
pub fn context_to_pb(v: &serde_json::Value) -> ContextValue {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        // Every JSON number is a double on the wire (proto3 JSON's rule for Value).
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(context_to_pb).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o
                .iter()
                .map(|(k, v)| (k.clone(), context_to_pb(v)))
                .collect(),
        }),
    };
    ContextValue { kind: Some(kind) }
}

impl From<&NeedsSet> for pb::NeedsSet {
    fn from(n: &NeedsSet) -> Self {
        pb::NeedsSet {
            recipient_id: n.recipient_id.clone(),
            context: n
                .context
                .iter()
                .map(|(k, v)| (k.clone(), context_to_pb(v)))
                .collect(),
            needs: n
                .needs
                .iter()
                .map(|x| pb::Need {
                    code: x.code.clone(),
                    per_week: x.per_week,
                    slot: x.slot.clone().unwrap_or_default(),
                    // 0 is the wire's "not given", which the validation reads as 1.
                    staff: x.staff.unwrap_or(0),
                    icf: x.icf.clone().unwrap_or_default(),
                    level: x.level,
                    support: x.support.clone().unwrap_or_default(),
                    goal_id: x.goal_id.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl From<&pb::Need> for Need {
    fn from(n: &pb::Need) -> Self {
        Need {
            code: n.code.clone(),
            per_week: n.per_week,
            slot: (!n.slot.is_empty()).then(|| n.slot.clone()),
            staff: (n.staff != 0).then_some(n.staff),
            icf: (!n.icf.is_empty()).then(|| n.icf.clone()),
            level: n.level,
            support: (!n.support.is_empty()).then(|| n.support.clone()),
            goal_id: (!n.goal_id.is_empty()).then(|| n.goal_id.clone()),
        }
    }
}

impl From<&pb::NeedsSet> for NeedsSet {
    fn from(n: &pb::NeedsSet) -> Self {
        needs_from_fields(&n.recipient_id, &n.context, &n.needs)
    }
}

/// The one mapping of a needs set's wire fields (a `NeedsSet` message, or the same fields
/// inlined in `EstimateRequest` and `ExplainVisitRequest`).
fn needs_from_fields(
    recipient_id: &str,
    context: &HashMap<String, ContextValue>,
    needs: &[pb::Need],
) -> NeedsSet {
    NeedsSet {
        recipient_id: recipient_id.to_string(),
        context: context
            .iter()
            .map(|(k, v)| (k.clone(), context_to_json(v)))
            .collect(),
        needs: needs.iter().map(Need::from).collect(),
    }
}

/// A needs set from its wire fields. `max_needs` is checked first, so an oversized set is
/// refused before any work.
pub fn needs_set(
    recipient_id: &str,
    context: &HashMap<String, ContextValue>,
    needs: &[pb::Need],
    max_needs: usize,
) -> Result<NeedsSet, FieldViolation> {
    if needs.len() > max_needs {
        return Err(FieldViolation {
            field: "needs".to_string(),
            description: format!(
                "{} needs in one set; at most {max_needs} are accepted (limits.max_needs)",
                needs.len()
            ),
        });
    }
    Ok(needs_from_fields(recipient_id, context, needs))
}

pub fn model_ref(m: &Model) -> pb::ModelRef {
    pb::ModelRef {
        name: m.name().to_string(),
        version: m.version().to_string(),
    }
}

/// An estimate on the wire; `full` includes the assumed visits and context effects.
pub fn estimate(e: Estimate, full: bool) -> pb::Estimate {
    pb::Estimate {
        recipient_id: e.recipient_id,
        weekly_min: e.weekly_min,
        weekly_staff_min: e.weekly_staff_min,
        monthly_min: e.monthly_min,
        monthly_staff_min: e.monthly_staff_min,
        p10_weekly_min: e.p10_weekly_min,
        p90_weekly_min: e.p90_weekly_min,
        schablon_weekly_min: e.schablon_weekly_min,
        schablon_weekly_staff_min: e.schablon_weekly_staff_min,
        visits_per_week: e.visits_per_week,
        visits: if full {
            e.visits
                .into_iter()
                .map(|v| pb::AssumedVisit {
                    tasks: v.tasks,
                    slot: v.slot.as_str().to_string(),
                    staff: u32::from(v.staff),
                    per_week: v.per_week,
                    minutes: v.minutes,
                    p10_minutes: v.p10_minutes,
                    p90_minutes: v.p90_minutes,
                    weekly_min: v.weekly_min,
                })
                .collect()
        } else {
            Vec::new()
        },
        context_effects: if full {
            e.context_effects
                .into_iter()
                .map(|c| pb::ContextEffect {
                    variable: c.variable,
                    value: c.value,
                    reference: c.reference,
                    weekly_min: c.weekly_min,
                })
                .collect()
        } else {
            Vec::new()
        },
        model: Some(pb::ModelRef {
            name: e.model_name,
            version: e.model_version,
        }),
        unlogged_codes: e.unlogged_codes,
        broad_needs: e
            .cluster_mix
            .into_iter()
            .map(|c| pb::BroadNeed {
                code: c.code,
                need_index: c.need_index as u32,
                per_week: c.per_week,
                weekly_min: c.weekly_min,
                members: c
                    .members
                    .into_iter()
                    .map(|m| pb::BroadMember {
                        code: m.code,
                        share: m.share,
                        per_week: m.per_week,
                        weekly_min: m.weekly_min,
                    })
                    .collect(),
            })
            .collect(),
        per_need: if full {
            e.per_need
                .into_iter()
                .map(|n| pb::NeedTime {
                    code: n.code,
                    per_week: n.per_week,
                    weekly_min: n.weekly_min,
                    schablon_weekly_min: n.schablon_weekly_min,
                    icf: n.icf.unwrap_or_default(),
                    level: n.level,
                    support: n.support.unwrap_or_default(),
                    goal_id: n.goal_id.unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

pub fn explanation(x: VisitExplanation, model: &Model) -> pb::ExplainVisitResponse {
    pb::ExplainVisitResponse {
        minutes: x.minutes,
        p10_minutes: x.p10_minutes,
        p90_minutes: x.p90_minutes,
        parts: x
            .parts
            .into_iter()
            .map(|(feature, minutes)| pb::FeaturePart { feature, minutes })
            .collect(),
        model: Some(model_ref(model)),
    }
}

/// ExplainVisit's fields are validated as a needs set with one need per task; the field
/// paths are then put back in terms of the ExplainVisit request.
pub fn explain_violations(violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    let mut out: Vec<FieldViolation> = Vec::new();
    for v in violations {
        let field = if let Some(rest) = v.field.strip_prefix("needs[") {
            let (index, sub) = rest.split_once("].").unwrap_or((rest, ""));
            match sub {
                "code" => format!("tasks[{index}]"),
                "slot" => "slot".to_string(),
                "staff" => "staff".to_string(),
                other => format!("tasks[{index}].{other}"),
            }
        } else if v.field == "needs" {
            "tasks".to_string()
        } else {
            v.field
        };
        if !out.iter().any(|o| o.field == field) {
            out.push(FieldViolation {
                field,
                description: v.description,
            });
        }
    }
    out
}

pub fn catalog(c: &Catalog, model: &Model) -> pb::Catalog {
    pb::Catalog {
        insatser: c
            .insatser
            .iter()
            .map(|i| pb::Insats {
                code: i.code.clone(),
                name: i.name.clone(),
                category: i.category.as_str().to_string(),
                schablon_min: i.schablon_min,
            })
            .collect(),
        contexts: c
            .contexts
            .iter()
            .map(|v| pb::ContextVariable {
                name: v.name.clone(),
                kind: match v.kind {
                    ContextKind::Numeric => "numeric",
                    ContextKind::Ordinal => "ordinal",
                    ContextKind::Boolean => "boolean",
                    ContextKind::Categorical => "categorical",
                }
                .to_string(),
                levels: match v.kind {
                    ContextKind::Ordinal => {
                        v.ordinal_levels.iter().map(|l| l.to_string()).collect()
                    }
                    ContextKind::Categorical => v.labels.clone(),
                    _ => Vec::new(),
                },
                min: v.min,
                max: v.max,
            })
            .collect(),
        model: Some(model_ref(model)),
        broad_codes: c
            .clusters
            .iter()
            .enumerate()
            .map(|(k, b)| pb::BroadCode {
                code: b.code.clone(),
                name: b.name.clone(),
                category: c.cluster_category(k).as_str().to_string(),
                members: b.members.clone(),
                schablon_min: b.schablon_min,
                shares: model
                    .clusters
                    .iter()
                    .find(|m| m.code == b.code)
                    .map(|m| m.shares.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        ibic: c
            .ibic
            .iter()
            .map(|r| pb::IbicMapping {
                icf: r.icf.clone(),
                levels: r.levels.clone(),
                support: r.support.clone().unwrap_or_default(),
                code: r.code.clone(),
            })
            .collect(),
    }
}

pub fn fit_figures(m: &Manifest) -> pb::FitFigures {
    let f = &m.fit;
    pb::FitFigures {
        visits: f.visits,
        recipients: f.recipients as u64,
        features: f.features as u64,
        visit_mae_min: f.oof_visit_mae_min,
        visit_r2: f.oof_visit_r2,
        visit_interval_coverage: f.heldout_visit_interval_coverage,
        recipient_mape: f.oof_planned_week_mape,
        share_visits_inefficient: f.share_visits_inefficient,
        logged_over_efficient: f.logged_over_efficient,
        frontier: f.frontier.as_ref().map(|r| pb::Frontier {
            method: r.method.clone(),
            reason: r.reason.clone(),
            members: r.members.clone(),
            implausibly_fast: r.implausibly_fast.clone(),
            not_comparable: r.not_comparable.clone(),
            weekend_factor: r.weekend_factor,
            fastest_share: r.fastest_share,
            what_if: r
                .what_if
                .iter()
                .map(|w| pb::WhatIfHours {
                    definition: w.definition.clone(),
                    description: w.description.clone(),
                    relative: w.relative,
                    hours_per_week: w.hours_per_week,
                })
                .collect(),
        }),
        teams: f
            .teams
            .iter()
            .map(|t| pb::TeamPace {
                unit_id: t.unit_id.clone(),
                visits: t.visits,
                pace: t.multiplier,
                pace_low: t.multiplier_interval[0],
                pace_high: t.multiplier_interval[1],
                weekend_factor: t.weekend_factor,
                role: t.role.map(|r| r.as_str().to_string()).unwrap_or_default(),
                inefficient: t.inefficient,
                slack_min: t.slack_min,
            })
            .collect(),
    }
}

/// A model version's description from its manifest.
pub fn model_info(
    name: &str,
    version: &str,
    manifest: Result<&Manifest, &str>,
    aliases: Vec<&'static str>,
    refused: Option<String>,
) -> pb::ModelInfo {
    let status = if !aliases.is_empty() {
        pb::ModelStatus::Active
    } else if refused.is_some() || manifest.is_err() {
        pb::ModelStatus::Refused
    } else {
        pb::ModelStatus::Available
    };
    let mut info = pb::ModelInfo {
        name: name.to_string(),
        version: version.to_string(),
        status: status as i32,
        aliases: aliases.into_iter().map(str::to_string).collect(),
        refused_reason: refused.unwrap_or_default(),
        ..Default::default()
    };
    match manifest {
        Ok(m) => {
            info.created = m.created.clone();
            info.rows_read = m.rows.read;
            info.rows_used = m.rows.used;
            info.rows_rejected = m.rows.rejected;
            info.rows_flagged = m.rows.flagged;
            info.fit = Some(fit_figures(m));
            info.manifest_json = serde_json::to_string(m).unwrap_or_default();
            info.evaluation_json = m
                .evaluation
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
        }
        Err(reason) => {
            if info.refused_reason.is_empty() {
                info.refused_reason = reason.to_string();
            }
        }
    }
    info
}

/// `TrainModel`'s settings onto the server's configured ones (`base`), checked by the same
/// rules as the command line and the configuration ([`ramtid_core::params`]). A bad value
/// names its field: `settings.<name>`, or `folds` for the older top-level field.
pub fn train_params(
    base: FitParams,
    legacy_folds: u32,
    s: Option<&pb::TrainSettings>,
) -> Result<CheckedFitParams, FieldViolation> {
    let default = pb::TrainSettings::default();
    let s = s.unwrap_or(&default);
    let field = |param: &str| format!("settings.{param}");
    let mut p = base;
    if legacy_folds > 0 {
        p = p.folds(legacy_folds as usize);
    }
    let method = match &s.efficiency {
        Some(e) => Some(e.parse::<Method>().map_err(|e| FieldViolation {
            field: field(e.param),
            description: e.message,
        })?),
        None => None,
    };
    if method == Some(Method::TeamReference)
        && !matches!(p.settings().efficiency, Efficiency::TeamReference { .. })
    {
        p = p.reference_quantile(0.5);
    }
    if method == Some(Method::Frontier) {
        p = p.frontier();
    }
    if let Some(q) = s.reference_quantile {
        p = p.reference_quantile(q);
    }
    if let Some(g) = s.implausible_gap {
        p = p.implausible_gap(g);
    }
    if let Some(t) = s.tolerance {
        p = p.tolerance(t);
    }
    if let Some(w) = s.weekend_apart {
        p = p.weekend_apart(w);
    }
    if let Some(t) = s.team_slack {
        p = p.team_slack(t);
    }
    // After the other methods' values: "pooled" wins over them.
    if method == Some(Method::Pooled) {
        p = p.pooled();
    }
    if let Some(k) = s.folds {
        p = p.folds(k as usize);
    }
    if !s.lambdas.is_empty() {
        p = p.lambdas(s.lambdas.clone());
    }
    if let Some(n) = s.min_pair_visits {
        p = p.min_pair_visits(n);
    }
    if let Some(n) = s.min_team_visits {
        p = p.min_team_visits(n);
    }
    if let Some(n) = s.team_iterations {
        p = p.team_iterations(n as usize);
    }
    match s.interval.as_slice() {
        [] => {}
        &[lo, hi] => p = p.interval([lo, hi]),
        other => {
            return Err(FieldViolation {
                field: field("interval"),
                description: format!("{} values; expected two quantiles [low, high]", other.len()),
            })
        }
    }
    if let Some(n) = s.min_recipient_visits {
        p = p.min_recipient_visits(n);
    }
    if let Some(seed) = s.seed {
        p = p.seed(seed);
    }
    if let Some(m) = s.min_visit_min {
        p = p.min_visit_min(m);
    }
    if let Some(m) = s.max_visit_min {
        p = p.max_visit_min(m);
    }
    if let Some(m) = s.long_schablon_multiple {
        p = p.long_schablon_multiple(m);
    }
    p.check().map_err(|e| FieldViolation {
        field: if e.param == "folds" && s.folds.is_none() && legacy_folds > 0 {
            "folds".to_string()
        } else {
            field(e.param)
        },
        description: e.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_values_cross_the_wire_unchanged() {
        for v in [
            json!(84.0),
            json!(true),
            json!("urban"),
            json!(null),
            json!([1.0, "x"]),
            json!({"a": false}),
        ] {
            assert_eq!(context_to_json(&context_to_pb(&v)), v, "{v}");
        }
        // Integers become doubles (proto3 JSON's rule) and read back as the same number.
        assert_eq!(context_to_json(&context_to_pb(&json!(3))), json!(3.0));
    }

    #[test]
    fn unset_and_unrepresentable_values_are_null() {
        assert_eq!(context_to_json(&ContextValue { kind: None }), json!(null));
        let nan = ContextValue {
            kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
        };
        assert_eq!(context_to_json(&nan), json!(null));
    }

    /// The history stores each answer as these bytes (`ramtid.v1.Estimate`); rows written
    /// by earlier releases must still decode, so its field numbers and types stay. Bytes as
    /// the release before `context` became `google.protobuf.Value` wrote them.
    #[test]
    fn a_stored_estimate_from_an_earlier_release_still_decodes() {
        use prost::Message;
        #[rustfmt::skip]
        let stored: &[u8] = &[
            0x0a, 3, b'H', b'-', b'1',                                    // recipient_id
            0x11, 0, 0, 0, 0, 0, 0x20, 0x5e, 0x40,                        // weekly_min 120.5
            0x6a, 6, 0x0a, 1, b'n', 0x12, 1, b'1',                        // model n/1
            0x72, 26, 0x0a, 6, b'S', b'H', b'O', b'W', b'E', b'R',        // per_need[0].code
            0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,                           //   per_week 1
            0x19, 0, 0, 0, 0, 0, 0, 0x3e, 0x40,                           //   weekly_min 30
        ];
        let e = pb::Estimate::decode(stored).unwrap();
        assert_eq!(e.recipient_id, "H-1");
        assert_eq!(e.weekly_min, 120.5);
        let m = e.model.as_ref().unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("n", "1"));
        assert_eq!(e.per_need.len(), 1);
        assert_eq!(
            (
                e.per_need[0].code.as_str(),
                e.per_need[0].per_week,
                e.per_need[0].weekly_min
            ),
            ("SHOWER", 1.0, 30.0)
        );
        assert_eq!(e.encode_to_vec(), stored, "and encodes to the same bytes");
    }

    #[test]
    fn a_needs_set_round_trips_through_the_wire_type() {
        let set: NeedsSet = serde_json::from_value(json!({
            "recipient_id": "H-1",
            "context": {"age": 84.0, "lives_alone": true, "area": "rural", "cognition": null},
            "needs": [{"code": "SHOWER", "per_week": 1.0, "slot": "morning", "staff": 2}]
        }))
        .unwrap();
        let back = NeedsSet::from(&pb::NeedsSet::from(&set));
        assert_eq!(back, set);
    }
}
