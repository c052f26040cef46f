//! The service under hostile or broken surroundings, end to end: the real server on an
//! ephemeral loopback port, called with the generated clients (and, for undecodable
//! messages, with raw bytes). Broken model versions on disk, an audit log that cannot be
//! written, a history path whose folder does not exist, undecodable messages, unbounded
//! input echoed in errors, alias names for models.

use crate::common::{copy_dir, server_config, world, World};
use ramtid::client::sample_request;
use ramtid_proto::pb::{
    self, estimation_service_client::EstimationServiceClient,
    history_service_client::HistoryServiceClient, model_service_client::ModelServiceClient,
};
use ramtid_server::config::Config;
use ramtid_server::{start, Running};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn config(w: &World) -> Config {
    let mut cfg = server_config(w);
    cfg.server.metrics_listen = "127.0.0.1:0".into();
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
    fn hist(&self) -> HistoryServiceClient<Channel> {
        HistoryServiceClient::new(self.channel.clone())
    }
    async fn health(&self) -> ServingStatus {
        HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }
    /// Waits until the start-up models are loaded (or not): SERVING, or `limit` passed.
    async fn wait_serving(&self, limit: Duration) -> ServingStatus {
        let t0 = Instant::now();
        loop {
            let s = self.health().await;
            if s == ServingStatus::Serving || t0.elapsed() > limit {
                return s;
            }
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
    async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.running.metrics_addr.unwrap())
            .await
            .unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
}

async fn serve(cfg: Config) -> Server {
    let running = start(cfg).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Server { running, channel }
}

// ---------------------------------------------------------------------------------------
// Model versions that fail validation
// ---------------------------------------------------------------------------------------

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &serde_json::Value) {
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// A valid copy of nordstad/1 as nordstad/`to` (its manifest says so).
fn copy_version(models: &Path, to: &str) -> PathBuf {
    let dir = models.join("nordstad").join(to);
    copy_dir(&models.join("nordstad/1"), &dir);
    let mut m = read_json(&dir.join("manifest.json"));
    m["version"] = to.into();
    write_json(&dir.join("manifest.json"), &m);
    dir
}

/// nordstad/`to` with a manifest cut off mid-way (a training run that died writing it).
fn truncated_manifest(models: &Path, to: &str) {
    let dir = copy_version(models, to);
    let text = std::fs::read(dir.join("manifest.json")).unwrap();
    std::fs::write(dir.join("manifest.json"), &text[..text.len() / 2]).unwrap();
}

/// nordstad/`to` whose params.json names a task pair beyond the catalog's codes, with the
/// fingerprint made to match: only validation of the indices (or the registry's isolation
/// of a panic while loading) stands between it and an index out of range. The first pair
/// is replaced, not one added: the number of features, and so of coefficients, stays
/// right (an added pair is refused for the count instead).
fn pair_beyond_the_codes(models: &Path, to: &str) {
    let dir = copy_version(models, to);
    let mut p = read_json(&dir.join("params.json"));
    p["space"]["pairs"][0] = serde_json::json!([0, 999]);
    let bytes = serde_json::to_vec_pretty(&p).unwrap();
    std::fs::write(dir.join("params.json"), &bytes).unwrap();
    let mut m = read_json(&dir.join("manifest.json"));
    m["params_fingerprint"] =
        format!("fnv64:{:016x}", ramtid_core::fingerprint::fnv1a64(&bytes)).into();
    write_json(&dir.join("manifest.json"), &m);
}

async fn statuses(s: &Server) -> Vec<(String, pb::ModelStatus, String)> {
    s.models()
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|m| (m.version.clone(), m.status(), m.refused_reason))
        .collect()
}

