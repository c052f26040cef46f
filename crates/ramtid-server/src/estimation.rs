//! `ramtid.v1.EstimationService`: Estimate, EstimateBatch, ExplainVisit.

use crate::error::ApiError;
use crate::Shared;
use ramtid_core::estimate::{explain_visit, Detail};
use ramtid_core::model::Model;
use ramtid_core::needs::NeedsSet;
use ramtid_proto::convert;
use ramtid_proto::pb::{self, estimation_service_server::EstimationService};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Estimation {
    shared: Arc<Shared>,
}

impl Estimation {
    pub fn new(shared: Arc<Shared>) -> Self {
        Estimation { shared }
    }
}

/// Validates and estimates one needs set on `model`.
fn estimate_one(model: &Model, set: &NeedsSet, full: bool) -> Result<pb::Estimate, ApiError> {
    let valid = ramtid_core::cluster::validate_needs(set, &model.catalog)
        .map_err(|e| ApiError::Invalid(e.violations))?;
    let detail = if full { Detail::Full } else { Detail::Totals };
    Ok(convert::estimate(
        ramtid_core::cluster::estimate_needs(model, &valid, detail),
        full,
    ))
}

/// Batch items estimated inline on the async worker; bigger messages go to a blocking
/// thread, split over the cores.
const INLINE_ITEMS: usize = 64;

fn estimate_items(
    model: &Model,
    items: &[pb::NeedsSet],
    first_index: u64,
    full: bool,
    max_needs: usize,
) -> (Vec<pb::BatchResult>, u64) {
    each_item(items, first_index, |item| {
        convert::needs_set(&item.recipient_id, &item.context, &item.needs, max_needs)
            .map_err(ApiError::from)
            .and_then(|set| estimate_one(model, &set, full))
    })
}

/// Runs `f` on `items` one by one, each isolated: an error, or a panic, in one item becomes
/// that item's error and the others are answered. (Bad input is meant to be refused by
/// validation; this is what keeps a fault that slips through from ending a caseload's whole
/// stream.) Returns the results and how many are errors.
pub fn each_item(
    items: &[pb::NeedsSet],
    first_index: u64,
    f: impl Fn(&pb::NeedsSet) -> Result<pb::Estimate, ApiError>,
) -> (Vec<pb::BatchResult>, u64) {
    let mut errors = 0;
    let results = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let index = first_index + i as u64;
            let outcome = isolate(|| f(item)).inspect_err(|e| {
                if e.code() == Code::Internal {
                    tracing::error!(index, error = %e, "a batch item failed");
                }
            });
            pb::BatchResult {
                index,
                recipient_id: item.recipient_id.clone(),
                outcome: Some(match outcome {
                    Ok(e) => pb::batch_result::Outcome::Estimate(e),
                    Err(e) => {
                        errors += 1;
                        pb::batch_result::Outcome::Error(crate::error::item_error(&e))
                    }
                }),
            }
        })
        .collect();
    (results, errors)
}

/// Runs `f`, turning a panic into an INTERNAL error (the panic's text is not passed on: it
/// may quote input).
pub fn isolate<T>(f: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(ApiError::Internal(
            "estimating this needs set failed inside the server (a fault, not the request's); nothing was computed for it"
                .into(),
        ))
    })
}

