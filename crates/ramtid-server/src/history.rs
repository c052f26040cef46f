//! `ramtid.v1.HistoryService`: a case's stored calculations, recalculation under another
//! model, comparison, erasure and caseload re-budgeting; plus what `Estimate` uses to store
//! a calculation.
//!
//! Ownership: the access layer lets assessors call the read methods; here an assessor is
//! limited to calculations recorded under their own token name. `data` and `admin` (and
//! every caller when access control is disabled) see all.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::Shared;
use ramtid_core::error::{ErrorKind, Kind};
use ramtid_core::estimate::{Detail, Estimate};
use ramtid_core::needs::NeedsSet;
use ramtid_history::{Calculation, HistoryError, HistoryStore, StoredCalculation, StoredResult};
use ramtid_proto::convert;
use ramtid_proto::pb::{self, history_service_server::HistoryService};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Longest case id accepted.
pub const MAX_CASE_ID: usize = 128;

/// The name a calculation is recorded under: the token's name, or "anonymous" when access
/// control is disabled.
pub fn caller_name(caller: Option<&Caller>) -> &str {
    caller.map(|c| c.name.as_str()).unwrap_or("anonymous")
}

/// Refuses empty, overlong and personnummer-like case ids, naming `field`.
pub fn check_case_id(field: &str, case_id: &str) -> Result<(), ApiError> {
    if case_id.trim().is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    check_pseudonymous_id(field, case_id)
}

/// Any id the service stores (a case, a team): bounded, and never a personnummer or
/// samordningsnummer (a sole trader's organisation number can be one).
pub fn check_pseudonymous_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.chars().count() > MAX_CASE_ID {
        return Err(ApiError::field(
            field,
            format!("is longer than {MAX_CASE_ID} characters"),
        ));
    }
    if ramtid_core::personnummer::looks_like_personnummer(id) {
        return Err(ApiError::field(
            field,
            "looks like a personnummer or samordningsnummer; ids must be pseudonymous",
        ));
    }
    Ok(())
}

/// A history error for the caller, of the kind the history gives it. While serving, the
/// only one a caller causes is a page token not handed out here (the others that are the
/// caller's or the operator's stop the server's start).
fn history_error(e: HistoryError) -> ApiError {
    let kind = e.kind();
    let message = match kind {
        Kind::InvalidArgument => e.to_string(),
        _ => format!("calculation history: {e}"),
    };
    ApiError::of_kind(kind, "page_token", message)
}

/// Stores one calculation durably; its id.
pub async fn record(
    history: &HistoryStore,
    case_id: &str,
    unit_id: &str,
    caller: &str,
    needs: &NeedsSet,
    answer: &pb::Estimate,
) -> Result<i64, ApiError> {
    let needs_json = serde_json::to_string(needs)
        .map_err(|e| ApiError::Internal(format!("cannot encode the calculation: {e}")))?;
    let model = answer.model.clone().unwrap_or_default();
    let calc = Calculation {
        case_id: case_id.to_string(),
        created_ms: ramtid_history::now_ms(),
        caller: caller.to_string(),
        model_name: model.name,
        model_version: model.version,
        needs_json,
        // The answer exactly as it went out, and cheaply: no second encoding of its floats.
        result: StoredResult::Protobuf(prost::Message::encode_to_vec(answer)),
        weekly_min: answer.weekly_min,
        unit_id: unit_id.to_string(),
    };
    history.record(calc).await.map_err(history_error)
}

/// Refused cases a re-budgeting answer lists (all are counted).
const MAX_REFUSED_LISTED: usize = 100;
/// Most cases that move most a re-budgeting answer lists.
const MAX_TOP_MOVERS: u32 = 1000;

#[derive(Debug, Clone)]
pub struct History {
    shared: Arc<Shared>,
    /// One re-budgeting at a time: each scans the whole history and keeps a core busy.
    rebudget_turn: Arc<tokio::sync::Semaphore>,
}