/// A broken newest version (2: half a manifest; 3: a pair index beyond the codes) does not
/// keep the server from serving the valid nordstad/1; both are REFUSED with a reason in
/// ListModels and /metrics; activating one is FAILED_PRECONDITION with the reason; a reload
/// loads the good new version and reports the bad ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_versions_are_refused_and_the_newest_valid_one_serves() {
    let w = world();
    truncated_manifest(&w.models, "2");
    pair_beyond_the_codes(&w.models, "3");
    let s = serve(config(&w)).await;
    assert_eq!(
        s.wait_serving(Duration::from_secs(20)).await,
        ServingStatus::Serving,
        "a valid older version exists"
    );
    let good = s.good_request().await;
    let e = s.est().estimate(good.clone()).await.unwrap().into_inner();
    assert_eq!(e.estimate.unwrap().model.unwrap().version, "1");

    let list = statuses(&s).await;
    let summary: Vec<(&str, pb::ModelStatus)> =
        list.iter().map(|(v, st, _)| (v.as_str(), *st)).collect();
    assert_eq!(
        summary,
        vec![
            ("1", pb::ModelStatus::Active),
            ("2", pb::ModelStatus::Refused),
            ("3", pb::ModelStatus::Refused),
        ]
    );
    assert!(list[1].2.contains("manifest.json"), "{}", list[1].2);
    assert!(!list[2].2.is_empty());

    let metrics = s.metrics().await;
    for v in ["2", "3"] {
        assert!(
            metrics.contains(&format!(
                "ramtid_model_refused{{name=\"nordstad\",version=\"{v}\",reason="
            )),
            "{metrics}"
        );
    }

    for v in ["nordstad/2", "nordstad/3"] {
        let st = s
            .models()
            .activate_model(pb::ActivateModelRequest {
                model: v.into(),
                alias: "candidate".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::FailedPrecondition, "{v}: {}", st.message());
        assert!(st.message().contains(v), "{}", st.message());
    }

    // A good new version 4 beside the broken ones: loaded as candidate, 2 and 3 reported.
    copy_version(&w.models, "4");
    let r = s
        .models()
        .reload_models(pb::ReloadModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let loaded: Vec<&str> = r.loaded.iter().map(|m| m.version.as_str()).collect();
    assert_eq!(loaded, ["4"]);
    let refused: Vec<(&str, bool)> = r
        .refused
        .iter()
        .map(|m| (m.version.as_str(), !m.refused_reason.is_empty()))
        .collect();
    assert_eq!(refused, [("2", true), ("3", true)]);
    assert_eq!(r.production.unwrap().version, "1");
    assert_eq!(r.candidate.unwrap().version, "4");
    s.running.shutdown().await.unwrap();
}

/// With every version broken the server stays NOT_SERVING, and says why in ListModels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_valid_version_the_reasons_are_listed() {
    let w = world();
    pair_beyond_the_codes(&w.models, "2");
    std::fs::write(w.models.join("nordstad/1/params.json"), b"{\"format\":").unwrap();
    let s = serve(config(&w)).await;
    assert_eq!(
        s.wait_serving(Duration::from_millis(1500)).await,
        ServingStatus::NotServing
    );
    let list = statuses(&s).await;
    assert_eq!(list.len(), 2);
    for (v, st, reason) in &list {
        assert_eq!(*st, pb::ModelStatus::Refused, "{v}");
        assert!(!reason.is_empty(), "{v}");
    }
    s.running.shutdown().await.unwrap();
}

/// A version never tried (not the newest) is validated before ListModels calls it
/// AVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_broken_version_is_not_listed_as_available() {
    let w = world();
    copy_version(&w.models, "2");
    copy_version(&w.models, "3");
    // Version 2 is damaged after the fact: its params no longer match the manifest.
    let p = w.models.join("nordstad/2/params.json");
    let text = std::fs::read(&p).unwrap();
    std::fs::write(&p, &text[..text.len() - 10]).unwrap();
    let s = serve(config(&w)).await;
    s.wait_serving(Duration::from_secs(20)).await;
    let list = statuses(&s).await;
    let summary: Vec<(&str, pb::ModelStatus)> =
        list.iter().map(|(v, st, _)| (v.as_str(), *st)).collect();
    assert_eq!(
        summary,
        vec![
            ("1", pb::ModelStatus::Available),
            ("2", pb::ModelStatus::Refused),
            ("3", pb::ModelStatus::Active),
        ]
    );
    assert!(list[1].2.contains("fingerprint"), "{}", list[1].2);
    s.running.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// The audit log fails closed