/// Estimates a large message on blocking threads, in as many parts as there are cores.
async fn estimate_items_parallel(
    model: Arc<Model>,
    items: Vec<pb::NeedsSet>,
    first_index: u64,
    full: bool,
    max_needs: usize,
) -> (Vec<pb::BatchResult>, u64) {
    let items = Arc::new(items);
    let parts = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(items.len().div_ceil(INLINE_ITEMS));
    let chunk = items.len().div_ceil(parts);
    let mut handles = Vec::with_capacity(parts);
    for p in 0..parts {
        let (model, items) = (model.clone(), items.clone());
        let lo = (p * chunk).min(items.len());
        let hi = ((p + 1) * chunk).min(items.len());
        let task = tokio::task::spawn_blocking(move || {
            estimate_items(
                &model,
                &items[lo..hi],
                first_index + lo as u64,
                full,
                max_needs,
            )
        });
        handles.push((lo, hi, task));
    }
    let mut results = Vec::with_capacity(items.len());
    let mut errors = 0;
    for (lo, hi, h) in handles {
        match h.await {
            Ok((r, e)) => {
                results.extend(r);
                errors += e;
            }
            // Items are isolated one by one; should the part itself fail, its items are
            // answered with that error rather than the stream ending.
            Err(join) => {
                let e = ApiError::Internal(format!("estimating these items stopped: {join}"));
                tracing::error!(error = %e, "a batch part failed");
                for (i, item) in items[lo..hi].iter().enumerate() {
                    errors += 1;
                    results.push(pb::BatchResult {
                        index: first_index + (lo + i) as u64,
                        recipient_id: item.recipient_id.clone(),
                        outcome: Some(pb::batch_result::Outcome::Error(crate::error::item_error(
                            &e,
                        ))),
                    });
                }
            }
        }
    }
    (results, errors)
}

#[tonic::async_trait]
impl EstimationService for Estimation {
    async fn estimate(
        &self,
        request: Request<pb::EstimateRequest>,
    ) -> Result<Response<pb::EstimateResponse>, Status> {
        let caller = crate::history::caller_name(request.extensions().get());
        let r = request.get_ref();
        let result = async {
            if !r.case_id.is_empty() {
                crate::history::check_case_id("case_id", &r.case_id)?;
            }
            crate::history::check_pseudonymous_id("unit_id", &r.unit_id)?;
            let model = self.shared.registry.select(&r.model)?;
            crate::note_model(model.name(), model.version());
            let set = convert::needs_set(
                &r.recipient_id,
                &r.context,
                &r.needs,
                self.shared.cfg.limits.max_needs,
            )?;
            let valid = ramtid_core::cluster::validate_needs(&set, &model.catalog)
                .map_err(|e| ApiError::Invalid(e.violations))?;
            let answer = isolate(|| {
                Ok(convert::estimate(
                    ramtid_core::cluster::estimate_needs(&model, &valid, Detail::Full),
                    true,
                ))
            })?;
            let mut calculation_id = 0;
            if let (false, Some(history)) = (r.case_id.is_empty(), &self.shared.history) {
                // Durable before the answer: an acknowledged calculation is never lost.
                calculation_id =
                    crate::history::record(history, &r.case_id, &r.unit_id, caller, &set, &answer)
                        .await?;
            }
            Ok(pb::EstimateResponse {
                estimate: Some(answer),
                calculation_id,
            })
        }
        .await;
        crate::reply(result)
    }

    type EstimateBatchStream = ReceiverStream<Result<pb::EstimateBatchResponse, Status>>;

