//! Prometheus metrics at `GET /metrics` on their own port (`server.metrics_listen`).
//!
//! Counts and latencies are kept in `metrics` handles registered with a recorder of
//! `metrics-exporter-prometheus`, which also writes the text exposition format. The recorder
//! is this server's own, not the process-wide one, so that several servers in one process
//! (the integration tests) do not add up each other's calls. The port is served by hyper,
//! the HTTP implementation tonic runs on.
//!
//! The methods are the ones in the descriptor sets of the services served (ramtid's own,
//! health, reflection), read once at start: a call's method label is taken from its request
//! path, with no list of methods kept by hand, and any other path is counted under
//! `method="unknown"`, so a caller cannot grow the number of series.

use crate::registry::Registry;
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use prost::Message as _;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::Code;

/// Counter of calls by service, method and status code.
pub const REQUESTS: &str = "ramtid_requests_total";
/// Histogram of call durations by method.
pub const DURATION: &str = "ramtid_request_duration_seconds";

/// Latency bucket upper bounds, seconds.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Latencies a method records before they are folded into its histogram. The exporter keeps
/// every latency recorded until the next fold (in blocks allocated as they fill): folded at
/// this count rather than only every few seconds, they stay a few kilobytes per method
/// instead of megabytes that are allocated, freed and faulted in again at every fold.
const FOLD_EVERY: u64 = 4096;
/// gRPC status codes 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;
/// The label of a path that is no method served here.
pub const UNKNOWN: &str = "unknown";