// ---------------------------------------------------------------------------------------

/// With the audit log on /dev/full (it opens; every write fails, as on a full disk), every
/// audited action is refused with UNAVAILABLE and changes nothing.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_that_cannot_be_audited_are_refused() {
    let w = world();
    let mut cfg = config(&w);
    cfg.audit.file = "/dev/full".into();
    let s = serve(cfg).await;
    assert_eq!(
        s.wait_serving(Duration::from_secs(20)).await,
        ServingStatus::Serving
    );
    let unavailable = |st: tonic::Status| {
        assert_eq!(st.code(), Code::Unavailable, "{}", st.message());
        assert!(
            st.message().contains("audit log") && st.message().contains("not carried out"),
            "{}",
            st.message()
        );
    };

    // ActivateModel: the candidate alias stays empty.
    unavailable(
        s.models()
            .activate_model(pb::ActivateModelRequest {
                model: "nordstad/1".into(),
                alias: "candidate".into(),
            })
            .await
            .unwrap_err(),
    );
    let listed = s
        .models()
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(listed[0].aliases, ["production"], "the alias did not move");
    let mut cand = s.good_request().await;
    cand.model = "candidate".into();
    assert_eq!(
        s.est().estimate(cand).await.unwrap_err().code(),
        Code::NotFound,
        "no candidate was activated"
    );

    // ReloadModels with a new version on disk: no alias moves; once the log works again
    // (a new server on the same folder), the same version is picked up.
    copy_version(&w.models, "2");
    unavailable(
        s.models()
            .reload_models(pb::ReloadModelsRequest {
                activate_latest: true,
            })
            .await
            .unwrap_err(),
    );
    let good = s.good_request().await;
    let version = s
        .est()
        .estimate(good.clone())
        .await
        .unwrap()
        .into_inner()
        .estimate
        .unwrap()
        .model
        .unwrap()
        .version;
    assert_eq!(version, "1");

    // TrainModel: refused before anything is written.
    let before = std::fs::read_dir(w.models.join("nordstad"))
        .unwrap()
        .count();
    unavailable(
        s.models()
            .train_model(pb::TrainModelRequest {
                catalog_path: "catalog.toml".into(),
                visits_path: "visits.csv".into(),
                name: "nordstad".into(),
                folds: 2,
                activate: true,
                settings: None,
            })
            .await
            .unwrap_err(),
    );
    assert_eq!(
        std::fs::read_dir(w.models.join("nordstad"))
            .unwrap()
            .count(),
        before,
        "no version written"
    );

    // EraseCase: the case's calculations stay.
    let mut stored = good.clone();
    stored.case_id = "K-77".into();
    let id = s
        .est()
        .estimate(stored)
        .await
        .unwrap()
        .into_inner()
        .calculation_id;
    assert!(id > 0);
    unavailable(
        s.hist()
            .erase_case(pb::EraseCaseRequest {
                case_id: "K-77".into(),
            })
            .await
            .unwrap_err(),
    );
    s.hist()
        .get_calculation(pb::GetCalculationRequest { id })
        .await
        .expect("not erased");

    // RebudgetCaseload reads every case: refused too.
    unavailable(
        s.hist()
            .rebudget_caseload(pb::RebudgetCaseloadRequest {
                model: "production".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    s.running.shutdown().await.unwrap();
}

/// The retention purge does not run when its start cannot be recorded.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_cannot_be_audited_does_not_run() {
    let w = world();
    let mut cfg = config(&w);
    let store = ramtid_history::HistoryStore::open(&cfg.history_url().unwrap()).unwrap();
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
    cfg.history.retention_days = 30;
    cfg.audit.file = "/dev/full".into();
    let s = serve(cfg).await;
    s.wait_serving(Duration::from_secs(20)).await;
    // Still there (its made-up stored answer need not be readable: not NOT_FOUND is what
    // counts; after a purge it is NOT_FOUND, as tests/history_rpc.rs shows).
    let found = s
        .hist()
        .get_calculation(pb::GetCalculationRequest { id: old })
        .await;
    assert!(
        found
            .as_ref()
            .map_or_else(|st| st.code() != Code::NotFound, |_| true),
        "an unaudited purge must not run: {found:?}"
    );
    s.running.shutdown().await.unwrap();
}

/// Start-up stops, naming the path, when the audit log cannot be opened for append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_fails_when_the_audit_log_cannot_be_opened() {
    let w = world();
    let mut cfg = config(&w);
    cfg.audit.file = w.root.join("no/such/dir/audit.log");
    let e = start(cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("audit.file") && e.contains("no/such/dir") && e.contains("does not exist"),
        "{e}"
    );
    assert!(!w.root.join("no").exists(), "no directory is created");
    let mut cfg = config(&w);
    cfg.audit.file = w.data.clone(); // a directory
    let e = start(cfg).await.unwrap_err().to_string();
    assert!(e.contains("cannot be opened for append"), "{e}");
}

