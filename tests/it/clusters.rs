//! Broad codes: a catalog with `[[cluster]]` sections, trained on a log in detailed codes,
//! estimating orders that name broad codes.

use crate::common::{copy_dir, fixture};
use ramtid_core::cluster::{estimate_needs, validate_needs};
use ramtid_core::estimate::Detail;
use ramtid_core::model::Model;
use ramtid_core::needs::NeedsSet;
use ramtid_core::params::{FitParams, ParamGuard};
use ramtid_core::train::{train, TrainRequest};
use std::sync::OnceLock;

const CLUSTERS: &str = r#"
[[cluster]]
code = "ONE_SHOWER"
members = ["SHOWER"]

[[cluster]]
code = "PC_BODY"
name = "Kroppsnära omsorg"
members = ["DRESSING", "TRANSFER", "TOILET", "INCONTINENCE", "COMPRESSION", "SKIN_CARE"]
"#;

/// nordstad's fixture log, trained with a catalog that adds two clusters.
fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let data = root.join("data");
        copy_dir(&fixture().data, &data);
        let catalog = std::fs::read_to_string(data.join("catalog.toml")).unwrap();
        std::fs::write(data.join("catalog.toml"), format!("{catalog}{CLUSTERS}")).unwrap();
        let (model, _) = train(
            &TrainRequest {
                catalog: data.join("catalog.toml"),
                visits: data.join("visits.csv"),
                data_dir: None,
                limits: Default::default(),
                models_dir: root.join("models"),
                name: "nordstad".into(),
                rejects: None,
                params: FitParams::new().folds(3).check().unwrap(),
            },
            &ramtid_core::progress::NoProgress,
        )
        .unwrap();
        model
    })
}

fn needs(mobility: u32, needs: &str) -> NeedsSet {
    serde_json::from_str(&format!(
        r#"{{"recipient_id": "H-1", "context": {{"age": 84, "lives_alone": true,
            "cognition": 1, "mobility": {mobility}, "interpreter": false, "area": "urban"}},
            "needs": {needs}}}"#
    ))
    .unwrap()
}

fn weekly(model: &Model, set: &NeedsSet) -> ramtid_core::estimate::Estimate {
    let valid = validate_needs(set, &model.catalog).unwrap();
    estimate_needs(model, &valid, Detail::Full)
}

#[test]
fn the_model_stores_the_mix_and_loads_again() {
    let m = model();
    assert_eq!(m.catalog.clusters.len(), 2);
    assert_eq!(m.clusters.len(), 2);
    assert!(m.clusters[1].occasions > 0);
    let again = Model::load(&m.dir).unwrap();
    assert_eq!(again.clusters, m.clusters);
    // The shipped model (no clusters) still loads.
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/nordstad/1");
    assert!(Model::load(&shipped).unwrap().clusters.is_empty());
}

#[test]
fn a_cluster_of_one_member_estimates_exactly_as_that_member() {
    let m = model();
    let broad = weekly(
        m,
        &needs(
            1,
            r#"[{"code": "MORNING_CARE", "per_week": 7}, {"code": "ONE_SHOWER", "per_week": 2}]"#,
        ),
    );
    let detailed = weekly(
        m,
        &needs(
            1,
            r#"[{"code": "MORNING_CARE", "per_week": 7}, {"code": "SHOWER", "per_week": 2}]"#,
        ),
    );
    assert!(broad.weekly_min > 0.0);
    assert_eq!(broad.weekly_min, detailed.weekly_min);
    assert_eq!(broad.schablon_weekly_min, detailed.schablon_weekly_min);
    assert_eq!(broad.per_need.len(), 2);
    assert_eq!(broad.per_need[1].code, "ONE_SHOWER");
    assert!((broad.per_need[1].weekly_min - detailed.per_need[1].weekly_min).abs() < 1e-9);
    assert_eq!(broad.cluster_mix.len(), 1);
    assert_eq!(broad.cluster_mix[0].need_index, 1);
    assert_eq!(broad.cluster_mix[0].members[0].share, 1.0);
}

#[test]
fn the_mix_sums_to_one_and_a_context_that_changes_it_changes_the_time() {
    let m = model();
    let order = r#"[{"code": "MORNING_CARE", "per_week": 7}, {"code": "PC_BODY", "per_week": 14}]"#;
    let low = weekly(m, &needs(0, order));
    let high = weekly(m, &needs(3, order));
    for e in [&low, &high] {
        let mix = &e.cluster_mix[0];
        assert_eq!(mix.code, "PC_BODY");
        assert_eq!(mix.members.len(), 6);
        let sum: f64 = mix.members.iter().map(|s| s.share).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        let per_week: f64 = mix.members.iter().map(|s| s.per_week).sum();
        assert!((per_week - 14.0).abs() < 1e-9);
        let minutes: f64 = mix.members.iter().map(|s| s.weekly_min).sum();
        assert!((minutes - e.per_need[1].weekly_min).abs() < 1e-9);
        assert!((mix.weekly_min - minutes).abs() < 1e-9);
    }
    // Mobility changes which members the log shows (transfers come with low mobility).
    let moved: f64 = low.cluster_mix[0]
        .members
        .iter()
        .zip(&high.cluster_mix[0].members)
        .map(|(a, b)| (a.share - b.share).abs())
        .sum();
    assert!(moved > 0.05, "{low:?} {high:?}");
    // And the time with it: the same context with the overall mix gives another answer.
    let mut flat = m.clone();
    for c in &mut flat.clusters {
        c.by_context.clear();
    }
    let high_flat = weekly(&flat, &needs(3, order));
    assert!(
        (high.weekly_min - high_flat.weekly_min).abs() > 1.0,
        "{} vs {}",
        high.weekly_min,
        high_flat.weekly_min
    );
}

