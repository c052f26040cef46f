//! Access control end to end: the real server over TLS on an ephemeral loopback port, with
//! bearer tokens for the three roles. The matrix calls every RPC as every role, without a
//! token and with a wrong one, and checks the status; over mutual TLS, a valid client
//! certificate is let in and an expired one is refused at the handshake. The audit log
//! records activations and training runs with the caller, and never a token.
//!
//! The certificates are in tests/fixtures/tls/ (test-only; see the README there).

use crate::common;
use common::{copy_dir, fixture};
use ramtid::client::sample_request;
use ramtid_proto::pb::{
    self, estimation_service_client::EstimationServiceClient,
    history_service_client::HistoryServiceClient, model_service_client::ModelServiceClient,
};
use ramtid_server::auth::{hash_token, Role};
use ramtid_server::config::{CertificateConfig, Config, TokenConfig};
use ramtid_server::{start, Running};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const ASSESSOR: &str = "assessor-token-4f1c";
const DATA: &str = "data-token-9a2e";
const ADMIN: &str = "admin-token-77d0";

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(tls_dir().join(name)).unwrap()
}

// ---------------------------------------------------------------------------------------
// Fixture: one simulated municipality and one trained model, copied per test.
// ---------------------------------------------------------------------------------------

struct World {
    _dir: tempfile::TempDir,
    cfg: Config,
}

/// A server configuration with tokens for the three roles, TLS, and client certificates
/// verified against the test CA (`client_auth_optional`: token-only clients allowed).
fn world(client_auth_optional: bool) -> World {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let data = dir.path().join("data");
    copy_dir(&f.models, &models);
    copy_dir(&f.data, &data);
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.metrics_listen = String::new();
    cfg.server.shutdown_grace_s = 5;
    cfg.models.dir = models;
    // The test binary is not a worker: TrainModel runs the ramtid binary.
    cfg.training.worker = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ramtid"));
    cfg.data.dir = data;
    cfg.auth.enabled = true;
    cfg.auth.tokens = [
        ("anna", Role::Assessor, ASSESSOR),
        ("dora", Role::Data, DATA),
    ]
    .into_iter()
    .chain([("adam", Role::Admin, ADMIN)])
    .map(|(name, role, token)| TokenConfig {
        name: name.into(),
        role,
        hash: hash_token(token),
    })
    .collect();
    cfg.tls.cert = tls_dir().join("server.pem");
    cfg.tls.key = tls_dir().join("server.key");
    cfg.tls.client_ca = tls_dir().join("ca.pem");
    cfg.tls.client_auth_optional = client_auth_optional;
    cfg.validate().unwrap();
    World { _dir: dir, cfg }
}