/// A fresh checkout has no `data/`: the server makes its data directory, one level only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_made_but_not_a_tree_of_them() {
    let w = world();
    let mut cfg = config(&w);
    cfg.data.dir = w.root.join("fresh");
    let s = serve(cfg).await;
    s.wait_serving(Duration::from_secs(20)).await;
    assert!(w.root.join("fresh").is_dir());
    assert!(w.root.join("fresh/audit.log").is_file());
    s.running.shutdown().await.unwrap();
    let mut cfg = config(&w);
    cfg.data.dir = w.root.join("missing/parent/data");
    let e = start(cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("data.dir") && e.contains("missing/parent/data") && e.contains("parent"),
        "{e}"
    );
    assert!(
        !w.root.join("missing").exists(),
        "no directory tree is created"
    );
}

// ---------------------------------------------------------------------------------------
// The history's folder is not made up
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_path_in_a_missing_directory_is_refused_at_start_up() {
    let w = world();
    let mut cfg = config(&w);
    let dir = w.root.join("nonexistent/dir");
    cfg.history.url = Some(format!("sqlite://{}/h.db", dir.display()));
    let e = start(cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("history.url") && e.contains(&dir.display().to_string()),
        "{e}"
    );
    assert!(
        !w.root.join("nonexistent").exists(),
        "no directory is created"
    );
}

// ---------------------------------------------------------------------------------------
// Undecodable messages, echoed input, alias names
// ---------------------------------------------------------------------------------------

/// Raw bytes on the wire, to send what the generated clients never would.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        let mut v = vec![0; src.remaining()];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

