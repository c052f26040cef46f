//! Property tests over the entry points the fuzz targets cover (`fuzz/`, README "Fuzzing"),
//! on stable and in CI: `catalog.toml`, needs JSON and JSONL, the server's configuration
//! file and every RPC's request message, each mutated from the project's own examples as a
//! fuzzer would. Whatever the input, the answer is a value or an error, never a panic, and
//! what is accepted estimates with finite figures. (`visits.csv` and model folders have
//! theirs in `visit_log` and `model_folder`; the journal's frames in ramtid-history.)

use proptest::prelude::*;
use prost::Message;
use ramtid_core::catalog::Catalog;
use ramtid_core::estimate::{estimate_with, explain_visit, Detail, Estimate};
use ramtid_core::model::Model;
use ramtid_core::needs::{parse_needs_file, NeedsSet};
use ramtid_proto::{convert, pb};
use ramtid_server::config::{Config, Sources};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

/// The default `limits.max_needs`.
const MAX_NEEDS: usize = 64;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/nordstad/1");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(Path::new(SHIPPED)).unwrap())
}

/// The seed files of one fuzz target, in name order.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(Path::new(CORPUS).join(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
    /// A copy of one part of the input put somewhere else (a repeated field, a second key).
    Copy(prop::sample::Index, prop::sample::Index, usize),
    Truncate(prop::sample::Index),
}

