//! IBIC needs end to end: a simulated municipality whose catalog maps ICF codes and levels
//! to its codes (`ramtid_sim::ibic`), its held-out needs rewritten as the IBIC rows an
//! assessor would write. Estimates from the rows must equal those from the codes (in
//! process, through `ramtid estimate` and over gRPC), mapping errors are INVALID_ARGUMENT
//! with the field path, the history keeps the rows and their goals and recalculates them on
//! another model, and the follow-up lists the goals of the orders in force.

use crate::common::{copy_dir, simulate_small, train_small};
use ramtid_core::catalog::Catalog;
use ramtid_core::estimate::estimate;
use ramtid_core::model::Model;
use ramtid_core::needs::{parse_needs_file, NeedsSet};
use ramtid_proto::pb::{
    self, estimation_service_client::EstimationServiceClient,
    history_service_client::HistoryServiceClient,
};
use ramtid_server::config::Config;
use ramtid_server::start;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;

struct Fixture {
    /// Simulated data of nordstad/1: catalog.toml (with its mapping), visits.csv,
    /// needs.jsonl and needs_ibic.jsonl (the same needs as IBIC rows).
    data: PathBuf,
    /// nordstad/1 and nordstad/2 (other visits, other minutes), both with the mapping.
    models: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let models = root.join("models");
        for seed in [21, 22] {
            let data = root.join(format!("data-{seed}"));
            simulate_small(&data, seed);
            // What `ramtid simulate --ibic` does.
            assert!(ramtid_sim::ibic::write_ibic(&data).unwrap() > 0);
            train_small(&data, &models);
        }
        Fixture {
            data: root.join("data-21"),
            models,
        }
    })
}

fn read_needs(path: &Path) -> Vec<(usize, NeedsSet)> {
    parse_needs_file(&std::fs::read(path).unwrap())
        .unwrap()
        .into_iter()
        .map(|(line, set)| (line, set.unwrap()))
        .collect()
}

#[test]
fn estimates_from_ibic_rows_equal_estimates_from_the_mapped_codes() {
    let f = fixture();
    let model = Model::load(&f.models.join("nordstad/1")).unwrap();
    assert_eq!(model.catalog.ibic.len(), model.catalog.insatser.len());
    let by_code = read_needs(&f.data.join("needs.jsonl"));
    let by_ibic = read_needs(&f.data.join("needs_ibic.jsonl"));
    assert_eq!(by_code.len(), by_ibic.len());
    let mut compared = 0;
    for ((_, c), (line, i)) in by_code.iter().zip(&by_ibic) {
        // No code is left in the rewritten needs: every one must go through the mapping.
        assert!(
            i.needs.iter().all(|n| n.code.is_empty() && n.icf.is_some()),
            "line {line}"
        );
        let a = estimate(&model, &c.validate(&model.catalog).unwrap());
        let b = estimate(&model, &i.validate(&model.catalog).unwrap());
        assert_eq!(
            (a.weekly_min, a.weekly_staff_min, a.monthly_min),
            (b.weekly_min, b.weekly_staff_min, b.monthly_min),
            "line {line}"
        );
        assert_eq!(
            (a.p10_weekly_min, a.p90_weekly_min, a.schablon_weekly_min),
            (b.p10_weekly_min, b.p90_weekly_min, b.schablon_weekly_min)
        );
        assert_eq!(a.visits_per_week, b.visits_per_week);
        assert_eq!(a.visits, b.visits, "line {line}");
        assert_eq!(a.context_effects, b.context_effects, "line {line}");
        assert_eq!(a.unlogged_codes, b.unlogged_codes);
        assert_eq!(a.per_need.len(), b.per_need.len());
        for ((x, y), asked) in a.per_need.iter().zip(&b.per_need).zip(&i.needs) {
            assert_eq!((&x.code, x.weekly_min), (&y.code, y.weekly_min));
            assert_eq!(x.schablon_weekly_min, y.schablon_weekly_min);
            // The assessor's words beside the code they became.
            assert_eq!((&y.icf, y.level), (&asked.icf, asked.level));
            assert_eq!(y.goal_id, asked.goal_id);
            assert!(x.icf.is_none() && x.goal_id.is_none());
        }
        compared += 1;
    }
    assert!(compared >= 20, "{compared} needs objects");
}