async fn raw_call(s: &Server, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(s.channel.clone());
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_invalid_argument() {
    let w = world();
    let s = serve(config(&w)).await;
    s.wait_serving(Duration::from_secs(20)).await;
    for (path, body) in [
        // Field 1 (recipient_id) announced as 127 bytes, then the message ends.
        (
            "/ramtid.v1.EstimationService/Estimate",
            vec![0x0a, 0x7f, b'x'],
        ),
        // A string field that is not UTF-8.
        (
            "/ramtid.v1.EstimationService/Estimate",
            vec![0x0a, 0x02, 0xff, 0xfe],
        ),
        // Wire type 7 does not exist.
        ("/ramtid.v1.ModelService/ListModels", vec![0x0f]),
        (
            "/ramtid.v1.ModelService/ActivateModel",
            vec![0x0a, 0x05, b'a'],
        ),
    ] {
        let st = raw_call(&s, path, body).await;
        assert_eq!(st.code(), Code::InvalidArgument, "{path}: {}", st.message());
        assert!(
            st.message().contains("cannot be decoded"),
            "{}",
            st.message()
        );
    }
    s.running.shutdown().await.unwrap();
}

/// A 1.2 MB value in a request never comes back whole in the error (the status message
/// travels in a trailer; one that large makes clients refuse the answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_echo_unbounded_input() {
    let w = world();
    let s = serve(config(&w)).await;
    s.wait_serving(Duration::from_secs(20)).await;
    let huge = "x".repeat(1_200_000);
    let st = s
        .models()
        .activate_model(pb::ActivateModelRequest {
            model: huge.clone(),
            alias: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    assert!(st.message().len() < 400, "{} bytes", st.message().len());
    assert!(st.message().contains('…'), "{}", st.message());
    let st = s
        .models()
        .activate_model(pb::ActivateModelRequest {
            model: "nordstad/1".into(),
            alias: huge.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().len() < 400, "{} bytes", st.message().len());
    let mut r = s.good_request().await;
    r.model = huge.clone();
    let st = s.est().estimate(r).await.unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    assert!(st.message().len() < 400, "{} bytes", st.message().len());
    // An unknown context variable named by a 1.2 MB key: the BadRequest stays small.
    let mut r = s.good_request().await;
    r.context.insert(
        huge.clone(),
        ramtid_proto::convert::context_to_pb(&serde_json::json!(1.0)),
    );
    let st = s.est().estimate(r).await.unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "{}", st.message());
    assert!(
        st.message().len() < 2048 && st.details().len() < 4096,
        "message {} bytes, details {} bytes",
        st.message().len(),
        st.details().len()
    );
    s.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_are_not_model_names() {
    let w = world();
    let s = serve(config(&w)).await;
    s.wait_serving(Duration::from_secs(20)).await;
    for name in ["production", "candidate"] {
        let st = s
            .models()
            .train_model(pb::TrainModelRequest {
                catalog_path: "catalog.toml".into(),
                visits_path: "visits.csv".into(),
                name: name.into(),
                folds: 2,
                activate: false,
                settings: None,
            })
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::InvalidArgument, "{name}");
        assert!(st.message().contains("alias"), "{}", st.message());
        use tonic_types::StatusExt;
        let fields: Vec<String> = st
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["name"]);
    }
    assert!(!w.models.join("production").exists());
    s.running.shutdown().await.unwrap();

    // The command line refuses them too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .args(["train", "--catalog"])
        .arg(w.data.join("catalog.toml"))
        .arg("--visits")
        .arg(w.data.join("visits.csv"))
        .arg("--out")
        .arg(&w.models)
        .args(["--name", "candidate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alias"), "{err}");
    assert!(!w.models.join("candidate").exists());
}

// ---------------------------------------------------------------------------------------
// The binary: start-up falls back and says why in the log
// ---------------------------------------------------------------------------------------

#[test]
fn serve_logs_why_a_version_is_passed_over() {
    let w = world();
    truncated_manifest(&w.models, "2");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_ramtid");
    let child = std::process::Command::new(bin)
        .arg("serve")
        .env("RAMTID__SERVER__LISTEN", &addr)
        .env("RAMTID__SERVER__METRICS_LISTEN", "")
        .env("RAMTID__MODELS__DIR", &w.models)
        .env("RAMTID__DATA__DIR", &w.data)
        .env("RAMTID__LOG__FORMAT", "json")
        .current_dir(&w.root)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let out = std::process::Command::new(bin)
            .args(["health", "--addr", &addr, "--timeout-ms", "500"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "never SERVING");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let refused = log
        .lines()
        .find(|l| l.contains("model refused"))
        .unwrap_or_else(|| panic!("no refusal in the log: {log}"));
    assert!(
        refused.contains("nordstad/2") && refused.contains("manifest.json"),
        "{refused}"
    );
    assert!(log.contains("newest valid"), "{log}");
}