static META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The descriptor sets of the services served, and whether `limits.concurrency` applies to
/// their calls (ramtid's own methods do; health checks and reflection are never queued).
fn served() -> [(&'static [u8], bool); 4] {
    [
        (ramtid_proto::pb::FILE_DESCRIPTOR_SET, true),
        (tonic_health::pb::FILE_DESCRIPTOR_SET, false),
        (tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET, false),
        (tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET, false),
    ]
}

/// One method's label and handles.
struct Method {
    service: String,
    name: String,
    limited: bool,
    duration: Histogram,
    /// Latencies recorded so far (for [`FOLD_EVERY`]).
    recorded: AtomicU64,
    /// By status code, registered on first use (OK at start).
    codes: [OnceLock<Counter>; CODES],
}

/// A method, as the layers know it: an index into this server's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodId(usize);

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Request path → method, sorted by path (looked up twice a call: a binary search over a
    /// few dozen paths costs less than hashing the path each time).
    by_path: Vec<(String, MethodId)>,
    /// Every method served, then the one for unknown paths (last).
    methods: Vec<Method>,
    /// Needs sets estimated through EstimateBatch (good and bad).
    pub batch_items: Counter,
    pub batch_item_errors: Counter,
    /// The history, once open: its writer's counters (group commit at work).
    pub history: OnceLock<ramtid_history::HistoryStore>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("methods", &self.methods.len())
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn code_name(c: usize) -> &'static str {
    [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ][c]
}

/// `/package.Service/Method` of every method in the descriptor sets.
fn paths(set: &[u8]) -> Vec<(String, String, String)> {
    let set = prost_types::FileDescriptorSet::decode(set).expect("a descriptor set built in");
    let mut out = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            let full = if package.is_empty() {
                service.name().to_string()
            } else {
                format!("{package}.{}", service.name())
            };
            for m in &service.method {
                out.push((
                    format!("/{full}/{}", m.name()),
                    full.clone(),
                    m.name().to_string(),
                ));
            }
        }
    }
    out
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)
            .expect("buckets are not empty")
            .build_recorder();
        recorder.describe_counter(
            REQUESTS.into(),
            None,
            "gRPC calls handled, by method and status code.".into(),
        );
        recorder.describe_histogram(
            DURATION.into(),
            None,
            "Time from a call's start to its end (streams: to the stream's end).".into(),
        );
        recorder.describe_counter(
            "ramtid_batch_items_total".into(),
            None,
            "Needs sets received through EstimateBatch.".into(),
        );
        recorder.describe_counter(
            "ramtid_batch_item_errors_total".into(),
            None,
            "EstimateBatch items answered with an error.".into(),
        );
        let mut by_path = Vec::new();
        let mut methods = Vec::new();
        let mut add = |service: String, name: String, limited: bool| {
            let duration = recorder.register_histogram(
                &Key::from_parts(DURATION, vec![Label::new("method", name.clone())]),
                &META,
            );
            methods.push(Method {
                service,
                name,
                limited,
                duration,
                recorded: AtomicU64::new(0),
                codes: Default::default(),
            });
            MethodId(methods.len() - 1)
        };
        for (set, limited) in served() {
            for (path, service, name) in paths(set) {
                let id = add(service, name, limited);
                by_path.push((path, id));
            }
        }
        add(UNKNOWN.into(), UNKNOWN.into(), false);
        // A path listed twice keeps its last method (none is: the router refuses that).
        by_path.sort_by(|a: &(String, MethodId), b| a.0.cmp(&b.0).then(b.1 .0.cmp(&a.1 .0)));
        by_path.dedup_by(|later, first| later.0 == first.0);
        let batch_items =
            recorder.register_counter(&Key::from_name("ramtid_batch_items_total"), &META);
        let batch_item_errors =
            recorder.register_counter(&Key::from_name("ramtid_batch_item_errors_total"), &META);
        let metrics = Metrics {
            handle: recorder.handle(),
            recorder,
            by_path,
            methods,
            batch_items,
            batch_item_errors,
            history: OnceLock::new(),
        };
        // Every method shows a count of OK calls from the start, so rates are defined.
        for i in 0..metrics.methods.len() {
            metrics.counter(MethodId(i), Code::Ok);
        }
        metrics
    }

    /// The method a request path names, or the one that stands for all unknown paths.
    pub fn method(&self, path: &str) -> MethodId {
        match self.by_path.binary_search_by(|(p, _)| p.as_str().cmp(path)) {
            Ok(i) => self.by_path[i].1,
            Err(_) => MethodId(self.methods.len() - 1),
        }
    }

    /// The method's label (`Estimate`; `unknown` for any other path).
    pub fn name(&self, id: MethodId) -> &str {
        &self.methods[id.0].name
    }

    /// Whether `limits.concurrency` applies to the method's calls.
    pub fn limited(&self, id: MethodId) -> bool {
        self.methods[id.0].limited
    }

    fn counter(&self, id: MethodId, code: Code) -> &Counter {
        let m = &self.methods[id.0];
        let c = (code as i32).clamp(0, CODES as i32 - 1) as usize;
        m.codes[c].get_or_init(|| {
            self.recorder.register_counter(
                &Key::from_parts(
                    REQUESTS,
                    vec![
                        Label::new("service", m.service.clone()),
                        Label::new("method", m.name.clone()),
                        Label::new("code", code_name(c)),
                    ],
                ),
                &META,
            )
        })
    }

    /// Records one call that ended with `code` after `elapsed`.
    pub fn observe(&self, id: MethodId, code: Code, elapsed: Duration) {
        let m = &self.methods[id.0];
        m.duration.record(elapsed.as_secs_f64());
        self.counter(id, code).increment(1);
        if m.recorded.fetch_add(1, Ordering::Relaxed) % FOLD_EVERY == FOLD_EVERY - 1 {
            self.upkeep();
        }
    }

    /// Folds the latencies recorded since the last fold into the histograms, so that they
    /// do not pile up between scrapes (or without any): every [`FOLD_EVERY`] calls of a
    /// method, every few seconds, and at every render.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition: the calls so far, then the state at this moment (the
    /// models under the aliases, the history's writer).
    pub fn render(&self, registry: &Registry) -> String {
        let mut out = self.handle.render();
        // The state is rendered from a recorder made for this scrape: a model that left an
        // alias leaves the output, instead of staying as a series stuck at its last value.
        let now = PrometheusBuilder::new().build_recorder();
        if let Some(h) = self.history.get() {
            let w = h.writer_stats();
            now.describe_counter(
                "ramtid_history_records_total".into(),
                None,
                "Calculations stored in the history (acknowledged).".into(),
            );
            now.describe_counter(
                "ramtid_history_commits_total".into(),
                None,
                "Database transactions that wrote them (records / commits is the mean batch; on SQLite the journal acknowledges first and the writer moves its records into the database in these).".into(),
            );
            now.register_counter(&Key::from_name("ramtid_history_records_total"), &META)
                .absolute(w.records);
            now.register_counter(&Key::from_name("ramtid_history_commits_total"), &META)
                .absolute(w.commits);
        }
        now.describe_gauge(
            "ramtid_model_info".into(),
            None,
            "The model under each alias (value 1).".into(),
        );
        now.describe_gauge(
            "ramtid_model_loaded".into(),
            None,
            "Whether a production model is loaded (1) or not (0).".into(),
        );
        let aliases = registry.current();
        for (alias, m) in [
            ("production", &aliases.production),
            ("candidate", &aliases.candidate),
        ] {
            if let Some(m) = m {
                let labels: Vec<Label> = [
                    ("alias", SharedString::from(alias)),
                    ("name", m.name().to_string().into()),
                    ("version", m.version().to_string().into()),
                ]
                .into_iter()
                .map(|(k, v)| Label::new(k, v))
                .collect();
                now.register_gauge(&Key::from_parts("ramtid_model_info", labels), &META)
                    .set(1.0);
            }
        }
        // Refused versions, so that the health of the model folder is visible beside the
        // health service's bare SERVING / NOT_SERVING (which carries no text).
        now.describe_gauge(
            "ramtid_model_refused".into(),
            None,
            "A model version on disk that was refused (value 1), with the start of the reason (ListModels gives all of it).".into(),
        );
        for (k, reason) in registry.refusals() {
            let (name, version) = k.split_once('/').unwrap_or((k.as_str(), ""));
            let labels: Vec<Label> = [
                ("name", SharedString::from(name.to_string())),
                ("version", version.to_string().into()),
                (
                    "reason",
                    crate::error::truncate_for_message(&reason)
                        .into_owned()
                        .into(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| Label::new(k, v))
            .collect();
            now.register_gauge(&Key::from_parts("ramtid_model_refused", labels), &META)
                .set(1.0);
        }
        now.register_gauge(&Key::from_name("ramtid_model_loaded"), &META)
            .set(f64::from(u8::from(aliases.production.is_some())));
        out.push_str(&now.handle().render());
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped. Anything else is a 404.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, registry: Arc<Registry>) {
    use hyper::{Method as Verb, Request, Response, StatusCode};
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            // Out of file descriptors or similar: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (metrics, registry) = (metrics.clone(), registry.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = if req.method() == Verb::GET && req.uri().path() == "/metrics" {
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(metrics.render(&registry))
                } else {
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .header("content-type", "text/plain")
                        .body("only GET /metrics is served here\n".to_string())
                };
                std::future::ready(Ok::<_, Infallible>(response.expect("static headers")))
            });
            // One request per connection, its head read within 5 s: a scraper needs no more,
            // and a stalled client holds nothing for long.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(sock), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
        });
    }
}

/// Folds recorded latencies into the histograms every few seconds, until dropped.
pub async fn upkeep(metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        metrics.upkeep();
    }
}

/// Binds the metrics port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_descriptors_and_unknown_paths_share_one_label() {
        let m = Metrics::new();
        let estimate = m.method("/ramtid.v1.EstimationService/Estimate");
        assert_eq!(m.name(estimate), "Estimate");
        assert!(m.limited(estimate));
        let health = m.method("/grpc.health.v1.Health/Check");
        assert_eq!(m.name(health), "Check");
        assert!(!m.limited(health));
        let a = m.method("/ramtid.v1.EstimationService/Nope");
        let b = m.method("/x/y");
        assert_eq!((a, m.name(a)), (b, UNKNOWN));
        assert!(!m.limited(a));
    }
}
