//! The gRPC service end to end: the real server on an ephemeral loopback port, called with
//! the generated tonic clients. Every RPC, the bad-input table, the model lifecycle (reload,
//! activate, refuse a corrupt version, train), health, reflection, metrics, shutdown, and
//! the `ramtid serve` binary (configuration errors, start-up time, SIGTERM).
//!
//! Each test builds on a small model trained here from a simulated municipality, so the
//! tests do not depend on the model shipped in `models/`.

use crate::common;
use common::{copy_dir, fixture, train_small};
use ramtid::client::sample_request;
use ramtid_proto::convert::{context_to_pb, ContextValue};
use ramtid_proto::pb::{
    self, batch_result::Outcome, estimation_service_client::EstimationServiceClient,
    model_service_client::ModelServiceClient,
};
use ramtid_server::config::Config;
use ramtid_server::{start, Running};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;

// ---------------------------------------------------------------------------------------
// Fixture: one simulated municipality and one trained model, copied per test.
// ---------------------------------------------------------------------------------------

/// A test's own world: a models root (copy of the fixture's, or empty) and a data root.
struct World {
    _dir: tempfile::TempDir,
    models: PathBuf,
    data: PathBuf,
}

fn world(with_model: bool) -> World {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&models).unwrap();
    if with_model {
        copy_dir(&f.models, &models);
    }
    copy_dir(&f.data, &data);
    World {
        _dir: dir,
        models,
        data,
    }
}

fn config(w: &World) -> Config {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.metrics_listen = "127.0.0.1:0".into();
    cfg.server.shutdown_grace_s = 5;
    cfg.models.dir = w.models.clone();
    cfg.data.dir = w.data.clone();
    // In-process servers: the worker is the built binary, not the test executable.
    cfg.training.worker = PathBuf::from(env!("CARGO_BIN_EXE_ramtid"));
    cfg
}

struct Server {
    running: Running,
    channel: Channel,
}

