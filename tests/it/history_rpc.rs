//! The calculation history over gRPC: the real server with an SQLite history in a temporary
//! directory. Estimate with a case_id stores the calculation before answering (and without
//! one stores nothing); HistoryService lists (paged, newest first), gets, recalculates,
//! compares and erases; personnummer-like case ids are refused; with access control on, an
//! assessor cannot read another assessor's calculations and only admin may erase.

use crate::common;
use common::{copy_dir, simulate_small, train_small};
use ramtid::client::sample_request;
use ramtid_proto::pb::{
    self, estimation_service_client::EstimationServiceClient,
    history_service_client::HistoryServiceClient, model_service_client::ModelServiceClient,
};
use ramtid_server::auth::{hash_token, Role};
use ramtid_server::config::{Config, TokenConfig};
use ramtid_server::{start, Running};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;

struct Fixture {
    data: PathBuf,
    models: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let models = root.join("models");
        // nordstad/1 (production) and nordstad/2 (candidate, other visits: other minutes).
        for seed in [11, 12] {
            let data = root.join(format!("data-{seed}"));
            simulate_small(&data, seed);
            train_small(&data, &models);
        }
        Fixture {
            data: root.join("data-11"),
            models,
        }
    })
}

const ANNA: &str = "anna-token-1";
const BERIT: &str = "berit-token-2";
const DORA: &str = "dora-token-3";
const ADAM: &str = "adam-token-4";

fn config(dir: &Path, auth: bool) -> Config {
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
    if auth {
        cfg.auth.enabled = true;
        cfg.auth.tokens = [
            ("anna", Role::Assessor, ANNA),
            ("berit", Role::Assessor, BERIT),
            ("dora", Role::Data, DORA),
            ("adam", Role::Admin, ADAM),
        ]
        .into_iter()
        .map(|(name, role, token)| TokenConfig {
            name: name.into(),
            role,
            hash: hash_token(token),
        })
        .collect();
    }
    cfg.validate().unwrap();
    cfg
}

struct Server {
    running: Running,
    channel: Channel,
}

async fn serve(cfg: Config) -> Server {
    let running = start(cfg).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let t0 = Instant::now();
    loop {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Server { running, channel }
}

fn req<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

impl Server {
    fn est(&self) -> EstimationServiceClient<Channel> {
        EstimationServiceClient::new(self.channel.clone())
    }
    fn hist(&self) -> HistoryServiceClient<Channel> {
        HistoryServiceClient::new(self.channel.clone())
    }
    async fn request(&self, token: Option<&str>) -> pb::EstimateRequest {
        let catalog = ModelServiceClient::new(self.channel.clone())
            .get_catalog(req(pb::GetCatalogRequest::default(), token))
            .await
            .unwrap()
            .into_inner();
        let mut r = sample_request(&catalog);
        r.recipient_id = "R-1".into();
        r
    }
    async fn estimate(&self, case: &str, r: &pb::EstimateRequest, token: Option<&str>) -> i64 {
        let mut r = r.clone();
        r.case_id = case.into();
        self.est()
            .estimate(req(r, token))
            .await
            .unwrap()
            .into_inner()
            .calculation_id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_rpcs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), false);
    let db = cfg.data.dir.join("history.db");
    end_to_end(cfg, dir.path(), Some(&db)).await;
}

/// The same suite with the history on PostgreSQL (`RAMTID_TEST_PG_URL`, a role that may
/// create databases: `.ci/run` starts one with `tests/pg.sh`). Skipped, visibly, without
/// one; under CI a missing server fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_rpcs_end_to_end_on_postgresql() {
    let base = match std::env::var("RAMTID_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required under CI: set RAMTID_TEST_PG_URL (tests/pg.sh)"
            );
            eprintln!("SKIPPED: history RPCs on PostgreSQL: no RAMTID_TEST_PG_URL");
            return;
        }
    };
    let name = format!("ramtid_rpc_test_{}", std::process::id());
    let url = {
        let (base, name) = (base.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                .unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            let (head, query) = match base.split_once('?') {
                Some((h, q)) => (h.to_string(), format!("?{q}")),
                None => (base.clone(), String::new()),
            };
            let scheme_end = head.find("://").unwrap() + 3;
            let server = match head[scheme_end..].find('/') {
                Some(slash) => head[..scheme_end + slash].to_string(),
                None => head.clone(),
            };
            format!("{server}/{name}{query}")
        })
        .await
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), false);
    cfg.history.url = Some(url);
    end_to_end(cfg, dir.path(), None).await;
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut admin) = postgres::Client::connect(&base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    })
    .await;
}