async fn connect(running: &Running, client_cert: Option<&str>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem("ca.pem")))
        .domain_name("localhost");
    if let Some(name) = client_cert {
        tls = tls.identity(Identity::from_pem(
            pem(&format!("{name}.pem")),
            pem(&format!("{name}.key")),
        ));
    }
    Channel::from_shared(format!("https://127.0.0.1:{}", running.addr.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| format!("{e:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

async fn health(channel: &Channel) -> Result<ServingStatus, Status> {
    Ok(HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status())
}

async fn wait_serving(channel: &Channel) {
    let t0 = Instant::now();
    while health(channel).await.unwrap() != ServingStatus::Serving {
        assert!(t0.elapsed() < Duration::from_secs(20), "not SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A request carrying `authorization: Bearer <token>` when a token is given.
fn req<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rpc {
    Estimate,
    EstimateBatch,
    ExplainVisit,
    GetCatalog,
    ListModels,
    GetModel,
    ActivateModel,
    ReloadModels,
    TrainModel,
    ListCalculations,
    GetCalculation,
    RecalculateCalculation,
    CompareCalculations,
    EraseCase,
    RebudgetCaseload,
}

/// The calculation the history RPCs of the matrix read: stored by the assessor (so that
/// the assessor, and data and admin, may read it).
static MATRIX_CALC: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

const RPCS: [Rpc; 15] = [
    Rpc::Estimate,
    Rpc::EstimateBatch,
    Rpc::ExplainVisit,
    Rpc::GetCatalog,
    Rpc::ListModels,
    Rpc::GetModel,
    Rpc::ActivateModel,
    Rpc::ReloadModels,
    Rpc::TrainModel,
    Rpc::ListCalculations,
    Rpc::GetCalculation,
    Rpc::RecalculateCalculation,
    Rpc::CompareCalculations,
    Rpc::EraseCase,
    Rpc::RebudgetCaseload,
];

impl Rpc {
    /// The smallest role allowed (the README's table).
    fn needs(self) -> Role {
        match self {
            Rpc::Estimate | Rpc::EstimateBatch | Rpc::ExplainVisit | Rpc::GetCatalog => {
                Role::Assessor
            }
            Rpc::ListCalculations
            | Rpc::GetCalculation
            | Rpc::RecalculateCalculation
            | Rpc::CompareCalculations => Role::Assessor,
            Rpc::EraseCase => Role::Admin,
            _ => Role::Data,
        }
    }

    /// The code an allowed caller gets: OK, except TrainModel, which is sent with an
    /// invalid fold count so that the matrix does not train nine models (training for real
    /// is in `the_audit_log_records_who_did_what`).
    fn allowed(self) -> Code {
        match self {
            Rpc::TrainModel => Code::InvalidArgument,
            _ => Code::Ok,
        }
    }
}

/// Calls `rpc` with `token` and returns the final status code (streams read to the end).
async fn call(
    channel: &Channel,
    good: &pb::EstimateRequest,
    rpc: Rpc,
    token: Option<&str>,
) -> Status {
    let mut est = EstimationServiceClient::new(channel.clone());
    let mut models = ModelServiceClient::new(channel.clone());
    let mut hist = HistoryServiceClient::new(channel.clone());
    let id = MATRIX_CALC.load(std::sync::atomic::Ordering::SeqCst);
    let ok = || Status::new(Code::Ok, "");
    let result: Result<(), Status> = async {
        match rpc {
            Rpc::Estimate => {
                est.estimate(req(good.clone(), token)).await?;
            }
            Rpc::EstimateBatch => {
                let msg = pb::EstimateBatchRequest {
                    items: vec![pb::NeedsSet {
                        recipient_id: "B-1".into(),
                        needs: good.needs.clone(),
                        context: good.context.clone(),
                    }],
                    ..Default::default()
                };
                let mut s = est
                    .estimate_batch(req(tokio_stream::iter(vec![msg]), token))
                    .await?
                    .into_inner();
                while s.message().await?.is_some() {}
            }
            Rpc::ExplainVisit => {
                est.explain_visit(req(
                    pb::ExplainVisitRequest {
                        tasks: vec![good.needs[0].code.clone()],
                        slot: "morning".into(),
                        staff: 1,
                        context: good.context.clone(),
                        model: String::new(),
                    },
                    token,
                ))
                .await?;
            }
            Rpc::GetCatalog => {
                models
                    .get_catalog(req(pb::GetCatalogRequest::default(), token))
                    .await?;
            }
            Rpc::ListModels => {
                models
                    .list_models(req(pb::ListModelsRequest::default(), token))
                    .await?;
            }
            Rpc::GetModel => {
                models
                    .get_model(req(
                        pb::GetModelRequest {
                            model: "nordstad/1".into(),
                        },
                        token,
                    ))
                    .await?;
            }
            Rpc::ActivateModel => {
                models
                    .activate_model(req(
                        pb::ActivateModelRequest {
                            model: "nordstad/1".into(),
                            alias: "production".into(),
                        },
                        token,
                    ))
                    .await?;
            }
            Rpc::ReloadModels => {
                models
                    .reload_models(req(pb::ReloadModelsRequest::default(), token))
                    .await?;
            }
            Rpc::TrainModel => {
                let mut s = models
                    .train_model(req(
                        pb::TrainModelRequest {
                            catalog_path: "catalog.toml".into(),
                            visits_path: "visits.csv".into(),
                            name: "retrained".into(),
                            folds: 1,
                            activate: false,
                            settings: None,
                        },
                        token,
                    ))
                    .await?
                    .into_inner();
                while s.message().await?.is_some() {}
            }
            Rpc::ListCalculations => {
                let page = hist
                    .list_calculations(req(
                        pb::ListCalculationsRequest {
                            case_id: "MATRIX".into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await?
                    .into_inner();
                assert_eq!(page.calculations.len(), 1);
            }
            Rpc::GetCalculation => {
                hist.get_calculation(req(pb::GetCalculationRequest { id }, token))
                    .await?;
            }
            Rpc::RecalculateCalculation => {
                hist.recalculate_calculation(req(
                    pb::RecalculateCalculationRequest {
                        id,
                        model: String::new(),
                    },
                    token,
                ))
                .await?;
            }
            Rpc::CompareCalculations => {
                hist.compare_calculations(req(
                    pb::CompareCalculationsRequest { id_a: id, id_b: id },
                    token,
                ))
                .await?;
            }
            Rpc::EraseCase => {
                hist.erase_case(req(
                    pb::EraseCaseRequest {
                        case_id: "NOTHING-STORED".into(),
                    },
                    token,
                ))
                .await?;
            }
            Rpc::RebudgetCaseload => {
                let report = hist
                    .rebudget_caseload(req(
                        pb::RebudgetCaseloadRequest {
                            model: "production".into(),
                            top_movers: 0,
                        },
                        token,
                    ))
                    .await?
                    .into_inner();
                assert!(report.cases_seen >= 1);
            }
        }
        Ok(())
    }
    .await;
    result.err().unwrap_or_else(ok)
}

async fn good_request(channel: &Channel) -> pb::EstimateRequest {
    let catalog = ModelServiceClient::new(channel.clone())
        .get_catalog(req(pb::GetCatalogRequest::default(), Some(ADMIN)))
        .await
        .unwrap()
        .into_inner();
    let mut r = sample_request(&catalog);
    r.recipient_id = "T-1".into();
    r
}

fn audit_lines(cfg: &Config) -> Vec<serde_json::Value> {
    std::fs::read_to_string(cfg.audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_by_every_caller_gets_the_expected_status() {
    let w = world(true);
    let running = start(w.cfg.clone()).await.unwrap();
    // Token-only client over TLS (no client certificate: client_auth_optional).
    let channel = connect(&running, None).await.unwrap();
    wait_serving(&channel).await;
    let good = good_request(&channel).await;
    let mut stored = good.clone();
    stored.case_id = "MATRIX".into();
    let id = EstimationServiceClient::new(channel.clone())
        .estimate(req(stored, Some(ASSESSOR)))
        .await
        .unwrap()
        .into_inner()
        .calculation_id;
    assert!(id > 0);
    MATRIX_CALC.store(id, std::sync::atomic::Ordering::SeqCst);

    let callers: [(&str, Option<&str>, Option<Role>); 5] = [
        ("no token", None, None),
        ("a wrong token", Some("not-a-configured-token"), None),
        ("assessor", Some(ASSESSOR), Some(Role::Assessor)),
        ("data", Some(DATA), Some(Role::Data)),
        ("admin", Some(ADMIN), Some(Role::Admin)),
    ];
    let mut failures = Vec::new();
    let mut cells = 0;
    for rpc in RPCS {
        for (who, token, role) in callers {
            let expected = match role {
                None => Code::Unauthenticated,
                Some(r) if r < rpc.needs() => Code::PermissionDenied,
                Some(_) => rpc.allowed(),
            };
            let st = call(&channel, &good, rpc, token).await;
            cells += 1;
            if st.code() != expected {
                failures.push(format!(
                    "{rpc:?} as {who}: expected {expected:?}, got {:?} ({})",
                    st.code(),
                    st.message()
                ));
            }
            if matches!(st.code(), Code::PermissionDenied | Code::Unauthenticated) {
                assert!(
                    st.metadata().get("x-request-id").is_some(),
                    "{rpc:?} as {who}: a refusal carries the request id"
                );
            }
            match st.code() {
                Code::PermissionDenied => {
                    let needed = rpc.needs().to_string();
                    assert!(
                        st.message().contains(&format!("'{needed}'")),
                        "{rpc:?} as {who}: the message names the role needed: {}",
                        st.message()
                    );
                }
                Code::Unauthenticated => {
                    assert!(st.message().contains("token") || st.message().contains("credentials"));
                }
                _ => {}
            }
            if let Some(t) = token {
                assert!(!st.message().contains(t), "a token in a message");
            }
        }
    }
    assert_eq!(cells, 75);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Health and reflection stay open.
    assert_eq!(health(&channel).await.unwrap(), ServingStatus::Serving);
    let mut refl = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel.clone(),
    );
    let mut s = refl
        .server_reflection_info(tokio_stream::iter(vec![
            tonic_reflection::pb::v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    assert!(s.message().await.unwrap().is_some());

    // The audit log: two activations, two reloads and two (refused) training runs, by data
    // and admin, and admin's erasure. Erasure and re-budgeting first record that they
    // started (refused training runs never started).
    let all = audit_lines(&w.cfg);
    let started: Vec<&str> = all
        .iter()
        .filter(|l| l["outcome"] == "started")
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        started,
        ["erase_case", "rebudget_caseload", "rebudget_caseload"]
    );
    let lines: Vec<serde_json::Value> = all
        .into_iter()
        .filter(|l| l["outcome"] != "started")
        .collect();
    let text = std::fs::read_to_string(w.cfg.audit_path()).unwrap();
    for t in [ASSESSOR, DATA, ADMIN] {
        assert!(!text.contains(t), "a token in the audit log");
    }
    let summary: Vec<(String, String, String, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap().to_string(),
                l["caller"].as_str().unwrap().to_string(),
                l["role"].as_str().unwrap().to_string(),
                l["outcome"] == "ok",
            )
        })
        .collect();
    let row =
        |a: &str, c: &str, r: &str, ok: bool| (a.to_string(), c.to_string(), r.to_string(), ok);
    assert_eq!(
        summary,
        vec![
            row("activate_model", "dora", "data", true),
            row("activate_model", "adam", "admin", true),
            row("reload_models", "dora", "data", true),
            row("reload_models", "adam", "admin", true),
            row("train_model", "dora", "data", false),
            row("train_model", "adam", "admin", false),
            row("erase_case", "adam", "admin", true),
            row("rebudget_caseload", "dora", "data", true),
            row("rebudget_caseload", "adam", "admin", true),
        ]
    );
    assert_eq!(
        lines[0]["target"],
        "nordstad/1 as production (was nordstad/1)"
    );
    assert_eq!(
        lines[6]["target"],
        "case NOTHING-STORED (0 calculations erased)"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_lets_a_valid_client_certificate_in_and_refuses_an_expired_one() {
    let w = world(false);
    let running = start(w.cfg.clone()).await.unwrap();

    let channel = connect(&running, Some("client")).await.unwrap();
    wait_serving(&channel).await;
    let good = good_request(&channel).await;
    // `ramtid health` (the container health check) over mutual TLS.
    let addr = format!("127.0.0.1:{}", running.addr.port());
    let tls = ramtid::client::ClientTls {
        ca: tls_dir().join("ca.pem"),
        domain: "localhost".into(),
        cert_and_key: Some((tls_dir().join("client.pem"), tls_dir().join("client.key"))),
    };
    let status = ramtid::client::check_health_tls(&addr, "", Duration::from_secs(5), Some(&tls))
        .await
        .unwrap();
    assert_eq!(status, ServingStatus::Serving);
    let out = tokio::task::spawn_blocking(move || {
        let d = tls_dir();
        std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
            .args(["health", "--addr", &addr, "--tls-ca"])
            .arg(d.join("ca.pem"))
            .arg("--tls-cert")
            .arg(d.join("client.pem"))
            .arg("--tls-key")
            .arg(d.join("client.key"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SERVING");

    // The certificate authenticates the connection; the token still decides the role.
    assert_eq!(
        call(&channel, &good, Rpc::Estimate, Some(ASSESSOR))
            .await
            .code(),
        Code::Ok
    );
    assert_eq!(
        call(&channel, &good, Rpc::ListModels, Some(ASSESSOR))
            .await
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        call(&channel, &good, Rpc::Estimate, None).await.code(),
        Code::Unauthenticated
    );

    // An expired client certificate, and none at all, are refused during the handshake
    // with a TLS alert: no call gets through. The server closes the connection; the client
    // sees a transport failure, reported by tonic as UNKNOWN "transport error" (with the
    // alert as its source when it read the alert before its own write failed), UNAVAILABLE
    // or CANCELLED depending on which side of the race it lost.
    for (cert, alert) in [
        (Some("client-expired"), "CertificateExpired"),
        (None, "CertificateRequired"),
    ] {
        for rpc in [None, Some(Rpc::Estimate)] {
            let (code, detail) = match connect(&running, cert).await {
                Err(e) => (Code::Unavailable, e),
                Ok(ch) => {
                    let st = match rpc {
                        None => health(&ch).await.err().unwrap_or_else(|| Status::ok("")),
                        Some(rpc) => call(&ch, &good, rpc, Some(ADMIN)).await,
                    };
                    (st.code(), format!("{st:?}"))
                }
            };
            assert!(
                matches!(code, Code::Unknown | Code::Unavailable | Code::Cancelled),
                "{cert:?} {rpc:?}: {code:?} {detail}"
            );
            if detail.contains("alert") {
                assert!(detail.contains(alert), "{cert:?} {rpc:?}: {detail}");
            }
        }
    }
    running.shutdown().await.unwrap();
}

/// A system-to-system caller known by its client certificate alone: `ramtid cert-fingerprint`
/// gives the fingerprint to configure; without a token the certificate's role decides; a
/// token, when sent, decides instead; calculations are recorded under the certificate's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_client_certificate_stands_in_for_a_token() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .arg("cert-fingerprint")
        .arg(tls_dir().join("client.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fp = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");

    let mut w = world(false);
    w.cfg.auth.certificates = vec![CertificateConfig {
        name: "procapita".into(),
        role: Role::Assessor,
        sha256: fp,
    }];
    w.cfg.validate().unwrap();
    let running = start(w.cfg.clone()).await.unwrap();
    let channel = connect(&running, Some("client")).await.unwrap();
    wait_serving(&channel).await;
    let good = good_request(&channel).await;

    assert_eq!(
        call(&channel, &good, Rpc::Estimate, None).await.code(),
        Code::Ok
    );
    let st = call(&channel, &good, Rpc::ListModels, None).await;
    assert_eq!(st.code(), Code::PermissionDenied);
    assert!(
        st.message().contains("client certificate 'procapita'") && st.message().contains("'data'"),
        "{}",
        st.message()
    );
    assert_eq!(
        call(&channel, &good, Rpc::ListModels, Some(DATA))
            .await
            .code(),
        Code::Ok
    );
    assert_eq!(
        call(&channel, &good, Rpc::ListModels, Some("a-wrong-token"))
            .await
            .code(),
        Code::Unauthenticated,
        "a token, when sent, decides"
    );

    let mut stored = good.clone();
    stored.case_id = "SYSTEM-1".into();
    let id = EstimationServiceClient::new(channel.clone())
        .estimate(req(stored, None))
        .await
        .unwrap()
        .into_inner()
        .calculation_id;
    let calc = HistoryServiceClient::new(channel.clone())
        .get_calculation(req(pb::GetCalculationRequest { id }, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(calc.caller, "procapita");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_did_what() {
    let w = world(true);
    let running = start(w.cfg.clone()).await.unwrap();
    let channel = connect(&running, None).await.unwrap();
    wait_serving(&channel).await;
    let mut models = ModelServiceClient::new(channel.clone());
    // A real training run as data, activated.
    let mut s = models
        .train_model(req(
            pb::TrainModelRequest {
                catalog_path: "catalog.toml".into(),
                visits_path: "visits.csv".into(),
                name: "nordstad".into(),
                folds: 2,
                activate: true,
                settings: None,
            },
            Some(DATA),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut done = None;
    while let Some(p) = s.message().await.unwrap() {
        if let Some(pb::train_progress::Event::Done(d)) = p.event {
            done = Some(d);
        }
    }
    let m = done.unwrap().model.unwrap();
    // By the time the stream has answered, the line is on disk, after the one that
    // recorded the start.
    let lines = audit_lines(&w.cfg);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["action"], "train_model");
    assert_eq!(lines[0]["outcome"], "started");
    assert_eq!(lines[0]["target"], "nordstad");
    let lines = lines[1..].to_vec();
    assert_eq!(lines[0]["action"], "train_model");
    assert_eq!(lines[0]["caller"], "dora");
    assert_eq!(lines[0]["outcome"], "ok");
    assert_eq!(
        lines[0]["target"],
        format!("{}/{} as production", m.name, m.version)
    );
    // Activating the old version back, as admin; a failed activation is recorded too.
    models
        .activate_model(req(
            pb::ActivateModelRequest {
                model: "nordstad/1".into(),
                alias: String::new(),
            },
            Some(ADMIN),
        ))
        .await
        .unwrap();
    let st = models
        .activate_model(req(
            pb::ActivateModelRequest {
                model: "nordstad/99".into(),
                alias: String::new(),
            },
            Some(ADMIN),
        ))
        .await
        .unwrap_err();
    let lines = audit_lines(&w.cfg)[1..].to_vec();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1]["caller"], "adam");
    assert_eq!(lines[1]["role"], "admin");
    assert_eq!(
        lines[1]["target"],
        format!("nordstad/1 as production (was nordstad/{})", m.version)
    );
    assert_eq!(lines[2]["target"], "'nordstad/99' as production");
    assert!(
        lines[2]["outcome"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{:?}", st.code())),
        "{lines:?}"
    );
    for l in &lines {
        let t = l["time"].as_str().unwrap();
        assert!(t.len() == 24 && t.ends_with('Z'), "{t}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_the_certificate_stops_start_up() {
    let mut w = world(true);
    w.cfg.tls.key = tls_dir().join("client.key");
    let e = start(w.cfg.clone()).await.unwrap_err().to_string();
    assert!(e.starts_with("TLS (tls.cert)"), "{e}");
    // A readable file that is no key at all.
    w.cfg.tls.key = tls_dir().join("README.md");
    let e = start(w.cfg.clone()).await.unwrap_err().to_string();
    assert!(e.starts_with("TLS (tls.cert)"), "{e}");
}

/// The load harness against a server with TLS and access control: with the token it drives
/// Estimate without a failure; without one every call is refused, and it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_harness_speaks_tls_and_sends_the_token() {
    let w = world(true);
    let running = start(w.cfg.clone()).await.unwrap();
    let addr = format!("127.0.0.1:{}", running.addr.port());
    let run = |token: bool| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"));
            cmd.args([
                "load",
                "--addr",
                &addr,
                "--seconds",
                "0.5",
                "--concurrency",
                "4",
            ])
            .arg("--tls-ca")
            .arg(tls_dir().join("ca.pem"))
            .env("LOAD_TOKEN", ASSESSOR);
            if token {
                cmd.args(["--token-env", "LOAD_TOKEN"]);
            }
            cmd.output().unwrap()
        })
    };
    let with = run(true).await.unwrap();
    let text = String::from_utf8_lossy(&with.stdout);
    assert!(
        with.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(text.contains("failures 0"), "{text}");
    assert!(!text.contains(ASSESSOR) && !String::from_utf8_lossy(&with.stderr).contains(ASSESSOR));
    let without = run(false).await.unwrap();
    assert!(!without.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&without.stdout),
        String::from_utf8_lossy(&without.stderr)
    );
    assert!(all.contains("GetCatalog: no credentials"), "{all}");
    running.shutdown().await.unwrap();
}