impl History {
    pub fn new(shared: Arc<Shared>) -> Self {
        History {
            shared,
            rebudget_turn: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    fn store(&self) -> Result<&HistoryStore, ApiError> {
        self.shared.history.as_ref().ok_or_else(|| {
            ApiError::Precondition(
                "the calculation history is disabled on this server (history.url is empty)".into(),
            )
        })
    }

    /// A calculation the caller may see, or NOT_FOUND / PERMISSION_DENIED.
    async fn fetch(
        &self,
        field: &str,
        id: i64,
        caller: Option<&Caller>,
    ) -> Result<StoredCalculation, ApiError> {
        let store = self.store()?;
        let calc =
            store.get(id).await.map_err(history_error)?.ok_or_else(|| {
                ApiError::NotFound(format!("{field}: no calculation with id {id}"))
            })?;
        owned(caller, &calc)?;
        Ok(calc)
    }
}

/// An assessor sees only calculations recorded under their own name.
fn owned(caller: Option<&Caller>, calc: &StoredCalculation) -> Result<(), ApiError> {
    match caller {
        Some(c) if c.role == Role::Assessor && c.name != calc.calc.caller => {
            Err(ApiError::Denied(format!(
                "calculation {} was made by another caller; an assessor sees only their own calculations",
                calc.id
            )))
        }
        _ => Ok(()),
    }
}

fn parse_needs(calc: &StoredCalculation) -> Result<NeedsSet, ApiError> {
    serde_json::from_str(&calc.calc.needs_json).map_err(|e| {
        ApiError::Internal(format!(
            "calculation {}: stored needs cannot be read: {e}",
            calc.id
        ))
    })
}

/// The stored answer as it went out (older JSON rows converted to it).
fn parse_result(calc: &StoredCalculation) -> Result<pb::Estimate, ApiError> {
    let unreadable = |e: String| {
        ApiError::Internal(format!(
            "calculation {}: stored result cannot be read: {e}",
            calc.id
        ))
    };
    match &calc.calc.result {
        StoredResult::Protobuf(bytes) => <pb::Estimate as prost::Message>::decode(bytes.as_slice())
            .map_err(|e| unreadable(e.to_string())),
        StoredResult::Json(text) => serde_json::from_str::<Estimate>(text)
            .map(|e| convert::estimate(e, true))
            .map_err(|e| unreadable(e.to_string())),
    }
}

fn calculation_pb(c: &StoredCalculation) -> Result<pb::Calculation, ApiError> {
    Ok(pb::Calculation {
        id: c.id,
        case_id: c.calc.case_id.clone(),
        created: crate::audit::rfc3339_from_ms(c.calc.created_ms),
        caller: c.calc.caller.clone(),
        model: Some(pb::ModelRef {
            name: c.calc.model_name.clone(),
            version: c.calc.model_version.clone(),
        }),
        needs: Some(pb::NeedsSet::from(&parse_needs(c)?)),
        estimate: Some(parse_result(c)?),
        unit_id: c.calc.unit_id.clone(),
    })
}

fn totals_pb(t: &ramtid_report::rebudget::Totals) -> pb::ChangeTotals {
    pb::ChangeTotals {
        cases: t.cases as u64,
        before_weekly_min: t.before_weekly_min,
        after_weekly_min: t.after_weekly_min,
        before_monthly_min: t.before_monthly_min,
        after_monthly_min: t.after_monthly_min,
        change_pct: t.change_pct,
    }
}

fn rebudget_pb(s: &ramtid_report::rebudget::Summary, seconds: f64) -> pb::RebudgetReport {
    let groups = |g: &[ramtid_report::rebudget::GroupChange]| {
        g.iter()
            .map(|g| pb::GroupChange {
                variable: g.variable.clone(),
                value: g.value.clone(),
                totals: Some(totals_pb(&g.totals)),
            })
            .collect()
    };
    pb::RebudgetReport {
        model: Some(pb::ModelRef {
            name: s.candidate_name.clone(),
            version: s.candidate_version.clone(),
        }),
        cases_seen: s.cases_seen as u64,
        total: Some(totals_pb(&s.total)),
        refused_count: s.refused_count as u64,
        refused: s
            .refused
            .iter()
            .take(MAX_REFUSED_LISTED)
            .map(|r| pb::RefusedCase {
                case_id: r.case_id.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
        by_unit: groups(&s.by_unit),
        by_context: groups(&s.by_group),
        by_model_version: groups(&s.by_model_version),
        top_movers: s
            .top_movers
            .iter()
            .map(|m| pb::CaseChange {
                case_id: m.case_id.clone(),
                unit_id: m.unit_id.clone(),
                before_weekly_min: m.before_weekly_min,
                after_weekly_min: m.after_weekly_min,
                change_min: m.change_min,
                change_pct: m.change_pct,
            })
            .collect(),
        seconds,
    }
}

/// The difference `after − before`, per kind of visit and per need.
pub fn difference(
    before: &pb::Estimate,
    after: &pb::Estimate,
) -> (Vec<pb::VisitDelta>, Vec<pb::NeedDelta>) {
    let mut visits: Vec<pb::VisitDelta> = Vec::new();
    let key = |v: &pb::AssumedVisit| {
        let mut tasks = v.tasks.clone();
        tasks.sort();
        (tasks, v.slot.clone(), v.staff)
    };
    let slot_of = |v: &pb::AssumedVisit, visits: &mut Vec<pb::VisitDelta>| -> usize {
        let (tasks, slot, staff) = key(v);
        if let Some(i) = visits
            .iter()
            .position(|d| d.tasks == tasks && d.slot == slot && d.staff == staff)
        {
            return i;
        }
        visits.push(pb::VisitDelta {
            tasks,
            slot,
            staff,
            ..Default::default()
        });
        visits.len() - 1
    };
    for v in &before.visits {
        let i = slot_of(v, &mut visits);
        let d = &mut visits[i];
        d.before_per_week += v.per_week;
        d.before_minutes = v.minutes;
        d.before_weekly_min += v.weekly_min;
    }
    for v in &after.visits {
        let i = slot_of(v, &mut visits);
        let d = &mut visits[i];
        d.after_per_week += v.per_week;
        d.after_minutes = v.minutes;
        d.after_weekly_min += v.weekly_min;
    }
    for d in &mut visits {
        d.delta_weekly_min = d.after_weekly_min - d.before_weekly_min;
    }
    let n = before.per_need.len().max(after.per_need.len());
    let needs = (0..n)
        .map(|i| {
            let (b, a) = (before.per_need.get(i), after.per_need.get(i));
            let code = a.or(b).map(|x| x.code.clone()).unwrap_or_default();
            let bw = b.map_or(0.0, |x| x.weekly_min);
            let aw = a.map_or(0.0, |x| x.weekly_min);
            pb::NeedDelta {
                code,
                before_per_week: b.map_or(0.0, |x| x.per_week),
                after_per_week: a.map_or(0.0, |x| x.per_week),
                before_weekly_min: bw,
                after_weekly_min: aw,
                delta_weekly_min: aw - bw,
            }
        })
        .collect();
    (visits, needs)
}

fn comparison(
    before: &StoredCalculation,
    after: Option<&StoredCalculation>,
    after_estimate: pb::Estimate,
) -> Result<pb::Comparison, ApiError> {
    let before_estimate = parse_result(before)?;
    let (visits, needs) = difference(&before_estimate, &after_estimate);
    Ok(pb::Comparison {
        before: Some(calculation_pb(before)?),
        after: after.map(calculation_pb).transpose()?,
        delta_weekly_min: after_estimate.weekly_min - before_estimate.weekly_min,
        delta_weekly_staff_min: after_estimate.weekly_staff_min - before_estimate.weekly_staff_min,
        after_estimate: Some(after_estimate),
        visits,
        needs,
    })
}

#[tonic::async_trait]
impl HistoryService for History {
    async fn list_calculations(
        &self,
        request: Request<pb::ListCalculationsRequest>,
    ) -> Result<Response<pb::ListCalculationsResponse>, Status> {
        let caller = request.extensions().get::<Caller>();
        let r = request.get_ref();
        let result = async {
            let store = self.store()?;
            check_case_id("case_id", &r.case_id)?;
            let page = store
                .list(&r.case_id, r.page_size as usize, &r.page_token)
                .await
                .map_err(history_error)?;
            for c in &page.items {
                owned(caller, c)?;
            }
            Ok(pb::ListCalculationsResponse {
                calculations: page
                    .items
                    .iter()
                    .map(calculation_pb)
                    .collect::<Result<_, _>>()?,
                next_page_token: page.next_page_token.unwrap_or_default(),
            })
        }
        .await;
        crate::reply(result)
    }

    async fn get_calculation(
        &self,
        request: Request<pb::GetCalculationRequest>,
    ) -> Result<Response<pb::Calculation>, Status> {
        let caller = request.extensions().get::<Caller>();
        let r = request.get_ref();
        let result = async {
            let c = self.fetch("id", r.id, caller).await?;
            calculation_pb(&c)
        }
        .await;
        crate::reply(result)
    }

    async fn recalculate_calculation(
        &self,
        request: Request<pb::RecalculateCalculationRequest>,
    ) -> Result<Response<pb::Comparison>, Status> {
        let caller = request.extensions().get::<Caller>();
        let r = request.get_ref();
        let result = async {
            let stored = self.fetch("id", r.id, caller).await?;
            let model = self.shared.registry.select(&r.model)?;
            crate::note_model(model.name(), model.version());
            let needs = parse_needs(&stored)?;
            let valid =
                ramtid_core::cluster::validate_needs(&needs, &model.catalog).map_err(|e| {
                    ApiError::Precondition(format!(
                        "calculation {}'s needs are not valid under model {}/{}: {}",
                        stored.id,
                        model.name(),
                        model.version(),
                        e.violations
                            .iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))
                })?;
            let fresh = ramtid_core::cluster::estimate_needs(&model, &valid, Detail::Full);
            comparison(&stored, None, convert::estimate(fresh, true))
        }
        .await;
        crate::reply(result)
    }

    async fn compare_calculations(
        &self,
        request: Request<pb::CompareCalculationsRequest>,
    ) -> Result<Response<pb::Comparison>, Status> {
        let caller = request.extensions().get::<Caller>();
        let r = request.get_ref();
        let result = async {
            let a = self.fetch("id_a", r.id_a, caller).await?;
            let b = self.fetch("id_b", r.id_b, caller).await?;
            let after = parse_result(&b)?;
            comparison(&a, Some(&b), after)
        }
        .await;
        crate::reply(result)
    }

    async fn rebudget_caseload(
        &self,
        request: Request<pb::RebudgetCaseloadRequest>,
    ) -> Result<Response<pb::RebudgetReport>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.get_ref();
        let result = async {
            let store = self.store()?.clone();
            if r.top_movers > MAX_TOP_MOVERS {
                return Err(ApiError::field(
                    "top_movers",
                    format!("at most {MAX_TOP_MOVERS}"),
                ));
            }
            let top = match r.top_movers {
                0 => ramtid_report::rebudget::TOP_MOVERS,
                n => n as usize,
            };
            let selector = match r.model.trim() {
                "" => crate::registry::CANDIDATE,
                s => s,
            };
            let model = self.shared.registry.select(selector)?;
            crate::note_model(model.name(), model.version());
            let _turn = self
                .rebudget_turn
                .acquire()
                .await
                .map_err(|_| ApiError::Internal("re-budgeting is shutting down".into()))?;
            // Every case's history is read: not unless the log has recorded that it started.
            let model_ref = format!("model {}/{}", model.name(), model.version());
            self.shared
                .audit_start(caller.as_ref(), "rebudget_caseload", model_ref.clone())
                .await?;
            let t0 = std::time::Instant::now();
            // The scan and the recomputation are blocking work: off the runtime's threads.
            let scan_model = model.clone();
            let summary = tokio::task::spawn_blocking(move || {
                ramtid_report::rebudget::rebudget(&store, &scan_model, top)
            })
            .await
            .map_err(|e| ApiError::Internal(format!("re-budgeting stopped: {e}")))?
            .map_err(history_error);
            let seconds = t0.elapsed().as_secs_f64();
            let (target, text) = match &summary {
                Ok(s) => (
                    format!(
                        "{model_ref}: {} cases ({} refused) in {seconds:.2} s",
                        s.cases_seen, s.refused_count
                    ),
                    "ok".to_string(),
                ),
                Err(e) => (model_ref, format!("{:?}: {e}", e.code())),
            };
            self.shared
                .audit(caller, "rebudget_caseload", target, text)
                .await;
            Ok(rebudget_pb(&summary?, seconds))
        }
        .await;
        crate::reply(result)
    }

    async fn erase_case(
        &self,
        request: Request<pb::EraseCaseRequest>,
    ) -> Result<Response<pb::EraseCaseResponse>, Status> {
        let caller = request.extensions().get::<Caller>().cloned();
        let r = request.get_ref();
        let result = async {
            let store = self.store()?;
            check_case_id("case_id", &r.case_id)?;
            // Nothing is erased that the log has not recorded as started.
            self.shared
                .audit_start(caller.as_ref(), "erase_case", format!("case {}", r.case_id))
                .await?;
            let outcome = store.erase_case(&r.case_id).await.map_err(history_error);
            let (target, text) = match &outcome {
                Ok(n) => (
                    format!("case {} ({n} calculations erased)", r.case_id),
                    "ok".to_string(),
                ),
                Err(e) => (
                    format!("case {}", r.case_id),
                    format!("{:?}: {e}", e.code()),
                ),
            };
            self.shared.audit(caller, "erase_case", target, text).await;
            Ok(pb::EraseCaseResponse { erased: outcome? })
        }
        .await;
        crate::reply(result)
    }
}