async fn end_to_end(cfg: Config, dir: &Path, sqlite_file: Option<&Path>) {
    let s = serve(cfg).await;
    if let Some(db) = sqlite_file {
        assert!(db.is_file(), "the default history is data/history.db");
    }
    let base = s.request(None).await;

    // Without a case id nothing is stored.
    let resp = s.est().estimate(base.clone()).await.unwrap().into_inner();
    assert_eq!(resp.calculation_id, 0);

    // A personnummer-like case id is refused, naming the field.
    for pnr in ["19121212-1212", "121212-1212", "201212121212"] {
        let mut r = base.clone();
        r.case_id = pnr.into();
        let st = s.est().estimate(r).await.unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{pnr}");
        let fields: Vec<String> = st
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["case_id"], "{pnr}");
        assert!(st.message().contains("pseudonymous"));
    }
    let st = s
        .hist()
        .list_calculations(pb::ListCalculationsRequest {
            case_id: "121212-1212".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);

    // Five calculations of case A (needs growing), one of case B.
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut r = base.clone();
        r.needs[0].per_week = 1.0 + i as f64;
        let id = s.estimate("CASE-A", &r, None).await;
        assert!(id > 0);
        ids.push(id);
    }
    let b_id = s.estimate("CASE-B", &base, None).await;
    assert!(b_id > ids[4]);

    // Paging: newest first, 2 + 2 + 1.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = s
            .hist()
            .list_calculations(pb::ListCalculationsRequest {
                case_id: "CASE-A".into(),
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.calculations.len() <= 2);
        for c in &page.calculations {
            assert_eq!(c.case_id, "CASE-A");
            assert_eq!(c.caller, "anonymous");
            assert!(c.created.ends_with('Z'));
            assert_eq!(c.model.as_ref().unwrap().name, "nordstad");
            seen.push(c.id);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let st = s
        .hist()
        .list_calculations(pb::ListCalculationsRequest {
            case_id: "CASE-A".into(),
            page_size: 2,
            page_token: "garbage".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    let fields: Vec<String> = tonic_types::StatusExt::get_error_details(&st)
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["page_token"], "{}", st.message());

    // Get: what was answered is what is stored.
    let got = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: ids[0] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.id, ids[0]);
    let needs = got.needs.unwrap();
    assert_eq!(needs.recipient_id, "R-1");
    assert_eq!(needs.needs.len(), base.needs.len());
    assert_eq!(needs.needs[0].per_week, 1.0);
    assert_eq!(needs.context.len(), base.context.len());
    let stored = got.estimate.unwrap();
    assert!(stored.weekly_min > 0.0 && !stored.visits.is_empty());
    let st = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: 999_999 })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    // Recalculate on the same (active) model: no difference.
    let rc = s
        .hist()
        .recalculate_calculation(pb::RecalculateCalculationRequest {
            id: ids[0],
            model: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rc.before.as_ref().unwrap().id, ids[0]);
    assert!(rc.after.is_none());
    assert!(rc.delta_weekly_min.abs() < 1e-9);
    assert!(!rc.visits.is_empty() && !rc.needs.is_empty());
    assert!(rc.needs.iter().all(|n| n.delta_weekly_min.abs() < 1e-9));
    // ... and on the candidate: the new model's estimate and the difference to the stored.
    let rc = s
        .hist()
        .recalculate_calculation(pb::RecalculateCalculationRequest {
            id: ids[0],
            model: "candidate".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let after = rc.after_estimate.as_ref().unwrap();
    assert_eq!(after.model.as_ref().unwrap().version, "2");
    let stored = rc.before.as_ref().unwrap().estimate.as_ref().unwrap();
    assert_eq!(stored.model.as_ref().unwrap().version, "1");
    assert!(
        rc.delta_weekly_min.abs() > 1e-6,
        "another model, other minutes"
    );
    assert!((rc.delta_weekly_min - (after.weekly_min - stored.weekly_min)).abs() < 1e-9);
    let per_need: f64 = rc.needs.iter().map(|n| n.delta_weekly_min).sum();
    assert!(
        (per_need - rc.delta_weekly_min).abs() < 1e-6 * stored.weekly_min,
        "{per_need}"
    );
    let per_visit: f64 = rc.visits.iter().map(|v| v.delta_weekly_min).sum();
    assert!(
        (per_visit - rc.delta_weekly_min).abs() < 1e-6 * stored.weekly_min,
        "{per_visit}"
    );
    let st = s
        .hist()
        .recalculate_calculation(pb::RecalculateCalculationRequest {
            id: ids[0],
            model: "nosuchmodel".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    // Compare the first and the last: need 0 went from 1 to 5 per week.
    let cmp = s
        .hist()
        .compare_calculations(pb::CompareCalculationsRequest {
            id_a: ids[0],
            id_b: ids[4],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cmp.after.as_ref().unwrap().id, ids[4]);
    assert!(cmp.delta_weekly_min > 0.0, "{}", cmp.delta_weekly_min);
    let n0 = &cmp.needs[0];
    assert_eq!((n0.before_per_week, n0.after_per_week), (1.0, 5.0));
    assert!(n0.delta_weekly_min > 0.0);
    let visit_sum: f64 = cmp.visits.iter().map(|v| v.delta_weekly_min).sum();
    assert!((visit_sum - cmp.delta_weekly_min).abs() < 1e-6 * cmp.delta_weekly_min.max(1.0));
    let st = s
        .hist()
        .compare_calculations(pb::CompareCalculationsRequest {
            id_a: ids[0],
            id_b: 999_999,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    rebudget_the_caseload(&s, &base, ids[4], b_id, dir).await;

    // Erase case A: the count, then NOT_FOUND and an empty list; case B untouched.
    let erased = s
        .hist()
        .erase_case(pb::EraseCaseRequest {
            case_id: "CASE-A".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .erased;
    assert_eq!(erased, 5);
    let st = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: ids[2] })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let page = s
        .hist()
        .list_calculations(pb::ListCalculationsRequest {
            case_id: "CASE-A".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.calculations.is_empty());
    s.hist()
        .get_calculation(pb::GetCalculationRequest { id: b_id })
        .await
        .unwrap();
    let audit = std::fs::read_to_string(dir.join("data/audit.log")).unwrap();
    assert!(
        audit.contains("\"erase_case\"") && audit.contains("(5 calculations erased)"),
        "{audit}"
    );
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_disabled_is_failed_precondition() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), false);
    cfg.history.url = Some(String::new());
    let s = serve(cfg).await;
    let base = s.request(None).await;
    // Estimate with a case id still answers, storing nothing.
    assert_eq!(s.estimate("CASE-A", &base, None).await, 0);
    assert!(!dir.path().join("data/history.db").exists());
    let st = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: 1 })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition);
    let st = s
        .hist()
        .list_calculations(pb::ListCalculationsRequest {
            case_id: "CASE-A".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition);
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assessors_see_only_their_own_calculations() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(config(dir.path(), true)).await;
    let base = s.request(Some(ANNA)).await;
    let anna_id = s.estimate("CASE-ANNA", &base, Some(ANNA)).await;
    let berit_id = s.estimate("CASE-BERIT", &base, Some(BERIT)).await;
    assert!(anna_id > 0 && berit_id > 0);

    // Anna reads her own, recorded under her token's name.
    let own = s
        .hist()
        .get_calculation(req(pb::GetCalculationRequest { id: anna_id }, Some(ANNA)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.caller, "anna");
    // ... and not Berit's, by any method.
    let denied = |st: tonic::Status| assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    denied(
        s.hist()
            .get_calculation(req(pb::GetCalculationRequest { id: berit_id }, Some(ANNA)))
            .await
            .unwrap_err(),
    );
    denied(
        s.hist()
            .list_calculations(req(
                pb::ListCalculationsRequest {
                    case_id: "CASE-BERIT".into(),
                    ..Default::default()
                },
                Some(ANNA),
            ))
            .await
            .unwrap_err(),
    );
    denied(
        s.hist()
            .recalculate_calculation(req(
                pb::RecalculateCalculationRequest {
                    id: berit_id,
                    model: String::new(),
                },
                Some(ANNA),
            ))
            .await
            .unwrap_err(),
    );
    denied(
        s.hist()
            .compare_calculations(req(
                pb::CompareCalculationsRequest {
                    id_a: anna_id,
                    id_b: berit_id,
                },
                Some(ANNA),
            ))
            .await
            .unwrap_err(),
    );
    // Data staff see everything; erasure is admin only.
    for token in [DORA, ADAM] {
        s.hist()
            .get_calculation(req(pb::GetCalculationRequest { id: berit_id }, Some(token)))
            .await
            .unwrap();
    }
    for token in [ANNA, DORA] {
        denied(
            s.hist()
                .erase_case(req(
                    pb::EraseCaseRequest {
                        case_id: "CASE-BERIT".into(),
                    },
                    Some(token),
                ))
                .await
                .unwrap_err(),
        );
    }
    let st = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: anna_id })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    let erased = s
        .hist()
        .erase_case(req(
            pb::EraseCaseRequest {
                case_id: "CASE-BERIT".into(),
            },
            Some(ADAM),
        ))
        .await
        .unwrap()
        .into_inner()
        .erased;
    assert_eq!(erased, 1);
    let audit = std::fs::read_to_string(dir.path().join("data/audit.log")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("erase_case"))
        .expect("erasure audited");
    assert!(
        line.contains("\"adam\"") && line.contains("CASE-BERIT"),
        "{line}"
    );
    assert!(!audit.contains(ADAM));
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_at_start_up_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), false);
    // An old calculation written straight into the store.
    let url = cfg.history_url().unwrap();
    std::fs::create_dir_all(&cfg.data.dir).unwrap();
    let store = ramtid_history::HistoryStore::open(&url).unwrap();
    let old = store
        .record(ramtid_history::Calculation {
            case_id: "OLD".into(),
            created_ms: ramtid_history::now_ms() - 40 * 86_400_000,
            caller: "anonymous".into(),
            model_name: "m".into(),
            model_version: "1".into(),
            needs_json: "{}".into(),
            result: ramtid_history::StoredResult::Json("{}".into()),
            weekly_min: 1.0,
            unit_id: String::new(),
        })
        .await
        .unwrap();
    drop(store);
    let mut cfg = cfg;
    cfg.history.retention_days = 30;
    let s = serve(cfg).await;
    let st = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: old })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let audit = std::fs::read_to_string(dir.path().join("data/audit.log")).unwrap();
    assert!(
        audit.contains("purge_history") && audit.contains("1 calculations before"),
        "{audit}"
    );
    s.running.shutdown().await.unwrap();
}

