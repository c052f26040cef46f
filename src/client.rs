//! Client-side tools: the container health check (`ramtid health`) and the load harness
//! (`ramtid load`), which drives Estimate (or EstimateBatch) over loopback at fixed
//! concurrency and prints requests/s and latency percentiles, beside an empty handler
//! that answers with a response of the same size (the ceiling on this machine).

use ramtid_core::needs::NeedsSet;
use ramtid_proto::convert::context_to_pb;
use ramtid_proto::pb;
use ramtid_proto::pb::estimation_service_client::EstimationServiceClient;
use ramtid_proto::pb::estimation_service_server::{EstimationService, EstimationServiceServer};
use ramtid_proto::pb::model_service_client::ModelServiceClient;
use ramtid_server::config::{Config, Sources};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn endpoint(addr: &str) -> Result<Endpoint, String> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri).map_err(|e| format!("'{addr}' is not an address: {e}"))
}

/// Connects to `addr` ("127.0.0.1:50051" or "http://…").
pub async fn connect(addr: &str, timeout: Duration) -> Result<Channel, String> {
    endpoint(addr)?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))
}

/// TLS for a client of a server with `[tls]` set: the CA to trust, the name to expect,
/// and a client certificate when the server asks for one (mTLS).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca: std::path::PathBuf,
    pub domain: String,
    pub cert_and_key: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl ClientTls {
    pub fn config(&self) -> Result<tonic::transport::ClientTlsConfig, String> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let mut c = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .domain_name(self.domain.clone());
        if let Some((cert, key)) = &self.cert_and_key {
            c = c.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(c)
    }
}

/// Asks the health service about `service` ("" = the whole server).
pub async fn check_health(
    addr: &str,
    service: &str,
    timeout: Duration,
) -> Result<ServingStatus, String> {
    check_health_tls(addr, service, timeout, None).await
}

/// [`connect`], over TLS when `tls` is given (`addr` without a scheme: https).
pub async fn connect_tls(
    addr: &str,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<Channel, String> {
    match tls {
        None => connect(addr, timeout).await,
        Some(tls) => {
            let uri = if addr.contains("://") {
                addr.to_string()
            } else {
                format!("https://{addr}")
            };
            Endpoint::from_shared(uri)
                .map_err(|e| format!("'{addr}' is not an address: {e}"))?
                .tls_config(tls.config()?)
                .map_err(|e| format!("TLS: {e}"))?
                .connect_timeout(timeout)
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))
        }
    }
}