    async fn estimate_batch(
        &self,
        request: Request<Streaming<pb::EstimateBatchRequest>>,
    ) -> Result<Response<Self::EstimateBatchStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let shared = self.shared.clone();
        // The response starts at once; the first message then chooses the model and the
        // detail (a client may wait for the response headers before it sends anything).
        // The call's span goes with the task; the layers count the call when the stream
        // ends with its status.
        let task = async move {
            let first = match inbound.next().await {
                None => None,
                Some(Ok(m)) => Some(m),
                // An undecodable first message: the caller learns why.
                Some(Err(s)) => {
                    let _ = tx.send(Err(s)).await;
                    return;
                }
            };
            let selector = first.as_ref().map(|m| m.model.as_str()).unwrap_or("");
            let model = match shared.registry.select(selector) {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            crate::note_model(model.name(), model.version());
            let full = first
                .as_ref()
                .is_none_or(|m| m.detail() != pb::Detail::Totals);
            let model_ref = convert::model_ref(&model);
            let max_needs = shared.cfg.limits.max_needs;
            let max_batch = shared.cfg.limits.max_batch;
            let mut next_index = 0u64;
            let mut pending = first;
            loop {
                let msg = match pending.take() {
                    Some(m) => m,
                    None => match inbound.next().await {
                        None => break,
                        Some(Ok(m)) => m,
                        // A broken request stream ends the answer with its status, not as
                        // though the caseload had been complete.
                        Some(Err(s)) => {
                            let _ = tx.send(Err(s)).await;
                            break;
                        }
                    },
                };
                let n = msg.items.len() as u64;
                if next_index + n > max_batch {
                    let e = ApiError::TooLarge(format!(
                        "more than {max_batch} needs sets in one EstimateBatch call (limits.max_batch); split the caseload"
                    ));
                    let _ = tx.send(Err(e.into())).await;
                    break;
                }
                shared.metrics.batch_items.increment(n);
                let (results, errors) = if msg.items.len() <= INLINE_ITEMS {
                    estimate_items(&model, &msg.items, next_index, full, max_needs)
                } else {
                    estimate_items_parallel(model.clone(), msg.items, next_index, full, max_needs)
                        .await
                };
                shared.metrics.batch_item_errors.increment(errors);
                next_index += n;
                let out = pb::EstimateBatchResponse {
                    results,
                    model: Some(model_ref.clone()),
                };
                if tx.send(Ok(out)).await.is_err() {
                    break;
                }
            }
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn explain_visit(
        &self,
        request: Request<pb::ExplainVisitRequest>,
    ) -> Result<Response<pb::ExplainVisitResponse>, Status> {
        let r = request.get_ref();
        let result = (|| {
            let model = self.shared.registry.select(&r.model)?;
            crate::note_model(model.name(), model.version());
            if r.slot.trim().is_empty() {
                return Err(ApiError::field(
                    "slot",
                    "is required: morning, midday, afternoon, evening or night",
                ));
            }
            let needs: Vec<pb::Need> = r
                .tasks
                .iter()
                .map(|code| pb::Need {
                    code: code.clone(),
                    per_week: 1.0,
                    slot: r.slot.clone(),
                    staff: r.staff,
                    ..Default::default()
                })
                .collect();
            let set = convert::needs_set(
                "explain",
                &r.context,
                &needs,
                self.shared.cfg.limits.max_needs,
            )
            .map_err(|v| ApiError::Invalid(convert::explain_violations(vec![v])))?;
            let valid = set
                .validate(&model.catalog)
                .map_err(|e| ApiError::Invalid(convert::explain_violations(e.violations)))?;
            let tasks: Vec<u16> = valid.needs.iter().map(|n| n.insats as u16).collect();
            let slot = valid.needs[0].slot.expect("slot validated");
            let x = explain_visit(&model, &tasks, slot, valid.needs[0].staff, &valid.context);
            Ok(convert::explanation(x, &model))
        })();
        crate::reply(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> pb::NeedsSet {
        pb::NeedsSet {
            recipient_id: id.into(),
            ..Default::default()
        }
    }

    /// The mechanism that keeps a batch going: item 1 panics, items 0 and 2 are answered,
    /// item 1 carries an INTERNAL error, and the indices run on from `first_index`.
    #[test]
    fn a_panic_in_one_item_is_that_items_error() {
        let items = [item("a"), item("boom"), item("c")];
        let (results, errors) = each_item(&items, 10, |it| {
            if it.recipient_id == "boom" {
                panic!("an index out of range, say");
            }
            Ok(pb::Estimate {
                recipient_id: it.recipient_id.clone(),
                weekly_min: 1.0,
                ..Default::default()
            })
        });
        assert_eq!(errors, 1);
        let summary: Vec<(u64, &str, bool)> = results
            .iter()
            .map(|r| {
                (
                    r.index,
                    r.recipient_id.as_str(),
                    matches!(r.outcome, Some(pb::batch_result::Outcome::Estimate(_))),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![(10, "a", true), (11, "boom", false), (12, "c", true)]
        );
        let Some(pb::batch_result::Outcome::Error(e)) = &results[1].outcome else {
            unreachable!()
        };
        assert_eq!(e.code, Code::Internal as i32);
        assert!(!e.message.contains("index out of range"), "{}", e.message);
    }
}