/// What a byte-level fuzzer does to a file: bytes set, inserted (ASCII syntax, multi-byte
/// characters, invalid UTF-8, long digit runs), deleted, copied and the file cut short.
fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<prop::sample::Index>;
    let insert = prop_oneof![
        prop::sample::select(vec![
            "\"",
            "'",
            ",",
            ":",
            "=",
            "[",
            "]",
            "{",
            "}",
            "\n",
            "\r\n",
            "\\",
            "-",
            ".",
            "e",
            "1e309",
            "-0",
            "NaN",
            "inf",
            "null",
            "true",
            "99999999999999999999",
            "é",
            "–",
            "\u{feff}",
            "𝟘",
            "\u{0}",
            "19121212-1212",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 1..6),
    ];
    prop_oneof![
        3 => (idx(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (idx(), insert).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (idx(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (idx(), idx(), 1usize..64).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
        1 => idx().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        if let Mutation::Insert(_, b) = m {
            bytes.extend_from_slice(b);
        }
        return;
    }
    let len = bytes.len();
    match m {
        Mutation::Set(i, b) => bytes[i.index(len)] = *b,
        Mutation::Insert(i, b) => {
            let i = i.index(len + 1);
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = i.index(len);
            bytes.drain(i..(i + n).min(len));
        }
        Mutation::Copy(from, to, n) => {
            let from = from.index(len);
            let part = bytes[from..(from + n).min(len)].to_vec();
            let to = to.index(len + 1);
            bytes.splice(to..to, part);
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(len)),
    }
}

/// One of `target`'s seeds with a few mutations.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 1..8),
    )
        .prop_map(|(mut bytes, ms)| {
            for m in &ms {
                apply(&mut bytes, m);
            }
            bytes
        })
}

fn check_estimate(e: &Estimate) -> Result<(), TestCaseError> {
    for x in [
        e.weekly_min,
        e.weekly_staff_min,
        e.monthly_min,
        e.monthly_staff_min,
        e.p10_weekly_min,
        e.p90_weekly_min,
        e.schablon_weekly_min,
        e.visits_per_week,
    ] {
        prop_assert!(x.is_finite() && x >= 0.0, "{:?}", e);
    }
    prop_assert!(e
        .visits
        .iter()
        .all(|v| v.minutes.is_finite() && v.minutes >= 0.0));
    prop_assert!(e.per_need.iter().all(|n| n.weekly_min.is_finite()));
    prop_assert!(e.context_effects.iter().all(|c| c.weekly_min.is_finite()));
    Ok(())
}

/// Validates and, when accepted, estimates with the shipped model; every violation names a
/// field.
fn estimate_set(set: &NeedsSet) -> Result<(), TestCaseError> {
    match set.validate(&model().catalog) {
        Ok(valid) => {
            check_estimate(&estimate_with(model(), &valid, Detail::Full))?;
            check_estimate(&estimate_with(model(), &valid, Detail::Totals))?;
        }
        Err(e) => {
            prop_assert!(!e.violations.is_empty());
            for v in &e.violations {
                prop_assert!(!v.field.is_empty() && !v.description.is_empty(), "{v:?}");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A mutated catalog is accepted or refused; one accepted is accepted again as written
    /// back (what a trained model folder holds), with the same fingerprint.
    #[test]
    fn a_mutated_catalog_is_refused_or_written_back_the_same(bytes in mutated("catalog_toml")) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            match Catalog::from_toml(text, "catalog.toml") {
                Ok(c) => {
                    let again = Catalog::from_toml(&c.to_toml(), "written");
                    prop_assert!(again.is_ok(), "{:?}", again.err());
                    prop_assert_eq!(again.unwrap().fingerprint(), c.fingerprint());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.toml");
        std::fs::write(&path, &bytes).unwrap();
        let _ = Catalog::load(&path);
    }

    /// A mutated needs object parses or not; parsed, it is refused field by field or
    /// estimated with finite figures.
    #[test]
    fn a_mutated_needs_object_is_refused_or_estimated_finitely(bytes in mutated("needs_json")) {
        if let Ok(set) = serde_json::from_slice::<NeedsSet>(&bytes) {
            estimate_set(&set)?;
        }
    }

    /// A mutated needs file: each line is its own answer, numbered in order, and every
    /// object in it is refused or estimated.
    #[test]
    fn a_mutated_needs_file_answers_line_by_line(bytes in mutated("needs_jsonl")) {
        if let Ok(lines) = parse_needs_file(&bytes) {
            let mut last = 0;
            for (line, set) in lines {
                prop_assert!(line > last);
                last = line;
                match set {
                    Ok(set) => estimate_set(&set)?,
                    Err(e) => prop_assert!(!e.is_empty() && e.chars().count() < 400, "{e}"),
                }
            }
        }
    }

    /// A mutated configuration file loads and validates, or is refused; what loads can be
    /// used (its addresses, tokens and limits) without a panic.
    #[test]
    fn a_mutated_config_is_refused_or_usable(bytes in mutated("config")) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramtid.toml");
        std::fs::write(&path, &bytes).unwrap();
        let sources = Sources { file: Some(path), overrides: Vec::new(), environment: false };
        if let Ok(cfg) = Config::load(&sources) {
            let _ = cfg.listen_addr();
            let _ = cfg.metrics_addr();
            let _ = cfg.tokens();
            let _ = cfg.training.limits();
            let _ = cfg.history_url();
        }
    }

    /// Every request message a client sends, mutated on the wire: decoded or refused by
    /// prost, then taken through the conversions the services apply (the needs set with
    /// `limits.max_needs`, its validation, the estimate or ExplainVisit's visit).
    #[test]
    fn a_mutated_request_is_refused_or_answered(bytes in mutated("rpc_requests")) {
        let Some((&which, body)) = bytes.split_first() else { return Ok(()) };
        rpc_request(which, body)?;
    }
}

/// A needs set from its wire fields as the services take it, then refused or estimated.
fn convert_and_estimate(
    recipient: &str,
    context: &HashMap<String, convert::ContextValue>,
    needs: &[pb::Need],
) -> Result<(), TestCaseError> {
    match convert::needs_set(recipient, context, needs, MAX_NEEDS) {
        Ok(set) => estimate_set(&set),
        Err(v) => {
            prop_assert_eq!(v.field.as_str(), "needs");
            Ok(())
        }
    }
}

/// The fuzz target `rpc_requests` without the fuzzer: the first byte picks the message.
fn rpc_request(which: u8, body: &[u8]) -> Result<(), TestCaseError> {
    use ramtid_server::history::{check_case_id, check_pseudonymous_id};
    match which % 17 {
        0 => {
            if let Ok(r) = pb::EstimateRequest::decode(body) {
                let _ = check_case_id("case_id", &r.case_id);
                let _ = check_pseudonymous_id("unit_id", &r.unit_id);
                convert_and_estimate(&r.recipient_id, &r.context, &r.needs)?;
            }
        }
        1 => {
            if let Ok(r) = pb::EstimateBatchRequest::decode(body) {
                for item in &r.items {
                    convert_and_estimate(&item.recipient_id, &item.context, &item.needs)?;
                }
            }
        }
        2 => {
            if let Ok(r) = pb::ExplainVisitRequest::decode(body) {
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
                if r.slot.trim().is_empty() {
                    return Ok(());
                }
                let Ok(set) = convert::needs_set("explain", &r.context, &needs, MAX_NEEDS) else {
                    return Ok(());
                };
                match set.validate(&model().catalog) {
                    Ok(valid) => {
                        let tasks: Vec<u16> = valid.needs.iter().map(|n| n.insats as u16).collect();
                        let first = &valid.needs[0];
                        let slot = first.slot.expect("validated with a slot");
                        let x = explain_visit(model(), &tasks, slot, first.staff, &valid.context);
                        prop_assert!(x.minutes.is_finite() && x.minutes >= 0.0);
                        prop_assert!(x.p10_minutes.is_finite() && x.p90_minutes.is_finite());
                    }
                    Err(e) => {
                        let _ = convert::explain_violations(e.violations);
                    }
                }
            }
        }
        3 => {
            if let Ok(n) = pb::NeedsSet::decode(body) {
                estimate_set(&NeedsSet::from(&n))?;
            }
        }
        4 => {
            if let Ok(r) = pb::ListCalculationsRequest::decode(body) {
                let _ = check_case_id("case_id", &r.case_id);
            }
        }
        5 => {
            if let Ok(r) = pb::EraseCaseRequest::decode(body) {
                let _ = check_case_id("case_id", &r.case_id);
            }
        }
        6 => drop(pb::ListModelsRequest::decode(body)),
        7 => drop(pb::GetModelRequest::decode(body)),
        8 => drop(pb::ActivateModelRequest::decode(body)),
        9 => drop(pb::ReloadModelsRequest::decode(body)),
        10 => drop(pb::TrainModelRequest::decode(body)),
        11 => drop(pb::GetCatalogRequest::decode(body)),
        12 => drop(pb::GetCalculationRequest::decode(body)),
        13 => drop(pb::RecalculateCalculationRequest::decode(body)),
        14 => drop(pb::CompareCalculationsRequest::decode(body)),
        15 => drop(pb::RebudgetCaseloadRequest::decode(body)),
        _ => {}
    }
    Ok(())
}

/// The seeds themselves are what they claim: the examples estimate, the configurations
/// load, the catalogs parse and the requests decode (else the properties above would only
/// ever see refusals).
#[test]
fn the_seeds_are_accepted() {
    for bytes in seeds("catalog_toml") {
        Catalog::from_toml(std::str::from_utf8(&bytes).unwrap(), "seed").unwrap();
    }
    let sets: Vec<NeedsSet> = seeds("needs_json")
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert!(sets.iter().any(|s| s.validate(&model().catalog).is_ok()));
    let dir = tempfile::tempdir().unwrap();
    for bytes in seeds("config") {
        let path = dir.path().join("ramtid.toml");
        std::fs::write(&path, &bytes).unwrap();
        Config::load(&Sources {
            file: Some(path),
            overrides: Vec::new(),
            environment: false,
        })
        .unwrap();
    }
    let bytes = std::fs::read(Path::new(CORPUS).join("rpc_requests/estimate.pb")).unwrap();
    let r = pb::EstimateRequest::decode(&bytes[1..]).unwrap();
    convert::needs_set(&r.recipient_id, &r.context, &r.needs, MAX_NEEDS)
        .unwrap()
        .validate(&model().catalog)
        .unwrap();
}