/// [`check_health`], over TLS when `tls` is given (`addr` without a scheme: https).
pub async fn check_health_tls(
    addr: &str,
    service: &str,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<ServingStatus, String> {
    let channel = connect_tls(addr, timeout, tls).await?;
    let mut req = Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    req.set_timeout(timeout);
    let r = HealthClient::new(channel)
        .check(req)
        .await
        .map_err(|s| format!("health check failed: {} {}", s.code(), s.message()))?;
    Ok(r.into_inner().status())
}

/// A plausible needs set for a catalog: four codes at common frequencies and a mid-range
/// context. Used by the load harness.
pub fn sample_request(catalog: &pb::Catalog) -> pb::EstimateRequest {
    let context = catalog
        .contexts
        .iter()
        .map(|c| {
            let value = match c.kind.as_str() {
                "boolean" => serde_json::json!(true),
                "categorical" => serde_json::json!(c.levels[0]),
                "ordinal" => {
                    serde_json::json!(c.levels[c.levels.len() / 2].parse::<f64>().unwrap_or(0.0))
                }
                _ => serde_json::json!(match (c.min, c.max) {
                    (Some(lo), Some(hi)) => ((lo + hi) / 2.0).round(),
                    (Some(lo), None) => lo,
                    (None, Some(hi)) => hi,
                    (None, None) => 0.0,
                }),
            };
            (c.name.clone(), context_to_pb(&value))
        })
        .collect();
    let freqs = [7.0, 1.0, 14.0, 0.5];
    pb::EstimateRequest {
        recipient_id: "LOAD-1".into(),
        context,
        needs: catalog
            .insatser
            .iter()
            .zip(freqs)
            .map(|(i, per_week)| pb::Need {
                code: i.code.clone(),
                per_week,
                slot: String::new(),
                staff: 1,
                ..Default::default()
            })
            .collect(),
        model: String::new(),
        case_id: String::new(),
        unit_id: String::new(),
    }
}

/// An Estimate handler that does nothing but return a fixed response: the ceiling.
#[derive(Debug, Clone)]
struct Empty {
    response: Arc<pb::EstimateResponse>,
}

#[tonic::async_trait]
impl EstimationService for Empty {
    async fn estimate(
        &self,
        _request: Request<pb::EstimateRequest>,
    ) -> Result<Response<pb::EstimateResponse>, Status> {
        Ok(Response::new(pb::EstimateResponse::clone(&self.response)))
    }

    type EstimateBatchStream = ReceiverStream<Result<pb::EstimateBatchResponse, Status>>;

    async fn estimate_batch(
        &self,
        _request: Request<Streaming<pb::EstimateBatchRequest>>,
    ) -> Result<Response<Self::EstimateBatchStream>, Status> {
        Err(Status::unimplemented(
            "the empty handler answers Estimate only",
        ))
    }

    async fn explain_visit(
        &self,
        _request: Request<pb::ExplainVisitRequest>,
    ) -> Result<Response<pb::ExplainVisitResponse>, Status> {
        Err(Status::unimplemented(
            "the empty handler answers Estimate only",
        ))
    }
}

/// What the harness drives.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// A running server; None starts one in this process (same config layering as serve).
    pub addr: Option<String>,
    pub config: Option<PathBuf>,
    pub concurrency: usize,
    pub seconds: f64,
    pub connections: usize,
    /// Drive an empty handler with a response of the same size instead.
    pub ceiling: bool,
    /// Activate this model selector `activate_at` seconds into the run.
    pub activate: Option<String>,
    pub activate_at: f64,
    /// EstimateBatch mode: needs sets from this needs.jsonl, in messages of `chunk` items.
    pub batch: Option<PathBuf>,
    pub chunk: usize,
    /// Estimate mode: cycle each request's `case_id` over this many ids (0: no case id, so
    /// nothing is stored).
    pub case_ids: usize,
    /// Override `history.url` of the in-process server.
    pub history: Option<String>,
    /// Bearer token sent with every call (a server with access control).
    pub token: Option<String>,
    /// TLS to the server (a server with `[tls]`).
    pub tls: Option<ClientTls>,
    /// Estimate mode: start a TrainModel of (catalog_path, visits_path), paths in the
    /// server's data directory, one second into the run; latency during it is reported
    /// apart.
    pub train_during: Option<(String, String)>,
}

/// Estimate latency while a TrainModel ran.
#[derive(Debug, Clone, Default)]
pub struct DuringTraining {
    pub seconds: f64,
    pub outcome: String,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The same figures for the requests outside the training.
    pub outside_requests: u64,
    pub outside_p50_ms: f64,
    pub outside_p99_ms: f64,
}

type Bearer = tonic::metadata::MetadataValue<tonic::metadata::Ascii>;

/// `msg` with the harness's bearer token, if any.
fn authorized<T>(msg: T, token: Option<&Bearer>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert("authorization", t.clone());
    }
    r
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub mode: String,
    pub requests: u64,
    pub failures: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses by model "name/version".
    pub versions: BTreeMap<String, u64>,
    pub first_failure: Option<String>,
    pub during_training: Option<DuringTraining>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} in {:.1} s = {:.0}/s",
            self.mode, self.requests, self.seconds, self.per_second
        )?;
        if self.p99_ms > 0.0 {
            write!(f, ", p50 {:.3} ms, p99 {:.3} ms", self.p50_ms, self.p99_ms)?;
        }
        write!(f, ", failures {}", self.failures)?;
        if !self.versions.is_empty() {
            let v: Vec<String> = self
                .versions
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            write!(f, "; responses by model: {}", v.join(", "))?;
        }
        if let Some(e) = &self.first_failure {
            write!(f, "; first failure: {e}")?;
        }
        if let Some(t) = &self.during_training {
            write!(
                f,
                "\nduring TrainModel ({:.1} s, {}): {} requests, p50 {:.3} ms, p99 {:.3} ms; \
                 outside it: {} requests, p50 {:.3} ms, p99 {:.3} ms; p99 ratio {:.2}",
                t.seconds,
                t.outcome,
                t.requests,
                t.p50_ms,
                t.p99_ms,
                t.outside_requests,
                t.outside_p50_ms,
                t.outside_p99_ms,
                t.p99_ms / t.outside_p99_ms.max(1e-9)
            )?;
        }
        Ok(())
    }
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Starts a server in this process on its own runtime thread; returns its address.
fn spawn_server(cfg: Config) -> Result<SocketAddr, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            match ramtid_server::start(cfg).await {
                Ok(running) => {
                    let _ = tx.send(Ok(running.addr));
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
    });
    rx.recv().map_err(|e| e.to_string())?
}