#[test]
fn broad_needs_are_refused_with_the_request_field() {
    let m = model();
    let set = needs(
        1,
        r#"[{"code": "DRESSING", "per_week": 7}, {"code": "PC_BODY", "per_week": 3}]"#,
    );
    let e = validate_needs(&set, &m.catalog).unwrap_err();
    assert_eq!(e.violations[0].field, "needs[1].code", "{e}");
    assert!(
        e.violations[0].description.contains("includes DRESSING"),
        "{e}"
    );
}

#[test]
fn ramtid_estimate_prints_the_mix() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("needs.json");
    std::fs::write(
        &file,
        serde_json::to_string(&needs(2, r#"[{"code": "PC_BODY", "per_week": 10}]"#)).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(["estimate", "--model"])
        .arg(&m.dir)
        .arg("--needs")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["per_need"][0]["code"], "PC_BODY");
    assert_eq!(e["cluster_mix"][0]["members"].as_array().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_answers_a_broad_need_with_its_mix_and_names_a_bad_one() {
    use ramtid_proto::convert::context_to_pb;
    use ramtid_proto::pb::{self, estimation_service_client::EstimationServiceClient};
    use tonic_types::StatusExt;
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    copy_dir(m.dir.parent().unwrap().parent().unwrap(), &models);
    let data = dir.path().join("data");
    copy_dir(&fixture().data, &data);
    let mut cfg = ramtid_server::config::Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.metrics_listen = String::new();
    cfg.server.shutdown_grace_s = 5;
    cfg.models.dir = models;
    cfg.data.dir = data;
    cfg.training.worker = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ramtid"));
    let running = ramtid_server::start(cfg).await.unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut est = EstimationServiceClient::new(channel.clone());
    let context = [
        ("age", serde_json::json!(84)),
        ("lives_alone", serde_json::json!(true)),
        ("cognition", serde_json::json!(1)),
        ("mobility", serde_json::json!(2)),
        ("interpreter", serde_json::json!(false)),
        ("area", serde_json::json!("urban")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), context_to_pb(&v)))
    .collect();
    let need = |code: &str, per_week: f64| pb::Need {
        code: code.into(),
        per_week,
        staff: 1,
        ..Default::default()
    };
    let mut req = pb::EstimateRequest {
        recipient_id: "B-1".into(),
        context,
        needs: vec![need("MORNING_CARE", 7.0), need("PC_BODY", 10.0)],
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let answer = loop {
        match est.estimate(req.clone()).await {
            Ok(r) => break r.into_inner().estimate.unwrap(),
            Err(s) if s.code() == tonic::Code::Unavailable && t0.elapsed().as_secs() < 20 => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(s) => panic!("{s:?}"),
        }
    };
    assert_eq!(answer.per_need[1].code, "PC_BODY");
    let catalog = pb::model_service_client::ModelServiceClient::new(channel)
        .get_catalog(pb::GetCatalogRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(catalog.broad_codes.len(), 2);
    assert_eq!(catalog.broad_codes[1].code, "PC_BODY");
    assert_eq!(catalog.broad_codes[1].category, "personal_care");
    assert_eq!(catalog.broad_codes[1].shares.len(), 6);
    assert_eq!(answer.broad_needs.len(), 1);
    let b = &answer.broad_needs[0];
    assert_eq!((b.code.as_str(), b.need_index), ("PC_BODY", 1));
    assert_eq!(b.members.len(), 6);
    let sum: f64 = b.members.iter().map(|m| m.share).sum();
    assert!((sum - 1.0).abs() < 1e-9);
    assert!((b.weekly_min - answer.per_need[1].weekly_min).abs() < 1e-9);
    // The library gives the same answer.
    let set = needs(
        2,
        r#"[{"code": "MORNING_CARE", "per_week": 7}, {"code": "PC_BODY", "per_week": 10}]"#,
    );
    assert!((weekly(m, &set).weekly_min - answer.weekly_min).abs() < 1e-9);
    // A broad code beside its member: INVALID_ARGUMENT on the broad need's code.
    req.needs.push(need("TOILET", 3.0));
    let st = est.estimate(req).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = st
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, vec!["needs[1].code".to_string()], "{st:?}");
    running.shutdown().await.unwrap();
}