impl Server {
    fn est(&self) -> EstimationServiceClient<Channel> {
        EstimationServiceClient::new(self.channel.clone())
    }
    fn models(&self) -> ModelServiceClient<Channel> {
        ModelServiceClient::new(self.channel.clone())
    }
    async fn health(&self, service: &str) -> ServingStatus {
        HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }
    async fn wait_serving(&self) {
        let t0 = Instant::now();
        while self.health("").await != ServingStatus::Serving {
            assert!(t0.elapsed() < Duration::from_secs(20), "not SERVING");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    async fn good_request(&self) -> pb::EstimateRequest {
        let catalog = self
            .models()
            .get_catalog(pb::GetCatalogRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mut r = sample_request(&catalog);
        r.recipient_id = "T-1".into();
        r
    }
}

async fn serve(cfg: Config, wait: bool) -> Server {
    let running = start(cfg).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let s = Server { running, channel };
    if wait {
        s.wait_serving().await;
    }
    s
}

fn fields(s: &Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn number(x: f64) -> ContextValue {
    context_to_pb(&serde_json::json!(x))
}

fn flag(b: bool) -> ContextValue {
    context_to_pb(&serde_json::json!(b))
}

fn label(s: &str) -> ContextValue {
    context_to_pb(&serde_json::json!(s))
}

// ---------------------------------------------------------------------------------------
// Estimation
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_answers_with_its_model_and_the_request_id() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    let mut req = Request::new(good.clone());
    req.metadata_mut()
        .insert("x-request-id", "test-req-42".parse().unwrap());
    let resp = s.est().estimate(req).await.unwrap();
    assert_eq!(
        resp.metadata().get("x-request-id").unwrap(),
        "test-req-42",
        "the caller's request id comes back"
    );
    let e = resp.into_inner().estimate.unwrap();
    assert_eq!(e.recipient_id, "T-1");
    assert!(e.weekly_min > 0.0 && e.weekly_min.is_finite());
    assert!((e.monthly_min - e.weekly_min * 52.0 / 12.0).abs() < 1e-6);
    assert!(e.weekly_staff_min >= e.weekly_min);
    assert!(e.p10_weekly_min <= e.weekly_min && e.weekly_min <= e.p90_weekly_min);
    assert!(e.schablon_weekly_min > 0.0);
    assert!(!e.visits.is_empty());
    let visits_weekly: f64 = e.visits.iter().map(|v| v.weekly_min).sum();
    assert!((visits_weekly - e.weekly_min).abs() < 1e-6);
    assert_eq!(e.context_effects.len(), good.context.len());
    // Each need's share of the week, in request order, adds up to the week.
    let codes: Vec<&str> = e.per_need.iter().map(|n| n.code.as_str()).collect();
    let asked: Vec<&str> = good.needs.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, asked);
    let shares: f64 = e.per_need.iter().map(|n| n.weekly_min).sum();
    assert!(
        (shares - e.weekly_min).abs() < 1e-6,
        "{shares} vs {}",
        e.weekly_min
    );
    let m = e.model.unwrap();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("nordstad", "1"));

    // Without a request id, the server makes one up and returns it.
    let resp = s.est().estimate(good.clone()).await.unwrap();
    assert!(!resp.metadata().get("x-request-id").unwrap().is_empty());

    // The same model by alias and by version.
    for sel in ["production", "nordstad/1", "1"] {
        let mut r = good.clone();
        r.model = sel.into();
        let e = s
            .est()
            .estimate(r)
            .await
            .unwrap()
            .into_inner()
            .estimate
            .unwrap();
        assert_eq!(e.model.unwrap().version, "1", "{sel}");
    }
    s.running.shutdown().await.unwrap();
}

/// Every bad input tried, with the code and the field paths it must produce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_code_and_field_paths() {
    let w = world(true);
    let mut cfg = config(&w);
    cfg.limits.max_needs = 10;
    cfg.limits.max_message_bytes = 64 * 1024;
    let s = serve(cfg, true).await;
    let good = s.good_request().await;
    assert!(good.needs.len() >= 4, "the sample request has four needs");
    let catalog = s
        .models()
        .get_catalog(pb::GetCatalogRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ordinal = catalog
        .contexts
        .iter()
        .find(|c| c.kind == "ordinal")
        .unwrap()
        .name
        .clone();
    let boolean = catalog
        .contexts
        .iter()
        .find(|c| c.kind == "boolean")
        .unwrap()
        .name
        .clone();
    let categorical = catalog
        .contexts
        .iter()
        .find(|c| c.kind == "categorical")
        .unwrap()
        .name
        .clone();

    type Edit = Box<dyn Fn(&mut pb::EstimateRequest)>;
    let o = ordinal.clone();
    let b = boolean.clone();
    let c = categorical.clone();
    let o2 = ordinal.clone();
    let o3 = ordinal.clone();
    let table: Vec<(&str, Edit, Code, Vec<String>)> = vec![
        (
            "empty recipient id",
            Box::new(|r| r.recipient_id.clear()),
            Code::InvalidArgument,
            vec!["recipient_id".into()],
        ),
        (
            "recipient id too long",
            Box::new(|r| r.recipient_id = "x".repeat(500)),
            Code::InvalidArgument,
            vec!["recipient_id".into()],
        ),
        (
            "negative frequency",
            Box::new(|r| r.needs[3].per_week = -1.0),
            Code::InvalidArgument,
            vec!["needs[3].per_week".into()],
        ),
        (
            "zero frequency",
            Box::new(|r| r.needs[0].per_week = 0.0),
            Code::InvalidArgument,
            vec!["needs[0].per_week".into()],
        ),
        (
            "frequency not a number",
            Box::new(|r| r.needs[1].per_week = f64::NAN),
            Code::InvalidArgument,
            vec!["needs[1].per_week".into()],
        ),
        (
            "frequency above eight a day",
            Box::new(|r| r.needs[2].per_week = 1000.0),
            Code::InvalidArgument,
            vec!["needs[2].per_week".into()],
        ),
        (
            "unknown insats code",
            Box::new(|r| r.needs[0].code = "FLY_TO_MOON".into()),
            Code::InvalidArgument,
            vec!["needs[0].code".into()],
        ),
        (
            "unknown slot",
            Box::new(|r| r.needs[1].slot = "dawn".into()),
            Code::InvalidArgument,
            vec!["needs[1].slot".into()],
        ),
        (
            "three staff",
            Box::new(|r| r.needs[2].staff = 3),
            Code::InvalidArgument,
            vec!["needs[2].staff".into()],
        ),
        (
            "no needs",
            Box::new(|r| r.needs.clear()),
            Code::InvalidArgument,
            vec!["needs".into()],
        ),
        (
            "more needs than limits.max_needs",
            Box::new(|r| {
                let n = r.needs[0].clone();
                r.needs = vec![n; 11];
            }),
            Code::InvalidArgument,
            vec!["needs".into()],
        ),
        (
            "missing context variable",
            Box::new(move |r| {
                r.context.remove(&o);
            }),
            Code::InvalidArgument,
            vec![format!("context.{ordinal}")],
        ),
        (
            "unknown context variable",
            Box::new(|r| {
                r.context.insert("shoe_size".into(), number(44.0));
            }),
            Code::InvalidArgument,
            vec!["context.shoe_size".into()],
        ),
        (
            "ordinal level that does not exist",
            Box::new(move |r| {
                r.context.insert(o2.clone(), number(17.0));
            }),
            Code::InvalidArgument,
            vec![format!("context.{ordinal}")],
        ),
        (
            "a flag for an ordinal variable",
            Box::new(move |r| {
                r.context.insert(o3.clone(), flag(true));
            }),
            Code::InvalidArgument,
            vec![format!("context.{ordinal}")],
        ),
        (
            "boolean sent as a label that is no boolean",
            Box::new(move |r| {
                r.context.insert(b.clone(), label("perhaps"));
            }),
            Code::InvalidArgument,
            vec![format!("context.{boolean}")],
        ),
        (
            "categorical label not in the catalog",
            Box::new(move |r| {
                r.context.insert(c.clone(), label("moon"));
            }),
            Code::InvalidArgument,
            vec![format!("context.{categorical}")],
        ),
        (
            "context value with nothing set",
            Box::new(|r| {
                let k = r.context.keys().next().unwrap().clone();
                r.context.insert(k, ContextValue { kind: None });
            }),
            Code::InvalidArgument,
            vec![],
        ),
        (
            "several faults at once are all named",
            Box::new(|r| {
                r.recipient_id.clear();
                r.needs[0].code = "NOPE".into();
                r.needs[3].per_week = -2.0;
            }),
            Code::InvalidArgument,
            vec![
                "recipient_id".into(),
                "needs[0].code".into(),
                "needs[3].per_week".into(),
            ],
        ),
        (
            "unknown model",
            Box::new(|r| r.model = "nordstad/99".into()),
            Code::NotFound,
            vec![],
        ),
        (
            "no candidate model",
            Box::new(|r| r.model = "candidate".into()),
            Code::NotFound,
            vec![],
        ),
        (
            "message larger than limits.max_message_bytes",
            Box::new(|r| {
                r.context
                    .insert("padding".into(), label(&"x".repeat(100_000)));
            }),
            Code::OutOfRange,
            vec![],
        ),
    ];
    for (what, edit, code, want) in &table {
        let mut r = good.clone();
        edit(&mut r);
        let st = s.est().estimate(r).await.expect_err(what);
        assert_eq!(st.code(), *code, "{what}: {}", st.message());
        let got = fields(&st);
        for f in want {
            assert!(got.contains(f), "{what}: {f} missing from {got:?}");
        }
        if *code == Code::InvalidArgument {
            assert!(!got.is_empty(), "{what}: no field violations");
            // Recipient data never goes into an error.
            assert!(!st.message().contains("T-1"), "{what}: {}", st.message());
        }
    }

    // ExplainVisit's own fields.
    let explain_ok = pb::ExplainVisitRequest {
        tasks: good.needs.iter().take(2).map(|n| n.code.clone()).collect(),
        slot: "morning".into(),
        staff: 1,
        context: good.context.clone(),
        model: String::new(),
    };
    type ExplainEdit = Box<dyn Fn(&mut pb::ExplainVisitRequest)>;
    let explain_table: Vec<(&str, ExplainEdit, Code, &str)> = vec![
        (
            "no slot",
            Box::new(|r| r.slot.clear()),
            Code::InvalidArgument,
            "slot",
        ),
        (
            "bad slot",
            Box::new(|r| r.slot = "teatime".into()),
            Code::InvalidArgument,
            "slot",
        ),
        (
            "no tasks",
            Box::new(|r| r.tasks.clear()),
            Code::InvalidArgument,
            "tasks",
        ),
        (
            "unknown task",
            Box::new(|r| r.tasks.push("NOPE".into())),
            Code::InvalidArgument,
            "tasks[2]",
        ),
        (
            "five staff",
            Box::new(|r| r.staff = 5),
            Code::InvalidArgument,
            "staff",
        ),
        (
            "missing context",
            Box::new(|r| r.context.clear()),
            Code::InvalidArgument,
            "context.",
        ),
        (
            "unknown model",
            Box::new(|r| r.model = "x/1".into()),
            Code::NotFound,
            "",
        ),
    ];
    for (what, edit, code, field) in &explain_table {
        let mut r = explain_ok.clone();
        edit(&mut r);
        let st = s.est().explain_visit(r).await.expect_err(what);
        assert_eq!(st.code(), *code, "{what}: {}", st.message());
        if !field.is_empty() {
            let got = fields(&st);
            assert!(
                got.iter().any(|f| f.starts_with(field)),
                "{what}: {field} not in {got:?}"
            );
        }
    }

    // ModelService inputs.
    let m = s.models();
    let activate = |model: &str, alias: &str| pb::ActivateModelRequest {
        model: model.into(),
        alias: alias.into(),
    };
    let st = m
        .clone()
        .activate_model(activate("", ""))
        .await
        .unwrap_err();
    assert_eq!(
        (st.code(), fields(&st)),
        (Code::InvalidArgument, vec!["model".to_string()])
    );
    let st = m
        .clone()
        .activate_model(activate("nordstad/1", "staging"))
        .await
        .unwrap_err();
    assert_eq!(
        (st.code(), fields(&st)),
        (Code::InvalidArgument, vec!["alias".to_string()])
    );
    let st = m
        .clone()
        .activate_model(activate("nordstad/42", ""))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let st = m
        .clone()
        .activate_model(activate("elsewhere", ""))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let st = m
        .clone()
        .get_model(pb::GetModelRequest {
            model: "nowhere/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let st = m
        .clone()
        .get_catalog(pb::GetCatalogRequest {
            model: "candidate".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    // TrainModel paths are confined to the data directory.
    let train_ok = pb::TrainModelRequest {
        catalog_path: "catalog.toml".into(),
        visits_path: "visits.csv".into(),
        name: "nordstad".into(),
        folds: 0,
        activate: false,
        settings: None,
    };
    std::fs::write(w.data.parent().unwrap().join("secret.csv"), "x").unwrap();
    type TrainEdit = Box<dyn Fn(&mut pb::TrainModelRequest)>;
    let train_table: Vec<(&str, TrainEdit, &str)> = vec![
        (
            "parent directory",
            Box::new(|r| r.visits_path = "../secret.csv".into()),
            "visits_path",
        ),
        (
            "absolute path outside",
            Box::new(|r| r.catalog_path = "/etc/hostname".into()),
            "catalog_path",
        ),
        (
            "missing file",
            Box::new(|r| r.visits_path = "nothere.csv".into()),
            "visits_path",
        ),
        (
            "empty path",
            Box::new(|r| r.catalog_path.clear()),
            "catalog_path",
        ),
        (
            "model name with a slash",
            Box::new(|r| r.name = "a/b".into()),
            "name",
        ),
        ("one fold", Box::new(|r| r.folds = 1), "folds"),
        (
            "a reference quantile above 1",
            Box::new(|r| {
                r.settings = Some(pb::TrainSettings {
                    reference_quantile: Some(1.5),
                    ..Default::default()
                })
            }),
            "settings.reference_quantile",
        ),
        (
            "one fold in the settings",
            Box::new(|r| {
                r.settings = Some(pb::TrainSettings {
                    folds: Some(1),
                    ..Default::default()
                })
            }),
            "settings.folds",
        ),
        (
            "an unknown efficiency method",
            Box::new(|r| {
                r.settings = Some(pb::TrainSettings {
                    efficiency: Some("fastest".into()),
                    ..Default::default()
                })
            }),
            "settings.efficiency",
        ),
        (
            "a catalog that is not one",
            Box::new(|r| r.catalog_path = "visits.csv".into()),
            "catalog_path",
        ),
    ];
    for (what, edit, field) in &train_table {
        let mut r = train_ok.clone();
        edit(&mut r);
        let result = match m.clone().train_model(r).await {
            Err(st) => Err(st),
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break Ok(()),
                        Err(st) => break Err(st),
                    }
                }
            }
        };
        let st = result.expect_err(what);
        assert_eq!(st.code(), Code::InvalidArgument, "{what}: {}", st.message());
        assert!(
            fields(&st).contains(&field.to_string()),
            "{what}: {:?}",
            fields(&st)
        );
    }

    // A bad setting is refused before the log is read, even a log far too big to read in
    // a test: the only violation is the setting's, with the check's own text.
    let huge = std::fs::File::create(w.data.join("huge.csv")).unwrap();
    huge.set_len(1 << 30).unwrap(); // sparse: takes no disk
    drop(huge);
    let mut r = train_ok.clone();
    r.visits_path = "huge.csv".into();
    r.settings = Some(pb::TrainSettings {
        reference_quantile: Some(1.5),
        ..Default::default()
    });
    let st = m.clone().train_model(r).await.expect_err("refused at once");
    assert_eq!(st.code(), Code::InvalidArgument);
    let violations = st
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "settings.reference_quantile");
    assert_eq!(violations[0].description, "1.5 is outside 0 < q <= 1");
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_results_are_keyed_and_a_bad_item_fails_alone() {
    let w = world(true);
    let mut cfg = config(&w);
    cfg.limits.max_batch = 100;
    let s = serve(cfg, true).await;
    let good = s.good_request().await;
    let item = |id: &str| pb::NeedsSet {
        recipient_id: id.into(),
        context: good.context.clone(),
        needs: good.needs.clone(),
    };
    let mut bad = item("B-bad");
    bad.needs[1].per_week = -3.0;
    // Three messages; the second holds the bad item; the third is big enough to be split
    // over the cores.
    let many: Vec<pb::NeedsSet> = (0..80).map(|i| item(&format!("C-{i}"))).collect();
    let messages = vec![
        pb::EstimateBatchRequest {
            model: String::new(),
            detail: pb::Detail::Full as i32,
            items: vec![item("A-0"), item("A-1")],
        },
        pb::EstimateBatchRequest {
            items: vec![item("B-0"), bad, item("B-2")],
            ..Default::default()
        },
        pb::EstimateBatchRequest {
            items: many,
            ..Default::default()
        },
    ];
    let mut stream = s
        .est()
        .estimate_batch(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let mut results = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        assert_eq!(m.model.unwrap().version, "1");
        results.extend(m.results);
    }
    assert_eq!(results.len(), 85);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.index, i as u64);
    }
    assert_eq!(results[3].recipient_id, "B-bad");
    match &results[3].outcome {
        Some(Outcome::Error(e)) => {
            assert_eq!(e.code, Code::InvalidArgument as i32);
            assert_eq!(e.violations[0].field, "needs[1].per_week");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != 3) {
        match &r.outcome {
            Some(Outcome::Estimate(e)) => {
                assert_eq!(e.recipient_id, r.recipient_id);
                assert!(!e.visits.is_empty(), "detail FULL has visits ({i})");
            }
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(results[84].recipient_id, "C-79");

    // Totals only: same numbers, no visits.
    let one = |detail: pb::Detail| pb::EstimateBatchRequest {
        model: "production".into(),
        detail: detail as i32,
        items: vec![item("T")],
    };
    let get = |r: pb::EstimateBatchResponse| match r.results[0].outcome.clone() {
        Some(Outcome::Estimate(e)) => e,
        other => panic!("{other:?}"),
    };
    let full = get(s
        .est()
        .estimate_batch(tokio_stream::iter(vec![one(pb::Detail::Full)]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap());
    let totals = get(s
        .est()
        .estimate_batch(tokio_stream::iter(vec![one(pb::Detail::Totals)]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap());
    assert!(
        totals.visits.is_empty() && totals.context_effects.is_empty() && totals.per_need.is_empty()
    );
    assert_eq!(totals.weekly_min, full.weekly_min);

    // More than limits.max_batch items in one call: RESOURCE_EXHAUSTED after the first 100.
    let messages: Vec<pb::EstimateBatchRequest> = (0..3)
        .map(|_| pb::EstimateBatchRequest {
            items: (0..40).map(|i| item(&format!("L-{i}"))).collect(),
            ..Default::default()
        })
        .collect();
    let mut stream = s
        .est()
        .estimate_batch(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    let end = loop {
        match stream.message().await {
            Ok(Some(m)) => n += m.results.len(),
            Ok(None) => break None,
            Err(st) => break Some(st),
        }
    };
    assert_eq!(n, 80);
    assert_eq!(end.unwrap().code(), Code::ResourceExhausted);

    // An unknown model fails the whole call (at its first message).
    let st = match s
        .est()
        .estimate_batch(tokio_stream::iter(vec![pb::EstimateBatchRequest {
            model: "nope/1".into(),
            ..Default::default()
        }]))
        .await
    {
        Err(st) => st,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(st.code(), Code::NotFound);
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_visit_breaks_a_visit_into_parts() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    let r = s
        .est()
        .explain_visit(pb::ExplainVisitRequest {
            tasks: vec![good.needs[0].code.clone(), good.needs[1].code.clone()],
            slot: "morning".into(),
            staff: 2,
            context: good.context.clone(),
            model: "production".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.minutes >= 1.0);
    assert!(r.p10_minutes <= r.minutes && r.minutes <= r.p90_minutes);
    assert!(!r.parts.is_empty());
    let sum: f64 = r.parts.iter().map(|p| p.minutes).sum();
    assert!(
        (sum.max(1.0) - r.minutes).abs() < 1e-6,
        "parts {sum} vs {}",
        r.minutes
    );
    assert!(r
        .parts
        .iter()
        .any(|p| p.feature.contains(&good.needs[0].code)));
    assert_eq!(r.model.unwrap().name, "nordstad");
    s.running.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_and_catalog_describe_the_models() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let list = s
        .models()
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!((m.name.as_str(), m.version.as_str()), ("nordstad", "1"));
    assert_eq!(m.status(), pb::ModelStatus::Active);
    assert_eq!(m.aliases, vec!["production"]);
    assert!(m.rows_read > 0 && m.rows_used > 0 && m.rows_read >= m.rows_used);
    let fit = m.fit.as_ref().unwrap();
    assert!(fit.visit_mae_min > 0.0 && fit.recipient_mape > 0.0);
    let manifest: serde_json::Value = serde_json::from_str(&m.manifest_json).unwrap();
    assert_eq!(manifest["version"], "1");

    for sel in ["", "production", "nordstad/1", "nordstad", "1"] {
        let got = s
            .models()
            .get_model(pb::GetModelRequest { model: sel.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.version, "1", "{sel}");
    }

    let cat = s
        .models()
        .get_catalog(pb::GetCatalogRequest::default())
        .await
        .unwrap()
        .into_inner();
    let want = ramtid_core::catalog::Catalog::load(&w.data.join("catalog.toml")).unwrap();
    assert_eq!(cat.insatser.len(), want.insatser.len());
    assert_eq!(cat.contexts.len(), want.contexts.len());
    assert_eq!(cat.insatser[0].code, want.insatser[0].code);
    assert_eq!(cat.insatser[0].schablon_min, want.insatser[0].schablon_min);
    assert_eq!(cat.model.unwrap().version, "1");
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_activate_and_a_corrupt_version_is_refused() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    let version_of = |r: pb::EstimateResponse| r.estimate.unwrap().model.unwrap().version;

    // A new version appears on disk: reload makes it the candidate; production stays.
    train_small(&w.data, &w.models);
    let r = s
        .models()
        .reload_models(pb::ReloadModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.loaded.len(), 1);
    assert_eq!(r.loaded[0].version, "2");
    assert_eq!(r.production.unwrap().version, "1");
    assert_eq!(r.candidate.unwrap().version, "2");
    assert_eq!(
        version_of(s.est().estimate(good.clone()).await.unwrap().into_inner()),
        "1"
    );
    let mut cand = good.clone();
    cand.model = "candidate".into();
    assert_eq!(
        version_of(s.est().estimate(cand.clone()).await.unwrap().into_inner()),
        "2"
    );

    // Promote the candidate, then roll back by version.
    let a = s
        .models()
        .activate_model(pb::ActivateModelRequest {
            model: "candidate".into(),
            alias: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (a.model.unwrap().version, a.alias.as_str()),
        ("2".to_string(), "production")
    );
    assert_eq!(a.previous.unwrap().version, "1");
    assert_eq!(
        version_of(s.est().estimate(good.clone()).await.unwrap().into_inner()),
        "2"
    );
    s.models()
        .activate_model(pb::ActivateModelRequest {
            model: "nordstad/1".into(),
            alias: "production".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        version_of(s.est().estimate(good.clone()).await.unwrap().into_inner()),
        "1"
    );

    // A corrupt version 3: refused with the reason; production keeps serving.
    let v3 = w.models.join("nordstad/3");
    copy_dir(&w.models.join("nordstad/2"), &v3);
    std::fs::write(v3.join("params.json"), b"{ this is not a model").unwrap();
    let r = s
        .models()
        .reload_models(pb::ReloadModelsRequest {
            activate_latest: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.loaded.is_empty());
    assert_eq!(r.refused.len(), 1);
    assert_eq!(r.refused[0].version, "3");
    assert!(
        r.refused[0].refused_reason.contains("fingerprint")
            || r.refused[0].refused_reason.contains("not valid"),
        "{}",
        r.refused[0].refused_reason
    );
    assert_eq!(r.production.unwrap().version, "1");
    assert_eq!(
        version_of(s.est().estimate(good.clone()).await.unwrap().into_inner()),
        "1"
    );
    let st = s
        .models()
        .activate_model(pb::ActivateModelRequest {
            model: "nordstad/3".into(),
            alias: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition);
    assert!(st.message().contains("nordstad/3"), "{}", st.message());
    let list = s
        .models()
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    let statuses: Vec<(String, pb::ModelStatus)> = list
        .iter()
        .map(|m| (m.version.clone(), m.status()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("1".to_string(), pb::ModelStatus::Active),
            ("2".to_string(), pb::ModelStatus::Active),
            ("3".to_string(), pb::ModelStatus::Refused),
        ]
    );
    assert!(!list[2].refused_reason.is_empty());
    s.running.shutdown().await.unwrap();
}

/// Activation while calls are running: none fails, and the answers switch version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_under_load_fails_no_call() {
    let w = world(true);
    train_small(&w.data, &w.models); // nordstad/2 on disk before start-up
    let mut cfg = config(&w);
    cfg.models.active = "nordstad/1".into();
    let s = serve(cfg, true).await;
    let good = s.good_request().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let mut client = s.est();
        let good = good.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let e = client.estimate(good.clone()).await.expect("no call fails");
                seen.insert(e.into_inner().estimate.unwrap().model.unwrap().version);
                n += 1;
            }
            (seen, n)
        }));
    }
    for sel in ["nordstad/2", "nordstad/1", "nordstad/2"] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.models()
            .activate_model(pb::ActivateModelRequest {
                model: sel.into(),
                alias: String::new(),
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for wk in workers {
        let (s, n) = wk.await.unwrap();
        seen.extend(s);
        total += n;
    }
    assert!(total > 50, "only {total} calls");
    assert_eq!(seen, BTreeSet::from(["1".to_string(), "2".to_string()]));
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_model_streams_progress_and_publishes_a_candidate() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let mut stream = s
        .models()
        .train_model(pb::TrainModelRequest {
            catalog_path: "catalog.toml".into(),
            visits_path: w.data.join("visits.csv").display().to_string(), // absolute, inside
            name: "nordstad".into(),
            folds: 0,
            activate: false,
            settings: Some(pb::TrainSettings {
                folds: Some(3),
                seed: Some(11),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let mut stages = Vec::new();
    let mut done = None;
    while let Some(p) = stream.message().await.unwrap() {
        match p.event.unwrap() {
            pb::train_progress::Event::Stage(st) => stages.push(st.stage),
            pb::train_progress::Event::Done(d) => done = Some(d),
        }
    }
    assert_eq!(stages, vec!["reading", "fitting", "writing"]);
    let done = done.expect("a final result");
    assert_eq!(done.model.as_ref().unwrap().version, "2");
    assert_eq!(done.alias, "candidate");
    assert!(done.rows_used > 0 && done.rows_read >= done.rows_used + done.rows_rejected);
    assert!(done.fit.unwrap().visit_mae_min > 0.0);
    // The settings reached the fit and are recorded with the model.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.models.join("nordstad/2/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["method"]["folds"], 3);
    assert_eq!(manifest["method"]["seed"], 11);
    let info = s
        .models()
        .get_model(pb::GetModelRequest {
            model: "candidate".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.version.as_str(), info.aliases.clone()),
        ("2", vec!["candidate".to_string()])
    );
    let prod = s
        .models()
        .get_model(pb::GetModelRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prod.version, "1");
    s.running.shutdown().await.unwrap();
}

/// Drains a TrainModel stream: its final status.
async fn train_status(m: &mut ModelServiceClient<Channel>, r: pb::TrainModelRequest) -> Status {
    let mut stream = match m.train_model(r).await {
        Err(st) => return st,
        Ok(s) => s.into_inner(),
    };
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("training succeeded"),
            Err(st) => return st,
        }
    }
}

/// The codes of training errors found while the run reads and fits: the library says what
/// kind each is, the service maps kinds to codes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_errors_found_during_the_run_keep_their_codes() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let visits = std::fs::read_to_string(w.data.join("visits.csv")).unwrap();
    // Too few visits to fit: the data, not the request, is at fault.
    let few: Vec<&str> = visits.lines().take(21).collect();
    std::fs::write(w.data.join("few.csv"), few.join("\n") + "\n").unwrap();
    // A header without the columns a visit log needs: the request's file is at fault.
    std::fs::write(w.data.join("wrong.csv"), "a,b,c\n1,2,3\n").unwrap();
    let request = |visits: &str| pb::TrainModelRequest {
        catalog_path: "catalog.toml".into(),
        visits_path: visits.into(),
        name: "nordstad".into(),
        folds: 0,
        activate: false,
        settings: None,
    };
    let mut m = s.models();
    let st = train_status(&mut m, request("few.csv")).await;
    assert_eq!(st.code(), Code::FailedPrecondition, "{}", st.message());
    assert!(
        st.message().contains("cannot be fitted"),
        "{}",
        st.message()
    );
    let st = train_status(&mut m, request("wrong.csv")).await;
    assert_eq!(st.code(), Code::InvalidArgument, "{}", st.message());
    assert_eq!(fields(&st), ["visits_path"]);
    s.running.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Health, reflection, metrics, shutdown
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_the_service_is_not_serving_until_one_arrives() {
    let w = world(false);
    let s = serve(config(&w), false).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.health("").await, ServingStatus::NotServing);
    assert_eq!(
        s.health("ramtid.v1.EstimationService").await,
        ServingStatus::NotServing
    );
    let req = pb::EstimateRequest {
        recipient_id: "X".into(),
        needs: vec![pb::Need {
            code: "SHOWER".into(),
            per_week: 1.0,
            ..Default::default()
        }],
        ..Default::default()
    };
    let st = s.est().estimate(req).await.unwrap_err();
    assert_eq!(st.code(), Code::Unavailable);
    let st = s
        .models()
        .get_catalog(pb::GetCatalogRequest::default())
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unavailable);

    copy_dir(&fixture().models, &w.models);
    let r = s
        .models()
        .reload_models(pb::ReloadModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.production.unwrap().version, "1");
    s.wait_serving().await;
    assert_eq!(
        s.health("ramtid.v1.ModelService").await,
        ServingStatus::Serving
    );
    let good = s.good_request().await;
    s.est().estimate(good).await.unwrap();
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let w = world(true);
    let s = serve(config(&w), true).await;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(s.channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let names: Vec<String> = match resp.message_response.unwrap() {
        MessageResponse::ListServicesResponse(l) => l.service.into_iter().map(|s| s.name).collect(),
        other => panic!("{other:?}"),
    };
    for want in [
        "ramtid.v1.EstimationService",
        "ramtid.v1.ModelService",
        "ramtid.v1.HistoryService",
        "ramtid.v1.FollowUpService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    s.running.shutdown().await.unwrap();
}

/// The v1alpha reflection service (what grpcio-reflection and older tools speak) lists the
/// same services, and serves the well-known file the API imports, so that a client can
/// resolve `google.protobuf.Value` from reflection alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_the_services_and_serves_their_imports() {
    use tonic_reflection::pb::v1alpha::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let w = world(true);
    let s = serve(config(&w), true).await;
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let mut stream = ServerReflectionClient::new(s.channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "ramtid.v1.EstimateRequest".into(),
            )),
            ask(MessageRequest::FileByFilename(
                "google/protobuf/struct.proto".into(),
            )),
        ]))
        .await
        .unwrap()
        .into_inner();
    let mut answers = Vec::new();
    while let Some(r) = stream.message().await.unwrap() {
        answers.push(r.message_response.unwrap());
    }
    let [MessageResponse::ListServicesResponse(l), MessageResponse::FileDescriptorResponse(api), MessageResponse::FileDescriptorResponse(wkt)] =
        &answers[..]
    else {
        panic!("{answers:?}");
    };
    let names: Vec<&str> = l.service.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "ramtid.v1.EstimationService",
        "ramtid.v1.ModelService",
        "ramtid.v1.HistoryService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    use prost::Message;
    let file =
        |bytes: &[Vec<u8>]| prost_types::FileDescriptorProto::decode(bytes[0].as_slice()).unwrap();
    let api = file(&api.file_descriptor_proto);
    assert_eq!(api.name(), "ramtid/v1/ramtid.proto");
    assert!(api
        .dependency
        .iter()
        .any(|d| d == "google/protobuf/struct.proto"));
    let wkt = file(&wkt.file_descriptor_proto);
    assert!(wkt.message_type.iter().any(|m| m.name() == "Value"));
    s.running.shutdown().await.unwrap();
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_code_and_name_the_model() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    for _ in 0..3 {
        s.est().estimate(good.clone()).await.unwrap();
    }
    let mut bad = good.clone();
    bad.needs.clear();
    s.est().estimate(bad).await.unwrap_err();
    let mut stored = good.clone();
    stored.case_id = "METRICS-1".into();
    let id = s
        .est()
        .estimate(stored)
        .await
        .unwrap()
        .into_inner()
        .calculation_id;
    // a read waits until the writer has moved every acknowledged calculation into the
    // database: one transaction here
    ramtid_proto::pb::history_service_client::HistoryServiceClient::new(s.channel.clone())
        .get_calculation(ramtid_proto::pb::GetCalculationRequest { id })
        .await
        .unwrap();
    let text = http_get(s.running.metrics_addr.unwrap(), "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(
        "ramtid_requests_total{service=\"ramtid.v1.EstimationService\",method=\"Estimate\",code=\"OK\"} 4"
    ), "{text}");
    assert!(text.contains("method=\"Estimate\",code=\"INVALID_ARGUMENT\"} 1"));
    assert!(text.contains("ramtid_request_duration_seconds_count{method=\"Estimate\"} 5"));
    assert!(text.contains("ramtid_history_records_total 1"), "{text}");
    assert!(text.contains("ramtid_history_commits_total 1"), "{text}");
    assert!(
        text.contains("ramtid_model_info{alias=\"production\",name=\"nordstad\",version=\"1\"} 1")
    );
    assert!(text.contains("ramtid_model_loaded 1"));
    let other = http_get(s.running.metrics_addr.unwrap(), "/secret").await;
    assert!(other.starts_with("HTTP/1.1 404"));
    s.running.shutdown().await.unwrap();
}

/// A unary call to `path` with ramtid's message types, whatever the path names.
async fn raw_unary(
    channel: &Channel,
    path: &'static str,
    request: pb::EstimateRequest,
) -> Result<tonic::Response<pb::EstimateResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<pb::EstimateRequest, pb::EstimateResponse>::default();
    grpc.unary(
        Request::new(request),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
}

/// The value of the one series `series` (name and labels, as rendered) in a scrape.
fn series(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_comes_back_on_success_errors_and_streams() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    // An error answered at once carries the caller's id.
    let mut bad = good.clone();
    bad.needs.clear();
    let mut req = Request::new(bad.clone());
    req.metadata_mut()
        .insert("x-request-id", "err-7".parse().unwrap());
    let st = s.est().estimate(req).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert_eq!(st.metadata().get("x-request-id").unwrap(), "err-7");
    // So does an unknown method (answered by the router, not a handler).
    let st = raw_unary(
        &s.channel,
        "/ramtid.v1.EstimationService/Nope",
        good.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::Unimplemented);
    assert!(st.metadata().get("x-request-id").is_some());
    // An id too long or with a space in it is replaced by one made up here.
    for sent in ["x".repeat(65), "has space".to_string()] {
        let mut req = Request::new(good.clone());
        req.metadata_mut()
            .insert("x-request-id", sent.parse().unwrap());
        let resp = s.est().estimate(req).await.unwrap();
        let back = resp
            .metadata()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            !back.is_empty() && back != sent && back.len() <= 64,
            "{back}"
        );
    }
    // A stream's response headers carry it, and a stream ended by an error too.
    let mut req = Request::new(tokio_stream::iter(vec![pb::EstimateBatchRequest {
        model: "no-such-model".into(),
        ..Default::default()
    }]));
    req.metadata_mut()
        .insert("x-request-id", "batch-9".parse().unwrap());
    let resp = s.est().estimate_batch(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-request-id").unwrap(), "batch-9");
    let st = resp.into_inner().message().await.unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_label_methods_by_path_and_time_streams_to_their_end() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    // good_request called GetCatalog once; wait_serving called the health check.
    for path in [
        "/ramtid.v1.EstimationService/Nope",
        "/no.such.Service/Estimate",
        "/ramtid.v1.EstimationService/Estimate/extra",
    ] {
        let st = raw_unary(&s.channel, path, good.clone()).await.unwrap_err();
        assert_eq!(st.code(), Code::Unimplemented, "{path}");
    }
    // A stream held open for a while is timed to its end.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut out = s
        .est()
        .estimate_batch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let item = pb::NeedsSet {
        recipient_id: "M".into(),
        context: good.context.clone(),
        needs: good.needs.clone(),
    };
    let msg = pb::EstimateBatchRequest {
        items: vec![item],
        ..Default::default()
    };
    tx.send(msg.clone()).await.unwrap();
    out.message().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    tx.send(msg).await.unwrap();
    out.message().await.unwrap().unwrap();
    drop(tx);
    assert!(out.message().await.unwrap().is_none());

    let text = http_get(s.running.metrics_addr.unwrap(), "/metrics").await;
    let count = |labels: &str| series(&text, &format!("ramtid_requests_total{{{labels}}}"));
    assert_eq!(
        count(r#"service="ramtid.v1.ModelService",method="GetCatalog",code="OK""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(r#"service="unknown",method="unknown",code="UNIMPLEMENTED""#),
        Some(3.0),
        "unknown paths share one label: {text}"
    );
    assert!(
        !text.contains("Nope") && !text.contains("no.such"),
        "{text}"
    );
    assert!(count(r#"service="grpc.health.v1.Health",method="Check",code="OK""#).unwrap() >= 1.0);
    assert_eq!(
        count(r#"service="ramtid.v1.EstimationService",method="EstimateBatch",code="OK""#),
        Some(1.0)
    );
    let batch_s = series(
        &text,
        r#"ramtid_request_duration_seconds_sum{method="EstimateBatch"}"#,
    )
    .unwrap();
    assert!(batch_s >= 0.4, "the stream's whole life: {batch_s} s");
    assert_eq!(series(&text, "ramtid_batch_items_total"), Some(2.0));
    // Methods not called yet show a count of zero from the start.
    assert_eq!(
        count(r#"service="ramtid.v1.HistoryService",method="EraseCase",code="OK""#),
        Some(0.0)
    );
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_holds_a_call_until_a_slot_is_free() {
    let w = world(true);
    let mut cfg = config(&w);
    cfg.limits.concurrency = 1;
    let s = serve(cfg, true).await;
    let good = s.good_request().await;
    // A call whose message has not arrived yet holds the one slot: the handler waits for it.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::EstimateRequest>(1);
    let holder = {
        let channel = s.channel.clone();
        tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let codec =
                tonic_prost::ProstCodec::<pb::EstimateRequest, pb::EstimateResponse>::default();
            grpc.client_streaming(
                Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/ramtid.v1.EstimationService/Estimate",
                ),
                codec,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = {
        let mut c = s.est();
        let r = good.clone();
        tokio::spawn(async move { c.estimate(r).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a call beyond limits.concurrency ran"
    );
    // Health checks are not queued behind the limit.
    assert_eq!(s.health("").await, ServingStatus::Serving);
    // The holder's message arrives: it is answered, and then the waiting call.
    tx.send(good.clone()).await.unwrap();
    drop(tx);
    holder.await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting call runs once the slot is free")
        .unwrap()
        .unwrap();
    s.running.shutdown().await.unwrap();
}

/// Shutdown lets a call in flight finish: a batch stream opened before keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_calls_in_flight() {
    let w = world(true);
    let s = serve(config(&w), true).await;
    let good = s.good_request().await;
    let item = pb::NeedsSet {
        recipient_id: "D".into(),
        context: good.context.clone(),
        needs: good.needs.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut out = s
        .est()
        .estimate_batch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let msg = pb::EstimateBatchRequest {
        items: vec![item.clone()],
        ..Default::default()
    };
    tx.send(msg.clone()).await.unwrap();
    assert_eq!(out.message().await.unwrap().unwrap().results.len(), 1);
    let Server { running, channel } = s;
    let shutdown = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!shutdown.is_finished(), "shutdown waits for the open call");
    // New calls are not served...
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        EstimationServiceClient::new(channel.clone()).estimate(good.clone()),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a new call was served during shutdown"
    );
    // ...while the one in flight goes on to its end.
    tx.send(msg).await.unwrap();
    assert_eq!(out.message().await.unwrap().unwrap().results.len(), 1);
    drop(tx);
    assert!(out.message().await.unwrap().is_none());
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown completes once the call ended")
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// The binary: configuration errors, start-up, SIGTERM, `ramtid health`
// ---------------------------------------------------------------------------------------

fn ramtid() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, key) in [
        ("RAMTID__LIMITS__MAX_NEEDS", "lots", "max_needs"),
        ("RAMTID__SERVER__LISTEN", "not-an-address", "server.listen"),
        ("RAMTID__LOG__FORMAT", "xml", "log.format"),
        ("RAMTID__LIMITS__CONCURRENCY", "0", "limits.concurrency"),
        ("RAMTID__LIMITS__CONCURRENCY", "-3", "concurrency"),
        (
            "RAMTID__SERVER__SHUTDOWN_GRACE_S",
            "1e309",
            "shutdown_grace_s",
        ),
        (
            "RAMTID__LIMITS__MAX_MESSAGE_BYTES",
            "99999999999999999999",
            "max_message_bytes",
        ),
        ("RAMTID__HISTORY__URL", "mysql://db/history", "history.url"),
        ("RAMTID__HISTORY__RETENTION_DAYS", "-1", "retention_days"),
        (
            "RAMTID__HISTORY__RETENTION_DAYS",
            "100000",
            "history.retention_days",
        ),
        (
            "RAMTID__TRAINING__REFERENCE_QUANTILE",
            "1.5",
            "configuration key training.reference_quantile: 1.5 is outside 0 < q <= 1",
        ),
    ] {
        let out = ramtid()
            .arg("serve")
            .current_dir(dir.path())
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{var}: {err}");
    }
    // A file with an unknown key, given with --config.
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let out = ramtid()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_starts_quickly_answers_health_and_stops_on_sigterm() {
    let w = world(true);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = w.models.parent().unwrap().join("ramtid.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"{addr}\"\nmetrics_listen = \"\"\n[models]\ndir = \"{}\"\n[data]\ndir = \"{}\"\n[log]\nformat = \"json\"\n",
            w.models.display(),
            w.data.display()
        ),
    )
    .unwrap();
    let health = || {
        ramtid()
            .args(["health", "--addr", &addr, "--timeout-ms", "500"])
            .output()
            .unwrap()
    };
    let t0 = Instant::now();
    let child = ramtid()
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let serving_after = loop {
        let out = health();
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SERVING");
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never SERVING");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "ramtid serve: SERVING after {} ms (debug build, includes health-check process start)",
        serving_after.as_millis()
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("\"drained; stopped\""),
        "JSON log with the drain line: {log}"
    );
    assert!(
        log.lines().all(|l| l.trim_start().starts_with('{')),
        "JSON lines: {log}"
    );
    // Nothing answers now: `ramtid health` fails.
    assert!(!health().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_queues_calls_and_deadlines_are_accepted() {
    let w = world(true);
    let mut cfg = config(&w);
    cfg.limits.concurrency = 1;
    let s = serve(cfg, true).await;
    let good = s.good_request().await;
    // More calls at once than limits.concurrency: they wait their turn, none fails.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut c = s.est();
            let r = good.clone();
            tokio::spawn(async move { c.estimate(r).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    // A call with a deadline (grpc-timeout) is answered within it.
    let mut fine = Request::new(good.clone());
    fine.set_timeout(Duration::from_secs(5));
    s.est().estimate(fine).await.unwrap();
    s.running.shutdown().await.unwrap();
}

#[test]
fn the_load_harness_reports_throughput_and_latency() {
    let w = world(true);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(serve(config(&w), true));
    let addr = s.running.addr.to_string();
    let needs = w.data.join("needs.jsonl");
    for extra in [
        vec![],
        vec!["--ceiling"],
        vec!["--batch", needs.to_str().unwrap(), "--chunk", "10"],
    ] {
        let out = ramtid()
            .args([
                "load",
                "--addr",
                &addr,
                "--seconds",
                "0.3",
                "--concurrency",
                "4",
            ])
            .args(["--connections", "2"])
            .args(&extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{extra:?}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("/s") && text.contains("failures 0"),
            "{extra:?}: {text}"
        );
        if extra.is_empty() {
            assert!(
                text.contains("p99") && text.contains("nordstad/1"),
                "{text}"
            );
        }
    }
    rt.block_on(s.running.shutdown()).unwrap();
}