fn spawn_empty(response: pb::EstimateResponse) -> Result<SocketAddr, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = match TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(l.local_addr().map_err(|e| e.to_string()));
            let _ = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(EstimationServiceServer::new(Empty {
                    response: Arc::new(response),
                }))
                .serve_with_incoming(ramtid_server::server::incoming(l))
                .await;
        });
    });
    rx.recv().map_err(|e| e.to_string())?
}

async fn wait_serving(addr: &str, tls: Option<&ClientTls>) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        if let Ok(ServingStatus::Serving) =
            check_health_tls(addr, "", Duration::from_secs(1), tls).await
        {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(format!("{addr} is not SERVING after 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the harness (bounded by `seconds`; loopback only).
pub async fn load(opts: &LoadOptions) -> Result<LoadReport, String> {
    let target = match &opts.addr {
        Some(a) => a.clone(),
        None => {
            let mut sources = Sources {
                file: opts.config.clone(),
                environment: true,
                ..Sources::default()
            };
            sources
                .overrides
                .push(("server.listen".into(), "127.0.0.1:0".into()));
            sources
                .overrides
                .push(("server.metrics_listen".into(), String::new()));
            if let Some(url) = &opts.history {
                sources.overrides.push(("history.url".into(), url.clone()));
            }
            let cfg = Config::load(&sources).map_err(|e| e.to_string())?;
            spawn_server(cfg)?.to_string()
        }
    };
    let tls = opts.tls.as_ref();
    let token: Option<Bearer> = match &opts.token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .map_err(|_| "the token is not a valid header value".to_string())?,
        ),
        None => None,
    };
    let token = token.as_ref();
    wait_serving(&target, tls).await?;
    let channel = connect_tls(&target, Duration::from_secs(5), tls).await?;
    let catalog = ModelServiceClient::new(channel.clone())
        .get_catalog(authorized(pb::GetCatalogRequest::default(), token))
        .await
        .map_err(|s| format!("GetCatalog: {}", s.message()))?
        .into_inner();
    if let Some(path) = &opts.batch {
        return load_batch(opts, &target, path, token).await;
    }
    let request = sample_request(&catalog);
    let (addr, mode) = if opts.ceiling {
        let canned = EstimationServiceClient::new(channel.clone())
            .estimate(authorized(request.clone(), token))
            .await
            .map_err(|s| format!("Estimate: {}", s.message()))?
            .into_inner();
        (spawn_empty(canned)?.to_string(), "empty handler (ceiling)")
    } else {
        (target.clone(), "Estimate")
    };
    // The ceiling's empty handler is plain text on loopback, without access control.
    let (tls, token) = if opts.ceiling {
        (None, None)
    } else {
        (tls, token)
    };
    let mut channels = Vec::new();
    for _ in 0..opts.connections.max(1) {
        channels.push(connect_tls(&addr, Duration::from_secs(5), tls).await?);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(opts.seconds);
    let failures = Arc::new(AtomicU64::new(0));
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    let case_ids = opts.case_ids;
    let workers_n = opts.concurrency.max(1);
    for w in 0..workers_n {
        let mut client = EstimationServiceClient::new(channels[w % channels.len()].clone());
        let request = request.clone();
        let token = token.cloned();
        let (failures, first_failure, stop) =
            (failures.clone(), first_failure.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            // (milliseconds into the run, microseconds taken)
            let mut lat: Vec<(u32, u32)> = Vec::with_capacity(100_000);
            let mut versions: BTreeMap<String, u64> = BTreeMap::new();
            // Worker w names cases w, w + n, w + 2n, … (mod case_ids): all ids get used.
            let mut case = w;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let mut request = request.clone();
                if case_ids > 0 {
                    request.case_id = format!("load-case-{:07}", case % case_ids);
                    case += workers_n;
                }
                let t = Instant::now();
                match client.estimate(authorized(request, token.as_ref())).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        if case_ids > 0 && r.calculation_id == 0 {
                            // Measuring "with history" against a server that stores nothing
                            // would be a false figure.
                            failures.fetch_add(1, Ordering::Relaxed);
                            let mut f = first_failure.lock().unwrap();
                            if f.is_none() {
                                *f = Some(
                                    "the server stored no calculation (is its history disabled?)"
                                        .into(),
                                );
                            }
                            continue;
                        }
                        lat.push((
                            t.duration_since(t0).as_millis() as u32,
                            t.elapsed().as_micros().min(u32::MAX as u128) as u32,
                        ));
                        if let Some(m) = r.estimate.and_then(|e| e.model) {
                            let key = format!("{}/{}", m.name, m.version);
                            match versions.get_mut(&key) {
                                Some(n) => *n += 1,
                                None => {
                                    versions.insert(key, 1);
                                }
                            }
                        }
                    }
                    Err(s) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_failure.lock().unwrap();
                        if f.is_none() {
                            *f = Some(format!("{}: {}", s.code(), s.message()));
                        }
                    }
                }
            }
            (lat, versions)
        }));
    }
    let training = opts
        .train_during
        .clone()
        .map(|(catalog_path, visits_path)| {
            let mut models = ModelServiceClient::new(channel.clone());
            let token = token.cloned();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let start = t0.elapsed();
                let request = pb::TrainModelRequest {
                    catalog_path,
                    visits_path,
                    name: "load-train".into(),
                    folds: 0,
                    activate: false,
                    settings: None,
                };
                let outcome = match models
                    .train_model(authorized(request, token.as_ref()))
                    .await
                {
                    Err(s) => format!("{}: {}", s.code(), s.message()),
                    Ok(stream) => {
                        let mut stream = stream.into_inner();
                        loop {
                            match stream.message().await {
                                Ok(Some(pb::TrainProgress {
                                    event: Some(pb::train_progress::Event::Done(d)),
                                })) => {
                                    let m = d.model.unwrap_or_default();
                                    break format!(
                                        "{}/{} from {} visits",
                                        m.name, m.version, d.rows_used
                                    );
                                }
                                Ok(Some(_)) => continue,
                                Ok(None) => break "ended without a result".to_string(),
                                Err(s) => break format!("{}: {}", s.code(), s.message()),
                            }
                        }
                    }
                };
                (start, t0.elapsed(), outcome)
            })
        });
    if let Some(selector) = &opts.activate {
        tokio::time::sleep(Duration::from_secs_f64(opts.activate_at)).await;
        let r = ModelServiceClient::new(channel.clone())
            .activate_model(authorized(
                pb::ActivateModelRequest {
                    model: selector.clone(),
                    alias: String::new(),
                },
                token,
            ))
            .await;
        match r {
            Ok(r) => {
                let m = r.into_inner().model.unwrap_or_default();
                eprintln!(
                    "activated {}/{} at {:.1} s",
                    m.name,
                    m.version,
                    t0.elapsed().as_secs_f64()
                );
            }
            Err(s) => eprintln!("activation failed: {}", s.message()),
        }
    }
    let mut lat = Vec::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for w in workers {
        let (l, v) = w.await.map_err(|e| e.to_string())?;
        lat.extend(l);
        for (k, n) in v {
            *versions.entry(k).or_default() += n;
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let during_training = match training {
        Some(h) => {
            // A training still running when the run ends is cancelled (the window ends here).
            let (start, end, outcome) = if h.is_finished() {
                h.await.map_err(|e| e.to_string())?
            } else {
                h.abort();
                let end = t0.elapsed();
                (
                    Duration::from_secs(1).min(end),
                    end,
                    "still running at the end of the run; cancelled".to_string(),
                )
            };
            let (a, b) = (start.as_millis() as u32, end.as_millis() as u32);
            let (mut inside, mut outside): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
            for &(at, micros) in &lat {
                if (a..=b).contains(&at) {
                    inside.push(micros);
                } else {
                    outside.push(micros);
                }
            }
            inside.sort_unstable();
            outside.sort_unstable();
            Some(DuringTraining {
                seconds: (end - start).as_secs_f64(),
                outcome,
                requests: inside.len() as u64,
                p50_ms: percentile(&inside, 0.50),
                p99_ms: percentile(&inside, 0.99),
                outside_requests: outside.len() as u64,
                outside_p50_ms: percentile(&outside, 0.50),
                outside_p99_ms: percentile(&outside, 0.99),
            })
        }
        None => None,
    };
    let mut lat: Vec<u32> = lat.into_iter().map(|(_, micros)| micros).collect();
    lat.sort_unstable();
    let requests = lat.len() as u64;
    let first_failure = first_failure.lock().unwrap().clone();
    Ok(LoadReport {
        mode: format!(
            "{mode}{}, {} in flight, {} connections",
            if opts.case_ids > 0 && !opts.ceiling {
                format!(
                    " storing each calculation (over {} case ids)",
                    opts.case_ids
                )
            } else {
                String::new()
            },
            opts.concurrency,
            opts.connections
        ),
        requests,
        failures: failures.load(Ordering::Relaxed),
        seconds,
        per_second: requests as f64 / seconds,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        versions: if opts.ceiling {
            BTreeMap::new()
        } else {
            versions
        },
        first_failure,
        during_training,
    })
}

/// EstimateBatch throughput: needs sets estimated per second.
async fn load_batch(
    opts: &LoadOptions,
    addr: &str,
    path: &PathBuf,
    token: Option<&Bearer>,
) -> Result<LoadReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let items: Vec<pb::NeedsSet> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<NeedsSet>(l).map(|n| pb::NeedsSet::from(&n)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if items.is_empty() {
        return Err(format!("{} holds no needs sets", path.display()));
    }
    let chunk = opts.chunk.max(1);
    let messages: Vec<pb::EstimateBatchRequest> = items
        .chunks(chunk)
        .map(|c| pb::EstimateBatchRequest {
            model: String::new(),
            detail: pb::Detail::Totals as i32,
            items: c.to_vec(),
        })
        .collect();
    let messages = Arc::new(messages);
    let deadline = Instant::now() + Duration::from_secs_f64(opts.seconds);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.connections.max(1) {
        let channel = connect_tls(addr, Duration::from_secs(5), opts.tls.as_ref()).await?;
        let messages = messages.clone();
        let token = token.cloned();
        tasks.push(tokio::spawn(async move {
            let mut client = EstimationServiceClient::new(channel);
            let (mut ok, mut bad) = (0u64, 0u64);
            while Instant::now() < deadline {
                let stream = tokio_stream::iter(messages.iter().cloned().collect::<Vec<_>>());
                let mut resp = match client
                    .estimate_batch(authorized(stream, token.as_ref()))
                    .await
                {
                    Ok(r) => r.into_inner(),
                    Err(s) => return Err(format!("EstimateBatch: {}", s.message())),
                };
                while let Some(m) = resp.message().await.map_err(|s| s.message().to_string())? {
                    for r in m.results {
                        match r.outcome {
                            Some(pb::batch_result::Outcome::Estimate(_)) => ok += 1,
                            _ => bad += 1,
                        }
                    }
                }
            }
            Ok((ok, bad))
        }));
    }
    let (mut ok, mut bad) = (0, 0);
    for t in tasks {
        let (o, b) = t.await.map_err(|e| e.to_string())??;
        ok += o;
        bad += b;
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(LoadReport {
        mode: format!(
            "EstimateBatch (totals), {} items per message, {} streams",
            chunk, opts.connections
        ),
        requests: ok + bad,
        failures: bad,
        seconds,
        per_second: (ok + bad) as f64 / seconds,
        ..LoadReport::default()
    })
}
/// `ramtid health`: exit 0 when the server answers SERVING.
pub fn run_health(
    addr: &str,
    service: &str,
    timeout: Duration,
    tls: Option<&crate::client::ClientTls>,
) -> Result<bool, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let status = rt.block_on(crate::client::check_health_tls(addr, service, timeout, tls))?;
    println!("{}", status.as_str_name());
    Ok(status == tonic_health::pb::health_check_response::ServingStatus::Serving)
}

/// `ramtid load`: the load harness; prints one report line.
pub fn run_load(opts: &crate::client::LoadOptions) -> Result<crate::client::LoadReport, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(crate::client::load(opts))
}