fn ramtid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn ramtid_estimate_reads_ibic_rows_with_the_same_csv() {
    let f = fixture();
    let model = f.models.join("nordstad/1");
    let run = |needs: &str, format: &str| {
        let o = ramtid(&[
            "estimate",
            "--model",
            model.to_str().unwrap(),
            "--needs",
            f.data.join(needs).to_str().unwrap(),
            "--format",
            format,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let (codes, rows) = (run("needs.jsonl", "csv"), run("needs_ibic.jsonl", "csv"));
    assert_eq!(
        codes.lines().next().unwrap(),
        "recipient_id,weekly_min,weekly_staff_min,monthly_min,monthly_staff_min,\
         p10_weekly_min,p90_weekly_min,schablon_weekly_min,visits_per_week,model_version,error",
        "the CSV columns stay as they were"
    );
    assert!(codes.lines().count() > 20);
    assert_eq!(codes, rows);
    // The JSON names each need's ICF code and level beside its code.
    let json = run("needs_ibic.jsonl", "json");
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    let need = &first["per_need"][0];
    assert!(need["icf"].as_str().unwrap().starts_with('d'), "{need}");
    assert!(need["level"].as_u64().is_some() && need["code"].as_str().is_some());
    assert_eq!(need["goal_id"], "G1");
    // A level the mapping does not cover fails that line, naming need and field.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    let text = std::fs::read_to_string(f.data.join("needs_ibic.jsonl")).unwrap();
    let mut set: NeedsSet = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    set.needs[0].level = Some(0);
    std::fs::write(&bad, serde_json::to_string(&set).unwrap()).unwrap();
    let o = ramtid(&[
        "estimate",
        "--model",
        model.to_str().unwrap(),
        "--needs",
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 1: needs[0].level:") && err.contains("no difficulty"),
        "{err}"
    );
}

fn config(dir: &Path) -> Config {
    let f = fixture();
    let (models, data) = (dir.join("models"), dir.join("data"));
    copy_dir(&f.models, &models);
    copy_dir(&f.data, &data);
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.metrics_listen = String::new();
    cfg.server.shutdown_grace_s = 5;
    cfg.models.dir = models;
    cfg.models.active = "nordstad/1".into();
    cfg.models.candidate = "nordstad/2".into();
    cfg.data.dir = data;
    cfg.validate().unwrap();
    cfg
}

async fn connect(cfg: Config) -> (ramtid_server::Running, Channel) {
    let running = start(cfg).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let t0 = Instant::now();
    while HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
        != ServingStatus::Serving
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "not SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SERVING comes after every start-up model was tried: the candidate is there.
    loop {
        let models =
            ramtid_proto::pb::model_service_client::ModelServiceClient::new(channel.clone())
                .list_models(ramtid_proto::pb::ListModelsRequest {})
                .await
                .unwrap()
                .into_inner()
                .models;
        if models
            .iter()
            .any(|m| m.aliases.iter().any(|a| a == "candidate"))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no candidate loaded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (running, channel)
}

fn request(set: &NeedsSet, case: &str) -> pb::EstimateRequest {
    let wire = pb::NeedsSet::from(set);
    pb::EstimateRequest {
        recipient_id: wire.recipient_id,
        context: wire.context,
        needs: wire.needs,
        case_id: case.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_ibic_rows_estimate_are_checked_stored_and_recalculated() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let db = cfg.history_url().unwrap();
    let (_running, channel) = connect(cfg).await;
    let mut est = EstimationServiceClient::new(channel.clone());
    // The catalog names its mapping, for clients that let assessors write IBIC rows.
    let catalog = ramtid_proto::pb::model_service_client::ModelServiceClient::new(channel.clone())
        .get_catalog(pb::GetCatalogRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(catalog.ibic.len(), catalog.insatser.len());
    assert!(catalog
        .ibic
        .iter()
        .all(|r| r.icf.starts_with('d') && !r.levels.is_empty() && !r.code.is_empty()));
    let (_, by_code) = read_needs(&f.data.join("needs.jsonl")).remove(0);
    let (_, by_ibic) = read_needs(&f.data.join("needs_ibic.jsonl")).remove(0);

    let a = est
        .estimate(request(&by_code, ""))
        .await
        .unwrap()
        .into_inner()
        .estimate
        .unwrap();
    let resp = est
        .estimate(request(&by_ibic, "CASE-I"))
        .await
        .unwrap()
        .into_inner();
    let b = resp.estimate.unwrap();
    assert!(resp.calculation_id > 0);
    assert_eq!(a.weekly_min, b.weekly_min);
    assert_eq!(a.visits, b.visits);
    for ((x, y), asked) in a.per_need.iter().zip(&b.per_need).zip(&by_ibic.needs) {
        assert_eq!((&x.code, x.weekly_min), (&y.code, y.weekly_min));
        assert_eq!(Some(&y.icf), asked.icf.as_ref());
        assert_eq!(y.level, asked.level);
        assert_eq!(Some(&y.goal_id), asked.goal_id.as_ref());
        assert!(x.icf.is_empty() && x.level.is_none());
    }

    // Every mapping error is INVALID_ARGUMENT with the field path.
    type Edit = fn(&mut pb::Need);
    let table: [(&str, Edit, &str); 7] = [
        (
            "level 0 maps to nothing",
            |n| n.level = Some(0),
            "needs[1].level",
        ),
        (
            "level outside the scale",
            |n| n.level = Some(6),
            "needs[1].level",
        ),
        ("no level", |n| n.level = None, "needs[1].level"),
        (
            "malformed ICF code",
            |n| n.icf = "510".into(),
            "needs[1].icf",
        ),
        (
            "unmapped ICF code",
            |n| n.icf = "d999".into(),
            "needs[1].icf",
        ),
        (
            "another code beside the row",
            |n| n.code = "NOPE".into(),
            "needs[1].code",
        ),
        (
            "a goal id like a personnummer",
            |n| n.goal_id = "19121212-1212".into(),
            "needs[1].goal_id",
        ),
    ];
    for (what, edit, field) in table {
        let mut r = request(&by_ibic, "");
        assert!(r.needs.len() > 1);
        edit(&mut r.needs[1]);
        let st = est.estimate(r).await.unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{what}");
        let fields: Vec<String> = st
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, [field], "{what}: {}", st.message());
        assert!(
            !st.message().contains("19121212"),
            "{what}: {}",
            st.message()
        );
    }

    // The history keeps the rows and their goals as given.
    let mut hist = HistoryServiceClient::new(channel.clone());
    let got = hist
        .get_calculation(pb::GetCalculationRequest {
            id: resp.calculation_id,
        })
        .await
        .unwrap()
        .into_inner();
    let stored = got.needs.unwrap();
    let given = pb::NeedsSet::from(&by_ibic);
    assert_eq!(stored.needs, given.needs);
    assert!(stored
        .needs
        .iter()
        .all(|n| n.code.is_empty() && !n.goal_id.is_empty()));

    // Recalculated on the candidate, the rows are mapped by its catalog: the same minutes
    // as the candidate answers for the codes.
    let rc = hist
        .recalculate_calculation(pb::RecalculateCalculationRequest {
            id: resp.calculation_id,
            model: "candidate".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let after = rc.after_estimate.unwrap();
    assert_eq!(after.model.as_ref().unwrap().version, "2");
    let mut on_candidate = request(&by_code, "");
    on_candidate.model = "candidate".into();
    let c = est
        .estimate(on_candidate)
        .await
        .unwrap()
        .into_inner()
        .estimate
        .unwrap();
    assert_eq!(after.weekly_min, c.weekly_min);
    assert_ne!(
        after.weekly_min, b.weekly_min,
        "another model, other minutes"
    );
    assert_eq!(after.per_need.len(), by_ibic.needs.len());
    for (n, asked) in after.per_need.iter().zip(&by_ibic.needs) {
        assert_eq!(Some(&n.icf), asked.icf.as_ref());
        assert!(!n.code.is_empty());
    }

    // The follow-up on the history lists the goals of the orders in force.
    let out = dir.path().join("followup");
    let o = ramtid(&[
        "follow-up",
        "--model",
        dir.path().join("models/nordstad/1").to_str().unwrap(),
        "--orders",
        &db,
        "--visits",
        f.data.join("visits.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let goals = std::fs::read_to_string(out.join("goals.csv")).unwrap();
    let mut want = vec!["recipient_id,goal_id".to_string()];
    let mut ids: Vec<String> = by_ibic
        .needs
        .iter()
        .map(|n| format!("CASE-I,{}", n.goal_id.as_ref().unwrap()))
        .collect();
    ids.sort();
    want.extend(ids);
    assert_eq!(goals.lines().collect::<Vec<_>>(), want);
}

#[test]
fn a_catalog_whose_mapping_is_broken_is_refused_at_training() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&f.data, &data);
    let path = data.join("catalog.toml");
    let mut c = Catalog::load(&path).unwrap();
    let first = c.ibic[0].clone();
    c.ibic.push(first);
    std::fs::write(&path, c.to_toml()).unwrap();
    let n = c.ibic.len() - 1;
    let o = ramtid(&[
        "train",
        "--catalog",
        path.to_str().unwrap(),
        "--visits",
        data.join("visits.csv").to_str().unwrap(),
        "--out",
        dir.path().join("models").to_str().unwrap(),
        "--name",
        "x",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("ibic[{n}].levels")) && err.contains("overlap"),
        "{err}"
    );
}

#[test]
fn follow_up_on_needs_lists_their_goals_and_payment_pays_only_ordered_goals() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("followup");
    let o = ramtid(&[
        "follow-up",
        "--model",
        f.models.join("nordstad/1").to_str().unwrap(),
        "--orders",
        f.data.join("needs_ibic.jsonl").to_str().unwrap(),
        "--visits",
        f.data.join("visits.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let goals = std::fs::read_to_string(out.join("goals.csv")).unwrap();
    let want: usize = read_needs(&f.data.join("needs_ibic.jsonl"))
        .iter()
        .map(|(_, s)| s.needs.len())
        .sum();
    assert_eq!(goals.lines().count(), want + 1, "{goals}");
    let (_, first) = read_needs(&f.data.join("needs_ibic.jsonl")).remove(0);
    assert!(
        goals.contains(&format!("\n{},G1\n", first.recipient_id)),
        "{goals}"
    );
    // Orders without goals write no goals.csv.
    let plain = d.join("plain");
    let o = ramtid(&[
        "follow-up",
        "--model",
        f.models.join("nordstad/1").to_str().unwrap(),
        "--orders",
        f.data.join("needs.jsonl").to_str().unwrap(),
        "--visits",
        f.data.join("visits.csv").to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(!plain.join("goals.csv").exists());

    // The payment fixture of tests/it/payment.rs: r1's fulfilled g1 earns 297 kr, unless
    // the ordered goals leave it out.
    std::fs::write(
        d.join("pay.toml"),
        "basis = \"performed_capped\"\ntolerance = 0.10\ngoal_premium_kr = 297\n\
         [rates]\npersonal_care = 464\nservice = 382\n\
         [declined]\nshort_notice_share = 0.5\nabsence_share = 0.0\n",
    )
    .unwrap();
    std::fs::write(
        d.join("inputs.csv"),
        "recipient_id,unit_id,month,category,granted_schablon_min,granted_ramtid_min,performed_min,declined_visits_planned_min,absence_days\n\
         r1,A,2024-04,personal_care,600,540,570,60,3\n\
         r1,A,2024-04,service,120,90,60,0,3\n",
    )
    .unwrap();
    std::fs::write(
        d.join("followed.csv"),
        "recipient_id,goal_id,assessed,fulfilled\nr1,g1,2024-04-15,true\nr1,g2,2024-04-20,false\n",
    )
    .unwrap();
    let pay = |ordered: &str| {
        std::fs::write(d.join("ordered.csv"), ordered).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_ramtid"))
            .args(["payment", "--config", "pay.toml", "--inputs", "inputs.csv"])
            .args(["--goals", "followed.csv", "--ordered-goals", "ordered.csv"])
            .args(["--out", "out"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let csv = std::fs::read_to_string(d.join("out/payment.csv")).unwrap();
        let row = csv.lines().nth(1).unwrap().to_string();
        (row, String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (row, _) = pay("recipient_id,goal_id\nr1,g1\nr1,g2\n");
    assert!(row.contains(",297.00,4813.24,"), "{row}");
    let (row, err) = pay("recipient_id,goal_id\nr1,g2\n");
    assert!(row.contains(",0.00,4516.24,"), "{row}");
    assert!(
        err.contains("1 followed-up goals were not ordered"),
        "{err}"
    );
}

/// A mapping with an overlap or a gap, sent to `TrainModel`: INVALID_ARGUMENT on the
/// request's `catalog_path`, the message naming the mapping row and field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_mapping_sent_to_train_model_is_invalid_argument_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.training.worker = PathBuf::from(env!("CARGO_BIN_EXE_ramtid"));
    let data = cfg.data.dir.clone();
    let c = Catalog::load(&data.join("catalog.toml")).unwrap();
    // Overlap: the first row twice. Gap: a row of levels 1 and 3 only, for a new ICF code.
    let mut overlap = c.clone();
    overlap.ibic.push(c.ibic[0].clone());
    let mut gap = c.clone();
    let mut row = c.ibic[0].clone();
    row.icf = "d4700".into();
    row.levels = vec![1, 3];
    gap.ibic.push(row);
    std::fs::write(data.join("overlap.toml"), overlap.to_toml()).unwrap();
    std::fs::write(data.join("gap.toml"), gap.to_toml()).unwrap();
    let (_running, channel) = connect(cfg).await;
    let mut m = pb::model_service_client::ModelServiceClient::new(channel);
    for (file, n, want) in [
        ("overlap.toml", overlap.ibic.len() - 1, "overlap"),
        ("gap.toml", gap.ibic.len() - 1, "gap"),
    ] {
        let request = pb::TrainModelRequest {
            catalog_path: file.into(),
            visits_path: "visits.csv".into(),
            name: "broken".into(),
            ..Default::default()
        };
        let st = match m.train_model(request).await {
            Err(st) => st,
            Ok(s) => {
                let mut s = s.into_inner();
                loop {
                    match s.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => panic!("{file}: training succeeded"),
                        Err(st) => break st,
                    }
                }
            }
        };
        assert_eq!(st.code(), Code::InvalidArgument, "{file}: {st:?}");
        let violations = st.get_details_bad_request().unwrap().field_violations;
        assert_eq!(
            violations[0].field, "catalog_path",
            "{file}: {violations:?}"
        );
        let text = &violations[0].description;
        assert!(
            text.contains(&format!("ibic[{n}].levels")) && text.contains(want),
            "{file}: {text}"
        );
    }
}
