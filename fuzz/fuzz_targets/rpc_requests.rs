//! Every RPC's request message decoded from arbitrary bytes as the server's codec does
//! (prost), then taken through the wire-to-library conversions the services apply: the
//! ids' checks, the needs set with `limits.max_needs`, its validation against the shipped
//! model's catalog, the estimate (or ExplainVisit's one visit) and its conversion back to a
//! message. No server: the first byte picks the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use ramtid_core::estimate::{estimate_with, Detail};
use ramtid_core::needs::{FieldViolation, NeedsSet};
use ramtid_proto::{convert, pb};
use ramtid_server::history::{check_case_id, check_pseudonymous_id};

/// The default `limits.max_needs`.
const MAX_NEEDS: usize = 64;

/// Estimate's and EstimateBatch's path for one needs set.
fn estimate(set: Result<NeedsSet, FieldViolation>, full: bool) {
    let Ok(set) = set else { return };
    let model = ramtid_fuzz::model();
    if let Ok(valid) = set.validate(&model.catalog) {
        let detail = if full { Detail::Full } else { Detail::Totals };
        let e = estimate_with(model, &valid, detail);
        ramtid_fuzz::check_estimate(&e);
        let _ = convert::estimate(e, full);
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 17 {
        0 => {
            if let Some(r) = decode::<pb::EstimateRequest>(body) {
                if !r.case_id.is_empty() {
                    let _ = check_case_id("case_id", &r.case_id);
                }
                let _ = check_pseudonymous_id("unit_id", &r.unit_id);
                estimate(
                    convert::needs_set(&r.recipient_id, &r.context, &r.needs, MAX_NEEDS),
                    true,
                );
            }
        }
        1 => {
            if let Some(r) = decode::<pb::EstimateBatchRequest>(body) {
                let full = r.detail != pb::Detail::Totals as i32;
                for item in &r.items {
                    estimate(
                        convert::needs_set(
                            &item.recipient_id,
                            &item.context,
                            &item.needs,
                            MAX_NEEDS,
                        ),
                        full,
                    );
                }
            }
        }
        2 => {
            if let Some(r) = decode::<pb::ExplainVisitRequest>(body) {
                if r.slot.trim().is_empty() {
                    return;
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
                let set = match convert::needs_set("explain", &r.context, &needs, MAX_NEEDS) {
                    Ok(set) => set,
                    Err(v) => {
                        let _ = convert::explain_violations(vec![v]);
                        return;
                    }
                };
                let model = ramtid_fuzz::model();
                match set.validate(&model.catalog) {
                    Ok(valid) => ramtid_fuzz::explain_checked(model, &valid),
                    Err(e) => {
                        let _ = convert::explain_violations(e.violations);
                    }
                }
            }
        }
        3 => {
            if let Some(n) = decode::<pb::NeedsSet>(body) {
                estimate(Ok(NeedsSet::from(&n)), true);
            }
        }
        4 => {
            if let Some(r) = decode::<pb::ListCalculationsRequest>(body) {
                let _ = check_case_id("case_id", &r.case_id);
                let _ = ramtid_history::fuzzing::page_token(&r.page_token);
            }
        }
        5 => {
            if let Some(r) = decode::<pb::EraseCaseRequest>(body) {
                let _ = check_case_id("case_id", &r.case_id);
            }
        }
        6 => drop(decode::<pb::ListModelsRequest>(body)),
        7 => drop(decode::<pb::GetModelRequest>(body)),
        8 => drop(decode::<pb::ActivateModelRequest>(body)),
        9 => drop(decode::<pb::ReloadModelsRequest>(body)),
        10 => drop(decode::<pb::TrainModelRequest>(body)),
        11 => drop(decode::<pb::GetCatalogRequest>(body)),
        12 => drop(decode::<pb::GetCalculationRequest>(body)),
        13 => drop(decode::<pb::RecalculateCalculationRequest>(body)),
        14 => drop(decode::<pb::CompareCalculationsRequest>(body)),
        15 => drop(decode::<pb::RebudgetCaseloadRequest>(body)),
        _ => {
            // The health service's request (tonic-health), the one other message a client
            // sends on the same port, is generated elsewhere; the history's stored needs go
            // through `needs_json`.
        }
    }
});