/// Re-budgeting over the RPC, with cases A (latest `a_id`) and B stored without a team and
/// case C stored now under a team: every latest calculation recomputed under the candidate.
async fn rebudget_the_caseload(
    s: &Server,
    base: &pb::EstimateRequest,
    a_id: i64,
    b_id: i64,
    dir: &Path,
) {
    let get = |id| async move {
        s.hist()
            .get_calculation(pb::GetCalculationRequest { id })
            .await
            .unwrap()
            .into_inner()
    };
    let mut c = base.clone();
    c.case_id = "CASE-C".into();
    c.unit_id = "team-north".into();
    c.needs[1].per_week = 3.0;
    let c_id = s
        .est()
        .estimate(c)
        .await
        .unwrap()
        .into_inner()
        .calculation_id;
    assert_eq!(get(c_id).await.unit_id, "team-north");

    // What the candidate says of each case's latest needs, asked directly.
    let mut before = 0.0;
    let mut after = 0.0;
    for id in [a_id, b_id, c_id] {
        let stored = get(id).await;
        before += stored.estimate.as_ref().unwrap().weekly_min;
        let needs = stored.needs.unwrap();
        let fresh = s
            .est()
            .estimate(pb::EstimateRequest {
                recipient_id: needs.recipient_id,
                context: needs.context,
                needs: needs.needs,
                model: "candidate".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        after += fresh.estimate.unwrap().weekly_min;
    }

    let report = s
        .hist()
        .rebudget_caseload(pb::RebudgetCaseloadRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        report.model.as_ref().unwrap().version,
        "2",
        "the candidate by default"
    );
    assert_eq!((report.cases_seen, report.refused_count), (3, 0));
    let total = report.total.as_ref().unwrap();
    assert_eq!(total.cases, 3);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(
        close(total.before_weekly_min, before),
        "{} vs {before}",
        total.before_weekly_min
    );
    assert!(
        close(total.after_weekly_min, after),
        "{} vs {after}",
        total.after_weekly_min
    );
    assert!(
        (total.after_weekly_min - total.before_weekly_min).abs() > 1e-6,
        "the candidate differs"
    );
    let units: Vec<(&str, u64)> = report
        .by_unit
        .iter()
        .map(|g| (g.value.as_str(), g.totals.as_ref().unwrap().cases))
        .collect();
    assert_eq!(units, [("(not given)", 2), ("team-north", 1)]);
    assert!(report
        .by_context
        .iter()
        .any(|g| g.variable == "age" && g.value.contains('–')));
    assert_eq!(report.top_movers.len(), 3);
    assert_eq!(
        report
            .top_movers
            .iter()
            .filter(|m| m.unit_id == "team-north")
            .count(),
        1
    );

    // The same under production changes nothing.
    let same = s
        .hist()
        .rebudget_caseload(pb::RebudgetCaseloadRequest {
            model: "production".into(),
            top_movers: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.top_movers.len(), 1);
    assert!(same.total.unwrap().change_pct.abs() < 1e-9);

    // Bad requests name the field; an unknown model is NOT_FOUND.
    let st = s
        .hist()
        .rebudget_caseload(pb::RebudgetCaseloadRequest {
            model: String::new(),
            top_movers: 5000,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("top_movers"), "{}", st.message());
    let st = s
        .hist()
        .rebudget_caseload(pb::RebudgetCaseloadRequest {
            model: "nordstad/99".into(),
            top_movers: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    let mut bad = base.clone();
    bad.case_id = "CASE-D".into();
    bad.unit_id = "19121212-1212".into();
    let st = s.est().estimate(bad).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("unit_id"), "{}", st.message());

    let audit = std::fs::read_to_string(dir.join("data/audit.log")).unwrap();
    assert!(audit.contains("\"rebudget_caseload\""), "{audit}");
    assert!(
        audit.contains("model nordstad/2: 3 cases (0 refused)"),
        "{audit}"
    );

    // Case C goes again so the erasure below sees the same history as before.
    let erased = s
        .hist()
        .erase_case(pb::EraseCaseRequest {
            case_id: "CASE-C".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .erased;
    assert_eq!(erased, 1);
}

/// Calculations stored before results were kept as protobuf (schema version 2 and older:
/// the estimate as JSON) are served as they were answered, and recalculate to no change
/// under the same model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stored_as_json_are_served_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), false);
    let model = ramtid_core::model::Model::load(&cfg.models.dir.join("nordstad/1")).unwrap();
    let line = std::fs::read_to_string("examples/needs.jsonl").unwrap();
    let needs: ramtid_core::needs::NeedsSet =
        serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let e = ramtid_core::estimate::estimate(&model, &needs.validate(&model.catalog).unwrap());
    let url = cfg.history_url().unwrap();
    std::fs::create_dir_all(&cfg.data.dir).unwrap();
    let store = ramtid_history::HistoryStore::open(&url).unwrap();
    let id = store
        .record(ramtid_history::Calculation {
            case_id: "JSON-1".into(),
            created_ms: ramtid_history::now_ms(),
            caller: "anonymous".into(),
            model_name: "nordstad".into(),
            model_version: "1".into(),
            needs_json: serde_json::to_string(&needs).unwrap(),
            result: ramtid_history::StoredResult::Json(serde_json::to_string(&e).unwrap()),
            weekly_min: e.weekly_min,
            unit_id: String::new(),
        })
        .await
        .unwrap();
    drop(store);
    let s = serve(cfg).await;
    let got = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id })
        .await
        .unwrap()
        .into_inner();
    let stored = got.estimate.unwrap();
    assert_eq!(stored.weekly_min, e.weekly_min);
    assert_eq!(stored.visits.len(), e.visits.len());
    assert_eq!(stored.per_need.len(), needs.needs.len());
    let cmp = s
        .hist()
        .recalculate_calculation(pb::RecalculateCalculationRequest {
            id,
            model: "nordstad/1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        cmp.delta_weekly_min.abs() < 1e-9,
        "{}",
        cmp.delta_weekly_min
    );
    assert!(cmp.needs.iter().all(|n| n.delta_weekly_min.abs() < 1e-9));
    s.running.shutdown().await.unwrap();
}

/// Reads a FollowUp stream to its end: the stage messages and the result.
async fn follow_up_call(
    s: &Server,
    r: pb::FollowUpRequest,
    token: Option<&str>,
) -> Result<(Vec<pb::FollowUpStage>, pb::FollowUpResult), tonic::Status> {
    use pb::follow_up_progress::Event;
    let mut stream = pb::follow_up_service_client::FollowUpServiceClient::new(s.channel.clone())
        .follow_up(req(r, token))
        .await?
        .into_inner();
    let mut stages = Vec::new();
    while let Some(m) = stream.message().await? {
        match m.event {
            Some(Event::Stage(st)) => stages.push(st),
            Some(Event::Done(d)) => return Ok((stages, d)),
            None => panic!("an empty progress message"),
        }
    }
    panic!("the stream ended without a result")
}

/// FollowUpService: orders from the server's own history, the log from its data
/// directory; `data` gets every row and the providers, an assessor only the cases whose
/// calculation they made; bad paths, settings and rows are refused on their fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_over_grpc_from_the_history_with_assessors_limited_to_their_cases() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), true);
    let data = cfg.data.dir.clone();
    let s = serve(cfg).await;
    // Two recipients of the log become cases: one calculated by Anna, one by Berit.
    let log = std::fs::read_to_string(data.join("visits.csv")).unwrap();
    let mut lines = log.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rid = header.iter().position(|c| *c == "recipient_id").unwrap();
    let mut ids: Vec<String> = lines
        .map(|l| l.split(',').nth(rid).unwrap_or("").to_string())
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    assert!(ids.len() > 10);
    let (anna_case, berit_case) = (ids[0].clone(), ids[1].clone());
    let base = s.request(Some(ANNA)).await;
    s.estimate(&anna_case, &base, Some(ANNA)).await;
    s.estimate(&berit_case, &base, Some(BERIT)).await;

    let request = pb::FollowUpRequest {
        visits_path: "visits.csv".into(),
        ..Default::default()
    };
    let (stages, all) = follow_up_call(&s, request.clone(), Some(DORA))
        .await
        .unwrap();
    assert!(
        stages
            .iter()
            .any(|st| st.stage == "reading" && st.total > 0),
        "{stages:?}"
    );
    assert!(!all.own_cases_only);
    assert!(all.rows_used > 0 && !all.providers.is_empty() && !all.consumption.is_empty());
    let cases: std::collections::HashSet<&str> = all
        .recipient_months_rows
        .iter()
        .map(|r| r.recipient_id.as_str())
        .collect();
    assert!(cases.contains(anna_case.as_str()) && cases.contains(berit_case.as_str()));
    // Ordered from the history: both cases carry the minutes their calculation gave.
    assert!(all
        .recipient_months_rows
        .iter()
        .filter(|r| r.recipient_id == anna_case)
        .all(|r| r.ordered_min > 0.0 && r.ratio.is_some()));

    // Anna: her case only, no provider or consumption tables.
    let (_, own) = follow_up_call(&s, request.clone(), Some(ANNA))
        .await
        .unwrap();
    assert!(own.own_cases_only);
    assert!(!own.recipient_months_rows.is_empty());
    assert!(own
        .recipient_months_rows
        .iter()
        .all(|r| r.recipient_id == anna_case));
    assert!(own.providers.is_empty() && own.consumption.is_empty());
    let anna_rows: Vec<_> = all
        .recipient_months_rows
        .iter()
        .filter(|r| r.recipient_id == anna_case)
        .collect();
    assert_eq!(anna_rows.len(), own.recipient_months_rows.len());
    assert_eq!(
        anna_rows[0].performed_min,
        own.recipient_months_rows[0].performed_min
    );

    // Refusals, each on its field.
    let fields = |st: &tonic::Status| -> Vec<String> {
        st.get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default()
    };
    for (r, field) in [
        (
            pb::FollowUpRequest {
                orders_path: "../outside.csv".into(),
                ..request.clone()
            },
            "orders_path",
        ),
        (
            pb::FollowUpRequest {
                tolerance: 1.5,
                ..request.clone()
            },
            "tolerance",
        ),
        (
            pb::FollowUpRequest {
                month: "2025-13".into(),
                ..request.clone()
            },
            "month",
        ),
        (
            pb::FollowUpRequest {
                age_variable: "alder".into(),
                ..request.clone()
            },
            "age_variable",
        ),
    ] {
        let st = follow_up_call(&s, r, Some(DORA)).await.unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
        assert_eq!(fields(&st), [field], "{st:?}");
    }
    // A bad row of an orders file in the data directory: named by file, row and column.
    std::fs::write(
        data.join("orders.csv"),
        "recipient_id,weekly_min\nA,60\nB,sixty\n",
    )
    .unwrap();
    let st = follow_up_call(
        &s,
        pb::FollowUpRequest {
            orders_path: "orders.csv".into(),
            ..request.clone()
        },
        Some(DORA),
    )
    .await
    .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert_eq!(fields(&st), ["orders_path"]);
    assert!(
        st.message().contains("row 3, column 'weekly_min'"),
        "{}",
        st.message()
    );
    // Without a token: refused by the access layer.
    let st = follow_up_call(&s, request, None).await.unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated);
    s.running.shutdown().await.unwrap();
}
